//! Finding mentions: every lexicon term in a sentence becomes one finding
//! ("No focal consolidation, effusion, or pneumothorax" gives three), judged
//! by [`crate::context`], with its body sites and the sentence's sizes.

use crate::context::cues::CueHit;
use crate::context::judge::judge;
use crate::lexicon::{Entry, Lexicon, Words};
use crate::sentence::{Mention, Scratch, SentenceSpan};
use crate::words::{is_word_byte, is_word_edge, select_words, word_count};
use crate::{Assertion, BodySite, Finding, Measurement};

/// How many words may separate the parts of a gapped synonym.
const MAX_GAP_WORDS: usize = 5;

/// One pass over `text[start..end]`: finding mentions, context cues and body
/// sites, each in text order, into `scratch`.
pub(crate) fn scan(words: &Words, text: &str, start: usize, end: usize, scratch: &mut Scratch) {
    let Scratch {
        cues,
        mentions,
        sites,
        descriptors,
        ..
    } = scratch;
    cues.clear();
    mentions.clear();
    sites.clear();
    descriptors.clear();
    select_words(&words.automaton, text, start, end, |s, e, pattern| {
        let entry = &words.entries[pattern];
        if let Some(cue) = entry.cue {
            cues.push(CueHit {
                start: s,
                end: e,
                cue,
            });
        }
        if let Some(site) = entry.site {
            sites.push((s, e, site));
        }
        if let Some(row) = entry.descriptor {
            descriptors.push((s, e, row));
        }
        if let Some(mention) = mention(entry, text, s, e, end)
            && mentions.last().is_none_or(|last| s >= last.end)
        {
            mentions.push(mention);
        }
    });
}

/// The finding an entry names at `s..e`, if any: a gapped reading whose
/// tail follows wins over a plain one.
fn mention(entry: &Entry, text: &str, s: usize, e: usize, end: usize) -> Option<Mention> {
    let gapped = entry.readings.iter().find_map(|reading| {
        let tail = reading.tail.as_deref()?;
        find_tail(text, e, end, tail).map(|(ts, te)| Mention {
            start: s,
            end: te,
            focus_start: ts,
            focus_end: te,
            concept: reading.concept,
        })
    });
    gapped.or_else(|| {
        entry
            .readings
            .iter()
            .find(|reading| reading.tail.is_none())
            .map(|reading| Mention {
                start: s,
                end: e,
                focus_start: s,
                focus_end: e,
                concept: reading.concept,
            })
    })
}

/// An organ sub-header can be the head of a gapped synonym whose tail opens
/// the body: "HEART: Mildly enlarged." reads as `heart ... enlarged`. Skipped
/// when the body names the finding itself ("HEART: Enlarged heart").
fn header_mention(words: &Words, text: &str, sentence: SentenceSpan, mentions: &mut Vec<Mention>) {
    let found = first_in_header(words, text, sentence, |s, _, entry| {
        entry.readings.iter().find_map(|reading| {
            let tail = reading.tail.as_deref()?;
            find_tail(text, sentence.body_start, sentence.end, tail).map(|(ts, te)| Mention {
                start: s,
                end: te,
                focus_start: ts,
                focus_end: te,
                concept: reading.concept,
            })
        })
    });
    if let Some(mention) = found
        && !mentions.iter().any(|other| other.start < mention.end)
    {
        mentions.insert(0, mention);
    }
}

/// A sub-header that names a finding, over a body that only denies it
/// ("ASCITES: None.", "Free fluid: Absent."): the header is the finding,
/// and the body's negation reaches back to it.
fn denied_header(words: &Words, text: &str, sentence: SentenceSpan, scratch: &mut Scratch) {
    let denies = scratch.mentions.is_empty()
        && scratch.cues.iter().any(|c| {
            matches!(
                c.cue.polarity,
                Some((_, crate::context::cues::Polarity::Negate))
            )
        });
    if denies {
        let found = first_in_header(words, text, sentence, |s, e, entry| {
            mention(entry, text, s, e, sentence.body_start)
        });
        scratch.mentions.extend(found);
    }
}

/// The first word of a sentence's organ sub-header (`text[start..body_start]`)
/// that `pick` reads as something.
fn first_in_header<T>(
    words: &Words,
    text: &str,
    sentence: SentenceSpan,
    mut pick: impl FnMut(usize, usize, &Entry) -> Option<T>,
) -> Option<T> {
    let mut found = None;
    select_words(
        &words.automaton,
        text,
        sentence.start,
        sentence.body_start,
        |s, e, pattern| {
            if found.is_none() {
                found = pick(s, e, &words.entries[pattern]);
            }
        },
    );
    found
}

/// Finds `tail` (lower case) as whole words within a few words after `from`,
/// not crossing a clause mark.
fn find_tail(text: &str, from: usize, end: usize, tail: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut at = from;
    let mut words = 0;
    while at < end && words <= MAX_GAP_WORDS {
        match bytes[at] {
            b'.' | b',' | b';' | b':' | b'(' | b')' => return None,
            b if is_word_byte(b) => {
                let candidate_end = at + tail.len();
                if candidate_end <= end
                    && bytes[at..candidate_end].eq_ignore_ascii_case(tail.as_bytes())
                    && is_word_edge(bytes, candidate_end, false)
                {
                    return Some((at, candidate_end));
                }
                while at < end && is_word_byte(bytes[at]) {
                    at += 1;
                }
                words += 1;
            }
            _ => at += 1,
        }
    }
    None
}

/// Appends the findings of one sentence to `out` (byte offsets), and their
/// concept indexes to `concepts` (parallel to `out`).
pub(crate) fn sentence_findings<'a>(
    text: &'a str,
    sentence: SentenceSpan,
    lexicon: &'a Lexicon,
    mut measurements: Vec<Measurement<'a>>,
    scratch: &mut Scratch,
    out: &mut Vec<Finding<'a>>,
    concepts: &mut Vec<u32>,
) {
    let (start, end) = (sentence.body_start, sentence.end);
    scan(&lexicon.words, text, start, end, scratch);
    if sentence.body_start > sentence.start {
        header_mention(&lexicon.words, text, sentence, &mut scratch.mentions);
        denied_header(&lexicon.words, text, sentence, scratch);
    }
    // The organ sub-header ("LIVER: simple cyst") names the site of findings
    // that name none themselves.
    let header_site = first_in_header(&lexicon.words, text, sentence, |s, e, entry| {
        entry.site.map(|concept| (s, e, concept))
    });
    crate::grammar::organ_descriptors(text, sentence, lexicon, header_site.is_some(), scratch);
    crate::grammar::drop_normal_heads(text, lexicon, scratch);
    if scratch.mentions.is_empty() {
        return;
    }
    let sites = &scratch.sites;
    let mentions = &scratch.mentions;
    let first = out.len();
    for (index, mention) in mentions.iter().enumerate() {
        scratch.spans.clear();
        scratch.spans.extend(
            mentions
                .iter()
                .enumerate()
                .filter(|&(other, _)| other != index)
                .map(|(_, m)| (m.start, m.end)),
        );
        // Cues inside the focus itself are part of the term, not context.
        let cues: &[CueHit] = &scratch.cues;
        let judgement = if cues
            .iter()
            .any(|c| c.start < mention.focus_end && c.end > mention.focus_start)
        {
            let outside: Vec<CueHit> = cues
                .iter()
                .filter(|c| c.end <= mention.focus_start || c.start >= mention.focus_end)
                .copied()
                .collect();
            judge(
                text,
                &outside,
                mention.focus_start,
                mention.focus_end,
                &scratch.spans,
            )
        } else {
            judge(
                text,
                cues,
                mention.focus_start,
                mention.focus_end,
                &scratch.spans,
            )
        };
        // A side named by the term itself ("dextroscoliosis", "elevation of
        // the right hemidiaphragm") is the finding's, whatever is around it.
        let own_side = cues
            .iter()
            .filter(|c| c.start >= mention.focus_start && c.end <= mention.focus_end)
            .find_map(|c| c.cue.side.filter(|_| !c.cue.direction));
        // A site belongs to the nearest mention ("a 4 mm nodule in the
        // lingula and an 8 mm nodule in the left lower lobe"); ties go to the
        // mention before it.
        let mut body_site: Vec<BodySite<'a>> = sites
            .iter()
            .filter(|&&(s, e, _)| nearest_mention(mentions, s, e) == Some(index))
            .map(|&(s, e, concept)| BodySite {
                text: &text[s..e],
                code: lexicon.body_sites.get(concept as usize),
                start: s,
                end: e,
            })
            .collect();
        // A site named inside the term itself ("adrenal nodule", "lung
        // nodules"): the whole term matched, so its words were not scanned.
        // Scanning all but the term's last byte finds them and never the term.
        if mention.focus_start == mention.start
            && text.as_bytes()[mention.start..mention.end].contains(&b' ')
        {
            select_words(
                &lexicon.words.automaton,
                text,
                mention.start,
                mention.end - 1,
                |s, e, pattern| {
                    if let Some(concept) = lexicon.words.entries[pattern].site {
                        body_site.insert(
                            0,
                            BodySite {
                                text: &text[s..e],
                                code: lexicon.body_sites.get(concept as usize),
                                start: s,
                                end: e,
                            },
                        );
                    }
                },
            );
        }
        if body_site.is_empty()
            && let Some((s, e, concept)) = header_site
        {
            body_site.push(BodySite {
                text: &text[s..e],
                code: lexicon.body_sites.get(concept as usize),
                start: s,
                end: e,
            });
        }
        // The term is the whole noun phrase: the head and the descriptors
        // before it ("rim-enhancing fluid collection", "mildly dilated").
        let descriptors = crate::grammar::descriptors_of(text, lexicon, mention, scratch);
        // A descriptor that is itself the finding ("mildly dilated loops")
        // keeps its own words: what it qualifies comes after it.
        let head_is_descriptor = scratch
            .descriptors
            .iter()
            .any(|&(s, e, _)| s == mention.start && e == mention.end);
        let term_start = descriptors
            .first()
            .filter(|_| !head_is_descriptor)
            .map_or(mention.start, |d| d.start.min(mention.start));
        out.push(Finding {
            text: &text[sentence.start..sentence.end],
            start: sentence.start,
            end: sentence.end,
            section: sentence.section,
            item: sentence.item,
            term: &text[term_start..mention.end],
            term_start,
            term_end: mention.end,
            code: lexicon.findings.get(mention.concept as usize),
            assertion: judgement.assertion,
            certainty: judgement.certainty,
            hedge: judgement.hedge,
            temporality: judgement.temporality,
            change: judgement.change,
            laterality: own_side.or(judgement.laterality),
            body_site,
            measurements: Vec::new(),
            descriptors,
            suggests: Vec::new(),
        });
        concepts.push(mention.concept);
    }
    if first > 0
        && out[first - 1].section == sentence.section
        && out[first - 1].assertion == Assertion::Absent
        && is_bare_alternatives(text, start, end, mentions, &scratch.cues)
    {
        for finding in &mut out[first..] {
            finding.assertion = Assertion::Absent;
        }
    }
    // A size right before a finding ("6 mm stone", "4 mm of midline shift")
    // is that finding's; otherwise it describes the finding before it
    // ("mass measuring 4.5 cm"), or failing that the next one.
    for measurement in measurements.drain(..) {
        let bytes = text.as_bytes();
        // "6 cm from the nipple", "4 cm from the anal verge": a distance
        // that places the finding, not its size.
        let after = text[measurement.end..].trim_start();
        if after
            .get(..5)
            .is_some_and(|w| w.eq_ignore_ascii_case("from "))
        {
            continue;
        }
        // "decreased from 11 mm", "previously 12 mm": the prior size.
        let before = text[sentence.start..measurement.start]
            .trim_end()
            .rsplit(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or("");
        if ["from", "previously", "prior", "formerly", "was"]
            .iter()
            .any(|w| before.eq_ignore_ascii_case(w))
        {
            continue;
        }
        let words_between = |from: usize, to: usize| {
            text[from..to]
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
        };
        let modifies = (first..out.len()).find(|&i| {
            let f = &out[i];
            f.term_start >= measurement.end
                && word_count(&bytes[measurement.end..f.term_start]) <= PRE_SIZE_WORDS
                && !bytes[measurement.end..f.term_start].contains(&b',')
                && !words_between(measurement.end, f.term_start)
                    .iter()
                    .any(|w| ["with", "and", "without", "in", "at"].contains(&w.as_str()))
        });
        let preceding = (first..out.len())
            .rev()
            .find(|&i| out[i].term_end <= measurement.start);
        // "dilated to 14 mm", "measuring up to 9 mm": the size completes the
        // finding just before it, whatever follows.
        let completes = preceding.filter(|&i| {
            let gap = &text[out[i].term_end..measurement.start];
            word_count(gap.as_bytes()) <= 3
                && gap.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| {
                    [
                        "to",
                        "measuring",
                        "measures",
                        "measure",
                        "measured",
                        "of",
                        "spanning",
                        "spans",
                        "extend",
                        "extends",
                        "extending",
                    ]
                    .contains(&w)
                })
        });
        // A size before any finding, in the same clause: "a 2.6 cm
        // fluid-attenuation cyst", not "the duct measures 5 mm, and no stone".
        let following = (first..out.len())
            .find(|&i| out[i].term_start >= measurement.end)
            .filter(|&i| {
                out[i].assertion != Assertion::Absent
                    && !bytes[measurement.end..out[i].term_start].contains(&b';')
            });
        // "The endometrium is thickened and heterogeneous, measuring 9 mm":
        // of coordinated predicates, the size is the one that has a size.
        let sized = |i: usize| {
            let concept = concepts[i];
            lexicon
                .descriptors
                .iter()
                .any(|row| row.axis == crate::Axis::Size && row.finding == Some(concept))
        };
        let coordinated = |i: usize| {
            let joined = i > first
                && words_between(out[i - 1].term_end, out[i].term_start)
                    .iter()
                    .all(|w| w == "and");
            if joined && !sized(i) && sized(i - 1) {
                i - 1
            } else {
                i
            }
        };
        let (completes, preceding) = (completes.map(coordinated), preceding.map(coordinated));
        if let Some(i) = completes.or(modifies).or(preceding).or(following) {
            out[i].measurements.push(measurement);
        }
    }
    crate::grammar::link_suggestions(text, &mut out[first..], first);
}

/// Whether `text[start..end]` is nothing but findings joined by "or"
/// ("Pleural effusions or pneumothorax."): a verbless "or" list asserts
/// nothing on its own — affirmative lists join with "and" — so after a
/// negated sentence it continues that negation (a dictated "no" was lost).
fn is_bare_alternatives(
    text: &str,
    start: usize,
    end: usize,
    mentions: &[Mention],
    cues: &[CueHit],
) -> bool {
    if mentions.len() < 2 || !cues.iter().any(|c| c.cue.alternative) {
        return false;
    }
    let mut at = start;
    let mut gaps = mentions
        .iter()
        .map(|m| {
            let gap = (at, m.start);
            at = m.end;
            gap
        })
        .collect::<Vec<_>>();
    gaps.push((at, end));
    gaps.iter().all(|&(from, to)| {
        text[from..to]
            .split(|c: char| !c.is_ascii_alphanumeric())
            .all(|word| word.is_empty() || word.eq_ignore_ascii_case("or"))
    })
}

/// The index of the mention nearest to `s..e` (0 when inside it), ties to
/// the earlier one.
fn nearest_mention(mentions: &[Mention], s: usize, e: usize) -> Option<usize> {
    mentions
        .iter()
        .enumerate()
        .min_by_key(|(_, m)| {
            if e <= m.start {
                m.start - e
            } else {
                s.saturating_sub(m.end)
            }
        })
        .map(|(index, _)| index)
}

/// How many words may stand between a size and the finding it modifies
/// ("8 mm noncalcified nodule", "4 mm of leftward midline shift", "8 mm
/// high-grade partial-thickness articular surface tear").
const PRE_SIZE_WORDS: usize = 6;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Laterality;

    fn terms(sentence: &str) -> Vec<&str> {
        let lexicon = crate::shared_lexicon();
        let mut scratch = Scratch::default();
        scan(&lexicon.words, sentence, 0, sentence.len(), &mut scratch);
        scratch
            .mentions
            .iter()
            .map(|m| &sentence[m.start..m.end])
            .collect()
    }

    #[test]
    fn a_list_gives_one_mention_per_finding() {
        assert_eq!(
            terms("No focal consolidation, effusion, or pneumothorax."),
            ["consolidation", "effusion", "pneumothorax"]
        );
    }

    #[test]
    fn longest_synonym_wins() {
        assert_eq!(terms("Small left pleural effusion."), ["pleural effusion"]);
        assert_eq!(terms("Pericardial effusion."), ["Pericardial effusion"]);
    }

    #[test]
    fn terms_match_whole_words_only() {
        assert_eq!(
            terms("Hydropneumothoraxes? No: nonmassive."),
            Vec::<&str>::new()
        );
        assert_eq!(terms("which"), Vec::<&str>::new());
        assert_eq!(terms("PNEUMOTHORAX"), ["PNEUMOTHORAX"]);
    }

    #[test]
    fn gapped_synonym_spans_its_gap() {
        assert_eq!(
            terms("The heart is mildly enlarged."),
            ["heart is mildly enlarged"]
        );
        assert_eq!(terms("The heart is normal in size."), Vec::<&str>::new());
        assert_eq!(
            terms("Heart size is normal, lungs enlarged."),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn a_side_the_term_names_is_the_findings_own() {
        let side = |text: &str| {
            let extraction = crate::extract(text, crate::shared_lexicon());
            extraction.findings.first().and_then(|f| f.laterality)
        };
        assert_eq!(
            side("Mild dextroscoliosis of the thoracic spine."),
            Some(Laterality::Right)
        );
        assert_eq!(
            side("Levoscoliosis of the lumbar spine."),
            Some(Laterality::Left)
        );
        assert_eq!(
            side("Dextroconvex scoliotic curvature."),
            Some(Laterality::Right)
        );
        // The term's own side wins over a side named elsewhere in the sentence.
        assert_eq!(
            side("Levoscoliosis, with the right hip prosthesis in place."),
            Some(Laterality::Left)
        );
        assert_eq!(side("Scoliosis of the thoracic spine."), None);
    }
}

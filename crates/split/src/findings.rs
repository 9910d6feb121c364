//! Finding mentions: every lexicon term in a sentence becomes one finding
//! ("No focal consolidation, effusion, or pneumothorax" gives three), judged
//! by [`crate::context`], with its body sites and the sentence's sizes.

use aho_corasick::AhoCorasick;

use crate::context::cues::{CueHit, abbreviates_a_side, oriented};
use crate::context::judge::judge;
use crate::lexicon::{Entry, Lexicon, Words};
use crate::sentence::{Mention, Scratch, SentenceSpan};
use crate::words::{is_word_byte, is_word_edge, select_read_words, select_words, word_count};
use crate::{Assertion, BodySite, Change, Finding, Measurement};

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
    select_read_words(&words.automaton, text, start, end, |s, e, pattern| {
        let entry = &words.entries[pattern];
        let mention = mention(entry, text, s, e, end);
        // The head of a gapped synonym whose tail does not follow, and that
        // is nothing else, gives way to a shorter match.
        if mention.is_none()
            && entry.cue.is_none()
            && entry.site.is_none()
            && entry.descriptor.is_none()
        {
            return false;
        }
        // A place ending in an adjective that opens a longer finding gives
        // way to a shorter place: "axillary nodal disease" is the axilla's
        // nodal disease, not the site "axillary nodal" and "disease" (a
        // place ending in a noun keeps it: "gallbladder wall thickening").
        if mention.is_none()
            && entry.cue.is_none()
            && entry.descriptor.is_none()
            && let Some(last) = text[s..e].rfind(' ').map(|i| s + i + 1)
            && crate::grammar::is_adjective(&text[last..e])
            && crate::words::match_runs_past(&words.automaton, text, last, end, e, |p| {
                !words.entries[p].readings.is_empty()
            })
        {
            return false;
        }
        if let Some(cue) = entry.cue
            && !(cue.change.is_some() && names_a_level(text, s, e, start, end))
            && (!cue.abbreviated || abbreviates_a_side(text.as_bytes(), s, e))
        {
            cues.push(CueHit {
                start: s,
                end: e,
                cue: oriented(cue, text.as_bytes(), s, e),
            });
        }
        if let Some(site) = entry.site {
            sites.push((s, e, site));
        }
        // "non-dilated", "non-avid": the prefix denies the descriptor, so
        // it neither qualifies a head nor makes an organ's finding.
        if let Some(row) = entry.descriptor
            && !denied_by_prefix(text, s)
        {
            descriptors.push((s, e, row));
        }
        if let Some(mention) = mention
            && mentions.last().is_none_or(|last| s >= last.end)
        {
            mentions.push(mention);
        }
        true
    });
}

/// Whether the change word at `s..e` ("increased", "decreased") describes
/// a level rather than a change since a prior study: "increased cortical
/// echogenicity", "decreased wall enhancement", "foci of increased uptake".
/// A sentence that compares with a prior keeps the change.
fn names_a_level(text: &str, s: usize, e: usize, start: usize, end: usize) -> bool {
    let word = &text[s..e];
    if !LEVEL_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) {
        return false;
    }
    // The level's noun follows in its own phrase: "decreased, with uptake
    // less than blood pool" is a change and then a level.
    let phrase_end = text[e..end].find([',', ';', '(']).map_or(end, |i| e + i);
    let follows_a_quantity = text[e..phrase_end]
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(LEVEL_GAP_WORDS + 1)
        .any(|w| QUANTITY_NOUNS.iter().any(|q| q.eq_ignore_ascii_case(w)));
    let compares = text[start..end]
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| COMPARISON_WORDS.iter().any(|c| c.eq_ignore_ascii_case(w)));
    follows_a_quantity && !compares
}

/// Change words that also grade a level.
const LEVEL_WORDS: [&str; 4] = ["increased", "decreased", "diminished", "reduced"];

/// Nouns of a measured level (signal, uptake, echogenicity ...).
const QUANTITY_NOUNS: [&str; 15] = [
    "echogenicity",
    "uptake",
    "enhancement",
    "signal",
    "attenuation",
    "density",
    "vascularity",
    "flow",
    "activity",
    "accumulation",
    "intensity",
    "perfusion",
    "avidity",
    "echotexture",
    "tracer",
];

/// How many words may stand between the level word and its noun
/// ("increased bone marrow uptake").
const LEVEL_GAP_WORDS: usize = 2;

/// Words of a comparison with a prior study.
const COMPARISON_WORDS: [&str; 8] = [
    "prior",
    "previous",
    "previously",
    "since",
    "compared",
    "comparison",
    "interval",
    "baseline",
];

/// Whether the word at `s` carries a "non-" or "non " prefix.
fn denied_by_prefix(text: &str, s: usize) -> bool {
    text.get(..s).is_some_and(|before| {
        let before = before.as_bytes();
        let n = before.len();
        n >= 4
            && matches!(before[n - 1], b'-' | b' ')
            && before[n - 4..n - 1].eq_ignore_ascii_case(b"non")
            && (n == 4 || !is_word_byte(before[n - 5]))
    })
}

/// The finding an entry names at `s..e`, if any: a gapped reading whose
/// tail follows wins over a plain one.
fn mention(entry: &Entry, text: &str, s: usize, e: usize, end: usize) -> Option<Mention> {
    // The first part of a hyphenated modifier ("fluid-attenuation cyst",
    // "mass-like enhancement", "gas-filled loops") names no finding: the
    // compound qualifies what follows it.
    let rest = &text.as_bytes()[e..end];
    if rest.first() == Some(&b'-') && rest.get(1).is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    // The word starts a tail may take, read once for all the readings
    // ("heart ... enlarged", "heart ... large", ...).
    let mut starts = [0usize; MAX_GAP_WORDS + 1];
    let mut count = None;
    let gapped = entry.readings.iter().find_map(|reading| {
        let tail = reading.tail.as_deref()?;
        let count = *count.get_or_insert_with(|| tail_starts(text, e, end, &mut starts));
        tail_at(text, &starts[..count], end, tail).map(|(ts, te)| Mention {
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

/// The first of two modifiers sharing one head is a finding of its own:
/// "no pleural or pericardial effusion" denies a pleural effusion too, and
/// "canal or foraminal stenosis" names two stenoses. Read when the word
/// before "or"/"and" with the head of the term after it ("pleural effusion")
/// is itself a term of the lexicon; the finding's words are that modifier.
fn elided_heads(words: &Words, text: &str, start: usize, scratch: &mut Scratch) {
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < scratch.mentions.len() {
        let mention = &scratch.mentions[index];
        index += 1;
        let term = &text[mention.start..mention.end];
        let Some(space) = term.find(' ') else {
            continue;
        };
        // A gapped term, or one read from an organ sub-header before the
        // sentence's body, has no modifier before it to share.
        if mention.focus_start != mention.start || mention.start < start {
            continue;
        }
        let before = text[start..mention.start].trim_end_matches(' ');
        let Some(before) = ["or", "and", "and/or"].iter().find_map(|c| {
            before
                .strip_suffix(c)
                .filter(|b| b.ends_with(' '))
                .map(|b| b.trim_end_matches(' '))
        }) else {
            continue;
        };
        let modifier_start = before
            .bytes()
            .rposition(|b| !b.is_ascii_alphabetic())
            .map_or(0, |at| at + 1);
        let modifier = &before[modifier_start..];
        let modifier_start = start + modifier_start;
        let modifier_end = modifier_start + modifier.len();
        let taken = scratch
            .mentions
            .iter()
            .any(|m| m.start < modifier_end && m.end > modifier_start);
        if modifier.len() < MIN_MODIFIER_BYTES
            || taken
            || modifier_start > start && is_word_byte(bytes[modifier_start - 1])
        {
            continue;
        }
        // A place of its own ("pleural", "pericardial"), not a kind of the
        // one finding ("paraseptal and centrilobular emphysema"): the scan
        // has read its sites.
        let names_a_place = scratch
            .sites
            .iter()
            .any(|&(s, e, _)| s == modifier_start && e == modifier_end);
        if !names_a_place {
            continue;
        }
        // Rare (a few per report at most): the one allocation is fine.
        let candidate = format!("{modifier}{}", &term[space..]);
        let mut concept = None;
        select_words(
            &words.automaton,
            &candidate,
            0,
            candidate.len(),
            |s, e, pattern| {
                if s == 0 && e == candidate.len() {
                    concept = words.entries[pattern]
                        .readings
                        .iter()
                        .find(|reading| reading.tail.is_none())
                        .map(|reading| reading.concept);
                }
            },
        );
        let own_concept = scratch.mentions[index - 1].concept;
        if let Some(concept) = concept.filter(|&c| c != own_concept) {
            let at = scratch
                .mentions
                .partition_point(|m| m.start < modifier_start);
            scratch.mentions.insert(
                at,
                Mention {
                    start: modifier_start,
                    end: modifier_end,
                    focus_start: modifier_start,
                    focus_end: modifier_end,
                    concept,
                },
            );
            index += 1;
        }
    }
}

/// The shortest modifier read as an elided term ("pleural", "canal").
const MIN_MODIFIER_BYTES: usize = 4;

/// An organ sub-header can be the head of a gapped synonym whose tail opens
/// the body: "HEART: Mildly enlarged." reads as `heart ... enlarged`. Skipped
/// when the body names the finding itself ("HEART: Enlarged heart").
fn header_mention(words: &Words, text: &str, sentence: SentenceSpan, mentions: &mut Vec<Mention>) {
    let mut starts = [0usize; MAX_GAP_WORDS + 1];
    let count = tail_starts(text, sentence.body_start, sentence.end, &mut starts);
    let starts = &starts[..count];
    let found = first_in_header(words, text, sentence, |s, _, entry| {
        entry.readings.iter().find_map(|reading| {
            let tail = reading.tail.as_deref()?;
            tail_at(text, starts, sentence.end, tail).map(|(ts, te)| Mention {
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

/// A sub-header that names a finding, over a body that names none, is that
/// finding when the body only denies it ("ASCITES: None.", "Free fluid:
/// Absent.": the negation reaches back to it) or only measures it or says
/// how it changed ("TL1 segment 7 liver metastasis: 32 mm, decreased."). A
/// measured one must head the label ("Tumour height: 7 cm from the verge"
/// measures the tumour's place) and its body say nothing normal ("Lymph
/// nodes: 8 mm, normal.").
fn header_finding(
    lexicon: &Lexicon,
    text: &str,
    sentence: SentenceSpan,
    measured: bool,
    scratch: &mut Scratch,
) {
    if !scratch.mentions.is_empty() {
        return;
    }
    let denies = scratch.cues.iter().any(|c| {
        matches!(
            c.cue.polarity,
            Some((_, crate::context::cues::Polarity::Negate))
        )
    });
    let normal = || {
        scratch
            .descriptors
            .iter()
            .any(|&(_, _, row)| lexicon.descriptors[row as usize].axis == crate::Axis::Normal)
    };
    let described =
        !denies && (measured || scratch.cues.iter().any(|c| c.cue.change.is_some())) && !normal();
    if !(denies || described) {
        return;
    }
    let label_end = text[..sentence.body_start]
        .trim_end_matches(|c: char| c == ':' || c.is_whitespace())
        .len();
    let found = first_in_header(&lexicon.words, text, sentence, |s, e, entry| {
        mention(entry, text, s, e, sentence.body_start)
    })
    .filter(|m| denies || m.end == label_end);
    scratch.mentions.extend(found);
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

/// The starts of the words within [`MAX_GAP_WORDS`] after `from` and
/// before a clause mark, into `out`; how many.
fn tail_starts(text: &str, from: usize, end: usize, out: &mut [usize; MAX_GAP_WORDS + 1]) -> usize {
    let bytes = text.as_bytes();
    let mut at = from;
    let mut count = 0;
    while at < end && count < out.len() {
        match bytes[at] {
            b'.' | b',' | b';' | b':' | b'(' | b')' => break,
            b if is_word_byte(b) => {
                out[count] = at;
                count += 1;
                while at < end && is_word_byte(bytes[at]) {
                    at += 1;
                }
            }
            _ => at += 1,
        }
    }
    count
}

/// The first of `starts` where `tail` (lower case) stands as whole words,
/// ending by `end`.
fn tail_at(text: &str, starts: &[usize], end: usize, tail: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    starts.iter().find_map(|&at| {
        let tail_end = at + tail.len();
        (tail_end <= end
            && bytes[at..tail_end].eq_ignore_ascii_case(tail.as_bytes())
            && is_word_edge(bytes, tail_end, false))
        .then_some((at, tail_end))
    })
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
        header_finding(lexicon, text, sentence, !measurements.is_empty(), scratch);
    }
    // The organ sub-header ("LIVER: simple cyst") names the site of findings
    // that name none themselves.
    let header_site = first_in_header(&lexicon.words, text, sentence, |s, e, entry| {
        entry.site.map(|concept| (s, e, concept))
    });
    crate::grammar::organ_descriptors(text, sentence, lexicon, header_site.is_some(), scratch);
    crate::grammar::drop_normal_heads(text, lexicon, scratch);
    crate::grammar::drop_references(text, start, end, scratch);
    crate::grammar::merge_qualifying_adjectives(text, end, scratch);
    elided_heads(&lexicon.words, text, start, scratch);
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
        // Cues inside the focus itself are part of the term, not context; so
        // is one that opens a gapped synonym ("absence of ... flow"), where a
        // cue in the gap still counts ("heart is not enlarged").
        let cues: &[CueHit] = &scratch.cues;
        let own_cue = |c: &CueHit| {
            (c.start < mention.focus_end && c.end > mention.focus_start)
                || (c.start == mention.start && c.end <= mention.focus_start)
        };
        let judgement = if cues.iter().any(own_cue) {
            let outside: Vec<CueHit> = cues.iter().filter(|c| !own_cue(c)).copied().collect();
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
            .find_map(|c| c.cue.side.filter(|_| !c.cue.direction))
            // So is a side before it in the sub-header it heads: "Right
            // renal cyst: 14 mm, unchanged." (the body's cues start after the
            // colon).
            .or_else(|| {
                (mention.end <= sentence.body_start)
                    .then(|| crate::side_word(&text[sentence.start..mention.start]))
                    .flatten()
            });
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
        // A word hyphened to the term is part of it: "Iodine-avid",
        // "PSMA-avid".
        let term_start =
            hyphened_word_before(text, sentence.body_start.max(sentence.start), term_start);
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
            // A denied finding did not change: "no new calcifications",
            // "without washout ... is unchanged"; only "resolved" is a change
            // of something now absent.
            change: judgement
                .change
                .filter(|&c| judgement.assertion != Assertion::Absent || c == Change::Resolved),
            laterality: if own_side.or(judgement.laterality).is_none()
                || names_cardiac_anatomy(&text[term_start..mention.end])
                || (names_a_midline_structure(&text[term_start..mention.end], &body_site)
                    && !judgement.directed_shift
                    && !side_modifies(
                        text,
                        cues,
                        term_start,
                        mention.end,
                        mentions.get(index + 1).map_or(end, |m| m.start),
                    )) {
                None
            } else {
                own_side.or(judgement.laterality).map(|side| {
                    let next = mentions.get(index + 1).map_or(end, |m| m.start);
                    both_sides_in_place(text, cues, mention.focus_end, next).unwrap_or(side)
                })
            },
            body_site,
            measurements: Vec::new(),
            descriptors,
            suggests: Vec::new(),
        });
        concepts.push(mention.concept);
    }
    drop_normal_when_present(out, concepts, first);
    if first > 0
        && out[first - 1].section == sentence.section
        && out[first - 1].assertion == Assertion::Absent
        && is_bare_alternatives(text, start, end, mentions, &scratch.cues)
    {
        for finding in &mut out[first..] {
            finding.assertion = Assertion::Absent;
        }
    }
    let mut prior_sizes = Vec::new();
    for measurement in measurements.drain(..) {
        let (findings, sites) = (&out[first..], &scratch.sites);
        if let Some(i) = measured_finding(
            text,
            sentence.start,
            lexicon,
            findings,
            &concepts[first..],
            sites,
            &measurement,
        ) && !(out[first + i].assertion == Assertion::Absent
            && measurement.start >= out[first + i].term_end)
        {
            // A denied finding has no size after it: "no embryo, mean sac
            // diameter 18 mm" measures the sac. One gone keeps the size it
            // had: "the 5 mm nodule has resolved".
            out[first + i].measurements.push(measurement);
        } else if is_prior_size(text, sentence.start, &measurement) {
            prior_sizes.push(measurement);
        }
    }
    fold_group_members(text, out, concepts, first);
    compare_with_prior_sizes(&mut out[first..], &prior_sizes);
    compare_with_prior_severity(text, sentence.end, &mut out[first..]);
    merge_containers(text, out, concepts, first);
    subject_takes_clause_change(text, &scratch.cues, &mut out[first..]);
    crate::grammar::link_suggestions(text, &mut out[first..], first);
}

/// Concepts that are abnormal only when denied: "no intrauterine
/// pregnancy" is a finding (in a suspected ectopic pregnancy), "a live
/// intrauterine pregnancy" the normal state; a corpus luteum and a dominant
/// follicle are the normal ovary of the cycle; a yolk sac and an embryo are
/// findings when absent ("a gestational sac with no embryo").
const NORMAL_WHEN_PRESENT: [&str; 5] = [
    "finding-intrauterine-pregnancy",
    "finding-corpus-luteum",
    "finding-dominant-follicle",
    "finding-yolk-sac",
    "finding-embryo",
];

/// Removes the findings of this sentence (from `first`) that state one of
/// [`NORMAL_WHEN_PRESENT`] as seen or possible.
fn drop_normal_when_present(out: &mut Vec<Finding<'_>>, concepts: &mut Vec<u32>, first: usize) {
    let mut i = first;
    while i < out.len() {
        let normal = out[i].assertion != Assertion::Absent
            && out[i]
                .code
                .is_some_and(|code| NORMAL_WHEN_PRESENT.contains(&code.code.as_str()));
        if normal {
            out.remove(i);
            concepts.remove(i);
        } else {
            i += 1;
        }
    }
}

/// Copulas and auxiliaries before a clause-final change ("are unchanged",
/// "has progressed").
const CHANGE_VERBS: [&str; 9] = [
    "is", "are", "has", "have", "remains", "remain", "appears", "appear", "been",
];

/// A change stated at the end of a sentence, after all its findings ("X with
/// A and B are stable", "a 1.1 cm lesion ..., consistent with hemangioma, is
/// unchanged", "narrowing with osteophytes, progressed since the prior
/// exam"), is said of the sentence's subject: the first finding, and those
/// joined to it by "and". The nearest finding already has it from the
/// context; what a "with" phrase or a link adds keeps its own reading.
fn subject_takes_clause_change(text: &str, cues: &[CueHit], findings: &mut [Finding<'_>]) {
    let Some(last) = findings.last() else {
        return;
    };
    if findings.len() < 2 {
        return;
    }
    let Some((hit, change)) = cues
        .iter()
        .filter(|hit| hit.start >= last.term_end)
        .find_map(|hit| hit.cue.change.map(|change| (hit, change)))
    else {
        return;
    };
    let lower_words = |from: usize, to: usize| {
        text[from..to]
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
    };
    let lead = &text[last.term_end..hit.start];
    let lead_words = lower_words(last.term_end, hit.start);
    // "B that have increased": a relative clause is the last finding's own.
    let relative = lead_words
        .iter()
        .any(|w| ["that", "which", "who"].contains(&w.as_str()));
    let predicate = !relative
        && (lead.trim_start().starts_with(',')
            || lead_words
                .iter()
                .any(|w| CHANGE_VERBS.contains(&w.as_str())));
    let one_clause = !text[findings[0].term_start..hit.start].contains(';')
        && !text[findings[0].term_start..hit.start].contains(", and ");
    if !predicate || !one_clause {
        return;
    }
    let mut subject_end = findings.len() - 1;
    for k in 1..findings.len() - 1 {
        let joined = lower_words(findings[k - 1].term_end, findings[k].term_start)
            .iter()
            .all(|w| w == "and");
        if !joined {
            subject_end = k;
            break;
        }
    }
    for finding in &mut findings[..subject_end] {
        if finding.assertion != Assertion::Absent {
            finding.change = finding.change.or(Some(change));
        }
    }
}

/// Words right before a size that make it the size on a prior study
/// ("previously 5 mm", "from 1.5 cm", "was 9 mm", "previously measuring
/// 5 mm"), or after it ("1.5 cm on the prior study"). Unlike the priors [`measured_finding`] gives to no one, a size
/// "compared with" or "versus" may be the other side's, so it is no prior
/// size to compare with.
fn is_prior_size(text: &str, sentence_start: usize, measurement: &Measurement<'_>) -> bool {
    let mut before = text[sentence_start..measurement.start]
        .rsplit(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase);
    let last = before.next().unwrap_or_default();
    let prior_word = |w: &str| ["previously", "formerly", "prior", "was", "from"].contains(&w);
    let after = text[measurement.end..].trim_start().as_bytes();
    let on_a_prior = ["on the prior", "on prior", "on the previous", "on previous"]
        .iter()
        .any(|p| {
            after
                .get(..p.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(p.as_bytes()))
        });
    on_a_prior
        || prior_word(&last)
        || (["measuring", "measured", "measure"].contains(&last.as_str())
            && before.next().is_some_and(|w| prior_word(&w)))
}

/// A finding measured now and on a prior study in one sentence, with no
/// stated change, changed as the two sizes say: "the nodule previously
/// measuring 5 mm now measures 8 mm" increased, "measures 12 mm,
/// previously 18 mm" decreased. The prior size belongs to the finding whose
/// current size stands nearest to it.
fn compare_with_prior_sizes(findings: &mut [Finding<'_>], prior_sizes: &[Measurement<'_>]) {
    for prior in prior_sizes {
        let distance = |m: &Measurement<'_>| {
            if m.end <= prior.start {
                prior.start - m.end
            } else {
                m.start.saturating_sub(prior.end)
            }
        };
        let nearest = findings
            .iter_mut()
            .filter(|f| f.assertion != Assertion::Absent)
            .filter_map(|f| {
                let closest = f.measurements.iter().map(distance).min()?;
                Some((closest, f))
            })
            .min_by_key(|(closest, _)| *closest);
        if let Some((_, finding)) = nearest
            && finding.change.is_none()
        {
            let now = finding
                .measurements
                .iter()
                .map(|m| m.max_mm)
                .fold(0.0, f64::max);
            // Within a twentieth (or half a millimetre) is a remeasurement,
            // not a change: "24 mm (previously 23 mm, essentially unchanged)".
            let within_error = (now - prior.max_mm).abs()
                <= f64::max(SAME_SIZE_MM, prior.max_mm * SAME_SIZE_FRACTION);
            finding.change = Some(if within_error {
                Change::Stable
            } else if now > prior.max_mm {
                Change::Increased
            } else {
                Change::Decreased
            });
        }
    }
}

/// Severity words by rank: trace to mild, moderate, large to severe. Words
/// of one rank restate each other ("small" and "mild" effusion); a finding
/// graded now and on a prior study ("moderate ascites, previously small")
/// changed as the two ranks say.
const SEVERITY_RANKS: [&[&str]; 3] = [
    &["trace", "tiny", "minimal", "small", "mild"],
    &["moderate"],
    &["large", "severe", "marked", "massive", "extensive"],
];

/// The rank of a severity word ([`SEVERITY_RANKS`]), if it is one.
pub(crate) fn severity_rank(word: &str) -> Option<usize> {
    SEVERITY_RANKS
        .iter()
        .position(|rank| rank.iter().any(|w| w.eq_ignore_ascii_case(word)))
}

/// A finding graded by severity with no stated change, and the grade of the
/// prior study right after it ("Moderate ascites, previously small.", "large
/// effusion, was small"): increased or decreased as the grades rank.
fn compare_with_prior_severity(text: &str, sentence_end: usize, findings: &mut [Finding<'_>]) {
    for finding in findings.iter_mut() {
        if finding.change.is_some() || finding.assertion == Assertion::Absent {
            continue;
        }
        let Some(now) = finding
            .term
            .split(|c: char| !c.is_ascii_alphabetic())
            .find_map(severity_rank)
        else {
            continue;
        };
        let mut after = text[finding.term_end..sentence_end]
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| !w.is_empty());
        let prior_word = after.next().is_some_and(|w| {
            ["previously", "formerly", "was", "were"]
                .iter()
                .any(|p| w.eq_ignore_ascii_case(p))
        });
        let Some(before) = after.next().filter(|_| prior_word).and_then(severity_rank) else {
            continue;
        };
        finding.change = match now.cmp(&before) {
            std::cmp::Ordering::Greater => Some(Change::Increased),
            std::cmp::Ordering::Less => Some(Change::Decreased),
            std::cmp::Ordering::Equal => Some(Change::Stable),
        };
    }
}

/// How close a size and the prior size it is compared with are one size
/// measured twice.
const SAME_SIZE_MM: f64 = 0.5;
const SAME_SIZE_FRACTION: f64 = 0.05;

/// Heads that name the members of an enlarged-node finding.
const NODE_HEADS: [&str; 2] = ["node", "nodes"];

/// Heads of findings that are a group of enlarged nodes.
const NODE_GROUP_HEADS: [&str; 4] = ["lymphadenopathy", "adenopathy", "nodes", "node"];

/// Words that open a group's member after its comma ("cholelithiasis,
/// largest stone 1.2 cm", "fibroids, the dominant one ...").
const GROUP_MEMBER_OPENERS: [&str; 5] = ["the", "with", "largest", "dominant", "biggest"];

/// Members named by another noun than their group's: a stone of a
/// lithiasis, a fibroid of leiomyomas (by the group head's ending).
const MEMBERS_OF_GROUPS: [(&[&str], &[&str]); 2] = [
    (&["stone", "stones", "calculus", "calculi"], &["lithiasis"]),
    (
        &["fibroid", "fibroids"],
        &["leiomyoma", "leiomyomas", "myoma", "myomas"],
    ),
];

/// Folds a member named after a group finding into the group: "multiple
/// fibroids, the dominant fundal fibroid measuring 5.2 cm", "hilar
/// lymphadenopathy, with nodes measuring up to 2.2 cm", "mediastinal
/// lymphadenopathy, the subcarinal node measuring 1.8 cm". The member is the
/// group's largest or index instance, not another finding: its size is the
/// group's, and it is dropped. A member is the same concept or head noun as
/// the group, or a node of an adenopathy, set off by a comma and "the" or
/// "with".
fn fold_group_members(
    text: &str,
    out: &mut Vec<Finding<'_>>,
    concepts: &mut Vec<u32>,
    first: usize,
) {
    let mut j = first + 1;
    while j < out.len() {
        let (group, member) = (&out[j - 1], &out[j]);
        // Terms that overlap (a descriptor read for both) are no group and
        // member.
        let gap = text
            .get(group.term_end..member.term_start)
            .unwrap_or_default()
            .trim_start();
        // Most neighbours are not set off by a comma: no work for them.
        if !gap.starts_with(',') {
            j += 1;
            continue;
        }
        let after_comma = gap.strip_prefix(',').map(str::trim_start).unwrap_or("");
        // The opener may be the member's own first word ("largest stone").
        let opened = if after_comma.is_empty() {
            member.term
        } else {
            after_comma
        };
        let opener = opened
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let set_off = gap.starts_with(',')
            && GROUP_MEMBER_OPENERS.contains(&opener.as_str())
            && !after_comma.contains([',', ';', '.', '(', ')'])
            && word_count(after_comma.as_bytes()) <= MAX_GAP_WORDS;
        let lower = |term: &str| crate::words::last_word(term).to_ascii_lowercase();
        let singular = |term: &str| {
            let head = lower(term);
            head.strip_suffix('s').map_or(head.clone(), str::to_owned)
        };
        let is_member = concepts[j] == concepts[j - 1]
            || singular(member.term) == singular(group.term)
            || (NODE_HEADS.contains(&lower(member.term).as_str())
                && NODE_GROUP_HEADS.contains(&lower(group.term).as_str()))
            || MEMBERS_OF_GROUPS.iter().any(|(members, groups)| {
                members.contains(&lower(member.term).as_str())
                    && groups.iter().any(|g| lower(group.term).ends_with(g))
            });
        if set_off && is_member && group.assertion == member.assertion {
            let member = out.remove(j);
            concepts.remove(j);
            out[j - 1].measurements.extend(member.measurements);
        } else {
            j += 1;
        }
    }
}

/// A finding placed in sites of both sides is bilateral: "perfusion defects
/// in the right upper lobe, right lower lobe and left lower lobe". Reads the
/// sides after the finding up to the next finding (`to`) or a sentence
/// mark; a side that opens the next finding's phrase ("..., left lower lobe
/// atelectasis") is that finding's.
fn both_sides_in_place(
    text: &str,
    cues: &[CueHit],
    from: usize,
    to: usize,
) -> Option<crate::Laterality> {
    use crate::Laterality::{Bilateral, Left, Right};
    let bytes = text.as_bytes();
    // A finding that labels its line ("Two pulmonary nodules: 6 mm in the
    // left upper lobe and 4 mm in the right middle lobe") is placed by the
    // line after its colon.
    let from = match bytes[from..to]
        .iter()
        .position(|b| !b.is_ascii_whitespace())
    {
        Some(i) if bytes[from + i] == b':' => from + i + 1,
        _ => from,
    };
    let stop = bytes[from..to]
        .iter()
        .position(|&b| matches!(b, b';' | b'.' | b':' | b'('))
        .map_or(to, |i| from + i);
    let (mut left, mut right) = (false, false);
    let sides = cues
        .iter()
        .filter(|hit| hit.start >= from && hit.end <= stop && !hit.cue.direction)
        .filter(|hit| {
            stop < to || {
                let between = &bytes[hit.end..to];
                between.contains(&b',') || word_count(between) > 3
            }
        })
        .filter_map(|hit| hit.cue.side);
    for side in sides {
        match side {
            Left => left = true,
            Right => right = true,
            Bilateral => (left, right) = (true, true),
        }
    }
    (left && right).then_some(Bilateral)
}

/// Cardiac chambers and coronary arteries are named with a side ("right
/// heart strain", "left ventricular hypertrophy", "Left circumflex:"), which
/// is no laterality: a finding named by one has no side, not even the
/// sentence's ("bilateral pulmonary emboli with right heart strain"), and a
/// sub-header naming one gives none.
pub(crate) fn names_cardiac_anatomy(term: &str) -> bool {
    const CHAMBERS: [&str; 11] = [
        "right heart",
        "left heart",
        "right ventric",
        "left ventric",
        "right atri",
        "left atri",
        "left main",
        "left circumflex",
        "left anterior descending",
        "left coronary",
        "right coronary",
    ];
    // Compared in place at each word start: a lower-case copy and a
    // substring searcher per chamber cost a tenth of a report's extraction.
    let bytes = term.as_bytes();
    (0..bytes.len())
        .filter(|&at| at == 0 || !bytes[at - 1].is_ascii_alphanumeric())
        .any(|at| {
            CHAMBERS.iter().any(|chamber| {
                bytes[at..]
                    .get(..chamber.len())
                    .is_some_and(|word| word.eq_ignore_ascii_case(chamber.as_bytes()))
            })
        })
}

/// Unpaired structures in the midline (a disc, the spinal canal, the
/// aorta, the mediastinum...): a finding of one has no side unless a side
/// modifies it ("left paracentral disc extrusion"), not the side of a
/// neighbour in its sentence ("bilateral facet arthropathy with central
/// canal stenosis", "bilateral emboli with a saddle embolus").
fn names_a_midline_structure(term: &str, sites: &[BodySite<'_>]) -> bool {
    const IN_TERM: [&str; 10] = [
        "disc",
        "disk",
        "canal",
        "thecal",
        "listhesis",
        "saddle",
        "midline",
        "mediastin",
        "aort",
        "intimal flap",
    ];
    const IN_SITE: [&str; 7] = [
        "mediastin",
        "aort",
        "thecal",
        "central canal",
        "spinal canal",
        "disc",
        "disk",
    ];
    static MATCHERS: std::sync::OnceLock<Option<(AhoCorasick, AhoCorasick)>> =
        std::sync::OnceLock::new();
    let Some((in_term, in_site)) = MATCHERS
        .get_or_init(|| {
            let build = |parts: &[&str]| {
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(parts)
                    .ok()
            };
            Some((build(&IN_TERM)?, build(&IN_SITE)?))
        })
        .as_ref()
    else {
        return false;
    };
    in_term.is_match(term) || sites.iter().any(|site| in_site.is_match(site.text))
}

/// How many words before a term a side still modifies it ("left
/// paracentral disc extrusion").
const SIDE_MODIFIER_WORDS: usize = 3;

/// Whether a side is named inside `text[start..end]`, modifies it from at
/// most [`SIDE_MODIFIER_WORDS`] words before, or places it after it and
/// before the next mention (`next`), in its clause: "left paracentral disc
/// extrusion", "disc extrusion in the right lateral recess".
fn side_modifies(text: &str, cues: &[CueHit], start: usize, end: usize, next: usize) -> bool {
    let bytes = text.as_bytes();
    let in_clause = |from: usize, to: usize| {
        !bytes[from..to]
            .iter()
            .any(|&b| matches!(b, b',' | b';' | b'.' | b':'))
    };
    cues.iter()
        .filter(|hit| hit.cue.side.is_some() && !hit.cue.direction)
        .any(|hit| {
            (hit.start >= start && hit.end <= end)
                || (hit.end <= start
                    && word_count(&bytes[hit.end..start]) < SIDE_MODIFIER_WORDS
                    && in_clause(hit.end, start))
                || (hit.start >= end && hit.end <= next && in_clause(end, hit.start))
        })
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

/// Verbs that introduce a size: "measuring 4 cm", "dilated to 14 mm".
const MEASURING_WORDS: [&str; 11] = [
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
];

/// Words after a size that make it a distance from a landmark, not an
/// extent: "4 cm from the nipple", "2 cm below the costal margin",
/// "1.5 cm anterior to the mass".
const DISTANCE_WORDS: [&str; 14] = [
    "from ",
    "below ",
    "above ",
    "beneath ",
    "beyond ",
    "proximal to ",
    "distal to ",
    "anterior to ",
    "posterior to ",
    "superior to ",
    "inferior to ",
    "lateral to ",
    "medial to ",
    "deep to ",
];

/// The start of the word joined by a hyphen to the word at `at` ("Iodine-"
/// of "Iodine-avid"), not before `floor`; `at` when there is none.
fn hyphened_word_before(text: &str, floor: usize, at: usize) -> usize {
    let bytes = text.as_bytes();
    if at < floor + 2 || bytes[at - 1] != b'-' || !bytes[at - 2].is_ascii_alphanumeric() {
        return at;
    }
    let mut start = at - 1;
    while start > floor && bytes[start - 1].is_ascii_alphanumeric() {
        start -= 1;
    }
    start
}

/// How near after a device's size a finding must start to be the one
/// measured ("a 5 mm stent-like calcified nodule" keeps its size).
const DEVICE_WINDOW_BYTES: usize = 40;

/// What a size right before it measures instead of a finding.
const DEVICE_NOUNS: [&str; 14] = [
    "balloon",
    "stent",
    "stents",
    "catheter",
    "sheath",
    "wire",
    "guidewire",
    "drain",
    "needle",
    "coil",
    "coils",
    "french",
    "fr",
    "gauge",
];

/// Which of a sentence's findings a size belongs to, if any.
///
/// A size inside a finding's noun phrase ("non-avid 6 mm nodule") or right
/// before a finding ("6 mm stone", "4 mm of midline shift") is that
/// finding's; one after a measuring verb completes the finding before it
/// ("mass measuring 4.5 cm", "dilated to 14 mm"), or, when that finding
/// only describes another in a "with" phrase ("a cyst with low-level
/// echoes measuring 4.1 cm"), the one the phrase qualifies; otherwise the
/// finding before it, or failing that the next one. Distances ("6 cm from
/// the nipple"), prior sizes ("from 11 mm", "measuring 1.5 cm on the prior
/// study") and other structures' sizes ("compared with 3 mm on the left")
/// belong to none, nor a device's ("a 5 mm x 150 mm drug-coated balloon").
fn measured_finding(
    text: &str,
    sentence_start: usize,
    lexicon: &Lexicon,
    findings: &[Finding<'_>],
    concepts: &[u32],
    sites: &[(usize, usize, u32)],
    measurement: &Measurement<'_>,
) -> Option<usize> {
    let bytes = text.as_bytes();
    let lower_words = |from: usize, to: usize| {
        text[from..to]
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
    };
    let before = lower_words(sentence_start, measurement.start);
    let last_before = |n: usize| before.iter().rev().nth(n).map_or("", String::as_str);
    let after_measuring_verb = ["measuring", "measures", "measure", "measured"]
        .contains(&last_before(0))
        || (["up", "approximately", "about", "nearly"].contains(&last_before(1))
            && ["measuring", "measures", "measured"].contains(&last_before(2)));
    let after = text[measurement.end..].trim_start();
    let starts = |prefix: &str| {
        after
            .get(..prefix.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(prefix))
    };
    // "6 cm from the nipple", "ending 11 cm below the junction": a distance
    // that places the finding. After a measuring verb ("measuring 7 mm from
    // the femoral neck to the capsule") or "extends" ("calcifications extend
    // 1.5 cm anterior to the mass") it is a size.
    let extends = ["extend", "extends", "extending"].contains(&last_before(0));
    // "enlarged to 5.1 cm from 4.6 cm": a size "from" a size is a change.
    let from_a_size = starts("from ")
        && after[5..]
            .trim_start()
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit());
    if DISTANCE_WORDS.iter().any(|w| starts(w)) && !after_measuring_verb && !extends && !from_a_size
    {
        return None;
    }
    let prior = (["measuring", "measured", "measure"].contains(&last_before(0))
        && ["previously", "formerly", "prior"].contains(&last_before(1)))
        || [
            "from",
            "previously",
            "prior",
            "formerly",
            "was",
            "versus",
            "vs",
        ]
        .contains(&last_before(0))
        || (last_before(1) == "compared" && ["with", "to"].contains(&last_before(0)))
        || [
            "on the prior",
            "on prior",
            "on the previous",
            "on previous",
            "on the last",
        ]
        .iter()
        .any(|p| starts(p));
    // "below the FNA threshold of 1.5 cm": a guideline's size, no one's.
    let threshold = ["threshold", "thresholds", "cutoff", "cut-off", "cut"]
        .iter()
        .any(|w| last_before(0) == *w || (last_before(0) == "of" && last_before(1) == *w));
    // "treated with a 5 mm x 150 mm drug-coated balloon": a device's size.
    let device = text[measurement.end..]
        .split([',', ';', '.', '(', ':'])
        .next()
        .unwrap_or_default()
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .take(3)
        .any(|w| DEVICE_NOUNS.iter().any(|d| d.eq_ignore_ascii_case(w)))
        && !findings.iter().any(|f| {
            f.term_start >= measurement.end && f.term_start < measurement.end + DEVICE_WINDOW_BYTES
        });
    if prior || threshold || device {
        return None;
    }
    if let Some(i) = findings
        .iter()
        .position(|f| f.term_start < measurement.start && measurement.end <= f.term_end)
    {
        return Some(i);
    }
    let modifies = findings.iter().position(|f| {
        f.term_start >= measurement.end
            && word_count(&bytes[measurement.end..f.term_start]) <= PRE_SIZE_WORDS
            && !bytes[measurement.end..f.term_start].contains(&b',')
            && !lower_words(measurement.end, f.term_start)
                .iter()
                .any(|w| ["with", "and", "without", "in", "at"].contains(&w.as_str()))
    });
    let preceding = findings
        .iter()
        .rposition(|f| f.term_end <= measurement.start);
    // The verb stands right before the size; a site named between does
    // not count ("aneurysmal dilatation of the ascending aorta to 4.6 cm").
    let completes = preceding.filter(|&i| {
        let (from, to) = (findings[i].term_end, measurement.start);
        let gap = &text[from..to];
        let site_words: usize = sites
            .iter()
            .filter(|&&(s, e, _)| from <= s && e <= to)
            .map(|&(s, e, _)| word_count(&bytes[s..e]))
            .sum();
        let verb = gap
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .rev()
            .find(|w| !["up", "approximately", "about", "nearly"].contains(w));
        word_count(gap.as_bytes()).saturating_sub(site_words) <= 3
            && verb.is_some_and(|w| MEASURING_WORDS.contains(&w))
    });
    // "The endometrium is thickened and heterogeneous, measuring 9 mm": of
    // coordinated predicates, the size is the one that has a size.
    let sized = |i: usize| {
        lexicon
            .descriptors
            .iter()
            .any(|row| row.axis == crate::Axis::Size && row.finding == Some(concepts[i]))
    };
    // A size before any finding, in the same clause: "a 2.6 cm cyst", not
    // "the duct measures 5 mm, and no stone", nor "a 2.4 cm observation
    // with arterial phase hyperenhancement", nor "the right kidney
    // measures 8.9 cm with cortical thinning" (the organ's size, which is
    // only the size of a finding of size: "the liver measures 18.5 cm and
    // is enlarged").
    let following = findings
        .iter()
        .position(|f| f.term_start >= measurement.end)
        .filter(|&i| {
            findings[i].assertion != Assertion::Absent
                && (!after_measuring_verb || sized(i))
                && !bytes[measurement.end..findings[i].term_start].contains(&b';')
                && !lower_words(measurement.end, findings[i].term_start)
                    .iter()
                    .any(|w| w == "with" || w == "without")
        });
    let coordinated = |i: usize| {
        let joined = i > 0
            && lower_words(findings[i - 1].term_end, findings[i].term_start)
                .iter()
                .all(|w| w == "and");
        if joined && !sized(i) && sized(i - 1) {
            i - 1
        } else {
            i
        }
    };
    let completes = completes.map(|i| {
        if after_measuring_verb {
            qualified_by_with(text, findings, i).unwrap_or(i)
        } else {
            i
        }
    });
    // "Nodular enhancement along the margin of the resection cavity has
    // increased, now measuring 2.4 cm": the size the subject now has.
    // Only across a clause: "the defect now 14 mm" is the defect's own.
    let now = last_before(0) == "now" || (after_measuring_verb && last_before(1) == "now");
    let across_a_clause =
        preceding.is_some_and(|i| text[findings[i].term_end..measurement.start].contains(','));
    let subject = findings
        .iter()
        .position(|f| f.term_end <= measurement.start)
        .filter(|&i| {
            now && across_a_clause && !text[findings[i].term_end..measurement.start].contains(';')
        });
    // "Two mesorectal lymph nodes with irregular borders and heterogeneous
    // signal, largest 6 mm": the group's largest member, not the finding
    // said with it.
    let largest =
        last_before(0) == "largest" || (after_measuring_verb && last_before(1) == "largest");
    let group = largest
        .then(|| {
            findings.iter().rposition(|f| {
                f.term_end <= measurement.start && is_plural(crate::words::last_word(f.term))
            })
        })
        .flatten()
        .filter(|&i| !text[findings[i].term_end..measurement.start].contains(';'));
    let (completes, preceding) = (completes.map(coordinated), preceding.map(coordinated));
    group
        .or(completes)
        .or(modifies)
        .or(subject)
        .or(preceding)
        .or(following)
}

/// Whether a head noun is plural ("nodes", "metastases", "foci"), as the
/// group a "largest" member belongs to.
fn is_plural(head: &str) -> bool {
    let ends = |end: &str| {
        head.len() >= end.len() && head[head.len() - end.len()..].eq_ignore_ascii_case(end)
    };
    (ends("s") && !["ss", "is", "us"].iter().any(|end| ends(end)))
        || ["foci", "calculi", "emboli"]
            .iter()
            .any(|word| head.eq_ignore_ascii_case(word))
}

/// Heads that name only where something is ("a 9 mm focus of granulation
/// tissue", "an area of consolidation measuring 3 cm"): what they contain is
/// the thing measured.
const CONTAINER_HEADS: [&str; 8] = [
    "focus", "foci", "area", "areas", "region", "regions", "zone", "zones",
];

/// Words that may stand between "of" and the contents of a container head
/// ("foci of intense radiotracer uptake").
const CONTAINER_GAP_WORDS: usize = 3;

/// Reads "X of Y", X a container head ([`CONTAINER_HEADS`]), as the one
/// finding Y: "new foci of increased uptake", "a 9 mm nodular focus of
/// granulation tissue", "scattered foci of T2 hyperintensity". The term
/// spans both; what the container says of itself (its change, size, side,
/// descriptors, sites, a denial or hedge) is Y's where Y says nothing.
fn merge_containers<'a>(
    text: &'a str,
    out: &mut Vec<Finding<'a>>,
    concepts: &mut Vec<u32>,
    first: usize,
) {
    let mut j = first + 1;
    while j < out.len() {
        let (container, content) = (&out[j - 1], &out[j]);
        let head = crate::words::last_word(container.term);
        let gap = text
            .get(container.term_end..content.term_start)
            .unwrap_or_default();
        let mut words = gap.split_ascii_whitespace();
        let joined_by_of = words.next().is_some_and(|w| w.eq_ignore_ascii_case("of"))
            && !gap.contains([',', ';', '.', ':', '(', ')'])
            && words.count() <= CONTAINER_GAP_WORDS;
        if !(joined_by_of && CONTAINER_HEADS.iter().any(|c| c.eq_ignore_ascii_case(head))) {
            j += 1;
            continue;
        }
        let container = out.remove(j - 1);
        concepts.remove(j - 1);
        let content = &mut out[j - 1];
        content.term = &text[container.term_start..content.term_end];
        content.term_start = container.term_start;
        if content.assertion == Assertion::Present && container.assertion != Assertion::Present {
            content.assertion = container.assertion;
            content.certainty = container.certainty;
            content.hedge = container.hedge;
        }
        content.change = content.change.or(container.change);
        content.laterality = content.laterality.or(container.laterality);
        if content.measurements.is_empty() {
            content.measurements = container.measurements;
        }
        let mut descriptors = container.descriptors;
        descriptors.append(&mut content.descriptors);
        content.descriptors = descriptors;
        let mut sites = container.body_site;
        sites.append(&mut content.body_site);
        content.body_site = sites;
    }
}

/// The finding that a "with" phrase holding `findings[i]` qualifies, when
/// `findings[i]` is a feature rather than a lesion of its own: in "a cyst
/// with low-level echoes" or "a mass with spiculated margins and posterior
/// acoustic shadowing", the cyst and the mass; in "hydronephrosis with a
/// stone", none (the stone is measured as itself). Only a "with" right
/// after its head qualifies it: after a comma ("the bladder is trabeculated,
/// with wall thickening") it adds a finding of its own.
fn qualified_by_with(text: &str, findings: &[Finding<'_>], i: usize) -> Option<usize> {
    // A thickening is measured as itself: "a lymph node with cortical
    // thickening measuring 5 mm" gives the cortex's thickness.
    let thickness = crate::words::last_word(findings[i].term).eq_ignore_ascii_case("thickening");
    if thickness || crate::grammar::names_a_lesion(findings[i].term) {
        return None;
    }
    let head = findings[..i].iter().rposition(|h| {
        let gap = &text[h.term_end..findings[i].term_start];
        let with_at = gap
            .find(|c: char| c.is_ascii_alphanumeric())
            .unwrap_or(gap.len());
        gap[with_at..]
            .get(..5)
            .is_some_and(|w| w.eq_ignore_ascii_case("with "))
            && !gap[..with_at].contains(',')
            && !gap.contains([';', '.', '(', ')'])
    })?;
    Some(head)
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
    fn a_longer_synonym_cut_mid_word_leaves_the_shorter_one() {
        // "osteophyte formation" ends inside "formations": the longest
        // match that ends on a word edge is "osteophyte".
        assert_eq!(terms("Anterior osteophyte formations."), ["osteophyte"]);
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

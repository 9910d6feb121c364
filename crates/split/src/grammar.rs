//! The observation grammar on top of the lexicon's words: which descriptors
//! qualify which observation, when a descriptor said of an organ is itself a
//! finding, and which observation suggests which diagnosis — RadGraph's
//! *modify*, *located at* and *suggestive of* relations, read from word
//! order within one sentence.
//!
//! * A descriptor directly before a head ("rim-enhancing fluid collection",
//!   "T2 hyperintense foci", "a small hypoechoic lesion") qualifies it; only
//!   other descriptors, sides, sizes, sites and "and"/"or" may stand between.
//! * A descriptor that qualifies no head but an organ ("the spleen is
//!   enlarged", "dilated loops of small bowel", "LIVER: Echogenic.") is a
//!   finding of that organ, if its row in descriptors.tsv names one.
//! * A head qualified as normal ("physiologic uptake", "normal
//!   enhancement") is no abnormality and is dropped.
//! * "X, suggestive of Y": X suggests Y; a new X makes the Y offered for it
//!   new too ("a new opacity, which may represent pneumonia").

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

use crate::lexicon::Lexicon;
use crate::sentence::{Mention, Scratch, SentenceSpan};
use crate::words::{is_word_byte, word_count};
use crate::{Assertion, Axis, Change, Descriptor, Finding};

/// How many words may separate an organ from a descriptor said of it ("the
/// common bile duct is mildly dilated").
const ORGAN_WORDS: usize = 6;

/// Words that may stand inside a noun phrase between a descriptor and its
/// head, besides other descriptors, sites and sizes.
const PHRASE_WORDS: [&str; 16] = [
    "level",
    "levels",
    "station",
    "stations",
    "and",
    "or",
    "to",
    "left",
    "right",
    "bilateral",
    "mm",
    "cm",
    "x",
    "by",
    "up",
    "of",
];

/// Adds a mention for each descriptor that is said of an organ and
/// qualifies no head. `header_site`: the sentence sits under an organ
/// sub-header ("SPLEEN: Enlarged.").
pub(crate) fn organ_descriptors(
    text: &str,
    sentence: SentenceSpan,
    lexicon: &Lexicon,
    header_site: bool,
    scratch: &mut Scratch,
) {
    let mut added: Vec<Mention> = Vec::new();
    // "It is non-compressible, dilated to 9 mm": the organ is the one the
    // sentence before named.
    let pronoun_subject = || {
        text[sentence.body_start..sentence.end]
            .split(|c: char| !c.is_ascii_alphabetic())
            .find(|w| !w.is_empty())
            .is_some_and(|w| ["it", "they"].iter().any(|p| p.eq_ignore_ascii_case(w)))
    };
    // "Left testis: 4.4 cm. Enlarged and heterogeneous.": a sentence that
    // opens with its predicate says it of the organ in hand.
    let opens_the_sentence = |s: usize| {
        text[sentence.body_start..s]
            .split_whitespace()
            .all(|w| w.len() > 3 && w.ends_with("ly"))
    };
    // "The mediastinal lymph nodes are enlarged": a node is named like an
    // organ, and what is said of it is the finding (the node mention goes).
    let mut node_subjects: Vec<usize> = Vec::new();
    for &(s, e, row) in &scratch.descriptors {
        let Some(concept) = lexicon.descriptors[row as usize].finding else {
            continue;
        };
        let axis = lexicon.descriptors[row as usize].axis;
        let node_subject = scratch.mentions.iter().position(|m| {
            m.end <= s
                && lexicon.findings[m.concept as usize].code == LYMPH_NODE
                && predicate_start(text, m.end).is_some_and(|at| only_adverbs(&text[at..s]))
        });
        let inside_mention = scratch.mentions.iter().any(|m| m.start < e && s < m.end);
        // The nearest predicate before it: one added here, or a finding
        // named by a descriptor ("enlarged").
        let said_before = added
            .iter()
            .chain(scratch.mentions.iter().filter(|m| {
                scratch
                    .descriptors
                    .iter()
                    .any(|&(ds, de, _)| ds == m.start && de == m.end)
            }))
            .filter(|m| m.end <= s)
            .map(|m| m.end)
            .max();
        let coordinated = said_before.is_some_and(|end| coordinated_predicate(&text[end..s]));
        if inside_mention
            || qualified_head(text, e, sentence.end, scratch).is_some()
            || !(header_site
                || (said_of_an_organ(axis) && (pronoun_subject() || opens_the_sentence(s)))
                || coordinated
                || node_subject.is_some()
                || organ_near(text, s, e, &scratch.sites))
        {
            continue;
        }
        node_subjects.extend(node_subject);
        added.push(Mention {
            start: s,
            end: e,
            focus_start: s,
            focus_end: e,
            concept,
        });
    }
    if !node_subjects.is_empty() {
        let mut index = 0;
        scratch.mentions.retain(|_| {
            index += 1;
            !node_subjects.contains(&(index - 1))
        });
    }
    if !added.is_empty() {
        scratch.mentions.extend(added);
        scratch.mentions.sort_by_key(|m| m.start);
    }
}

/// The code of the lymph node concept (findings.tsv): a node described is
/// named like an organ.
const LYMPH_NODE: &str = "finding-lymph-node";

/// Whether `words` holds only adverbs ("mildly", "borderline", "no
/// longer", "not"), or nothing.
fn only_adverbs(words: &str) -> bool {
    words.split_whitespace().all(|w| {
        w.ends_with("ly")
            || ["borderline", "not", "no", "longer"]
                .iter()
                .any(|a| w.eq_ignore_ascii_case(a))
    })
}

/// Axes of what a pronoun's organ may be said to be ("it is dilated,
/// non-compressible"); an appearance ("it is hypoechoic") is more often a
/// lesion's, described after it was named.
fn said_of_an_organ(axis: Axis) -> bool {
    matches!(axis, Axis::Size | Axis::Shape | Axis::Composition)
}

/// Whether the words between two descriptors join them as predicates of
/// one subject: "the epididymis is enlarged, measuring 1.9 cm, and is
/// hypoechoic", "the testis is enlarged and heterogeneous in echotexture".
/// The second is said of the organ the first was, however far its name.
fn coordinated_predicate(between: &str) -> bool {
    !between.contains([';', ':', '(', ')'])
        && !between.contains(". ")
        && word_count(between.as_bytes()) <= COORDINATED_PREDICATE_WORDS
        && between
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w.eq_ignore_ascii_case("and"))
        && !between
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| {
                ["with", "without"]
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(w))
            })
}

/// How many words may stand between coordinated predicates ("enlarged,
/// measuring 4.8 x 3.1 x 2.9 cm, and heterogeneous").
const COORDINATED_PREDICATE_WORDS: usize = 10;

/// Removes the heads a normal descriptor qualifies, before them
/// ("physiologic uptake") or as their predicate ("the lymph nodes are
/// normal in size").
pub(crate) fn drop_normal_heads(text: &str, lexicon: &Lexicon, scratch: &mut Scratch) {
    let Scratch {
        mentions,
        descriptors,
        sites,
        ..
    } = scratch;
    // Most sentences have no descriptor, and most descriptors are not
    // normal: skip the walks then.
    if descriptors.is_empty() {
        return;
    }
    let normal = |row: u32| lexicon.descriptors[row as usize].axis == Axis::Normal;
    let any_normal = descriptors.iter().any(|&(_, _, row)| normal(row));
    mentions.retain(|mention| {
        let before = any_normal
            && phrase_before(text, mention.start, descriptors, sites, &[])
                .any(|(_, _, row)| normal(row));
        // "The lymph nodes are normal", and "the lymph nodes are not
        // enlarged": the head is the subject of a normal or denied
        // predicate (the denied descriptor is the finding, absent).
        let predicate = predicate_start(text, mention.end).is_some_and(|at| {
            let denied = after_not(text, at);
            descriptors
                .iter()
                .any(|&(s, _, row)| (s == at && normal(row)) || Some(s) == denied)
        });
        !(before
            || predicate
            || (any_normal && listed_after_normal(text, mention.start, descriptors, &normal)))
    });
}

/// Whether the mention at `start` is listed after a normal descriptor that
/// opens its clause: "Normal echotexture and vascularity" (the walk back of
/// [`phrase_before`] stops at "echotexture", a word of no table).
fn listed_after_normal(
    text: &str,
    start: usize,
    descriptors: &[(usize, usize, u32)],
    normal: &impl Fn(u32) -> bool,
) -> bool {
    let clause = clause_before(text, start, NORMAL_LIST_WORDS);
    let clause_start = start - clause.len() + (clause.len() - clause.trim_start().len());
    contains_words(clause, "and")
        && descriptors
            .iter()
            .any(|&(s, _, row)| s == clause_start && normal(row))
}

/// How many words a list after a normal descriptor may span ("normal size,
/// echotexture and vascularity").
const NORMAL_LIST_WORDS: usize = 5;

/// Removes mentions that name no finding of this patient's images: the
/// target of a procedure ("biopsy of the mass and the axillary node is
/// recommended": the mass was reported where it was seen), a noun that
/// names a team or service ("stroke team", "trauma service"), a procedure a
/// finding makes the patient a candidate for ("favourable for
/// thrombectomy"), and what dense tissue "may obscure" (boilerplate about
/// the sensitivity of the exam).
pub(crate) fn drop_references(text: &str, start: usize, end: usize, scratch: &mut Scratch) {
    let Scratch { mentions, .. } = scratch;
    if mentions.is_empty() {
        return;
    }
    // One pass over the sentence finds its reference cues (most hold
    // none); each mention then asks only whether one stands in its clause.
    // A cue counts only before a mention, so the pass stops at the last
    // mention's start (the cues found up to there are the same).
    let mut cues = [(0usize, 0usize); MAX_CUES_PER_SENTENCE];
    let last_mention_start = mentions.iter().map(|m| m.start).max().unwrap_or(start);
    let cue_count = reference_cues(text, start, last_mention_start.clamp(start, end), &mut cues);
    let cues = &cues[..cue_count];
    // "Postsurgical changes of right hemicolectomy": one post-surgical
    // state, named by its procedure and worded from the generic head (the
    // two mentions become one, coded as the procedure). A bit per mention
    // (the first 128), so a sentence allocates nothing.
    let mut generic_before_procedure: u128 = 0;
    for (i, pair) in mentions.windows(2).enumerate().take(128) {
        let (mention, next) = (&pair[0], &pair[1]);
        let head = &text.as_bytes()[mention.start..mention.end];
        let between = text[mention.end..next.start].trim();
        let generic = GENERIC_POSTSURGICAL.iter().any(|g| {
            head.len() >= g.len() && head[head.len() - g.len()..].eq_ignore_ascii_case(g.as_bytes())
        });
        if generic
            && NAMES_THE_PROCEDURE.iter().any(|link| {
                between.len() <= link.len() + MAX_PROCEDURE_LINK_BYTES
                    && starts_with_words(between, link)
            })
        {
            generic_before_procedure |= 1 << i;
        }
    }
    for i in 0..mentions.len().min(128) {
        if generic_before_procedure & (1 << i) != 0 {
            mentions[i + 1].start = mentions[i].start;
        }
    }
    let mut index = 0;
    let mut kept_before = false;
    let last_start = mentions.last().map_or(0, |m| m.start);
    mentions.retain(|mention| {
        let mentions_after = mention.start < last_start;
        index += 1;
        if index <= 128 && generic_before_procedure & (1 << (index - 1)) != 0 {
            return false;
        }
        if kept_before && names_the_place_of_another(text, start, mention) {
            return false;
        }
        let cue_before = !cues.is_empty() && {
            let clause_start =
                mention.start - clause_before(text, mention.start, REFERENCE_WINDOW_WORDS).len();
            cues.iter()
                .any(|&(s, e)| s >= clause_start && e <= mention.start)
        };
        let names_a_service = next_word(text, mention.end)
            .is_some_and(|word| SERVICE_NOUNS.iter().any(|n| n.eq_ignore_ascii_case(word)));
        // "since the pre-thrombolysis scan": a time, not a treatment given.
        let before_it = &text.as_bytes()[..mention.start];
        let dated_by =
            before_it.len() >= 4 && before_it[before_it.len() - 4..].eq_ignore_ascii_case(b"pre-");
        let keep = !(names_a_service
            || cue_before
            || dated_by
            || grades_uptake(text, mention)
            || labels_a_value(text, mention)
            || names_the_content(text, mention)
            || (mentions_after && indexes_its_line(text, start, mention)));
        kept_before |= keep;
        keep
    });
}

/// Whether a bare "density" or "attenuation" only labels the number after
/// it: "a 1.6 cm adrenal nodule (density 8 HU)", "attenuation of 35 HU".
fn labels_a_value(text: &str, mention: &Mention) -> bool {
    let term = &text[mention.start..mention.end];
    if !["density", "attenuation"]
        .iter()
        .any(|w| term.eq_ignore_ascii_case(w))
    {
        return false;
    }
    let mut rest = text[mention.end..].trim_start();
    for joiner in ["of ", "is ", "=", ":"] {
        if let Some(after) = rest.strip_prefix(joiner) {
            rest = after.trim_start();
        }
    }
    rest.starts_with(|c: char| c.is_ascii_digit() || c == '-')
}

/// Whether a bare "uptake", said with a lesion, only grades it against the
/// reference organs: "a 9 mm node, decreased, with uptake less than
/// mediastinal blood pool", "uptake between mediastinal blood pool and
/// liver" (a Deauville grade, not a finding of its own).
fn grades_uptake(text: &str, mention: &Mention) -> bool {
    if !text[mention.start..mention.end].eq_ignore_ascii_case("uptake") {
        return false;
    }
    // Said with the lesion, no qualifier of its own: "increased splenic
    // uptake greater than liver" is a finding.
    let said_with = text[..mention.start]
        .split(|c: char| !c.is_ascii_alphabetic())
        .rfind(|w| !w.is_empty())
        .is_some_and(|w| {
            ["with", "shows", "show", "has", "showing", "demonstrates"]
                .iter()
                .any(|v| v.eq_ignore_ascii_case(w))
        });
    if !said_with {
        return false;
    }
    let after = text[mention.end..].trim_start();
    let after = after.strip_prefix("now ").map_or(after, str::trim_start);
    let compared = UPTAKE_COMPARATORS.iter().find_map(|c| {
        after
            .get(..c.len())
            .filter(|head| head.eq_ignore_ascii_case(c))
            .map(|_| after[c.len()..].trim_start())
    });
    compared.is_some_and(|rest| {
        let rest = rest.strip_prefix("the ").unwrap_or(rest);
        ["mediastinal", "blood pool", "liver", "hepatic"]
            .iter()
            .any(|organ| {
                rest.get(..organ.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(organ))
            })
    })
}

/// How a lesion's uptake is graded against the reference organs.
const UPTAKE_COMPARATORS: [&str; 9] = [
    "less than",
    "below",
    "above",
    "greater than",
    "between",
    "similar to",
    "equal to",
    "lower than",
    "higher than",
];

/// Whether a mention opens its line as a numbered label of what the line
/// describes: "Observation 2: 0.8 cm arterial phase hyperenhancing focus",
/// "Treated observation 1 (segment 7): 3.4 cm treated zone". (A numbered
/// subject with a verb, "Nodule 1 measures 8 mm", is the finding.)
fn indexes_its_line(text: &str, sentence_start: usize, mention: &Mention) -> bool {
    // The number first: most mentions have none after them.
    let rest = text[mention.end..].trim_start();
    let rest = rest.strip_prefix('#').unwrap_or(rest);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let rest = rest[digits..]
        .trim_start_matches(|c: char| c.is_ascii_lowercase())
        .trim_start();
    let rest = match rest.strip_prefix('(') {
        Some(inside) => inside
            .split_once(')')
            .map_or("", |(_, after)| after)
            .trim_start(),
        None => rest,
    };
    // A sub-header's finding lies before the body: it is no index.
    rest.starts_with(':')
        && sentence_start <= mention.start
        && text[sentence_start..mention.start]
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b.is_ascii_whitespace())
}

/// Whether a mention names what distends a lumen ("the stomach is distended
/// with fluid", "loops filled with gas"): the distension is the finding,
/// its content the ordinary one.
fn names_the_content(text: &str, mention: &Mention) -> bool {
    let term = &text[mention.start..mention.end];
    let before = text[..mention.start].trim_end_matches(' ').as_bytes();
    CONTENT_NOUNS.iter().any(|n| n.eq_ignore_ascii_case(term))
        && CONTAINING_PHRASES.iter().any(|phrase| {
            before.len() >= phrase.len()
                && before[before.len() - phrase.len()..].eq_ignore_ascii_case(phrase.as_bytes())
        })
}

/// What fills a lumen ([`names_the_content`]).
const CONTENT_NOUNS: [&str; 5] = ["fluid", "gas", "air", "stool", "contrast"];

/// The words that make the noun after them a lumen's content.
const CONTAINING_PHRASES: [&str; 5] = [
    "distended with",
    "distended by",
    "filled with",
    "distension with",
    "distention with",
];

/// Whether a mention only places the finding named before it in its
/// sentence, by referring back to a lesion the report has already named:
/// "calcifications are seen within the mass", "gas tracks along the wall of
/// the collection", "enhancement at the margins of the resection cavity".
/// The lesion was reported where it was first named; here it is a place.
fn names_the_place_of_another(text: &str, sentence_start: usize, mention: &Mention) -> bool {
    // Most mentions have no "the" just before them: a look at the bytes
    // before spares reading the clause's words.
    let window = &text.as_bytes()[mention.start.saturating_sub(PLACE_WINDOW_BYTES)..mention.start];
    if !window
        .windows(4)
        .any(|w| w[..3].eq_ignore_ascii_case(b"the") && w[3] == b' ')
    {
        return false;
    }
    let before = clause_before(text, mention.start, PLACE_WINDOW_WORDS);
    // The clause's words, nearest first, in a fixed buffer: this runs for
    // most mentions, so it allocates nothing.
    let mut words = [""; PLACE_WINDOW_WORDS + 2];
    let mut count = 0;
    for word in before.split_ascii_whitespace().rev().take(words.len()) {
        words[count] = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        count += 1;
    }
    let words = &words[..count];
    // Only modifiers stand between "the" and the mention: in "shift to the
    // right and subfalcine herniation" the "the" is the right's.
    let Some(the) = words
        .iter()
        .take(PLACE_WINDOW_WORDS / 2)
        .position(|w| w.eq_ignore_ascii_case("the"))
    else {
        return false;
    };
    let joined = words[..the].iter().any(|w| {
        ["and", "or", "with", "without", "but"]
            .iter()
            .any(|j| j.eq_ignore_ascii_case(w))
    });
    let word = |back: usize| words.get(the + back).copied().unwrap_or("");
    let placed = PLACE_PREPOSITIONS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(word(1)))
        || (word(1).eq_ignore_ascii_case("to") && word(2).eq_ignore_ascii_case("adjacent"))
        || (word(1).eq_ignore_ascii_case("of")
            && PARTS_OF_A_LESION
                .iter()
                .any(|p| p.eq_ignore_ascii_case(word(2))));
    let head = crate::words::last_word(&text[mention.start..mention.end]);
    placed && !joined && !head.is_empty() && contains_words(&text[..sentence_start], head)
}

/// Words from a mention back to the "the" that makes it a reference.
const PLACE_WINDOW_WORDS: usize = 8;

/// Bytes before a mention in which that "the" must stand (it is at most
/// three modifiers away).
const PLACE_WINDOW_BYTES: usize = 48;

/// Prepositions that make "the X" after them the place of something else.
const PLACE_PREPOSITIONS: [&str; 9] = [
    "within", "at", "into", "to", "abutting", "beside", "inside", "along", "around",
];

/// Parts of a lesion that make "the part of the X" a place in it.
const PARTS_OF_A_LESION: [&str; 12] = [
    "margin",
    "margins",
    "wall",
    "walls",
    "rim",
    "edge",
    "edges",
    "border",
    "periphery",
    "base",
    "centre",
    "center",
];

/// Generic heads of a post-surgical state, ending a mention's words.
const GENERIC_POSTSURGICAL: [&str; 6] = [
    "postsurgical changes",
    "post-surgical changes",
    "surgical changes",
    "postoperative changes",
    "post-operative changes",
    "postsurgical change",
];

/// Words that join a generic post-surgical head to the procedure it
/// stands for ("changes of", "changes from", "changes related to").
const NAMES_THE_PROCEDURE: [&str; 5] = ["of", "from", "related to", "following", "after"];

/// How many bytes may follow the joining word before the procedure's name
/// ("changes of a right upper lobectomy").
const MAX_PROCEDURE_LINK_BYTES: usize = 24;

/// Whether `text` starts with `words` as whole words, ignoring ASCII case.
fn starts_with_words(text: &str, words: &str) -> bool {
    text.len() >= words.len()
        && text.as_bytes()[..words.len()].eq_ignore_ascii_case(words.as_bytes())
        && text
            .as_bytes()
            .get(words.len())
            .is_none_or(|&b| !is_word_byte(b))
}

/// How far before a mention a procedure or "may obscure" still reaches:
/// "biopsy of the left breast mass and the left axillary lymph node".
const REFERENCE_WINDOW_WORDS: usize = 8;

/// Phrases after which a noun names the target of a procedure or a
/// hypothetical, not an observation.
const REFERENCE_CUES: [&str; 34] = [
    "further evaluation of",
    "to assess",
    "evaluation for",
    "assess for",
    "further characterization of",
    "further characterisation of",
    "biopsy of",
    "biopsies of",
    "sampling of",
    "aspiration of",
    "excision of",
    "resection of",
    "drainage of",
    "ablation of",
    "fna of",
    "fine needle aspiration of",
    "fine-needle aspiration of",
    "core biopsy of",
    "confirm the degree of",
    "assess the degree of",
    "evaluate the degree of",
    "quantify the degree of",
    "candidate for",
    "candidates for",
    "suitable for",
    "favourable for",
    "favorable for",
    "amenable to",
    "may obscure",
    "can obscure",
    "could obscure",
    "may mask",
    "can mask",
    "may hide",
];

/// Nouns a finding's name qualifies when it names a team, a service, a
/// specialty or a protocol: "stroke team", "trauma service", "PE protocol",
/// "Dr. Alvarez (stroke neurology)", "Dr. Hughes (stroke consultant)",
/// "the endometriosis MDT".
const SERVICE_NOUNS: [&str; 25] = [
    "team",
    "consultant",
    "registrar",
    "physician",
    "surgeon",
    "specialist",
    "mdt",
    "board",
    "ward",
    "meeting",
    "service",
    "services",
    "protocol",
    "alert",
    "pathway",
    "clinic",
    "unit",
    "nurse",
    "neurology",
    "surgery",
    "medicine",
    "oncology",
    "radiology",
    "fellow",
    "resident",
];

/// The text before `at` in its clause (no `.`, `;`, `:`, `,` or
/// parenthesis crossed), at most `max_words` words.
fn clause_before(text: &str, at: usize, max_words: usize) -> &str {
    let bytes = text.as_bytes();
    let mut start = at;
    let mut words = 0;
    while start > 0 {
        let b = bytes[start - 1];
        if matches!(b, b'.' | b';' | b':' | b',' | b'(' | b')' | b'\n') {
            break;
        }
        if b == b' ' && start < at && bytes[start] != b' ' {
            words += 1;
            if words > max_words {
                break;
            }
        }
        start -= 1;
    }
    &text[start..at]
}

/// The word that follows `at` after blanks, if any.
fn next_word(text: &str, at: usize) -> Option<&str> {
    let rest = text.get(at..)?.trim_start_matches([' ', '\t']);
    let len = rest.bytes().take_while(|&b| is_word_byte(b)).count();
    (len > 0).then(|| &rest[..len])
}

/// Whether `haystack` holds `phrase` as whole words, ignoring ASCII case.
fn contains_words(haystack: &str, phrase: &str) -> bool {
    let (hay, needle) = (haystack.as_bytes(), phrase.as_bytes());
    hay.windows(needle.len()).enumerate().any(|(i, window)| {
        window.eq_ignore_ascii_case(needle)
            && (i == 0 || !is_word_byte(hay[i - 1]))
            && hay.get(i + needle.len()).is_none_or(|&b| !is_word_byte(b))
    })
}

/// Where the word after a "not" at `at` starts, if a "not" is there.
fn after_not(text: &str, at: usize) -> Option<usize> {
    let rest = text.get(at..)?;
    let word = rest.get(..3)?;
    if !word.eq_ignore_ascii_case("not") || rest.as_bytes().get(3) != Some(&b' ') {
        return None;
    }
    let spaces = rest[3..].bytes().take_while(|&b| b == b' ').count();
    Some(at + 3 + spaces)
}

/// Copulas and the words that may follow one before its predicate ("are
/// otherwise", "appears").
const COPULA_WORDS: [&str; 11] = [
    "is",
    "are",
    "was",
    "were",
    "appears",
    "appear",
    "remains",
    "remain",
    "otherwise",
    "both",
    "all",
];

/// Where the predicate of a copula right after `head_end` starts ("nodes
/// are | normal"), if one follows.
fn predicate_start(text: &str, head_end: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = head_end;
    let mut copula = false;
    loop {
        while at < bytes.len() && bytes[at] == b' ' {
            at += 1;
        }
        let word_end = (at..bytes.len())
            .find(|&i| !is_word_byte(bytes[i]))
            .unwrap_or(bytes.len());
        let word = &text[at..word_end];
        if COPULA_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) {
            copula = true;
            at = word_end;
        } else {
            return (copula && !word.is_empty()).then_some(at);
        }
    }
}

/// The descriptors qualifying a mention, in text order.
pub(crate) fn descriptors_of<'a>(
    text: &'a str,
    lexicon: &Lexicon,
    mention: &Mention,
    scratch: &Scratch,
) -> Vec<Descriptor<'a>> {
    if scratch.descriptors.is_empty() {
        return Vec::new();
    }
    let mut found: Vec<Descriptor<'a>> = phrase_before(
        text,
        mention.start,
        &scratch.descriptors,
        &scratch.sites,
        &scratch.mentions,
    )
    .map(|(s, e, row)| Descriptor {
        text: &text[s..e],
        axis: lexicon.descriptors[row as usize].axis,
        start: s,
        end: e,
    })
    .collect();
    found.reverse();
    found
}

/// The descriptor words of the noun phrase that ends at `head_start`,
/// nearest first: walks back over descriptors, sites, sizes, adjectives
/// ([`qualifies_like_a_descriptor`]) and [`PHRASE_WORDS`], and stops at any
/// other word or a clause mark.
fn phrase_before<'s>(
    text: &'s str,
    head_start: usize,
    descriptors: &'s [(usize, usize, u32)],
    sites: &'s [(usize, usize, u32)],
    heads: &'s [Mention],
) -> impl Iterator<Item = (usize, usize, u32)> + 's {
    let bytes = text.as_bytes();
    let mut at = head_start;
    std::iter::from_fn(move || {
        loop {
            while at > 0 && matches!(bytes[at - 1], b' ' | b'-' | b',' | b'/' | b'\t') {
                at -= 1;
            }
            if at == 0 {
                return None;
            }
            if heads.iter().any(|m| m.end == at) {
                return None;
            }
            if let Some(&(s, e, row)) = descriptors.iter().find(|&&(_, e, _)| e == at) {
                at = s;
                return Some((s, e, row));
            }
            if let Some(&(s, _, _)) = sites.iter().find(|&&(_, e, _)| e == at) {
                at = s;
                continue;
            }
            let word_start = (0..at)
                .rev()
                .find(|&i| !is_word_byte(bytes[i]) && bytes[i] != b'.')
                .map_or(0, |i| i + 1);
            let word = &text[word_start..at];
            // A word that holds another head ("tension.physiologic" read as
            // one word) ends the phrase as the head would.
            let holds_a_head = heads.iter().any(|m| m.start < at && word_start < m.end);
            if word.is_empty()
                || holds_a_head
                || !(phrase_word(word) || qualifies_like_a_descriptor(word))
            {
                return None;
            }
            at = word_start;
        }
    })
}

/// An adjective no table lists, or the "-appearing" of "reactive-appearing":
/// it stands in a noun phrase as a descriptor does, so the walk back from the
/// head passes over it ("enlarged reactive-appearing lymph nodes").
fn qualifies_like_a_descriptor(word: &str) -> bool {
    is_adjective(word)
        || ["appearing", "looking"]
            .iter()
            .any(|w| w.eq_ignore_ascii_case(word))
}

/// The mention heading the noun phrase that the descriptor ending at `from`
/// opens ("hypoechoic ... lesion"), if it heads one. Before a lesion's head, other
/// modifiers may stand between too: "a T1 hypointense, enhancing
/// marrow-replacing lesion", "an echogenic ring-like adnexal mass".
fn qualified_head(text: &str, from: usize, end: usize, scratch: &Scratch) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = from;
    let mut through_modifiers = false;
    loop {
        while at < end && matches!(bytes[at], b' ' | b'-' | b',' | b'/' | b'\t') {
            at += 1;
        }
        if at >= end {
            return None;
        }
        if let Some(index) = scratch.mentions.iter().position(|m| m.start == at) {
            let head = &scratch.mentions[index];
            return (!through_modifiers || names_a_lesion(&text[head.start..head.end]))
                .then_some(index);
        }
        if let Some(&(_, e, _)) = scratch
            .descriptors
            .iter()
            .chain(&scratch.sites)
            .find(|&&(s, _, _)| s == at)
        {
            at = e;
            continue;
        }
        let word_end = (at..end)
            .find(|&i| !is_word_byte(bytes[i]) && bytes[i] != b'.')
            .unwrap_or(end);
        let word = text[at..word_end].trim_end_matches('.');
        if word.is_empty() {
            return None;
        }
        // A classification before the head: "displaced Weber B fracture",
        // "Garden IV fracture", "Salter-Harris II fracture".
        if let Some(grade_end) = graded_eponym(text, at, word, end) {
            at = grade_end;
            continue;
        }
        if !phrase_word(word) {
            let compound =
                bytes.get(at + word.len()) == Some(&b'-') || (at > 0 && bytes[at - 1] == b'-');
            let modifier = (compound || is_adjective(word))
                && !LINK_ADJECTIVES.iter().any(|w| w.eq_ignore_ascii_case(word));
            if !modifier {
                return None;
            }
            through_modifiers = true;
        }
        at += word.len();
    }
}

/// Where a capitalised name and the grade after it end ("Weber B", "Garden
/// IV", "Salter-Harris II", "Gartland type 2"), when `word` at `at` opens one.
fn graded_eponym(text: &str, at: usize, word: &str, end: usize) -> Option<usize> {
    if !word.starts_with(|c: char| c.is_ascii_uppercase()) || word.len() < 4 {
        return None;
    }
    let mut after = at + word.len();
    let mut rest = &text[after..end];
    // "Salter-Harris": the second name of a hyphened pair.
    if let Some(second) = rest.strip_prefix('-') {
        let len = second.bytes().take_while(u8::is_ascii_alphabetic).count();
        after += 1 + len;
        rest = &second[len..];
    }
    let spaces = rest.len() - rest.trim_start_matches(' ').len();
    let mut grade = &rest[spaces..];
    let mut skipped = spaces;
    if let Some(typed) = grade.strip_prefix("type ") {
        skipped += 5;
        grade = typed;
    }
    let len = grade
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let token = &grade[..len];
    let is_grade = (len == 1
        && token
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
        || ["I", "II", "III", "IV", "V", "VI"].contains(&token)
        || (len <= 2 && token.bytes().all(|b| b.is_ascii_digit()));
    (spaces > 0 && len > 0 && is_grade).then_some(after + skipped + len)
}

/// Adjectives that open a link to a diagnosis ("echogenic, consistent with
/// steatosis"), not a modifier of the next head.
const LINK_ADJECTIVES: [&str; 12] = [
    "consistent",
    "compatible",
    "suggestive",
    "suspicious",
    "concerning",
    "indicative",
    "characteristic",
    "typical",
    "diagnostic",
    "representative",
    "worrisome",
    "likely",
];

/// Folds a mention named by an adjective into the noun heading its phrase:
/// "occlusive and nonocclusive filling defects", "ruptured 7.8 cm
/// infrarenal AAA", "FDG-avid right upper lobe primary malignancy",
/// "enlarged reactive-appearing lymph nodes". The head is the one finding,
/// and its words start at the adjective. A descriptor said of an organ
/// ("enlarged fibroid uterus") is a finding of its own and stays.
pub(crate) fn merge_qualifying_adjectives(text: &str, end: usize, scratch: &mut Scratch) {
    let count = scratch.mentions.len().min(128);
    if count < 2 {
        return;
    }
    let mut merged: u128 = 0;
    for i in 0..count - 1 {
        let (mention, head) = (&scratch.mentions[i], &scratch.mentions[i + 1]);
        let is_organ_descriptor = || {
            scratch
                .descriptors
                .iter()
                .any(|&(s, e, _)| s == mention.start && e == mention.end)
        };
        // An organ descriptor qualifies the head after it unless an organ
        // ends the phrase: "no FDG-avid cervical lymphadenopathy" is one
        // finding, "enlarged fibroid uterus" two.
        let organ_ends_phrase = || {
            let next = head.end
                + text.as_bytes()[head.end..end]
                    .iter()
                    .take_while(|&&b| b == b' ')
                    .count();
            scratch.sites.iter().any(|&(s, _, _)| s == next)
        };
        if names_a_kind(crate::words::last_word(&text[mention.start..mention.end]))
            && (!is_organ_descriptor() || !organ_ends_phrase())
            && !is_adjective(crate::words::last_word(&text[head.start..head.end]))
            && heads_its_phrase(text, mention.end, end, scratch, head.start)
        {
            merged |= 1 << i;
            scratch.mentions[i + 1].start = scratch.mentions[i].start;
        }
    }
    let mut index = 0;
    scratch.mentions.retain(|_| {
        index += 1;
        index > 128 || merged & (1 << (index - 1)) == 0
    });
}

/// Endings of the adjectives radiologists put before a finding's head
/// ("occlusive", "ruptured", "metastatic", "FDG-avid", "taller-than-wide",
/// "nodular", "malignant").
const ADJECTIVE_ENDINGS: [&str; 11] = [
    "ed", "ive", "ic", "al", "ous", "avid", "wide", "ular", "ant", "ent", "ary",
];

/// Endings of the adjectives that say what kind of lesion the head is
/// ("occlusive", "ruptured", "FDG-avid", "taller-than-wide"), unlike those
/// naming a disease of their own ("atherosclerotic calcification",
/// "atelectatic or scar", "fibronodular scarring"), which stay findings.
const KIND_ENDINGS: [&str; 4] = ["ed", "ive", "avid", "wide"];

/// Whether a mention's last word is an adjective of kind ([`KIND_ENDINGS`]).
fn names_a_kind(word: &str) -> bool {
    KIND_ENDINGS.iter().any(|e| ends_with_ignore_case(word, e)) && is_adjective(word)
}

/// Nouns with an adjective's ending ("hyperenhancement", "post-void
/// residual", "intraluminal material", "solid component").
const NOUN_ENDINGS: [&str; 2] = ["ment", "ual"];
const NOUNS_LIKE_ADJECTIVES: [&str; 7] = [
    "material",
    "signal",
    "interval",
    "canal",
    "component",
    "extent",
    "content",
];

/// Whether a word reads as an adjective, by its ending.
pub(crate) fn is_adjective(word: &str) -> bool {
    word.len() > 3
        && ADJECTIVE_ENDINGS
            .iter()
            .any(|e| ends_with_ignore_case(word, e))
        && !NOUN_ENDINGS.iter().any(|e| ends_with_ignore_case(word, e))
        && !NOUNS_LIKE_ADJECTIVES
            .iter()
            .any(|n| n.eq_ignore_ascii_case(word))
}

/// `word.ends_with(ending)`, ignoring ASCII case, without allocating.
fn ends_with_ignore_case(word: &str, ending: &str) -> bool {
    word.len() >= ending.len()
        && word.as_bytes()[word.len() - ending.len()..].eq_ignore_ascii_case(ending.as_bytes())
}

/// Whether the words from `from` up to the mention at `head_start` are
/// only what a noun phrase holds before its head: descriptors, sites,
/// sizes, sides, commas, "and" and adjectives.
fn heads_its_phrase(
    text: &str,
    from: usize,
    end: usize,
    scratch: &Scratch,
    head_start: usize,
) -> bool {
    let bytes = text.as_bytes();
    let mut at = from;
    loop {
        while at < end && matches!(bytes[at], b' ' | b'-' | b',' | b'/' | b'\t') {
            at += 1;
        }
        if at >= end || at > head_start {
            return false;
        }
        if at == head_start {
            return true;
        }
        if let Some(&(_, e, _)) = scratch
            .descriptors
            .iter()
            .chain(&scratch.sites)
            .find(|&&(s, _, _)| s == at)
        {
            at = e;
            continue;
        }
        let word_end = (at..end)
            .find(|&i| !is_word_byte(bytes[i]) && bytes[i] != b'.')
            .unwrap_or(end);
        let word = text[at..word_end].trim_end_matches('.');
        // "of" opens another phrase; "or" offers an alternative
        // ("atelectatic or scar"), not a qualifier.
        if word.is_empty()
            || !(phrase_word(word) || is_adjective(word))
            || ["of", "or"].iter().any(|w| w.eq_ignore_ascii_case(word))
        {
            return false;
        }
        at += word.len();
    }
}

/// A size ("8", "3.5"), one of [`PHRASE_WORDS`], or a nodal level or
/// station ("level IIA", "station 4R").
fn phrase_word(word: &str) -> bool {
    word.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        || PHRASE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word))
        || names_a_level(word)
}

/// A nodal level in Roman numerals with its sublevel ("II", "IIA", "Vb") or
/// a station number with its side letter ("4R", "10L"), upper case as
/// written: "I" alone is a pronoun more often than a level.
fn names_a_level(word: &str) -> bool {
    let (stem, sub) = match word.as_bytes() {
        [rest @ .., b'A' | b'B' | b'a' | b'b' | b'R' | b'L'] => (&word[..rest.len()], true),
        _ => (word, false),
    };
    let roman = stem.len() >= 2 && stem.bytes().all(|b| matches!(b, b'I' | b'V'))
        || (stem.len() == 1 && sub && matches!(stem, "I" | "V"))
        || (stem == "V" && !sub);
    let station =
        sub && !stem.is_empty() && stem.len() <= 2 && stem.bytes().all(|b| b.is_ascii_digit());
    roman || station
}

/// Whether a site is named within a few words of `s..e`, in the same clause.
fn organ_near(text: &str, s: usize, e: usize, sites: &[(usize, usize, u32)]) -> bool {
    let bytes = text.as_bytes();
    sites.iter().any(|&(site_start, site_end, _)| {
        let gap = if site_end <= s {
            &bytes[site_end..s]
        } else if site_start >= e {
            &bytes[e..site_start]
        } else {
            return false;
        };
        !gap.iter()
            .any(|b| matches!(b, b'.' | b';' | b':' | b'(' | b')'))
            && word_count(gap) <= ORGAN_WORDS
    })
}

/// Phrases that offer the finding after them as what the finding before
/// them means.
const LINKS: [&str; 28] = [
    "suggestive of",
    "s/o",
    "corresponding to",
    "suggesting",
    "suggests",
    "concerning for",
    "suspicious for",
    "worrisome for",
    "consistent with",
    "compatible with",
    "in keeping with",
    "characteristic of",
    "diagnostic of",
    "indicative of",
    "typical of",
    "indicating",
    "indicates",
    "represent",
    "represents",
    "representing",
    "reflect",
    "reflects",
    "reflecting",
    "likely",
    "probably",
    "favoring",
    "favouring",
    "due to",
];

/// Links each observation to the diagnosis a link phrase offers for it,
/// within one sentence's findings (`offset`: index of `findings[0]` in the
/// extraction).
pub(crate) fn link_suggestions(text: &str, findings: &mut [Finding<'_>], offset: usize) {
    for j in 1..findings.len() {
        let i = j - 1;
        let gap = &text[findings[i].term_end.min(findings[j].term_start)..findings[j].term_start];
        if gap.contains(". ") || gap.contains(';') {
            continue;
        }
        // "phlebolith versus ureteric calculus": an alternative offered for
        // the same observation is suggested by it as the first one is.
        if offers_alternative(gap) {
            offer_alternative(text, findings, i, j, offset);
            continue;
        }
        if !(contains_link(gap) || appositive_hedge(gap) || queries_next(gap)) {
            continue;
        }
        // What a resolved observation is offered as ("the uptake has
        // resolved, reflecting a healed fracture") is there, not resolved.
        if findings[i].change == Some(Change::Resolved) {
            if findings[j].assertion == Assertion::Absent {
                findings[j].assertion = Assertion::Present;
            }
            if findings[j].change == Some(Change::Resolved) {
                findings[j].change = None;
            }
        }
        // A list of observations before the link all point at the diagnosis
        // ("wall thickening and fat stranding, suggestive of colitis"; "a
        // cyst with T2 shading, consistent with an endometrioma"); nearest
        // first.
        let mut chain = vec![i];
        let mut k = i;
        while k > 0 && joins_list(&text[findings[k - 1].term_end..findings[k].term_start]) {
            k -= 1;
            chain.push(k);
        }
        for &k in &chain {
            findings[k].suggests.push(offset + j);
            if findings[k].change == Some(Change::New) && findings[j].change.is_none() {
                findings[j].change = Some(Change::New);
            }
        }
        // A diagnosis offered for an observation lies where the observation
        // lies, across the comma or relative clause that offers it ("a new
        // opacity in the left lower lobe, which may represent pneumonia"),
        // when the observations before the link agree on one side.
        if findings[j].laterality.is_none() {
            let mut sides = chain.iter().filter_map(|&k| findings[k].laterality);
            // Failing a side in the list, the sentence's before the link:
            // "a right adrenal nodule which shows signal drop-out, in keeping
            // with an adenoma".
            let agreed = match sides.next() {
                Some(side) => sides.all(|other| other == side).then_some(side),
                None => {
                    let mut earlier = (0..i).filter_map(|k| findings[k].laterality);
                    earlier
                        .next()
                        .filter(|&side| earlier.all(|other| other == side))
                }
            };
            if let Some(side) = agreed {
                findings[j].laterality = Some(side);
            }
        }
        // The diagnosis offered for a measured observation has its size
        // when it is the measured thing: one the observation is equated
        // with ("a 1.1 cm anechoic lesion, consistent with a simple cyst"),
        // or a lesion it is suspected to be ("a 2.8 cm mass, suspicious for
        // carcinoma": the size is stated for what may be a carcinoma); not
        // a process it may show ("a 3.2 cm collection, possibly an
        // anastomotic leak").
        if findings[j].measurements.is_empty() && !names_a_cause(gap) {
            // Failing a measured list, the measured observation the clause
            // is about: "a 2.5 cm diverticulum arises above a prominent
            // cricopharyngeus, consistent with a Zenker diverticulum".
            // What a "with" phrase adds is read with its head: in "narrowing
            // to 4 mm with upstream dilatation to 3.4 cm, consistent with
            // stricture" the stricture is the narrowing.
            let mut head = i;
            while head > 0 && {
                let between = &text[findings[head - 1].term_end..findings[head].term_start];
                contains_words(between, "with") && !between.contains(['.', ';'])
            } {
                head -= 1;
            }
            let measured = (head != i && !findings[head].measurements.is_empty())
                .then_some(head)
                .or_else(|| {
                    chain
                        .iter()
                        .copied()
                        .find(|&k| !findings[k].measurements.is_empty())
                })
                .or_else(|| (0..i).rev().find(|&k| !findings[k].measurements.is_empty()));
            if let Some(measured) = measured
                && stated_for(text, &findings[j], &findings[measured])
            {
                findings[j].measurements = findings[measured].measurements.clone();
            }
        }
    }
}

/// Whether the diagnosis offered for a measured observation has its size:
/// never a process ([`PROCESS_NOUNS`]); otherwise when it is the measured thing, one the observation is equated with ("a
/// 1.1 cm anechoic lesion, consistent with a simple cyst"), or what a focal
/// lesion is suspected to be ("a 2.8 cm mass, suspicious for carcinoma", "a
/// 2.1 cm region of nonenhancement, concerning for necrosis"); not a process
/// an organ's measure may show ("the junctional zone is thickened to 15 mm,
/// suggestive of adenomyosis", "nodes up to 11 mm, suggestive of mesenteric
/// adenitis").
fn stated_for(text: &str, diagnosis: &Finding<'_>, measured: &Finding<'_>) -> bool {
    let last = crate::words::last_word(diagnosis.term);
    if PROCESS_NOUNS.iter().any(|w| w.eq_ignore_ascii_case(last)) {
        return false;
    }
    match diagnosis.assertion {
        Assertion::Present => true,
        Assertion::Possible => {
            names_a_lesion(diagnosis.term) || names_a_focal_lesion(text, measured)
        }
        Assertion::Absent => false,
    }
}

/// Whether a finding names a bounded thing seen, whatever it turns out to
/// be: a lesion ([`LESION_NOUNS`]; a lymph node excepted, whose size is the
/// node's own) or a focus of some appearance ("focus", "opacity",
/// "calcification", "hemorrhage", "a region of nonenhancement").
fn names_a_focal_lesion(text: &str, finding: &Finding<'_>) -> bool {
    let term = finding.term;
    let first = term.split_ascii_whitespace().next().unwrap_or_default();
    let last = crate::words::last_word(term);
    let any = |words: &[&str], word: &str| words.iter().any(|w| w.eq_ignore_ascii_case(word));
    let mut before = text[..finding.term_start]
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .rev();
    let contained = before.next().is_some_and(|w| w.eq_ignore_ascii_case("of"))
        && before.next().is_some_and(|w| any(&FOCAL_NOUNS, w));
    (names_a_lesion(term) && !any(&["node", "nodes"], last))
        || any(&FOCAL_NOUNS, last)
        || any(&FOCAL_NOUNS, first)
        || contained
}

/// Diagnoses that are an event or process a lesion shows, with no extent of
/// their own: "a 4.5 cm collection, possibly an anastomotic leak", "new
/// hemorrhage, consistent with hemorrhagic transformation".
const PROCESS_NOUNS: [&str; 9] = [
    "leak",
    "leakage",
    "infection",
    "inflammation",
    "ileus",
    "obstruction",
    "perforation",
    "transformation",
    "progression",
];

/// See [`names_a_focal_lesion`].
const FOCAL_NOUNS: [&str; 17] = [
    "observation",
    "observations",
    "focus",
    "foci",
    "area",
    "areas",
    "region",
    "regions",
    "opacity",
    "opacities",
    "density",
    "densities",
    "calcification",
    "calcifications",
    "hemorrhage",
    "haemorrhage",
    "hematoma",
];

/// Phrases that give a finding's cause, not what it is: "nodes, likely
/// reactive in the setting of fibrosis", "dilatation due to obstruction".
const CAUSE_PHRASES: [&str; 7] = [
    "in the setting of",
    "secondary to",
    "due to",
    "related to",
    "caused by",
    "because of",
    "as a result of",
];

fn names_a_cause(gap: &str) -> bool {
    CAUSE_PHRASES.iter().any(|p| contains_words(gap, p))
}

/// Hedge words that offer a diagnosis in apposition, after a comma: "3 mm
/// calcification, possible renal calculus", "a 2.3 cm observation,
/// definitely hepatocellular carcinoma". Without the comma ("wall
/// thickening and possible fluid") they hedge a finding of their own.
const APPOSITIVE_HEDGES: [&str; 9] = [
    "possible",
    "possibly",
    "probable",
    "presumed",
    "presumably",
    "definite",
    "definitely",
    "favored",
    "favoured",
];

/// Whether `gap` ends in ", [most] <hedge> [a|an|the]" before a diagnosis.
fn appositive_hedge(gap: &str) -> bool {
    let Some((_, rest)) = gap.rsplit_once(',') else {
        return false;
    };
    let mut words = rest
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .peekable();
    if words.peek().is_some_and(|w| w.eq_ignore_ascii_case("most")) {
        words.next();
    }
    let Some(hedge) = words.next() else {
        return false;
    };
    APPOSITIVE_HEDGES
        .iter()
        .any(|h| h.eq_ignore_ascii_case(hedge))
        && words.all(is_article)
}

/// Whether `gap` ends in a "?" that queries the next finding as what the
/// one before may be: "a small collection, ? early abscess", "plaque,
/// ?ulcerated".
fn queries_next(gap: &str) -> bool {
    gap.trim_end()
        .strip_suffix('?')
        .is_some_and(|before| before.is_empty() || before.ends_with([' ', ',', '-', '(']))
}

/// Whether `gap` only offers an alternative: "versus", "vs", "or".
fn offers_alternative(gap: &str) -> bool {
    let mut words = gap
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty());
    words.next().is_some_and(|w| {
        ["versus", "vs", "or"]
            .iter()
            .any(|a| a.eq_ignore_ascii_case(w))
    }) && words.all(is_article)
}

/// "a", "an" or "the": what may stand between a link word and its noun.
fn is_article(word: &str) -> bool {
    ["a", "an", "the"]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(word))
}

/// `findings[j]` is offered as an alternative to `findings[i]`: whatever
/// suggests `findings[i]` suggests it too, and it has the size `findings[i]`
/// took from its observation.
fn offer_alternative(text: &str, findings: &mut [Finding<'_>], i: usize, j: usize, offset: usize) {
    let target = offset + i;
    let sources: Vec<usize> = (0..i)
        .filter(|&k| findings[k].suggests.contains(&target))
        .collect();
    if sources.is_empty() {
        return;
    }
    for &k in &sources {
        findings[k].suggests.push(offset + j);
    }
    if findings[j].measurements.is_empty()
        && !findings[i].measurements.is_empty()
        && sources
            .iter()
            .any(|&k| findings[k].measurements == findings[i].measurements)
        && stated_for(text, &findings[j], &findings[sources[0]])
    {
        findings[j].measurements = findings[i].measurements.clone();
    }
}

/// Head nouns of lesions: things with an extent of their own, as opposed
/// to processes ("transformation", "leak", "infection") and states.
const LESION_NOUNS: [&str; 56] = [
    "cyst",
    "cysts",
    "lesion",
    "lesions",
    "nodule",
    "nodules",
    "mass",
    "masses",
    "tumor",
    "tumors",
    "tumour",
    "tumours",
    "metastasis",
    "metastases",
    "abscess",
    "abscesses",
    "phlegmon",
    "polyp",
    "polyps",
    "node",
    "nodes",
    "diverticulum",
    "diverticula",
    "neoplasm",
    "neoplasms",
    "malignancy",
    "cancer",
    "aneurysm",
    "aneurysms",
    "pseudoaneurysm",
    "collection",
    "collections",
    "thrombus",
    "thrombi",
    "calculus",
    "calculi",
    "stone",
    "stones",
    "deposit",
    "deposits",
    "implant",
    "implants",
    "fibroid",
    "fibroids",
    "hydrosalpinx",
    "hydrosalpinges",
    "pseudocyst",
    "pseudocysts",
    "empyema",
    "hemothorax",
    "haemothorax",
    "hemopericardium",
    "haemopericardium",
    "hematocele",
    "haematocele",
    "lymphocele",
];

/// Whether a finding's term names a lesion: its last word is one of
/// [`LESION_NOUNS`] or a tumour name in "-oma" ("carcinoma", "hematoma",
/// "endometrioma"; not "stoma").
pub(crate) fn names_a_lesion(term: &str) -> bool {
    let head = crate::words::last_word(term).to_ascii_lowercase();
    let tumour_name = ["oma", "omas", "omata"]
        .iter()
        .any(|suffix| head.ends_with(suffix))
        && !head.starts_with("stoma");
    tumour_name || LESION_NOUNS.contains(&head.as_str())
}

/// The whole-word [`REFERENCE_CUES`] of `text[start..end]` (byte ranges of
/// `text`) into `out`, the first [`MAX_CUES_PER_SENTENCE`]; how many.
fn reference_cues(
    text: &str,
    start: usize,
    end: usize,
    out: &mut [(usize, usize); MAX_CUES_PER_SENTENCE],
) -> usize {
    static CUES: OnceLock<Option<AhoCorasick>> = OnceLock::new();
    let Some(cues) = CUES
        .get_or_init(|| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(REFERENCE_CUES)
                .ok()
        })
        .as_ref()
    else {
        return 0;
    };
    let bytes = text.as_bytes();
    let whole_words = cues.find_iter(&text[start..end]).filter(|m| {
        let (s, e) = (start + m.start(), start + m.end());
        let before = s.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(e).copied();
        !before.is_some_and(is_word_byte) && !after.is_some_and(is_word_byte)
    });
    let mut count = 0;
    for (slot, m) in out.iter_mut().zip(whole_words) {
        *slot = (start + m.start(), start + m.end());
        count += 1;
    }
    count
}

/// Reference cues a sentence holds at most, as far as anyone has written
/// ("biopsy of ... or aspiration of ..." is two).
const MAX_CUES_PER_SENTENCE: usize = 8;

fn contains_link(gap: &str) -> bool {
    static LINK_WORDS: OnceLock<Option<AhoCorasick>> = OnceLock::new();
    let Some(links) = LINK_WORDS
        .get_or_init(|| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(LINKS)
                .ok()
        })
        .as_ref()
    else {
        return false;
    };
    let bytes = gap.as_bytes();
    links.find_overlapping_iter(gap).any(|m| {
        let before = m.start().checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(m.end()).copied();
        !before.is_some_and(is_word_byte) && !after.is_some_and(is_word_byte)
    })
}

/// Only list words between two findings: ",", "and", "with".
fn joins_list(gap: &str) -> bool {
    gap.split(|c: char| !c.is_ascii_alphanumeric())
        .all(|w| w.is_empty() || ["and", "with", "or"].contains(&w.to_ascii_lowercase().as_str()))
}

#[cfg(test)]
mod tests {
    use crate::{Assertion, Axis, Change, Laterality};

    /// (term, assertion, sites, descriptors) of each finding of `text`.
    fn read(text: &str) -> Vec<(String, Assertion, Vec<String>, Vec<String>)> {
        crate::extract(text, crate::shared_lexicon())
            .findings
            .iter()
            .map(|f| {
                (
                    f.term.to_string(),
                    f.assertion,
                    f.body_site.iter().map(|s| s.text.to_string()).collect(),
                    f.descriptors.iter().map(|d| d.text.to_string()).collect(),
                )
            })
            .collect()
    }

    fn terms(text: &str) -> Vec<String> {
        read(text).into_iter().map(|(term, ..)| term).collect()
    }

    #[test]
    fn a_label_naming_a_finding_over_its_measure_is_the_finding() {
        // A target-lesion line: the label is the finding, the body its
        // size and change.
        assert_eq!(
            terms(
                "FINDINGS:\nHepatic metastasis: 32 mm, decreased.\nTumour height: 7 cm from the anal verge.\nLymph nodes: 8 mm, normal."
            ),
            ["metastasis"]
        );
    }

    #[test]
    fn a_label_naming_a_finding_gives_it_the_side_before_it() {
        let read = crate::findings_of(
            "FINDINGS:\nRight renal cyst: 14 mm, unchanged.\nLeft adrenal nodule: 11 mm.\nLiver lesion: 9 mm, decreased.",
            |f| (f.term, f.laterality, f.change),
        );
        use crate::{Change, Laterality};
        assert_eq!(
            read,
            [
                ("cyst", Some(Laterality::Right), Some(Change::Stable)),
                ("adrenal nodule", Some(Laterality::Left), None),
                ("lesion", None, Some(Change::Decreased)),
            ]
        );
    }

    #[test]
    fn a_cardiac_sub_header_gives_no_side() {
        let sides = crate::findings_of(
            "FINDINGS:\nLeft ventricle: Mild hypokinesis of the inferolateral wall.\nLeft circumflex: Minimal plaque.\nOther: Small left pleural effusion.",
            |f| (f.term, f.laterality),
        );
        assert_eq!(
            sides,
            [
                ("Mild hypokinesis", None),
                ("Minimal plaque", None),
                ("Small left pleural effusion", Some(crate::Laterality::Left)),
            ]
        );
    }

    #[test]
    fn a_finding_labelling_its_line_is_placed_by_the_line() {
        let sides = crate::findings_of(
            "FINDINGS:\nTwo pulmonary nodules: 6 mm in the left upper lobe and 4 mm in the right middle lobe.",
            |f| (f.term, f.laterality),
        );
        assert_eq!(
            sides,
            [("pulmonary nodules", Some(crate::Laterality::Bilateral))]
        );
    }

    #[test]
    fn what_a_plan_assesses_and_where_a_tumour_was_are_no_findings() {
        assert_eq!(
            terms(
                "IMPRESSION: Lytic femoral lesion; radiographs are recommended to assess fracture risk."
            ),
            ["Lytic femoral lesion"]
        );
        assert_eq!(
            terms("FINDINGS: Residual non-mass enhancement at the tumour bed measuring 14 mm."),
            ["non-mass enhancement"]
        );
    }

    #[test]
    fn a_pronoun_names_the_organ_of_its_size_and_shape() {
        assert_eq!(
            terms("FINDINGS: The appendix is seen. It is non-compressible, dilated to 9 mm."),
            ["non-compressible", "dilated"]
        );
        // An appearance is more often the lesion's, named before.
        assert_eq!(
            terms("FINDINGS: A 2 cm nodule in the right lobe. It is hypoechoic."),
            ["nodule"]
        );
    }

    #[test]
    fn the_words_of_response_reports_are_findings() {
        assert_eq!(
            terms(
                "FINDINGS: New 8 mm deposit on the serosal surface. No new sites of disease. 2.8 cm treated zone. The left axillary nodal conglomerate has decreased. Several have cavitated."
            ),
            [
                "deposit",
                "sites of disease",
                "treated zone",
                "nodal conglomerate",
                "Several have cavitated"
            ]
        );
        // A soft tissue mass stays one finding with its head.
        assert_eq!(
            terms("FINDINGS: An enhancing epidural soft tissue mass extends from T7 to T9."),
            ["enhancing epidural soft tissue mass"]
        );
    }

    #[test]
    fn generic_heads_and_words_that_only_look_like_findings() {
        // "defect" and "injury" alone are findings; their kinds win as
        // longer words ("filling defect").
        assert_eq!(
            terms(
                "FINDINGS: A small defect in the anterior duodenal wall. No solid organ injury. A filling defect."
            ),
            ["small defect", "injury", "filling defect"]
        );
        // "well-corticated" is a margin, not "well" (normal); "most
        // prominent" places, it does not enlarge.
        assert_eq!(
            terms(
                "FINDINGS: A 4 mm well-corticated ossific fragment. Large pneumoperitoneum, most prominent anterior to the liver."
            ),
            ["well-corticated ossific fragment", "Large pneumoperitoneum"]
        );
    }

    #[test]
    fn parts_of_a_dissection_or_an_aneurysm_are_places() {
        // The neck and wall of an aneurysm are where it is measured or
        // leaks, not a second aneurysm; a branch arising from a false lumen
        // is a finding, the false lumen alone a place.
        assert_eq!(
            terms("FINDINGS: The aneurysm neck is 2.2 cm in length."),
            Vec::<String>::new()
        );
        assert_eq!(
            terms("FINDINGS: Active extravasation from the posterolateral aneurysm wall."),
            ["Active extravasation"]
        );
        assert_eq!(
            terms("FINDINGS: The left renal artery arises from the false lumen."),
            ["arises from the false lumen"]
        );
    }

    #[test]
    fn a_lesion_named_again_as_a_place_is_no_new_finding() {
        let text = "FINDINGS: A 3 cm mass in the right kidney. \
                    Punctate calcifications are seen within the mass. \
                    Necrosis is seen along the margins of the mass.";
        assert_eq!(terms(text), ["mass", "Punctate calcifications", "Necrosis"]);
        // First named as a place, it is reported there; "the" of another
        // noun phrase does not make it a reference.
        assert_eq!(
            terms("FINDINGS: Punctate calcifications are seen within the mass."),
            ["Punctate calcifications", "mass"]
        );
        assert_eq!(
            terms(
                "FINDINGS: Subfalcine herniation. IMPRESSION: Midline shift to the left and subfalcine herniation."
            ),
            [
                "Subfalcine herniation",
                "Midline shift",
                "subfalcine herniation"
            ]
        );
    }

    #[test]
    fn coordinated_predicates_are_said_of_one_organ() {
        assert_eq!(
            terms(
                "FINDINGS: The right ovary is enlarged, measuring 5.2 x 4.0 cm, and is heterogeneous."
            ),
            ["enlarged", "heterogeneous"]
        );
    }

    #[test]
    fn an_adjective_before_a_head_qualifies_it() {
        assert_eq!(
            terms("FINDINGS: Occlusive and nonocclusive emboli in the left lower lobe arteries."),
            ["Occlusive and nonocclusive emboli"]
        );
        assert_eq!(
            terms("IMPRESSION: Ruptured 6.1 cm infrarenal abdominal aortic aneurysm."),
            ["Ruptured 6.1 cm infrarenal abdominal aortic aneurysm"]
        );
    }

    #[test]
    fn references_name_no_finding() {
        // Where a finding was seen it is one; as the target of a
        // procedure, a team's name, a procedure it qualifies for or what
        // dense tissue may hide, it is not.
        for text in [
            "IMPRESSION: Ultrasound-guided biopsy of the mass and the axillary node recommended.",
            "IMPRESSION: Stroke team notified at 09:12.",
            "IMPRESSION: Small core, favourable for thrombectomy.",
            "FINDINGS: The breasts are heterogeneously dense, which may obscure small masses.",
        ] {
            let found = terms(text);
            assert!(
                !found.iter().any(
                    |t| ["mass", "node", "Stroke", "thrombectomy", "small masses"]
                        .contains(&t.as_str())
                ),
                "{text}: {found:?}"
            );
        }
        assert_eq!(
            terms("IMPRESSION: Small core, favourable for thrombectomy."),
            ["Small core"]
        );
        assert_eq!(
            terms("FINDINGS: Irregular mass at 2 o'clock."),
            ["Irregular mass"]
        );
        // The procedure a generic post-surgical head names is the state.
        let found = terms("FINDINGS: Postsurgical changes of right hemicolectomy.");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].ends_with("hemicolectomy"), "{found:?}");
        assert_eq!(
            terms("FINDINGS: Postsurgical changes in the pelvis."),
            ["Postsurgical changes"]
        );
        // The normal predicate "preserved": no finding.
        assert!(terms("FINDINGS: Small bowel wall enhancement is preserved.").is_empty());
        // A list after a normal descriptor is normal; an abnormal item is not.
        assert!(terms("FINDINGS: Normal echotexture and vascularity.").is_empty());
        assert_eq!(
            terms("FINDINGS: Normal echotexture. Increased vascularity."),
            ["Increased vascularity"]
        );
    }

    #[test]
    fn a_descriptor_said_of_an_organ_is_a_finding_of_it() {
        let found = read("The spleen is enlarged.");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "enlarged");
        assert_eq!(found[0].2, ["spleen"]);
        // Each predicate is its own finding; the side is the sentence's.
        let extraction = crate::extract(
            "The right testicle is enlarged and heterogeneous.",
            crate::shared_lexicon(),
        );
        let found: Vec<_> = extraction
            .findings
            .iter()
            .map(|f| (f.term, f.laterality))
            .collect();
        assert_eq!(
            found,
            [
                ("enlarged", Some(Laterality::Right)),
                ("heterogeneous", Some(Laterality::Right))
            ]
        );
        // Under an organ sub-header the organ need not be repeated.
        assert_eq!(terms("SPLEEN: Enlarged."), ["Enlarged"]);
    }

    #[test]
    fn a_descriptor_with_no_organ_or_head_is_no_finding() {
        assert_eq!(
            terms("The study is limited by motion."),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_phrase_never_reaches_back_over_another_head() {
        // Found by the property test: "tension.physiologic" is one word to
        // the walk back, and it holds the first head.
        let spans = crate::findings_of(
            "FINDINGS: T2 hyperintense tension.physiologic, tension ",
            |f| (f.term, f.term_start),
        );
        assert_eq!(spans, [("T2 hyperintense tension", 10), ("tension", 47)]);
    }

    #[test]
    fn uptake_graded_against_blood_pool_or_liver_is_the_lesions_grade() {
        assert_eq!(
            terms(
                "FINDINGS: A left level III lymph node measures 9 mm, decreased, with uptake less than mediastinal blood pool."
            ),
            ["lymph node"]
        );
        assert_eq!(
            terms("FINDINGS: Intense uptake in the right iliac bone, greater than liver."),
            ["uptake"]
        );
    }

    #[test]
    fn tension_alone_is_the_physiology_and_named_anatomy_is_no_finding() {
        assert_eq!(terms("IMPRESSION: No tension."), ["tension"]);
        assert!(
            terms("FINDINGS: Lateral masses of C1 are intact. Cruciates and collaterals intact.")
                .is_empty()
        );
        assert!(terms("FINDINGS: Tension band wiring of the patella.").is_empty());
    }

    #[test]
    fn a_graded_eponym_and_a_hyphened_tracer_stay_in_the_phrase() {
        assert_eq!(
            terms("IMPRESSION: Minimally displaced Weber B fracture of the left distal fibula."),
            ["fracture"]
        );
        assert_eq!(
            terms("FINDINGS: Displaced Salter-Harris II fracture of the distal radius."),
            ["Displaced Salter-Harris II fracture"]
        );
        // A capitalised word before punctuation is no graded eponym.
        assert!(super::graded_eponym("Weber ,", 0, "Weber", 7).is_none());
        assert_eq!(
            terms("IMPRESSION: Iodine-avid right level III node."),
            ["Iodine-avid right level III node"]
        );
        assert_eq!(
            terms("FINDINGS: Patchy enhancement involving 8% of left ventricular mass."),
            ["Patchy enhancement"]
        );
    }

    #[test]
    fn a_team_a_meeting_a_time_and_the_study_quality_are_no_findings() {
        for text in [
            "IMPRESSION: Findings phoned to Dr. Hughes (stroke consultant) at 10:58.",
            "IMPRESSION: Referral to the endometriosis MDT is suggested.",
            "FINDINGS: Evolving infarct, larger than on the pre-thrombolysis scan.",
            "FINDINGS: Good opacification of the pulmonary arteries.",
        ] {
            let terms = terms(text);
            assert!(
                terms.len() <= 1 && terms.iter().all(|t| t == "Evolving infarct"),
                "{text}: {terms:?}"
            );
        }
    }

    #[test]
    fn a_sentence_opening_with_its_predicate_says_it_of_the_organ_in_hand() {
        assert_eq!(
            terms("LEFT TESTIS: 4.4 x 2.9 cm. Enlarged and heterogeneous, with absent flow."),
            ["Enlarged", "heterogeneous", "absent flow"]
        );
        assert_eq!(terms("Mildly enlarged."), ["enlarged"]);
    }

    #[test]
    fn descriptors_before_a_head_qualify_it() {
        let found = read("A small hypoechoic lesion in the liver.");
        assert_eq!(found.len(), 1, "{found:?}");
        // The term is the whole noun phrase; the descriptors are listed.
        assert_eq!(found[0].0, "small hypoechoic lesion");
        assert_eq!(found[0].3, ["small", "hypoechoic"]);
        let found = read("Rim-enhancing fluid collection in the pelvis.");
        assert_eq!(found[0].0, "Rim-enhancing fluid collection");
        assert_eq!(found[0].3, ["Rim-enhancing"]);
        let extraction = crate::extract(
            "T2 hyperintense foci in the periventricular white matter.",
            crate::shared_lexicon(),
        );
        let foci = &extraction.findings[0];
        assert_eq!(foci.term, "T2 hyperintense foci");
        assert_eq!(foci.descriptors[0].axis, Axis::Signal);
    }

    #[test]
    fn a_normal_head_is_no_finding() {
        assert_eq!(
            terms("Physiologic uptake in the bowel and bladder."),
            Vec::<String>::new()
        );
        assert_eq!(
            terms("The lymph nodes are normal in size."),
            Vec::<String>::new()
        );
        assert_eq!(
            terms("Abnormal uptake in the left rib."),
            ["Abnormal uptake"]
        );
    }

    #[test]
    fn what_is_said_of_a_node_is_the_finding() {
        let read = |text| crate::findings_of(text, |f| (f.term, f.laterality, f.assertion));
        assert_eq!(
            read("The lymph nodes are enlarged."),
            [("enlarged", None, Assertion::Present)]
        );
        assert_eq!(
            read("Bilateral retropharyngeal lymph nodes are mildly enlarged."),
            [(
                "enlarged",
                Some(crate::Laterality::Bilateral),
                Assertion::Present
            )]
        );
        assert_eq!(
            read("The lymph nodes are not enlarged."),
            [("enlarged", None, Assertion::Absent)]
        );
        // A node named with its own size stays the finding.
        assert_eq!(
            read("A 9 mm node is present."),
            [("node", None, Assertion::Present)]
        );
    }

    #[test]
    fn a_density_that_labels_a_number_is_no_finding() {
        assert_eq!(
            terms("A 1.6 cm adrenal nodule (density 8 HU)."),
            ["adrenal nodule"]
        );
        assert_eq!(terms("A cyst with attenuation of -5 HU."), ["cyst"]);
        assert_eq!(
            terms("Nodular density in the left base."),
            ["Nodular density"]
        );
    }

    #[test]
    fn an_observation_suggests_the_diagnosis_offered_for_it() {
        let extraction = crate::extract(
            "Wall thickening and fat stranding, suggestive of appendicitis.",
            crate::shared_lexicon(),
        );
        let suggests: Vec<_> = extraction
            .findings
            .iter()
            .map(|f| (f.term, f.suggests.clone()))
            .collect();
        assert_eq!(
            suggests,
            [
                ("Wall thickening", vec![2]),
                ("fat stranding", vec![2]),
                ("appendicitis", vec![])
            ]
        );
        // A new observation makes the diagnosis offered for it new.
        let extraction = crate::extract(
            "A new opacity, which may represent pneumonia.",
            crate::shared_lexicon(),
        );
        let pneumonia = &extraction.findings[1];
        assert_eq!(pneumonia.term, "pneumonia");
        assert_eq!(pneumonia.assertion, Assertion::Possible);
        assert_eq!(pneumonia.change, Some(Change::New));
        // An increased descriptor is no change of the diagnosis.
        let extraction = crate::extract(
            "Increased echogenicity of the liver, indicating steatosis.",
            crate::shared_lexicon(),
        );
        assert_eq!(extraction.findings[1].term, "steatosis");
        assert_eq!(extraction.findings[1].change, None);
        // A "with" phrase is read with its head: the teratoma is the mass.
        let extraction = crate::extract(
            "A 2.5 cm mass with a 1 cm calcification, consistent with a teratoma.",
            crate::shared_lexicon(),
        );
        assert_eq!(extraction.findings[2].term, "teratoma");
        assert_eq!(
            extraction.findings[2]
                .measurements
                .first()
                .map(|m| m.max_mm),
            Some(25.0)
        );
        // "s/o" and a "?" that opens a clause offer a diagnosis too, which
        // takes the size of the observation it is offered for.
        for text in [
            "A 1.1 cm T2 hyperintense lesion in segment VIII, s/o simple cyst.",
            "A collection of 1.1 x 0.8 cm near the tip, ? early abscess.",
        ] {
            let extraction = crate::extract(text, crate::shared_lexicon());
            assert_eq!(extraction.findings[0].suggests, vec![1], "{text}");
            let offered = &extraction.findings[1];
            assert_eq!(offered.assertion, Assertion::Possible, "{text}");
            assert_eq!(
                offered.measurements.first().map(|m| m.max_mm),
                Some(11.0),
                "{text}"
            );
        }
    }

    #[test]
    fn what_a_resolved_observation_reflects_is_there() {
        let extraction = crate::extract(
            "The focal uptake in the right 5th rib has resolved, reflecting a healed fracture.",
            crate::shared_lexicon(),
        );
        let found: Vec<_> = extraction
            .findings
            .iter()
            .map(|f| (f.term, f.assertion, f.change))
            .collect();
        assert_eq!(
            found,
            [
                ("focal uptake", Assertion::Absent, Some(Change::Resolved)),
                ("healed fracture", Assertion::Present, None)
            ]
        );
    }

    #[test]
    fn patient_safety_assertions() {
        let judged = |text: &str, term: &str| {
            crate::extract(text, crate::shared_lexicon())
                .findings
                .iter()
                .find(|f| f.term.to_ascii_lowercase().ends_with(term))
                .map(|f| (f.assertion, f.change))
        };
        assert_eq!(
            judged(
                "This CT angiogram is negative for pulmonary embolism.",
                "pulmonary embolism"
            ),
            Some((Assertion::Absent, None))
        );
        assert_eq!(
            judged(
                "There is no significant interval change in the 6 mm nodule.",
                "nodule"
            ),
            Some((Assertion::Present, Some(Change::Stable)))
        );
        assert_eq!(
            judged(
                "Right testicular torsion with absent flow.",
                "testicular torsion"
            ),
            Some((Assertion::Present, None))
        );
        assert_eq!(
            judged("Right testicular torsion with absent flow.", "absent flow"),
            Some((Assertion::Present, None))
        );
        assert_eq!(
            judged(
                "The kidneys are free of stones and without evidence of hydronephrosis.",
                "hydronephrosis"
            ),
            Some((Assertion::Absent, None))
        );
        // After a comma, "consistent with" reads on its own; without one the
        // negation reaches through it.
        assert_eq!(
            judged(
                "No intrauterine pregnancy, consistent with a tubal ectopic pregnancy.",
                "ectopic pregnancy"
            ),
            Some((Assertion::Present, None))
        );
        assert_eq!(
            judged("No findings consistent with pneumonia.", "pneumonia"),
            Some((Assertion::Absent, None))
        );
        // A hedge after a trailing "with" phrase is that phrase's.
        assert_eq!(
            judged(
                "Large joint effusion with lipohemarthrosis suspected.",
                "joint effusion"
            ),
            Some((Assertion::Present, None))
        );
    }
}

//! Structured assessment categories stated in a report: BI-RADS, Lung-RADS,
//! LI-RADS, TI-RADS, PI-RADS, O-RADS, Bosniak, CAD-RADS, ASPECTS and the
//! Fleischner category. One case-insensitive regex with a branch per
//! system, compiled once; each category is normalised to the system's own
//! spelling ("4a" → "4A", "LR 5" → "LR-5", "Bosniak 2F" → "IIF") so codes
//! can be looked up in mappings/assessments.tsv.

use std::sync::OnceLock;

use regex::{Captures, Regex};

use crate::layout::Layout;
use crate::lexicon::Lexicon;
use crate::{Assessment, AssessmentSystem, BodySite, Laterality};

/// Separators between a system's name and its category: "BI-RADS 4",
/// "BI-RADS: 4", "BI-RADS category 4", "BI-RADS assessment - category 4".
const JOIN: &str = r"(?:\s*(?:®|\(r\)))?(?:\s+(?:v?\d{4}|v\d(?:\.\d)?|version\s+\d(?:\.\d)?|us|mri?|final|overall))*(?:\s*(?:assessment|category|cat\.?|score|classification|class|type|grade|level|risk|of|is)(?-u:\b))*\s*[:=\-–]?\s*(?:category\s*)?";

/// The assessment pattern. Its word boundaries are ASCII (`(?-u:\b)`), as
/// in `notify`: a Unicode one stops the lazy DFA on any non-ASCII text.
fn pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let source = format!(
            concat!(
                r"(?i)(?-u:\b)(?:",
                r"(?:acr\s+)?bi-?\s?rads{j}(?P<birads>[0-6])(?P<birads_sub>[abc])?(?-u:\b)",
                r"|lung-?\s?rads{j}(?P<lungrads>[0-4])(?P<lungrads_sub>[abx])?(?P<lungrads_s>s)?(?-u:\b)",
                r"|(?:li-?\s?rads{j}(?:lr-?\s?)?|lr-\s?|lr\s)(?P<lirads>[1-5]|m|tiv|nc)(?-u:\b)",
                r"|(?:(?:acr\s+)?ti-?\s?rads{j}(?:tr\s?-?)?|tr-?)(?P<tirads>[1-5])(?-u:\b)",
                r"|pi-?\s?rads{j}(?P<pirads>[1-5])(?-u:\b)",
                r"|o-?\s?rads{j}(?P<orads>[0-5])(?-u:\b)",
                r"|bosniak{j}(?P<bosniak>iif|ii\s?f|2\s?f|iv|iii|ii|i|[1-4])(?:(?-u:\b)|$)",
                r"|cad-?\s?rads{j}(?P<cadrads>[0-5]|n)(?P<cadrads_sub>[ab])?(?-u:\b)",
                r"|aspects?{j}(?P<aspects>10|[0-9])(?-u:\b)(?:\s*/\s*10(?-u:\b))?",
                r"|fleischner(?:\s+society)?\s+category\s+(?P<fleischner>[a-z0-9]+)(?-u:\b)",
                r")"
            ),
            j = JOIN
        );
        match Regex::new(&source) {
            Ok(regex) => regex,
            Err(error) => panic!("the assessment pattern is invalid: {error}"),
        }
    })
}

/// Words one of which every assessment contains: most reports have none,
/// and this one pass spares them the regex.
///
/// The text is lower-cased for it rather than matched case-insensitively:
/// a case-sensitive automaton of this size gets the SIMD literal
/// prefilter, which skips prose several times faster than a byte-by-byte
/// walk (leftmost-first, as the prefilter does not serve the standard
/// match kind).
fn may_state_one(text: &str) -> bool {
    static NAMES: OnceLock<Option<aho_corasick::AhoCorasick>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build([
                "rads",
                "lr-",
                "lr ",
                "bosniak",
                "aspects",
                "aspect score",
                "fleischner",
                "tr1",
                "tr2",
                "tr3",
                "tr4",
                "tr5",
                "tr-",
            ])
            .ok()
    });
    names
        .as_ref()
        .is_none_or(|names| names.is_match(&text.to_ascii_lowercase()))
}

/// The assessments of a report (byte offsets, like the rest of the core
/// until `offsets::to_char_offsets`).
pub(crate) fn assessments<'a>(
    text: &'a str,
    layout: &Layout<'a>,
    lexicon: &'a Lexicon,
) -> Vec<Assessment<'a>> {
    let mut out = Vec::new();
    if !may_state_one(text) {
        return out;
    }
    for captures in pattern().captures_iter(text) {
        let Some(whole) = captures.get(0) else {
            continue;
        };
        let Some((system, category)) = category(&captures) else {
            continue;
        };
        // Sentences are in text order: a binary search, not a walk per match
        // (thousands of categories in one text were quadratic).
        let after = layout
            .sentences
            .partition_point(|s| s.start <= whole.start());
        let sentence = after
            .checked_sub(1)
            .map(|index| &layout.sentences[index])
            .filter(|s| whole.start() < s.end.max(s.start + 1));
        let (from, to) = sentence.map_or((whole.start(), whole.end()), |s| (s.start, s.end));
        let section = sentence.map_or(crate::SectionKind::Other, |s| {
            layout.sections[s.section].kind
        });
        out.push(Assessment {
            system,
            code: lexicon.assessment_code(system, &category),
            category,
            section,
            laterality: side(&text[from..to]),
            body_site: site(text, from, to, lexicon),
            text: &text[whole.start()..whole.end()],
            start: whole.start(),
            end: whole.end(),
        });
    }
    out
}

/// The system and canonical category of a match.
fn category(captures: &Captures<'_>) -> Option<(AssessmentSystem, String)> {
    let group = |name: &str| captures.name(name).map(|m| m.as_str().to_ascii_uppercase());
    if let Some(n) = group("birads") {
        let sub = group("birads_sub").filter(|_| n == "4").unwrap_or_default();
        return Some((AssessmentSystem::BiRads, n + &sub));
    }
    if let Some(n) = group("lungrads") {
        let sub = group("lungrads_sub")
            .filter(|_| n == "4")
            .unwrap_or_default();
        let s = group("lungrads_s").unwrap_or_default();
        return Some((AssessmentSystem::LungRads, n + &sub + &s));
    }
    if let Some(n) = group("lirads") {
        return Some((AssessmentSystem::LiRads, format!("LR-{n}")));
    }
    if let Some(n) = group("tirads") {
        return Some((AssessmentSystem::TiRads, format!("TR{n}")));
    }
    if let Some(n) = group("pirads") {
        return Some((AssessmentSystem::PiRads, n));
    }
    if let Some(n) = group("orads") {
        return Some((AssessmentSystem::ORads, n));
    }
    if let Some(n) = group("bosniak") {
        let roman = match n.replace(' ', "").as_str() {
            "1" | "I" => "I",
            "2" | "II" => "II",
            "2F" | "IIF" => "IIF",
            "3" | "III" => "III",
            "4" | "IV" => "IV",
            _ => return None,
        };
        return Some((AssessmentSystem::Bosniak, roman.to_string()));
    }
    if let Some(n) = group("cadrads") {
        let sub = group("cadrads_sub")
            .filter(|_| n == "4")
            .unwrap_or_default();
        return Some((AssessmentSystem::CadRads, n + &sub));
    }
    if let Some(n) = group("aspects") {
        return Some((AssessmentSystem::Aspects, n));
    }
    group("fleischner").map(|n| (AssessmentSystem::Fleischner, n))
}

/// The side a sentence names: "left", "right", or both or "bilateral".
fn side(sentence: &str) -> Option<Laterality> {
    let lower = sentence.to_ascii_lowercase();
    let has = |word: &str| {
        lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == word)
    };
    match (
        has("left"),
        has("right"),
        has("bilateral") || has("bilaterally"),
    ) {
        (_, _, true) | (true, true, _) => Some(Laterality::Bilateral),
        (true, false, false) => Some(Laterality::Left),
        (false, true, false) => Some(Laterality::Right),
        _ => None,
    }
}

/// The first body site named in `text[from..to]`.
fn site<'a>(text: &'a str, from: usize, to: usize, lexicon: &'a Lexicon) -> Option<BodySite<'a>> {
    let mut found = None;
    crate::words::select_words(&lexicon.words.automaton, text, from, to, |s, e, pattern| {
        if found.is_none()
            && let Some(concept) = lexicon.words.entries[pattern].site
        {
            found = Some(BodySite {
                text: &text[s..e],
                code: lexicon.body_sites.get(concept as usize),
                start: s,
                end: e,
            });
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(AssessmentSystem, String)> {
        let lexicon = crate::shared_lexicon();
        crate::extract(text, lexicon)
            .assessments
            .into_iter()
            .map(|a| (a.system, a.category))
            .collect()
    }

    #[test]
    fn every_system_in_its_usual_spellings() {
        use AssessmentSystem::*;
        let cases: &[(&str, AssessmentSystem, &str)] = &[
            ("ASSESSMENT: BI-RADS 4A: low suspicion.", BiRads, "4A"),
            ("BIRADS category 2 - benign.", BiRads, "2"),
            ("ACR BI-RADS® Category 0: incomplete.", BiRads, "0"),
            ("Lung-RADS 4X.", LungRads, "4X"),
            ("Lung-RADS v2022 category 2S.", LungRads, "2S"),
            ("Observation 1 is LR-5.", LiRads, "LR-5"),
            ("LI-RADS category LR-M.", LiRads, "LR-M"),
            ("LI-RADS 4.", LiRads, "LR-4"),
            ("ACR TI-RADS TR4 (moderately suspicious).", TiRads, "TR4"),
            ("TI-RADS category 3.", TiRads, "TR3"),
            ("PI-RADS 5 lesion in the left peripheral zone.", PiRads, "5"),
            ("PI-RADS v2.1 score: 3.", PiRads, "3"),
            ("O-RADS US 4.", ORads, "4"),
            ("Bosniak IIF cyst.", Bosniak, "IIF"),
            ("Bosniak category 2F.", Bosniak, "IIF"),
            ("Bosniak class III.", Bosniak, "III"),
            ("CAD-RADS 4B.", CadRads, "4B"),
            ("ASPECTS score of 8.", Aspects, "8"),
            ("ASPECTS 10/10.", Aspects, "10"),
            ("Fleischner category A.", Fleischner, "A"),
        ];
        for &(text, system, category) in cases {
            assert_eq!(found(text), [(system, category.to_string())], "{text}");
        }
    }

    #[test]
    fn words_that_only_look_like_a_category_are_not_one() {
        for text in [
            "Mild TR and MR on echo.",
            "No Bosniak features.",
            "Aspects of the study were limited.",
            "BI-RADS lexicon descriptors were used.",
        ] {
            assert_eq!(found(text), [], "{text}");
        }
    }

    #[test]
    fn side_section_and_code() {
        let lexicon = crate::shared_lexicon();
        let text = "FINDINGS: Mass.\nIMPRESSION: Right breast mass, BI-RADS 5.";
        let extraction = crate::extract(text, lexicon);
        let assessment = &extraction.assessments[0];
        assert_eq!(assessment.laterality, Some(Laterality::Right));
        assert_eq!(assessment.section, crate::SectionKind::Impression);
        assert_eq!(assessment.code.map(|c| c.code.as_str()), Some("397145000"));
        assert_eq!(assessment.text, "BI-RADS 5");
        let text = "IMPRESSION: BI-RADS 4B.";
        let coded = crate::extract(text, lexicon).assessments[0]
            .code
            .map(|c| c.code.clone());
        assert_eq!(coded.as_deref(), Some("assessment-birads-4b"));
    }
}

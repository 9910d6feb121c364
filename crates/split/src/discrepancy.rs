//! Discrepancies a reader should check: laterality (the Impression states
//! the other side than the Findings for the same finding: "left effusion"
//! in Findings, "right effusion" in Impression — a classic wrong-side
//! error), a finding present in one section and absent in the other, and a
//! follow-up that guidance expects but the report does not recommend; and,
//! given facts from outside the text ([`crate::ReportFacts`]), anatomy or
//! findings the patient's sex or age rules out and another side or region
//! than the one ordered (`against`).

mod against;
mod particulars;

pub(crate) use against::{AgainstTables, parse_tables};

use crate::layout::Sentence;
use crate::{
    Assertion, Change, Discrepancy, DiscrepancyKind, DiscrepancyKinds, Finding, Laterality,
    Lexicon, Recommendation, ReportFacts, Section, SectionKind, Temporality,
};
use particulars::Particulars;

/// What the discrepancy checks read of one extraction (spans in bytes).
pub(crate) struct Inputs<'i, 'a> {
    pub text: &'a str,
    pub sentences: &'i [Sentence],
    pub sections: &'i [Section<'a>],
    pub findings: &'i [Finding<'a>],
    /// The concept index of each finding.
    pub concepts: &'i [u32],
    pub recommendations: &'i [Recommendation<'a>],
    pub lexicon: &'a Lexicon,
}

/// Every discrepancy of `kinds`, in a fixed order of kinds.
pub(crate) fn discrepancies<'a>(
    inputs: Inputs<'_, 'a>,
    kinds: DiscrepancyKinds,
    facts: &ReportFacts,
) -> Vec<Discrepancy<'a>> {
    let mut out = Vec::new();
    // Both compare findings by head word, which costs reading each term:
    // most reports give neither a chance, and a look at sides, sections and
    // concepts alone tells them apart.
    let laterality_possible = kinds.laterality && sides_cross(inputs.findings);
    let section_absent_possible =
        kinds.section_absent && concept_crosses_sections(inputs.findings, inputs.concepts);
    if laterality_possible || section_absent_possible {
        let heads: Vec<u64> = inputs.findings.iter().map(|f| head_key(f.term)).collect();
        if laterality_possible {
            out.extend(laterality(inputs.findings, inputs.concepts, &heads));
        }
        if section_absent_possible {
            out.extend(section_absent(inputs.findings, inputs.concepts, &heads));
        }
    }
    if kinds.follow_up_missing {
        out.extend(follow_up_missing(inputs.findings, inputs.recommendations));
    }
    let tables = &inputs.lexicon.against;
    if kinds.sex
        && let Some(sex) = facts.sex
    {
        out.extend(against::sex(&inputs, tables, sex));
    }
    if kinds.age
        && let Some(age) = facts.age
    {
        out.extend(against::age(&inputs, tables, age));
    }
    if kinds.order && !facts.ordered.is_empty() {
        out.extend(against::order(&inputs, tables, &facts.ordered));
    }
    out
}

/// Whether the Impression states a finding present on one side and the
/// Findings state one present on the other: without both, [`laterality`]
/// has nothing to weigh.
fn sides_cross(findings: &[Finding<'_>]) -> bool {
    let mut seen = [[false; 2]; 2];
    for finding in findings {
        let section = match finding.section {
            SectionKind::Findings => 0,
            SectionKind::Impression => 1,
            _ => continue,
        };
        let side = match finding.laterality {
            Some(Laterality::Left) => 0,
            Some(Laterality::Right) => 1,
            _ => continue,
        };
        if finding.assertion == Assertion::Present {
            seen[section][side] = true;
        }
    }
    (seen[1][0] && seen[0][1]) || (seen[1][1] && seen[0][0])
}

/// Whether one concept is stated present in one of Findings and Impression
/// and denied in the other: without it, [`section_absent`] finds nothing.
fn concept_crosses_sections(findings: &[Finding<'_>], concepts: &[u32]) -> bool {
    // (concept, section, assertion), sorted: linear on long texts.
    let mut stated: Vec<(u32, u8, u8)> = findings
        .iter()
        .zip(concepts)
        .filter(|(f, _)| {
            matches!(f.section, SectionKind::Findings | SectionKind::Impression)
                && f.assertion != Assertion::Possible
        })
        .map(|(f, &concept)| (concept, f.section as u8, f.assertion as u8))
        .collect();
    stated.sort_unstable();
    stated.dedup();
    let (findings_section, impression) =
        (SectionKind::Findings as u8, SectionKind::Impression as u8);
    let (present, absent) = (Assertion::Present as u8, Assertion::Absent as u8);
    stated.chunk_by(|a, b| a.0 == b.0).any(|group| {
        let has = |section: u8, assertion: u8| {
            group
                .iter()
                .any(|&(_, s, a)| s == section && a == assertion)
        };
        (has(findings_section, present) && has(impression, absent))
            || (has(impression, present) && has(findings_section, absent))
    })
}

/// One discrepancy per concept: a present sided finding in the impression
/// whose concept the findings section states (present) only on the other
/// side. Bilateral statements and concepts stated on both sides are not
/// contradictions. A hedged mention is too weak to call a side wrong ("early
/// orchitis" read as left from "compared with the left"). Two findings are
/// the same when their concept and the head of their words agree: a broad
/// concept covers several findings (subdural and subarachnoid haemorrhage
/// share one), and a left subarachnoid haemorrhage must not hide a right
/// subdural haematoma that the findings called left. The other side is also
/// found by the head alone, as radiologists restate a finding more or less
/// specifically ("a cyst" in Findings, "haemorrhagic cyst" in Impression) or
/// by a synonym of its head ("calculus" and "nephrolithiasis", "thrombus" and
/// "deep venous thrombosis": [`HEAD_FAMILIES`]); what hides a contradiction
/// stays the stricter concept-and-head match.
///
/// When Findings name the finding on the Impression's side too, or with no
/// side, the Impression restates one of them, and its particulars (size,
/// grade in percent, severity, change: [`Particulars`]) tell which: it
/// contradicts the Findings when one on the other side has a particular it
/// agrees with and none it contradicts, while each on its own side (or with
/// none) has one it contradicts ("the 8 mm right lower lobe nodule has grown;
/// a 4 mm left nodule is unchanged" and "growing 8 mm left lower lobe
/// nodule"; a 70% right and a 40% left stenosis, and "70% left stenosis").
///
/// The first finding of each (section, concept, side) is indexed once: a
/// search of every finding per impression finding was quadratic on a text
/// of thousands of sided findings (issue 11, item 3).
pub(crate) fn laterality<'a>(
    findings: &[Finding<'a>],
    concepts: &[u32],
    heads: &[u64],
) -> Vec<Discrepancy<'a>> {
    let stated = |f: &Finding<'_>| f.assertion == Assertion::Present;
    // Every present sided finding: (index, section, concept, head, side).
    let sided_findings = || {
        findings
            .iter()
            .zip(concepts)
            .enumerate()
            .filter_map(|(index, (finding, &concept))| {
                let side = finding.laterality.filter(|_| stated(finding))?;
                Some((
                    index,
                    finding.section as u8,
                    concept,
                    heads[index],
                    side as u8,
                ))
            })
    };
    let first = FirstOf::new(
        sided_findings()
            .map(|(index, section, concept, head, side)| ((section, concept, head, side), index)),
    );
    let sided = |section: SectionKind, concept: u32, head: u64, side: Laterality| {
        first.get((section as u8, concept, head, side as u8))
    };
    // The same findings by head alone (any concept), and by concept alone.
    let by_head = FirstOf::new(
        sided_findings().map(|(index, section, _, head, side)| ((section, head, side), index)),
    );
    let sided_by_head = |section: SectionKind, head: u64, side: Laterality| {
        by_head.get((section as u8, head, side as u8))
    };
    let by_concept = FirstOf::new(
        sided_findings()
            .map(|(index, section, concept, _, side)| ((section, concept, side), index)),
    );
    let sided_by_concept = |section: SectionKind, concept: u32, side: Laterality| {
        by_concept.get((section as u8, concept, side as u8))
    };
    // The concepts the Findings state present with no side.
    let unsided_in_findings = FirstOf::new(
        findings
            .iter()
            .zip(concepts)
            .enumerate()
            .filter(|(_, (f, _))| {
                f.section == SectionKind::Findings && stated(f) && f.laterality.is_none()
            })
            .map(|(index, (_, &concept))| (concept, index)),
    );
    // Every present finding of the Findings section by head and side (no
    // side too): the ones an Impression finding may restate.
    let mut in_findings: Vec<((u64, u8), usize)> = findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.section == SectionKind::Findings && stated(f))
        .map(|(index, f)| ((heads[index], side_code(f.laterality)), index))
        .collect();
    in_findings.sort_unstable();
    let restatable =
        |head: u64, side: Option<Laterality>| candidates(&in_findings, (head, side_code(side)));
    // Every present sided finding of the Impression by concept, head and
    // side: the ones that may restate a Findings finding on its own side.
    let mut in_impression: Vec<((u32, u64, u8), usize)> = sided_findings()
        .filter(|&(_, section, ..)| section == SectionKind::Impression as u8)
        .map(|(index, _, concept, head, side)| ((concept, head, side), index))
        .collect();
    in_impression.sort_unstable();
    let restated_in_impression = |concept: u32, head: u64, side: Laterality| {
        candidates(&in_impression, (concept, head, side as u8))
    };
    // Each finding's particulars, read once when first weighed (most
    // reports never weigh any).
    let mut particulars: Vec<Option<Particulars>> = Vec::new();
    let mut out: Vec<Discrepancy<'a>> = Vec::new();
    let mut reported: Vec<(u32, u64)> = Vec::new();
    for (index, (finding, &concept)) in findings.iter().zip(concepts).enumerate() {
        if finding.section != SectionKind::Impression || !stated(finding) {
            continue;
        }
        let (impression_side, other) = match finding.laterality {
            Some(Laterality::Left) => (Laterality::Left, Laterality::Right),
            Some(Laterality::Right) => (Laterality::Right, Laterality::Left),
            _ => continue,
        };
        let head = heads[index];
        if reported.contains(&(concept, head)) {
            continue;
        }
        // Failing its words, its concept: "cyst" in Findings is the
        // Impression's "cystic lesion", when the Findings name that concept
        // on the other side only and never use the Impression's head word.
        let by_concept_alone = || {
            let head_in_findings = in_findings
                .get(in_findings.partition_point(|&((h, _), _)| h < head))
                .is_some_and(|&((h, _), _)| h == head);
            let only_other = !head_in_findings
                && sided_by_concept(SectionKind::Findings, concept, impression_side).is_none()
                && unsided_in_findings.get(concept).is_none();
            only_other
                .then(|| sided_by_concept(SectionKind::Findings, concept, other))
                .flatten()
        };
        let Some(on_the_other_side) = sided(SectionKind::Findings, concept, head, other)
            .or_else(|| sided_by_head(SectionKind::Findings, head, other))
            .or_else(by_concept_alone)
        else {
            continue;
        };
        // Findings state it on the other side only (by concept and by head
        // word: "calcified plaque" on the right is the Impression's right
        // "heterogeneous plaque" though coded apart): the Impression
        // contradicts them, unless it states the other side too.
        let only_on_the_other_side = sided(SectionKind::Findings, concept, head, impression_side)
            .is_none()
            && sided_by_head(SectionKind::Findings, head, impression_side).is_none()
            && restatable(head, None).next().is_none();
        let findings_finding = if only_on_the_other_side {
            // A one-word finding ("Hypermetabolic left upper lobe
            // primary") restates only a finding of its own word: by concept
            // alone it would match any uptake anywhere.
            let one_word_by_concept = !finding.term.trim().contains([' ', '-'])
                && heads[on_the_other_side] != head
                && !crate::words::last_word(findings[on_the_other_side].term)
                    .eq_ignore_ascii_case(finding.term.trim());
            // The Impression may state the other side too; then the Findings
            // finding is restated there, unless its particulars tell the two
            // apart ("left rib fractures" in Findings, "right rib fractures
            // and left transverse process fractures" in Impression).
            let restated_on_its_side = |candidate: usize| {
                let theirs = Particulars::of(&findings[candidate]);
                restated_in_impression(concept, head, other)
                    .any(|index| !Particulars::of(&findings[index]).compare(&theirs).1)
            };
            (!one_word_by_concept)
                .then(|| {
                    std::iter::once(on_the_other_side)
                        .chain(restatable(head, Some(other)))
                        .find(|&candidate| !restated_on_its_side(candidate))
                })
                .flatten()
        } else {
            // Findings name it on this side too (or with no side): which one
            // the Impression restates, its particulars tell.
            if particulars.is_empty() {
                particulars.resize_with(findings.len(), || None);
            }
            let restated = Particulars::of(finding);
            let mut weigh = |candidate: usize| {
                let theirs = particulars[candidate]
                    .get_or_insert_with(|| Particulars::of(&findings[candidate]));
                restated.compare(theirs)
            };
            let told_apart = restatable(head, Some(impression_side))
                .chain(restatable(head, None))
                .all(|candidate| weigh(candidate).1);
            told_apart
                .then(|| {
                    restatable(head, Some(other))
                        .find(|&candidate| weigh(candidate) == (true, false))
                })
                .flatten()
        };
        // An old finding of the Findings ("old lacunar infarct in the right
        // thalamus") is not the one a current reading of the Impression
        // restates ("acute stroke in the left MCA territory"); a past state
        // may restate a present one ("postsurgical changes of a right
        // hemilaminectomy", "status post left hemilaminectomy").
        let findings_finding = findings_finding.filter(|&candidate| {
            !(findings[candidate].temporality == Temporality::Historical
                && finding.temporality == Temporality::Current)
        });
        if let Some(findings_finding) = findings_finding {
            reported.push((concept, head));
            out.push(Discrepancy {
                kind: DiscrepancyKind::Laterality,
                term: finding.term,
                findings_side: Some(other),
                impression_side: Some(impression_side),
                findings_finding: Some(findings_finding),
                impression_finding: Some(index),
                against: None,
            });
        }
    }
    out
}

/// The findings filed under `wanted` in a sorted index, at most
/// [`MAX_CANDIDATES`] of them.
fn candidates<K: Ord + Copy>(index: &[(K, usize)], wanted: K) -> impl Iterator<Item = usize> + '_ {
    let start = index.partition_point(|&(key, _)| key < wanted);
    index[start..]
        .iter()
        .take_while(move |&&(key, _)| key == wanted)
        .take(MAX_CANDIDATES)
        .map(|&(_, finding)| finding)
}

/// A finding stated present (unhedged, current, no change word) in one of
/// Findings and Impression and negated ("No pneumothorax.") in the other,
/// which states it present nowhere: one of the two sections is wrong. Sides
/// must agree when both are stated ("No left effusion" does not contradict
/// "right effusion"); a negated change ("no new nodule") says nothing about
/// the finding itself. One per concept and head word.
pub(crate) fn section_absent<'a>(
    findings: &[Finding<'a>],
    concepts: &[u32],
    heads: &[u64],
) -> Vec<Discrepancy<'a>> {
    let plain = |f: &Finding<'_>| {
        f.temporality == Temporality::Current
            && f.change.is_none()
            && matches!(f.section, SectionKind::Findings | SectionKind::Impression)
    };
    // (section, concept, head) → first present and first absent mention.
    let mut index: Vec<((u8, u32, u64), Assertion, usize)> = findings
        .iter()
        .zip(concepts)
        .enumerate()
        .filter(|(_, (f, _))| plain(f) && f.assertion != Assertion::Possible)
        .map(|(i, (f, &concept))| ((f.section as u8, concept, heads[i]), f.assertion, i))
        .collect();
    index.sort_unstable_by_key(|&(key, assertion, i)| (key, assertion as u8, i));
    let first = |section: SectionKind, concept: u32, head: u64, assertion: Assertion| {
        let key = (section as u8, concept, head);
        let at = index.partition_point(|&(k, a, _)| (k, a as u8) < (key, assertion as u8));
        index
            .get(at)
            .filter(|&&(k, a, _)| k == key && a == assertion)
            .map(|&(_, _, i)| i)
    };
    let mut out: Vec<Discrepancy<'a>> = Vec::new();
    let mut reported: Vec<(u32, u64)> = Vec::new();
    for (present, (finding, &concept)) in findings.iter().zip(concepts).enumerate() {
        if finding.assertion != Assertion::Present || !plain(finding) {
            continue;
        }
        let head = heads[present];
        let other = match finding.section {
            SectionKind::Findings => SectionKind::Impression,
            _ => SectionKind::Findings,
        };
        // Stated present there under another name of the concept ("subdural
        // hematoma" and "subdural hemorrhage"): the sections agree.
        let present_there = findings
            .iter()
            .zip(concepts)
            .any(|(f, &c)| c == concept && f.section == other && f.assertion == Assertion::Present);
        if reported.contains(&(concept, head)) || present_there {
            continue;
        }
        let Some(absent) = first(other, concept, head, Assertion::Absent) else {
            continue;
        };
        // "No intraventricular hemorrhage" does not deny a subdural one: every
        // word of the negated term must be in the stated one.
        if !words_within(findings[absent].term, finding.term) {
            continue;
        }
        let negated = &findings[absent];
        let sides_agree = match (finding.laterality, negated.laterality) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        // "No fracture of the medial malleolus" beside a fibular fracture, or
        // "no additional aneurysm": the negation is about another place or
        // another lesion, not this one.
        let same_place = negated.body_site.iter().all(|site| {
            finding
                .body_site
                .iter()
                .any(|own| own.text.eq_ignore_ascii_case(site.text))
        });
        if !sides_agree || !same_place || says_any(negated.text, OTHER_ONES) {
            continue;
        }
        reported.push((concept, head));
        let (in_findings, in_impression) = match finding.section {
            SectionKind::Findings => (present, absent),
            _ => (absent, present),
        };
        out.push(Discrepancy {
            kind: DiscrepancyKind::SectionAbsent,
            term: finding.term,
            findings_side: None,
            impression_side: None,
            findings_finding: Some(in_findings),
            impression_finding: Some(in_impression),
            against: None,
        });
    }
    out
}

/// The first finding (lowest index) of each key, found by binary search. A
/// sorted list rather than a hash map: a report has a few dozen sided
/// findings, and hashing each key cost more than the search it saved.
struct FirstOf<K> {
    sorted: Vec<(K, usize)>,
}

impl<K: Ord + Copy> FirstOf<K> {
    fn new(pairs: impl Iterator<Item = (K, usize)>) -> Self {
        let mut sorted: Vec<(K, usize)> = pairs.collect();
        sorted.sort_unstable();
        sorted.dedup_by_key(|(key, _)| *key);
        FirstOf { sorted }
    }

    fn get(&self, key: K) -> Option<usize> {
        self.sorted
            .binary_search_by_key(&key, |&(k, _)| k)
            .ok()
            .map(|at| self.sorted[at].1)
    }
}

/// How many findings of one name and side in Findings are weighed against
/// an Impression finding: a report names a finding a handful of times, and a
/// bound keeps a text of thousands of them linear.
const MAX_CANDIDATES: usize = 16;

/// A side as a sort key; no side sorts last.
fn side_code(side: Option<Laterality>) -> u8 {
    side.map_or(u8::MAX, |side| side as u8)
}

/// Words by which a negation speaks of other lesions than the one stated.
const OTHER_ONES: &[&str] = &[
    "additional",
    "other",
    "another",
    "further",
    "remaining",
    "second",
];
/// Words saying a lesion was seen before (a follow-up study): it is known,
/// and its management is not this report's first decision.
const SEEN_BEFORE: &[&str] = &["previous", "prior", "compared", "unchanged", "interval"];

/// Whether every word of `inner` (side words and a plural `s` aside) is a
/// word of `outer`, ASCII case-insensitively.
fn words_within(inner: &str, outer: &str) -> bool {
    const SIDES: [&str; 4] = ["left", "right", "bilateral", "both"];
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric() && c != '-')
            .filter(|w| !w.is_empty() && !SIDES.iter().any(|s| s.eq_ignore_ascii_case(w)))
            .map(|w| {
                let lower = w.to_lowercase();
                match lower.strip_suffix('s') {
                    Some(stem) if stem.len() > 2 && !stem.ends_with('s') => stem.to_owned(),
                    _ => lower,
                }
            })
            .collect()
    };
    let outer = words(outer);
    words(inner).iter().all(|w| outer.contains(w))
}

/// Whether `text` holds one of `words` as a whole word (ASCII case-insensitive).
fn says_any(text: &str, words: &[&str]) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| words.iter().any(|w| w.eq_ignore_ascii_case(word)))
}

/// Words of a body site or term that place a nodule in the lung.
const LUNG_WORDS: &[&str] = &["lung", "lobe", "pulmonary", "lingula", "perifissural"];
/// Organs whose incidental nodule or mass the ACR incidental-findings
/// papers give a management path for.
const INCIDENTAL_ORGANS: &[&str] = &["adrenal", "kidney", "renal", "thyroid"];
/// Heads of a lesion that may need work-up (a simple cyst does not).
const LESION_HEADS: &[&str] = &["nodule", "mass", "lesion", "nodularity"];
/// Words that take a pulmonary nodule out of the solid ≥ 6 mm rule
/// (calcified: benign; subsolid nodules have their own rules).
const NOT_SOLID: &[&str] = &["calcif", "ground", "subsolid", "part-solid", "part solid"];

/// Guidance expects a follow-up for the finding: a solid pulmonary nodule of
/// 6 mm or more (Fleischner 2017: CT at 6–12 months for a single solid
/// nodule of 6–8 mm in a low-risk patient, more for larger ones), or an
/// incidental adrenal, renal or thyroid nodule or mass (ACR white papers).
/// Only when the report recommends nothing at all: a report that
/// recommends something has decided about follow-up. Stable, decreasing
/// or resolved findings are known and followed already.
pub(crate) fn follow_up_missing<'a>(
    findings: &[Finding<'a>],
    recommendations: &[Recommendation<'a>],
) -> Vec<Discrepancy<'a>> {
    if !recommendations.is_empty() {
        return Vec::new();
    }
    let mentions = |text: &str, words: &[&str]| {
        let lower = text.to_ascii_lowercase();
        words.iter().any(|w| lower.contains(w))
    };
    let mut out: Vec<Discrepancy<'a>> = Vec::new();
    let mut seen_lung = false;
    let mut seen_organ = false;
    for (index, finding) in findings.iter().enumerate() {
        if finding.assertion != Assertion::Present
            || finding.temporality != Temporality::Current
            || !matches!(
                finding.section,
                SectionKind::Findings | SectionKind::Impression
            )
        {
            continue;
        }
        let last_word = finding
            .term
            .rsplit(|c: char| !c.is_alphanumeric())
            .find(|w| !w.is_empty())
            .unwrap_or("");
        // "nodules" is a nodule; "mass" stays a mass
        let head = last_word
            .strip_suffix(['s', 'S'])
            .filter(|h| !h.ends_with(['s', 'S']))
            .unwrap_or(last_word);
        let Some(&head) = LESION_HEADS.iter().find(|h| h.eq_ignore_ascii_case(head)) else {
            continue;
        };
        // Read only for a lesion head: scanning every finding's sentence
        // cost more than the rest of this function.
        let known = matches!(
            finding.change,
            Some(Change::Stable | Change::Decreased | Change::Resolved)
        ) || says_any(finding.text, SEEN_BEFORE)
            || finding
                .text
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|w| w.eq_ignore_ascii_case("previously"));
        if known {
            continue;
        }
        let place = |words: &[&str]| {
            mentions(finding.term, words)
                || finding.body_site.iter().any(|s| mentions(s.text, words))
        };
        let described = |words: &[&str]| {
            mentions(finding.term, words)
                || finding.descriptors.iter().any(|d| mentions(d.text, words))
        };
        let largest_mm = finding
            .measurements
            .iter()
            .map(|m| m.max_mm)
            .fold(0.0_f64, f64::max);
        let lung =
            head == "nodule" && place(LUNG_WORDS) && largest_mm >= 6.0 && !described(NOT_SOLID);
        let organ = place(INCIDENTAL_ORGANS);
        if (lung && !seen_lung) || (organ && !lung && !seen_organ) {
            seen_lung |= lung;
            seen_organ |= organ && !lung;
            let in_findings = finding.section == SectionKind::Findings;
            out.push(Discrepancy {
                kind: DiscrepancyKind::FollowUpMissing,
                term: finding.term,
                findings_side: None,
                impression_side: None,
                findings_finding: in_findings.then_some(index),
                impression_finding: (!in_findings).then_some(index),
                against: None,
            });
        }
    }
    out
}

/// The head of a finding's words: its last word, lower case, side words
/// and a plural `s` left out ("crescentic subdural hematoma" and "Acute
/// subdural hematoma" agree; "subarachnoid hemorrhage" does not; "left
/// effusion" and "right pleural effusion" do), hashed (FNV-1a: no
/// allocation, stable across runs).
/// Head words that name one finding: a synonym restates it ("left renal
/// calculus" ~ "right nephrolithiasis"). Lower case; a word not listed is
/// looked up again without a plural `s`.
const HEAD_FAMILIES: &[&[&[u8]]] = &[
    &[
        b"calculus",
        b"calculi",
        b"stone",
        b"nephrolithiasis",
        b"urolithiasis",
        b"ureterolithiasis",
        b"nephrolith",
        b"urolith",
    ],
    // Superficial thrombophlebitis is how a superficial vein thrombus is
    // commonly reported.
    &[
        b"thrombus",
        b"thrombi",
        b"thrombosis",
        b"dvt",
        b"clot",
        b"thrombophlebitis",
    ],
    &[b"fracture", b"fx"],
    &[b"hematoma", b"haematoma"],
    &[b"hemorrhage", b"haemorrhage", b"bleed"],
    &[b"edema", b"oedema"],
    &[b"tumor", b"tumour"],
    // A mature cystic teratoma is the dermoid; an acoustic neuroma the
    // vestibular schwannoma.
    &[b"teratoma", b"dermoid"],
    // Consolidation is how a pneumonia is seen.
    &[
        b"pneumonia",
        b"consolidation",
        b"bronchopneumonia",
        b"consolidations",
    ],
    &[b"schwannoma", b"neuroma"],
];

/// Words that start a phrase placing a finding ("nodule in the right thyroid
/// lobe"): a term's head stands before the first of them.
const PLACING_WORDS: [&[u8]; 8] = [
    b"in",
    b"of",
    b"at",
    b"within",
    b"involving",
    b"along",
    b"on",
    b"from",
];

/// `term` without the phrase that places it: "Hypoechoic 1.2 cm nodule in the
/// right thyroid" is a nodule, not a thyroid.
fn before_placing_phrase(term: &str) -> &str {
    let bytes = term.as_bytes();
    let mut spaces = bytes.iter().enumerate().filter(|&(_, &b)| b == b' ');
    spaces
        .find_map(|(at, _)| {
            let rest = &bytes[at + 1..];
            let word = rest.split(|&b| b == b' ').next().unwrap_or_default();
            let placing = word.len() < rest.len()
                && PLACING_WORDS.iter().any(|p| p.eq_ignore_ascii_case(word));
            placing.then(|| &term[..at])
        })
        .unwrap_or(term)
}

fn head_key(term: &str) -> u64 {
    let term = before_placing_phrase(term);
    const SIDES: [&[u8]; 4] = [b"left", b"right", b"bilateral", b"both"];
    let is_head = |w: &&[u8]| !w.is_empty() && !SIDES.iter().any(|s| s.eq_ignore_ascii_case(w));
    // Read from the end: the head is the last word. An ASCII term (nearly
    // all) is split as bytes, which costs a fraction of decoding chars.
    let head = if term.is_ascii() {
        term.as_bytes()
            .rsplit(|&b| !b.is_ascii_alphanumeric() && b != b'-')
            .find(is_head)
    } else {
        term.rsplit(|c: char| !c.is_alphanumeric() && c != '-')
            .map(str::as_bytes)
            .find(is_head)
    };
    let family = |word: &[u8]| {
        HEAD_FAMILIES
            .iter()
            .find(|family| family.iter().any(|name| name.eq_ignore_ascii_case(word)))
            .map(|family| family[0])
    };
    // The word as it stands ("calculus", "nephrolithiasis"), else folded from
    // a plural in `s`.
    let word = head.unwrap_or(&[]);
    let word = family(word).unwrap_or_else(|| match word {
        [stem @ .., b's' | b'S'] if stem.len() > 2 => family(stem).unwrap_or(stem),
        _ => word,
    });
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in word {
        hash = (hash ^ u64::from(byte.to_ascii_lowercase())).wrapping_mul(0x100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use crate::{Laterality, extract};

    #[test]
    fn other_side_in_impression_is_a_discrepancy() {
        let lexicon = crate::shared_lexicon();
        let text = "FINDINGS: Moderate left pleural effusion. No pneumothorax.\nIMPRESSION: Moderate right pleural effusion.";
        let out = extract(text, lexicon);
        assert_eq!(out.discrepancies.len(), 1, "{:?}", out.discrepancies);
        let d = &out.discrepancies[0];
        assert_eq!(
            (d.findings_side, d.impression_side),
            (Some(Laterality::Left), Some(Laterality::Right))
        );
        assert_eq!(
            d.findings_finding.map(|i| out.findings[i].laterality),
            Some(Some(Laterality::Left))
        );
    }

    #[test]
    fn a_restated_or_synonymous_finding_on_the_other_side_is_a_discrepancy() {
        let lexicon = crate::shared_lexicon();
        for text in [
            "FINDINGS: The left ovary contains a 4.1 cm cyst with internal reticular echoes.\nIMPRESSION: Right ovarian hemorrhagic cyst.",
            "FINDINGS: A 9 mm calculus in the lower pole of the left kidney.\nIMPRESSION: 9 mm right nephrolithiasis.",
            "FINDINGS: Occlusive thrombus in the right common femoral vein.\nIMPRESSION: Acute deep venous thrombosis of the left lower extremity.",
            "FINDINGS: Hypoechoic 1.2 cm nodule in the right thyroid lobe.\nIMPRESSION: 1.2 cm left thyroid nodule.",
        ] {
            let out = extract(text, lexicon);
            let sides = out
                .discrepancies
                .iter()
                .filter(|d| d.kind == crate::DiscrepancyKind::Laterality);
            assert_eq!(sides.count(), 1, "{text}: {:?}", out.discrepancies);
        }
        for text in [
            "FINDINGS: A 9 mm calculus in the left kidney and a 4 mm stone in the right kidney.\nIMPRESSION: Bilateral nephrolithiasis, 9 mm on the left.",
            "FINDINGS: Right femoral vein thrombus.\nIMPRESSION: Right lower extremity deep venous thrombosis.",
        ] {
            let out = extract(text, lexicon);
            assert!(
                out.discrepancies.is_empty(),
                "{text}: {:?}",
                out.discrepancies
            );
        }
    }

    #[test]
    fn a_finding_of_a_shared_concept_on_the_impression_side_does_not_hide_another() {
        let lexicon = crate::shared_lexicon();
        let text = "FINDINGS: Subdural hematoma along the left convexity. \
                    Subarachnoid hemorrhage in the left sylvian fissure.\n\
                    IMPRESSION: 1. Acute subdural hematoma along the right convexity. \
                    2. Subarachnoid hemorrhage in the left sylvian fissure.";
        let out = extract(text, lexicon);
        assert_eq!(out.discrepancies.len(), 1, "{:?}", out.discrepancies);
        assert_eq!(
            out.discrepancies[0].impression_side,
            Some(Laterality::Right)
        );
        assert_eq!(
            super::head_key("Acute subdural hematoma"),
            super::head_key("crescentic subdural hematomas")
        );
        assert_eq!(
            super::head_key("Hypoechoic 1.2 cm nodule in the right thyroid"),
            super::head_key("thyroid nodule")
        );
        assert_eq!(
            super::head_key("TEAR OF THE LEFT SUPRASPINATUS TENDON"),
            super::head_key("supraspinatus tear")
        );
        assert_ne!(
            super::head_key("subdural hematoma"),
            super::head_key("subarachnoid hemorrhage")
        );
        assert_eq!(
            super::head_key("right hydrocele"),
            super::head_key("Hydrocele")
        );
    }

    #[test]
    fn same_side_bilateral_or_negated_is_not() {
        let lexicon = crate::shared_lexicon();
        for text in [
            "FINDINGS: Left pleural effusion.\nIMPRESSION: Left pleural effusion.",
            "FINDINGS: Left pleural effusion. Right pleural effusion.\nIMPRESSION: Right pleural effusion.",
            "FINDINGS: Left pleural effusion.\nIMPRESSION: Bilateral pleural effusions.",
            "FINDINGS: Left pleural effusion.\nIMPRESSION: No right pleural effusion.",
            "FINDINGS: Left lower lobe atelectasis.\nIMPRESSION: Right pleural effusion.",
            // a hedged mention is not enough to call the side wrong
            "FINDINGS: Possible left pleural effusion.\nIMPRESSION: Right pleural effusion.",
        ] {
            let laterality = extract(text, lexicon)
                .discrepancies
                .into_iter()
                .filter(|d| d.kind == crate::DiscrepancyKind::Laterality)
                .count();
            assert_eq!(laterality, 0, "{text}");
        }
    }

    fn sides_flagged(text: &str) -> usize {
        extract(text, crate::shared_lexicon())
            .discrepancies
            .iter()
            .filter(|d| d.kind == crate::DiscrepancyKind::Laterality)
            .count()
    }

    #[test]
    fn a_finding_named_on_both_sides_is_told_apart_by_its_particulars() {
        for swapped in [
            // size
            "FINDINGS: The 9 mm nodule in the right lower lobe has grown. A 3 mm nodule in the left upper lobe is unchanged.\nIMPRESSION: Growing 9 mm left lower lobe nodule.",
            // grade in percent, the other side restated too
            "FINDINGS: Right renal artery stenosis of 75%. Left renal artery stenosis of 20%.\nIMPRESSION: 75% left renal artery stenosis. 20% right renal artery stenosis.",
            // severity
            "FINDINGS: Severe right hip osteoarthritis. Mild left hip osteoarthritis.\nIMPRESSION: Severe left hip osteoarthritis.",
            // change
            "FINDINGS: New right adrenal nodule. Stable left adrenal nodule.\nIMPRESSION: New left adrenal nodule.",
            // body site: the unsided fracture is of another bone
            "FINDINGS: Fracture of the left distal radius. Associated fracture of the ulnar styloid.\nIMPRESSION: Distal radius fracture of the right wrist.",
            // the concept when the head words differ: the cyst is the cystic lesion
            "FINDINGS:\nRight kidney: Exophytic 2.8 cm cyst with thin septa.\nLeft kidney: Normal. No mass.\nIMPRESSION: Bosniak IIF cystic lesion of the left kidney.",
            // consolidation is how a pneumonia is seen
            "FINDINGS: New consolidation in the right middle lobe. The left lung is clear.\nIMPRESSION: Left lower lobe pneumonia.",
            // the side of the nodule the diagnosis is offered for
            "FINDINGS: A 2.3 cm right adrenal nodule shows signal drop-out, in keeping with an adenoma.\nIMPRESSION: Left adrenal adenoma.",
            // a synonym of the head: the mature cystic teratoma is the dermoid
            "FINDINGS: RIGHT OVARY: 4 cm cyst, consistent with a mature cystic teratoma.\nIMPRESSION: 4 cm left ovarian dermoid.",
            // acuity: the old infarct on the Impression's side is another one
            "FINDINGS: Restricted diffusion in the left insula, consistent with acute infarct. Old lacunar infarct in the right thalamus.\nIMPRESSION: Acute right MCA territory infarct. Old right thalamic lacunar infarct.",
            // the Impression's fracture on the Findings' side is of another bone
            "FINDINGS: Fractures of the left 9th to 11th ribs. Fractures of the left L1 and L2 transverse processes.\nIMPRESSION: Right 9th-11th rib fractures and left L1-L2 transverse process fractures.",
        ] {
            assert_eq!(sides_flagged(swapped), 1, "{swapped}");
        }
        for agreeing in [
            "FINDINGS: The 9 mm nodule in the right lower lobe has grown. A 3 mm nodule in the left upper lobe is unchanged.\nIMPRESSION: Growing 9 mm right lower lobe nodule.",
            "FINDINGS: Right renal artery stenosis of 75%. Left renal artery stenosis of 20%.\nIMPRESSION: 75% right renal artery stenosis.",
            // nothing tells them apart: either may be meant
            "FINDINGS: Right adrenal nodule. Left adrenal nodule.\nIMPRESSION: Left adrenal nodule.",
            // a particular the other side's finding contradicts too
            "FINDINGS: 9 mm right lower lobe nodule. 3 mm left lower lobe nodule.\nIMPRESSION: 5 mm left lower lobe nodule.",
            // an old finding is not what a current reading restates
            "FINDINGS: Old lacunar infarct in the right thalamus. Loss of grey-white differentiation in the left insula.\nIMPRESSION: Acute ischaemic stroke in the left MCA territory.",
            // a side written after another finding is that one's
            "FINDINGS: Septal deviation to the right with a spur contacting the right inferior turbinate.\nIMPRESSION: Septal deviation to the right with spur, concha bullosa left.",
            // the place phrase right after a finding is its own
            "FINDINGS: Left lobe: simple cyst 5 mm. Right lobe: 8 mm nodule.\nIMPRESSION: Nodule in the upper pole of the right lobe and small cyst in the left lobe.",
            // the Impression states both, each on the Findings' side
            "FINDINGS: Fractures of the left 9th to 11th ribs. Fractures of the right L1 and L2 transverse processes.\nIMPRESSION: Left 9th-11th rib fractures and right L1-L2 transverse process fractures.",
            // the unsided fracture is of the same bone: it may be the one meant
            "FINDINGS: Fracture of the left distal radius. Fracture of the distal radius is also seen.\nIMPRESSION: Distal radius fracture of the right wrist.",
        ] {
            assert_eq!(sides_flagged(agreeing), 0, "{agreeing}");
        }
    }

    #[test]
    fn a_finding_stated_without_a_side_may_be_the_one_restated() {
        // The Impression's calcifications are the unsided ones of Findings,
        // not the right breast's vascular calcifications.
        let text = "FINDINGS: Irregular mass in the left breast. Associated fine pleomorphic calcifications. Vascular calcifications in the right breast.\nIMPRESSION: Left breast mass with associated calcifications.";
        assert_eq!(sides_flagged(text), 0);
        // Unless a particular tells them apart.
        let text = "FINDINGS: A 2 mm stone in the left kidney. A 6 mm stone in the right kidney. A 2 mm nonobstructing stone.\nIMPRESSION: 6 mm left renal stone.";
        assert_eq!(sides_flagged(text), 1);
    }

    #[test]
    fn superficial_thrombophlebitis_restates_a_superficial_vein_thrombus() {
        assert_eq!(
            sides_flagged(
                "FINDINGS: Thrombus in the left small saphenous vein.\nIMPRESSION: Right small saphenous vein thrombophlebitis."
            ),
            1
        );
        assert_eq!(
            sides_flagged(
                "FINDINGS: Thrombus in the left small saphenous vein.\nIMPRESSION: Left small saphenous vein thrombophlebitis."
            ),
            0
        );
    }

    fn kinds(text: &str) -> Vec<crate::DiscrepancyKind> {
        extract(text, crate::shared_lexicon())
            .discrepancies
            .iter()
            .map(|d| d.kind)
            .collect()
    }

    #[test]
    fn present_in_one_section_and_absent_in_the_other() {
        use crate::DiscrepancyKind::SectionAbsent;
        assert_eq!(
            kinds("FINDINGS: No pneumothorax.\nIMPRESSION: Small right pneumothorax."),
            [SectionAbsent]
        );
        assert_eq!(
            kinds("FINDINGS: Small pleural effusion.\nIMPRESSION: No pleural effusion."),
            [SectionAbsent]
        );
        for agreeing in [
            "FINDINGS: No pneumothorax.\nIMPRESSION: No pneumothorax.",
            "FINDINGS: No left pleural effusion. Right pleural effusion.\nIMPRESSION: Right pleural effusion.",
            "FINDINGS: No left pneumothorax.\nIMPRESSION: Small right pneumothorax.",
            "FINDINGS: No new nodule.\nIMPRESSION: Stable nodule.",
            // another place, another lesion
            "FINDINGS: Fracture of the distal fibula. No fracture of the medial malleolus.\nIMPRESSION: Distal fibular fracture.",
            "FINDINGS: A 7 mm aneurysm of the anterior communicating artery. No additional aneurysm.\nIMPRESSION: 7 mm aneurysm.",
            "FINDINGS: Acute subdural hematoma along the right convexity. No intraventricular hemorrhage.\nIMPRESSION: Acute right subdural hemorrhage.",
        ] {
            assert!(!kinds(agreeing).contains(&SectionAbsent), "{agreeing}");
        }
    }

    #[test]
    fn a_follow_up_missing_where_guidance_expects_one() {
        use crate::DiscrepancyKind::FollowUpMissing;
        for missing in [
            "FINDINGS: An 8 mm solid nodule in the right upper lobe.\nIMPRESSION: 8 mm right upper lobe nodule.",
            "FINDINGS: A 2.1 cm left adrenal nodule.\nIMPRESSION: Left adrenal nodule.",
            "FINDINGS: A 1.4 cm solid mass in the right kidney.\nIMPRESSION: Right renal mass.",
        ] {
            assert_eq!(kinds(missing), [FollowUpMissing], "{missing}");
        }
        for fine in [
            // recommended
            "FINDINGS: An 8 mm nodule in the right upper lobe.\nIMPRESSION: Nodule. Recommend CT chest in 6-12 months.",
            // below 6 mm, calcified, stable
            "FINDINGS: A 4 mm nodule in the right upper lobe.",
            "FINDINGS: A 9 mm calcified nodule in the left lower lobe.",
            "FINDINGS: The 8 mm nodule in the right upper lobe is stable.",
            "FINDINGS: The largest nodule, in the right lower lobe, measures 12 mm, previously 18 mm.",
            // a simple renal cyst needs no work-up
            "FINDINGS: A 2 cm simple cyst in the left kidney.",
        ] {
            assert!(!kinds(fine).contains(&FollowUpMissing), "{fine}");
        }
    }
}

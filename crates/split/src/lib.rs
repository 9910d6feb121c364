//! The extraction core: radiology report text in, sections, impression items
//! and coded findings with character spans out.
//!
//! Pure by design (the functional core of reportsplit): no I/O, no clocks, no
//! FHIR types, no async. Everything the caller needs to link a finding back to
//! its evidence is a span into the text it passed in.
//!
//! ```
//! use reportsplit_split::{extract, Lexicon};
//! let lexicon = Lexicon::builtin();
//! let out = extract("IMPRESSION: No pneumothorax.", &lexicon);
//! assert_eq!(out.findings[0].assertion, reportsplit_split::Assertion::Absent);
//! ```
//!
//! # Assertion and certainty
//! A finding is `present`, `absent` or `possible`. A possible finding also
//! has a [`Certainty`] graded on the radiology hedging lexicon: `high`
//! ("likely", "suspicious for", "suggestive of": a probable
//! diagnosis), `moderate` ("possibly", "may represent", "A versus B"), `low`
//! ("less likely", "cannot be excluded"). Stacked hedges take the weakest
//! ("may be compatible with" is moderate) and a probable diagnosis offered
//! with an alternative ("concerning for pneumonia or aspiration") is
//! moderate. Critical results count present and high-certainty findings.
//!
//! Beside how sure it is, a possible finding says what kind of doubt the
//! radiologist expressed ([`Hedge`]): a likelihood ("probable"), a
//! suspicion to confirm ("concerning for"), one of two alternatives for an
//! observation ("atelectasis versus scarring"), an item of a differential,
//! something not excluded, or a question. The kinds are read differently
//! downstream: a coder indexing the findings of a report codes "probable
//! pneumonia" and both sides of "atelectasis versus scarring", not
//! "concerning for pneumonia".
//!
//! # Offsets
//! Every `start`/`end` in the public model counts Unicode scalar values
//! (Rust `char`s) from the start of the input, as FHIR's derivation-reference
//! extension expects; `end` is exclusive. The byte range of any span can be
//! recovered with [`char_range_to_bytes`].

use serde::Serialize;

/// The kinds of report section. Serialised in lower case, exactly these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum SectionKind {
    Indication,
    Technique,
    Comparison,
    Findings,
    Impression,
    Recommendation,
    Addendum,
    Other,
}

/// A code from a terminology (LOINC, SNOMED CT, RadLex, UCUM...), as loaded
/// from mappings/. Findings borrow it from the [`Lexicon`], so extraction
/// copies no strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Code {
    pub system: String,
    pub code: String,
    pub display: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Assertion {
    Present,
    Absent,
    Possible,
}

/// How sure the radiologist is of a finding asserted as possible, graded on
/// the radiology hedging lexicon (Panicek & Hricak, "How sure are you,
/// doctor?", AJR 2016; ACR/RSNA reporting guidance). Phrases above ~90%
/// ("consistent with", "diagnostic of") assert the finding; "unlikely"
/// (< 10%) negates it; the three grades in between are these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Certainty {
    /// ~75%, a probable diagnosis: "suspicious for", "probably", "likely",
    /// "suggestive of". ("Consistent with", "most consistent with" and
    /// "compatible with" assert, unless they offer alternatives.)
    High,
    /// ~50%, an even chance: "possibly", "may represent", "questionable",
    /// "cannot exclude X", "A versus B", "rule out X".
    Moderate,
    /// ~25%, less likely than not: "less likely", "X cannot be excluded",
    /// "not excluded", "differential includes".
    Low,
}

/// The kind of doubt a hedge expresses, beside its [`Certainty`]: the
/// phrase's speech act. Serialised in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hedge {
    /// A likelihood stated: "likely", "probable", "possibly", "may
    /// represent", "may be compatible with".
    Probability,
    /// A suspicion raised, for the clinician to confirm: "suspicious for",
    /// "concerning for", "suggestive of", "suspected".
    Suspicion,
    /// One of two explanations offered for one observation: "atelectasis
    /// versus scarring", "compatible with scarring or atelectasis". Under a
    /// weaker hedge ("may represent atelectasis versus infiltrate") the pair
    /// takes that hedge's kind instead.
    Alternative,
    /// An item of a differential list: "differential includes".
    Differential,
    /// Not ruled out: "cannot exclude", "not excluded", "difficult to
    /// exclude".
    Exclusion,
    /// Put as a question: "questionable", "question of", "?", "equivocal",
    /// "rule out".
    Question,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Temporality {
    Current,
    Historical,
    Hypothetical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    New,
    Stable,
    Increased,
    Decreased,
    Resolved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Laterality {
    Left,
    Right,
    Bilateral,
}

/// Everything extracted from one report text. Borrows the text and the lexicon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Extraction<'a> {
    pub sections: Vec<Section<'a>>,
    pub findings: Vec<Finding<'a>>,
    pub recommendations: Vec<Recommendation<'a>>,
    /// Critical results: ACR actionable category 1 or 2 (minutes or hours).
    pub critical: Vec<Critical<'a>>,
    /// Actionable, non-urgent findings (ACR category 3: days to weeks), kept
    /// apart so that nothing reading `critical` ever sees one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actionable: Vec<Critical<'a>>,
    pub discrepancies: Vec<Discrepancy<'a>>,
    /// Sentences that document a communication of the results ("discussed
    /// with Dr. Lee at 14:05").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<Notification<'a>>,
    /// Structured assessment categories stated in the report (BI-RADS 4A,
    /// LI-RADS LR-5, Bosniak IIF...).
    pub assessments: Vec<Assessment<'a>>,
}

/// What a descriptor says about its observation (RadGraph's "modify"
/// relation). Serialised in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    Size,
    Shape,
    Margin,
    Attenuation,
    Signal,
    Echogenicity,
    Enhancement,
    Uptake,
    Number,
    Acuity,
    Severity,
    Distribution,
    Composition,
    /// "normal", "physiologic": a head so qualified is no abnormality and
    /// is not reported.
    Normal,
}

/// A word qualifying a finding's observation: "rim-enhancing" fluid
/// collection, "T2 hyperintense" foci, "spiculated" mass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Descriptor<'a> {
    pub text: &'a str,
    pub axis: Axis,
    pub start: usize,
    pub end: usize,
}

/// The scoring system of a structured assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum AssessmentSystem {
    #[serde(rename = "BI-RADS")]
    BiRads,
    #[serde(rename = "Lung-RADS")]
    LungRads,
    #[serde(rename = "LI-RADS")]
    LiRads,
    #[serde(rename = "TI-RADS")]
    TiRads,
    #[serde(rename = "PI-RADS")]
    PiRads,
    #[serde(rename = "O-RADS")]
    ORads,
    #[serde(rename = "Bosniak")]
    Bosniak,
    #[serde(rename = "CAD-RADS")]
    CadRads,
    #[serde(rename = "ASPECTS")]
    Aspects,
    #[serde(rename = "Fleischner")]
    Fleischner,
}

/// A structured assessment category stated in the report: "BI-RADS 4A",
/// "LR-5", "Bosniak IIF", "ASPECTS 8".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment<'a> {
    pub system: AssessmentSystem,
    /// The category in the system's canonical spelling ("4A", "LR-5",
    /// "IIF", "TR4", "8").
    pub category: String,
    /// The category's code where a public one is verified (mappings/assessments.tsv).
    pub code: Option<&'a Code>,
    pub section: SectionKind,
    pub laterality: Option<Laterality>,
    /// The body site named in the same sentence, if any.
    pub body_site: Option<BodySite<'a>>,
    /// The words stating it ("BI-RADS category 4A").
    pub text: &'a str,
    pub start: usize,
    pub end: usize,
}

/// A report section, from its header (if any) to the next header.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section<'a> {
    pub kind: SectionKind,
    /// The header as written (`"IMPRESSION"`), `None` for headerless text.
    pub title: Option<&'a str>,
    /// LOINC section code from mappings/sections.tsv.
    pub code: Option<&'a Code>,
    /// Span of the whole section, header included.
    pub start: usize,
    pub end: usize,
    /// Span of the body (after the header and its colon).
    pub body_start: usize,
    pub body_end: usize,
    /// Numbered/bulleted items, or organ sub-headers (`LUNGS: ...`) in findings.
    pub items: Vec<Item<'a>>,
}

/// A numbered or bulleted item, or an organ sub-header paragraph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item<'a> {
    /// The item number as written (`2` for `2.`), or its 1-based position for bullets.
    pub n: u32,
    /// Organ sub-header (`"LUNGS"`) when the item is one.
    pub label: Option<&'a str>,
    /// The item text without its marker.
    pub text: &'a str,
    pub start: usize,
    pub end: usize,
}

/// One mention of a clinically meaningful finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding<'a> {
    /// The sentence or item that carries the finding. Not serialised: the
    /// span `start..end` points at it, so output grows linearly with the
    /// input however many findings a sentence holds.
    #[serde(skip)]
    pub text: &'a str,
    /// Span of the sentence or item that carries the finding.
    pub start: usize,
    pub end: usize,
    pub section: SectionKind,
    /// The impression/findings item number, when the sentence is inside one.
    pub item: Option<u32>,
    /// The words used for the finding, as written.
    pub term: &'a str,
    pub term_start: usize,
    pub term_end: usize,
    /// The concept (SNOMED CT, or RadLex where SNOMED has none).
    pub code: Option<&'a Code>,
    pub assertion: Assertion,
    /// How sure a possible finding is; `None` unless `assertion` is
    /// [`Assertion::Possible`].
    pub certainty: Option<Certainty>,
    /// The kind of doubt of a possible finding; `None` unless `assertion`
    /// is [`Assertion::Possible`].
    pub hedge: Option<Hedge>,
    pub temporality: Temporality,
    pub change: Option<Change>,
    pub laterality: Option<Laterality>,
    /// The anatomy the observation is located at (RadGraph's "located
    /// at"): named in the phrase, the sentence or the organ sub-header.
    pub body_site: Vec<BodySite<'a>>,
    pub measurements: Vec<Measurement<'a>>,
    /// The words qualifying the observation, in text order.
    pub descriptors: Vec<Descriptor<'a>>,
    /// Indexes into [`Extraction::findings`] of the diagnoses this
    /// observation is offered as evidence for ("opacity, suggestive of
    /// pneumonia": the opacity suggests the pneumonia).
    pub suggests: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BodySite<'a> {
    /// The words used, as written.
    pub text: &'a str,
    pub code: Option<&'a Code>,
    /// Span of `text`.
    pub start: usize,
    pub end: usize,
}

/// A size such as `3.5 x 2.1 cm`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement<'a> {
    pub values: Vec<f64>,
    /// The unit as written, normalised to its UCUM code (`cm`, `mm`).
    pub unit: &'a str,
    pub text: &'a str,
    pub start: usize,
    pub end: usize,
    /// The largest dimension in millimetres.
    pub max_mm: f64,
}

/// A follow-up recommendation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation<'a> {
    pub text: &'a str,
    pub start: usize,
    pub end: usize,
    /// The stated follow-up interval in days, lower bound of a range
    /// (`6-12 months` is 180).
    pub interval_days: Option<u32>,
    /// The upper bound of a range in days (`6-12 months`: 365); equal to
    /// `interval_days` for a single interval.
    pub interval_max_days: Option<u32>,
    /// The words that make the recommendation conditional or hedged, as
    /// written ("if clinically indicated", "could be considered"): a
    /// consumer must not read it as a firm instruction.
    pub conditional: Option<&'a str>,
    /// The kind of procedure recommended, when the sentence names one.
    pub procedure: Option<Procedure>,
    /// Indexes into [`Extraction::findings`] of the findings the
    /// recommendation follows from: those stated in its own sentence, else
    /// those of the nearest earlier sentence that states any (outside the
    /// indication, history, technique and comparison).
    pub reasons: Vec<usize>,
}

/// The kind of procedure a follow-up recommendation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Procedure {
    Ct,
    Mri,
    Ultrasound,
    Radiograph,
    Mammography,
    Pet,
    NuclearMedicine,
    Biopsy,
    /// Further imaging of an unnamed modality ("follow-up imaging").
    Imaging,
}

/// How soon an actionable finding must reach the referrer: the categories
/// of the ACR Actionable Reporting Work Group (Larson et al., J Am Coll
/// Radiol 2014). `Minutes` and `Hours` are critical results; `Days` is
/// actionable but not urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    /// Category 1: could lead to death or significant morbidity if not
    /// addressed within minutes (tension pneumothorax, testicular torsion).
    Minutes,
    /// Category 2: explains the acute presentation and needs specific
    /// treatment within hours (abscess, appendicitis).
    Hours,
    /// Category 3: significant, acted on within days to weeks (a mass
    /// suspicious for malignancy).
    Days,
}

impl Urgency {
    /// Categories 1 and 2 are critical results; 3 never is.
    pub fn is_critical(self) -> bool {
        self != Urgency::Days
    }
}

/// A finding that must be communicated to the referrer: a critical result
/// (in [`Extraction::critical`]) or an actionable, non-urgent one (in
/// [`Extraction::actionable`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Critical<'a> {
    /// The sentence that states it; not serialised (`start..end` points at it).
    #[serde(skip)]
    pub text: &'a str,
    pub term: &'a str,
    pub start: usize,
    pub end: usize,
    /// Index into [`Extraction::findings`] of the finding that triggered it.
    pub finding: usize,
    /// The most urgent category among the rules that matched.
    pub urgency: Urgency,
}

/// Words of the text, with their span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Said<'a> {
    pub text: &'a str,
    pub start: usize,
    pub end: usize,
}

/// When a communication happened: the words as written, and the date
/// (`YYYY-MM-DD`) and time of day (`HH:MM`) when they read as a calendar
/// date and a clock time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct When<'a> {
    pub said: Said<'a>,
    pub date: Option<String>,
    pub time: Option<String>,
}

/// How results were passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Medium {
    Phone,
    InPerson,
    Verbal,
    Electronic,
}

/// A sentence that documents a communication of the results: who was told,
/// when and how, as far as the sentence says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification<'a> {
    /// The sentence; not serialised (`start..end` points at it).
    #[serde(skip)]
    pub text: &'a str,
    pub start: usize,
    pub end: usize,
    pub recipient: Option<Said<'a>>,
    pub when: Option<When<'a>>,
    pub medium: Option<Medium>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiscrepancyKind {
    /// The Impression states the other side than the Findings.
    Laterality,
    /// A finding stated present in one section and absent in the other.
    SectionAbsent,
    /// A finding for which guidance expects a follow-up (a solid pulmonary
    /// nodule of 6 mm or more: Fleischner Society 2017; an incidental
    /// adrenal, renal or thyroid nodule or mass: ACR incidental findings
    /// papers), in a report that recommends none.
    FollowUpMissing,
    /// Anatomy or a finding the patient's sex does not have (a prostate
    /// finding in a woman): needs [`ReportFacts::sex`].
    Sex,
    /// A finding impossible at the patient's age (a germinal matrix
    /// haemorrhage in an adult): needs [`ReportFacts::age`].
    Age,
    /// The report describes another side or body region than the ordered
    /// procedure (ordered left knee, report of the right knee): needs
    /// [`ReportFacts::ordered`].
    Order,
}

/// Which kinds of discrepancy to look for (config `[discrepancies]`); all
/// by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscrepancyKinds {
    pub laterality: bool,
    pub section_absent: bool,
    pub follow_up_missing: bool,
    pub sex: bool,
    pub age: bool,
    pub order: bool,
}

impl DiscrepancyKinds {
    /// Every kind.
    pub const ALL: DiscrepancyKinds = DiscrepancyKinds {
        laterality: true,
        section_absent: true,
        follow_up_missing: true,
        sex: true,
        age: true,
        order: true,
    };

    /// Whether `kind` is looked for.
    pub fn includes(self, kind: DiscrepancyKind) -> bool {
        match kind {
            DiscrepancyKind::Laterality => self.laterality,
            DiscrepancyKind::SectionAbsent => self.section_absent,
            DiscrepancyKind::FollowUpMissing => self.follow_up_missing,
            DiscrepancyKind::Sex => self.sex,
            DiscrepancyKind::Age => self.age,
            DiscrepancyKind::Order => self.order,
        }
    }
}

impl Default for DiscrepancyKinds {
    fn default() -> Self {
        DiscrepancyKinds::ALL
    }
}

/// A patient's sex as the anatomy check reads it (FHIR `Patient.gender`
/// `female`/`male`, or the sex assigned at birth where recorded); `other`
/// and `unknown` have none, and no sex check is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Female,
    Male,
}

/// The patient's age in whole years on the report's date, as a range: a
/// birth date of only a year (or a year and month) leaves it uncertain,
/// and the age check only trusts what is sure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AgeYears {
    pub at_least: u32,
    pub at_most: u32,
}

/// What is known about a report besides its text, for the discrepancies
/// that compare the text with it: given by the caller as plain data (the
/// shell reads the Patient and the order), never read by the core. Empty:
/// those checks are not made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFacts {
    pub sex: Option<Sex>,
    pub age: Option<AgeYears>,
    /// The ordered procedure as named: `DiagnosticReport.code`'s text and
    /// codings' displays, the `basedOn` ServiceRequest's code and bodySite.
    pub ordered: Vec<String>,
}

/// What a discrepancy of a kind that needs [`ReportFacts`] was checked
/// against, for its words.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "against", rename_all = "kebab-case")]
pub enum Against<'a> {
    /// The finding's anatomy belongs to `anatomy_sex`; the patient is `sex`.
    Sex {
        sex: Sex,
        anatomy_sex: Sex,
        /// The concept or site that only `anatomy_sex` has (its display).
        anatomy: &'a str,
    },
    /// The finding occurs only within `min_age..=max_age` years.
    Age {
        age: AgeYears,
        min_age: Option<u32>,
        max_age: Option<u32>,
    },
    /// The order names `ordered_side`/`ordered_region`; the report
    /// describes `described_side`/`described_region` (each pair set only
    /// when it disagrees), in the sentences of `evidence`.
    Order {
        ordered: String,
        ordered_side: Option<Laterality>,
        described_side: Option<Laterality>,
        ordered_region: Option<&'a str>,
        described_region: Option<&'a str>,
        evidence: Vec<Said<'a>>,
    },
}

/// Something in the report that a reader should check: the Impression
/// contradicts the Findings, or an expected follow-up is missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Discrepancy<'a> {
    pub kind: DiscrepancyKind,
    pub term: &'a str,
    /// The sides, for a laterality discrepancy.
    pub findings_side: Option<Laterality>,
    pub impression_side: Option<Laterality>,
    /// Indexes into [`Extraction::findings`] of the finding in each section
    /// (a missing follow-up has the one finding, in its own section).
    pub findings_finding: Option<usize>,
    pub impression_finding: Option<usize>,
    /// For sex, age and order discrepancies: the fact the text disagrees with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub against: Option<Against<'a>>,
}

mod addendum;
mod assess;
mod context;
mod critical;
mod discrepancy;
mod findings;
mod grammar;
mod layout;
mod lexicon;
mod measure;
mod notify;
mod offsets;
mod recommend;
mod sections;
mod sentence;
mod table;
mod words;

pub use lexicon::{Lexicon, MappingError, MappingFiles, SiteTables};

pub use offsets::char_range_to_bytes;

use sentence::{Scratch, SentenceSpan};

/// Extracts sections, items, findings, recommendations, critical results and
/// laterality discrepancies from a report text. Headerless text is one
/// [`SectionKind::Other`] section.
pub fn extract<'a>(text: &'a str, lexicon: &'a Lexicon) -> Extraction<'a> {
    extract_as(text, lexicon, SectionKind::Other)
}

/// Like [`extract`], but headerless text is a section of kind `headerless`:
/// a `DiagnosticReport.conclusion` on its own is an impression.
///
/// The pipeline: layout (sections, items, sentences) → per sentence: finding
/// terms, their context (assertion, temporality, change, laterality), body
/// sites and sizes → recommendations → critical results → laterality
/// discrepancies → byte offsets turned into char offsets, once.
pub fn extract_as<'a>(
    text: &'a str,
    lexicon: &'a Lexicon,
    headerless: SectionKind,
) -> Extraction<'a> {
    extract_with(
        text,
        lexicon,
        headerless,
        DiscrepancyKinds::ALL,
        &ReportFacts::default(),
    )
}

/// Like [`extract_as`], looking only for the discrepancies of `kinds`, and
/// comparing the text with what `facts` say of the patient and the order
/// (sex, age and order discrepancies: none without the facts).
pub fn extract_with<'a>(
    text: &'a str,
    lexicon: &'a Lexicon,
    headerless: SectionKind,
    kinds: DiscrepancyKinds,
    facts: &ReportFacts,
) -> Extraction<'a> {
    let layout = layout::layout(text, &lexicon.sections, headerless);
    let mut scratch = Scratch::default();
    // About two findings per sentence in chest reports: reserve once.
    let mut findings = Vec::with_capacity(2 * layout.sentences.len());
    let mut concepts = Vec::with_capacity(2 * layout.sentences.len());
    for sentence in &layout.sentences {
        let span = SentenceSpan {
            start: sentence.start,
            end: sentence.end,
            body_start: sentence.body_start,
            section: layout.sections[sentence.section].kind,
            item: sentence.item,
        };
        findings::sentence_findings(
            text,
            span,
            lexicon,
            measure::measurements(text, sentence.start, sentence.end),
            &mut scratch,
            &mut findings,
            &mut concepts,
        );
    }
    sub_header_sides(&layout.sections, &mut findings);
    // Before critical results and discrepancies: they read the corrected sides.
    addendum::correct_sides(
        text,
        &layout.sections,
        &layout.sentences,
        &mut findings,
        &concepts,
    );
    let notifications = notify::notifications(text, &layout);
    let mut recommendations = recommend::recommendations(text, &layout);
    // A sentence that records a call ("discussed with Dr. X at 14:05") is
    // not advice, even where it follows the Recommendation header.
    recommendations.retain(|r| {
        !notifications
            .iter()
            .any(|n| n.start <= r.start && r.end <= n.end)
    });
    recommend::link_reasons(&mut recommendations, &findings);
    let assessments = assess::assessments(text, &layout, lexicon);
    let (critical, actionable) = critical::critical(&findings, &concepts, lexicon);
    let discrepancies = discrepancy::discrepancies(
        discrepancy::Inputs {
            text,
            sentences: &layout.sentences,
            sections: &layout.sections,
            findings: &findings,
            concepts: &concepts,
            recommendations: &recommendations,
            lexicon,
        },
        kinds,
        facts,
    );
    let mut extraction = Extraction {
        sections: layout.sections,
        findings,
        recommendations,
        critical,
        actionable,
        discrepancies,
        notifications,
        assessments,
    };
    offsets::to_char_offsets(&mut extraction, text);
    extraction
}

/// A sub-header that names a side ("Right lobe:", "LEFT KNEE:") gives it to
/// the findings of its whole paragraph that state none themselves.
/// Items follow each other in text order without overlapping, so the one
/// holding a finding is found by binary search: a walk over every item per
/// finding made 50,000 list items cost minutes (issue 11, item 3).
fn sub_header_sides(sections: &[Section<'_>], findings: &mut [Finding<'_>]) {
    let items: Vec<&Item<'_>> = sections.iter().flat_map(|s| &s.items).collect();
    debug_assert!(items.windows(2).all(|w| w[0].end <= w[1].start));
    for finding in findings.iter_mut().filter(|f| f.laterality.is_none()) {
        let after = items.partition_point(|item| item.start <= finding.term_start);
        let label = after
            .checked_sub(1)
            .map(|index| items[index])
            .filter(|item| finding.term_start < item.end)
            .and_then(|item| item.label);
        if let Some(label) = label {
            finding.laterality = side_word(label);
        }
    }
}

/// The side a short label names, if exactly one ("Left ventricle:" names
/// none).
pub(crate) fn side_word(label: &str) -> Option<Laterality> {
    let mut side = None;
    for word in label.split(|c: char| !c.is_ascii_alphabetic()) {
        let named = match word.to_ascii_lowercase().as_str() {
            "left" => Laterality::Left,
            "right" => Laterality::Right,
            "bilateral" | "both" => Laterality::Bilateral,
            _ => continue,
        };
        if side.is_some_and(|s| s != named) {
            return Some(Laterality::Bilateral);
        }
        side = Some(named);
    }
    side.filter(|_| !findings::names_cardiac_anatomy(label))
}

/// Judges one term in one sentence with the same context rules as
/// [`extract`], for terms the lexicon may not know (evaluation on the NegEx
/// kit, or a caller's own vocabulary). `term_start..term_end` is a BYTE
/// range of `sentence` (on char boundaries). The context is the sentence (or
/// list item) of `sentence` that holds the term, as the layout splits it, so
/// "COMPLICATIONS: None 1) Polyp" does not negate the polyp. Returns the
/// assertion and the temporality of the term.
///
/// ```
/// use reportsplit_split::{assert_term, Assertion, Temporality};
/// let s = "There is no evidence of focal airspace disease.";
/// let start = s.find("airspace").unwrap();
/// assert_eq!(assert_term(s, start, start + 16), (Assertion::Absent, Temporality::Current));
/// ```
pub fn assert_term(sentence: &str, term_start: usize, term_end: usize) -> (Assertion, Temporality) {
    let lexicon = shared_lexicon();
    let end = term_end.min(sentence.len());
    let start = term_start.min(end);
    let layout = layout::layout(sentence, &lexicon.sections, SectionKind::Other);
    let (from, to) = context_window(sentence, &layout.sentences, start, end);
    let mut hits = Vec::new();
    lexicon.words.scan_cues(sentence, from, to, &mut hits);
    hits.retain(|hit| hit.end <= start || hit.start >= end);
    let judgement = context::judge::judge(sentence, &hits, start, end, &[]);
    (judgement.assertion, judgement.temporality)
}

/// The built-in lexicon, built once per process.
fn shared_lexicon() -> &'static Lexicon {
    static LEXICON: std::sync::OnceLock<Lexicon> = std::sync::OnceLock::new();
    LEXICON.get_or_init(Lexicon::builtin)
}

/// What `pick` reads of each finding the built-in extraction gives `text`
/// (for the tests of the modules whose rules it runs).
#[cfg(test)]
fn findings_of<'a, T>(text: &'a str, pick: impl Fn(&Finding<'a>) -> T) -> Vec<T> {
    extract(text, shared_lexicon())
        .findings
        .iter()
        .map(pick)
        .collect()
}

/// The span of the layout sentence holding `start..end`, joined with its
/// neighbours where only spaces separate them: a run of spaces is a
/// sentence break in flattened exports, and so is ", " before a capital,
/// but not in the middle of a clause ("No   WEIGHT LOSS", "No adenopathy,
/// THYROMEGALY").
fn context_window(
    text: &str,
    sentences: &[layout::Sentence],
    start: usize,
    end: usize,
) -> (usize, usize) {
    let Some(index) = sentences
        .iter()
        .position(|s| s.start <= start && end <= s.end)
    else {
        return (0, text.len());
    };
    let soft_break = |left: &layout::Sentence, right: &layout::Sentence| {
        left.section == right.section
            && left.end <= right.start
            && text[left.end..right.start]
                .bytes()
                .all(|b| b == b' ' || b == b',')
            && !text[..left.end].ends_with(['.', '!', '?', ':', ';'])
    };
    let mut first = index;
    while first > 0 && soft_break(&sentences[first - 1], &sentences[first]) {
        first -= 1;
    }
    let mut last = index;
    while last + 1 < sentences.len() && soft_break(&sentences[last], &sentences[last + 1]) {
        last += 1;
    }
    let from = if first == index {
        sentences[index].body_start.min(start)
    } else {
        sentences[first].body_start
    };
    (from, sentences[last].end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings<'a>(text: &'a str, lexicon: &'a Lexicon) -> Vec<Finding<'a>> {
        extract(text, lexicon).findings
    }

    fn judged(text: &str) -> Vec<(String, Assertion)> {
        let lexicon = shared_lexicon();
        findings(text, lexicon)
            .iter()
            .map(|f| (f.term.to_ascii_lowercase(), f.assertion))
            .collect()
    }

    fn owned(pairs: &[(&str, Assertion)]) -> Vec<(String, Assertion)> {
        pairs.iter().map(|(t, a)| (t.to_string(), *a)).collect()
    }

    #[test]
    fn a_recorded_call_under_the_recommendation_header_is_not_a_recommendation() {
        let text = "FINDINGS: Acute pulmonary embolism in the right lower lobe.\n\
                    IMPRESSION: Acute right lower lobe pulmonary embolism.\n\
                    RECOMMENDATION: Follow-up CT chest in 3 months.\n\
                    The findings were discussed with Dr. Ortega by telephone at 09:40.";
        let out = extract(text, shared_lexicon());
        assert_eq!(out.notifications.len(), 1, "{:?}", out.notifications);
        let advice: Vec<&str> = out.recommendations.iter().map(|r| r.text).collect();
        assert_eq!(advice, ["Follow-up CT chest in 3 months."]);
    }

    #[test]
    fn a_negated_list_gives_one_absent_finding_per_item() {
        assert_eq!(
            judged("No focal consolidation, effusion, or pneumothorax."),
            owned(&[
                ("focal consolidation", Assertion::Absent),
                ("effusion", Assertion::Absent),
                ("pneumothorax", Assertion::Absent),
            ])
        );
    }

    #[test]
    fn negation_after_an_organ_sub_header_applies_forward() {
        let text =
            "FINDINGS:\nLUNGS: No focal consolidation, effusion or pneumothorax.\nHEART: Normal.";
        let lexicon = shared_lexicon();
        let found = findings(text, lexicon);
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|f| f.assertion == Assertion::Absent));
        assert!(found.iter().all(|f| f.item == Some(1)));
    }

    fn coded(text: &str) -> Vec<(String, String, Assertion)> {
        findings(text, shared_lexicon())
            .iter()
            .map(|f| {
                (
                    f.term.to_ascii_lowercase(),
                    f.code.map_or(String::new(), |c| c.code.clone()),
                    f.assertion,
                )
            })
            .collect()
    }

    #[test]
    fn a_bare_or_list_after_a_negation_continues_it() {
        assert_eq!(
            judged("Lungs are clear without fibrosis. Pleural effusions or pneumothorax."),
            owned(&[
                ("fibrosis", Assertion::Absent),
                ("pleural effusions", Assertion::Absent),
                ("pneumothorax", Assertion::Absent),
            ])
        );
        // Not after an affirmed finding, and not when the fragment says more.
        assert_eq!(
            judged("Small left effusion. Atelectasis or pneumonia.")[1..],
            owned(&[
                ("atelectasis", Assertion::Present),
                ("pneumonia", Assertion::Present),
            ])[..]
        );
        assert_eq!(
            judged("No pneumothorax. Pleural effusion or atelectasis at the left base.")[1..],
            owned(&[
                ("pleural effusion", Assertion::Present),
                ("atelectasis", Assertion::Present),
            ])[..]
        );
    }

    #[test]
    fn a_hedge_of_another_mention_does_not_weaken_this_one() {
        let lexicon = shared_lexicon();
        let out = findings(
            "Probable small pleural effusions and questionable interstitial edema.",
            lexicon,
        );
        let graded: Vec<Option<Certainty>> = out.iter().map(|f| f.certainty).collect();
        assert_eq!(graded, [Some(Certainty::High), Some(Certainty::Moderate)]);
        // "versus" doubts both alternatives, whichever comes first.
        let out = findings("Bibasilar atelectasis versus scarring.", lexicon);
        let judged: Vec<(Assertion, Option<Certainty>)> =
            out.iter().map(|f| (f.assertion, f.certainty)).collect();
        assert_eq!(
            judged,
            [(Assertion::Possible, Some(Certainty::Moderate)); 2]
        );
    }

    #[test]
    fn a_line_opening_with_a_side_places_what_follows() {
        let lexicon = shared_lexicon();
        let text = "FINDINGS:\nLeft breast, 10 o'clock, 4 cm from the nipple (site of palpable concern): \
                    oval hypoechoic mass measuring 1.2 cm.\nRight breast, 3 o'clock: 5 mm simple cyst.\n\
                    IMPRESSION: Probably benign 1.2 cm mass in the right breast at 10 o'clock.";
        let found: Vec<_> = findings(text, lexicon)
            .iter()
            .map(|f| (f.term, f.laterality, f.assertion))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "oval hypoechoic mass",
                    Some(Laterality::Left),
                    Assertion::Present
                ),
                ("simple cyst", Some(Laterality::Right), Assertion::Present),
                // BI-RADS 3's words leave the mass stated.
                ("mass", Some(Laterality::Right), Assertion::Present),
            ]
        );
        // So the wrong side in the Impression is seen.
        let extraction = extract(text, lexicon);
        assert_eq!(
            extraction.discrepancies.len(),
            1,
            "{:?}",
            extraction.discrepancies
        );
    }

    #[test]
    fn nodal_levels_stay_inside_the_noun_phrase() {
        let lexicon = shared_lexicon();
        let terms: Vec<_> = findings(
            "Enlarged bilateral level IIA lymph nodes. Necrotic station 4R node.",
            lexicon,
        )
        .iter()
        .map(|f| f.term)
        .collect();
        assert_eq!(
            terms,
            [
                "Enlarged bilateral level IIA lymph nodes",
                "Necrotic station 4R node"
            ]
        );
    }

    #[test]
    fn a_side_in_a_parenthesis_or_an_eccentric_place_is_the_findings() {
        let lexicon = shared_lexicon();
        let sides = |text: &'static str| -> Vec<(&'static str, Option<Laterality>)> {
            findings(text, lexicon)
                .iter()
                .map(|f| (f.term, f.laterality))
                .collect()
        };
        assert_eq!(
            sides("Nodule 1 (mid right lobe) measures 1.1 cm."),
            [("Nodule", Some(Laterality::Right))]
        );
        assert_eq!(
            sides("A fluid collection in the retropharyngeal space, eccentric to the left."),
            [("fluid collection", Some(Laterality::Left))]
        );
    }

    #[test]
    fn a_shift_has_a_direction_not_the_side_of_its_cause() {
        let lexicon = shared_lexicon();
        let sides = |text: &str| -> Vec<Option<Laterality>> {
            findings(text, lexicon)
                .iter()
                .map(|f| f.laterality)
                .collect()
        };
        assert_eq!(
            sides("Acute right subdural hemorrhage with midline shift."),
            [Some(Laterality::Right), None]
        );
        // A shift's side is its direction, never its cause's side.
        assert_eq!(
            sides("Subdural hematoma on the right convexity with 4 mm of leftward midline shift."),
            [Some(Laterality::Right), Some(Laterality::Left)]
        );
        assert_eq!(
            sides("Right pneumothorax with mediastinal shift to the left."),
            [Some(Laterality::Right), Some(Laterality::Left)]
        );
        // A midline structure takes a side that modifies or places it, not
        // a neighbour's.
        assert_eq!(
            sides("Bilateral facet arthropathy with central canal stenosis."),
            [Some(Laterality::Bilateral), None]
        );
        assert_eq!(
            sides(
                "Left paracentral disc extrusion and a disc protrusion in the right lateral recess."
            ),
            [Some(Laterality::Left), Some(Laterality::Right)]
        );
        // A direction is not where a finding lies.
        assert_eq!(
            sides(
                "Large left pneumothorax with rightward shift, compatible with tension pneumothorax."
            ),
            [Some(Laterality::Left), Some(Laterality::Left)]
        );
        // "to the left common iliac artery" is a place, not a direction.
        assert_eq!(
            sides("Intimal flap extending to the left common iliac artery."),
            [None]
        );
        // Other findings joined by "with" keep the side they share.
        assert_eq!(
            sides("6 mm right UVJ stone with moderate hydronephrosis."),
            [Some(Laterality::Right), Some(Laterality::Right)]
        );
    }

    #[test]
    fn an_organ_sub_header_heads_a_gapped_finding() {
        let found = coded("FINDINGS:\nHEART: Mildly enlarged.\nLUNGS: Clear.");
        assert_eq!(
            found,
            vec![(
                "heart: mildly enlarged".to_string(),
                "8186001".to_string(),
                Assertion::Present
            )]
        );
        assert_eq!(coded("HEART: Not enlarged.")[0].2, Assertion::Absent);
        assert_eq!(coded("LUNG VOLUMES: Low.")[0].1, "233785005");
        // The body names the finding itself: one finding, not two.
        assert_eq!(coded("HEART: Enlarged heart.").len(), 1);
        assert!(coded("HEART: Normal size and contour.").is_empty());
    }

    #[test]
    fn review_findings_are_coded_by_their_own_concept() {
        let code = |text: &str| coded(text)[0].1.clone();
        // Air and fluid in the pleural space is not a pneumothorax.
        assert_eq!(code("Small left hydropneumothorax."), "60408006");
        // A tumour is a diagnosis, not the imaging sign Mass.
        assert_eq!(code("Findings worrisome for malignancy."), "108369006");
        assert_eq!(code("Right hilar mass."), "4147007");
        // A nodule named with an organ outside the chest is a generic nodule.
        assert_eq!(code("Left adrenal nodule."), "27925004");
        assert_eq!(code("1.2 cm nodule in the left adrenal gland."), "27925004");
        assert_eq!(code("Hypoechoic nodule within the liver."), "27925004");
        assert_eq!(coded("No nodule in the thyroid.")[0].2, Assertion::Absent);
        assert_eq!(code("Right upper lobe nodule."), "427359005");
        // The shape of an opacity whose nature is undecided (a rib callus,
        // a nipple shadow, a granuloma): not yet a nodule.
        assert_eq!(code("Nodular opacity over the right 5th rib."), "RID28530");
        for text in [
            "Reticulonodular opacities in both lungs.",
            "Fibronodular changes at the apices.",
        ] {
            assert_eq!(code(text), "427359005", "{text}");
        }
        for text in [
            "Reduced lung volumes.",
            "Lung volumes are low.",
            "Low lung volumes.",
        ] {
            assert_eq!(code(text), "233785005", "{text}");
        }
        assert_eq!(coded("Lung volumes are not low.")[0].2, Assertion::Absent);
        assert_eq!(code("The heart size is mildly enlarged."), "8186001");
        for text in [
            "Increased heart size.",
            "The heart size has increased.",
            "Interval increase in heart size.",
        ] {
            assert_eq!(code(text), "8186001", "{text}");
        }
        assert_eq!(
            coded("Heart size is not increased.")[0].2,
            Assertion::Absent
        );
        for text in [
            "Right apical pleural cap.",
            "Thickening of the right minor fissure.",
            "Pleural-based thickening along the left chest wall.",
        ] {
            assert_eq!(code(text), "73725006", "{text}");
        }
        // Not pleural: the thickening of an airway wall ("thickening of the
        // ... fissure" opens here, but its tail never comes).
        assert_eq!(
            code("Thickening of the bronchial walls."),
            "finding-wall-thickening"
        );
        // Calcified granuloma is a granuloma, not a nodule.
        assert_eq!(
            code("Calcified granuloma in the left upper lobe."),
            "45647009"
        );
    }

    #[test]
    fn baseline_failures_are_fixed() {
        let lexicon = shared_lexicon();
        let out = findings("No change in moderate left pneumothorax.", lexicon);
        assert_eq!(
            (out[0].assertion, out[0].change, out[0].laterality),
            (
                Assertion::Present,
                Some(Change::Stable),
                Some(Laterality::Left)
            )
        );
        assert_eq!(
            judged("Cannot exclude pneumonia."),
            owned(&[("pneumonia", Assertion::Possible)])
        );
        assert_eq!(
            judged("A mass is not excluded."),
            owned(&[("mass", Assertion::Possible)])
        );
    }

    #[test]
    fn run_together_numbered_items_are_judged_separately() {
        let text = "IMPRESSION: 1. No pneumothorax 2. Bibasilar atelectasis 3. 8 mm nodule";
        let lexicon = shared_lexicon();
        let out = findings(text, lexicon);
        let summary: Vec<_> = out
            .iter()
            .map(|f| (f.term, f.assertion, f.item, f.laterality))
            .collect();
        assert_eq!(
            summary,
            [
                ("pneumothorax", Assertion::Absent, Some(1), None),
                (
                    "atelectasis",
                    Assertion::Present,
                    Some(2),
                    Some(Laterality::Bilateral)
                ),
                ("nodule", Assertion::Present, Some(3), None),
            ]
        );
        assert_eq!(out[2].measurements.len(), 1);
        assert_eq!(out[2].measurements[0].max_mm, 8.0);
    }

    #[test]
    fn sizes_and_sites_attach_to_their_finding() {
        let text =
            "There is a 2.1 x 1.4 cm nodule in the right upper lobe and a small left effusion.";
        let lexicon = shared_lexicon();
        let out = findings(text, lexicon);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].term, "nodule");
        assert_eq!(out[0].measurements[0].max_mm, 21.0);
        assert_eq!(out[0].laterality, Some(Laterality::Right));
        assert_eq!(
            out[0].body_site.iter().map(|s| s.text).collect::<Vec<_>>(),
            ["upper lobe"]
        );
        assert_eq!(out[1].laterality, Some(Laterality::Left));
        assert!(out[1].measurements.is_empty());
    }

    #[test]
    fn the_largest_of_a_group_sizes_the_group() {
        let out = findings(
            "Three mesorectal lymph nodes with irregular borders and heterogeneous signal, the largest 7 mm.",
            shared_lexicon(),
        );
        let sizes: Vec<_> = out
            .iter()
            .map(|f| (f.term, f.measurements.first().map(|m| m.max_mm)))
            .collect();
        assert_eq!(
            sizes,
            [("lymph nodes", Some(7.0)), ("heterogeneous signal", None)]
        );
    }

    #[test]
    fn a_distance_from_a_landmark_is_no_size_but_an_extent_is() {
        let lexicon = shared_lexicon();
        let sizes = |text: &str| {
            findings(text, lexicon)
                .iter()
                .map(|f| {
                    (
                        f.term.to_string(),
                        f.measurements.iter().map(|m| m.max_mm).reduce(f64::max),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            sizes(
                "Thrombus fills the right popliteal vein over 6 cm, stopping 4 cm above the knee joint."
            ),
            [("Thrombus".to_string(), Some(60.0))]
        );
        assert_eq!(
            sizes("Amorphous calcifications extend 2.5 cm posterior to the biopsy marker."),
            [("Amorphous calcifications".to_string(), Some(25.0))]
        );
    }

    #[test]
    fn a_normal_pregnancy_is_no_finding_but_a_missing_one_is() {
        let lexicon = shared_lexicon();
        let terms = |text: &str| {
            findings(text, lexicon)
                .iter()
                .map(|f| (f.term.to_string(), f.assertion))
                .collect::<Vec<_>>()
        };
        assert!(terms("A live intrauterine pregnancy with a fetal pole.").is_empty());
        assert_eq!(
            terms("No intrauterine pregnancy is seen."),
            [("intrauterine pregnancy".to_string(), Assertion::Absent)]
        );
    }

    #[test]
    fn an_increased_level_is_no_change_unless_compared() {
        let lexicon = shared_lexicon();
        let changes = |text: &str| {
            findings(text, lexicon)
                .iter()
                .map(|f| f.change)
                .collect::<Vec<_>>()
        };
        let level = changes("Foci of increased uptake in the ribs with cortical thinning.");
        assert!(
            !level.is_empty() && level.iter().all(Option::is_none),
            "{level:?}"
        );
        assert_eq!(
            changes("The uptake in the left femoral neck has increased since the prior scan."),
            [Some(Change::Increased)]
        );
    }

    #[test]
    fn findings_are_coded_and_offsets_are_chars() {
        let text = "Résumé: small right pneumothorax.";
        let lexicon = shared_lexicon();
        let out = findings(text, lexicon);
        let code = out[0].code.expect("coded");
        assert_eq!(
            (code.system.as_str(), code.code.as_str()),
            ("http://snomed.info/sct", "36118008")
        );
        let chars: Vec<char> = text.chars().collect();
        let term: String = chars[out[0].term_start..out[0].term_end].iter().collect();
        assert_eq!(term, "small right pneumothorax");
    }

    #[test]
    fn gapped_terms_carry_their_inner_negation() {
        assert_eq!(
            judged("The heart is not enlarged."),
            owned(&[("heart is not enlarged", Assertion::Absent)])
        );
        assert_eq!(
            judged("The heart is mildly enlarged."),
            owned(&[("heart is mildly enlarged", Assertion::Present)])
        );
    }

    #[test]
    fn negated_linking_hedges_are_negated() {
        assert_eq!(
            judged("No focal opacity to suggest pneumonia."),
            owned(&[
                ("focal opacity", Assertion::Absent),
                ("pneumonia", Assertion::Absent)
            ])
        );
        assert_eq!(
            judged("Patchy opacity suggestive of pneumonia."),
            owned(&[
                ("patchy opacity", Assertion::Present),
                ("pneumonia", Assertion::Possible)
            ])
        );
    }

    #[test]
    fn assert_term_judges_terms_outside_the_lexicon() {
        let s = "Extremities reveal no peripheral cyanosis or clubbing.";
        let at = s.find("clubbing").unwrap();
        assert_eq!(assert_term(s, at, at + 8).0, Assertion::Absent);
        let s = "The patient has a history of hypertension.";
        let at = s.find("hypertension").unwrap();
        assert_eq!(
            assert_term(s, at, at + 12),
            (Assertion::Present, Temporality::Historical)
        );
        // A list item boundary stops the scope of an earlier "None".
        let s = "COMPLICATIONS: None\n1) Internal hemorrhoids";
        let at = s.find("Internal").unwrap();
        assert_eq!(assert_term(s, at, s.len()).0, Assertion::Present);
        // Runs of spaces inside a clause are not sentence breaks.
        let s = "No   weight loss.";
        assert_eq!(assert_term(s, 5, 16).0, Assertion::Absent);
        // Out-of-range offsets are clamped to the end, never a panic.
        assert_eq!(
            assert_term("No effusion.", 50, 60),
            assert_term("No effusion.", 12, 12)
        );
    }

    #[test]
    fn with_ends_a_negation_but_not_a_hedge() {
        assert_eq!(
            judged("No cardiomegaly with small bilateral pleural effusions."),
            owned(&[
                ("cardiomegaly", Assertion::Absent),
                ("small bilateral pleural effusions", Assertion::Present)
            ])
        );
        assert_eq!(
            judged("Findings suggestive of hilar mass with obstructive atelectasis."),
            owned(&[
                ("mass", Assertion::Possible),
                ("obstructive atelectasis", Assertion::Possible)
            ])
        );
        assert_eq!(
            judged("Symptoms not consistent with aortic dissection."),
            owned(&[("aortic dissection", Assertion::Absent)])
        );
        // A "with" that lists alternatives denies them with its head.
        assert_eq!(
            judged("No suspicious nodule with microcalcification or extrathyroidal extension."),
            owned(&[
                ("nodule", Assertion::Absent),
                ("microcalcification", Assertion::Absent),
                ("extrathyroidal extension", Assertion::Absent)
            ])
        );
    }

    #[test]
    fn a_finding_of_uncertain_nature_is_present_and_a_stated_concern_is_possible() {
        assert_eq!(
            judged("6 mm left lower lobe nodule, indeterminate."),
            owned(&[("nodule", Assertion::Present)])
        );
        assert_eq!(
            judged("Recurrent nodal disease is a concern."),
            owned(&[("nodal disease", Assertion::Possible)])
        );
    }

    #[test]
    fn a_gapped_head_without_its_tail_gives_way_to_a_shorter_term() {
        // "thickening of the" opens "thickening of the ... fissure" only.
        assert_eq!(
            judged("There is thickening of the urinary bladder wall."),
            owned(&[("thickening", Assertion::Present)])
        );
        assert_eq!(
            judged("There is a well demarcated mass in the parotid gland."),
            owned(&[("well demarcated mass", Assertion::Present)])
        );
    }

    #[test]
    fn a_place_sharing_the_next_head_names_a_finding_of_its_own() {
        assert_eq!(
            judged("No pleural or pericardial effusion."),
            owned(&[
                ("pleural", Assertion::Absent),
                ("pericardial effusion", Assertion::Absent)
            ])
        );
        // Kinds of one finding stay one finding.
        assert_eq!(
            judged("Severe paraseptal and centrilobular emphysema."),
            owned(&[(
                "severe paraseptal and centrilobular emphysema",
                Assertion::Present
            )])
        );
    }

    #[test]
    fn a_lumen_content_and_the_normal_ovary_of_the_cycle_are_no_findings() {
        assert_eq!(
            judged("The stomach is distended with fluid."),
            owned(&[("distended", Assertion::Present)])
        );
        assert!(judged("The left ovary contains a corpus luteum.").is_empty());
        assert_eq!(
            judged("Haemorrhagic corpus luteum in the right ovary."),
            owned(&[("haemorrhagic corpus luteum", Assertion::Present)])
        );
    }

    #[test]
    fn postoperative_changes_of_a_procedure_are_one_finding_coded_as_the_procedure() {
        let lexicon = Lexicon::builtin();
        let text = "FINDINGS: Postoperative changes of left frontal craniotomy.";
        let out = extract(text, &lexicon);
        let terms: Vec<_> = out.findings.iter().map(|f| f.term).collect();
        assert_eq!(terms, ["Postoperative changes of left frontal craniotomy"]);
        assert_eq!(
            out.findings[0].code.map(|c| c.code.as_str()),
            Some("finding-craniotomy")
        );
    }

    #[test]
    fn an_organ_descriptor_before_a_sited_head_qualifies_it() {
        assert_eq!(
            judged("No FDG-avid cervical lymphadenopathy."),
            owned(&[("fdg-avid cervical lymphadenopathy", Assertion::Absent)])
        );
    }

    #[test]
    fn a_small_organ_is_a_finding_and_a_small_amount_is_not() {
        assert_eq!(
            judged("The right kidney is small."),
            owned(&[("is small", Assertion::Present)])
        );
        assert_eq!(
            judged("Small volume ascites. A small amount of free fluid."),
            owned(&[
                ("ascites", Assertion::Present),
                ("small amount of free fluid", Assertion::Present)
            ])
        );
    }

    #[test]
    fn a_negation_that_opens_a_gapped_term_is_part_of_it() {
        // "absence of ... flow" names absent flow, a finding that is there.
        assert_eq!(
            judged("There is absence of arterial and venous flow in the right ovary."),
            owned(&[("absence of arterial and venous flow", Assertion::Present)])
        );
        // A negation in the gap still denies: "heart is not enlarged".
        assert_eq!(
            judged("The heart is not enlarged."),
            owned(&[("heart is not enlarged", Assertion::Absent)])
        );
    }

    #[test]
    fn a_persisting_finding_after_a_negated_one_is_present() {
        assert_eq!(
            judged("No new consolidation, stable right basilar atelectasis."),
            owned(&[
                ("consolidation", Assertion::Absent),
                ("atelectasis", Assertion::Present)
            ])
        );
        assert_eq!(
            judged("Resolved pneumothorax, unchanged small left effusion."),
            owned(&[
                ("pneumothorax", Assertion::Absent),
                ("small left effusion", Assertion::Present)
            ])
        );
        // A negation that governs the word itself still negates.
        assert_eq!(
            judged("No persistent pneumothorax."),
            owned(&[("pneumothorax", Assertion::Absent)])
        );
        // Affirming blocks a negation, not a hedge.
        assert_eq!(
            judged("Possible stable nodule. Likely there is a small effusion."),
            owned(&[
                ("nodule", Assertion::Possible),
                ("small effusion", Assertion::Possible)
            ])
        );
    }

    #[test]
    fn a_negated_clause_closed_by_its_verb_ends_the_negation() {
        assert_eq!(
            judged("No pleural effusion seen, mild cardiomegaly."),
            owned(&[
                ("pleural effusion", Assertion::Absent),
                ("mild cardiomegaly", Assertion::Present)
            ])
        );
        assert_eq!(
            judged("No focal consolidation identified, small left effusion."),
            owned(&[
                ("focal consolidation", Assertion::Absent),
                ("small left effusion", Assertion::Present)
            ])
        );
    }

    #[test]
    fn a_new_subject_ends_a_negation() {
        assert_eq!(
            judged("No pneumothorax or pleural effusion, and the heart is enlarged."),
            owned(&[
                ("pneumothorax", Assertion::Absent),
                ("pleural effusion", Assertion::Absent),
                ("heart is enlarged", Assertion::Present)
            ])
        );
        // The hedge is the effusion's own (LABELLING: a hedge scopes only
        // its own target), and "the" opens a new subject.
        assert_eq!(
            judged("Possible small effusion and the adjacent atelectasis."),
            owned(&[
                ("small effusion", Assertion::Possible),
                ("atelectasis", Assertion::Present)
            ])
        );
    }

    #[test]
    fn chained_links_inherit_the_negation() {
        assert_eq!(
            judged(
                "No pleural line to suggest pneumothorax or blunting to suggest pleural effusion."
            ),
            owned(&[
                ("pneumothorax", Assertion::Absent),
                ("blunting", Assertion::Absent),
                ("pleural effusion", Assertion::Absent)
            ])
        );
    }

    #[test]
    fn parentheses_bound_the_cues_inside_them() {
        assert_eq!(
            judged("No effusion (small) or pneumothorax."),
            owned(&[
                ("effusion", Assertion::Absent),
                ("pneumothorax", Assertion::Absent)
            ])
        );
        assert_eq!(
            judged("The nodule (not seen on the lateral view) is a granuloma."),
            owned(&[
                ("nodule", Assertion::Present),
                ("granuloma", Assertion::Present)
            ])
        );
    }

    #[test]
    fn an_explained_finding_takes_the_side_of_its_observation() {
        let lexicon = shared_lexicon();
        let sides: Vec<_> = findings(
            "Minimal left basilar opacity compatible with scarring or atelectasis.",
            lexicon,
        )
        .iter()
        .map(|f| (f.term, f.laterality))
        .collect();
        assert_eq!(
            sides,
            [
                ("Minimal left basilar opacity", Some(Laterality::Left)),
                ("scarring", Some(Laterality::Left)),
                ("atelectasis", Some(Laterality::Left)),
            ]
        );
        let out = findings("Calcified granulomas in the lung bases.", lexicon);
        assert_eq!(out[0].laterality, Some(Laterality::Bilateral));
        let out = findings("Small pleural effusions, right larger than left.", lexicon);
        assert_eq!(out[0].laterality, Some(Laterality::Bilateral));
        assert_eq!(
            out[0].change, None,
            "larger than the other side is no change"
        );
        let out = findings(
            "Congestive heart failure with bilateral effusions.",
            lexicon,
        );
        assert_eq!(out[0].laterality, None);
        assert_eq!(out[1].laterality, Some(Laterality::Bilateral));
    }

    #[test]
    fn a_size_goes_to_the_finding_it_modifies_or_follows() {
        let lexicon = shared_lexicon();
        let out = findings(
            "Acute subdural hematoma measuring 8 mm with 4 mm of midline shift.",
            lexicon,
        );
        let sizes: Vec<_> = out
            .iter()
            .map(|f| {
                (
                    f.term,
                    f.measurements.iter().map(|m| m.text).collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(
            sizes,
            [
                ("Acute subdural hematoma", vec!["8 mm"]),
                ("midline shift", vec!["4 mm"])
            ]
        );
    }

    /// A finding's term and its largest size in mm.
    type SizedTerm<'a> = (&'a str, Option<f64>);

    /// (term, largest size in mm) of every finding of `sentence`.
    fn sized_terms(sentence: &str) -> Vec<SizedTerm<'_>> {
        findings(sentence, shared_lexicon())
            .iter()
            .map(|f| {
                let largest = f.measurements.iter().map(|m| m.max_mm).reduce(f64::max);
                (f.term, largest)
            })
            .collect()
    }

    #[test]
    fn a_size_belongs_to_the_thing_it_measures() {
        let cases: [(&str, &[SizedTerm<'_>]); 23] = [
            // Inside the noun phrase.
            (
                "Unchanged non-avid 7 mm left upper lobe nodule.",
                &[("nodule", Some(7.0))],
            ),
            // A "with" feature is not what "measuring" measures.
            (
                "Right ovarian cyst with fine internal echoes measuring 3.4 cm.",
                &[("cyst", Some(34.0)), ("internal echoes", None)],
            ),
            // A lesion in the "with" phrase is measured as itself.
            (
                "Moderate hydronephrosis with a stone measuring 6 mm.",
                &[("Moderate hydronephrosis", None), ("stone", Some(6.0))],
            ),
            // "with" after a comma adds a finding of its own.
            (
                "The gallbladder is distended, with wall thickening measuring 5 mm.",
                &[("distended", None), ("wall thickening", Some(5.0))],
            ),
            // The verb must stand before the size.
            (
                "Fracture of the left fifth metatarsal with 3 mm of displacement.",
                &[("Fracture", None), ("displacement", Some(3.0))],
            ),
            // A site between the finding and "to" does not count.
            (
                "Aneurysmal dilatation of the infrarenal aorta to 3.6 cm.",
                &[("Aneurysmal dilatation", Some(36.0))],
            ),
            // An organ's size is only the size of a finding of size.
            (
                "The right kidney measures 9.1 cm with cortical thinning.",
                &[("cortical thinning", None)],
            ),
            (
                "The spleen measures 16 cm and is enlarged.",
                &[("enlarged", Some(160.0))],
            ),
            // Prior and contralateral sizes are no one's.
            (
                "The effusion measures 5 mm, compared with 2 mm on the left.",
                &[("effusion", Some(5.0))],
            ),
            (
                "A 1.9 cm observation with arterial phase hyperenhancement.",
                &[("observation", Some(19.0)), ("hyperenhancement", None)],
            ),
            // What the measured thing is asserted to be has its size; a
            // suspected reading of it does not.
            (
                "A 2.2 cm mass in the tongue base, suspicious for carcinoma.",
                &[("mass", Some(22.0)), ("carcinoma", Some(22.0))],
            ),
            (
                "A 2.5 x 0.9 cm crescentic collection, consistent with a subchorionic hemorrhage.",
                &[
                    ("crescentic collection", Some(25.0)),
                    ("subchorionic hemorrhage", Some(25.0)),
                ],
            ),
            (
                "A 4.5 cm fluid collection near the anastomosis, possibly an anastomotic leak.",
                &[("fluid collection", Some(45.0)), ("anastomotic leak", None)],
            ),
            // What a focal finding may be has its size; what an organ's
            // measure may show does not.
            (
                "5 mm calcific density over the right renal shadow, possible renal calculus.",
                &[("density", Some(5.0)), ("renal calculus", Some(5.0))],
            ),
            (
                "The junctional zone is thickened to 15 mm, suggestive of adenomyosis.",
                &[("thickened", Some(15.0)), ("adenomyosis", None)],
            ),
            // An alternative offered for it too.
            (
                "A 3 mm calcification in the pelvis, likely phlebolith versus ureteric calculus.",
                &[
                    ("calcification", Some(3.0)),
                    ("phlebolith", Some(3.0)),
                    ("ureteric calculus", Some(3.0)),
                ],
            ),
            // A size before a lesion's modifiers is the lesion's.
            (
                "A 5.2 cm T1 hypointense, enhancing marrow-replacing lesion in the femur.",
                &[("lesion", Some(52.0))],
            ),
            // The size a subject now has, after its change.
            (
                "Nodular enhancement along the margin of the resection cavity has increased, now measuring 2.4 cm, previously 1.3 cm.",
                &[("Nodular enhancement", Some(24.0))],
            ),
            // A thickening is measured as itself, in a "with" phrase too.
            (
                "A right axillary lymph node with cortical thickening measuring 5 mm.",
                &[("lymph node", None), ("cortical thickening", Some(5.0))],
            ),
            // A group's largest member, named by another noun, is no
            // finding of its own: its size is the group's.
            (
                "Cholelithiasis, largest stone 1.2 cm.",
                &[("Cholelithiasis", Some(12.0))],
            ),
            (
                "Multiple uterine leiomyomas, the largest an intramural fibroid measuring 5.4 cm.",
                &[("Multiple uterine leiomyomas", Some(54.0))],
            ),
            // A guideline's size is no one's.
            (
                "Stable 9 mm TR4 left mid pole nodule, below the FNA threshold of 1.5 cm.",
                &[("nodule", Some(9.0))],
            ),
            // A size "from" a size is a change, not a distance.
            (
                "The infrarenal AAA has enlarged to 5.1 cm from 4.6 cm.",
                &[("AAA", Some(51.0))],
            ),
        ];
        for (sentence, expected) in cases {
            assert_eq!(sized_terms(sentence), expected, "{sentence}");
        }
        // A container head and its content are one finding.
        assert_eq!(
            sized_terms("A 7 mm nodular focus of scar tissue in the notch."),
            [("nodular focus of scar tissue", Some(7.0))]
        );
        let extraction = extract(
            "Multiple new foci of increased uptake in the spine.",
            shared_lexicon(),
        );
        let found: Vec<_> = extraction
            .findings
            .iter()
            .map(|f| (f.term, f.change))
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].0.ends_with("foci of increased uptake"),
            "{found:?}"
        );
        assert_eq!(found[0].1, Some(Change::New));
    }

    #[test]
    fn a_change_stated_at_the_end_of_a_sentence_is_its_subjects() {
        fn changes(sentence: &str) -> Vec<(&str, Option<Change>)> {
            findings(sentence, shared_lexicon())
                .iter()
                .map(|f| (f.term, f.change))
                .collect()
        }
        assert_eq!(
            changes("Bronchiectasis and bronchial wall thickening in the lingula are unchanged."),
            [
                ("Bronchiectasis", Some(Change::Stable)),
                ("wall thickening", Some(Change::Stable))
            ]
        );
        assert_eq!(
            changes("A 2.6 cm cyst with a thin septation, unchanged in size."),
            [
                ("cyst", Some(Change::Stable)),
                ("thin septation", Some(Change::Stable))
            ]
        );
        // A denied finding takes no change; the subject still does.
        assert_eq!(
            changes("A 9 mm enhancing observation without washout is unchanged."),
            [
                ("enhancing observation", Some(Change::Stable)),
                ("washout", None)
            ]
        );
        // A size now and one on a prior study give the change.
        assert_eq!(
            changes("A 2.4 cm observation, measuring 1.5 cm on the prior study."),
            [("observation", Some(Change::Increased))]
        );
        assert_eq!(
            changes("The largest nodule measures 12 mm, previously 18 mm."),
            [("largest nodule", Some(Change::Decreased))]
        );
        // Within measurement error it is the same size.
        assert_eq!(
            changes("Dominant nodule, 24 x 18 mm (previously 23 x 17 mm)."),
            [("nodule", Some(Change::Stable))]
        );
        // A grade now and one on a prior study give the change too.
        assert_eq!(
            changes("Moderate ascites, previously small."),
            [("Moderate ascites", Some(Change::Increased))]
        );
        assert_eq!(
            changes("Small left pleural effusion, previously large."),
            [("Small left pleural effusion", Some(Change::Decreased))]
        );
        // A relative clause is the last finding's own.
        assert_eq!(
            changes(
                "Osteoarthritis with bone marrow lesions that have increased since the prior study."
            ),
            [
                ("Osteoarthritis", None),
                ("bone marrow lesions", Some(Change::Increased))
            ]
        );
    }

    #[test]
    fn a_hyphenated_modifier_and_a_non_prefix_name_no_finding() {
        assert_eq!(
            sized_terms("A 2.1 cm fluid-attenuation lesion, consistent with a simple cyst."),
            [("lesion", Some(21.0)), ("simple cyst", Some(21.0))]
        );
        assert!(sized_terms("The pancreatic duct is non-dilated.").is_empty());
    }

    #[test]
    fn an_organ_sub_header_is_the_site_of_its_findings() {
        let lexicon = shared_lexicon();
        let out = findings("FINDINGS:\nLIVER: Simple 1.2 cm cyst.", lexicon);
        assert_eq!(
            out[0].body_site.iter().map(|s| s.text).collect::<Vec<_>>(),
            ["LIVER"]
        );
    }

    #[test]
    fn headerless_conclusion_is_an_impression() {
        let lexicon = shared_lexicon();
        let out = extract_as(
            "Right lower lobe pneumonia.",
            lexicon,
            SectionKind::Impression,
        );
        assert_eq!(out.findings[0].section, SectionKind::Impression);
    }
}

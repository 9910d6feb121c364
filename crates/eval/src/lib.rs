//! Scores the extraction core ([`reportsplit_split`]) on our own labelled
//! report sets (`reports`) and on public evaluation sets (`negex`, `openi`,
//! `mtsamples`). Pure: file CONTENTS in, scores out; reading the files is the
//! caller's job (`reportsplit eval`, or `cargo run -p reportsplit-eval
//! --example score`).
//!
//! ```
//! # #[cfg(feature = "kits")] {
//! use reportsplit_eval::{run, Options};
//! use reportsplit_split::Lexicon;
//! let tsv = "line number\tCondition\tsentence\tnegation\ttemporality\texperiencer\n\
//!            1\tpneumothorax\tNo PNEUMOTHORAX.\tNegated\tRecent\tPatient\n";
//! let report = run("negex", &[tsv.to_string()], &Lexicon::builtin(), &Options::default()).unwrap();
//! assert!(report.to_string().lines().last().unwrap().starts_with("negex negation precision="));
//! # }
//! ```
//!
//! # Features
//! `kits` (default) builds the public-kit scorers `negex`, `openi` and
//! `mtsamples` and their CSV reader. With `default-features = false` only
//! `reports` is built; [`SETS`] lists what a build knows.
//!
//! Every command prints detail lines and, as its LAST line, exactly
//! `<set> <metric> precision=<P> recall=<R> f1=<F> n=<N>` (three decimals),
//! so scripts can read it. Precision, recall or F1 whose denominator is zero
//! print as 0.000. Corpus text is printed only with `--errors N`
//! ([`Options::errors`]), never by default.
//!
//! # Holdout quarter ([`Options::part`]; `--part tune|holdout|all` in the `score` example)
//! A deterministic quarter of each set's rows is kept out of tuning: tune
//! the extractor on `--part tune`, and look at `--part holdout` only to
//! check that a change carries to rows it was not tuned on. A row is in the
//! holdout quarter when the 64-bit FNV-1a hash of its key (UTF-8 bytes),
//! upper half folded onto lower half, is 0 mod 4 ([`is_holdout`]; the fold
//! because FNV's lowest bits follow only the lowest bits of the input
//! bytes). The key is: NegEx, the kit's line number (first column, in
//! decimal); Open-i, the report uid; MTSamples, the 1-based data-row number
//! of the note in the file; `reports`, the report `id` (or `#<1-based
//! position>` when it has none). The split depends on the key alone, so it
//! is the same on every run, machine and file order (row order matters only
//! for MTSamples, whose key is its position). Every set prints its part as
//! its first detail line, `<set> part=<all|tune|holdout> rows=<kept>
//! of=<total>`; n on every line counts the kept rows only. `all` is the
//! default.
//!
//! # `reports FILE` — our own labelled reports
//! A JSON array of reports labelled by `shared/corpus/LABELLING.md`, scored
//! by its "How we score" rules: found (recall), precision and F1 of
//! findings, assertion / laterality / size / change accuracy on matched
//! pairs, section lists, impression-item counts and report flags. The exact
//! rules, the output lines and every reading of an ambiguous rule are in the
//! [`reports`] module docs. The last line is
//! `reports findings precision=<P> recall=<R> f1=<F> n=<gold findings>`.
//!
//! # `negex FILE` — NegEx test kit (Chapman et al.)
//! Tab-separated, a header line, then: line number, Condition, sentence,
//! negation status (Negated / Affirmed / Possible), temporality (Recent /
//! Historical / Not particular or Hypothetical), experiencer.
//! - The Condition is located in the sentence ignoring ASCII case and
//!   treating any whitespace run as one space. The kit writes its target in
//!   capitals inside the sentence, so an all-capitals whole-word occurrence is
//!   preferred to an earlier lower-case one. Rows whose Condition does not
//!   occur in the sentence (a few kit rows are cut) are scored as
//!   affirmed/current and counted on a `negex not-found` line.
//! - The verdict is [`reportsplit_split::assert_term`] on the condition's
//!   span, the whole sentence as context: the same cue rules as `extract`,
//!   for conditions the finding lexicon does not know ("rales", "PERRLA").
//! - `negex negation`: positive class = gold Negated; predicted = the
//!   extractor judges the condition `absent` (`possible` is not negated).
//! - `negex historical` / `negex hypothetical`: positive class = gold
//!   Historical (resp. Not particular/Hypothetical) against the predicted
//!   temporality.
//! - `negex negation-radiology`: the rows from the kit's radiology reports.
//!   The kit's ordered file (negex.python/Annotations-1-120.txt) numbers the
//!   120 reports, and the type cycles with the number (n % 6: 1 discharge
//!   summary, 2 echo, 3 emergency, 4 GI procedure, 5 radiology, 0 surgical
//!   pathology — checked against the De-ID headers in the kit). The scored
//!   file is the randomised kit (rsAnnotations-1-120-random.txt), which has
//!   lost the report number, so `negex_kit_reports.tsv` (derived once from
//!   chapmanbe/negex @ d136b972 by joining both files on condition and
//!   sentence; line numbers and hashes only, no text) maps a kit line number
//!   to its report number(s). A row counts as radiology when all of its
//!   candidate reports are radiology and the hash of its condition matches
//!   the table, so any other file in the same format simply has no
//!   radiology rows (the command says so) instead of wrong ones.
//!
//! # `openi REPORTS LABELS` — Indiana chest X-rays with NegBio's labels
//! REPORTS: CSV with columns uid, MeSH, findings, impression (others are
//! ignored). LABELS: CSV with `filename` (`CXR<uid>`) and 0/1 columns for
//! the 14 labels. Reports are joined on uid; unmatched rows are counted.
//! - Text: `FINDINGS: <findings>` and `IMPRESSION: <impression>` on their
//!   own lines (empty parts left out), i.e. the report as a FHIR server would
//!   carry it. The indication is left out, as NegBio did: it states the
//!   question, not the finding.
//! - A label is predicted present when a finding whose code is listed for
//!   that label in `concepts.tsv` is asserted present, with any temporality
//!   but hypothetical, or asserted `possible` the way the Open-i indexers
//!   coded hedged findings: a likelihood stated with high certainty (hedge
//!   `probability`, certainty `high`: "probable", "likely", "compatible
//!   with", "most suggestive of") or one of two alternatives for an
//!   observation (hedge `alternative`: "atelectasis versus scarring"). Not
//!   counted: a suspicion raised ("concerning for", "suggestive of",
//!   "suspected"), a likelihood below high ("may represent"), something
//!   not excluded, a differential item, a question. The gold labels code the
//!   MeSH indexing of each report, and this is how the indexers read
//!   hedges: on the dev set, most hedged mentions of a label under
//!   "versus", "compatible with" or "probable" were indexed, and a minority
//!   of those under "suggestive of", "concerning for", "suspected", "may
//!   represent", "possible" or "differential". The rule
//!   is written in the extractor's terms (hedge kind and certainty), not as
//!   a phrase list, so it carries to any report. The detail lines `openi
//!   labels14-present-only` (no hedged finding counts), `openi
//!   labels14-present-or-high-certainty` (the certainty grade alone, any
//!   kind) and `openi labels14-possible-as-present` (every hedged finding
//!   counts) show the other choices; `openi mesh` uses the same rule, with
//!   `mesh-present-only` and `mesh-possible-as-present` beside it.
//! - `openi <Label>` per label, `openi labels14-macro`, and the last line
//!   `openi labels14` = micro-averaged over all 14 × n decisions. The detail
//!   line `openi labels-with-gold-positives(k)` micro-averages only the
//!   labels whose gold column has at least one positive: on the dev set the
//!   Hernia column has none although 41 reports' MeSH terms index a hiatal
//!   or diaphragmatic hernia, so every hernia found counts as a false
//!   positive in the main line (`openi labels14-vs-mesh` lists such
//!   disagreements between the two gold standards per label).
//! - `openi mesh`: the MeSH column, finding + laterality. `mesh.tsv` maps
//!   MeSH headings (or heading/qualifier pairs) to concepts; the qualifiers
//!   right/left/bilateral give the side (right and left together count as
//!   bilateral). Per report, the gold items are the distinct (concept, side)
//!   pairs of mapped MeSH terms; the predicted items the distinct (concept,
//!   side) pairs of present findings whose code maps to a concept.
//!   A gold item and a predicted item match when the concepts are equal and
//!   the sides are compatible: equal, or the gold term states no side.
//!   Recall = matched gold items / gold items; precision = matched
//!   predicted items / predicted items. The detail line
//!   `openi mesh-concept-only` scores the same items without their sides,
//!   which separates laterality errors from finding errors. Unmapped MeSH terms are counted and
//!   the most frequent headings listed (headings only, never report text).
//!
//! # `mtsamples FILE` — MTSamples radiology transcriptions
//! CSV with a `transcription` column, whose line breaks were flattened to
//! `, `. A "header-looking token" is a run of capital letters (with spaces,
//! `/`, `&`, `-`, parentheses, digits) ending in `:` that starts the text or
//! follows a `,` or `.` boundary (`FINDINGS: ,...`, `.,IMPRESSION: ,...`).
//! A "detected header" is the title of a section or the label of an organ
//! sub-header item that the extractor returns, written without lower-case
//! letters (mixed-case labels such as `Reflexes:` are counted on a detail
//! line but not scored: the header-looking tokens are capitals only, so
//! comparing them with mixed-case detections would score the definition,
//! not the extractor). Precision = detected headers that start where a
//! header-looking token starts / detected headers; recall = header-looking
//! tokens at which a header was detected /
//! header-looking tokens; n = notes. Detail lines give the share of notes
//! with at least one recognised section header, and among the notes whose
//! text holds `FINDINGS:` (resp. `IMPRESSION:`) the share with a findings
//! (impression) section.

mod actions;
#[cfg(feature = "kits")]
mod labels;
#[cfg(feature = "kits")]
mod mtsamples;
#[cfg(feature = "kits")]
mod negex;
#[cfg(feature = "kits")]
mod openi;
mod part;
pub mod reports;
mod score;
mod text;

pub use actions::ActionCounts;
pub use part::{Part, fnv1a64, is_holdout};
pub use score::{Counts, ScoreLine};

use reportsplit_split::Lexicon;
use std::fmt;

/// What the scorer may print besides the scores, and which rows it scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Print up to this many misclassified rows (with corpus text) for error
    /// analysis: per kind for negex (negation, then temporality), openi
    /// (label decisions, then MeSH items) and reports (misses, inventions,
    /// wrong assertions, sides, changes, sizes, report-level decisions),
    /// notes for mtsamples. 0, the default, prints none.
    pub errors: usize,
    /// The rows to score: all (the default), the tuning three quarters or
    /// the holdout quarter (see "Holdout quarter" in the crate docs).
    pub part: Part,
}

/// The evaluation sets this build scores, by the name used on the command line.
#[cfg(feature = "kits")]
pub const SETS: &[&str] = &["negex", "openi", "mtsamples", "reports"];
/// The evaluation sets this build scores, by the name used on the command line.
#[cfg(not(feature = "kits"))]
pub const SETS: &[&str] = &["reports"];

/// A set's scores: detail lines, optional error examples, and the summary
/// line that [`fmt::Display`] prints last.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub details: Vec<Detail>,
    /// Misclassified examples, only when [`Options::errors`] asked for them.
    pub errors: Vec<String>,
    pub summary: ScoreLine,
}

/// A line before the summary: another score, or a count worth knowing.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    Score(ScoreLine),
    Note(String),
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::Score(line) => line.fmt(f),
            Detail::Note(note) => f.write_str(note),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for detail in &self.details {
            writeln!(f, "{detail}")?;
        }
        for error in &self.errors {
            writeln!(f, "{error}")?;
        }
        write!(f, "{}", self.summary)
    }
}

/// Why a set could not be scored. Names the input by its role and position,
/// since the library never sees file names.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("unknown evaluation set {0:?} (this build scores: {sets})", sets = SETS.join(", "))]
    UnknownSet(String),
    #[error("{set} takes {expected} file(s) ({usage}), got {got}")]
    FileCount {
        set: &'static str,
        expected: usize,
        usage: &'static str,
        got: usize,
    },
    #[error("{input}: line {line}: {message}")]
    Row {
        input: &'static str,
        line: u64,
        message: String,
    },
    #[error("{input}: no column {column:?} in the header")]
    MissingColumn {
        input: &'static str,
        column: &'static str,
    },
    #[error("{input}: {message}")]
    Input {
        input: &'static str,
        message: String,
    },
}

/// Scores `set` on the given file contents, in command-line order:
/// `reports [gold JSON]`, `negex [annotations]`, `openi [reports, labels]`,
/// `mtsamples [notes]` (the last three with the `kits` feature).
pub fn run(
    set: &str,
    contents: &[String],
    lexicon: &Lexicon,
    options: &Options,
) -> Result<Report, EvalError> {
    match set {
        "reports" => {
            let [gold] = expect_files::<1>("reports", "FILE", contents)?;
            reports::score(gold, lexicon, options)
        }
        #[cfg(feature = "kits")]
        "negex" => {
            let [annotations] = expect_files::<1>("negex", "FILE", contents)?;
            negex::score(annotations, options)
        }
        #[cfg(feature = "kits")]
        "openi" => {
            let [reports, labels] = expect_files::<2>("openi", "REPORTS LABELS", contents)?;
            openi::score(reports, labels, lexicon, options)
        }
        #[cfg(feature = "kits")]
        "mtsamples" => {
            let [notes] = expect_files::<1>("mtsamples", "FILE", contents)?;
            mtsamples::score(notes, lexicon, options)
        }
        other => Err(EvalError::UnknownSet(other.to_string())),
    }
}

fn expect_files<'a, const N: usize>(
    set: &'static str,
    usage: &'static str,
    contents: &'a [String],
) -> Result<[&'a str; N], EvalError> {
    let error = || EvalError::FileCount {
        set,
        expected: N,
        usage,
        got: contents.len(),
    };
    let refs: Vec<&str> = contents.iter().map(String::as_str).collect();
    refs.try_into().map_err(|_| error())
}

//! The bounds on the work one report may cost, in one place (issue 11, item 3).
//!
//! Pure: the numbers, and checks that return an [`OverLimit`] value; the
//! shell enforces them (a dead letter in `sync` and `backfill`, a 413/422
//! OperationOutcome in `serve`, a per-record error in `extract`). A report
//! over a limit is refused whole, never cut: a cut report would give
//! Observations without their context, and a partial transaction would be
//! worse. docs/operations.md ("Limits") explains each default.

use reportsplit_split::Extraction;

/// Bounds on one report. The defaults are ten times a long real report (~20 KB,
/// ~100 findings) or more, so that they only ever refuse what is not a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest text split, in characters. Its bytes are bounded before
    /// decoding too: at most 4 bytes per character (UTF-8's longest).
    pub text_chars: usize,
    /// Most findings one report may yield (each is one Observation).
    pub findings: usize,
    /// Most Observations one transaction may create or supersede.
    pub observations: usize,
    /// Largest JSON of one report: an NDJSON line of `extract`, a `$enrich` body.
    pub report_bytes: usize,
    /// Largest single JSON document `extract` reads whole (a Bundle, an array).
    pub bundle_bytes: usize,
    /// Largest response body read from the FHIR server (a search page, a
    /// report): a hostile or broken server cannot make the worker hold more.
    pub response_bytes: usize,
    /// Largest document an RTF or PDF attachment (inline or a Binary) may be
    /// before its text is extracted: such documents carry markup, fonts and
    /// images besides the text, so [`Limits::text_bytes`] would refuse real
    /// ones; the text extracted is then bounded by `text_chars` as any other.
    pub attachment_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            text_chars: 200_000,
            findings: 2_000,
            observations: 4_000,
            report_bytes: 8 << 20,
            bundle_bytes: 16 << 20,
            response_bytes: 256 << 20,
            attachment_bytes: 32 << 20,
        }
    }
}

/// Which limit a report went over: the name is the configuration key in the
/// `[limits]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    TextChars,
    TextBytes,
    Findings,
    Observations,
    ReportBytes,
    BundleBytes,
    AttachmentBytes,
}

impl Limit {
    /// The key in the `[limits]` table of the configuration.
    pub fn key(self) -> &'static str {
        match self {
            Limit::TextChars => "text_chars",
            // Bytes of a text are bounded by its character limit.
            Limit::TextBytes => "text_chars",
            Limit::Findings => "findings",
            Limit::Observations => "observations",
            Limit::ReportBytes => "report_bytes",
            Limit::BundleBytes => "bundle_bytes",
            Limit::AttachmentBytes => "attachment_bytes",
        }
    }

    /// The name counted in summaries, metrics and dead letters.
    pub fn reason(self) -> &'static str {
        match self {
            Limit::TextChars | Limit::TextBytes => "limit-text",
            Limit::Findings => "limit-findings",
            Limit::Observations => "limit-observations",
            Limit::ReportBytes => "limit-report-bytes",
            Limit::BundleBytes => "limit-bundle-bytes",
            Limit::AttachmentBytes => "limit-attachment-bytes",
        }
    }

    /// What was measured, in words.
    fn measure(self) -> (&'static str, &'static str) {
        match self {
            Limit::TextChars => ("the report text has", "characters"),
            Limit::TextBytes => ("the report text has", "bytes before decoding"),
            Limit::Findings => ("the report has", "findings"),
            Limit::Observations => ("the report's transaction has", "Observations"),
            Limit::ReportBytes => ("the report's JSON has", "bytes"),
            Limit::BundleBytes => ("the JSON input has", "bytes"),
            Limit::AttachmentBytes => ("the report's RTF or PDF attachment has", "bytes"),
        }
    }
}

/// A report over one of the [`Limits`]: which, what was measured (at least
/// this much: reading stops at the limit) and the limit. Never any content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    pub limit: Limit,
    pub measured: usize,
    pub max: usize,
}

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (subject, unit) = self.limit.measure();
        write!(
            f,
            "{subject} {} {unit}, over the limit of {} (limits.{})",
            self.measured,
            self.max,
            self.limit.key()
        )
    }
}

impl std::error::Error for OverLimit {}

impl Limits {
    /// Most bytes a text within [`Limits::text_chars`] can take in any
    /// supported encoding (4 bytes per character at most).
    pub fn text_bytes(&self) -> usize {
        self.text_chars.saturating_mul(4)
    }

    /// `Err` when `measured` is over `max` for `limit`.
    pub fn check(limit: Limit, measured: usize, max: usize) -> Result<(), OverLimit> {
        if measured > max {
            Err(OverLimit {
                limit,
                measured,
                max,
            })
        } else {
            Ok(())
        }
    }

    /// The findings of one extraction.
    pub fn check_extraction(&self, extraction: &Extraction<'_>) -> Result<(), OverLimit> {
        Self::check(Limit::Findings, extraction.findings.len(), self.findings)
    }

    /// The Observations a transaction creates and supersedes.
    pub fn check_observations(&self, observations: usize) -> Result<(), OverLimit> {
        Self::check(Limit::Observations, observations, self.observations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_limit_and_the_measure() {
        let over = Limits::check(Limit::TextChars, 250_001, 200_000).unwrap_err();
        assert_eq!(
            over.to_string(),
            "the report text has 250001 characters, over the limit of 200000 (limits.text_chars)"
        );
        assert_eq!(over.limit.reason(), "limit-text");
        assert!(Limits::check(Limit::Findings, 2_000, 2_000).is_ok());
    }

    #[test]
    fn the_defaults_are_generous_and_consistent() {
        let limits = Limits::default();
        assert!(limits.text_chars >= 10 * 20_000);
        assert!(limits.observations >= limits.findings);
        assert!(limits.report_bytes > limits.text_bytes());
        assert!(limits.bundle_bytes >= limits.report_bytes);
        assert!(limits.attachment_bytes > limits.text_bytes());
        assert!(limits.response_bytes > limits.attachment_bytes / 3 * 4);
    }
}

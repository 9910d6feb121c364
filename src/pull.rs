//! Pull: find the DiagnosticReports to work on and take the text out of them.

use reportsplit_split::SectionKind;

/// The text reportsplit splits, and where in the report it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportText {
    /// Plain text (decoded attachment, narrative without markup, or conclusion).
    pub text: String,
    /// FHIRPath of the source element, e.g. `DiagnosticReport.presentedForm[0]`;
    /// the derivation-reference extension points here.
    pub element: String,
    /// Section kind for text without headers: a lone conclusion is an impression.
    pub headerless: SectionKind,
}

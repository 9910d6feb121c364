//! The text of a report: which element is split, decoded to plain text.
//!
//! Pure: a report's JSON in, its text or a skip reason out.
//!
//! # Which text is split
//! A report can carry its text in three places: `presentedForm` attachments
//! (the signed report as text/plain, text/html, RTF or PDF, inline as base64
//! or referenced by `url`), the narrative `text.div` (XHTML), and
//! `conclusion` (usually the impression only). They often repeat each other,
//! so reportsplit splits exactly ONE of them and never concatenates, which
//! would duplicate findings and break the offsets the derivation-reference
//! extension records:
//! - every usable source is decoded to plain text;
//! - the fullest (most non-whitespace characters) wins; on a tie the earlier
//!   in the order presentedForm (in array order), narrative, conclusion;
//! - a lone conclusion has no headers and is split as an impression.
//!
//! # Attachments referenced by URL
//! This crate does no I/O: [`attachments_to_fetch`] names the attachments
//! known only by their `url` (a `Binary` on the FHIR server), the shell reads
//! them (or refuses one on another server, never sending it our credentials)
//! and hands back what it got as [`Fetched`] to [`report_text_with`]. Without
//! them ([`report_text`]) such an attachment is skipped as `attachment-by-url`.
//!
//! # Forms and offsets
//! Offsets in the derivation-reference count characters (Unicode scalar
//! values) of the plain text extracted from the chosen element, never of its
//! bytes: for text/plain the decoded text itself; for HTML the text after
//! markup is removed ([`html_to_text`]); for RTF the text after control words
//! and groups are dropped ([`rtf::rtf_to_text`]); for PDF the text layer as
//! read page by page ([`pdf::pdf_to_text`]). To find a span in the original
//! document, extract its text the same way (`reportsplit extract` prints it)
//! and search the span's text there. A PDF without a text layer (a scanned
//! image) is skipped as `pdf-without-text`: no OCR.

pub mod pdf;
pub mod rtf;

use base64::Engine as _;
use reportsplit_split::SectionKind;
use serde_json::Value;

use crate::limits::{Limit, Limits, OverLimit};

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

/// Why a report yields no text to split. [`SkipReason::key`] is the counter name.
/// A text over the limit or one that cannot be decoded is a defect of the
/// report ([`SkipReason::is_defect`]): the shell counts it as a failure and
/// dead-letters it; the other reasons are ordinary skips.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("the report has no presentedForm text, narrative or conclusion")]
    NoText,
    #[error("the report's only text is an attachment of type {content_type}")]
    UnsupportedAttachment { content_type: String },
    #[error("the report's only text is an attachment referenced by URL")]
    AttachmentByUrl,
    /// The attachment's URL is not on the configured FHIR server: it is never
    /// fetched, so that our credentials never reach another host.
    #[error(
        "the report's only text is an attachment on another server ({origin}): not fetched, credentials stay on the configured server"
    )]
    ForeignAttachment { origin: String },
    /// A PDF whose pages carry no text (a scanned image): reportsplit does no OCR.
    #[error("the report's only text is a PDF without a text layer (a scanned image; no OCR)")]
    PdfWithoutText,
    /// The attachment's `url` names a Binary the server does not have.
    #[error("the report's attachment {url} is not on the server (HTTP {status})")]
    AttachmentMissing { url: String, status: u16 },
    #[error(transparent)]
    OverLimit(OverLimit),
    #[error("the report's attachment cannot be decoded: {reason}")]
    BadEncoding { reason: String },
}

impl SkipReason {
    /// A stable name for summaries and metrics.
    pub fn key(&self) -> &'static str {
        match self {
            SkipReason::NoText => "no-text",
            SkipReason::UnsupportedAttachment { .. } => "unsupported-attachment",
            SkipReason::AttachmentByUrl => "attachment-by-url",
            SkipReason::ForeignAttachment { .. } => "foreign-attachment",
            SkipReason::PdfWithoutText => "pdf-without-text",
            SkipReason::AttachmentMissing { .. } => "attachment-missing",
            SkipReason::OverLimit(over) => over.limit.reason(),
            SkipReason::BadEncoding { .. } => "bad-encoding",
        }
    }

    /// True when the report itself is at fault (its text is over a limit,
    /// cannot be decoded, or points to a Binary that is not there): not a
    /// report without text, but one to fix.
    pub fn is_defect(&self) -> bool {
        matches!(
            self,
            SkipReason::OverLimit(_)
                | SkipReason::BadEncoding { .. }
                | SkipReason::AttachmentMissing { .. }
        )
    }

    /// How much a reason tells about a report with no usable text: the
    /// highest of its sources' reasons is the one reported.
    fn rank(&self) -> u8 {
        match self {
            SkipReason::OverLimit(_) => 5,
            SkipReason::BadEncoding { .. } | SkipReason::AttachmentMissing { .. } => 4,
            SkipReason::ForeignAttachment { .. } | SkipReason::PdfWithoutText => 3,
            SkipReason::UnsupportedAttachment { .. } => 2,
            SkipReason::AttachmentByUrl => 1,
            SkipReason::NoText => 0,
        }
    }
}

/// An attachment known only by its `url`, which the shell must read before
/// the report's text can be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentUrl {
    /// Its index in `presentedForm`.
    pub index: usize,
    /// The `url` as the report has it (relative, e.g. `Binary/12`, or absolute).
    pub url: String,
}

/// What the shell got for one [`AttachmentUrl`].
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// The `Binary` resource read from the server (its JSON form: `data`
    /// base64, `contentType`).
    Binary(Value),
    /// Why it was not read (another server's URL, a missing Binary...).
    Refused(SkipReason),
}

/// The attachments of `presentedForm` that have a `url` and no inline `data`,
/// with a content type reportsplit reads (or none, when the Binary's tells):
/// what the shell fetches for [`report_text_with`].
pub fn attachments_to_fetch(report: &Value) -> Vec<AttachmentUrl> {
    presented_forms(report)
        .iter()
        .enumerate()
        .filter(|(_, form)| form.get("data").is_none())
        .filter(|(_, form)| {
            let declared = form.get("contentType").and_then(Value::as_str);
            declared.is_none_or(|content_type| Form::of(content_type).is_ok())
        })
        .filter_map(|(index, form)| {
            let url = form.get("url").and_then(Value::as_str)?;
            Some(AttachmentUrl {
                index,
                url: url.to_owned(),
            })
        })
        .collect()
}

fn presented_forms(report: &Value) -> &[Value] {
    report
        .get("presentedForm")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Picks and decodes the report's text (see the module doc for the rule),
/// with no attachment fetched: one known only by URL is not usable.
pub fn report_text(report: &Value, limits: &Limits) -> Result<ReportText, SkipReason> {
    report_text_with(report, limits, &[])
}

/// [`report_text`] with what the shell fetched for the report's
/// [`attachments_to_fetch`], by `presentedForm` index.
pub fn report_text_with(
    report: &Value,
    limits: &Limits,
    fetched: &[(usize, Fetched)],
) -> Result<ReportText, SkipReason> {
    let mut candidates: Vec<ReportText> = Vec::new();
    // The most informative reason why nothing was usable, if that happens.
    let mut unusable: Option<SkipReason> = None;
    let mut note = |reason: SkipReason| {
        if unusable
            .as_ref()
            .is_none_or(|current| reason.rank() > current.rank())
        {
            unusable = Some(reason);
        }
    };

    for (index, form) in presented_forms(report).iter().enumerate() {
        let fetched = fetched.iter().find(|(i, _)| *i == index).map(|(_, f)| f);
        match attachment_text(form, fetched, limits) {
            Ok(text) => candidates.push(ReportText {
                text,
                element: format!("DiagnosticReport.presentedForm[{index}]"),
                headerless: SectionKind::Other,
            }),
            Err(reason) => note(reason),
        }
    }
    if let Some(div) = narrative_div(report) {
        let text = html_to_text(div);
        match within_limit(text, limits) {
            Ok(text) => candidates.push(ReportText {
                text,
                element: "DiagnosticReport.text".into(),
                headerless: SectionKind::Other,
            }),
            Err(reason) => note(reason),
        }
    }
    if let Some(conclusion) = report.get("conclusion").and_then(Value::as_str) {
        match within_limit(conclusion.to_string(), limits) {
            Ok(text) => candidates.push(ReportText {
                text,
                element: "DiagnosticReport.conclusion".into(),
                headerless: SectionKind::Impression,
            }),
            Err(reason) => note(reason),
        }
    }

    // ASCII text (nearly all) is counted by bytes: its whitespace chars are
    // tab to carriage return and space, and decoding chars cost a third of
    // reading the text.
    let fullness = |t: &ReportText| {
        if t.text.is_ascii() {
            t.text
                .bytes()
                .filter(|b| !matches!(b, b'\t'..=b'\r' | b' '))
                .count()
        } else {
            t.text.chars().filter(|c| !c.is_whitespace()).count()
        }
    };
    let mut best: Option<ReportText> = None;
    for candidate in candidates.into_iter().filter(|c| fullness(c) > 0) {
        if best
            .as_ref()
            .is_none_or(|b| fullness(&candidate) > fullness(b))
        {
            best = Some(candidate);
        }
    }
    best.ok_or_else(|| unusable.unwrap_or(SkipReason::NoText))
}

/// The narrative's XHTML, unless the narrative is marked empty.
fn narrative_div(report: &Value) -> Option<&str> {
    let narrative = report.get("text")?;
    if narrative.get("status").and_then(Value::as_str) == Some("empty") {
        return None;
    }
    narrative.get("div").and_then(Value::as_str)
}

fn within_limit(text: String, limits: &Limits) -> Result<String, SkipReason> {
    // Bytes first: the cheap bound, and a count that stops early.
    if text.len() > limits.text_bytes() {
        return Err(SkipReason::OverLimit(OverLimit {
            limit: Limit::TextBytes,
            measured: text.len(),
            max: limits.text_bytes(),
        }));
    }
    Limits::check(Limit::TextChars, text.chars().count(), limits.text_chars)
        .map_err(SkipReason::OverLimit)?;
    Ok(text)
}

/// The forms of attachment reportsplit reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Plain,
    Html,
    Rtf,
    Pdf,
}

impl Form {
    /// The form of a content type (its parameters ignored); an empty one is
    /// plain text.
    fn of(content_type: &str) -> Result<Form, SkipReason> {
        let mime = mime_of(content_type);
        Ok(match mime.as_str() {
            "text/plain" | "" => Form::Plain,
            "text/html" | "application/xhtml+xml" => Form::Html,
            "text/rtf" | "application/rtf" => Form::Rtf,
            "application/pdf" => Form::Pdf,
            _ => return Err(SkipReason::UnsupportedAttachment { content_type: mime }),
        })
    }

    /// The most bytes an attachment of this form may have before its text is
    /// extracted: a text form's own bound, or a document's.
    fn max_bytes(self, limits: &Limits) -> (Limit, usize) {
        match self {
            Form::Plain | Form::Html => (Limit::TextBytes, limits.text_bytes()),
            Form::Rtf | Form::Pdf => (Limit::AttachmentBytes, limits.attachment_bytes),
        }
    }
}

fn mime_of(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn charset_of(content_type: &str) -> Option<String> {
    content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
}

/// Decodes an attachment: inline `data`, or the Binary the shell fetched for
/// its `url`. The attachment's own content type wins over the Binary's.
fn attachment_text(
    attachment: &Value,
    fetched: Option<&Fetched>,
    limits: &Limits,
) -> Result<String, SkipReason> {
    let declared = attachment.get("contentType").and_then(Value::as_str);
    let (content_type, data) = match attachment.get("data").and_then(Value::as_str) {
        Some(data) => (declared.unwrap_or(""), data),
        None => match (attachment.get("url").is_some(), fetched) {
            (false, _) => return Err(SkipReason::NoText),
            (true, None) => {
                // Not fetched: say what it is when its type is one we never read.
                declared.map(Form::of).transpose()?;
                return Err(SkipReason::AttachmentByUrl);
            }
            (true, Some(Fetched::Refused(reason))) => return Err(reason.clone()),
            (true, Some(Fetched::Binary(binary))) => {
                let data = binary
                    .get("data")
                    .and_then(Value::as_str)
                    .ok_or(SkipReason::NoText)?;
                let own = binary.get("contentType").and_then(Value::as_str);
                (declared.or(own).unwrap_or(""), data)
            }
        },
    };
    let form = Form::of(content_type)?;
    let bytes = decode_base64(data, form.max_bytes(limits))?;
    let text = match form {
        Form::Plain => decode_charset(&bytes, content_type)?,
        Form::Html => html_to_text(&decode_charset(&bytes, content_type)?),
        Form::Rtf => rtf::rtf_to_text(&bytes).map_err(|reason| SkipReason::BadEncoding {
            reason: format!("RTF: {reason}"),
        })?,
        Form::Pdf => pdf::pdf_to_text(&bytes, limits.attachment_bytes).map_err(|e| match e {
            pdf::PdfError::NoText => SkipReason::PdfWithoutText,
            pdf::PdfError::Unreadable(reason) => SkipReason::BadEncoding {
                reason: format!("PDF: {reason}"),
            },
        })?,
    };
    within_limit(text, limits)
}

/// Base64 (whitespace allowed) to bytes, refused before decoding when it
/// would exceed `max`: base64 is 4 bytes per 3.
fn decode_base64(data: &str, (limit, max): (Limit, usize)) -> Result<Vec<u8>, SkipReason> {
    Limits::check(limit, data.len() / 4 * 3, max).map_err(SkipReason::OverLimit)?;
    // Most senders write no line breaks: then there is nothing to clean,
    // and copying char by char cost more than the decoding.
    let cleaned: std::borrow::Cow<'_, str> = if data.bytes().any(|b| b.is_ascii_whitespace()) {
        data.chars().filter(|c| !c.is_ascii_whitespace()).collect()
    } else {
        data.into()
    };
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| SkipReason::BadEncoding {
            reason: format!("base64: {e}"),
        })
}

/// Text bytes in the content type's declared charset (UTF-8 when none; a
/// byte order mark wins over the label).
fn decode_charset(bytes: &[u8], content_type: &str) -> Result<String, SkipReason> {
    let encoding = match charset_of(content_type) {
        Some(label) => encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
            SkipReason::BadEncoding {
                reason: format!("unknown charset {label:?}"),
            }
        })?,
        None => encoding_rs::UTF_8,
    };
    let (decoded, used, had_errors) = encoding.decode(bytes);
    if had_errors {
        return Err(SkipReason::BadEncoding {
            reason: format!("invalid {} bytes", used.name()),
        });
    }
    Ok(decoded.into_owned())
}

/// XHTML/HTML to plain text that keeps the report's line structure (block
/// elements and `<br>` become line breaks, which the section splitter needs),
/// drops markup, `<script>`/`<style>` and comments, and decodes entities.
pub fn html_to_text(html: &str) -> String {
    const BLOCKS: &[&str] = &[
        "p",
        "div",
        "br",
        "li",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "ul",
        "ol",
        "pre",
        "blockquote",
        "section",
        "dd",
        "dt",
    ];
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..lt]));
        let tag_and_after = &rest[lt..];
        if let Some(comment) = tag_and_after.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let Some(gt) = tag_and_after.find('>') else {
            // A stray '<' in text.
            out.push('<');
            rest = &tag_and_after[1..];
            continue;
        };
        let tag = &tag_and_after[1..gt];
        rest = &tag_and_after[gt + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == ':')
            .collect::<String>()
            .to_ascii_lowercase();
        let local = name.rsplit(':').next().unwrap_or("");
        if (local == "script" || local == "style") && !tag.starts_with('/') && !tag.ends_with('/') {
            let close = format!("</{name}");
            let lower = rest.to_ascii_lowercase();
            rest = lower.find(&close).map_or("", |i| {
                let after = &rest[i..];
                after.find('>').map_or("", |g| &after[g + 1..])
            });
            continue;
        }
        if BLOCKS.contains(&local) {
            out.push('\n');
        } else if local == "td" || local == "th" {
            out.push(' ');
        }
    }
    out.push_str(&decode_entities(rest));
    tidy_lines(&out)
}

/// Collapses runs of blanks inside lines, trims lines and drops empty ones
/// (adjacent block elements would otherwise leave blank lines that mean nothing).
pub(crate) fn tidy_lines(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect();
    lines.join("\n")
}

fn decode_entities(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('&') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let decoded = after.find(';').filter(|semi| *semi <= 10).and_then(|semi| {
            let entity = &after[1..semi];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .map(|hex| u32::from_str_radix(hex, 16))
                    .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            }?;
            Some((c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &after[len..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(text: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    const LIMITS: &Limits = &Limits {
        text_chars: 10_000,
        findings: 100,
        observations: 100,
        report_bytes: 100_000,
        bundle_bytes: 100_000,
        response_bytes: 100_000,
        attachment_bytes: 100_000,
    };

    #[test]
    fn a_plain_text_attachment_wins_over_a_shorter_conclusion() {
        let report = json!({
            "resourceType": "DiagnosticReport",
            "conclusion": "No acute disease.",
            "presentedForm": [{"contentType": "text/plain", "data": b64(b"FINDINGS: Lungs clear.\nIMPRESSION: No acute disease.")}]
        });
        let text = report_text(&report, LIMITS).unwrap();
        assert_eq!(
            text.text,
            "FINDINGS: Lungs clear.\nIMPRESSION: No acute disease."
        );
        assert_eq!(text.element, "DiagnosticReport.presentedForm[0]");
        assert_eq!(text.headerless, SectionKind::Other);
    }

    #[test]
    fn a_lone_conclusion_is_an_impression() {
        let report =
            json!({"resourceType": "DiagnosticReport", "conclusion": "Small left effusion."});
        let text = report_text(&report, LIMITS).unwrap();
        assert_eq!(text.text, "Small left effusion.");
        assert_eq!(text.element, "DiagnosticReport.conclusion");
        assert_eq!(text.headerless, SectionKind::Impression);
    }

    #[test]
    fn the_declared_charset_is_honoured() {
        // "Ödem" in ISO-8859-1.
        let report = json!({"presentedForm": [{"contentType": "text/plain; charset=ISO-8859-1", "data": b64(b"\xd6dem links.")}]});
        assert_eq!(report_text(&report, LIMITS).unwrap().text, "Ödem links.");
    }

    #[test]
    fn html_attachments_and_narratives_lose_their_markup_but_keep_lines() {
        let html = "<html><head><style>p{x:1}</style></head><body><p>FINDINGS: Heart size normal &amp; lungs clear.</p>\
                    <p>IMPRESSION:<br/>1. No acute&nbsp;disease.</p><!-- signed --></body></html>";
        let report =
            json!({"presentedForm": [{"contentType": "text/html", "data": b64(html.as_bytes())}]});
        assert_eq!(
            report_text(&report, LIMITS).unwrap().text,
            "FINDINGS: Heart size normal & lungs clear.\nIMPRESSION:\n1. No acute disease."
        );
        let narrative = json!({"text": {"status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>COMPARISON: None.</p><p>Lungs are clear &#x2014; no effusion.</p></div>"}});
        let text = report_text(&narrative, LIMITS).unwrap();
        assert_eq!(
            text.text,
            "COMPARISON: None.\nLungs are clear — no effusion."
        );
        assert_eq!(text.element, "DiagnosticReport.text");
    }

    #[test]
    fn the_fullest_source_is_chosen_and_never_combined() {
        let report = json!({
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Chest X-ray report</div>"},
            "conclusion": "1. Cardiomegaly. 2. Small bilateral pleural effusions.",
            "presentedForm": [{"contentType": "application/pdf", "data": b64(b"%PDF-1.4")}]
        });
        let text = report_text(&report, LIMITS).unwrap();
        assert_eq!(text.element, "DiagnosticReport.conclusion");
        assert_eq!(
            text.text,
            "1. Cardiomegaly. 2. Small bilateral pleural effusions."
        );
    }

    #[test]
    fn on_a_tie_the_attachment_is_preferred() {
        let same = "IMPRESSION: Normal.";
        let report = json!({"conclusion": same, "presentedForm": [{"contentType": "text/plain", "data": b64(same.as_bytes())}]});
        assert_eq!(
            report_text(&report, LIMITS).unwrap().element,
            "DiagnosticReport.presentedForm[0]"
        );
    }

    #[test]
    fn unusable_reports_say_why() {
        let image =
            json!({"presentedForm": [{"contentType": "image/jpeg", "data": b64(b"\xff\xd8")}]});
        assert_eq!(
            report_text(&image, LIMITS),
            Err(SkipReason::UnsupportedAttachment {
                content_type: "image/jpeg".into()
            })
        );
        let broken_pdf = json!({"presentedForm": [{"contentType": "application/pdf", "data": b64(b"%PDF-1.4")}]});
        let reason = report_text(&broken_pdf, LIMITS).unwrap_err();
        assert_eq!(reason.key(), "bad-encoding");
        assert!(reason.is_defect());
        assert_eq!(
            report_text(&json!({"status": "final"}), LIMITS),
            Err(SkipReason::NoText)
        );
        let by_url = json!({"presentedForm": [{"contentType": "text/plain", "url": "Binary/1"}]});
        assert_eq!(
            report_text(&by_url, LIMITS),
            Err(SkipReason::AttachmentByUrl)
        );
        let bad =
            json!({"presentedForm": [{"contentType": "text/plain", "data": "!!!not base64"}]});
        assert_eq!(report_text(&bad, LIMITS).unwrap_err().key(), "bad-encoding");
        let invalid_utf8 =
            json!({"presentedForm": [{"contentType": "text/plain", "data": b64(b"\xff\xfe\xfa")}]});
        assert_eq!(
            report_text(&invalid_utf8, LIMITS).unwrap_err().key(),
            "bad-encoding"
        );
        let unknown_charset = json!({"presentedForm": [{"contentType": "text/plain; charset=klingon", "data": b64(b"x")}]});
        assert_eq!(
            report_text(&unknown_charset, LIMITS).unwrap_err().key(),
            "bad-encoding"
        );
    }

    #[test]
    fn the_size_limit_refuses_instead_of_cutting() {
        let long = "Ä".repeat(101);
        let limits = &Limits {
            text_chars: 100,
            ..Limits::default()
        };
        let over = report_text(&json!({"conclusion": long}), limits).unwrap_err();
        assert_eq!(
            over,
            SkipReason::OverLimit(OverLimit {
                limit: Limit::TextChars,
                measured: 101,
                max: 100
            })
        );
        assert!(over.is_defect());
        assert_eq!(
            over.to_string(),
            "the report text has 101 characters, over the limit of 100 (limits.text_chars)"
        );
        // Base64 over 4 bytes per character is refused before it is decoded.
        let huge = json!({"presentedForm": [{"contentType": "text/plain", "data": b64("B".repeat(1000).as_bytes())}]});
        let over = report_text(&huge, limits).unwrap_err();
        assert_eq!(over.key(), "limit-text");
        assert!(over.to_string().contains("bytes before decoding"), "{over}");
        // 400 bytes of 4-byte characters: past the byte check, 100 characters: within.
        let emoji = json!({"conclusion": "\u{1F600}".repeat(100)});
        assert!(report_text(&emoji, limits).is_ok());
        // Within the limit: fine, with the de-identification tokens untouched.
        assert_eq!(
            report_text(&json!({"conclusion": "XXXX normal."}), limits)
                .unwrap()
                .text,
            "XXXX normal."
        );
    }

    #[test]
    fn entities_and_stray_brackets_survive() {
        assert_eq!(
            html_to_text("a &lt; b &amp;&amp; c > d &bogus; 3 < 4"),
            "a < b && c > d &bogus; 3 < 4"
        );
    }

    #[test]
    fn rtf_and_pdf_attachments_give_their_text() {
        let rtf = br"{\rtf1\ansi{\fonttbl{\f0 Arial;}}\f0 FINDINGS:\par Small left effusion.\par IMPRESSION:\par Effusion.\par}";
        let report =
            json!({"presentedForm": [{"contentType": "application/rtf", "data": b64(rtf)}]});
        assert_eq!(
            report_text(&report, LIMITS).unwrap().text,
            "FINDINGS:\nSmall left effusion.\nIMPRESSION:\nEffusion."
        );
        let bytes = crate::pdf_fixture::pdf(&[crate::pdf_fixture::lines_with_td(&[
            "IMPRESSION:",
            "Normal chest.",
        ])]);
        let report =
            json!({"presentedForm": [{"contentType": "application/pdf", "data": b64(&bytes)}]});
        let text = report_text(&report, LIMITS).unwrap();
        assert_eq!(text.text, "IMPRESSION:\nNormal chest.");
        assert_eq!(text.element, "DiagnosticReport.presentedForm[0]");
    }

    #[test]
    fn a_scanned_pdf_is_skipped_with_its_reason_unless_another_source_has_text() {
        let scanned = b64(&crate::pdf_fixture::pdf(&[
            crate::pdf_fixture::scanned_page(),
        ]));
        let report =
            json!({"presentedForm": [{"contentType": "application/pdf", "data": scanned}]});
        let reason = report_text(&report, LIMITS).unwrap_err();
        assert_eq!(reason, SkipReason::PdfWithoutText);
        assert_eq!(reason.key(), "pdf-without-text");
        assert!(!reason.is_defect());
        let with_conclusion = json!({"conclusion": "Normal.", "presentedForm": [{"contentType": "application/pdf", "data": scanned}]});
        assert_eq!(
            report_text(&with_conclusion, LIMITS).unwrap().element,
            "DiagnosticReport.conclusion"
        );
    }

    #[test]
    fn documents_are_bounded_by_the_attachment_limit_and_texts_by_theirs() {
        let limits = &Limits {
            attachment_bytes: 300,
            ..*LIMITS
        };
        let rtf = format!("{{\\rtf1\\ansi {}\\par}}", "x".repeat(400));
        let report =
            json!({"presentedForm": [{"contentType": "text/rtf", "data": b64(rtf.as_bytes())}]});
        assert_eq!(
            report_text(&report, limits).unwrap_err().key(),
            "limit-attachment-bytes"
        );
        // The same bytes as plain text are within the (larger) text bound.
        let plain =
            json!({"presentedForm": [{"contentType": "text/plain", "data": b64(rtf.as_bytes())}]});
        assert!(report_text(&plain, limits).is_ok());
    }

    #[test]
    fn attachments_by_url_are_read_from_what_the_shell_fetched() {
        let report = json!({"presentedForm": [
            {"contentType": "image/png", "url": "Binary/img"},
            {"url": "Binary/b1"},
            {"contentType": "text/plain", "data": b64(b"Short.")},
            {"contentType": "text/plain", "url": "https://elsewhere.example/Binary/9"}
        ]});
        assert_eq!(
            attachments_to_fetch(&report),
            [
                AttachmentUrl {
                    index: 1,
                    url: "Binary/b1".into()
                },
                AttachmentUrl {
                    index: 3,
                    url: "https://elsewhere.example/Binary/9".into()
                }
            ]
        );
        // Not fetched: the inline text is all there is.
        assert_eq!(
            report_text(&report, LIMITS).unwrap().element,
            "DiagnosticReport.presentedForm[2]"
        );
        let binary = json!({"resourceType": "Binary", "contentType": "text/plain; charset=ISO-8859-1",
            "data": b64(b"FINDINGS: \xd6dem links, longer than the inline text.")});
        let foreign = SkipReason::ForeignAttachment {
            origin: "https://elsewhere.example".into(),
        };
        let fetched = [
            (1, Fetched::Binary(binary)),
            (3, Fetched::Refused(foreign.clone())),
        ];
        let text = report_text_with(&report, LIMITS, &fetched).unwrap();
        assert_eq!(
            text.text,
            "FINDINGS: Ödem links, longer than the inline text."
        );
        assert_eq!(text.element, "DiagnosticReport.presentedForm[1]");
        // Only the foreign attachment: its reason is the report's.
        let only_foreign = json!({"presentedForm": [{"contentType": "text/plain", "url": "https://elsewhere.example/Binary/9"}]});
        let reason =
            report_text_with(&only_foreign, LIMITS, &[(0, Fetched::Refused(foreign))]).unwrap_err();
        assert_eq!(reason.key(), "foreign-attachment");
        assert!(
            reason.to_string().contains("https://elsewhere.example"),
            "{reason}"
        );
        assert!(!reason.is_defect());
    }
}

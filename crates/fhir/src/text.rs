//! The text of a report: which element is split, decoded to plain text.
//!
//! Pure: a report's JSON in, its text or a skip reason out.
//!
//! # Which text is split
//! A report can carry its text in three places: `presentedForm` attachments
//! (the signed report as text/plain or text/html, base64), the narrative
//! `text.div` (XHTML), and `conclusion` (usually the impression only). They
//! often repeat each other, so reportsplit splits exactly ONE of them and
//! never concatenates, which would duplicate findings and break the offsets
//! the derivation-reference extension records:
//! - every usable source is decoded to plain text;
//! - the fullest (most non-whitespace characters) wins; on a tie the earlier
//!   in the order presentedForm (in array order), narrative, conclusion;
//! - a lone conclusion has no headers and is split as an impression.
//!
//! Attachments that are not text (PDF, images, DICOM) or are only referenced
//! by `url` are not usable; a report with no usable source is skipped with a
//! counted reason. Offsets in the derivation-reference count characters of
//! the decoded (and, for HTML, de-tagged) text of the chosen element.

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
            SkipReason::OverLimit(over) => over.limit.reason(),
            SkipReason::BadEncoding { .. } => "bad-encoding",
        }
    }

    /// True when the report itself is at fault (its text is over a limit or
    /// cannot be decoded): not a report without text, but one to fix.
    pub fn is_defect(&self) -> bool {
        matches!(
            self,
            SkipReason::OverLimit(_) | SkipReason::BadEncoding { .. }
        )
    }
}

/// Picks and decodes the report's text (see the module doc for the rule).
pub fn report_text(report: &Value, limits: &Limits) -> Result<ReportText, SkipReason> {
    let mut candidates: Vec<ReportText> = Vec::new();
    // The most informative reason why nothing was usable, if that happens.
    let mut unusable: Option<SkipReason> = None;
    let mut note = |reason: SkipReason| {
        let rank = |r: &SkipReason| match r {
            SkipReason::OverLimit(_) => 4,
            SkipReason::BadEncoding { .. } => 3,
            SkipReason::UnsupportedAttachment { .. } => 2,
            SkipReason::AttachmentByUrl => 1,
            SkipReason::NoText => 0,
        };
        if unusable
            .as_ref()
            .is_none_or(|current| rank(&reason) > rank(current))
        {
            unusable = Some(reason);
        }
    };

    let forms = report
        .get("presentedForm")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (index, form) in forms.iter().enumerate() {
        match attachment_text(form, limits) {
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

    let fullness = |t: &ReportText| t.text.chars().filter(|c| !c.is_whitespace()).count();
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

/// Decodes a text/plain or text/html attachment with its declared charset
/// (UTF-8 when none; a byte order mark wins over the label).
fn attachment_text(attachment: &Value, limits: &Limits) -> Result<String, SkipReason> {
    let content_type = attachment
        .get("contentType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut parts = content_type.split(';').map(str::trim);
    let mime = parts.next().unwrap_or("").to_ascii_lowercase();
    let charset = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string());
    let is_html = match mime.as_str() {
        "text/plain" | "" => false,
        "text/html" | "application/xhtml+xml" => true,
        _ => return Err(SkipReason::UnsupportedAttachment { content_type: mime }),
    };
    let Some(data) = attachment.get("data").and_then(Value::as_str) else {
        return Err(if attachment.get("url").is_some() {
            SkipReason::AttachmentByUrl
        } else {
            SkipReason::NoText
        });
    };
    // Refuse before decoding: base64 is 4 bytes per 3, and a character is at
    // least one byte, so this bound never refuses a text within the limit.
    Limits::check(Limit::TextBytes, data.len() / 4 * 3, limits.text_bytes())
        .map_err(SkipReason::OverLimit)?;
    let cleaned: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| SkipReason::BadEncoding {
            reason: format!("base64: {e}"),
        })?;
    let encoding = match &charset {
        Some(label) => encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
            SkipReason::BadEncoding {
                reason: format!("unknown charset {label:?}"),
            }
        })?,
        None => encoding_rs::UTF_8,
    };
    let (decoded, used, had_errors) = encoding.decode(&bytes);
    if had_errors {
        return Err(SkipReason::BadEncoding {
            reason: format!("invalid {} bytes", used.name()),
        });
    }
    let text = if is_html {
        html_to_text(&decoded)
    } else {
        decoded.into_owned()
    };
    within_limit(text, limits)
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
fn tidy_lines(text: &str) -> String {
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
        let pdf = json!({"presentedForm": [{"contentType": "application/pdf", "data": b64(b"%PDF-1.4")}]});
        assert_eq!(
            report_text(&pdf, LIMITS),
            Err(SkipReason::UnsupportedAttachment {
                content_type: "application/pdf".into()
            })
        );
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
}

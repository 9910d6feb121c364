//! Pull: find the DiagnosticReports to work on and take the text out of them.
//!
//! The text functions are pure (JSON in, text or a skip reason out); the
//! window collection is the only part that talks to the server.
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

use std::collections::HashSet;

use base64::Engine as _;
use reportsplit_split::SectionKind;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::fhir::{FhirClient, FhirError, SearchPager};

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

/// Bounds on what is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLimits {
    /// Longest text split, in characters; longer reports are skipped, not cut
    /// (a cut report would yield Observations missing their context).
    pub max_chars: usize,
}

impl Default for TextLimits {
    fn default() -> Self {
        TextLimits { max_chars: 200_000 }
    }
}

/// Why a report yields no text to split. [`SkipReason::key`] is the counter name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("the report has no presentedForm text, narrative or conclusion")]
    NoText,
    #[error("the report's only text is an attachment of type {content_type}")]
    UnsupportedAttachment { content_type: String },
    #[error("the report's only text is an attachment referenced by URL")]
    AttachmentByUrl,
    #[error("the report text has {chars} characters, more than the limit of {limit}")]
    TooLarge { chars: usize, limit: usize },
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
            SkipReason::TooLarge { .. } => "too-large",
            SkipReason::BadEncoding { .. } => "bad-encoding",
        }
    }
}

/// Picks and decodes the report's text (see the module doc for the rule).
pub fn report_text(report: &Value, limits: TextLimits) -> Result<ReportText, SkipReason> {
    let mut candidates: Vec<ReportText> = Vec::new();
    // The most informative reason why nothing was usable, if that happens.
    let mut unusable: Option<SkipReason> = None;
    let mut note = |reason: SkipReason| {
        let rank = |r: &SkipReason| match r {
            SkipReason::TooLarge { .. } => 4,
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

fn within_limit(text: String, limits: TextLimits) -> Result<String, SkipReason> {
    let chars = text.chars().count();
    if chars > limits.max_chars {
        Err(SkipReason::TooLarge {
            chars,
            limit: limits.max_chars,
        })
    } else {
        Ok(text)
    }
}

/// Decodes a text/plain or text/html attachment with its declared charset
/// (UTF-8 when none; a byte order mark wins over the label).
fn attachment_text(attachment: &Value, limits: TextLimits) -> Result<String, SkipReason> {
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
    let max_bytes = limits.max_chars.saturating_mul(4);
    if data.len() / 4 * 3 > max_bytes {
        return Err(SkipReason::TooLarge {
            chars: data.len() / 4 * 3,
            limit: limits.max_chars,
        });
    }
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

/// Which DiagnosticReports a run works on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// `system|code` tokens, OR-ed (e.g. `http://terminology.hl7.org/CodeSystem/v2-0074|RAD`).
    pub category: Vec<String>,
    /// Report statuses, OR-ed (final, amended, corrected...).
    pub status: Vec<String>,
    /// `date` prefixes, AND-ed (e.g. `ge2024-01-01`).
    pub date: Vec<String>,
    /// A subject reference (`Patient/123`).
    pub subject: Option<String>,
}

impl Filters {
    /// The search parameters these filters use (for the capability check).
    pub fn search_params(&self) -> Vec<String> {
        let mut params = Vec::new();
        for (name, used) in [
            ("category", !self.category.is_empty()),
            ("status", !self.status.is_empty()),
            ("date", !self.date.is_empty()),
            ("subject", self.subject.is_some()),
        ] {
            if used {
                params.push(name.to_string());
            }
        }
        params
    }
}

/// A `_lastUpdated` window: `[since, until)`, `since` open when `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: Option<OffsetDateTime>,
    pub until: OffsetDateTime,
}

/// The search query of one window, sorted ascending by `_lastUpdated` (the
/// order in which a checkpoint can advance, and the one where inserts during
/// paging do not shift pages already read).
pub fn search_query(filters: &Filters, window: Window, count: u32) -> Vec<(String, String)> {
    let mut query = Vec::new();
    if !filters.category.is_empty() {
        query.push(("category".to_string(), filters.category.join(",")));
    }
    if !filters.status.is_empty() {
        query.push(("status".to_string(), filters.status.join(",")));
    }
    for date in &filters.date {
        query.push(("date".to_string(), date.clone()));
    }
    if let Some(subject) = &filters.subject {
        query.push(("subject".to_string(), subject.clone()));
    }
    if let Some(since) = window.since {
        query.push(("_lastUpdated".to_string(), format!("ge{}", rfc3339(since))));
    }
    query.push((
        "_lastUpdated".to_string(),
        format!("lt{}", rfc3339(window.until)),
    ));
    // `_id` breaks ties, so equal timestamps keep one order across page reads.
    query.push(("_sort".to_string(), "_lastUpdated,_id".to_string()));
    query.push(("_count".to_string(), count.to_string()));
    query
}

/// RFC 3339 in UTC with milliseconds, the form FHIR servers parse everywhere.
pub fn rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let millis = at
        .replace_nanosecond(at.millisecond() as u32 * 1_000_000)
        .unwrap_or(at);
    millis
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// `meta.lastUpdated` of a resource.
pub fn last_updated(resource: &Value) -> Option<OffsetDateTime> {
    let text = resource.pointer("/meta/lastUpdated")?.as_str()?;
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// The reports of one window, each once.
#[derive(Debug, Default)]
pub struct WindowReports {
    pub reports: Vec<Value>,
    /// Entries seen again on a later page or a re-run of the search.
    pub duplicates: usize,
    /// Times the search was started again because the result set moved.
    pub restarts: usize,
}

/// How often a window's search is started again when its result set moves
/// under the paging; beyond that the window fails (and is retried next run).
const MAX_WINDOW_RESTARTS: usize = 5;

/// Reads every page of a window before anything is written.
///
/// Offset-based paging (SEKMET, HAPI's default) shifts pages when a report
/// leaves or enters the result set between page reads, which loses or repeats
/// entries. Our own writes would do exactly that, so the window is collected
/// first; the `lt` bound keeps later inserts out; and if `Bundle.total`
/// changes between pages (someone else updated a report in the window) the
/// search runs again, de-duplicated on (id, versionId).
pub async fn collect_window(
    client: &FhirClient,
    filters: &Filters,
    window: Window,
    count: u32,
) -> Result<WindowReports, FhirError> {
    match collect_window_bounded(client, filters, window, count, u64::MAX).await? {
        Collected::Reports(reports) => Ok(reports),
        Collected::TooLarge { .. } => unreachable!("no window is larger than u64::MAX"),
    }
}

/// A window's reports, or word that it holds too many to keep in memory.
#[derive(Debug)]
pub enum Collected {
    Reports(WindowReports),
    /// `Bundle.total` exceeds the bound; `earliest` is the first report's
    /// `meta.lastUpdated` (a lower bound for splitting an open window).
    TooLarge {
        total: u64,
        earliest: Option<OffsetDateTime>,
    },
}

/// [`collect_window`], but stops after the first page when the server says
/// the window holds more than `max_reports` (so the caller can split it by
/// time and memory stays bounded on a first run over a large backlog).
pub async fn collect_window_bounded(
    client: &FhirClient,
    filters: &Filters,
    window: Window,
    count: u32,
    max_reports: u64,
) -> Result<Collected, FhirError> {
    let query = search_query(filters, window, count);
    let mut out = WindowReports::default();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    loop {
        let mut pager = SearchPager::new(client.clone(), "DiagnosticReport", &query)?;
        let mut totals = HashSet::new();
        while let Some(page) = pager.next_page().await? {
            if let Some(total) = page.total {
                if total > max_reports && totals.is_empty() && out.restarts == 0 {
                    return Ok(Collected::TooLarge {
                        total,
                        earliest: page.resources.first().and_then(last_updated),
                    });
                }
                totals.insert(total);
            }
            for report in page.resources {
                let key = crate::fhir::version_key(&report);
                if seen.insert(key) {
                    out.reports.push(report);
                } else {
                    out.duplicates += 1;
                }
            }
        }
        out.duplicates += pager.duplicates();
        if totals.len() <= 1 {
            break;
        }
        if out.restarts >= MAX_WINDOW_RESTARTS {
            return Err(FhirError::Unstable {
                url: "DiagnosticReport search".into(),
                reason: format!("the result set kept changing over {MAX_WINDOW_RESTARTS} re-reads"),
            });
        }
        out.restarts += 1;
        tracing::info!(
            restarts = out.restarts,
            "the window changed while paging; reading it again"
        );
    }
    // A re-run can return a newer version of a report read before: keep the newest only.
    keep_newest_versions(&mut out.reports);
    out.reports.sort_by_key(last_updated);
    Ok(Collected::Reports(out))
}

/// Halves a window by time for [`Collected::TooLarge`]; `None` when it is
/// too short to split (a second or less: equal timestamps cannot be split,
/// such a window is read whole).
pub fn split_window(window: Window, earliest: Option<OffsetDateTime>) -> Option<(Window, Window)> {
    let since = window.since.or(earliest)?;
    let span = window.until - since;
    if span <= time::Duration::seconds(1) {
        return None;
    }
    let middle = since + span / 2;
    Some((
        Window {
            since: Some(since),
            until: middle,
        },
        Window {
            since: Some(middle),
            until: window.until,
        },
    ))
}

fn keep_newest_versions(reports: &mut Vec<Value>) {
    let mut newest: std::collections::HashMap<String, OffsetDateTime> =
        std::collections::HashMap::new();
    for report in reports.iter() {
        let id = report
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let at = last_updated(report).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let entry = newest.entry(id).or_insert(at);
        *entry = (*entry).max(at);
    }
    reports.retain(|report| {
        let id = report.get("id").and_then(Value::as_str).unwrap_or("");
        let at = last_updated(report).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        newest.get(id).is_none_or(|n| *n == at)
    });
    // Two versions with the same lastUpdated: keep the first (they are rare
    // and the writer re-reads on conflict anyway).
    let mut ids = HashSet::new();
    reports.retain(|report| {
        ids.insert(
            report
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(text: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    const LIMITS: TextLimits = TextLimits { max_chars: 10_000 };

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
    fn the_size_limit_skips_instead_of_cutting() {
        let long = "A".repeat(101);
        let limits = TextLimits { max_chars: 100 };
        assert_eq!(
            report_text(&json!({"conclusion": long}), limits),
            Err(SkipReason::TooLarge {
                chars: 101,
                limit: 100
            })
        );
        let huge = json!({"presentedForm": [{"contentType": "text/plain", "data": b64("B".repeat(1000).as_bytes())}]});
        assert_eq!(report_text(&huge, limits).unwrap_err().key(), "too-large");
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
    fn the_query_has_the_filters_the_window_and_the_sort() {
        let filters = Filters {
            category: vec![
                "http://terminology.hl7.org/CodeSystem/v2-0074|RAD".into(),
                "http://loinc.org|LP29684-5".into(),
            ],
            status: vec!["final".into(), "amended".into()],
            date: vec!["ge2024-01-01".into()],
            subject: Some("Patient/p1".into()),
        };
        let window = Window {
            since: Some(time::macros::datetime!(2026-01-02 03:04:05.678 UTC)),
            until: time::macros::datetime!(2026-01-03 00:00 UTC),
        };
        let query = search_query(&filters, window, 50);
        let get = |name: &str| {
            query
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            get("category"),
            ["http://terminology.hl7.org/CodeSystem/v2-0074|RAD,http://loinc.org|LP29684-5"]
        );
        assert_eq!(get("status"), ["final,amended"]);
        assert_eq!(
            get("_lastUpdated"),
            ["ge2026-01-02T03:04:05.678Z", "lt2026-01-03T00:00:00Z"]
        );
        assert_eq!(get("_sort"), ["_lastUpdated,_id"]);
        assert_eq!(get("_count"), ["50"]);
        assert_eq!(get("subject"), ["Patient/p1"]);
        assert_eq!(
            filters.search_params(),
            ["category", "status", "date", "subject"]
        );
    }

    #[test]
    fn large_windows_split_in_time_halves_down_to_a_second() {
        let until = time::macros::datetime!(2026-01-03 00:00 UTC);
        let open = Window { since: None, until };
        assert_eq!(
            split_window(open, None),
            None,
            "an open window needs a lower bound"
        );
        let earliest = time::macros::datetime!(2026-01-01 00:00 UTC);
        let (first, second) = split_window(open, Some(earliest)).unwrap();
        assert_eq!(first.since, Some(earliest));
        assert_eq!(first.until, time::macros::datetime!(2026-01-02 00:00 UTC));
        assert_eq!((second.since, second.until), (Some(first.until), until));
        let short = Window {
            since: Some(until - time::Duration::milliseconds(900)),
            until,
        };
        assert_eq!(split_window(short, None), None);
    }

    #[test]
    fn only_the_newest_version_of_a_report_is_kept() {
        let mut reports = vec![
            json!({"id": "a", "meta": {"versionId": "1", "lastUpdated": "2026-01-01T00:00:00Z"}}),
            json!({"id": "b", "meta": {"versionId": "1", "lastUpdated": "2026-01-01T00:00:01Z"}}),
            json!({"id": "a", "meta": {"versionId": "2", "lastUpdated": "2026-01-01T00:00:02Z"}}),
        ];
        keep_newest_versions(&mut reports);
        let versions: Vec<_> = reports.iter().map(crate::fhir::version_key).collect();
        assert_eq!(
            versions,
            [
                ("b".to_string(), "1".to_string()),
                ("a".to_string(), "2".to_string())
            ]
        );
    }
}

//! Pull: find the DiagnosticReports to work on, window by window, and read
//! the attachments a report has only by URL.
//!
//! The choice and decoding of a report's text is pure and lives in
//! [`reportsplit_fhir::text`]; this module is the part that talks to the server.

use std::collections::HashSet;

use reportsplit_fhir::limits::{Limit, Limits, OverLimit};
use reportsplit_fhir::text::{self, Fetched, ReportText, SkipReason};
use reqwest::StatusCode;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::fhir::{FhirClient, FhirError, SearchPager};

/// Most attachments read by URL for one report (each up to
/// `limits.attachment_bytes`): what one report may hold in memory is bounded.
/// A report rarely has more than two forms; the others stay unread
/// (`attachment-by-url`).
pub const MAX_FETCHED_ATTACHMENTS: usize = 4;

/// The report's text ([`text::report_text_with`]) after reading the
/// attachments it has only by URL: a Binary on the configured server is read
/// (its JSON form, `data` in base64), one anywhere else is refused unread, so
/// that our credentials never leave the server (`foreign-attachment`).
/// `Err` only for what stops a run (the server unreachable or refusing us);
/// whatever is wrong with one attachment is the report's skip reason.
pub async fn report_text(
    client: &FhirClient,
    report: &Value,
    limits: &Limits,
) -> Result<Result<ReportText, SkipReason>, FhirError> {
    let mut fetched = Vec::new();
    for attachment in text::attachments_to_fetch(report)
        .into_iter()
        .take(MAX_FETCHED_ATTACHMENTS)
    {
        let got = fetch_attachment(client, &attachment.url, limits).await?;
        fetched.push((attachment.index, got));
    }
    Ok(text::report_text_with(report, limits, &fetched))
}

/// Reads one attachment URL, or says why not.
async fn fetch_attachment(
    client: &FhirClient,
    url: &str,
    limits: &Limits,
) -> Result<Fetched, FhirError> {
    let refused = |reason: &str| {
        Fetched::Refused(SkipReason::BadEncoding {
            reason: reason.to_owned(),
        })
    };
    if url.starts_with('#') {
        return Ok(refused("a contained attachment (#id) is not read"));
    }
    let resolved = match Url::parse(url) {
        Ok(absolute) => absolute,
        Err(url::ParseError::RelativeUrlWithoutBase) => client.url(url)?,
        Err(_) => return Ok(refused("the attachment's URL is not a URL")),
    };
    if !client.is_own(&resolved) {
        return Ok(Fetched::Refused(SkipReason::ForeignAttachment {
            origin: resolved.origin().ascii_serialization(),
        }));
    }
    // The Binary's JSON: its data in base64 (4 bytes per 3) and a little more.
    let max_bytes = limits.attachment_bytes.max(limits.text_bytes());
    let max_json = max_bytes / 3 * 4 + 64 * 1024;
    match client.with_max_response_bytes(max_json).get(resolved).await {
        Err(FhirError::TooLarge { .. }) => Ok(Fetched::Refused(SkipReason::OverLimit(OverLimit {
            limit: Limit::AttachmentBytes,
            measured: max_json / 4 * 3,
            max: max_bytes,
        }))),
        Err(error) => Err(error),
        Ok(response) => match response.status {
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                Ok(Fetched::Refused(SkipReason::AttachmentMissing {
                    url: url.to_owned(),
                    status: response.status.as_u16(),
                }))
            }
            status if status.is_success() => {
                if response.body.get("resourceType").and_then(Value::as_str) == Some("Binary") {
                    Ok(Fetched::Binary(response.body))
                } else {
                    Ok(refused("the attachment's URL does not name a Binary"))
                }
            }
            _ => Err(response.into_error()),
        },
    }
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

pub use crate::fhir::rfc3339;

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
/// Each re-read waits longer first ([`restart_delay`]): what moves the set is
/// usually a burst of writes (another worker tagging its reports, a third
/// party's edits), and re-reading at once would only catch it mid-burst.
const MAX_WINDOW_RESTARTS: usize = 8;

/// 50 ms before the first re-read, doubling up to 1.6 s (about 6 s in all).
fn restart_delay(restarts: usize) -> std::time::Duration {
    std::time::Duration::from_millis(50 << restarts.min(5))
}

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
        tokio::time::sleep(restart_delay(out.restarts)).await;
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

    #[test]
    fn window_re_reads_back_off_and_give_up_within_seconds() {
        let delays: Vec<u128> = (0..MAX_WINDOW_RESTARTS)
            .map(|k| restart_delay(k).as_millis())
            .collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1600, 1600, 1600]);
        assert!(delays.iter().sum::<u128>() < 7_000);
    }

    use super::*;
    use serde_json::json;

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

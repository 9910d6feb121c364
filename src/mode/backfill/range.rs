//! Where a range's reports are, found with a few one-entry searches before
//! the windows start: how many (for the ETA), and the first and last
//! report's time (so that decades of empty windows cost no search each).

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::window::window_query;
use super::{BackfillPlan, WindowField};
use crate::fhir::{FhirError, SearchPager};
use crate::pull::last_updated;
use crate::run::Worker;

/// The number of reports in the whole range (one `_summary=count` search), for the ETA.
pub(super) async fn range_total(
    worker: &Worker,
    plan: &BackfillPlan,
    started_at: OffsetDateTime,
) -> Option<u64> {
    let filters = worker.config.filters();
    let mut query = window_query(&filters, plan.by, plan.since, plan.until, started_at, 1);
    query.retain(|(k, _)| k != "_sort" && k != "_count");
    query.push(("_summary".into(), "count".into()));
    let mut url = worker.client.url("DiagnosticReport").ok()?;
    url.query_pairs_mut().extend_pairs(&query);
    match worker.client.get(url).await.and_then(|r| r.success()) {
        Ok(response) => response.body.get("total").and_then(Value::as_u64),
        Err(error) => {
            tracing::warn!(error = %error, "cannot count the reports of the range; no ETA");
            None
        }
    }
}

/// Where the range's reports are.
#[derive(Debug, Clone, Copy)]
pub(super) enum Occupied {
    /// The searches failed: every window is searched.
    Unknown,
    /// No report in the range.
    Nothing,
    /// From the first report's time to the last one's.
    Between(OffsetDateTime, OffsetDateTime),
}

/// The time of the range's first and last report (two one-entry searches),
/// so that a range of decades over a few years of data does not cost a
/// search per empty window.
pub(super) async fn occupied_span(
    worker: &Worker,
    plan: &BackfillPlan,
    started_at: OffsetDateTime,
) -> Occupied {
    let filters = worker.config.filters();
    let first_and_last = async {
        let mut ends = Vec::new();
        for descending in [false, true] {
            let mut query = window_query(&filters, plan.by, plan.since, plan.until, started_at, 1);
            if descending {
                for (name, value) in query.iter_mut() {
                    if name == "_sort" {
                        *value = value
                            .split(',')
                            .map(|key| format!("-{key}"))
                            .collect::<Vec<_>>()
                            .join(",");
                    }
                }
            }
            let mut pager = SearchPager::new(worker.client.clone(), "DiagnosticReport", &query)?;
            let first = pager
                .next_page()
                .await?
                .and_then(|page| page.resources.into_iter().next());
            ends.push(first.map(|report| report_time(&report, plan.by)));
        }
        Ok::<_, FhirError>(ends)
    };
    match first_and_last.await {
        Ok(ends) => match ends.as_slice() {
            [None, None] => Occupied::Nothing,
            [Some(Some(first)), Some(Some(last))] => Occupied::Between(*first, *last),
            _ => Occupied::Unknown,
        },
        Err(error) => {
            tracing::warn!(error = %error, "cannot find the range's first and last report; searching every window");
            Occupied::Unknown
        }
    }
}

/// The time a window field gives a report: `meta.lastUpdated`, or the
/// start of `effective[x]` (a partial date counts from its first instant).
pub(super) fn report_time(report: &Value, by: WindowField) -> Option<OffsetDateTime> {
    match by {
        WindowField::LastUpdated => last_updated(report),
        WindowField::Date => {
            let text = report
                .get("effectiveDateTime")
                .or_else(|| report.pointer("/effectivePeriod/start"))
                .and_then(Value::as_str)?;
            if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
                return Some(at);
            }
            let (year, rest) = text.split_at_checked(4)?;
            let mut parts = rest.trim_start_matches('-').split('-');
            let year: i32 = year.parse().ok()?;
            let month: u8 = parts
                .next()
                .filter(|p| !p.is_empty())
                .map_or(Some(1), |m| m.get(..2)?.parse().ok())?;
            let day: u8 = parts.next().map_or(Some(1), |d| d.get(..2)?.parse().ok())?;
            let month = time::Month::try_from(month).ok()?;
            time::Date::from_calendar_date(year, month, day)
                .ok()
                .map(|date| date.midnight().assume_utc())
        }
    }
}

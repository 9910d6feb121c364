//! The keyset cursor of a `_lastUpdated` window (see the module doc of
//! [`super`]): a pure state machine, fed the pages the search returns and
//! told which of them were handled.

use std::collections::HashSet;

use serde_json::Value;
use time::OffsetDateTime;

use crate::pull::last_updated;

/// Where a window's keyset paging stands: every report updated before
/// `at` is handled, and so are the reports at exactly `at` named here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyset {
    at: OffsetDateTime,
    /// Ids handled at exactly `at` (they still match `_lastUpdated ge at`).
    handled_at: HashSet<String>,
}

/// A page entry the cursor has not passed: its time and the report.
pub type Entry = (OffsetDateTime, Value);

impl Keyset {
    /// A cursor at `at`, nothing handled there yet.
    pub fn new(at: OffsetDateTime) -> Keyset {
        Keyset {
            at,
            handled_at: HashSet::new(),
        }
    }

    /// The instant the next search starts from (`_lastUpdated ge`).
    pub fn at(&self) -> OffsetDateTime {
        self.at
    }

    /// The entries of a page the cursor has not passed, in page order: after
    /// it, or at it and not handled. A report without `meta.lastUpdated`
    /// counts as at the cursor.
    pub fn fresh(&self, resources: Vec<Value>) -> Vec<Entry> {
        resources
            .into_iter()
            .map(|report| (last_updated(&report).unwrap_or(self.at), report))
            .filter(|(at, report)| {
                *at > self.at || (*at == self.at && !self.handled_at.contains(id_of(report)))
            })
            .collect()
    }

    /// Every entry of a page (times and ids, in page order) was handled: the
    /// cursor moves to the page's last time.
    pub fn handled(&mut self, page: Vec<(OffsetDateTime, String)>) {
        let last = page.last().map_or(self.at, |(at, _)| *at);
        if last != self.at {
            self.handled_at.clear();
            self.at = last;
        }
        let at = self.at;
        self.handled_at
            .extend(page.into_iter().filter(|(t, _)| *t == at).map(|(_, id)| id));
    }
}

/// A report's id, or the empty string.
pub fn id_of(report: &Value) -> &str {
    report.get("id").and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn report(id: &str, at: &str) -> Value {
        json!({"id": id, "meta": {"lastUpdated": at}})
    }

    fn ids(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|(_, r)| id_of(r)).collect()
    }

    #[test]
    fn entries_before_the_cursor_or_handled_at_it_are_passed_over() {
        let mut keyset = Keyset::new(datetime!(2026-01-01 0:00 UTC));
        let page = || {
            vec![
                report("old", "2025-12-31T23:59:59Z"),
                report("a", "2026-01-01T00:00:00Z"),
                report("b", "2026-01-01T00:00:00Z"),
                report("c", "2026-01-01T00:05:00Z"),
            ]
        };
        assert_eq!(ids(&keyset.fresh(page())), ["a", "b", "c"]);
        // A page handled up to a tie: the cursor stays, the tie is remembered.
        keyset.handled(vec![
            (datetime!(2026-01-01 0:00 UTC), "a".into()),
            (datetime!(2026-01-01 0:00 UTC), "b".into()),
        ]);
        assert_eq!(keyset.at(), datetime!(2026-01-01 0:00 UTC));
        assert_eq!(ids(&keyset.fresh(page())), ["c"]);
    }

    #[test]
    fn moving_on_forgets_the_ties_of_the_old_instant() {
        let mut keyset = Keyset::new(datetime!(2026-01-01 0:00 UTC));
        keyset.handled(vec![(datetime!(2026-01-01 0:00 UTC), "a".into())]);
        keyset.handled(vec![
            (datetime!(2026-01-01 0:01 UTC), "b".into()),
            (datetime!(2026-01-01 0:02 UTC), "c".into()),
        ]);
        assert_eq!(keyset.at(), datetime!(2026-01-01 0:02 UTC));
        let fresh = keyset.fresh(vec![
            report("c", "2026-01-01T00:02:00Z"),
            report("d", "2026-01-01T00:02:00Z"),
        ]);
        assert_eq!(ids(&fresh), ["d"]);
    }

    #[test]
    fn a_report_without_a_time_counts_as_at_the_cursor() {
        let keyset = Keyset::new(datetime!(2026-01-01 0:00 UTC));
        let fresh = keyset.fresh(vec![json!({"id": "x"})]);
        assert_eq!(fresh[0].0, datetime!(2026-01-01 0:00 UTC));
    }
}

//! What happened to the reports of a run, counted one way for every mode:
//! one vocabulary (written, planned, current, skipped by reason — a deleted
//! report is skipped as `deleted` — failed by reason) and one `Display`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::apply::{ApplyError, Outcome};
use crate::error::Class;
use crate::metrics::Metrics;

/// Why a report failed: its typed error, or a panic while working on it.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("the extractor or the planner panicked on this report")]
    Panic,
}

impl Failure {
    /// The reason counted in summaries, metrics and dead letters
    /// (`http-503`, `conflict`, `rejected-422`, `plan`, `panic`...).
    pub fn key(&self) -> String {
        match self {
            Failure::Apply(error) => error.key(),
            Failure::Panic => "panic".to_owned(),
        }
    }

    /// True when a retry would fail the same way (a panic, a report over a
    /// limit or with an undecodable text): such a report is dead-lettered and
    /// a checkpoint passes it; any other failure is retried by the next pass.
    pub fn is_permanent(&self) -> bool {
        match self {
            Failure::Apply(error) => error.is_permanent(),
            Failure::Panic => true,
        }
    }

    /// See [`Class`]; a panic is about its report alone.
    pub fn class(&self) -> Class {
        match self {
            Failure::Apply(error) => error.class(),
            Failure::Panic => Class::Report,
        }
    }
}

/// The counts of a run, or of several added with `+=`. Counts are reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub seen: u64,
    /// A transaction was committed.
    pub written: u64,
    /// Dry run: a transaction was planned and not sent.
    pub planned: u64,
    /// Already done: the tag matches the current text.
    pub current: u64,
    /// No text to split (or deleted), by reason: a retry cannot change that.
    pub skipped: BTreeMap<String, u64>,
    /// Failed, by reason.
    pub failed: BTreeMap<String, u64>,
    pub observations_written: u64,
    pub observations_superseded: u64,
    /// Re-reads after a 412.
    pub conflicts: u64,
}

/// The reason key of an export file's line that holds no report.
pub const BAD_LINE: &str = "bad-line";

impl Tally {
    /// Counts one report's result.
    pub fn record(&mut self, result: &Result<Outcome, Failure>) {
        self.seen += 1;
        match result {
            Ok(Outcome::Current) => self.current += 1,
            Ok(Outcome::Skipped(reason)) => self.skip(reason.key()),
            Ok(Outcome::Gone) => self.skip("deleted"),
            Ok(Outcome::Written {
                observations,
                superseded,
                conflicts,
                ..
            }) => {
                self.written += 1;
                self.conflicts += u64::from(*conflicts);
                self.observations_written += *observations as u64;
                self.observations_superseded += *superseded as u64;
            }
            // Nothing is written in a dry run, Observations included.
            Ok(Outcome::Planned { .. }) => self.planned += 1,
            Err(failure) => *self.failed.entry(failure.key()).or_default() += 1,
        }
    }

    /// Counts a line of an export file that holds no report: a failed
    /// record (dead-lettered), like a report that failed.
    pub fn record_bad_line(&mut self) {
        self.seen += 1;
        *self.failed.entry(BAD_LINE.to_owned()).or_default() += 1;
    }

    fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.to_owned()).or_default() += 1;
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Adds these counts to the Prometheus counters (a daemon pass, once it
    /// is done; the requests' own counts come from the client).
    pub fn add_to(&self, metrics: &Metrics) {
        metrics.processed("written", self.written);
        metrics.processed("planned", self.planned);
        metrics.processed("current", self.current);
        for (reason, count) in &self.skipped {
            metrics.skipped(reason, *count);
        }
        for (reason, count) in &self.failed {
            metrics.failed(reason, *count);
        }
        metrics.observations(self.observations_written, self.observations_superseded);
        metrics.transaction("committed", self.written);
        metrics.transaction("conflict", self.conflicts);
    }
}

/// Records one report's result in the Prometheus counters as it happens
/// (`serve`, `backfill`).
pub fn to_metrics(metrics: &Metrics, result: &Result<Outcome, Failure>) {
    let mut one = Tally::default();
    one.record(result);
    match result {
        Err(Failure::Apply(ApplyError::Conflict { retries, .. })) => {
            one.conflicts += u64::from(*retries) + 1;
        }
        Err(Failure::Apply(ApplyError::Rejected { .. })) => metrics.transaction("rejected", 1),
        _ => {}
    }
    one.add_to(metrics);
}

impl std::ops::AddAssign<&Tally> for Tally {
    fn add_assign(&mut self, other: &Tally) {
        self.seen += other.seen;
        self.written += other.written;
        self.planned += other.planned;
        self.current += other.current;
        for (reason, count) in &other.skipped {
            *self.skipped.entry(reason.clone()).or_default() += count;
        }
        for (reason, count) in &other.failed {
            *self.failed.entry(reason.clone()).or_default() += count;
        }
        self.observations_written += other.observations_written;
        self.observations_superseded += other.observations_superseded;
        self.conflicts += other.conflicts;
    }
}

/// ` (a: 1, b: 2)`, or nothing: counts by reason in a summary line.
pub fn reasons(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!(" ({})", parts.join(", "))
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} reports seen, {} written", self.seen, self.written)?;
        if self.planned > 0 {
            write!(f, ", {} planned (dry run)", self.planned)?;
        }
        write!(
            f,
            ", {} already current, {} skipped{}, {} failed{}; {} Observations written, {} superseded, {} conflicts",
            self.current,
            self.skipped_total(),
            reasons(&self.skipped),
            self.failed_total(),
            reasons(&self.failed),
            self.observations_written,
            self.observations_superseded,
            self.conflicts,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reportsplit_fhir::text::SkipReason;

    fn written(observations: usize) -> Result<Outcome, Failure> {
        Ok(Outcome::Written {
            observations,
            superseded: 1,
            conflicts: 1,
            bundle: serde_json::Value::Null,
            response: serde_json::Value::Null,
        })
    }

    #[test]
    fn one_vocabulary_for_every_outcome() {
        let mut tally = Tally::default();
        for result in [
            written(4),
            Ok(Outcome::Current),
            Ok(Outcome::Skipped(SkipReason::NoText)),
            Ok(Outcome::Gone),
            Err(Failure::Panic),
        ] {
            tally.record(&result);
        }
        assert_eq!(
            (
                tally.seen,
                tally.written,
                tally.current,
                tally.failed_total()
            ),
            (5, 1, 1, 1)
        );
        assert_eq!(tally.skipped.get("deleted"), Some(&1));
        assert_eq!(tally.skipped.get("no-text"), Some(&1));
        assert_eq!(tally.failed.get("panic"), Some(&1));
        assert_eq!(
            tally.to_string(),
            "5 reports seen, 1 written, 1 already current, 2 skipped (deleted: 1, no-text: 1), \
             1 failed (panic: 1); 4 Observations written, 1 superseded, 1 conflicts"
        );
    }

    #[test]
    fn tallies_add_up() {
        let mut one = Tally::default();
        one.record(&written(2));
        one.record(&Err(Failure::Panic));
        let mut sum = Tally::default();
        sum += &one;
        sum += &one;
        assert_eq!((sum.seen, sum.written, sum.observations_written), (4, 2, 4));
        assert_eq!(sum.failed.get("panic"), Some(&2));
    }

    #[test]
    fn tallies_reach_the_metrics() {
        let metrics = Metrics::new();
        let mut tally = Tally::default();
        tally.record(&written(3));
        tally.record(&Err(Failure::Panic));
        tally.add_to(&metrics);
        tally.add_to(&metrics);
        let text = metrics.encode();
        assert!(
            text.contains("reportsplit_reports_processed_total{outcome=\"written\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("reportsplit_reports_failed_total{reason=\"panic\"} 2"),
            "{text}"
        );
    }

    /// The value of the sample line that starts with `prefix` (name and labels).
    fn sample(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn report_outcomes_land_in_their_families() {
        let metrics = Metrics::new();
        to_metrics(
            &metrics,
            &Ok(Outcome::Written {
                observations: 4,
                superseded: 1,
                conflicts: 2,
                bundle: serde_json::Value::Null,
                response: serde_json::Value::Null,
            }),
        );
        to_metrics(&metrics, &Ok(Outcome::Current));
        to_metrics(&metrics, &Ok(Outcome::Skipped(SkipReason::NoText)));
        to_metrics(
            &metrics,
            &Err(Failure::Apply(ApplyError::Conflict {
                reference: "DiagnosticReport/1".into(),
                retries: 3,
                last: None,
            })),
        );
        let text = metrics.encode();
        assert_eq!(
            sample(
                &text,
                "reportsplit_reports_processed_total{outcome=\"written\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "reportsplit_reports_processed_total{outcome=\"current\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "reportsplit_reports_skipped_total{reason=\"no-text\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "reportsplit_reports_failed_total{reason=\"conflict\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "reportsplit_observations_written_total"),
            Some(4.0)
        );
        assert_eq!(
            sample(&text, "reportsplit_observations_superseded_total"),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "reportsplit_transactions_total{result=\"committed\"}"
            ),
            Some(1.0)
        );
        // Two 412s before the commit, four attempts of the report that gave up.
        assert_eq!(
            sample(&text, "reportsplit_transactions_total{result=\"conflict\"}"),
            Some(6.0)
        );
        assert!(
            text.trim_end().ends_with("# EOF"),
            "OpenMetrics text ends with # EOF"
        );
    }
}

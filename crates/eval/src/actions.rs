//! Counts of what a set's reports ask someone to act on (issue 12): follow-up
//! recommendations with and without an interval, critical results with and
//! without a documented communication, actionable non-urgent findings,
//! discrepancies by kind and structured assessments by system. These are
//! counts, not scores: the public kits have no labels for them, and on our
//! own sets the critical flag is scored separately (recall and precision).
//!
//! One line per set:
//! ```text
//! <set> actions reports=<R> recommendations=<n> with-interval=<n> without-interval=<n> critical=<n> critical-reports=<n> communicated=<n> not-communicated=<n> notifications=<n> actionable-nonurgent=<n> discrepancies=<n> [discrepancy-<kind>=<n>...] assessments=<n> [assessment-<system>=<n>...]
//! ```
//! `critical` counts critical entries (one per concept and side);
//! `communicated` / `not-communicated` count them by whether their report
//! documents a communication (a report's notification covers all its
//! critical results); `critical-reports` counts reports with at least one;
//! `notifications` counts documenting sentences in all reports.

use std::collections::BTreeMap;

use reportsplit_split::Extraction;

/// The running counts over a set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ActionCounts {
    pub reports: usize,
    pub recommendations: usize,
    pub with_interval: usize,
    pub critical: usize,
    pub critical_reports: usize,
    pub communicated: usize,
    pub notifications: usize,
    pub actionable: usize,
    pub discrepancies: BTreeMap<String, usize>,
    pub assessments: BTreeMap<String, usize>,
}

impl ActionCounts {
    /// Adds one report's extraction.
    pub fn add(&mut self, extraction: &Extraction<'_>) {
        self.reports += 1;
        self.recommendations += extraction.recommendations.len();
        self.with_interval += extraction
            .recommendations
            .iter()
            .filter(|r| r.interval_days.is_some())
            .count();
        self.critical += extraction.critical.len();
        if !extraction.critical.is_empty() {
            self.critical_reports += 1;
            if !extraction.notifications.is_empty() {
                self.communicated += extraction.critical.len();
            }
        }
        self.notifications += extraction.notifications.len();
        self.actionable += extraction.actionable.len();
        for discrepancy in &extraction.discrepancies {
            *self
                .discrepancies
                .entry(name(&discrepancy.kind))
                .or_default() += 1;
        }
        for assessment in &extraction.assessments {
            *self
                .assessments
                .entry(name(&assessment.system))
                .or_default() += 1;
        }
    }

    /// The summary line for `set`.
    pub fn line(&self, set: &str) -> String {
        let mut line = format!(
            "{set} actions reports={} recommendations={} with-interval={} without-interval={} critical={} critical-reports={} communicated={} not-communicated={} notifications={} actionable-nonurgent={} discrepancies={}",
            self.reports,
            self.recommendations,
            self.with_interval,
            self.recommendations - self.with_interval,
            self.critical,
            self.critical_reports,
            self.communicated,
            self.critical - self.communicated,
            self.notifications,
            self.actionable,
            self.discrepancies.values().sum::<usize>(),
        );
        for (kind, count) in &self.discrepancies {
            line.push_str(&format!(" discrepancy-{kind}={count}"));
        }
        line.push_str(&format!(
            " assessments={}",
            self.assessments.values().sum::<usize>()
        ));
        for (system, count) in &self.assessments {
            line.push_str(&format!(" assessment-{system}={count}"));
        }
        line
    }
}

/// The serialised name of an enum value (`laterality`, `BI-RADS`).
fn name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => "unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reportsplit_split::{Lexicon, extract};

    #[test]
    fn counts_every_kind_of_action() {
        let lexicon = Lexicon::builtin();
        let mut counts = ActionCounts::default();
        for text in [
            "FINDINGS: Large left pneumothorax.\nIMPRESSION: Large left pneumothorax. \
             Discussed with Dr. Lee at 14:05.",
            "IMPRESSION: Acute appendicitis.",
            "IMPRESSION: 7 mm right upper lobe nodule. Recommend CT chest in 6 months. \
             BI-RADS 2. Spiculated 2 cm left renal mass. Follow-up as clinically indicated.",
            "FINDINGS: Left lower lobe mass.\nIMPRESSION: Right lower lobe mass.",
        ] {
            counts.add(&extract(text, &lexicon));
        }
        assert_eq!(counts.reports, 4);
        assert_eq!((counts.recommendations, counts.with_interval), (2, 1));
        assert_eq!(
            (
                counts.critical,
                counts.critical_reports,
                counts.communicated
            ),
            (2, 2, 1)
        );
        assert_eq!(counts.notifications, 1);
        assert!(counts.actionable >= 1, "{counts:?}");
        assert_eq!(counts.discrepancies.get("laterality"), Some(&1));
        let line = counts.line("test");
        assert!(
            line.contains("critical=2 critical-reports=2 communicated=1 not-communicated=1"),
            "{line}"
        );
        assert!(line.contains("discrepancy-laterality=1"), "{line}");
        assert!(
            line.contains("with-interval=1 without-interval=1"),
            "{line}"
        );
    }
}

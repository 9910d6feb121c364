//! A backfill's progress log lines (the bar is [`crate::run::progress`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Shared, lock};

/// A log line every `every` while the backfill runs (with
/// [`super::ProgressMode::Log`]): counts, rate and the time left.
pub(super) async fn log_progress(
    shared: Arc<Shared>,
    every: Duration,
    total: Option<u64>,
    started: Instant,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let summary = lock(&shared.summary).clone();
        let secs = started.elapsed().as_secs_f64();
        let rate = summary.tally.seen as f64 / secs.max(0.001);
        let eta = total
            .filter(|_| rate > 0.0)
            .map(|t| (t.saturating_sub(summary.tally.seen) as f64 / rate).round() as u64);
        tracing::info!(
            seen = summary.tally.seen,
            total = ?total,
            written = summary.tally.written,
            failed = summary.tally.failed_total(),
            windows_done = summary.windows_done + summary.windows_already_done + summary.windows_empty,
            windows = summary.windows,
            reports_per_sec = format!("{rate:.1}"),
            eta_secs = ?eta,
            "backfill progress"
        );
    }
}

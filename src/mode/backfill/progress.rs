//! How a backfill shows its progress: a bar on a terminal, a log line
//! every so often elsewhere.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{ProgressMode, Shared, lock};

/// Progress display: a bar on a terminal, periodic log lines elsewhere.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(mode: ProgressMode, total: Option<u64>) -> Progress {
        let bar = match mode {
            ProgressMode::Bar => {
                let bar = match total {
                    Some(total) => indicatif::ProgressBar::new(total),
                    None => indicatif::ProgressBar::new_spinner(),
                };
                let template = if total.is_some() {
                    "{elapsed_precise} [{wide_bar}] {pos}/{len} reports {per_sec} ETA {eta} {msg}"
                } else {
                    "{elapsed_precise} {spinner} {pos} reports {per_sec} {msg}"
                };
                if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.enable_steady_tick(Duration::from_millis(250));
                Some(bar)
            }
            ProgressMode::Log(_) => None,
        };
        Progress { bar }
    }

    pub fn report_done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    pub fn windows(&self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("windows {done}/{total}"));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

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

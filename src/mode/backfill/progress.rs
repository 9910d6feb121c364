//! How a backfill shows its progress: a bar on a terminal, nothing (the
//! periodic log lines of the driver) elsewhere.

use std::time::Duration;

use super::ProgressMode;

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

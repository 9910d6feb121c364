//! How a batch command shows its progress: a bar on a terminal (someone
//! watches), a log line every so often elsewhere (a log collector reads it;
//! the command writes those lines itself, with its own fields).

use std::io::IsTerminal as _;
use std::time::Duration;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProgressMode {
    /// An indicatif bar on stderr.
    Bar,
    /// A tracing line every so often.
    Log(Duration),
}

impl ProgressMode {
    /// A bar when stderr is a terminal, else a log line `every` so often.
    pub fn for_stderr(every: Duration) -> ProgressMode {
        if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Log(every)
        }
    }
}

/// The bar, when progress is shown as one; with [`ProgressMode::Log`] every
/// call is a no-op.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A bar of `total` items when the total is known, else a spinner;
    /// `unit` names the items ("reports", "messages").
    pub fn new(mode: ProgressMode, total: Option<u64>, unit: &str) -> Progress {
        let bar = match mode {
            ProgressMode::Bar => {
                let bar = match total {
                    Some(total) => indicatif::ProgressBar::new(total),
                    None => indicatif::ProgressBar::new_spinner(),
                };
                let template = if total.is_some() {
                    format!(
                        "{{elapsed_precise}} [{{wide_bar}}] {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}} {{msg}}"
                    )
                } else {
                    format!("{{elapsed_precise}} {{spinner}} {{pos}} {unit} {{per_sec}} {{msg}}")
                };
                if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.enable_steady_tick(Duration::from_millis(250));
                Some(bar)
            }
            ProgressMode::Log(_) => None,
        };
        Progress { bar }
    }

    /// One more item handled.
    pub fn advance(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Shown after the count (a backfill's windows done).
    pub fn say(&self, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(message);
        }
    }

    /// Clears the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

//! Where a pass leaves the checkpoint: a pure state machine fed with what
//! happened (a report failed, a stop request), so the rule of the module
//! doc is tested without a server.

use time::OffsetDateTime;

/// The checkpoint of one pass over `[since, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The window's end: where the checkpoint goes when everything was handled.
    end: OffsetDateTime,
    /// `meta.lastUpdated` of the earliest report that failed.
    earliest_failure: Option<OffsetDateTime>,
    stop: Stop,
}

/// Whether, and where, a stop request ended the pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    /// Before anything of an open window (no `since`) was done.
    BeforeAnything,
    /// At the earliest instant not done.
    At(OffsetDateTime),
}

impl Checkpoint {
    pub fn new(end: OffsetDateTime) -> Checkpoint {
        Checkpoint {
            end,
            earliest_failure: None,
            stop: Stop::Running,
        }
    }

    /// A report last updated at `at` failed: the checkpoint may not pass it.
    pub fn failed(&mut self, at: OffsetDateTime) {
        self.earliest_failure = Some(self.earliest_failure.map_or(at, |e| e.min(at)));
    }

    /// A stop request kept the reports from `from` on from starting
    /// (`None`: from the open start of the window).
    pub fn stopped(&mut self, from: Option<OffsetDateTime>) {
        self.stop = match from {
            Some(at) => Stop::At(at),
            None => Stop::BeforeAnything,
        };
    }

    /// A stop request ended the pass before every report was started.
    pub fn is_stopped(&self) -> bool {
        self.stop != Stop::Running
    }

    /// Whether the end of a finished part of the window may be saved now:
    /// nothing before it failed.
    pub fn part_may_be_saved(&self) -> bool {
        self.earliest_failure.is_none()
    }

    /// The checkpoint to save when the pass ends; `None` keeps the saved one
    /// (stopped before anything was read).
    pub fn end(&self) -> Option<OffsetDateTime> {
        match self.stop {
            Stop::Running => Some(self.earliest_failure.unwrap_or(self.end)),
            Stop::At(resume) => Some(self.earliest_failure.map_or(resume, |e| e.min(resume))),
            Stop::BeforeAnything => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const END: OffsetDateTime = datetime!(2026-01-02 0:00 UTC);

    #[test]
    fn a_clean_pass_moves_to_the_end_of_the_window() {
        let checkpoint = Checkpoint::new(END);
        assert_eq!(checkpoint.end(), Some(END));
        assert!(checkpoint.part_may_be_saved() && !checkpoint.is_stopped());
    }

    #[test]
    fn the_earliest_failure_holds_the_checkpoint() {
        let mut checkpoint = Checkpoint::new(END);
        checkpoint.failed(datetime!(2026-01-01 12:00 UTC));
        checkpoint.failed(datetime!(2026-01-01 6:00 UTC));
        checkpoint.failed(datetime!(2026-01-01 18:00 UTC));
        assert_eq!(checkpoint.end(), Some(datetime!(2026-01-01 6:00 UTC)));
        assert!(!checkpoint.part_may_be_saved());
    }

    #[test]
    fn a_stop_holds_it_at_the_earliest_report_not_started_or_failed() {
        let mut checkpoint = Checkpoint::new(END);
        checkpoint.stopped(Some(datetime!(2026-01-01 10:00 UTC)));
        assert!(checkpoint.is_stopped());
        assert_eq!(checkpoint.end(), Some(datetime!(2026-01-01 10:00 UTC)));
        checkpoint.failed(datetime!(2026-01-01 8:00 UTC));
        assert_eq!(checkpoint.end(), Some(datetime!(2026-01-01 8:00 UTC)));
        checkpoint.failed(datetime!(2026-01-01 11:00 UTC));
        assert_eq!(checkpoint.end(), Some(datetime!(2026-01-01 8:00 UTC)));
    }

    #[test]
    fn a_stop_before_anything_keeps_the_saved_checkpoint() {
        let mut checkpoint = Checkpoint::new(END);
        checkpoint.stopped(None);
        assert!(checkpoint.is_stopped());
        assert_eq!(checkpoint.end(), None);
    }
}

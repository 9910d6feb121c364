//! How a batch command (backfill, retract, reprocess, `hl7` files) ends and
//! says so: the [`Ending`] precedence, the rate and the stop line of its
//! summary, and the errors of its start. Each command keeps its own summary
//! fields (the JSON and the tests name them); what they mean is decided here
//! once, so the commands cannot drift apart.

use std::fmt;

/// How a run ended, for the summary and the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every report was handled.
    Complete,
    /// The run finished, but some reports failed.
    Partial,
    /// A stop request ended it early; running it again resumes.
    Interrupted,
    /// The server stopped answering; progress is saved.
    Unreachable,
}

impl Ending {
    /// The ending of a batch command: a server that stopped answering
    /// outranks a stop request, which outranks failures, because the first
    /// two leave work undone that a rerun picks up, and say so in the exit
    /// code.
    pub fn of_batch(unreachable: bool, interrupted: bool, failed: bool) -> Ending {
        if unreachable {
            Ending::Unreachable
        } else if interrupted {
            Ending::Interrupted
        } else if failed {
            Ending::Partial
        } else {
            Ending::Complete
        }
    }
}

/// `count` per second of `duration_secs`; 0 for a run too short to time.
pub fn per_second(count: u64, duration_secs: f64) -> f64 {
    if duration_secs > 0.0 {
        count as f64 / duration_secs
    } else {
        0.0
    }
}

/// The line of a resumable batch's summary that says why it stopped early
/// (none when it did not): the server's state first, as in [`Ending::of_batch`].
pub struct StopLine<'a> {
    pub unreachable: Option<&'a str>,
    pub interrupted: bool,
}

impl fmt::Display for StopLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(reason) = self.unreachable {
            writeln!(
                f,
                "stopped: the server is unreachable ({reason}); run again to resume"
            )
        } else if self.interrupted {
            writeln!(f, "interrupted; run again to resume")
        } else {
            Ok(())
        }
    }
}

/// `From` the config and state errors, through [`RunError`](super::RunError),
/// for a command's error enum with a `Run(RunError)` variant: `?` then gives
/// them the message and the class they have at a run's start.
macro_rules! from_run_errors {
    ($error:ident) => {
        impl From<$crate::config::ConfigError> for $error {
            fn from(error: $crate::config::ConfigError) -> Self {
                $error::Run($crate::run::RunError::Config(error))
            }
        }

        impl From<$crate::state::StateError> for $error {
            fn from(error: $crate::state::StateError) -> Self {
                $error::Run($crate::run::RunError::State(error))
            }
        }
    };
}
pub(crate) use from_run_errors;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_outranks_a_stop_request_which_outranks_failures() {
        assert_eq!(Ending::of_batch(false, false, false), Ending::Complete);
        assert_eq!(Ending::of_batch(false, false, true), Ending::Partial);
        assert_eq!(Ending::of_batch(false, true, true), Ending::Interrupted);
        assert_eq!(Ending::of_batch(true, true, true), Ending::Unreachable);
    }

    #[test]
    fn a_rate_of_no_time_is_zero() {
        assert_eq!(per_second(10, 0.0), 0.0);
        assert_eq!(per_second(10, 4.0), 2.5);
    }

    #[test]
    fn the_stop_line_names_the_server_first_and_is_empty_for_a_full_run() {
        let line = |unreachable, interrupted| {
            StopLine {
                unreachable,
                interrupted,
            }
            .to_string()
        };
        assert_eq!(line(None, false), "");
        assert_eq!(line(None, true), "interrupted; run again to resume\n");
        assert_eq!(
            line(Some("down"), true),
            "stopped: the server is unreachable (down); run again to resume\n"
        );
    }
}

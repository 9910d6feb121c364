//! Process exit codes (docs/operations.md), chosen from how a run ended or
//! from its error's [`Class`]: the binary's business, not the library's.

use reportsplit::error::Class;
use reportsplit::run::Ending;

/// Everything was handled.
pub const OK: u8 = 0;
/// An unexpected error (I/O on an output file, a bug).
pub const INTERNAL: u8 = 1;
/// The configuration file or the command line is invalid (clap uses 2 for usage errors too).
pub const CONFIG: u8 = 2;
/// The run finished but some reports failed (see the summary / dead-letter file).
pub const PARTIAL: u8 = 3;
/// The FHIR server could not be reached (connection refused, DNS, timeouts after retries).
pub const UNREACHABLE: u8 = 4;
/// The server answered but refused the run: authorization, or a
/// CapabilityStatement that lacks what the run needs.
pub const REFUSED: u8 = 5;
/// The state directory is locked by another reportsplit process, or unreadable.
pub const STATE: u8 = 6;
/// A `sync --once`, backfill or reprocess was stopped by a signal before
/// it finished; run it again to resume.
pub const INTERRUPTED: u8 = 7;

/// The exit code of a run that ended this way.
pub fn of_ending(ending: Ending) -> u8 {
    match ending {
        Ending::Complete => OK,
        Ending::Partial => PARTIAL,
        Ending::Interrupted => INTERRUPTED,
        Ending::Unreachable => UNREACHABLE,
    }
}

/// The exit code of an error that ended a run.
pub fn of_class(class: Class) -> u8 {
    match class {
        Class::Unreachable => UNREACHABLE,
        Class::Refused => REFUSED,
        Class::Config => CONFIG,
        Class::Locked | Class::State => STATE,
        Class::Report | Class::Internal => INTERNAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_servers_and_refusals_have_distinct_exit_codes() {
        let codes = [
            Class::Unreachable,
            Class::Refused,
            Class::Config,
            Class::State,
        ]
        .map(of_class);
        assert_eq!(codes, [UNREACHABLE, REFUSED, CONFIG, STATE]);
        assert_eq!(of_class(Class::Locked), STATE);
        assert_eq!(of_ending(Ending::Partial), PARTIAL);
        assert_eq!(of_ending(Ending::Interrupted), INTERRUPTED);
    }
}

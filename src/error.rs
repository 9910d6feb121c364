//! One classification of errors. The daemon's retry of a pass, a batch's
//! "the server is down, stop and save progress" and the process exit code
//! all read [`Class`], so they cannot drift apart; the error types stay
//! typed end to end and each says its own class.

/// What kind of failure an error is: who can fix it, and whether trying
/// again without changing anything can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The FHIR server did not answer: connection, DNS, timeouts after the
    /// retries, a gateway error (502–504).
    Unreachable,
    /// The server answered but refused the run: authorization, or a
    /// CapabilityStatement without what the run needs.
    Refused,
    /// The configuration file, a mapping table or the command line is invalid.
    Config,
    /// Another reportsplit process holds the state directory (for now).
    Locked,
    /// The state directory cannot be read or written.
    State,
    /// One request or one report failed, others may not: an HTTP error
    /// status, a report that cannot be planned, a refused transaction.
    Report,
    /// A local failure or a bug: an output file, a resource reportsplit
    /// cannot build.
    Internal,
}

impl Class {
    /// Every following request would fail the same way: a batch stops with
    /// its progress saved instead of dead-lettering every report.
    pub fn is_server_down(self) -> bool {
        matches!(self, Class::Unreachable | Class::Refused)
    }

    /// A later attempt (the daemon's next pass) may succeed without anyone
    /// changing anything.
    pub fn is_transient(self) -> bool {
        matches!(self, Class::Unreachable | Class::Locked | Class::Report)
    }
}

/// An error and its causes, `a: b: c`. Our errors' messages leave the cause
/// out (so `{:#}` in the binary prints each once); logs want the whole chain.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unreachable_or_refusing_server_stops_a_batch() {
        let down: Vec<Class> = [
            Class::Unreachable,
            Class::Refused,
            Class::Config,
            Class::Locked,
            Class::State,
            Class::Report,
            Class::Internal,
        ]
        .into_iter()
        .filter(|class| class.is_server_down())
        .collect();
        assert_eq!(down, [Class::Unreachable, Class::Refused]);
        assert!(Class::Locked.is_transient() && !Class::Refused.is_transient());
    }
}

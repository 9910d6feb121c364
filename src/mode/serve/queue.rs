//! The bounded queue of notified reports, as a pure state machine: which
//! reports wait, and whether a notification is queued. A report waits once,
//! whatever the notifications say; a notification is queued whole or not at
//! all (then `503` and `Retry-After`: the sender retries, and reprocessing
//! is idempotent). The channel's own capacity stays the authority on room.

use std::collections::HashSet;

/// The reports queued and not started yet.
#[derive(Debug, Default)]
pub struct Waiting {
    ids: HashSet<String>,
}

/// What to do with a notification's reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Every one of them waits already.
    Nothing,
    /// Queue these (the ones not waiting), all of them.
    Queue(Vec<String>),
    /// They cannot all fit in a queue of this capacity.
    Full,
}

impl Waiting {
    /// Decides on a notification naming `ids`, for a queue of `capacity`.
    pub fn admit(&self, ids: Vec<String>, capacity: usize) -> Admit {
        let fresh: Vec<String> = ids
            .into_iter()
            .filter(|id| !self.ids.contains(id))
            .collect();
        if fresh.is_empty() {
            Admit::Nothing
        } else if fresh.len() > capacity {
            Admit::Full
        } else {
            Admit::Queue(fresh)
        }
    }

    /// `id` was queued.
    pub fn queued(&mut self, id: String) {
        self.ids.insert(id);
    }

    /// The worker started on `id`: a notification from now on may be about
    /// a newer version, so it is queued again.
    pub fn started(&mut self, id: &str) {
        self.ids.remove(id);
    }

    /// How many reports wait.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_report_waits_once_until_it_is_started() {
        let mut waiting = Waiting::default();
        assert_eq!(
            waiting.admit(ids(&["a", "b"]), 10),
            Admit::Queue(ids(&["a", "b"]))
        );
        waiting.queued("a".into());
        waiting.queued("b".into());
        assert_eq!(waiting.admit(ids(&["a", "b"]), 10), Admit::Nothing);
        assert_eq!(
            waiting.admit(ids(&["b", "c"]), 10),
            Admit::Queue(ids(&["c"]))
        );
        waiting.started("a");
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting.admit(ids(&["a"]), 10), Admit::Queue(ids(&["a"])));
    }

    #[test]
    fn a_notification_larger_than_the_queue_is_refused_whole() {
        let waiting = Waiting::default();
        assert_eq!(waiting.admit(ids(&["a", "b", "c"]), 2), Admit::Full);
    }
}

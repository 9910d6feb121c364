//! The durable, bounded queue of notified reports.
//!
//! [`Waiting`] is the pure part: which reports wait, and whether a
//! notification is queued. A report waits once, whatever the notifications
//! say; a notification is queued whole or not at all (then `503` and
//! `Retry-After`: the sender retries, and reprocessing is idempotent).
//!
//! The rest keeps the queue in a [`QueueStore`] (the state directory's
//! journal). One thread, the committer, owns the store. Notifications reach
//! it through a channel; it takes every request waiting there as one batch,
//! decides each notification, records the batch's new entries in **one**
//! durable write (group commit: one fsync for as many notifications as
//! arrived during the previous one), and only then answers them `202` and
//! hands the entries to the worker. The worker reports each entry done once
//! its report was written (or found current, or gone, or dead-lettered);
//! those records ride along with the next write. So a `202` survives a
//! kill -9, and what was not done is handed out again on the next start.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::state::queue::{Entry, QueueStore};

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
        } else if self.ids.len() + fresh.len() > capacity {
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

/// Why a notification was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// No room for all of its reports.
    Full,
    /// The queue could not be recorded durably (the log says why), or the
    /// server is shutting down.
    Unavailable,
}

enum Request {
    /// A notification's reports: queued durably, or refused whole.
    Enqueue {
        ids: Vec<String>,
        reply: oneshot::Sender<Result<usize, Refused>>,
    },
    /// The worker is finished with this entry.
    Done(u64),
    /// No more notifications: hand out nothing more, so the worker drains
    /// what it was given and ends.
    Close,
    /// The worker ended: record what is left and stop.
    Finish,
}

/// Most requests taken into one batch.
const MAX_BATCH: usize = 4096;

/// The queue as the HTTP handlers and the worker see it. Clones share it.
#[derive(Clone)]
pub(super) struct Queue {
    requests: mpsc::UnboundedSender<Request>,
    waiting: Arc<Mutex<Waiting>>,
    capacity: usize,
    metrics: Metrics,
}

/// The committer thread, for the shutdown.
pub(super) struct Committer {
    requests: mpsc::UnboundedSender<Request>,
    thread: std::thread::JoinHandle<()>,
}

/// Starts the committer on `store`; returns the queue, the committer and the
/// entries for the worker (first those a previous process left).
pub(super) fn open(
    store: Box<dyn QueueStore>,
    capacity: usize,
    metrics: Metrics,
) -> std::io::Result<(Queue, Committer, mpsc::UnboundedReceiver<Entry>)> {
    let (requests, inbox) = mpsc::unbounded_channel();
    let (work, entries) = mpsc::unbounded_channel();
    let waiting = Arc::new(Mutex::new(Waiting::default()));
    let left_over = store.left_over();
    if !left_over.is_empty() {
        tracing::info!(
            reports = left_over.len(),
            "resuming the reports a previous serve had queued and not finished"
        );
    }
    {
        let mut waiting = lock(&waiting);
        for entry in left_over {
            waiting.queued(entry.id.clone());
            // The receiver is in hand: this cannot fail.
            let _ = work.send(entry);
        }
        metrics.set_queue_depth(waiting.len());
    }
    let queue = Queue {
        requests: requests.clone(),
        waiting: waiting.clone(),
        capacity,
        metrics: metrics.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("serve-queue".into())
        .spawn(move || commit_loop(store, inbox, work, waiting, capacity, metrics))?;
    Ok((queue, Committer { requests, thread }, entries))
}

fn lock(waiting: &Mutex<Waiting>) -> std::sync::MutexGuard<'_, Waiting> {
    waiting
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Queue {
    /// Queues the reports of a notification that are not waiting yet, all
    /// or none; returns how many were queued once that is durable.
    pub(super) async fn enqueue(&self, ids: Vec<String>) -> Result<usize, Refused> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Enqueue { ids, reply })
            .map_err(|_| Refused::Unavailable)?;
        answer.await.unwrap_or(Err(Refused::Unavailable))
    }

    /// The worker started on `id` (see [`Waiting::started`]).
    pub(super) fn started(&self, id: &str) {
        let mut waiting = lock(&self.waiting);
        waiting.started(id);
        self.metrics.set_queue_depth(waiting.len());
    }

    /// The worker is finished with `seq`: it leaves the store.
    pub(super) fn done(&self, seq: u64) {
        let _ = self.requests.send(Request::Done(seq));
    }

    /// Reports waiting (not started).
    pub(super) fn depth(&self) -> usize {
        lock(&self.waiting).len()
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Committer {
    /// No more notifications will come: the worker gets nothing new.
    pub(super) fn close(&self) {
        let _ = self.requests.send(Request::Close);
    }

    /// Records what is left for the next start and waits for the thread.
    pub(super) async fn finish(self) {
        let _ = self.requests.send(Request::Finish);
        let thread = self.thread;
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(())) => {}
            _ => tracing::error!("the queue's committer thread failed"),
        }
    }
}

/// The committer: batches requests, one store write per batch.
fn commit_loop(
    mut store: Box<dyn QueueStore>,
    mut inbox: mpsc::UnboundedReceiver<Request>,
    work: mpsc::UnboundedSender<Entry>,
    waiting: Arc<Mutex<Waiting>>,
    capacity: usize,
    metrics: Metrics,
) {
    let mut work = Some(work);
    let mut finished = false;
    while !finished && let Some(first) = inbox.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && let Ok(next) = inbox.try_recv()
        {
            batch.push(next);
        }
        let mut added: Vec<String> = Vec::new();
        let mut done: Vec<u64> = Vec::new();
        // Each admitted notification's reply and how many it queued.
        let mut replies: Vec<(oneshot::Sender<Result<usize, Refused>>, usize)> = Vec::new();
        let mut closing = false;
        {
            let mut waiting = lock(&waiting);
            for request in batch {
                match request {
                    Request::Enqueue { ids, reply } => {
                        if closing || work.is_none() {
                            let _ = reply.send(Err(Refused::Unavailable));
                            continue;
                        }
                        match waiting.admit(ids, capacity) {
                            Admit::Nothing => replies.push((reply, 0)),
                            Admit::Full => {
                                metrics.queue_rejected();
                                let _ = reply.send(Err(Refused::Full));
                            }
                            Admit::Queue(fresh) => {
                                for id in &fresh {
                                    waiting.queued(id.clone());
                                }
                                replies.push((reply, fresh.len()));
                                added.extend(fresh);
                            }
                        }
                    }
                    Request::Done(seq) => done.push(seq),
                    Request::Close => closing = true,
                    Request::Finish => finished = true,
                }
            }
        }
        let durable = !added.is_empty();
        let committed = if added.is_empty() && done.is_empty() {
            Ok(Vec::new())
        } else {
            store.commit(&added, &done, durable)
        };
        match committed {
            Ok(entries) => {
                if durable {
                    metrics.queue_commit();
                }
                if let Some(work) = &work {
                    for entry in entries {
                        let _ = work.send(entry);
                    }
                }
                // An answer "nothing new" also waited for this write: the
                // report it names may have been queued in this very batch.
                for (reply, count) in replies {
                    let _ = reply.send(Ok(count));
                }
            }
            Err(error) => {
                tracing::error!(error = %crate::error::error_chain(&error), "cannot record the serve queue; refusing the notifications of this batch");
                let mut waiting = lock(&waiting);
                for id in &added {
                    waiting.started(id);
                }
                for (reply, _) in replies {
                    let _ = reply.send(Err(Refused::Unavailable));
                }
            }
        }
        metrics.set_queue_depth(lock(&waiting).len());
        if closing {
            work = None;
        }
    }
    if let Err(error) = store.close() {
        tracing::error!(error = %crate::error::error_chain(&error), "cannot compact the serve queue at shutdown");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateError;

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
    fn a_notification_larger_than_the_room_left_is_refused_whole() {
        let mut waiting = Waiting::default();
        assert_eq!(waiting.admit(ids(&["a", "b", "c"]), 2), Admit::Full);
        waiting.queued("a".into());
        assert_eq!(waiting.admit(ids(&["b", "c"]), 2), Admit::Full);
        assert_eq!(
            waiting.admit(ids(&["a", "b"]), 2),
            Admit::Queue(ids(&["b"]))
        );
    }

    /// A store in memory that counts its writes and can be made to fail.
    #[derive(Default)]
    struct Counting {
        writes: Arc<Mutex<Vec<(usize, usize, bool)>>>,
        fail: Arc<std::sync::atomic::AtomicBool>,
        next: u64,
    }

    impl QueueStore for Counting {
        fn left_over(&self) -> Vec<Entry> {
            vec![Entry {
                seq: 100,
                id: "left".into(),
            }]
        }
        fn commit(
            &mut self,
            added: &[String],
            done: &[u64],
            durable: bool,
        ) -> Result<Vec<Entry>, StateError> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StateError::Locked("test".into()));
            }
            self.writes
                .lock()
                .unwrap()
                .push((added.len(), done.len(), durable));
            Ok(added
                .iter()
                .map(|id| {
                    self.next += 1;
                    Entry {
                        seq: self.next,
                        id: id.clone(),
                    }
                })
                .collect())
        }
        fn close(&mut self) -> Result<(), StateError> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_notifications_share_writes_and_are_answered_after_them() {
        let store = Counting::default();
        let writes = store.writes.clone();
        let fail = store.fail.clone();
        let (queue, committer, mut entries) = open(Box::new(store), 1000, Metrics::new()).unwrap();
        assert_eq!(entries.recv().await.unwrap().id, "left");
        let notifications: Vec<_> = (0..200)
            .map(|i| {
                let queue = queue.clone();
                // Every report twice: the second is not queued again.
                tokio::spawn(async move { queue.enqueue(vec![format!("r{}", i % 100)]).await })
            })
            .collect();
        let mut queued = 0;
        for notification in notifications {
            queued += notification.await.unwrap().unwrap();
        }
        assert_eq!(queued, 100);
        let mut handed_out = HashSet::new();
        for _ in 0..100 {
            handed_out.insert(entries.recv().await.unwrap().id);
        }
        assert_eq!(handed_out.len(), 100);
        let writes_made = writes.lock().unwrap().clone();
        assert!(writes_made.iter().all(|&(_, _, durable)| durable));
        assert_eq!(writes_made.iter().map(|w| w.0).sum::<usize>(), 100);
        assert!(writes_made.len() < 200, "{} writes", writes_made.len());
        // A report still waiting is not queued twice; one started is.
        assert_eq!(queue.enqueue(ids(&["r1"])).await, Ok(0));
        queue.started("r1");
        assert_eq!(queue.enqueue(ids(&["r1"])).await, Ok(1));
        // A failed write refuses the notification and leaves nothing waiting.
        fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let depth = queue.depth();
        assert_eq!(
            queue.enqueue(ids(&["new"])).await,
            Err(Refused::Unavailable)
        );
        assert_eq!(queue.depth(), depth);
        fail.store(false, std::sync::atomic::Ordering::SeqCst);
        committer.close();
        assert_eq!(
            queue.enqueue(ids(&["late"])).await,
            Err(Refused::Unavailable)
        );
        committer.finish().await;
        assert!(queue.enqueue(ids(&["later"])).await.is_err());
    }
}

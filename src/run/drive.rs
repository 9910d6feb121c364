//! The one loop over reports that every mode uses.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::stream::BoxStream;
use futures::{FutureExt as _, Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;

use super::apply::{ApplyError, Outcome};
use super::tally::Failure;

/// The work on one item panicked. The extractor and the planner are meant
/// to be total, but one poison report must cost only itself: not its window,
/// its pass, or the process (and, since a checkpoint stays before a report
/// that did not finish, not every restart after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Panicked;

/// Runs `jobs` (a key and the work on one item), at most `concurrency` at a
/// time, and yields each key with its result as it completes.
///
/// Once `stop` is cancelled no job is started (a job's future is only
/// created, by the stream, when a slot is free, so whatever the caller
/// counts while creating it counts exactly the started jobs); the jobs in
/// flight finish. A job that panics yields [`Panicked`] instead of
/// unwinding through the loop. Whether the server is down is read from
/// each result's [`crate::error::Class`] by the caller, which owns the stop
/// token it may then cancel.
///
/// The stream is boxed: its type would otherwise name every caller's
/// closures, and the compiler cannot prove such a type `Send` inside a
/// spawned task (rust-lang/rust#64552).
pub fn drive<'a, K, R, F>(
    jobs: impl Stream<Item = (K, F)> + Send + 'a,
    concurrency: usize,
    stop: &'a CancellationToken,
) -> BoxStream<'a, (K, Result<R, Panicked>)>
where
    K: Send + 'a,
    R: Send + 'a,
    F: Future<Output = R> + Send + 'a,
{
    jobs.take_until(stop.cancelled())
        .map(|(key, job)| async move {
            let result = AssertUnwindSafe(job).catch_unwind().await;
            (key, result.map_err(|_| Panicked))
        })
        .buffer_unordered(concurrency.max(1))
        .boxed()
}

/// A report's result with a panic counted as its failure.
pub fn settle(result: Result<Result<Outcome, ApplyError>, Panicked>) -> Result<Outcome, Failure> {
    match result {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(error)) => Err(Failure::Apply(error)),
        Err(Panicked) => Err(Failure::Panic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(
        items: Vec<u32>,
    ) -> impl Stream<Item = (u32, std::pin::Pin<Box<dyn Future<Output = u32> + Send>>)> {
        futures::stream::iter(items).map(|item| {
            let job: std::pin::Pin<Box<dyn Future<Output = u32> + Send>> = Box::pin(async move {
                assert!(item != 3, "poison item");
                item * 10
            });
            (item, job)
        })
    }

    #[tokio::test]
    async fn a_panicking_job_is_its_own_failure_and_the_others_go_on() {
        let stop = CancellationToken::new();
        let mut results: Vec<(u32, Result<u32, Panicked>)> =
            drive(jobs(vec![1, 2, 3, 4, 5]), 2, &stop).collect().await;
        results.sort_by_key(|(key, _)| *key);
        assert_eq!(
            results,
            [
                (1, Ok(10)),
                (2, Ok(20)),
                (3, Err(Panicked)),
                (4, Ok(40)),
                (5, Ok(50))
            ]
        );
    }

    #[tokio::test]
    async fn nothing_starts_after_a_stop_and_what_runs_finishes() {
        let stop = CancellationToken::new();
        let started = std::sync::atomic::AtomicU32::new(0);
        let started = &started;
        let jobs = futures::stream::iter(1..=100u32).map(|item| {
            started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (item, async move { item })
        });
        let mut results = std::pin::pin!(drive(jobs, 4, &stop));
        let mut done = 0;
        while let Some((_, result)) = results.next().await {
            assert!(result.is_ok());
            done += 1;
            if done == 6 {
                stop.cancel();
            }
        }
        let started = started.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            started < 100 && done == started,
            "{done} done, {started} started"
        );
    }

    #[test]
    fn a_panic_settles_as_a_failure_with_its_own_reason() {
        let failure = settle(Err(Panicked)).err();
        assert_eq!(failure.map(|f| f.key()), Some("panic".to_owned()));
    }
}

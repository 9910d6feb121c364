//! The run modes: thin drivers over the engine ([`crate::run`]). Each
//! decides which reports to feed [`crate::run::drive`] and what to remember
//! between them; none has a loop, a counter or a dead-letter writer of its own.
//!
//! - [`once`]: one incremental pass (`sync --once`), checkpointed.
//! - [`daemon`]: a pass every so often (`sync --every`).
//! - [`backfill`]: a past range, window by window, resumable.
//! - [`reprocess`]: the reports of a dead-letter file, again.
//! - [`retract`]: take back what one release wrote in a time range.
//! - [`serve`]: `$enrich` and Subscription notifications over HTTP.

pub mod backfill;
pub mod daemon;
pub mod hl7;
pub mod mllp;
pub mod once;
pub mod reprocess;
pub mod retract;
pub mod serve;

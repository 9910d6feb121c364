//! The integration tests, as one binary: one link step against the worker
//! library instead of one per file. Each module is one area (its own doc
//! says what it covers); most start their own SEKMET FHIR server through
//! `common` (scripts/sekmet.sh). Run one area with `cargo test --test it
//! sync::`.

mod common;
#[path = "../../crates/fhir/tests/map_fixture/mod.rs"]
mod map_fixture;
#[path = "../../crates/fhir/tests/pdf_fixture/mod.rs"]
mod pdf_fixture;

mod actionable;
mod attachments;
mod auth;
mod backfill;
mod bulk;
mod cli;
mod client_faults;
mod critical;
mod daemon;
mod discrepancy;
mod fleet;
mod fuzz_corpus;
mod guarantees;
mod hl7;
mod hl7_pg;
mod limits;
mod map_sekmet;
mod map_validate;
mod overhead;
mod pg_state;
mod proofs;
mod retract;
mod serve;
mod serve_queue;
mod sync;

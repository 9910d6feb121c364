//! The pure FHIR side of reportsplit: which text of a report is split
//! ([`text`]), the resources an extraction becomes ([`map`]) and the one
//! transaction per report that writes them ([`plan`]), and the retraction of
//! what one release wrote ([`retract`]).
//!
//! JSON and an [`reportsplit_split::Extraction`] in, JSON out: no network, no
//! files, no clock (the time comes in [`map::RunInfo`]). A separate crate so
//! that Cargo enforces that purity and an edit to the shell does not
//! recompile fhir-sdk's models.

pub mod facts;
pub mod limits;
pub mod map;
pub mod plan;
pub mod retract;
pub mod text;

/// PDFs drawn for the tests (shared with the integration tests).
#[cfg(test)]
#[path = "../tests/pdf_fixture/mod.rs"]
pub(crate) mod pdf_fixture;

//! reportsplit: pulls FHIR R4 DiagnosticReports, splits their text into
//! sections, items and coded findings, and writes them back as Observations.
//!
//! The pipeline is pull → split → map → write; see ARCHITECTURE.md.

pub mod apply;
pub mod auth;
pub mod backfill;
pub mod config;
pub mod daemon;
pub mod fhir;
pub mod input;
pub mod metrics;
pub mod pull;
pub mod reprocess;
pub mod serve;
pub mod state;
pub mod sync;
pub mod tables;

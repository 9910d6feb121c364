//! reportsplit: pulls FHIR R4 DiagnosticReports, splits their text into
//! sections, items and coded findings, and writes them back as Observations.
//!
//! The pipeline is pull → split → map → write; see ARCHITECTURE.md. The
//! pure parts are the crates `reportsplit-split` (text to findings) and
//! `reportsplit-fhir` (findings to a transaction); this crate is the shell:
//! the network, the files, the clock and the state.

pub mod atomic;
pub mod auth;
pub mod config;
pub mod error;
pub mod facts;
pub mod fhir;
pub mod hl7;
pub mod input;
pub mod metrics;
pub mod mode;
pub mod pull;
pub mod run;
pub mod scopes;
pub mod signal;
pub mod state;
pub mod tables;

//! The checks of the fuzz targets (`fuzz_targets/`), one module per target.
//! The same files are included by the replay tests of the workspace, which
//! run every committed corpus input through them on each `cargo test`.

#[path = "../../src/input.rs"]
#[allow(dead_code)]
mod input;

pub mod attachment;
pub mod extract;
pub mod fhir_input;
pub mod hl7;
pub mod report_text;

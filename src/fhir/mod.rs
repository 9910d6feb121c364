//! Our own FHIR REST client: server JSON is read, paged and written as
//! `serde_json::Value` (key order and decimals preserved), never through
//! fhir-sdk's typed models, which drop unknown elements and rewrite values.

pub mod bulk;
mod capability;
mod client;
mod search;

pub use capability::{
    Capabilities, CapabilityError, OwnedNeed, Requirements, check as check_capabilities,
};
pub use client::{ClientOptions, FhirClient, FhirError, FhirResponse, RetryPolicy};
pub use search::{Page, SearchPager, version_key};

/// The FHIR JSON media type. Sent without a `fhirVersion` parameter: the
/// servers we talk to are R4 (4.0.1), and `fhirVersion=4.3` (what fhir-sdk
/// sends) makes strict servers refuse or mis-negotiate.
pub const FHIR_JSON: &str = "application/fhir+json";

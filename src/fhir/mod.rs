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

/// RFC 3339 in UTC with milliseconds, the form FHIR servers parse everywhere (an `instant`).
/// Here, with the client, so that searches and Bulk requests build their parameters
/// without reaching up into `pull`.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let millis = at
        .replace_nanosecond(at.millisecond() as u32 * 1_000_000)
        .unwrap_or(at);
    millis
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

//! Storing a report mapped from HL7 v2: found by its filler-order
//! identifier, updated with `If-Match` when the message changes it, created
//! conditionally on that identifier when there is none.
//!
//! Two writers of one order never race here: the caller holds the order's
//! lock ([`super::KeyedLocks`]) for the whole store-then-enrich, and the
//! create's `If-None-Exist` covers a second worker process.

use reqwest::header::{HeaderMap, HeaderValue, IF_MATCH};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::IngestError;
use crate::fhir::FhirClient;

/// The elements a message owns; everything else in a stored report
/// (`result`, reportsplit's tag, what other writers added) is kept.
const OWNED: [&str; 10] = [
    "identifier",
    "basedOn",
    "status",
    "category",
    "code",
    "subject",
    "effectiveDateTime",
    "issued",
    "resultsInterpreter",
    "presentedForm",
];

/// What storing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Created,
    Updated,
    /// The stored report already says what the message says (a resend).
    Unchanged,
    /// The stored report is newer than the message (OBR-22): left alone.
    Stale,
}

impl Stored {
    pub fn key(self) -> &'static str {
        match self {
            Stored::Created => "created",
            Stored::Updated => "updated",
            Stored::Unchanged => "unchanged",
            Stored::Stale => "stale",
        }
    }
}

/// `stored` with the elements of `mapped` put in. A cancellation without
/// text keeps the stored text, so that enrichment withdraws what that text
/// gave (the plan reads the status with the text).
pub fn merge(stored: &Value, mapped: &Value) -> Value {
    let mut merged = stored.clone();
    let Some(object) = merged.as_object_mut() else {
        return mapped.clone();
    };
    let cancelled = mapped.get("status").and_then(Value::as_str) == Some("cancelled");
    for key in OWNED {
        match mapped.get(key) {
            Some(value) => {
                object.insert(key.to_owned(), value.clone());
            }
            None if key == "presentedForm" && cancelled => {}
            None => {
                object.remove(key);
            }
        }
    }
    merged
}

/// The `issued` instant of a stored report, in nanoseconds.
fn issued_nanos(report: &Value) -> Option<i128> {
    let issued = report.get("issued").and_then(Value::as_str)?;
    time::OffsetDateTime::parse(issued, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp_nanos)
}

/// Stores `report` (its order identifier `identifier`, `system|value`);
/// returns what it did and the stored version.
pub async fn store(
    client: &FhirClient,
    report: &Value,
    identifier: &str,
    reported_at: Option<i128>,
    conflict_retries: u32,
) -> Result<(Stored, Value), IngestError> {
    let mut conflicts = 0;
    loop {
        let found = search(client, "DiagnosticReport", identifier).await?;
        let stored = match found.as_slice() {
            [] => return create(client, report, identifier).await,
            [one] => one.clone(),
            several => {
                return Err(IngestError::Ambiguous {
                    resource_type: "DiagnosticReport",
                    count: several.len(),
                });
            }
        };
        if let (Some(message), Some(current)) = (reported_at, issued_nanos(&stored))
            && current > message
        {
            return Ok((Stored::Stale, stored));
        }
        let merged = merge(&stored, report);
        if merged == stored {
            return Ok((Stored::Unchanged, stored));
        }
        let id = stored.get("id").and_then(Value::as_str).unwrap_or_default();
        let version = stored
            .pointer("/meta/versionId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let url = client.url(&format!("DiagnosticReport/{id}"))?;
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&format!("W/\"{version}\"")) {
            headers.insert(IF_MATCH, value);
        }
        let body = body_of(&merged, &url)?;
        let response = client.send(Method::PUT, url, headers, Some(body)).await?;
        match response.status {
            status if status.is_success() => {
                let updated = stored_version(client, response.body, id).await?;
                return Ok((Stored::Updated, updated));
            }
            StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT
                if conflicts < conflict_retries =>
            {
                conflicts += 1;
            }
            StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT => {
                return Err(IngestError::Conflict { retries: conflicts });
            }
            _ => {
                return Err(IngestError::Refused {
                    what: "the report's update",
                    source: response.into_error(),
                });
            }
        }
    }
}

async fn create(
    client: &FhirClient,
    report: &Value,
    identifier: &str,
) -> Result<(Stored, Value), IngestError> {
    let url = client.url("DiagnosticReport")?;
    let mut headers = HeaderMap::new();
    headers.insert(
        "If-None-Exist",
        HeaderValue::from_str(&format!("identifier={identifier}")).map_err(|_| {
            IngestError::Refused {
                what: "the report's identifier",
                source: crate::fhir::FhirError::Url {
                    url: url.to_string(),
                    reason: "the identifier cannot be sent in a header".into(),
                },
            }
        })?,
    );
    let body = body_of(report, &url)?;
    let response = client.send(Method::POST, url, headers, Some(body)).await?;
    if !response.status.is_success() {
        return Err(IngestError::Refused {
            what: "the report's create",
            source: response.into_error(),
        });
    }
    let location = response.location.clone();
    let created = match response.body {
        body if body.get("resourceType").and_then(Value::as_str) == Some("DiagnosticReport") => {
            body
        }
        _ => {
            let id = location
                .as_deref()
                .and_then(crate::run::apply::relative_reference)
                .and_then(|r| r.strip_prefix("DiagnosticReport/").map(str::to_owned))
                .ok_or(IngestError::Missing)?;
            read(client, &id).await?
        }
    };
    Ok((Stored::Created, created))
}

/// The stored version after an update: the response's body, or a read.
async fn stored_version(client: &FhirClient, body: Value, id: &str) -> Result<Value, IngestError> {
    if body.get("resourceType").and_then(Value::as_str) == Some("DiagnosticReport") {
        return Ok(body);
    }
    read(client, id).await
}

async fn read(client: &FhirClient, id: &str) -> Result<Value, IngestError> {
    client
        .read("DiagnosticReport", id)
        .await?
        .map(|response| response.body)
        .ok_or(IngestError::Missing)
}

fn body_of(resource: &Value, url: &url::Url) -> Result<Vec<u8>, IngestError> {
    serde_json::to_vec(resource).map_err(|source| {
        IngestError::Fhir(crate::fhir::FhirError::Json {
            method: Method::PUT,
            url: url.to_string(),
            source,
        })
    })
}

/// Every `resource_type` whose identifier is `identifier` (`system|value`).
pub async fn search(
    client: &FhirClient,
    resource_type: &str,
    identifier: &str,
) -> Result<Vec<Value>, IngestError> {
    let query = [
        ("identifier".to_owned(), identifier.to_owned()),
        ("_count".to_owned(), "10".to_owned()),
    ];
    let mut pager = crate::fhir::SearchPager::new(client.clone(), resource_type, &query)?;
    let mut found = Vec::new();
    if let Some(page) = pager.next_page().await? {
        found.extend(page.resources);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_merge_keeps_what_others_wrote_and_replaces_what_the_message_owns() {
        let stored = json!({
            "resourceType": "DiagnosticReport", "id": "r1", "meta": {"versionId": "2", "tag": [{"code": "t"}]},
            "status": "preliminary", "code": {"text": "CT"}, "result": [{"reference": "Observation/o1"}],
            "presentedForm": [{"data": "b2xk"}], "conclusion": "kept",
        });
        let corrected = json!({"resourceType": "DiagnosticReport", "status": "corrected", "code": {"text": "CT"}, "presentedForm": [{"data": "bmV3"}]});
        let merged = merge(&stored, &corrected);
        assert_eq!(merged["status"], "corrected");
        assert_eq!(merged["presentedForm"][0]["data"], "bmV3");
        assert_eq!(merged["result"], stored["result"]);
        assert_eq!(merged["meta"], stored["meta"]);
        assert_eq!(merged["conclusion"], "kept");
        assert_eq!(
            merge(&merged, &corrected),
            merged,
            "a resend changes nothing"
        );

        let cancelled = json!({"resourceType": "DiagnosticReport", "status": "cancelled", "code": {"text": "CT"}});
        let withdrawn = merge(&merged, &cancelled);
        assert_eq!(withdrawn["status"], "cancelled");
        assert_eq!(withdrawn["presentedForm"], merged["presentedForm"]);
    }
}

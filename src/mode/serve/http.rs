//! The HTTP edge of `serve`: every error as an OperationOutcome
//! ([`Problem`]), the bearer token, and reading request bodies.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use crate::fhir::FHIR_JSON;
use crate::run::Failure;
use crate::run::apply::ApplyError;
use reportsplit_fhir::text::SkipReason;

/// An error answered as an OperationOutcome.
#[derive(Debug)]
pub(super) struct Problem {
    pub(super) status: StatusCode,
    /// FHIR issue-type code.
    code: &'static str,
    diagnostics: String,
    /// Sent as `Retry-After` (a full queue).
    retry_after_secs: Option<u64>,
}

impl Problem {
    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        diagnostics: impl Into<String>,
    ) -> Problem {
        Problem {
            status,
            code,
            diagnostics: diagnostics.into(),
            retry_after_secs: None,
        }
    }

    /// The same, with `Retry-After: secs`: the sender may try again then.
    pub(super) fn retry_after(self, secs: u64) -> Problem {
        Problem {
            retry_after_secs: Some(secs),
            ..self
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let outcome = operation_outcome("error", self.code, &self.diagnostics);
        let mut response = fhir_json(self.status, &outcome);
        if let Some(seconds) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub(super) fn operation_outcome(severity: &str, code: &str, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]
    })
}

pub(super) fn fhir_json(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))],
        bytes,
    )
        .into_response()
}

pub(super) async fn not_found(method: Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("no route for {method} {}", uri.path()),
    )
}

pub(super) async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "not-supported",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// A failure of the FHIR server or of our request to it, as the caller sees it.
pub(super) fn upstream_problem(failure: &Failure) -> Problem {
    let Failure::Apply(error) = failure else {
        return Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            failure.to_string(),
        );
    };
    match error {
        ApplyError::Plan(plan) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "processing",
            plan.to_string(),
        ),
        ApplyError::Conflict { .. } => {
            Problem::new(StatusCode::CONFLICT, "conflict", error.to_string())
        }
        // The text itself is too large: what a body over the size limit gets.
        ApplyError::Unusable {
            reason: SkipReason::OverLimit(_),
            ..
        } => Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too-long", error.to_string()),
        ApplyError::Unusable { .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            error.to_string(),
        ),
        ApplyError::OverLimit { .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too-costly",
            error.to_string(),
        ),
        _ => Problem::new(StatusCode::BAD_GATEWAY, "transient", error.to_string()),
    }
}

pub(super) fn check_token(state: &AppState, headers: &HeaderMap) -> Result<(), Problem> {
    let Some(expected) = &state.token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "login",
            "a valid bearer token is required",
        ))
    }
}

/// `/notify`: the shared secret in [`super::NOTIFY_SECRET_HEADER`] when one
/// is configured, the bearer token otherwise.
pub(super) fn check_notify_secret(state: &AppState, headers: &HeaderMap) -> Result<(), Problem> {
    let Some(expected) = &state.notify_secret else {
        return check_token(state, headers);
    };
    let given = headers
        .get(super::NOTIFY_SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if constant_time_eq(given, expected.as_bytes()) {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "login",
            "the Subscription's shared secret is required",
        ))
    }
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The body as JSON, after the checks every FHIR POST gets.
pub(super) fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !matches!(
        essence.as_str(),
        "application/fhir+json" | "application/json" | "application/json+fhir"
    ) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            format!("Content-Type must be application/fhir+json, not {content_type:?}"),
        ));
    }
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too-long"
        } else {
            "invalid"
        };
        Problem::new(status, code, rejection.body_text())
    })?;
    // The parser's message names a line and column, not content.
    serde_json::from_slice(&bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "structure",
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// The DiagnosticReport of an `$enrich` body.
pub(super) fn report_of(body: Value) -> Result<Value, Problem> {
    match body.get("resourceType").and_then(Value::as_str) {
        Some("DiagnosticReport") => Ok(body),
        Some("Parameters") => {
            let parameters = body
                .get("parameter")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            let resources: Vec<&Value> = parameters
                .filter(|p| p.get("name").and_then(Value::as_str) == Some("resource"))
                .filter_map(|p| p.get("resource"))
                .collect();
            match resources.as_slice() {
                [one]
                    if one.get("resourceType").and_then(Value::as_str)
                        == Some("DiagnosticReport") =>
                {
                    Ok((*one).clone())
                }
                [_] => Err(unprocessable(
                    "the `resource` parameter must hold a DiagnosticReport",
                )),
                [] => Err(unprocessable("Parameters without a `resource` parameter")),
                _ => Err(unprocessable(
                    "Parameters with more than one `resource` parameter",
                )),
            }
        }
        Some(other) => Err(unprocessable(&format!(
            "expected a DiagnosticReport or Parameters, got {other}"
        ))),
        None => Err(unprocessable(
            "the body is not a FHIR resource (no resourceType)",
        )),
    }
}

pub(super) fn unprocessable(message: &str) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "processing", message)
}

/// `apply=true|false` (absent: false); anything else is a 400.
pub(super) fn apply_flag(query: Option<&str>) -> Result<bool, Problem> {
    let mut apply = false;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match (key.as_ref(), value.as_ref()) {
            ("apply", "true") => apply = true,
            ("apply", "false") => apply = false,
            ("apply", other) => {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "value",
                    format!("apply must be true or false, not {other:?}"),
                ));
            }
            // _format and friends: FHIR clients add them; JSON is all we speak.
            _ => {}
        }
    }
    Ok(apply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrich_bodies() {
        let report = json!({"resourceType": "DiagnosticReport", "id": "x"});
        assert_eq!(report_of(report.clone()).unwrap(), report);
        let parameters = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": report}]});
        assert_eq!(report_of(parameters).unwrap()["id"], "x");
        let patient = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient"}}]});
        assert_eq!(
            report_of(patient).unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            report_of(json!({"a": 1})).unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }

    #[test]
    fn apply_flag_values() {
        assert!(!apply_flag(None).unwrap());
        assert!(apply_flag(Some("apply=true&_format=json")).unwrap());
        assert!(!apply_flag(Some("apply=false")).unwrap());
        assert_eq!(
            apply_flag(Some("apply=yes")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}

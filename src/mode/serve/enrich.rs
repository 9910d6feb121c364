//! `POST /DiagnosticReport/$enrich` (type and instance level): plan, or
//! plan and apply, one report and answer the Bundle.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::AppState;
use super::http::{
    Problem, apply_flag, check_token, fhir_json, json_body, report_of, unprocessable,
    upstream_problem,
};
use crate::run::apply::{ApplyContext, Outcome, apply_report};
use crate::run::{Failure, Worker, to_metrics};

/// The worker's context with this write's clock: Provenance.recorded is the
/// time of the write, not the time the server started.
pub(super) fn context<'a>(
    worker: &'a Worker,
    run: &'a reportsplit_fhir::map::RunInfo,
    dry_run: bool,
) -> ApplyContext<'a> {
    ApplyContext {
        run,
        ..worker.apply_context(dry_run)
    }
}

pub(super) fn fresh_run(worker: &Worker) -> reportsplit_fhir::map::RunInfo {
    reportsplit_fhir::map::RunInfo {
        recorded: OffsetDateTime::now_utc(),
        ..worker.run.clone()
    }
}

/// Type level: the report is in the body.
pub(super) async fn enrich(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    // Also without `apply`: planning reads the report's earlier Observations
    // from the server with our credentials and puts them in the answer.
    check_token(&state, &headers)?;
    let apply = apply_flag(query.as_deref())?;
    let report = report_of(json_body(&headers, body)?)?;
    let report = if apply {
        let id = report.get("id").and_then(Value::as_str).unwrap_or("");
        if !reportsplit_fhir::map::is_fhir_id(id) {
            return Err(unprocessable(
                "apply=true needs the report's id (the report is read from the server)",
            ));
        }
        read_report(&state, id).await?
    } else {
        report
    };
    // Without `apply` the report is the body's: one without a versionId is
    // on its way to the server, and gets a transaction that creates it.
    enrich_report(&state, report, apply, !apply).await
}

/// Instance level, `POST /DiagnosticReport/{id}/$enrich`: the server's copy
/// of the report (any body is ignored: the operation has no input parameters).
pub(super) async fn enrich_instance(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    check_token(&state, &headers)?;
    let Path(id) =
        id.map_err(|rejection| Problem::new(rejection.status(), "value", rejection.body_text()))?;
    let apply = apply_flag(query.as_deref())?;
    if !reportsplit_fhir::map::is_fhir_id(&id) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "value",
            "not a FHIR resource id",
        ));
    }
    let report = read_report(&state, &id).await?;
    enrich_report(&state, report, apply, false).await
}

pub(super) async fn read_report(state: &AppState, id: &str) -> Result<Value, Problem> {
    match state.worker.client.read("DiagnosticReport", id).await {
        Ok(Some(response)) => Ok(response.body),
        Ok(None) => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("DiagnosticReport/{id} is not on the FHIR server"),
        )),
        Err(error) => Err(Problem::new(
            StatusCode::BAD_GATEWAY,
            "transient",
            error.to_string(),
        )),
    }
}

/// Plans (or, with `apply`, writes) one report and answers the Bundle.
/// `new_reports`: a report without `meta.versionId` is planned as one not
/// stored yet (see [`ApplyContext::new_reports`]).
pub(super) async fn enrich_report(
    state: &AppState,
    report: Value,
    apply: bool,
    new_reports: bool,
) -> Result<Response, Problem> {
    let worker = &state.worker;
    let run = fresh_run(worker);
    let context = ApplyContext {
        new_reports,
        ..context(worker, &run, !apply)
    };
    let result = apply_report(&context, report).await.map_err(Failure::Apply);
    to_metrics(&state.metrics, &result);
    let empty = |kind: &str| json!({"resourceType": "Bundle", "type": kind, "entry": []});
    let (outcome, body) = match result {
        Ok(Outcome::Planned { bundle, .. }) => ("planned", bundle),
        Ok(Outcome::Written { response, .. }) => ("written", response),
        Ok(Outcome::Current) => (
            "current",
            empty(if apply {
                "transaction-response"
            } else {
                "transaction"
            }),
        ),
        Ok(Outcome::Skipped(reason)) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-supported",
                format!("nothing to split ({}): {reason}", reason.key()),
            ));
        }
        Ok(Outcome::Gone) => {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "deleted",
                "the report was deleted while it was enriched",
            ));
        }
        Err(failure) => {
            tracing::warn!(reason = %failure.key(), "$enrich failed");
            return Err(upstream_problem(&failure));
        }
    };
    let mut response = fhir_json(StatusCode::OK, &body);
    response
        .headers_mut()
        .insert("x-reportsplit-outcome", HeaderValue::from_static(outcome));
    Ok(response)
}

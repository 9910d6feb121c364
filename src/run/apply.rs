//! Applying a plan: POST the transaction, and on a version conflict re-read
//! the report and plan again.
//!
//! The planner puts `ifMatch` (the version read) on the report update, so a
//! report changed by someone else between our read and our write makes the
//! whole transaction fail with 412 and roll back: we never overwrite a newer
//! version. We then re-read the report, split its current text and re-plan,
//! a bounded number of times. The re-plan appends to whatever the other
//! writer left, so both edits survive.
//!
//! With [`WriteMethod::Patch`] the report is not PUT but changed by a JSON
//! Patch (`If-Match` and a `test` of the version): first the rest of the
//! plan (Observations, superseded ones, Provenance) goes in one transaction,
//! then the PATCH links the created Observations and sets the tag. The two
//! steps are not atomic together; after a 412 on the PATCH the report is
//! re-read and, if its text is unchanged, only the PATCH is repeated (the
//! Observations and the Provenance exist already, so nothing is duplicated);
//! if the text changed, the report is planned again from scratch.

use std::collections::HashSet;

use reportsplit_split::{Lexicon, extract_with};
use reqwest::StatusCode;
use serde_json::Value;

use crate::config::WriteMethod;
use crate::error::Class;
use crate::fhir::{FhirClient, FhirError, SearchPager};
use reportsplit_fhir::limits::{Limits, OverLimit};
use reportsplit_fhir::map::RunInfo;
use reportsplit_fhir::plan::{
    Plan, PlanError, WriteSet, is_current, owned_searches, plan, plan_any, previous_refs,
    report_patch,
};
use reportsplit_fhir::retract::retract;
use reportsplit_fhir::text::{ReportText, SkipReason};

/// What is needed to work on one report.
pub struct ApplyContext<'a> {
    pub client: &'a FhirClient,
    pub lexicon: &'a Lexicon,
    pub run: &'a RunInfo,
    pub limits: Limits,
    /// Re-reads after a 412 before giving up on the report (until the next run).
    pub conflict_retries: u32,
    /// Plan only; hand the transactions to the caller instead of sending them.
    pub dry_run: bool,
    pub method: WriteMethod,
    /// The server's `Device/<id>` for this version (see
    /// [`crate::run::Worker::resolve_device`]): when set, the transaction
    /// names it instead of creating the Device conditionally.
    pub device: Option<&'a str>,
    /// A report without `meta.versionId` is planned as one not stored yet
    /// (created with its Observations) instead of refused: only for reports
    /// handed to us (`$enrich` with the report in the body), never for
    /// reports read from the server.
    pub new_reports: bool,
    /// The kinds of discrepancy looked for (config `[discrepancies]`).
    pub discrepancies: reportsplit_split::DiscrepancyKinds,
    /// Where the Patient and the order of a report are read for the sex,
    /// age and order discrepancies.
    pub facts: &'a crate::facts::FactsCache,
}

/// What happened to one report.
#[derive(Debug)]
pub enum Outcome {
    /// The report's tag matches its current text: nothing to write.
    Current,
    /// No text that can be split.
    Skipped(SkipReason),
    /// The report was deleted between the search and the write.
    Gone,
    /// The transaction was committed; `response` is the server's transaction-response Bundle.
    Written {
        observations: usize,
        superseded: usize,
        conflicts: u32,
        bundle: Value,
        response: Value,
    },
    /// Dry run: the transaction that would have been sent.
    Planned {
        observations: usize,
        superseded: usize,
        bundle: Value,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Fhir(#[from] FhirError),
    #[error("planning failed: {0}")]
    Plan(#[from] PlanError),
    #[error("{reference}: still changing after {retries} re-reads (HTTP 412 each time){}", server_said(.last))]
    Conflict {
        reference: String,
        retries: u32,
        /// The server's diagnostics on the last 412: its real cause when it
        /// was not the report's version (e.g. a conditional create that
        /// matched several resources).
        last: Option<String>,
    },
    #[error("{reference}: the server refused the transaction")]
    Rejected {
        reference: String,
        #[source]
        source: FhirError,
    },
    /// The report's text cannot be used as it is (over the size limit, or
    /// not decodable): a retry cannot help, the report must be fixed.
    #[error("{reference}: {reason}")]
    Unusable {
        reference: String,
        reason: SkipReason,
    },
    /// The report would cost more than a limit allows (findings, Observations).
    #[error("{reference}: {over}")]
    OverLimit { reference: String, over: OverLimit },
}

impl ApplyError {
    /// See [`crate::error::Class`]: a request's class, or [`Class::Report`]
    /// for what is about this report alone.
    pub fn class(&self) -> Class {
        match self {
            ApplyError::Fhir(error) => error.class(),
            ApplyError::Plan(_)
            | ApplyError::Conflict { .. }
            | ApplyError::Rejected { .. }
            | ApplyError::Unusable { .. }
            | ApplyError::OverLimit { .. } => Class::Report,
        }
    }

    /// A stable name for summaries and metrics.
    pub fn key(&self) -> String {
        match self {
            ApplyError::Fhir(FhirError::Status { status, .. }) => {
                format!("http-{}", status.as_u16())
            }
            ApplyError::Fhir(FhirError::Transport { .. }) => "unreachable".into(),
            ApplyError::Fhir(_) => "fhir".into(),
            ApplyError::Plan(_) => "plan".into(),
            ApplyError::Conflict { .. } => "conflict".into(),
            ApplyError::Rejected {
                source: FhirError::Status { status, .. },
                ..
            } => {
                format!("rejected-{}", status.as_u16())
            }
            ApplyError::Rejected { .. } => "rejected".into(),
            ApplyError::Unusable { reason, .. } => reason.key().into(),
            ApplyError::OverLimit { over, .. } => over.limit.reason().into(),
        }
    }

    /// True when the report itself is at fault, so that the same report
    /// will fail the same way every time: dead-letter it and go past it.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ApplyError::Unusable { .. } | ApplyError::OverLimit { .. }
        )
    }
}

fn server_said(last: &Option<String>) -> String {
    last.as_ref()
        .map(|text| format!("; the server said: {text}"))
        .unwrap_or_default()
}

/// Makes a planned transaction name the server's Device (`device`,
/// `Device/<id>`) instead of creating it conditionally: the Device's create
/// entries go, and references to their `fullUrl` become `device`.
pub fn use_device(bundle: &mut Value, device: &str) {
    let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) else {
        return;
    };
    let mut full_urls = Vec::new();
    entries.retain(|entry| {
        let creates_device = entry.pointer("/request/method").and_then(Value::as_str)
            == Some("POST")
            && entry.pointer("/request/url").and_then(Value::as_str) == Some("Device");
        if creates_device && let Some(url) = entry.get("fullUrl").and_then(Value::as_str) {
            full_urls.push(url.to_owned());
        }
        !creates_device
    });
    if full_urls.is_empty() {
        return;
    }
    fn replace(value: &mut Value, from: &[String], to: &str) {
        match value {
            Value::String(text) if from.iter().any(|f| f == text) => *text = to.to_owned(),
            Value::Array(items) => items.iter_mut().for_each(|v| replace(v, from, to)),
            Value::Object(map) => map.values_mut().for_each(|v| replace(v, from, to)),
            _ => {}
        }
    }
    for entry in entries.iter_mut() {
        if let Some(resource) = entry.get_mut("resource") {
            replace(resource, &full_urls, device);
        }
    }
}

/// `DiagnosticReport/<id>` of a report, for messages (no content).
pub fn reference(report: &Value) -> String {
    format!(
        "DiagnosticReport/{}",
        report.get("id").and_then(Value::as_str).unwrap_or("?")
    )
}

/// Plans and writes one report, re-reading it after each version conflict.
pub async fn apply_report(
    context: &ApplyContext<'_>,
    report: Value,
) -> Result<Outcome, ApplyError> {
    let reference = reference(&report);
    let mut report = report;
    let mut conflicts = 0;
    loop {
        let text = match crate::pull::report_text(context.client, &report, &context.limits).await? {
            Ok(text) => text,
            Err(reason) if reason.is_defect() => {
                return Err(ApplyError::Unusable { reference, reason });
            }
            Err(reason) => {
                // Counted in the summary; named here so that a report whose
                // text cannot be reached (another server's attachment, a
                // scanned PDF) can be found. The reason carries no content.
                if reason != SkipReason::NoText {
                    tracing::info!(report = %reference, reason = %reason, key = reason.key(), "skipped");
                }
                return Ok(Outcome::Skipped(reason));
            }
        };
        let mut set = match plan_report(context, &report, &text).await? {
            Plan::Current => return Ok(Outcome::Current),
            Plan::Write(set) => set,
        };
        // A run that knows its Device (it writes: see `Worker::connect`)
        // plans what it sends, the dry runs of `serve` included.
        if let Some(device) = context.device {
            use_device(&mut set.bundle, device);
            // The report's PUT stays last; its index moves with the removal.
            set.report_entry = set
                .bundle
                .get("entry")
                .and_then(Value::as_array)
                .map_or(0, |e| e.len().saturating_sub(1));
        }
        if context.dry_run {
            return Ok(Outcome::Planned {
                observations: set.observations,
                superseded: set.superseded,
                bundle: set.bundle,
            });
        }
        if context.method == WriteMethod::Patch {
            match write_with_patch(context, &reference, &report, &text, set).await? {
                PatchOutcome::Written(mut outcome) => {
                    if let Outcome::Written {
                        conflicts: patch_conflicts,
                        ..
                    } = &mut outcome
                    {
                        *patch_conflicts += conflicts;
                    }
                    return Ok(outcome);
                }
                PatchOutcome::Changed(fresh) => {
                    if conflicts >= context.conflict_retries {
                        return Err(ApplyError::Conflict {
                            reference,
                            retries: conflicts,
                            last: None,
                        });
                    }
                    conflicts += 1;
                    report = fresh;
                    continue;
                }
                PatchOutcome::Gone => return Ok(Outcome::Gone),
            }
        }
        let WriteSet {
            bundle,
            observations,
            superseded,
            ..
        } = set;
        if let Some(response) = commit(context, &reference, &bundle, &mut conflicts).await? {
            return Ok(Outcome::Written {
                observations,
                superseded,
                conflicts,
                bundle,
                response,
            });
        }
        match context
            .client
            .read("DiagnosticReport", id_of(&report))
            .await?
        {
            Some(fresh) => report = fresh.body,
            None => return Ok(Outcome::Gone),
        }
    }
}

/// Posts one planned transaction: the server's response when it was
/// committed; `None` after a failed precondition that may be retried (the
/// caller re-reads and plans again; `conflicts` counts them); an error once
/// `conflict_retries` re-reads are spent, or when the server refused it.
async fn commit(
    context: &ApplyContext<'_>,
    reference: &str,
    bundle: &Value,
    conflicts: &mut u32,
) -> Result<Option<Value>, ApplyError> {
    let response = context.client.transaction(bundle).await?;
    match response.status {
        status if status.is_success() => Ok(Some(response.body)),
        // 412 is what If-Match failures return; some servers say 409.
        StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT => {
            // The server's reason: usually the report's If-Match, but a
            // conditional create matching several resources says 412 too.
            let last_conflict = response.diagnostics();
            if *conflicts >= context.conflict_retries {
                return Err(ApplyError::Conflict {
                    reference: reference.to_owned(),
                    retries: *conflicts,
                    last: last_conflict,
                });
            }
            *conflicts += 1;
            tracing::info!(
                report = %reference,
                conflicts = *conflicts,
                status = response.status.as_u16(),
                server_says = last_conflict.as_deref().unwrap_or(""),
                "the transaction's precondition failed (usually: the report changed since it was read); re-reading"
            );
            Ok(None)
        }
        _ => Err(ApplyError::Rejected {
            reference: reference.to_owned(),
            source: response.into_error(),
        }),
    }
}

/// Retracts what reportsplit `version` wrote for one report (see
/// [`reportsplit_fhir::retract`]): reads the report, its live owned
/// resources of every type (the group-tag searches an amendment uses), the
/// Observations its `result` links, and those in `written` (what the
/// release's Provenances name as created for it) not found so; plans, and
/// writes one transaction with `ifMatch` on the report and on each
/// superseded resource. After a 412 (someone edited the report or one of
/// those resources) everything is read and planned again, so their edit
/// survives. Always a PUT of the
/// report, whatever `write.method` says: the retraction drops `result`
/// entries, which the patch path (append only) does not do.
pub async fn apply_retract(
    context: &ApplyContext<'_>,
    report_id: &str,
    written: &HashSet<String>,
    version: &str,
) -> Result<Outcome, ApplyError> {
    let reference = format!("DiagnosticReport/{report_id}");
    let mut conflicts = 0;
    loop {
        let Some(report) = context.client.read("DiagnosticReport", report_id).await? else {
            return Ok(Outcome::Gone);
        };
        let report = report.body;
        let mut resources = read_previous(context.client, &report, &context.limits).await?;
        // Written but found by neither the tag nor `result`: an untagged
        // resource of an older release, or a patch-mode write that stopped
        // between its two steps.
        let found: HashSet<String> = resources.iter().filter_map(type_and_id).collect();
        let mut unread: Vec<String> = written
            .iter()
            .filter(|r| !found.contains(*r))
            .cloned()
            .collect();
        unread.sort();
        context
            .limits
            .check_observations(resources.len() + unread.len())
            .map_err(|over| ApplyError::OverLimit {
                reference: reference.clone(),
                over,
            })?;
        resources.extend(read_observations(context.client, unread).await?);
        let Some(retraction) = retract(&report, &resources, written, version, context.run)? else {
            return Ok(Outcome::Current);
        };
        let mut bundle = retraction.bundle;
        if let Some(device) = context.device {
            use_device(&mut bundle, device);
        }
        let superseded = retraction.superseded.len();
        if context.dry_run {
            return Ok(Outcome::Planned {
                observations: 0,
                superseded,
                bundle,
            });
        }
        if let Some(response) = commit(context, &reference, &bundle, &mut conflicts).await? {
            return Ok(Outcome::Written {
                observations: 0,
                superseded,
                conflicts,
                bundle,
                response,
            });
        }
    }
}

/// How the patch write of one plan ended.
enum PatchOutcome {
    Written(Outcome),
    /// The report's text changed meanwhile: plan again on this version.
    Changed(Value),
    Gone,
}

/// [`WriteMethod::Patch`]: the plan without the report's PUT as one
/// transaction, then a JSON Patch of the report.
async fn write_with_patch(
    context: &ApplyContext<'_>,
    reference: &str,
    report: &Value,
    text: &ReportText,
    set: WriteSet,
) -> Result<PatchOutcome, ApplyError> {
    let bundle = set.bundle_without_report();
    let has_entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty());
    let response = if has_entries {
        let response = context.client.transaction(&bundle).await?;
        match response.status {
            status if status.is_success() => response.body,
            // A superseded Observation changed meanwhile: re-read and re-plan.
            StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT => {
                return Ok(match reread(context, report).await? {
                    Some(fresh) => PatchOutcome::Changed(fresh),
                    None => PatchOutcome::Gone,
                });
            }
            _ => {
                return Err(ApplyError::Rejected {
                    reference: reference.to_owned(),
                    source: response.into_error(),
                });
            }
        }
    } else {
        Value::Null
    };
    let results = server_references(&bundle, &response, &set.results).map_err(|message| {
        ApplyError::Plan(PlanError::Report {
            report: reference.to_owned(),
            message,
        })
    })?;

    let mut current = report.clone();
    let mut conflicts = 0;
    loop {
        let version = current
            .pointer("/meta/versionId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let patch = report_patch(&current, &results, &set.tag)?;
        let answer = context
            .client
            .json_patch(reference, &version, &patch)
            .await?;
        let written = |conflicts, bundle, response| {
            PatchOutcome::Written(Outcome::Written {
                observations: set.observations,
                superseded: set.superseded,
                conflicts,
                bundle,
                response,
            })
        };
        match answer.status {
            status if status.is_success() => return Ok(written(conflicts, bundle, response)),
            // A failed If-Match, or (on some servers) the patch's `test` of the version.
            StatusCode::PRECONDITION_FAILED
            | StatusCode::CONFLICT
            | StatusCode::UNPROCESSABLE_ENTITY => {
                let Some(fresh) = reread(context, &current).await? else {
                    return Ok(PatchOutcome::Gone);
                };
                let same_text = crate::pull::report_text(context.client, &fresh, &context.limits)
                    .await?
                    .is_ok_and(|t| t.text == text.text);
                if !same_text {
                    return Ok(PatchOutcome::Changed(fresh));
                }
                let tagged = fresh
                    .pointer("/meta/tag")
                    .and_then(Value::as_array)
                    .is_some_and(|tags| tags.contains(&set.tag));
                if tagged {
                    // A retried PATCH that had committed: done.
                    return Ok(written(conflicts, bundle, response));
                }
                if conflicts >= context.conflict_retries {
                    return Err(ApplyError::Conflict {
                        reference: reference.to_owned(),
                        retries: conflicts,
                        last: answer.diagnostics(),
                    });
                }
                conflicts += 1;
                current = fresh;
            }
            _ => {
                return Err(ApplyError::Rejected {
                    reference: reference.to_owned(),
                    source: answer.into_error(),
                });
            }
        }
    }
}

async fn reread(context: &ApplyContext<'_>, report: &Value) -> Result<Option<Value>, ApplyError> {
    Ok(context
        .client
        .read("DiagnosticReport", id_of(report))
        .await?
        .map(|r| r.body))
}

/// The server's `Observation/{id}` for each `urn:uuid` in `results`, from the
/// transaction response (entries answer in request order; `location` may be
/// absolute and versioned).
fn server_references(
    bundle: &Value,
    response: &Value,
    results: &[String],
) -> Result<Vec<String>, String> {
    let entries = |v: &Value| -> Vec<Value> {
        v.get("entry")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (requests, answers) = (entries(bundle), entries(response));
    results
        .iter()
        .map(|full_url| {
            let index = requests
                .iter()
                .position(|e| e.get("fullUrl").and_then(Value::as_str) == Some(full_url))
                .ok_or_else(|| format!("{full_url} is not in the transaction"))?;
            let location = answers
                .get(index)
                .and_then(|a| a.pointer("/response/location"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    format!("the transaction response has no location for {full_url}")
                })?;
            relative_reference(location).ok_or_else(|| format!("unusable location {location:?}"))
        })
        .collect()
}

/// `Type/id` from a location such as `http://x/fhir/Observation/1/_history/2`.
pub(crate) fn relative_reference(location: &str) -> Option<String> {
    let path = location.split(['?', '#']).next()?;
    let path = path.split("/_history/").next()?;
    let mut parts = path.trim_end_matches('/').rsplit('/');
    let id = parts.next().filter(|id| !id.is_empty())?;
    let kind = parts
        .next()
        .filter(|k| k.chars().next().is_some_and(|c| c.is_ascii_uppercase()))?;
    Some(format!("{kind}/{id}"))
}

async fn plan_report(
    context: &ApplyContext<'_>,
    report: &Value,
    text: &ReportText,
) -> Result<Plan, ApplyError> {
    if is_current(report, text, context.run) {
        return Ok(Plan::Current);
    }
    let over = |over| ApplyError::OverLimit {
        reference: reference(report),
        over,
    };
    let limits = &context.limits;
    let kinds = context.discrepancies;
    let facts = if kinds.sex || kinds.age || kinds.order {
        context
            .facts
            .report_facts(context.client, report, kinds)
            .await
    } else {
        reportsplit_split::ReportFacts::default()
    };
    let extraction = extract_with(&text.text, context.lexicon, text.headerless, kinds, &facts);
    limits.check_extraction(&extraction).map_err(over)?;
    // Bounded before they are read: one GET each.
    limits
        .check_observations(previous_refs(report).len())
        .map_err(over)?;
    let previous = read_previous(context.client, report, limits).await?;
    let planned = if context.new_reports {
        plan_any(report, text, &extraction, &previous, context.run)?
    } else {
        plan(report, text, &extraction, &previous, context.run)?
    };
    if let Plan::Write(set) = &planned {
        if set.follow_ups_without_subject > 0 {
            tracing::info!(
                report = %reference(report),
                follow_ups = set.follow_ups_without_subject,
                "the report has no subject: its follow-up recommendations get no ServiceRequest"
            );
        }
        if set.critical_without_subject > 0 {
            tracing::warn!(
                report = %reference(report),
                critical = set.critical_without_subject,
                "the report has no subject: its critical results, with no documented communication, get no Flag"
            );
        }
        limits
            .check_observations(set.observations + set.others + set.superseded + set.restatused)
            .map_err(over)?;
    }
    Ok(planned)
}

/// What earlier runs wrote for the report, which an amended report's plan
/// supersedes: the live resources of every owned type carrying the report's
/// group tag (one search per type and report key), and the Observations
/// linked in `result` (which older versions wrote without the tag), each
/// once. The searches' matches count against the same limit as the linked
/// Observations: a report whose history holds more is refused, not cut.
async fn read_previous(
    client: &FhirClient,
    report: &Value,
    limits: &Limits,
) -> Result<Vec<Value>, ApplyError> {
    let over = |over| ApplyError::OverLimit {
        reference: reference(report),
        over,
    };
    let linked = previous_refs(report);
    let page_size = u32::try_from(limits.observations.clamp(1, 1000)).unwrap_or(1000);
    let searches =
        owned_searches(report, page_size)
            .into_iter()
            .map(|(resource_type, query)| async move {
                let mut pager = SearchPager::new(client.clone(), resource_type, &query)?;
                let mut found = Vec::new();
                while let Some(page) = pager.next_page().await? {
                    found.extend(page.resources);
                    // One page past the limit is enough to refuse the report.
                    if found.len() > limits.observations {
                        break;
                    }
                }
                Ok::<_, FhirError>(found)
            });
    let mut previous: Vec<Value> = Vec::new();
    for found in futures::future::join_all(searches).await {
        previous.extend(found?);
        limits.check_observations(previous.len()).map_err(over)?;
    }
    let mut seen: HashSet<String> = previous.iter().filter_map(type_and_id).collect();
    let unread: Vec<String> = linked
        .into_iter()
        .filter(|r| seen.insert(r.clone()))
        .collect();
    previous.extend(read_observations(client, unread).await?);
    limits.check_observations(previous.len()).map_err(over)?;
    Ok(previous)
}

/// `{Type}/{id}` of a resource read from the server.
fn type_and_id(resource: &Value) -> Option<String> {
    let kind = resource.get("resourceType").and_then(Value::as_str)?;
    let id = resource.get("id").and_then(Value::as_str)?;
    Some(format!("{kind}/{id}"))
}

/// Reads `{Type}/{id}` references (Observations, or any owned type)
/// concurrently (the client caps the number in flight), leaving out the
/// ones deleted meanwhile.
async fn read_observations(
    client: &FhirClient,
    references: Vec<String>,
) -> Result<Vec<Value>, FhirError> {
    let reads = references.into_iter().map(|reference| async move {
        let url = client.url(&reference)?;
        let response = client.get(url).await?;
        match response.status {
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(None),
            _ => response.success().map(|r| Some(r.body)),
        }
    });
    let results = futures::future::join_all(reads).await;
    results.into_iter().filter_map(Result::transpose).collect()
}

fn id_of(report: &Value) -> &str {
    report.get("id").and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn locations_become_relative_references() {
        assert_eq!(
            relative_reference("http://127.0.0.1:8090/fhir/Observation/abc/_history/1").as_deref(),
            Some("Observation/abc")
        );
        assert_eq!(
            relative_reference("Observation/abc").as_deref(),
            Some("Observation/abc")
        );
        assert_eq!(relative_reference("abc"), None);
    }

    #[test]
    fn a_resolved_device_replaces_its_conditional_create() {
        let mut bundle = json!({"entry": [
            {"fullUrl": "urn:uuid:dev", "resource": {"resourceType": "Device"},
             "request": {"method": "POST", "url": "Device", "ifNoneExist": "identifier=x|y"}},
            {"fullUrl": "urn:uuid:o1", "resource": {"resourceType": "Observation"},
             "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Provenance",
             "agent": [{"who": {"reference": "urn:uuid:dev", "display": "reportsplit"}}]},
             "request": {"method": "POST", "url": "Provenance"}}]});
        use_device(&mut bundle, "Device/7");
        let entries = bundle["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[1]["resource"]["agent"][0]["who"]["reference"],
            "Device/7"
        );
        assert!(!bundle.to_string().contains("urn:uuid:dev"));
    }

    #[test]
    fn created_observations_are_found_in_the_response_by_position() {
        let bundle = json!({"entry": [
            {"fullUrl": "urn:uuid:d"}, {"fullUrl": "urn:uuid:a"}, {"fullUrl": "urn:uuid:b"}]});
        let response = json!({"entry": [
            {"response": {"location": "Device/1/_history/1"}},
            {"response": {"location": "http://x/fhir/Observation/o1/_history/1"}},
            {"response": {"location": "Observation/o2"}}]});
        let wanted = ["urn:uuid:a".to_string(), "urn:uuid:b".to_string()];
        let refs = server_references(&bundle, &response, &wanted).unwrap();
        assert_eq!(refs, ["Observation/o1", "Observation/o2"]);
        assert!(server_references(&bundle, &json!({"entry": []}), &wanted).is_err());
    }
}

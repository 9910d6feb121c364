//! Discrepancies as DetectedIssues (issue 12, item 3).
//!
//! One `DetectedIssue` per discrepancy the core finds: `status` preliminary
//! (software found it; a person confirms), `code` the kind (a reportsplit
//! code per kind, mappings/fhir.tsv: no standard code names these report
//! defects), `patient` the report's subject when it is a Patient,
//! `implicated` the report and the finding Observations, `detail` in words,
//! the spans of the text as derivation-reference extensions and the
//! Observations as `evidence.detail`. docs/fhir-model.md shows one.

use serde_json::{Map, Value};

use super::build::{self, Concept, DetectedIssueSpec, Evidence};
use super::{Derivation, MapError, NewResource, Role};

/// Identifier system of the DetectedIssues reportsplit writes.
pub const DETECTED_ISSUE_SYSTEM: &str = "urn:reportsplit:detected-issue";

/// What one discrepancy says, ready to be written.
pub(super) struct IssueParts<'a> {
    /// `kind` part of the identifier (`laterality`...).
    pub kind: &'static str,
    pub code: &'a reportsplit_split::Code,
    pub detail: String,
    /// The finding Observations (their `fullUrl`s) the issue is about.
    pub observations: Vec<String>,
    pub evidence: Vec<Evidence>,
    /// What makes the identifier unique (spans, sides...).
    pub content: Value,
}

pub(super) fn detected_issue(
    d: &Derivation<'_>,
    parts: IssueParts<'_>,
) -> Result<NewResource, MapError> {
    let identifier = d.identifier_in(
        DETECTED_ISSUE_SYSTEM,
        &format!("issue-{}", parts.kind),
        &parts.content.to_string(),
    );
    let mut implicated = vec![d.source.reference()];
    implicated.extend(parts.observations.iter().cloned());
    let spec = DetectedIssueSpec {
        identifier: identifier.clone(),
        code: Concept::coded(parts.code),
        implicated,
        detail: parts.detail,
        evidence: parts.evidence,
        evidence_details: parts.observations,
        identified: d.run.recorded,
    };
    let json = build::detected_issue(&spec).map_err(|source| MapError::Build {
        report: d.source.reference(),
        source,
    })?;
    let resource = with_patient(json, d.source.patient())
        .ok_or_else(|| d.report_error("a built DetectedIssue is not a JSON object".into()))?;
    Ok(NewResource::owned(
        d.source,
        identifier,
        Role::Discrepancy,
        resource,
    ))
}

/// Puts the report's subject verbatim as `patient`, after `code`.
fn with_patient(json: Value, patient: Option<&Value>) -> Option<Value> {
    let Value::Object(built) = json else {
        return None;
    };
    let mut out = Map::with_capacity(built.len() + 1);
    for (key, value) in built {
        let after = key == "code";
        out.insert(key, value);
        if after && let Some(patient) = patient {
            out.insert("patient".into(), patient.clone());
        }
    }
    Some(Value::Object(out))
}

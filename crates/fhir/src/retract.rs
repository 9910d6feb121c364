//! Retraction: taking back what one reportsplit release wrote, report by
//! report, when a site finds that release wrong (`reportsplit retract`).
//!
//! What a release wrote is found by its Device and our identifiers, never by
//! guesswork: each Provenance whose agent is the release's Device names the
//! report version it read (`entity` role `source`) and the resources it
//! created, of every owned type (its `target`s that are not `revision`
//! entities: a Provenance also targets the resources it superseded, which
//! are not its own). [`written_by`] reads that from one Provenance.
//!
//! [`retract`] then plans one report's transaction with the supersession
//! that an amended report gets ([`crate::plan`]'s `rewrite_previous`, the same
//! PUT of the server's JSON with each type's superseded status (Observation
//! and DetectedIssue entered-in-error, ServiceRequest revoked, Flag
//! inactive, Communication entered-in-error; `map::owned`) and a note where
//! the type has one, the same Provenance with `revision` entities), drops
//! its Observations from the report's `result`, and removes the release's
//! tag so that the next sync
//! derives the report again. Pure: the caller reads the resources and sends
//! the transaction (with `ifMatch` on the report: a 412 means re-read and
//! plan again, so a concurrent edit survives).

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::map::{self, FhirCodes, ReportSource, RunInfo, owned};
use crate::plan::{
    PlanError, Rewrite, TAG_SYSTEM, Transaction, observation_ref, our_identifier, parse_tag,
    rewrite_previous, transaction,
};

/// What one Provenance of reportsplit says was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The id of the DiagnosticReport the Provenance's `source` entity names.
    pub report_id: String,
    /// `{Type}/{id}` of each resource of an owned type it created (its
    /// targets that are not `revision` entities), each once.
    pub created: Vec<String>,
}

/// The report and the resources a Provenance written by reportsplit
/// created; `None` when it names no DiagnosticReport as its source.
pub fn written_by(provenance: &Value) -> Option<Written> {
    let entities = provenance
        .get("entity")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let entity_ref = |role: &'static str| {
        entities
            .iter()
            .filter(move |e| e.get("role").and_then(Value::as_str) == Some(role))
            .filter_map(|e| e.pointer("/what/reference").and_then(Value::as_str))
            .filter_map(relative)
    };
    let report_id = entity_ref("source").find_map(|r| {
        r.strip_prefix("DiagnosticReport/")
            .filter(|id| map::is_fhir_id(id))
            .map(str::to_owned)
    })?;
    let revised: HashSet<String> = entity_ref("revision").collect();
    let mut seen = HashSet::new();
    let created = provenance
        .get("target")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("reference").and_then(Value::as_str))
        .filter_map(relative)
        .filter(|r| {
            r.split_once('/')
                .is_some_and(|(kind, _)| owned::owned_type(kind).is_some())
        })
        .filter(|r| !revised.contains(r) && seen.insert(r.clone()))
        .collect();
    Some(Written { report_id, created })
}

/// `Type/id` of a reference, relative or absolute, without its version.
fn relative(reference: &str) -> Option<String> {
    let plain = reference
        .split_once("/_history/")
        .map_or(reference, |(plain, _)| plain);
    let mut parts = plain.trim_end_matches('/').rsplit('/');
    let id = parts.next().filter(|id| map::is_fhir_id(id))?;
    let kind = parts
        .next()
        .filter(|k| k.chars().next().is_some_and(|c| c.is_ascii_uppercase()))?;
    Some(format!("{kind}/{id}"))
}

/// One report's retraction.
#[derive(Debug, Clone, PartialEq)]
pub struct Retraction {
    /// A Bundle of type `transaction`; the report's PUT is its last entry.
    pub bundle: Value,
    /// Resources given their type's superseded status (`{Type}/{id}`).
    pub superseded: Vec<String>,
    /// References dropped from the report's `result`.
    pub unlinked: usize,
    /// Whether the release's tag was removed from the report.
    pub untagged: bool,
}

/// Plans the retraction of what reportsplit `version` wrote for one report.
///
/// `written`: the `{Type}/{id}` references that the release's Provenances
/// name as created for this report (see [`written_by`]). `resources`: the
/// server's current JSON of the Observations linked in the report's
/// `result`, of the report's owned resources (its group tag) and of those
/// in `written` (deleted ones left out). Only resources carrying
/// reportsplit's identifier for this report are touched, whatever a
/// Provenance names.
///
/// Those of `written` that are not superseded yet are superseded as an
/// amendment supersedes them, each type with its own status; the
/// Observations of `written` leave `result`; the tag
/// is removed when it is the release's own and no other live Observation of
/// reportsplit stays linked (then the report's current derivation was the
/// release's, and the next sync derives it again; otherwise the tag belongs
/// to the Observations that stay). `Ok(None)`: nothing to change, so a rerun
/// after a retraction writes nothing.
pub fn retract(
    report: &Value,
    resources: &[Value],
    written: &HashSet<String>,
    version: &str,
    run: &RunInfo,
) -> Result<Option<Retraction>, PlanError> {
    let codes = crate::plan::builtin_codes(report)?;
    retract_with(report, resources, written, version, run, codes)
}

/// [`retract`] with a site's own code table.
pub fn retract_with(
    report: &Value,
    resources: &[Value],
    written: &HashSet<String>,
    version: &str,
    run: &RunInfo,
    codes: &FhirCodes,
) -> Result<Option<Retraction>, PlanError> {
    let source = ReportSource::read(report)?;
    // Keyed by the report's id, or by the key it was created under with its
    // resources (create mode), never another report's.
    let keys = map::report_keys(report);
    let ours: Vec<&Value> = resources
        .iter()
        .filter(|o| keys.iter().any(|key| our_identifier(o, key).is_some()))
        .collect();
    let retracted: Vec<Value> = ours
        .iter()
        .filter(|o| reference_of(o).is_some_and(|r| written.contains(&r)))
        .map(|o| (*o).clone())
        .collect();
    let retracted_refs: HashSet<String> = retracted.iter().filter_map(reference_of).collect();
    let linked: HashSet<String> = crate::plan::linked_refs(report).into_iter().collect();
    let others_live = ours
        .iter()
        .filter(|o| o.get("status").and_then(Value::as_str) != Some("entered-in-error"))
        .filter_map(|o| reference_of(o))
        .any(|r| linked.contains(&r) && !retracted_refs.contains(&r));
    let superseded = rewrite_previous(
        &source,
        &retracted,
        &HashSet::new(),
        run,
        Rewrite::Retract { version },
    )?;

    let fail = |message: &str| PlanError::Report {
        report: source.reference(),
        message: message.to_owned(),
    };
    let mut updated = report.clone();
    let object = updated
        .as_object_mut()
        .ok_or_else(|| fail("the report is not a JSON object"))?;
    let unlinked = unlink(object, &retracted_refs).map_err(fail)?;
    let untagged = !others_live && untag(object, version).map_err(fail)?;
    if superseded.is_empty() && unlinked == 0 && !untagged {
        return Ok(None);
    }
    let superseded_refs = superseded.iter().map(|s| s.reference.clone()).collect();
    let bundle = transaction(
        Transaction {
            source: &source,
            created: Vec::new(),
            superseded,
            report: updated,
            provenance_key: &format!("retract/{version}"),
        },
        run,
        codes,
    )?;
    Ok(Some(Retraction {
        bundle,
        superseded: superseded_refs,
        unlinked,
        untagged,
    }))
}

/// `{Type}/{id}` of a resource read from the server.
fn reference_of(resource: &Value) -> Option<String> {
    let kind = resource.get("resourceType").and_then(Value::as_str)?;
    let id = resource.get("id").and_then(Value::as_str)?;
    Some(format!("{kind}/{id}"))
}

/// Drops the `result` entries that reference `retracted` (any version);
/// an emptied `result` goes (FHIR allows no empty arrays). Returns how many.
fn unlink(
    object: &mut Map<String, Value>,
    retracted: &HashSet<String>,
) -> Result<usize, &'static str> {
    let Some(result) = object.get_mut("result") else {
        return Ok(0);
    };
    let list = result
        .as_array_mut()
        .ok_or("the report's `result` is not an array")?;
    let before = list.len();
    list.retain(|r| {
        !r.get("reference")
            .and_then(Value::as_str)
            .and_then(observation_ref)
            .is_some_and(|r| retracted.contains(&r))
    });
    let removed = before - list.len();
    if list.is_empty() {
        object.remove("result");
    }
    Ok(removed)
}

/// Removes reportsplit's tags of `version` from `meta.tag` (other tags stay;
/// an emptied list goes). Whether any was removed.
fn untag(object: &mut Map<String, Value>, version: &str) -> Result<bool, &'static str> {
    let Some(meta) = object.get_mut("meta") else {
        return Ok(false);
    };
    let meta = meta
        .as_object_mut()
        .ok_or("the report's `meta` is not an object")?;
    let Some(tags) = meta.get_mut("tag") else {
        return Ok(false);
    };
    let tags = tags
        .as_array_mut()
        .ok_or("the report's `meta.tag` is not an array")?;
    let before = tags.len();
    tags.retain(|coding| {
        let released_by_version = coding.get("system").and_then(Value::as_str) == Some(TAG_SYSTEM)
            && coding
                .get("code")
                .and_then(Value::as_str)
                .and_then(parse_tag)
                .is_some_and(|tag| tag.extractor_version == version);
        !released_by_version
    });
    let removed = tags.len() != before;
    if tags.is_empty() {
        meta.remove("tag");
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run() -> RunInfo {
        RunInfo {
            extractor_version: "2.0.0".into(),
            recorded: time::macros::datetime!(2026-12-06 10:00 UTC),
            writes: Default::default(),
        }
    }

    fn observation(id: &str, identifier: &str, status: &str) -> Value {
        json!({"resourceType": "Observation", "id": id, "meta": {"versionId": "1"},
               "identifier": [{"system": "urn:reportsplit:observation", "value": identifier}],
               "status": status, "code": {"text": "nodule"}})
    }

    fn report(tag_version: &str, results: &[&str]) -> Value {
        let result: Vec<Value> = results
            .iter()
            .map(|r| json!({"reference": format!("Observation/{r}")}))
            .collect();
        json!({"resourceType": "DiagnosticReport", "id": "r1", "status": "final",
               "meta": {"versionId": "3", "tag": [
                   {"system": "http://example.org/site", "code": "teaching"},
                   {"system": TAG_SYSTEM, "code": format!("{tag_version}:final:sha256:ab")}]},
               "code": {"text": "CT"}, "result": result})
    }

    fn set(refs: &[&str]) -> HashSet<String> {
        refs.iter().map(|r| format!("Observation/{r}")).collect()
    }

    #[test]
    fn a_provenance_names_its_report_and_only_what_it_created() {
        let provenance = json!({"resourceType": "Provenance",
            "target": [{"reference": "Observation/new1"},
                       {"reference": "http://x/fhir/Observation/new2/_history/1"},
                       {"reference": "Observation/old"}, {"reference": "Observation/new1"}],
            "entity": [
                {"role": "source", "what": {"reference": "DiagnosticReport/r1/_history/3"}},
                {"role": "revision", "what": {"reference": "Observation/old/_history/2"}}]});
        assert_eq!(
            written_by(&provenance),
            Some(Written {
                report_id: "r1".into(),
                created: vec!["Observation/new1".into(), "Observation/new2".into()],
            })
        );
        let no_report = json!({"resourceType": "Provenance",
            "target": [{"reference": "Observation/a"}],
            "entity": [{"role": "source", "what": {"reference": "Patient/p"}}]});
        assert_eq!(written_by(&no_report), None);
        assert_eq!(written_by(&json!({})), None);
    }

    #[test]
    fn the_release_is_superseded_unlinked_and_untagged() {
        let report = report("1.0.0", &["a", "b", "theirs"]);
        let observations = [
            observation("a", "r1/3/finding/aa", "final"),
            observation("b", "r1/3/statement/bb", "final"),
            json!({"resourceType": "Observation", "id": "theirs", "meta": {"versionId": "1"},
                   "status": "final", "code": {"text": "their own"}}),
        ];
        let plan = retract(&report, &observations, &set(&["a", "b"]), "1.0.0", &run())
            .expect("plan")
            .expect("something to do");
        assert_eq!(plan.superseded, ["Observation/a", "Observation/b"]);
        assert_eq!((plan.unlinked, plan.untagged), (2, true));
        let entries = plan.bundle["entry"].as_array().unwrap();
        // Device, two superseded Observations, Provenance, the report.
        assert_eq!(entries.len(), 5);
        assert_eq!(entries[1]["request"]["url"], "Observation/a");
        assert_eq!(entries[1]["request"]["ifMatch"], "W/\"1\"");
        assert_eq!(entries[1]["resource"]["status"], "entered-in-error");
        let note = entries[1]["resource"]["note"][0]["text"].as_str().unwrap();
        assert!(note.contains("reportsplit 1.0.0") && note.contains("retracted"));
        let provenance = &entries[3]["resource"];
        assert_eq!(provenance["entity"][1]["role"], "revision");
        assert_eq!(
            provenance["entity"][1]["what"]["reference"],
            "Observation/a/_history/1"
        );
        let updated = &entries[4];
        assert_eq!(updated["request"]["ifMatch"], "W/\"3\"");
        assert_eq!(
            updated["resource"]["result"],
            json!([{"reference": "Observation/theirs"}])
        );
        assert_eq!(
            updated["resource"]["meta"]["tag"],
            json!([{"system": "http://example.org/site", "code": "teaching"}])
        );
        // What the planner does not own stays.
        assert_eq!(updated["resource"]["code"], report["code"]);
    }

    #[test]
    fn a_rerun_after_the_retraction_has_nothing_to_do() {
        let mut report = report("1.0.0", &[]);
        report.as_object_mut().unwrap().remove("result");
        report["meta"]["tag"] = json!([{"system": "http://example.org/site", "code": "t"}]);
        let observations = [observation("a", "r1/3/finding/aa", "entered-in-error")];
        assert_eq!(
            retract(&report, &observations, &set(&["a"]), "1.0.0", &run()).unwrap(),
            None
        );
    }

    #[test]
    fn another_version_s_tag_and_observations_stay() {
        // 1.0.0 wrote a and b; 1.1.0 re-derived the report since (its c is live,
        // a and b were superseded then): retracting 1.0.0 only unlinks a and b.
        let report = report("1.1.0", &["a", "b", "c"]);
        let observations = [
            observation("a", "r1/2/finding/aa", "entered-in-error"),
            observation("b", "r1/2/finding/bb", "entered-in-error"),
            observation("c", "r1/3/finding/cc", "final"),
        ];
        let plan = retract(&report, &observations, &set(&["a", "b"]), "1.0.0", &run())
            .unwrap()
            .unwrap();
        assert!(plan.superseded.is_empty());
        assert_eq!((plan.unlinked, plan.untagged), (2, false));
        let entries = plan.bundle["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "only the report: {}", plan.bundle);
        assert_eq!(
            entries[0]["resource"]["result"],
            json!([{"reference": "Observation/c"}])
        );
        assert_eq!(entries[0]["resource"]["meta"]["tag"], report["meta"]["tag"]);
    }

    #[test]
    fn the_tag_stays_while_a_live_observation_of_the_release_is_not_retracted() {
        // Out of the retracted range: 1.0.0's later derivation (c) stays, with its tag.
        let report = report("1.0.0", &["a", "c"]);
        let observations = [
            observation("a", "r1/2/finding/aa", "final"),
            observation("c", "r1/3/finding/cc", "final"),
        ];
        let plan = retract(&report, &observations, &set(&["a"]), "1.0.0", &run())
            .unwrap()
            .unwrap();
        assert_eq!(plan.superseded, ["Observation/a"]);
        assert!(!plan.untagged);
    }

    #[test]
    fn an_observation_without_our_identifier_is_never_touched() {
        // A Provenance that names another writer's Observation does not make it ours.
        let report = report("2.5.0", &["x"]);
        let theirs = json!({"resourceType": "Observation", "id": "x", "meta": {"versionId": "4"},
            "identifier": [{"system": "urn:reportsplit:observation", "value": "other-report/1/finding/aa"}],
            "status": "final", "code": {"text": "x"}});
        let plan = retract(&report, &[theirs], &set(&["x"]), "1.0.0", &run()).unwrap();
        assert_eq!(plan, None);
    }

    #[test]
    fn a_malformed_report_is_an_error_not_a_panic() {
        let mut bad = report("1.0.0", &["a"]);
        bad["result"] = json!("not a list");
        let observations = [observation("a", "r1/3/finding/aa", "final")];
        assert!(retract(&bad, &observations, &set(&["a"]), "1.0.0", &run()).is_err());
        assert!(
            retract(
                &json!({"resourceType": "Patient"}),
                &[],
                &set(&[]),
                "1",
                &run()
            )
            .is_err()
        );
    }
}

//! Write planning: one FHIR transaction per report. Pure; the async part that
//! sends it and retries on 412 is in [`apply`].
//!
//! The transaction conditionally creates each new Observation (`ifNoneExist`
//! on its identifier), creates reportsplit's Device conditionally and one
//! Provenance, supersedes the Observations derived from an earlier text, and
//! updates the DiagnosticReport with `ifMatch` on the version read. The
//! report's update is the SERVER's JSON with exactly two changes (references
//! appended to `result`, reportsplit's tag in `meta.tag`), so every element
//! reportsplit does not own comes back byte for byte.

pub mod apply;

use std::collections::HashSet;

use reportsplit_split::Extraction;
use serde_json::{Map, Value, json};

use crate::map::build::{self, AgentSpec, NoteSpec, ProvenanceSpec};
use crate::map::{
    self, FhirCodes, Key, MapError, NewObservation, OBSERVATION_SYSTEM, ReportSource, Role,
    RunInfo, SOFTWARE_NAME,
};
use crate::pull::ReportText;

/// System of the `meta.tag` reportsplit puts on the reports it has split. Its
/// code is `{extractor version}:sha256:{hash of the text read}`.
pub const TAG_SYSTEM: &str = "urn:reportsplit:tag";
const TAG_HASH_MARK: &str = ":sha256:";

/// What to do with one report.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// The report's tag already matches this text and extractor version: nothing to write.
    Current,
    Write(WriteSet),
}

/// One transaction and what it contains.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteSet {
    /// A Bundle of type `transaction`.
    pub bundle: Value,
    /// New Observations created by the bundle (findings and statements).
    pub observations: usize,
    /// How many of them are findings (one per finding mention).
    pub findings: usize,
    /// Earlier Observations the bundle marks as superseded.
    pub superseded: usize,
    /// The `fullUrl`s (urn:uuid) appended to the report's `result`, in order.
    /// With PATCH, map them to the server's ids from the transaction response.
    pub results: Vec<String>,
    /// The tag the report gets (a Coding).
    pub tag: Value,
    /// Index in `bundle.entry` of the report's PUT (always the last entry).
    pub report_entry: usize,
}

impl WriteSet {
    /// The transaction without the report's PUT, for servers where the
    /// report is changed by [`report_patch`] instead.
    pub fn bundle_without_report(&self) -> Value {
        let mut bundle = self.bundle.clone();
        if let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut)
            && self.report_entry < entries.len()
        {
            entries.remove(self.report_entry);
        }
        bundle
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Map(#[from] MapError),
    #[error("{report}: {message}")]
    Report { report: String, message: String },
    #[error("{report}: the mapping table is invalid: {source}")]
    Mapping {
        report: String,
        #[source]
        source: reportsplit_split::MappingError,
    },
}

/// Which `result` references of this report must be read (as `previous`)
/// before planning: those that may be reportsplit's Observations from an
/// earlier text. Empty when the report was never tagged by reportsplit.
/// Only relative `Observation/{id}` references are returned (ours are always
/// relative: the server resolved our urn:uuids).
pub fn previous_refs(report: &Value) -> Vec<String> {
    if find_tag(report).is_none() {
        return Vec::new();
    }
    let mut seen = HashSet::new();
    result_refs(report)
        .filter_map(|r| r.get("reference").and_then(Value::as_str))
        .filter(|r| {
            r.strip_prefix("Observation/")
                .is_some_and(|id| map::is_fhir_id(id.split('/').next().unwrap_or("")))
        })
        .map(|r| match r.split_once("/_history/") {
            Some((plain, _)) => plain.to_owned(),
            None => r.to_owned(),
        })
        .filter(|r| seen.insert(r.clone()))
        .collect()
}

/// Plans the transaction for one report with the built-in code table.
pub fn plan(
    report: &Value,
    text: &ReportText,
    extraction: &Extraction<'_>,
    previous: &[Value],
    run: &RunInfo,
) -> Result<Plan, PlanError> {
    let codes = FhirCodes::builtin().map_err(|source| PlanError::Mapping {
        report: crate::write::report_name(report),
        source,
    })?;
    plan_with(report, text, extraction, previous, run, codes)
}

fn report_name(report: &Value) -> String {
    format!(
        "DiagnosticReport/{}",
        report.get("id").and_then(Value::as_str).unwrap_or("?")
    )
}

/// [`plan`] with a site's own code table.
pub fn plan_with(
    report: &Value,
    text: &ReportText,
    extraction: &Extraction<'_>,
    previous: &[Value],
    run: &RunInfo,
    codes: &FhirCodes,
) -> Result<Plan, PlanError> {
    let source = ReportSource::read(report)?;
    let text_sha = map::sha256_hex(text.text.as_bytes());
    let tag_code = format!("{}{TAG_HASH_MARK}{text_sha}", run.extractor_version);
    if find_tag(report).is_some_and(|(_, coding)| {
        coding.get("code").and_then(Value::as_str) == Some(tag_code.as_str())
    }) {
        return Ok(Plan::Current);
    }
    let fail = |message: String| PlanError::Report {
        report: source.reference(),
        message,
    };

    let created = map::map_extraction(&source, text, extraction, run, codes)?;
    let new_identifiers: HashSet<&str> = created
        .iter()
        .map(|o| o.identifier.value.as_str())
        .collect();
    let superseded = supersede(&source, previous, &new_identifiers, run)?;

    let mut entries: Vec<Value> = Vec::new();
    let device_ident = map::device_identifier(run);
    let device_url = map::full_url(&device_ident);
    let needs_provenance = !created.is_empty() || !superseded.is_empty();
    if needs_provenance {
        let device = map::device(run).map_err(|e| fail(e.to_string()))?;
        entries.push(json!({
            "fullUrl": device_url,
            "resource": device,
            "request": {
                "method": "POST",
                "url": "Device",
                "ifNoneExist": map::identifier_query(&device_ident),
            }
        }));
    }
    for observation in &created {
        entries.push(create_entry(observation));
    }
    for old in &superseded {
        entries.push(json!({
            "fullUrl": old.reference,
            "resource": old.resource,
            "request": {
                "method": "PUT",
                "url": old.reference,
                "ifMatch": format!("W/\"{}\"", old.version_id),
            }
        }));
    }
    if needs_provenance {
        let mut targets: Vec<String> = created.iter().map(|o| o.full_url.clone()).collect();
        targets.extend(superseded.iter().map(|o| o.reference.clone()));
        let provenance = build::provenance(&ProvenanceSpec {
            targets,
            recorded: run.recorded,
            source: source.versioned_reference(),
            revised: superseded.iter().map(|o| o.versioned_reference()).collect(),
            agent: AgentSpec {
                reference: device_url.clone(),
                identifier: device_ident.clone(),
                display: format!("{SOFTWARE_NAME} {}", run.extractor_version),
                agent_type: codes.get(Key::ProvenanceAgent),
            },
        })
        .map_err(|e| fail(e.to_string()))?;
        let provenance_ident = map::Ident {
            system: "urn:reportsplit:provenance".into(),
            value: format!("{}/{}", source.versioned_reference(), tag_code),
        };
        entries.push(json!({
            "fullUrl": map::full_url(&provenance_ident),
            "resource": provenance,
            "request": { "method": "POST", "url": "Provenance" }
        }));
    }

    let results: Vec<String> = created.iter().map(|o| o.full_url.clone()).collect();
    let tag = json!({
        "system": TAG_SYSTEM,
        "code": tag_code,
        "display": format!("split by {SOFTWARE_NAME} {}", run.extractor_version),
    });
    let updated = updated_report(report, &results, &tag).map_err(fail)?;
    entries.push(json!({
        "fullUrl": source.reference(),
        "resource": updated,
        "request": {
            "method": "PUT",
            "url": source.reference(),
            "ifMatch": format!("W/\"{}\"", source.version_id),
        }
    }));
    let report_entry = entries.len() - 1;
    Ok(Plan::Write(WriteSet {
        bundle: json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries }),
        observations: created.len(),
        findings: created.iter().filter(|o| o.role == Role::Finding).count(),
        superseded: superseded.len(),
        results,
        tag,
        report_entry,
    }))
}

fn create_entry(observation: &NewObservation) -> Value {
    json!({
        "fullUrl": observation.full_url,
        "resource": observation.resource,
        "request": {
            "method": "POST",
            "url": "Observation",
            "ifNoneExist": map::identifier_query(&observation.identifier),
        }
    })
}

fn result_refs(report: &Value) -> impl Iterator<Item = &Value> {
    report
        .get("result")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// reportsplit's tag on the report: its index in `meta.tag` and the coding.
fn find_tag(report: &Value) -> Option<(usize, &Value)> {
    report
        .pointer("/meta/tag")
        .and_then(Value::as_array)?
        .iter()
        .enumerate()
        .find(|(_, coding)| coding.get("system").and_then(Value::as_str) == Some(TAG_SYSTEM))
}

/// The server's report with `results` appended to `result` (none dropped, no
/// duplicates) and reportsplit's tag set (an older one replaced, other tags
/// untouched). Nothing else changes: key order, unknown elements, extensions
/// and decimals are the server's.
fn updated_report(report: &Value, results: &[String], tag: &Value) -> Result<Value, String> {
    let mut updated = report.clone();
    let object = updated
        .as_object_mut()
        .ok_or_else(|| "the report is not a JSON object".to_owned())?;
    if !results.is_empty() {
        let existing: HashSet<String> = results_of(object)
            .filter_map(|r| {
                r.get("reference")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        let additions: Vec<Value> = results
            .iter()
            .filter(|r| !existing.contains(*r))
            .map(|r| json!({ "reference": r }))
            .collect();
        match object.get_mut("result") {
            Some(Value::Array(list)) => list.extend(additions),
            Some(_) => return Err("the report's `result` is not an array".into()),
            None => {
                object.insert("result".into(), Value::Array(additions));
            }
        }
    }
    let meta = object
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| "the report's `meta` is not an object".to_owned())?;
    match meta.get_mut("tag") {
        Some(Value::Array(tags)) => {
            let ours = tags
                .iter()
                .position(|c| c.get("system").and_then(Value::as_str) == Some(TAG_SYSTEM));
            match ours {
                Some(index) => {
                    tags[index] = tag.clone();
                    let mut position = 0;
                    tags.retain(|c| {
                        let keep = position <= index
                            || c.get("system").and_then(Value::as_str) != Some(TAG_SYSTEM);
                        position += 1;
                        keep
                    });
                }
                None => tags.push(tag.clone()),
            }
        }
        Some(_) => return Err("the report's `meta.tag` is not an array".into()),
        None => {
            meta.insert("tag".into(), Value::Array(vec![tag.clone()]));
        }
    }
    Ok(updated)
}

fn results_of(object: &Map<String, Value>) -> impl Iterator<Item = &Value> {
    object
        .get("result")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The same change as JSON Patch operations on the report, for servers whose
/// CapabilityStatement allows PATCH: a `test` of the version read, the
/// `results` appended (give the server's `Observation/{id}` references, from
/// the response to [`WriteSet::bundle_without_report`]), and the tag set.
pub fn report_patch(report: &Value, results: &[String], tag: &Value) -> Result<Value, PlanError> {
    let source = ReportSource::read(report)?;
    let mut ops = vec![json!({
        "op": "test", "path": "/meta/versionId", "value": source.version_id,
    })];
    let existing: HashSet<&str> = result_refs(report)
        .filter_map(|r| r.get("reference").and_then(Value::as_str))
        .collect();
    let mut additions = results
        .iter()
        .filter(|r| !existing.contains(r.as_str()))
        .peekable();
    if report.get("result").is_some() {
        ops.extend(
            additions
                .map(|r| json!({ "op": "add", "path": "/result/-", "value": { "reference": r } })),
        );
    } else if additions.peek().is_some() {
        let list: Vec<Value> = additions.map(|r| json!({ "reference": r })).collect();
        ops.push(json!({ "op": "add", "path": "/result", "value": list }));
    }
    match (find_tag(report), report.pointer("/meta/tag")) {
        (Some((index, _)), _) => ops.push(json!({
            "op": "replace", "path": format!("/meta/tag/{index}"), "value": tag,
        })),
        (None, Some(_)) => ops.push(json!({ "op": "add", "path": "/meta/tag/-", "value": tag })),
        (None, None) => ops.push(json!({ "op": "add", "path": "/meta/tag", "value": [tag] })),
    }
    Ok(Value::Array(ops))
}

/// An earlier Observation of reportsplit, as it will be written back.
struct Superseded {
    /// `Observation/{id}`.
    reference: String,
    version_id: String,
    resource: Value,
}

impl Superseded {
    fn versioned_reference(&self) -> String {
        format!("{}/_history/{}", self.reference, self.version_id)
    }
}

/// The `previous` Observations reportsplit derived from an earlier text of
/// this report (identifier system and report id match) and which this plan
/// does not recreate: status `entered-in-error` plus a note saying why.
/// Nothing else in them changes; history keeps the old version, and the new
/// Provenance links to it (entity role `revision`).
fn supersede(
    source: &ReportSource<'_>,
    previous: &[Value],
    keep: &HashSet<&str>,
    run: &RunInfo,
) -> Result<Vec<Superseded>, PlanError> {
    let ours_prefix = format!("{}/", source.id);
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for observation in previous {
        if observation.get("resourceType").and_then(Value::as_str) != Some("Observation") {
            continue;
        }
        let our_identifier = observation
            .get("identifier")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|i| i.get("system").and_then(Value::as_str) == Some(OBSERVATION_SYSTEM))
            .filter_map(|i| i.get("value").and_then(Value::as_str))
            .find(|v| v.starts_with(&ours_prefix));
        let Some(identifier) = our_identifier else {
            continue;
        };
        if keep.contains(identifier)
            || observation.get("status").and_then(Value::as_str) == Some("entered-in-error")
        {
            continue;
        }
        let fail = |message: &str| PlanError::Report {
            report: source.reference(),
            message: format!("previous Observation {identifier}: {message}"),
        };
        let id = observation
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| map::is_fhir_id(id))
            .ok_or_else(|| fail("has no valid id"))?;
        if !seen.insert(id.to_owned()) {
            continue;
        }
        let version_id = observation
            .pointer("/meta/versionId")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("has no meta.versionId"))?;
        let note = build::note(&NoteSpec {
            author: format!("{SOFTWARE_NAME} {}", run.extractor_version),
            time: run.recorded,
            text: format!(
                "Superseded: {} changed since this Observation was derived from it; \
                 see the Provenance that revises this version.",
                source.reference()
            ),
        })
        .map_err(|e| fail(&e.to_string()))?;
        let mut resource = observation.clone();
        let object = resource
            .as_object_mut()
            .ok_or_else(|| fail("is not an object"))?;
        object.insert("status".into(), Value::String("entered-in-error".into()));
        match object.get_mut("note") {
            Some(Value::Array(notes)) => notes.push(note),
            Some(_) => return Err(fail("has a `note` that is not an array")),
            None => insert_note(object, note),
        }
        out.push(Superseded {
            reference: format!("Observation/{id}"),
            version_id: version_id.to_owned(),
            resource,
        });
    }
    Ok(out)
}

/// Inserts `note` where FHIR orders it (before bodySite/method/... if present).
fn insert_note(object: &mut Map<String, Value>, note: Value) {
    const AFTER_NOTE: [&str; 8] = [
        "bodySite",
        "method",
        "specimen",
        "device",
        "referenceRange",
        "hasMember",
        "derivedFrom",
        "component",
    ];
    let mut rebuilt = Map::with_capacity(object.len() + 1);
    let mut note = Some(Value::Array(vec![note]));
    for (key, value) in std::mem::take(object) {
        if AFTER_NOTE.contains(&key.as_str())
            && let Some(n) = note.take()
        {
            rebuilt.insert("note".into(), n);
        }
        rebuilt.insert(key, value);
    }
    if let Some(n) = note {
        rebuilt.insert("note".into(), n);
    }
    *object = rebuilt;
}

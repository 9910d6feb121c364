//! Write planning: one FHIR transaction per report. Pure; the async part that
//! sends it and retries on 412 is the worker's (`reportsplit`'s `apply`).
//!
//! The transaction conditionally creates each new Observation (`ifNoneExist`
//! on its identifier), creates reportsplit's Device conditionally and one
//! Provenance, supersedes the Observations derived from an earlier text, and
//! updates the DiagnosticReport with `ifMatch` on the version read. The
//! report's update is the SERVER's JSON with exactly two changes (references
//! appended to `result`, reportsplit's tag in `meta.tag`), so every element
//! reportsplit does not own comes back byte for byte. A report not stored
//! yet (no versionId; [`plan_any`] only) is created in the same transaction
//! instead, conditionally on its business identifier.

use std::collections::HashSet;

use reportsplit_split::Extraction;
use serde_json::{Map, Value, json};

use crate::map::build::{self, AgentSpec, NoteSpec, ProvenanceSpec};
use crate::map::owned::{self, OWNED_TYPES};
use crate::map::{
    self, FhirCodes, Key, MapError, ObsStatus, ReportSource, ReportStatus, Role, RunInfo,
    SOFTWARE_NAME, Storage,
};
use crate::text::ReportText;

/// System of the `meta.tag` reportsplit puts on the reports it has split. Its
/// code is `{extractor version}:{Observation status or "withdrawn"}:sha256:{hash of the text read}`.
pub const TAG_SYSTEM: &str = "urn:reportsplit:tag";
const TAG_HASH_MARK: &str = ":sha256:";
const WITHDRAWN: &str = "withdrawn";

/// What a report's tag records: the derivation its Observations come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagCode {
    pub extractor_version: String,
    /// The Observation status written, or `withdrawn`.
    status: String,
    text_sha: String,
}

impl TagCode {
    fn code(&self) -> String {
        format!(
            "{}:{}{TAG_HASH_MARK}{}",
            self.extractor_version, self.status, self.text_sha
        )
    }
}

fn tag_code(extractor_version: &str, status: ReportStatus, text_sha: &str) -> TagCode {
    TagCode {
        extractor_version: extractor_version.to_owned(),
        status: match status {
            ReportStatus::Active(status) => status.as_str().to_owned(),
            ReportStatus::Withdrawn => WITHDRAWN.to_owned(),
        },
        text_sha: text_sha.to_owned(),
    }
}

/// Reads a tag code; `None` for a code of another shape (then the report is re-derived).
pub(crate) fn parse_tag(code: &str) -> Option<TagCode> {
    let (head, text_sha) = code.rsplit_once(TAG_HASH_MARK)?;
    let (extractor_version, status) = head.rsplit_once(':')?;
    Some(TagCode {
        extractor_version: extractor_version.to_owned(),
        status: status.to_owned(),
        text_sha: text_sha.to_owned(),
    })
}

/// What to do with one report.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "one Plan per report, moved out at once; boxing would only add an allocation"
)]
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
    /// New resources of the other owned types (ServiceRequest, DetectedIssue...).
    pub others: usize,
    /// Follow-up recommendations that got no ServiceRequest because the
    /// report has no subject (R4 requires one): counted and logged by the worker.
    pub follow_ups_without_subject: usize,
    /// Critical results with no documented communication that got no Flag
    /// (nor Communication in preparation) because the report has no subject.
    pub critical_without_subject: usize,
    /// How many of them are findings (one per finding mention).
    pub findings: usize,
    /// Earlier resources (of every owned type) the bundle marks as superseded.
    pub superseded: usize,
    /// Earlier Observations that only get the report's new status (same
    /// text and extractor; e.g. preliminary → final).
    pub restatused: usize,
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
    linked_refs(report)
}

/// The searches (per owned type: the type and its query pairs, `count` per
/// page) that find every resource reportsplit wrote for this report, by the
/// report's group tag ([`owned::REPORT_TAG_SYSTEM`]); their matches are part
/// of `previous`, with those of [`previous_refs`] (Observations written by
/// versions before the group tag, found only through `result`). Empty when
/// the report was never tagged by reportsplit.
pub fn owned_searches(report: &Value, count: u32) -> Vec<(&'static str, Vec<(String, String)>)> {
    if find_tag(report).is_none() {
        return Vec::new();
    }
    let keys = map::report_keys(report);
    OWNED_TYPES
        .iter()
        .flat_map(|t| {
            keys.iter()
                .map(move |key| (t.resource_type, t.search(key, count)))
        })
        .collect()
}

/// The relative `Observation/{id}` references in the report's `result`
/// (versions dropped, each once), tagged or not.
pub fn linked_refs(report: &Value) -> Vec<String> {
    let mut seen = HashSet::new();
    result_refs(report)
        .filter_map(|r| r.get("reference").and_then(Value::as_str))
        .filter_map(observation_ref)
        .filter(|r| seen.insert(r.clone()))
        .collect()
}

/// `Observation/{id}` of a relative reference to an Observation (a version
/// dropped), or `None` for anything else.
pub(crate) fn observation_ref(reference: &str) -> Option<String> {
    let plain = reference
        .split_once("/_history/")
        .map_or(reference, |(plain, _)| plain);
    plain
        .strip_prefix("Observation/")
        .filter(|id| map::is_fhir_id(id))
        .map(|_| plain.to_owned())
}

/// Whether the report's tag already records this text, status and extractor
/// version, so that [`plan`] would answer [`Plan::Current`]. Cheap: callers
/// ask it first and skip splitting the text and reading `previous`.
pub fn is_current(report: &Value, text: &ReportText, run: &RunInfo) -> bool {
    let Ok(source) = ReportSource::read(report) else {
        return false;
    };
    let text_sha = map::sha256_hex(text.text.as_bytes());
    tag_of(report) == Some(tag_code(&run.extractor_version, source.status, &text_sha))
}

/// The parsed reportsplit tag of a report, if it has a well-formed one.
fn tag_of(report: &Value) -> Option<TagCode> {
    find_tag(report)
        .and_then(|(_, coding)| coding.get("code").and_then(Value::as_str))
        .and_then(parse_tag)
}

/// Plans the transaction for one report with the built-in code table.
pub fn plan(
    report: &Value,
    text: &ReportText,
    extraction: &Extraction<'_>,
    previous: &[Value],
    run: &RunInfo,
) -> Result<Plan, PlanError> {
    let codes = builtin_codes(report)?;
    plan_with(report, text, extraction, previous, run, codes)
}

/// The built-in code table, or the error that names `report` when it is invalid.
pub(crate) fn builtin_codes(report: &Value) -> Result<&'static FhirCodes, PlanError> {
    FhirCodes::builtin().map_err(|source| PlanError::Mapping {
        report: report_name(report),
        source,
    })
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
    plan_source(
        report,
        ReportSource::read(report)?,
        text,
        extraction,
        previous,
        run,
        codes,
    )
}

/// [`plan`] for a report that may not be stored yet (`extract --fhir`,
/// `$enrich` of a report in the body): one without `meta.versionId` gets a
/// transaction that creates it together with its Observations (see
/// [`map::Storage::New`]); one with a versionId is planned as by [`plan`].
/// The worker's own modes use [`plan`]: a report it read from a server that
/// does not version must not be created a second time.
pub fn plan_any(
    report: &Value,
    text: &ReportText,
    extraction: &Extraction<'_>,
    previous: &[Value],
    run: &RunInfo,
) -> Result<Plan, PlanError> {
    let codes = builtin_codes(report)?;
    plan_source(
        report,
        ReportSource::read_any(report)?,
        text,
        extraction,
        previous,
        run,
        codes,
    )
}

fn plan_source(
    report: &Value,
    source: ReportSource<'_>,
    text: &ReportText,
    extraction: &Extraction<'_>,
    previous: &[Value],
    run: &RunInfo,
    codes: &FhirCodes,
) -> Result<Plan, PlanError> {
    // A report not stored yet has no earlier Observations on the server.
    let previous = match source.storage {
        Storage::Stored => previous,
        Storage::New { .. } => &[],
    };
    let text_sha = map::sha256_hex(text.text.as_bytes());
    let derivation = tag_code(&run.extractor_version, source.status, &text_sha);
    let tagged = tag_of(report);
    if tagged.as_ref() == Some(&derivation) {
        return Ok(Plan::Current);
    }
    let fail = |message: String| PlanError::Report {
        report: source.reference(),
        message,
    };

    // Same text and extractor, only the report's status moved (preliminary →
    // final, final → corrected...): the Observations already there are this
    // text's; they get the new status instead of being derived again.
    let status_only = tagged.as_ref().is_some_and(|t| {
        t.extractor_version == derivation.extractor_version
            && t.text_sha == derivation.text_sha
            && t.status != WITHDRAWN
    });
    let (created, rewritten) = match (status_only, source.status) {
        (true, ReportStatus::Active(status)) => (
            Vec::new(),
            rewrite_previous(
                &source,
                previous,
                &HashSet::new(),
                run,
                Rewrite::Status(status),
            )?,
        ),
        _ => {
            let created = map::map_extraction(&source, text, extraction, run, codes)?;
            let new_identifiers: HashSet<&str> = created
                .iter()
                .map(|o| o.identifier.value.as_str())
                .collect();
            let superseded =
                rewrite_previous(&source, previous, &new_identifiers, run, Rewrite::Supersede)?;
            (created, superseded)
        }
    };
    let superseded = rewritten;
    let tag_code = derivation.code();

    let results: Vec<String> = created
        .iter()
        .filter(|o| o.is_observation())
        .map(|o| o.full_url.clone())
        .collect();
    let findings = created.iter().filter(|o| o.role == Role::Finding).count();
    let observations = results.len();
    let others = created.len() - observations;
    let follow_ups_without_subject = match (source.subject(), source.status, status_only) {
        (None, ReportStatus::Active(_), false) => extraction
            .recommendations
            .iter()
            .filter(|r| map::follow_up::wants_request(r))
            .count(),
        _ => 0,
    };
    let critical_without_subject = match (source.status, status_only) {
        (ReportStatus::Active(_), false) => {
            map::critical::unflagged(source.subject().is_some(), extraction, run.writes.critical)
        }
        _ => 0,
    };
    let restatused = superseded.iter().filter(|o| !o.superseded).count();
    let superseded_count = superseded.len() - restatused;

    let tag = json!({
        "system": TAG_SYSTEM,
        "code": tag_code,
        "display": format!("split by {SOFTWARE_NAME} {}", run.extractor_version),
    });
    let updated = updated_report(report, &results, &tag).map_err(fail)?;
    let bundle = transaction(
        Transaction {
            source: &source,
            created,
            superseded,
            report: updated,
            provenance_key: &tag_code,
        },
        run,
        codes,
    )?;
    let report_entry = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map_or(0, |e| e.len() - 1);
    Ok(Plan::Write(WriteSet {
        bundle,
        observations,
        others,
        follow_ups_without_subject,
        critical_without_subject,
        findings,
        superseded: superseded_count,
        restatused,
        results,
        tag,
        report_entry,
    }))
}

/// What one report's transaction writes, in entry order: the Device
/// (conditionally) and a Provenance when anything is created or rewritten,
/// the new Observations, the rewritten ones, and last the report.
pub(crate) struct Transaction<'a> {
    pub source: &'a ReportSource<'a>,
    pub created: Vec<map::NewResource>,
    pub superseded: Vec<Superseded>,
    /// The report as it will be PUT (with `ifMatch` on the version read).
    pub report: Value,
    /// Makes the Provenance's `fullUrl` unique to this write of this report version.
    pub provenance_key: &'a str,
}

/// The Bundle of a [`Transaction`]; the report's PUT is its last entry.
pub(crate) fn transaction(
    write: Transaction<'_>,
    run: &RunInfo,
    codes: &FhirCodes,
) -> Result<Value, PlanError> {
    let Transaction {
        source,
        created,
        superseded,
        report,
        provenance_key,
    } = write;
    let fail = |message: String| PlanError::Report {
        report: source.reference(),
        message,
    };
    let mut entries: Vec<Value> = Vec::with_capacity(created.len() + superseded.len() + 3);
    let device_ident = map::device_identifier(run);
    let device_url = map::full_url(&device_ident);
    let provenance = if !created.is_empty() || !superseded.is_empty() {
        let mut targets: Vec<String> = created.iter().map(|o| o.full_url.clone()).collect();
        targets.extend(superseded.iter().map(|o| o.reference.clone()));
        let spec = ProvenanceSpec {
            targets,
            recorded: run.recorded,
            source: source.versioned_reference(),
            revised: superseded
                .iter()
                .map(Superseded::versioned_reference)
                .collect(),
            agent: AgentSpec {
                reference: device_url.clone(),
                identifier: device_ident.clone(),
                display: format!("{SOFTWARE_NAME} {}", run.extractor_version),
                agent_type: codes.get(Key::ProvenanceAgent),
            },
        };
        let device = map::device(run).map_err(|e| fail(e.to_string()))?;
        entries.push(entry(
            Some(device_url),
            device,
            conditional_create("Device", &device_ident),
        ));
        Some(build::provenance(&spec).map_err(|e| fail(e.to_string()))?)
    } else {
        None
    };
    // Without a business identifier, a report not stored yet cannot be
    // matched on replay, and neither can its Observations (another report
    // with the same text would share their identifiers): plain creates.
    let conditional = !matches!(
        source.storage,
        Storage::New {
            identifier: None,
            ..
        }
    );
    // A replay of a create-mode bundle must not add a second Provenance:
    // it is created unless one already targets this derivation's first
    // Observation (whose identifier is unique to it).
    let first_observation = created.iter().find(|o| o.is_observation());
    let provenance_condition = match (&source.storage, first_observation) {
        (
            Storage::New {
                identifier: Some(_),
                ..
            },
            Some(first),
        ) => Some(format!(
            "target:Observation.{}",
            map::identifier_query(&first.identifier)
        )),
        _ => None,
    };
    for resource in created {
        let resource_type = resource.resource_type().to_owned();
        let request = match owned::owned_type(&resource_type) {
            Some(owned) if conditional => json!({
                "method": "POST",
                "url": resource_type,
                "ifNoneExist": owned.none_exist(&resource.identifier),
            }),
            _ => json!({ "method": "POST", "url": resource_type }),
        };
        entries.push(entry(Some(resource.full_url), resource.resource, request));
    }
    for old in superseded {
        let request = update(&old.reference, &old.version_id);
        entries.push(entry(None, old.resource, request));
    }
    if let Some(provenance) = provenance {
        let provenance_ident = map::Ident {
            system: "urn:reportsplit:provenance".into(),
            value: format!("{}/{}", source.versioned_reference(), provenance_key),
        };
        let request = match &provenance_condition {
            Some(condition) => {
                json!({ "method": "POST", "url": "Provenance", "ifNoneExist": condition })
            }
            None => json!({ "method": "POST", "url": "Provenance" }),
        };
        entries.push(entry(
            Some(map::full_url(&provenance_ident)),
            provenance,
            request,
        ));
    }
    let mut report = report;
    match &source.storage {
        Storage::Stored => entries.push(entry(
            None,
            report,
            update(&source.reference(), &source.version_id),
        )),
        Storage::New {
            full_url,
            identifier,
        } => {
            // The server assigns the id of what it creates.
            if let Some(object) = report.as_object_mut() {
                object.remove("id");
            }
            let request = match identifier {
                Some(identifier) => conditional_create("DiagnosticReport", identifier),
                None => json!({ "method": "POST", "url": "DiagnosticReport" }),
            };
            entries.push(entry(Some(full_url.clone()), report, request));
        }
    }
    let mut bundle = Map::with_capacity(3);
    bundle.insert("resourceType".into(), Value::from("Bundle"));
    bundle.insert("type".into(), Value::from("transaction"));
    bundle.insert("entry".into(), Value::Array(entries));
    Ok(Value::Object(bundle))
}

/// A Bundle entry. Built by moving the resource in (the `json!` macro would
/// serialise it again). Updates carry no `fullUrl`: it must be absolute, and
/// the request url says what is updated.
fn entry(full_url: Option<String>, resource: Value, request: Value) -> Value {
    let mut entry = Map::with_capacity(3);
    if let Some(full_url) = full_url {
        entry.insert("fullUrl".into(), Value::String(full_url));
    }
    entry.insert("resource".into(), resource);
    entry.insert("request".into(), request);
    Value::Object(entry)
}

fn conditional_create(resource_type: &str, identifier: &map::Ident) -> Value {
    json!({
        "method": "POST",
        "url": resource_type,
        "ifNoneExist": map::identifier_query(identifier),
    })
}

/// A version-aware update: 412 if the resource changed since it was read.
fn update(url: &str, version_id: &str) -> Value {
    json!({ "method": "PUT", "url": url, "ifMatch": format!("W/\"{version_id}\"") })
}

pub(crate) fn result_refs(report: &Value) -> impl Iterator<Item = &Value> {
    report
        .get("result")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// reportsplit's tag on the report: its index in `meta.tag` and the coding.
pub(crate) fn find_tag(report: &Value) -> Option<(usize, &Value)> {
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
    match report.pointer("/meta/tag") {
        Some(Value::Array(tags)) => {
            let is_ours = |c: &Value| c.get("system").and_then(Value::as_str) == Some(TAG_SYSTEM);
            match tags.iter().position(is_ours) {
                Some(index) => {
                    ops.push(json!({
                        "op": "replace", "path": format!("/meta/tag/{index}"), "value": tag,
                    }));
                    // Further reportsplit tags (left by a server that merges
                    // tags) are removed from the end, so indexes stay valid.
                    let extra: Vec<usize> = (index + 1..tags.len())
                        .filter(|&i| is_ours(&tags[i]))
                        .collect();
                    ops.extend(
                        extra
                            .into_iter()
                            .rev()
                            .map(|i| json!({ "op": "remove", "path": format!("/meta/tag/{i}") })),
                    );
                }
                None => ops.push(json!({ "op": "add", "path": "/meta/tag/-", "value": tag })),
            }
        }
        Some(_) => {
            return Err(PlanError::Report {
                report: source.reference(),
                message: "the report's `meta.tag` is not an array".into(),
            });
        }
        None => ops.push(json!({ "op": "add", "path": "/meta/tag", "value": [tag] })),
    }
    Ok(Value::Array(ops))
}

/// An earlier resource of reportsplit, as it will be written back.
pub(crate) struct Superseded {
    /// `{Type}/{id}`.
    pub reference: String,
    version_id: String,
    resource: Value,
    /// Superseded (`entered-in-error`), or only given the report's new status.
    superseded: bool,
}

impl Superseded {
    fn versioned_reference(&self) -> String {
        format!("{}/_history/{}", self.reference, self.version_id)
    }
}

/// What happens to the earlier resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rewrite<'a> {
    /// The text, extractor or status changed them away: each type's
    /// superseded status ([`owned::OwnedType::superseded_status`]) plus a note
    /// saying why where the type has `note`.
    Supersede,
    /// The release (extractor version) that derived them is withdrawn
    /// (`reportsplit retract`): superseded the same way, with its own note.
    Retract { version: &'a str },
    /// Same derivation, new report status: Observations take it; the other
    /// types keep theirs (a follow-up stays a draft proposal, a detected
    /// issue stays preliminary).
    Status(ObsStatus),
}

impl Rewrite<'_> {
    /// The note a superseded Observation gets, or `None` for a status change.
    fn note(self, report: &str) -> Option<String> {
        match self {
            Rewrite::Supersede => Some(format!(
                "Superseded: {report} changed since this resource was derived from it; \
                 see the Provenance that revises this version."
            )),
            Rewrite::Retract { version } => Some(format!(
                "Superseded: {SOFTWARE_NAME} {version}, which derived this resource from \
                 {report}, was retracted; see the Provenance that revises this version."
            )),
            Rewrite::Status(_) => None,
        }
    }
}

/// The values of a resource's identifiers in reportsplit's system for its
/// type (none for a type reportsplit does not write).
fn our_identifiers(resource: &Value) -> impl Iterator<Item = &str> {
    owned::owned_type_of(resource)
        .into_iter()
        .flat_map(|t| t.identifiers(resource))
}

/// The value of reportsplit's identifier of a resource derived from the
/// report `report_id` (system and report id match), if it has one.
pub(crate) fn our_identifier<'o>(observation: &'o Value, report_id: &str) -> Option<&'o str> {
    our_identifiers(observation).find(|v| {
        v.strip_prefix(report_id)
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// reportsplit's identifier of an Observation created together with its
/// report (create mode: `{key}/new/...`), whatever the report's id became.
fn created_identifier(observation: &Value) -> Option<&str> {
    our_identifiers(observation).find(|v| created_with_its_report(v))
}

/// The `previous` resources reportsplit derived from this report (an owned
/// type, its identifier system and report id match), not recreated by this
/// plan and not already superseded, with their new status. Nothing else in
/// them changes (the server's JSON is edited); history keeps the old
/// version, and the new Provenance links to it (entity role `revision`).
pub(crate) fn rewrite_previous(
    source: &ReportSource<'_>,
    previous: &[Value],
    keep: &HashSet<&str>,
    run: &RunInfo,
    rewrite: Rewrite<'_>,
) -> Result<Vec<Superseded>, PlanError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for observation in previous {
        let Some(owned) = owned::owned_type_of(observation) else {
            continue;
        };
        // Ours for this report, or created with it before it had an id
        // (linked from this report's `result`, or carrying the group tag of
        // its create-mode key: where `previous` comes from).
        let Some(identifier) =
            our_identifier(observation, &source.id).or_else(|| created_identifier(observation))
        else {
            continue;
        };
        let status = observation.get("status").and_then(Value::as_str);
        let new_status = match (rewrite, owned.resource_type) {
            (Rewrite::Supersede | Rewrite::Retract { .. }, _) => owned.superseded_status,
            (Rewrite::Status(status), "Observation") => status.as_str(),
            (Rewrite::Status(_), _) => continue,
        };
        // `entered-in-error` ends every type's life, whatever its own superseded status.
        if keep.contains(identifier)
            || status == Some(owned.superseded_status)
            || status == Some("entered-in-error")
            || status == Some(new_status)
        {
            continue;
        }
        let fail = |message: &str| PlanError::Report {
            report: source.reference(),
            message: format!("previous {} {identifier}: {message}", owned.resource_type),
        };
        let id = observation
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| map::is_fhir_id(id))
            .ok_or_else(|| fail("has no valid id"))?;
        if !seen.insert(format!("{}/{id}", owned.resource_type)) {
            continue;
        }
        let version_id = observation
            .pointer("/meta/versionId")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("has no meta.versionId"))?;
        let mut resource = observation.clone();
        let object = resource
            .as_object_mut()
            .ok_or_else(|| fail("is not an object"))?;
        object.insert("status".into(), Value::String(new_status.into()));
        if let Some(text) = rewrite.note(&source.reference()).filter(|_| owned.has_note) {
            let note = build::note(&NoteSpec {
                author: format!("{SOFTWARE_NAME} {}", run.extractor_version),
                time: run.recorded,
                text,
            })
            .map_err(|e| fail(&e.to_string()))?;
            match object.get_mut("note") {
                Some(Value::Array(notes)) => notes.push(note),
                Some(_) => return Err(fail("has a `note` that is not an array")),
                None => insert_note(object, note),
            }
        }
        out.push(Superseded {
            reference: format!("{}/{id}", owned.resource_type),
            version_id: version_id.to_owned(),
            resource,
            superseded: !matches!(rewrite, Rewrite::Status(_)),
        });
    }
    Ok(out)
}

/// An identifier `{key}/new/...`: the Observation was created in the same
/// transaction as the report (create mode), before the server gave the
/// report its id, so its key is not the id. It is in this report's `result`
/// (where `previous` comes from), so it is this report's.
fn created_with_its_report(identifier: &str) -> bool {
    identifier.split('/').nth(1) == Some(map::NEW_VERSION)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::OBSERVATION_SYSTEM;

    #[test]
    fn tag_codes_round_trip() {
        let code = tag_code("1.2.3", ReportStatus::Active(ObsStatus::Final), "ab12");
        assert_eq!(code.code(), "1.2.3:final:sha256:ab12");
        assert_eq!(parse_tag(&code.code()), Some(code));
        let withdrawn = tag_code("1", ReportStatus::Withdrawn, "ff");
        assert_eq!(withdrawn.code(), "1:withdrawn:sha256:ff");
        // codes of an older shape or another tool's are not ours: re-derive
        assert_eq!(parse_tag("1.2.3:sha256"), None);
        assert_eq!(parse_tag("whatever"), None);
    }

    #[test]
    fn a_note_goes_where_fhir_orders_it() {
        let mut object = match json!({"resourceType": "Observation", "status": "final",
                                      "code": {"text": "x"}, "bodySite": {"text": "lung"},
                                      "component": []})
        {
            Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        };
        insert_note(&mut object, json!({"text": "n"}));
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "resourceType",
                "status",
                "code",
                "note",
                "bodySite",
                "component"
            ]
        );
        let mut bare = Map::new();
        insert_note(&mut bare, json!({"text": "n"}));
        assert_eq!(Value::Object(bare), json!({"note": [{"text": "n"}]}));
    }

    #[test]
    fn observations_created_with_their_report_are_superseded_with_it() {
        let source_json = json!({"resourceType": "DiagnosticReport", "id": "srv-7",
                                 "meta": {"versionId": "2"}, "status": "amended"});
        let source = ReportSource::read(&source_json).expect("a report");
        let observation = |id: &str, value: &str| {
            json!({"resourceType": "Observation", "id": id, "meta": {"versionId": "1"},
                   "status": "final", "code": {"text": "x"},
                   "identifier": [{"system": OBSERVATION_SYSTEM, "value": value}]})
        };
        let previous = [
            // created in create mode, before the server named the report
            observation("a", "i-0123456789abcdef0123/new/finding/aa"),
            // derived from version 1 of this report
            observation("b", "srv-7/1/finding/bb"),
            // another report's
            observation("c", "other/1/finding/cc"),
        ];
        let run = RunInfo {
            extractor_version: "1".into(),
            recorded: time::macros::datetime!(2026-12-01 10:00 UTC),
            writes: Default::default(),
        };
        let rewritten = rewrite_previous(
            &source,
            &previous,
            &HashSet::new(),
            &run,
            Rewrite::Supersede,
        )
        .expect("rewrite");
        let references: Vec<&str> = rewritten.iter().map(|o| o.reference.as_str()).collect();
        assert_eq!(references, ["Observation/a", "Observation/b"]);
    }

    #[test]
    fn previous_refs_skip_foreign_and_contained_references() {
        let report = json!({
            "resourceType": "DiagnosticReport", "id": "r",
            "meta": {"versionId": "2", "tag": [{"system": TAG_SYSTEM, "code": "1:final:sha256:aa"}]},
            "result": [
                {"reference": "Observation/a"},
                {"reference": "Observation/a/_history/3"},
                {"reference": "#contained"},
                {"reference": "http://elsewhere.example/fhir/Observation/b"},
                {"display": "no reference"},
                {"reference": "Observation/c"}
            ]
        });
        assert_eq!(previous_refs(&report), ["Observation/a", "Observation/c"]);
    }
}

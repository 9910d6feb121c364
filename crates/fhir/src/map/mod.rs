//! Map: an [`Extraction`] of a report's text to the FHIR R4 resources
//! reportsplit creates. Pure: no I/O, no clock (the time comes in [`RunInfo`]).
//!
//! Per finding one Observation (code = the finding concept, value =
//! present/absent/possible, bodySite = the first site, components for
//! laterality, certainty, hedge, further sites, descriptors, size, change and
//! temporality; a diagnosis is `derivedFrom` the observations offered as
//! evidence for it); per impression item, findings sentence and recommendation a
//! statement-level Observation whose `hasMember` lists its findings; per
//! laterality discrepancy an Observation linking both findings. Critical
//! results mark their finding with a critical interpretation. The model is
//! documented in docs/fhir-model.md.
//!
//! Identifiers are derived from the report id, its version, a hash of the
//! text, the extractor version and the finding's position and content, so a
//! rerun of the same plan never duplicates (conditional create on the
//! identifier) and any new text or extractor yields new identifiers.

pub mod build;
pub mod codes;
pub mod critical;
pub mod follow_up;
pub mod issue;
pub mod owned;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use reportsplit_split::{
    Assertion, Assessment, Certainty, Extraction, Finding, Laterality, Measurement, SectionKind,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use build::{BuildError, Ident, ObsStatus};
use build::{ComponentSpec, Concept, Decimal, Evidence, ObservationSpec, QuantitySpec, ValueSpec};
pub use codes::{FhirCodes, Key};

use crate::text::ReportText;

/// Identifier system of the Observations reportsplit creates.
pub const OBSERVATION_SYSTEM: &str = "urn:reportsplit:observation";
/// Identifier system of the Device that stands for reportsplit in Provenance.
pub const DEVICE_SYSTEM: &str = "urn:reportsplit:device";
/// Name of the software in Device and Provenance.
pub const SOFTWARE_NAME: &str = "reportsplit";

/// Facts about the run that the mapping records (passed in: the core has no clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// Version of reportsplit's extractor; recorded in the report's tag, the
    /// Device and the identifiers, so a new extractor re-derives everything.
    pub extractor_version: String,
    /// When the resources are recorded (Provenance.recorded).
    pub recorded: time::OffsetDateTime,
    /// Which resource types besides the Observations the run writes
    /// (config `[write]`).
    pub writes: Writes,
}

/// The resource types a run writes besides the Observations and the
/// Provenance (config `[write]`; all on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writes {
    /// Follow-up recommendations as ServiceRequests.
    pub service_requests: bool,
    /// Discrepancies as DetectedIssues.
    pub detected_issues: bool,
    /// Critical results' Communications and Flags.
    pub critical: critical::CriticalWrites,
}

impl Default for Writes {
    fn default() -> Self {
        Writes {
            service_requests: true,
            detected_issues: true,
            critical: critical::CriticalWrites::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("{report}: {message}")]
    Report { report: String, message: String },
    #[error("{report}: {source}")]
    Build {
        report: String,
        #[source]
        source: BuildError,
    },
}

/// What the mapping needs from the report, read from the server's JSON
/// (never through the typed model, which would rewrite it).
#[derive(Debug, Clone)]
pub struct ReportSource<'r> {
    /// The report's id; for a report not stored yet, the key its
    /// Observations' identifiers are built on (see [`ReportSource::read_any`]).
    pub id: Cow<'r, str>,
    /// `meta.versionId`; [`NEW_VERSION`] for a report not stored yet.
    pub version_id: Cow<'r, str>,
    pub status: ReportStatus,
    /// Stored (updated with If-Match) or not stored yet (created with its Observations).
    pub storage: Storage,
    /// Elements copied verbatim into every Observation: subject, encounter,
    /// `effective[x]`, issued (with their primitive extensions).
    verbatim: Vec<(&'static str, &'r Value)>,
    /// `imagingStudy` references, copied into Observation.derivedFrom.
    studies: Vec<&'r Value>,
}

/// The versionId part of the identifiers of a report not stored yet.
pub const NEW_VERSION: &str = "new";

/// Whether the report is on the server already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Read from the server (it has `meta.versionId`): updated with If-Match.
    Stored,
    /// On its way to the server (an interface engine enriching it, no
    /// `meta.versionId`): created in the same transaction as its Observations.
    New {
        /// `urn:uuid:` of the report in the transaction; the Observations and
        /// the Provenance refer to it.
        full_url: String,
        /// The report's first business identifier: the report and every
        /// resource is created conditionally on it, so a replayed bundle
        /// creates nothing twice. `None`: plain creates (a replay duplicates).
        identifier: Option<Ident>,
    },
}

/// DiagnosticReport.status, and what it means for the Observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStatus {
    /// The report has content: Observations get this status.
    Active(ObsStatus),
    /// cancelled / entered-in-error: nothing is derived, earlier
    /// Observations are superseded.
    Withdrawn,
}

const VERBATIM: [&str; 7] = [
    "subject",
    "encounter",
    "effectiveDateTime",
    "_effectiveDateTime",
    "effectivePeriod",
    "issued",
    "_issued",
];

impl<'r> ReportSource<'r> {
    /// Reads id, version and status; a report without them is an error, not
    /// a panic. A report without `meta.versionId` cannot be updated safely
    /// and is refused: the worker only writes reports it read from the server.
    pub fn read(report: &'r Value) -> Result<ReportSource<'r>, MapError> {
        ReportSource::read_as(report, false)
    }

    /// [`ReportSource::read`], but a report without `meta.versionId` (one
    /// not stored yet, as an interface engine holds it) is read as
    /// [`Storage::New`]: its key is a hash of its first business identifier
    /// (`system|value`), else its id, else `new`; its id is not needed.
    pub fn read_any(report: &'r Value) -> Result<ReportSource<'r>, MapError> {
        ReportSource::read_as(report, true)
    }

    fn read_as(report: &'r Value, allow_new: bool) -> Result<ReportSource<'r>, MapError> {
        let fail = |report: &str, message: &str| MapError::Report {
            report: report.to_owned(),
            message: message.to_owned(),
        };
        if report.get("resourceType").and_then(Value::as_str) != Some("DiagnosticReport") {
            return Err(fail("(report)", "not a DiagnosticReport"));
        }
        let given_id = report
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_fhir_id(id));
        let stored_version = report.pointer("/meta/versionId");
        let (id, version_id, storage) = if allow_new && stored_version.is_none() {
            let identifier = business_identifier(report);
            let key = match (&identifier, given_id) {
                (Some(ident), _) => Cow::Owned(new_report_key(ident)),
                (None, Some(id)) => Cow::Borrowed(id),
                (None, None) => Cow::Borrowed(NEW_VERSION),
            };
            let full_url = full_url(&Ident {
                system: NEW_REPORT_SYSTEM.to_owned(),
                value: key.to_string(),
            });
            (
                key,
                Cow::Borrowed(NEW_VERSION),
                Storage::New {
                    full_url,
                    identifier,
                },
            )
        } else {
            let id =
                given_id.ok_or_else(|| fail("DiagnosticReport/?", "the report has no valid id"))?;
            let name = format!("DiagnosticReport/{id}");
            let version_id = stored_version
                .and_then(Value::as_str)
                .filter(|v| is_fhir_id(v))
                .ok_or_else(|| {
                    fail(
                        &name,
                        "the report has no meta.versionId: it cannot be updated safely (If-Match)",
                    )
                })?;
            (
                Cow::Borrowed(id),
                Cow::Borrowed(version_id),
                Storage::Stored,
            )
        };
        let name = format!("DiagnosticReport/{id}");
        let status = match report.get("status").and_then(Value::as_str) {
            Some("registered") => ReportStatus::Active(ObsStatus::Registered),
            Some("partial" | "preliminary") => ReportStatus::Active(ObsStatus::Preliminary),
            Some("final") => ReportStatus::Active(ObsStatus::Final),
            // `appended` is a kind of amendment; Observation has no such status.
            Some("amended" | "appended") => ReportStatus::Active(ObsStatus::Amended),
            Some("corrected") => ReportStatus::Active(ObsStatus::Corrected),
            Some("unknown") => ReportStatus::Active(ObsStatus::Unknown),
            Some("cancelled" | "entered-in-error") => ReportStatus::Withdrawn,
            Some(other) => {
                return Err(fail(&name, &format!("unknown status `{other}`")));
            }
            None => return Err(fail(&name, "the report has no status")),
        };
        let verbatim = VERBATIM
            .iter()
            .filter_map(|&key| report.get(key).map(|value| (key, value)))
            .filter(|(_, value)| !is_local_reference(value))
            .collect();
        let studies = report
            .get("imagingStudy")
            .and_then(Value::as_array)
            .map(|refs| refs.iter().filter(|r| !is_local_reference(r)).collect())
            .unwrap_or_default();
        Ok(ReportSource {
            id,
            version_id,
            status,
            storage,
            verbatim,
            studies,
        })
    }

    /// The report's `subject` (copied verbatim), if it has a usable one.
    pub fn subject(&self) -> Option<&'r Value> {
        self.verbatim_element("subject")
    }

    /// The report's `subject` when it is a Patient (DetectedIssue.patient
    /// may only name a Patient); a reference without a type is not assumed to be one.
    pub fn patient(&self) -> Option<&'r Value> {
        self.subject().filter(|subject| {
            subject.get("type").and_then(Value::as_str) == Some("Patient")
                || subject
                    .get("reference")
                    .and_then(Value::as_str)
                    .is_some_and(|r| r.starts_with("Patient/") || r.contains("/Patient/"))
        })
    }

    pub fn encounter(&self) -> Option<&'r Value> {
        self.verbatim_element("encounter")
    }

    fn verbatim_element(&self, name: &str) -> Option<&'r Value> {
        self.verbatim
            .iter()
            .find(|(key, _)| *key == name)
            .map(|&(_, value)| value)
    }

    /// The day the report's findings are from: `effectiveDateTime`, else the
    /// start of `effectivePeriod`, else `issued` (its date part as written,
    /// so the report's own time zone is kept). `None` when none has a full date.
    pub fn effective_date(&self) -> Option<time::Date> {
        let day = |value: Option<&Value>| {
            let text = value?.as_str()?;
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(text.get(..10)?, format).ok()
        };
        day(self.verbatim_element("effectiveDateTime"))
            .or_else(|| day(self.verbatim_element("effectivePeriod")?.get("start")))
            .or_else(|| day(self.verbatim_element("issued")))
    }

    /// `DiagnosticReport/{id}`; for a report not stored yet, its `urn:uuid:`.
    pub fn reference(&self) -> String {
        match &self.storage {
            Storage::Stored => format!("DiagnosticReport/{}", self.id),
            Storage::New { full_url, .. } => full_url.clone(),
        }
    }

    /// `DiagnosticReport/{id}/_history/{versionId}`: the exact text the
    /// offsets point into. A report not stored yet has one version, the one
    /// the transaction creates: its `urn:uuid:`.
    pub fn versioned_reference(&self) -> String {
        match &self.storage {
            Storage::Stored => {
                format!("DiagnosticReport/{}/_history/{}", self.id, self.version_id)
            }
            Storage::New { full_url, .. } => full_url.clone(),
        }
    }
}

/// The key of a report created with its resources (create mode), from its
/// first business identifier: `i-` and 20 hex digits of its hash.
fn new_report_key(identifier: &Ident) -> String {
    let hash = sha256_hex(format!("{}|{}", identifier.system, identifier.value).as_bytes());
    format!("i-{}", &hash[..20])
}

/// Every key the resources written for this stored report may carry in
/// their group tag: its id, and the create-mode key of its first business
/// identifier (resources created together with the report, before the
/// server gave it its id).
pub fn report_keys(report: &Value) -> Vec<String> {
    let mut keys: Vec<String> = report
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| is_fhir_id(id))
        .map(str::to_owned)
        .into_iter()
        .collect();
    keys.extend(business_identifier(report).map(|i| new_report_key(&i)));
    keys
}

/// Identifier system of the `urn:uuid:` of a report not stored yet (never written).
const NEW_REPORT_SYSTEM: &str = "urn:reportsplit:new-report";

/// The report's first identifier with a system and a value.
fn business_identifier(report: &Value) -> Option<Ident> {
    report
        .get("identifier")
        .and_then(Value::as_array)?
        .iter()
        .find_map(|i| {
            let system = i.get("system").and_then(Value::as_str)?;
            let value = i.get("value").and_then(Value::as_str)?;
            (!system.is_empty() && !value.is_empty()).then(|| Ident {
                system: system.to_owned(),
                value: value.to_owned(),
            })
        })
}

/// A reference to a contained resource (`#x`) cannot be copied out of the report.
fn is_local_reference(value: &Value) -> bool {
    value
        .get("reference")
        .and_then(Value::as_str)
        .is_some_and(|r| r.starts_with('#'))
}

/// FHIR `id`: `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// What a created resource is, for counts and ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Finding,
    Statement,
    Recommendation,
    Discrepancy,
    /// A structured assessment category (BI-RADS, Lung-RADS...).
    Assessment,
    /// A follow-up recommendation's ServiceRequest.
    FollowUp,
    /// A critical result's Communication or Flag.
    Critical,
}

/// One resource to create (an Observation, or another [`owned::OwnedType`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewResource {
    /// `urn:uuid:` (UUID v5 of the identifier), used by hasMember,
    /// Provenance.target and DiagnosticReport.result before the server assigns an id.
    pub full_url: String,
    pub identifier: Ident,
    pub role: Role,
    /// The resource's JSON, marked with the report's group tag ([`owned::mark_owned`]).
    pub resource: Value,
}

impl NewResource {
    /// A resource of an owned type, marked with the group tag of `source`.
    pub fn owned(
        source: &ReportSource<'_>,
        identifier: Ident,
        role: Role,
        resource: Value,
    ) -> NewResource {
        NewResource {
            full_url: full_url(&identifier),
            resource: owned::mark_owned(resource, &source.id, &identifier),
            identifier,
            role,
        }
    }

    /// `resourceType` of the resource.
    pub fn resource_type(&self) -> &str {
        self.resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// Whether it is an Observation (only those may go into `DiagnosticReport.result`).
    pub fn is_observation(&self) -> bool {
        self.resource_type() == "Observation"
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Deterministic `urn:uuid:` for an identifier (UUID v5 in reportsplit's namespace).
pub fn full_url(ident: &Ident) -> String {
    let namespace = Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:reportsplit");
    let name = format!("{}|{}", ident.system, ident.value);
    format!("urn:uuid:{}", Uuid::new_v5(&namespace, name.as_bytes()))
}

/// The FHIR search value `system|value` for `identifier=` (search escaping of `\ | , $`).
pub fn identifier_query(ident: &Ident) -> String {
    format!(
        "identifier={}|{}",
        escape_search(&ident.system),
        escape_search(&ident.value)
    )
}

pub(crate) fn escape_search(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '|' | ',' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The Device identifier of this reportsplit version.
pub fn device_identifier(run: &RunInfo) -> Ident {
    Ident {
        system: DEVICE_SYSTEM.to_owned(),
        value: format!("{SOFTWARE_NAME}/{}", run.extractor_version),
    }
}

/// The Device standing for this reportsplit version, as JSON.
pub fn device(run: &RunInfo) -> Result<Value, BuildError> {
    build::device(&build::DeviceSpec {
        identifier: device_identifier(run),
        name: SOFTWARE_NAME.to_owned(),
        version: run.extractor_version.clone(),
    })
}

/// Everything identifiers of one mapping share.
struct Derivation<'a> {
    source: &'a ReportSource<'a>,
    text: &'a ReportText,
    text_sha: &'a str,
    run: &'a RunInfo,
    codes: &'a FhirCodes,
    status: ObsStatus,
}

impl Derivation<'_> {
    /// `{report id}/{version}/{kind}/{hash}`: readable, and unique per report
    /// version, text, extractor and content.
    fn identifier(&self, kind: &str, content: &str) -> Ident {
        self.identifier_in(OBSERVATION_SYSTEM, kind, content)
    }

    /// [`Derivation::identifier`] in another type's identifier system.
    fn identifier_in(&self, system: &str, kind: &str, content: &str) -> Ident {
        let seed = format!(
            "{}\n{}\n{}\n{}\n{kind}\n{content}",
            self.source.id, self.source.version_id, self.text_sha, self.run.extractor_version
        );
        let hash = sha256_hex(seed.as_bytes());
        Ident {
            system: system.to_owned(),
            value: format!(
                "{}/{}/{kind}/{}",
                self.source.id,
                self.source.version_id,
                &hash[..20]
            ),
        }
    }

    fn evidence(&self, start: usize, end: usize) -> Evidence {
        Evidence {
            reference: self.source.versioned_reference(),
            path: self.text.element.clone(),
            offset: start,
            length: end.saturating_sub(start),
        }
    }

    fn report_error(&self, message: String) -> MapError {
        MapError::Report {
            report: self.source.reference(),
            message,
        }
    }

    fn finish(&self, spec: &ObservationSpec<'_>, role: Role) -> Result<NewResource, MapError> {
        let json = build::observation(spec).map_err(|source| MapError::Build {
            report: self.source.reference(),
            source,
        })?;
        let resource = with_report_elements(json, self.source)
            .ok_or_else(|| self.report_error("a built Observation is not a JSON object".into()))?;
        Ok(NewResource::owned(
            self.source,
            spec.identifier.clone(),
            role,
            resource,
        ))
    }
}

/// Adds the report's elements verbatim after `code` (subject, encounter,
/// `effective[x]`, issued) and its studies as `derivedFrom`, keeping FHIR's
/// element order.
fn with_report_elements(json: Value, source: &ReportSource<'_>) -> Option<Value> {
    let Value::Object(built) = json else {
        return None;
    };
    let mut out = Map::with_capacity(built.len() + source.verbatim.len() + 1);
    let mut studies: Option<Vec<Value>> =
        (!source.studies.is_empty()).then(|| source.studies.iter().map(|&s| s.clone()).collect());
    for (key, value) in built {
        if key == "derivedFrom" {
            // The report's studies first, then the Observations this one
            // was inferred from (already in the built JSON).
            let mut all = studies.take().unwrap_or_default();
            match value {
                Value::Array(refs) => all.extend(refs),
                other => all.push(other),
            }
            out.insert(key, Value::Array(all));
            continue;
        }
        if key == "component"
            && let Some(studies) = studies.take()
        {
            out.insert("derivedFrom".into(), Value::Array(studies));
        }
        let after_code = key == "code";
        out.insert(key, value);
        if after_code {
            for &(name, value) in &source.verbatim {
                out.insert(name.to_owned(), value.clone());
            }
        }
    }
    if let Some(studies) = studies {
        out.insert("derivedFrom".into(), Value::Array(studies));
    }
    Some(Value::Object(out))
}

/// Maps one extraction to the Observations to create, in text order:
/// findings first, then statements, recommendations and discrepancies.
/// Withdrawn reports (cancelled, entered-in-error) yield none.
pub fn map_extraction(
    source: &ReportSource<'_>,
    text: &ReportText,
    extraction: &Extraction<'_>,
    run: &RunInfo,
    codes: &FhirCodes,
) -> Result<Vec<NewResource>, MapError> {
    let ReportStatus::Active(status) = source.status else {
        return Ok(Vec::new());
    };
    let text_sha = sha256_hex(text.text.as_bytes());
    let derivation = Derivation {
        source,
        text,
        text_sha: &text_sha,
        run,
        codes,
        status,
    };
    let text_chars = text.text.chars().count();

    let findings = &extraction.findings;
    // Specs first, then the `derivedFrom` links between them: a diagnosis
    // can come before the observations it is offered for ("colitis, with
    // wall thickening"), and identifiers do not depend on references, so
    // every finding's fullUrl is known before any Observation is built.
    let mut specs: Vec<Option<ObservationSpec<'_>>> = Vec::with_capacity(findings.len());
    for (index, finding) in findings.iter().enumerate() {
        let within = |start: usize, end: usize| start <= end && end <= text_chars;
        let spans_ok = within(finding.start, finding.end)
            && within(finding.term_start, finding.term_end)
            && finding.measurements.iter().all(|m| within(m.start, m.end))
            && finding.body_site.iter().all(|s| within(s.start, s.end))
            && finding.descriptors.iter().all(|s| within(s.start, s.end));
        if !spans_ok {
            return Err(derivation.report_error(format!(
                "finding {index} spans {}..{} beyond the text ({text_chars} characters)",
                finding.start, finding.end
            )));
        }
        if let Some(bad) = finding.suggests.iter().find(|&&s| s >= findings.len()) {
            return Err(derivation.report_error(format!(
                "finding {index} suggests finding {bad}, which does not exist"
            )));
        }
        let mark = if extraction.critical.iter().any(|c| c.finding == index) {
            Mark::Critical
        } else if extraction.actionable.iter().any(|c| c.finding == index) {
            Mark::Actionable
        } else {
            Mark::None
        };
        let suggested_by: Vec<&Finding<'_>> = findings
            .iter()
            .enumerate()
            .filter(|&(j, f)| j != index && f.suggests.contains(&index))
            .map(|(_, f)| f)
            .collect();
        specs.push(finding_spec(&derivation, finding, mark, &suggested_by));
    }
    let urls: Vec<Option<String>> = specs
        .iter()
        .map(|spec| spec.as_ref().map(|s| full_url(&s.identifier)))
        .collect();
    for (index, spec) in specs.iter_mut().enumerate() {
        let Some(spec) = spec else { continue };
        let own = full_url(&spec.identifier);
        for (j, finding) in findings.iter().enumerate() {
            if j == index || !finding.suggests.contains(&index) {
                continue;
            }
            if let Some(url) = &urls[j]
                && *url != own
                && !spec.derived_from.contains(url)
            {
                spec.derived_from.push(url.clone());
            }
        }
    }

    let mut out: Vec<NewResource> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    // Index of each finding's Observation in `out` (None when skipped).
    let mut finding_obs: Vec<Option<usize>> = Vec::with_capacity(findings.len());
    for spec in &specs {
        let Some(spec) = spec else {
            finding_obs.push(None);
            continue;
        };
        if seen.insert(spec.identifier.value.clone()) {
            finding_obs.push(Some(out.len()));
            out.push(derivation.finish(spec, Role::Finding)?);
        } else {
            finding_obs.push(out.iter().position(|o| o.identifier == spec.identifier));
        }
    }
    let member = |index: usize| finding_obs[index].map(|i| out[i].full_url.clone());

    let groups = statement_groups(extraction, &text.text);
    let mut grouped: Vec<NewResource> = Vec::new();
    // The statement Observation of each recommendation, by its span.
    let mut recommendation_urls: BTreeMap<(usize, usize), String> = BTreeMap::new();
    for group in groups.values() {
        let members: Vec<String> = group.findings.iter().filter_map(|&i| member(i)).collect();
        if group.start > group.end || group.end > text_chars {
            return Err(derivation.report_error(format!(
                "a statement spans {}..{} beyond the text ({text_chars} characters)",
                group.start, group.end
            )));
        }
        if members.is_empty() && fhir_string(group.text).is_none() {
            continue;
        }
        let observation = match group.kind {
            GroupKind::Statement(section) => {
                statement_observation(&derivation, section, group, members)?
            }
            GroupKind::Recommendation(days) => {
                let observation = recommendation_observation(&derivation, group, days, members)?;
                recommendation_urls.insert((group.start, group.end), observation.full_url.clone());
                observation
            }
        };
        if seen.insert(observation.identifier.value.clone()) {
            grouped.push(observation);
        }
    }
    let mut requests: Vec<NewResource> = Vec::new();
    for recommendation in &extraction.recommendations {
        if !run.writes.service_requests || !follow_up::wants_request(recommendation) {
            continue;
        }
        if let Some(bad) = recommendation
            .reasons
            .iter()
            .find(|&&i| i >= findings.len())
        {
            return Err(derivation.report_error(format!(
                "a recommendation follows from finding {bad}, which does not exist"
            )));
        }
        let reasons: Vec<String> = recommendation
            .reasons
            .iter()
            .filter_map(|&i| member(i))
            .collect();
        let body_site = recommendation
            .reasons
            .iter()
            .find_map(|&i| findings[i].body_site.first())
            .and_then(|site| concept_text(site.code, site.text));
        let statement = recommendation_urls
            .get(&(recommendation.start, recommendation.end))
            .cloned();
        if let Some(request) =
            follow_up::service_request(&derivation, recommendation, reasons, statement, body_site)?
            && seen.insert(request.identifier.value.clone())
        {
            requests.push(request);
        }
    }
    for discrepancy in &extraction.discrepancies {
        let indexes: Vec<usize> = discrepancy
            .findings_finding
            .into_iter()
            .chain(discrepancy.impression_finding)
            .collect();
        let spans = discrepancy_spans(discrepancy);
        if (indexes.is_empty() && spans.is_empty()) || indexes.iter().any(|&i| i >= findings.len())
        {
            return Err(derivation
                .report_error("a discrepancy points at a finding that does not exist".into()));
        }
        if spans
            .iter()
            .any(|&(start, end)| start > end || end > text_chars)
        {
            return Err(derivation.report_error(format!(
                "a discrepancy's evidence spans beyond the text ({text_chars} characters)"
            )));
        }
        if !run.writes.detected_issues {
            continue;
        }
        let members: Vec<String> = indexes.iter().filter_map(|&i| member(i)).collect();
        let stated: Vec<&Finding<'_>> = indexes.iter().map(|&i| &findings[i]).collect();
        let issue = discrepancy_issue(&derivation, discrepancy, &stated, members)?;
        if seen.insert(issue.identifier.value.clone()) {
            requests.push(issue);
        }
    }
    for resource in
        critical::critical_resources(&derivation, extraction, member, run.writes.critical)?
    {
        if seen.insert(resource.identifier.value.clone()) {
            requests.push(resource);
        }
    }
    for (index, assessment) in extraction.assessments.iter().enumerate() {
        let site_ok = assessment
            .body_site
            .as_ref()
            .is_none_or(|s| s.start <= s.end && s.end <= text_chars);
        if assessment.start > assessment.end || assessment.end > text_chars || !site_ok {
            return Err(derivation.report_error(format!(
                "assessment {index} spans {}..{} beyond the text ({text_chars} characters)",
                assessment.start, assessment.end
            )));
        }
        let members: Vec<String> = assessed_findings(findings, assessment)
            .into_iter()
            .filter_map(member)
            .collect();
        let observation = assessment_observation(&derivation, assessment, members)?;
        if seen.insert(observation.identifier.value.clone()) {
            grouped.push(observation);
        }
    }
    out.extend(grouped);
    // Observations first (they go into the report's `result`), then the
    // other types, which refer to them.
    out.extend(requests);
    Ok(out)
}

/// The findings an assessment is about (its `hasMember`): those whose
/// sentence or impression item states it ("Spiculated mass in the left
/// breast, BI-RADS 5"); when none does ("Left breast: BI-RADS 4A" on a line
/// of its own), the findings of the same side that are present or possible
/// (a bilateral statement on either side matches every sided one). An
/// assessment with neither stands alone: a guess would link it to the wrong
/// lesion.
fn assessed_findings(findings: &[Finding<'_>], assessment: &Assessment<'_>) -> Vec<usize> {
    let same_statement: Vec<usize> = findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.start <= assessment.start && assessment.start < f.end.max(f.start + 1))
        .map(|(i, _)| i)
        .collect();
    if !same_statement.is_empty() {
        return same_statement;
    }
    let Some(side) = assessment.laterality else {
        return Vec::new();
    };
    findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.assertion != Assertion::Absent)
        .filter(|(_, f)| {
            f.laterality.is_some_and(|own| {
                own == side || own == Laterality::Bilateral || side == Laterality::Bilateral
            })
        })
        .map(|(i, _)| i)
        .collect()
}

/// The system's name as the extractor writes it ("BI-RADS").
fn assessment_system_name(assessment: &Assessment<'_>) -> String {
    match serde_json::to_value(assessment.system) {
        Ok(Value::String(name)) => name,
        _ => format!("{:?}", assessment.system),
    }
}

/// The reportsplit code of a category that has no verified public code
/// (`assessment-lirads-lr-5`): stable, readable, and never mistaken for a
/// standard concept.
fn local_category_code(assessment: &Assessment<'_>) -> reportsplit_split::Code {
    let name = assessment_system_name(assessment);
    let slug = |text: &str| -> String {
        text.chars()
            .filter_map(|c| match c {
                'a'..='z' | '0'..='9' => Some(c),
                'A'..='Z' => Some(c.to_ascii_lowercase()),
                '-' | ' ' | '.' => Some('-'),
                _ => None,
            })
            .collect()
    };
    reportsplit_split::Code {
        system: codes::LOCAL_SYSTEM.to_owned(),
        code: format!(
            "assessment-{}-{}",
            slug(&name).replace('-', ""),
            slug(&assessment.category)
        ),
        display: format!("{name} {}", assessment.category),
    }
}

/// One structured assessment: code = the system, value = the category
/// (its verified code, else a reportsplit code; text = the words as
/// written), bodySite and laterality as on findings, `hasMember` = the
/// findings it assesses.
fn assessment_observation(
    d: &Derivation<'_>,
    assessment: &Assessment<'_>,
    members: Vec<String>,
) -> Result<NewResource, MapError> {
    let local = local_category_code(assessment);
    let category = assessment.code.unwrap_or(&local);
    let site = assessment.body_site.as_ref();
    let content = serde_json::json!({
        "system": assessment.system,
        "category": assessment.category,
        "code": [&category.system, &category.code],
        "span": [assessment.start, assessment.end],
        "section": assessment.section,
        "laterality": assessment.laterality,
        "site": site.map(|s| serde_json::json!([s.text, s.code.map(|c| [&c.system, &c.code]), s.start, s.end])),
        "members": members,
    });
    let components = assessment
        .laterality
        .map(|side| ComponentSpec {
            code: Concept::coded(d.codes.get(Key::ComponentLaterality)),
            value: ValueSpec::Concept(Concept::coded(d.codes.laterality(side))),
            evidence: None,
        })
        .into_iter()
        .collect();
    let spec = ObservationSpec {
        identifier: d.identifier("assessment", &content.to_string()),
        status: d.status,
        category: d.codes.get(Key::CategoryImaging),
        code: Concept::coded(d.codes.assessment(assessment.system)),
        code_evidence: None,
        value: Some(ValueSpec::Concept(Concept {
            codings: vec![category],
            text: fhir_string(assessment.text),
        })),
        body_site: site.and_then(|s| concept_text(s.code, s.text)),
        body_site_evidence: site.map(|s| d.evidence(s.start, s.end)),
        interpretation: Vec::new(),
        components,
        has_member: members,
        derived_from: Vec::new(),
        evidence: d.evidence(assessment.start, assessment.end),
    };
    d.finish(&spec, Role::Assessment)
}

/// A FHIR `string` from report text: trimmed, control characters FHIR forbids
/// (below U+0020 except tab, CR, LF) replaced by spaces, `None` when empty
/// (FHIR strings cannot be empty; a strict server rejects the transaction).
pub fn fhir_string(text: &str) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| {
        trimmed
            .chars()
            .map(|c| {
                if c < ' ' && !matches!(c, '\t' | '\n' | '\r') {
                    ' '
                } else {
                    c
                }
            })
            .collect()
    })
}

/// A CodeableConcept with the words used; `None` when it would be empty.
fn concept_text<'a>(code: Option<&'a reportsplit_split::Code>, text: &str) -> Option<Concept<'a>> {
    let concept = Concept {
        codings: code.into_iter().collect(),
        text: fhir_string(text),
    };
    (!concept.codings.is_empty() || concept.text.is_some()).then_some(concept)
}

/// How a finding must reach the referrer: a critical result (ACR category 1
/// or 2), an actionable, non-urgent one (category 3), or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Critical,
    Actionable,
    None,
}

/// The Observation of one finding, without its `derivedFrom` (filled in by
/// the caller once every finding's identifier is known). `None` when the
/// finding has neither a concept nor words: nothing a consumer could use.
/// `suggested_by` are the findings offered as evidence for this one; their
/// term spans are part of the identity, so a changed reading of "suggestive
/// of" gets a new identifier.
fn finding_spec<'a>(
    d: &Derivation<'a>,
    finding: &Finding<'a>,
    mark: Mark,
    suggested_by: &[&Finding<'a>],
) -> Option<ObservationSpec<'a>> {
    let code = concept_text(finding.code, finding.term)?;
    let codes = d.codes;
    let mut components = Vec::new();
    if let Some(side) = finding.laterality {
        components.push(ComponentSpec {
            code: Concept::coded(codes.get(Key::ComponentLaterality)),
            value: ValueSpec::Concept(Concept::coded(codes.laterality(side))),
            evidence: None,
        });
    }
    if let Some(certainty) = finding.certainty {
        components.push(certainty_component(d, certainty));
    }
    if let Some(hedge) = finding.hedge {
        components.push(ComponentSpec {
            code: Concept::coded(codes.get(Key::ComponentHedge)),
            value: ValueSpec::Concept(Concept::coded(codes.hedge(hedge))),
            evidence: None,
        });
    }
    // R4 has one bodySite (the first site named); the others are components
    // so that every located-at site stays coded and queryable.
    for site in finding.body_site.iter().skip(1) {
        if let Some(value) = concept_text(site.code, site.text) {
            components.push(ComponentSpec {
                code: Concept::coded(codes.get(Key::ComponentFindingSite)),
                value: ValueSpec::Concept(value),
                evidence: Some(d.evidence(site.start, site.end)),
            });
        }
    }
    // One component per descriptor, coded by its axis, valued with the words
    // as written: descriptor vocabularies differ by modality and site, and
    // the words are what a reader (or a later coder) needs.
    for descriptor in &finding.descriptors {
        if let Some(words) = fhir_string(descriptor.text) {
            components.push(ComponentSpec {
                code: Concept::coded(codes.descriptor(descriptor.axis)),
                value: ValueSpec::Concept(Concept {
                    codings: Vec::new(),
                    text: Some(words),
                }),
                evidence: Some(d.evidence(descriptor.start, descriptor.end)),
            });
        }
    }
    for measurement in &finding.measurements {
        components.push(size_component(d, measurement));
    }
    if let Some(change) = finding.change {
        components.push(ComponentSpec {
            code: Concept::coded(codes.get(Key::ComponentChange)),
            value: ValueSpec::Concept(Concept::coded(codes.change(change))),
            evidence: None,
        });
    }
    components.push(ComponentSpec {
        code: Concept::coded(codes.get(Key::ComponentTemporality)),
        value: ValueSpec::Concept(Concept::coded(codes.temporality(finding.temporality))),
        evidence: None,
    });
    let code_of =
        |c: Option<&reportsplit_split::Code>| c.map(|c| [c.system.clone(), c.code.clone()]);
    let mut content = serde_json::json!({
        "span": [finding.start, finding.end, finding.term_start, finding.term_end],
        "section": finding.section,
        "item": finding.item,
        "code": code_of(finding.code),
        "assertion": finding.assertion,
        "certainty": finding.certainty,
        "hedge": finding.hedge,
        "temporality": finding.temporality,
        "change": finding.change,
        "laterality": finding.laterality,
        "sites": finding
            .body_site
            .iter()
            .map(|s| serde_json::json!([s.text, code_of(s.code), s.start, s.end]))
            .collect::<Vec<_>>(),
        "descriptors": finding
            .descriptors
            .iter()
            .map(|s| serde_json::json!([s.text, s.axis, s.start, s.end]))
            .collect::<Vec<_>>(),
        "sizes": finding.measurements.iter().map(|m| [m.start, m.end]).collect::<Vec<_>>(),
        "suggested_by": suggested_by
            .iter()
            .map(|f| [f.term_start, f.term_end])
            .collect::<Vec<_>>(),
        "critical": mark == Mark::Critical,
    });
    // Only an actionable finding's identity names it, so the identifiers of
    // every other finding stay those earlier releases wrote.
    if mark == Mark::Actionable {
        content["actionable"] = serde_json::Value::Bool(true);
    }
    let first_site = finding.body_site.first();
    Some(ObservationSpec {
        identifier: d.identifier("finding", &content.to_string()),
        status: d.status,
        category: codes.get(Key::CategoryImaging),
        code,
        code_evidence: Some(d.evidence(finding.term_start, finding.term_end)),
        value: Some(ValueSpec::Concept(Concept::coded(
            codes.assertion(finding.assertion),
        ))),
        body_site: first_site.and_then(|site| concept_text(site.code, site.text)),
        body_site_evidence: first_site.map(|site| d.evidence(site.start, site.end)),
        interpretation: match mark {
            Mark::Critical => vec![codes.get(Key::InterpretationCritical)],
            Mark::Actionable => vec![codes.get(Key::InterpretationActionable)],
            Mark::None => Vec::new(),
        },
        components,
        has_member: Vec::new(),
        derived_from: Vec::new(),
        evidence: d.evidence(finding.start, finding.end),
    })
}

/// How sure a possible finding is, in percent: the extractor's grades are
/// defined as ~75% (probable), ~50% (even chance) and ~25% (less likely).
fn certainty_component<'a>(d: &Derivation<'a>, certainty: Certainty) -> ComponentSpec<'a> {
    let percent: u8 = match certainty {
        Certainty::High => 75,
        Certainty::Moderate => 50,
        Certainty::Low => 25,
    };
    ComponentSpec {
        code: Concept::coded(d.codes.get(Key::ComponentCertainty)),
        value: ValueSpec::Quantity(QuantitySpec {
            value: Decimal {
                value: f64::from(percent),
                literal: Some(percent.to_string()),
            },
            unit: "%".to_owned(),
        }),
        evidence: None,
    }
}

/// One size component per measurement, valued with the largest dimension in
/// the unit as written (digits kept); the measurement as written is the
/// code's text, so every dimension stays readable.
fn size_component<'a>(d: &Derivation<'a>, m: &Measurement<'_>) -> ComponentSpec<'a> {
    let size = d.codes.get(Key::ComponentSize);
    let numbers = number_literals(m.text);
    let (index, max) =
        m.values
            .iter()
            .copied()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (i, v)| {
                if v > best.1 { (i, v) } else { best }
            });
    let literal = (numbers.len() == m.values.len())
        .then(|| numbers.get(index).map(|s| (*s).to_owned()))
        .flatten();
    ComponentSpec {
        code: Concept {
            codings: vec![size],
            text: fhir_string(&format!("{} ({})", size.display, m.text)),
        },
        value: ValueSpec::Quantity(QuantitySpec {
            value: Decimal {
                value: if max.is_finite() { max } else { 0.0 },
                literal,
            },
            unit: m.unit.to_owned(),
        }),
        evidence: Some(d.evidence(m.start, m.end)),
    }
}

/// The numbers in a measurement as written: `1.9 x 1.80 cm` → `["1.9", "1.80"]`.
fn number_literals(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            out.push(&text[start..i]);
        } else {
            i += 1;
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum GroupKind {
    Statement(SectionKind),
    /// A recommendation, with its follow-up interval in days.
    Recommendation(Option<u32>),
}

/// A statement-level Observation: an impression item, a sentence carrying
/// findings, or a recommendation.
#[derive(Debug, Clone)]
struct Group<'t> {
    kind: GroupKind,
    text: &'t str,
    start: usize,
    end: usize,
    findings: Vec<usize>,
}

/// Groups findings into statements, keyed by span (text order): impression
/// findings by their numbered item, findings inside a recommendation by that
/// recommendation, others by their sentence. Every impression item gets a
/// statement, with or without findings, and so does an impression without
/// items or findings ("Normal study.").
fn statement_groups<'t>(
    extraction: &Extraction<'t>,
    text: &'t str,
) -> BTreeMap<(usize, usize, u8), Group<'t>> {
    let mut groups: BTreeMap<(usize, usize, u8), Group<'t>> = BTreeMap::new();
    for section in &extraction.sections {
        if section.kind != SectionKind::Impression {
            continue;
        }
        for item in &section.items {
            groups.entry((item.start, item.end, 0)).or_insert(Group {
                kind: GroupKind::Statement(SectionKind::Impression),
                text: item.text,
                start: item.start,
                end: item.end,
                findings: Vec::new(),
            });
        }
    }
    for recommendation in &extraction.recommendations {
        groups
            .entry((recommendation.start, recommendation.end, 1))
            .or_insert(Group {
                kind: GroupKind::Recommendation(recommendation.interval_days),
                text: recommendation.text,
                start: recommendation.start,
                end: recommendation.end,
                findings: Vec::new(),
            });
    }
    for (index, finding) in extraction.findings.iter().enumerate() {
        let item = (finding.section == SectionKind::Impression)
            .then(|| {
                extraction
                    .sections
                    .iter()
                    .filter(|s| s.kind == SectionKind::Impression)
                    .flat_map(|s| &s.items)
                    .find(|i| i.start <= finding.start && finding.start < i.end.max(i.start + 1))
            })
            .flatten();
        let recommendation = (finding.section == SectionKind::Recommendation)
            .then(|| {
                extraction
                    .recommendations
                    .iter()
                    .find(|r| r.start <= finding.start && finding.end <= r.end)
            })
            .flatten();
        let key = if let Some(item) = item {
            (item.start, item.end, 0)
        } else if let Some(r) = recommendation {
            (r.start, r.end, 1)
        } else {
            (finding.start, finding.end, 0)
        };
        groups
            .entry(key)
            .or_insert(Group {
                kind: GroupKind::Statement(finding.section),
                text: finding.text,
                start: finding.start,
                end: finding.end,
                findings: Vec::new(),
            })
            .findings
            .push(index);
    }
    for section in &extraction.sections {
        let empty_impression = section.kind == SectionKind::Impression
            && section.items.is_empty()
            && !groups.values().any(|g| {
                g.kind == GroupKind::Statement(SectionKind::Impression)
                    && section.start <= g.start
                    && g.end <= section.end
            });
        if empty_impression && let Some((start, end, body)) = body_of(text, section) {
            groups.entry((start, end, 0)).or_insert(Group {
                kind: GroupKind::Statement(SectionKind::Impression),
                text: body,
                start,
                end,
                findings: Vec::new(),
            });
        }
    }
    groups
}

/// The trimmed body of a section and its char span, if not empty.
fn body_of<'t>(
    text: &'t str,
    section: &reportsplit_split::Section<'_>,
) -> Option<(usize, usize, &'t str)> {
    let body = char_slice(text, section.body_start, section.body_end)?;
    let leading = body.chars().take_while(|c| c.is_whitespace()).count();
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return None;
    }
    let start = section.body_start + leading;
    Some((start, start + trimmed.chars().count(), trimmed))
}

/// Cuts a char range out of a text; `None` when it is out of bounds.
pub fn char_slice(text: &str, start: usize, end: usize) -> Option<&str> {
    if start > end {
        return None;
    }
    let mut indices = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()));
    let from = indices.nth(start)?;
    let to = if end == start {
        from
    } else {
        indices.nth(end - start - 1)?
    };
    text.get(from..to)
}

fn statement_observation(
    d: &Derivation<'_>,
    section: SectionKind,
    group: &Group<'_>,
    members: Vec<String>,
) -> Result<NewResource, MapError> {
    let content = serde_json::json!({
        "span": [group.start, group.end],
        "section": section,
        "members": members,
    });
    let spec = ObservationSpec {
        identifier: d.identifier("statement", &content.to_string()),
        status: d.status,
        category: d.codes.get(Key::CategoryImaging),
        code: Concept::coded(d.codes.statement(section)),
        code_evidence: None,
        value: fhir_string(group.text).map(ValueSpec::String),
        body_site: None,
        body_site_evidence: None,
        interpretation: Vec::new(),
        components: Vec::new(),
        has_member: members,
        derived_from: Vec::new(),
        evidence: d.evidence(group.start, group.end),
    };
    d.finish(&spec, Role::Statement)
}

fn recommendation_observation(
    d: &Derivation<'_>,
    group: &Group<'_>,
    days: Option<u32>,
    members: Vec<String>,
) -> Result<NewResource, MapError> {
    let content = serde_json::json!({
        "span": [group.start, group.end],
        "days": days,
        "members": members,
    });
    let components = days
        .map(|days| ComponentSpec {
            code: Concept::coded(d.codes.get(Key::ComponentFollowupInterval)),
            value: ValueSpec::Quantity(QuantitySpec {
                value: Decimal {
                    value: f64::from(days),
                    literal: Some(days.to_string()),
                },
                unit: "d".to_owned(),
            }),
            evidence: None,
        })
        .into_iter()
        .collect();
    let spec = ObservationSpec {
        identifier: d.identifier("recommendation", &content.to_string()),
        status: d.status,
        category: d.codes.get(Key::CategoryImaging),
        code: Concept::coded(d.codes.get(Key::Recommendation)),
        code_evidence: None,
        value: fhir_string(group.text).map(ValueSpec::String),
        body_site: None,
        body_site_evidence: None,
        interpretation: Vec::new(),
        components,
        has_member: members,
        derived_from: Vec::new(),
        evidence: d.evidence(group.start, group.end),
    };
    d.finish(&spec, Role::Recommendation)
}

fn side_name(side: reportsplit_split::Laterality) -> &'static str {
    match side {
        reportsplit_split::Laterality::Left => "left",
        reportsplit_split::Laterality::Right => "right",
        reportsplit_split::Laterality::Bilateral => "bilateral",
    }
}

/// A discrepancy as a DetectedIssue implicating the report and the
/// findings' Observations, with their sentences as evidence. `stated`: the
/// finding in Findings, then the one in Impression (either may be absent).
fn discrepancy_issue(
    d: &Derivation<'_>,
    discrepancy: &reportsplit_split::Discrepancy<'_>,
    stated: &[&Finding<'_>],
    members: Vec<String>,
) -> Result<NewResource, MapError> {
    use reportsplit_split::DiscrepancyKind;
    let spans = discrepancy_spans(discrepancy);
    let mut content = serde_json::json!({
        "kind": discrepancy.kind,
        "terms": stated.iter().map(|f| [f.term_start, f.term_end]).collect::<Vec<_>>(),
        "sides": [discrepancy.findings_side, discrepancy.impression_side],
    });
    // What the text was checked against is part of the issue: another
    // Patient sex or order is another issue.
    if let Some(against) = &discrepancy.against
        && let Value::Object(object) = &mut content
    {
        object.insert(
            "against".into(),
            serde_json::to_value(against).unwrap_or(Value::Null),
        );
    }
    let (kind, key, detail) = match discrepancy.kind {
        DiscrepancyKind::Laterality => (
            "laterality",
            Key::DiscrepancyLaterality,
            format!(
                "{}: {} in Findings, {} in Impression",
                discrepancy.term,
                discrepancy.findings_side.map_or("unstated", side_name),
                discrepancy.impression_side.map_or("unstated", side_name)
            ),
        ),
        DiscrepancyKind::SectionAbsent => {
            let in_findings = discrepancy
                .findings_finding
                .and_then(|_| stated.first())
                .is_some_and(|f| f.assertion == Assertion::Present);
            let (present, absent) = if in_findings {
                ("Findings", "Impression")
            } else {
                ("Impression", "Findings")
            };
            (
                "section-absent",
                Key::DiscrepancySectionAbsent,
                format!(
                    "{}: present in {present}, stated absent in {absent}",
                    discrepancy.term
                ),
            )
        }
        DiscrepancyKind::FollowUpMissing => (
            "followup-missing",
            Key::DiscrepancyFollowUpMissing,
            format!(
                "{}: no follow-up is recommended, where Fleischner Society (solid pulmonary \
                 nodule of 6 mm or more) or ACR incidental-findings guidance expects one",
                discrepancy.term
            ),
        ),
        DiscrepancyKind::Sex => ("sex", Key::DiscrepancySex, against_detail(discrepancy)),
        DiscrepancyKind::Age => ("age", Key::DiscrepancyAge, against_detail(discrepancy)),
        DiscrepancyKind::Order => ("order", Key::DiscrepancyOrder, against_detail(discrepancy)),
    };
    // An order mismatch names its sentences (in text order, its findings'
    // among them); the other kinds, their findings' sentences.
    let evidence: Vec<Evidence> = if spans.is_empty() {
        stated.iter().map(|f| d.evidence(f.start, f.end)).collect()
    } else {
        spans
            .iter()
            .map(|&(start, end)| d.evidence(start, end))
            .collect()
    };
    issue::detected_issue(
        d,
        issue::IssueParts {
            kind,
            code: d.codes.get(key),
            detail: fhir_string(&detail).unwrap_or(detail),
            observations: members,
            evidence,
            content,
        },
    )
}

/// The text spans (chars) a discrepancy names besides its findings: an
/// order mismatch's sentences.
fn discrepancy_spans(discrepancy: &reportsplit_split::Discrepancy<'_>) -> Vec<(usize, usize)> {
    match &discrepancy.against {
        Some(reportsplit_split::Against::Order { evidence, .. }) => {
            evidence.iter().map(|said| (said.start, said.end)).collect()
        }
        _ => Vec::new(),
    }
}

/// The words of a sex, age or order discrepancy's `detail`.
fn against_detail(discrepancy: &reportsplit_split::Discrepancy<'_>) -> String {
    use reportsplit_split::{Against, Sex};
    let sex_name = |sex: Sex| match sex {
        Sex::Female => "female",
        Sex::Male => "male",
    };
    match &discrepancy.against {
        Some(Against::Sex {
            sex,
            anatomy_sex,
            anatomy,
        }) => format!(
            "{}: {anatomy} is {} anatomy, and the patient's recorded sex is {}; check that \
             the report is this patient's",
            discrepancy.term,
            sex_name(*anatomy_sex),
            sex_name(*sex)
        ),
        Some(Against::Age {
            age,
            min_age,
            max_age,
        }) => {
            let age_words = if age.at_least == age.at_most {
                format!("{} years", age.at_least)
            } else {
                format!("{}-{} years", age.at_least, age.at_most)
            };
            let range = match (min_age, max_age) {
                (Some(min), Some(max)) => format!("between {min} and {max} years"),
                (Some(min), None) => format!("from {min} years"),
                (None, Some(max)) => format!("up to {max} years"),
                (None, None) => "at any age".to_owned(),
            };
            format!(
                "{}: occurs {range} of age, and the patient was {age_words} old on the \
                 report's date; check that the report is this patient's",
                discrepancy.term
            )
        }
        Some(Against::Order {
            ordered,
            ordered_side,
            described_side,
            ordered_region,
            described_region,
            ..
        }) => {
            let mut said = Vec::new();
            if let (Some(ordered_side), Some(described_side)) = (ordered_side, described_side) {
                said.push(format!(
                    "the {} side was ordered, the report describes the {} side",
                    side_name(*ordered_side),
                    side_name(*described_side)
                ));
            }
            if let (Some(ordered_region), Some(described_region)) =
                (ordered_region, described_region)
            {
                said.push(format!(
                    "the {ordered_region} was ordered, the report describes the {described_region}"
                ));
            }
            format!("Ordered \"{ordered}\": {}", said.join("; "))
        }
        None => discrepancy.term.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reportsplit_split::{Assertion, Item, Section, Temporality};
    use serde_json::json;

    fn report(status: &str) -> Value {
        json!({"resourceType": "DiagnosticReport", "id": "r1", "meta": {"versionId": "7"},
               "status": status, "subject": {"reference": "#contained-patient"},
               "issued": "2026-01-02T03:04:05.600+02:00"})
    }

    fn run() -> RunInfo {
        RunInfo {
            extractor_version: "1.2.3".into(),
            recorded: time::macros::datetime!(2026-11-28 06:00 UTC),
            writes: Default::default(),
        }
    }

    fn text(t: &str) -> ReportText {
        ReportText {
            text: t.into(),
            element: "DiagnosticReport.conclusion".into(),
            headerless: SectionKind::Impression,
        }
    }

    fn section<'a>(kind: SectionKind, t: &str, items: Vec<Item<'a>>) -> Section<'a> {
        let end = t.chars().count();
        Section {
            kind,
            title: None,
            code: None,
            start: 0,
            end,
            body_start: 0,
            body_end: end,
            items,
        }
    }

    fn empty<'a>(sections: Vec<Section<'a>>) -> Extraction<'a> {
        Extraction {
            sections,
            findings: vec![],
            recommendations: vec![],
            critical: vec![],
            actionable: vec![],
            discrepancies: vec![],
            notifications: vec![],
            assessments: vec![],
        }
    }

    fn codes() -> &'static FhirCodes {
        FhirCodes::builtin().expect("built-in table")
    }

    #[test]
    fn an_impression_without_findings_is_still_a_statement() {
        let t = "  Normal chest radiograph.  ";
        let report = report("final");
        let source = ReportSource::read(&report).expect("source");
        let extraction = empty(vec![section(SectionKind::Impression, t, vec![])]);
        let out = map_extraction(&source, &text(t), &extraction, &run(), codes()).expect("map");
        assert_eq!(out.len(), 1);
        let statement = &out[0].resource;
        assert_eq!(statement["valueString"], "Normal chest radiograph.");
        assert_eq!(statement["code"]["coding"][0]["code"], "121073");
        assert_eq!(statement["extension"][0]["extension"][2]["valueInteger"], 2);
        assert_eq!(
            statement["extension"][0]["extension"][3]["valueInteger"],
            24
        );
        // a subject pointing into the report's contained resources is not copied
        assert!(statement.get("subject").is_none());
        assert_eq!(statement["issued"], "2026-01-02T03:04:05.600+02:00");
        assert_eq!(out[0].role, Role::Statement);
    }

    #[test]
    fn every_impression_item_is_a_statement() {
        let t = "1. Normal heart size. 2. Clear lungs.";
        let item = |n, s: &'static str| {
            let start = t.find(s).expect("item");
            Item {
                n,
                label: None,
                text: s,
                start,
                end: start + s.len(),
            }
        };
        let items = vec![item(1, "Normal heart size."), item(2, "Clear lungs.")];
        let report = report("preliminary");
        let source = ReportSource::read(&report).expect("source");
        let extraction = empty(vec![section(SectionKind::Impression, t, items)]);
        let out = map_extraction(&source, &text(t), &extraction, &run(), codes()).expect("map");
        let texts: Vec<&Value> = out.iter().map(|o| &o.resource["valueString"]).collect();
        assert_eq!(
            texts,
            [&json!("Normal heart size."), &json!("Clear lungs.")]
        );
        assert!(out.iter().all(|o| o.resource["status"] == "preliminary"));
    }

    #[test]
    fn withdrawn_reports_map_to_nothing_and_bad_spans_are_errors() {
        let t = "No pneumothorax.";
        let cancelled = report("cancelled");
        let source = ReportSource::read(&cancelled).expect("source");
        assert_eq!(source.status, ReportStatus::Withdrawn);
        let extraction = empty(vec![section(SectionKind::Impression, t, vec![])]);
        let out = map_extraction(&source, &text(t), &extraction, &run(), codes()).expect("map");
        assert!(out.is_empty());

        let final_report = report("final");
        let source = ReportSource::read(&final_report).expect("source");
        let mut extraction = empty(vec![]);
        extraction.findings.push(Finding {
            text: t,
            start: 0,
            end: 99,
            section: SectionKind::Impression,
            item: None,
            term: "pneumothorax",
            term_start: 3,
            term_end: 15,
            code: None,
            assertion: Assertion::Absent,
            certainty: None,
            hedge: None,
            temporality: Temporality::Current,
            change: None,
            laterality: None,
            body_site: vec![],
            measurements: vec![],
            descriptors: vec![],
            suggests: vec![],
        });
        let err = map_extraction(&source, &text(t), &extraction, &run(), codes()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("DiagnosticReport/r1: finding 0 spans 0..99"),
            "{err}"
        );
    }

    #[test]
    fn fhir_strings_are_never_empty_nor_hold_control_characters() {
        assert_eq!(fhir_string("  a\u{c}b\tc\n "), Some("a b\tc".to_owned()));
        assert_eq!(fhir_string(" \n\t"), None);
        assert_eq!(fhir_string(""), None);
    }

    #[test]
    fn helpers() {
        assert_eq!(number_literals("2.1 x 1.40 x 10cm"), ["2.1", "1.40", "10"]);
        assert_eq!(number_literals("8mm"), ["8"]);
        assert_eq!(char_slice("añb✓c", 1, 4), Some("ñb✓"));
        assert_eq!(char_slice("abc", 3, 3), Some(""));
        assert_eq!(char_slice("abc", 2, 5), None);
        assert!(is_fhir_id("a-b.C9") && !is_fhir_id("a/b") && !is_fhir_id(""));
        let ident = Ident {
            system: "urn:x".into(),
            value: "a|b,c$d\\e".into(),
        };
        assert_eq!(identifier_query(&ident), r"identifier=urn:x|a\|b\,c\$d\\e");
        let other = Ident {
            value: "a".into(),
            ..ident.clone()
        };
        assert_eq!(full_url(&ident), full_url(&ident.clone()));
        assert_ne!(full_url(&ident), full_url(&other));
        assert!(full_url(&ident).starts_with("urn:uuid:"));
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

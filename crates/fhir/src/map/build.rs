//! The only module that touches fhir-sdk: plain specs (our own types) in,
//! typed R4B resources built, JSON out through ONE serde entry point
//! (`to_json`), which keeps fhir-sdk's compile cost flat.
//!
//! The typed models are used so that what we send is well-typed (required
//! elements present, codes from their enums). Two things they cannot carry are
//! added to the JSON afterwards by the caller: values copied verbatim from the
//! server (subject, `effective[x]`...; the typed model would rewrite timestamps),
//! and decimals as written (`Quantity.value` is an `f64` there, which turns
//! `3.50` into `3.5`; FHIR decimals carry their precision).

use fhir_sdk::r4b::codes::{
    DeviceNameType, FHIRDeviceStatus, ObservationStatus, ProvenanceEntityRole, RequestIntent,
    RequestStatus,
};
use fhir_sdk::r4b::resources::{
    DetectedIssue, DetectedIssueEvidence, Device, DeviceDeviceName, DeviceVersion, Observation,
    ObservationComponent, ObservationComponentValue, ObservationValue, Provenance, ProvenanceAgent,
    ProvenanceEntity, Resource, ServiceRequest, ServiceRequestAsNeeded, ServiceRequestOccurrence,
};
use fhir_sdk::r4b::types::{
    Annotation, CodeableConcept, Coding, Extension, ExtensionValue, Identifier, Period, Quantity,
    Reference,
};
use fhir_sdk::{BuilderError, Date, DateTime, Instant};
use reportsplit_split::Code;
use serde_json::Value;

pub mod critical;

/// The core extension linking a resource to the text it was extracted from.
pub const DERIVATION_REFERENCE: &str =
    "http://hl7.org/fhir/StructureDefinition/derivation-reference";
const UCUM: &str = "http://unitsofmeasure.org";

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("building {what}: {source}")]
    Builder {
        what: &'static str,
        #[source]
        source: BuilderError,
    },
    #[error("serialising a typed resource: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

fn built<T>(what: &'static str, result: Result<T, BuilderError>) -> Result<T, BuildError> {
    result.map_err(|source| BuildError::Builder { what, source })
}

/// A business identifier (`system|value`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ident {
    pub system: String,
    pub value: String,
}

/// A CodeableConcept: codings from the tables plus the words used.
#[derive(Debug, Clone, PartialEq)]
pub struct Concept<'a> {
    pub codings: Vec<&'a Code>,
    pub text: Option<String>,
}

impl<'a> Concept<'a> {
    pub fn coded(code: &'a Code) -> Concept<'a> {
        Concept {
            codings: vec![code],
            text: None,
        }
    }
}

/// Where in the source text a resource or element comes from
/// (the derivation-reference extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// Versioned reference to the report, `DiagnosticReport/1/_history/2`.
    pub reference: String,
    /// FHIRPath of the element holding the text.
    pub path: String,
    /// Character (Unicode scalar value) offset and length in that text.
    pub offset: usize,
    pub length: usize,
}

/// A decimal with the digits as written, so `3.50` stays `3.50`.
#[derive(Debug, Clone, PartialEq)]
pub struct Decimal {
    pub value: f64,
    /// Used when it is a valid FHIR decimal equal to `value`.
    pub literal: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuantitySpec {
    pub value: Decimal,
    /// UCUM code (`mm`, `cm`, `d`).
    pub unit: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueSpec<'a> {
    Concept(Concept<'a>),
    String(String),
    Quantity(QuantitySpec),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ComponentSpec<'a> {
    pub code: Concept<'a>,
    pub value: ValueSpec<'a>,
    pub evidence: Option<Evidence>,
}

/// Observation.status (required binding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObsStatus {
    Registered,
    Preliminary,
    Final,
    Amended,
    Corrected,
    Cancelled,
    EnteredInError,
    Unknown,
}

impl ObsStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ObsStatus::Registered => "registered",
            ObsStatus::Preliminary => "preliminary",
            ObsStatus::Final => "final",
            ObsStatus::Amended => "amended",
            ObsStatus::Corrected => "corrected",
            ObsStatus::Cancelled => "cancelled",
            ObsStatus::EnteredInError => "entered-in-error",
            ObsStatus::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservationSpec<'a> {
    pub identifier: Ident,
    pub status: ObsStatus,
    pub category: &'a Code,
    pub code: Concept<'a>,
    /// The finding term's span, on Observation.code.
    pub code_evidence: Option<Evidence>,
    pub value: Option<ValueSpec<'a>>,
    pub body_site: Option<Concept<'a>>,
    /// The first site's span, on Observation.bodySite (as the term's is on code).
    pub body_site_evidence: Option<Evidence>,
    pub interpretation: Vec<&'a Code>,
    pub components: Vec<ComponentSpec<'a>>,
    /// References (`urn:uuid:...` or `Observation/id`).
    pub has_member: Vec<String>,
    /// Observations this one was inferred from (`urn:uuid:...`): the
    /// observations a diagnosis is offered for ("thickening, suggestive of
    /// colitis"). The report's imaging studies are added by the caller.
    pub derived_from: Vec<String>,
    /// The sentence/item span, on the Observation itself.
    pub evidence: Evidence,
}

/// The software that derived the resources, as a Provenance agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec<'a> {
    /// Reference to the Device (a `urn:uuid:` of the conditional create).
    pub reference: String,
    pub identifier: Ident,
    pub display: String,
    pub agent_type: &'a Code,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProvenanceSpec<'a> {
    pub targets: Vec<String>,
    pub recorded: time::OffsetDateTime,
    /// `DiagnosticReport/{id}/_history/{versionId}` (role source).
    pub source: String,
    /// Versioned references of the Observations the targets replace (role revision).
    pub revised: Vec<String>,
    pub agent: AgentSpec<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    pub identifier: Ident,
    pub name: String,
    pub version: String,
}

/// A note appended to a superseded Observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSpec {
    pub author: String,
    pub time: time::OffsetDateTime,
    pub text: String,
}

/// When a recommended follow-up is due: a day, or a range of days ("in 6 to
/// 12 months" stays a range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OccurrenceSpec {
    Date(time::Date),
    Period { start: time::Date, end: time::Date },
}

/// A follow-up recommendation as a ServiceRequest (status draft, intent
/// proposal: a suggestion to the referrer, never an order). `subject` and
/// `encounter` are the report's, added by the caller verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRequestSpec<'a> {
    pub identifier: Ident,
    pub code: Concept<'a>,
    pub occurrence: Option<OccurrenceSpec>,
    /// The pre-condition as written ("if clinically indicated"), coded as conditional.
    pub as_needed: Option<Concept<'a>>,
    pub body_site: Option<Concept<'a>>,
    /// The finding Observations it follows from.
    pub reason_references: Vec<String>,
    /// The report and the recommendation statement.
    pub supporting_info: Vec<String>,
    /// The recommendation as written.
    pub note: Option<String>,
    /// Where the recommendation is in the report's text.
    pub evidence: Evidence,
}

/// A discrepancy found in a report, as a DetectedIssue (status
/// preliminary: found by software, for a person to confirm).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedIssueSpec<'a> {
    pub identifier: Ident,
    pub code: Concept<'a>,
    /// The report and the Observations the issue is about.
    pub implicated: Vec<String>,
    /// What is wrong, in words.
    pub detail: String,
    /// The spans of the text that show it, one derivation-reference each.
    pub evidence: Vec<Evidence>,
    /// The evidence as references (the findings' Observations).
    pub evidence_details: Vec<String>,
    /// When it was identified (the run's time).
    pub identified: time::OffsetDateTime,
}

/// The one serde entry point for fhir-sdk types.
fn to_json(resource: &Resource) -> Result<Value, BuildError> {
    let mut json = serde_json::to_value(resource)?;
    url_first(&mut json);
    Ok(json)
}

/// fhir-sdk writes an Extension's `extension` before its `url`; readers
/// (and the FHIR spec's examples) expect the url first. Key order carries no
/// meaning in FHIR JSON, so this is only for people reading the output.
fn url_first(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(url) = map.shift_remove("url") {
                let rest = std::mem::take(map);
                map.insert("url".into(), url);
                map.extend(rest);
            }
            map.values_mut().for_each(url_first);
        }
        Value::Array(items) => items.iter_mut().for_each(url_first),
        _ => {}
    }
}

fn coding(code: &Code) -> Result<Coding, BuildError> {
    built(
        "Coding",
        Coding::builder()
            .system(code.system.clone())
            .code(code.code.clone())
            .display(code.display.clone())
            .build(),
    )
}

fn concept(concept: &Concept<'_>) -> Result<CodeableConcept, BuildError> {
    let codings = concept
        .codings
        .iter()
        .map(|c| coding(c).map(Some))
        .collect::<Result<Vec<_>, _>>()?;
    let mut builder = CodeableConcept::builder().coding(codings);
    if let Some(text) = &concept.text {
        builder = builder.text(text.clone());
    }
    built("CodeableConcept", builder.build())
}

fn identifier(ident: &Ident) -> Result<Identifier, BuildError> {
    built(
        "Identifier",
        Identifier::builder()
            .system(ident.system.clone())
            .value(ident.value.clone())
            .build(),
    )
}

fn reference(target: &str) -> Result<Reference, BuildError> {
    built(
        "Reference",
        Reference::builder().reference(target.to_owned()).build(),
    )
}

fn sub_extension(url: &str, value: ExtensionValue) -> Result<Extension, BuildError> {
    built(
        "Extension",
        Extension::builder()
            .url(url.to_owned())
            .value(value)
            .build(),
    )
}

fn int(n: usize) -> Result<i32, BuildError> {
    i32::try_from(n).map_err(|_| BuildError::Invalid(format!("offset {n} exceeds a FHIR integer")))
}

fn derivation(evidence: &Evidence) -> Result<Extension, BuildError> {
    let parts = vec![
        sub_extension(
            "reference",
            ExtensionValue::Reference(reference(&evidence.reference)?),
        )?,
        sub_extension("path", ExtensionValue::String(evidence.path.clone()))?,
        sub_extension("offset", ExtensionValue::Integer(int(evidence.offset)?))?,
        sub_extension("length", ExtensionValue::Integer(int(evidence.length)?))?,
    ];
    built(
        "Extension",
        Extension::builder()
            .url(DERIVATION_REFERENCE.to_owned())
            .extension(parts)
            .build(),
    )
}

fn quantity(spec: &QuantitySpec) -> Result<Quantity, BuildError> {
    built(
        "Quantity",
        Quantity::builder()
            .value(spec.value.value)
            .unit(spec.unit.clone())
            .system(UCUM.to_owned())
            .code(spec.unit.clone())
            .build(),
    )
}

fn observation_status(status: ObsStatus) -> ObservationStatus {
    match status {
        ObsStatus::Registered => ObservationStatus::Registered,
        ObsStatus::Preliminary => ObservationStatus::Preliminary,
        ObsStatus::Final => ObservationStatus::Final,
        ObsStatus::Amended => ObservationStatus::Amended,
        ObsStatus::Corrected => ObservationStatus::Corrected,
        ObsStatus::Cancelled => ObservationStatus::Cancelled,
        ObsStatus::EnteredInError => ObservationStatus::EnteredInError,
        ObsStatus::Unknown => ObservationStatus::Unknown,
    }
}

fn component(spec: &ComponentSpec<'_>) -> Result<ObservationComponent, BuildError> {
    let value = match &spec.value {
        ValueSpec::Concept(c) => ObservationComponentValue::CodeableConcept(concept(c)?),
        ValueSpec::String(s) => ObservationComponentValue::String(s.clone()),
        ValueSpec::Quantity(q) => ObservationComponentValue::Quantity(quantity(q)?),
    };
    let mut builder = ObservationComponent::builder()
        .code(concept(&spec.code)?)
        .value(value);
    if let Some(evidence) = &spec.evidence {
        builder = builder.extension(vec![derivation(evidence)?]);
    }
    built("Observation.component", builder.build())
}

/// An Observation as JSON (without the report's verbatim elements, which the
/// caller adds).
pub fn observation(spec: &ObservationSpec<'_>) -> Result<Value, BuildError> {
    let mut code = concept(&spec.code)?;
    if let Some(evidence) = &spec.code_evidence {
        code.extension.push(derivation(evidence)?);
    }
    let components = spec
        .components
        .iter()
        .map(|c| component(c).map(Some))
        .collect::<Result<Vec<_>, _>>()?;
    let mut builder = Observation::builder()
        .extension(vec![derivation(&spec.evidence)?])
        .identifier(vec![Some(identifier(&spec.identifier)?)])
        .status(observation_status(spec.status))
        .category(vec![Some(concept(&Concept::coded(spec.category))?)])
        .code(code)
        .component(components);
    if let Some(value) = &spec.value {
        builder = builder.value(match value {
            ValueSpec::Concept(c) => ObservationValue::CodeableConcept(concept(c)?),
            ValueSpec::String(s) => ObservationValue::String(s.clone()),
            ValueSpec::Quantity(q) => ObservationValue::Quantity(quantity(q)?),
        });
    }
    if let Some(site) = &spec.body_site {
        let mut site = concept(site)?;
        if let Some(evidence) = &spec.body_site_evidence {
            site.extension.push(derivation(evidence)?);
        }
        builder = builder.body_site(site);
    }
    if !spec.interpretation.is_empty() {
        let interpretation = spec
            .interpretation
            .iter()
            .map(|c| concept(&Concept::coded(c)).map(Some))
            .collect::<Result<Vec<_>, _>>()?;
        builder = builder.interpretation(interpretation);
    }
    if !spec.has_member.is_empty() {
        let members = spec
            .has_member
            .iter()
            .map(|r| reference(r).map(Some))
            .collect::<Result<Vec<_>, _>>()?;
        builder = builder.has_member(members);
    }
    if !spec.derived_from.is_empty() {
        let sources = spec
            .derived_from
            .iter()
            .map(|r| reference(r).map(Some))
            .collect::<Result<Vec<_>, _>>()?;
        builder = builder.derived_from(sources);
    }
    let observation = built("Observation", builder.build())?;
    let mut json = to_json(&Resource::Observation(observation))?;
    restore_decimals(&mut json, spec);
    Ok(json)
}

/// Puts back the digits as written into `value` and `component[i]` quantities.
fn restore_decimals(json: &mut Value, spec: &ObservationSpec<'_>) {
    if let Some(ValueSpec::Quantity(q)) = &spec.value {
        set_literal(json.pointer_mut("/valueQuantity/value"), &q.value);
    }
    for (index, component) in spec.components.iter().enumerate() {
        if let ValueSpec::Quantity(q) = &component.value {
            let pointer = format!("/component/{index}/valueQuantity/value");
            set_literal(json.pointer_mut(&pointer), &q.value);
        }
    }
}

fn set_literal(slot: Option<&mut Value>, decimal: &Decimal) {
    let (Some(slot), Some(literal)) = (slot, decimal.literal.as_deref()) else {
        return;
    };
    if !is_fhir_decimal(literal) || literal.parse::<f64>().ok() != Some(decimal.value) {
        return;
    }
    if let Ok(number) = literal.parse::<serde_json::Number>() {
        *slot = Value::Number(number);
    }
}

/// FHIR decimal lexical form: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub fn is_fhir_decimal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int_part, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let int_ok = digits(int_part) && (int_part == "0" || !int_part.starts_with('0'));
    let frac_ok = frac.is_none_or(digits);
    let exp_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    int_ok && frac_ok && exp_ok
}

/// The Provenance of one transaction.
pub fn provenance(spec: &ProvenanceSpec<'_>) -> Result<Value, BuildError> {
    let targets = spec
        .targets
        .iter()
        .map(|t| reference(t).map(Some))
        .collect::<Result<Vec<_>, _>>()?;
    let mut who = reference(&spec.agent.reference)?;
    who.identifier = Some(identifier(&spec.agent.identifier)?);
    who.display = Some(spec.agent.display.clone());
    let agent = built(
        "Provenance.agent",
        ProvenanceAgent::builder()
            .r#type(concept(&Concept::coded(spec.agent.agent_type))?)
            .who(who)
            .build(),
    )?;
    let mut entities = vec![Some(built(
        "Provenance.entity",
        ProvenanceEntity::builder()
            .role(ProvenanceEntityRole::Source)
            .what(reference(&spec.source)?)
            .build(),
    )?)];
    for revised in &spec.revised {
        entities.push(Some(built(
            "Provenance.entity",
            ProvenanceEntity::builder()
                .role(ProvenanceEntityRole::Revision)
                .what(reference(revised)?)
                .build(),
        )?));
    }
    let provenance = built(
        "Provenance",
        Provenance::builder()
            .target(targets)
            .recorded(Instant(spec.recorded))
            .agent(vec![Some(agent)])
            .entity(entities)
            .build(),
    )?;
    to_json(&Resource::Provenance(provenance))
}

fn date_time(date: time::Date) -> DateTime {
    DateTime::Date(Date::Date(date))
}

fn references(targets: &[String]) -> Result<Vec<Option<Reference>>, BuildError> {
    targets.iter().map(|r| reference(r).map(Some)).collect()
}

/// A ServiceRequest as JSON, with a placeholder `subject` that the caller
/// replaces by the report's own (R4 requires one; a report without a
/// subject gets no ServiceRequest).
pub fn service_request(spec: &ServiceRequestSpec<'_>) -> Result<Value, BuildError> {
    let mut builder = ServiceRequest::builder()
        .extension(vec![derivation(&spec.evidence)?])
        .identifier(vec![Some(identifier(&spec.identifier)?)])
        .status(RequestStatus::Draft)
        .intent(RequestIntent::Proposal)
        .code(concept(&spec.code)?)
        .subject(reference(SUBJECT_PLACEHOLDER)?)
        .reason_reference(references(&spec.reason_references)?)
        .supporting_info(references(&spec.supporting_info)?);
    if let Some(occurrence) = spec.occurrence {
        builder = builder.occurrence(match occurrence {
            OccurrenceSpec::Date(date) => ServiceRequestOccurrence::DateTime(date_time(date)),
            OccurrenceSpec::Period { start, end } => ServiceRequestOccurrence::Period(built(
                "Period",
                Period::builder()
                    .start(date_time(start))
                    .end(date_time(end))
                    .build(),
            )?),
        });
    }
    if let Some(condition) = &spec.as_needed {
        builder = builder.as_needed(ServiceRequestAsNeeded::CodeableConcept(concept(condition)?));
    }
    if let Some(site) = &spec.body_site {
        builder = builder.body_site(vec![Some(concept(site)?)]);
    }
    if let Some(text) = &spec.note {
        builder = builder.note(vec![Some(built(
            "Annotation",
            Annotation::builder().text(text.clone()).build(),
        )?)]);
    }
    let request = built("ServiceRequest", builder.build())?;
    to_json(&Resource::ServiceRequest(request))
}

/// The reference a built ServiceRequest carries until the caller puts the
/// report's subject in its place.
pub const SUBJECT_PLACEHOLDER: &str = "Patient/subject-placeholder";

/// A DetectedIssue as JSON (without `patient`: the caller adds the report's
/// subject verbatim when it is a Patient).
pub fn detected_issue(spec: &DetectedIssueSpec<'_>) -> Result<Value, BuildError> {
    let extensions = spec
        .evidence
        .iter()
        .map(derivation)
        .collect::<Result<Vec<_>, _>>()?;
    let mut builder = DetectedIssue::builder()
        .extension(extensions)
        .identifier(vec![Some(identifier(&spec.identifier)?)])
        .status(ObservationStatus::Preliminary)
        .code(concept(&spec.code)?)
        .identified(fhir_sdk::r4b::resources::DetectedIssueIdentified::DateTime(
            DateTime::DateTime(Instant(spec.identified)),
        ))
        .implicated(references(&spec.implicated)?)
        .detail(spec.detail.clone());
    if !spec.evidence_details.is_empty() {
        builder = builder.evidence(vec![Some(built(
            "DetectedIssue.evidence",
            DetectedIssueEvidence::builder()
                .detail(references(&spec.evidence_details)?)
                .build(),
        )?)]);
    }
    let issue = built("DetectedIssue", builder.build())?;
    to_json(&Resource::DetectedIssue(issue))
}

/// The Device that stands for reportsplit (one per version), created
/// conditionally so every Provenance of that version points at the same one.
pub fn device(spec: &DeviceSpec) -> Result<Value, BuildError> {
    let name = built(
        "Device.deviceName",
        DeviceDeviceName::builder()
            .name(spec.name.clone())
            .r#type(DeviceNameType::ManufacturerName)
            .build(),
    )?;
    let version = built(
        "Device.version",
        DeviceVersion::builder().value(spec.version.clone()).build(),
    )?;
    let device = built(
        "Device",
        Device::builder()
            .identifier(vec![Some(identifier(&spec.identifier)?)])
            .status(FHIRDeviceStatus::Active)
            .device_name(vec![Some(name)])
            .version(vec![Some(version)])
            .build(),
    )?;
    to_json(&Resource::Device(device))
}

/// An Annotation (for Observation.note) as JSON.
pub fn note(spec: &NoteSpec) -> Result<Value, BuildError> {
    let annotation = built(
        "Annotation",
        Annotation::builder()
            .author(fhir_sdk::r4b::types::AnnotationAuthor::String(
                spec.author.clone(),
            ))
            .time(DateTime::DateTime(Instant(spec.time)))
            .text(spec.text.clone())
            .build(),
    )?;
    // Annotation is not a resource: wrap it in a throwaway Observation so the
    // single serde entry point is reused.
    let carrier = built(
        "Observation",
        Observation::builder()
            .status(ObservationStatus::Unknown)
            .code(concept(&Concept {
                codings: vec![],
                text: Some("note".into()),
            })?)
            .note(vec![Some(annotation)])
            .build(),
    )?;
    let mut json = to_json(&Resource::Observation(carrier))?;
    json.pointer_mut("/note/0")
        .map(Value::take)
        .ok_or_else(|| BuildError::Invalid("typed Annotation did not serialise".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(system: &str, code: &str) -> Code {
        Code {
            system: system.into(),
            code: code.into(),
            display: format!("display {code}"),
        }
    }

    fn evidence() -> Evidence {
        Evidence {
            reference: "DiagnosticReport/r/_history/1".into(),
            path: "DiagnosticReport.conclusion".into(),
            offset: 0,
            length: 4,
        }
    }

    /// Typed serialisation still works with serde_json's `preserve_order` and
    /// `arbitrary_precision` (both on in this workspace), and decimals keep
    /// the digits as written.
    #[test]
    fn typed_serialisation_with_preserve_order_and_arbitrary_precision() {
        let category = code(
            "http://terminology.hl7.org/CodeSystem/observation-category",
            "imaging",
        );
        let size = code("http://snomed.info/sct", "103339001");
        let quantity = |value: f64, literal: Option<&str>| ComponentSpec {
            code: Concept::coded(&size),
            value: ValueSpec::Quantity(QuantitySpec {
                value: Decimal {
                    value,
                    literal: literal.map(str::to_owned),
                },
                unit: "cm".into(),
            }),
            evidence: None,
        };
        let spec = ObservationSpec {
            identifier: Ident {
                system: "urn:x".into(),
                value: "1".into(),
            },
            status: ObsStatus::Final,
            category: &category,
            code: Concept {
                codings: vec![],
                text: Some("nodule".into()),
            },
            code_evidence: Some(evidence()),
            value: None,
            body_site: None,
            body_site_evidence: None,
            interpretation: vec![],
            components: vec![
                quantity(3.5, Some("3.50")),
                quantity(0.1, None),
                quantity(12.0, Some("12")),
                // a literal that does not match the value is ignored
                quantity(2.0, Some("2.5")),
                // not a FHIR decimal (leading zero): the f64 is written
                quantity(8.0, Some("08")),
            ],
            has_member: vec!["urn:uuid:0b2f6b6e-0000-5000-8000-000000000000".into()],
            derived_from: vec![],
            evidence: evidence(),
        };
        let json = observation(&spec).expect("observation");
        let text = serde_json::to_string(&json).expect("json");
        assert!(
            text.starts_with(r#"{"resourceType":"Observation","extension":[{"#),
            "{text}"
        );
        let values: Vec<String> = json["component"]
            .as_array()
            .expect("components")
            .iter()
            .map(|c| c["valueQuantity"]["value"].to_string())
            .collect();
        assert_eq!(values, ["3.50", "0.1", "12", "2.0", "8.0"]);
        assert_eq!(
            json["code"]["extension"][0]["extension"][2],
            serde_json::json!({"url": "offset", "valueInteger": 0})
        );
        assert_eq!(json["status"], "final");
        assert_eq!(
            json["hasMember"][0]["reference"],
            "urn:uuid:0b2f6b6e-0000-5000-8000-000000000000"
        );
    }

    #[test]
    fn fhir_decimal_lexical_form() {
        for ok in ["0", "3.50", "-1.2", "10", "1e3", "1.5E-2", "0.000"] {
            assert!(is_fhir_decimal(ok), "{ok}");
        }
        for bad in ["", ".5", "5.", "08", "1e", "1.2.3", "+1", "NaN", "1 "] {
            assert!(!is_fhir_decimal(bad), "{bad}");
        }
    }

    #[test]
    fn provenance_device_and_note_are_valid_shapes() {
        let agent_type = code(
            "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
            "assembler",
        );
        let recorded = time::macros::datetime!(2026-11-28 05:30:00 +01:00);
        let provenance = provenance(&ProvenanceSpec {
            targets: vec!["urn:uuid:a".into()],
            recorded,
            source: "DiagnosticReport/r/_history/2".into(),
            revised: vec!["Observation/o/_history/1".into()],
            agent: AgentSpec {
                reference: "urn:uuid:d".into(),
                identifier: Ident {
                    system: "urn:reportsplit:device".into(),
                    value: "reportsplit/1".into(),
                },
                display: "reportsplit 1".into(),
                agent_type: &agent_type,
            },
        })
        .expect("provenance");
        assert_eq!(provenance["resourceType"], "Provenance");
        assert_eq!(provenance["recorded"], "2026-11-28T05:30:00+01:00");
        assert_eq!(provenance["entity"][1]["role"], "revision");
        let device = device(&DeviceSpec {
            identifier: Ident {
                system: "urn:reportsplit:device".into(),
                value: "reportsplit/1".into(),
            },
            name: "reportsplit".into(),
            version: "1".into(),
        })
        .expect("device");
        assert_eq!(device["deviceName"][0]["type"], "manufacturer-name");
        let note = note(&NoteSpec {
            author: "reportsplit 1".into(),
            time: recorded,
            text: "why".into(),
        })
        .expect("note");
        assert_eq!(
            note,
            serde_json::json!({"authorString": "reportsplit 1", "time": "2026-11-28T05:30:00+01:00", "text": "why"})
        );
    }
}

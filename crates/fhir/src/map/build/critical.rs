//! The resources of a critical result (issue 12, item 2), built with
//! fhir-sdk's typed models like the rest of `build`: a Communication for a
//! notification the report documents (or one in preparation, for one still
//! to make), and a Flag on the patient for a critical result nobody is
//! documented to have been told of.

use fhir_sdk::r4b::codes::{EventStatus, FlagStatus, RequestPriority};
use fhir_sdk::r4b::resources::{
    Communication, CommunicationPayload, CommunicationPayloadContent, Flag, Resource,
};
use fhir_sdk::r4b::types::{Annotation, Extension, ExtensionValue, Period, Reference};
use fhir_sdk::{Date, DateTime, Instant};
use reportsplit_split::Code;
use serde_json::Value;

use super::{
    BuildError, Concept, Evidence, Ident, built, concept, derivation, identifier, reference,
    to_json,
};

/// The core extension pointing a Flag at the records behind it.
pub const FLAG_DETAIL: &str = "http://hl7.org/fhir/StructureDefinition/flag-detail";

/// The reference a built Flag carries until the caller puts the report's
/// subject in its place (R4 requires one; a report without a subject gets
/// no Flag).
pub const FLAG_SUBJECT_PLACEHOLDER: &str = "Patient/flag-subject-placeholder";

/// When something happened, as precisely as it is known: a day, or an
/// instant (a time of day is only an instant with its UTC offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    Day(time::Date),
    Instant(time::OffsetDateTime),
}

impl Moment {
    fn date_time(self) -> DateTime {
        match self {
            Moment::Day(date) => DateTime::Date(Date::Date(date)),
            Moment::Instant(instant) => DateTime::DateTime(Instant(instant)),
        }
    }
}

/// Whether the Communication happened or is still to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommunicationState {
    /// The report documents it.
    Completed,
    /// A critical result whose communication the report does not document
    /// (`write.unconfirmed_critical = "communication"`).
    Preparation,
}

/// How urgent the communication is: ACR category 1 results are `stat`,
/// category 2 `urgent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Stat,
    Urgent,
}

/// A critical result's Communication. `subject` and `encounter` are the
/// report's, added by the caller verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct CommunicationSpec<'a> {
    pub identifier: Ident,
    pub state: CommunicationState,
    pub category: &'a Code,
    pub priority: Priority,
    pub medium: Option<&'a Code>,
    pub topic: Concept<'a>,
    /// The critical findings' Observations and the report.
    pub about: Vec<String>,
    pub sent: Option<Moment>,
    /// Who was told, as the report names them (display only: a name in a
    /// report is not a resolvable Practitioner).
    pub recipient: Option<String>,
    /// The critical results, in words ("Critical result: acute pulmonary embolism").
    pub payload: String,
    /// The notification as documented, or why one is still needed.
    pub note: Option<String>,
    /// Where the report documents it (none for one in preparation).
    pub evidence: Option<Evidence>,
}

/// A Flag on the patient for critical results with no documented
/// communication.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagSpec<'a> {
    pub identifier: Ident,
    pub category: &'a Code,
    pub code: Concept<'a>,
    /// reportsplit's Device (the `urn:uuid:` of its conditional create).
    pub author: String,
    pub start: Option<Moment>,
    /// The critical findings' Observations (flag-detail extensions).
    pub details: Vec<String>,
    /// The critical findings' sentences.
    pub evidence: Vec<Evidence>,
}

fn references(targets: &[String]) -> Result<Vec<Option<Reference>>, BuildError> {
    targets.iter().map(|r| reference(r).map(Some)).collect()
}

/// A Communication as JSON.
pub fn communication(spec: &CommunicationSpec<'_>) -> Result<Value, BuildError> {
    let mut builder = Communication::builder()
        .extension(
            spec.evidence
                .iter()
                .map(derivation)
                .collect::<Result<_, _>>()?,
        )
        .identifier(vec![Some(identifier(&spec.identifier)?)])
        .status(match spec.state {
            CommunicationState::Completed => EventStatus::Completed,
            CommunicationState::Preparation => EventStatus::Preparation,
        })
        .category(vec![Some(concept(&Concept::coded(spec.category))?)])
        .priority(match spec.priority {
            Priority::Stat => RequestPriority::Stat,
            Priority::Urgent => RequestPriority::Urgent,
        })
        .topic(concept(&spec.topic)?)
        .about(references(&spec.about)?)
        .payload(vec![Some(built(
            "Communication.payload",
            CommunicationPayload::builder()
                .content(CommunicationPayloadContent::String(spec.payload.clone()))
                .build(),
        )?)]);
    if let Some(medium) = spec.medium {
        builder = builder.medium(vec![Some(concept(&Concept::coded(medium))?)]);
    }
    if let Some(sent) = spec.sent {
        builder = builder.sent(sent.date_time());
    }
    if let Some(name) = &spec.recipient {
        builder = builder.recipient(vec![Some(built(
            "Reference",
            Reference::builder().display(name.clone()).build(),
        )?)]);
    }
    if let Some(text) = &spec.note {
        builder = builder.note(vec![Some(built(
            "Annotation",
            Annotation::builder().text(text.clone()).build(),
        )?)]);
    }
    let communication = built("Communication", builder.build())?;
    to_json(&Resource::Communication(communication))
}

/// A Flag as JSON, with a placeholder `subject` the caller replaces.
pub fn flag(spec: &FlagSpec<'_>) -> Result<Value, BuildError> {
    let mut extensions: Vec<Extension> = spec
        .details
        .iter()
        .map(|target| {
            built(
                "Extension",
                Extension::builder()
                    .url(FLAG_DETAIL.to_owned())
                    .value(ExtensionValue::Reference(reference(target)?))
                    .build(),
            )
        })
        .collect::<Result<_, _>>()?;
    for evidence in &spec.evidence {
        extensions.push(derivation(evidence)?);
    }
    let mut builder = Flag::builder()
        .extension(extensions)
        .identifier(vec![Some(identifier(&spec.identifier)?)])
        .status(FlagStatus::Active)
        .category(vec![Some(concept(&Concept::coded(spec.category))?)])
        .code(concept(&spec.code)?)
        .subject(reference(FLAG_SUBJECT_PLACEHOLDER)?)
        .author(reference(&spec.author)?);
    if let Some(start) = spec.start {
        builder = builder.period(built(
            "Period",
            Period::builder().start(start.date_time()).build(),
        )?);
    }
    let flag = built("Flag", builder.build())?;
    to_json(&Resource::Flag(flag))
}

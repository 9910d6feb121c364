//! ORU^R01 → FHIR R4 DiagnosticReport, after the HL7 v2-to-FHIR IG
//! (segment maps OBR → DiagnosticReport, PID → Patient): see docs/hl7.md
//! for the table.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Value, json};
use time::UtcOffset;

use crate::oru::{Coded, Demographics, EntityId, ErrorCode, Header, Order, Oru, Problem};
use crate::timestamp::Timestamp;

/// The `[hl7]` settings the mapping needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hl7Settings {
    /// OBR-24 values whose results are taken; others are ignored.
    pub service_sections: Vec<String>,
    /// MSH-11 values whose messages are taken; others are ignored.
    pub processing_ids: Vec<String>,
    /// Assigning authority / namespace id (PID-3.4, EI.2, MSH-4) → the
    /// identifier system (a URI).
    pub authorities: BTreeMap<String, String>,
    /// The zone of timestamps that carry none.
    pub utc_offset: UtcOffset,
}

/// What becomes of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// AA; write these reports (at least one).
    Accept(Vec<MappedReport>),
    /// AA, counted, never written: another processing id or service section.
    Ignore(String),
    /// AE or AR.
    Refuse(Problem),
}

/// How the patient is referenced: an identifier the shell resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientIdentifier {
    pub system: String,
    pub value: String,
}

/// One DiagnosticReport to store, and what the shell needs around it.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedReport {
    /// `system|value` of the filler order number: the report's key.
    pub order_key: String,
    pub patient: PatientIdentifier,
    /// The Patient to create when none carries the identifier (`hl7.patient
    /// = "create"`): the identifier, and PID-5 name, PID-7 birth date and
    /// PID-8 sex as the v2-to-FHIR IG's PID → Patient map has them.
    pub patient_resource: Value,
    /// The report, its `subject` a logical reference by identifier that the
    /// shell replaces by the patient's resource reference.
    pub report: Value,
    /// OBR-22 (or MSH-7) as nanoseconds since the epoch, to refuse an older
    /// message over a newer stored result.
    pub reported_at: Option<i128>,
}

/// A message read with its header: the header answers it, the verdict says
/// what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub header: Option<Header>,
    pub verdict: Verdict,
}

const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
const V2_0074: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
const LOINC: &str = "http://loinc.org";

/// Reads, filters and maps one message (its bytes, as received).
pub fn evaluate(bytes: &[u8], settings: &Hl7Settings) -> Evaluation {
    let text = match crate::charset::decode(bytes) {
        Ok(text) => text,
        Err(problem) => {
            return Evaluation {
                header: crate::charset::decode_lossy_header(bytes),
                verdict: Verdict::Refuse(problem),
            };
        }
    };
    let message = match crate::oru::parse_message(&text) {
        Ok(message) => message,
        Err(problem) => {
            return Evaluation {
                header: None,
                verdict: Verdict::Refuse(problem),
            };
        }
    };
    let header = crate::oru::header(&message);
    let verdict = match crate::oru::read_oru(&message) {
        Ok(oru) => map_oru(&oru, settings),
        Err(problem) => Verdict::Refuse(problem),
    };
    Evaluation {
        header: Some(header),
        verdict,
    }
}

fn map_oru(oru: &Oru, settings: &Hl7Settings) -> Verdict {
    let header = &oru.header;
    if !settings
        .processing_ids
        .iter()
        .any(|p| p.eq_ignore_ascii_case(&header.processing_id))
    {
        return Verdict::Ignore(format!("processing id {:?}", header.processing_id));
    }
    if header.control_id.is_empty() {
        return Verdict::Refuse(Problem::unusable(
            ErrorCode::RequiredFieldMissing,
            "MSH-10",
            "the message has no control id",
        ));
    }
    let taken: Vec<&Order> = oru
        .orders
        .iter()
        .filter(|o| {
            settings
                .service_sections
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&o.section))
        })
        .collect();
    if taken.is_empty() {
        if oru.orders.is_empty() {
            return Verdict::Refuse(Problem::unusable(
                ErrorCode::SegmentSequence,
                "OBR-1",
                "the message has no OBR segment",
            ));
        }
        let sections: Vec<&str> = oru.orders.iter().map(|o| o.section.as_str()).collect();
        return Verdict::Ignore(format!("service sections {sections:?}"));
    }
    let patient = match patient(oru, settings) {
        Ok(patient) => patient,
        Err(problem) => return Verdict::Refuse(problem),
    };
    let patient_resource = match patient_resource(&patient, &oru.demographics) {
        Ok(resource) => resource,
        Err(problem) => return Verdict::Refuse(problem),
    };
    let mut reports = Vec::new();
    for order in taken {
        match map_order(header, order, &patient, &patient_resource, settings) {
            Ok(report) => reports.push(report),
            Err(problem) => return Verdict::Refuse(problem),
        }
    }
    Verdict::Accept(reports)
}

/// The first PID-3 whose assigning authority is configured; an identifier
/// under an unknown authority is never guessed into a system.
fn patient(oru: &Oru, settings: &Hl7Settings) -> Result<PatientIdentifier, Problem> {
    if oru.patient_ids.is_empty() {
        return Err(Problem::unusable(
            ErrorCode::RequiredFieldMissing,
            "PID-3",
            "the message has no patient identifier",
        ));
    }
    oru.patient_ids
        .iter()
        .find_map(|id| {
            settings
                .authorities
                .get(&id.authority)
                .map(|system| PatientIdentifier {
                    system: system.clone(),
                    value: id.value.clone(),
                })
        })
        .ok_or_else(|| {
            let authorities: Vec<&str> = oru
                .patient_ids
                .iter()
                .map(|id| id.authority.as_str())
                .collect();
            Problem::unusable(
                ErrorCode::UnknownKeyIdentifier,
                "PID-3",
                format!("no PID-3 assigning authority is configured (found {authorities:?})"),
            )
        })
}

/// PID-8 (table 0001) → `Patient.gender`, per the v2-to-FHIR IG's ConceptMap
/// table-hl70001-to-administrative-gender.
fn gender(sex: &str) -> Option<&'static str> {
    Some(match sex {
        "F" => "female",
        "M" => "male",
        "O" | "A" | "N" => "other",
        "U" => "unknown",
        _ => return None,
    })
}

/// The Patient a message describes (v2-to-FHIR IG, PID → Patient): PID-3's
/// identifier, PID-5 → `name` (XPN.1.1 family, XPN.2/.3 given), PID-7 →
/// `birthDate` (the date as written; its time, if any, is not kept), PID-8
/// → `gender`. A PID-7 that is not a timestamp or a PID-8 outside table 0001
/// is refused (AE), never guessed or dropped.
fn patient_resource(
    patient: &PatientIdentifier,
    demographics: &Demographics,
) -> Result<Value, Problem> {
    let mut resource = json!({
        "resourceType": "Patient",
        "identifier": [{"system": patient.system, "value": patient.value}],
    });
    if !demographics.family.is_empty() || !demographics.given.is_empty() {
        let mut name = json!({});
        if !demographics.family.is_empty() {
            name["family"] = json!(demographics.family);
        }
        if !demographics.given.is_empty() {
            name["given"] = json!(demographics.given);
        }
        resource["name"] = json!([name]);
    }
    if let Some(born) = timestamp(&demographics.birth, "PID-7")? {
        resource["birthDate"] = json!(born.to_date());
    }
    if !demographics.sex.is_empty() {
        let gender = gender(&demographics.sex).ok_or_else(|| {
            Problem::unusable(
                ErrorCode::TableValueNotFound,
                "PID-8",
                "PID-8 is not an administrative sex of table 0001",
            )
        })?;
        resource["gender"] = json!(gender);
    }
    Ok(resource)
}

/// An order number's system: its namespace's, or the sending facility's.
fn order_system(id: &EntityId, header: &Header, settings: &Hl7Settings) -> Option<String> {
    let namespace = if id.namespace.is_empty() {
        &header.sending_facility
    } else {
        &id.namespace
    };
    settings.authorities.get(namespace).cloned()
}

fn status(order: &Order) -> Result<&'static str, Problem> {
    Ok(match order.status.as_str() {
        "O" | "I" | "S" => "registered",
        "A" => "partial",
        "P" => "preliminary",
        "F" => "final",
        "C" => "corrected",
        "X" => "cancelled",
        "" => {
            return Err(Problem::unusable(
                ErrorCode::RequiredFieldMissing,
                "OBR-25",
                "the result status is empty",
            ));
        }
        other => {
            return Err(Problem::unusable(
                ErrorCode::TableValueNotFound,
                "OBR-25",
                format!("result status {other:?} is not one of O I S A P F C X"),
            ));
        }
    })
}

fn timestamp(raw: &str, location: &'static str) -> Result<Option<Timestamp>, Problem> {
    if raw.is_empty() {
        return Ok(None);
    }
    Timestamp::parse(raw).map(Some).ok_or_else(|| {
        Problem::unusable(
            ErrorCode::DataType,
            location,
            format!("{location} is not a timestamp"),
        )
    })
}

fn code(procedure: &[Coded]) -> Option<Value> {
    let first = procedure.first()?;
    let codings: Vec<Value> = procedure
        .iter()
        .filter(|c| c.system.eq_ignore_ascii_case("LN") && !c.code.is_empty())
        .map(|c| {
            let mut coding = json!({"system": LOINC, "code": c.code});
            if !c.text.is_empty() {
                coding["display"] = json!(c.text);
            }
            coding
        })
        .collect();
    let text = if first.text.is_empty() {
        &first.code
    } else {
        &first.text
    };
    let mut concept = json!({});
    if !codings.is_empty() {
        concept["coding"] = Value::Array(codings);
    }
    concept["text"] = json!(text);
    Some(concept)
}

fn map_order(
    header: &Header,
    order: &Order,
    patient: &PatientIdentifier,
    patient_resource: &Value,
    settings: &Hl7Settings,
) -> Result<MappedReport, Problem> {
    let filler = order.filler.as_ref().ok_or_else(|| {
        Problem::unusable(
            ErrorCode::RequiredFieldMissing,
            "OBR-3",
            "the order has no filler order number (ORC-3 or OBR-3)",
        )
    })?;
    let filler_system = order_system(filler, header, settings).ok_or_else(|| {
        Problem::unusable(
            ErrorCode::UnknownKeyIdentifier,
            "OBR-3",
            format!(
                "the filler order number's namespace {:?} is not configured",
                if filler.namespace.is_empty() {
                    &header.sending_facility
                } else {
                    &filler.namespace
                }
            ),
        )
    })?;
    let status = status(order)?;
    let text = order.text.clone()?;
    if text.is_none() && !matches!(status, "cancelled" | "registered") {
        return Err(Problem::unusable(
            ErrorCode::RequiredFieldMissing,
            "OBX-5",
            "the result has no report text (no TX, FT, ST or ED OBX)",
        ));
    }
    let code = code(&order.procedure).ok_or_else(|| {
        Problem::unusable(
            ErrorCode::RequiredFieldMissing,
            "OBR-4",
            "the order has no procedure code",
        )
    })?;
    let observed = timestamp(&order.observed, "OBR-7")?;
    let reported = match timestamp(&order.reported, "OBR-22")? {
        Some(reported) => Some(reported),
        None => timestamp(&header.time, "MSH-7")?,
    };
    let offset = settings.utc_offset;

    let mut report = json!({
        "resourceType": "DiagnosticReport",
        "identifier": [{
            "use": "official",
            "type": {"coding": [{"system": V2_0203, "code": "FILL"}]},
            "system": filler_system,
            "value": filler.value,
        }],
    });
    if let Some(placer) = &order.placer {
        let mut identifier = json!({
            "type": {"coding": [{"system": V2_0203, "code": "PLAC"}]},
        });
        if let Some(system) = order_system(placer, header, settings) {
            identifier["system"] = json!(system);
        }
        identifier["value"] = json!(placer.value);
        report["basedOn"] = json!([{"type": "ServiceRequest", "identifier": identifier}]);
    }
    report["status"] = json!(status);
    report["category"] = json!([{"coding": [{"system": V2_0074, "code": order.section}]}]);
    report["code"] = code;
    report["subject"] = json!({
        "type": "Patient",
        "identifier": {"system": patient.system, "value": patient.value},
    });
    if let Some(observed) = observed {
        report["effectiveDateTime"] = json!(observed.to_date_time(offset));
    }
    if let Some(reported) = &reported {
        report["issued"] = json!(reported.to_instant(offset));
    }
    if let Some(interpreter) = &order.interpreter {
        let name = [interpreter.given.as_str(), interpreter.family.as_str()]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let mut reference = json!({"type": "Practitioner"});
        if !interpreter.id.is_empty() {
            reference["identifier"] = json!({"value": interpreter.id});
        }
        if !name.is_empty() {
            reference["display"] = json!(name);
        }
        report["resultsInterpreter"] = json!([reference]);
    }
    if let Some(text) = text {
        report["presentedForm"] = json!([{
            "contentType": "text/plain; charset=utf-8",
            "data": base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
        }]);
    }
    Ok(MappedReport {
        order_key: format!("{filler_system}|{}", filler.value),
        patient: patient.clone(),
        patient_resource: patient_resource.clone(),
        report,
        reported_at: reported.map(|r| r.unix_nanos(offset)),
    })
}

//! Follow-up recommendations as ServiceRequests (issue 12, item 1).
//!
//! One `ServiceRequest` per recommendation that names a procedure or an
//! interval: `status` draft and `intent` proposal (the radiologist suggests,
//! the referrer orders), `code` the kind of procedure, `occurrence` the
//! report's effective date plus the interval (a range stays a Period),
//! `reasonReference` the finding Observations it follows from,
//! `supportingInfo` the report and the recommendation's statement
//! Observation (which stays in `DiagnosticReport.result`: the report's link
//! to it), the sentence as written in `note`, and conditional or hedged
//! wording in `asNeededCodeableConcept` (the pre-condition of the request,
//! as R4 defines it). R4 requires a `subject`: a report without one gets
//! none (the plan counts them). docs/fhir-model.md shows one.

use reportsplit_split::{Procedure, Recommendation};
use serde_json::{Map, Value};

use super::build::{self, Concept, OccurrenceSpec, ServiceRequestSpec};
use super::{Derivation, Key, MapError, NewResource, Role, fhir_string};

/// Identifier system of the ServiceRequests reportsplit writes.
pub const SERVICE_REQUEST_SYSTEM: &str = "urn:reportsplit:service-request";

/// Whether a recommendation becomes a ServiceRequest: it names a procedure
/// or an interval. "Recommend clinical correlation" asks for no service and
/// stays a statement Observation only.
pub fn wants_request(recommendation: &Recommendation<'_>) -> bool {
    recommendation.procedure.is_some() || recommendation.interval_days.is_some()
}

/// The table key of a procedure's code.
fn procedure_key(procedure: Option<Procedure>) -> Key {
    match procedure {
        Some(Procedure::Ct) => Key::FollowUpCt,
        Some(Procedure::Mri) => Key::FollowUpMri,
        Some(Procedure::Ultrasound) => Key::FollowUpUltrasound,
        Some(Procedure::Radiograph) => Key::FollowUpRadiograph,
        Some(Procedure::Mammography) => Key::FollowUpMammography,
        Some(Procedure::Pet) => Key::FollowUpPet,
        Some(Procedure::NuclearMedicine) => Key::FollowUpNuclearMedicine,
        Some(Procedure::Biopsy) => Key::FollowUpBiopsy,
        Some(Procedure::Imaging) | None => Key::FollowUpImaging,
    }
}

/// When the follow-up is due: the report's effective date plus the
/// interval (its bounds for a range); `None` without either.
pub(super) fn occurrence(
    effective: Option<time::Date>,
    recommendation: &Recommendation<'_>,
) -> Option<OccurrenceSpec> {
    let effective = effective?;
    let low = recommendation.interval_days?;
    let high = recommendation.interval_max_days.unwrap_or(low).max(low);
    let after = |days: u32| effective.checked_add(time::Duration::days(i64::from(days)));
    if high == low {
        after(low).map(OccurrenceSpec::Date)
    } else {
        Some(OccurrenceSpec::Period {
            start: after(low)?,
            end: after(high)?,
        })
    }
}

/// The ServiceRequest of one recommendation. `reasons`: the `fullUrl`s of
/// the finding Observations it follows from; `statement`: the `fullUrl` of
/// its statement Observation. `None` when the report has no subject.
pub(super) fn service_request(
    d: &Derivation<'_>,
    recommendation: &Recommendation<'_>,
    reasons: Vec<String>,
    statement: Option<String>,
    body_site: Option<Concept<'_>>,
) -> Result<Option<NewResource>, MapError> {
    let Some(subject) = d.source.subject() else {
        return Ok(None);
    };
    let occurrence = occurrence(d.source.effective_date(), recommendation);
    let content = serde_json::json!({
        "span": [recommendation.start, recommendation.end],
        "procedure": recommendation.procedure,
        "days": [recommendation.interval_days, recommendation.interval_max_days],
        "conditional": recommendation.conditional,
        "reasons": reasons,
    });
    let identifier = d.identifier_in(SERVICE_REQUEST_SYSTEM, "follow-up", &content.to_string());
    let mut supporting_info = vec![d.source.reference()];
    supporting_info.extend(statement);
    let spec = ServiceRequestSpec {
        identifier: identifier.clone(),
        code: Concept::coded(d.codes.get(procedure_key(recommendation.procedure))),
        occurrence,
        as_needed: recommendation.conditional.map(|words| Concept {
            codings: vec![d.codes.get(Key::FollowUpConditional)],
            text: fhir_string(words),
        }),
        body_site,
        reason_references: reasons,
        supporting_info,
        note: fhir_string(recommendation.text),
        evidence: d.evidence(recommendation.start, recommendation.end),
    };
    let json = build::service_request(&spec).map_err(|source| MapError::Build {
        report: d.source.reference(),
        source,
    })?;
    let resource = with_subject(json, subject, d.source.encounter())
        .ok_or_else(|| d.report_error("a built ServiceRequest is not a JSON object".into()))?;
    Ok(Some(NewResource::owned(
        d.source,
        identifier,
        Role::FollowUp,
        resource,
    )))
}

/// Puts the report's subject (and encounter) verbatim where the builder
/// left its placeholder.
fn with_subject(json: Value, subject: &Value, encounter: Option<&Value>) -> Option<Value> {
    let Value::Object(built) = json else {
        return None;
    };
    let mut out = Map::with_capacity(built.len() + 1);
    for (key, value) in built {
        if key == "subject" {
            out.insert(key, subject.clone());
            if let Some(encounter) = encounter {
                out.insert("encounter".into(), encounter.clone());
            }
            continue;
        }
        out.insert(key, value);
    }
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recommendation(low: Option<u32>, high: Option<u32>) -> Recommendation<'static> {
        Recommendation {
            text: "Recommend CT in 6-12 months.",
            start: 0,
            end: 28,
            interval_days: low,
            interval_max_days: high,
            conditional: None,
            procedure: Some(Procedure::Ct),
            reasons: Vec::new(),
        }
    }

    #[test]
    fn a_range_stays_a_period_and_a_single_interval_is_a_date() {
        let effective = Some(time::macros::date!(2026 - 01 - 31));
        assert_eq!(
            occurrence(effective, &recommendation(Some(180), Some(365))),
            Some(OccurrenceSpec::Period {
                start: time::macros::date!(2026 - 07 - 30),
                end: time::macros::date!(2027 - 01 - 31),
            })
        );
        assert_eq!(
            occurrence(effective, &recommendation(Some(90), Some(90))),
            Some(OccurrenceSpec::Date(time::macros::date!(2026 - 05 - 01)))
        );
        assert_eq!(occurrence(effective, &recommendation(None, None)), None);
        assert_eq!(occurrence(None, &recommendation(Some(90), Some(90))), None);
    }
}

//! What the sex, age and order discrepancies compare a report's text with
//! (issue 12, item 3), read from FHIR JSON: the Patient's sex and age on
//! the report's date, and the ordered procedure's names. Pure: the shell
//! reads the Patient and the ServiceRequest (same server, relative
//! references only) and hands them in; `extract --fhir` finds them
//! `contained` in the report.

use reportsplit_split::{AgeYears, ReportFacts, Sex};
use serde_json::Value;

use crate::map::{ReportSource, is_fhir_id};

/// Where a reference of the report points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `{Type}/{id}` on the report's own server (a relative reference).
    Server(String),
    /// `#{id}`: a resource contained in the report.
    Contained(String),
}

/// The report's `subject` when it is a Patient it can read: `Patient/{id}`
/// (relative: the same server; an absolute URL may name another server,
/// whose credentials reportsplit does not have) or a contained one.
pub fn patient_target(report: &Value) -> Option<Target> {
    target(report.pointer("/subject/reference")?.as_str()?, "Patient")
}

/// The report's `basedOn` ServiceRequests it can read, each once.
pub fn order_targets(report: &Value) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for reference in report
        .get("basedOn")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("reference").and_then(Value::as_str))
    {
        if let Some(found) = target(reference, "ServiceRequest")
            && !out.contains(&found)
        {
            out.push(found);
        }
    }
    out
}

fn target(reference: &str, kind: &str) -> Option<Target> {
    if let Some(id) = reference.strip_prefix('#') {
        return is_fhir_id(id).then(|| Target::Contained(id.to_owned()));
    }
    let id = reference.strip_prefix(kind)?.strip_prefix('/')?;
    is_fhir_id(id).then(|| Target::Server(format!("{kind}/{id}")))
}

/// The resource contained in the report with this id and type.
pub fn contained<'r>(report: &'r Value, kind: &str, id: &str) -> Option<&'r Value> {
    report
        .get("contained")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| {
            r.get("id").and_then(Value::as_str) == Some(id)
                && r.get("resourceType").and_then(Value::as_str) == Some(kind)
        })
}

/// The US Core extension recording the sex assigned at birth.
const BIRTH_SEX: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex";

/// The sex the anatomy check uses: the sex assigned at birth where the
/// Patient records it (US Core `birthsex`, F or M: anatomy follows it), else
/// the administrative `gender` when `female` or `male`; `other`, `unknown`
/// or none give none (no check).
pub fn patient_sex(patient: &Value) -> Option<Sex> {
    let birth_sex = patient
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(BIRTH_SEX))
        .and_then(|e| e.get("valueCode").and_then(Value::as_str));
    match birth_sex {
        Some("F") => return Some(Sex::Female),
        Some("M") => return Some(Sex::Male),
        // Recorded, but neither: no guess from the gender.
        Some(_) => return None,
        None => {}
    }
    match patient.get("gender").and_then(Value::as_str) {
        Some("female") => Some(Sex::Female),
        Some("male") => Some(Sex::Male),
        _ => None,
    }
}

/// The Patient's age in whole years on `on`, from `birthDate` (a year, a
/// year and month, or a full date: a partial date gives a range). `None`
/// without a readable birth date, or one after `on`.
pub fn age_on(patient: &Value, on: time::Date) -> Option<AgeYears> {
    let birth = patient.get("birthDate")?.as_str()?;
    let mut parts = birth.get(..10).unwrap_or(birth).split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: Option<u8> = parts.next().map(str::parse).transpose().ok()?;
    let day: Option<u8> = parts.next().map(str::parse).transpose().ok()?;
    let years = on.year() - year;
    let now = (u8::from(on.month()), on.day());
    let (at_least, at_most) = match (month, day) {
        (Some(month), Some(day)) => {
            let age = years - i32::from(now < (month, day));
            (age, age)
        }
        (Some(month), None) if now.0 != month => {
            let age = years - i32::from(now.0 < month);
            (age, age)
        }
        _ => (years - 1, years),
    };
    Some(AgeYears {
        at_least: u32::try_from(at_least.max(0)).ok()?,
        at_most: u32::try_from(at_most).ok()?,
    })
}

/// The ordered procedure's names: the report's `code` (text and codings'
/// displays) and each ServiceRequest's `code` and `bodySite`.
pub fn ordered_names(report: &Value, orders: &[&Value]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut concept = |concept: &Value| {
        let text = concept.get("text").and_then(Value::as_str);
        let displays = concept
            .get("coding")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("display").and_then(Value::as_str));
        for name in text.into_iter().chain(displays) {
            let name = name.trim();
            if !name.is_empty() && !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    };
    if let Some(code) = report.get("code") {
        concept(code);
    }
    for order in orders {
        if let Some(code) = order.get("code") {
            concept(code);
        }
        for site in order
            .get("bodySite")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            concept(site);
        }
    }
    names
}

/// The facts of one report: the Patient's sex and age on the report's
/// effective date (none without a Patient, or without a date for the age),
/// and the ordered procedure's names.
pub fn report_facts(report: &Value, patient: Option<&Value>, orders: &[&Value]) -> ReportFacts {
    let date = ReportSource::read_any(report)
        .ok()
        .and_then(|source| source.effective_date());
    ReportFacts {
        sex: patient.and_then(patient_sex),
        age: patient.zip(date).and_then(|(p, on)| age_on(p, on)),
        ordered: ordered_names(report, orders),
    }
}

/// [`report_facts`] from what the report itself holds: a contained Patient
/// and contained ServiceRequests (`extract --fhir`, which reads no server).
pub fn contained_facts(report: &Value) -> ReportFacts {
    let contained_of = |target: Target, kind: &str| match target {
        Target::Contained(id) => contained(report, kind, &id),
        Target::Server(_) => None,
    };
    let patient = patient_target(report).and_then(|t| contained_of(t, "Patient"));
    let orders: Vec<&Value> = order_targets(report)
        .into_iter()
        .filter_map(|t| contained_of(t, "ServiceRequest"))
        .collect();
    report_facts(report, patient, &orders)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_read_on_the_same_server_or_contained() {
        let report = json!({"subject": {"reference": "Patient/p1"},
            "basedOn": [{"reference": "ServiceRequest/s1"}, {"reference": "#o"},
                        {"reference": "http://other/fhir/ServiceRequest/x"},
                        {"reference": "ServiceRequest/s1"}]});
        assert_eq!(
            patient_target(&report),
            Some(Target::Server("Patient/p1".into()))
        );
        assert_eq!(
            order_targets(&report),
            [
                Target::Server("ServiceRequest/s1".into()),
                Target::Contained("o".into())
            ]
        );
        for subject in [
            "http://other/fhir/Patient/p1",
            "Group/g",
            "Patient/",
            "Patient/a b",
        ] {
            let report = json!({"subject": {"reference": subject}});
            assert_eq!(patient_target(&report), None, "{subject}");
        }
    }

    #[test]
    fn sex_is_female_or_male_or_none() {
        assert_eq!(patient_sex(&json!({"gender": "female"})), Some(Sex::Female));
        assert_eq!(patient_sex(&json!({"gender": "male"})), Some(Sex::Male));
        assert_eq!(patient_sex(&json!({"gender": "other"})), None);
        assert_eq!(patient_sex(&json!({"gender": "unknown"})), None);
        assert_eq!(patient_sex(&json!({})), None);
        let birth = |code: &str| json!({"gender": "male", "extension": [{"url": BIRTH_SEX, "valueCode": code}]});
        assert_eq!(patient_sex(&birth("F")), Some(Sex::Female));
        assert_eq!(patient_sex(&birth("UNK")), None);
    }

    #[test]
    fn age_is_whole_years_and_a_range_for_a_partial_birth_date() {
        let on = time::macros::date!(2026 - 03 - 15);
        let age = |birth: &str| age_on(&json!({"birthDate": birth}), on);
        let exact = |n| {
            Some(AgeYears {
                at_least: n,
                at_most: n,
            })
        };
        assert_eq!(age("1970-03-15"), exact(56));
        assert_eq!(age("1970-03-16"), exact(55));
        assert_eq!(age("1970-02"), exact(56));
        assert_eq!(age("1970-04"), exact(55));
        assert_eq!(
            age("1970-03"),
            Some(AgeYears {
                at_least: 55,
                at_most: 56
            })
        );
        assert_eq!(
            age("1970"),
            Some(AgeYears {
                at_least: 55,
                at_most: 56
            })
        );
        assert_eq!(age("2026-01-02"), exact(0));
        assert_eq!(age("2027-01-01"), None);
        assert_eq!(age("soon"), None);
        assert_eq!(age_on(&json!({}), on), None);
    }

    #[test]
    fn facts_come_from_the_report_code_and_contained_resources() {
        let report = json!({"resourceType": "DiagnosticReport", "status": "final",
            "effectiveDateTime": "2026-03-15T10:00:00Z",
            "code": {"text": "MR Knee left WO contrast",
                     "coding": [{"system": "http://loinc.org", "code": "x", "display": "MR Knee left WO contrast"}]},
            "subject": {"reference": "#p"}, "basedOn": [{"reference": "#o"}],
            "contained": [
                {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1980-06-01"},
                {"resourceType": "ServiceRequest", "id": "o", "status": "active", "intent": "order",
                 "code": {"text": "MRI knee"}, "bodySite": [{"text": "Left knee"}],
                 "subject": {"reference": "Patient/p"}}]});
        let facts = contained_facts(&report);
        assert_eq!(facts.sex, Some(Sex::Female));
        assert_eq!(
            facts.age,
            Some(AgeYears {
                at_least: 45,
                at_most: 45
            })
        );
        assert_eq!(
            facts.ordered,
            ["MR Knee left WO contrast", "MRI knee", "Left knee"]
        );
    }
}

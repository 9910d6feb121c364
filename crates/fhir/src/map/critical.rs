//! Critical results as resources an alerting system can act on (issue 12,
//! item 2). The finding Observation keeps its `interpretation` (AA); beside
//! it:
//!
//! * each sentence documenting the notification ("discussed with Dr. Lee at
//!   14:05") becomes a **Communication**, status `completed`, `about` the
//!   critical findings' Observations and the report, `topic` critical
//!   result, `recipient` the person as written (display only: a name in a
//!   report is not a resolvable Practitioner), `sent` when the report says
//!   when, `medium` when it says how;
//! * a report with critical results and no such sentence gets a **Flag** on
//!   the patient (status `active`, `author` reportsplit's Device, a
//!   flag-detail extension per critical finding), or, when the site prefers
//!   (`write.unconfirmed_critical = "communication"`), a Communication with
//!   status `preparation`: the call still to be made.
//!
//! A report's notification is read as covering all its critical results:
//! radiologists document one call per report ("These findings were
//! discussed with..."). An amendment that documents the call plans a
//! Communication and no Flag, so the plan supersedes the old Flag, which the
//! foundation closes as `inactive`. R4's Flag needs a subject: a report
//! without one gets neither Flag nor Communication in preparation (counted
//! by the plan, [`unflagged`], and logged by the worker); a documented
//! communication needs none and is written.

use reportsplit_split::{Extraction, Medium, Notification, Urgency};
use serde_json::{Map, Value};

use super::build::Concept;
use super::build::critical::{
    CommunicationSpec, CommunicationState, FLAG_SUBJECT_PLACEHOLDER, FlagSpec, Moment, Priority,
};
use super::{Derivation, Key, MapError, NewResource, Role, fhir_string};

/// Identifier system of the Communications reportsplit writes.
pub const COMMUNICATION_SYSTEM: &str = "urn:reportsplit:communication";
/// Identifier system of the Flags reportsplit writes.
pub const FLAG_SYSTEM: &str = "urn:reportsplit:flag";

/// Which resources critical results get (config `[write]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriticalWrites {
    /// A documented notification as a completed Communication.
    pub communications: bool,
    /// What marks critical results with no documented notification, if anything.
    pub unconfirmed: Option<Unconfirmed>,
}

impl Default for CriticalWrites {
    fn default() -> Self {
        CriticalWrites {
            communications: true,
            unconfirmed: Some(Unconfirmed::Flag),
        }
    }
}

/// The marker of an unconfirmed critical result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unconfirmed {
    Flag,
    Communication,
}

/// The critical results of `extraction` that get no Flag (nor Communication
/// in preparation) because the report has no subject: unconfirmed ones, when
/// the run writes a marker.
pub fn unflagged(has_subject: bool, extraction: &Extraction<'_>, writes: CriticalWrites) -> usize {
    if has_subject || writes.unconfirmed.is_none() || !extraction.notifications.is_empty() {
        return 0;
    }
    extraction.critical.len()
}

/// The resources of `extraction`'s critical results. `member(i)` is the
/// `fullUrl` of finding `i`'s Observation.
pub(super) fn critical_resources(
    d: &Derivation<'_>,
    extraction: &Extraction<'_>,
    member: impl Fn(usize) -> Option<String>,
    writes: CriticalWrites,
) -> Result<Vec<NewResource>, MapError> {
    let mut resources = Vec::new();
    if extraction.critical.is_empty() {
        return Ok(resources);
    }
    let mut findings: Vec<String> = Vec::new();
    for critical in &extraction.critical {
        if critical.finding >= extraction.findings.len() {
            return Err(d.report_error(format!(
                "a critical result points at finding {}, which does not exist",
                critical.finding
            )));
        }
        if let Some(url) = member(critical.finding)
            && !findings.contains(&url)
        {
            findings.push(url);
        }
    }
    let terms: Vec<&str> = extraction.critical.iter().map(|c| c.term).collect();
    let payload = fhir_string(&format!("Critical result: {}", terms.join("; ")))
        .unwrap_or_else(|| "Critical result".to_owned());
    let priority = match extraction.critical.iter().map(|c| c.urgency).min() {
        Some(Urgency::Minutes) => Priority::Stat,
        _ => Priority::Urgent,
    };
    let spans: Vec<[usize; 2]> = extraction
        .critical
        .iter()
        .map(|c| [c.start, c.end])
        .collect();
    let mut about = findings.clone();
    about.push(d.source.reference());
    let topic = Concept::coded(d.codes.get(Key::CriticalTopic));

    if !extraction.notifications.is_empty() {
        if !writes.communications {
            return Ok(resources);
        }
        for notification in &extraction.notifications {
            let content = serde_json::json!({
                "span": [notification.start, notification.end],
                "recipient": notification.recipient.as_ref().map(|r| [r.start, r.end]),
                "when": notification.when.as_ref().map(|w| [w.said.start, w.said.end]),
                "medium": notification.medium,
                "critical": spans,
            });
            let identifier =
                d.identifier_in(COMMUNICATION_SYSTEM, "communication", &content.to_string());
            let spec = CommunicationSpec {
                identifier: identifier.clone(),
                state: CommunicationState::Completed,
                category: d.codes.get(Key::CommunicationCategory),
                priority,
                medium: notification.medium.map(|m| d.codes.get(medium_key(m))),
                topic: topic.clone(),
                about: about.clone(),
                sent: sent(d, notification),
                recipient: notification
                    .recipient
                    .as_ref()
                    .and_then(|r| fhir_string(r.text)),
                payload: payload.clone(),
                note: fhir_string(notification.text),
                evidence: Some(d.evidence(notification.start, notification.end)),
            };
            let json =
                super::build::critical::communication(&spec).map_err(|source| MapError::Build {
                    report: d.source.reference(),
                    source,
                })?;
            let resource = with_context(json, d.source.subject(), d.source.encounter(), false)
                .ok_or_else(|| d.report_error("a built Communication is no JSON object".into()))?;
            resources.push(NewResource::owned(
                d.source,
                identifier,
                Role::Critical,
                resource,
            ));
        }
        return Ok(resources);
    }

    let Some(unconfirmed) = writes.unconfirmed else {
        return Ok(resources);
    };
    let Some(subject) = d.source.subject() else {
        return Ok(resources);
    };
    let content = serde_json::json!({ "critical": spans, "marker": format!("{unconfirmed:?}") });
    let start = d.source.effective_date().map(Moment::Day);
    let (identifier, json) = match unconfirmed {
        Unconfirmed::Flag => {
            let identifier = d.identifier_in(FLAG_SYSTEM, "flag", &content.to_string());
            let spec = FlagSpec {
                identifier: identifier.clone(),
                category: d.codes.get(Key::FlagCategory),
                code: Concept {
                    codings: vec![d.codes.get(Key::CriticalTopic)],
                    text: Some(payload.clone()),
                },
                author: super::full_url(&super::device_identifier(d.run)),
                start,
                details: findings.clone(),
                evidence: extraction
                    .critical
                    .iter()
                    .map(|c| d.evidence(c.start, c.end))
                    .collect(),
            };
            let json = super::build::critical::flag(&spec);
            (identifier, json)
        }
        Unconfirmed::Communication => {
            let identifier = d.identifier_in(
                COMMUNICATION_SYSTEM,
                "communication-due",
                &content.to_string(),
            );
            let spec = CommunicationSpec {
                identifier: identifier.clone(),
                state: CommunicationState::Preparation,
                category: d.codes.get(Key::CommunicationCategory),
                priority,
                medium: None,
                topic,
                about,
                sent: None,
                recipient: None,
                payload,
                note: Some(
                    "The report documents no communication of these critical results.".into(),
                ),
                evidence: None,
            };
            (identifier, super::build::critical::communication(&spec))
        }
    };
    let json = json.map_err(|source| MapError::Build {
        report: d.source.reference(),
        source,
    })?;
    let resource = with_context(
        json,
        Some(subject),
        d.source.encounter(),
        unconfirmed == Unconfirmed::Flag,
    )
    .ok_or_else(|| d.report_error("a built critical-result resource is no JSON object".into()))?;
    resources.push(NewResource::owned(
        d.source,
        identifier,
        Role::Critical,
        resource,
    ));
    Ok(resources)
}

fn medium_key(medium: Medium) -> Key {
    match medium {
        Medium::Phone => Key::MediumPhone,
        Medium::InPerson => Key::MediumInPerson,
        Medium::Verbal => Key::MediumVerbal,
        Medium::Electronic => Key::MediumElectronic,
    }
}

/// When the notification was sent, as precisely as the report allows: the
/// date it states (else the report's effective date when it states only a
/// time) with the time of day and the UTC offset of the report's own
/// `effectiveDateTime`; a day when the offset or the time is unknown.
fn sent(d: &Derivation<'_>, notification: &Notification<'_>) -> Option<Moment> {
    let when = notification.when.as_ref()?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let stated = when
        .date
        .as_deref()
        .and_then(|date| time::Date::parse(date, format).ok());
    let day = stated.or_else(|| when.time.as_ref().and(d.source.effective_date()))?;
    let offset = d
        .source
        .verbatim_element("effectiveDateTime")
        .and_then(Value::as_str)
        .and_then(utc_offset);
    let clock = when.time.as_deref().and_then(|t| {
        let (hour, minute) = t.split_once(':')?;
        time::Time::from_hms(hour.parse().ok()?, minute.parse().ok()?, 0).ok()
    });
    Some(match (clock, offset) {
        (Some(clock), Some(offset)) => {
            Moment::Instant(time::PrimitiveDateTime::new(day, clock).assume_offset(offset))
        }
        _ => Moment::Day(day),
    })
}

/// The UTC offset a FHIR dateTime with a time states (`Z`, `+01:00`).
fn utc_offset(date_time: &str) -> Option<time::UtcOffset> {
    if date_time.len() <= 10 {
        return None;
    }
    if date_time.ends_with('Z') {
        return Some(time::UtcOffset::UTC);
    }
    let sign_at = date_time.len().checked_sub(6)?;
    let (sign, rest) = date_time.get(sign_at..)?.split_at(1);
    let (hours, minutes) = rest.split_once(':')?;
    let (hours, minutes): (i8, i8) = (hours.parse().ok()?, minutes.parse().ok()?);
    match sign {
        "+" => time::UtcOffset::from_hms(hours, minutes, 0).ok(),
        "-" => time::UtcOffset::from_hms(-hours, -minutes, 0).ok(),
        _ => None,
    }
}

/// Puts the report's subject (in place of the builder's placeholder, or
/// after `status` when the builder left none) and encounter, verbatim.
fn with_context(
    json: Value,
    subject: Option<&Value>,
    encounter: Option<&Value>,
    placeholder: bool,
) -> Option<Value> {
    let Value::Object(built) = json else {
        return None;
    };
    let mut out = Map::with_capacity(built.len() + 2);
    let mut placed = false;
    for (key, value) in built {
        if key == "subject" && placeholder {
            if value.get("reference").and_then(Value::as_str) != Some(FLAG_SUBJECT_PLACEHOLDER) {
                return None;
            }
            out.insert(key, subject?.clone());
            if let Some(encounter) = encounter {
                out.insert("encounter".into(), encounter.clone());
            }
            placed = true;
            continue;
        }
        let after_status = key == "status" && !placeholder;
        out.insert(key, value);
        if after_status {
            if let Some(subject) = subject {
                out.insert("subject".into(), subject.clone());
            }
            if let Some(encounter) = encounter {
                out.insert("encounter".into(), encounter.clone());
            }
            placed = true;
        }
    }
    placed.then_some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_offsets_of_fhir_date_times() {
        assert_eq!(
            utc_offset("2026-12-03T09:00:00Z"),
            Some(time::UtcOffset::UTC)
        );
        assert_eq!(
            utc_offset("2026-12-03T09:00:00+01:00"),
            time::UtcOffset::from_hms(1, 0, 0).ok()
        );
        assert_eq!(
            utc_offset("2026-12-03T09:00:00-05:30"),
            time::UtcOffset::from_hms(-5, -30, 0).ok()
        );
        assert_eq!(utc_offset("2026-12-03"), None);
    }
}

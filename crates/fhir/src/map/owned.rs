//! The resource types reportsplit writes for a report ("owned" resources),
//! and how each is found again and superseded.
//!
//! Every owned resource carries two marks:
//! * its own identifier (`identifier`, one system per type, value
//!   `{report key}/{version}/{kind}/{hash}`), on which it is created
//!   conditionally, so a replay never duplicates it;
//! * the report's group tag (`meta.tag`, system [`REPORT_TAG_SYSTEM`], code
//!   the report key), which finds every resource written for a report with
//!   one search per type (`{Type}?_tag=urn:reportsplit:report|{key}`), so an
//!   amendment supersedes them all, not only the Observations that
//!   `DiagnosticReport.result` can hold.
//!
//! A tag rather than a second identifier because `_tag` is a search
//! parameter of every resource type in R4 and servers index it for all of
//! them, while `identifier` is missing on some (SEKMET, our test server, has
//! no search parameter on DetectedIssue at all: a conditional create on its
//! identifier is refused). For the same reason a type whose identifier is not
//! searchable is created conditionally on a second tag that repeats its
//! identifier ([`IDENTITY_TAG_SYSTEM`]).

use serde_json::{Map, Value, json};

use super::Ident;

/// `meta.tag` system of the report an owned resource was derived from; the
/// code is the report key (its id, or the create-mode key `i-...`).
pub const REPORT_TAG_SYSTEM: &str = "urn:reportsplit:report";
/// `meta.tag` system repeating a resource's identifier value, for the types
/// created conditionally on it (see [`OwnedType::identifier_searchable`]).
pub const IDENTITY_TAG_SYSTEM: &str = "urn:reportsplit:identifier";

/// One resource type reportsplit writes for a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnedType {
    pub resource_type: &'static str,
    /// System of the identifier each resource of this type gets.
    pub identifier_system: &'static str,
    /// The status that takes a resource of this type back when the report
    /// no longer supports it (amendment, withdrawal, retraction).
    pub superseded_status: &'static str,
    /// The statuses worth reading back (`status=` of the search), or `None`
    /// when R4 defines no `status` search parameter for the type: then every
    /// one is read and the superseded ones are passed over.
    pub live_statuses: Option<&'static str>,
    /// Whether the type has `note` (Annotation): the superseded version says why there.
    pub has_note: bool,
    /// Created conditionally on `identifier=`; otherwise on the identity tag.
    pub identifier_searchable: bool,
}

/// Every type reportsplit may write for a report, Observations first.
/// To add one: a row here, and the mapping that builds it (its `resource`
/// goes through [`mark_owned`], e.g. via `NewResource::owned`).
pub const OWNED_TYPES: &[OwnedType] = &[
    OwnedType {
        resource_type: "Observation",
        identifier_system: super::OBSERVATION_SYSTEM,
        superseded_status: "entered-in-error",
        live_statuses: Some("registered,preliminary,final,amended,corrected,unknown"),
        has_note: true,
        identifier_searchable: true,
    },
    OwnedType {
        resource_type: "ServiceRequest",
        identifier_system: super::follow_up::SERVICE_REQUEST_SYSTEM,
        superseded_status: "revoked",
        live_statuses: Some("draft,active,on-hold,unknown"),
        has_note: true,
        identifier_searchable: true,
    },
    OwnedType {
        resource_type: "DetectedIssue",
        identifier_system: super::issue::DETECTED_ISSUE_SYSTEM,
        superseded_status: "entered-in-error",
        live_statuses: None,
        has_note: false,
        identifier_searchable: false,
    },
    OwnedType {
        resource_type: "Flag",
        identifier_system: "urn:reportsplit:flag",
        superseded_status: "inactive",
        live_statuses: Some("active"),
        has_note: false,
        identifier_searchable: true,
    },
    OwnedType {
        resource_type: "Communication",
        identifier_system: "urn:reportsplit:communication",
        superseded_status: "entered-in-error",
        live_statuses: Some("preparation,in-progress,not-done,on-hold,stopped,completed,unknown"),
        has_note: true,
        identifier_searchable: true,
    },
];

/// The owned type named `resource_type`, if reportsplit writes that type.
pub fn owned_type(resource_type: &str) -> Option<&'static OwnedType> {
    OWNED_TYPES
        .iter()
        .find(|t| t.resource_type == resource_type)
}

/// The owned type of a resource's JSON.
pub fn owned_type_of(resource: &Value) -> Option<&'static OwnedType> {
    resource
        .get("resourceType")
        .and_then(Value::as_str)
        .and_then(owned_type)
}

impl OwnedType {
    /// The `ifNoneExist` criterion that finds the one resource with this identifier.
    pub fn none_exist(&self, identifier: &Ident) -> String {
        if self.identifier_searchable {
            super::identifier_query(identifier)
        } else {
            format!(
                "_tag={}|{}",
                super::escape_search(IDENTITY_TAG_SYSTEM),
                super::escape_search(&identifier.value)
            )
        }
    }

    /// The search (type-relative query pairs) for this type's resources
    /// written for the report `key`, with `count` per page.
    pub fn search(&self, key: &str, count: u32) -> Vec<(String, String)> {
        let mut query = vec![(
            "_tag".to_owned(),
            format!(
                "{}|{}",
                super::escape_search(REPORT_TAG_SYSTEM),
                super::escape_search(key)
            ),
        )];
        if let Some(statuses) = self.live_statuses {
            query.push(("status".to_owned(), statuses.to_owned()));
        }
        query.push(("_count".to_owned(), count.to_string()));
        query
    }

    /// The values of a resource's identifiers in this type's system.
    pub fn identifiers<'r>(&self, resource: &'r Value) -> impl Iterator<Item = &'r str> {
        let system = self.identifier_system;
        resource
            .get("identifier")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(move |i| i.get("system").and_then(Value::as_str) == Some(system))
            .filter_map(|i| i.get("value").and_then(Value::as_str))
    }
}

/// Puts the report's group tag (and, for a type not searchable by
/// identifier, the identity tag) into `meta.tag`, `meta` placed right after
/// `resourceType` as FHIR orders it. Whatever `meta` already holds stays.
pub fn mark_owned(resource: Value, report_key: &str, identifier: &Ident) -> Value {
    let Value::Object(object) = resource else {
        return resource;
    };
    let identity = object
        .get("resourceType")
        .and_then(Value::as_str)
        .and_then(owned_type)
        .filter(|t| !t.identifier_searchable)
        .map(|_| json!({"system": IDENTITY_TAG_SYSTEM, "code": identifier.value}));
    let mut tags = vec![json!({"system": REPORT_TAG_SYSTEM, "code": report_key})];
    tags.extend(identity);
    let has_meta = object.contains_key("meta");
    let mut out = Map::with_capacity(object.len() + 1);
    let mut pending = Some(tags);
    for (key, value) in object {
        if key == "meta" {
            let mut meta = value;
            if let (Some(meta), Some(tags)) = (meta.as_object_mut(), pending.take()) {
                match meta.get_mut("tag").and_then(Value::as_array_mut) {
                    Some(existing) => existing.extend(tags),
                    None => {
                        meta.insert("tag".into(), Value::Array(tags));
                    }
                }
            }
            out.insert(key, meta);
            continue;
        }
        let after = key == "resourceType" && !has_meta;
        out.insert(key, value);
        if after && let Some(tags) = pending.take() {
            out.insert("meta".into(), json!({ "tag": tags }));
        }
    }
    if let Some(tags) = pending {
        out.insert("meta".into(), json!({ "tag": tags }));
    }
    Value::Object(out)
}

/// The report key in a resource's group tag, if it has one.
pub fn report_key_of(resource: &Value) -> Option<&str> {
    resource
        .pointer("/meta/tag")
        .and_then(Value::as_array)?
        .iter()
        .find(|t| t.get("system").and_then(Value::as_str) == Some(REPORT_TAG_SYSTEM))
        .and_then(|t| t.get("code").and_then(Value::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_owned_type_is_marked_and_found_by_its_tag() {
        let identifier = Ident {
            system: "urn:reportsplit:detected-issue".into(),
            value: "r1/2/issue/ab".into(),
        };
        let marked = mark_owned(
            json!({"resourceType": "DetectedIssue", "status": "preliminary"}),
            "r1",
            &identifier,
        );
        let keys: Vec<&str> = marked
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys, ["resourceType", "meta", "status"]);
        assert_eq!(report_key_of(&marked), Some("r1"));
        assert_eq!(marked["meta"]["tag"][1]["code"], "r1/2/issue/ab");
        let issue = owned_type("DetectedIssue").map(|t| t.none_exist(&identifier));
        assert_eq!(
            issue.as_deref(),
            Some("_tag=urn:reportsplit:identifier|r1/2/issue/ab")
        );
        // an Observation keeps its identifier criterion and gets only the group tag
        let observation = mark_owned(
            json!({"resourceType": "Observation", "meta": {"profile": ["p"]}}),
            "r1",
            &identifier,
        );
        assert_eq!(
            observation["meta"],
            json!({"profile": ["p"], "tag": [{"system": REPORT_TAG_SYSTEM, "code": "r1"}]})
        );
        let search = owned_type("ServiceRequest").map(|t| t.search("r|1", 50));
        assert_eq!(
            search,
            Some(vec![
                ("_tag".to_owned(), r"urn:reportsplit:report|r\|1".to_owned()),
                (
                    "status".to_owned(),
                    "draft,active,on-hold,unknown".to_owned()
                ),
                ("_count".to_owned(), "50".to_owned()),
            ])
        );
    }

    #[test]
    fn superseded_statuses_are_the_ones_each_type_defines() {
        let status = |t: &str| owned_type(t).map(|t| t.superseded_status);
        assert_eq!(status("Observation"), Some("entered-in-error"));
        assert_eq!(status("ServiceRequest"), Some("revoked"));
        assert_eq!(status("Flag"), Some("inactive"));
        assert_eq!(status("DetectedIssue"), Some("entered-in-error"));
        assert_eq!(status("Communication"), Some("entered-in-error"));
        assert_eq!(status("Patient"), None);
    }
}

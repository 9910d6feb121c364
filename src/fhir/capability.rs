//! The CapabilityStatement check at start: fail before the first write when
//! the server lacks something the run needs, naming every missing piece.

use serde_json::Value;

/// What a run needs from the server.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    /// Search parameters on DiagnosticReport the configured filters use
    /// (e.g. `category`, `status`); the common `_lastUpdated` is checked too.
    pub search_params: Vec<String>,
    /// False for `--dry-run`: then only reading is needed.
    pub write: bool,
    /// The report is updated by JSON Patch (`write.method = "patch"`).
    pub json_patch: bool,
    /// `retract`: Provenances are searched by `agent` and `recorded`.
    pub provenance_search: bool,
    /// The other resource types the run writes for a report (ServiceRequest,
    /// Flag...: `[write]` switches), each created conditionally, found again
    /// by a search and superseded by an update.
    pub owned: Vec<OwnedNeed>,
}

/// What a run needs of one resource type it writes besides Observations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedNeed {
    pub resource_type: &'static str,
    /// The search parameters its conditional create and its search use
    /// (`identifier`, `_tag`); unlisted `_` ones are warnings, as for reports.
    pub search_params: Vec<&'static str>,
}

/// What the server offers beyond the requirements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub fhir_version: String,
    /// DiagnosticReport supports `patch` with `application/json-patch+json`.
    pub json_patch: bool,
    /// Parameters we asked for that the server does not list. Servers often
    /// omit the common `_`-parameters, so these are warnings, not failures.
    pub unlisted_search_params: Vec<String>,
    /// Types the run writes that the statement does not list at all. Servers
    /// list only part of what they serve (SEKMET omits DetectedIssue, which
    /// it stores and searches), so these are warnings; a type the statement
    /// lists without what the run needs is a failure.
    pub unlisted_types: Vec<String>,
    /// A system-level `$export` (FHIR Bulk Data) is listed: `--from-export`
    /// kicks one off; without it, paged search.
    pub bulk_export: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CapabilityError {
    #[error("the server's CapabilityStatement is not one: {0}")]
    NotACapabilityStatement(String),
    #[error("the server is FHIR {0}; reportsplit needs FHIR R4 (4.0.x)")]
    WrongVersion(String),
    #[error("the server lacks what this run needs: {}", .0.join("; "))]
    Missing(Vec<String>),
}

/// Checks a CapabilityStatement against the requirements. Pure.
pub fn check(statement: &Value, needs: &Requirements) -> Result<Capabilities, CapabilityError> {
    if statement.get("resourceType").and_then(Value::as_str) != Some("CapabilityStatement") {
        return Err(CapabilityError::NotACapabilityStatement(
            statement
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or("no resourceType")
                .to_string(),
        ));
    }
    let fhir_version = statement
        .get("fhirVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !fhir_version.starts_with("4.0") {
        return Err(CapabilityError::WrongVersion(if fhir_version.is_empty() {
            "(no fhirVersion)".into()
        } else {
            fhir_version
        }));
    }
    let rests: Vec<&Value> = statement
        .get("rest")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter(|r| r.get("mode").and_then(Value::as_str) != Some("client"))
                .collect()
        })
        .unwrap_or_default();
    let resource = |kind: &str| -> Option<&Value> {
        rests.iter().find_map(|rest| {
            rest.get("resource")?
                .as_array()?
                .iter()
                .find(|r| r.get("type").and_then(Value::as_str) == Some(kind))
        })
    };
    let has_interaction = |list: Option<&Value>, code: &str| -> bool {
        list.and_then(|l| l.get("interaction"))
            .and_then(Value::as_array)
            .is_some_and(|i| {
                i.iter()
                    .any(|i| i.get("code").and_then(Value::as_str) == Some(code))
            })
    };

    let mut missing = Vec::new();
    let mut unlisted_types = Vec::new();
    let report = resource("DiagnosticReport");
    if !has_interaction(report, "search-type") {
        missing.push("DiagnosticReport search (search-type)".to_string());
    }
    if !has_interaction(report, "read") {
        missing.push("DiagnosticReport read".to_string());
    }
    let listed_params = search_params(report);
    let mut unlisted_search_params = Vec::new();
    for param in needs
        .search_params
        .iter()
        .map(String::as_str)
        .chain(["_lastUpdated"])
    {
        if listed_params.contains(&param) {
            continue;
        }
        if param.starts_with('_') {
            unlisted_search_params.push(param.to_string());
        } else {
            missing.push(format!("DiagnosticReport search parameter `{param}`"));
        }
    }
    if needs.write {
        if !rests
            .iter()
            .any(|rest| has_interaction(Some(rest), "transaction"))
        {
            missing.push("transaction (system interaction)".to_string());
        }
        if !has_interaction(report, "update") {
            missing.push("DiagnosticReport update".to_string());
        }
        if report
            .and_then(|r| r.get("versioning"))
            .and_then(Value::as_str)
            == Some("no-version")
        {
            missing.push("DiagnosticReport versioning (If-Match needs versionId)".to_string());
        }
        for kind in ["Observation", "Provenance"] {
            let resource = resource(kind);
            if !has_interaction(resource, "create") {
                missing.push(format!("{kind} create"));
            }
            if kind == "Observation"
                && resource
                    .and_then(|r| r.get("conditionalCreate"))
                    .and_then(Value::as_bool)
                    != Some(true)
            {
                missing.push("Observation conditional create (conditionalCreate)".to_string());
            }
        }
        if !has_interaction(resource("Observation"), "search-type") {
            missing.push("Observation search (to resolve conditional creates)".to_string());
        }
        for need in &needs.owned {
            let kind = need.resource_type;
            let entry = resource(kind);
            if entry.is_none() {
                unlisted_types.push(kind.to_string());
                continue;
            }
            for interaction in ["create", "update", "search-type"] {
                if !has_interaction(entry, interaction) {
                    missing.push(format!("{kind} {interaction}"));
                }
            }
            if entry
                .and_then(|r| r.get("conditionalCreate"))
                .and_then(Value::as_bool)
                != Some(true)
            {
                missing.push(format!("{kind} conditional create (conditionalCreate)"));
            }
            let listed = search_params(entry);
            for &param in &need.search_params {
                if listed.contains(&param) {
                    continue;
                }
                if param.starts_with('_') {
                    unlisted_search_params.push(format!("{kind}:{param}"));
                } else {
                    missing.push(format!("{kind} search parameter `{param}`"));
                }
            }
        }
    }
    if needs.provenance_search {
        let provenance = resource("Provenance");
        if !has_interaction(provenance, "search-type") {
            missing.push("Provenance search (search-type)".to_string());
        }
        let listed = search_params(provenance);
        for param in ["agent", "recorded"] {
            if !listed.contains(&param) {
                missing.push(format!("Provenance search parameter `{param}`"));
            }
        }
    }
    let json_patch = has_interaction(report, "patch")
        && statement
            .get("patchFormat")
            .and_then(Value::as_array)
            .is_some_and(|f| {
                f.iter()
                    .any(|f| f.as_str() == Some("application/json-patch+json"))
            });
    if needs.write && needs.json_patch && !json_patch {
        missing.push(
            "DiagnosticReport patch with application/json-patch+json (write.method = \"patch\")"
                .to_string(),
        );
    }
    if !missing.is_empty() {
        return Err(CapabilityError::Missing(missing));
    }
    let bulk_export = rests.iter().any(|rest| {
        rest.get("operation")
            .and_then(Value::as_array)
            .is_some_and(|operations| operations.iter().any(is_export))
    });
    Ok(Capabilities {
        fhir_version,
        json_patch,
        unlisted_search_params,
        unlisted_types,
        bulk_export,
    })
}

/// A `rest.operation` entry that is Bulk Data's `$export`: by its name, or
/// by its definition (servers name operations their own way).
fn is_export(operation: &Value) -> bool {
    let name = operation.get("name").and_then(Value::as_str).unwrap_or("");
    let definition = operation
        .get("definition")
        .and_then(Value::as_str)
        .unwrap_or("");
    name.trim_start_matches('$') == "export"
        || definition
            .rsplit('/')
            .next()
            .is_some_and(|last| last.split('|').next() == Some("export"))
}

/// The search parameters a CapabilityStatement resource entry lists.
fn search_params(resource: Option<&Value>) -> Vec<&str> {
    resource
        .and_then(|r| r.get("searchParam"))
        .and_then(Value::as_array)
        .map(|params| {
            params
                .iter()
                .filter_map(|p| p.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn interactions(codes: &[&str]) -> Value {
        codes.iter().map(|c| json!({"code": c})).collect()
    }

    fn full() -> Value {
        json!({
            "resourceType": "CapabilityStatement", "fhirVersion": "4.0.1",
            "patchFormat": ["application/json-patch+json"],
            "rest": [{"mode": "server", "interaction": interactions(&["transaction", "batch"]), "resource": [
                {"type": "DiagnosticReport", "versioning": "versioned-update",
                 "interaction": interactions(&["read", "search-type", "update", "patch"]),
                 "searchParam": [{"name": "_lastUpdated"}, {"name": "category"}, {"name": "status"}]},
                {"type": "Observation", "conditionalCreate": true, "interaction": interactions(&["create", "search-type"])},
                {"type": "Provenance", "interaction": interactions(&["create"])}
            ]}]
        })
    }

    fn needs() -> Requirements {
        Requirements {
            search_params: vec!["category".into(), "status".into()],
            write: true,
            json_patch: false,
            provenance_search: false,
            owned: Vec::new(),
        }
    }

    #[test]
    fn a_full_server_passes_and_offers_json_patch() {
        let caps = check(&full(), &needs()).unwrap();
        assert!(caps.json_patch);
        assert!(caps.unlisted_search_params.is_empty());
    }

    #[test]
    fn every_missing_piece_is_named() {
        let mut statement = full();
        statement["rest"][0]["interaction"] = json!([{"code": "batch"}]);
        statement["rest"][0]["resource"][1]["conditionalCreate"] = json!(false);
        statement["rest"][0]["resource"][0]["searchParam"] = json!([]);
        let Err(CapabilityError::Missing(missing)) = check(&statement, &needs()) else {
            panic!("must fail")
        };
        assert!(
            missing.iter().any(|m| m.contains("transaction")),
            "{missing:?}"
        );
        assert!(
            missing.iter().any(|m| m.contains("conditional create")),
            "{missing:?}"
        );
        assert!(
            missing.iter().any(|m| m.contains("`category`")),
            "{missing:?}"
        );
        assert!(
            !missing.iter().any(|m| m.contains("_lastUpdated")),
            "a common parameter only warns"
        );
    }

    #[test]
    fn dry_run_needs_only_search() {
        let mut statement = full();
        statement["rest"][0]["interaction"] = json!([]);
        statement["rest"][0]["resource"]
            .as_array_mut()
            .unwrap()
            .truncate(1);
        assert!(
            check(
                &statement,
                &Requirements {
                    write: false,
                    ..needs()
                }
            )
            .is_ok()
        );
        assert!(check(&statement, &needs()).is_err());
    }

    #[test]
    fn other_versions_and_documents_are_refused() {
        let mut statement = full();
        statement["fhirVersion"] = json!("4.3.0");
        assert_eq!(
            check(&statement, &needs()),
            Err(CapabilityError::WrongVersion("4.3.0".into()))
        );
        assert!(matches!(
            check(&json!({"resourceType": "OperationOutcome"}), &needs()),
            Err(CapabilityError::NotACapabilityStatement(_))
        ));
    }

    #[test]
    fn a_retraction_needs_provenance_search_by_agent_and_recorded() {
        let retracting = Requirements {
            provenance_search: true,
            ..needs()
        };
        let Err(CapabilityError::Missing(missing)) = check(&full(), &retracting) else {
            panic!("no Provenance search in full()")
        };
        assert!(
            missing.iter().any(|m| m.contains("Provenance search (")),
            "{missing:?}"
        );
        assert!(
            missing.iter().any(|m| m.contains("`recorded`")),
            "{missing:?}"
        );
        let mut statement = full();
        statement["rest"][0]["resource"][2] = json!({"type": "Provenance",
            "interaction": [{"code": "create"}, {"code": "search-type"}],
            "searchParam": [{"name": "agent"}, {"name": "recorded"}]});
        assert!(check(&statement, &retracting).is_ok());
    }

    fn writing(types: &[&'static str]) -> Requirements {
        Requirements {
            owned: types
                .iter()
                .map(|&resource_type| OwnedNeed {
                    resource_type,
                    search_params: vec!["identifier", "_tag"],
                })
                .collect(),
            ..needs()
        }
    }

    #[test]
    fn every_type_the_config_writes_must_be_offered_in_full() {
        let mut statement = full();
        let resources = statement["rest"][0]["resource"].as_array_mut().unwrap();
        resources.push(json!({"type": "Flag", "conditionalCreate": true,
            "interaction": interactions(&["create", "update", "search-type"]),
            "searchParam": [{"name": "identifier"}]}));
        resources.push(json!({"type": "Communication",
            "interaction": interactions(&["create", "search-type"])}));
        // `_tag` is a common parameter, and a type not listed at all may
        // still be served: both are warnings.
        let caps = check(&statement, &writing(&["Flag", "DetectedIssue"])).unwrap();
        assert_eq!(caps.unlisted_search_params, ["Flag:_tag"]);
        assert_eq!(caps.unlisted_types, ["DetectedIssue"]);
        let Err(CapabilityError::Missing(missing)) =
            check(&statement, &writing(&["Flag", "Communication"]))
        else {
            panic!("Communication falls short")
        };
        assert_eq!(
            missing,
            [
                "Communication update",
                "Communication conditional create (conditionalCreate)",
                "Communication search parameter `identifier`",
            ]
        );
        // A dry run writes nothing: no type is needed.
        let dry = Requirements {
            write: false,
            ..writing(&["ServiceRequest"])
        };
        assert!(check(&statement, &dry).is_ok());
    }

    #[test]
    fn a_system_export_is_noticed_by_its_name_or_definition() {
        let mut statement = full();
        assert!(!check(&statement, &needs()).unwrap().bulk_export);
        statement["rest"][0]["operation"] = json!([{"name": "export",
            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export|2.0.0"}]);
        assert!(check(&statement, &needs()).unwrap().bulk_export);
        statement["rest"][0]["operation"] = json!([{"name": "bulk", "definition": "http://hl7.org/fhir/OperationDefinition/export"}]);
        assert!(check(&statement, &needs()).unwrap().bulk_export);
        statement["rest"][0]["operation"] = json!([{"name": "everything"}]);
        assert!(!check(&statement, &needs()).unwrap().bulk_export);
    }

    #[test]
    fn no_patch_is_noted_and_fails_a_patch_run() {
        let mut statement = full();
        statement["patchFormat"] = json!([]);
        let patching = Requirements {
            json_patch: true,
            ..needs()
        };
        let Err(CapabilityError::Missing(missing)) = check(&statement, &patching) else {
            panic!("a patch run needs PATCH")
        };
        assert!(missing[0].contains("json-patch"), "{missing:?}");
        assert!(!check(&statement, &needs()).unwrap().json_patch);
    }
}

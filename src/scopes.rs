//! Whether the SMART scopes a configuration requests cover what a run does
//! with each resource type. Checked at start-up (and by `check-config`), so
//! a scope that leaves out Flag or Communication is named before the first
//! report, not discovered as a 403 in the middle of a backfill.
//!
//! Both SMART syntaxes are read: v1 (`system/Observation.write`,
//! `system/*.read`, `system/*.*`) and v2 (`system/Observation.crus`,
//! `system/*.rs`). Contexts `system/` and `user/` grant; `patient/` scopes
//! are one patient's and grant nothing to a worker over all reports. A v2
//! scope narrowed by a query (`system/Observation.rs?category=imaging`) is
//! taken as granting its permissions: the server decides what the query
//! allows, and reportsplit only writes what it reads.

/// One permission a run needs on a resource type (SMART v2 letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Create,
    Read,
    Update,
    Search,
}

impl Permission {
    fn letter(self) -> char {
        match self {
            Permission::Create => 'c',
            Permission::Read => 'r',
            Permission::Update => 'u',
            Permission::Search => 's',
        }
    }

    /// The SMART v1 word that grants this permission.
    fn v1(self) -> &'static str {
        match self {
            Permission::Read | Permission::Search => "read",
            Permission::Create | Permission::Update => "write",
        }
    }
}

/// What the scopes granted do not cover, one `Type.letters` per type with
/// gaps (empty: covered). `needs` lists each type with its permissions.
pub fn uncovered(scope: &str, needs: &[(&str, &[Permission])]) -> Vec<String> {
    let granted: Vec<(&str, &str)> = scope
        .split_whitespace()
        .filter_map(|scope| {
            let (context, rest) = scope.split_once('/')?;
            if context != "system" && context != "user" {
                return None;
            }
            let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
            rest.split_once('.')
        })
        .collect();
    let grants = |resource_type: &str, permission: Permission| {
        granted.iter().any(|&(kind, permissions)| {
            (kind == "*" || kind == resource_type)
                && (permissions == "*"
                    || permissions == permission.v1()
                    || (permissions.chars().all(|c| "cruds".contains(c))
                        && permissions.contains(permission.letter())))
        })
    };
    needs
        .iter()
        .filter_map(|&(resource_type, permissions)| {
            let missing: String = permissions
                .iter()
                .filter(|&&p| !grants(resource_type, p))
                .map(|p| p.letter())
                .collect();
            (!missing.is_empty()).then(|| format!("{resource_type}.{missing}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Permission::{Create, Read, Search, Update};
    use super::*;

    const NEEDS: &[(&str, &[Permission])] = &[
        ("DiagnosticReport", &[Read, Search, Update]),
        ("Observation", &[Create, Read, Search, Update]),
        ("Flag", &[Create, Search, Update]),
    ];

    #[test]
    fn v2_scopes_per_type_and_wildcard() {
        assert!(uncovered("system/*.cruds", NEEDS).is_empty());
        assert!(
            uncovered(
                "system/DiagnosticReport.rsu system/Observation.crus system/Flag.cus",
                NEEDS
            )
            .is_empty()
        );
        assert_eq!(
            uncovered(
                "system/DiagnosticReport.rsu system/Observation.crs system/Provenance.c",
                NEEDS
            ),
            ["Observation.u", "Flag.csu"]
        );
    }

    #[test]
    fn v1_scopes() {
        assert!(uncovered("system/*.read system/*.write", NEEDS).is_empty());
        assert!(uncovered("system/*.*", NEEDS).is_empty());
        assert_eq!(uncovered("system/*.read", NEEDS).len(), 3);
    }

    #[test]
    fn patient_scopes_grant_nothing_and_queries_keep_their_permissions() {
        assert_eq!(uncovered("patient/*.cruds", NEEDS).len(), 3);
        assert!(
            uncovered(
                "user/DiagnosticReport.rsu?category=RAD system/Observation.crus system/Flag.cus",
                NEEDS
            )
            .is_empty()
        );
    }
}

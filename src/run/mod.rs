//! The run engine every mode shares: the connected [`Worker`], [`drive`]
//! (the one loop over reports: bounded concurrency, stop requests, the
//! panic guard), the [`Tally`] of outcomes, dead letters and how a run ends
//! ([`Ending`], shared by the batch commands' summaries).
//!
//! A mode (`crate::mode`) only decides which reports to feed the loop and
//! what to remember between them (a checkpoint, a window's cursor, a queue).

pub mod apply;
pub mod dead_letter;
mod drive;
mod end;
pub mod progress;
mod tally;

pub use drive::{Panicked, drive, settle};
pub(crate) use end::from_run_errors;
pub use end::{Ending, StopLine, per_second};
pub use tally::{BAD_LINE, Failure, Tally, reasons, to_metrics};

use reportsplit_fhir::limits::Limits;
use reportsplit_fhir::map::{BuildError, RunInfo};
use reportsplit_split::Lexicon;
use time::OffsetDateTime;

use crate::config::{Config, ConfigError};
use crate::error::Class;
use crate::fhir::{Capabilities, CapabilityError, FhirClient, FhirError, Requirements};
use crate::scopes::Permission;
use crate::state::StateError;
use apply::ApplyContext;

/// Why a run (a sync pass, or the start of any mode) cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("CapabilityStatement {url}")]
    Capability {
        url: String,
        #[source]
        source: CapabilityError,
    },
    #[error(transparent)]
    Fhir(#[from] FhirError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("mappings.dir")]
    Mappings(#[source] crate::tables::TablesError),
    #[error(
        "auth.scope does not cover what this run does (add the SMART scopes, or switch the types off in [write]): {}",
        .missing.join(", ")
    )]
    Scopes { missing: Vec<String> },
    #[error("cannot build reportsplit's Device resource")]
    Device(#[source] BuildError),
    #[error(
        "the server created reportsplit's Device but neither a search ({query}) nor the create's Location finds it"
    )]
    DeviceMissing { query: String },
    #[error("cannot write the transactions to {path}")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl RunError {
    /// See [`Class`].
    pub fn class(&self) -> Class {
        match self {
            RunError::Config(_) | RunError::Mappings(_) | RunError::Scopes { .. } => Class::Config,
            RunError::Capability { .. } | RunError::DeviceMissing { .. } => Class::Refused,
            RunError::Fhir(error) => error.class(),
            RunError::State(error) => error.class(),
            RunError::Output { .. } | RunError::Device(_) => Class::Internal,
        }
    }
}

/// A connected worker: client, checked capabilities, extractor tables.
pub struct Worker {
    pub config: Config,
    pub client: FhirClient,
    pub capabilities: Capabilities,
    pub lexicon: Lexicon,
    pub run: RunInfo,
    /// The bounds on one report's work (`[limits]`).
    pub limits: Limits,
    /// The server's `Device/<id>` that the Provenance of every write names
    /// (found or created by [`Worker::connect`] when the run writes).
    pub device: Option<String>,
    /// Patients and ServiceRequests read for the discrepancy checks, shared
    /// by every report this worker handles.
    pub facts: crate::facts::FactsCache,
}

/// `Device/<id>` of the oldest Device: earliest `meta.lastUpdated`, then the
/// smallest id (shorter first, so numeric ids sort as numbers). Every worker
/// that sees the same Devices picks the same one.
fn oldest_device(devices: &[serde_json::Value]) -> Option<String> {
    let key = |device: &serde_json::Value| {
        let updated = device
            .pointer("/meta/lastUpdated")
            .and_then(serde_json::Value::as_str)
            .and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            });
        let id = device
            .get("id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        // Devices without a readable time sort last.
        (updated.is_none(), updated, id.len(), id.to_owned())
    };
    devices
        .iter()
        .filter(|d| d.get("id").and_then(serde_json::Value::as_str).is_some())
        .min_by_key(|d| key(d))
        .and_then(|d| d.get("id").and_then(serde_json::Value::as_str))
        .map(|id| format!("Device/{id}"))
}

impl Worker {
    /// [`Worker::check`], then, when the run writes, finds (or creates) this
    /// version's Device: see [`Worker::resolve_device`].
    pub async fn connect(config: Config, write: bool) -> Result<Worker, RunError> {
        Worker::connect_with(config, write, false).await
    }

    /// [`Worker::connect`]; `provenance_search`: the run also searches
    /// Provenances by `agent` and `recorded` (`retract`).
    pub async fn connect_with(
        config: Config,
        write: bool,
        provenance_search: bool,
    ) -> Result<Worker, RunError> {
        let mut worker = Worker::check_with(config, write, provenance_search).await?;
        if write {
            worker.device = Some(worker.resolve_device().await?);
        }
        Ok(worker)
    }

    /// The server's `Device/<id>` standing for this reportsplit version.
    ///
    /// Its uniqueness must not depend on a check-then-create race: servers
    /// do not make `If-None-Exist` atomic, so workers started together (a
    /// backfill beside the daemon, two cron jobs) can each create one. So
    /// the Device is found by its identifier and duplicates are tolerated
    /// deterministically (the oldest, by `meta.lastUpdated` then id, which
    /// every worker picks alike); it is created (conditionally) only when
    /// none exists, and searched again after the create, or after a 412
    /// from a create that lost the race. Transactions then reference it by
    /// id instead of creating it conditionally each time, so a duplicate
    /// Device can never make them fail.
    pub async fn resolve_device(&self) -> Result<String, RunError> {
        let ident = reportsplit_fhir::map::device_identifier(&self.run);
        let query = reportsplit_fhir::map::identifier_query(&ident);
        if let Some(found) = self.find_device(&query).await? {
            return Ok(found);
        }
        let device = reportsplit_fhir::map::device(&self.run).map_err(RunError::Device)?;
        let mut headers = reqwest::header::HeaderMap::new();
        let value = reqwest::header::HeaderValue::from_str(&query).map_err(|error| {
            RunError::Device(reportsplit_fhir::map::BuildError::Invalid(format!(
                "identifier search {query:?}: {error}"
            )))
        })?;
        headers.insert("If-None-Exist", value);
        let url = self.client.url("Device")?;
        let body = serde_json::to_vec(&device).map_err(|source| FhirError::Json {
            method: reqwest::Method::POST,
            url: url.to_string(),
            source,
        })?;
        let response = self
            .client
            .send(reqwest::Method::POST, url, headers, Some(body))
            .await?;
        let created = match response.status {
            status if status.is_success() => response.location.clone(),
            reqwest::StatusCode::PRECONDITION_FAILED | reqwest::StatusCode::CONFLICT => {
                tracing::info!(
                    status = response.status.as_u16(),
                    server_says = response.diagnostics().as_deref().unwrap_or(""),
                    "another worker created reportsplit's Device at the same time; searching again"
                );
                None
            }
            _ => return Err(response.into_error().into()),
        };
        if let Some(found) = self.find_device(&query).await? {
            return Ok(found);
        }
        created
            .as_deref()
            .and_then(apply::relative_reference)
            .ok_or(RunError::DeviceMissing { query })
    }

    /// Every Device of the reportsplit release `version` (`Device/<id>`,
    /// sorted): the duplicates that workers started together may have made
    /// are all its Devices, and a Provenance may name any of them.
    pub async fn devices_of(&self, version: &str) -> Result<Vec<String>, RunError> {
        let run = RunInfo {
            extractor_version: version.to_owned(),
            recorded: self.run.recorded,
            writes: Default::default(),
        };
        let query = reportsplit_fhir::map::identifier_query(
            &reportsplit_fhir::map::device_identifier(&run),
        );
        let mut devices: Vec<String> = self
            .search_devices(&query)
            .await?
            .iter()
            .filter_map(|d| d.get("id").and_then(serde_json::Value::as_str))
            .map(|id| format!("Device/{id}"))
            .collect();
        devices.sort();
        devices.dedup();
        Ok(devices)
    }

    /// Every Device matching `query` (`identifier=system|value`), all pages.
    async fn search_devices(&self, query: &str) -> Result<Vec<serde_json::Value>, RunError> {
        let Some((name, value)) = query.split_once('=') else {
            return Ok(Vec::new());
        };
        let params = [
            (name.to_owned(), value.to_owned()),
            ("_count".to_owned(), "50".to_owned()),
        ];
        let mut pager = crate::fhir::SearchPager::new(self.client.clone(), "Device", &params)?;
        let mut devices = Vec::new();
        while let Some(page) = pager.next_page().await? {
            devices.extend(page.resources);
        }
        Ok(devices)
    }

    /// The oldest Device matching `query` (`identifier=system|value`), if any.
    async fn find_device(&self, query: &str) -> Result<Option<String>, RunError> {
        let devices = self.search_devices(query).await?;
        let count = devices.len();
        let oldest = oldest_device(&devices);
        if count > 1
            && let Some(oldest) = &oldest
        {
            tracing::warn!(
                count,
                using = %oldest,
                "several Devices carry reportsplit's identifier (workers started together each created one); every worker uses the oldest"
            );
        }
        Ok(oldest)
    }

    /// Builds the client and checks the server's CapabilityStatement; writes nothing.
    pub async fn check(config: Config, write: bool) -> Result<Worker, RunError> {
        Worker::check_with(config, write, false).await
    }

    /// [`Worker::check`], with Provenance search among the needs if asked.
    async fn check_with(
        config: Config,
        write: bool,
        provenance_search: bool,
    ) -> Result<Worker, RunError> {
        // Tables first: a bad site table is a configuration error, found before any request.
        let lexicon = match &config.mappings.dir {
            Some(dir) => crate::tables::load_lexicon(dir).map_err(RunError::Mappings)?,
            None => Lexicon::builtin(),
        };
        let limits = config.limits()?;
        let owned_types = if write {
            config.write.optional_types()
        } else {
            Vec::new()
        };
        if let Some(scope) = config.auth.scope() {
            let missing = crate::scopes::uncovered(
                scope,
                &scope_needs(write, provenance_search, &owned_types),
            );
            if !missing.is_empty() {
                return Err(RunError::Scopes { missing });
            }
        }
        let client = FhirClient::new(&config.client_options()?, &config.auth)?;
        let metadata = client.get(client.url("metadata")?).await?.success()?;
        let needs = Requirements {
            search_params: config.filters().search_params(),
            write,
            json_patch: config.write.method == crate::config::WriteMethod::Patch,
            provenance_search,
            owned: owned_types
                .iter()
                .map(|&resource_type| crate::fhir::OwnedNeed {
                    resource_type,
                    search_params: owned_search_params(resource_type),
                })
                .collect(),
        };
        let capabilities =
            crate::fhir::check_capabilities(&metadata.body, &needs).map_err(|source| {
                RunError::Capability {
                    url: metadata.url.clone(),
                    source,
                }
            })?;
        if !capabilities.unlisted_types.is_empty() {
            tracing::warn!(types = ?capabilities.unlisted_types, "the server's CapabilityStatement does not list these types the run writes; relying on them anyway");
        }
        if !capabilities.unlisted_search_params.is_empty() {
            tracing::warn!(params = ?capabilities.unlisted_search_params, "the server does not list these search parameters; relying on them anyway");
        }
        tracing::info!(fhir_version = %capabilities.fhir_version, json_patch = capabilities.json_patch, "server capabilities checked");
        let writes = config.write.writes();
        Ok(Worker {
            config,
            client,
            capabilities,
            lexicon,
            limits,
            run: RunInfo {
                extractor_version: env!("CARGO_PKG_VERSION").to_string(),
                recorded: OffsetDateTime::now_utc(),
                writes,
            },
            device: None,
            facts: Default::default(),
        })
    }

    /// A worker that never contacted its server, for tests of what the
    /// modes do with results (the client points at `config`'s URL).
    #[cfg(test)]
    pub(crate) fn offline(config: Config) -> Worker {
        let limits = config.limits().expect("valid limits");
        let client = FhirClient::new(
            &config.client_options().expect("client options"),
            &config.auth,
        )
        .expect("a client");
        Worker {
            config,
            client,
            capabilities: Capabilities {
                fhir_version: "4.0.1".into(),
                json_patch: false,
                unlisted_search_params: Vec::new(),
                unlisted_types: Vec::new(),
                bulk_export: false,
            },
            lexicon: Lexicon::builtin(),
            limits,
            run: RunInfo {
                extractor_version: env!("CARGO_PKG_VERSION").to_string(),
                recorded: OffsetDateTime::now_utc(),
                writes: Default::default(),
            },
            device: None,
            facts: Default::default(),
        }
    }

    pub fn apply_context(&self, dry_run: bool) -> ApplyContext<'_> {
        ApplyContext {
            client: &self.client,
            lexicon: &self.lexicon,
            run: &self.run,
            limits: self.limits,
            conflict_retries: self.config.write.conflict_retries,
            dry_run,
            method: self.config.write.method,
            device: self.device.as_deref(),
            new_reports: false,
            discrepancies: self.config.discrepancy_kinds(),
            facts: &self.facts,
        }
    }
}

/// The search parameters a run uses on an owned type: its conditional
/// create (`identifier`) and the search for a report's resources (`_tag`).
fn owned_search_params(resource_type: &str) -> Vec<&'static str> {
    // SEKMET, like other servers, has no `identifier` search on
    // DetectedIssue: those are created conditionally on a tag instead.
    if resource_type == "DetectedIssue" {
        vec!["_tag"]
    } else {
        vec!["identifier", "_tag"]
    }
}

/// The SMART permissions a run needs on each type it touches.
fn scope_needs<'t>(
    write: bool,
    provenance_search: bool,
    owned_types: &[&'t str],
) -> Vec<(&'t str, &'static [Permission])> {
    use Permission::{Create, Read, Search, Update};
    const READ: &[Permission] = &[Read, Search];
    const READ_UPDATE: &[Permission] = &[Read, Search, Update];
    const OWNED: &[Permission] = &[Create, Read, Search, Update];
    if !write {
        return vec![("DiagnosticReport", READ)];
    }
    let mut needs = vec![
        ("DiagnosticReport", READ_UPDATE),
        ("Observation", OWNED),
        (
            "Provenance",
            if provenance_search {
                &[Create, Read, Search]
            } else {
                &[Create]
            },
        ),
        ("Device", &[Create, Search]),
    ];
    needs.extend(owned_types.iter().map(|&kind| (kind, OWNED)));
    needs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_oldest_device_is_picked_alike_whatever_the_order() {
        let a = json!({"id": "b7", "meta": {"lastUpdated": "2026-12-01T10:00:00.120Z"}});
        let b = json!({"id": "a1", "meta": {"lastUpdated": "2026-12-01T10:00:00.300+00:00"}});
        let c = json!({"id": "9", "meta": {"lastUpdated": "2026-12-01T10:00:00.120Z"}});
        let d = json!({"id": "0"});
        let one = oldest_device(&[a.clone(), b.clone(), c.clone(), d.clone()]);
        let two = oldest_device(&[d, c, b, a]);
        assert_eq!(one.as_deref(), Some("Device/9"));
        assert_eq!(one, two);
        assert_eq!(oldest_device(&[]), None);
    }
}

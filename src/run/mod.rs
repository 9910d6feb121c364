//! The run engine every mode shares: the connected [`Worker`], [`drive`]
//! (the one loop over reports: bounded concurrency, stop requests, the
//! panic guard), the [`Tally`] of outcomes, dead letters and how a run ends.
//!
//! A mode (`crate::mode`) only decides which reports to feed the loop and
//! what to remember between them (a checkpoint, a window's cursor, a queue).

pub mod apply;
pub mod dead_letter;
mod drive;
mod tally;

pub use drive::{Panicked, drive, settle};
pub use tally::{Failure, Tally, reasons, to_metrics};

use reportsplit_fhir::map::{BuildError, RunInfo};
use reportsplit_split::Lexicon;
use time::OffsetDateTime;

use crate::config::{Config, ConfigError};
use crate::error::Class;
use crate::fhir::{Capabilities, CapabilityError, FhirClient, FhirError, Requirements};
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
    #[error("cannot build reportsplit's Device resource")]
    Device(#[source] BuildError),
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
            RunError::Config(_) | RunError::Mappings(_) => Class::Config,
            RunError::Capability { .. } => Class::Refused,
            RunError::Fhir(error) => error.class(),
            RunError::State(error) => error.class(),
            RunError::Output { .. } | RunError::Device(_) => Class::Internal,
        }
    }
}

/// How a run ended, for the summary and the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every report was handled.
    Complete,
    /// The run finished, but some reports failed.
    Partial,
    /// A stop request ended it early; running it again resumes.
    Interrupted,
    /// The server stopped answering; progress is saved.
    Unreachable,
}

/// A connected worker: client, checked capabilities, extractor tables.
pub struct Worker {
    pub config: Config,
    pub client: FhirClient,
    pub capabilities: Capabilities,
    pub lexicon: Lexicon,
    pub run: RunInfo,
}

impl Worker {
    /// [`Worker::check`], then, when the run writes, creates this version's
    /// Device once before any concurrent transaction. Each transaction also
    /// creates it conditionally, but two concurrent first transactions on a
    /// server without transactional uniqueness could create it twice, after
    /// which every conditional create of it would fail.
    pub async fn connect(config: Config, write: bool) -> Result<Worker, RunError> {
        let worker = Worker::check(config, write).await?;
        if write {
            worker.ensure_device().await?;
        }
        Ok(worker)
    }

    async fn ensure_device(&self) -> Result<(), RunError> {
        let device = reportsplit_fhir::map::device(&self.run).map_err(RunError::Device)?;
        let mut headers = reqwest::header::HeaderMap::new();
        let query = reportsplit_fhir::map::identifier_query(
            &reportsplit_fhir::map::device_identifier(&self.run),
        );
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
        self.client
            .send(reqwest::Method::POST, url, headers, Some(body))
            .await?
            .success()?;
        Ok(())
    }

    /// Builds the client and checks the server's CapabilityStatement; writes nothing.
    pub async fn check(config: Config, write: bool) -> Result<Worker, RunError> {
        // Tables first: a bad site table is a configuration error, found before any request.
        let lexicon = match &config.mappings.dir {
            Some(dir) => crate::tables::load_lexicon(dir).map_err(RunError::Mappings)?,
            None => Lexicon::builtin(),
        };
        let client = FhirClient::new(&config.client_options()?, &config.auth)?;
        let metadata = client.get(client.url("metadata")?).await?.success()?;
        let needs = Requirements {
            search_params: config.filters().search_params(),
            write,
            json_patch: config.write.method == crate::config::WriteMethod::Patch,
        };
        let capabilities =
            crate::fhir::check_capabilities(&metadata.body, &needs).map_err(|source| {
                RunError::Capability {
                    url: metadata.url.clone(),
                    source,
                }
            })?;
        if !capabilities.unlisted_search_params.is_empty() {
            tracing::warn!(params = ?capabilities.unlisted_search_params, "the server does not list these search parameters; relying on them anyway");
        }
        tracing::info!(fhir_version = %capabilities.fhir_version, json_patch = capabilities.json_patch, "server capabilities checked");
        Ok(Worker {
            config,
            client,
            capabilities,
            lexicon,
            run: RunInfo {
                extractor_version: env!("CARGO_PKG_VERSION").to_string(),
                recorded: OffsetDateTime::now_utc(),
            },
        })
    }

    pub fn apply_context(&self, dry_run: bool) -> ApplyContext<'_> {
        ApplyContext {
            client: &self.client,
            lexicon: &self.lexicon,
            run: &self.run,
            limits: self.config.text_limits(),
            conflict_retries: self.config.write.conflict_retries,
            dry_run,
            method: self.config.write.method,
        }
    }
}

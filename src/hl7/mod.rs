//! HL7 v2 results in: what the `mllp` listener's writer and the `hl7` files
//! mode share. One report mapped from a message (`reportsplit-hl7`) is
//! stored (found by its filler-order identifier, updated with `If-Match` or
//! created conditionally: [`store`]), then the stored version is enriched
//! by the same code path as `sync` ([`crate::run::apply::apply_report`]).
//! The reports of one order, and the Patient create of one identifier, are
//! handled one at a time ([`KeyedLocks`]).

pub mod dead_letter;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};

use reportsplit_hl7::{Hl7Settings, MappedReport, PatientIdentifier};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde_json::{Value, json};

pub use crate::config::hl7::{Hl7Config, PatientMode};
pub use store::Stored;

use crate::error::Class;
use crate::fhir::FhirError;
use crate::run::apply::{Outcome, apply_report};
use crate::run::{Failure, Tally, Worker, reasons};

/// Why one report of a message could not be stored and enriched.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Fhir(#[from] FhirError),
    #[error("{what}: the server refused it")]
    Refused {
        what: &'static str,
        #[source]
        source: FhirError,
    },
    #[error("no Patient carries the PID-3 identifier (hl7.patient = \"resolve\")")]
    PatientNotFound,
    #[error("{count} {resource_type} resources carry the same identifier")]
    Ambiguous {
        resource_type: &'static str,
        count: usize,
    },
    #[error("the report is still changing after {retries} re-reads (HTTP 412 each time)")]
    Conflict { retries: u32 },
    #[error("the server stored the resource but neither its answer nor a read returns it")]
    Missing,
    #[error("enriching the stored report: {0}")]
    Enrich(#[source] Failure),
}

impl IngestError {
    /// See [`Class`].
    pub fn class(&self) -> Class {
        match self {
            IngestError::Fhir(error) => error.class(),
            IngestError::Enrich(failure) => failure.class(),
            _ => Class::Report,
        }
    }

    /// A stable name for summaries, metrics and dead letters.
    pub fn key(&self) -> String {
        match self {
            IngestError::Fhir(FhirError::Status { status, .. }) => {
                format!("http-{}", status.as_u16())
            }
            IngestError::Fhir(FhirError::Transport { .. }) => "unreachable".into(),
            IngestError::Fhir(_) => "fhir".into(),
            IngestError::Refused {
                source: FhirError::Status { status, .. },
                ..
            } => format!("store-rejected-{}", status.as_u16()),
            IngestError::Refused { .. } => "store-rejected".into(),
            IngestError::PatientNotFound => "patient-not-found".into(),
            IngestError::Ambiguous { .. } => "ambiguous-identifier".into(),
            IngestError::Conflict { .. } => "conflict".into(),
            IngestError::Missing => "missing".into(),
            IngestError::Enrich(failure) => failure.key(),
        }
    }

    /// True when retrying later will fail the same way: the message is a
    /// dead letter. Anything about the server (down, overloaded, a
    /// conflict) is retried.
    pub fn is_permanent(&self) -> bool {
        match self {
            IngestError::Refused { .. }
            | IngestError::PatientNotFound
            | IngestError::Ambiguous { .. }
            | IngestError::Missing => true,
            IngestError::Enrich(failure) => {
                failure.is_permanent() || failure.class() == Class::Report
            }
            IngestError::Fhir(error) => error.class() == Class::Report,
            IngestError::Conflict { .. } => false,
        }
    }
}

/// What became of one report of a message.
#[derive(Debug)]
pub struct Ingested {
    pub stored: Stored,
    /// The enrichment's outcome (`None` for a stale message, left alone).
    pub enriched: Option<Outcome>,
}

/// Async locks by key: the holders of one key go one at a time. Entries
/// live while someone holds or waits for them, so the map stays as small
/// as the work in flight.
#[derive(Debug, Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    /// Locks every key of `keys` (sorted and deduplicated first, so two
    /// callers never wait for each other in a cycle).
    pub async fn lock(&self, keys: &[&str]) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        let mut keys: Vec<&str> = keys.to_vec();
        keys.sort_unstable();
        keys.dedup();
        let mut guards = Vec::with_capacity(keys.len());
        for key in keys {
            let lock = {
                let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
                locks.retain(|_, weak| weak.strong_count() > 0);
                match locks.get(key).and_then(Weak::upgrade) {
                    Some(lock) => lock,
                    None => {
                        let lock = Arc::new(tokio::sync::Mutex::new(()));
                        locks.insert(key.to_owned(), Arc::downgrade(&lock));
                        lock
                    }
                }
            };
            guards.push(lock.lock_owned().await);
        }
        guards
    }
}

/// The HL7 side of a connected worker.
pub struct Ingest<'w> {
    pub worker: &'w Worker,
    pub settings: Hl7Settings,
    pub patient: PatientMode,
    locks: KeyedLocks,
}

impl<'w> Ingest<'w> {
    pub fn new(worker: &'w Worker) -> Result<Ingest<'w>, crate::config::ConfigError> {
        Ok(Ingest {
            worker,
            settings: worker.config.hl7.settings()?,
            patient: worker.config.hl7.patient,
            locks: KeyedLocks::default(),
        })
    }

    /// Stores one mapped report and enriches the stored version, holding
    /// the locks of its order and its patient throughout.
    pub async fn ingest(&self, mapped: &MappedReport) -> Result<Ingested, IngestError> {
        let [order_key, patient_key] = serial_keys(mapped);
        let _guards = self.locks.lock(&[&order_key, &patient_key]).await;
        let subject = self
            .patient_reference(&mapped.patient, &mapped.patient_resource)
            .await?;
        let mut report = mapped.report.clone();
        report["subject"] = json!({"reference": subject});
        let client = &self.worker.client;
        let (stored, version) = store::store(
            client,
            &report,
            &mapped.order_key,
            mapped.reported_at,
            self.worker.config.write.conflict_retries,
        )
        .await?;
        if stored == Stored::Stale {
            return Ok(Ingested {
                stored,
                enriched: None,
            });
        }
        let context = self.worker.apply_context(false);
        let enriched = apply_report(&context, version)
            .await
            .map_err(|error| IngestError::Enrich(Failure::Apply(error)))?;
        Ok(Ingested {
            stored,
            enriched: Some(enriched),
        })
    }

    /// `Patient/<id>` of the patient with `identifier`: found, or (with
    /// `hl7.patient = "create"`) created conditionally (as `patient`: the
    /// identifier and the message's PID demographics) and searched again,
    /// as the Device is (`Worker::resolve_device`).
    async fn patient_reference(
        &self,
        identifier: &PatientIdentifier,
        patient: &Value,
    ) -> Result<String, IngestError> {
        let token = format!("{}|{}", identifier.system, identifier.value);
        let client = &self.worker.client;
        let found = store::search(client, "Patient", &token).await?;
        match found.as_slice() {
            [one] => return Ok(patient_id(one)),
            [] if self.patient == PatientMode::Resolve => {
                return Err(IngestError::PatientNotFound);
            }
            [] => {}
            several => {
                return Err(IngestError::Ambiguous {
                    resource_type: "Patient",
                    count: several.len(),
                });
            }
        }
        let url = client.url("Patient")?;
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&format!("identifier={token}")) {
            headers.insert("If-None-Exist", value);
        }
        let body = serde_json::to_vec(patient).map_err(|source| FhirError::Json {
            method: Method::POST,
            url: url.to_string(),
            source,
        })?;
        let response = client.send(Method::POST, url, headers, Some(body)).await?;
        if !response.status.is_success() {
            return Err(IngestError::Refused {
                what: "the Patient's create",
                source: response.into_error(),
            });
        }
        match store::search(client, "Patient", &token).await?.as_slice() {
            [one] => Ok(patient_id(one)),
            [] => Err(IngestError::Missing),
            several => Err(IngestError::Ambiguous {
                resource_type: "Patient",
                count: several.len(),
            }),
        }
    }
}

/// What one report's writing must not overlap with: its order (the
/// report's create-or-update) and its patient identifier (the Patient's
/// create). Held in this process ([`KeyedLocks`]) and, with the spool in
/// PostgreSQL, across replicas (the spool's claims).
pub fn serial_keys(mapped: &MappedReport) -> [String; 2] {
    [
        format!("order:{}", mapped.order_key),
        format!("patient:{}|{}", mapped.patient.system, mapped.patient.value),
    ]
}

fn patient_id(patient: &Value) -> String {
    format!(
        "Patient/{}",
        patient
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    )
}

/// The counts of an HL7 run: messages by verdict, reports by what storing
/// did, the enrichment's own [`Tally`], failures by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hl7Tally {
    pub messages: u64,
    pub accepted: u64,
    /// AA, not written: another processing id or service section.
    pub ignored: u64,
    /// AE/AR, by reason.
    pub refused: BTreeMap<String, u64>,
    /// Reports by what storing did (created, updated, unchanged, stale).
    pub stored: BTreeMap<String, u64>,
    /// Reports that could not be stored or enriched, by reason.
    pub failed: BTreeMap<String, u64>,
    pub enrichment: Tally,
}

impl Hl7Tally {
    pub fn record(&mut self, result: &Result<Ingested, IngestError>) {
        match result {
            Ok(ingested) => {
                *self
                    .stored
                    .entry(ingested.stored.key().to_owned())
                    .or_default() += 1;
                if let Some(outcome) = &ingested.enriched {
                    self.enrichment.record(&Ok(clone_outcome(outcome)));
                }
            }
            Err(error) => *self.failed.entry(error.key()).or_default() += 1,
        }
    }

    pub fn refused_total(&self) -> u64 {
        self.refused.values().sum()
    }

    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// The counting part of an outcome (the bundles are not needed to count).
fn clone_outcome(outcome: &Outcome) -> Outcome {
    match outcome {
        Outcome::Current => Outcome::Current,
        Outcome::Skipped(reason) => Outcome::Skipped(reason.clone()),
        Outcome::Gone => Outcome::Gone,
        Outcome::Written {
            observations,
            superseded,
            conflicts,
            ..
        } => Outcome::Written {
            observations: *observations,
            superseded: *superseded,
            conflicts: *conflicts,
            bundle: Value::Null,
            response: Value::Null,
        },
        Outcome::Planned {
            observations,
            superseded,
            ..
        } => Outcome::Planned {
            observations: *observations,
            superseded: *superseded,
            bundle: Value::Null,
        },
    }
}

impl std::fmt::Display for Hl7Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages: {} accepted, {} ignored, {} refused{}; reports stored{}, {} failed{}; enrichment: {}",
            self.messages,
            self.accepted,
            self.ignored,
            self.refused_total(),
            reasons(&self.refused),
            reasons(&self.stored),
            self.failed_total(),
            reasons(&self.failed),
            self.enrichment,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn holders_of_one_key_go_one_at_a_time_and_other_keys_do_not_wait() {
        let locks = Arc::new(KeyedLocks::default());
        let inside = Arc::new(AtomicU32::new(0));
        let most = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for n in 0..8 {
            let (locks, inside, most) = (locks.clone(), inside.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let patient = format!("patient:{}", n % 2);
                let _guards = locks.lock(&["order:same", &patient]).await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for task in tasks {
            task.await.expect("no panic");
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        let other = locks.lock(&["order:other"]).await;
        assert_eq!(other.len(), 1);
        assert!(locks.locks.lock().expect("lock").len() <= 1);
    }
}

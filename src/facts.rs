//! Reading what the sex, age and order discrepancies compare a report with:
//! its Patient (`subject`) and its ordered ServiceRequests (`basedOn`), on
//! the report's own server only (relative references; an absolute URL may
//! be another server's, and our credentials are not for it), each read once
//! per report and kept a short while in a bounded cache that every worker
//! of the process shares (a Patient has many reports, often in one run).
//!
//! A Patient or ServiceRequest that is missing, refused (401/403) or
//! unreadable only means the checks that need it are not made: it is
//! counted ([`FactsCache::unread`], `reportsplit_facts_unread_total`) and
//! logged (its reference and the status, never its content), and the
//! report goes on. Only a definite
//! answer is cached (the resource, or a 4xx): after a 5xx or a timeout the
//! next report of the same patient reads again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reportsplit_fhir::facts::{Target, contained, order_targets, patient_target, report_facts};
use reportsplit_split::{DiscrepancyKinds, ReportFacts};
use serde_json::Value;

use crate::fhir::FhirClient;

/// How long a read resource (or its absence) is reused.
const TTL: Duration = Duration::from_secs(60);
/// How many resources the cache holds at most.
const CAPACITY: usize = 2048;

/// The process's cache of Patients and ServiceRequests read for the
/// discrepancy checks. Cheap to clone; clones share it.
#[derive(Debug, Clone, Default)]
pub struct FactsCache {
    inner: Arc<Inner>,
}

/// When a resource was read, and the resource (`None`: not readable).
type Entry = (Instant, Option<Arc<Value>>);

#[derive(Debug, Default)]
struct Inner {
    /// `Type/id` → its entry.
    entries: Mutex<HashMap<String, Entry>>,
    unread: AtomicU64,
    reads: AtomicU64,
}

impl FactsCache {
    /// Patients and ServiceRequests that could not be read (the checks
    /// needing them were not made), since the process started.
    pub fn unread(&self) -> u64 {
        self.inner.unread.load(Ordering::Relaxed)
    }

    /// Reads from the server (cache misses), since the process started.
    pub fn reads(&self) -> u64 {
        self.inner.reads.load(Ordering::Relaxed)
    }

    /// The facts of `report` for the checks of `kinds`: its Patient only
    /// when sex or age is checked, its ServiceRequests only when the order
    /// is; contained ones are taken from the report.
    pub async fn report_facts(
        &self,
        client: &FhirClient,
        report: &Value,
        kinds: DiscrepancyKinds,
    ) -> ReportFacts {
        let patient = if kinds.sex || kinds.age {
            match patient_target(report) {
                Some(target) => self.resolve(client, report, target, "Patient").await,
                None => None,
            }
        } else {
            None
        };
        let mut orders: Vec<Arc<Value>> = Vec::new();
        if kinds.order {
            for target in order_targets(report) {
                if let Some(order) = self.resolve(client, report, target, "ServiceRequest").await {
                    orders.push(order);
                }
            }
        }
        let orders: Vec<&Value> = orders.iter().map(Arc::as_ref).collect();
        let mut facts = report_facts(report, patient.as_deref(), &orders);
        if !kinds.order {
            facts.ordered.clear();
        }
        facts
    }

    async fn resolve(
        &self,
        client: &FhirClient,
        report: &Value,
        target: Target,
        kind: &str,
    ) -> Option<Arc<Value>> {
        match target {
            Target::Contained(id) => contained(report, kind, &id).cloned().map(Arc::new),
            Target::Server(reference) => self.read(client, &reference, kind).await,
        }
    }

    /// `reference` from the cache, or read (and cached, readable or not).
    async fn read(&self, client: &FhirClient, reference: &str, kind: &str) -> Option<Arc<Value>> {
        if let Some(found) = self.cached(reference) {
            if found.is_none() {
                self.count_unread(client, kind);
            }
            return found;
        }
        self.inner.reads.fetch_add(1, Ordering::Relaxed);
        let read = match client.url(reference) {
            Ok(url) => client.get(url).await,
            Err(error) => Err(error),
        };
        // A definite answer (the resource, or a 4xx: missing, refused) is
        // kept; a transient failure (5xx, timeout) is not, so the next
        // report of the patient tries again.
        let (resource, definite) = match read {
            Ok(response) if response.status.is_success() => (
                Some(response.body)
                    .filter(|body| body.get("resourceType").and_then(Value::as_str) == Some(kind)),
                true,
            ),
            Ok(response) => {
                tracing::info!(
                    reference,
                    status = response.status.as_u16(),
                    "cannot read the report's {kind}: the discrepancy checks that need it are not made"
                );
                (None, response.status.is_client_error())
            }
            Err(error) => {
                tracing::info!(
                    reference,
                    error = %error,
                    "cannot read the report's {kind}: the discrepancy checks that need it are not made"
                );
                (None, false)
            }
        };
        let resource = resource.map(Arc::new);
        if resource.is_none() {
            self.count_unread(client, kind);
        }
        if definite {
            self.store(reference, resource.clone());
        }
        resource
    }

    /// One more resource not read: in [`FactsCache::unread`] and the
    /// client's metrics (`reportsplit_facts_unread_total`).
    fn count_unread(&self, client: &FhirClient, kind: &str) {
        self.inner.unread.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = client.metrics() {
            metrics.facts_unread(kind);
        }
    }

    fn cached(&self, reference: &str) -> Option<Option<Arc<Value>>> {
        let entries = self.inner.entries.lock().ok()?;
        let (at, resource) = entries.get(reference)?;
        (at.elapsed() < TTL).then(|| resource.clone())
    }

    fn store(&self, reference: &str, resource: Option<Arc<Value>>) {
        let Ok(mut entries) = self.inner.entries.lock() else {
            return;
        };
        if entries.len() >= CAPACITY {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
        }
        if entries.len() >= CAPACITY {
            // Still full of fresh entries: drop the oldest.
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(key, _)| key.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(reference.to_owned(), (Instant::now(), resource));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthConfig;
    use crate::fhir::{ClientOptions, RetryPolicy};
    use reportsplit_split::Sex;
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn client(base: &str) -> FhirClient {
        let options = ClientOptions {
            base: url::Url::parse(&format!("{base}/fhir/")).unwrap(),
            timeout: Duration::from_secs(5),
            ca_file: None,
            retry: RetryPolicy {
                max_retries: 0,
                base: Duration::from_millis(1),
                max: Duration::from_millis(1),
            },
            max_concurrent: 2,
            requests_per_second: None,
            max_response_bytes: reportsplit_fhir::limits::Limits::default().response_bytes,
        };
        FhirClient::new(&options, &AuthConfig::None).unwrap()
    }

    fn report(subject: &str) -> Value {
        json!({"resourceType": "DiagnosticReport", "id": "r", "status": "final",
               "code": {"text": "CT Pelvis"}, "subject": {"reference": subject},
               "effectiveDateTime": "2026-12-01"})
    }

    /// Fault injection: a 503 is not cached (the next report reads again),
    /// a 404 is (read once), a Patient read is cached for the next report.
    #[tokio::test]
    async fn only_a_definite_answer_is_cached() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/fhir/Patient/p1"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/fhir/Patient/p1"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(
                    json!({"resourceType": "Patient", "id": "p1", "gender": "female"}),
                ),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/fhir/Patient/gone"))
            .respond_with(ResponseTemplate::new(404))
            .mount(&server)
            .await;
        let client = client(&server.uri());
        let cache = FactsCache::default();
        let kinds = DiscrepancyKinds::ALL;
        let facts = cache
            .report_facts(&client, &report("Patient/p1"), kinds)
            .await;
        assert_eq!((facts.sex, cache.reads(), cache.unread()), (None, 1, 1));
        for _ in 0..2 {
            let facts = cache
                .report_facts(&client, &report("Patient/p1"), kinds)
                .await;
            assert_eq!(facts.sex, Some(Sex::Female));
        }
        assert_eq!(cache.reads(), 2, "read again after the 503, then cached");
        for _ in 0..2 {
            let facts = cache
                .report_facts(&client, &report("Patient/gone"), kinds)
                .await;
            assert_eq!(facts.sex, None);
        }
        assert_eq!((cache.reads(), cache.unread()), (3, 3));
        // Nothing is read when no check needs it, nor for another server's Patient.
        let off = DiscrepancyKinds {
            sex: false,
            age: false,
            ..kinds
        };
        cache
            .report_facts(&client, &report("Patient/new"), off)
            .await;
        cache
            .report_facts(&client, &report("http://elsewhere/fhir/Patient/p1"), kinds)
            .await;
        assert_eq!(cache.reads(), 3);
    }
}

//! The HTTP layer: timeouts, retries with backoff, concurrency and rate caps,
//! authorization.
//!
//! # Which requests are retried
//! GET is idempotent. A transaction POST is retried too (after 429, 5xx, a
//! timeout or a reset, when we cannot know whether it committed). That is
//! safe ONLY because of invariants of every transaction the planner
//! (src/write) builds, which must be kept:
//! 1. every create in it is conditional (`ifNoneExist` on a deterministic
//!    identifier), so a replay creates no second copy of what the first
//!    attempt created;
//! 2. every update carries `ifMatch` with the version read, and a
//!    transaction is atomic, so a replay of a transaction that did commit
//!    fails as a whole with 412 (nothing of it is applied twice, not even an
//!    unconditional Provenance create); the writer then re-reads the report,
//!    whose tag shows the work is done.
//!
//! Any other POST must not go through [`FhirClient::transaction`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderMap, LOCATION, RETRY_AFTER,
};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;
use url::Url;

use super::FHIR_JSON;
use crate::auth::{Auth, AuthConfig, AuthError};
use crate::error::Class;

/// Failures talking to the FHIR server. Messages name the request but never
/// carry report content or credentials.
#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    #[error("{method} {url}: HTTP {status}{}", outcome_suffix(.outcome))]
    Status {
        method: Method,
        url: String,
        status: StatusCode,
        /// Diagnostics from the server's OperationOutcome, if any.
        outcome: Option<String>,
    },
    #[error("{method} {url}: no response")]
    Transport {
        method: Method,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method} {url}: the response is not FHIR JSON")]
    Json {
        method: Method,
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("authorization failed: {0}")]
    Auth(#[from] AuthError),
    #[error("invalid URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("{url}: refusing to follow a paging link to another server or path: {link}")]
    ForeignLink { url: String, link: String },
    /// A 3xx that would leave the configured server (origin and base path),
    /// or any 3xx that reached us: redirects are followed only on our own
    /// server, so nothing another host answers is ever trusted.
    #[error(
        "{method} {url}: HTTP {status} redirect to {target}, off the configured server: refused"
    )]
    Redirect {
        method: Method,
        url: String,
        status: StatusCode,
        /// The redirect's origin (`scheme://host:port`) only: its path and
        /// query may carry search parameters.
        target: String,
    },
    #[error("{url}: {reason}")]
    Unstable { url: String, reason: String },
    #[error("{method} {url}: the response is over {limit} bytes (limits.response_bytes): refused")]
    TooLarge {
        method: Method,
        url: String,
        limit: usize,
    },
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

impl FhirError {
    /// See [`crate::error::Class`]. An error status other than an
    /// authorization refusal or a gateway's is about the one request.
    pub fn class(&self) -> Class {
        match self {
            FhirError::Transport { .. } => Class::Unreachable,
            FhirError::Auth(_)
            | FhirError::ForeignLink { .. }
            | FhirError::Redirect { .. }
            | FhirError::TooLarge { .. } => Class::Refused,
            FhirError::Status { status, .. } => match status.as_u16() {
                401 | 403 => Class::Refused,
                502..=504 => Class::Unreachable,
                _ => Class::Report,
            },
            FhirError::Url { .. } | FhirError::CaFile { .. } => Class::Config,
            FhirError::Json { .. } | FhirError::Unstable { .. } | FhirError::Build(_) => {
                Class::Report
            }
        }
    }
}

fn outcome_suffix(outcome: &Option<String>) -> String {
    outcome
        .as_ref()
        .map(|o| format!(" ({o})"))
        .unwrap_or_default()
}

/// Exponential backoff with full jitter: the n-th retry waits a random time
/// in [0, min(max, base·2ⁿ)], or what the server's Retry-After asks if longer.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << retry.min(16))
            .min(self.max);
        ceiling.mul_f64(rand::random::<f64>())
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The FHIR base URL (e.g. `https://fhir.example.org/r4`).
    pub base: Url,
    /// Whole-request timeout (connect, send, read the body).
    pub timeout: Duration,
    /// PEM file of extra trusted CA certificates (a hospital's own CA).
    pub ca_file: Option<PathBuf>,
    pub retry: RetryPolicy,
    /// At most this many requests in flight at once.
    pub max_concurrent: usize,
    /// At most this many request starts per second, if set.
    pub requests_per_second: Option<f64>,
    /// Largest response body read (`limits.response_bytes`); a larger one
    /// is refused while it is read, never held whole.
    pub max_response_bytes: usize,
}

/// A response the caller has to look at (success or a status it handles,
/// such as 412 or 404).
#[derive(Debug, Clone)]
pub struct FhirResponse {
    pub status: StatusCode,
    pub etag: Option<String>,
    pub location: Option<String>,
    /// `Content-Location` (where a Bulk Data kick-off says its status is).
    pub content_location: Option<String>,
    /// What `Retry-After` asks, on any status (a Bulk Data status poll's 202 too).
    pub retry_after: Option<Duration>,
    /// `X-Progress` of a Bulk Data status poll.
    pub progress: Option<String>,
    /// The JSON body, `Value::Null` when empty.
    pub body: Value,
    /// The request, for error messages.
    pub method: Method,
    pub url: String,
}

impl FhirResponse {
    /// Turns a non-2xx status into [`FhirError::Status`].
    pub fn success(self) -> Result<FhirResponse, FhirError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(self.into_error())
        }
    }

    /// The diagnostics of an OperationOutcome body (they describe the
    /// request, not report content).
    pub fn diagnostics(&self) -> Option<String> {
        operation_outcome_text(&self.body)
    }

    pub fn into_error(self) -> FhirError {
        FhirError::Status {
            outcome: operation_outcome_text(&self.body),
            method: self.method,
            url: self.url,
            status: self.status,
        }
    }
}

/// The diagnostics of an OperationOutcome, joined; these describe the
/// request, not report content.
fn operation_outcome_text(body: &Value) -> Option<String> {
    if body.get("resourceType")?.as_str()? != "OperationOutcome" {
        return None;
    }
    let texts: Vec<&str> = body
        .get("issue")?
        .as_array()?
        .iter()
        .filter_map(|issue| {
            issue
                .get("diagnostics")
                .and_then(Value::as_str)
                .or_else(|| issue.pointer("/details/text").and_then(Value::as_str))
        })
        .collect();
    (!texts.is_empty()).then(|| texts.join("; "))
}

/// Spaces request starts `interval` apart.
#[derive(Debug)]
struct RateLimiter {
    interval: Duration,
    next_slot: Mutex<Instant>,
}

impl RateLimiter {
    async fn wait(&self) {
        let slot = {
            let mut next = self.next_slot.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Counters a run reports.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub requests: std::sync::atomic::AtomicU64,
    pub retries: std::sync::atomic::AtomicU64,
}

/// A FHIR REST client for one base URL. Cheap to clone; clones share the
/// connection pool, the caps and the counters.
#[derive(Clone)]
pub struct FhirClient {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
    /// HTTP Basic from credentials in the configured URL (sensitive).
    url_basic: Option<reqwest::header::HeaderValue>,
    retry: RetryPolicy,
    in_flight: Arc<Semaphore>,
    rate: Option<Arc<RateLimiter>>,
    stats: Arc<ClientStats>,
    metrics: Option<crate::metrics::Metrics>,
    max_response_bytes: usize,
}

impl std::fmt::Debug for FhirClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FhirClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// What one attempt came to.
enum Attempt {
    Done(FhirResponse),
    Retry {
        response: Option<FhirResponse>,
        error: Option<FhirError>,
        retry_after: Option<Duration>,
    },
}

impl FhirClient {
    /// Builds the client and its authenticator (which shares the TLS setup,
    /// so a token endpoint behind the same private CA works too).
    pub fn new(options: &ClientOptions, auth: &AuthConfig) -> Result<FhirClient, FhirError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("reportsplit/", env!("CARGO_PKG_VERSION")))
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .gzip(true);
        if let Some(path) = &options.ca_file {
            let pem = std::fs::read(path).map_err(|e| FhirError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| FhirError::CaFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(FhirError::CaFile {
                    path: path.clone(),
                    reason: "no PEM certificate in it".into(),
                });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let mut base = options.base.clone();
        // Credentials in the URL become a Basic header of our own (when no
        // [auth] is configured; the config refuses both) and leave the URL,
        // so no URL we log, print or put in an error carries them.
        let url_basic = url_credentials(&mut base)?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        // Redirects: followed only while they stay on the configured server
        // (origin and base path); any other 3xx comes back to `attempt`, which
        // refuses it. No Referer: it would carry the search URL to whoever
        // the server points at.
        let own = base.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                attempt.error("more than 10 redirects")
            } else if is_under(attempt.url(), &own) {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        builder = builder.redirect(redirects).referer(false);
        let http = builder.build().map_err(FhirError::Build)?;
        let auth = Auth::for_server(auth, base.as_str(), http.clone())?;
        Ok(FhirClient {
            http,
            base,
            auth,
            url_basic,
            retry: options.retry.clone(),
            in_flight: Arc::new(Semaphore::new(options.max_concurrent.max(1))),
            rate: options.requests_per_second.filter(|r| *r > 0.0).map(|r| {
                Arc::new(RateLimiter {
                    interval: Duration::from_secs_f64(1.0 / r),
                    next_slot: Mutex::new(Instant::now()),
                })
            }),
            stats: Arc::new(ClientStats::default()),
            metrics: None,
            max_response_bytes: options.max_response_bytes,
        })
    }

    /// The base URL, always ending in `/`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Also records each attempt's latency and each retry in `metrics`.
    pub fn with_metrics(self, metrics: crate::metrics::Metrics) -> FhirClient {
        FhirClient {
            metrics: Some(metrics),
            ..self
        }
    }

    /// Where this client's owner records metrics, if anywhere.
    pub fn metrics(&self) -> Option<&crate::metrics::Metrics> {
        self.metrics.as_ref()
    }

    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// The same client (pool, caps, counters, authorization) reading bodies
    /// of at most `max_bytes` (never more than its own bound): for one kind
    /// of response smaller than a search page, such as an attachment.
    pub fn with_max_response_bytes(&self, max_bytes: usize) -> FhirClient {
        FhirClient {
            max_response_bytes: self.max_response_bytes.min(max_bytes),
            ..self.clone()
        }
    }

    /// Resolves `path` (e.g. `DiagnosticReport/1`) against the base URL.
    pub fn url(&self, path: &str) -> Result<Url, FhirError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| FhirError::Url {
                url: path.to_string(),
                reason: e.to_string(),
            })
    }

    /// True when `url` has the base URL's origin (scheme, host, port) and lies
    /// under its path: only such URLs may receive our credentials.
    pub fn is_own(&self, url: &Url) -> bool {
        is_under(url, &self.base)
    }

    /// GET a URL (absolute, on our origin) or a path relative to the base.
    pub async fn get(&self, url: Url) -> Result<FhirResponse, FhirError> {
        self.send(Method::GET, url, HeaderMap::new(), None).await
    }

    /// Reads `Type/id`; `None` when the server says 404 or 410.
    pub async fn read(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<FhirResponse>, FhirError> {
        let response = self
            .get(self.url(&format!("{resource_type}/{id}"))?)
            .await?;
        match response.status {
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(None),
            _ => response.success().map(Some),
        }
    }

    /// POSTs a transaction (or batch) Bundle to the base URL. Returned for
    /// any status: the writer handles 412. Retried on 429/5xx/timeouts — see
    /// the module doc for why that is safe and what it requires of the bundle.
    pub async fn transaction(&self, bundle: &Value) -> Result<FhirResponse, FhirError> {
        let body = serde_json::to_vec(bundle).map_err(|source| FhirError::Json {
            method: Method::POST,
            url: self.base.to_string(),
            source,
        })?;
        self.send(
            Method::POST,
            self.base.clone(),
            HeaderMap::new(),
            Some(body),
        )
        .await
    }

    /// PATCHes `Type/id` with a JSON Patch document, `If-Match` on `version`.
    /// Returned for any status (the writer handles 412). Retrying it is safe:
    /// a replay of a PATCH that did commit fails its `If-Match`.
    pub async fn json_patch(
        &self,
        reference: &str,
        version: &str,
        patch: &Value,
    ) -> Result<FhirResponse, FhirError> {
        let url = self.url(reference)?;
        let body = serde_json::to_vec(patch).map_err(|source| FhirError::Json {
            method: Method::PATCH,
            url: url.to_string(),
            source,
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json-patch+json"),
        );
        let if_match = reqwest::header::HeaderValue::from_str(&format!("W/\"{version}\""))
            .map_err(|e| FhirError::Url {
                url: url.to_string(),
                reason: format!("version {version:?}: {e}"),
            })?;
        headers.insert(reqwest::header::IF_MATCH, if_match);
        self.send(Method::PATCH, url, headers, Some(body)).await
    }

    /// GETs `url` (on our server only) and returns the response unread, for a
    /// body streamed line by line (a Bulk Data NDJSON file). One attempt
    /// under the caps and authorization; any status other than 2xx is an error.
    pub async fn get_stream(&self, url: Url, accept: &str) -> Result<reqwest::Response, FhirError> {
        if !self.is_own(&url) {
            return Err(FhirError::Url {
                url: url.to_string(),
                reason: format!("not under the configured base {}", self.base),
            });
        }
        let _permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        if let Some(rate) = &self.rate {
            rate.wait().await;
        }
        let mut request = self.http.get(url.clone()).header(ACCEPT, accept);
        if let Some(value) = self.auth.header().await? {
            request = request.header(AUTHORIZATION, value);
        } else if let Some(value) = &self.url_basic {
            request = request.header(AUTHORIZATION, value.clone());
        }
        self.stats
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = request
            .send()
            .await
            .map_err(|source| FhirError::Transport {
                method: Method::GET,
                url: url.to_string(),
                source,
            })?;
        if !response.status().is_success() {
            return Err(FhirError::Status {
                method: Method::GET,
                url: url.to_string(),
                status: response.status(),
                outcome: None,
            });
        }
        Ok(response)
    }

    /// Sends one request with the retry policy, the caps and authorization.
    /// Returns the final response whatever its status; errors only when no
    /// response came (or authorization failed).
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<FhirResponse, FhirError> {
        if !self.is_own(&url) {
            return Err(FhirError::Url {
                url: url.to_string(),
                reason: format!("not under the configured base {}", self.base),
            });
        }
        let mut reauthorized = false;
        let mut retry = 0u32;
        loop {
            match self
                .attempt(&method, &url, &headers, body.as_deref())
                .await?
            {
                Attempt::Done(response)
                    if response.status == StatusCode::UNAUTHORIZED && !reauthorized =>
                {
                    // An expired or revoked token: fetch a fresh one, once.
                    reauthorized = true;
                    self.auth.invalidate();
                }
                Attempt::Done(response) => return Ok(response),
                Attempt::Retry {
                    response,
                    error,
                    retry_after,
                } => {
                    if retry >= self.retry.max_retries {
                        return match (response, error) {
                            (Some(response), _) => Ok(response),
                            (None, Some(error)) => Err(error),
                            (None, None) => unreachable!("a retry carries a response or an error"),
                        };
                    }
                    let wait = self
                        .retry
                        .backoff(retry)
                        .max(retry_after.unwrap_or_default());
                    retry += 1;
                    self.stats
                        .retries
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Some(metrics) = &self.metrics {
                        metrics.fhir_retry(method.as_str());
                    }
                    tracing::debug!(%method, path = %loggable_path(&url), retry, wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&[u8]>,
    ) -> Result<Attempt, FhirError> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        if let Some(rate) = &self.rate {
            rate.wait().await;
        }
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .headers(headers.clone())
            .header(ACCEPT, FHIR_JSON);
        if let Some(body) = body {
            if !headers.contains_key(CONTENT_TYPE) {
                request = request.header(CONTENT_TYPE, FHIR_JSON);
            }
            request = request.body(body.to_vec());
        }
        if let Some(value) = self.auth.header().await? {
            request = request.header(AUTHORIZATION, value);
        } else if let Some(value) = &self.url_basic {
            request = request.header(AUTHORIZATION, value.clone());
        }
        self.stats
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut timer = self
            .metrics
            .as_ref()
            .map(|m| m.fhir_request(method.as_str()));
        // A transport failure while sending or while reading the body: a
        // timeout or reset is retried, anything else ends the request.
        let failed = |source: reqwest::Error| {
            let transient = is_transient(&source);
            let error = FhirError::Transport {
                method: method.clone(),
                url: url.to_string(),
                source,
            };
            if transient {
                Ok(Attempt::Retry {
                    response: None,
                    error: Some(error),
                    retry_after: None,
                })
            } else {
                Err(error)
            }
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return failed(error),
        };
        let status = response.status();
        if let Some(timer) = &mut timer {
            timer.status(status.as_u16());
        }
        if status.is_redirection() {
            // The policy stopped it: it leaves our server (or loops).
            let target = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| response.url().join(l).ok())
                .map_or_else(
                    || "an unreadable Location".to_owned(),
                    |t| t.origin().ascii_serialization(),
                );
            return Err(FhirError::Redirect {
                method: method.clone(),
                url: url.to_string(),
                status,
                target,
            });
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header(ETAG);
        let location = header(LOCATION);
        let content_location = header(reqwest::header::CONTENT_LOCATION);
        let progress = header(reqwest::header::HeaderName::from_static("x-progress"));
        let retry_after =
            header(RETRY_AFTER).and_then(|v| parse_retry_after(&v, SystemTime::now()));
        let too_large = || FhirError::TooLarge {
            method: method.clone(),
            url: url.to_string(),
            limit: self.max_response_bytes,
        };
        if response
            .content_length()
            .is_some_and(|length| length > self.max_response_bytes as u64)
        {
            return Err(too_large());
        }
        // Read in chunks, so that a body without (or lying about) its length
        // is cut at the limit instead of held whole.
        let mut response = response;
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > self.max_response_bytes {
                        return Err(too_large());
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => return failed(error),
            }
        }
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(body) => body,
                // Error pages from proxies are often HTML; the status says enough.
                Err(_) if !status.is_success() => Value::Null,
                Err(source) => {
                    return Err(FhirError::Json {
                        method: method.clone(),
                        url: url.to_string(),
                        source,
                    });
                }
            }
        };
        let response = FhirResponse {
            status,
            etag,
            location,
            content_location,
            retry_after,
            progress,
            body,
            method: method.clone(),
            url: url.to_string(),
        };
        if is_retryable_status(status) {
            Ok(Attempt::Retry {
                response: Some(response),
                error: None,
                retry_after,
            })
        } else {
            Ok(Attempt::Done(response))
        }
    }
}

/// Takes the user name and password out of `url`, as a Basic header.
fn url_credentials(url: &mut Url) -> Result<Option<reqwest::header::HeaderValue>, FhirError> {
    if url.username().is_empty() && url.password().is_none() {
        return Ok(None);
    }
    let user = percent_decode(url.username());
    let password = url.password().map(percent_decode).unwrap_or_default();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut value =
        reqwest::header::HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
            FhirError::Url {
                url: url.to_string(),
                reason: "the credentials in the URL cannot be sent".into(),
            }
        })?;
    value.set_sensitive(true);
    Ok(Some(value))
}

/// Percent-decoding of a URL's user name or password.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` has `base`'s origin (scheme, host, port) and lies under its path.
fn is_under(url: &Url, base: &Url) -> bool {
    url.origin() == base.origin() && url.path().starts_with(base.path())
}

/// 429 and the 5xx that mean "try again later". 501 (not implemented) and
/// 505 will not change on retry.
fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error()
            && status != StatusCode::NOT_IMPLEMENTED
            && status != StatusCode::HTTP_VERSION_NOT_SUPPORTED)
}

/// Timeouts, refused or reset connections, bodies cut short.
fn is_transient(error: &reqwest::Error) -> bool {
    error.is_timeout() || error.is_connect() || error.is_request() || error.is_body()
}

/// Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3); a date in
/// the past means "now". Capped at one hour so a wrong header cannot park the worker.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or_default()
        }
    };
    Some(delay.min(Duration::from_secs(3600)))
}

/// A request's path as logs may show it: resource types and operations
/// kept, ids and the query dropped ("Patient/{id}"), since an id in a URL is
/// patient data.
fn loggable_path(url: &Url) -> String {
    let mut out = String::new();
    for segment in url.path_segments().into_iter().flatten() {
        if segment.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('/');
        }
        let named = segment.starts_with(|c: char| c.is_ascii_uppercase() || c == '$' || c == '_')
            || segment == "fhir";
        out.push_str(if named { segment } else { "{id}" });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn logged_paths_carry_no_ids() {
        let url =
            url::Url::parse("http://127.0.0.1:8080/fhir/Patient/canary-123?subject=Patient/x")
                .unwrap();
        assert_eq!(super::loggable_path(&url), "fhir/Patient/{id}");
        let url = url::Url::parse("http://127.0.0.1/fhir/DiagnosticReport/r1/_history/3").unwrap();
        assert_eq!(
            super::loggable_path(&url),
            "fhir/DiagnosticReport/{id}/_history/{id}"
        );
    }

    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("999999", now),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn backoff_stays_under_its_ceiling() {
        let policy = RetryPolicy {
            max_retries: 10,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for retry in 0..10 {
            let ceiling = Duration::from_millis(100 * (1 << retry)).min(Duration::from_secs(1));
            assert!(policy.backoff(retry) <= ceiling);
        }
    }

    #[test]
    fn retryable_statuses() {
        assert!(is_retryable_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(is_retryable_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_retryable_status(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!is_retryable_status(StatusCode::NOT_IMPLEMENTED));
        assert!(!is_retryable_status(StatusCode::PRECONDITION_FAILED));
        assert!(!is_retryable_status(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn credentials_leave_the_url_as_a_basic_header() {
        let mut url = Url::parse("https://svc:p%40ss%3Aw@fhir.example.org/r4").unwrap();
        let header = url_credentials(&mut url).unwrap().expect("a header");
        assert_eq!(url.as_str(), "https://fhir.example.org/r4");
        assert!(header.is_sensitive());
        use base64::Engine as _;
        let expected = base64::engine::general_purpose::STANDARD.encode("svc:p@ss:w");
        assert_eq!(header.to_str().unwrap(), format!("Basic {expected}"));
        let mut plain = Url::parse("https://fhir.example.org/r4").unwrap();
        assert!(url_credentials(&mut plain).unwrap().is_none());
    }

    #[test]
    fn outcome_diagnostics_are_joined() {
        let outcome = serde_json::json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "invalid", "diagnostics": "bad a"},
            {"severity": "error", "code": "invalid", "details": {"text": "bad b"}}]});
        assert_eq!(
            operation_outcome_text(&outcome).as_deref(),
            Some("bad a; bad b")
        );
        assert_eq!(
            operation_outcome_text(&serde_json::json!({"resourceType": "Patient"})),
            None
        );
    }
}

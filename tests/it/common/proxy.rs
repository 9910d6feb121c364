//! A forwarding proxy in front of the real SEKMET, for the faults a real
//! server does not make on demand: an error status, a redirect, a dropped
//! connection, a reply lost after the server committed, a rewritten body.
//! A [`Policy`] decides per request; the proxy counts what it did.
//!
//! It speaks HTTP/1.1 through hyper directly (not axum) because a dropped
//! connection needs the connection itself: when the service fails, hyper
//! closes the connection without an answer, as a crashed load balancer does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use hyper_util::rt::TokioIo;

/// What the proxy does with one request.
pub enum Action {
    /// Forward it and relay the answer.
    Forward,
    /// Forward it, then change the answer's body (already rewritten to name the proxy).
    ForwardEdited(Box<dyn FnOnce(String) -> String + Send>),
    /// Answer this status with these headers and an empty body, without forwarding.
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
    },
    /// Close the connection without forwarding and without answering.
    DropBeforeForwarding,
    /// Forward it (the server commits), then close the connection without
    /// answering: the client cannot know the write happened.
    DropTheReply,
}

/// A request as the policy sees it.
pub struct Seen<'a> {
    pub method: &'a Method,
    /// Path and query, e.g. `/fhir/DiagnosticReport?subject=...`.
    pub path: &'a str,
    /// The proxy's own origin, `http://127.0.0.1:<port>`.
    pub own: &'a str,
}

pub type Policy = Arc<dyn Fn(&Seen<'_>) -> Action + Send + Sync>;

/// A request whose reply the proxy dropped after the server answered it.
#[derive(Debug, Clone)]
pub struct LostReply {
    pub method: Method,
    pub path: String,
    pub status: u16,
    /// The server's answer (the transaction-response of a committed transaction).
    pub body: serde_json::Value,
}

/// What the proxy did, for the test's assertions and figures.
#[derive(Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub forwarded: AtomicU64,
    pub answered: AtomicU64,
    pub dropped_before: AtomicU64,
    pub lost_replies: Mutex<Vec<LostReply>>,
}

impl Counts {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

pub struct Proxy {
    /// The FHIR base through the proxy (`http://127.0.0.1:<port>/fhir`).
    pub base: String,
    pub counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    /// SEKMET's origin, `http://127.0.0.1:<port>`.
    upstream: String,
    own: String,
    policy: Policy,
    counts: Arc<Counts>,
    http: reqwest::Client,
}

/// Why the proxy closes a connection without answering (hyper does that
/// when the service fails).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the test proxy")
    }
}

impl std::error::Error for Dropped {}

/// Starts a proxy on 127.0.0.1 in front of the FHIR base `upstream_base`
/// (`http://127.0.0.1:<port>/fhir`). Must be called inside a tokio runtime.
pub async fn start(upstream_base: &str, policy: Policy) -> Proxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let own = format!("http://{}", listener.local_addr().unwrap());
    let base_path = url::Url::parse(upstream_base)
        .expect("the upstream base is a URL")
        .path()
        .to_owned();
    let counts = Arc::new(Counts::default());
    let shared = Arc::new(Shared {
        upstream: upstream_base.trim_end_matches(&base_path).to_owned(),
        own: own.clone(),
        policy,
        counts: counts.clone(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    });
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let shared = shared.clone();
                    async move { handle(&shared, request).await }
                });
                // An error here is a connection we dropped on purpose, or a client that left.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Proxy {
        base: format!("{own}{base_path}"),
        counts,
        task,
    }
}

async fn handle(
    shared: &Shared,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Body>, Dropped> {
    let counts = &shared.counts;
    counts.requests.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let action = (shared.policy)(&Seen {
        method: &parts.method,
        path: &path,
        own: &shared.own,
    });
    let edit = match action {
        Action::DropBeforeForwarding => {
            counts.dropped_before.fetch_add(1, Ordering::SeqCst);
            return Err(Dropped);
        }
        Action::Answer { status, headers } => {
            counts.answered.fetch_add(1, Ordering::SeqCst);
            let mut response = hyper::Response::new(Body::empty());
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, HeaderValue::from_str(&value).unwrap());
            }
            return Ok(response);
        }
        Action::Forward => None,
        Action::ForwardEdited(edit) => Some(edit),
        Action::DropTheReply => {
            let (status, _, text) = forward(shared, &parts, body, &path).await?;
            counts.lost_replies.lock().unwrap().push(LostReply {
                method: parts.method.clone(),
                path,
                status,
                body: serde_json::from_str(&text).unwrap_or_default(),
            });
            return Err(Dropped);
        }
    };
    let (status, headers, text) = forward(shared, &parts, body, &path).await?;
    counts.forwarded.fetch_add(1, Ordering::SeqCst);
    let text = match edit {
        Some(edit) => edit(text),
        None => text,
    };
    let mut response = hyper::Response::new(Body::from(text));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    *response.headers_mut() = headers;
    Ok(response)
}

/// Sends the request on to SEKMET; returns its status, the headers worth
/// relaying and its body, with SEKMET's origin replaced by the proxy's.
async fn forward(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    body: hyper::body::Incoming,
    path: &str,
) -> Result<(u16, HeaderMap, String), Dropped> {
    let bytes = axum::body::to_bytes(Body::new(body), 64 << 20)
        .await
        .map_err(|_| Dropped)?;
    let mut upstream = shared
        .http
        .request(parts.method.clone(), format!("{}{path}", shared.upstream));
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream
        .body(bytes.to_vec())
        .send()
        .await
        .expect("SEKMET answers the proxy");
    let status = answer.status().as_u16();
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if matches!(
            name.as_str(),
            "content-type" | "etag" | "location" | "last-modified" | "retry-after"
        ) {
            let text = value
                .to_str()
                .unwrap_or("")
                .replace(&shared.upstream, &shared.own);
            headers.insert(name, text.parse().unwrap());
        }
    }
    let text = answer.text().await.expect("SEKMET's body");
    Ok((status, headers, text.replace(&shared.upstream, &shared.own)))
}

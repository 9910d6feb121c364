//! FHIR Bulk Data `$export` as a source of DiagnosticReports (issue 14,
//! item 4): kick-off, status polling, the manifest, and the NDJSON files
//! read line by line.
//!
//! - Kick-off: `GET [base]/$export?_type=DiagnosticReport` with the run's
//!   filters as one `_typeFilter` and `_since`, `Prefer: respond-async`;
//!   `202` + `Content-Location` names the status URL. A server that does not
//!   export (404, 405, 501, or a 400 saying "not supported") answers
//!   [`Kickoff::Unsupported`]: the caller falls back to paged search.
//! - Polling: `202` while the export runs, waiting what `Retry-After` asks
//!   (1 s when it says nothing, at most 60 s), `X-Progress` logged; a 429 or
//!   5xx is retried by the client with its backoff (honouring Retry-After);
//!   bounded by a deadline. `200` is the manifest.
//! - Files: only on our server (a file elsewhere would receive our
//!   credentials: refused), streamed, one JSON resource per line; a line
//!   that is not JSON or is longer than `limits.report_bytes` is a bad
//!   [`Line`] (one record's failure) and the file goes on: memory stays one
//!   line. A file resumed at a saved cursor passes over its first lines.
//! - After the download the job is deleted ([`delete_job`]).
//! - `transactionTime` of the manifest is where the next sync starts: every
//!   change after it is found by `_lastUpdated` search.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;
use url::Url;

use super::{FhirClient, FhirError};

/// What the export is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportRequest {
    /// Search parameters of DiagnosticReport (`category=...`, `subject=...`)
    /// sent as `_typeFilter=DiagnosticReport?...`.
    pub filter: Vec<(String, String)>,
    /// Only reports changed since then (`_since`).
    pub since: Option<OffsetDateTime>,
}

/// How a kick-off was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kickoff {
    /// The export runs; its status is polled at this URL.
    Started { status: Url },
    /// The server does not export (the HTTP status it said it with).
    Unsupported { status: u16 },
}

/// The manifest of a finished export: the DiagnosticReport files and the
/// server's `transactionTime`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub transaction_time: OffsetDateTime,
    pub files: Vec<Url>,
}

#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    #[error(transparent)]
    Fhir(#[from] FhirError),
    #[error("$export: {0}")]
    Protocol(String),
    #[error("$export: not finished after {0:?}")]
    TimedOut(Duration),
}

/// The `_typeFilter` value of `filter` (`DiagnosticReport?k=v&k=v`, values
/// percent-encoded).
fn type_filter(filter: &[(String, String)]) -> Option<String> {
    if filter.is_empty() {
        return None;
    }
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(filter)
        .finish();
    Some(format!("DiagnosticReport?{query}"))
}

impl ExportRequest {
    /// The kick-off's query parameters; also the name an export is
    /// recorded under (the same request is the same export).
    pub fn query(&self) -> Vec<(String, String)> {
        let mut query = vec![("_type".to_owned(), "DiagnosticReport".to_owned())];
        if let Some(filter) = type_filter(&self.filter) {
            query.push(("_typeFilter".to_owned(), filter));
        }
        if let Some(since) = self.since {
            query.push(("_since".to_owned(), super::rfc3339(since)));
        }
        query
    }

    /// [`ExportRequest::query`] as one string.
    pub fn key(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.query())
            .finish()
    }
}

/// Starts an export of DiagnosticReports.
pub async fn kick_off(client: &FhirClient, request: &ExportRequest) -> Result<Kickoff, BulkError> {
    let mut url = client.url("$export")?;
    url.query_pairs_mut().extend_pairs(request.query());
    let mut headers = HeaderMap::new();
    headers.insert("prefer", HeaderValue::from_static("respond-async"));
    let response = client
        .send(reqwest::Method::GET, url, headers, None)
        .await?;
    match response.status {
        StatusCode::ACCEPTED => {
            let location = response.content_location.as_deref().ok_or_else(|| {
                BulkError::Protocol("the kick-off's 202 has no Content-Location".into())
            })?;
            let status = client.base().join(location).map_err(|e| {
                BulkError::Protocol(format!("unusable Content-Location {location:?}: {e}"))
            })?;
            if !client.is_own(&status) {
                return Err(FhirError::ForeignLink {
                    url: "$export".into(),
                    link: status.origin().ascii_serialization(),
                }
                .into());
            }
            Ok(Kickoff::Started { status })
        }
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => {
            Ok(Kickoff::Unsupported {
                status: response.status.as_u16(),
            })
        }
        StatusCode::BAD_REQUEST
            if response
                .diagnostics()
                .is_some_and(|d| d.to_ascii_lowercase().contains("not supported")) =>
        {
            Ok(Kickoff::Unsupported { status: 400 })
        }
        _ => Err(response.into_error().into()),
    }
}

/// Longest wait between two polls, whatever Retry-After asks.
const MAX_POLL_PAUSE: Duration = Duration::from_secs(60);

/// Polls the status URL until the manifest, for at most `max_wait`.
pub async fn wait_for_manifest(
    client: &FhirClient,
    status: &Url,
    max_wait: Duration,
) -> Result<Manifest, BulkError> {
    let deadline = Instant::now() + max_wait;
    loop {
        let response = client.get(status.clone()).await?;
        match response.status {
            StatusCode::ACCEPTED => {
                let pause = response
                    .retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .min(MAX_POLL_PAUSE);
                tracing::info!(
                    progress = response.progress.as_deref().unwrap_or(""),
                    pause_ms = pause.as_millis() as u64,
                    "$export in progress"
                );
                if Instant::now() + pause > deadline {
                    return Err(BulkError::TimedOut(max_wait));
                }
                tokio::time::sleep(pause).await;
            }
            StatusCode::OK => return manifest(client, &response.body),
            _ => return Err(response.into_error().into()),
        }
    }
}

/// The DiagnosticReport files and transactionTime of a manifest.
fn manifest(client: &FhirClient, body: &Value) -> Result<Manifest, BulkError> {
    let time = body
        .get("transactionTime")
        .and_then(Value::as_str)
        .ok_or_else(|| BulkError::Protocol("the manifest has no transactionTime".into()))?;
    let transaction_time = OffsetDateTime::parse(time, &Rfc3339)
        .map_err(|e| BulkError::Protocol(format!("transactionTime {time:?}: {e}")))?;
    let mut files = Vec::new();
    for output in body
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if output.get("type").and_then(Value::as_str) != Some("DiagnosticReport") {
            continue;
        }
        let url = output
            .get("url")
            .and_then(Value::as_str)
            .and_then(|u| client.base().join(u).ok())
            .ok_or_else(|| BulkError::Protocol("a manifest output without a usable url".into()))?;
        if !client.is_own(&url) {
            return Err(FhirError::ForeignLink {
                url: "$export manifest".into(),
                link: url.origin().ascii_serialization(),
            }
            .into());
        }
        files.push(url);
    }
    Ok(Manifest {
        transaction_time,
        files,
    })
}

/// One line of an export file: its number (from 1, blank lines counted)
/// and the resource on it, or why it is none. A bad line is one record's
/// failure (a dead letter naming the file and line), never the end of the
/// file.
#[derive(Debug)]
pub struct Line {
    pub number: u64,
    pub resource: Result<Value, String>,
}

/// One NDJSON file, read a line at a time.
pub struct NdjsonFile {
    url: String,
    response: reqwest::Response,
    buffer: Vec<u8>,
    max_line: usize,
    line: u64,
    done: bool,
    /// The current line grew past `max_line`: its bytes are dropped up to
    /// its end, so memory stays one line.
    oversized: bool,
}

impl NdjsonFile {
    /// Opens `url` (on our server) for reading; a line over `max_line`
    /// bytes is a bad line.
    pub async fn open(
        client: &FhirClient,
        url: &Url,
        max_line: usize,
    ) -> Result<NdjsonFile, BulkError> {
        let response = client
            .get_stream(url.clone(), "application/fhir+ndjson")
            .await?;
        Ok(NdjsonFile {
            url: url.to_string(),
            response,
            buffer: Vec::new(),
            max_line,
            line: 0,
            done: false,
            oversized: false,
        })
    }

    /// The file's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next line with a resource (or a bad one); `None` at the file's
    /// end. Blank lines are passed over (and counted).
    pub async fn next(&mut self) -> Result<Option<Line>, BulkError> {
        while let Some((number, bytes, oversized)) = self.next_raw().await? {
            if oversized {
                return Ok(Some(Line {
                    number,
                    resource: Err(format!(
                        "longer than {} bytes (limits.report_bytes)",
                        self.max_line
                    )),
                }));
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let resource = serde_json::from_slice(&bytes)
                .map_err(|e| format!("not JSON ({})", json_category(&e)));
            return Ok(Some(Line { number, resource }));
        }
        Ok(None)
    }

    /// Passes over the first `lines` lines unread (a file resumed at its
    /// saved cursor); returns how many there were.
    pub async fn skip(&mut self, lines: u64) -> Result<u64, BulkError> {
        while self.line < lines {
            if self.next_raw().await?.is_none() {
                break;
            }
        }
        Ok(self.line)
    }

    /// The next line's number and bytes (without its newline), or that it
    /// was over `max_line` (its bytes dropped).
    async fn next_raw(&mut self) -> Result<Option<(u64, Vec<u8>, bool)>, BulkError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let mut bytes: Vec<u8> = self.buffer.drain(..=end).collect();
                bytes.pop();
                self.line += 1;
                let oversized = std::mem::take(&mut self.oversized) || bytes.len() > self.max_line;
                return Ok(Some((self.line, bytes, oversized)));
            }
            if self.done {
                if self.buffer.is_empty() && !self.oversized {
                    return Ok(None);
                }
                let bytes = std::mem::take(&mut self.buffer);
                self.line += 1;
                let oversized = std::mem::take(&mut self.oversized) || bytes.len() > self.max_line;
                return Ok(Some((self.line, bytes, oversized)));
            }
            if self.buffer.len() > self.max_line {
                self.buffer.clear();
                self.oversized = true;
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) => self.done = true,
                Err(source) => {
                    return Err(FhirError::Transport {
                        method: reqwest::Method::GET,
                        url: self.url.clone(),
                        source,
                    }
                    .into());
                }
            }
        }
    }
}

/// Deletes a finished export's job on the server (`DELETE` on its status
/// URL), so that its files do not wait there for their expiry. A job the
/// server no longer knows (404) was deleted already.
pub async fn delete_job(client: &FhirClient, status: &Url) -> Result<(), BulkError> {
    let response = client
        .send(
            reqwest::Method::DELETE,
            status.clone(),
            HeaderMap::new(),
            None,
        )
        .await?;
    if response.status.is_success() || response.status == StatusCode::NOT_FOUND {
        Ok(())
    } else {
        Err(response.into_error().into())
    }
}

/// serde_json's error category in words, without the input it quotes.
fn json_category(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "data error",
        serde_json::error::Category::Eof => "truncated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_become_one_type_filter() {
        assert_eq!(type_filter(&[]), None);
        let filter = vec![
            (
                "category".to_string(),
                "http://terminology.hl7.org/CodeSystem/v2-0074|RAD".to_string(),
            ),
            ("subject".to_string(), "Patient/p 1".to_string()),
        ];
        assert_eq!(
            type_filter(&filter).unwrap(),
            "DiagnosticReport?category=http%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fv2-0074%7CRAD&subject=Patient%2Fp+1"
        );
    }
}

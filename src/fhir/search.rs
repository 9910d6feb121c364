//! FHIR search paging: follows `next` links on our own server only and
//! de-duplicates entries on (id, versionId).

use std::collections::HashSet;

use serde_json::Value;
use url::Url;

use super::{FhirClient, FhirError};

/// One page of matches.
#[derive(Debug, Default)]
pub struct Page {
    /// Resources with `search.mode` `match` (or no mode: some servers omit
    /// it, and dropping those would lose data), each (id, versionId) once.
    pub resources: Vec<Value>,
    /// `Bundle.total`, when the server sends it.
    pub total: Option<u64>,
}

/// Walks the pages of one search.
#[derive(Debug)]
pub struct SearchPager {
    client: FhirClient,
    next: Option<Url>,
    seen: HashSet<(String, String)>,
    duplicates: usize,
    pages: usize,
}

/// (id, versionId) of a resource; a missing versionId is the empty string.
pub fn version_key(resource: &Value) -> (String, String) {
    let field = |pointer: &str| {
        resource
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (field("/id"), field("/meta/versionId"))
}

impl SearchPager {
    pub fn new(
        client: FhirClient,
        resource_type: &str,
        query: &[(String, String)],
    ) -> Result<SearchPager, FhirError> {
        let mut url = client.url(resource_type)?;
        url.query_pairs_mut().extend_pairs(query);
        Ok(SearchPager {
            client,
            next: Some(url),
            seen: HashSet::new(),
            duplicates: 0,
            pages: 0,
        })
    }

    /// Entries dropped because an earlier page had them.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// The next page, `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Page>, FhirError> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        let response = self.client.get(url.clone()).await?.success()?;
        let bundle = response.body;
        self.pages += 1;
        self.next = next_link(&bundle, &url, &self.client)?;
        // A server that links a page to itself would loop forever.
        if self.next.as_ref() == Some(&url) {
            self.next = None;
        }
        let mut page = Page {
            total: bundle.get("total").and_then(Value::as_u64),
            ..Page::default()
        };
        for entry in bundle
            .get("entry")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let mode = entry.pointer("/search/mode").and_then(Value::as_str);
            if !matches!(mode, None | Some("match")) {
                continue;
            }
            let Some(resource) = entry.get("resource") else {
                continue;
            };
            if self.seen.insert(version_key(resource)) {
                page.resources.push(resource.clone());
            } else {
                self.duplicates += 1;
            }
        }
        Ok(Some(page))
    }
}

/// The `next` link, resolved against the page's URL; an error when it leaves
/// our server (origin or base path), since following it would send our
/// credentials elsewhere.
fn next_link(
    bundle: &Value,
    page_url: &Url,
    client: &FhirClient,
) -> Result<Option<Url>, FhirError> {
    let Some(link) = bundle
        .get("link")
        .and_then(Value::as_array)
        .and_then(|links| {
            links
                .iter()
                .find(|l| l.get("relation").and_then(Value::as_str) == Some("next"))
        })
        .and_then(|l| l.get("url"))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let next = page_url.join(link).map_err(|e| FhirError::Url {
        url: link.to_string(),
        reason: e.to_string(),
    })?;
    if !client.is_own(&next) {
        return Err(FhirError::ForeignLink {
            url: page_url.to_string(),
            link: link.to_string(),
        });
    }
    Ok(Some(next))
}

//! The worker's configuration: one TOML file (see config/example.toml, where
//! every key is explained), then environment overrides, then validation that
//! names the offending key.

pub mod hl7;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::auth::AuthConfig;
use crate::fhir::{ClientOptions, RetryPolicy};
use crate::pull::Filters;
use reportsplit_fhir::limits::Limits;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub fhir: FhirConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub pull: PullConfig,
    #[serde(default)]
    pub state: StateConfig,
    #[serde(default)]
    pub write: WriteConfig,
    #[serde(default)]
    pub mappings: MappingsConfig,
    /// Which discrepancies become DetectedIssues (`[write] detected_issues`
    /// switches them all off).
    #[serde(default)]
    pub discrepancies: DiscrepancyConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// HL7 v2 input (`reportsplit mllp`, `reportsplit hl7`).
    #[serde(default)]
    pub hl7: hl7::Hl7Config,
}

/// One switch per kind of discrepancy (docs/operations.md, "Discrepancies");
/// all on by default. Sex and age read the report's Patient, order its
/// `basedOn` ServiceRequest: switching them off saves those reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiscrepancyConfig {
    #[serde(default = "defaults::yes")]
    pub laterality: bool,
    #[serde(default = "defaults::yes")]
    pub section_absent: bool,
    #[serde(default = "defaults::yes")]
    pub follow_up_missing: bool,
    #[serde(default = "defaults::yes")]
    pub sex: bool,
    #[serde(default = "defaults::yes")]
    pub age: bool,
    #[serde(default = "defaults::yes")]
    pub order: bool,
}

impl Default for DiscrepancyConfig {
    fn default() -> Self {
        DiscrepancyConfig {
            laterality: true,
            section_absent: true,
            follow_up_missing: true,
            sex: true,
            age: true,
            order: true,
        }
    }
}

impl Config {
    /// The kinds of discrepancy the core looks for: none when `[write]
    /// detected_issues` is off (nothing would be written, and neither the
    /// Patient nor the order is read).
    pub fn discrepancy_kinds(&self) -> reportsplit_split::DiscrepancyKinds {
        let d = &self.discrepancies;
        let on = self.write.detected_issues;
        reportsplit_split::DiscrepancyKinds {
            laterality: on && d.laterality,
            section_absent: on && d.section_absent,
            follow_up_missing: on && d.follow_up_missing,
            sex: on && d.sex,
            age: on && d.age,
            order: on && d.order,
        }
    }
}

/// The kinds `kinds` turns on, by their config names.
pub fn discrepancy_names(kinds: reportsplit_split::DiscrepancyKinds) -> Vec<&'static str> {
    [
        (kinds.laterality, "laterality"),
        (kinds.section_absent, "section_absent"),
        (kinds.follow_up_missing, "follow_up_missing"),
        (kinds.sex, "sex"),
        (kinds.age, "age"),
        (kinds.order, "order"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// Bounds on the work of one report (docs/operations.md, "Limits"); each
/// defaults to [`Limits::default`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Longest report text, in characters (`pull.max_text_chars` is its old name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_chars: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observations: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_bytes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_bytes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_bytes: Option<usize>,
}

/// A site's own copies of the extractor's code tables (same format as mappings/).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MappingsConfig {
    /// Directory holding a site's overlays of the code tables (findings.tsv,
    /// critical.tsv...): each file adds, replaces or removes rows of the
    /// built-in table.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FhirConfig {
    pub url: String,
    #[serde(default = "defaults::timeout_secs")]
    pub timeout_secs: f64,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default = "defaults::max_retries")]
    pub max_retries: u32,
    #[serde(default = "defaults::retry_base_ms")]
    pub retry_base_ms: u64,
    #[serde(default = "defaults::retry_max_ms")]
    pub retry_max_ms: u64,
    #[serde(default = "defaults::max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    #[serde(default)]
    pub requests_per_second: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    #[serde(default)]
    pub category: Vec<String>,
    #[serde(default = "defaults::status")]
    pub status: Vec<String>,
    #[serde(default)]
    pub date: Vec<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default = "defaults::page_size")]
    pub page_size: u32,
    #[serde(default = "defaults::overlap_secs")]
    pub overlap_secs: u64,
    /// RFC 3339 start of the first run's window; none = from the beginning.
    #[serde(default)]
    pub since: Option<String>,
    /// The old name of `limits.text_chars`, still read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_text_chars: Option<usize>,
    #[serde(default = "defaults::max_window_reports")]
    pub max_window_reports: u64,
}

impl Default for PullConfig {
    fn default() -> Self {
        PullConfig {
            category: Vec::new(),
            status: defaults::status(),
            date: Vec::new(),
            subject: None,
            page_size: defaults::page_size(),
            overlap_secs: defaults::overlap_secs(),
            since: None,
            max_text_chars: None,
            max_window_reports: defaults::max_window_reports(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    #[serde(default = "defaults::state_dir")]
    pub dir: PathBuf,
    /// `postgres://…`: checkpoints and backfill windows in PostgreSQL,
    /// shared by every worker that names it (docs/operations.md,
    /// "PostgreSQL state"). Absent: the state directory alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A file holding the `url` (trailing newline removed), so its password
    /// can live in a mounted secret instead of the configuration file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: defaults::state_dir(),
            url: None,
            url_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WriteConfig {
    #[serde(default = "defaults::conflict_retries")]
    pub conflict_retries: u32,
    #[serde(default = "defaults::concurrent_reports")]
    pub concurrent_reports: usize,
    #[serde(default)]
    pub method: WriteMethod,
    /// Follow-up recommendations as ServiceRequests (status draft, intent proposal).
    #[serde(default = "defaults::yes")]
    pub service_requests: bool,
    /// Discrepancies (laterality, sex, age, order...) as DetectedIssues.
    #[serde(default = "defaults::yes")]
    pub detected_issues: bool,
    /// A critical result's documented notification as a completed Communication.
    #[serde(default = "defaults::yes")]
    pub communications: bool,
    /// A critical result with no documented notification as an active Flag
    /// (or a Communication in preparation, see `unconfirmed_critical`).
    #[serde(default = "defaults::yes")]
    pub flags: bool,
    /// What marks a critical result whose communication the report does not
    /// document, for an alerting system to pick up.
    #[serde(default)]
    pub unconfirmed_critical: UnconfirmedCritical,
}

impl Default for WriteConfig {
    fn default() -> Self {
        WriteConfig {
            conflict_retries: defaults::conflict_retries(),
            concurrent_reports: defaults::concurrent_reports(),
            method: WriteMethod::default(),
            service_requests: true,
            detected_issues: true,
            communications: true,
            flags: true,
            unconfirmed_critical: UnconfirmedCritical::default(),
        }
    }
}

impl WriteConfig {
    /// The switches as the mapping reads them.
    pub fn writes(&self) -> reportsplit_fhir::map::Writes {
        use reportsplit_fhir::map::critical::{CriticalWrites, Unconfirmed};
        reportsplit_fhir::map::Writes {
            service_requests: self.service_requests,
            detected_issues: self.detected_issues,
            critical: CriticalWrites {
                communications: self.communications,
                unconfirmed: self.flags.then_some(match self.unconfirmed_critical {
                    UnconfirmedCritical::Flag => Unconfirmed::Flag,
                    UnconfirmedCritical::Communication => Unconfirmed::Communication,
                }),
            },
        }
    }

    /// The resource types a run writes besides the finding Observations and
    /// the Provenance (and the report itself), as the switches say.
    pub fn optional_types(&self) -> Vec<&'static str> {
        let unconfirmed_as_communication =
            self.flags && self.unconfirmed_critical == UnconfirmedCritical::Communication;
        [
            (self.service_requests, "ServiceRequest"),
            (self.detected_issues, "DetectedIssue"),
            (
                self.communications || unconfirmed_as_communication,
                "Communication",
            ),
            (
                self.flags && self.unconfirmed_critical == UnconfirmedCritical::Flag,
                "Flag",
            ),
        ]
        .into_iter()
        .filter_map(|(on, kind)| on.then_some(kind))
        .collect()
    }
}

/// How an unconfirmed critical result is marked (config `write.unconfirmed_critical`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnconfirmedCritical {
    /// An active Flag on the patient (closed when an amendment documents the call).
    #[default]
    Flag,
    /// A Communication with status `preparation`: the call still to be made.
    Communication,
}

mod defaults {
    use std::path::PathBuf;
    pub fn timeout_secs() -> f64 {
        30.0
    }
    pub fn max_retries() -> u32 {
        5
    }
    pub fn retry_base_ms() -> u64 {
        250
    }
    pub fn retry_max_ms() -> u64 {
        30_000
    }
    pub fn max_concurrent_requests() -> usize {
        4
    }
    pub fn status() -> Vec<String> {
        ["final", "amended", "corrected"].map(String::from).to_vec()
    }
    pub fn page_size() -> u32 {
        100
    }
    pub fn overlap_secs() -> u64 {
        300
    }
    pub fn max_window_reports() -> u64 {
        10_000
    }
    pub fn state_dir() -> PathBuf {
        PathBuf::from("state")
    }
    pub fn conflict_retries() -> u32 {
        3
    }
    pub fn concurrent_reports() -> usize {
        4
    }
    pub fn yes() -> bool {
        true
    }
}

/// A configuration that cannot be used; names the file or the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

/// True when a URL carries a user name or a password.
fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// `url` with its user name and password (if any) replaced by `[redacted]`,
/// for every place a configured URL is printed or logged. A string that does
/// not parse as a URL is returned without anything between `://` and `@`.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) if has_userinfo(&parsed) => {
            let mut bare = parsed.clone();
            let _ = bare.set_username("");
            let _ = bare.set_password(None);
            let text = bare.to_string();
            match text.split_once("://") {
                Some((scheme, rest)) => format!("{scheme}://[redacted]@{rest}"),
                None => "[redacted]".to_owned(),
            }
        }
        Ok(_) => url.to_owned(),
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(start), Some(at)) if at > start => {
                format!("{}[redacted]{}", &url[..start + 3], &url[at..])
            }
            _ => url.to_owned(),
        },
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Environment variables that override keys of the file (handy in
/// containers and CI). The value of `REPORTSPLIT_FHIR_URL` replaces `fhir.url`, etc.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("REPORTSPLIT_FHIR_URL", "fhir.url"),
    ("REPORTSPLIT_FHIR_CA_FILE", "fhir.ca_file"),
    ("REPORTSPLIT_FHIR_TIMEOUT_SECS", "fhir.timeout_secs"),
    (
        "REPORTSPLIT_FHIR_MAX_CONCURRENT_REQUESTS",
        "fhir.max_concurrent_requests",
    ),
    (
        "REPORTSPLIT_FHIR_REQUESTS_PER_SECOND",
        "fhir.requests_per_second",
    ),
    ("REPORTSPLIT_STATE_DIR", "state.dir"),
    ("REPORTSPLIT_STATE_URL", "state.url"),
    ("REPORTSPLIT_PULL_SINCE", "pull.since"),
];

impl Config {
    /// Reads, overrides from the process environment, and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let env: Vec<(String, String)> = ENV_OVERRIDES
            .iter()
            .filter_map(|(var, _)| std::env::var(var).ok().map(|v| (var.to_string(), v)))
            .collect();
        let mut config = Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })?;
        config.apply_env(&env)?;
        config.read_state_url_file()?;
        config.validate()?;
        Ok(config)
    }

    /// Reads `[state] url_file` into `state.url`. Both keys set is an error:
    /// which one wins would be a guess.
    fn read_state_url_file(&mut self) -> Result<(), ConfigError> {
        let Some(path) = &self.state.url_file else {
            return Ok(());
        };
        if self.state.url.is_some() {
            return Err(invalid(
                "state.url_file",
                "set either state.url (or REPORTSPLIT_STATE_URL) or state.url_file, not both",
            ));
        }
        let content = std::fs::read_to_string(path).map_err(|e| {
            invalid(
                "state.url_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let url = content.trim_end_matches(['\r', '\n']);
        if url.is_empty() {
            return Err(invalid(
                "state.url_file",
                format!("{} is empty", path.display()),
            ));
        }
        self.state.url = Some(url.to_owned());
        Ok(())
    }

    /// Parses TOML (no environment, no validation).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("config"),
            message: e.to_string(),
        })
    }

    /// Applies `(VARIABLE, value)` overrides (see [`ENV_OVERRIDES`]).
    pub fn apply_env(&mut self, env: &[(String, String)]) -> Result<(), ConfigError> {
        for (var, value) in env {
            let Some((_, key)) = ENV_OVERRIDES.iter().find(|(v, _)| v == var) else {
                continue;
            };
            let number = |value: &str| -> Result<f64, ConfigError> {
                value
                    .parse()
                    .map_err(|_| invalid(key, format!("{var}={value:?} is not a number")))
            };
            match *key {
                "fhir.url" => self.fhir.url = value.clone(),
                "fhir.ca_file" => self.fhir.ca_file = Some(PathBuf::from(value)),
                "fhir.timeout_secs" => self.fhir.timeout_secs = number(value)?,
                "fhir.max_concurrent_requests" => {
                    self.fhir.max_concurrent_requests = value.parse().map_err(|_| {
                        invalid(key, format!("{var}={value:?} is not a whole number"))
                    })?
                }
                "fhir.requests_per_second" => self.fhir.requests_per_second = Some(number(value)?),
                "state.dir" => self.state.dir = PathBuf::from(value),
                "state.url" => self.state.url = Some(value.clone()),
                "pull.since" => self.pull.since = Some(value.clone()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks values the types cannot; every error names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(state_url) = &self.state.url {
            let scheme = state_url.split_once("://").map(|(scheme, _)| scheme);
            if !matches!(scheme, Some("postgres" | "postgresql")) {
                return Err(invalid(
                    "state.url",
                    "must be a postgres:// (or postgresql://) URL",
                ));
            }
        }
        let url = Url::parse(&self.fhir.url)
            .map_err(|e| invalid("fhir.url", format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("fhir.url", "must be an http or https URL"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(
                "fhir.url",
                "must be the FHIR base, without query or fragment",
            ));
        }
        // Credentials in the URL are sent as HTTP Basic; beside an [auth]
        // table, which of the two goes out would be a guess: refuse it.
        if has_userinfo(&url) && self.auth != AuthConfig::None {
            return Err(invalid(
                "fhir.url",
                "carries credentials (user:password@) and [auth] is set too: use one of them (preferably [auth] with a secret from the environment or a file)",
            ));
        }
        if !(self.fhir.timeout_secs.is_finite() && self.fhir.timeout_secs > 0.0) {
            return Err(invalid(
                "fhir.timeout_secs",
                "must be a positive number of seconds",
            ));
        }
        if self.fhir.max_concurrent_requests == 0 {
            return Err(invalid(
                "fhir.max_concurrent_requests",
                "must be at least 1",
            ));
        }
        if self
            .fhir
            .requests_per_second
            .is_some_and(|r| !(r.is_finite() && r > 0.0))
        {
            return Err(invalid(
                "fhir.requests_per_second",
                "must be a positive number (or absent for no limit)",
            ));
        }
        if self.fhir.retry_base_ms == 0 || self.fhir.retry_max_ms < self.fhir.retry_base_ms {
            return Err(invalid(
                "fhir.retry_max_ms",
                "must be at least fhir.retry_base_ms, which must be positive",
            ));
        }
        if let Some(path) = &self.fhir.ca_file
            && !path.is_file()
        {
            return Err(invalid(
                "fhir.ca_file",
                format!("{} is not a file", path.display()),
            ));
        }
        for (index, category) in self.pull.category.iter().enumerate() {
            if category.trim().is_empty() || category.contains(',') {
                return Err(invalid(
                    &format!("pull.category[{index}]"),
                    "must be one `system|code` token",
                ));
            }
        }
        const STATUSES: &[&str] = &[
            "registered",
            "partial",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "appended",
            "cancelled",
            "entered-in-error",
            "unknown",
        ];
        for (index, status) in self.pull.status.iter().enumerate() {
            if !STATUSES.contains(&status.as_str()) {
                return Err(invalid(
                    &format!("pull.status[{index}]"),
                    format!("{status:?} is not a DiagnosticReport status"),
                ));
            }
        }
        for (index, date) in self.pull.date.iter().enumerate() {
            let digits = date.trim_start_matches(|c: char| c.is_ascii_lowercase());
            if digits.len() < 4 || !digits.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(invalid(
                    &format!("pull.date[{index}]"),
                    format!("{date:?} is not a FHIR date with prefix (e.g. ge2024-01-01)"),
                ));
            }
        }
        if self.pull.page_size == 0 || self.pull.page_size > 1000 {
            return Err(invalid("pull.page_size", "must be between 1 and 1000"));
        }
        if self.pull.max_window_reports == 0 {
            return Err(invalid("pull.max_window_reports", "must be at least 1"));
        }
        self.limits()?;
        self.since()?;
        if self.write.concurrent_reports == 0 {
            return Err(invalid("write.concurrent_reports", "must be at least 1"));
        }
        self.hl7.validate()?;
        Ok(())
    }

    /// `pull.since` parsed.
    pub fn since(&self) -> Result<Option<time::OffsetDateTime>, ConfigError> {
        self.pull
            .since
            .as_deref()
            .map(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| {
                        invalid(
                            "pull.since",
                            format!("{s:?} is not an RFC 3339 timestamp: {e}"),
                        )
                    })
            })
            .transpose()
    }

    /// This configuration with `[state] url` replaced by `url` (the
    /// command line's `--state`), if given; validated again.
    pub fn with_state_url(mut self, url: Option<&str>) -> Result<Config, ConfigError> {
        if let Some(url) = url {
            self.state.url = Some(url.to_owned());
            self.validate()?;
        }
        Ok(self)
    }

    /// This configuration as it may be printed: credentials in `fhir.url` are
    /// replaced by `[redacted]` (the [auth] secrets are only names of
    /// variables and files, never values).
    pub fn redacted(&self) -> Config {
        let mut config = self.clone();
        config.fhir.url = redact_url(&config.fhir.url);
        config.state.url = config.state.url.as_deref().map(redact_url);
        config
    }

    pub fn client_options(&self) -> Result<ClientOptions, ConfigError> {
        Ok(ClientOptions {
            base: Url::parse(&self.fhir.url).map_err(|e| invalid("fhir.url", e.to_string()))?,
            timeout: Duration::from_secs_f64(self.fhir.timeout_secs),
            ca_file: self.fhir.ca_file.clone(),
            retry: RetryPolicy {
                max_retries: self.fhir.max_retries,
                base: Duration::from_millis(self.fhir.retry_base_ms),
                max: Duration::from_millis(self.fhir.retry_max_ms),
            },
            max_concurrent: self.fhir.max_concurrent_requests,
            requests_per_second: self.fhir.requests_per_second,
            max_response_bytes: self.limits()?.response_bytes,
        })
    }

    pub fn filters(&self) -> Filters {
        Filters {
            category: self.pull.category.clone(),
            status: self.pull.status.clone(),
            date: self.pull.date.clone(),
            subject: self.pull.subject.clone(),
        }
    }

    /// The `[limits]` table over the defaults, with `pull.max_text_chars`
    /// (the old name of `limits.text_chars`) still honoured.
    pub fn limits(&self) -> Result<Limits, ConfigError> {
        let defaults = Limits::default();
        let table = &self.limits;
        let text_chars = match (table.text_chars, self.pull.max_text_chars) {
            (Some(new), Some(old)) if new != old => {
                return Err(invalid(
                    "pull.max_text_chars",
                    "differs from limits.text_chars, its new name: keep only limits.text_chars",
                ));
            }
            (new, old) => new.or(old),
        };
        let positive = |key: &str, value: Option<usize>, default: usize| match value {
            Some(0) => Err(invalid(key, "must be positive")),
            Some(value) => Ok(value),
            None => Ok(default),
        };
        Ok(Limits {
            text_chars: positive("limits.text_chars", text_chars, defaults.text_chars)?,
            findings: positive("limits.findings", table.findings, defaults.findings)?,
            observations: positive(
                "limits.observations",
                table.observations,
                defaults.observations,
            )?,
            report_bytes: positive(
                "limits.report_bytes",
                table.report_bytes,
                defaults.report_bytes,
            )?,
            bundle_bytes: positive(
                "limits.bundle_bytes",
                table.bundle_bytes,
                defaults.bundle_bytes,
            )?,
            response_bytes: positive(
                "limits.response_bytes",
                table.response_bytes,
                defaults.response_bytes,
            )?,
            attachment_bytes: positive(
                "limits.attachment_bytes",
                table.attachment_bytes,
                defaults.attachment_bytes,
            )?,
        })
    }
}

/// How the DiagnosticReport itself is updated (config `write.method`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMethod {
    /// The report's PUT is the last entry of the one atomic transaction.
    #[default]
    Transaction,
    /// A transaction without the report, then a JSON Patch of the report.
    Patch,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[fhir]\nurl = \"http://127.0.0.1:8080/fhir\"\n";

    #[test]
    fn resource_switches_choose_the_types_written() {
        let config: Config = toml::from_str(MINIMAL).unwrap();
        assert_eq!(
            config.write.optional_types(),
            ["ServiceRequest", "DetectedIssue", "Communication", "Flag"]
        );
        let config: Config = toml::from_str(&format!(
            "{MINIMAL}[write]\nservice_requests = false\ncommunications = false\n\
             unconfirmed_critical = \"communication\"\n"
        ))
        .unwrap();
        assert_eq!(
            config.write.optional_types(),
            ["DetectedIssue", "Communication"]
        );
        let config: Config = toml::from_str(&format!(
            "{MINIMAL}[write]\ndetected_issues = false\ncommunications = false\nflags = false\n"
        ))
        .unwrap();
        assert_eq!(config.write.optional_types(), ["ServiceRequest"]);
        assert!(
            toml::from_str::<Config>(&format!(
                "{MINIMAL}[write]\nunconfirmed_critical = \"page\"\n"
            ))
            .is_err()
        );
    }

    #[test]
    fn each_discrepancy_kind_switches_alone_and_detected_issues_switches_all() {
        let config: Config = toml::from_str(MINIMAL).unwrap();
        assert_eq!(
            config.discrepancy_kinds(),
            reportsplit_split::DiscrepancyKinds::ALL
        );
        let config: Config = toml::from_str(&format!(
            "{MINIMAL}[discrepancies]\nsex = false\norder = false\n"
        ))
        .unwrap();
        assert_eq!(
            discrepancy_names(config.discrepancy_kinds()),
            ["laterality", "section_absent", "follow_up_missing", "age"]
        );
        let config: Config = toml::from_str(&format!(
            "{MINIMAL}[write]\ndetected_issues = false\n[discrepancies]\nsex = true\n"
        ))
        .unwrap();
        assert!(discrepancy_names(config.discrepancy_kinds()).is_empty());
        assert!(
            toml::from_str::<Config>(&format!("{MINIMAL}[discrepancies]\nsize = false\n")).is_err(),
            "an unknown kind is refused"
        );
    }

    #[test]
    fn the_example_config_is_valid() {
        let config = Config::parse(include_str!("../config/example.toml")).unwrap();
        config.validate().unwrap();
        assert!(!config.pull.category.is_empty());
    }

    #[test]
    fn defaults_fill_a_minimal_file() {
        let config = Config::parse(MINIMAL).unwrap();
        config.validate().unwrap();
        assert_eq!(config.pull.status, ["final", "amended", "corrected"]);
        assert_eq!(config.auth, AuthConfig::None);
        assert_eq!(config.pull.page_size, 100);
    }

    #[test]
    fn environment_overrides_win() {
        let mut config = Config::parse(MINIMAL).unwrap();
        config
            .apply_env(&[
                (
                    "REPORTSPLIT_FHIR_URL".into(),
                    "https://fhir.example.org/r4".into(),
                ),
                (
                    "REPORTSPLIT_STATE_DIR".into(),
                    "/var/lib/reportsplit".into(),
                ),
                ("UNRELATED".into(), "x".into()),
            ])
            .unwrap();
        assert_eq!(config.fhir.url, "https://fhir.example.org/r4");
        assert_eq!(config.state.dir, PathBuf::from("/var/lib/reportsplit"));
        let error = config
            .apply_env(&[("REPORTSPLIT_FHIR_TIMEOUT_SECS".into(), "soon".into())])
            .unwrap_err();
        assert!(
            error.to_string().starts_with("fhir.timeout_secs:"),
            "{error}"
        );
    }

    #[test]
    fn a_state_url_is_postgres_from_file_environment_or_command_line_and_printed_redacted() {
        let config = Config::parse(MINIMAL).unwrap();
        assert_eq!(config.state.url, None, "the state directory is the default");
        let mut from_env = config.clone();
        from_env
            .apply_env(&[(
                "REPORTSPLIT_STATE_URL".into(),
                "postgres://rs:hunter2@db/reportsplit".into(),
            )])
            .unwrap();
        from_env.validate().unwrap();
        let printed = toml::to_string_pretty(&from_env.redacted()).unwrap();
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("postgres://[redacted]@db/reportsplit"),
            "{printed}"
        );
        let flag = config
            .clone()
            .with_state_url(Some("postgresql://db/rs"))
            .unwrap();
        assert_eq!(flag.state.url.as_deref(), Some("postgresql://db/rs"));
        let error = config.with_state_url(Some("mysql://db/rs")).unwrap_err();
        assert!(error.to_string().starts_with("state.url:"), "{error}");
    }

    #[test]
    fn a_state_url_file_is_read_once_and_never_beside_state_url() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("state-url");
        std::fs::write(&secret, "postgres://rs:hunter2@db/reportsplit\n").unwrap();
        let site = dir.path().join("site.toml");
        let write_site = |state: &str| {
            std::fs::write(&site, format!("{MINIMAL}\n[state]\n{state}\n")).unwrap();
        };
        write_site(&format!("url_file = {:?}", secret.display().to_string()));
        let config = Config::load(&site).unwrap();
        assert_eq!(
            config.state.url.as_deref(),
            Some("postgres://rs:hunter2@db/reportsplit")
        );
        let printed = toml::to_string_pretty(&config.redacted()).unwrap();
        assert!(!printed.contains("hunter2"), "{printed}");

        write_site(&format!(
            "url = \"postgres://db/rs\"\nurl_file = {:?}",
            secret.display().to_string()
        ));
        let both = Config::load(&site).unwrap_err().to_string();
        assert!(both.starts_with("state.url_file:"), "{both}");

        std::fs::write(&secret, "\n").unwrap();
        write_site(&format!("url_file = {:?}", secret.display().to_string()));
        let empty = Config::load(&site).unwrap_err().to_string();
        assert!(
            empty.contains("is empty") && !empty.contains("hunter2"),
            "{empty}"
        );
    }

    #[test]
    fn url_credentials_are_redacted_and_never_beside_an_auth_table() {
        let with_password = "[fhir]\nurl = \"https://svc:hunter2@fhir.example.org/r4\"\n";
        let config = Config::parse(with_password).unwrap();
        config
            .validate()
            .expect("URL credentials alone are allowed");
        let printed = toml::to_string_pretty(&config.redacted()).unwrap();
        assert!(
            !printed.contains("hunter2") && !printed.contains("svc"),
            "{printed}"
        );
        assert!(
            printed.contains("https://[redacted]@fhir.example.org/r4"),
            "{printed}"
        );
        assert_eq!(
            redact_url("https://fhir.example.org/r4"),
            "https://fhir.example.org/r4"
        );
        assert_eq!(redact_url("http://u:p@[bad/x"), "http://[redacted]@[bad/x");

        let both = format!(
            "{with_password}[auth]\ntype = \"bearer\"\ntoken_env = \"REPORTSPLIT_TEST_TOKEN\"\n"
        );
        let error = Config::parse(&both).unwrap().validate().unwrap_err();
        assert!(error.to_string().starts_with("fhir.url:"), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn limits_default_and_the_old_key_still_counts() {
        let config = Config::parse(MINIMAL).unwrap();
        assert_eq!(config.limits().unwrap(), Limits::default());
        let old = Config::parse(&format!("{MINIMAL}[pull]\nmax_text_chars = 5000\n")).unwrap();
        assert_eq!(old.limits().unwrap().text_chars, 5000);
        let new = Config::parse(&format!(
            "{MINIMAL}[limits]\ntext_chars = 7000\nfindings = 10\n"
        ))
        .unwrap();
        let limits = new.limits().unwrap();
        assert_eq!((limits.text_chars, limits.findings), (7000, 10));
        assert_eq!(limits.observations, Limits::default().observations);
        let both = Config::parse(&format!(
            "{MINIMAL}[pull]\nmax_text_chars = 5000\n[limits]\ntext_chars = 7000\n"
        ))
        .unwrap();
        let error = both.validate().unwrap_err().to_string();
        assert!(error.starts_with("pull.max_text_chars:"), "{error}");
        let zero = Config::parse(&format!("{MINIMAL}[limits]\nfindings = 0\n")).unwrap();
        let error = zero.validate().unwrap_err().to_string();
        assert!(error.starts_with("limits.findings:"), "{error}");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[fhir]\nurl = \"ftp://x\"\n", "fhir.url"),
            (
                "[fhir]\nurl = \"http://x/fhir\"\ntimeout_secs = 0\n",
                "fhir.timeout_secs",
            ),
            (
                "[fhir]\nurl = \"http://x/fhir\"\n[pull]\nstatus = [\"final\", \"done\"]\n",
                "pull.status[1]",
            ),
            (
                "[fhir]\nurl = \"http://x/fhir\"\n[pull]\nsince = \"yesterday\"\n",
                "pull.since",
            ),
            (
                "[fhir]\nurl = \"http://x/fhir\"\n[pull]\ndate = [\"2024\"]\n",
                "",
            ),
            (
                "[fhir]\nurl = \"http://x/fhir\"\n[pull]\npage_size = 0\n",
                "pull.page_size",
            ),
        ];
        for (text, key) in cases {
            let result = Config::parse(text).and_then(|c| c.validate());
            if key.is_empty() {
                assert!(result.is_ok(), "{text}");
                continue;
            }
            let error = result.unwrap_err().to_string();
            assert!(error.starts_with(&format!("{key}:")), "{text} → {error}");
        }
        // Unknown keys and wrong types are refused by the parser, which names them.
        let unknown = Config::parse("[fhir]\nurl = \"http://x\"\nurll = 1\n")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("urll"), "{unknown}");
        let wrong_type =
            Config::parse("[fhir]\nurl = \"http://x\"\n[pull]\npage_size = \"many\"\n")
                .unwrap_err()
                .to_string();
        assert!(wrong_type.contains("page_size"), "{wrong_type}");
    }
}

//! The `[hl7]` table: what is taken from an HL7 v2 feed, how identifiers
//! are read, and the listener's limits (docs/operations.md, "[hl7]").

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use reportsplit_hl7::Hl7Settings;
use serde::{Deserialize, Serialize};
use time::UtcOffset;

use super::ConfigError;

/// How the report's patient is found from PID-3.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PatientMode {
    /// The Patient must exist (found by identifier); otherwise the report
    /// is a dead letter.
    #[default]
    Resolve,
    /// Created (conditionally, with the identifier only) when none exists.
    Create,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hl7Config {
    /// OBR-24 diagnostic service sections whose results are taken.
    #[serde(default = "defaults::service_sections")]
    pub service_sections: Vec<String>,
    /// MSH-11 processing ids whose messages are taken.
    #[serde(default = "defaults::processing_ids")]
    pub processing_ids: Vec<String>,
    /// Assigning authority (PID-3.4, an order number's namespace, or MSH-4)
    /// → identifier system URI. An authority missing here gets AE.
    #[serde(default)]
    pub authorities: BTreeMap<String, String>,
    #[serde(default)]
    pub patient: PatientMode,
    /// The zone of v2 timestamps that carry none (`+01:00`, `Z`).
    #[serde(default = "defaults::utc_offset")]
    pub utc_offset: String,
    /// Largest message accepted (bytes, between MLLP's framing bytes).
    #[serde(default = "defaults::max_message_bytes")]
    pub max_message_bytes: usize,
    /// Connections served at once; more wait to be accepted.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed.
    #[serde(default = "defaults::idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// The spool (default: `<state.dir>/hl7-spool`).
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Days a dead letter (the message itself) is kept.
    #[serde(default = "defaults::dead_letter_days")]
    pub dead_letter_days: u64,
}

impl Default for Hl7Config {
    fn default() -> Self {
        Hl7Config {
            service_sections: defaults::service_sections(),
            processing_ids: defaults::processing_ids(),
            authorities: BTreeMap::new(),
            patient: PatientMode::default(),
            utc_offset: defaults::utc_offset(),
            max_message_bytes: defaults::max_message_bytes(),
            max_connections: defaults::max_connections(),
            idle_timeout_secs: defaults::idle_timeout_secs(),
            spool_dir: None,
            dead_letter_days: defaults::dead_letter_days(),
        }
    }
}

mod defaults {
    pub fn service_sections() -> Vec<String> {
        [
            "RAD", "CT", "MR", "US", "NMS", "RX", "NMR", "RUS", "OUS", "VUS", "CUS", "XRC",
        ]
        .map(String::from)
        .to_vec()
    }
    pub fn processing_ids() -> Vec<String> {
        vec!["P".to_owned()]
    }
    pub fn utc_offset() -> String {
        "Z".to_owned()
    }
    pub fn max_message_bytes() -> usize {
        4 * 1024 * 1024
    }
    pub fn max_connections() -> usize {
        64
    }
    pub fn idle_timeout_secs() -> u64 {
        600
    }
    pub fn dead_letter_days() -> u64 {
        30
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: format!("hl7.{key}"),
        message: message.into(),
    }
}

impl Hl7Config {
    /// The mapping's settings; every error names its key.
    pub fn settings(&self) -> Result<Hl7Settings, ConfigError> {
        let utc_offset = parse_offset(&self.utc_offset)
            .ok_or_else(|| invalid("utc_offset", "must be Z or ±HH:MM"))?;
        for (authority, system) in &self.authorities {
            if url::Url::parse(system).is_err() {
                return Err(invalid(
                    &format!("authorities.{authority}"),
                    format!("{system:?} is not a URI"),
                ));
            }
        }
        Ok(Hl7Settings {
            service_sections: self.service_sections.clone(),
            processing_ids: self.processing_ids.clone(),
            authorities: self.authorities.clone(),
            utc_offset,
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.settings()?;
        if self.max_message_bytes < 64 {
            return Err(invalid("max_message_bytes", "must be at least 64"));
        }
        if self.max_connections == 0 {
            return Err(invalid("max_connections", "must be at least 1"));
        }
        if self.idle_timeout_secs == 0 {
            return Err(invalid("idle_timeout_secs", "must be at least 1"));
        }
        Ok(())
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    pub fn dead_letter_retention(&self) -> Duration {
        Duration::from_secs(self.dead_letter_days.saturating_mul(86_400))
    }
}

fn parse_offset(text: &str) -> Option<UtcOffset> {
    if text == "Z" {
        return Some(UtcOffset::UTC);
    }
    let format = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    UtcOffset::parse(text, &format).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_authorities_are_checked_by_key() {
        let mut config = Hl7Config::default();
        assert!(config.validate().is_ok());
        config.utc_offset = "+01:00".into();
        assert_eq!(
            config.settings().map(|s| s.utc_offset).ok(),
            UtcOffset::from_hms(1, 0, 0).ok()
        );
        config.utc_offset = "CET".into();
        let error = config.validate().err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.starts_with("hl7.utc_offset")));
        config.utc_offset = "Z".into();
        config.authorities.insert("NGH".into(), "not a uri".into());
        let error = config.validate().err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.starts_with("hl7.authorities.NGH")));
    }
}

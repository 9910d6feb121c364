//! The clap arguments of each command, and their conversion into the
//! library's plain option structs (the library knows nothing of clap).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use reportsplit::mode::backfill::{BackfillOptions, WindowField};
use reportsplit::mode::daemon::DaemonOptions;
use reportsplit::mode::hl7::Hl7FilesOptions;
use reportsplit::mode::mllp::MllpOptions;
use reportsplit::mode::once::OnceOptions;
use reportsplit::mode::reprocess::ReprocessOptions;
use reportsplit::mode::retract::{RetractOptions, Target};
use reportsplit::mode::serve::ServeOptions;
use time::OffsetDateTime;

use super::parse::{parse_duration, parse_instant};

/// `reportsplit sync`.
#[derive(Debug, Clone, clap::Args)]
pub struct SyncArgs {
    /// The configuration file (TOML; see config/example.toml).
    #[arg(long, short = 'c', env = "REPORTSPLIT_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// Run one pass and exit: the form for cron (resumes from the saved checkpoint).
    #[arg(long)]
    pub once: bool,
    /// Print the transactions that would be sent (NDJSON, one Bundle per line);
    /// write nothing to the server and leave the checkpoint where it is.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the transaction Bundles (NDJSON) to FILE instead of stdout. With a
    /// real run it is an audit log of what was sent.
    #[arg(long, value_name = "FILE")]
    pub transactions_out: Option<PathBuf>,
    /// Run as a daemon: a pass every DURATION (5m, 1h...; ±10% jitter) until
    /// SIGTERM/SIGINT, which finish the pass in flight (see src/mode/daemon.rs).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with_all = ["once", "dry_run"])]
    pub every: Option<std::time::Duration>,
    /// With --every: serve Prometheus metrics (GET /metrics) on this address,
    /// e.g. 127.0.0.1:9464. Pass counts, outcomes by reason and checkpoint lag.
    #[arg(long, value_name = "ADDR", requires = "every")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// With --once: read the reports from a Bulk Data $export of the server
    /// (the first pass over a long history) instead of a search; the
    /// checkpoint goes to the export's transactionTime. A server that does
    /// not export gets the usual search pass.
    #[arg(long, requires = "once")]
    pub from_export: bool,
    /// Keep the checkpoint in PostgreSQL (postgres://…) instead of the state
    /// directory: many workers, one leader advancing it (overrides `[state] url`).
    #[arg(long, value_name = "URL")]
    pub state: Option<String>,
}

impl SyncArgs {
    pub fn once(&self) -> OnceOptions {
        OnceOptions {
            config: self.config.clone(),
            dry_run: self.dry_run,
            transactions_out: self.transactions_out.clone(),
            from_export: self.from_export,
            state_url: self.state.clone(),
        }
    }

    pub fn daemon(&self, every: Duration) -> DaemonOptions {
        DaemonOptions {
            config: self.config.clone(),
            every,
            transactions_out: self.transactions_out.clone(),
            metrics_listen: self.metrics_listen,
            state_url: self.state.clone(),
        }
    }
}

/// `reportsplit backfill`.
#[derive(Debug, Clone, clap::Args)]
pub struct BackfillArgs {
    /// The configuration file (TOML; see config/example.toml).
    #[arg(long, short = 'c', env = "REPORTSPLIT_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// Start of the range (inclusive): a date (2015-01-01, UTC midnight) or an RFC 3339 timestamp.
    #[arg(long, value_name = "WHEN", value_parser = parse_instant)]
    pub since: OffsetDateTime,
    /// End of the range (exclusive); default: now.
    #[arg(long, value_name = "WHEN", value_parser = parse_instant)]
    pub until: Option<OffsetDateTime>,
    /// Reports in flight at once (also the most windows worked on at once).
    /// HTTP requests stay capped by `fhir.max_concurrent_requests`.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Window length: 1d, 7d, 12h, 30m... Progress is saved per window.
    #[arg(long, default_value = "1d", value_name = "DURATION", value_parser = parse_duration)]
    pub window: Duration,
    /// What the windows cut: `last-updated` (meta.lastUpdated, every report,
    /// resumable mid-window) or `date` (the clinical date, effective[x]).
    #[arg(long, value_enum, default_value_t = By::LastUpdated)]
    pub by: By,
    /// Dead-letter file (NDJSON, appended): one line per failed report.
    /// Default: dead-letter.ndjson in the state directory.
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
    /// Progress log interval when stderr is not a terminal (a bar is shown on a terminal).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub log_every: Duration,
    /// Serve Prometheus metrics (GET /metrics) on this address while the backfill
    /// runs, e.g. 127.0.0.1:9464: reports by outcome and reason, Observations written.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Lease the windows in PostgreSQL (postgres://…) instead of the state
    /// directory: any number of backfills, on any number of machines, share
    /// the range (overrides `[state] url`).
    #[arg(long, value_name = "URL")]
    pub state: Option<String>,
    /// With PostgreSQL state: how long a window's lease lasts without renewal
    /// (a heartbeat renews it every third). A dead worker's window is taken
    /// over this long after its last renewal.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub lease: Duration,
    /// Read the reports from a Bulk Data $export of the server instead of
    /// a windowed search: one kick-off (recorded in the state, so a restart
    /// or another worker uses the same job), each NDJSON file a unit of
    /// work (leased like a window with PostgreSQL state, resumed at its
    /// lines done), the sync checkpoint to the export's transactionTime at
    /// the end. A server that does not export gets the windowed search.
    #[arg(long)]
    pub from_export: bool,
}

/// `--by`: the search parameter the windows are cut on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    LastUpdated,
    Date,
}

impl From<&BackfillArgs> for BackfillOptions {
    fn from(args: &BackfillArgs) -> Self {
        BackfillOptions {
            config: args.config.clone(),
            since: args.since,
            until: args.until,
            concurrency: usize::from(args.concurrency),
            window: args.window,
            by: match args.by {
                By::LastUpdated => WindowField::LastUpdated,
                By::Date => WindowField::Date,
            },
            dead_letter: args.dead_letter.clone(),
            log_every: args.log_every,
            metrics_listen: args.metrics_listen,
            state_url: args.state.clone(),
            lease: args.lease,
            from_export: args.from_export,
        }
    }
}

/// `reportsplit reprocess`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReprocessArgs {
    /// The configuration file (TOML; see config/example.toml).
    #[arg(long, short = 'c', env = "REPORTSPLIT_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// The dead-letter file written by `reportsplit backfill` (NDJSON).
    #[arg(long, value_name = "FILE")]
    pub dead_letter: PathBuf,
    /// Write the entries that still fail to FILE and leave --dead-letter as it
    /// is. Default: rewrite --dead-letter in place (atomically).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl From<&ReprocessArgs> for ReprocessOptions {
    fn from(args: &ReprocessArgs) -> Self {
        ReprocessOptions {
            config: args.config.clone(),
            dead_letter: args.dead_letter.clone(),
            output: args.output.clone(),
        }
    }
}

/// `reportsplit retract`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("release").required(true).args(["version", "device"])))]
pub struct RetractArgs {
    /// The configuration file (TOML; see config/example.toml).
    #[arg(long, short = 'c', env = "REPORTSPLIT_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// The reportsplit version to retract: every Device with the identifier
    /// urn:reportsplit:device|reportsplit/VERSION.
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Or one Device, as Device/<id> (its identifier says the version).
    #[arg(long, value_name = "Device/ID")]
    pub device: Option<String>,
    /// Start of the range of Provenance.recorded (when that release wrote; inclusive):
    /// a date (2026-11-01, UTC midnight) or an RFC 3339 timestamp.
    #[arg(long, value_name = "WHEN", value_parser = parse_instant)]
    pub since: OffsetDateTime,
    /// End of the range (exclusive); default: now.
    #[arg(long, value_name = "WHEN", value_parser = parse_instant)]
    pub until: Option<OffsetDateTime>,
    /// Window length: 1d, 12h, 30m... Progress is saved per window.
    #[arg(long, default_value = "1d", value_name = "DURATION", value_parser = parse_duration)]
    pub window: Duration,
    /// Write. Without it, print what would be done and write nothing.
    #[arg(long)]
    pub apply: bool,
}

impl From<&RetractArgs> for RetractOptions {
    fn from(args: &RetractArgs) -> Self {
        RetractOptions {
            config: args.config.clone(),
            target: match (&args.version, &args.device) {
                (Some(version), _) => Target::Version(version.clone()),
                (None, device) => Target::Device(device.clone().unwrap_or_default()),
            },
            since: args.since,
            until: args.until,
            window: args.window,
            apply: args.apply,
        }
    }
}

/// `reportsplit serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        default_value = "127.0.0.1:8080",
        env = "REPORTSPLIT_LISTEN",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,
    /// The configuration file (TOML; see config/example.toml): the FHIR server to read
    /// from and write to, auth, limits.
    #[arg(long, short = 'c', env = "REPORTSPLIT_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// Largest request body accepted, in bytes (larger: 413). Default: the
    /// configuration's `limits.report_bytes` (8 MiB unless set).
    #[arg(long, env = "REPORTSPLIT_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Notified reports that may wait for the background worker (kept in the
    /// state directory across restarts); beyond it, 503.
    #[arg(
        long,
        default_value_t = 1000,
        env = "REPORTSPLIT_QUEUE_CAPACITY",
        value_name = "N"
    )]
    pub queue_capacity: usize,
    /// Seconds between probes of the FHIR server (its `metadata`) for /healthz.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub health_interval_secs: u64,
    /// On shutdown, seconds to finish queued and in-flight reports before exiting.
    /// Reports not finished stay in the queue (state directory) for the next start.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub drain_secs: u64,
    /// Seconds a request may take, body upload included (then 503). `$enrich?apply=true`
    /// waits for the FHIR server's retries, so keep it above their total.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub request_timeout_secs: u64,
    /// Append notified reports that fail (after the client's retries) to this NDJSON
    /// file, for `reportsplit reprocess --dead-letter FILE`. No report text in it.
    /// Default: dead-letter.ndjson in the state directory.
    #[arg(long, env = "REPORTSPLIT_DEAD_LETTER", value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
    /// Require `Authorization: Bearer <token>` on the POST routes. Set it through the
    /// environment: a value on the command line is visible to other users.
    #[arg(
        long,
        env = "REPORTSPLIT_SERVE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// Read the token from this file (trailing newline removed), e.g. a mounted
    /// Kubernetes Secret; read once at start.
    #[arg(long, env = "REPORTSPLIT_SERVE_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Serve without a token: anyone who reaches the port may post. Refused unless
    /// `--listen` is a loopback address.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Require this shared secret in the `X-Reportsplit-Notify-Secret` header on
    /// `/notify` (put it in the Subscription's `channel.header`) instead of the token.
    #[arg(
        long,
        env = "REPORTSPLIT_NOTIFY_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        conflicts_with = "notify_secret_file"
    )]
    pub notify_secret: Option<String>,
    /// Read the notify secret from this file (trailing newline removed).
    #[arg(long, env = "REPORTSPLIT_NOTIFY_SECRET_FILE", value_name = "FILE")]
    pub notify_secret_file: Option<PathBuf>,
    /// Keep the queue of notified reports in PostgreSQL (postgres://…)
    /// instead of the state directory (overrides `[state] url`).
    #[arg(long, value_name = "URL")]
    pub state: Option<String>,
}

/// A secret given inline or as a file. A file that cannot be read, or holds
/// nothing, is an error naming the flag, never the content.
fn secret(
    inline: Option<&String>,
    file: Option<&PathBuf>,
    flag: &str,
) -> anyhow::Result<Option<String>> {
    if let Some(path) = file {
        let content = std::fs::read_to_string(path)
            .with_context(|| format!("{flag}: cannot read {}", path.display()))?;
        let value = content.trim_end_matches(['\r', '\n']);
        anyhow::ensure!(!value.is_empty(), "{flag}: {} is empty", path.display());
        return Ok(Some(value.to_owned()));
    }
    Ok(inline.filter(|value| !value.is_empty()).cloned())
}

impl TryFrom<&ServeArgs> for ServeOptions {
    type Error = anyhow::Error;

    fn try_from(args: &ServeArgs) -> anyhow::Result<Self> {
        Ok(ServeOptions {
            max_body_bytes: args.max_body_bytes,
            queue_capacity: args.queue_capacity,
            health_interval: Duration::from_secs(args.health_interval_secs.max(1)),
            drain: Duration::from_secs(args.drain_secs),
            request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            token: secret(
                args.token.as_ref(),
                args.token_file.as_ref(),
                "--token-file",
            )?,
            insecure_no_auth: args.insecure_no_auth,
            notify_secret: secret(
                args.notify_secret.as_ref(),
                args.notify_secret_file.as_ref(),
                "--notify-secret-file",
            )?,
            dead_letter: args.dead_letter.clone(),
            state_url: args.state.clone(),
        })
    }
}

/// `reportsplit mllp`.
#[derive(Debug, Clone, clap::Args)]
pub struct MllpArgs {
    /// The configuration file (TOML; see config/example.toml): the FHIR server, `[hl7]`.
    #[arg(long, short = 'c', env = "REPORTSPLIT_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// Address to listen on for MLLP.
    #[arg(long, default_value = "127.0.0.1:2575", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Reports the writer stores and enriches at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Only spool and acknowledge; write nothing to the FHIR server (the spool
    /// is drained by the next start without this flag).
    #[arg(long)]
    pub spool_only: bool,
    /// Keep the spool in PostgreSQL (postgres://…) instead of the state
    /// directory: several replicas share it (overrides `[state] url`).
    #[arg(long, value_name = "URL")]
    pub state: Option<String>,
    /// Serve Prometheus metrics (GET /metrics) and GET /healthz on this
    /// address, e.g. 127.0.0.1:9464: messages by outcome, spool depth, ACK latency.
    #[arg(long, visible_alias = "metrics", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

impl From<&MllpArgs> for MllpOptions {
    fn from(args: &MllpArgs) -> Self {
        MllpOptions {
            config: args.config.clone(),
            listen: args.listen,
            concurrency: usize::from(args.concurrency),
            writer: !args.spool_only,
            state_url: args.state.clone(),
            metrics_listen: args.metrics_listen,
        }
    }
}

/// `reportsplit hl7`.
#[derive(Debug, Clone, clap::Args)]
pub struct Hl7Args {
    /// The configuration file (TOML; see config/example.toml): the FHIR server, `[hl7]`.
    #[arg(long, short = 'c', env = "REPORTSPLIT_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// HL7 v2 files (FHS/BHS batches or plain message streams), directories of
    /// them (read in name order), or `-` for stdin.
    #[arg(required = true, value_name = "FILE|DIR|-")]
    pub inputs: Vec<PathBuf>,
    /// Messages in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Dead-letter file (NDJSON, appended, owner-only): one line per message refused
    /// or failed (file and position, MSH-10, reason). Default:
    /// hl7-dead-letter.ndjson in the state directory.
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
    /// Progress log interval when stderr is not a terminal (a spinner is shown on a terminal).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub log_every: Duration,
}

impl From<&Hl7Args> for Hl7FilesOptions {
    fn from(args: &Hl7Args) -> Self {
        Hl7FilesOptions {
            config: args.config.clone(),
            inputs: args.inputs.clone(),
            concurrency: usize::from(args.concurrency),
            dead_letter: args.dead_letter.clone(),
            log_every: args.log_every,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_defaults() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let cli =
            <Cli as clap::Parser>::try_parse_from(["serve", "--config", "site.toml"]).unwrap();
        let options = ServeOptions::try_from(&cli.serve).unwrap();
        assert_eq!(cli.serve.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(options.max_body_bytes, None);
        assert_eq!(options.request_timeout, Duration::from_secs(120));
        let cli = <Cli as clap::Parser>::try_parse_from([
            "serve",
            "-c",
            "site.toml",
            "--listen",
            "127.0.0.1:0",
            "--queue-capacity",
            "5",
        ])
        .unwrap();
        assert_eq!(cli.serve.queue_capacity, 5);
    }

    #[test]
    fn a_secret_file_is_read_once_without_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serve-token");
        std::fs::write(&file, "s3cret\n").unwrap();
        let inline = Some("inline".to_owned());
        assert_eq!(
            secret(inline.as_ref(), Some(&file), "--token-file").unwrap(),
            Some("s3cret".to_owned())
        );
        assert_eq!(
            secret(inline.as_ref(), None, "--token-file").unwrap(),
            inline
        );
        assert_eq!(
            secret(Some(&String::new()), None, "--token-file").unwrap(),
            None
        );
        std::fs::write(&file, "\n").unwrap();
        let empty = secret(None, Some(&file), "--token-file").unwrap_err();
        assert!(empty.to_string().contains("is empty"), "{empty}");
        let missing = secret(None, Some(&dir.path().join("absent")), "--token-file");
        assert!(format!("{:#}", missing.unwrap_err()).starts_with("--token-file: cannot read"));
        // Inline and file together are refused by clap.
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let both = <Cli as clap::Parser>::try_parse_from([
            "serve",
            "-c",
            "site.toml",
            "--token",
            "a",
            "--token-file",
            "b",
        ]);
        assert!(both.is_err());
    }
}

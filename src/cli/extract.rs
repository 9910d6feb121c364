//! `reportsplit extract`: the extractor on text or reports from a file or
//! stdin, offline. Glue between the input formats, the pure crates and
//! stdout; nothing here touches the network.
//!
//! NDJSON is streamed: lines are read in chunks, the chunks are extracted on
//! several threads, each straight into its own output buffer (no
//! `serde_json::Value` of the result), and the buffers are written in input
//! order. At most [`IN_FLIGHT_PER_THREAD`] chunks per thread exist at once, so
//! memory does not grow with the input. A bad record is reported on stderr
//! by its line number (never its content) and the others go on (exit 3).

use std::collections::BTreeMap;
use std::io::{BufRead, Read as _, Write};
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use reportsplit::input::{self, Format, Record};
use reportsplit_fhir::limits::{Limit, Limits, OverLimit};
use reportsplit_fhir::map::RunInfo;
use reportsplit_fhir::plan::{self, Plan};
use reportsplit_fhir::text;
use reportsplit_split::{DiscrepancyKinds, Extraction, Lexicon, SectionKind};
use serde::Serialize;
use serde_json::Value;

use super::exit;

/// Lines per chunk: large enough that the hand-off between threads costs
/// nothing next to the extraction (~10 µs a report), small enough to keep
/// the threads busy on short inputs.
const CHUNK_LINES: usize = 256;
/// A chunk also ends at this many bytes, so that huge lines do not make
/// huge chunks.
const CHUNK_BYTES: usize = 4 << 20;
/// Output bytes reserved per input byte of a chunk: an extraction line is
/// ~7 times its report (scripts/bench-extract.sh), and a buffer that has to
/// grow is copied (most of the cost of its allocation).
const OUTPUT_PER_INPUT_BYTE: usize = 8;
/// Chunks read but not yet written, per extracting thread: one being
/// extracted and one waiting, so no thread starves while the writer catches up.
const IN_FLIGHT_PER_THREAD: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputArg {
    /// Decide from the content: one JSON value is json, lines of JSON objects are
    /// ndjson, anything not starting with `{` or `[` is text.
    Auto,
    /// The whole input is one report's plain text (even if it looks like JSON).
    Text,
    /// One JSON value: a DiagnosticReport, a Bundle, or an array of them.
    Json,
    /// One DiagnosticReport or Bundle per line.
    Ndjson,
}

#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
    /// The input file, or `-` for standard input.
    #[arg(default_value = "-")]
    pub file: PathBuf,
    /// How to read the input. Invalid JSON is an error under every setting but
    /// `text`; it is never split as plain text silently.
    #[arg(long, value_enum, default_value_t = InputArg::Auto)]
    pub input: InputArg,
    /// Print a single result as compact JSON instead of indented JSON.
    #[arg(long)]
    pub compact: bool,
    /// Interface-engine mode: read DiagnosticReports and print, per report, the
    /// transaction Bundle that `sync` would send (NDJSON). Works offline, so a report
    /// amended since an earlier run gets new Observations but the old ones are not
    /// superseded: use `sync` or `serve` for that. A report already tagged for its
    /// current text yields an empty transaction; one without text an OperationOutcome.
    #[arg(long)]
    pub fhir: bool,
    /// Apply a site's overlays of the code tables from this directory (findings.tsv,
    /// body_sites.tsv, descriptors.tsv, assessments.tsv, critical.tsv, sections.tsv): each
    /// file adds, replaces or removes (`-`) rows of the built-in table (mappings/README.md).
    #[arg(long, value_name = "DIR", env = "REPORTSPLIT_MAPPINGS")]
    pub mappings: Option<PathBuf>,
    /// Threads extracting NDJSON (0: one per CPU). Output order is input order
    /// whatever the number.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Read the `[limits]` table (and `[mappings] dir`, unless --mappings is given,
    /// and with --fhir the `[write]` switches) of this site configuration; without it
    /// the default limits hold and every resource type is written
    /// (docs/operations.md, "Limits").
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print on stderr the wall time and the time per record spent parsing JSON,
    /// extracting and serialising, summed over the threads (scripts/bench-extract.sh).
    #[arg(long)]
    pub timings: bool,
}

pub fn extract(args: &ExtractArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let config = match &args.config {
        Some(path) => Some(reportsplit::config::Config::load(path)?),
        None => None,
    };
    let limits = match &config {
        Some(config) => config.limits()?,
        None => Limits::default(),
    };
    let mappings = args.mappings.as_deref().or_else(|| {
        config
            .as_ref()
            .and_then(|config| config.mappings.dir.as_deref())
    });
    let lexicon = load_lexicon(mappings)?;
    let job = Job {
        lexicon: &lexicon,
        limits,
        fhir: args.fhir.then(|| RunInfo {
            extractor_version: env!("CARGO_PKG_VERSION").to_owned(),
            recorded: time::OffsetDateTime::now_utc(),
            writes: config
                .as_ref()
                .map(|config| config.write.writes())
                .unwrap_or_default(),
        }),
        timings: args.timings,
        discrepancies: config
            .as_ref()
            .map_or(DiscrepancyKinds::ALL, |config| config.discrepancy_kinds()),
    };
    let mut source = open(&args.file, limits)?;
    let format = match args.input {
        InputArg::Text => Format::Text,
        InputArg::Json => Format::Json,
        InputArg::Ndjson => Format::Ndjson,
        InputArg::Auto => match source.detect().context("reading the input")? {
            Some(format) => format,
            // Nothing but blank lines: nothing to do, and nothing failed.
            None => return Ok(ExitCode::SUCCESS),
        },
    };
    if format == Format::Text && args.fhir {
        eprintln!(
            "reportsplit: --fhir reads DiagnosticReports (JSON, Bundle or NDJSON), not plain text"
        );
        return Ok(ExitCode::from(exit::CONFIG));
    }
    let (tally, timings) = match format {
        Format::Ndjson => {
            let threads = match args.threads {
                0 => std::thread::available_parallelism().map_or(1, usize::from),
                n => n,
            };
            ndjson(source, &job, threads)?
        }
        Format::Text | Format::Json => whole(source, format, &job, args.compact)?,
    };
    if args.timings {
        timings.print(tally.ok + tally.failed, started.elapsed());
    }
    if tally.failed > 0 {
        eprintln!(
            "reportsplit: {} of {} records failed (reasons above){}",
            tally.failed,
            tally.ok + tally.failed,
            if tally.ok > 0 {
                "; the others were processed"
            } else {
                ""
            }
        );
        return Ok(ExitCode::from(exit::PARTIAL));
    }
    Ok(ExitCode::SUCCESS)
}

/// What to do with each record; shared by every thread.
struct Job<'a> {
    lexicon: &'a Lexicon,
    limits: Limits,
    /// `--fhir`: plan transactions with this run's identity instead of printing extractions.
    fhir: Option<RunInfo>,
    timings: bool,
    /// The kinds of discrepancy looked for (the config's `[discrepancies]`).
    discrepancies: DiscrepancyKinds,
}

/// Records processed and failed.
#[derive(Default)]
struct Tally {
    ok: usize,
    failed: usize,
}

/// Time per stage, summed over records (and threads). It is elapsed time on
/// the thread (std has no thread CPU clock), so on a busy machine it includes
/// time the thread waited for a CPU; the proportions still hold.
#[derive(Default, Clone, Copy)]
struct Timings {
    parse: Duration,
    extract: Duration,
    serialise: Duration,
}

impl Timings {
    fn add(&mut self, other: Timings) {
        self.parse += other.parse;
        self.extract += other.extract;
        self.serialise += other.serialise;
    }

    fn print(&self, records: usize, wall: Duration) {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / records.max(1) as f64;
        eprintln!(
            "reportsplit: {records} records in {:.3} s wall ({:.0} records/s); time per record \
             on the extracting threads: JSON parse {:.2} µs, extract {:.2} µs, serialise {:.2} µs",
            wall.as_secs_f64(),
            records as f64 / wall.as_secs_f64().max(1e-9),
            per(self.parse),
            per(self.extract),
            per(self.serialise),
        );
    }
}

/// Times `f` into `slot` when timings are on (an `Instant` pair costs ~50 ns,
/// but nothing is the right price when nobody asked).
fn timed<T>(on: bool, slot: &mut Duration, f: impl FnOnce() -> T) -> T {
    if !on {
        return f();
    }
    let start = Instant::now();
    let value = f();
    *slot += start.elapsed();
    value
}

impl Job<'_> {
    /// Appends one output line for `report` to `out`. `Err` is the reason the
    /// record failed (anything it wrote stays: `--fhir` prints an OperationOutcome).
    fn report(
        &self,
        report: &Value,
        pretty: bool,
        out: &mut Vec<u8>,
        timings: &mut Timings,
    ) -> Result<(), String> {
        let reference = report
            .get("id")
            .and_then(Value::as_str)
            .map(|id| format!("DiagnosticReport/{id}"));
        let text = timed(self.timings, &mut timings.extract, || {
            text::report_text(report, &self.limits)
        });
        // A text over the limit or undecodable is a failed record, not a skip.
        if let Err(reason) = &text
            && reason.is_defect()
        {
            if self.fhir.is_some() {
                let code = match reason {
                    text::SkipReason::OverLimit(_) => "too-costly",
                    _ => "invalid",
                };
                let line = outcome("error", code, &reason.to_string());
                write_json(out, &line, false)?;
            }
            return Err(format!("{}: {reason}", name(report)));
        }
        if let Some(run) = &self.fhir {
            let (line, failure) = timed(self.timings, &mut timings.extract, || match &text {
                Err(reason) => (
                    outcome("information", "informational", &reason.to_string()),
                    None,
                ),
                Ok(text) => {
                    let extraction = self.extract_report(report, text);
                    let planned = self
                        .limits
                        .check_extraction(&extraction)
                        .map_err(|over| over.to_string())
                        .and_then(|()| {
                            plan::plan_any(report, text, &extraction, &[], run)
                                .map_err(|error| format!("cannot plan: {error}"))
                        })
                        .and_then(|planned| match planned {
                            Plan::Write(set) => self
                                .limits
                                .check_observations(set.observations + set.superseded)
                                .map(|()| Plan::Write(set))
                                .map_err(|over| over.to_string()),
                            current => Ok(current),
                        });
                    match planned {
                        Ok(Plan::Write(set)) => (set.bundle, None),
                        Ok(Plan::Current) => (
                            serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": []}),
                            None,
                        ),
                        Err(error) => (
                            outcome("error", "processing", &error),
                            Some(format!("{}: {error}", name(report))),
                        ),
                    }
                }
            });
            timed(self.timings, &mut timings.serialise, || {
                serde_json::to_writer(&mut *out, &line)
            })
            .map_err(|error| format!("cannot serialise the transaction: {error}"))?;
            out.push(b'\n');
            return failure.map_or(Ok(()), Err);
        }
        match text {
            Ok(text) => {
                let extraction = timed(self.timings, &mut timings.extract, || {
                    self.extract_report(report, &text)
                });
                self.limits
                    .check_extraction(&extraction)
                    .map_err(|over| format!("{}: {over}", name(report)))?;
                let line = ExtractOutput {
                    report: reference,
                    source: Some(&text.element),
                    skipped: None,
                    extraction: Some(extraction),
                };
                timed(self.timings, &mut timings.serialise, || {
                    write_json(out, &line, pretty)
                })
            }
            Err(reason) => write_json(
                out,
                &ExtractOutput {
                    report: reference,
                    source: None,
                    skipped: Some(reason.to_string()),
                    extraction: None,
                },
                pretty,
            ),
        }
    }

    /// The extraction of a report's text, with the sex, age and order
    /// discrepancies checked against what the report itself holds: its
    /// `code`, and a Patient and ServiceRequests it contains (`#id`
    /// references); extract reads no server.
    fn extract_report<'t>(&'t self, report: &Value, text: &'t text::ReportText) -> Extraction<'t> {
        let facts = reportsplit_fhir::facts::contained_facts(report);
        reportsplit_split::extract_with(
            &text.text,
            self.lexicon,
            text.headerless,
            self.discrepancies,
            &facts,
        )
    }

    /// Appends the extraction of plain text to `out`.
    fn text(&self, text: &str, pretty: bool, out: &mut Vec<u8>) -> Result<(), String> {
        Limits::check(
            Limit::TextChars,
            text.chars().count(),
            self.limits.text_chars,
        )
        .map_err(|over| over.to_string())?;
        let extraction = reportsplit_split::extract_as(text, self.lexicon, SectionKind::Other);
        self.limits
            .check_extraction(&extraction)
            .map_err(|over| over.to_string())?;
        let line = ExtractOutput {
            report: None,
            source: None,
            skipped: None,
            extraction: Some(extraction),
        };
        write_json(out, &line, pretty)
    }

    /// One record into `out`, with a panic in the extractor (a bug) turned
    /// into a failed record instead of a lost run. A half-written line is cut off.
    fn record(
        &self,
        record: Record,
        pretty: bool,
        done: &mut Done,
        location: impl FnOnce() -> String,
    ) {
        let Done {
            out,
            errors,
            tally,
            timings,
            ..
        } = done;
        let report = match record {
            Ok(report) => report,
            Err(reason) => {
                tally.failed += 1;
                errors.push(reason);
                return;
            }
        };
        let start = out.len();
        match catch_unwind(AssertUnwindSafe(|| {
            self.report(&report, pretty, out, timings)
        })) {
            Ok(Ok(())) => tally.ok += 1,
            Ok(Err(reason)) => {
                tally.failed += 1;
                errors.push(format!("{}: {reason}", location()));
            }
            Err(_) => {
                out.truncate(start);
                tally.failed += 1;
                errors.push(format!(
                    "{}: internal error (panic) while extracting; the report was skipped",
                    location()
                ));
            }
        }
    }

    /// Extracts one chunk of NDJSON lines into `out` (an empty buffer,
    /// maybe one used before).
    fn chunk(&self, chunk: &Chunk, mut out: Vec<u8>) -> Done {
        out.reserve(chunk.data.len() * OUTPUT_PER_INPUT_BYTE);
        let mut done = Done {
            seq: chunk.seq,
            out,
            errors: Vec::new(),
            tally: Tally::default(),
            timings: Timings::default(),
        };
        for &(number, ref range) in &chunk.lines {
            let records = match range {
                Ok(range) => timed(self.timings, &mut done.timings.parse, || {
                    // Without --fhir only the text is read: the rest of the
                    // report need not be built.
                    if self.fhir.is_some() {
                        input::line_records(&chunk.data[range.clone()], number)
                    } else {
                        input::text_line_records(&chunk.data[range.clone()], number)
                    }
                }),
                Err(over) => vec![Err(format!("line {number}: {over}"))],
            };
            for record in records {
                self.record(record, false, &mut done, || format!("line {number}"));
            }
        }
        done
    }
}

/// `DiagnosticReport/<id>` for an error message (no content).
fn name(report: &Value) -> String {
    reportsplit::run::apply::reference(report)
}

fn write_json<T: Serialize>(out: &mut Vec<u8>, value: &T, pretty: bool) -> Result<(), String> {
    let written = if pretty {
        serde_json::to_writer_pretty(&mut *out, value)
    } else {
        serde_json::to_writer(&mut *out, value)
    };
    written.map_err(|error| format!("cannot serialise the result: {error}"))?;
    out.push(b'\n');
    Ok(())
}

fn outcome(severity: &str, code: &str, diagnostics: &str) -> Value {
    serde_json::json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]
    })
}

/// One line of `extract` output: the extraction, with where it came from.
#[derive(Serialize)]
struct ExtractOutput<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    extraction: Option<Extraction<'a>>,
}

/// Text or one JSON value: read whole (it is one document, within its limit:
/// `limits.text_chars` for text, `limits.bundle_bytes` for JSON), processed
/// on this thread.
fn whole(mut source: Source, format: Format, job: &Job, compact: bool) -> Result<(Tally, Timings)> {
    let mut done = Done {
        seq: 0,
        out: Vec::new(),
        errors: Vec::new(),
        tally: Tally::default(),
        timings: Timings::default(),
    };
    let limit = match format {
        Format::Text => (Limit::TextBytes, job.limits.text_bytes()),
        _ => (Limit::BundleBytes, job.limits.bundle_bytes),
    };
    let content = match source.rest(limit).context("reading the input")? {
        Ok(content) => content,
        Err(over) => {
            eprintln!("reportsplit: input: {over}");
            done.tally.failed += 1;
            return Ok((done.tally, done.timings));
        }
    };
    if content.iter().all(u8::is_ascii_whitespace) {
        return Ok((done.tally, done.timings));
    }
    let Ok(text) = std::str::from_utf8(&content) else {
        eprintln!("reportsplit: input: not UTF-8");
        done.tally.failed += 1;
        return Ok((done.tally, done.timings));
    };
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    match format {
        Format::Text => {
            let text = text.trim_start_matches('\u{feff}');
            match catch_unwind(AssertUnwindSafe(|| job.text(text, !compact, &mut done.out))) {
                Ok(Ok(())) => done.tally.ok += 1,
                Ok(Err(reason)) => done.errors.push(format!("input: {reason}")),
                Err(_) => done
                    .errors
                    .push("input: internal error (panic) while extracting".into()),
            }
            done.tally.failed += done.errors.len();
        }
        _ => {
            let records = timed(job.timings, &mut done.timings.parse, || {
                input::json_records(text)
            });
            // The parsed records are all that is needed from here on.
            drop(content);
            let pretty = !compact && records.len() == 1;
            for (index, record) in records.into_iter().enumerate() {
                job.record(record, pretty, &mut done, || {
                    format!("record {}", index + 1)
                });
                // Written record by record: memory holds one result, not all.
                if !put_out(&mut done, &mut stdout)? {
                    return Ok((done.tally, done.timings));
                }
            }
        }
    }
    put_out(&mut done, &mut stdout)?;
    Ok((done.tally, done.timings))
}

/// Writes and clears what `done` holds (errors on stderr, results on
/// stdout); `false` when stdout was closed by its reader.
fn put_out(done: &mut Done, stdout: &mut impl Write) -> Result<bool> {
    for error in done.errors.drain(..) {
        eprintln!("reportsplit: {error}");
    }
    if let Err(error) = stdout.write_all(&done.out).and_then(|()| stdout.flush()) {
        closed_pipe_or(error)?;
        return Ok(false);
    }
    done.out.clear();
    Ok(true)
}

/// A closed stdout (`reportsplit extract ... | head`) ends the run quietly:
/// the reader has what it wanted. Any other write error is unexpected.
fn closed_pipe_or(error: std::io::Error) -> Result<()> {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(error).context("writing to standard output")
    }
}

/// Lines read from the input for one thread to extract.
struct Chunk {
    seq: usize,
    /// The lines' bytes, back to back.
    data: Vec<u8>,
    /// Each line's number (from 1) and its bytes in `data`, or the line's
    /// length when it was over `limits.report_bytes` (and not kept).
    lines: Vec<(usize, Result<Range<usize>, OverLimit>)>,
}

/// A chunk's output, ready to be written in turn.
struct Done {
    seq: usize,
    out: Vec<u8>,
    errors: Vec<String>,
    tally: Tally,
    timings: Timings,
}

/// Buffers done with, to be filled again: the chunks' input lines, once
/// extracted, for the reader, and their output, once written, for the
/// workers; no more than the chunks in flight. A fresh buffer of a few
/// hundred kilobytes per chunk is page faults, and a growing one is copied.
#[derive(Default)]
struct SpareBuffers {
    inputs: Pool,
    outputs: Pool,
}

/// Empty buffers, shared between threads.
#[derive(Default)]
struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    /// A buffer from the pool, or a new one.
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default()
    }

    /// Puts `buffer`, emptied, into the pool.
    fn keep(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        if let Ok(mut pool) = self.0.lock() {
            pool.push(buffer);
        }
    }
}

/// NDJSON on `threads` threads: this thread reads chunks, the workers
/// extract them, a writer thread puts them out in input order.
fn ndjson(mut source: Source, job: &Job, threads: usize) -> Result<(Tally, Timings)> {
    let threads = threads.max(1);
    let spare = SpareBuffers::default();
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = sync_channel::<Chunk>(threads);
        // Shared by the workers and dropped with the last of them, so that the
        // reader's send fails (instead of blocking) if they all stop early.
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, done_rx) = sync_channel::<Done>(threads);
        // One token per chunk read and not yet written: the bound on memory.
        let (slot_tx, slot_rx) = sync_channel::<()>(threads * IN_FLIGHT_PER_THREAD);
        let spare = &spare;
        for _ in 0..threads {
            let work_rx = Arc::clone(&work_rx);
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                loop {
                    let chunk = match work_rx.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    let Ok(chunk) = chunk else { return };
                    let done = job.chunk(&chunk, spare.outputs.take());
                    spare.inputs.keep(chunk.data);
                    if done_tx.send(done).is_err() {
                        return;
                    }
                }
            });
        }
        drop(work_rx);
        drop(done_tx);
        let writer = scope.spawn(move || write_in_order(&done_rx, &slot_rx, spare));
        let mut read = Ok(());
        for seq in 0.. {
            if slot_tx.send(()).is_err() {
                break;
            }
            let chunk = match source.chunk(seq, spare.inputs.take()) {
                Ok(chunk) if chunk.lines.is_empty() => break,
                Ok(chunk) => chunk,
                Err(error) => {
                    read = Err(error);
                    break;
                }
            };
            if work_tx.send(chunk).is_err() {
                break;
            }
        }
        drop(work_tx);
        drop(slot_tx);
        let written = writer
            .join()
            .map_err(|_| anyhow::anyhow!("the output thread panicked"))?;
        read.context("reading the input")?;
        written
    })
}

/// Writes chunks in sequence as they arrive in any order, with their errors
/// on stderr at the same point, and frees a slot per chunk written.
fn write_in_order(
    done: &Receiver<Done>,
    slots: &Receiver<()>,
    spare: &SpareBuffers,
) -> Result<(Tally, Timings)> {
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    let mut waiting = BTreeMap::new();
    let mut next = 0;
    let mut tally = Tally::default();
    let mut timings = Timings::default();
    for chunk in done {
        waiting.insert(chunk.seq, chunk);
        while let Some(chunk) = waiting.remove(&next) {
            next += 1;
            tally.ok += chunk.tally.ok;
            tally.failed += chunk.tally.failed;
            timings.add(chunk.timings);
            for error in &chunk.errors {
                eprintln!("reportsplit: {error}");
            }
            if let Err(error) = stdout.write_all(&chunk.out) {
                closed_pipe_or(error)?;
                return Ok((tally, timings));
            }
            spare.outputs.keep(chunk.out);
            // A slot is free again; the reader may have stopped already.
            let _ = slots.recv();
        }
    }
    if let Err(error) = stdout.flush() {
        closed_pipe_or(error)?;
    }
    if !waiting.is_empty() {
        anyhow::bail!("an extracting thread stopped before its chunk was written");
    }
    Ok((tally, timings))
}

/// The input, read line by line, with the lines format detection looked at
/// kept for whoever reads next. No line is read past its limit: memory holds
/// at most `limits.report_bytes` (NDJSON) or the document's limit, whatever
/// the input's size.
struct Source {
    reader: Box<dyn BufRead>,
    /// Lines read by [`Source::detect`] and not handed out yet: (number,
    /// bytes, whether the line was read to its end).
    pending: std::collections::VecDeque<(usize, Vec<u8>, bool)>,
    /// Lines read so far.
    number: usize,
    limits: Limits,
}

/// How far [`Source::read_line`] read.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// The end of the input: nothing was read.
    End,
    /// A whole line (with its newline, unless it was the last).
    Whole,
    /// The first `max` bytes of a longer line; the rest is still unread.
    Cut,
}

fn open(path: &Path, limits: Limits) -> Result<Source> {
    let reader: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin()))
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        Box::new(std::io::BufReader::with_capacity(1 << 20, file))
    };
    Ok(Source {
        reader,
        pending: std::collections::VecDeque::new(),
        number: 0,
        limits,
    })
}

impl Source {
    /// Appends one line to `into`, at most `max` bytes of it.
    fn read_line(&mut self, into: &mut Vec<u8>, max: usize) -> std::io::Result<LineRead> {
        let mut taken = 0;
        loop {
            let buffer = match self.reader.fill_buf() {
                Ok(buffer) => buffer,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if buffer.is_empty() {
                if taken > 0 {
                    self.number += 1;
                    return Ok(LineRead::Whole);
                }
                return Ok(LineRead::End);
            }
            let room = max - taken;
            let (used, whole) = match memchr_newline(buffer) {
                Some(at) if at < room => (at + 1, true),
                _ => (buffer.len().min(room), false),
            };
            into.extend_from_slice(&buffer[..used]);
            self.reader.consume(used);
            taken += used;
            if whole {
                self.number += 1;
                return Ok(LineRead::Whole);
            }
            if taken == max {
                self.number += 1;
                return Ok(LineRead::Cut);
            }
        }
    }

    /// Reads the rest of a cut line without keeping it; its length without
    /// the newline.
    fn skip_line(&mut self) -> std::io::Result<usize> {
        let mut skipped = 0;
        loop {
            let buffer = match self.reader.fill_buf() {
                Ok(buffer) => buffer,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if buffer.is_empty() {
                return Ok(skipped);
            }
            match memchr_newline(buffer) {
                Some(at) => {
                    self.reader.consume(at + 1);
                    return Ok(skipped + at);
                }
                None => {
                    let used = buffer.len();
                    self.reader.consume(used);
                    skipped += used;
                }
            }
        }
    }

    /// The longest line detection reads: the largest NDJSON line or text;
    /// a first line longer than that is a document of its own (JSON) or over
    /// every limit, and detection stops there.
    fn detect_max(&self) -> usize {
        self.limits
            .report_bytes
            .max(self.limits.text_bytes())
            .saturating_add(1)
    }

    /// Reads up to the second non-blank line and decides the format from
    /// the first two ([`input::detect`]); `None` for an input of blank lines.
    fn detect(&mut self) -> std::io::Result<Option<Format>> {
        let mut nonblank = Vec::new();
        while nonblank.len() < 2 {
            let mut line = Vec::new();
            let read = self.read_line(&mut line, self.detect_max())?;
            if read == LineRead::End {
                break;
            }
            let text = String::from_utf8_lossy(&line).trim().to_owned();
            let text = text.trim_start_matches('\u{feff}');
            if !text.is_empty() {
                // Column 0 matters to detection (indented lines are pretty JSON).
                nonblank.push(String::from_utf8_lossy(&line).trim_end().to_owned());
            }
            self.pending
                .push_back((self.number, line, read == LineRead::Whole));
            if read == LineRead::Cut {
                break;
            }
        }
        Ok(match nonblank.as_slice() {
            [] => None,
            [first] => Some(input::detect(first, None)),
            [first, next, ..] => Some(input::detect(first, Some(next))),
        })
    }

    /// The next chunk of lines; empty at the end of the input. A line over
    /// `limits.report_bytes` is read through but not kept.
    /// `data` is an empty buffer for the lines, maybe one used before.
    fn chunk(&mut self, seq: usize, data: Vec<u8>) -> std::io::Result<Chunk> {
        let max = self.limits.report_bytes;
        let mut chunk = Chunk {
            seq,
            data,
            lines: Vec::with_capacity(CHUNK_LINES),
        };
        while chunk.lines.len() < CHUNK_LINES && chunk.data.len() < CHUNK_BYTES {
            let start = chunk.data.len();
            let (number, whole) = if let Some((number, line, whole)) = self.pending.pop_front() {
                chunk.data.extend_from_slice(&line);
                (number, whole)
            } else {
                // One byte over the limit, for the newline of a line just within it.
                match self.read_line(&mut chunk.data, max.saturating_add(1))? {
                    LineRead::End => break,
                    read => (self.number, read == LineRead::Whole),
                }
            };
            let kept = &chunk.data[start..];
            let length = if whole {
                kept.strip_suffix(b"\n").unwrap_or(kept).len()
            } else {
                kept.len() + self.skip_line()?
            };
            let line = match Limits::check(Limit::ReportBytes, length, max) {
                Ok(()) => Ok(start..chunk.data.len()),
                Err(over) => {
                    chunk.data.truncate(start);
                    Err(over)
                }
            };
            chunk.lines.push((number, line));
        }
        Ok(chunk)
    }

    /// Everything not handed out yet, as one document, or how long it was
    /// when over `max` bytes (the rest is read through, not kept).
    fn rest(
        &mut self,
        (limit, max): (Limit, usize),
    ) -> std::io::Result<Result<Vec<u8>, OverLimit>> {
        let mut content = Vec::new();
        for (_, line, _) in self.pending.drain(..) {
            content.extend_from_slice(&line);
        }
        let room = (max as u64 + 1).saturating_sub(content.len() as u64);
        (&mut self.reader).take(room).read_to_end(&mut content)?;
        if content.len() <= max {
            return Ok(Ok(content));
        }
        let rest = std::io::copy(&mut self.reader, &mut std::io::sink())?;
        Ok(Err(OverLimit {
            limit,
            measured: content.len().saturating_add(rest as usize),
            max,
        }))
    }
}

/// Where the first newline of `bytes` is.
fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn load_lexicon(dir: Option<&Path>) -> Result<Lexicon> {
    let Some(dir) = dir else {
        return Ok(Lexicon::builtin());
    };
    reportsplit::tables::load_lexicon(dir)
        .with_context(|| format!("loading mappings from {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_errors_other_than_a_closed_pipe_are_errors() {
        assert!(closed_pipe_or(std::io::ErrorKind::BrokenPipe.into()).is_ok());
        assert!(closed_pipe_or(std::io::ErrorKind::StorageFull.into()).is_err());
    }
}

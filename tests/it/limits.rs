//! Bounded work per report (issue 11, item 3) and generated bad inputs.
//!
//! The `reportsplit` binary runs as a child process so that its own peak RSS
//! (its rusage, see [`MEASURE`]) and wall time can be asserted: `extract` on texts of
//! 200,000 characters, 5 MB and 50 MB; `serve`'s `$enrich` with large
//! bodies; `sync --once` with reports over the limits on SEKMET. The bad
//! inputs come from a seeded generator ([`bad_inputs`]) and go through
//! three paths: `extract`'s stdin (one NDJSON run), `$enrich` (one request
//! each) and the server (those a validating FHIR server accepts, then one
//! `sync --once`). Each gets a clear error of its own and the rest go on.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Sekmet, seed};
use reportsplit_fhir::plan::TAG_SYSTEM;
use serde_json::{Value, json};

/// Peak RSS allowed for one `reportsplit` process working on one report
/// at a time (debug build; the worker itself starts at ~30 MB).
const MAX_RSS_MB: u64 = 200;

/// A child's end: exit code, output, peak RSS and wall time.
struct Measured {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    max_rss_mb: u64,
    elapsed: Duration,
}

/// Runs its arguments as a child and writes the child's peak RSS (KB) to
/// the file named first. A child's `ru_maxrss` counts the memory of the
/// process that spawned it (the kernel takes the spawner's high-water mark
/// at `exec` after a vfork), so the binary is started from this small
/// Python process (python3 is there: SEKMET needs it) instead of from the
/// test binary, whose own RSS would be counted. SIGTERM is passed on.
const MEASURE: &str = r#"
import resource, signal, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
signal.signal(signal.SIGTERM, lambda number, frame: child.send_signal(number))
code = child.wait()
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code if code >= 0 else 128 - code)
"#;

/// A `reportsplit` child whose peak RSS is measured (see [`MEASURE`]).
struct Child {
    process: std::process::Child,
    rss_file: tempfile::NamedTempFile,
    started: Instant,
}

fn spawn(args: &[&std::ffi::OsStr], stdin: Stdio) -> Child {
    let rss_file = tempfile::NamedTempFile::new().expect("a temp file");
    let started = Instant::now();
    let process = Command::new("python3")
        .args(["-c", MEASURE])
        .arg(rss_file.path())
        .arg(env!("CARGO_BIN_EXE_reportsplit"))
        .args(args)
        .env("REPORTSPLIT_LOG", "warn")
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts the binary");
    Child {
        process,
        rss_file,
        started,
    }
}

impl Child {
    fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.process.id().to_string()])
            .status();
    }

    fn wait(self) -> Measured {
        let output = self.process.wait_with_output().expect("the child ends");
        let elapsed = self.started.elapsed();
        let rss_kb: u64 = std::fs::read_to_string(self.rss_file.path())
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or_else(|| panic!("no peak RSS: {}", String::from_utf8_lossy(&output.stderr)));
        Measured {
            code: output.status.code(),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            max_rss_mb: rss_kb / 1024,
            elapsed,
        }
    }
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(std::ffi::OsString::from).collect()
}

fn refs(args: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    args.iter().map(std::ffi::OsString::as_os_str).collect()
}

/// `reportsplit extract ARGS` reading `input` (a file) on stdin.
fn extract_file(args: &[&str], input: &Path) -> Measured {
    let args = os(&[&["extract"], args].concat());
    let stdin = std::fs::File::open(input).expect("input file");
    spawn(&refs(&args), stdin.into()).wait()
}

/// A text of about `bytes` bytes made of a report written for these tests.
fn report_text_of(bytes: usize) -> String {
    const PARAGRAPH: &str = "FINDINGS: There is a 5 mm nodule in the right upper lobe. No pleural \
        effusion or pneumothorax. Mild cardiomegaly. The liver has a 2.1 cm hypodense lesion, \
        possibly a cyst.\nIMPRESSION: Small pulmonary nodule; follow-up CT in 12 months is \
        recommended. No acute process.\n";
    let mut text = PARAGRAPH.repeat(bytes / PARAGRAPH.len() + 1);
    text.truncate(bytes);
    text
}

#[test]
fn extract_memory_and_time_stay_bounded_on_large_texts() {
    let dir = tempfile::tempdir().unwrap();
    let mut figures = Vec::new();
    // The binary's own footprint (its tables), what a refused input may cost.
    let tiny = dir.path().join("tiny.txt");
    std::fs::write(&tiny, "No effusion.").unwrap();
    let baseline = extract_file(&["--input", "text"], &tiny);
    assert_eq!(baseline.code, Some(0), "{}", baseline.stderr);
    figures.push(("12 chars", baseline.max_rss_mb, baseline.elapsed));
    // Within the size limit, a findings density no real report has (one
    // every 40 characters): over the findings limit by default...
    let within = dir.path().join("199k.txt");
    std::fs::write(&within, report_text_of(199_000)).unwrap();
    let run = extract_file(&["--input", "text", "--compact"], &within);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("findings, over the limit of 2000 (limits.findings)"),
        "{}",
        run.stderr
    );
    // ... and split whole when a site allows that many, memory and time bounded.
    let config = dir.path().join("site.toml");
    std::fs::write(
        &config,
        "[fhir]\nurl = \"http://127.0.0.1:9/fhir\"\n[limits]\nfindings = 100000\n",
    )
    .unwrap();
    let config = config.to_str().expect("a UTF-8 path");
    let run = extract_file(&["--input", "text", "--compact", "-c", config], &within);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let result: Value = serde_json::from_slice(&run.stdout).expect("one JSON result");
    let findings = result["findings"].as_array().expect("findings").len();
    assert!(findings > 1_000, "{findings} findings");
    assert!(
        run.max_rss_mb < MAX_RSS_MB,
        "199k chars: {} MB",
        run.max_rss_mb
    );
    assert!(run.elapsed < Duration::from_secs(30), "{:?}", run.elapsed);
    figures.push(("199,000 chars", run.max_rss_mb, run.elapsed));

    // Over it: refused by size before it is read whole, exit 3, no output.
    for (name, bytes) in [("5 MB", 5_000_000), ("50 MB", 50_000_000)] {
        let path = dir.path().join(format!("{bytes}.txt"));
        std::fs::write(&path, report_text_of(bytes)).unwrap();
        let run = extract_file(&["--input", "text"], &path);
        assert_eq!(run.code, Some(3), "{name}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{name}: output for a refused text");
        assert!(
            run.stderr.contains(&format!(
                "input: the report text has {bytes} bytes before decoding, over the limit of 800000 (limits.text_chars)"
            )),
            "{name}: {}",
            run.stderr
        );
        assert!(
            run.max_rss_mb < baseline.max_rss_mb + 20,
            "{name}: {} MB, {} MB for 12 characters",
            run.max_rss_mb,
            baseline.max_rss_mb
        );
        assert!(
            run.elapsed < Duration::from_secs(10),
            "{name}: {:?}",
            run.elapsed
        );
        figures.push((name, run.max_rss_mb, run.elapsed));

        // Read as one JSON document: over bundle_bytes, refused the same way.
        if bytes > 16 << 20 {
            let run = extract_file(&["--input", "json"], &path);
            assert_eq!(run.code, Some(3), "{name} as JSON: {}", run.stderr);
            assert!(
                run.stderr.contains(&format!(
                    "input: the JSON input has {bytes} bytes, over the limit of 16777216 (limits.bundle_bytes)"
                )),
                "{name} as JSON: {}",
                run.stderr
            );
            assert!(
                run.max_rss_mb < baseline.max_rss_mb + 40,
                "{name} as JSON: {} MB",
                run.max_rss_mb
            );
            figures.push(("50 MB as JSON", run.max_rss_mb, run.elapsed));
        }

        // The same text as one NDJSON line, between two good ones: that line
        // fails alone, by number, and is not kept in memory.
        let lines = dir.path().join(format!("{bytes}.ndjson"));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&lines).unwrap());
        let good =
            json!({"resourceType": "DiagnosticReport", "id": "good", "conclusion": "No effusion."});
        writeln!(file, "{good}").unwrap();
        let big = json!({"resourceType": "DiagnosticReport", "id": "big", "conclusion": report_text_of(bytes)});
        writeln!(file, "{big}").unwrap();
        writeln!(file, "{good}").unwrap();
        drop(file);
        let run = extract_file(&["--input", "ndjson"], &lines);
        assert_eq!(run.code, Some(3), "{name} NDJSON: {}", run.stderr);
        assert_eq!(run.stdout.iter().filter(|&&b| b == b'\n').count(), 2);
        let expected = if bytes > 8 << 20 {
            "line 2: the report's JSON has"
        } else {
            "line 2: DiagnosticReport/big: the report text has"
        };
        assert!(run.stderr.contains(expected), "{name}: {}", run.stderr);
        assert!(
            run.max_rss_mb < MAX_RSS_MB,
            "{name} NDJSON: {} MB",
            run.max_rss_mb
        );
        figures.push(("NDJSON line", run.max_rss_mb, run.elapsed));
    }
    for (name, rss, elapsed) in figures {
        eprintln!("extract {name}: peak RSS {rss} MB, {elapsed:.2?}");
    }
}

/// Pathological texts within the size limit: time stays linear, so each is
/// split in well under the bound (debug build).
#[test]
fn pathological_texts_are_split_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let words = "nodule effusion in the right upper lobe with mild cardiomegaly and a small cyst ";
    let cases: Vec<(&str, String)> = vec![
        (
            "one sentence of 199k chars",
            words.repeat(2_500)[..199_000].to_owned(),
        ),
        (
            "10,000 sections",
            "FINDINGS:\nNormal.\nIMPRESSION:\nNone.\n".repeat(5_000),
        ),
        (
            "10,000 list items",
            (1..=10_000)
                .map(|i| format!("{i}. Small cyst.\n"))
                .collect(),
        ),
        (
            "punctuation runs",
            format!("FINDINGS: {}", ".,;:!?-".repeat(28_000)),
        ),
        ("dots", format!("Nodule{}", ".".repeat(199_000))),
        (
            "measurements",
            format!("Nodule {}3 mm.", "5 x 4 x ".repeat(24_000)),
        ),
        ("colons", "nodule: ".repeat(24_000)),
    ];
    for (name, text) in cases {
        assert!(text.chars().count() <= 200_000, "{name}");
        let path = dir.path().join("case.txt");
        std::fs::write(&path, &text).unwrap();
        let run = extract_file(&["--input", "text", "--compact"], &path);
        assert!(
            run.code == Some(0) || run.stderr.contains("(limits.findings)"),
            "{name}: {:?} {}",
            run.code,
            run.stderr
        );
        assert!(run.max_rss_mb < MAX_RSS_MB, "{name}: {} MB", run.max_rss_mb);
        assert!(
            run.elapsed < Duration::from_secs(20),
            "{name}: {:?}",
            run.elapsed
        );
        eprintln!(
            "extract {name}: exit {:?}, peak RSS {} MB, {:.2?}",
            run.code, run.max_rss_mb, run.elapsed
        );
    }
}

// ---------------------------------------------------------------------------
// The generated bad inputs.

/// xorshift64*: deterministic, seeded, good enough to vary test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What a path must answer for an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Not JSON, not UTF-8, binary, too deep: refused before any work.
    Malformed,
    /// JSON, but not a DiagnosticReport (wrong or missing resourceType).
    NotAReport,
    /// A DiagnosticReport whose text cannot be used (bad base64, charset, bytes).
    BadText,
    /// A DiagnosticReport over a limit (text size, findings).
    OverLimit,
    /// A DiagnosticReport's JSON over `limits.report_bytes`.
    HugeJson,
    /// A DiagnosticReport without text: skipped, not failed.
    NoText,
    /// A usable report, odd or not: a result.
    Good,
}

struct BadInput {
    kind: Kind,
    /// What the case is, for failure messages.
    name: &'static str,
    bytes: Vec<u8>,
}

fn report_with(id: &str, fields: Value) -> Value {
    let mut report = json!({
        "resourceType": "DiagnosticReport",
        "id": id,
        "meta": {"versionId": "1"},
        "status": "final",
        "category": [{"coding": [{"system": seed::RAD, "code": "RAD"}]}],
        "code": {"text": "CT Chest"},
        "subject": {"reference": "Patient/limits-test"},
        "effectiveDateTime": "2026-03-01T08:00:00Z"
    });
    if let (Some(report), Some(fields)) = (report.as_object_mut(), fields.as_object()) {
        report.extend(fields.clone());
    }
    report
}

fn attachment(content_type: &str, data: &str) -> Value {
    json!({"presentedForm": [{"contentType": content_type, "data": data}]})
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Texts that are reports, odd ones included.
const GOOD_TEXTS: &[&str] = &[
    "FINDINGS: Small left pleural effusion. No pneumothorax.\nIMPRESSION:\n1. Small left pleural effusion.",
    "IMPRESSION: No acute intracranial abnormality.",
    "FINDINGS: 4 mm nodule in the right lower lobe. Heart size normal.",
    "Mild degenerative change of the lumbar spine. No fracture.",
];

/// One input of `kind`, varied by `rng`; `index` makes ids unique.
fn bad_input(kind_index: usize, index: usize, rng: &mut Rng) -> BadInput {
    let id = format!("bad-{index}");
    let good_text = GOOD_TEXTS[rng.below(GOOD_TEXTS.len())];
    let valid = report_with(&id, json!({"conclusion": good_text})).to_string();
    let json = |value: Value| value.to_string().into_bytes();
    let (kind, name, bytes) = match kind_index {
        0 => {
            // Cut anywhere before the end: never a complete value.
            let cut = 1 + rng.below(valid.len() - 2);
            (
                Kind::Malformed,
                "truncated JSON",
                valid.as_bytes()[..cut].to_vec(),
            )
        }
        1 => {
            let garbage: String = (0..1 + rng.below(60))
                .map(|_| char::from(b"{}[]:,\"ab1 .-eE\\"[rng.below(16)]))
                .collect();
            (
                Kind::Malformed,
                "JSON-like garbage",
                format!("{{{garbage}").into_bytes(),
            )
        }
        2 => {
            let mut bytes = valid.clone().into_bytes();
            let at = valid.find("conclusion").unwrap_or(0) + 14 + rng.below(10);
            bytes.insert(at, [0xff, 0xc3, 0x80 | 0x40, 0xed][rng.below(4)]);
            (Kind::Malformed, "invalid UTF-8 in a string", bytes)
        }
        3 => {
            let mut bytes = valid.clone().into_bytes();
            let at = rng.below(bytes.len());
            bytes.insert(at, 0);
            (Kind::Malformed, "a raw NUL byte", bytes)
        }
        4 => {
            // Binary: starts with a byte that is never UTF-8; no newline.
            let mut bytes = vec![0xfe];
            bytes.extend((0..8 + rng.below(400)).map(|_| {
                let byte = (rng.next() >> 24) as u8;
                if byte == b'\n' { 0 } else { byte }
            }));
            (Kind::Malformed, "binary", bytes)
        }
        5 => {
            let depth = 129 + rng.below(20_000);
            let (open, close) = if rng.below(2) == 0 {
                ("[", "]")
            } else {
                ("{\"a\":", "}")
            };
            let text = format!(
                "{{\"resourceType\":\"DiagnosticReport\",\"id\":\"{id}\",\"extension\":{}1{}}}",
                open.repeat(depth),
                close.repeat(depth)
            );
            (Kind::Malformed, "deeply nested JSON", text.into_bytes())
        }
        6 => {
            let other = [
                json!({"resourceType": "Patient", "id": id, "name": [{"family": "Secret"}]}),
                json!({"resourceType": "Observation", "id": id}),
                json!({"resourceType": 42, "id": id}),
                json!({"id": id, "conclusion": good_text}),
                json!({"resourceType": "diagnosticreport", "id": id}),
                json!([]),
                json!("DiagnosticReport"),
                json!(7),
                json!(null),
            ];
            (
                Kind::NotAReport,
                "not a DiagnosticReport",
                json(other[rng.below(other.len())].clone()),
            )
        }
        7 => {
            let bad = ["!!!!", "SGVsbG8", "SGVs bG8=%", "====", "a\u{e9}b="];
            let fields = attachment("text/plain", bad[rng.below(bad.len())]);
            (Kind::BadText, "bad base64", json(report_with(&id, fields)))
        }
        8 => {
            let bytes: &[u8] =
                [&b"\xff\xfe\xfd"[..], b"caf\xc3", b"\xed\xa0\x80 lung"][rng.below(3)];
            let fields = attachment("text/plain; charset=utf-8", &b64(bytes));
            (
                Kind::BadText,
                "invalid UTF-8 in the attachment",
                json(report_with(&id, fields)),
            )
        }
        9 => {
            let fields = attachment("text/plain; charset=x-klingon", &b64(good_text.as_bytes()));
            (
                Kind::BadText,
                "an unknown charset",
                json(report_with(&id, fields)),
            )
        }
        10 => {
            let fields = json!({"conclusion": "a".repeat(200_001 + rng.below(1_000))});
            (
                Kind::OverLimit,
                "text over the limit",
                json(report_with(&id, fields)),
            )
        }
        11 => {
            let fields = json!({"conclusion": "Small cyst. ".repeat(2_100 + rng.below(500))});
            (
                Kind::OverLimit,
                "findings over the limit",
                json(report_with(&id, fields)),
            )
        }
        12 => {
            let fields = attachment("text/plain", &b64("a".repeat(900_000).as_bytes()));
            (
                Kind::OverLimit,
                "base64 over the limit",
                json(report_with(&id, fields)),
            )
        }
        13 => {
            let fields = json!({"conclusion": good_text, "note": "x".repeat(9 << 20)});
            (
                Kind::HugeJson,
                "JSON over report_bytes",
                json(report_with(&id, fields)),
            )
        }
        14 => {
            let empty = [
                json!({}),
                // An image is not text (a broken PDF is no longer "no text": PDFs are read,
                // and one that cannot be parsed is a bad text).
                json!({"presentedForm": [{"contentType": "image/jpeg", "data": "/9j/"}]}),
                json!({"presentedForm": [{"contentType": "text/plain", "url": "http://example.org/r"}]}),
                json!({"text": {"status": "empty", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}),
                json!({"conclusion": "   "}),
            ];
            let fields = empty[rng.below(empty.len())].clone();
            (Kind::NoText, "no text", json(report_with(&id, fields)))
        }
        15 => {
            let runs = [
                "...",
                ",,,",
                ";:;:",
                "!?!?",
                "-- ",
                "((()))",
                "1. 2. 3. ",
                "\u{2022} ",
            ];
            let run = runs[rng.below(runs.len())];
            let text = format!(
                "FINDINGS: {} Nodule.{}",
                run.repeat(500 + rng.below(5_000)),
                run.repeat(100)
            );
            (
                Kind::Good,
                "pathological punctuation",
                json(report_with(&id, json!({"conclusion": text}))),
            )
        }
        16 => {
            let text = "TECHNIQUE:\nNone.\nCOMPARISON:\nNone.\n".repeat(5_000);
            (
                Kind::Good,
                "10,000 sections",
                json(report_with(&id, json!({"conclusion": text}))),
            )
        }
        17 => {
            let text = format!(
                "Findings: nodule\u{0}\u{1} in the lung\u{7}.{}",
                "\u{0}".repeat(rng.below(100))
            );
            (
                Kind::Good,
                "escaped NUL and control characters",
                json(report_with(&id, json!({"conclusion": text}))),
            )
        }
        18 => {
            // Words without findings, a nodule first: one finding, 2,000 to 22,000 words.
            let words = ["in", "the", "right", "upper", "with", "and", "of", "a"];
            let text: Vec<&str> = std::iter::once("nodule")
                .chain((0..2_000 + rng.below(20_000)).map(|_| words[rng.below(words.len())]))
                .collect();
            (
                Kind::Good,
                "one long sentence",
                json(report_with(&id, json!({"conclusion": text.join(" ")}))),
            )
        }
        _ => (Kind::Good, "a good report", valid.into_bytes()),
    };
    BadInput { kind, name, bytes }
}

/// `n` inputs from `seed`: each kind in turn, so every kind is there; the
/// heavy ones (a 9 MB body, 200 KB texts, 10,000 sections) only every few
/// rounds, to keep the suite fast.
fn bad_inputs(seed: u64, n: usize) -> Vec<BadInput> {
    const KINDS: usize = 20;
    let heavy = |kind: usize| matches!(kind, 10 | 11 | 12 | 13 | 16 | 18);
    let mut rng = Rng(seed);
    let mut inputs = Vec::with_capacity(n);
    let mut round = 0;
    while inputs.len() < n {
        for kind in 0..KINDS {
            if inputs.len() == n {
                break;
            }
            let every = if kind == 13 { 50 } else { 10 };
            if heavy(kind) && round % every != 0 {
                continue;
            }
            let index = inputs.len();
            inputs.push(bad_input(kind, index, &mut rng));
        }
        round += 1;
    }
    inputs
}

/// How many of each kind, for messages and the figures.
fn census(inputs: &[BadInput]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for input in inputs {
        *counts.entry(input.name).or_default() += 1;
    }
    counts
}

const BAD_INPUTS: usize = 1_000;
const SEED: u64 = 0x5eed_1111;

#[test]
fn a_thousand_bad_inputs_through_extract_stdin_each_fail_alone() {
    let inputs = bad_inputs(SEED, BAD_INPUTS);
    assert_eq!(inputs.len(), BAD_INPUTS);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.ndjson");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for input in &inputs {
        file.write_all(&input.bytes).unwrap();
        file.write_all(b"\n").unwrap();
    }
    drop(file);
    let run = extract_file(&["--input", "ndjson"], &path);
    assert_eq!(
        run.code,
        Some(3),
        "{}",
        &run.stderr[..run.stderr.len().min(2_000)]
    );

    // Which lines failed, by the number in their error.
    let failed: BTreeSet<usize> = run
        .stderr
        .lines()
        .filter_map(|line| line.strip_prefix("reportsplit: line "))
        .filter_map(|rest| rest.split(':').next()?.parse().ok())
        .collect();
    let expected_failed: BTreeSet<usize> = inputs
        .iter()
        .enumerate()
        .filter(|(_, input)| !matches!(input.kind, Kind::Good | Kind::NoText))
        .map(|(index, _)| index + 1)
        .collect();
    let wrong: Vec<String> = failed
        .symmetric_difference(&expected_failed)
        .map(|line| format!("line {line}: {}", inputs[line - 1].name))
        .collect();
    assert!(
        wrong.is_empty(),
        "lines with an unexpected outcome: {wrong:?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "{} of {} records failed",
            expected_failed.len(),
            inputs.len()
        )),
        "{}",
        run.stderr.lines().last().unwrap_or("")
    );
    // Every other line has its result, in input order.
    let results: Vec<Value> = run
        .stdout
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).expect("a JSON result"))
        .collect();
    let expected_ids: Vec<String> = inputs
        .iter()
        .enumerate()
        .filter(|(_, input)| matches!(input.kind, Kind::Good | Kind::NoText))
        .map(|(index, _)| format!("DiagnosticReport/bad-{index}"))
        .collect();
    let ids: Vec<&str> = results
        .iter()
        .filter_map(|r| r["report"].as_str())
        .collect();
    assert_eq!(ids, expected_ids);
    // No error echoes content: the Patient's name, report words.
    assert!(!run.stderr.contains("Secret"), "an error echoes a name");
    assert!(
        !run.stderr.contains("effusion"),
        "an error echoes report text"
    );
    assert!(run.max_rss_mb < MAX_RSS_MB, "{} MB", run.max_rss_mb);
    assert!(run.elapsed < Duration::from_secs(30), "{:?}", run.elapsed);
    eprintln!(
        "extract: {} bad inputs ({} failed, {} results) in {:.2?}, peak RSS {} MB; {:?}",
        inputs.len(),
        failed.len(),
        results.len(),
        run.elapsed,
        run.max_rss_mb,
        census(&inputs)
    );
}

// ---------------------------------------------------------------------------
// `serve` as a child process, for its own memory.

struct ServeProcess {
    child: Option<Child>,
    url: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

fn site_config(dir: &Path, base: &str, subject: Option<&str>) -> std::path::PathBuf {
    let path = dir.join("site.toml");
    let subject = subject.map_or(String::new(), |s| format!("subject = \"{s}\"\n"));
    std::fs::write(
        &path,
        format!(
            "[fhir]\nurl = \"{base}\"\ntimeout_secs = 30\nmax_retries = 1\nretry_base_ms = 50\n\
             [pull]\n{subject}overlap_secs = 5\n[state]\ndir = \"{}\"\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

impl ServeProcess {
    async fn start(base: &str) -> ServeProcess {
        let dir = common::temp_state();
        let config = site_config(dir.path(), base, None);
        let port = free_port();
        let mut args = os(&["serve", "--insecure-no-auth", "--listen"]);
        args.push(format!("127.0.0.1:{port}").into());
        args.push("--config".into());
        args.push(config.into());
        let child = spawn(&refs(&args), Stdio::null());
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(response) = http.get(format!("{url}/healthz")).send().await
                && response.status().is_success()
            {
                return ServeProcess {
                    child: Some(child),
                    url,
                    _dir: dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("serve did not come up");
    }

    /// SIGTERM, then its end with its peak RSS.
    fn stop(mut self) -> Measured {
        let child = self.child.take().expect("running");
        child.terminate();
        child.wait()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            child.terminate();
            let _ = child.process.wait_with_output();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_bad_inputs_through_enrich_each_get_a_clear_4xx() {
    let sekmet = Sekmet::start();
    let server = ServeProcess::start(&sekmet.base).await;
    let inputs = bad_inputs(SEED ^ 0xe1c4, BAD_INPUTS);
    // A connection per request: a body refused by size (413) is answered
    // before it is read, and the connection closes under a pooled client.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client");
    let url = format!("{}/DiagnosticReport/$enrich", server.url);
    let mut statuses: BTreeMap<(Kind, u16), usize> = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    for (index, input) in inputs.iter().enumerate() {
        let started = Instant::now();
        let response = http
            .post(&url)
            .header("content-type", "application/fhir+json")
            .body(input.bytes.clone())
            .send()
            .await
            .unwrap_or_else(|error| panic!("input {index} ({}): {error}", input.name));
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|error| panic!("input {index} ({}): not JSON: {error}", input.name));
        slowest = slowest.max(started.elapsed());
        let expected: &[u16] = match input.kind {
            Kind::Malformed => &[400],
            Kind::NotAReport | Kind::BadText | Kind::NoText => &[422],
            Kind::OverLimit => &[413, 422],
            Kind::HugeJson => &[413],
            Kind::Good => &[200],
        };
        assert!(
            expected.contains(&status),
            "input {index} ({}): {status} {body}",
            input.name
        );
        if status != 200 {
            assert_eq!(body["resourceType"], "OperationOutcome", "input {index}");
            let diagnostics = body["issue"][0]["diagnostics"].as_str().unwrap_or("");
            assert!(!diagnostics.is_empty(), "input {index}: no reason");
            assert!(
                !diagnostics.contains("Secret"),
                "input {index}: {diagnostics}"
            );
            if input.kind == Kind::OverLimit {
                assert!(
                    diagnostics.contains("(limits."),
                    "input {index}: {diagnostics}"
                );
            }
        } else {
            assert_eq!(body["resourceType"], "Bundle", "input {index}");
        }
        *statuses.entry((input.kind, status)).or_default() += 1;
    }
    // Still up and answering.
    let health = http
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .expect("serve is still up");
    assert!(health.status().is_success());
    let run = server.stop();
    assert!(run.max_rss_mb < MAX_RSS_MB, "serve: {} MB", run.max_rss_mb);
    assert!(
        slowest < Duration::from_secs(15),
        "slowest request {slowest:?}"
    );
    eprintln!(
        "$enrich: {} bad inputs, peak RSS {} MB, slowest {:.2?}; (kind, status): {statuses:?}",
        inputs.len(),
        run.max_rss_mb,
        slowest
    );
}

// ---------------------------------------------------------------------------
// The server: bad content that a validating FHIR server accepts.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reports_on_the_server_are_dead_lettered_and_the_good_enriched_once() {
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let patient = seed::unique("limits");
    fhir.put(&seed::patient(&patient)).await;
    let subject = format!("Patient/{patient}");
    let mut rng = Rng(SEED ^ 0x5e4e);
    // Reports of each server-worthy kind, several variants each, and good ones.
    let mut accepted: Vec<(String, Kind, &'static str)> = Vec::new();
    let mut refused = 0;
    let mut tried = 0;
    for round in 0..6 {
        for kind_index in [7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19] {
            if matches!(kind_index, 10 | 12 | 16) && round > 1 {
                continue;
            }
            let input = bad_input(kind_index, tried, &mut rng);
            tried += 1;
            let mut report: Value = serde_json::from_slice(&input.bytes).expect("a report");
            let id = format!("{patient}-{tried}");
            report["id"] = json!(id);
            report["subject"] = json!({"reference": subject});
            let response = fhir
                .request(
                    reqwest::Method::PUT,
                    &format!("DiagnosticReport/{id}"),
                    Some(&report),
                    None,
                )
                .await;
            if response.status == 200 || response.status == 201 {
                accepted.push((id, input.kind, input.name));
            } else {
                refused += 1;
            }
        }
    }
    let bad: BTreeSet<&str> = accepted
        .iter()
        .filter(|(_, kind, _)| matches!(kind, Kind::BadText | Kind::OverLimit))
        .map(|(id, _, _)| id.as_str())
        .collect();
    let good: Vec<&str> = accepted
        .iter()
        .filter(|(_, kind, _)| *kind == Kind::Good)
        .map(|(id, _, _)| id.as_str())
        .collect();
    assert!(
        bad.len() >= 10,
        "the server took only {} bad reports",
        bad.len()
    );
    assert!(good.len() >= 12, "{} good", good.len());

    let dir = common::temp_state();
    let config = site_config(dir.path(), &sekmet.base, Some(&subject));
    let sync = || {
        let mut args = os(&["sync", "--once", "--config"]);
        args.push(config.clone().into());
        spawn(&refs(&args), Stdio::null()).wait()
    };
    let run = sync();
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.max_rss_mb < MAX_RSS_MB, "sync: {} MB", run.max_rss_mb);
    // One dead letter per bad report, with a reason naming the limit or the defect.
    let letters = std::fs::read_to_string(dir.path().join("state/dead-letter.ndjson"))
        .expect("a dead-letter file");
    let mut lettered = BTreeSet::new();
    for line in letters.lines() {
        let letter: Value = serde_json::from_str(line).expect("a dead letter");
        let reference = letter["report"].as_str().expect("report");
        let id = reference
            .strip_prefix("DiagnosticReport/")
            .expect("a report reference");
        let reason = letter["reason"].as_str().expect("reason");
        assert!(
            reason.starts_with("limit-") || reason == "bad-encoding",
            "{id}: {reason}"
        );
        let message = letter["message"].as_str().unwrap_or("");
        if reason.starts_with("limit-") {
            assert!(message.contains("(limits."), "{message}");
        }
        assert!(
            !message.contains("cyst"),
            "a dead letter quotes the report: {message}"
        );
        assert!(lettered.insert(id.to_owned()), "{id} dead-lettered twice");
    }
    let lettered: BTreeSet<&str> = lettered.iter().map(String::as_str).collect();
    assert_eq!(lettered, bad);

    // The good ones are enriched, each once: tagged, and a second pass writes nothing.
    let system: String = url::form_urlencoded::byte_serialize(TAG_SYSTEM.as_bytes()).collect();
    let tagged = fhir
        .search_all(&format!(
            "DiagnosticReport?subject={subject}&_tag={system}|&_count=100"
        ))
        .await;
    let tagged: BTreeSet<&str> = tagged.iter().filter_map(|r| r["id"].as_str()).collect();
    for id in &good {
        assert!(tagged.contains(id), "{id} is not enriched");
    }
    assert!(
        tagged.iter().all(|id| !bad.contains(id)),
        "a bad report was tagged"
    );
    let observations = fhir
        .search_all(&format!("Observation?subject={subject}&_count=500"))
        .await;
    let identifiers: Vec<String> = observations
        .iter()
        .map(|o| o["identifier"][0]["value"].to_string())
        .collect();
    let unique: BTreeSet<&String> = identifiers.iter().collect();
    assert_eq!(unique.len(), identifiers.len(), "duplicate Observations");
    let again = sync();
    let written = again
        .stderr
        .lines()
        .chain(String::from_utf8_lossy(&again.stdout).lines())
        .any(|line| line.contains(" 0 written"));
    assert!(written, "the second pass wrote again: {}", again.stderr);
    eprintln!(
        "server: {tried} bad-content reports tried, {refused} refused by SEKMET, {} dead-lettered, {} good enriched; sync peak RSS {} MB, {:.2?}",
        bad.len(),
        good.len(),
        run.max_rss_mb,
        run.elapsed
    );
}

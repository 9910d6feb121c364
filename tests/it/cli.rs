//! The command line as a user runs it: `extract` on each input kind, `extract
//! --fhir`, and `eval` (only our own report sets; the public kits are scored by
//! the eval crate's example, see crates/eval/tests).

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn reportsplit(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reportsplit"))
        .args(args)
        .env("REPORTSPLIT_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // Written from a thread: on a large input the binary writes output while it
    // still reads, and both pipes would fill up if this thread did both in turn.
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let input = stdin.to_owned();
    let writer = std::thread::spawn(move || pipe.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("the binary ends");
    writer
        .join()
        .expect("the stdin writer ends")
        .expect("stdin accepts the input");
    output
}

fn stdout_lines(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

const REPORT_TEXT: &str = "FINDINGS: Small left pleural effusion. No pneumothorax.\n\
                           IMPRESSION:\n1. Small left pleural effusion.\n";

fn report(id: &str, text: &str) -> Value {
    json!({
        "resourceType": "DiagnosticReport",
        "id": id,
        "meta": {"versionId": "3", "lastUpdated": "2026-11-20T10:00:00.000Z"},
        "status": "final",
        "code": {"text": "XR Chest"},
        "subject": {"reference": "Patient/p1"},
        "conclusion": text
    })
}

#[test]
fn extract_reads_plain_text_from_stdin() {
    let output = reportsplit(&["extract", "--compact"], REPORT_TEXT);
    let [result] = stdout_lines(&output).try_into().expect("one result");
    let kinds: Vec<_> = result["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["findings", "impression"]);
    let effusion = &result["findings"][0];
    assert_eq!(effusion["code"]["code"], "60046008");
    assert_eq!(effusion["assertion"], "present");
    assert_eq!(effusion["laterality"], "left");
    assert_eq!(result["findings"][1]["assertion"], "absent");
}

#[test]
fn extract_reads_ndjson_reports_and_names_their_source() {
    let input = format!(
        "{}\n{}\n",
        report("a", REPORT_TEXT),
        json!({"resourceType": "DiagnosticReport", "id": "b", "status": "final"})
    );
    let lines = stdout_lines(&reportsplit(&["extract", "-"], &input));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["report"], "DiagnosticReport/a");
    assert_eq!(lines[0]["source"], "DiagnosticReport.conclusion");
    assert!(!lines[0]["findings"].as_array().unwrap().is_empty());
    assert_eq!(lines[1]["report"], "DiagnosticReport/b");
    assert!(
        lines[1]["skipped"]
            .as_str()
            .unwrap()
            .contains("no presentedForm")
    );
}

#[test]
fn extract_fhir_prints_one_transaction_per_report() {
    let bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": report("a", REPORT_TEXT)},
        {"resource": {"resourceType": "Patient", "id": "p1"}, "search": {"mode": "include"}},
        {"resource": report("b", "IMPRESSION: No acute fracture.")}
    ]});
    let lines = stdout_lines(&reportsplit(&["extract", "--fhir"], &bundle.to_string()));
    assert_eq!(lines.len(), 2);
    for (line, id) in lines.iter().zip(["a", "b"]) {
        assert_eq!(line["type"], "transaction");
        let entries = line["entry"].as_array().unwrap();
        let last = entries.last().unwrap();
        assert_eq!(last["request"]["method"], "PUT");
        assert_eq!(last["request"]["url"], format!("DiagnosticReport/{id}"));
        assert_eq!(last["request"]["ifMatch"], "W/\"3\"");
        assert!(
            entries.iter().any(
                |e| e["request"]["method"] == "POST" && e["request"]["ifNoneExist"].is_string()
            )
        );
    }
}

#[test]
fn extract_fhir_refuses_plain_text() {
    let output = reportsplit(&["extract", "--fhir"], REPORT_TEXT);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not plain text"));
}

#[test]
fn the_public_kit_scorers_are_not_in_the_worker_binary() {
    let output = reportsplit(&["eval", "negex", "negex.tsv"], "");
    assert_eq!(output.status.code(), Some(2), "a usage error");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("reports"),
        "the error names the set the binary scores"
    );
}

#[test]
fn check_config_validates_and_prints_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.toml");
    std::fs::write(
        &path,
        "[fhir]\nurl = \"http://127.0.0.1:9/fhir\"\n\n[auth]\ntype = \"bearer\"\ntoken_env = \"SITE_FHIR_TOKEN\"\n",
    )
    .unwrap();
    let output = reportsplit(
        &[
            "check-config",
            "--offline",
            "--print-config",
            "-c",
            path.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("valid"), "{stdout}");
    assert!(
        stdout.contains(
            "discrepancies written as DetectedIssues: laterality, section_absent, \
             follow_up_missing, sex, age, order (reads the report's Patient and its basedOn \
             ServiceRequests)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("token_env = \"SITE_FHIR_TOKEN\""),
        "{stdout}"
    );
}

#[test]
fn check_config_names_the_bad_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.toml");
    std::fs::write(
        &path,
        "[fhir]\nurl = \"http://127.0.0.1:9/fhir\"\npage_sise = 3\n",
    )
    .unwrap();
    let output = reportsplit(
        &["check-config", "--offline", "-c", path.to_str().unwrap()],
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("page_sise"));
}

#[test]
fn a_bad_site_mapping_table_stops_start_up_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let mappings = dir.path().join("mappings");
    std::fs::create_dir(&mappings).unwrap();
    std::fs::write(mappings.join("critical.tsv"), "this is not a table\n").unwrap();
    let path = dir.path().join("site.toml");
    std::fs::write(
        &path,
        format!(
            "[fhir]\nurl = \"http://127.0.0.1:9/fhir\"\n\n[mappings]\ndir = {:?}\n",
            mappings.display().to_string()
        ),
    )
    .unwrap();
    // The tables are checked before any request, so the unreachable server is never tried.
    let output = reportsplit(&["check-config", "-c", path.to_str().unwrap()], "");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("critical.tsv:1"), "{stderr}");
}

/// NDJSON of `n` reports with ids `r0`, `r1`, ...
fn ndjson(n: usize) -> String {
    (0..n)
        .map(|i| format!("{}\n", report(&format!("r{i}"), REPORT_TEXT)))
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Output lines of a run that may have failed some records.
fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

#[test]
fn extract_keeps_input_order_across_threads() {
    let output = reportsplit(&["extract", "--threads", "4"], &ndjson(5_000));
    let ids: Vec<String> = stdout_lines(&output)
        .iter()
        .map(|line| line["report"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..5_000)
        .map(|i| format!("DiagnosticReport/r{i}"))
        .collect();
    assert_eq!(ids, expected);
}

#[test]
fn a_bad_ndjson_line_fails_alone_with_its_number_and_exit_3() {
    let mut lines: Vec<String> = ndjson(200).lines().map(str::to_owned).collect();
    // Truncated in the middle of its text: the line's content must not reach stderr.
    let keep = lines[56].len() - 30;
    lines[56].truncate(keep);
    let output = reportsplit(&["extract"], &(lines.join("\n") + "\n"));
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let results = json_lines(&output);
    assert_eq!(results.len(), 199);
    assert_eq!(results[56]["report"], "DiagnosticReport/r57");
    let stderr = stderr(&output);
    assert!(stderr.contains("line 57: not a JSON resource"), "{stderr}");
    assert!(stderr.contains("1 of 200 records failed"), "{stderr}");
    assert!(
        !stderr.contains("effusion"),
        "report text on stderr: {stderr}"
    );
}

#[test]
fn a_bad_first_line_does_not_make_the_file_text() {
    let input = format!("{{\"resourceType\": \"Diagn\n{}", ndjson(3));
    let output = reportsplit(&["extract"], &input);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let results = json_lines(&output);
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["report"], "DiagnosticReport/r0");
    assert!(stderr(&output).contains("line 1: not a JSON resource"));
}

#[test]
fn truncated_json_is_an_error_not_text() {
    let pretty = serde_json::to_string_pretty(&report("a", REPORT_TEXT)).unwrap();
    let truncated = &pretty[..pretty.len() / 2];
    let output = reportsplit(&["extract"], truncated);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(output.stdout.is_empty());
    let stderr = stderr(&output);
    assert!(stderr.contains("input: not valid JSON"), "{stderr}");
    assert!(stderr.contains("--input text"), "{stderr}");
    // The same bytes as a one-line file: still an error.
    let one_line = report("a", REPORT_TEXT).to_string();
    let output = reportsplit(&["extract"], &one_line[..one_line.len() - 5]);
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn input_text_splits_json_looking_text_as_text() {
    let text = format!("{{dictated}} {REPORT_TEXT}");
    assert_eq!(reportsplit(&["extract"], &text).status.code(), Some(3));
    let output = reportsplit(&["extract", "--input", "text", "--compact"], &text);
    let [result] = stdout_lines(&output).try_into().expect("one result");
    assert!(result.get("report").is_none());
    assert!(!result["findings"].as_array().unwrap().is_empty());
    // A resource read as text is text too: its JSON is split, nothing is decoded.
    let json = report("a", REPORT_TEXT).to_string();
    let output = reportsplit(&["extract", "--input", "text", "--compact"], &json);
    let [result] = stdout_lines(&output).try_into().expect("one result");
    assert!(result.get("report").is_none());
}

#[test]
fn empty_input_processes_nothing_and_exits_0() {
    for input in ["", "\n\n  \n"] {
        let output = reportsplit(&["extract"], input);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn a_bundle_entry_that_is_not_a_report_fails_alone() {
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": report("a", REPORT_TEXT)},
        {"resource": {"resourceType": "Observation", "id": "o1"}},
        {"resource": report("b", REPORT_TEXT)}
    ]});
    let output = reportsplit(&["extract"], &bundle.to_string());
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(json_lines(&output).len(), 2);
    let stderr = stderr(&output);
    assert!(stderr.contains("Bundle entry 2"), "{stderr}");
    assert!(stderr.contains("1 of 3 records failed"), "{stderr}");
}

#[test]
fn a_closed_pipe_ends_extract_quietly() {
    closed_pipe_ends_quietly(&["extract", "-"]);
}

#[test]
fn a_closed_pipe_ends_extract_fhir_quietly() {
    closed_pipe_ends_quietly(&["extract", "--fhir", "-"]);
}

/// `reportsplit <args> | head -1`: exit 0, no ERROR, no "Broken pipe".
fn closed_pipe_ends_quietly(args: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reportsplit"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let input = ndjson(20_000);
    // The binary may stop reading once its output is closed: a failed write here is fine.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).expect("one line of output");
    assert!(first.contains("DiagnosticReport/r0"));
    drop(stdout); // what `| head -1` does
    let output = child.wait_with_output().expect("the binary ends");
    writer.join().expect("the stdin writer ends");
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
}

#[test]
fn eval_reports_scores_a_gold_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gold.json");
    let gold = json!([{
        "id": "g1",
        "modality": "XR",
        "family": "chest",
        "text": REPORT_TEXT,
        "gold": {
            "sections": ["findings", "impression"],
            "impression_items": 1,
            "findings": [
                {"term": "pleural effusion", "section": "findings", "assertion": "present",
                 "laterality": "left", "size_mm": null, "change": null,
                 "sentence": "Small left pleural effusion."},
                {"term": "pneumothorax", "section": "findings", "assertion": "absent",
                 "laterality": null, "size_mm": null, "change": null,
                 "sentence": "No pneumothorax."}
            ],
            "critical": false
        }
    }]);
    std::fs::write(&path, gold.to_string()).unwrap();
    let output = reportsplit(&["eval", "reports", path.to_str().unwrap()], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().expect("a summary line");
    assert!(last.starts_with("reports findings precision="), "{stdout}");
    assert!(last.contains("recall=1.000"), "{stdout}");
}

#[test]
fn extract_fhir_refuses_a_report_over_a_limit_alone() {
    let input = format!(
        "{}\n{}\n",
        report("a", REPORT_TEXT),
        report("big", &"Small cyst. ".repeat(17_000))
    );
    let output = reportsplit(&["extract", "--fhir", "--input", "ndjson"], &input);
    assert_eq!(output.status.code(), Some(3));
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["type"], "transaction");
    assert_eq!(lines[1]["resourceType"], "OperationOutcome");
    assert_eq!(lines[1]["issue"][0]["code"], "too-costly");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 2: DiagnosticReport/big: the report text has 204000 characters, over the limit of 200000 (limits.text_chars)"),
        "{stderr}"
    );
    assert!(!stderr.contains("cyst"), "{stderr}");
}

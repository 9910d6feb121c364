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
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("stdin accepts the input");
    child.wait_with_output().expect("the binary ends")
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
        {"resource": {"resourceType": "Patient", "id": "p1"}},
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

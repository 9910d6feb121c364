//! The planned transactions against a real SEKMET server with strict inbound
//! validation: every kind of resource and entry the planner produces
//! (findings with every component, statements, a recommendation, a critical
//! result, a discrepancy, Device, Provenance, the report's update, a
//! restatus and a supersession) is accepted and linked as planned.

use crate::common;

use crate::map_fixture::{RICH_TEXT, TEXT, codes, extraction, rich_extraction};
use reportsplit_fhir::map::{OBSERVATION_SYSTEM, RunInfo};
use reportsplit_fhir::plan::{Plan, TAG_SYSTEM, WriteSet, owned_searches, plan, previous_refs};
use reportsplit_fhir::text::ReportText;
use reportsplit_split::SectionKind;
use serde_json::{Value, json};

fn run() -> RunInfo {
    RunInfo {
        extractor_version: "0.1.0".into(),
        recorded: time::macros::datetime!(2026-11-28 06:00:00.125 +01:00),
        writes: Default::default(),
    }
}

/// Valid R4 (a strict server stores it) but full of content reportsplit does not own.
fn rich_report() -> Value {
    json!({
        "resourceType": "DiagnosticReport",
        "id": "map-1",
        "meta": {"tag": [{"system": "http://example.org/site-tags", "code": "teaching"}]},
        "contained": [{"resourceType": "Practitioner", "id": "rad", "name": [{"family": "Roentgen"}]}],
        "extension": [{"url": "http://example.org/fhir/StructureDefinition/dictation",
                       "valueString": "ünïcödé ✓"}],
        "identifier": [{"system": "http://example.org/accession", "value": "ACC-1"}],
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "24627-2", "display": "CT Chest"}]},
        "subject": {"reference": "Patient/p1", "display": "Test Patient"},
        "encounter": {"reference": "Encounter/e1"},
        "effectiveDateTime": "2026-11-27T08:00:00.500+01:00",
        "issued": "2026-11-27T09:30:00.120+01:00",
        "resultsInterpreter": [{"reference": "#rad"}],
        "imagingStudy": [{"reference": "ImagingStudy/st-1"}],
        "conclusion": "Right upper lobe mass.",
        "_conclusion": {"extension": [{"url": "http://example.org/conclusion-source", "valueString": "dictated"}]},
        "presentedForm": [{"contentType": "text/plain; charset=utf-8", "data": "RklORElOR1M="}]
    })
}

fn plan_write(report: &Value, text: &str, previous: &[Value]) -> WriteSet {
    let c = codes();
    let extraction = extraction(text, &c);
    let report_text = ReportText {
        text: text.to_owned(),
        element: "DiagnosticReport.presentedForm[0]".into(),
        headerless: SectionKind::Other,
    };
    match plan(report, &report_text, &extraction, previous, &run()).expect("plan") {
        Plan::Write(set) => set,
        Plan::Current => panic!("expected a write"),
    }
}

async fn commit(fhir: &common::Fhir, set: &WriteSet) -> Value {
    let response = fhir
        .request(reqwest::Method::POST, "", Some(&set.bundle), None)
        .await;
    assert_eq!(
        response.status, 200,
        "transaction refused: {}",
        response.body
    );
    response.body
}

/// What the worker reads back before planning: the Observations linked in
/// `result`, then the other resources found by the report's group tag.
async fn previous(fhir: &common::Fhir, report: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for reference in previous_refs(report) {
        out.push(fhir.get(&reference).await);
    }
    for (kind, query) in owned_searches(report, 100) {
        if kind == "Observation" {
            continue;
        }
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        out.extend(fhir.search_all(&format!("{kind}?{query}")).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_server_accepts_and_links_every_planned_resource() {
    let server = common::Sekmet::start();
    let fhir = server.fhir();
    fhir.put(&rich_report()).await;
    let read = fhir.get("DiagnosticReport/map-1").await;

    // 1. first derivation
    let first = plan_write(&read, TEXT, &[]);
    commit(&fhir, &first).await;
    let report = fhir.get("DiagnosticReport/map-1").await;
    let results = report["result"].as_array().expect("result");
    assert_eq!(results.len(), first.observations);
    let tags = report["meta"]["tag"].as_array().expect("tags");
    assert_eq!(tags[0]["code"], "teaching");
    assert_eq!(tags[1]["system"], TAG_SYSTEM);
    for key in [
        "contained",
        "extension",
        "_conclusion",
        "identifier",
        "resultsInterpreter",
    ] {
        assert_eq!(report[key], read[key], "{key} kept");
    }
    let observations = previous(&fhir, &report).await;
    // 9 Observations, the follow-up's ServiceRequest, the laterality
    // DetectedIssue, the Flag of the critical result nobody is documented to
    // have been told of
    assert_eq!(observations.len(), 12);
    assert_eq!(fhir.count("ServiceRequest?status=draft").await, 1);
    assert_eq!(fhir.count("DetectedIssue").await, 1);
    assert_eq!(fhir.count("Flag?status=active").await, 1);
    let critical = observations
        .iter()
        .filter(|o| o["interpretation"][0]["coding"][0]["code"] == "AA")
        .count();
    assert_eq!(critical, 1);
    let statement = observations
        .iter()
        .find(|o| o["valueString"] == "Right upper lobe mass, suspicious for malignancy.")
        .expect("impression item");
    let member = statement["hasMember"][0]["reference"]
        .as_str()
        .expect("member");
    assert!(
        member.starts_with("Observation/"),
        "resolved by the server: {member}"
    );
    assert_eq!(fhir.get(member).await["code"]["text"], "mass");
    let size = observations
        .iter()
        .flat_map(|o| o["component"].as_array().into_iter().flatten())
        .find(|c| c["code"]["coding"][0]["code"] == "103339001")
        .expect("size component");
    assert_eq!(size["valueQuantity"]["unit"], "cm");
    assert_eq!(fhir.count("Provenance").await, 1);
    assert_eq!(fhir.count("Device").await, 1);

    // 2. nothing changed: current
    let c = codes();
    let same = extraction(TEXT, &c);
    let report_text = ReportText {
        text: TEXT.to_owned(),
        element: "DiagnosticReport.presentedForm[0]".into(),
        headerless: SectionKind::Other,
    };
    let again = plan(&report, &report_text, &same, &observations, &run()).expect("plan");
    assert_eq!(again, Plan::Current);

    // 3. status only (final → corrected): the same Observations, restatused
    let mut corrected = report.clone();
    corrected["status"] = json!("corrected");
    fhir.put(&corrected).await;
    let corrected = fhir.get("DiagnosticReport/map-1").await;
    let restatus = plan_write(&corrected, TEXT, &previous(&fhir, &corrected).await);
    assert_eq!((restatus.observations, restatus.restatused), (0, 9));
    commit(&fhir, &restatus).await;
    let corrected = fhir.get("DiagnosticReport/map-1").await;
    let observations = previous(&fhir, &corrected).await;
    assert!(
        observations
            .iter()
            .filter(|o| o["resourceType"] == "Observation")
            .all(|o| o["status"] == "corrected")
    );
    assert_eq!(fhir.count("Observation").await, 9);

    // 4. amended text: new Observations, the old ones superseded, history kept
    let amended_text = format!("CT CHEST WITH CONTRAST\n{TEXT}");
    let mut amended = corrected.clone();
    amended["status"] = json!("amended");
    fhir.put(&amended).await;
    let amended = fhir.get("DiagnosticReport/map-1").await;
    let supersede = plan_write(&amended, &amended_text, &previous(&fhir, &amended).await);
    assert_eq!((supersede.observations, supersede.superseded), (9, 12));
    commit(&fhir, &supersede).await;
    assert_eq!(fhir.count("Observation").await, 18);
    assert_eq!(fhir.count("Observation?status=entered-in-error").await, 9);
    assert_eq!(fhir.count("Observation?status=amended").await, 9);
    assert_eq!(fhir.count("ServiceRequest?status=revoked").await, 1);
    assert_eq!(fhir.count("ServiceRequest?status=draft").await, 1);
    // the old Flag closed, the new version's one open
    assert_eq!(fhir.count("Flag?status=inactive").await, 1);
    assert_eq!(fhir.count("Flag?status=active").await, 1);
    let report = fhir.get("DiagnosticReport/map-1").await;
    assert_eq!(report["result"].as_array().map(Vec::len), Some(18));
    let old = &observations[0];
    let id = old["id"].as_str().expect("id");
    let history = fhir.get(&format!("Observation/{id}/_history")).await;
    assert_eq!(
        history["entry"].as_array().map(Vec::len),
        Some(3),
        "created, restatused, superseded"
    );
    let identifier = old["identifier"][0]["value"].as_str().expect("identifier");
    assert_eq!(old["identifier"][0]["system"], OBSERVATION_SYSTEM);
    assert_eq!(
        fhir.count(&format!(
            "Observation?identifier={OBSERVATION_SYSTEM}|{identifier}"
        ))
        .await,
        1
    );

    // 5. a replayed transaction is refused (the report moved on) and creates nothing
    let replay = fhir
        .request(reqwest::Method::POST, "", Some(&supersede.bundle), None)
        .await;
    assert_eq!(replay.status, 412, "{}", replay.body);
    assert_eq!(fhir.count("Observation").await, 18);
    assert_eq!(fhir.count("Device").await, 1);
}

/// The shapes of the grammar for every modality: descriptor and finding-site
/// components with their spans, a bodySite with its span, and a diagnosis
/// whose `derivedFrom` names the observation (a urn:uuid in the
/// transaction) that the server resolves like `hasMember`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_server_accepts_descriptors_sites_and_derived_from() {
    let server = common::Sekmet::start();
    let fhir = server.fhir();
    let mut report = rich_report();
    report["id"] = json!("map-rich");
    fhir.put(&report).await;
    let read = fhir.get("DiagnosticReport/map-rich").await;
    let c = codes();
    let extraction = rich_extraction(RICH_TEXT, &c);
    let report_text = ReportText {
        text: RICH_TEXT.to_owned(),
        element: "DiagnosticReport.presentedForm[0]".into(),
        headerless: SectionKind::Other,
    };
    let set = match plan(&read, &report_text, &extraction, &[], &run()).expect("plan") {
        Plan::Write(set) => set,
        Plan::Current => panic!("expected a write"),
    };
    commit(&fhir, &set).await;
    let report = fhir.get("DiagnosticReport/map-rich").await;
    let observations = previous(&fhir, &report).await;
    let by_term = |term: &str| {
        observations
            .iter()
            .find(|o| o["code"]["text"] == term)
            .unwrap_or_else(|| panic!("{term} stored"))
    };
    let mass = by_term("mass");
    let codes_of = |o: &Value| -> Vec<String> {
        o["component"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["code"]["coding"][0]["code"].as_str().map(str::to_owned))
            .collect()
    };
    let stored = codes_of(mass);
    for code in ["363698007", "descriptor-margin", "descriptor-enhancement"] {
        assert!(stored.iter().any(|c| c == code), "{code} in {stored:?}");
    }
    assert_eq!(mass["bodySite"]["text"], "right upper lobe");
    assert!(mass["bodySite"]["extension"][0]["url"].is_string());
    let colitis = by_term("colitis");
    let sources: Vec<&str> = colitis["derivedFrom"]
        .as_array()
        .expect("derivedFrom")
        .iter()
        .filter_map(|r| r["reference"].as_str())
        .collect();
    assert_eq!(sources.len(), 2, "{sources:?}");
    assert_eq!(sources[0], "ImagingStudy/st-1");
    assert!(
        sources[1].starts_with("Observation/"),
        "resolved: {}",
        sources[1]
    );
    assert_eq!(
        fhir.get(sources[1]).await["code"]["text"],
        "Wall thickening"
    );
}

const MAMMO_TEXT: &str = "FINDINGS: Spiculated mass in the left breast at 2 o'clock, BI-RADS 5. \
                          Small cyst in the right breast.\n\
                          IMPRESSION: Right breast: BI-RADS 2.";

/// Plans `text` as the real extractor reads it.
fn plan_extracted(report: &Value, text: &str, previous: &[Value]) -> WriteSet {
    let lexicon = reportsplit_split::Lexicon::builtin();
    let extraction = reportsplit_split::extract_as(text, &lexicon, SectionKind::Findings);
    let report_text = ReportText {
        text: text.to_owned(),
        element: "DiagnosticReport.presentedForm[0]".into(),
        headerless: SectionKind::Findings,
    };
    match plan(report, &report_text, &extraction, previous, &run()).expect("plan") {
        Plan::Write(set) => set,
        Plan::Current => panic!("expected a write"),
    }
}

fn is_assessment(observation: &Value) -> bool {
    observation["identifier"][0]["value"]
        .as_str()
        .is_some_and(|v| v.contains("/assessment/"))
}

/// Assessment Observations (BI-RADS) are stored by the strict server with
/// their members resolved, listed in the report's `result`, and superseded
/// with the rest when the report is amended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_server_accepts_assessments_and_supersedes_them() {
    let server = common::Sekmet::start();
    let fhir = server.fhir();
    let mut report = rich_report();
    report["id"] = json!("map-mammo");
    fhir.put(&report).await;
    let read = fhir.get("DiagnosticReport/map-mammo").await;
    commit(&fhir, &plan_extracted(&read, MAMMO_TEXT, &[])).await;
    let report = fhir.get("DiagnosticReport/map-mammo").await;
    let observations = previous(&fhir, &report).await;
    let assessments: Vec<&Value> = observations.iter().filter(|o| is_assessment(o)).collect();
    assert_eq!(assessments.len(), 2, "both BI-RADS categories stored");
    let birads5 = assessments
        .iter()
        .find(|a| a["valueCodeableConcept"]["coding"][0]["code"] == "397145000")
        .expect("BI-RADS 5 stored");
    assert_eq!(birads5["code"]["coding"][0]["code"], "146611000146107");
    let member = birads5["hasMember"][0]["reference"]
        .as_str()
        .expect("a member");
    assert!(member.starts_with("Observation/"), "resolved: {member}");
    assert_eq!(fhir.get(member).await["code"]["text"], "Spiculated mass");

    // amended: the old assessments are superseded, new ones written
    let amended_text = format!("{MAMMO_TEXT} Biopsy recommended.");
    let mut amended = report.clone();
    amended["status"] = json!("amended");
    fhir.put(&amended).await;
    let amended = fhir.get("DiagnosticReport/map-mammo").await;
    let supersede = plan_extracted(&amended, &amended_text, &previous(&fhir, &amended).await);
    assert_eq!(supersede.superseded, observations.len());
    commit(&fhir, &supersede).await;
    for old in &assessments {
        let id = old["id"].as_str().expect("id");
        let now = fhir.get(&format!("Observation/{id}")).await;
        assert_eq!(now["status"], "entered-in-error", "{id} superseded");
    }
    let report = fhir.get("DiagnosticReport/map-mammo").await;
    let current: Vec<Value> = previous(&fhir, &report)
        .await
        .into_iter()
        .filter(|o| is_assessment(o) && o["status"] == "amended")
        .collect();
    assert_eq!(current.len(), 2, "the amended text's assessments");
}

/// A report on its way to the server (no `meta.versionId`), as an interface
/// engine holds it: with a business identifier, no id.
pub(crate) fn unstored_report(accession: &str) -> Value {
    json!({
        "resourceType": "DiagnosticReport",
        "identifier": [{"system": "http://example.org/accession", "value": accession}],
        "status": "final",
        "code": {"text": "MG Mammography"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-27T08:00:00+01:00",
        "conclusion": MAMMO_TEXT
    })
}

/// `reportsplit extract --fhir` over one report: its one line.
fn extract_fhir(report: &Value) -> Value {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_reportsplit"))
        .args(["extract", "--fhir"])
        .env("REPORTSPLIT_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start reportsplit");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{report}\n").as_bytes())
        .expect("write the report");
    let output = child.wait_with_output().expect("reportsplit ends");
    assert!(
        output.status.success(),
        "extract --fhir: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON line")
}

/// Posts a create-mode transaction twice and checks that the report exists
/// once, linked to its Observations, and that the replay created nothing.
pub(crate) async fn post_twice_and_check_once(
    fhir: &common::Fhir,
    bundle: &Value,
    accession: &str,
) {
    let planned = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Observation")
        .count();
    assert!(planned > 0, "{bundle}");
    for attempt in 0..2 {
        let response = fhir
            .request(reqwest::Method::POST, "", Some(bundle), None)
            .await;
        assert_eq!(response.status, 200, "attempt {attempt}: {}", response.body);
    }
    let search = format!("DiagnosticReport?identifier=http://example.org/accession|{accession}");
    assert_eq!(fhir.count(&search).await, 1, "the report exists once");
    let report = fhir.search_all(&search).await.remove(0);
    let results: Vec<&str> = report["result"]
        .as_array()
        .expect("result")
        .iter()
        .filter_map(|r| r["reference"].as_str())
        .collect();
    assert_eq!(results.len(), planned);
    assert!(
        results.iter().all(|r| r.starts_with("Observation/")),
        "{results:?}"
    );
    assert_eq!(
        fhir.count("Observation").await,
        planned as u64,
        "none twice"
    );
    assert_eq!(fhir.count("Provenance").await, 1, "one Provenance");
    assert_eq!(fhir.count("Device").await, 1);
    let id = report["id"].as_str().expect("id");
    let observation = fhir.get(results[0]).await;
    assert_eq!(
        observation["extension"][0]["extension"][0]["valueReference"]["reference"],
        format!("DiagnosticReport/{id}"),
        "the evidence points at the report created"
    );
    assert!(
        report["meta"]["tag"]
            .as_array()
            .is_some_and(|tags| tags.iter().any(|t| t["system"] == TAG_SYSTEM)),
        "tagged: the worker will see it as current"
    );
}

/// The bundle `extract --fhir` prints for a report not stored yet creates
/// it with its Observations on a strict server, and a replay creates
/// nothing twice (the report, Observations and Provenance are conditional).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unstored_report_is_created_once_from_the_extract_bundle() {
    let server = common::Sekmet::start();
    let fhir = server.fhir();
    let bundle = extract_fhir(&unstored_report("ACC-NEW-1"));
    assert_eq!(bundle["type"], "transaction", "{bundle}");
    post_twice_and_check_once(&fhir, &bundle, "ACC-NEW-1").await;
}

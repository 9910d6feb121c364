//! Mapping and transaction planning (pure): findings → Observations,
//! Provenance and the report's update, on hand-written reports.

mod map_fixture;

use map_fixture::{RICH_TEXT, TEXT, codes, extraction, rich_extraction, span};
use reportsplit_fhir::map::{OBSERVATION_SYSTEM, RunInfo};
use reportsplit_fhir::plan::{
    Plan, PlanError, TAG_SYSTEM, WriteSet, plan, previous_refs, report_patch,
};
use reportsplit_fhir::text::ReportText;
use reportsplit_split::SectionKind;
use serde_json::{Value, json};

/// A report as a server might return it, full of content reportsplit does
/// not own: unknown elements and extensions, primitive extensions, contained
/// resources, decimals with trailing zeros, timestamps with offsets, an
/// unusual key order.
const REPORT: &str = r##"{
  "resourceType": "DiagnosticReport",
  "id": "rep-1",
  "meta": {"versionId": "3", "lastUpdated": "2026-11-27T08:15:30.120+00:00",
           "tag": [{"system": "http://example.org/site-tags", "code": "teaching"}],
           "profile": ["http://example.org/StructureDefinition/rad-report"]},
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">CT chest</div>"},
  "contained": [{"resourceType": "Practitioner", "id": "rad", "name": [{"family": "Roentgen"}]}],
  "extension": [{"url": "http://example.org/fhir/StructureDefinition/dose", "valueDecimal": 13.50},
                {"url": "http://example.org/fhir/StructureDefinition/unknown-nested",
                 "extension": [{"url": "a", "valueString": "ünïcödé ✓"}]}],
  "identifier": [{"system": "http://example.org/accession", "value": "ACC-42"}],
  "status": "final",
  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
  "code": {"coding": [{"system": "http://loinc.org", "code": "24627-2", "display": "CT Chest"}]},
  "subject": {"reference": "Patient/p1", "display": "Test Patient"},
  "encounter": {"reference": "Encounter/e1"},
  "effectiveDateTime": "2026-11-27T08:00:00.500+01:00",
  "_effectiveDateTime": {"extension": [{"url": "http://example.org/precision", "valueCode": "ms"}]},
  "issued": "2026-11-27T09:30:00.120+01:00",
  "resultsInterpreter": [{"reference": "#rad"}],
  "result": [{"reference": "Observation/lab-7", "display": "kept"}],
  "imagingStudy": [{"reference": "ImagingStudy/st-1"}],
  "conclusion": "Right upper lobe mass.",
  "_conclusion": {"extension": [{"url": "http://example.org/conclusion-source", "valueString": "dictated"}]},
  "somethingUnknown": {"x": 1.10, "y": [100.0, 0.000, -0.0]},
  "presentedForm": [{"contentType": "text/plain; charset=utf-8", "data": "RklORElOR1M="}]
}"##;

fn report() -> Value {
    serde_json::from_str(REPORT).expect("fixture parses")
}

fn run() -> RunInfo {
    RunInfo {
        extractor_version: "0.1.0".into(),
        recorded: time::macros::datetime!(2026-11-28 05:30:00.250 UTC),
        writes: Default::default(),
    }
}

fn report_text() -> ReportText {
    ReportText {
        text: TEXT.to_owned(),
        element: "DiagnosticReport.presentedForm[0]".into(),
        headerless: SectionKind::Other,
    }
}

fn write_set(report: &Value, previous: &[Value]) -> WriteSet {
    let c = codes();
    let extraction = extraction(TEXT, &c);
    match plan(report, &report_text(), &extraction, previous, &run()).expect("plan") {
        Plan::Write(set) => set,
        Plan::Current => panic!("expected a write"),
    }
}

fn entries(set: &WriteSet) -> &Vec<Value> {
    set.bundle["entry"].as_array().expect("entries")
}

fn resources<'s>(set: &'s WriteSet, resource_type: &str) -> Vec<&'s Value> {
    entries(set)
        .iter()
        .filter(|e| {
            e["request"]["method"] == "POST" && e["resource"]["resourceType"] == resource_type
        })
        .map(|e| &e["resource"])
        .collect()
}

fn report_put(set: &WriteSet) -> &Value {
    let entry = &entries(set)[set.report_entry];
    assert_eq!(entry["request"]["method"], "PUT");
    &entry["resource"]
}

#[test]
fn maps_findings_statements_recommendations_and_discrepancies() {
    let set = write_set(&report(), &[]);
    assert_eq!(set.bundle["type"], "transaction");
    // 4 findings + 2 impression items + 2 findings sentences + 1 recommendation
    assert_eq!(set.observations, 9);
    // the follow-up's ServiceRequest, the laterality DetectedIssue and the
    // Flag of the critical result no one is documented to have been told of
    assert_eq!(set.others, 3);
    assert_eq!(set.follow_ups_without_subject, 0);
    assert_eq!(set.superseded, 0);
    assert_eq!(set.findings, 4);
    let observations = resources(&set, "Observation");
    assert_eq!(observations.len(), 9);
    // every resource written for the report carries its group tag
    for resource in entries(&set).iter().map(|e| &e["resource"]) {
        let kind = resource["resourceType"].as_str().unwrap_or("");
        if ["Observation", "ServiceRequest", "DetectedIssue"].contains(&kind) {
            assert_eq!(
                resource["meta"]["tag"][0],
                json!({"system": "urn:reportsplit:report", "code": "rep-1"}),
                "{kind}"
            );
        }
    }

    let mass = observations[0];
    assert_eq!(mass["status"], "final");
    assert_eq!(mass["category"][0]["coding"][0]["code"], "imaging");
    assert_eq!(mass["code"]["coding"][0]["code"], "4147007");
    assert_eq!(mass["code"]["text"], "mass");
    assert_eq!(
        mass["valueCodeableConcept"]["coding"][0]["code"],
        "52101004"
    );
    assert_eq!(mass["bodySite"]["coding"][0]["code"], "45653009");
    assert_eq!(mass["bodySite"]["text"], "left upper lobe");
    // verbatim from the report, timestamps untouched
    assert_eq!(
        mass["subject"],
        json!({"reference": "Patient/p1", "display": "Test Patient"})
    );
    assert_eq!(mass["encounter"]["reference"], "Encounter/e1");
    assert_eq!(mass["effectiveDateTime"], "2026-11-27T08:00:00.500+01:00");
    assert_eq!(
        mass["_effectiveDateTime"]["extension"][0]["valueCode"],
        "ms"
    );
    assert_eq!(mass["issued"], "2026-11-27T09:30:00.120+01:00");
    assert_eq!(mass["derivedFrom"][0]["reference"], "ImagingStudy/st-1");
    // components: laterality, size, change, temporality
    let component_codes: Vec<&str> = mass["component"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| c["code"]["coding"][0]["code"].as_str().expect("code"))
        .collect();
    assert_eq!(
        component_codes,
        ["272741003", "103339001", "263703002", "408731000"]
    );
    assert_eq!(
        mass["component"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "7771000"
    );
    assert_eq!(
        mass["component"][2]["valueCodeableConcept"]["coding"][0]["code"],
        "7147002"
    );
    assert_eq!(
        mass["component"][3]["valueCodeableConcept"]["coding"][0]["code"],
        "410512000"
    );
    let size = &mass["component"][1];
    assert_eq!(size["code"]["text"], "Long axis (3.50 x 2.1 cm)");
    assert_eq!(size["valueQuantity"]["unit"], "cm");
    assert_eq!(size["valueQuantity"]["system"], "http://unitsofmeasure.org");
    // the decimal as written: 3.50, not 3.5
    let serialized = serde_json::to_string(&size["valueQuantity"]).expect("json");
    assert!(serialized.contains(r#""value":3.50"#), "{serialized}");

    // evidence: sentence on the resource, term on the code, size on the component
    let derivation = &mass["extension"][0];
    assert_eq!(
        derivation["url"],
        "http://hl7.org/fhir/StructureDefinition/derivation-reference"
    );
    let (start, end) = span(
        TEXT,
        "There is a 3.50 x 2.1 cm mass in the left upper lobe, new since 2024.",
        0,
    );
    assert_eq!(
        derivation["extension"],
        json!([
            {"url": "reference", "valueReference": {"reference": "DiagnosticReport/rep-1/_history/3"}},
            {"url": "path", "valueString": "DiagnosticReport.presentedForm[0]"},
            {"url": "offset", "valueInteger": start},
            {"url": "length", "valueInteger": end - start},
        ])
    );
    let (term_start, _) = span(TEXT, "mass", 0);
    assert_eq!(
        mass["code"]["extension"][0]["extension"][2]["valueInteger"],
        term_start
    );
    assert_eq!(
        mass["code"]["extension"][0]["extension"][3]["valueInteger"],
        4
    );

    // identifier and conditional create
    let identifier = &mass["identifier"][0];
    assert_eq!(identifier["system"], OBSERVATION_SYSTEM);
    let value = identifier["value"].as_str().expect("value");
    assert!(value.starts_with("rep-1/3/finding/"), "{value}");
    let entry = &entries(&set)[1];
    assert_eq!(
        entry["request"]["ifNoneExist"],
        format!("identifier=urn:reportsplit:observation|{value}")
    );
    assert!(
        entry["fullUrl"]
            .as_str()
            .expect("fullUrl")
            .starts_with("urn:uuid:")
    );

    // critical result: the impression mass is flagged
    let imp_mass = observations[2];
    assert_eq!(imp_mass["interpretation"][0]["coding"][0]["code"], "AA");
    assert_eq!(
        imp_mass["valueCodeableConcept"]["coding"][0]["code"],
        "60022001"
    );
    assert!(mass.get("interpretation").is_none());

    // statements: impression items with their findings as members
    let full_url = |i: usize| entries(&set)[i + 1]["fullUrl"].clone();
    let statements: Vec<&Value> = observations
        .iter()
        .copied()
        .filter(|o| {
            o["code"]["coding"][0]["system"] == "http://dicom.nema.org/resources/ontology/DCM"
        })
        .collect();
    let by_text = |t: &str| {
        statements
            .iter()
            .find(|o| o["valueString"] == t)
            .copied()
            .unwrap_or_else(|| panic!("statement {t}"))
    };
    let item1 = by_text("Right upper lobe mass, suspicious for malignancy.");
    assert_eq!(item1["code"]["coding"][0]["code"], "121073");
    assert_eq!(item1["hasMember"], json!([{"reference": full_url(2)}]));
    let sentence = by_text("No pleural effusion.");
    assert_eq!(sentence["code"]["coding"][0]["code"], "121071");
    assert_eq!(sentence["hasMember"], json!([{"reference": full_url(1)}]));
    let recommendation = by_text("CT chest in 3 months.");
    assert_eq!(recommendation["code"]["coding"][0]["code"], "121075");
    assert_eq!(
        recommendation["component"][0]["code"]["coding"][0]["code"],
        "111055"
    );
    assert_eq!(recommendation["component"][0]["valueQuantity"]["code"], "d");
    assert_eq!(recommendation["component"][0]["valueQuantity"]["value"], 90);
    assert!(
        observations
            .iter()
            .all(|o| o["code"]["coding"][0]["code"] != "laterality-discrepancy"),
        "the laterality discrepancy is a DetectedIssue now"
    );
    let issues = resources(&set, "DetectedIssue");
    let issue = issues.first().expect("a DetectedIssue");
    assert_eq!(issue["status"], "preliminary");
    assert_eq!(issue["code"]["coding"][0]["code"], "laterality-discrepancy");
    assert_eq!(
        issue["detail"],
        "mass: left in Findings, right in Impression"
    );
    assert_eq!(
        issue["patient"],
        json!({"reference": "Patient/p1", "display": "Test Patient"})
    );
    assert_eq!(
        issue["implicated"],
        json!([{"reference": "DiagnosticReport/rep-1"}, {"reference": full_url(0)}, {"reference": full_url(2)}])
    );
    assert_eq!(
        issue["evidence"][0]["detail"],
        json!([{"reference": full_url(0)}, {"reference": full_url(2)}])
    );
    // both sentences are evidence
    assert_eq!(issue["extension"].as_array().map(Vec::len), Some(2));
    let issue_entry = entries(&set)
        .iter()
        .find(|e| e["resource"]["resourceType"] == "DetectedIssue")
        .expect("entry");
    let issue_id = issue["identifier"][0]["value"]
        .as_str()
        .expect("identifier");
    assert_eq!(
        issue_entry["request"]["ifNoneExist"],
        format!("_tag=urn:reportsplit:identifier|{issue_id}")
    );

    let requests = resources(&set, "ServiceRequest");
    let request = requests.first().expect("a ServiceRequest");
    assert_eq!(request["status"], "draft");
    assert_eq!(request["intent"], "proposal");
    assert_eq!(request["code"]["coding"][0]["code"], "followup-ct");
    assert_eq!(
        request["subject"],
        json!({"reference": "Patient/p1", "display": "Test Patient"})
    );
    assert_eq!(request["encounter"]["reference"], "Encounter/e1");
    // effective 2026-11-27 + 90 days
    assert_eq!(request["occurrenceDateTime"], "2027-02-25");
    assert_eq!(
        request["reasonReference"],
        json!([{"reference": full_url(2)}])
    );
    let recommendation_url = entries(&set)
        .iter()
        .find(|e| e["resource"]["valueString"] == "CT chest in 3 months.")
        .map(|e| e["fullUrl"].clone())
        .expect("recommendation statement");
    assert_eq!(
        request["supportingInfo"],
        json!([{"reference": "DiagnosticReport/rep-1"}, {"reference": recommendation_url}])
    );
    assert_eq!(request["note"][0]["text"], "CT chest in 3 months.");
    assert!(request.get("asNeededCodeableConcept").is_none());
    // neither goes into the report's result (R4 allows only Observations there)
    let linked = report_put(&set)["result"].to_string();
    assert!(!linked.contains(request_url(&set, "ServiceRequest").as_str()));
    assert!(!linked.contains(request_url(&set, "DetectedIssue").as_str()));
}

fn request_url(set: &WriteSet, resource_type: &str) -> String {
    entries(set)
        .iter()
        .find(|e| e["resource"]["resourceType"] == resource_type)
        .and_then(|e| e["fullUrl"].as_str())
        .unwrap_or("missing")
        .to_owned()
}

#[test]
fn provenance_and_device() {
    let set = write_set(&report(), &[]);
    let device = resources(&set, "Device")[0];
    assert_eq!(device["identifier"][0]["value"], "reportsplit/0.1.0");
    assert_eq!(device["version"][0]["value"], "0.1.0");
    let device_entry = &entries(&set)[0];
    assert_eq!(
        device_entry["request"]["ifNoneExist"],
        "identifier=urn:reportsplit:device|reportsplit/0.1.0"
    );

    let provenance = resources(&set, "Provenance")[0];
    let targets: Vec<&Value> = provenance["target"]
        .as_array()
        .expect("targets")
        .iter()
        .collect();
    // the 9 Observations, the ServiceRequest, the DetectedIssue and the Flag
    assert_eq!(targets.len(), 12);
    for (target, result) in targets.iter().zip(&set.results) {
        assert_eq!(target["reference"], *result);
    }
    assert_eq!(provenance["recorded"], "2026-11-28T05:30:00.25Z");
    assert_eq!(
        provenance["entity"],
        json!([{"role": "source", "what": {"reference": "DiagnosticReport/rep-1/_history/3"}}])
    );
    let agent = &provenance["agent"][0];
    assert_eq!(agent["who"]["reference"], device_entry["fullUrl"]);
    assert_eq!(agent["who"]["display"], "reportsplit 0.1.0");
    assert_eq!(agent["type"]["coding"][0]["code"], "assembler");
}

/// Everything but `result` and `meta.tag` comes back byte for byte; the two
/// owned elements change only by appending.
#[test]
fn report_update_is_lossless() {
    let original = report();
    let set = write_set(&original, &[]);
    let updated = report_put(&set);
    let original_object = original.as_object().expect("object");
    let updated_object = updated.as_object().expect("object");
    let keys = |o: &serde_json::Map<String, Value>| o.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(original_object),
        keys(updated_object),
        "same keys, same order"
    );
    for (key, value) in original_object {
        if key == "result" || key == "meta" {
            continue;
        }
        assert_eq!(
            serde_json::to_string(value).expect("json"),
            serde_json::to_string(&updated[key]).expect("json"),
            "{key} changed"
        );
    }
    let text = serde_json::to_string(updated).expect("json");
    for exact in [
        r#""valueDecimal":13.50"#,
        r#""somethingUnknown":{"x":1.10,"y":[100.0,0.000,-0.0]}"#,
        r#""_conclusion":{"extension":[{"url":"http://example.org/conclusion-source","valueString":"dictated"}]}"#,
        r#""lastUpdated":"2026-11-27T08:15:30.120+00:00""#,
        r#""valueString":"ünïcödé ✓""#,
    ] {
        assert!(text.contains(exact), "lost {exact}");
    }
    let result = updated["result"].as_array().expect("result");
    assert_eq!(
        result[0],
        json!({"reference": "Observation/lab-7", "display": "kept"})
    );
    assert_eq!(result.len(), 10);
    let appended: Vec<&str> = result[1..]
        .iter()
        .map(|r| r["reference"].as_str().expect("ref"))
        .collect();
    assert_eq!(
        appended,
        set.results.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(updated["meta"]["versionId"], "3");
    assert_eq!(updated["meta"]["profile"], original["meta"]["profile"]);
    let tags = updated["meta"]["tag"].as_array().expect("tags");
    assert_eq!(tags[0], original["meta"]["tag"][0]);
    assert_eq!(tags[1]["system"], TAG_SYSTEM);
    let sha = reportsplit_fhir::map::sha256_hex(TEXT.as_bytes());
    assert_eq!(tags[1]["code"], format!("0.1.0:final:sha256:{sha}"));
    let entry = &entries(&set)[set.report_entry];
    assert_eq!(entry["request"]["url"], "DiagnosticReport/rep-1");
    assert_eq!(entry["request"]["ifMatch"], "W/\"3\"");
}

/// The report as the server stores it after our transaction: urn:uuids
/// resolved; and what was created, as the worker reads it back (the
/// Observations first, then the other types found by the group tag).
fn after_write(set: &WriteSet, new_version: &str) -> (Value, Vec<Value>) {
    let mut stored = report_put(set).clone();
    stored["meta"]["versionId"] = json!(new_version);
    let mut observations = Vec::new();
    let mut ids = std::collections::HashMap::new();
    for (kind, prefix) in [
        ("Observation", "obs"),
        ("ServiceRequest", "sr"),
        ("DetectedIssue", "di"),
    ] {
        for (n, entry) in entries(set)
            .iter()
            .filter(|e| e["request"]["method"] == "POST" && e["resource"]["resourceType"] == kind)
            .enumerate()
        {
            let id = format!("{prefix}-{n}");
            let mut o = entry["resource"].clone();
            o["id"] = json!(id);
            o["meta"]["versionId"] = json!("1");
            observations.push(o);
            let full_url = entry["fullUrl"].as_str().unwrap_or_default().to_owned();
            ids.insert(full_url, format!("{kind}/{id}"));
        }
    }
    for r in stored["result"].as_array_mut().expect("result") {
        if let Some(resolved) = r["reference"].as_str().and_then(|u| ids.get(u)) {
            r["reference"] = json!(resolved);
        }
    }
    (stored, observations)
}

#[test]
fn current_when_the_tag_matches_and_rewrite_when_the_extractor_changes() {
    let set = write_set(&report(), &[]);
    let (stored, previous) = after_write(&set, "4");
    let c = codes();
    let extraction = extraction(TEXT, &c);
    let again = plan(&stored, &report_text(), &extraction, &previous, &run()).expect("plan");
    assert_eq!(again, Plan::Current);
    assert!(reportsplit_fhir::plan::is_current(
        &stored,
        &report_text(),
        &run()
    ));
    assert!(!reportsplit_fhir::plan::is_current(
        &report(),
        &report_text(),
        &run()
    ));

    // a new extractor version re-derives: all old Observations superseded
    let newer = RunInfo {
        extractor_version: "0.2.0".into(),
        ..run()
    };
    assert!(!reportsplit_fhir::plan::is_current(
        &stored,
        &report_text(),
        &newer
    ));
    let Plan::Write(set) =
        plan(&stored, &report_text(), &extraction, &previous, &newer).expect("plan")
    else {
        panic!("expected a write");
    };
    // 9 Observations, the ServiceRequest, the DetectedIssue and the Flag
    assert_eq!((set.observations, set.others, set.superseded), (9, 3, 11));
}

#[test]
fn previous_refs_only_for_tagged_reports() {
    assert!(previous_refs(&report()).is_empty(), "never tagged");
    let set = write_set(&report(), &[]);
    let (stored, _) = after_write(&set, "4");
    let refs = previous_refs(&stored);
    assert_eq!(refs.len(), 10);
    assert_eq!(refs[0], "Observation/lab-7");
    assert!(refs.iter().all(|r| r.starts_with("Observation/")));
}

#[test]
fn amended_text_supersedes_old_observations_and_keeps_every_result() {
    let set = write_set(&report(), &[]);
    let (mut stored, previous) = after_write(&set, "4");
    stored["status"] = json!("amended");
    stored["meta"]["versionId"] = json!("5");
    let amended_text = format!("CT CHEST WITH CONTRAST\n{TEXT}");
    let text = ReportText {
        text: amended_text.clone(),
        ..report_text()
    };
    let c = codes();
    let extraction = extraction(&amended_text, &c);
    let unrelated = json!({"resourceType": "Observation", "id": "lab-7", "meta": {"versionId": "2"},
                           "status": "final", "code": {"text": "lab"}});
    let mut all_previous = previous.clone();
    all_previous.push(unrelated);
    let Plan::Write(amended) =
        plan(&stored, &text, &extraction, &all_previous, &run()).expect("plan")
    else {
        panic!("expected a write");
    };
    assert_eq!(
        (amended.observations, amended.superseded),
        (9, 11),
        "lab-7 is not ours"
    );
    let new_observations = resources(&amended, "Observation");
    assert!(new_observations.iter().all(|o| o["status"] == "amended"));
    let old_ids: Vec<&Value> = previous
        .iter()
        .map(|o| &o["identifier"][0]["value"])
        .collect();
    assert!(
        new_observations
            .iter()
            .all(|o| !old_ids.contains(&&o["identifier"][0]["value"]))
    );

    let puts: Vec<&Value> = entries(&amended)
        .iter()
        .filter(|e| {
            e["request"]["method"] == "PUT" && e["resource"]["resourceType"] == "Observation"
        })
        .collect();
    assert_eq!(puts.len(), 9);
    // each type takes its own superseded status
    let put_status = |kind: &str| {
        entries(&amended)
            .iter()
            .find(|e| e["request"]["method"] == "PUT" && e["resource"]["resourceType"] == kind)
            .map(|e| e["resource"]["status"].clone())
    };
    assert_eq!(put_status("ServiceRequest"), Some(json!("revoked")));
    assert_eq!(put_status("DetectedIssue"), Some(json!("entered-in-error")));
    for (put, old) in puts.iter().zip(&previous) {
        assert_eq!(
            put["request"]["url"],
            format!("Observation/{}", old["id"].as_str().expect("id"))
        );
        assert_eq!(put["request"]["ifMatch"], "W/\"1\"");
        let body = &put["resource"];
        assert_eq!(body["status"], "entered-in-error");
        assert!(
            body["note"][0]["text"]
                .as_str()
                .expect("note")
                .starts_with("Superseded")
        );
        assert_eq!(body["identifier"], old["identifier"]);
        assert_eq!(body["code"], old["code"]);
    }
    let provenance = resources(&amended, "Provenance")[0];
    let entities = provenance["entity"].as_array().expect("entities");
    assert_eq!(entities.len(), 12);
    assert_eq!(entities[1]["role"], "revision");
    assert_eq!(
        entities[1]["what"]["reference"],
        "Observation/obs-0/_history/1"
    );
    assert_eq!(provenance["target"].as_array().expect("targets").len(), 23);

    let updated = report_put(&amended);
    let result = updated["result"].as_array().expect("result");
    assert_eq!(result.len(), 19, "old and new references kept");
    assert_eq!(
        result[..10],
        stored["result"].as_array().expect("result")[..]
    );
    let tags = updated["meta"]["tag"].as_array().expect("tags");
    assert_eq!(
        tags.iter().filter(|t| t["system"] == TAG_SYSTEM).count(),
        1,
        "tag replaced"
    );
}

#[test]
fn withdrawn_report_only_supersedes() {
    let set = write_set(&report(), &[]);
    let (mut stored, previous) = after_write(&set, "4");
    stored["status"] = json!("entered-in-error");
    stored["meta"]["versionId"] = json!("5");
    let text = ReportText {
        text: format!("{TEXT} "),
        ..report_text()
    };
    let c = codes();
    let extraction = extraction(&text.text, &c);
    let Plan::Write(set) = plan(&stored, &text, &extraction, &previous, &run()).expect("plan")
    else {
        panic!("expected a write");
    };
    assert_eq!((set.observations, set.superseded), (0, 11));
    assert_eq!(report_put(&set)["result"], stored["result"]);
}

#[test]
fn planning_is_deterministic() {
    let a = write_set(&report(), &[]);
    let b = write_set(&report(), &[]);
    assert_eq!(
        serde_json::to_string(&a.bundle).ok(),
        serde_json::to_string(&b.bundle).ok()
    );
}

#[test]
fn malformed_reports_are_errors_not_panics() {
    let c = codes();
    let parsed = extraction(TEXT, &c);
    let cases = [
        ("no id", {
            let mut r = report();
            r.as_object_mut().map(|o| o.remove("id"));
            r
        }),
        ("no version", {
            let mut r = report();
            r["meta"].as_object_mut().map(|o| o.remove("versionId"));
            r
        }),
        ("bad status", {
            let mut r = report();
            r["status"] = json!(7);
            r
        }),
        (
            "not a report",
            json!({"resourceType": "Observation", "id": "x"}),
        ),
        ("not an object", json!([1, 2])),
        ("result not an array", {
            let mut r = report();
            r["result"] = json!({"reference": "x"});
            r
        }),
    ];
    for (name, bad) in cases {
        let outcome = plan(&bad, &report_text(), &parsed, &[], &run());
        assert!(
            matches!(outcome, Err(PlanError::Map(_) | PlanError::Report { .. })),
            "{name}: {outcome:?}"
        );
        assert!(
            !outcome
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .is_empty()
        );
    }
    // previous Observation of ours without a version: an error naming it
    let set = write_set(&report(), &[]);
    let (mut stored, mut previous) = after_write(&set, "4");
    stored["meta"]["versionId"] = json!("5");
    previous[0]["meta"] = json!({});
    let text = ReportText {
        text: format!("{TEXT} "),
        ..report_text()
    };
    let amended = extraction(&text.text, &c);
    let err = plan(&stored, &text, &amended, &previous, &run()).expect_err("no version");
    assert!(err.to_string().contains("meta.versionId"), "{err}");
}

#[test]
fn json_patch_alternative() {
    let set = write_set(&report(), &[]);
    let resolved: Vec<String> = (0..set.results.len())
        .map(|i| format!("Observation/n{i}"))
        .collect();
    let patch = report_patch(&report(), &resolved, &set.tag).expect("patch");
    let ops = patch.as_array().expect("ops");
    assert_eq!(
        ops[0],
        json!({"op": "test", "path": "/meta/versionId", "value": "3"})
    );
    assert_eq!(
        ops[1],
        json!({"op": "add", "path": "/result/-", "value": {"reference": "Observation/n0"}})
    );
    assert_eq!(ops.len(), 1 + 9 + 1);
    assert_eq!(
        ops[10],
        json!({"op": "add", "path": "/meta/tag/-", "value": set.tag})
    );
    let without = set.bundle_without_report();
    assert_eq!(
        without["entry"].as_array().map(Vec::len),
        Some(entries(&set).len() - 1)
    );
    assert!(
        without["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .all(|e| e["resource"]["resourceType"] != "DiagnosticReport")
    );
}

/// Writes the bundle planned for [`REPORT`] (or the report JSON in the file
/// `REPORTSPLIT_DUMP_REPORT` names, e.g. one read from a server) to the file
/// `REPORTSPLIT_DUMP_BUNDLE` names, to post it to a real server by hand.
#[test]
fn dump_bundle_when_asked() {
    let Ok(path) = std::env::var("REPORTSPLIT_DUMP_BUNDLE") else {
        return;
    };
    let source = match std::env::var("REPORTSPLIT_DUMP_REPORT") {
        Ok(file) => serde_json::from_str(&std::fs::read_to_string(file).expect("report file"))
            .expect("report JSON"),
        Err(_) => report(),
    };
    let set = write_set(&source, &[]);
    let pretty = serde_json::to_string_pretty(&set.bundle).expect("json");
    std::fs::write(path, pretty).expect("write dump");
}

/// A server that merged tags instead of replacing them leaves two
/// reportsplit tags: the update and the patch keep exactly one.
#[test]
fn duplicate_reportsplit_tags_are_collapsed() {
    let mut tagged = report();
    tagged["meta"]["tag"] = json!([
        {"system": TAG_SYSTEM, "code": "0.0.1:sha256:aa"},
        {"system": "http://example.org/site-tags", "code": "teaching"},
        {"system": TAG_SYSTEM, "code": "0.0.2:sha256:bb"},
    ]);
    let set = write_set(&tagged, &[]);
    let tags = &report_put(&set)["meta"]["tag"];
    assert_eq!(
        tags,
        &json!([set.tag, {"system": "http://example.org/site-tags", "code": "teaching"}])
    );
    let patch = report_patch(&tagged, &[], &set.tag).expect("patch");
    let ops = patch.as_array().expect("ops");
    assert_eq!(
        ops[1],
        json!({"op": "replace", "path": "/meta/tag/0", "value": set.tag})
    );
    assert_eq!(ops[2], json!({"op": "remove", "path": "/meta/tag/2"}));
    assert_eq!(ops.len(), 3);
}

/// preliminary → final with the same text: the Observations already written
/// get the new status; nothing is derived again.
#[test]
fn a_status_change_alone_restatuses_the_observations() {
    let mut preliminary = report();
    preliminary["status"] = json!("preliminary");
    let set = write_set(&preliminary, &[]);
    assert!(
        resources(&set, "Observation")
            .iter()
            .all(|o| o["status"] == "preliminary")
    );
    let (mut stored, previous) = after_write(&set, "4");
    stored["status"] = json!("final");
    let c = codes();
    let extraction = extraction(TEXT, &c);
    let Plan::Write(final_set) =
        plan(&stored, &report_text(), &extraction, &previous, &run()).expect("plan")
    else {
        panic!("expected a write");
    };
    assert_eq!(
        (
            final_set.observations,
            final_set.superseded,
            final_set.restatused
        ),
        (0, 0, 9),
        "the ServiceRequest and DetectedIssue keep their own status"
    );
    let puts: Vec<&Value> = entries(&final_set)
        .iter()
        .filter(|e| {
            e["request"]["method"] == "PUT" && e["resource"]["resourceType"] != "DiagnosticReport"
        })
        .collect();
    assert_eq!(puts.len(), 9);
    for (put, old) in puts.iter().zip(&previous) {
        assert_eq!(put["request"]["method"], "PUT");
        let mut expected = old.clone();
        expected["status"] = json!("final");
        assert_eq!(put["resource"], expected, "only the status changes");
    }
    assert_eq!(report_put(&final_set)["result"], stored["result"]);
    let code = report_put(&final_set)["meta"]["tag"][1]["code"]
        .as_str()
        .expect("tag")
        .to_owned();
    assert!(code.starts_with("0.1.0:final:sha256:"), "{code}");

    // and once written, the report is current
    let mut tagged = report_put(&final_set).clone();
    tagged["meta"]["versionId"] = json!("5");
    let again = plan(&tagged, &report_text(), &extraction, &previous, &run()).expect("plan");
    assert_eq!(again, Plan::Current);
}

/// A withdrawn report that comes back (entered-in-error → final, same text)
/// is derived again: its old Observations were superseded.
#[test]
fn a_reinstated_report_is_derived_again() {
    let set = write_set(&report(), &[]);
    let (mut stored, previous) = after_write(&set, "4");
    stored["status"] = json!("entered-in-error");
    let c = codes();
    let extraction = extraction(TEXT, &c);
    let Plan::Write(withdrawn) =
        plan(&stored, &report_text(), &extraction, &previous, &run()).expect("plan")
    else {
        panic!("expected a write");
    };
    assert_eq!((withdrawn.observations, withdrawn.superseded), (0, 11));
    let mut gone = report_put(&withdrawn).clone();
    gone["meta"]["versionId"] = json!("5");
    gone["status"] = json!("final");
    let superseded: Vec<Value> = previous
        .iter()
        .map(|o| {
            let mut o = o.clone();
            o["status"] = json!("entered-in-error");
            o
        })
        .collect();
    let Plan::Write(back) =
        plan(&gone, &report_text(), &extraction, &superseded, &run()).expect("plan")
    else {
        panic!("expected a write");
    };
    assert_eq!(
        (back.observations, back.superseded, back.restatused),
        (9, 0, 0)
    );
}

fn rich_set(report: &Value) -> WriteSet {
    let c = codes();
    let extraction = rich_extraction(RICH_TEXT, &c);
    let report_text = ReportText {
        text: RICH_TEXT.to_owned(),
        element: "DiagnosticReport.presentedForm[0]".into(),
        headerless: SectionKind::Other,
    };
    match plan(report, &report_text, &extraction, &[], &run()).expect("plan") {
        Plan::Write(set) => set,
        Plan::Current => panic!("expected a write"),
    }
}

fn derivation_span(element: &Value) -> (u64, u64) {
    let parts = &element["extension"][0];
    assert_eq!(
        parts["url"],
        "http://hl7.org/fhir/StructureDefinition/derivation-reference"
    );
    let int = |i: usize| parts["extension"][i]["valueInteger"].as_u64().expect("int");
    (int(2), int(2) + int(3))
}

fn char_span(text: &str, needle: &str) -> (u64, u64) {
    let (start, end) = span(text, needle, 0);
    (start as u64, end as u64)
}

#[test]
fn descriptors_further_sites_and_suggested_diagnoses() {
    let set = rich_set(&report());
    let observations = resources(&set, "Observation");
    let by_term = |term: &str| {
        *observations
            .iter()
            .find(|o| o["code"]["text"] == term)
            .unwrap_or_else(|| panic!("an Observation for {term}"))
    };
    let mass = by_term("mass");
    // bodySite = the first site, with its span
    assert_eq!(mass["bodySite"]["text"], "right upper lobe");
    assert_eq!(mass["bodySite"]["coding"][0]["code"], "45653009");
    assert_eq!(
        derivation_span(&mass["bodySite"]),
        char_span(RICH_TEXT, "right upper lobe")
    );
    let components = mass["component"].as_array().expect("components");
    let with_code = |code: &str| -> Vec<&Value> {
        components
            .iter()
            .filter(|c| c["code"]["coding"][0]["code"] == code)
            .collect()
    };
    // the second site: a Finding site component, uncoded here, with its span
    let [site] = with_code("363698007")[..] else {
        panic!("one finding-site component: {components:?}")
    };
    assert_eq!(
        site["code"]["coding"][0]["system"],
        "http://snomed.info/sct"
    );
    assert_eq!(site["valueCodeableConcept"], json!({"text": "hilum"}));
    assert_eq!(derivation_span(site), char_span(RICH_TEXT, "hilum"));
    // one component per descriptor: axis code, words as written, span
    let [margin] = with_code("descriptor-margin")[..] else {
        panic!("one margin component")
    };
    assert_eq!(
        margin["code"]["coding"][0]["system"],
        "urn:reportsplit:codes"
    );
    assert_eq!(margin["valueCodeableConcept"]["text"], "Spiculated");
    assert_eq!(derivation_span(margin), char_span(RICH_TEXT, "Spiculated"));
    let [enhancement] = with_code("descriptor-enhancement")[..] else {
        panic!("one enhancement component")
    };
    assert_eq!(enhancement["valueCodeableConcept"]["text"], "rim-enhancing");
    assert_eq!(
        derivation_span(enhancement),
        char_span(RICH_TEXT, "rim-enhancing")
    );
    // the mass suggests nothing and is suggested by nothing: only the study
    assert_eq!(
        mass["derivedFrom"],
        json!([{"reference": "ImagingStudy/st-1"}])
    );

    // the diagnosis is derived from the observation offered for it
    let thickening_url = entries(&set)
        .iter()
        .find(|e| e["resource"]["code"]["text"] == "Wall thickening")
        .and_then(|e| e["fullUrl"].as_str())
        .expect("thickening fullUrl");
    assert!(thickening_url.starts_with("urn:uuid:"));
    let colitis = by_term("colitis");
    assert_eq!(
        colitis["derivedFrom"],
        json!([{"reference": "ImagingStudy/st-1"}, {"reference": thickening_url}])
    );
    let keys: Vec<&str> = colitis
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let at = |k: &str| keys.iter().position(|x| *x == k).expect(k);
    assert!(at("bodySite") < at("derivedFrom") && at("derivedFrom") < at("component"));
    assert_eq!(
        by_term("Wall thickening")["derivedFrom"],
        json!([{"reference": "ImagingStudy/st-1"}])
    );

    // a report without studies: derivedFrom holds the observation only
    let mut bare = report();
    bare.as_object_mut().expect("object").remove("imagingStudy");
    let set = rich_set(&bare);
    let colitis = resources(&set, "Observation")
        .into_iter()
        .find(|o| o["code"]["text"] == "colitis")
        .expect("colitis");
    assert_eq!(
        colitis["derivedFrom"].as_array().map(Vec::len),
        Some(1),
        "{colitis}"
    );
}

#[test]
fn descriptors_and_suggests_are_part_of_the_identity() {
    let c = codes();
    let report = report();
    let report_text = ReportText {
        text: RICH_TEXT.to_owned(),
        element: "DiagnosticReport.presentedForm[0]".into(),
        headerless: SectionKind::Other,
    };
    let identifiers = |extraction: &reportsplit_split::Extraction<'_>| -> Vec<String> {
        match plan(&report, &report_text, extraction, &[], &run()).expect("plan") {
            Plan::Write(set) => resources(&set, "Observation")
                .iter()
                .map(|o| o["identifier"][0]["value"].as_str().expect("id").to_owned())
                .collect(),
            Plan::Current => panic!("expected a write"),
        }
    };
    let base = rich_extraction(RICH_TEXT, &c);
    let first = identifiers(&base);
    assert_eq!(
        first,
        identifiers(&rich_extraction(RICH_TEXT, &c)),
        "deterministic"
    );

    let mut other_axis = rich_extraction(RICH_TEXT, &c);
    other_axis.findings[0].descriptors[0].axis = reportsplit_split::Axis::Shape;
    assert_ne!(
        first[0],
        identifiers(&other_axis)[0],
        "a descriptor read differently"
    );

    let mut fewer_sites = rich_extraction(RICH_TEXT, &c);
    fewer_sites.findings[0].body_site.truncate(1);
    assert_ne!(first[0], identifiers(&fewer_sites)[0], "a site dropped");

    let mut unlinked = rich_extraction(RICH_TEXT, &c);
    unlinked.findings[1].suggests.clear();
    let changed = identifiers(&unlinked);
    assert_eq!(first[1], changed[1], "the observation itself is unchanged");
    assert_ne!(
        first[2], changed[2],
        "the diagnosis is no longer derived from it"
    );

    let mut dangling = rich_extraction(RICH_TEXT, &c);
    dangling.findings[1].suggests = vec![7];
    let err = plan(&report, &report_text, &dangling, &[], &run()).unwrap_err();
    assert!(err.to_string().contains("suggests finding 7"), "{err}");
}

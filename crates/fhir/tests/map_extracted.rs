//! The mapping over what the real extractor produces, on reports written for
//! this test: invariants that must hold whatever the extractor finds.

use std::collections::HashSet;
use std::sync::OnceLock;

use reportsplit_fhir::map::{RunInfo, char_slice};
use reportsplit_fhir::plan::{Plan, WriteSet, plan};
use reportsplit_fhir::text::ReportText;
use reportsplit_split::{Lexicon, SectionKind, extract_as};
use serde_json::{Value, json};

const REPORTS: &[&str] = &[
    "FINDINGS: There is a new 8 mm nodule in the right lower lobe. No pleural effusion or \
     pneumothorax.\nIMPRESSION:\n1. New 8 mm right lower lobe nodule. Follow-up CT in 3 months is \
     recommended.\n2. No effusion.\n",
    "EXAM: CT ABDOMEN AND PELVIS WITH CONTRAST. HISTORY: Rule out appendicitis. FINDINGS: ,The \
     appendix is dilated to 1.20 cm with periappendiceal fat stranding.,No free air.,Small left \
     renal cyst measuring 2.1 x 1.8 x 1.0 cm, stable.,IMPRESSION: ,Acute appendicitis.,",
    "IMPRESSION: Large right pneumothorax with mediastinal shift, concerning for tension. Findings \
     communicated to Dr. Ämelie Ñúñez at 14:05.",
    "FINDINGS:\nLUNGS: Left lower lobe consolidation.\nPLEURA: No effusion.\nIMPRESSION:\n\
     1) Right lower lobe pneumonia.\n2) Status post cholecystectomy.",
    "Normal chest radiograph.",
    "FINDINGS: Bowel wall thickening and fat stranding of the sigmoid colon, suggestive of \
     colitis. A spiculated hypoechoic mass at 2 o'clock in the left breast. A rim-enhancing fluid \
     collection in the right lower quadrant measures 3.2 x 2.1 cm, suggestive of an abscess.",
];

fn report(n: usize) -> Value {
    json!({
        "resourceType": "DiagnosticReport",
        "id": format!("x{n}"),
        "meta": {"versionId": "1", "lastUpdated": "2026-11-20T10:00:00.000+00:00"},
        "status": "final",
        "code": {"text": "Imaging report"},
        "subject": {"reference": "Patient/p"},
        "effectivePeriod": {"start": "2026-11-20T09:00:00+01:00"},
    })
}

fn run() -> RunInfo {
    RunInfo {
        extractor_version: "0.1.0".into(),
        recorded: time::macros::datetime!(2026-11-28 06:00 UTC),
        writes: Default::default(),
    }
}

fn plan_text(n: usize, text: &str, headerless: SectionKind) -> (WriteSet, usize) {
    static LEXICON: OnceLock<Lexicon> = OnceLock::new();
    let lexicon = LEXICON.get_or_init(Lexicon::builtin);
    let extraction = extract_as(text, lexicon, headerless);
    let report_text = ReportText {
        text: text.to_owned(),
        element: "DiagnosticReport.presentedForm[0]".into(),
        headerless,
    };
    match plan(&report(n), &report_text, &extraction, &[], &run()).expect("plan") {
        Plan::Write(set) => (set, extraction.findings.len()),
        Plan::Current => panic!("untagged report planned as current"),
    }
}

/// Every derivation-reference in `value` (recursively), as (offset, length).
fn evidence_spans(value: &Value, out: &mut Vec<(u64, u64, String)>, at: &str) {
    match value {
        Value::Object(map) => {
            if map.get("url").and_then(Value::as_str)
                == Some("http://hl7.org/fhir/StructureDefinition/derivation-reference")
            {
                let part = |name: &str| {
                    map["extension"]
                        .as_array()
                        .and_then(|parts| parts.iter().find(|p| p["url"] == name))
                        .and_then(|p| p["valueInteger"].as_u64())
                        .expect("offset/length")
                };
                out.push((part("offset"), part("length"), at.to_owned()));
            }
            for (key, child) in map {
                evidence_spans(child, out, &format!("{at}/{key}"));
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                evidence_spans(child, out, &format!("{at}/{i}"));
            }
        }
        _ => {}
    }
}

#[test]
fn invariants_over_extracted_reports() {
    for (n, text) in REPORTS.iter().enumerate() {
        let (set, findings) = plan_text(n, text, SectionKind::Other);
        let entries = set.bundle["entry"].as_array().expect("entries");
        let observations: Vec<&Value> = entries
            .iter()
            .filter(|e| e["resource"]["resourceType"] == "Observation")
            .collect();
        assert_eq!(observations.len(), set.observations, "report {n}");
        assert!(
            set.findings <= findings,
            "report {n}: at most one Observation per finding"
        );
        if set.observations == 0 {
            // nothing derived (headerless text without findings): only the tag is written
            assert_eq!(entries.len(), 1, "report {n}");
            assert_eq!(entries[0]["request"]["method"], "PUT");
            continue;
        }

        let urls: HashSet<&str> = entries
            .iter()
            .filter_map(|e| e["fullUrl"].as_str())
            .collect();
        let creates = entries
            .iter()
            .filter(|e| e["request"]["method"] == "POST")
            .count();
        assert_eq!(
            urls.len(),
            creates,
            "report {n}: every create has its own fullUrl"
        );
        assert!(
            urls.iter().all(|u| u.starts_with("urn:uuid:")),
            "report {n}"
        );
        let identifiers: HashSet<&str> = observations
            .iter()
            .filter_map(|e| e["request"]["ifNoneExist"].as_str())
            .collect();
        assert_eq!(
            identifiers.len(),
            observations.len(),
            "report {n}: identifiers unique"
        );

        let text_chars = text.chars().count() as u64;
        for entry in &observations {
            let resource = &entry["resource"];
            for member in resource["hasMember"].as_array().into_iter().flatten() {
                let target = member["reference"].as_str().expect("member");
                assert!(
                    urls.contains(target),
                    "report {n}: dangling member {target}"
                );
            }
            // a diagnosis is derived from other Observations of the same transaction
            for source in resource["derivedFrom"].as_array().into_iter().flatten() {
                let target = source["reference"].as_str().expect("derivedFrom");
                if target.starts_with("urn:uuid:") {
                    assert!(
                        urls.contains(target) && entry["fullUrl"] != target,
                        "report {n}: dangling or self derivedFrom {target}"
                    );
                }
            }
            let mut spans = Vec::new();
            evidence_spans(resource, &mut spans, "");
            assert!(
                !spans.is_empty(),
                "report {n}: Observation without evidence"
            );
            for (offset, length, at) in spans {
                assert!(
                    offset + length <= text_chars,
                    "report {n}: {at} out of the text"
                );
                let evidence = char_slice(text, offset as usize, (offset + length) as usize)
                    .expect("evidence slices the text");
                if at == "/code/extension/0" {
                    assert_eq!(
                        resource["code"]["text"].as_str(),
                        Some(evidence),
                        "report {n}"
                    );
                }
                // bodySite, finding-site and descriptor components: the words, as written
                let words = if at == "/bodySite/extension/0" {
                    resource["bodySite"]["text"].as_str()
                } else if let Some(index) = at
                    .strip_prefix("/component/")
                    .and_then(|rest| rest.strip_suffix("/extension/0"))
                {
                    resource["component"][index.parse::<usize>().expect("index")]
                        ["valueCodeableConcept"]["text"]
                        .as_str()
                } else {
                    None
                };
                if let Some(words) = words {
                    assert_eq!(words, evidence.trim(), "report {n}: {at}");
                }
                if at.is_empty()
                    && let Some(statement) = resource["valueString"].as_str()
                    && resource["code"]["coding"][0]["code"] != "laterality-discrepancy"
                {
                    assert_eq!(statement, evidence.trim(), "report {n}");
                }
            }
            assert_eq!(
                resource["effectivePeriod"],
                json!({"start": "2026-11-20T09:00:00+01:00"})
            );
        }
        let provenance = entries
            .iter()
            .find(|e| e["resource"]["resourceType"] == "Provenance")
            .expect("provenance");
        let targets: Vec<&str> = provenance["resource"]["target"]
            .as_array()
            .expect("targets")
            .iter()
            .filter_map(|t| t["reference"].as_str())
            .collect();
        // every created resource: the Observations (the report's `result`),
        // then the other owned types (follow-ups, detected issues)
        let created: Vec<&str> = entries
            .iter()
            .filter(|e| {
                e["request"]["method"] == "POST"
                    && !["Device", "Provenance"]
                        .contains(&e["resource"]["resourceType"].as_str().unwrap_or(""))
            })
            .filter_map(|e| e["fullUrl"].as_str())
            .collect();
        assert_eq!(targets, created);
        assert_eq!(
            targets[..set.results.len()],
            set.results.iter().map(String::as_str).collect::<Vec<_>>()
        );

        let (again, _) = plan_text(n, text, SectionKind::Other);
        assert_eq!(again, set, "report {n}: deterministic");
    }
}

#[test]
fn a_lone_conclusion_is_an_impression() {
    let (set, _) = plan_text(
        9,
        "No acute cardiopulmonary abnormality.",
        SectionKind::Impression,
    );
    let statements: Vec<&Value> = set.bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["code"]["coding"][0]["code"] == "121073")
        .collect();
    assert_eq!(statements.len(), 1);
    assert_eq!(
        statements[0]["valueString"],
        "No acute cardiopulmonary abnormality."
    );
}

#[test]
fn a_hedged_finding_carries_its_certainty_and_kind_of_doubt() {
    let (set, _) = plan_text(
        10,
        "IMPRESSION: Right basilar opacity concerning for pneumonia. Probable small left effusion.",
        SectionKind::Other,
    );
    let finding = |display: &str| -> Vec<(String, Value)> {
        let resource = set.bundle["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| &e["resource"])
            .find(|r| r["code"]["coding"][0]["display"] == display)
            .unwrap_or_else(|| panic!("no {display} Observation"));
        assert_eq!(
            resource["valueCodeableConcept"]["coding"][0]["code"],
            "60022001"
        );
        resource["component"]
            .as_array()
            .expect("components")
            .iter()
            .map(|c| {
                let code = c["code"]["coding"][0]["code"].as_str().expect("code");
                let value = c
                    .get("valueQuantity")
                    .map(|q| q["value"].clone())
                    .unwrap_or_else(|| c["valueCodeableConcept"]["coding"][0]["code"].clone());
                (code.to_owned(), value)
            })
            .collect()
    };
    for (display, kind) in [
        ("Pneumonia", "hedge-suspicion"),
        ("Pleural effusion", "hedge-probability"),
    ] {
        let components = finding(display);
        for expected in [
            ("111012".to_owned(), json!(75)),
            ("hedge".into(), json!(kind)),
        ] {
            assert!(components.contains(&expected), "{display}: {components:?}");
        }
    }
}

/// The report of the example in docs/fhir-model.md.
const EXAMPLE: &str = "IMPRESSION: New 8.0 mm nodule in the right lower lobe.";

/// Writes the transaction for [`EXAMPLE`] to the file `REPORTSPLIT_EXAMPLE_BUNDLE`
/// names (docs/fhir-model.md shows it).
#[test]
fn write_example_when_asked() {
    let Ok(path) = std::env::var("REPORTSPLIT_EXAMPLE_BUNDLE") else {
        return;
    };
    let (set, _) = plan_text(0, EXAMPLE, SectionKind::Other);
    let pretty = serde_json::to_string_pretty(&set.bundle).expect("json");
    std::fs::write(path, pretty).expect("write example");
}

/// Every string value in the planned bundle is a valid FHIR string: not
/// empty, no control characters but tab, CR, LF.
fn assert_fhir_strings(value: &Value, at: &str) {
    match value {
        Value::String(s) => {
            assert!(!s.trim().is_empty(), "empty string at {at}");
            assert!(
                !s.chars()
                    .any(|c| c < ' ' && !matches!(c, '\t' | '\n' | '\r')),
                "control character at {at}: {s:?}"
            );
        }
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| assert_fhir_strings(v, &format!("{at}/{k}"))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| assert_fhir_strings(v, &format!("{at}/{i}"))),
        _ => {}
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Whatever the text, planning never panics and what it writes is valid.
    #[test]
    fn any_text_plans_to_valid_strings(
        body in "(IMPRESSION: |FINDINGS: |1\\. |2\\) |- )?([a-zA-Z0-9 .,:;()\\-\u{0}-\u{1f}ñ✓]{0,40}(nodule|effusion|pneumothorax|mass|left|right|no |8 mm|1\\.50 x 2 cm|stable|new)){0,6}"
    ) {
        let (set, _) = plan_text(1, &body, SectionKind::Other);
        assert_fhir_strings(&set.bundle, "");
    }
}

/// The assessments of a report become Observations: code = the system,
/// value = the category (coded where verified, else a reportsplit code; the
/// words as text), laterality and body site as on findings, members = the
/// findings of the same sentence (or, alone on a line, of the same side),
/// and each is in the report's `result`.
#[test]
fn assessments_become_coded_observations_with_their_findings() {
    let text = "FINDINGS: Spiculated mass in the left breast at 2 o'clock, BI-RADS 5. \
                Small cyst in the right breast.\n\
                IMPRESSION: Right breast: BI-RADS 2.\n\
                LIVER: Arterial enhancing observation in segment 7, LI-RADS 5.";
    let (set, _) = plan_text(40, text, SectionKind::Findings);
    let entries = set.bundle["entry"].as_array().expect("entries");
    let observations: Vec<&Value> = entries
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Observation")
        .collect();
    let url_of = |needle: &str| -> String {
        observations
            .iter()
            .find(|o| {
                o["resource"]["identifier"][0]["value"]
                    .as_str()
                    .is_some_and(|v| v.contains("/finding/"))
                    && o["resource"]["code"]["text"]
                        .as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case(needle))
            })
            .and_then(|o| o["fullUrl"].as_str())
            .unwrap_or_else(|| {
                let terms: Vec<&Value> = observations
                    .iter()
                    .map(|o| &o["resource"]["code"]["text"])
                    .collect();
                panic!("no finding Observation for {needle} among {terms:?}")
            })
            .to_owned()
    };
    let assessments: Vec<&Value> = observations
        .iter()
        .map(|o| &o["resource"])
        .filter(|r| {
            r["identifier"][0]["value"]
                .as_str()
                .is_some_and(|v| v.contains("/assessment/"))
        })
        .collect();
    assert_eq!(assessments.len(), 3, "{assessments:#?}");

    let birads5 = assessments
        .iter()
        .find(|a| a["valueCodeableConcept"]["text"] == "BI-RADS 5")
        .expect("BI-RADS 5");
    assert_eq!(birads5["status"], "final");
    assert_eq!(birads5["category"][0]["coding"][0]["code"], "imaging");
    assert_eq!(
        birads5["code"]["coding"][0]["system"],
        "http://snomed.info/sct"
    );
    assert_eq!(birads5["code"]["coding"][0]["code"], "146611000146107");
    assert_eq!(
        birads5["valueCodeableConcept"]["coding"][0]["code"],
        "397145000"
    );
    assert_eq!(
        birads5["hasMember"],
        json!([{"reference": url_of("Spiculated mass")}])
    );
    let side = birads5["component"]
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|c| c["code"]["coding"][0]["code"] == "272741003")
        })
        .expect("laterality component");
    assert_eq!(side["valueCodeableConcept"]["coding"][0]["code"], "7771000");
    assert_eq!(birads5["subject"], json!({"reference": "Patient/p"}));

    // Alone in its sentence: the findings of its side (the right cyst).
    let birads2 = assessments
        .iter()
        .find(|a| a["valueCodeableConcept"]["text"] == "BI-RADS 2")
        .expect("BI-RADS 2");
    assert_eq!(
        birads2["hasMember"],
        json!([{"reference": url_of("Small cyst")}])
    );

    // No verified category code: a reportsplit code, never a guessed id.
    let lirads = assessments
        .iter()
        .find(|a| a["code"]["coding"][0]["code"] == "assessment-lirads")
        .expect("LI-RADS");
    let value = &lirads["valueCodeableConcept"]["coding"][0];
    assert_eq!(value["system"], "urn:reportsplit:codes");
    assert_eq!(value["code"], "assessment-lirads-lr-5");
    assert_eq!(value["display"], "LI-RADS LR-5");

    // Every assessment is in the report's result.
    let report = &entries[set.report_entry]["resource"];
    let results: HashSet<&str> = report["result"]
        .as_array()
        .expect("result")
        .iter()
        .filter_map(|r| r["reference"].as_str())
        .collect();
    for entry in &observations {
        let url = entry["fullUrl"].as_str().expect("fullUrl");
        assert!(results.contains(url), "{url} not in result");
    }
}

fn plan_unstored(report: &Value, text: &str) -> WriteSet {
    let lexicon = Lexicon::builtin();
    let extraction = extract_as(text, &lexicon, SectionKind::Findings);
    let report_text = ReportText {
        text: text.to_owned(),
        element: "DiagnosticReport.presentedForm[0]".into(),
        headerless: SectionKind::Findings,
    };
    match reportsplit_fhir::plan::plan_any(report, &report_text, &extraction, &[], &run())
        .expect("plan")
    {
        Plan::Write(set) => set,
        Plan::Current => panic!("an unstored report planned as current"),
    }
}

const UNSTORED_TEXT: &str = "FINDINGS: New 8 mm nodule in the right lower lobe.";

/// A report without `meta.versionId` (an interface engine's, not stored
/// yet): `plan` refuses it, `plan_any` creates it in the same transaction,
/// conditionally on its identifier, with every new resource referring to
/// its urn:uuid; the plan is reproducible, so a replay matches everything.
#[test]
fn an_unstored_report_is_created_with_its_observations() {
    let mut report = report(50);
    report.as_object_mut().expect("object").remove("meta");
    report["identifier"] = json!([{"system": "http://example.org/accession", "value": "A|1"}]);

    let lexicon = Lexicon::builtin();
    let extraction = extract_as(UNSTORED_TEXT, &lexicon, SectionKind::Findings);
    let report_text = ReportText {
        text: UNSTORED_TEXT.to_owned(),
        element: "DiagnosticReport.presentedForm[0]".into(),
        headerless: SectionKind::Findings,
    };
    let refused = plan(&report, &report_text, &extraction, &[], &run()).expect_err("no version");
    assert!(refused.to_string().contains("cannot be updated safely"));

    let set = plan_unstored(&report, UNSTORED_TEXT);
    assert_eq!(set, plan_unstored(&report, UNSTORED_TEXT), "reproducible");
    let entries = set.bundle["entry"].as_array().expect("entries");
    let created = &entries[set.report_entry];
    assert_eq!(set.report_entry, entries.len() - 1);
    let report_url = created["fullUrl"].as_str().expect("report fullUrl");
    assert!(report_url.starts_with("urn:uuid:"));
    assert_eq!(
        created["request"],
        json!({"method": "POST", "url": "DiagnosticReport",
               "ifNoneExist": "identifier=http://example.org/accession|A\\|1"})
    );
    assert!(
        created["resource"].get("id").is_none(),
        "the server assigns the id"
    );
    assert_eq!(created["resource"]["identifier"], report["identifier"]);
    assert_eq!(
        created["resource"]["result"].as_array().map(Vec::len),
        Some(set.observations)
    );
    let mut observations = 0;
    for entry in &entries[..set.report_entry] {
        let resource = &entry["resource"];
        match resource["resourceType"].as_str() {
            Some("Observation") => {
                observations += 1;
                assert_eq!(
                    resource["extension"][0]["extension"][0]["valueReference"]["reference"],
                    report_url,
                    "evidence points at the report created"
                );
                let identifier = resource["identifier"][0]["value"].as_str().expect("id");
                assert!(identifier.contains("/new/"), "{identifier}");
                assert!(entry["request"]["ifNoneExist"].is_string());
            }
            Some("Provenance") => {
                assert_eq!(resource["entity"][0]["what"]["reference"], report_url);
                assert!(
                    entry["request"]["ifNoneExist"]
                        .as_str()
                        .is_some_and(|c| c.starts_with("target:Observation.identifier=")),
                    "{entry}"
                );
            }
            Some("Device") => {}
            // follow-ups and discrepancies: conditional, keyed like the Observations
            Some("ServiceRequest" | "DetectedIssue") => {
                let identifier = resource["identifier"][0]["value"].as_str().expect("id");
                assert!(identifier.contains("/new/"), "{identifier}");
                assert!(entry["request"]["ifNoneExist"].is_string());
            }
            other => panic!("unexpected entry {other:?}"),
        }
    }
    assert_eq!(observations, set.observations);
    assert!(observations > 0);

    // a versionId: today's If-Match update
    let stored = plan_unstored(&self::report(50), UNSTORED_TEXT);
    let last = &stored.bundle["entry"][stored.report_entry];
    assert_eq!(last["request"]["method"], "PUT");
    assert_eq!(last["request"]["ifMatch"], "W/\"1\"");
}

/// Without a business identifier nothing can be matched on replay: every
/// create is a plain POST (a replayed bundle duplicates, as documented).
#[test]
fn an_unstored_report_without_identifier_is_created_plainly() {
    let mut report = report(51);
    let object = report.as_object_mut().expect("object");
    object.remove("meta");
    object.remove("id");
    let set = plan_unstored(&report, UNSTORED_TEXT);
    let entries = set.bundle["entry"].as_array().expect("entries");
    assert_eq!(
        entries[set.report_entry]["request"],
        json!({"method": "POST", "url": "DiagnosticReport"})
    );
    for entry in entries {
        let kind = entry["resource"]["resourceType"].as_str();
        if kind != Some("Device") {
            assert!(entry["request"].get("ifNoneExist").is_none(), "{entry}");
        }
    }
}

/// The resource types of a plan's bundle other than the Observations, the
/// Provenance, the Device and the report, under the `[write]` switches `writes`.
fn optional_types(text: &str, writes: reportsplit_fhir::map::Writes) -> Vec<String> {
    let lexicon = Lexicon::builtin();
    let extraction = extract_as(text, &lexicon, SectionKind::Other);
    let report_text = ReportText {
        text: text.to_owned(),
        element: "DiagnosticReport.presentedForm[0]".into(),
        headerless: SectionKind::Other,
    };
    let run = RunInfo { writes, ..run() };
    let Plan::Write(set) = plan(&report(90), &report_text, &extraction, &[], &run).expect("plan")
    else {
        panic!("untagged report planned as current")
    };
    set.bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["resourceType"].as_str())
        .filter(|t| {
            !matches!(
                *t,
                "Observation" | "Provenance" | "Device" | "DiagnosticReport"
            )
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_write_switches_choose_the_critical_resources() {
    use reportsplit_fhir::map::Writes;
    use reportsplit_fhir::map::critical::{CriticalWrites, Unconfirmed};
    let uncalled = "IMPRESSION: Acute appendicitis.";
    let called = "IMPRESSION: Acute appendicitis. Discussed with Dr. Ruiz at 11:20.";
    let on = Writes::default();
    assert_eq!(optional_types(uncalled, on), ["Flag"]);
    assert_eq!(optional_types(called, on), ["Communication"]);
    let preparation = Writes {
        critical: CriticalWrites {
            communications: true,
            unconfirmed: Some(Unconfirmed::Communication),
        },
        ..on
    };
    assert_eq!(optional_types(uncalled, preparation), ["Communication"]);
    let off = Writes {
        critical: CriticalWrites {
            communications: false,
            unconfirmed: None,
        },
        ..on
    };
    assert!(optional_types(uncalled, off).is_empty());
    assert!(optional_types(called, off).is_empty());
    // No critical result: nothing, whatever the switches.
    assert!(optional_types("IMPRESSION: Normal chest.", on).is_empty());
}

#[test]
fn the_write_switches_choose_follow_ups_and_issues() {
    use reportsplit_fhir::map::Writes;
    let text = "FINDINGS: There is a moderate left pleural effusion.\n\
                IMPRESSION: Moderate right pleural effusion. \
                Recommend CT chest in 3 months.";
    let mut all = optional_types(text, Writes::default());
    all.sort();
    assert_eq!(all, ["DetectedIssue", "ServiceRequest"]);
    let none = Writes {
        service_requests: false,
        detected_issues: false,
        ..Writes::default()
    };
    assert!(optional_types(text, none).is_empty());
}

// scratch: not part of the deliverable
#[path = "map_plan.rs"]
#[allow(dead_code)]
mod fixture;
#[test]
fn scratch_amend() {
    use reportsplit::write::{plan, Plan};
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string("/tmp/rep-v3.json").unwrap()).unwrap();
    let previous: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string("/tmp/prev.json").unwrap()).unwrap();
    let text = format!("CT CHEST WITH CONTRAST\n{}", fixture::TEXT_PUB);
    let c = fixture::codes_pub();
    let ex = fixture::extraction_pub(&text, &c);
    let rt = reportsplit::pull::ReportText { text: text.clone(), element: "DiagnosticReport.presentedForm[0]".into(), headerless: reportsplit_split::SectionKind::Other };
    let Plan::Write(set) = plan(&report, &rt, &ex, &previous, &fixture::run_pub()).unwrap() else { panic!() };
    println!("obs {} sup {}", set.observations, set.superseded);
    std::fs::write("/tmp/bundle2.json", serde_json::to_string_pretty(&set.bundle).unwrap()).unwrap();
}

#[test]
#[ignore = "manual"]
fn whole_extract_throughput() {
    let Ok(path) = std::env::var("REPORTSPLIT_REPORTS") else { return };
    let all = std::fs::read_to_string(path).unwrap();
    let texts: Vec<&str> = all.split('\0').collect();
    let lexicon = reportsplit_split::Lexicon::builtin();
    let rounds = 10;
    let started = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        for t in &texts {
            n += reportsplit_split::extract(t, &lexicon).findings.len();
        }
    }
    let per = started.elapsed().as_secs_f64() / (texts.len() * rounds) as f64;
    println!("extract: {:.2} us/report, {:.0} reports/s ({n})", per * 1e6, 1.0 / per);
}

//! Throughput of the extraction core over whole reports (reports/s).
//!
//! Corpus, first that exists:
//! 1. the CSV file named by `REPORTSPLIT_BENCH_CORPUS` (Open-i format: the
//!    `findings` and `impression` columns make a report);
//! 2. the Open-i dev reports at ../../../shared/corpus/openi/openi_reports_dev.csv
//!    (relative to this crate);
//! 3. the project's own fixture reports, crates/split/tests/fixtures/**/*.txt.
//!
//! Reports whose findings and impression are both empty are left out (21 of
//! the 3,080 Open-i dev reports), so the figure is for real texts.
//!
//! `cargo bench -p reportsplit-split -- --warm-up-time 1 --measurement-time 5`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reportsplit_split::{Lexicon, extract};
use std::hint::black_box;
use std::path::{Path, PathBuf};

fn bench_extract(c: &mut Criterion) {
    let (source, reports) = corpus();
    assert!(!reports.is_empty(), "no reports to benchmark in {source}");
    eprintln!("benchmark corpus: {} reports from {source}", reports.len());
    let lexicon = Lexicon::builtin();
    let mut group = c.benchmark_group("extract");
    group.throughput(Throughput::Elements(reports.len() as u64));
    group.bench_function("reports", |b| {
        b.iter(|| {
            let mut findings = 0;
            for report in &reports {
                findings += extract(black_box(report), &lexicon).findings.len();
            }
            black_box(findings)
        })
    });
    group.finish();
}

fn corpus() -> (String, Vec<String>) {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let csv_candidates = std::env::var_os("REPORTSPLIT_BENCH_CORPUS")
        .map(PathBuf::from)
        .into_iter()
        .chain([crate_dir.join("../../../shared/corpus/openi/openi_reports_dev.csv")]);
    for path in csv_candidates {
        if let Ok(content) = std::fs::read_to_string(&path) {
            return (path.display().to_string(), openi_reports(&content));
        }
    }
    let fixtures = crate_dir.join("tests/fixtures");
    let mut reports = Vec::new();
    collect_txt(&fixtures, &mut reports);
    (fixtures.display().to_string(), reports)
}

fn collect_txt(dir: &Path, reports: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| Some(entry.ok()?.path()))
        .collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_txt(&path, reports);
        } else if path.extension().is_some_and(|ext| ext == "txt")
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            reports.push(text);
        }
    }
}

/// `FINDINGS: ...\nIMPRESSION: ...` per CSV row, as `reportsplit eval openi`
/// builds it.
fn openi_reports(content: &str) -> Vec<String> {
    let mut rows = parse_csv(content).into_iter();
    let Some(header) = rows.next() else {
        return Vec::new();
    };
    let column = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(findings), Some(impression)) = (column("findings"), column("impression")) else {
        return Vec::new();
    };
    rows.map(|row| {
        let part = |index: usize, header: &str| {
            row.get(index)
                .map(|body| body.trim())
                .filter(|body| !body.is_empty())
                .map(|body| format!("{header}: {body}"))
        };
        [part(findings, "FINDINGS"), part(impression, "IMPRESSION")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n")
    })
    .filter(|report| !report.is_empty())
    .collect()
}

/// RFC 4180 CSV: quoted fields may hold commas, newlines and `""`.
fn parse_csv(content: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = content.chars().peekable();
    while let Some(c) = chars.next() {
        match (in_quotes, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => in_quotes = false,
            (true, _) => field.push(c),
            (false, '"') => in_quotes = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, _) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

criterion_group!(benches, bench_extract);
criterion_main!(benches);

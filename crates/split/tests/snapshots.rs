//! Snapshot of the whole extraction of every report in tests/fixtures/ (all
//! written for this project). Review changes with `cargo insta review`, or
//! accept them with `INSTA_UPDATE=always cargo test -p reportsplit-split
//! --test snapshots` and read the diff before committing.

use std::path::Path;

use reportsplit_split::{Lexicon, extract};

#[test]
fn every_fixture_report() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap_or_else(|error| panic!("{}: {error}", fixtures.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 40,
        "expected at least 40 fixture reports, found {}",
        paths.len()
    );
    let lexicon = Lexicon::builtin();
    // Check every fixture and report all mismatches at once, as insta::glob! would.
    let failed: Vec<String> = paths
        .iter()
        .filter_map(|path| {
            let name = path.file_stem()?.to_string_lossy().into_owned();
            let text = std::fs::read_to_string(path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            let outcome = std::panic::catch_unwind(|| {
                insta::with_settings!({
                    description => text.as_str(),
                    omit_expression => true,
                    prepend_module_to_snapshot => false,
                }, {
                    insta::assert_json_snapshot!(name.as_str(), extract(&text, &lexicon));
                });
            });
            outcome.is_err().then_some(name)
        })
        .collect();
    assert!(failed.is_empty(), "snapshots differ for: {failed:?}");
}

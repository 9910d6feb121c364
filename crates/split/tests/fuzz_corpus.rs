//! The committed corpus of the `extract` fuzz target (fuzz/corpus/extract),
//! replayed through the target's own check on every `cargo test`: the
//! inputs that reached new code while fuzzing stay tested where cargo-fuzz
//! is not installed (CI).

#[path = "../../../fuzz/src/extract.rs"]
mod check;

use reportsplit_split::Lexicon;

#[test]
fn every_input_of_the_extract_fuzz_corpus_passes_the_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/extract");
    let lexicon = Lexicon::builtin();
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the committed corpus") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        // The target takes `&str`: libFuzzer inputs that are not UTF-8 never reach it.
        if let Ok(text) = std::str::from_utf8(&bytes) {
            check::check(text, &lexicon);
            replayed += 1;
        }
    }
    assert!(replayed >= 4, "only {replayed} inputs in {}", dir.display());
}

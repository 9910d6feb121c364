//! The committed corpus of the `hl7` fuzz target (fuzz/corpus/hl7),
//! replayed through the target's own check on every `cargo test`, where
//! cargo-fuzz is not installed too (CI).

#[path = "../../../fuzz/src/hl7.rs"]
mod check;

#[test]
fn every_input_of_the_hl7_fuzz_corpus_passes_the_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/hl7");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the committed corpus") {
        check::check(&std::fs::read(entry.unwrap().path()).unwrap());
        replayed += 1;
    }
    assert!(replayed >= 8, "only {replayed} inputs in {}", dir.display());
}

//! The committed corpus of the `fhir_input` fuzz target
//! (fuzz/corpus/fhir_input), replayed through the target's own check on
//! every `cargo test`, where cargo-fuzz is not installed too (CI). The check
//! reads input with this crate's `reportsplit::input`, as `extract` does.

mod input {
    pub use reportsplit::input::*;
}

#[path = "../../fuzz/src/fhir_input.rs"]
mod check;

use reportsplit_split::Lexicon;

#[test]
fn every_input_of_the_fhir_input_fuzz_corpus_passes_the_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/fhir_input");
    let lexicon = Lexicon::builtin();
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the committed corpus") {
        check::check(&std::fs::read(entry.unwrap().path()).unwrap(), &lexicon);
        replayed += 1;
    }
    assert!(replayed >= 4, "only {replayed} inputs in {}", dir.display());
}

//! The committed corpus of the `report_text` fuzz target
//! (fuzz/corpus/report_text), replayed through the target's own check on
//! every `cargo test`, where cargo-fuzz is not installed too (CI).

#[path = "../../../fuzz/src/report_text.rs"]
mod check;

#[path = "../../../fuzz/src/attachment.rs"]
mod attachment;

use reportsplit_split::Lexicon;

#[test]
fn every_input_of_the_report_text_fuzz_corpus_passes_the_check() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/report_text");
    let lexicon = Lexicon::builtin();
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the committed corpus") {
        check::check(&std::fs::read(entry.unwrap().path()).unwrap(), &lexicon);
        replayed += 1;
    }
    assert!(replayed >= 4, "only {replayed} inputs in {}", dir.display());
}

#[test]
fn every_input_of_the_attachment_fuzz_corpus_passes_the_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/attachment");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the committed corpus") {
        attachment::check(&std::fs::read(entry.unwrap().path()).unwrap());
        replayed += 1;
    }
    assert!(replayed >= 4, "only {replayed} inputs in {}", dir.display());
}

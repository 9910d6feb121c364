//! Fuzz target: see `reportsplit_fuzz::fhir_input` (fuzz/src/fhir_input.rs).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use reportsplit_split::Lexicon;

static LEXICON: LazyLock<Lexicon> = LazyLock::new(Lexicon::builtin);

fuzz_target!(|data: &[u8]| {
    reportsplit_fuzz::fhir_input::check(data, &LEXICON);
});

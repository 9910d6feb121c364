//! Fuzz target: see `reportsplit_fuzz::extract` (fuzz/src/extract.rs).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use reportsplit_split::Lexicon;

static LEXICON: LazyLock<Lexicon> = LazyLock::new(Lexicon::builtin);

fuzz_target!(|text: &str| {
    reportsplit_fuzz::extract::check(text, &LEXICON);
});

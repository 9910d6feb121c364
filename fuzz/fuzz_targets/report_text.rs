//! Fuzz target: see `reportsplit_fuzz::report_text` (fuzz/src/report_text.rs).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use reportsplit_split::Lexicon;

static LEXICON: LazyLock<Lexicon> = LazyLock::new(Lexicon::builtin);

fuzz_target!(|data: &[u8]| {
    reportsplit_fuzz::report_text::check(data, &LEXICON);
});

//! Fuzz target: see `reportsplit_fuzz::hl7` (fuzz/src/hl7.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    reportsplit_fuzz::hl7::check(data);
});

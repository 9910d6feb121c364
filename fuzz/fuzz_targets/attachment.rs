//! Fuzz target: see `reportsplit_fuzz::attachment` (fuzz/src/attachment.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    reportsplit_fuzz::attachment::check(data);
});

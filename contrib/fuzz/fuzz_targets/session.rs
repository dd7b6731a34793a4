//! Client bytes → line splitter → session over the in-memory world, fed whole,
//! one byte at a time and in pieces of sizes drawn from the input; every
//! property of `pop1d::testing::check` is asserted. The input is what the
//! client sends, and after the bytes `\0MBOX\0`, if it holds them, fred's
//! mailbox (`pop1d::testing::check_fuzz_input`, which
//! `tests/session_properties.rs` uses to replay the seeds and regressions).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pop1d::testing::check_fuzz_input(data);
});

//! The passwd-file parser on any text, read as `PasswdFile::load` reads a file:
//! no panic, and no warning shows a hash (`pop1d::testing::check_passwd_file`,
//! which the property test of `tests/session_properties.rs` uses too).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pop1d::testing::check_passwd_file(&String::from_utf8_lossy(data));
});

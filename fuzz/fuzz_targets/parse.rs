//! Arbitrary bytes → `migration_parser::parse_bytes` must not panic; every `Ok` must satisfy the
//! span invariants ([`deployclaw_fuzz::check_migration`]), every `Err` must point into the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use migration_parser::{ParseOptions, parse_bytes};

fuzz_target!(|data: &[u8]| {
    match parse_bytes("fuzz.sql", data, &ParseOptions::default()) {
        Ok(m) => {
            let src = std::str::from_utf8(data).expect("Ok parse of non-UTF-8 input");
            deployclaw_fuzz::check_migration(src, &m);
        }
        Err(e) => deployclaw_fuzz::check_error(data, &e),
    }
});

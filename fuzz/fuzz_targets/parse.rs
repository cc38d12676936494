//! Arbitrary bytes → `migration_parser::parse_bytes` must not panic; every `Ok` must satisfy the
//! span invariants ([`deployclaw_fuzz::check_migration`]), every `Err` must point into the input.
//! And reading the file statement by statement must give exactly what tokenizing the whole file
//! gives (the reference), results and errors alike.
#![no_main]

use libfuzzer_sys::fuzz_target;
use migration_parser::reference::parse_whole_file;
use migration_parser::{ParseOptions, parse_bytes};

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions::default();
    let got = parse_bytes("fuzz.sql", data, &opts);
    match &got {
        Ok(m) => {
            let src = std::str::from_utf8(data).expect("Ok parse of non-UTF-8 input");
            deployclaw_fuzz::check_migration(src, m);
        }
        Err(e) => deployclaw_fuzz::check_error(data, e),
    }
    if let Ok(src) = std::str::from_utf8(data)
        && !data.contains(&0)
    {
        match (parse_whole_file("fuzz.sql", src, &opts), got) {
            (Ok(w), Ok(g)) => assert_eq!(w, g, "statement by statement differs"),
            (Err(w), Err(g)) => assert_eq!(w.to_string(), g.to_string(), "errors differ"),
            (w, g) => panic!("whole file {w:?} vs statement by statement {g:?}"),
        }
    }
});

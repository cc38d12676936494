//! Arbitrary bytes → parse, then every built-in rule of `gates` over the result must not panic,
//! and every finding must point at a statement of the file.
//!
//! The PostgreSQL version (11–17) and transaction mode are taken from the input's length, so the
//! corpus stays plain SQL and every version-dependent branch of the lock table is reached.
#![no_main]

use gates::{Config, Registry};
use libfuzzer_sys::fuzz_target;
use migration_parser::{ParseOptions, PgVersion, TransactionMode, parse_bytes};

fuzz_target!(|data: &[u8]| {
    let options = ParseOptions {
        pg_version: PgVersion(11 + (data.len() % 7) as u32),
        transaction_mode: if data.len() % 2 == 0 { TransactionMode::Autocommit } else { TransactionMode::WrapFile },
    };
    let Ok(m) = parse_bytes("fuzz.sql", data, &options) else {
        return;
    };
    let mut config = Config::default();
    config.pg_version = Some(options.pg_version);
    config.transaction_mode = Some(options.transaction_mode);
    let findings = Registry::builtin().lint(&m, &config);
    for f in &findings {
        if let Some(l) = &f.location {
            let st = m.statements.get(l.statement).unwrap_or_else(|| {
                panic!("{} points at statement {} of {}", f.rule, l.statement, m.statements.len())
            });
            assert_eq!((l.line, l.column), (st.span.line, st.span.column), "{}: location is not its statement's", f.rule);
        }
        assert!(!f.message.is_empty(), "{}: empty message", f.rule);
    }
});

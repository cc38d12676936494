//! Arbitrary SQL → parse → `rollback::generate` against an empty catalog and against a small
//! one (the input's own statements applied by `rollback::catalog_after`, then a fixed schema
//! with tables, constraints, indexes, a sequence, an enum, a view, a function and a trigger):
//! generation must never panic (it reads statement text, e.g. partition bounds and index
//! definitions), and every statement must be undone, irreversible or a no-op.
#![no_main]

use libfuzzer_sys::fuzz_target;
use migration_parser::{Migration, ParseOptions, parse, parse_bytes};
use rollback::{CatalogSnapshot, Options, catalog_after, generate};

/// The schema of the "small catalog", built without a database.
const SMALL: &str = "CREATE TYPE status AS ENUM ('a', 'b');
CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL DEFAULT 'x', status status);
CREATE TABLE users (id int PRIMARY KEY, account_id bigint REFERENCES accounts (id) ON DELETE CASCADE,
  email varchar(100) UNIQUE, score int CHECK (score >= 0));
CREATE INDEX users_email_idx ON users (lower(email));
CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE SEQUENCE invoice_seq;
CREATE VIEW v AS SELECT 1;
CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION f();
COMMENT ON TABLE users IS 'people';";

fn check(m: &Migration, catalog: &CatalogSnapshot, options: &Options) {
    let rb = generate(m, catalog, options);
    for st in &m.statements {
        let accounted = rb.statements.iter().any(|s| s.source_statement == st.index)
            || rb.irreversible.iter().any(|i| i.statement == st.index)
            || rb.no_ops.iter().any(|n| n.statement == st.index);
        assert!(accounted, "statement {} is not accounted for", st.index);
    }
    assert!(!rb.script.is_empty(), "empty script");
}

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions::default();
    let Ok(m) = parse_bytes("fuzz.sql", data, &opts) else {
        return;
    };
    let empty = CatalogSnapshot { schema: "public".into(), ..Default::default() };
    let small = parse("small.sql", SMALL, &opts).expect("the small schema parses");
    let small = catalog_after(&small, &empty);
    let options = Options { concurrently: data.len() % 2 == 0, ..Options::default() };
    check(&m, &empty, &options);
    check(&m, &small, &options);
    // The input applied to the small catalog, then the input again: every object it creates
    // now exists before it runs (IF NOT EXISTS, replaces, renames onto taken names).
    let after = catalog_after(&m, &small);
    check(&m, &after, &options);
});

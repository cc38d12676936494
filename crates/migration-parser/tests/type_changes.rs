//! The `ALTER COLUMN ... TYPE` table (`type_changes.rs`) against the installed PostgreSQL: for
//! each pair a table is created with one row, the `ALTER` runs (under a non-UTC and a UTC
//! session time zone), and `pg_class.relfilenode` before and after says whether the server
//! rewrote it; the table's prediction for the server's version must match. Every row of
//! `TYPE_CHANGES` is exercised by some pair, every `Binary` row is `castmethod = 'b'` in the
//! server's `pg_cast`, and every change the table says may fail does fail on a value that does
//! not fit. Versions other than the installed one rest on the release notes and the source.

mod common;

use common::Cluster;
use migration_parser::{
    Coercion, PgVersion, TYPE_CHANGES, TypeChangeOutcome, canonical_type, type_change_outcome,
    using_is_plain_cast,
};

/// (old type, new type, a value of the old type, USING expression of column `c` or "").
const PAIRS: &[(&str, &str, &str, &str)] = &[
    // Same type and modifiers: no-ops.
    ("uuid", "uuid", "gen_random_uuid()", ""),
    ("jsonb", "jsonb", "'{}'", ""),
    ("timestamp", "timestamp without time zone", "now()", ""),
    ("varchar(20)", "character varying(20)", "'a'", ""),
    ("uuid", "uuid", "gen_random_uuid()", "c::uuid"),
    ("text", "text", "'a'", "CAST(c AS text)"),
    // Modifier changes.
    ("varchar(10)", "varchar(20)", "'a'", ""),
    ("varchar(10)", "varchar", "'a'", ""),
    ("varchar(10)", "varchar(5)", "'abc'", ""),
    ("varchar", "varchar(5)", "'abc'", ""),
    ("varbit(10)", "varbit(20)", "B'101'", ""),
    ("varbit(10)", "varbit(4)", "B'101'", ""),
    ("numeric(10,2)", "numeric(12,2)", "1", ""),
    ("numeric(10,2)", "numeric", "1", ""),
    ("numeric(10,2)", "numeric(12,3)", "1", ""),
    ("numeric(10,2)", "numeric(8,2)", "1", ""),
    ("numeric", "numeric(12,2)", "1", ""),
    ("timestamp(3)", "timestamp(6)", "now()", ""),
    ("timestamp", "timestamp(6)", "now()", ""),
    ("timestamp", "timestamp(3)", "now()", ""),
    ("timestamptz(6)", "timestamptz(2)", "now()", ""),
    ("time(3)", "time", "now()", ""),
    ("timetz(2)", "timetz(4)", "now()", ""),
    ("interval(3)", "interval(6)", "'1 day'", ""),
    ("interval", "interval(3)", "'1 day'", ""),
    ("char(10)", "char(20)", "'a'", ""),
    ("bit(3)", "bit(4)", "NULL", ""),
    // Binary coercible (pg_cast castmethod 'b').
    ("varchar(10)", "text", "'a'", ""),
    ("varchar(10)", "text", "'a'", "c::text"),
    ("text", "varchar", "'a'", ""),
    ("text", "varchar(10)", "'a'", ""),
    ("cidr", "inet", "'10.0.0.0/8'", ""),
    ("xml", "text", "'<a/>'", ""),
    ("xml", "varchar", "'<a/>'", ""),
    ("bit(3)", "varbit", "B'101'", ""),
    ("int", "oid", "1", ""),
    ("oid", "integer", "1", ""),
    // Time zone dependent (PostgreSQL 12+).
    ("timestamp", "timestamptz", "now()", ""),
    ("timestamptz", "timestamp", "now()", ""),
    // Rewrites.
    ("smallint", "int", "1", ""),
    ("int", "bigint", "1", ""),
    ("bigint", "int", "1", ""),
    ("int", "smallint", "1", ""),
    ("int", "numeric(12,2)", "1", ""),
    ("bigint", "text", "1", ""),
    ("real", "double precision", "1", ""),
    ("json", "jsonb", "'{}'", ""),
    ("jsonb", "json", "'{}'", ""),
    ("bytea", "text", "'abc'", ""),
    ("char(10)", "text", "'a'", ""),
    ("text", "char(10)", "'a'", ""),
    ("text", "name", "'a'", ""),
    ("name", "text", "'a'", ""),
    ("inet", "cidr", "'10.0.0.0/8'", ""),
    ("date", "timestamptz", "now()", ""),
    ("varchar", "uuid", "gen_random_uuid()::text", "c::uuid"),
    ("text", "bigint", "'1'", "c::bigint"),
    ("varchar(10)", "text", "'a'", "c || ''"),
];

/// (old type, new type, a value that does not fit): changes the table says may fail.
const FAILING: &[(&str, &str, &str)] = &[
    ("varchar(10)", "varchar(5)", "'abcdefgh'"),
    ("text", "varchar(3)", "'abcdefgh'"),
    ("numeric(10,2)", "numeric(4,2)", "12345.5"),
    ("bigint", "int", "10000000000"),
    ("char(10)", "char(2)", "'abcdefgh'"),
    ("text", "uuid", "'not a uuid'"),
];

/// Whether the server rewrote the table (`Some`), or the error it raised.
fn rewrites(
    c: &Cluster,
    n: usize,
    (old, new, value, using): (&str, &str, &str, &str),
    tz: &str,
) -> Result<bool, String> {
    let using = match using {
        "" => String::new(),
        u => format!(" USING {u}"),
    };
    let filenode = format!("SELECT relfilenode FROM pg_class WHERE relname = 'tc{n}'");
    c.psql(&format!(
        "DROP TABLE IF EXISTS tc{n}; CREATE TABLE tc{n} (c {old}); INSERT INTO tc{n} VALUES ({value});"
    ));
    let before = c.psql(&filenode);
    c.try_psql(&format!(
        "SET TimeZone = '{tz}'; ALTER TABLE tc{n} ALTER COLUMN c TYPE {new}{using};"
    ))?;
    Ok(c.psql(&filenode) != before)
}

#[test]
fn type_change_table_matches_a_real_server() {
    let Some(c) = Cluster::start() else {
        eprintln!("SKIPPED: no PostgreSQL server binaries under /usr/lib/postgresql");
        return;
    };
    let version = PgVersion(
        c.psql("SHOW server_version_num")
            .parse::<u32>()
            .expect("version")
            / 10000,
    );
    let mut failures = Vec::new();
    for (n, &(old, new, value, using)) in PAIRS.iter().enumerate() {
        for tz in ["America/New_York", "UTC"] {
            let plain = using.is_empty() || using_is_plain_cast(using, "c", new);
            let predicted = match (plain, type_change_outcome(old, new, version, tz == "UTC")) {
                (false, _) | (true, TypeChangeOutcome::Rewrite { .. }) => true,
                (true, TypeChangeOutcome::NoOp | TypeChangeOutcome::CatalogOnly) => false,
                (true, TypeChangeOutcome::Unknown) => {
                    failures.push(format!("{old} -> {new}: not in the table"));
                    continue;
                }
            };
            match rewrites(&c, n, (old, new, value, using), tz) {
                Ok(rewritten) if rewritten == predicted => {}
                Ok(rewritten) => failures.push(format!(
                    "{old} -> {new} USING '{using}' (TimeZone {tz}): table predicts rewrite={predicted}, \
                     server rewrote={rewritten}"
                )),
                Err(e) => failures.push(format!("{old} -> {new}: {e}")),
            }
        }
    }
    for (i, &(old, new, value)) in FAILING.iter().enumerate() {
        if !matches!(
            type_change_outcome(old, new, version, false),
            TypeChangeOutcome::Rewrite { may_fail: true }
        ) {
            failures.push(format!(
                "{old} -> {new}: the table does not say it may fail"
            ));
        }
        if rewrites(&c, PAIRS.len() + i, (old, new, value, ""), "UTC").is_ok() {
            failures.push(format!(
                "{old} -> {new} of {value}: the server did not fail"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "PostgreSQL {} disagrees with the type-change table:\n{}",
        version.0,
        failures.join("\n")
    );
}

#[test]
fn every_row_is_exercised_and_binary_rows_are_binary_in_pg_cast() {
    let covered = |f: &migration_parser::TypeChangeFact| {
        PAIRS.iter().any(|(old, new, ..)| {
            let (o, n) = (canonical_type(old).0, canonical_type(new).0);
            f.from.contains(&o.as_str())
                && (f.to.contains(&n.as_str()) || (f.to.is_empty() && o == n))
        })
    };
    let uncovered: Vec<_> = TYPE_CHANGES.iter().filter(|f| !covered(f)).collect();
    assert!(uncovered.is_empty(), "no pair exercises {uncovered:?}");
    let Some(c) = Cluster::start() else {
        eprintln!("SKIPPED: no PostgreSQL server binaries under /usr/lib/postgresql");
        return;
    };
    for f in TYPE_CHANGES
        .iter()
        .filter(|f| f.coercion == Coercion::Binary)
    {
        for from in f.from {
            for to in f.to {
                let method = c.psql(&format!(
                    "SELECT castmethod FROM pg_cast WHERE castsource = '{from}'::regtype \
                     AND casttarget = '{to}'::regtype"
                ));
                assert_eq!(
                    method, "b",
                    "{from} -> {to} is not binary coercible in pg_cast"
                );
            }
        }
    }
}

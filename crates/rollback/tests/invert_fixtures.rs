//! Database-free fixtures, one per family of inversions (`src/invert/<family>.rs`):
//! `tests/fixtures/invert/<family>.sql` holds a pre-migration schema (a few lines of SQL, turned
//! into a catalog without a database by `rollback::catalog_after`), a `-- migration` line, and
//! the migration. The generated rollback — script, irreversible steps, no-ops — is snapshotted.
//! The PostgreSQL round-trip proofs of the same inversions are in `every_kind*.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use migration_parser::{Migration, OperationKind, ParseOptions, parse};
use rollback::{
    CatalogSnapshot, Options, Rollback, ViewSnap, catalog_after, generate, inversion_family,
};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invert");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    v.sort();
    v
}

fn family_of(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .expect("file name")
        .to_string()
}

/// The fixture's pre-migration catalog (schema `public`) and its migration.
fn load(path: &Path) -> (CatalogSnapshot, Migration) {
    let text = std::fs::read_to_string(path).expect("fixture");
    let (setup, migration) = text
        .split_once("\n-- migration\n")
        .unwrap_or_else(|| panic!("{}: no `-- migration` line", path.display()));
    let opts = ParseOptions::default();
    let setup = parse("setup.sql", setup, &opts).expect("setup parses");
    let empty = CatalogSnapshot {
        schema: "public".into(),
        ..Default::default()
    };
    let before = catalog_after(&setup, &empty);
    let name = format!("{}.sql", family_of(path));
    let migration = parse(&name, migration, &opts).expect("migration parses");
    (before, migration)
}

fn render(rb: &Rollback) -> String {
    let mut s = rb.script.clone();
    s.push_str("\n==== irreversible\n");
    for i in &rb.irreversible {
        s.push_str(&format!(
            "statement {} (line {}): {}\n",
            i.statement + 1,
            i.line,
            i.reason
        ));
    }
    s.push_str("==== no-ops\n");
    for n in &rb.no_ops {
        s.push_str(&format!(
            "statement {} (line {}): {}\n",
            n.statement + 1,
            n.line,
            n.reason
        ));
    }
    s
}

#[test]
fn every_family_fixture_generates_the_snapshotted_rollback() {
    let files = fixtures();
    assert!(files.len() >= 10, "fixtures missing: {files:?}");
    for path in files {
        let (before, migration) = load(&path);
        let rb = generate(&migration, &before, &Options::default());
        // Nothing is skipped silently: every statement is undone, irreversible or a no-op.
        for st in &migration.statements {
            let accounted = rb.statements.iter().any(|s| s.source_statement == st.index)
                || rb.irreversible.iter().any(|i| i.statement == st.index)
                || rb.no_ops.iter().any(|n| n.statement == st.index);
            assert!(
                accounted,
                "{}: statement {} unaccounted",
                path.display(),
                st.index + 1
            );
        }
        insta::assert_snapshot!(format!("invert_{}", family_of(&path)), render(&rb));
    }
}

#[test]
fn every_operation_kind_has_an_inversion_and_a_fixture_of_its_family() {
    let unknown: Vec<&OperationKind> = OperationKind::ALL
        .iter()
        .filter(|k| inversion_family(**k) == "unknown")
        .collect();
    assert!(
        unknown.is_empty(),
        "operation kinds without an inversion: {unknown:?}"
    );
    let mut seen: BTreeSet<OperationKind> = BTreeSet::new();
    for path in fixtures() {
        let family = family_of(&path);
        let (_, migration) = load(&path);
        for op in migration.statements.iter().flat_map(|s| &s.operations) {
            // A fixture may use other families' operations to set the scene; a kind is
            // covered by the fixture of its own family.
            if inversion_family(op.kind()) == family {
                seen.insert(op.kind());
            }
        }
    }
    let missing: Vec<&OperationKind> = OperationKind::ALL
        .iter()
        .filter(|k| !seen.contains(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "operation kinds without an operation in the fixture of their family: {missing:?}"
    );
}

/// A view of the shard dropped with CASCADE comes back with the views that read it, in
/// dependency order at the end of the rollback (the readers are found in the definitions).
#[test]
fn drop_view_cascade_of_a_shard_view_recreates_its_readers() {
    let mut before = CatalogSnapshot {
        schema: "public".into(),
        ..Default::default()
    };
    for (name, definition) in [
        ("report", "SELECT 1 AS one"),
        ("report_total", "SELECT sum(one) AS total FROM report"),
        ("unrelated", "SELECT 2 AS two"),
    ] {
        before.views.insert(
            name.into(),
            ViewSnap {
                materialized: false,
                definition: definition.into(),
                indexes: Default::default(),
                comment: None,
            },
        );
    }
    let m = parse(
        "m.sql",
        "DROP VIEW report CASCADE;",
        &ParseOptions::default(),
    )
    .expect("parses");
    let rb = generate(&m, &before, &Options::default());
    let report = rb.script.find("CREATE VIEW report AS SELECT 1 AS one");
    let total = rb.script.find("CREATE VIEW report_total AS");
    assert!(
        report.is_some() && total.is_some() && report < total,
        "{}",
        rb.script
    );
    assert!(!rb.script.contains("unrelated"), "{}", rb.script);
    assert!(rb.irreversible.is_empty(), "{:?}", rb.irreversible);
}

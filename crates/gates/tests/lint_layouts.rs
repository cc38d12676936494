//! `lint DIR` and the shared layout detection: a directory two migration tools' layouts match
//! is refused with an error naming both; the new tools' directories lint their migrations and
//! skip their rollbacks.

use gates::GatesError;
use gates::lint::read_dir_inputs;

fn write(dir: &std::path::Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

#[test]
fn ambiguous_directory_is_refused_naming_both_layouts() {
    let d = tempfile::tempdir().expect("tempdir");
    write(d.path(), "V1__init.sql", "CREATE TABLE a (id int);");
    write(d.path(), "2_more.up.sql", "CREATE TABLE b (id int);");
    let err = read_dir_inputs(d.path()).expect_err("two layouts match");
    assert!(matches!(err, GatesError::AmbiguousLayout { .. }), "{err:?}");
    let shown = err
        .to_string()
        .replace(&d.path().display().to_string(), "<dir>");
    insta::assert_snapshot!(shown, @"<dir>: ambiguous migration layout: both Flyway and golang-migrate match; point at a directory of one tool");
}

#[test]
fn flyway_undo_and_prisma_directories_lint_their_migrations() {
    let d = tempfile::tempdir().expect("tempdir");
    write(d.path(), "V1__init.sql", "CREATE TABLE a (id int);");
    write(d.path(), "U1__init.sql", "DROP TABLE a;");
    write(
        d.path(),
        "R__view.sql",
        "CREATE OR REPLACE VIEW v AS SELECT 1;",
    );
    let inputs = read_dir_inputs(d.path()).expect("flyway");
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| !n.contains("U1__")), "{names:?}");

    let p = tempfile::tempdir().expect("tempdir");
    write(
        p.path(),
        "migration_lock.toml",
        "provider = \"postgresql\"\n",
    );
    write(
        p.path(),
        "20240101120000_init/migration.sql",
        "CREATE TABLE \"User\" (id int);",
    );
    assert_eq!(read_dir_inputs(p.path()).expect("prisma").len(), 1);
}

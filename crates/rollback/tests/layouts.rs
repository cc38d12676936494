//! Layout detection for migration directories.

use rollback::{Layout, discover};

fn write(dir: &std::path::Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(p, text).expect("write");
}

#[test]
fn diesel_with_metadata_and_version_order() {
    let d = tempfile::tempdir().expect("tempdir");
    write(d.path(), "2017-10-08-193512_b/up.sql", "B;");
    write(d.path(), "2017-10-08-193512_b/down.sql", "-B;");
    write(d.path(), "20170804200817_a/up.sql", "A;");
    write(d.path(), "20170804200817_a/down.sql", "-A;");
    write(d.path(), "2026-05-27-120000-0000_d/up.sql", "D;");
    write(
        d.path(),
        "2026-05-27-120000-0000_d/metadata.toml",
        "run_in_transaction = false\n",
    );
    write(d.path(), "2026-05-27-120000_c/up.sql", "C;");
    let pairs = discover(d.path()).expect("diesel layout");
    let names: Vec<&str> = pairs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "20170804200817_a",
            "2017-10-08-193512_b",
            "2026-05-27-120000_c",
            "2026-05-27-120000-0000_d"
        ]
    );
    assert!(pairs.iter().all(|p| p.layout == Layout::Diesel));
    assert_eq!(pairs[0].down.as_deref(), Some("-A;"));
    assert_eq!(pairs[2].down, None);
    assert!(pairs[0].run_in_transaction);
    assert!(!pairs[3].run_in_transaction);
}

#[test]
fn flat_up_down_files() {
    let d = tempfile::tempdir().expect("tempdir");
    write(d.path(), "10_ten.up.sql", "T;");
    write(d.path(), "10_ten.down.sql", "-T;");
    write(d.path(), "9_nine.up.sql", "-- no-transaction\nN;");
    write(d.path(), "0021_odd_up.sql", "O;");
    write(d.path(), "0021_odd_down.sql", "-O;");
    let pairs = discover(d.path()).expect("flat layout");
    let names: Vec<&str> = pairs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["9_nine", "10_ten", "0021_odd"]);
    assert_eq!(pairs[0].layout, Layout::GolangMigrate);
    assert!(!pairs[0].run_in_transaction);
    assert_eq!(pairs[0].down, None);
    assert_eq!(pairs[1].down.as_deref(), Some("-T;"));
    assert_eq!(pairs[2].down.as_deref(), Some("-O;"));

    let s = tempfile::tempdir().expect("tempdir");
    write(s.path(), "20231021111635_initial.up.sql", "I;");
    write(s.path(), "20231021111635_initial.down.sql", "-I;");
    let pairs = discover(s.path()).expect("sqlx layout");
    assert_eq!(pairs[0].layout, Layout::Sqlx);
}

#[test]
fn dbmate_sections() {
    let d = tempfile::tempdir().expect("tempdir");
    write(
        d.path(),
        "20240101000000_users.sql",
        "-- migrate:up\nCREATE TABLE users (id int);\n\n-- migrate:down\nDROP TABLE users;\n",
    );
    write(
        d.path(),
        "20240102000000_idx.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON users (id);\n-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY i;\n",
    );
    let pairs = discover(d.path()).expect("dbmate layout");
    assert_eq!(pairs.len(), 2);
    assert_eq!(pairs[0].layout, Layout::Dbmate);
    assert_eq!(pairs[0].up.trim(), "CREATE TABLE users (id int);");
    assert_eq!(
        pairs[0].down.as_deref().map(str::trim),
        Some("DROP TABLE users;")
    );
    assert!(pairs[0].run_in_transaction);
    assert!(!pairs[1].run_in_transaction);
    assert_eq!(
        pairs[1].down.as_deref().map(str::trim),
        Some("DROP INDEX CONCURRENTLY i;")
    );
}

#[test]
fn unknown_layout_is_an_error() {
    let d = tempfile::tempdir().expect("tempdir");
    write(d.path(), "notes.txt", "hello");
    assert!(matches!(
        discover(d.path()),
        Err(rollback::RollbackError::UnknownLayout { .. })
    ));
}

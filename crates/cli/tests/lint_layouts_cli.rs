//! `deployclaw lint DIR` on a directory two migration-tool layouts match: exit 3 with an error
//! naming both layouts (the shared detection of `migration_parser::layout`).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_deployclaw");

#[test]
fn lint_of_an_ambiguous_directory_exits_3_naming_both_layouts() {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(d.path().join("V1__init.sql"), "CREATE TABLE a (id int);").expect("write");
    std::fs::write(d.path().join("2_more.up.sql"), "CREATE TABLE b (id int);").expect("write");
    let out = Command::new(BIN)
        .arg("lint")
        .arg(d.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&d.path().display().to_string(), "<dir>");
    insta::assert_snapshot!(stderr.trim(), @"error: <dir>: ambiguous migration layout: both Flyway and golang-migrate match; point at a directory of one tool");
}

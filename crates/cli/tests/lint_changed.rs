//! `deployclaw lint --changed-since REF` in a real git repository made in a tempdir, and
//! `lint -` / `validate-migration --sql-file -` reading standard input.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BAD: &str = "CREATE INDEX i ON t (a);\n";

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn lint(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deployclaw"))
        .current_dir(dir)
        .arg("lint")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run deployclaw")
}

/// The files named by the JSON findings, sorted.
fn files(out: &Output) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let mut f: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap().to_owned())
        .collect();
    f.dedup();
    f
}

/// A repository with `base` (one old migration) and a branch adding migrations, a rollback,
/// a non-migration file, and uncommitted work.
fn repo() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    git(d, &["init", "-q", "-b", "main"]);
    write(d, "db/0001_old.sql", BAD);
    write(d, "other/0001_elsewhere.sql", "SELECT 1;\n");
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "base"]);
    git(d, &["tag", "base"]);
    write(d, "db/0002_new.up.sql", BAD);
    write(d, "db/0002_new.down.sql", "DROP INDEX i;\n");
    write(d, "other/0002_more.sql", BAD);
    write(d, "README.md", "x\n");
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "branch"]);
    write(d, "db/0003_untracked.sql", BAD);
    write(d, "db/0001_old.sql", &format!("{BAD}{BAD}"));
    t
}

#[test]
fn changed_since_lints_only_changed_migrations() {
    let t = repo();
    let out = lint(t.path(), &["--changed-since", "base", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        files(&out),
        [
            "db/0001_old.sql",
            "db/0002_new.up.sql",
            "db/0003_untracked.sql",
            "other/0002_more.sql"
        ]
    );
    // A path restricts it further; the rollback script is never linted as a migration.
    let out = lint(
        t.path(),
        &["--changed-since", "base", "--format", "json", "db"],
    );
    assert_eq!(
        files(&out),
        [
            "db/0001_old.sql",
            "db/0002_new.up.sql",
            "db/0003_untracked.sql"
        ]
    );
    // Nothing changed under a path: clean, exit 0.
    git(t.path(), &["add", "-A"]);
    git(t.path(), &["commit", "-q", "-m", "more"]);
    let out = lint(t.path(), &["--changed-since", "HEAD", "db"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no migration file changed since HEAD"));
}

#[test]
fn changed_since_errors_are_input_errors() {
    let t = repo();
    let out = lint(t.path(), &["--changed-since", "no-such-ref"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let not_repo = tempfile::tempdir().unwrap();
    let out2 = lint(not_repo.path(), &["--changed-since", "main"]);
    assert_eq!(out2.status.code(), Some(3), "{out2:?}");
    let err2 = String::from_utf8_lossy(&out2.stderr);
    let err2 = err2.replace(&not_repo.path().display().to_string(), "[DIR]");
    insta::assert_snapshot!(
        "changed_since_errors",
        format!("{}{err2}", String::from_utf8_lossy(&out.stderr))
    );
}

fn with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_deployclaw"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run deployclaw");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn lint_stdin_names_stdin_with_line_and_column() {
    let out = with_stdin(
        &["lint", "-", "--format", "json"],
        &format!("SELECT 1;\n  {BAD}"),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["file"], "<stdin>");
    assert_eq!(v["findings"][0]["line"], 2);
    assert_eq!(v["findings"][0]["column"], 3);
}

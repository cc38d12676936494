//! `deployclaw lint`, `explain` and `rules` run as the real binary: exit codes, inputs (files,
//! directories, stdin), configuration, formats and error messages.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_deployclaw");

/// A red finding: dropping a table loses its data.
const RED_SQL: &str = "DROP TABLE users;\n";
/// A yellow finding only: a plain CREATE INDEX blocks writes.
const YELLOW_SQL: &str =
    "SET lock_timeout = '2s';\nCREATE INDEX orders_customer_idx ON orders (customer_id);\n";
/// Nothing to report.
const CLEAN_SQL: &str = "CREATE TABLE audit_log (id bigint PRIMARY KEY, note text);\n";

fn run_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env("RUST_BACKTRACE", "0")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run deployclaw");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("wait for deployclaw")
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().expect("temp dir"))
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write file");
        p
    }
    fn run(&self, args: &[&str]) -> Output {
        run_in(self.path(), args, None)
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}
fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", stdout(o)))
}
fn rules_of(o: &Output) -> Vec<String> {
    json(o)["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| f["rule"].as_str().expect("rule").to_string())
        .collect()
}

#[test]
fn exit_code_is_2_for_red_1_for_yellow_0_for_clean() {
    let d = Dir::new();
    d.write("red.sql", RED_SQL);
    d.write("yellow.sql", YELLOW_SQL);
    d.write("clean.sql", CLEAN_SQL);
    let red = d.run(&["lint", "red.sql"]);
    assert_eq!(code(&red), 2, "{}{}", stdout(&red), stderr(&red));
    assert!(stdout(&red).contains("red[DC"), "{}", stdout(&red));
    let yellow = d.run(&["lint", "yellow.sql"]);
    assert_eq!(code(&yellow), 1, "{}{}", stdout(&yellow), stderr(&yellow));
    let clean = d.run(&["lint", "clean.sql"]);
    assert_eq!(code(&clean), 0, "{}{}", stdout(&clean), stderr(&clean));
    assert!(
        stdout(&clean).contains("no findings in 1 file"),
        "{}",
        stdout(&clean)
    );
    // The worst file decides.
    assert_eq!(
        code(&d.run(&["lint", "clean.sql", "yellow.sql", "red.sql"])),
        2
    );
}

#[test]
fn allow_yellow_turns_yellow_into_0_but_not_red() {
    let d = Dir::new();
    d.write("yellow.sql", YELLOW_SQL);
    d.write("red.sql", RED_SQL);
    assert_eq!(code(&d.run(&["lint", "--allow-yellow", "yellow.sql"])), 0);
    assert_eq!(code(&d.run(&["lint", "--allow-yellow", "red.sql"])), 2);
}

#[test]
fn stdin_is_read_for_dash_and_named_stdin() {
    let d = Dir::new();
    let o = run_in(
        d.path(),
        &["lint", "--format", "json", "-"],
        Some(RED_SQL.as_bytes()),
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let doc = json(&o);
    assert_eq!(doc["findings"][0]["file"], "<stdin>");
    let text = run_in(d.path(), &["lint", "-"], Some(RED_SQL.as_bytes()));
    assert!(
        stdout(&text).contains("--> <stdin>:1:1"),
        "{}",
        stdout(&text)
    );
}

#[test]
fn directories_are_searched_recursively_in_natural_order() {
    let d = Dir::new();
    d.write("migrations/10_later.sql", RED_SQL);
    d.write("migrations/2_early.sql", RED_SQL);
    d.write("migrations/sub/1_nested/up.sql", RED_SQL);
    d.write("migrations/README.md", "not SQL");
    d.write("migrations/.hidden/x.sql", "not even looked at \u{0}");
    let o = d.run(&["lint", "--format", "json", "migrations"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let files: Vec<String> = json(&o)["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["file"].as_str().expect("file").to_string())
        .collect();
    let mut order = files.clone();
    order.dedup();
    assert_eq!(
        order,
        [
            "migrations/2_early.sql",
            "migrations/10_later.sql",
            "migrations/sub/1_nested/up.sql"
        ],
        "{files:?}"
    );
}

/// Issue 15: a directory's rollback scripts (Diesel `down.sql`, `*.down.sql`, Flyway `U…__`,
/// dbmate `-- migrate:down`) are not linted as migrations; `--include-rollbacks` lints them with
/// the rollback rules (dropping what the migration added is their job, not a finding). One
/// directory per tool: a directory two tools' layouts match is refused (`lint_layouts_cli.rs`).
#[test]
fn rollbacks_are_linted_only_on_request() {
    let d = Dir::new();
    let down = "DROP TABLE widgets;\nCREATE INDEX widgets_idx ON gadgets (a);\n";
    d.write(
        "m/diesel/2024-01-01-000000_widgets/up.sql",
        "CREATE TABLE widgets (id int);\n",
    );
    d.write("m/diesel/2024-01-01-000000_widgets/down.sql", down);
    d.write(
        "m/flat/2_gadgets.up.sql",
        "SET lock_timeout = '2s';\nALTER TABLE gadgets ADD COLUMN a int;\n",
    );
    d.write(
        "m/flat/2_gadgets.down.sql",
        "ALTER TABLE gadgets DROP COLUMN a;\n",
    );
    d.write("m/flyway/V3__x.sql", "SELECT 1;\n");
    d.write("m/flyway/U3__x.sql", down);
    d.write(
        "m/dbmate/4_dbmate.sql",
        "-- migrate:up\nSELECT 1;\n\n-- migrate:down\nDROP TABLE widgets;\n",
    );
    let files = |o: &Output| -> Vec<(String, String)> {
        json(o)["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| {
                let file = f["file"].as_str().unwrap_or("").to_string();
                (file, f["rule"].as_str().unwrap_or("").to_string())
            })
            .collect()
    };
    let o = d.run(&[
        "lint", "--format", "json", "m/diesel", "m/flat", "m/flyway", "m/dbmate",
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(files(&o), Vec::<(String, String)>::new());

    let o = d.run(&[
        "lint",
        "--format",
        "json",
        "--include-rollbacks",
        "m/diesel",
        "m/flat",
        "m/flyway",
        "m/dbmate",
    ]);
    let got = files(&o);
    assert_eq!(code(&o), 1, "{got:?}");
    assert!(
        got.iter()
            .all(|(_, r)| r != "dropping-table" && r != "dropping-column"),
        "{got:?}"
    );
    for f in [
        "m/diesel/2024-01-01-000000_widgets/down.sql",
        "m/flyway/U3__x.sql",
    ] {
        assert!(
            got.contains(&(f.to_string(), "require-concurrent-index".to_string())),
            "{got:?}"
        );
    }
}

#[test]
fn config_can_disable_a_rule_and_is_found_in_the_working_directory() {
    let d = Dir::new();
    d.write("red.sql", RED_SQL);
    let before = d.run(&["lint", "--format", "json", "red.sql"]);
    assert!(
        rules_of(&before).contains(&"dropping-table".to_string()),
        "{}",
        stdout(&before)
    );

    d.write("custom.toml", "[rules]\ndisable = [\"dropping-table\"]\n");
    let o = d.run(&[
        "lint",
        "--format",
        "json",
        "--config",
        "custom.toml",
        "red.sql",
    ]);
    assert!(
        !rules_of(&o).contains(&"dropping-table".to_string()),
        "{}",
        stdout(&o)
    );
    assert_ne!(code(&o), 2, "the only red rule is disabled: {}", stdout(&o));

    // ./deployclaw.toml is used when --config is not given.
    d.write(
        "deployclaw.toml",
        "[rules.severity]\ndropping-table = \"info\"\n",
    );
    let o = d.run(&["lint", "--format", "json", "red.sql"]);
    let doc = json(&o);
    let f = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "dropping-table")
        .cloned()
        .expect("dropping-table still reported");
    assert_eq!(f["severity"], "info");
}

#[test]
fn bad_config_exits_3_with_its_location() {
    let d = Dir::new();
    d.write("m.sql", CLEAN_SQL);
    d.write("bad.toml", "pg_version = 15\n[rules]\ndisabel = [\"x\"]\n");
    let o = d.run(&["lint", "--config", "bad.toml", "m.sql"]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("bad.toml:3:1:"), "{}", stderr(&o));
    assert!(stderr(&o).contains("disabel"), "{}", stderr(&o));

    d.write(
        "unknown-rule.toml",
        "[rules]\ndisable = [\"no-such-rule\"]\n",
    );
    let o = d.run(&["lint", "--config", "unknown-rule.toml", "m.sql"]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("unknown-rule.toml:2:"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("no-such-rule"), "{}", stderr(&o));

    let o = d.run(&["lint", "--config", "missing.toml", "m.sql"]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("missing.toml"), "{}", stderr(&o));
}

#[test]
fn input_errors_exit_3_with_file_line_and_column() {
    let d = Dir::new();
    d.write("good.sql", CLEAN_SQL);
    d.write("unterminated.sql", "SELECT 1;\nSELECT 'oops;\n");
    d.write("latin1.sql", b"SELECT 1;\nSELECT 'caf\xe9';\n");
    d.write("binary.sql", b"SELECT 1;\0\x01\x02");

    let o = d.run(&["lint", "unterminated.sql"]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).starts_with("unterminated.sql:2:"),
        "{}",
        stderr(&o)
    );

    let o = d.run(&["lint", "latin1.sql"]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).starts_with("latin1.sql:2:"), "{}", stderr(&o));
    assert!(stderr(&o).contains("UTF-8"), "{}", stderr(&o));

    let o = d.run(&["lint", "binary.sql"]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).starts_with("binary.sql:1:"), "{}", stderr(&o));

    let o = d.run(&["lint", "nope.sql"]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("nope.sql"), "{}", stderr(&o));

    // Other files are still linted and reported; the input error decides the exit code.
    let o = d.run(&["lint", "--format", "json", "good.sql", "nope.sql"]);
    assert_eq!(code(&o), 3);
    assert!(json(&o)["findings"].is_array());

    let o = d.run(&["lint", "--format", "json", "empty-dir-that-does-not-exist/"]);
    assert_eq!(code(&o), 3);
}

#[test]
fn usage_errors_exit_3() {
    let d = Dir::new();
    d.write("m.sql", CLEAN_SQL);
    for v in ["10", "18", "abc"] {
        let o = d.run(&["lint", "--pg-version", v, "m.sql"]);
        assert_eq!(code(&o), 3, "--pg-version {v}: {}", stderr(&o));
    }
    assert_eq!(code(&d.run(&["lint", "--pg-version", "11", "m.sql"])), 0);
    assert_eq!(code(&d.run(&["lint", "--pg-version", "17", "m.sql"])), 0);
    assert_eq!(code(&d.run(&["lint", "--format", "xml", "m.sql"])), 3);
    assert_eq!(code(&d.run(&["lint"])), 3, "no path");
    assert_eq!(code(&d.run(&["lint", "--no-such-flag", "m.sql"])), 3);
    let help = d.run(&["lint", "--help"]);
    assert_eq!(code(&help), 0);
    assert!(
        stdout(&help).contains("--transaction-mode"),
        "{}",
        stdout(&help)
    );
}

#[test]
fn transaction_mode_decides_whether_concurrently_fails() {
    let d = Dir::new();
    d.write(
        "m.sql",
        "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY i ON t (c);\n",
    );
    let auto = d.run(&[
        "lint",
        "--format",
        "json",
        "--transaction-mode",
        "autocommit",
        "m.sql",
    ]);
    assert!(
        !rules_of(&auto).contains(&"concurrent-in-transaction".to_string()),
        "{}",
        stdout(&auto)
    );
    let wrap = d.run(&[
        "lint",
        "--format",
        "json",
        "--transaction-mode",
        "wrap-file",
        "m.sql",
    ]);
    assert!(
        rules_of(&wrap).contains(&"concurrent-in-transaction".to_string()),
        "{}",
        stdout(&wrap)
    );
    assert_eq!(code(&wrap), 2);
}

#[test]
fn json_output_has_the_design_contract_keys() {
    let d = Dir::new();
    d.write("m.sql", format!("{YELLOW_SQL}{RED_SQL}"));
    let o = d.run(&["lint", "--format", "json", "m.sql"]);
    let doc = json(&o);
    let list = doc["findings"].as_array().expect("findings");
    assert!(list.len() >= 2, "{doc}");
    for f in list {
        for key in [
            "rule",
            "severity",
            "line",
            "column",
            "statement",
            "message",
            "help",
        ] {
            assert!(f.get(key).is_some(), "{key} missing in {f}");
        }
        assert!(["red", "yellow", "info"].contains(&f["severity"].as_str().expect("severity")));
    }
    let drop = list
        .iter()
        .find(|f| f["rule"] == "dropping-table")
        .expect("dropping-table");
    assert_eq!(
        (drop["line"].as_u64(), drop["column"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(drop["severity"], "red");
}

#[test]
fn sarif_and_github_formats() {
    let d = Dir::new();
    d.write("m.sql", format!("{YELLOW_SQL}{RED_SQL}"));
    let o = d.run(&["lint", "--format", "sarif", "m.sql"]);
    assert_eq!(code(&o), 2);
    let doc = json(&o);
    assert_eq!(doc["version"], "2.1.0");
    assert_eq!(doc["runs"][0]["tool"]["driver"]["name"], "deployclaw");
    let rules = doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules");
    assert!(
        rules.len() >= 20,
        "every built-in rule is described: {}",
        rules.len()
    );
    let results = doc["runs"][0]["results"].as_array().expect("results");
    assert!(results.iter().any(|r| r["level"] == "error"));

    let o = d.run(&["lint", "--format", "github", "m.sql"]);
    assert_eq!(code(&o), 2);
    let out = stdout(&o);
    assert!(out.lines().all(|l| l.starts_with("::")), "{out}");
    assert!(out.contains("::error file=m.sql,line=3,col=1,"), "{out}");
}

#[test]
fn colour_only_when_asked() {
    let d = Dir::new();
    d.write("m.sql", RED_SQL);
    let always = d.run(&["lint", "--color", "always", "m.sql"]);
    assert!(
        stdout(&always).contains("\x1b[1;31m"),
        "{}",
        stdout(&always)
    );
    let never = d.run(&["lint", "--color", "never", "m.sql"]);
    assert!(!stdout(&never).contains('\x1b'));
    // auto: stdout is a pipe here, so no colour.
    let auto = d.run(&["lint", "m.sql"]);
    assert!(!stdout(&auto).contains('\x1b'));
}

#[test]
fn inline_ignore_comments_silence_a_statement() {
    let d = Dir::new();
    d.write(
        "m.sql",
        "-- deployclaw:ignore dropping-table\nDROP TABLE users;\n",
    );
    let o = d.run(&["lint", "--format", "json", "m.sql"]);
    assert!(
        !rules_of(&o).contains(&"dropping-table".to_string()),
        "{}",
        stdout(&o)
    );
}

#[test]
fn explain_prints_docs_by_name_or_code() {
    let d = Dir::new();
    let by_name = d.run(&["explain", "require-concurrent-index"]);
    assert_eq!(code(&by_name), 0, "{}", stderr(&by_name));
    let text = stdout(&by_name);
    assert!(text.contains("require-concurrent-index"), "{text}");
    assert!(text.contains("CONCURRENTLY"), "{text}");
    let code_of = text
        .split_whitespace()
        .find(|w| w.trim_matches(|c| c == '(' || c == ')').starts_with("DC"));
    let code_of = code_of
        .expect("the code is shown")
        .trim_matches(|c| c == '(' || c == ')')
        .to_string();
    let by_code = d.run(&["explain", &code_of.to_lowercase()]);
    assert_eq!(code(&by_code), 0);
    assert_eq!(stdout(&by_code), text);
}

#[test]
fn explain_unknown_rule_exits_3_with_suggestions() {
    let d = Dir::new();
    let o = d.run(&["explain", "require-concurent-index"]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("unknown rule `require-concurent-index`"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("did you mean `require-concurrent-index`"),
        "{}",
        stderr(&o)
    );
    let o = d.run(&["explain", "zzzzzzzz"]);
    assert_eq!(code(&o), 3);
    assert!(!stderr(&o).contains("did you mean"), "{}", stderr(&o));
}

#[test]
fn rules_lists_every_rule_in_text_and_json() {
    let d = Dir::new();
    let o = d.run(&["rules"]);
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    assert!(text.starts_with("CODE"), "{text}");
    for name in [
        "require-concurrent-index",
        "dropping-table",
        "missing-lock-timeout",
        "hardcoded-tenant-schema",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    let o = d.run(&["rules", "--format", "json"]);
    assert_eq!(code(&o), 0);
    let doc = json(&o);
    let rules = doc["rules"].as_array().expect("rules");
    assert_eq!(
        rules.len(),
        text.lines().count() - 1,
        "same rules in both formats"
    );
    for r in rules {
        for key in ["code", "name", "severity", "summary"] {
            assert!(r[key].is_string(), "{key} in {r}");
        }
        assert!(!r["summary"].as_str().unwrap_or_default().is_empty(), "{r}");
    }
}

#[test]
fn closed_stdout_does_not_panic() {
    let d = Dir::new();
    let big: String = (0..2000).map(|i| format!("DROP TABLE t{i};\n")).collect();
    d.write("big.sql", big);
    let mut child = Command::new(BIN)
        .args(["lint", "big.sql"])
        .current_dir(d.path())
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take()); // the reader goes away, like `| head -1`
    let out = child.wait_with_output().expect("wait");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2));
}

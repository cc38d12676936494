//! `deployclaw lint` fed bad input, run as the real binary: binary and non-UTF-8 files, huge
//! files, unterminated tokens, pathological nesting, missing and unreadable paths, bad flags and
//! a bad configuration. Every case asserts the exit code, that the error names the file (and the
//! line and column where there is one), and that nothing panicked. The messages a user reads are
//! snapshotted (temp paths normalised).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_deployclaw");

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
    /// Run `deployclaw` in this directory. `RUST_BACKTRACE` is removed so that a panic would
    /// print its "run with `RUST_BACKTRACE=1`" note, which [`assert_no_panic`] looks for.
    fn run(&self, args: &[&str]) -> Output {
        let o = Command::new(BIN)
            .args(args)
            .current_dir(self.path())
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("run deployclaw");
        assert_no_panic(&o);
        o
    }
    /// stderr of `o` with this directory's path replaced by `[TMP]`.
    fn stderr(&self, o: &Output) -> String {
        normalise(&stderr(o), self.path())
    }
}

fn normalise(s: &str, dir: &Path) -> String {
    let mut s = s.to_string();
    // The canonical form too (/tmp may be a symbolic link).
    if let Ok(c) = dir.canonicalize() {
        s = s.replace(&c.display().to_string(), "[TMP]");
    }
    s.replace(&dir.display().to_string(), "[TMP]")
}

fn code(o: &Output) -> i32 {
    o.status
        .code()
        .unwrap_or_else(|| panic!("deployclaw was killed by a signal: {:?}", o.status))
}
fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// No output of the binary may show a panic or a stack trace.
fn assert_no_panic(o: &Output) {
    for (name, text) in [("stdout", stdout(o)), ("stderr", stderr(o))] {
        for bad in [
            "panicked",
            "RUST_BACKTRACE",
            "stack backtrace",
            "overflowed its stack",
        ] {
            assert!(
                !text.contains(bad),
                "{name} contains {bad:?}:\n{}",
                tail(&text)
            );
        }
    }
    assert!(
        o.status.code().is_some(),
        "killed by a signal: {:?}\n{}",
        o.status,
        tail(&stderr(o))
    );
}

fn tail(s: &str) -> &str {
    let mut start = s.len().saturating_sub(4000);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The `findings` of `--format json` output.
fn findings(o: &Output) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", tail(&stdout(o))));
    v["findings"].as_array().expect("findings array").clone()
}

/// Assert exit 3 and that stderr starts with `file:line:col: error:`; return stderr.
fn input_error_at(d: &Dir, o: &Output, file: &str, line: u32, column: u32) -> String {
    let err = d.stderr(o);
    assert_eq!(code(o), 3, "stderr: {err}");
    let want = format!("{file}:{line}:{column}: error:");
    assert!(err.starts_with(&want), "expected `{want}`, got:\n{err}");
    err
}

// ---------------------------------------------------------------------------------------------
// Not SQL at all
// ---------------------------------------------------------------------------------------------

#[test]
fn binary_file_is_an_input_error_at_the_first_nul_byte() {
    let d = Dir::new();
    // A PNG header: not UTF-8 either, but the NUL byte is what makes it binary.
    d.write("logo.sql", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0");
    let o = d.run(&["lint", "logo.sql"]);
    let err = input_error_at(&d, &o, "logo.sql", 3, 1);
    assert!(
        stdout(&o).is_empty(),
        "no report for a file that could not be read: {}",
        stdout(&o)
    );
    insta::assert_snapshot!("binary_png", err);

    // The same through standard input.
    let o = Command::new(BIN)
        .args(["lint", "-"])
        .env_remove("RUST_BACKTRACE")
        .stdin(std::fs::File::open(d.path().join("logo.sql")).expect("open"))
        .output()
        .expect("run");
    assert_no_panic(&o);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).starts_with("<stdin>:3:1: error:"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn non_utf8_is_an_input_error_with_file_line_and_column() {
    let d = Dir::new();
    // Latin-1 é (0xE9) in the middle of line 2.
    d.write(
        "latin1.sql",
        b"SET lock_timeout = '1s';\nCOMMENT ON TABLE t IS 'caf\xe9';\n",
    );
    let o = d.run(&["lint", "latin1.sql"]);
    let err = input_error_at(&d, &o, "latin1.sql", 2, 27);
    assert!(err.contains("UTF-8"), "{err}");
    insta::assert_snapshot!("non_utf8", err);
}

/// A file named on the command line that holds no statement is most likely the wrong file: an
/// input error. The same files found by walking a directory are common in real migration
/// histories (placeholders, squashed migrations) and lint cleanly.
#[test]
fn empty_and_comment_only_files_are_input_errors_when_named_but_clean_in_a_directory() {
    let d = Dir::new();
    let files = ["empty.sql", "comments.sql", "semicolons.sql", "bom.sql"];
    d.write("m/empty.sql", "");
    d.write(
        "m/comments.sql",
        "-- nothing to do here\n/* really\n   nothing */\n-- deployclaw:ignore all\n",
    );
    d.write("m/semicolons.sql", ";;\n ; \n");
    d.write("m/bom.sql", "\u{feff}");
    let mut messages = String::new();
    for f in files {
        let path = format!("m/{f}");
        let o = d.run(&["lint", "--format", "json", &path]);
        let err = d.stderr(&o);
        assert_eq!(code(&o), 3, "{f}: {err}");
        assert!(
            err.starts_with(&format!("{path}: error: contains no SQL statements")),
            "{f}: {err}"
        );
        messages.push_str(&err);
    }
    insta::assert_snapshot!("empty_named_files", messages);
    let o = d.run(&["lint", "--format", "json", "m"]);
    assert_eq!(code(&o), 0, "{}", d.stderr(&o));
    assert!(findings(&o).is_empty(), "{}", stdout(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

// ---------------------------------------------------------------------------------------------
// Unterminated tokens: the location is where the token opens, which is what the user must fix.
// ---------------------------------------------------------------------------------------------

#[test]
fn unterminated_string_points_at_its_opening_quote() {
    let d = Dir::new();
    d.write(
        "m.sql",
        "SET lock_timeout = '1s';\nUPDATE t SET note = 'oops;\nSELECT 1;\n",
    );
    let o = d.run(&["lint", "m.sql"]);
    let err = input_error_at(&d, &o, "m.sql", 2, 21);
    insta::assert_snapshot!("unterminated_string", err);
}

#[test]
fn unterminated_quoted_identifier_points_at_its_opening_quote() {
    let d = Dir::new();
    d.write(
        "m.sql",
        "SET lock_timeout = '1s';\nALTER TABLE \"Orders ADD COLUMN c int;\n",
    );
    let o = d.run(&["lint", "m.sql"]);
    let err = input_error_at(&d, &o, "m.sql", 2, 13);
    insta::assert_snapshot!("unterminated_quoted_identifier", err);
}

#[test]
fn unterminated_dollar_quote_points_at_its_opening_tag() {
    let d = Dir::new();
    d.write(
        "m.sql",
        "SET lock_timeout = '1s';\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$\n  SELECT 1;\n\nSELECT 2;\n",
    );
    let o = d.run(&["lint", "m.sql"]);
    let err = input_error_at(&d, &o, "m.sql", 2, 49);
    insta::assert_snapshot!("unterminated_dollar_quote", err);
}

#[test]
fn unterminated_block_comment_points_at_its_opening() {
    let d = Dir::new();
    d.write(
        "m.sql",
        "SET lock_timeout = '1s';\n  /* TODO: finish\nDROP TABLE t;\n\n",
    );
    let o = d.run(&["lint", "m.sql"]);
    // The comment opens at 2:3; reporting the end of the file (5:1) leaves the user searching.
    let err = input_error_at(&d, &o, "m.sql", 2, 3);
    insta::assert_snapshot!("unterminated_block_comment", err);
}

/// Finding the opening of an unterminated dollar quote must stay linear: a comment full of
/// `$tagN$` look-alikes before it used to make the search re-tokenize the file once per tag.
/// 40,000 tags (~330 KB) took minutes; the test has no time assertion, CI's timeout is the guard.
#[test]
fn unterminated_dollar_quote_after_many_tag_lookalikes_finishes() {
    let d = Dir::new();
    let mut sql = String::from("/* ");
    for i in 0..40_000 {
        sql.push_str(&format!("$t{i}$ "));
    }
    sql.push_str("*/\nSELECT $q$ never closed;\n");
    d.write("m.sql", &sql);
    let o = d.run(&["lint", "m.sql"]);
    input_error_at(&d, &o, "m.sql", 2, 8);
}

// ---------------------------------------------------------------------------------------------
// Size and shape
// ---------------------------------------------------------------------------------------------

const MB: usize = 1024 * 1024;

#[test]
fn huge_file_of_valid_statements_finishes() {
    let d = Dir::new();
    let stmt = "CREATE TABLE IF NOT EXISTS audit_log (id bigint PRIMARY KEY, note text);\n";
    let n = 20 * MB / stmt.len() + 1;
    d.write("huge.sql", stmt.repeat(n));
    let o = d.run(&["lint", "--format", "json", "huge.sql"]);
    assert_eq!(code(&o), 0, "{}", tail(&d.stderr(&o)));
    assert!(findings(&o).is_empty(), "{}", tail(&stdout(&o)));
}

#[test]
fn huge_single_line_garbage_statement_finishes() {
    let d = Dir::new();
    let mut sql = String::with_capacity(20 * MB + 16);
    sql.push_str("SELEC ");
    while sql.len() < 20 * MB {
        sql.push_str("x+ ");
    }
    sql.push_str(";\n");
    d.write("garbage.sql", &sql);
    let o = d.run(&["lint", "--format", "json", "garbage.sql"]);
    // One statement nothing understood: reported, not an input error, not a crash.
    let f = findings(&o);
    assert_eq!(f.len(), 1, "{}", tail(&stdout(&o)));
    assert_eq!(f[0]["rule"], "unparsed-statement");
    assert_eq!(f[0]["line"], 1);
    assert!(
        matches!(code(&o), 1 | 2),
        "exit {}: {}",
        code(&o),
        tail(&d.stderr(&o))
    );
    // Not parsed (over the 1 MiB analysed), said so; the finding carries a bounded excerpt.
    let msg = f[0]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("too large to analyse"), "{msg}");
    assert!(o.stdout.len() < 4096, "JSON of {} bytes", o.stdout.len());
    let text = d.run(&["lint", "--color", "never", "garbage.sql"]);
    assert!(
        text.stdout.len() < 4096,
        "text of {} bytes",
        text.stdout.len()
    );
    insta::assert_snapshot!("huge_single_line_garbage", stdout(&text));
}

#[test]
fn deeply_nested_parentheses_do_not_overflow_the_stack() {
    let d = Dir::new();
    let depth = 10_000;
    let nested = format!("{}1{}", "(".repeat(depth), ")".repeat(depth));
    d.write("select.sql", format!("SELECT {nested};\n"));
    d.write(
        "default.sql",
        format!("SET lock_timeout = '1s';\nALTER TABLE t ADD COLUMN c int DEFAULT {nested};\n"),
    );
    d.write(
        "check.sql",
        format!("ALTER TABLE t ADD CONSTRAINT c CHECK ({nested}) NOT VALID;\n"),
    );
    // Unbalanced: the statement never ends; still one statement, still no crash.
    d.write(
        "open.sql",
        format!("SELECT {};\nDROP TABLE t;\n", "(".repeat(depth)),
    );
    for f in ["select.sql", "default.sql", "check.sql", "open.sql"] {
        let o = d.run(&["lint", "--format", "json", f]);
        assert!(
            matches!(code(&o), 0..=2),
            "{f}: exit {}: {}",
            code(&o),
            tail(&d.stderr(&o))
        );
        let f_json = findings(&o);
        // sqlparser's recursion limit turns the nesting into an unparsed statement.
        assert!(
            f_json.iter().any(|x| x["rule"] == "unparsed-statement"),
            "{f}: {}",
            tail(&stdout(&o))
        );
    }
}

#[test]
fn megabyte_identifier_is_handled() {
    let d = Dir::new();
    let name = "a".repeat(MB);
    d.write("plain.sql", format!("DROP TABLE {name};\n"));
    d.write("quoted.sql", format!("DROP TABLE \"{name}\";\n"));
    for f in ["plain.sql", "quoted.sql"] {
        let o = d.run(&["lint", "--format", "json", f]);
        assert_eq!(code(&o), 2, "{f}: {}", tail(&d.stderr(&o)));
        let fs = findings(&o);
        assert!(
            fs.iter().any(|x| x["rule"] == "dropping-table"),
            "{f}: {}",
            tail(&stdout(&o))
        );
    }
    // Text output (with source excerpts) too.
    let o = d.run(&["lint", "--color", "never", "plain.sql"]);
    assert_eq!(code(&o), 2);
}

/// Inputs without an end or far too big for a migration: a device that never ends, a sparse
/// 33 MiB file, and endless standard input. Each stops at the 32 MiB cap with exit 3, naming the
/// input, without reading (or holding) more than the cap.
#[test]
fn endless_and_oversized_inputs_stop_at_the_cap() {
    let d = Dir::new();
    let big = d.path().join("huge_dump.sql");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(33 * MB as u64))
        .expect("sparse file");
    let mut snap = String::new();
    for (what, args) in [
        ("device", vec!["lint", "/dev/zero"]),
        ("big file", vec!["lint", "huge_dump.sql"]),
    ] {
        let o = d.run(&args);
        assert_eq!(code(&o), 3, "{what}: {}", d.stderr(&o));
        let err = d.stderr(&o);
        assert!(err.contains("larger than 32 MiB"), "{what}: {err}");
        snap.push_str(&format!("## {what}\n{err}\n"));
    }
    // Endless standard input.
    let mut child = Command::new(BIN)
        .args(["lint", "-"])
        .current_dir(d.path())
        .env_remove("RUST_BACKTRACE")
        .stdin(std::fs::File::open("/dev/zero").expect("/dev/zero"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run deployclaw");
    let status = child.wait().expect("wait");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("larger than 32 MiB"), "{err}");
    snap.push_str(&format!("## stdin\n{err}\n"));
    insta::assert_snapshot!("endless_and_oversized", snap);
}

/// Control characters in the SQL (an identifier with an ANSI escape sequence) must not reach a
/// terminal raw: they could rewrite what the reviewer sees.
#[test]
fn control_characters_are_not_echoed_raw_in_text_output() {
    let d = Dir::new();
    d.write("m.sql", "DROP TABLE \"\x1b[2J\x1b[32mall good\x1b[0m\";\n");
    let o = d.run(&["lint", "--color", "never", "m.sql"]);
    assert_eq!(code(&o), 2, "{}", d.stderr(&o));
    assert!(
        !o.stdout.contains(&0x1b),
        "raw ESC in text output:\n{:?}",
        stdout(&o)
    );
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

#[test]
fn directory_without_sql_files_is_an_input_error() {
    let d = Dir::new();
    d.write("migrations/README.md", "# nothing here\n");
    d.write("migrations/0001_init.sql.bak", "DROP TABLE t;\n");
    let o = d.run(&["lint", "migrations"]);
    assert_eq!(code(&o), 3, "{}", d.stderr(&o));
    let err = d.stderr(&o);
    assert!(err.contains("migrations"), "{err}");
    insta::assert_snapshot!("directory_without_sql", err);
}

#[test]
fn missing_file_is_an_input_error_naming_it() {
    let d = Dir::new();
    let o = d.run(&["lint", "migrations/0042_missing.sql"]);
    assert_eq!(code(&o), 3, "{}", d.stderr(&o));
    let err = d.stderr(&o);
    assert!(
        err.starts_with("migrations/0042_missing.sql: error:"),
        "{err}"
    );
    insta::assert_snapshot!("missing_file", err);
}

/// `chmod 000` stops reads only for an unprivileged user; CI runs the tests as root, where
/// (CAP_DAC_OVERRIDE) the file stays readable. The test checks what is true for whoever runs it:
/// unprivileged → exit 3 naming the file and the reason; privileged → the file is linted as usual.
#[cfg(unix)]
#[test]
fn unreadable_file_is_an_input_error_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let d = Dir::new();
    let p = d.write("secret.sql", "DROP TABLE t;\n");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    let privileged = std::fs::read(&p).is_ok();
    let o = d.run(&["lint", "secret.sql"]);
    if privileged {
        eprintln!(
            "note: running with read-override privileges (root): chmod 000 does not stop reads"
        );
        assert_eq!(
            code(&o),
            2,
            "read anyway, and DROP TABLE is red: {}",
            d.stderr(&o)
        );
    } else {
        assert_eq!(code(&o), 3, "{}", d.stderr(&o));
        let err = d.stderr(&o);
        assert_eq!(
            err.trim_end(),
            "secret.sql: error: Permission denied",
            "{err}"
        );
    }
    // An unreadable directory entry: the same rule, found through directory traversal.
    let sub = d.path().join("locked");
    std::fs::create_dir(&sub).expect("mkdir");
    std::fs::write(sub.join("a.sql"), "SELECT 1;\n").expect("write");
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    let o = d.run(&["lint", "locked"]);
    if privileged {
        assert_eq!(code(&o), 0, "{}", d.stderr(&o));
    } else {
        assert_eq!(code(&o), 3, "{}", d.stderr(&o));
        assert!(
            d.stderr(&o).starts_with("locked: error: Permission denied"),
            "{}",
            d.stderr(&o)
        );
    }
    // Let the temp dir be removed.
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).expect("chmod back");
}

// ---------------------------------------------------------------------------------------------
// Flags and configuration
// ---------------------------------------------------------------------------------------------

#[test]
fn unsupported_pg_version_is_a_usage_error() {
    let d = Dir::new();
    d.write("m.sql", "SELECT 1;\n");
    let o = d.run(&["lint", "--pg-version", "9", "m.sql"]);
    assert_eq!(code(&o), 3, "{}", d.stderr(&o));
    assert!(stdout(&o).is_empty());
    insta::assert_snapshot!("pg_version_9", d.stderr(&o));

    let o = d.run(&["lint", "--pg-version", "99999999999999999999", "m.sql"]);
    assert_eq!(code(&o), 3, "{}", d.stderr(&o));
    let o = d.run(&["lint", "--pg-version", "-1", "m.sql"]);
    assert_eq!(code(&o), 3, "{}", d.stderr(&o));
}

#[test]
fn unknown_format_is_a_usage_error() {
    let d = Dir::new();
    d.write("m.sql", "SELECT 1;\n");
    let o = d.run(&["lint", "--format", "yaml", "m.sql"]);
    assert_eq!(code(&o), 3, "{}", d.stderr(&o));
    assert!(stdout(&o).is_empty());
    insta::assert_snapshot!("unknown_format", d.stderr(&o));
}

#[test]
fn bad_config_is_an_input_error_with_file_line_and_column() {
    let d = Dir::new();
    d.write("m.sql", "SELECT 1;\n");
    let cases: &[(&str, &str, (u32, u32))] = &[
        // TOML syntax error: the unclosed array.
        (
            "syntax",
            "pg_version = 15\n[rules]\ndisable = [\"renaming-column\"\n",
            (3, 29),
        ),
        // Wrong type.
        ("wrong_type", "pg_version = \"fifteen\"\n", (1, 14)),
        // Out of range.
        ("bad_version", "\n\npg_version = 7\n", (3, 14)),
        // Unknown severity.
        (
            "bad_severity",
            "[rules.severity]\ndropping-table = \"purple\"\n",
            (2, 18),
        ),
        // Unknown key.
        (
            "unknown_key",
            "pg_version = 15\nshadow_url = \"postgres://x\"\n",
            (2, 1),
        ),
        // Binary garbage.
        ("binary", "\0\0\0\u{1}", (1, 5)),
    ];
    let mut snap = String::new();
    for (name, text, (line, column)) in cases {
        let file = format!("{name}.toml");
        d.write(&file, text);
        let o = d.run(&["lint", "--config", &file, "m.sql"]);
        assert_eq!(code(&o), 3, "{name}: {}", d.stderr(&o));
        let err = d.stderr(&o);
        let want = format!("{file}:{line}:{column}: error:");
        assert!(
            err.starts_with(&want),
            "{name}: expected `{want}`, got:\n{err}"
        );
        snap.push_str(&format!("## {file}\n{err}\n"));
    }
    // Not UTF-8 at all.
    d.write("latin1.toml", b"# caf\xe9\npg_version = 15\n");
    let o = d.run(&["lint", "--config", "latin1.toml", "m.sql"]);
    assert_eq!(code(&o), 3, "{}", d.stderr(&o));
    assert!(d.stderr(&o).starts_with("latin1.toml"), "{}", d.stderr(&o));
    snap.push_str(&format!("## latin1.toml\n{}\n", d.stderr(&o)));
    insta::assert_snapshot!("bad_config", snap);
}

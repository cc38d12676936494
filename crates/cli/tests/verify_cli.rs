//! `deployclaw verify` exit codes, one meaning each, through the real binary: 0 authentic and
//! approved, 1 authentic but not approved (YELLOW/RED gate, expired token), 2 not authentic
//! (tampered, unsigned, other key, migration changed), 3 input error (missing report, missing
//! or directory migration file). Without `--public-key` a loud warning says authenticity is
//! unproven. Reports are built and signed with the `report` crate (no database needed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use report::{FleetInfo, Gate, MigrationInfo, SigningKey, ValidationReport};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deployclaw"));
    c.env("RUST_BACKTRACE", "0").stdin(Stdio::null());
    c
}

fn verify(dir: &Path, report: &Path, extra: &[&str]) -> Output {
    bin()
        .current_dir(dir)
        .arg("verify")
        .arg(report)
        .args(extra)
        .output()
        .expect("run deployclaw")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

struct Fixture {
    dir: tempfile::TempDir,
    key: SigningKey,
    public: PathBuf,
    other_public: PathBuf,
    sql: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = report::generate_keypair();
        let public = dir.path().join("k.pub");
        report::write_keypair(&key, &dir.path().join("k.pem"), &public).unwrap();
        let other_public = dir.path().join("other.pub");
        report::write_keypair(
            &report::generate_keypair(),
            &dir.path().join("other.pem"),
            &other_public,
        )
        .unwrap();
        let sql = dir.path().join("m.sql");
        std::fs::write(&sql, "ALTER TABLE orders ADD COLUMN note text;\n").unwrap();
        Fixture {
            dir,
            key,
            public,
            other_public,
            sql,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A signed report for `m.sql` (named relative to the fixture directory, as a report
    /// written in the repository would) with fleet gate `gate`, and an approval token valid
    /// for `token_hours` (none when `None`).
    fn report(&self, name: &str, gate: Gate, token_hours: Option<i64>) -> PathBuf {
        let sha = report::sha256_file(&self.sql).unwrap();
        let mut r = ValidationReport::new(
            MigrationInfo {
                file: "m.sql".into(),
                sha256: sha,
                statements: 1,
            },
            FleetInfo {
                source: "test".into(),
                instances: 1,
                shards: 1,
                fingerprint: "fp".into(),
                ..FleetInfo::default()
            },
        );
        r.gate = gate;
        r.safety_gates.migration_approved = gate == Gate::Green;
        if let Some(h) = token_hours {
            let issued = chrono::Utc::now() - chrono::Duration::hours(2);
            r.approval_token = Some(
                report::issue_token(&r, &self.key, issued, chrono::Duration::hours(h)).unwrap(),
            );
        }
        report::sign(&mut r, &self.key).unwrap();
        let p = self.path().join(name);
        std::fs::write(&p, report::render::json(&r).unwrap()).unwrap();
        p
    }
}

#[test]
fn verify_exit_codes_mean_one_thing_each() {
    let f = Fixture::new();
    let pk = f.public.display().to_string();
    let with_key = ["--public-key", pk.as_str()];
    let green = f.report("green.json", Gate::Green, Some(24));
    let yellow = f.report("yellow.json", Gate::Yellow, Some(24));
    let red = f.report("red.json", Gate::Red, None);
    let expired = f.report("expired.json", Gate::Green, Some(1));

    // 0: authentic and approved.
    let o = verify(f.path(), &green, &with_key);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(text(&o).0.contains("signature: valid"), "{:?}", text(&o));
    assert!(!text(&o).1.contains("NOT proven"), "{:?}", text(&o));

    // 1: authentic but not approved.
    for (what, p) in [
        ("yellow", &yellow),
        ("red", &red),
        ("expired token", &expired),
    ] {
        let o = verify(f.path(), p, &with_key);
        assert_eq!(o.status.code(), Some(1), "{what}: {:?}", text(&o));
        assert!(text(&o).0.contains("signature: valid"), "{what}");
    }

    // 2: not authentic.
    let o = verify(
        f.path(),
        &green,
        &["--public-key", &f.other_public.display().to_string()],
    );
    assert_eq!(o.status.code(), Some(2), "other key: {:?}", text(&o));
    let tampered = f.path().join("tampered.json");
    let t = std::fs::read_to_string(&green)
        .unwrap()
        .replace("\"source\": \"test\"", "\"source\": \"prod\"");
    assert!(t.contains("\"prod\""), "the tamper did not apply");
    std::fs::write(&tampered, t).unwrap();
    let o = verify(f.path(), &tampered, &with_key);
    assert_eq!(o.status.code(), Some(2), "tampered: {:?}", text(&o));
    let mut unsigned: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&green).unwrap()).unwrap();
    unsigned["signature"] = serde_json::Value::Null;
    let unsigned_path = f.path().join("unsigned.json");
    std::fs::write(&unsigned_path, unsigned.to_string()).unwrap();
    let o = verify(f.path(), &unsigned_path, &with_key);
    assert_eq!(o.status.code(), Some(2), "unsigned: {:?}", text(&o));
    let changed = f.path().join("changed.sql");
    std::fs::write(&changed, "DROP TABLE orders;\n").unwrap();
    let o = verify(
        f.path(),
        &green,
        &[
            "--public-key",
            &pk,
            "--migration",
            &changed.display().to_string(),
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "migration changed: {:?}",
        text(&o)
    );
    assert!(text(&o).0.contains("MISMATCH"), "{:?}", text(&o));

    // 3: input errors — missing report, missing or directory migration file.
    let mut messages = String::new();
    let missing_report = f.path().join("nope.json");
    let elsewhere = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, &Path, Vec<String>, &Path)> = vec![
        ("missing report", &missing_report, vec![], f.path()),
        (
            "missing --migration",
            &green,
            vec!["--migration".into(), "gone.sql".into()],
            f.path(),
        ),
        (
            "--migration is a directory",
            &green,
            vec!["--migration".into(), f.path().display().to_string()],
            f.path(),
        ),
        (
            "the migration the report names is not here",
            &green,
            vec![],
            elsewhere.path(),
        ),
    ];
    for (what, report, extra, cwd) in cases {
        let mut args: Vec<&str> = vec!["--public-key", &pk];
        args.extend(extra.iter().map(String::as_str));
        let o = verify(cwd, report, &args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(3), "{what}: {err}");
        assert!(err.starts_with("deployclaw: "), "{what}: {err}");
        let err = err.replace(&f.path().display().to_string(), "[TMP]");
        messages.push_str(&format!("{what}:\n{err}\n"));
    }
    let sha = report::sha256_file(&f.sql).unwrap();
    insta::assert_snapshot!("verify_input_errors", messages.replace(&sha, "[SHA256]"));
}

#[test]
fn verify_without_a_public_key_says_authenticity_is_unproven() {
    let f = Fixture::new();
    let green = f.report("green.json", Gate::Green, Some(24));
    let yellow = f.report("yellow.json", Gate::Yellow, None);
    let o = verify(f.path(), &green, &[]);
    let (out, err) = text(&o);
    // By the gate (documented in --help): 0 for an approved report, never "authentic".
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(err.contains("WARNING: authenticity NOT proven"), "{err}");
    assert!(!out.contains("signature: valid"), "{out}");
    assert!(out.contains("authenticity NOT proven"), "{out}");
    let o = verify(f.path(), &yellow, &[]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(text(&o).1.contains("NOT proven"));
    let first = text(&o).1.lines().next().unwrap_or("").to_string();
    insta::assert_snapshot!("verify_without_key_warning", first);

    // --help documents the exit codes.
    let o = bin().args(["verify", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "0  authentic and approved",
        "1  authentic but not approved",
        "2  not authentic",
        "3  input error",
        "Without --public-key, authenticity is unproven",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

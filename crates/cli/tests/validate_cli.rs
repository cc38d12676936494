//! `deployclaw validate-migration`, `verify`, `keygen`, `rollback generate`, Ctrl-C handling and
//! secret hygiene of the real binary, against fixture fleets on ephemeral PostgreSQL clusters
//! this test starts. The target is checksummed before and after every command: the gate must
//! never change it.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{fingerprint_db, leftovers_on};
use topology::ConnectionSpec;
use topology::ephemeral::EphemeralPg;
use topology::fixture::{EphemeralFleet, FixtureSpec, Plant, start_fleet};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/migrations/schema_v42.sql"
);

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deployclaw"));
    c.env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .env_remove("PGPASSWORD")
        .env_remove("PGUSER")
        .env_remove("PGHOST")
        .env_remove("PGPORT")
        .env_remove("PGDATABASE")
        .stdin(Stdio::null());
    c
}

fn run(mut c: impl std::borrow::BorrowMut<Command>) -> Output {
    let c = c.borrow_mut();
    c.output().expect("run deployclaw")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

/// One ephemeral instance, `tenants` tenants of 40 base rows, orphaned coupons on tenant 2
/// when `planted`.
async fn fleet(tenants: usize, planted: bool) -> EphemeralFleet {
    let mut spec = FixtureSpec {
        tenants,
        rows: 40,
        ..FixtureSpec::default()
    };
    if planted {
        spec = spec.plant(2, Plant::OrphanedCoupons { rows: 2 });
    }
    start_fleet(1, &spec).await.expect("fixture fleet")
}

fn url(pg: &EphemeralPg) -> String {
    format!("postgres://postgres@127.0.0.1:{}/app", pg.port())
}

fn spec(pg: &EphemeralPg) -> ConnectionSpec {
    pg.connection_spec()
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// The common validate flags, fixed lock budget, no calibration variance in verdicts.
fn validate_cmd(sql: &Path, target: &str) -> Command {
    let mut c = bin();
    c.args(["validate-migration", "--sql-file"]).arg(sql).args([
        "--target-db",
        target,
        "--tenant-schemas",
        "tenant_*",
        "--lock-budget-ms",
        "5000",
    ]);
    c
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

async fn assert_clean(pg: &EphemeralPg, before: &str, what: &str) {
    assert_eq!(
        fingerprint_db(&spec(pg)).await,
        before,
        "{what} changed the target"
    );
    assert_eq!(
        leftovers_on("target", &spec(pg)).await,
        Vec::<String>::new(),
        "{what} left something behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_run_writes_the_contract_signs_and_verifies() {
    let fx = fleet(4, true).await;
    let pg = &fx.clusters[0];
    let before = fingerprint_db(&spec(pg)).await;
    let dir = tempfile::tempdir().unwrap();
    let sql = dir.path().join("schema_v42.sql");
    std::fs::copy(EXAMPLE, &sql).unwrap();
    let key = dir.path().join("signing.pem");
    let report_dir = dir.path().join("report");

    let o = run(bin().args(["keygen", "--out"]).arg(&key));
    assert_eq!(code(&o), Some(0), "{:?}", text(&o));
    let pub_key = dir.path().join("signing.pem.pub");
    assert!(pub_key.is_file());

    let o = run(validate_cmd(&sql, &url(pg))
        .args([
            "--validate-rollback",
            "--generate-safety-gates",
            "--format",
            "json",
            "--report-dir",
        ])
        .arg(&report_dir)
        .arg("--sign-key")
        .arg(&key));
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), Some(2), "red fleet exits 2; stderr:\n{stderr}");
    let j: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is the JSON report");

    // The DESIGN.md contract.
    for f in [
        "execution_id",
        "timestamp",
        "migration",
        "steps",
        "shards",
        "rollback",
        "safety_gates",
        "total_duration_ms",
        "signature",
    ] {
        assert!(j.get(f).is_some(), "missing `{f}`");
    }
    assert!(j["execution_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(j["timestamp"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(j["migration"]["file"].as_str(), Some(sql.to_str().unwrap()));
    let sha = j["migration"]["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    let steps = j["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    for s in steps {
        for f in ["step", "action", "details", "duration_ms"] {
            assert!(s.get(f).is_some(), "step without `{f}`: {s}");
        }
    }
    let shards = j["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 4);
    for s in shards {
        for f in ["shard", "instance", "gate", "findings", "estimated_lock_ms"] {
            assert!(s.get(f).is_some(), "shard without `{f}`: {s}");
        }
        assert!(s["findings"].is_array());
        let gate = s["gate"].as_str().unwrap().to_lowercase();
        let has_orphans = s["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "fk-orphans");
        if s["shard"].as_str().unwrap().ends_with("tenant_0002") {
            assert_eq!(gate, "red", "{s}");
            assert!(has_orphans, "{s}");
        } else {
            assert_ne!(gate, "red", "{s}");
            assert!(!has_orphans, "{s}");
        }
    }
    for f in ["script", "tested", "irreversible"] {
        assert!(j["rollback"].get(f).is_some(), "rollback without `{f}`");
    }
    assert_eq!(j["rollback"]["tested"], true);
    assert!(j["rollback"]["irreversible"].is_array());
    let sg = &j["safety_gates"];
    for f in [
        "migration_approved",
        "risk_level",
        "approval_required",
        "estimated_downtime_sec",
        "rollback_tested",
        "shard_exceptions",
    ] {
        assert!(sg.get(f).is_some(), "safety_gates without `{f}`");
    }
    assert_eq!(sg["migration_approved"], false);
    assert!(
        sg["shard_exceptions"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    assert!(j["total_duration_ms"].is_u64());
    assert!(
        !j["signature"].is_null(),
        "the report must be signed with --sign-key"
    );

    for f in [
        "report.json",
        "report.md",
        "report.html",
        "report.sarif",
        "report.junit.xml",
    ] {
        let p = report_dir.join(f);
        assert!(
            p.metadata().is_ok_and(|m| m.len() > 0),
            "{f} missing or empty"
        );
    }
    let report_json = report_dir.join("report.json");
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_json).unwrap()).unwrap();
    assert_eq!(on_disk["execution_id"], j["execution_id"]);
    // The seed's `output` block: the report, the rollback script written next to it, the
    // approval token (compact form).
    let out = &j["output"];
    assert_eq!(out["report_file"].as_str(), report_json.to_str());
    let script = out["rollback_script"].as_str().expect("rollback_script");
    assert_eq!(script, report_dir.join("rollback.sql").to_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(script).unwrap(),
        j["rollback"]["script"].as_str().unwrap()
    );
    assert!(
        out["approval_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("dct1.")),
        "{out}"
    );

    // verify: valid with the trusted key.
    let o = run(bin()
        .arg("verify")
        .arg(&report_json)
        .arg("--public-key")
        .arg(&pub_key));
    let (out, _) = text(&o);
    // The signature is valid; the approval token of a RED report is not good for a deploy,
    // which `verify` signals with 1 (not 2: nothing was tampered with).
    assert!(matches!(code(&o), Some(0 | 1)), "{:?}", text(&o));
    assert!(
        out.contains("signature: valid") && out.contains("trusted"),
        "{out}"
    );
    assert!(out.contains("matches sha256"), "{out}");
    assert!(
        !out.contains("INVALID") && !out.contains("MISMATCH"),
        "{out}"
    );

    // One byte of a finding changed: invalid.
    let original = std::fs::read_to_string(&report_json).unwrap();
    let needle = "orphan";
    let at = original.find(needle).expect("a finding mentions orphans");
    let mut tampered = original.clone();
    tampered.replace_range(at..at + 1, "O");
    std::fs::write(&report_json, &tampered).unwrap();
    let o = run(bin()
        .arg("verify")
        .arg(&report_json)
        .arg("--public-key")
        .arg(&pub_key));
    assert_eq!(
        code(&o),
        Some(2),
        "tampered report must not verify: {:?}",
        text(&o)
    );
    std::fs::write(&report_json, &original).unwrap();

    // The migration file edited after the run: mismatch.
    let mut m = std::fs::read_to_string(&sql).unwrap();
    m.push_str("\n-- edited\n");
    std::fs::write(&sql, m).unwrap();
    let o = run(bin()
        .arg("verify")
        .arg(&report_json)
        .arg("--public-key")
        .arg(&pub_key));
    let (out, _) = text(&o);
    assert_eq!(code(&o), Some(2), "{:?}", text(&o));
    assert!(out.contains("MISMATCH"), "{out}");

    // The signing key's body appears in no output or report file.
    let key_text = std::fs::read_to_string(&key).unwrap();
    let body: String = key_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(
        body.len() >= 40,
        "unexpected key file: {} bytes",
        body.len()
    );
    let mut haystacks = vec![stdout.clone(), stderr.clone()];
    for e in std::fs::read_dir(&report_dir).unwrap() {
        haystacks
            .push(String::from_utf8_lossy(&std::fs::read(e.unwrap().path()).unwrap()).into_owned());
    }
    for h in &haystacks {
        assert!(!h.contains(&body), "the private key leaked");
    }

    assert_clean(pg, &before, "validate-migration").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_green_yellow_allow_yellow() {
    let fx = fleet(3, false).await;
    let pg = &fx.clusters[0];
    let before = fingerprint_db(&spec(pg)).await;
    let dir = tempfile::tempdir().unwrap();
    let safe = write(
        dir.path(),
        "safe.sql",
        "SET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN note text;\n",
    );
    let yellow = write(
        dir.path(),
        "rename.sql",
        "SET lock_timeout = '2s';\nALTER TABLE users RENAME COLUMN phone TO phone_number;\n",
    );

    let key = dir.path().join("k.pem");
    assert_eq!(
        code(&run(bin().args(["keygen", "--out"]).arg(&key))),
        Some(0)
    );
    let rd = dir.path().join("green");
    let o = run(validate_cmd(&safe, &url(pg))
        .args([
            "--validate-rollback",
            "--generate-safety-gates",
            "--report-dir",
        ])
        .arg(&rd)
        .arg("--sign-key")
        .arg(&key));
    assert_eq!(
        code(&o),
        Some(0),
        "safe migration on a clean fleet is GREEN: {:?}",
        text(&o)
    );
    // A signed GREEN report with its approval token verifies with exit 0.
    let o = run(bin()
        .arg("verify")
        .arg(rd.join("report.json"))
        .arg("--public-key")
        .arg(dir.path().join("k.pem.pub")));
    let (out, _) = text(&o);
    assert_eq!(code(&o), Some(0), "{:?}", text(&o));
    assert!(
        out.contains("signature: valid") && out.contains("trusted"),
        "{out}"
    );
    assert!(out.contains("approval token: valid"), "{out}");
    let o = run(validate_cmd(&yellow, &url(pg)).args(["--format", "json"]));
    assert_eq!(code(&o), Some(1), "rename is YELLOW: {:?}", text(&o));
    let j: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    assert!(
        j["safety_gates"]["approval_required"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "a YELLOW fleet names who must approve: {}",
        j["safety_gates"]
    );
    assert_eq!(j["safety_gates"]["migration_approved"], false);
    let o = run(validate_cmd(&yellow, &url(pg)).arg("--allow-yellow"));
    assert_eq!(code(&o), Some(0), "--allow-yellow: {:?}", text(&o));
    assert_clean(pg, &before, "validate-migration").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_usage_and_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    // Missing --sql-file (the file does not exist).
    let o = run(validate_cmd(
        &dir.path().join("missing.sql"),
        "postgres://postgres@127.0.0.1:1/app",
    ));
    assert_eq!(code(&o), Some(3), "{:?}", text(&o));
    assert!(text(&o).1.contains("missing.sql"), "{:?}", text(&o));
    // No --sql-file flag at all.
    let o = run(bin().args(["validate-migration", "--target-db", "postgres://h/app"]));
    assert_eq!(code(&o), Some(3), "{:?}", text(&o));
    // An unparseable target.
    let o = run(validate_cmd(Path::new(EXAMPLE), "not a url or a file"));
    assert_eq!(code(&o), Some(3), "{:?}", text(&o));
    let o = run(validate_cmd(
        Path::new(EXAMPLE),
        "postgres://postgres@127.0.0.1:notaport/app",
    ));
    assert_eq!(code(&o), Some(3), "{:?}", text(&o));
    // Nothing listening.
    let target = format!("postgres://postgres@127.0.0.1:{}/app", dead_port());
    let o = run(validate_cmd(Path::new(EXAMPLE), &target));
    assert_eq!(code(&o), Some(4), "{:?}", text(&o));
}

/// `n` small statements, one per line: `INSERT INTO limit_t VALUES (i);`.
fn many_statements(n: usize) -> String {
    (0..n)
        .map(|i| format!("INSERT INTO limit_t VALUES ({i});\n"))
        .collect()
}

/// A migration over the statement limit is an input error (exit 3) that names the file, the
/// first statement over the limit, both figures and how to raise it — found before any shard
/// is contacted, so a reachable fleet is never blamed (exit 4) and a dead one does not matter.
/// `[limits] max_statements` and `--max-statements` set the limit; the flag wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_statements_is_an_input_error_not_the_fleets() {
    let fx = fleet(1, false).await;
    let pg = &fx.clusters[0];
    let before = fingerprint_db(&spec(pg)).await;
    let dir = tempfile::tempdir().unwrap();
    // 100,000 statements, 3.4 MB: over the default limit of 10,000.
    let big = write(dir.path(), "big.sql", &many_statements(100_000));
    let o = run(validate_cmd(&big, &url(pg)));
    let (_, err) = text(&o);
    assert_eq!(code(&o), Some(3), "{err}");
    assert!(!err.contains("unreachable"), "{err}");
    let shown = err.replace(&dir.path().display().to_string(), "<dir>");
    insta::assert_snapshot!("too_many_statements", shown);
    // The same against a fleet that does not exist: still the input's fault, not the fleet's.
    let dead = format!("postgres://postgres@127.0.0.1:{}/app", dead_port());
    let o = run(validate_cmd(&big, &dead));
    assert_eq!(code(&o), Some(3), "{:?}", text(&o));
    assert!(text(&o).1.contains("too many statements"), "{:?}", text(&o));

    // The limit from the configuration, and the flag over it.
    let small = write(
        dir.path(),
        "small.sql",
        &format!("CREATE TABLE limit_t (id int);\n{}", many_statements(29)),
    );
    let config = write(
        dir.path(),
        "deployclaw.toml",
        "[limits]\nmax_statements = 20\n",
    );
    let o = run(validate_cmd(&small, &url(pg)).arg("--config").arg(&config));
    assert_eq!(code(&o), Some(3), "{:?}", text(&o));
    assert!(
        text(&o)
            .1
            .contains("30 in the file, over the limit of 20 (statement 21 starts here)"),
        "{:?}",
        text(&o)
    );
    let o = run(validate_cmd(&small, &url(pg))
        .arg("--config")
        .arg(&config)
        .args(["--max-statements", "30"]));
    assert!(
        matches!(code(&o), Some(0..=2)),
        "a migration at the limit is validated: {:?}",
        text(&o)
    );
    assert_clean(pg, &before, "validate-migration").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_generate_prints_the_rollback() {
    let fx = fleet(2, false).await;
    let pg = &fx.clusters[0];
    let before = fingerprint_db(&spec(pg)).await;
    let o = run(bin()
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args([
            "rollback",
            "generate",
            "--sql-file",
            "examples/migrations/schema_v42.sql",
            "--target-db",
            &url(pg),
        ]));
    let (out, err) = text(&o);
    assert_eq!(code(&o), Some(0), "{err}");
    insta::assert_snapshot!("rollback_generate_schema_v42", out);
    assert_clean(pg, &before, "rollback generate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_mutates_the_target() {
    let fx = fleet(4, true).await;
    let pg = &fx.clusters[0];
    let before = fingerprint_db(&spec(pg)).await;
    let u = url(pg);
    let o = run(bin().args(["lint", EXAMPLE]));
    assert!(code(&o).is_some_and(|c| c <= 2), "{:?}", text(&o));
    assert_clean(pg, &before, "lint").await;
    let o = run(bin().args(["topology", "discover", "--target-db", &u]));
    assert_eq!(code(&o), Some(0), "{:?}", text(&o));
    assert_clean(pg, &before, "topology discover").await;
    let o = run(bin().args([
        "rollback",
        "generate",
        "--sql-file",
        EXAMPLE,
        "--target-db",
        &u,
    ]));
    assert_eq!(code(&o), Some(0), "{:?}", text(&o));
    assert_clean(pg, &before, "rollback generate").await;
    for mode in ["shadow", "in-place"] {
        // The planted shard makes statements fail in the rehearsal (in place: on the target).
        let o = run(validate_cmd(Path::new(EXAMPLE), &u).args([
            "--validate-rollback",
            "--rehearse",
            mode,
        ]));
        assert_eq!(code(&o), Some(2), "{mode}: {:?}", text(&o));
        assert_clean(
            pg,
            &before,
            &format!("validate-migration --rehearse {mode}"),
        )
        .await;
    }
    // In place, on a shard whose statements fail part-way (tenant 2 is the rehearsed shape's
    // representative only if it comes first; force it with a one-shard fleet).
    let mut c = bin();
    c.args([
        "validate-migration",
        "--sql-file",
        EXAMPLE,
        "--target-db",
        &u,
        "--tenant-schemas",
        "tenant_0002",
    ]);
    let o = run(c.args(["--rehearse", "in-place", "--format", "json"]));
    assert_eq!(code(&o), Some(2), "{:?}", text(&o));
    assert!(
        text(&o).0.contains("statement-fails") || text(&o).0.contains("fk-orphans"),
        "{:?}",
        text(&o)
    );
    assert_clean(
        pg,
        &before,
        "validate-migration --rehearse in-place (failing statement)",
    )
    .await;
}

/// `/proc/<pid>/cmdline` of every process, joined with spaces.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        else {
            continue;
        };
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let s = String::from_utf8_lossy(&c).replace('\0', " ");
            if s.contains(needle) {
                out.push(format!("{pid}: {s}"));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_run_and_cleans_up() {
    let fx = fleet(8, true).await;
    let pg = &fx.clusters[0];
    let before = fingerprint_db(&spec(pg)).await;
    // The child's ephemeral clusters go under their own TMPDIR (short path for the socket;
    // traversable by the `postgres` user the clusters run as when the test runs as root).
    let tmp = PathBuf::from(format!("/tmp/dcc-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let mut child = validate_cmd(Path::new(EXAMPLE), &url(pg))
        .arg("--validate-rollback")
        .env("TMPDIR", &tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Wait until the simulation runs (the shadow cluster is starting / calibrating, probes run).
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("no progress from the child");
        let started = line.contains("probing");
        log.push(line);
        if started {
            break;
        }
    }
    // While the run is in flight: the child has a cluster of its own under TMPDIR.
    let mut saw_cluster = false;
    for _ in 0..100 {
        if std::fs::read_dir(&tmp).unwrap().next().is_some() {
            saw_cluster = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) with a pid of our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    // The child must exit by itself (bounded wait, then kill so the test never hangs).
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().unwrap();
    log.extend(rx.try_iter());
    let status = status.unwrap_or_else(|| {
        panic!(
            "deployclaw did not exit after SIGINT; stderr:\n{}",
            log.join("\n")
        )
    });
    assert!(
        saw_cluster,
        "the run had no ephemeral cluster in flight (test did not interrupt mid-run)"
    );
    assert!(
        log.iter().any(|l| l.contains("interrupted")),
        "{}",
        log.join("\n")
    );

    // Nothing left: no cluster directory, no server process of the child, nothing on the target.
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let procs = processes_mentioning(tmp.to_str().unwrap());
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(left.is_empty(), "ephemeral cluster dirs left: {left:?}");
    assert!(
        procs.is_empty(),
        "processes of the child's clusters left: {procs:?}"
    );
    assert_clean(pg, &before, "interrupted validate-migration").await;
    // Cancelled, not "could not reach the fleet" (4) nor a gate verdict.
    assert_eq!(
        status.code(),
        Some(130),
        "interrupted run exits 130; stderr:\n{}",
        log.join("\n")
    );
}

/// Every secret form must be absent from `haystacks`.
fn assert_no_secret(what: &str, haystacks: &[(String, String)], secrets: &[&str]) {
    for (name, h) in haystacks {
        for s in secrets {
            assert!(
                !h.contains(s),
                "{what}: `{name}` contains a secret ({} chars)",
                s.len()
            );
        }
    }
}

fn dir_contents(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_file() {
            out.push((
                p.display().to_string(),
                String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_and_keys_never_appear_in_output_or_reports() {
    const PASSWORD: &str = "S3cr3t-Пароль-'\"`-x9";
    let fx = fleet(3, true).await;
    let pg = &fx.clusters[0];
    common::create_reader(pg, "gate_reader", PASSWORD).await;
    common::require_password_for(pg, "gate_reader").await;
    let before = fingerprint_db(&spec(pg)).await;
    let encoded = common::pct(PASSWORD);
    let secrets = [PASSWORD, encoded.as_str(), "S3cr3t", "Пароль"];
    let with_pw = format!(
        "postgres://gate_reader:{encoded}@127.0.0.1:{}/app",
        pg.port()
    );
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    assert_eq!(
        code(&run(bin().args(["keygen", "--out"]).arg(&key))),
        Some(0)
    );
    let key_text = std::fs::read_to_string(&key).unwrap();
    let key_body: String = key_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();

    // The password really is needed: without it the connection is refused.
    let no_pw = format!("postgres://gate_reader@127.0.0.1:{}/app", pg.port());
    let o = run(bin().args(["topology", "discover", "--target-db", &no_pw]));
    assert_eq!(code(&o), Some(4), "no password must fail: {:?}", text(&o));

    for format in ["json", "text"] {
        let rd = dir.path().join(format!("report-{format}"));
        let o = run(validate_cmd(Path::new(EXAMPLE), &with_pw)
            .args([
                "--validate-rollback",
                "--generate-safety-gates",
                "--format",
                format,
                "--report-dir",
            ])
            .arg(&rd)
            .arg("--sign-key")
            .arg(&key));
        let (out, err) = text(&o);
        assert_eq!(code(&o), Some(2), "password URL, {format}: {err}");
        let mut hay = vec![("stdout".to_string(), out), ("stderr".to_string(), err)];
        hay.extend(dir_contents(&rd));
        assert_no_secret(&format!("validate --format {format}"), &hay, &secrets);
        assert_no_secret(
            &format!("validate --format {format}"),
            &hay,
            &[key_body.as_str()],
        );
    }

    // PGPASSWORD instead of the URL (documented: without a password in the URL, PGPASSWORD
    // applies).
    let rd = dir.path().join("report-env");
    let o = run(validate_cmd(Path::new(EXAMPLE), &no_pw)
        .env("PGPASSWORD", PASSWORD)
        .args(["--validate-rollback", "--format", "json", "--report-dir"])
        .arg(&rd));
    let (out, err) = text(&o);
    assert_eq!(code(&o), Some(2), "PGPASSWORD: {err}");
    let mut hay = vec![("stdout".to_string(), out), ("stderr".to_string(), err)];
    hay.extend(dir_contents(&rd));
    assert_no_secret("validate with PGPASSWORD", &hay, &secrets);

    // Error paths: nothing listening, and a wrong host name, with the password in the URL.
    for target in [
        format!(
            "postgres://gate_reader:{encoded}@127.0.0.1:{}/app",
            dead_port()
        ),
        format!("postgres://gate_reader:{encoded}@no-such-host.invalid:5432/app"),
    ] {
        let o = run(validate_cmd(Path::new(EXAMPLE), &target).args(["--format", "json"]));
        let (out, err) = text(&o);
        assert_eq!(code(&o), Some(4), "unreachable: {err}");
        assert_no_secret(
            "validate (unreachable)",
            &[("stdout".into(), out), ("stderr".into(), err)],
            &secrets,
        );
        let o = run(bin().args(["topology", "discover", "--target-db", &target]));
        let (out, err) = text(&o);
        assert_ne!(code(&o), Some(0));
        assert_no_secret(
            "discover (unreachable)",
            &[("stdout".into(), out), ("stderr".into(), err)],
            &secrets,
        );
    }
    // A wrong password.
    let wrong = format!(
        "postgres://gate_reader:{}@127.0.0.1:{}/app",
        common::pct("Wr0ng-Пароль-zz"),
        pg.port()
    );
    let o = run(validate_cmd(Path::new(EXAMPLE), &wrong));
    let (out, err) = text(&o);
    assert_eq!(code(&o), Some(4), "wrong password: {err}");
    assert_no_secret(
        "validate (wrong password)",
        &[("stdout".into(), out), ("stderr".into(), err)],
        &["Wr0ng", "Wr0ng-%D0"],
    );

    // topology discover and rollback generate with the password.
    for format in ["text", "json"] {
        let o = run(bin().args([
            "topology",
            "discover",
            "--target-db",
            &with_pw,
            "--format",
            format,
        ]));
        let (out, err) = text(&o);
        assert_eq!(code(&o), Some(0), "discover {format}: {err}");
        assert!(
            out.contains("3 shards") || out.contains("tenant_0001"),
            "{out}"
        );
        assert_no_secret(
            &format!("discover --format {format}"),
            &[("stdout".into(), out), ("stderr".into(), err)],
            &secrets,
        );
    }
    let o = run(bin().args([
        "rollback",
        "generate",
        "--sql-file",
        EXAMPLE,
        "--target-db",
        &with_pw,
    ]));
    let (out, err) = text(&o);
    assert_eq!(code(&o), Some(0), "rollback generate: {err}");
    assert_no_secret(
        "rollback generate",
        &[("stdout".into(), out), ("stderr".into(), err)],
        &secrets,
    );

    assert_clean(pg, &before, "password runs").await;
}

/// `--sql-file -` reads the migration from standard input (named `<stdin>` in the report), and
/// without `--report-dir` the reports go to `./deployclaw-report`, which is printed and named in
/// the JSON `output` block; a non-UTF-8 stdin is an input error at its line and column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_migration_and_the_default_report_dir() {
    use std::io::Write as _;
    let fx = fleet(2, false).await;
    let pg = &fx.clusters[0];
    let before = fingerprint_db(&spec(pg)).await;
    let cwd = tempfile::tempdir().unwrap();
    let mut c = validate_cmd(Path::new("-"), &url(pg));
    c.current_dir(cwd.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn deployclaw");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN note text;\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(code(&o), Some(0), "{:?}", text(&o));
    let dir = cwd.path().join("deployclaw-report");
    assert!(
        err.contains("wrote deployclaw-report/report.json"),
        "the default report directory is printed: {err}"
    );
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(j["migration"]["file"], "<stdin>", "{}", j["migration"]);
    assert_eq!(j["migration"]["statements"], 2);
    assert_eq!(
        j["output"]["report_file"], "deployclaw-report/report.json",
        "{}",
        j["output"]
    );
    assert!(dir.join("report.md").is_file());

    let mut c = validate_cmd(Path::new("-"), &url(pg));
    c.current_dir(cwd.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn deployclaw");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT 1;\nSELECT '\xff';\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), Some(3), "{:?}", text(&o));
    assert!(
        text(&o)
            .1
            .contains("<stdin>:2:9: error: the migration is not valid UTF-8"),
        "{:?}",
        text(&o)
    );
    assert_clean(pg, &before, "validate-migration from stdin").await;
}

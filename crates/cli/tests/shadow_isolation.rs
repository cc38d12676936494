//! End to end: with the target's password in `PGPASSWORD` and in a topology file's
//! `password_env` variable, the shadow cluster `deployclaw validate-migration` starts (its
//! postmaster and every backend) inherits neither, and listens on no TCP port. Real binary,
//! real PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::postgres::PgConnectOptions;
use topology::fixture::{FixtureSpec, start_fleet};

/// The shadow cluster directory the run made under `tmp`, with its postmaster pid and port.
fn shadow_under(tmp: &Path) -> Option<(PathBuf, u32, u16)> {
    for e in std::fs::read_dir(tmp).ok()?.flatten() {
        let dir = e.path();
        let Ok(pid_file) = std::fs::read_to_string(dir.join("data/postmaster.pid")) else {
            continue;
        };
        let lines: Vec<&str> = pid_file.lines().collect();
        if lines.len() < 4 {
            continue;
        }
        let (Ok(pid), Ok(port)) = (lines[0].trim().parse(), lines[3].trim().parse()) else {
            continue;
        };
        return Some((dir, pid, port));
    }
    None
}

fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            stat.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(1))
                .and_then(|s| s.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}

fn proc_text(pid: u32, what: &str) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/{what}")).unwrap_or_default())
        .replace('\0', "\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shadow_inherits_no_target_password() {
    let fx = start_fleet(
        1,
        &FixtureSpec {
            tenants: 1,
            rows: 10,
            ..FixtureSpec::default()
        },
    )
    .await
    .expect("fixture fleet");
    let nonce = format!("{}-{:x}", std::process::id(), rand_u64());
    let env_pw = format!("pgpassword-{nonce}");
    let topo_pw = format!("password-env-{nonce}");
    // The run's TMPDIR, where the shadow lives: like /tmp (sticky, world-writable), so that the
    // cluster's OS user can traverse it and its watchdog can remove the cluster's directory.
    let tmp = PathBuf::from(format!("/tmp/dcsi-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let topo = tmp.join("fleet.toml");
    std::fs::write(
        &topo,
        format!(
            "[[instance]]\nname = \"t1\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"postgres\"\n\
             database = \"app\"\npassword_env = \"DC_SHADOW_TEST_PW\"\nschemas = \"tenant_*\"\n",
            fx.clusters[0].port()
        ),
    )
    .unwrap();
    let sql = tmp.join("busy.sql");
    std::fs::write(&sql, "SELECT pg_sleep(600);\n").unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_deployclaw"))
        .args(["validate-migration", "--no-cache", "--sql-file"])
        .arg(&sql)
        .arg("--topology")
        .arg(&topo)
        .env("PGPASSWORD", &env_pw)
        .env("DC_SHADOW_TEST_PW", &topo_pw)
        .env("TMPDIR", &tmp)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start deployclaw");

    // Wait (bounded) until the rehearsal is inside the sleeping statement on the shadow.
    let deadline = Instant::now() + Duration::from_secs(180);
    let (dir, postmaster, port) = loop {
        if let Some((dir, pid, port)) = shadow_under(&tmp) {
            let opts = PgConnectOptions::new_without_pgpass()
                .socket(&dir)
                .port(port)
                .username("postgres")
                .password("")
                .database("postgres");
            if let Ok(mut c) = sqlx::PgConnection::connect_with(&opts).await {
                let sleeping: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query ILIKE '%pg_sleep%'
                       AND pid <> pg_backend_pid())",
                )
                .fetch_one(&mut c)
                .await
                .unwrap_or(false);
                let _ = c.close().await;
                if sleeping {
                    break (dir, pid, port);
                }
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("deployclaw ended before its rehearsal: {status}");
        }
        assert!(Instant::now() < deadline, "the rehearsal never started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // The test's secrets really are in deployclaw's own environment…
    let own = proc_text(child.id(), "environ");
    assert!(own.contains(&env_pw) && own.contains(&topo_pw));
    // …and in no process of the shadow.
    let mut pids = vec![postmaster];
    pids.extend(children_of(postmaster));
    assert!(pids.len() > 2, "the shadow's backends: {pids:?}");
    for p in &pids {
        for what in ["environ", "cmdline"] {
            let text = proc_text(*p, what);
            assert!(!text.contains(&env_pw), "{what} of shadow process {p}");
            assert!(!text.contains(&topo_pw), "{what} of shadow process {p}");
            assert!(
                !text
                    .lines()
                    .any(|l| l.starts_with("PGPASSWORD=") || l.starts_with("DC_SHADOW_TEST_PW=")),
                "{what} of shadow process {p}: {text}"
            );
        }
    }
    // The shadow listens on its socket only.
    let listen = std::fs::read_to_string(dir.join("data/postmaster.pid")).unwrap();
    assert_eq!(listen.lines().nth(5).map(str::trim), Some(""), "{listen}");
    assert!(dir.join(format!(".s.PGSQL.{port}")).exists());

    child.kill().expect("SIGKILL");
    let _ = child.wait();
    // The watchdog stops the shadow and removes its directory.
    let deadline = Instant::now() + Duration::from_secs(60);
    let alive = || std::path::Path::new(&format!("/proc/{postmaster}")).exists();
    while (dir.exists() || alive()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone = !dir.exists() && !alive();
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(gone, "the shadow survived deployclaw's SIGKILL");
}

fn rand_u64() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// End to end: the migration is untrusted input. Neither the rehearsal on the shared ephemeral
/// shadow nor the rollback proof runs it as a superuser, so `COPY … TO PROGRAM` in it cannot
/// run a program on this machine (as the cluster's OS user), and the run says the statement
/// was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_cannot_run_programs_on_the_machine() {
    let fx = start_fleet(
        1,
        &FixtureSpec {
            tenants: 1,
            rows: 10,
            ..FixtureSpec::default()
        },
    )
    .await
    .expect("fixture fleet");
    let tmp = PathBuf::from(format!("/tmp/dcpriv-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let proof = tmp.join("pwned");
    let sql = tmp.join("m.sql");
    std::fs::write(
        &sql,
        format!("COPY (SELECT 1) TO PROGRAM 'touch {}';\n", proof.display()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_deployclaw"))
        .args([
            "validate-migration",
            "--no-cache",
            "--validate-rollback",
            "--format",
            "json",
        ])
        .arg("--sql-file")
        .arg(&sql)
        .arg("--target-db")
        .arg(fx.clusters[0].url_for_db("app"))
        .args(["--tenant-schemas", "tenant_*"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("deployclaw runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!proof.exists(), "COPY TO PROGRAM ran: {stdout}");
    assert!(
        stdout.contains("42501")
            || stdout.contains("permission denied")
            || stdout.contains("must be superuser"),
        "the refusal is reported: {stdout}"
    );
    // Reported as a statement the shadow could not check (yellow), never as the migration
    // failing (red) and never GREEN.
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    let findings: Vec<serde_json::Value> = report["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .flat_map(|s| s["findings"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["rule"] == "statement-fails")
        .collect();
    assert!(!findings.is_empty(), "{stdout}");
    for f in findings {
        assert_eq!(f["severity"], "yellow", "{f}");
        assert!(
            f["message"]
                .as_str()
                .unwrap_or_default()
                .contains("the shadow rehearsal could not run this statement"),
            "{f}"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

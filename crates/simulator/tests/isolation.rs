//! A `pg_dump` child inherits no secret of deployclaw's environment, and its password reaches it
//! only through its private in-memory password file. Real PostgreSQL, real `pg_dump`.

mod common;

use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, Connection as _};

/// Child processes of this process whose command name is `name`.
fn children_named(name: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let comm = stat.split_once('(').and_then(|(_, r)| r.rsplit_once(')'));
            let Some((comm, rest)) = comm else {
                return false;
            };
            let ppid = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok());
            comm == name && ppid == Some(me)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_dump_inherits_no_secret() {
    let nonce = format!("{}-{:x}", std::process::id(), rand::random::<u64>());
    let env_secret = format!("pgpassword-{nonce}");
    let topo_secret = format!("password-env-{nonce}");
    let spec_secret = format!("spec-{nonce}");
    // SAFETY: this test binary has one test; nothing else reads these variables concurrently.
    unsafe {
        std::env::set_var("PGPASSWORD", &env_secret);
        std::env::set_var("DC_TEST_TOPOLOGY_PASSWORD", &topo_secret);
    }
    let pg = common::start().await;
    common::create_db(&pg, "app").await;
    common::exec(
        &pg,
        "app",
        "CREATE SCHEMA tenant_1; CREATE TABLE tenant_1.t (id int PRIMARY KEY)",
    )
    .await;
    let mut spec = pg.connection_spec();
    spec.password = Some(topology::Secret::new(spec_secret.clone()));

    // Hold a lock pg_dump must wait for (it waits up to its --lock-wait-timeout), so the child
    // can be looked at while it runs.
    let mut holder = common::conn(&pg, "app").await;
    sqlx::raw_sql(AssertSqlSafe(
        "BEGIN; LOCK TABLE tenant_1.t IN ACCESS EXCLUSIVE MODE".to_string(),
    ))
    .execute(&mut holder)
    .await
    .unwrap();
    let bin = pg.bin_dir().to_path_buf();
    let dump = tokio::spawn({
        let spec = spec.clone();
        async move { simulator::dump_schemas(&bin, &spec, "app", &["tenant_1".to_string()]).await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = loop {
        if let Some(p) = children_named("pg_dump").first() {
            break *p;
        }
        assert!(Instant::now() < deadline, "pg_dump never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    sqlx::raw_sql(AssertSqlSafe("ROLLBACK".to_string()))
        .execute(&mut holder)
        .await
        .unwrap();
    let _ = holder.close().await;
    let script = dump.await.unwrap().expect("pg_dump succeeds");
    assert!(String::from_utf8_lossy(&script).contains("tenant_1"));

    let environ = String::from_utf8_lossy(&environ).replace('\0', "\n");
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(!environ.is_empty(), "environ of pg_dump is readable");
    for secret in [&env_secret, &topo_secret, &spec_secret] {
        assert!(
            !environ.contains(secret.as_str()),
            "secret in environ:\n{environ}"
        );
        assert!(
            !cmdline.contains(secret.as_str()),
            "secret in cmdline: {cmdline}"
        );
    }
    let names: Vec<&str> = environ
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    assert!(!names.contains(&"PGPASSWORD"), "{environ}");
    assert!(!names.contains(&"DC_TEST_TOPOLOGY_PASSWORD"), "{environ}");
    assert!(names.contains(&"PGPASSFILE"), "{environ}");
    // Exactly the variables deployclaw sets: the scrubbed base plus this connection's libpq ones.
    for n in &names {
        assert!(
            [
                "PATH",
                "HOME",
                "LC_ALL",
                "LANG",
                "TZ",
                "PGHOST",
                "PGPORT",
                "PGUSER",
                "PGDATABASE",
                "PGAPPNAME",
                "PGCONNECT_TIMEOUT",
                "PGSSLMODE",
                "PGPASSFILE",
            ]
            .contains(n),
            "unexpected variable {n} in pg_dump's environment:\n{environ}"
        );
    }
    assert!(
        fds.iter().any(|f| f.contains("memfd:deployclaw-pgpass")),
        "{fds:?}"
    );
}

//! Ephemeral cluster lifecycle on real PostgreSQL.

use topology::ephemeral::{EphemeralOptions, EphemeralPg};

fn pid_of(pg: &EphemeralPg) -> i32 {
    let pidfile =
        std::fs::read_to_string(pg.data_dir().join("postmaster.pid")).expect("postmaster.pid");
    pidfile
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid")
}

fn alive(pid: i32) -> bool {
    // A zombie or a reused pid would fool kill(0); check /proc state too.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.split_whitespace().nth(2).is_none_or(|st| st != "Z"),
        Err(_) => false,
    }
}

#[tokio::test]
async fn start_query_and_drop_removes_everything() {
    let pg = EphemeralPg::start(EphemeralOptions::default()).expect("start");
    assert!(pg.version() >= 13, "version {}", pg.version());
    assert!(pg.url().starts_with("postgres://postgres@127.0.0.1:"));
    assert!(
        pg.socket_dir()
            .join(format!(".s.PGSQL.{}", pg.port()))
            .exists()
    );
    assert!(pg.socket_dir().as_os_str().len() + 20 < 107);

    let pool = pg.pool("postgres", 2).await.expect("pool");
    let (v,): (String,) = sqlx::query_as("show server_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(v.starts_with(&pg.version().to_string()), "{v}");
    let (fsync,): (String,) = sqlx::query_as("show fsync").fetch_one(&pool).await.unwrap();
    assert_eq!(fsync, "off");
    pool.close().await;

    // Connect through the URL and the connection spec, too.
    let spec = pg.connection_spec();
    let pool2 = spec.connect_pool("eph", 1).await.expect("spec connect");
    let (one,): (i32,) = sqlx::query_as("select 1").fetch_one(&pool2).await.unwrap();
    assert_eq!(one, 1);
    pool2.close().await;

    let dir = pg.socket_dir().to_path_buf();
    let pid = pid_of(&pg);
    assert!(alive(pid));
    drop(pg);
    assert!(!dir.exists(), "dir {dir:?} still exists");
    assert!(!alive(pid), "postmaster {pid} still running");
}

#[test]
fn explicit_stop_reports_success() {
    let pg = EphemeralPg::start(EphemeralOptions::default()).expect("start");
    let dir = pg.socket_dir().to_path_buf();
    pg.stop().expect("stop");
    assert!(!dir.exists());
}

#[test]
fn missing_binaries_error_names_the_package() {
    let opts = EphemeralOptions {
        bin_dir: Some("/nonexistent/pg/bin".into()),
        ..Default::default()
    };
    let err = EphemeralPg::start(opts).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`postgresql`"), "{msg}");
    assert!(msg.contains("/nonexistent/pg/bin"), "{msg}");
}

/// When the owning process dies without running destructors (SIGKILL), the watchdog stops the
/// server and removes the directory.
#[test]
fn watchdog_cleans_up_after_sigkill() {
    if std::env::var("DC_EPHEMERAL_CHILD").is_ok() {
        let pg = EphemeralPg::start(EphemeralOptions::default()).expect("start");
        println!("CHILD_READY {} {}", pid_of(&pg), pg.socket_dir().display());
        std::mem::forget(pg);
        std::thread::sleep(std::time::Duration::from_secs(60));
        return;
    }
    use std::io::BufRead as _;
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "watchdog_cleans_up_after_sigkill",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DC_EPHEMERAL_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(stdout);
    let (pid, dir) = loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("child exited without starting a cluster");
        }
        if let Some(rest) = line.find("CHILD_READY ").map(|i| &line[i + 12..]) {
            let mut it = rest.split_whitespace();
            let pid: i32 = it.next().unwrap().parse().unwrap();
            let dir = std::path::PathBuf::from(it.next().unwrap());
            break (pid, dir);
        }
    };
    assert!(alive(pid));
    child.kill().unwrap();
    child.wait().unwrap();
    let mut gone = false;
    for _ in 0..100 {
        if !alive(pid) && !dir.exists() {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        gone,
        "server {pid} or dir {dir:?} survived the owner's SIGKILL"
    );
}

fn templates(cache: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(cache)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("pg-template-"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

async fn works(pg: &EphemeralPg) {
    let pool = pg.pool("postgres", 1).await.expect("pool");
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_database")
        .fetch_one(&pool)
        .await
        .expect("query");
    assert!(n >= 3, "{n} databases");
    pool.close().await;
}

/// With a template cache the first cluster is made by initdb and kept (never started) as the
/// template; the next ones are copies of it. A template that does not start is thrown away and
/// rebuilt; one that is incomplete is ignored; clusters never share a data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_cache_is_used_verified_and_rebuilt() {
    let cache = tempfile::tempdir().expect("cache dir");
    let opts = EphemeralOptions {
        template_cache: Some(cache.path().join("deployclaw")),
        ..EphemeralOptions::default()
    };
    let cache_dir = cache.path().join("deployclaw");

    let a = EphemeralPg::start_async(opts.clone()).await.expect("first");
    works(&a).await;
    // The first cluster started before its template was stored (in the background).
    a.wait_for_template();
    let t = templates(&cache_dir);
    assert_eq!(t.len(), 1, "one template after the first start: {t:?}");
    let tpl = t[0].clone();
    assert!(tpl.join("PG_VERSION").is_file());
    assert!(
        !tpl.join("postmaster.pid").exists(),
        "the template must never be started"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&tpl).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "template readable by others: {mode:o}");

    // The second cluster comes from the template: its own directory, same contents.
    let b = EphemeralPg::start_async(opts.clone())
        .await
        .expect("second");
    works(&b).await;
    assert_ne!(a.data_dir(), b.data_dir());
    assert_eq!(templates(&cache_dir), vec![tpl.clone()]);
    drop(a);
    drop(b);

    // A broken template (it starts no server) is discarded and rebuilt by initdb.
    std::fs::write(tpl.join("postgresql.conf"), "this is not a setting\n").unwrap();
    let c = EphemeralPg::start_async(opts.clone())
        .await
        .expect("after a broken template");
    works(&c).await;
    let conf = std::fs::read_to_string(tpl.join("postgresql.conf")).expect("template rebuilt");
    assert!(
        !conf.contains("this is not a setting"),
        "the broken template was not replaced"
    );
    drop(c);

    // An incomplete one (no pg_control) is not used at all, and replaced.
    std::fs::remove_file(tpl.join("global/pg_control")).unwrap();
    let d = EphemeralPg::start_async(opts)
        .await
        .expect("after an incomplete template");
    works(&d).await;
    d.wait_for_template();
    assert!(tpl.join("global/pg_control").is_file());
    drop(d);
}

async fn spare_count(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'deployclaw\\_spare\\_%'",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("count spares")
}

/// Spare databases are made once, in the template (by the single-user backend, so the
/// template is still a cleanly shut down, never-started cluster), and travel with every copy:
/// `create_database` renames them — names that need quoting included — and creates databases
/// once none is left. Each database it hands out is empty and usable. A cluster without spares
/// (no template) creates every time; the RAM-backed base directory is honoured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spare_databases_are_renamed_then_created() {
    use sqlx::Connection as _;
    use topology::ephemeral::{create_database, memory_temp_dir};
    let cache = tempfile::tempdir().expect("cache dir");
    let opts = EphemeralOptions {
        template_cache: Some(cache.path().join("deployclaw")),
        spare_databases: 2,
        base_dir: memory_temp_dir(1 << 30),
        ..EphemeralOptions::default()
    };
    // Round 0 runs initdb, starts at once without spares and makes the template (with its
    // spares) in the background; round 1 copies it.
    let first = EphemeralPg::start_async(opts.clone()).await.expect("start");
    {
        let mut conn = sqlx::PgConnection::connect_with(&first.connect_options("postgres"))
            .await
            .expect("connect");
        assert_eq!(
            spare_count(&mut conn).await,
            0,
            "the cold cluster has no spares"
        );
        create_database(&mut conn, "dc_cold", true)
            .await
            .expect("created without a spare");
        let _ = conn.close().await;
    }
    first.wait_for_template();
    drop(first);
    for round in 0..2 {
        let pg = EphemeralPg::start_async(opts.clone()).await.expect("start");
        if let Some(base) = &opts.base_dir {
            assert!(pg.data_dir().starts_with(base), "{:?}", pg.data_dir());
        }
        let t = templates(&cache.path().join("deployclaw"));
        assert_eq!(t.len(), 1, "round {round}: {t:?}");
        assert!(!t[0].join("postmaster.pid").exists());
        let mut conn = sqlx::PgConnection::connect_with(&pg.connect_options("postgres"))
            .await
            .expect("connect");
        assert_eq!(spare_count(&mut conn).await, 2, "round {round}");
        let names = ["dc_first", "we\"ird name ü", "dc_third"];
        for (i, name) in names.iter().enumerate() {
            create_database(&mut conn, name, true)
                .await
                .expect("create");
            let left = spare_count(&mut conn).await;
            assert_eq!(left, (1 - i as i64).max(0), "round {round}, after {name}");
            // Usable and empty (a copy of template0).
            let mut db = sqlx::PgConnection::connect_with(&pg.connect_options(name))
                .await
                .expect("connect to the new database");
            let tables: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')",
            )
            .fetch_one(&mut db)
            .await
            .unwrap();
            assert_eq!(tables, 0, "{name} is not empty");
            sqlx::raw_sql("CREATE TABLE t (a int); INSERT INTO t VALUES (1)")
                .execute(&mut db)
                .await
                .expect("write into the new database");
            db.close().await.unwrap();
        }
        // A name that exists already is an error, not a silent reuse.
        assert!(create_database(&mut conn, "dc_first", true).await.is_err());
        conn.close().await.unwrap();
    }

    // Without a template there are no spares: CREATE DATABASE every time.
    let plain = EphemeralPg::start_async(EphemeralOptions {
        spare_databases: 2,
        ..EphemeralOptions::default()
    })
    .await
    .expect("plain");
    let mut conn = sqlx::PgConnection::connect_with(&plain.connect_options("postgres"))
        .await
        .expect("connect");
    assert_eq!(spare_count(&mut conn).await, 0);
    create_database(&mut conn, "dc_plain", true)
        .await
        .expect("create");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'dc_plain')")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(exists);
    conn.close().await.unwrap();
}

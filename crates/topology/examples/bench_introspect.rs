//! Benchmark: introspect N tenant schemas (~7 tables each) on one instance, against a single
//! `pg_dump --schema-only` of the same database as the baseline.
//!
//! ```text
//! cargo run --release -p topology --example bench_introspect -- [TENANTS] [RUNS]
//! ```
//!
//! Starts an ephemeral cluster, creates the fixture (timed), then alternates, RUNS times: one
//! `introspect_schemas` call for all tenants over a fresh 1-connection pool, the same over a
//! fresh 2-connection pool (schemas split in two chunks), and one `pg_dump --schema-only`. Prints
//! min / median of each and the ratios. Every run starts a new server backend (cold caches), as a
//! CLI invocation would.
//!
//! `--serve` instead prints the database URL and keeps the cluster up until stdin closes, so the
//! two can be compared under hyperfine (see BENCHMARKS.md); `--once URL [CONNS]` runs
//! one introspection of every `tenant_*` schema at URL over CONNS connections (default 1).

use std::time::{Duration, Instant};

use topology::catalog::introspect_schemas;
use topology::ephemeral::{EphemeralOptions, EphemeralPg};
use topology::fixture::{FixtureSpec, create_tenants};
use topology::{ConnectionSpec, DiscoverySpec, Instance, discover_on_instance};

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn tenant_schemas(conn: &ConnectionSpec) -> Vec<String> {
    let inst = Instance {
        name: "bench".into(),
        connection: conn.clone(),
        labels: Default::default(),
        replica_of: None,
    };
    discover_on_instance(&inst, &DiscoverySpec::schemas("tenant_*"))
        .await
        .expect("discover")
        .into_iter()
        .map(|s| s.location.schema().to_string())
        .collect()
}

async fn introspect_once(
    conn: &ConnectionSpec,
    schemas: &[String],
    conns: u32,
) -> (Duration, usize, usize) {
    let t0 = Instant::now();
    let pool = conn.connect_pool("bench", conns).await.expect("connect");
    let cats = introspect_schemas(&pool, schemas)
        .await
        .expect("introspect");
    let el = t0.elapsed();
    pool.close().await;
    let tables = cats.values().map(|c| c.tables.len()).sum();
    (el, cats.len(), tables)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--once") {
        let url = args.get(1).expect("--once URL");
        let conn = ConnectionSpec::from_url(url).expect("url");
        let schemas = tenant_schemas(&conn).await;
        let conns = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(1);
        let (el, n, t) = introspect_once(&conn, &schemas, conns).await;
        eprintln!(
            "introspected {n} schemas / {t} tables in {:.1} ms",
            el.as_secs_f64() * 1e3
        );
        return;
    }
    let serve = args.iter().any(|a| a == "--serve");
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let tenants = nums.first().copied().unwrap_or(1000);
    let runs = nums.get(1).copied().unwrap_or(5).max(1);

    let t0 = Instant::now();
    let pg = EphemeralPg::start(EphemeralOptions::default()).expect("start");
    eprintln!(
        "ephemeral PostgreSQL {} started in {:.0} ms",
        pg.version(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    let spec = FixtureSpec {
        tenants,
        rows: 50,
        ..Default::default()
    };
    let t0 = Instant::now();
    create_tenants(&pg.connection_spec(), &spec)
        .await
        .expect("fixture");
    eprintln!(
        "created {tenants} tenant schemas (rows={}) in {:.1} s",
        spec.rows,
        t0.elapsed().as_secs_f64()
    );
    let conn = pg.connection_spec().with_database("app");
    let url = pg.url_for_db("app");

    if serve {
        println!("{url}");
        let mut s = String::new();
        while std::io::stdin()
            .read_line(&mut s)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
        return;
    }

    let schemas = tenant_schemas(&conn).await;
    let pg_dump = pg.bin_dir().join("pg_dump");
    let mut intro = Vec::new();
    let mut intro2 = Vec::new();
    let mut dump = Vec::new();
    let mut last = (0, 0);
    let mut dump_bytes = 0;
    // Warm-up of both (catalog caches).
    let _ = introspect_once(&conn, &schemas, 1).await;
    for _ in 0..runs {
        let (el, n, t) = introspect_once(&conn, &schemas, 1).await;
        intro.push(el);
        last = (n, t);
        let (el, _, _) = introspect_once(&conn, &schemas, 2).await;
        intro2.push(el);
        let t0 = Instant::now();
        let out = std::process::Command::new(&pg_dump)
            .args(["--schema-only", "--no-sync", "-d", &url])
            .output()
            .expect("pg_dump");
        dump.push(t0.elapsed());
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dump_bytes = out.stdout.len();
    }
    let (mi, md) = (*intro.iter().min().unwrap(), median(&mut intro));
    let (mi2, md2) = (*intro2.iter().min().unwrap(), median(&mut intro2));
    let (dmi, dmd) = (*dump.iter().min().unwrap(), median(&mut dump));
    println!("schemas: {}, tables: {}, runs: {runs}", last.0, last.1);
    println!(
        "introspect_schemas, 1 connection:  min {:.0} ms, median {:.0} ms",
        mi.as_secs_f64() * 1e3,
        md.as_secs_f64() * 1e3
    );
    println!(
        "introspect_schemas, 2 connections: min {:.0} ms, median {:.0} ms",
        mi2.as_secs_f64() * 1e3,
        md2.as_secs_f64() * 1e3
    );
    println!(
        "pg_dump --schema-only: min {:.0} ms, median {:.0} ms ({} KiB of SQL)",
        dmi.as_secs_f64() * 1e3,
        dmd.as_secs_f64() * 1e3,
        dump_bytes / 1024
    );
    println!(
        "ratio pg_dump / introspect (median): {:.1}x with 1 connection, {:.1}x with 2",
        dmd.as_secs_f64() / md.as_secs_f64(),
        dmd.as_secs_f64() / md2.as_secs_f64()
    );
}

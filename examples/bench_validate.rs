//! End-to-end benchmark of `validate` (issue: 100 and 1,000 tenant schemas over 3 local
//! instances) against the baseline of `psql` applying the same migration and its rollback to
//! every shard in a transaction.
//!
//! ```sh
//! cargo run --release --example bench_validate -- 100 3     # tenants, runs
//! cargo run --release --example bench_validate -- 1000 3
//! BENCH_INSTANCES=10 BENCH_PSQL_FLEET=1 cargo run --release --example bench_validate -- 10000 1
//! BENCH_CORPUS=/work/shared/corpus/docs.rs BENCH_MIGRATION=20260416031709_builds-memory-peak \
//!     cargo run --release --example bench_validate -- 1 5      # one shard, a real migration
//! ```
//!
//! The fleet has no planted problems (so the psql baseline runs through on every shard), 60
//! rows per tenant. Both are timed on the same fleet in the same process run, interleaved (one
//! validation, then one psql run); the fleet setup is not timed. `BENCH_INSTANCES` sets the
//! number of instances (3); `BENCH_PSQL_FLEET=1` creates the tenants with one `psql` script per
//! instance (fast for 10,000 schemas); `BENCH_CORPUS` + `BENCH_MIGRATION` make a one-shard fleet:
//! database `app` holding a corpus project's history (the up scripts of its `ORDER.txt` before
//! `BENCH_MIGRATION`), and validate that migration's up script.

use std::path::{Path, PathBuf};
use std::time::Instant;

use deployclaw::pipeline::{ValidateOptions, validate};
use deployclaw::simulator::{CancelToken, NoProgress};
use deployclaw::topology::ephemeral::{EphemeralOptions, EphemeralPg};
use deployclaw::topology::fixture::{FixtureSpec, start_fleet, tenant_sql};
use deployclaw::topology::{Fleet, Instance, Shard, ShardLocation};

const MIGRATION: &str = include_str!("migrations/schema_v42.sql");

/// The fleet under test and what keeps it alive.
struct BenchFleet {
    fleet: Fleet,
    _clusters: Vec<EphemeralPg>,
    /// The migration to validate.
    migration: String,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let tenants: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    let cache = args.get(3).map(String::as_str) != Some("nocache");
    let instances: usize = std::env::var("BENCH_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let t = Instant::now();
    let fleet = bench_fleet(tenants, instances).await?;
    eprintln!(
        "fleet: {} shards on {} instances in {:.1} s",
        fleet.fleet.shards.len(),
        fleet.fleet.instances.len(),
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let sql_file = dir.path().join("migration.sql");
    std::fs::write(&sql_file, &fleet.migration)?;

    if let Ok(windows) = std::env::var("BENCH_LIVE_COMPARE") {
        return live_overhead(&sql_file, &fleet.fleet, runs, &windows, dir.path()).await;
    }

    let mut ours = Vec::new();
    let mut baseline = Vec::new();
    let mut scripts = Vec::new();
    for run in 0..runs {
        let mut opts = ValidateOptions::new(&sql_file);
        opts.validate_rollback = true;
        // As the CLI does: a cache directory for the shadow's initdb template and calibration.
        // It starts empty in every bench process, so run 1 is cold and later runs are warm.
        if cache {
            opts.cache_dir = Some(dir.path().join("cache"));
        }
        // Profiling knobs (not used for the figures in BENCHMARKS.md): leave out a part.
        if std::env::var_os("BENCH_NO_REHEARSAL").is_some() {
            opts.sim.rehearsal = deployclaw::simulator::RehearsalMode::Skip;
        }
        if std::env::var_os("BENCH_NO_ROLLBACK").is_some() {
            opts.validate_rollback = false;
        }
        let load = loadavg();
        let t = Instant::now();
        let cpu0 = busy_cpu_s();
        let own0 = own_cpu_s();
        let report = validate(&opts, &fleet.fleet, &NoProgress, &CancelToken::new()).await?;
        ours.push(t.elapsed().as_secs_f64());
        let cpu = busy_cpu_s() - cpu0;
        let own = own_cpu_s() - own0;
        if std::env::var_os("BENCH_STEPS").is_some() {
            for st in report.steps.iter().filter(|s| s.action != "probe shard") {
                eprintln!(
                    "  {:>6} ms  {:<18} {}",
                    st.duration_ms, st.action, st.details
                );
            }
            for r in &report.rehearsals {
                for st in &r.statements {
                    eprintln!("  {:>6} ms    rehearsed: {}", st.duration_ms, st.sql);
                }
            }
        }
        eprintln!(
            "run {}: deployclaw validate {:.2} s, {cpu:.2} CPU-s machine-wide, {own:.2} in this process ({} shards, gate {}; load {load})",
            run + 1,
            ours.last().copied().unwrap_or_default(),
            report.shards.len(),
            report.gate
        );
        if scripts.is_empty() {
            let rollback = report.rollback.script.clone().unwrap_or_default();
            scripts = psql_scripts(&fleet, &rollback, dir.path())?;
        }
        let t = Instant::now();
        let cpu0 = busy_cpu_s();
        run_psql_scripts(&scripts)?;
        baseline.push(t.elapsed().as_secs_f64());
        eprintln!(
            "run {}: psql baseline {:.2} s, {:.2} CPU-s machine-wide",
            run + 1,
            baseline.last().copied().unwrap_or_default(),
            busy_cpu_s() - cpu0
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let warm = |v: &[f64]| if v.len() > 1 { mean(&v[1..]) } else { mean(v) };
    println!(
        "tenants={} instances={} runs={runs} deployclaw_first_s={:.2} deployclaw_warm_mean_s={:.2} deployclaw_min_s={:.2} psql_mean_s={:.2} psql_min_s={:.2} ratio_first={:.2} ratio_warm={:.2} ratio_mean={:.2} peak_rss_mib={}",
        fleet.fleet.shards.len(),
        fleet.fleet.instances.len(),
        ours.first().copied().unwrap_or_default(),
        warm(&ours),
        ours.iter().copied().fold(f64::INFINITY, f64::min),
        mean(&baseline),
        baseline.iter().copied().fold(f64::INFINITY, f64::min),
        ours.first().copied().unwrap_or_default() / mean(&baseline).max(1e-9),
        warm(&ours) / warm(&baseline).max(1e-9),
        mean(&ours) / mean(&baseline).max(1e-9),
        peak_rss_mib()
    );
    Ok(())
}

/// The fleet of this bench run (see the module doc).
async fn bench_fleet(
    tenants: usize,
    instances: usize,
) -> Result<BenchFleet, Box<dyn std::error::Error>> {
    if let Some(corpus) = std::env::var_os("BENCH_CORPUS") {
        let name = std::env::var("BENCH_MIGRATION")?;
        return corpus_fleet(Path::new(&corpus), &name).await;
    }
    let psql_fleet = std::env::var_os("BENCH_PSQL_FLEET").is_some();
    let spec = FixtureSpec {
        // With psql scripts: one tenant per instance through the fixture (it makes the
        // database and the shared schema), the rest below.
        tenants: if psql_fleet { instances } else { tenants },
        rows: 60,
        concurrency: 8,
        // Analyzed, as production tables are: otherwise autovacuum analyzes thousands of fresh
        // tables in the background of the measured runs.
        analyze: true,
        ..FixtureSpec::default()
    };
    let mut f = start_fleet(instances, &spec).await?;
    if psql_fleet {
        let dir = tempfile::tempdir()?;
        let bin = deployclaw::topology::ephemeral::find_bin_dir()?;
        let per = tenants.div_ceil(instances);
        let mut children = Vec::new();
        let mut shards = Vec::new();
        for (i, inst) in f.fleet.instances.iter().enumerate() {
            let mut script =
                String::from("\\set ON_ERROR_STOP 1\nSET client_min_messages = warning;\n");
            for n in (i * per + 1)..=((i + 1) * per).min(tenants) {
                let schema = spec.tenant_name(n);
                if n > instances {
                    script.push_str(&tenant_sql(&schema, spec.rows, &[], true));
                }
                shards.push(Shard::new(
                    &inst.name,
                    ShardLocation::Schema {
                        database: "app".into(),
                        schema,
                    },
                ));
            }
            script.push_str("ANALYZE;\n");
            let path = dir.path().join(format!("fleet-{}.sql", inst.name));
            std::fs::write(&path, script)?;
            children.push(psql(&bin, &inst.connection.with_database("app"), &path).spawn()?);
        }
        for mut ch in children {
            if !ch.wait()?.success() {
                return Err("psql fleet script failed".into());
            }
        }
        // Tenants 1..=instances were made by the fixture, one on each instance: keep them on
        // the instance that holds them.
        shards.retain(|s| {
            f.fleet
                .shards
                .iter()
                .all(|o| o.location.schema() != s.location.schema())
        });
        shards.extend(f.fleet.shards.iter().cloned());
        let order: Vec<String> = f.fleet.instances.iter().map(|i| i.name.clone()).collect();
        shards.sort_by_key(|s| order.iter().position(|n| *n == s.instance));
        f.fleet.shards = shards;
    }
    Ok(BenchFleet {
        fleet: f.fleet,
        _clusters: f.clusters,
        migration: MIGRATION.to_owned(),
    })
}

/// One instance, one database `app` holding the history of the corpus project `corpus` up to
/// (not including) migration `name`; the shard is its `public` schema.
async fn corpus_fleet(corpus: &Path, name: &str) -> Result<BenchFleet, Box<dyn std::error::Error>> {
    let pg = EphemeralPg::start_async(EphemeralOptions::default()).await?;
    let bin = deployclaw::topology::ephemeral::find_bin_dir()?;
    let admin = pg.connection_spec();
    let st = std::process::Command::new(bin.join("psql"))
        .args([
            "-X",
            "-q",
            "-h",
            &admin.host,
            "-p",
            &admin.port.to_string(),
            "-U",
            &admin.user,
        ])
        .args(["-d", "postgres", "-c", "CREATE DATABASE app"])
        .status()?;
    if !st.success() {
        return Err("CREATE DATABASE app failed".into());
    }
    let app = admin.with_database("app");
    let order = std::fs::read_to_string(corpus.join("ORDER.txt"))?;
    let mut migration = None;
    for m in order.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let up = up_script(corpus, m);
        if m == name {
            migration = Some(std::fs::read_to_string(&up)?);
            break;
        }
        let st = psql(&bin, &app, &up)
            .arg("-1")
            .stdout(std::process::Stdio::null())
            .status()?;
        if !st.success() {
            return Err(format!("applying {} failed", up.display()).into());
        }
    }
    let migration = migration.ok_or_else(|| format!("{name} is not in ORDER.txt"))?;
    let instance = Instance {
        name: "pg-1".into(),
        connection: admin,
        labels: Default::default(),
        replica_of: None,
    };
    let shard = Shard::new(
        "pg-1",
        ShardLocation::Database {
            database: "app".into(),
            schema: "public".into(),
        },
    );
    Ok(BenchFleet {
        fleet: Fleet {
            instances: vec![instance],
            shards: vec![shard],
        },
        _clusters: vec![pg],
        migration,
    })
}

/// The up script of migration `m` of a corpus project (Diesel directories or flat files).
fn up_script(corpus: &Path, m: &str) -> PathBuf {
    let dir = corpus.join("migrations").join(m).join("up.sql");
    if dir.is_file() {
        dir
    } else {
        corpus.join("migrations").join(format!("{m}.up.sql"))
    }
}

/// `psql -X -q` against `c` running `file`, stopping at the first error.
fn psql(
    bin: &Path,
    c: &deployclaw::topology::ConnectionSpec,
    file: &Path,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin.join("psql"));
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", &c.host])
        .args([
            "-p",
            &c.port.to_string(),
            "-U",
            &c.user,
            "-d",
            &c.database,
            "-f",
        ])
        .arg(file)
        .stdout(std::process::Stdio::null());
    cmd
}

/// The baseline's scripts, one per instance: for every shard `BEGIN; SET LOCAL search_path;
/// <migration>; <generated rollback>; ROLLBACK;` (CONCURRENTLY stripped so it runs in a
/// transaction).
fn psql_scripts(
    fleet: &BenchFleet,
    rollback: &str,
    dir: &Path,
) -> Result<Vec<(deployclaw::topology::ConnectionSpec, PathBuf)>, Box<dyn std::error::Error>> {
    let strip = |sql: &str| -> String {
        sql.lines()
            .filter(|l| {
                let u = l.trim().to_ascii_uppercase();
                !(u.starts_with("BEGIN")
                    || u.starts_with("COMMIT")
                    || u.starts_with("SET LOCK_TIMEOUT"))
            })
            .collect::<Vec<_>>()
            .join("\n")
            .replace("CONCURRENTLY ", "")
    };
    let body = format!("{}\n{}\n", strip(&fleet.migration), strip(rollback));
    let mut scripts = Vec::new();
    for inst in &fleet.fleet.instances {
        let mut by_db: std::collections::BTreeMap<&str, String> = Default::default();
        for shard in fleet.fleet.shards_on(&inst.name) {
            by_db
                .entry(shard.location.database())
                .or_default()
                .push_str(&format!(
                    "BEGIN;\nSET LOCAL search_path TO \"{}\", public;\n{body}ROLLBACK;\n",
                    shard.location.schema()
                ));
        }
        for (db, s) in by_db {
            let path = dir.join(format!("{}-{db}.sql", inst.name));
            std::fs::write(&path, s)?;
            scripts.push((inst.connection.with_database(db), path));
        }
    }
    Ok(scripts)
}

/// Run the baseline: one psql per script, all at once.
fn run_psql_scripts(
    scripts: &[(deployclaw::topology::ConnectionSpec, PathBuf)],
) -> Result<(), Box<dyn std::error::Error>> {
    let bin = deployclaw::topology::ephemeral::find_bin_dir()?;
    let children: Vec<_> = scripts
        .iter()
        .map(|(c, path)| psql(&bin, c, path).spawn())
        .collect::<Result<_, _>>()?;
    for mut ch in children {
        if !ch.wait()?.success() {
            return Err("psql baseline failed".into());
        }
    }
    Ok(())
}

/// `BENCH_LIVE_COMPARE=2000,1000`: the overhead of the live workload reads (issue 16). Each
/// run validates the fleet with the live reads off (`LiveOptions { enabled: false, .. }`) and on
/// with each traffic window (ms) given, interleaved in a rotating order, warm (the first,
/// cold run of the process is not counted). Prints the mean and min of each and the same-run
/// ratio on/off.
async fn live_overhead(
    sql_file: &std::path::Path,
    fleet: &deployclaw::topology::Fleet,
    runs: usize,
    windows: &str,
    dir: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    use deployclaw::simulator::LiveOptions;
    use std::time::Duration;
    let mut configs: Vec<(String, LiveOptions)> = vec![(
        "off".into(),
        LiveOptions {
            enabled: false,
            ..LiveOptions::default()
        },
    )];
    for w in windows
        .split(',')
        .filter_map(|w| w.trim().parse::<u64>().ok())
    {
        configs.push((
            format!("on, window {w} ms"),
            LiveOptions {
                enabled: true,
                traffic_window: Duration::from_millis(w),
                ..LiveOptions::default()
            },
        ));
    }
    let run = |live: LiveOptions| {
        let mut opts = ValidateOptions::new(sql_file);
        opts.validate_rollback = true;
        opts.cache_dir = Some(dir.join("cache"));
        opts.sim.live = live;
        async move {
            let t = Instant::now();
            let report = validate(&opts, fleet, &NoProgress, &CancelToken::new()).await?;
            Ok::<_, Box<dyn std::error::Error>>((t.elapsed().as_secs_f64(), report))
        }
    };
    // Warm-up: initdb template, calibration, the servers' caches.
    run(configs[0].1.clone()).await?;
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for r in 0..runs {
        for k in 0..configs.len() {
            let i = (r + k) % configs.len();
            let (secs, report) = run(configs[i].1.clone()).await?;
            let live = report.shards.iter().filter(|s| !s.live.is_empty()).count();
            eprintln!(
                "run {r} live {:<18} {secs:.2} s ({live} shards with a live section, gate {})",
                configs[i].0, report.gate
            );
            times[i].push(secs);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    for (i, (name, _)) in configs.iter().enumerate() {
        println!(
            "live {name:<18} mean {:.2} s  min {:.2} s  ratio to off: mean {:.3}  min {:.3}",
            mean(&times[i]),
            min(&times[i]),
            mean(&times[i]) / mean(&times[0]),
            min(&times[i]) / min(&times[0])
        );
    }
    Ok(())
}

/// The 1-minute load average (`/proc/loadavg`), as text.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

/// Peak resident set size of this process so far (`VmHWM`), in MiB.
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// CPU time (user + nice + system + irq + softirq) spent by the whole machine so far, in
/// seconds, from `/proc/stat` (0 where it cannot be read). The difference over a run shows how
/// much of the 2 cores the run kept busy: every process counts, the servers included.
fn busy_cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = stat.lines().next() else {
        return 0.0;
    };
    // cpu user nice system idle iowait irq softirq steal ...
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let busy: f64 = [0usize, 1, 2, 5, 6].iter().filter_map(|&i| f.get(i)).sum();
    // USER_HZ is 100 on Linux.
    busy / 100.0
}

/// CPU time (user + system) of this process so far, in seconds, from `/proc/self/stat`.
fn own_cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the `(comm)`: state is field 3; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11usize, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|x| x.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

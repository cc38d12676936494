//! End-to-end benchmark of `validate` (issue: 100 and 1,000 tenant schemas over 3 local
//! instances) against the baseline of `psql` applying the same migration and its rollback to
//! every shard in a transaction.
//!
//! ```sh
//! cargo run --release --example bench_validate -- 100 3     # tenants, runs
//! cargo run --release --example bench_validate -- 1000 3
//! ```
//!
//! The fleet has no planted problems (so the psql baseline runs through on every shard), 60
//! rows per tenant. Both are timed on the same fleet in the same process run; the fleet setup
//! is not timed.

use std::time::Instant;

use deployclaw::pipeline::{ValidateOptions, validate};
use deployclaw::simulator::{CancelToken, NoProgress};
use deployclaw::topology::fixture::{FixtureSpec, start_fleet};

const MIGRATION: &str = include_str!("migrations/schema_v42.sql");

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let tenants: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    let cache = args.get(3).map(String::as_str) != Some("nocache");
    let spec = FixtureSpec {
        tenants,
        rows: 60,
        concurrency: 8,
        // Analyzed, as production tables are: otherwise autovacuum analyzes thousands of fresh
        // tables in the background of the measured runs.
        analyze: true,
        ..FixtureSpec::default()
    };
    let t = Instant::now();
    let fleet = start_fleet(3, &spec).await?;
    eprintln!(
        "fleet: {tenants} tenants on 3 instances in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let sql_file = dir.path().join("schema_v42.sql");
    std::fs::write(&sql_file, MIGRATION)?;

    if let Ok(windows) = std::env::var("BENCH_LIVE_COMPARE") {
        return live_overhead(&sql_file, &fleet.fleet, runs, &windows, dir.path()).await;
    }

    let mut ours = Vec::new();
    let mut ours_cpu = Vec::new();
    let mut rollback_script = String::new();
    for _ in 0..runs {
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
        let t = Instant::now();
        let cpu0 = busy_cpu_s();
        let own0 = own_cpu_s();
        let report = validate(&opts, &fleet.fleet, &NoProgress, &CancelToken::new()).await?;
        ours.push(t.elapsed().as_secs_f64());
        ours_cpu.push(busy_cpu_s() - cpu0);
        let own = own_cpu_s() - own0;
        rollback_script = report.rollback.script.clone().unwrap_or_default();
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
            "deployclaw validate: {:.2} s, {:.2} CPU-s machine-wide, {own:.2} in this process ({} shards, gate {})",
            ours.last().copied().unwrap_or_default(),
            ours_cpu.last().copied().unwrap_or_default(),
            report.shards.len(),
            report.gate
        );
    }

    // Baseline: psql, one session per instance, every shard: BEGIN; migration; rollback; ROLLBACK.
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
    let body = format!("{}\n{}\n", strip(MIGRATION), strip(&rollback_script));
    let bin = deployclaw::topology::ephemeral::find_bin_dir()?;
    let mut scripts = Vec::new();
    for inst in &fleet.fleet.instances {
        let mut s = String::from("\\set ON_ERROR_STOP 1\n");
        for shard in fleet.fleet.shards_on(&inst.name) {
            s.push_str(&format!(
                "BEGIN;\nSET LOCAL search_path TO \"{}\", public;\n{body}ROLLBACK;\n",
                shard.location.schema()
            ));
        }
        let path = dir.path().join(format!("{}.sql", inst.name));
        std::fs::write(&path, s)?;
        scripts.push((inst.connection.with_database("app"), path));
    }
    let mut baseline = Vec::new();
    let mut baseline_cpu = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let cpu0 = busy_cpu_s();
        let children: Vec<_> = scripts
            .iter()
            .map(|(c, path)| {
                std::process::Command::new(bin.join("psql"))
                    .args([
                        "-X",
                        "-q",
                        "-h",
                        &c.host,
                        "-p",
                        &c.port.to_string(),
                        "-U",
                        &c.user,
                        "-d",
                        &c.database,
                        "-f",
                    ])
                    .arg(path)
                    .stdout(std::process::Stdio::null())
                    .spawn()
            })
            .collect::<Result<_, _>>()?;
        for mut ch in children {
            let st = ch.wait()?;
            if !st.success() {
                return Err("psql baseline failed".into());
            }
        }
        baseline.push(t.elapsed().as_secs_f64());
        baseline_cpu.push(busy_cpu_s() - cpu0);
        eprintln!(
            "psql baseline: {:.2} s, {:.2} CPU-s machine-wide",
            baseline.last().copied().unwrap_or_default(),
            baseline_cpu.last().copied().unwrap_or_default()
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "tenants={tenants} runs={runs} deployclaw_mean_s={:.2} deployclaw_min_s={:.2} psql_mean_s={:.2} psql_min_s={:.2} ratio_mean={:.2}",
        mean(&ours),
        ours.iter().copied().fold(f64::INFINITY, f64::min),
        mean(&baseline),
        baseline.iter().copied().fold(f64::INFINITY, f64::min),
        mean(&ours) / mean(&baseline).max(1e-9)
    );
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

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
    let spec = FixtureSpec {
        tenants,
        rows: 60,
        concurrency: 8,
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

    let mut ours = Vec::new();
    let mut rollback_script = String::new();
    for _ in 0..runs {
        let mut opts = ValidateOptions::new(&sql_file);
        opts.validate_rollback = true;
        let t = Instant::now();
        let report = validate(&opts, &fleet.fleet, &NoProgress, &CancelToken::new()).await?;
        ours.push(t.elapsed().as_secs_f64());
        rollback_script = report.rollback.script.clone().unwrap_or_default();
        eprintln!(
            "deployclaw validate: {:.2} s ({} shards, gate {})",
            ours.last().copied().unwrap_or_default(),
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
    for _ in 0..runs {
        let t = Instant::now();
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
        eprintln!(
            "psql baseline: {:.2} s",
            baseline.last().copied().unwrap_or_default()
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

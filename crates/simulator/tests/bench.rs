//! Benchmark (ignored by default): probes + rehearsal for N shards on one ephemeral instance.
//!
//! `SIM_BENCH_SHARDS=100 cargo test -p simulator --release --test bench -- --ignored --nocapture`

use std::collections::BTreeMap;
use std::time::Instant;

use simulator::{CancelToken, NoProgress, SimOptions, Simulator};
use topology::fixture::{FixtureSpec, Plant, start_fleet};

const EXAMPLE: &str = include_str!("../../../examples/migrations/schema_v42.sql");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_probes_and_rehearsal() {
    let n: usize = std::env::var("SIM_BENCH_SHARDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let t0 = Instant::now();
    let spec = FixtureSpec {
        tenants: n,
        ..Default::default()
    }
    .plant(1, Plant::LargeEvents { rows: 300_000 })
    .plant(2, Plant::OrphanedCoupons { rows: 3 });
    let ef = start_fleet(1, &spec).await.expect("fleet");
    println!(
        "fixture: {n} tenants in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let m = migration_parser::parse("schema_v42.sql", EXAMPLE, &Default::default()).expect("parse");
    for conc in [4u32, 8] {
        let sim = Simulator::new(SimOptions {
            concurrency: conc,
            ..Default::default()
        });
        let t0 = Instant::now();
        let res = sim
            .run(&m, &ef.fleet, None, &NoProgress, &CancelToken::new())
            .await
            .expect("run");
        let wall = t0.elapsed().as_secs_f64();
        let mut by: BTreeMap<String, (usize, u64)> = BTreeMap::new();
        for s in &res.steps {
            let e = by.entry(s.action.clone()).or_default();
            e.0 += 1;
            e.1 += s.duration_ms;
        }
        println!(
            "concurrency {conc}: {} shards, {} rehearsal(s), wall {wall:.2} s",
            res.shards.len(),
            res.rehearsals.len()
        );
        for (a, (c, ms)) in by {
            println!("  {a:<22} x{c:<4} {ms:>7} ms total");
        }
        let tp = res.throughput;
        println!(
            "  throughput: scan {:.0} MB/s, rewrite {:.0} MB/s, index {:.0} MB/s, catalog {:.1} ms (calibrated: {})",
            tp.scan_mb_per_s, tp.rewrite_mb_per_s, tp.index_mb_per_s, tp.catalog_ms, tp.calibrated
        );
        for id in [0usize, 1] {
            let s = &res.shards[id];
            let bytes: i64 = s.tables.iter().map(|t| t.total_bytes).sum();
            println!(
                "  {}: touched tables {:.1} MB, estimated blocking lock {} ms, failing probes {}",
                s.shard,
                bytes as f64 / 1e6,
                s.estimated_lock_ms,
                s.probes.iter().filter(|p| p.would_fail).count()
            );
        }
    }
}

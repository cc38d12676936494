//! Benchmark: start and stop an ephemeral PostgreSQL cluster.
//!
//! ```text
//! cargo run --release -p topology --example bench_ephemeral -- [RUNS] [PARALLEL]
//! hyperfine -w 1 -r 10 'target/release/examples/bench_ephemeral 1'
//! ```
//!
//! Prints, per run, the time until the server accepts connections (`EphemeralPg::start`) and
//! the time to stop it and remove its directory (drop). With PARALLEL > 1 it starts that many
//! clusters at once per run.

use std::time::Instant;

use topology::ephemeral::{EphemeralOptions, EphemeralPg};

fn main() {
    let nums: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let runs = nums.first().copied().unwrap_or(10).max(1);
    let parallel = nums.get(1).copied().unwrap_or(1).max(1);
    let mut starts = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let pgs = EphemeralPg::start_many(parallel, &EphemeralOptions::default()).expect("start");
        starts.push(t0.elapsed().as_secs_f64() * 1e3);
        let t0 = Instant::now();
        drop(pgs);
        stops.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let stat = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        (v[0], v[v.len() / 2], v.iter().sum::<f64>() / v.len() as f64)
    };
    let (smin, smed, smean) = stat(&mut starts);
    let (pmin, pmed, pmean) = stat(&mut stops);
    println!("runs: {runs}, clusters per run: {parallel}");
    println!(
        "start (initdb + pg_ctl -w start): min {smin:.0} ms, median {smed:.0} ms, mean {smean:.0} ms"
    );
    println!(
        "stop + remove dir:                 min {pmin:.0} ms, median {pmed:.0} ms, mean {pmean:.0} ms"
    );
}

//! Benchmark: start and stop an ephemeral PostgreSQL cluster.
//!
//! ```text
//! cargo run --release -p topology --example bench_ephemeral -- [RUNS] [PARALLEL] [template]
//! hyperfine -w 1 -r 10 'target/release/examples/bench_ephemeral 1'
//! ```
//!
//! Prints, per run, the time until the server accepts connections (`EphemeralPg::start`) and
//! the time to stop it and remove its directory (drop). With PARALLEL > 1 it starts that many
//! clusters at once per run. With `template`, the clusters are copied from an `initdb`
//! template cached in a temporary directory (made before the timed runs) instead of running
//! initdb each time.

use std::time::Instant;

use topology::ephemeral::{EphemeralOptions, EphemeralPg};

fn main() {
    let nums: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let runs = nums.first().copied().unwrap_or(10).max(1);
    let parallel = nums.get(1).copied().unwrap_or(1).max(1);
    let cache = std::env::temp_dir().join(format!("bench-ephemeral-{}", std::process::id()));
    let opts = if std::env::args().any(|a| a == "template") {
        let o = EphemeralOptions {
            template_cache: Some(cache.clone()),
            ..EphemeralOptions::default()
        };
        // Make the template outside the timed runs.
        drop(EphemeralPg::start(o.clone()).expect("start"));
        o
    } else {
        EphemeralOptions::default()
    };
    let mut starts = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let pgs = EphemeralPg::start_many(parallel, &opts).expect("start");
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
    let how = if opts.template_cache.is_some() {
        "copy template + pg_ctl -w start"
    } else {
        "initdb + pg_ctl -w start"
    };
    println!("start ({how}): min {smin:.0} ms, median {smed:.0} ms, mean {smean:.0} ms");
    println!(
        "stop + remove dir:                 min {pmin:.0} ms, median {pmed:.0} ms, mean {pmean:.0} ms"
    );
    let _ = std::fs::remove_dir_all(&cache);
}

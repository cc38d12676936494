//! Library throughput of `deployclaw lint` on the real migration corpus (../shared/corpus):
//! parse + `Registry::lint` of every up and down script of the four migration projects, files
//! already in memory, no process start and no output. Prints statements/s and MB/s, and how the
//! time splits between parsing and the rules.
//!
//! `cargo bench -p deployclaw-cli --bench lint_corpus` (release profile). `LINT_BENCH_RUNS=N`
//! sets the number of timed passes (default 30).

use gates::{Config, Registry};
use migration_parser::{ParseOptions, TransactionMode};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
const PROJECTS: [&str; 4] = [
    "crates.io",
    "docs.rs",
    "harness",
    "chirpstack-application-server",
];

fn sql_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            sql_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "sql") {
            out.push(p);
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let runs: usize = std::env::var("LINT_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
        .max(1);
    let mut paths = Vec::new();
    for p in PROJECTS {
        sql_files(&Path::new(CORPUS).join(p).join("migrations"), &mut paths);
    }
    paths.sort();
    let inputs: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read(p).expect("read corpus file"),
            )
        })
        .collect();
    let bytes: usize = inputs.iter().map(|(_, b)| b.len()).sum();
    let registry = Registry::builtin();
    let config = Config::default();
    let options = ParseOptions {
        transaction_mode: TransactionMode::WrapFile,
        ..ParseOptions::default()
    };

    let mut statements = 0usize;
    let mut findings = 0usize;
    let mut parse_times = Vec::with_capacity(runs);
    let mut total_times = Vec::with_capacity(runs);
    for run in 0..runs + 3 {
        let mut parse = Duration::ZERO;
        let t0 = Instant::now();
        let (mut s, mut f) = (0, 0);
        for (name, b) in &inputs {
            let tp = Instant::now();
            let Ok(m) = migration_parser::parse_bytes(name, b, &options) else {
                continue;
            };
            parse += tp.elapsed();
            s += m.statements.len();
            f += std::hint::black_box(registry.lint(&m, &config)).len();
        }
        let total = t0.elapsed();
        if run >= 3 {
            parse_times.push(parse);
            total_times.push(total);
        }
        (statements, findings) = (s, f);
    }
    let total = median(total_times);
    let parse = median(parse_times);
    let secs = total.as_secs_f64();
    println!(
        "lint_corpus: {} files, {} statements, {} bytes, {} findings",
        inputs.len(),
        statements,
        bytes,
        findings
    );
    println!(
        "lint_corpus: median of {runs} passes: {:.2} ms per pass ({:.2} ms parse, {:.2} ms rules)",
        secs * 1e3,
        parse.as_secs_f64() * 1e3,
        (total.saturating_sub(parse)).as_secs_f64() * 1e3
    );
    println!(
        "lint_corpus: {:.0} statements/s, {:.1} MB/s",
        statements as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
}

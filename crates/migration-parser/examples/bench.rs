//! Parse files repeatedly and print the mean time per pass (all files):
//! `cargo run --release -p migration-parser --example bench -- N FILE...`.
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let files: Vec<(String, Vec<u8>)> = args
        .iter()
        .skip(1)
        .filter_map(|p| std::fs::read(p).ok().map(|b| (p.clone(), b)))
        .collect();
    let options = migration_parser::ParseOptions::default();
    let mut statements = 0usize;
    let start = Instant::now();
    for _ in 0..n {
        for (name, bytes) in &files {
            if let Ok(m) = migration_parser::parse_bytes(name, bytes, &options) {
                statements += m.statements.len();
            }
        }
    }
    let per_pass = start.elapsed().as_secs_f64() / n as f64;
    println!(
        "{} files, {} statements per pass, {:.1} µs per pass ({n} passes)",
        files.len(),
        statements / n.max(1),
        per_pass * 1e6
    );
}

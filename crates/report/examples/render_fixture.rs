//! Write every rendering of the test fixture report (optionally grown to N shards) into a
//! directory, to look at them: `cargo run -p report --example render_fixture -- OUT_DIR [N]`.

#[path = "../tests/common/mod.rs"]
mod common;

use report::{Gate, GatePolicy, render};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "report-fixture".to_owned());
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(12);
    let mut r = common::fixture_with(|shards| {
        let base = shards.clone();
        let mut i = shards.len();
        while shards.len() < n {
            let mut s = base[i % base.len()].clone();
            s.shard = format!("tenant_{:04}", i + 1);
            s.instance = format!(
                "db-{}",
                ["east-1", "east-2", "west-1", "west-2", "eu-1"][i * 7 / n.max(1) % 5]
            );
            // Mostly green, like a real fleet.
            if i % 9 != 0 {
                s.findings.retain(|f| f.severity == report::Severity::Info);
                s.gate = Gate::from_findings(&s.findings);
            }
            shards.push(s);
            i += 1;
        }
        shards.sort_by(|a, b| a.instance.cmp(&b.instance));
    });
    r.finalize(&GatePolicy::default());
    for p in render::write_all(&r, dir.as_ref())? {
        println!("{}", p.display());
    }
    Ok(())
}

//! Size and render time of every rendering of a synthetic report (no database), and the
//! merge of its partitions: `cargo run --release -p report --example bench_large_report --
//! [SHARDS] [INSTANCES] [PARTS]` (default 100000 10 8). BENCHMARKS.md, "Reports and the merge at
//! 100,000 shards".

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use report::render::{self, JunitOptions, MarkdownOptions, SarifOptions, TerminalOptions};

fn timed<T>(what: &str, f: impl FnOnce() -> T, size: impl Fn(&T) -> usize) -> T {
    let t = Instant::now();
    let v = f();
    println!(
        "{what:<28} {:>9.1} ms {:>14} bytes",
        t.elapsed().as_secs_f64() * 1e3,
        size(&v)
    );
    v
}

/// Peak resident memory of this process so far, from /proc (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let inst: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
    let parts: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(8);
    let r = timed(
        "build the report",
        || common::large_fleet(n, inst),
        |r| r.shards.len(),
    );
    let c = r.counts();
    println!(
        "{n} shards on {inst} instances: {} green, {} yellow, {} red",
        c.green, c.yellow, c.red
    );
    if let Some(m) = peak_rss_mib() {
        println!("peak RSS after building the report: {m:.0} MiB");
    }
    let json = timed(
        "json",
        || render::json(&r),
        |j| j.as_ref().map_or(0, String::len),
    )?;
    timed(
        "json (compact, signed form)",
        || serde_json::to_string(&r),
        |j| j.as_ref().map_or(0, String::len),
    )?;
    timed("html", || render::html(&r), String::len);
    timed(
        "markdown",
        || render::markdown(&r, &MarkdownOptions::default()),
        String::len,
    );
    timed(
        "terminal",
        || render::terminal(&r, &TerminalOptions::default()),
        String::len,
    );
    timed(
        "junit",
        || render::junit(&r, &JunitOptions::default()),
        String::len,
    );
    timed(
        "sarif",
        || render::sarif(&r, &SarifOptions::default()),
        |s| s.as_ref().map_or(0, String::len),
    )?;
    if let Some(m) = peak_rss_mib() {
        println!("peak RSS after rendering: {m:.0} MiB");
    }
    let key = common::key();
    let mut signed = r.clone();
    timed("sign", || report::sign(&mut signed, &key), |_| 0)?;
    let text = render::json(&signed)?;
    timed("verify", || report::verify(&text, None), |_| text.len())?;
    timed(
        "parse the JSON back",
        || serde_json::from_str::<report::ValidationReport>(&json),
        |_| 0,
    )?;

    // The merge: the report cut into `parts` partitions, each signed, verified and merged.
    let texts: Vec<String> = (1..=parts)
        .map(|k| {
            let mut p = r.clone();
            p.shards
                .retain(|s| report::Partition::of(&s.shard, parts) == k);
            p.fleet.shards = p.shards.len();
            p.fleet.partition = Some(report::PartitionInfo {
                index: k,
                count: parts,
                shards_in_fleet: n,
                drift_reference: None,
                options_sha256: "same".into(),
                policy: report::GatePolicy::default(),
            });
            report::sign(&mut p, &key).expect("sign");
            render::json(&p).expect("json")
        })
        .collect();
    if let Some(m) = peak_rss_mib() {
        println!("peak RSS after sign and verify: {m:.0} MiB");
    }
    let opts = report::MergeOptions::default();
    let read = timed(
        &format!("verify {parts} parts"),
        || {
            texts
                .iter()
                .enumerate()
                .map(|(i, t)| report::read_part(&format!("part{i}.json"), t, &opts))
                .collect::<Result<Vec<_>, _>>()
        },
        |v| v.as_ref().map_or(0, Vec::len),
    )?;
    let merged = timed(
        "merge",
        || report::merge(&read),
        |m| m.as_ref().map_or(0, |m| m.shards.len()),
    )?;
    assert_eq!(merged.counts(), c);
    if let Some(m) = peak_rss_mib() {
        println!("peak RSS {m:.0} MiB");
    }
    Ok(())
}

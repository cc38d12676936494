//! `deployclaw demo`, the README's first command, end to end as the real binary: its own
//! ephemeral fleet (3 instances, 100 tenants, the planted problems of `deployclaw::demo`), the
//! example migration, the report files — and the planted problems come out as designed, with
//! a real calibration of this machine. Run twice with one cache directory: the second run
//! reuses the initdb template and the calibration and reaches the same verdicts. Nothing is
//! left running.

use std::process::{Command, Stdio};

fn demo(dir: &std::path::Path, cache: &std::path::Path) -> (i32, serde_json::Value, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_deployclaw"))
        .args(["demo", "--report-dir"])
        .arg(dir)
        .arg("--cache-dir")
        .arg(cache)
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run deployclaw demo");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for the demo");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // Its clusters (`<tmp>/dcpg-<pid>-…`) are gone with it.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("dcpg-{pid}-")))
        .collect();
    assert!(left.is_empty(), "the demo left {left:?}");
    let report = std::fs::read_to_string(dir.join("report.json"))
        .unwrap_or_else(|e| panic!("no report.json ({e}): {stderr}"));
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&report).expect("report JSON"),
        stderr,
    )
}

fn tenant(shard: &serde_json::Value) -> u32 {
    shard["shard"]
        .as_str()
        .and_then(|s| s.rsplit('_').next())
        .and_then(|n| n.parse().ok())
        .expect("tenant number")
}

fn rules(shard: &serde_json::Value) -> Vec<String> {
    shard["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["severity"] != "info")
        .filter_map(|f| f["rule"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn demo_finds_the_planted_problems_and_reuses_its_caches() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let mut gates = Vec::new();
    for run in ["cold", "warm"] {
        let dir = tmp.path().join(run);
        let (code, report, stderr) = demo(&dir, &cache);
        // The demo ran: exit 0; the gate it shows (RED by design) is printed.
        assert_eq!(code, 0, "{run}: the demo ran: {stderr}");
        assert_eq!(
            report["gate"], "RED",
            "{run}: the demo fleet is RED by design"
        );
        assert!(
            stderr.contains("gate RED (validate-migration would exit 2)"),
            "{run}: {stderr}"
        );
        let shards = report["shards"].as_array().expect("shards");
        assert_eq!(shards.len(), 100, "{run}");
        let budget = 100u64;
        let mut by_gate: Vec<(u32, String, Vec<String>)> = shards
            .iter()
            .map(|s| {
                (
                    tenant(s),
                    s["gate"].as_str().unwrap_or_default().to_owned(),
                    rules(s),
                )
            })
            .collect();
        by_gate.sort();
        let red: Vec<u32> = by_gate
            .iter()
            .filter(|(_, g, _)| g == "RED")
            .map(|(t, _, _)| *t)
            .collect();
        assert_eq!(red, vec![7, 13, 21, 34, 42, 58, 77, 89, 95], "{run}");
        let expect = |t: u32, rule: &str| {
            let (_, _, r) = by_gate.iter().find(|(n, _, _)| *n == t).unwrap();
            assert!(r.iter().any(|x| x == rule), "{run}: tenant {t}: {r:?}");
        };
        for t in [7, 42, 77] {
            expect(t, "fk-orphans");
        }
        for t in [13, 58] {
            expect(t, "not-null-violations");
        }
        expect(21, "unique-violations");
        for t in [34, 89] {
            expect(t, "cast-failures");
        }
        expect(95, "check-violations");
        expect(50, "schema-drift");
        // The large tenant: its estimated lock time dwarfs every other shard's (the sizes
        // differ ~40×), and its gate follows the 100 ms budget the demo sets.
        let lock = |t: u32| -> u64 {
            shards
                .iter()
                .find(|s| tenant(s) == t)
                .and_then(|s| s["estimated_lock_ms"].as_u64())
                .unwrap_or_default()
        };
        let large = lock(64);
        let others_max = (1..=100).filter(|t| *t != 64).map(lock).max().unwrap();
        assert!(
            large > 5 * others_max.max(1),
            "{run}: tenant 64 {large} ms vs at most {others_max} ms elsewhere"
        );
        let (_, g64, r64) = by_gate.iter().find(|(n, _, _)| *n == 64).unwrap();
        if large > budget {
            assert_eq!(g64, "YELLOW", "{run}: {r64:?}");
            assert!(r64.iter().any(|x| x == "lock-time-budget"), "{r64:?}");
        }
        // Every planted-free shard is GREEN.
        for (t, g, r) in &by_gate {
            if ![7, 13, 21, 34, 42, 50, 58, 64, 77, 89, 95].contains(t) {
                assert_eq!(g, "GREEN", "{run}: tenant {t}: {r:?}");
            }
        }
        assert_eq!(report["rollback"]["tested"], true, "{run}");
        assert_eq!(report["safety_gates"]["rollback_tested"], true, "{run}");
        assert!(
            report["output"]["report_file"]
                .as_str()
                .is_some_and(|f| f.ends_with("report.json")),
            "{run}: {}",
            report["output"]
        );
        for f in [
            "report.json",
            "report.md",
            "report.html",
            "report.sarif",
            "report.junit.xml",
            "report.txt",
            "rollback.sql",
        ] {
            assert!(dir.join(f).is_file(), "{run}: {f} missing");
        }
        let calibrate = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["action"] == "calibrate")
            .and_then(|s| s["details"].as_str())
            .unwrap_or_default()
            .to_owned();
        match run {
            "cold" => assert!(!calibrate.starts_with("cached"), "{calibrate}"),
            _ => assert!(calibrate.starts_with("cached calibration"), "{calibrate}"),
        }
        gates.push(by_gate);
    }
    assert_eq!(gates[0], gates[1], "the cached run reached other verdicts");
}

//! `deployclaw topology discover` against a real fixture fleet (two ephemeral instances, one
//! drifted shard).

use std::process::Command;

use topology::fixture::{DriftKind, FixtureSpec, Plant, start_fleet};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deployclaw"));
    c.env("RUST_BACKTRACE", "0").env_remove("PGPASSWORD");
    c
}

/// Replace ports and fingerprints, which change between runs or PostgreSQL versions.
fn redact(s: &str, ports: &[u16]) -> String {
    let mut out = s.to_string();
    for (i, p) in ports.iter().enumerate() {
        out = out.replace(&format!(":{p}/"), &format!(":[port{}]/", i + 1));
        out = out.replace(&format!("port = {p}"), &format!("port = [port{}]", i + 1));
    }
    // 12-hex-digit fingerprint prefixes at the start of shape lines and in "(shape ...)".
    let mut lines = Vec::new();
    for line in out.lines() {
        let mut l = line.to_string();
        let words: Vec<&str> = line.split_whitespace().collect();
        for w in words {
            let w = w.trim_matches(|c| c == '(' || c == ')');
            if w.len() == 12 && w.chars().all(|c| c.is_ascii_hexdigit()) {
                l = l.replace(w, "[fingerprint]");
            }
        }
        lines.push(l);
    }
    lines.join("\n")
}

#[tokio::test]
async fn discover_prints_fleet_shapes_and_drift() {
    let spec = FixtureSpec {
        tenants: 6,
        rows: 10,
        ..Default::default()
    }
    .plant(
        5,
        Plant::Drift {
            kind: DriftKind::ExtraColumn,
        },
    )
    .plant(2, Plant::OrphanedCoupons { rows: 2 });
    let fleet = start_fleet(2, &spec).await.expect("fixture fleet");
    let ports: Vec<u16> = fleet.clusters.iter().map(|c| c.port()).collect();
    let dir = std::env::temp_dir().join(format!("dc-cli-topo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fleet.toml");
    std::fs::write(
        &file,
        format!(
            "[defaults]\nuser = \"postgres\"\ndatabase = \"app\"\nsslmode = \"disable\"\nschemas = \"tenant_*\"\n\n\
             [[instance]]\nname = \"pg-1\"\nhost = \"127.0.0.1\"\nport = {}\n\n\
             [[instance]]\nname = \"pg-2\"\nhost = \"127.0.0.1\"\nport = {}\n",
            ports[0], ports[1]
        ),
    )
    .unwrap();

    // Text.
    let out = bin()
        .args(["topology", "discover", "--topology"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!("discover_text", redact(&stdout, &ports));

    // JSON.
    let out = bin()
        .args(["topology", "discover", "--format", "json", "--topology"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["shards"], 6);
    assert_eq!(v["instances"].as_array().unwrap().len(), 2);
    assert_eq!(v["shapes"].as_array().unwrap().len(), 2);
    assert_eq!(v["shapes"][0]["shards"], 5);
    assert_eq!(v["shapes"][0]["reference"], true);
    assert_eq!(v["drifted"][0]["shard"], "pg-2/app/tenant_0005");
    assert_eq!(v["drifted"][0]["differences"][0]["kind"], "extra_column");
    assert_eq!(v["drifted"][0]["differences"][0]["column"], "legacy_notes");
    assert_eq!(
        v["drifted"][0]["differences"][0]["message"],
        "table orders: extra column legacy_notes (text)"
    );

    // --target-db with a pattern: only instance pg-2, tenants 4..6 there; pattern picks 2.
    let out = bin()
        .args([
            "topology",
            "discover",
            "--format",
            "json",
            "--tenant-schemas",
            "tenant_000[45]",
            "--target-db",
        ])
        .arg(format!(
            "postgres://postgres@127.0.0.1:{}/app?sslmode=disable",
            ports[1]
        ))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["shards"], 2);
    assert_eq!(v["drifted"].as_array().unwrap().len(), 1, "{v}");

    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unreachable_fleet_exits_4_without_leaking_the_password() {
    let out = bin()
        .args([
            "topology",
            "discover",
            "--target-db",
            "postgres://app:hunter2@127.0.0.1:1/app",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(
        !stderr.contains("hunter2") && !String::from_utf8_lossy(&out.stdout).contains("hunter2")
    );
}

#[test]
fn bad_topology_file_exits_3_with_location() {
    let dir = std::env::temp_dir().join(format!("dc-cli-topo-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[[instance]]\nname = \"a\"\nhost = = \"x\"\n").unwrap();
    let out = bin()
        .args(["topology", "discover", "--topology"])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:3:"), "{stderr}");
    // Missing target: usage error.
    let out = bin().args(["topology", "discover"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
}

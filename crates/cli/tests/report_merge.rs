//! `validate-migration --partition K/N` and `deployclaw report merge` on a real fleet: the
//! merged report of three partial runs gives the single run's verdicts, verifies with
//! `deployclaw verify`, and the merge refuses parts that are tampered, unsigned, overlapping,
//! incomplete or of another migration. The target is unchanged.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::fingerprint_db;
use topology::fixture::{FixtureSpec, Plant, start_fleet};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/migrations/schema_v42.sql"
);

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deployclaw"));
    c.env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null());
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("run deployclaw")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Per shard: gate and the sorted `rule:severity` of its findings.
fn verdicts(j: &serde_json::Value) -> BTreeMap<String, (String, Vec<String>)> {
    j["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut codes: Vec<String> = s["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| format!("{}:{}", f["rule"].as_str().unwrap(), f["severity"]))
                .collect();
            codes.sort();
            (
                s["shard"].as_str().unwrap().to_owned(),
                (s["gate"].as_str().unwrap().to_owned(), codes),
            )
        })
        .collect()
}

struct Setup {
    dir: tempfile::TempDir,
    sql: PathBuf,
    key: PathBuf,
    public: PathBuf,
    url: String,
}

impl Setup {
    fn validate(&self, out: &str, partition: Option<&str>) -> Output {
        let mut c = bin();
        c.args(["validate-migration", "--sql-file"])
            .arg(&self.sql)
            .args(["--target-db", &self.url, "--tenant-schemas", "tenant_*"])
            .args(["--lock-budget-ms", "5000", "--rehearse", "shadow"])
            .arg("--report-dir")
            .arg(self.dir.path().join(out))
            .arg("--sign-key")
            .arg(&self.key);
        if let Some(p) = partition {
            c.args(["--partition", p]);
        }
        run(&mut c)
    }

    fn part(&self, k: u32) -> PathBuf {
        self.dir.path().join(format!("p{k}/report.json"))
    }

    fn merge(&self, parts: &[PathBuf], extra: &[&str]) -> Output {
        let mut c = bin();
        c.args(["report", "merge"]).args(parts).args(extra);
        run(&mut c)
    }

    /// The stderr of a refused merge (exit 3), with the temporary directory redacted.
    fn refused(&self, parts: &[PathBuf], extra: &[&str]) -> String {
        let o = self.merge(parts, extra);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{e}");
        assert!(!e.contains("panicked"), "{e}");
        e.replace(&self.dir.path().display().to_string(), "[DIR]")
            .lines()
            .filter(|l| !l.contains("WARNING"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_partitions_merged_give_the_single_runs_verdicts() {
    let spec = FixtureSpec {
        tenants: 8,
        rows: 40,
        ..FixtureSpec::default()
    }
    .plant(2, Plant::OrphanedCoupons { rows: 2 })
    .plant(5, Plant::NullShippingAddresses { rows: 1 })
    .plant(7, Plant::UncastableAmounts { rows: 1 });
    let fx = start_fleet(1, &spec).await.expect("fixture fleet");
    let pg = &fx.clusters[0];
    let before = fingerprint_db(&pg.connection_spec()).await;
    let dir = tempfile::tempdir().unwrap();
    let sql = dir.path().join("schema_v42.sql");
    std::fs::copy(EXAMPLE, &sql).unwrap();
    let key = dir.path().join("signing.pem");
    let o = run(bin().args(["keygen", "--out"]).arg(&key));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = Setup {
        public: dir.path().join("signing.pem.pub"),
        dir,
        sql,
        key,
        url: format!("postgres://postgres@127.0.0.1:{}/app", pg.port()),
    };

    let o = s.validate("whole", None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let whole = read_json(&s.dir.path().join("whole/report.json"));
    assert!(whole["fleet"].get("partition").is_none());
    let mut sizes = Vec::new();
    for k in 1..=3 {
        let o = s.validate(&format!("p{k}"), Some(&format!("{k}/3")));
        assert!(
            matches!(o.status.code(), Some(0..=2)),
            "partition {k}: {}",
            stderr(&o)
        );
        let j = read_json(&s.part(k));
        let p = &j["fleet"]["partition"];
        assert_eq!(
            (p["index"].as_u64(), p["count"].as_u64()),
            (Some(k.into()), Some(3))
        );
        assert_eq!(p["shards_in_fleet"], 8, "{p}");
        assert_eq!(j["fleet"]["shards"], j["shards"].as_array().unwrap().len());
        sizes.push(j["shards"].as_array().unwrap().len());
    }
    assert_eq!(sizes.iter().sum::<usize>(), 8, "{sizes:?}");

    let parts = [s.part(3), s.part(1), s.part(2)];
    let merged_path = s.dir.path().join("merged.json");
    let pk = s.public.display().to_string();
    let sk = s.key.display().to_string();
    let out = merged_path.display().to_string();
    let o = s.merge(
        &parts,
        &["--public-key", &pk, "--sign-key", &sk, "--out", &out],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "the merged gate is RED: {}",
        stderr(&o)
    );
    let merged = read_json(&merged_path);
    assert_eq!(verdicts(&merged), verdicts(&whole));
    for field in ["gate", "migration"] {
        assert_eq!(merged[field], whole[field], "{field}");
    }
    for field in ["shards", "instances", "fingerprint"] {
        assert_eq!(
            merged["fleet"][field], whole["fleet"][field],
            "fleet.{field}"
        );
    }
    for field in ["risk_level", "migration_approved", "estimated_downtime_sec"] {
        assert_eq!(
            merged["safety_gates"][field], whole["safety_gates"][field],
            "safety_gates.{field}"
        );
    }
    let exceptions = |j: &serde_json::Value| {
        let mut v: Vec<String> = j["safety_gates"]["shard_exceptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{} {}", e["shard"], e["gate"]))
            .collect();
        v.sort();
        v
    };
    assert_eq!(exceptions(&merged), exceptions(&whole));
    assert_eq!(merged["fleet"]["merged_from"].as_array().unwrap().len(), 3);
    assert!(
        merged["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|st| st["details"].as_str().unwrap().starts_with("part 2/3: ")),
        "steps note their part"
    );

    // The merge verifies with the trusted key; RED is "authentic, not approved".
    let o = run(bin()
        .arg("verify")
        .arg(&merged_path)
        .args(["--public-key", &pk, "--migration"])
        .arg(&s.sql));
    let v = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{v}{}", stderr(&o));
    assert!(v.contains("signature: valid"), "{v}");

    refusals(&s, &pk);
    assert_eq!(
        fingerprint_db(&pg.connection_spec()).await,
        before,
        "validate-migration --partition changed the target"
    );
}

/// Tampered, unsigned, overlapping, incomplete parts and parts of another migration: exit 3
/// with the file, the shard or the partition named.
fn refusals(s: &Setup, pk: &str) {
    let d = s.dir.path();
    let key = report::load_signing_key(&s.key).unwrap();
    let mut msgs = Vec::new();

    // Tampered: a gate changed after signing.
    let mut j = read_json(&s.part(2));
    j["total_duration_ms"] = serde_json::json!(1);
    let tampered = d.join("tampered.json");
    std::fs::write(&tampered, serde_json::to_string(&j).unwrap()).unwrap();
    msgs.push(s.refused(&[s.part(1), tampered, s.part(3)], &["--public-key", pk]));

    // Unsigned: refused, admitted with --allow-unsigned.
    let mut j = read_json(&s.part(2));
    j["signature"] = serde_json::Value::Null;
    let unsigned = d.join("unsigned.json");
    std::fs::write(&unsigned, serde_json::to_string(&j).unwrap()).unwrap();
    let parts = [s.part(1), unsigned, s.part(3)];
    msgs.push(s.refused(&parts, &[]));
    let o = s.merge(&parts, &["--allow-unsigned"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    // Overlapping: one part given twice — the largest, so that it has a shard to overlap on
    // (the slices hash shard ids that name the instance's random port: a part may be empty).
    let shards = |k: u32| {
        read_json(&s.part(k))["shards"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let largest = (1..=3).max_by_key(|k| shards(*k)).unwrap();
    let copy = d.join("copy-of-a-part.json");
    std::fs::copy(s.part(largest), &copy).unwrap();
    let mut parts = vec![s.part(largest), copy];
    parts.extend((1..=3).filter(|k| *k != largest).map(|k| s.part(k)));
    msgs.push(s.refused(&parts, &[]));

    // A missing partition.
    msgs.push(s.refused(&[s.part(1), s.part(2)], &[]));

    // Another migration: a part re-signed (validly) with another migration's sha256.
    let text = std::fs::read_to_string(s.part(3)).unwrap();
    let mut r = report::verify(&text, None).unwrap().report;
    r.migration.sha256 = report::sha256_hex(b"ALTER TABLE orders DROP COLUMN note;");
    report::sign(&mut r, &key).unwrap();
    let other = d.join("other-migration.json");
    std::fs::write(&other, report::render::json(&r).unwrap()).unwrap();
    msgs.push(s.refused(&[s.part(1), s.part(2), other], &["--public-key", pk]));

    // A whole-fleet report is not a part.
    msgs.push(s.refused(&[d.join("whole/report.json")], &[]));

    let text = msgs.join("\n---\n");
    // Shard names and hashes depend on the run; keep the wording.
    let text = regex::Regex::new(r"[0-9a-f]{64}")
        .unwrap()
        .replace_all(&text, "[SHA256]");
    let text = regex::Regex::new(r"shard `[^`]+`")
        .unwrap()
        .replace_all(&text, "shard `[SHARD]`");
    let text = regex::Regex::new(r"in both \[DIR\]/p\d/report\.json")
        .unwrap()
        .replace_all(&text, "in both [DIR]/p[K]/report.json");
    let text = regex::Regex::new(r"\(partition \d/3\) and (\S+) \(partition \d/3\)")
        .unwrap()
        .replace_all(&text, "(partition [K]/3) and $1 (partition [K]/3)");
    insta::assert_snapshot!("merge_refusals", text);
}

#[test]
fn bad_partitions_are_input_errors() {
    for (bad, says) in [
        ("4/3", "K must be between 1 and 3"),
        ("0/3", "K must be between 1 and 3"),
        ("1/0", "N must be at least 1"),
        ("two/3", "is not a whole number"),
        ("3", "no `/`"),
    ] {
        let o = run(bin().args([
            "validate-migration",
            "--sql-file",
            EXAMPLE,
            "--target-db",
            "postgres://gate@127.0.0.1:1/app",
            "--partition",
            bad,
        ]));
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{bad}: {e}");
        assert!(e.contains(says) && e.contains("expected K/N"), "{bad}: {e}");
    }
    let o = run(bin().args(["report", "merge", "/nonexistent/part.json"]));
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("/nonexistent/part.json: no such file"));
}

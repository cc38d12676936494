//! The pipeline's machine-local caches (`ValidateOptions::cache_dir`): the first run makes the
//! shared shadow with initdb and calibrates on it, and keeps both; the next run copies the
//! template and reuses the calibration (and says so in the execution log); `recalibrate`
//! measures again; a run without a cache directory writes nothing. Verdicts and the target do
//! not change either way.

mod common;

use deployclaw::pipeline::{ValidateOptions, validate};
use deployclaw::report::ValidationReport;
use deployclaw::simulator::{CancelToken, NoProgress};
use deployclaw::topology::fixture::{FixtureSpec, Plant, start_fleet};

fn step<'a>(r: &'a ValidationReport, action: &str) -> Option<&'a str> {
    r.steps
        .iter()
        .find(|s| s.action == action)
        .map(|s| s.details.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_and_calibration_are_cached_and_reused() {
    let spec = FixtureSpec {
        tenants: 4,
        rows: 30,
        ..FixtureSpec::default()
    }
    .plant(3, Plant::OrphanedCoupons { rows: 1 });
    let fx = start_fleet(1, &spec).await.expect("fleet");
    let before = common::fingerprint_instances(&fx.fleet.instances).await;
    let dir = tempfile::tempdir().unwrap();
    let sql = std::path::PathBuf::from(common::MIGRATION);
    let cache = dir.path().join("cache");
    let run = |recalibrate: bool, cache_dir: Option<std::path::PathBuf>| {
        let mut o = ValidateOptions::new(&sql);
        o.sim.calibration_rows = 20_000;
        o.cache_dir = cache_dir;
        o.recalibrate = recalibrate;
        // A budget the migration's locks come near: the calibration can change the gate.
        o.lock_budget_ms = Some(1);
        o
    };

    // 1. Cold: calibrated now, template and calibration stored.
    let first = validate(
        &run(false, Some(cache.clone())),
        &fx.fleet,
        &NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("first run");
    let cal = step(&first, "calibrate").expect("calibrate step");
    assert!(cal.contains("MB sample"), "{cal}");
    assert!(!cal.contains("cached"), "{cal}");
    assert!(
        step(&first, "start shadow")
            .is_some_and(|d| d.contains("shared by the rehearsal and the rollback proof")),
        "{:#?}",
        first.steps
    );
    // The shadow lives where the options say: RAM-backed by default when the machine has it.
    let base = deployclaw::pipeline::default_shadow_base_dir().unwrap_or_else(std::env::temp_dir);
    assert!(
        step(&first, "start shadow")
            .is_some_and(|d| d.contains(&format!("under {}", base.display()))),
        "{:#?}",
        first.steps
    );
    assert!(cache.join("calibration.json").is_file());
    let templates: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("pg-template-"))
        .collect();
    assert_eq!(templates.len(), 1, "{templates:?}");
    assert!(first.rollback.tested, "{:?}", first.rollback);

    // 2. Warm: the same verdicts, from the cached calibration.
    let second = validate(
        &run(false, Some(cache.clone())),
        &fx.fleet,
        &NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("second run");
    let cal = step(&second, "calibrate").expect("calibrate step");
    assert!(
        cal.starts_with("cached calibration of this machine"),
        "{cal}"
    );
    let gates = |r: &ValidationReport| -> Vec<(String, String)> {
        r.shards
            .iter()
            .map(|s| (s.shard.clone(), s.gate.to_string()))
            .collect()
    };
    assert_eq!(gates(&first), gates(&second));
    assert!(second.rollback.tested);

    // 3. Recalibrate: measured again, despite the cache.
    let third = validate(
        &run(true, Some(cache.clone())),
        &fx.fleet,
        &NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("third run");
    let cal = step(&third, "calibrate").expect("calibrate step");
    assert!(
        cal.contains("MB sample") && !cal.contains("cached"),
        "{cal}"
    );

    // 4. No cache directory: nothing is written anywhere we were told about.
    let elsewhere = dir.path().join("unused");
    let fourth = validate(
        &run(false, None),
        &fx.fleet,
        &NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("fourth run");
    assert!(!elsewhere.exists());
    assert!(step(&fourth, "calibrate").is_some_and(|d| d.contains("MB sample")));
    // The same data verdict (the orphaned coupon is red on its shard only). The lock-time
    // verdicts are not compared: this run measured a calibration of its own, and against a 1 ms
    // budget CPU contention during that measurement turns info into yellow (a catalog-only cost
    // of 2.4 ms was measured once under load, under 1 ms in the first run).
    let red = |r: &ValidationReport| -> Vec<String> {
        r.shards
            .iter()
            .filter(|s| s.gate.to_string() == "RED")
            .map(|s| s.shard.clone())
            .collect()
    };
    assert_eq!(red(&first), red(&fourth));
    assert_eq!(red(&fourth), ["pg-1/app/tenant_0003"]);

    // 5. A first run whose locks stay far below the budget: no calibration could change the
    // gate, so none is measured (nor stored), and the log says why.
    let cold = dir.path().join("cold-cache");
    let mut o = run(false, Some(cold.clone()));
    o.lock_budget_ms = Some(3_600_000);
    let fifth = validate(&o, &fx.fleet, &NoProgress, &CancelToken::new())
        .await
        .expect("fifth run");
    let cal = step(&fifth, "calibrate").expect("calibrate step");
    assert!(
        cal.starts_with("not measured") && cal.contains("3600000 ms budget"),
        "{cal}"
    );
    assert!(!cold.join("calibration.json").exists());
    assert_eq!(gates(&first), gates(&fifth));

    assert_eq!(
        common::fingerprint_instances(&fx.fleet.instances).await,
        before,
        "the target changed"
    );
    let clusters: Vec<_> = fx.clusters.iter().collect();
    assert_eq!(common::leftovers(&clusters).await, Vec::<String>::new());
}

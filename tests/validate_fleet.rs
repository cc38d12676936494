//! The whole gate on a real fleet: 3 ephemeral PostgreSQL instances, 100 tenant schemas with
//! the demo's planted problems. Planted problems must produce exactly the expected per-shard
//! verdicts, and the target's catalog and table contents must be byte-identical before and
//! after validation, in both rehearsal modes, with no session, lock or shadow left behind.

mod common;

use std::collections::BTreeMap;

use deployclaw::demo::{DemoOptions, start_demo_fleet};
use deployclaw::gates::Gate;
use deployclaw::pipeline::{ValidateOptions, validate};
use deployclaw::report::ValidationReport;
use deployclaw::simulator::{CancelToken, NoProgress, RehearsalMode};
use deployclaw::topology::Fleet;

const MIGRATION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/migrations/schema_v42.sql"
);

/// Expected (gate, rule that must be among the findings) for the planted tenants; every other
/// tenant is GREEN.
fn expected() -> BTreeMap<usize, (Gate, &'static str)> {
    let mut e = BTreeMap::new();
    for t in [7, 42, 77] {
        e.insert(t, (Gate::Red, "fk-orphans"));
    }
    for t in [13, 58] {
        e.insert(t, (Gate::Red, "not-null-violations"));
    }
    e.insert(21, (Gate::Red, "unique-violations"));
    for t in [34, 89] {
        e.insert(t, (Gate::Red, "cast-failures"));
    }
    e.insert(95, (Gate::Red, "check-violations"));
    e.insert(50, (Gate::Yellow, "schema-drift"));
    e.insert(64, (Gate::Yellow, "lock-time-budget"));
    e
}

fn tenant_number(shard: &str) -> usize {
    let tail = shard.rsplit("tenant_").next().unwrap_or_default();
    tail.parse().unwrap_or(0)
}

/// A checksum of every non-system catalog object and every tenant table's contents, per
/// instance.
async fn fingerprint_target(fleet: &Fleet) -> BTreeMap<String, String> {
    common::fingerprint_instances(&fleet.instances).await
}

/// Sessions, relation locks and extra databases left on any instance.
async fn leftovers(fleet: &Fleet) -> Vec<String> {
    let mut found = Vec::new();
    for inst in &fleet.instances {
        found.extend(common::leftovers_on(&inst.name, &inst.connection).await);
    }
    found
}

fn options(mode: RehearsalMode) -> ValidateOptions {
    // Fixed throughput so the lock estimates (and so `lock-time-budget`) do not depend on how
    // busy the machine is: the large shard's events table (~25 MB) takes ~1.2 s to rewrite at
    // 20 MB/s, the small ones well under the 500 ms budget.
    common::options(MIGRATION, mode)
}

fn check_verdicts(report: &ValidationReport) {
    let expected = expected();
    assert_eq!(report.shards.len(), 100);
    let mut wrong = Vec::new();
    for s in &report.shards {
        let n = tenant_number(&s.shard);
        let rules: Vec<&str> = s
            .findings
            .iter()
            .filter(|f| f.severity > deployclaw::gates::Severity::Info)
            .map(|f| f.rule.as_str())
            .collect();
        match expected.get(&n) {
            Some((gate, rule)) => {
                if s.gate != *gate || !rules.contains(rule) {
                    wrong.push(format!(
                        "{}: {} {:?}, expected {gate} with {rule}",
                        s.shard, s.gate, rules
                    ));
                }
            }
            None => {
                if s.gate != Gate::Green {
                    wrong.push(format!(
                        "{}: {} {:?}, expected GREEN",
                        s.shard, s.gate, rules
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "unexpected verdicts:\n{}",
        wrong.join("\n")
    );
    assert_eq!(report.gate, Gate::Red);
    assert_eq!(report.safety_gates.shard_exceptions.len(), expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn planted_problems_give_exact_verdicts_and_the_target_is_unchanged() {
    let demo = DemoOptions {
        rows: 60,
        large_tenant_events: 200_000,
        ..DemoOptions::default()
    };
    let fleet = start_demo_fleet(&demo).await.expect("demo fleet");
    let before = fingerprint_target(&fleet.fleet).await;

    // Shadow rehearsal (the default), with the rollback proven.
    let report = validate(
        &options(RehearsalMode::Shadow),
        &fleet.fleet,
        &NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("validate (shadow)");
    check_verdicts(&report);
    assert!(
        report.rollback.tested,
        "rollback must be tested: {:?}",
        report.rollback
    );
    assert_eq!(
        fingerprint_target(&fleet.fleet).await,
        before,
        "shadow mode changed the target"
    );
    assert_eq!(leftovers(&fleet.fleet).await, Vec::<String>::new());

    // In-place rehearsal (opt-in): always rolled back.
    let report = validate(
        &options(RehearsalMode::InPlace),
        &fleet.fleet,
        &NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("validate (in place)");
    check_verdicts(&report);
    assert_eq!(
        fingerprint_target(&fleet.fleet).await,
        before,
        "in-place mode changed the target"
    );
    assert_eq!(leftovers(&fleet.fleet).await, Vec::<String>::new());
}

//! Verdicts per shard and fleet, and the per-shard context end to end: the same registry runs
//! static and per-shard rules.

use gates::evidence::CatalogDifference;
use gates::evidence::{RehearsalResult, ShardEvidence};
use gates::migration_parser::parse;
use gates::{
    Config, Finding, Gate, GateSummary, Registry, RuleContext, RuleScope, Severity, ShardVerdict,
    evaluate_shard, fleet_gate, shard_exceptions,
};
use serde_json::json;

fn finding(sev: Severity) -> Finding {
    Finding::new("r", "X1", sev, "m")
}

fn verdict(shard: &str, sevs: &[Severity]) -> ShardVerdict {
    ShardVerdict::new(shard, "db-1", sevs.iter().map(|s| finding(*s)).collect(), 0)
}

#[test]
fn red_beats_yellow_beats_green_and_info_is_green() {
    assert_eq!(verdict("a", &[]).gate, Gate::Green);
    assert_eq!(
        verdict("a", &[Severity::Info, Severity::Info]).gate,
        Gate::Green
    );
    assert_eq!(
        verdict("a", &[Severity::Info, Severity::Yellow]).gate,
        Gate::Yellow
    );
    assert_eq!(
        verdict("a", &[Severity::Yellow, Severity::Red, Severity::Info]).gate,
        Gate::Red
    );

    let fleet = vec![
        verdict("t1", &[]),
        verdict("t2", &[Severity::Info]),
        verdict("t3", &[Severity::Yellow]),
    ];
    assert_eq!(fleet_gate(&fleet), Gate::Yellow);
    let mut fleet2 = fleet.clone();
    fleet2.push(verdict("t4", &[Severity::Red]));
    assert_eq!(fleet_gate(&fleet2), Gate::Red);
    assert_eq!(fleet_gate(&fleet[..2]), Gate::Green);
    assert_eq!(fleet_gate(&[]), Gate::Green);

    let s = GateSummary::of(&fleet2);
    assert_eq!((s.green, s.yellow, s.red, s.total()), (2, 1, 1, 4));
    assert_eq!(s.gate(), Gate::Red);
    assert_eq!(s.to_string(), "4 shards: 2 green, 1 yellow, 1 red");
    let ex: Vec<&str> = shard_exceptions(&fleet2)
        .iter()
        .map(|v| v.shard.as_str())
        .collect();
    assert_eq!(ex, vec!["t4", "t3"]);
}

fn evidence(extra: serde_json::Value) -> ShardEvidence {
    let mut base = json!({
        "shard": "tenant_0007", "instance": "db-2", "database": "app", "schema": "tenant_0007",
        "fingerprint": "fp", "catalog": null, "server_version": 15, "probes": [], "tables": [],
        "rehearsal": "fp", "estimate": null, "estimated_lock_ms": 0, "unreachable": null,
        "incomplete": null, "duration_ms": 10
    });
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(base).unwrap()
}

#[test]
fn unreachable_is_red_with_or_without_evidence() {
    let c = Config::default();
    let m = parse(
        "m.sql",
        "SET lock_timeout = '1s';\nALTER TABLE t ADD COLUMN c int;\n",
        &c.parse_options(),
    )
    .unwrap();
    let r = Registry::builtin();

    let ctx = RuleContext::new(&m, &c)
        .with_shard_id("tenant_0009", "db-3")
        .with_unreachable("password authentication failed for user \"gate\"");
    let v = evaluate_shard(&r, &ctx);
    assert_eq!(
        (v.shard.as_str(), v.instance.as_str(), v.gate),
        ("tenant_0009", "db-3", Gate::Red)
    );
    assert_eq!(v.findings.len(), 1);
    assert_eq!(v.findings[0].rule, "shard-unreachable");
    assert!(
        v.findings[0]
            .message
            .contains("password authentication failed")
    );

    let ev = evidence(json!({"unreachable": "connection refused"}));
    let v = evaluate_shard(&r, &RuleContext::new(&m, &c).with_shard(&ev));
    assert_eq!(v.gate, Gate::Red);
    assert_eq!(
        (v.shard.as_str(), v.instance.as_str()),
        ("tenant_0007", "db-2")
    );

    let ev = evidence(json!({"incomplete": "shard timeout after 60 s"}));
    let v = evaluate_shard(&r, &RuleContext::new(&m, &c).with_shard(&ev));
    assert_eq!(v.gate, Gate::Yellow, "{:?}", v.findings);
}

const MIGRATION: &str = "\
SET lock_timeout = '2s';
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
CREATE INDEX orders_status_idx ON orders (status);
";

fn probe(count: u64) -> serde_json::Value {
    json!({
        "shard": "tenant_0007", "kind": "fk_orphans", "statement_index": 2, "schema": "tenant_0007",
        "table": "orders", "column": "customer_id", "constraint": "orders_customer_fk",
        "count": count, "exact": true, "samples": ["customer_id=4"], "would_fail": count > 0,
        "bytes": null, "skipped": null, "note": null, "error": null, "sql": "SELECT ...",
        "duration_ms": 2
    })
}

fn estimate(lock_ms: f64) -> serde_json::Value {
    json!({
        "statements": [{
            "index": 3, "estimated_ms": lock_ms, "blocking_lock": "Share",
            "blocked_relations": ["tenant_0007.orders"], "blocks": "all writes",
            "estimated_lock_ms": lock_ms, "basis": "index build"
        }],
        "total_lock_ms": lock_ms as u64, "max_statement_lock_ms": lock_ms as u64,
        "total_ms": lock_ms as u64,
        "throughput": {"scan_mb_per_s": 150.0, "rewrite_mb_per_s": 40.0, "index_mb_per_s": 30.0,
                       "catalog_ms": 5.0, "calibrated": false, "sample_mb": 0.0}
    })
}

#[test]
fn one_registry_runs_static_and_per_shard_rules() {
    let c = Config::default();
    let m = parse("m.sql", MIGRATION, &c.parse_options()).unwrap();
    let r = Registry::builtin();

    // Without shard evidence: exactly the static lint.
    let static_only = RuleContext::new(&m, &c);
    let v = evaluate_shard(&r, &static_only);
    assert_eq!(v.findings, r.lint(&m, &c));
    assert!(
        v.findings
            .iter()
            .all(|f| r.get(&f.rule).unwrap().meta().scope == RuleScope::Static)
    );
    assert_eq!(
        v.gate,
        Gate::Yellow,
        "require-concurrent-index only: {:?}",
        v.findings
    );

    // A clean shard: same findings, same gate.
    let clean = evidence(
        json!({"probes": [probe(0)], "estimate": estimate(120.0), "estimated_lock_ms": 120}),
    );
    let v = evaluate_shard(&r, &RuleContext::new(&m, &c).with_shard(&clean));
    assert_eq!(v.findings, r.lint(&m, &c));
    assert_eq!((v.gate, v.estimated_lock_ms), (Gate::Yellow, 120));

    // A shard with orphans: red; the per-shard finding sits with the static ones, in order.
    let dirty = evidence(
        json!({"probes": [probe(3)], "estimate": estimate(9000.0), "estimated_lock_ms": 9000}),
    );
    let ctx = RuleContext::new(&m, &c).with_shard(&dirty);
    let v = evaluate_shard(&r, &ctx);
    assert_eq!(v.gate, Gate::Red);
    let rules: Vec<(&str, u32)> = v
        .findings
        .iter()
        .map(|f| (f.rule.as_str(), f.location.as_ref().map_or(0, |l| l.line)))
        .collect();
    assert_eq!(
        rules,
        vec![
            ("fk-orphans", 3),
            ("require-concurrent-index", 4),
            ("lock-time-budget", 4)
        ]
    );
    let shard_only = r.lint_scoped(&ctx, Some(RuleScope::Shard));
    assert_eq!(shard_only.len(), 2);
    // disable / severity overrides apply to per-shard rules too
    let mut c2 = c.clone();
    c2.rules
        .severity
        .insert("fk-orphans".into(), Severity::Yellow);
    c2.rules.disable.push("DC110".into());
    let v = evaluate_shard(&r, &RuleContext::new(&m, &c2).with_shard(&dirty));
    assert_eq!(v.gate, Gate::Yellow);
    assert!(!v.findings.iter().any(|f| f.rule == "lock-time-budget"));
}

#[test]
fn lock_budget_comes_from_config_or_context() {
    let m = parse("m.sql", MIGRATION, &Config::default().parse_options()).unwrap();
    let ev = evidence(json!({"estimate": estimate(9000.0)}));
    let budget_findings = |c: &Config, over: Option<u64>| {
        let mut ctx = RuleContext::new(&m, c).with_shard(&ev);
        if let Some(b) = over {
            ctx = ctx.with_lock_budget_ms(b);
        }
        assert_eq!(
            ctx.lock_budget_ms(),
            over.unwrap_or(c.lock_budget.max_blocking_ms)
        );
        Registry::builtin()
            .lint_with(&ctx)
            .into_iter()
            .filter(|f| f.rule == "lock-time-budget")
            .count()
    };
    let default = Config::default();
    assert_eq!(default.lock_budget.max_blocking_ms, 5000);
    assert_eq!(budget_findings(&default, None), 1);
    let relaxed =
        Config::from_toml_str("d.toml", "[lock_budget]\nmax_blocking_ms = 10000\n").unwrap();
    assert_eq!(budget_findings(&relaxed, None), 0);
    assert_eq!(budget_findings(&relaxed, Some(8_999)), 1);
    assert_eq!(
        budget_findings(&default, Some(9_000)),
        0,
        "at the budget is within it"
    );
}

#[test]
fn drift_from_topology_differences() {
    let c = Config::default();
    let m = parse("m.sql", "SET lock_timeout = '1s';\n", &c.parse_options()).unwrap();
    let diffs = vec![
        CatalogDifference::MissingColumn {
            table: "orders".into(),
            column: "note".into(),
            data_type: "text".into(),
        },
        CatalogDifference::ExtraIndex {
            table: "users".into(),
            index: "users_tmp_idx".into(),
            definition: "CREATE INDEX users_tmp_idx ON users USING btree (x)".into(),
        },
    ];
    let ctx = RuleContext::new(&m, &c)
        .with_shard_id("tenant_0003", "db-1")
        .with_drift(&diffs)
        .with_drift_reference("tenant_0001");
    assert_eq!(ctx.drift()[0].object, "column orders.note");
    assert_eq!(ctx.drift()[1].object, "index users_tmp_idx on users");
    assert_eq!(ctx.drift()[0].kind, "missing_column");
    let v = evaluate_shard(&Registry::builtin(), &ctx);
    assert_eq!(v.gate, Gate::Yellow);
    insta::assert_snapshot!(v.findings[0].message, @"this shard's catalog differs from the fleet's majority shape (reference shard `tenant_0001`) in 2 places: table orders: missing column note (text); table users: extra index users_tmp_idx: CREATE INDEX users_tmp_idx ON users USING btree (x)");
}

#[test]
fn a_rehearsal_that_could_not_be_set_up_makes_the_shard_yellow() {
    let c = Config::default();
    let m = parse("m.sql", "SET lock_timeout = '1s';\n", &c.parse_options()).unwrap();
    let r: RehearsalResult = serde_json::from_value(json!({
        "fingerprint": "fp", "shard": "tenant_0001", "schema": "tenant_0001", "mode": "shadow",
        "target": "ephemeral", "server_version": 16,
        "setup_error": "pg_dump 14 cannot dump a server of version 16", "clone_errors": [],
        "statements": [{"index": 0, "line": 1, "outcome": {"status": "not_run", "reason": "setup_failed"},
                        "locks": [], "lock_source": "unknown", "rewritten": [], "created": [],
                        "in_block": false, "duration_ms": 0.0}],
        "duration_ms": 5
    }))
    .unwrap();
    let ev = evidence(json!({}));
    let v = evaluate_shard(
        &Registry::builtin(),
        &RuleContext::new(&m, &c).with_shard(&ev).with_rehearsal(&r),
    );
    assert_eq!(v.gate, Gate::Yellow);
    assert_eq!(v.findings.len(), 1);
    assert_eq!(
        (v.findings[0].rule.as_str(), v.findings[0].severity),
        ("statement-fails", Severity::Yellow)
    );
}

/// A rehearsal that ran on an incomplete copy says so (info, with the restore errors): a
/// failure that depends on what did not restore is unknown, never silently absent.
#[test]
fn a_rehearsal_on_an_incomplete_copy_is_noted() {
    let c = Config::default();
    let m = parse(
        "m.sql",
        "ALTER TABLE orders ALTER COLUMN status TYPE varchar(64);\n",
        &c.parse_options(),
    )
    .unwrap();
    let r: RehearsalResult = serde_json::from_value(json!({
        "fingerprint": "fp", "shard": "tenant_0001", "schema": "tenant_0001", "mode": "shadow",
        "target": "ephemeral", "server_version": 16, "setup_error": null,
        "clone_errors": [
            "psql:<stdin>:40: ERROR:  extension \"ltree\" is not available",
            "psql:<stdin>:57: ERROR:  type \"ltree\" does not exist",
            "psql:<stdin>:88: ERROR:  relation \"tenant_0001.paths\" does not exist",
            "psql:<stdin>:91: ERROR:  relation \"tenant_0001.paths_v\" does not exist"
        ],
        "statements": [{"index": 0, "line": 1, "outcome": {"status": "succeeded"},
                        "locks": [], "lock_source": "observed", "rewritten": [], "created": [],
                        "in_block": false, "duration_ms": 1.0}],
        "duration_ms": 5
    }))
    .unwrap();
    let ev = evidence(json!({}));
    let v = evaluate_shard(
        &Registry::builtin(),
        &RuleContext::new(&m, &c).with_shard(&ev).with_rehearsal(&r),
    );
    let f = v
        .findings
        .iter()
        .find(|f| f.rule == "statement-fails")
        .expect("a statement-fails finding");
    assert_eq!(f.severity, Severity::Info);
    insta::assert_snapshot!(f.message);
}

#[test]
fn context_from_a_simulation_result() {
    let c = Config::default();
    let m = parse("m.sql", MIGRATION, &c.parse_options()).unwrap();
    let ev = evidence(json!({"probes": [probe(3)], "estimated_lock_ms": 42}));
    let sim: gates::evidence::SimulationResult = serde_json::from_value(json!({
        "shards": [ev],
        "rehearsals": {},
        "throughput": {"scan_mb_per_s": 150.0, "rewrite_mb_per_s": 40.0, "index_mb_per_s": 30.0,
                       "catalog_ms": 5.0, "calibrated": false, "sample_mb": 0.0},
        "steps": [],
        "duration_ms": 1
    }))
    .unwrap();
    let v = evaluate_shard(
        &Registry::builtin(),
        &RuleContext::new(&m, &c).with_simulation(&sim, "tenant_0007"),
    );
    assert_eq!(
        (
            v.shard.as_str(),
            v.instance.as_str(),
            v.gate,
            v.estimated_lock_ms
        ),
        ("tenant_0007", "db-2", Gate::Red, 42)
    );
    let v = evaluate_shard(
        &Registry::builtin(),
        &RuleContext::new(&m, &c).with_simulation(&sim, "tenant_9999"),
    );
    assert_eq!((v.shard.as_str(), v.gate), ("tenant_9999", Gate::Yellow));
}

#[test]
fn in_place_data_failures_of_another_shard_do_not_carry_over() {
    let c = Config::default();
    let m = parse("m.sql", MIGRATION, &c.parse_options()).unwrap();
    let rehearsal = |shard: &str| -> RehearsalResult {
        serde_json::from_value(json!({
            "fingerprint": "fp", "shard": shard, "schema": shard, "mode": "in_place",
            "target": "db-2", "server_version": 16, "setup_error": null, "clone_errors": [],
            "statements": [
                {"index": 2, "line": 3, "outcome": {"status": "failed", "sqlstate": "23503", "message": "violates foreign key"},
                 "locks": [], "lock_source": "observed", "rewritten": [], "created": [], "in_block": false, "duration_ms": 1.0},
                {"index": 3, "line": 4, "outcome": {"status": "failed", "sqlstate": "42P01", "message": "relation \"orders\" does not exist"},
                 "locks": [], "lock_source": "observed", "rewritten": [], "created": [], "in_block": false, "duration_ms": 1.0}
            ],
            "duration_ms": 5
        }))
        .unwrap()
    };
    let ev = evidence(json!({}));
    let failing = |r: &RehearsalResult| -> Vec<u32> {
        let ctx = RuleContext::new(&m, &c).with_shard(&ev).with_rehearsal(r);
        Registry::builtin()
            .lint_with(&ctx)
            .iter()
            .filter(|f| f.rule == "statement-fails")
            .map(|f| f.location.as_ref().unwrap().line)
            .collect()
    };
    // rehearsed on another shard of the shape: its orphans are not this shard's problem
    assert_eq!(failing(&rehearsal("tenant_0001")), vec![4]);
    // rehearsed on this very shard: both failures are this shard's
    assert_eq!(failing(&rehearsal("tenant_0007")), vec![3, 4]);
}

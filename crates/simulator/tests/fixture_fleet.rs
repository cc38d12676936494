//! The example migration against topology's fixture fleet with planted problems.

use simulator::{CancelToken, NoProgress, ProbeKind, SimOptions, Simulator, StatementOutcome};
use topology::fixture::{DriftKind, FixtureSpec, Plant, start_fleet};

const EXAMPLE: &str = include_str!("../../../examples/migrations/schema_v42.sql");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_migration_on_planted_fleet() {
    let spec = FixtureSpec {
        tenants: 6,
        ..Default::default()
    }
    .plant(2, Plant::OrphanedCoupons { rows: 3 })
    .plant(3, Plant::NullShippingAddresses { rows: 4 })
    .plant(4, Plant::DuplicateEmails { rows: 2 })
    .plant(5, Plant::UncastableAmounts { rows: 5 })
    .plant(6, Plant::NegativePayments { rows: 2 })
    .plant(
        6,
        Plant::Drift {
            kind: DriftKind::ExtraColumn,
        },
    );
    let ef = start_fleet(1, &spec).await.expect("fixture fleet");
    let m = migration_parser::parse("schema_v42.sql", EXAMPLE, &Default::default()).expect("parse");
    let sim = Simulator::new(SimOptions {
        calibrate: false,
        ..Default::default()
    });
    let res = sim
        .run(&m, &ef.fleet, None, &NoProgress, &CancelToken::new())
        .await
        .expect("run");
    assert_eq!(res.shards.len(), 6);
    // (kind, statement) -> count per tenant 1..=6
    let expect: &[(ProbeKind, usize, [u64; 6])] = &[
        (ProbeKind::FkOrphans, 3, [0, 3, 0, 0, 0, 0]),
        (ProbeKind::NotNullViolations, 4, [0, 0, 4, 0, 0, 0]),
        (ProbeKind::UniqueViolations, 5, [0, 0, 0, 1, 0, 0]),
        (ProbeKind::CastFailures, 6, [0, 0, 0, 0, 5, 0]),
        (ProbeKind::CheckViolations, 8, [0, 0, 0, 0, 0, 2]),
    ];
    for (kind, stmt, counts) in expect {
        for (i, ev) in res.shards.iter().enumerate() {
            assert!(ev.unreachable.is_none(), "{ev:#?}");
            let p = ev
                .probes
                .iter()
                .find(|p| p.kind == *kind && p.statement_index == Some(*stmt))
                .unwrap_or_else(|| {
                    panic!(
                        "{kind:?} probe for statement {stmt} on {}: {:#?}",
                        ev.shard, ev.probes
                    )
                });
            assert_eq!(p.count, counts[i], "{kind:?} on {}: {p:#?}", ev.shard);
            assert_eq!(p.would_fail, counts[i] > 0, "{p:#?}");
            assert!(p.exact, "{p:#?}");
            assert!(p.error.is_none(), "{p:#?}");
        }
    }
    // Only the planted problems fail anything.
    for ev in &res.shards {
        let failing = ev.probes.iter().filter(|p| p.would_fail).count();
        let planted = expect
            .iter()
            .filter(|(_, _, c)| c[res.shards.iter().position(|s| s.shard == ev.shard).unwrap()] > 0)
            .count();
        assert_eq!(failing, planted, "{}: {:#?}", ev.shard, ev.probes);
    }
    // Two shapes (tenant 6 drifted), two rehearsals; on the empty shadow every statement succeeds.
    assert_eq!(res.rehearsals.len(), 2, "{:#?}", res.rehearsals.keys());
    // Shapes come from topology's catalog fingerprint (not the simulator's fallback).
    assert!(
        res.rehearsals.keys().all(|f| !f.starts_with("sim:")),
        "{:#?}",
        res.steps
    );
    for r in res.rehearsals.values() {
        assert!(r.ok(), "{r:#?}");
        assert!(r.clone_errors.is_empty(), "{:?}", r.clone_errors);
        assert!(
            r.statements
                .iter()
                .all(|s| s.outcome == StatementOutcome::Succeeded)
        );
    }
    // Every shard has an estimate.
    assert!(res.shards.iter().all(|s| s.estimate.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_per_tenant_fleet() {
    let spec = FixtureSpec {
        tenants: 3,
        layout: topology::fixture::FixtureLayout::DatabasePerTenant,
        ..Default::default()
    }
    .plant(2, Plant::OrphanedCoupons { rows: 2 });
    let ef = start_fleet(1, &spec).await.expect("fixture fleet");
    let m = migration_parser::parse("schema_v42.sql", EXAMPLE, &Default::default()).expect("parse");
    let sim = Simulator::new(SimOptions {
        calibrate: false,
        concurrency: 2,
        ..Default::default()
    });
    let res = sim
        .run(&m, &ef.fleet, None, &NoProgress, &CancelToken::new())
        .await
        .expect("run");
    let counts: Vec<u64> = res
        .shards
        .iter()
        .map(|ev| {
            assert!(ev.unreachable.is_none(), "{ev:#?}");
            ev.probes
                .iter()
                .find(|p| p.kind == ProbeKind::FkOrphans)
                .map(|p| p.count)
                .unwrap_or(99)
        })
        .collect();
    assert_eq!(counts, vec![0, 2, 0]);
    assert_eq!(res.rehearsals.len(), 1);
    let r = res.rehearsals.values().next().unwrap();
    assert!(r.ok(), "{r:#?}");
}

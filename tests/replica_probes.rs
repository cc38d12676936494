//! `--probe-on replica` on a real fleet: the demo's 3 instances and 100 planted tenants, each
//! instance with a streaming hot standby (`pg_basebackup -R`). The data probes run on the
//! replicas (their scan counters move, the writers' do not) and give the same verdicts and
//! findings as on the writers; a replica lagging more than the bound is refused with the reason
//! (an info `replica-not-used` finding, probes on its writer, same verdicts); writers and
//! replicas are unchanged.

mod common;
#[path = "common/replica.rs"]
mod replica;

use std::collections::BTreeMap;
use std::time::Duration;

use deployclaw::demo::{DemoOptions, start_demo_fleet};
use deployclaw::pipeline::{ValidateOptions, validate};
use deployclaw::report::ValidationReport;
use deployclaw::simulator::{CancelToken, NoProgress, ProbeOn, RehearsalMode};
use deployclaw::topology::{ConnectionSpec, Fleet};

fn options(probe_on: ProbeOn) -> ValidateOptions {
    let mut o = common::options(common::MIGRATION, RehearsalMode::Shadow);
    o.validate_rollback = false;
    o.probe_on = Some(probe_on);
    o
}

/// Per shard: the gate and every finding (rule, severity, message) except `replica-not-used`.
fn verdicts(report: &ValidationReport) -> BTreeMap<String, (String, Vec<String>)> {
    report
        .shards
        .iter()
        .map(|s| {
            let findings = s
                .findings
                .iter()
                .filter(|f| f.rule != "replica-not-used")
                .map(|f| format!("{} {} {}", f.severity, f.rule, f.message))
                .collect();
            (s.shard.clone(), (s.gate.to_string(), findings))
        })
        .collect()
}

fn writers(fleet: &Fleet) -> Vec<&ConnectionSpec> {
    let w = fleet.instances.iter().filter(|i| !i.is_replica());
    w.map(|i| &i.connection).collect()
}

fn replicas(fleet: &Fleet) -> Vec<&ConnectionSpec> {
    let r = fleet.instances.iter().filter(|i| i.is_replica());
    r.map(|i| &i.connection).collect()
}

/// Wait (bounded) until the scans on `specs` exceed `before`; the counters' final value.
async fn scans_rise_above(specs: &[&ConnectionSpec], before: i64) -> i64 {
    for _ in 0..100 {
        let now = replica::scans_of(specs).await;
        if now > before {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no tenant-table scan was counted there");
}

async fn no_leftovers(fleet: &Fleet) {
    let mut found = Vec::new();
    for i in &fleet.instances {
        found.extend(if i.is_replica() {
            replica::replica_leftovers(&i.name, &i.connection).await
        } else {
            common::leftovers_on(&i.name, &i.connection).await
        });
    }
    assert_eq!(found, Vec::<String>::new());
}

async fn run(opts: &ValidateOptions, fleet: &Fleet) -> ValidationReport {
    let r = validate(opts, fleet, &NoProgress, &CancelToken::new()).await;
    let report = r.expect("validate");
    // Every session has ended (and so flushed its statistics) before counters are read.
    no_leftovers(fleet).await;
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn probes_on_replicas_give_the_writers_verdicts_and_a_lagging_replica_is_refused() {
    let demo = DemoOptions {
        rows: 60,
        large_tenant_events: 20_000,
        ..DemoOptions::default()
    };
    let mut fleet = start_demo_fleet(&demo).await.expect("demo fleet");
    let standbys = replica::add_replicas(&mut fleet).await;
    let fleet_ref = &fleet.fleet;
    let before = common::fingerprint_instances(&fleet_ref.instances).await;

    // On the writers: their tenant tables are scanned (the method sees probes where they run).
    let w0 = replica::scans_of(&writers(fleet_ref)).await;
    let on_writer = run(&options(ProbeOn::Writer), fleet_ref).await;
    let w1 = scans_rise_above(&writers(fleet_ref), w0).await;
    assert!(on_writer.shards.iter().all(|s| s.live.replica.is_none()));
    let line = on_writer.steps.iter().find(|s| s.action == "replicas");
    assert_eq!(
        line.map(|s| s.details.as_str()),
        Some("Found 100 tenant shards across 3 reader replicas (data probes on the writers)")
    );

    // On the replicas: same verdicts, the replicas scanned, the writers not at all.
    let r0 = replica::scans_of(&replicas(fleet_ref)).await;
    let on_replica = run(&options(ProbeOn::Replica), fleet_ref).await;
    scans_rise_above(&replicas(fleet_ref), r0).await;
    assert_eq!(
        replica::scans_of(&writers(fleet_ref)).await,
        w1,
        "a data probe scanned a writer's tenant table"
    );
    assert_eq!(verdicts(&on_replica), verdicts(&on_writer));
    for s in &on_replica.shards {
        let read = s.live.replica.as_ref().expect("replica read");
        assert_eq!(read.instance, format!("{}-ro", s.instance), "{}", s.shard);
        assert_eq!(read.refused, None, "{}", s.shard);
        assert!(read.lag_ms.is_some_and(|ms| ms <= 5_000), "{read:?}");
    }
    let step = on_replica
        .steps
        .iter()
        .find(|s| s.action == "probe on replica");
    let step = step.map(|s| s.details.as_str()).unwrap_or_default();
    assert!(
        step.starts_with("Found 100 tenant shards across 3 reader replicas: data probes of 100 shard(s) on 3 replica(s), 0 shard(s) on their writer"),
        "{step}"
    );
    let json = serde_json::to_value(&on_replica).expect("json");
    assert_eq!(json["shards"][0]["live"]["replica"]["instance"], "pg-1-ro");

    // pg-1's replica lags past a 1 s bound: refused, its shards probed on pg-1, said.
    replica::make_it_lag(&standbys[0], &fleet_ref.instances[0].connection).await;
    let mut opts = options(ProbeOn::Replica);
    opts.sim.max_replica_lag = Duration::from_secs(1);
    let lagging = run(&opts, fleet_ref).await;
    assert_eq!(verdicts(&lagging), verdicts(&on_writer));
    for s in &lagging.shards {
        let read = s.live.replica.as_ref().expect("replica read");
        let refusal = s.findings.iter().find(|f| f.rule == "replica-not-used");
        if s.instance == "pg-1" {
            let reason = read.refused.as_deref().unwrap_or_default();
            assert!(
                reason.starts_with("`pg-1-ro`: replica lag over the bound of 1000 ms"),
                "{reason}"
            );
            let f = refusal.expect("replica-not-used finding");
            assert_eq!(f.severity, deployclaw::gates::Severity::Info);
            assert!(f.message.contains("ran on its writer"), "{}", f.message);
        } else {
            assert_eq!(read.refused, None);
            assert!(refusal.is_none());
        }
    }

    // Writers and replicas unchanged (the lag marker lives outside the fixture's database).
    assert_eq!(
        common::fingerprint_instances(&fleet_ref.instances).await,
        before
    );
}

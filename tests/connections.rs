//! Per-instance connection limits: the whole gate never holds more sessions on a target
//! instance than `--concurrency` (probes, introspection) plus a fixed few that are not per
//! shard ([`EXTRA_SESSIONS`]), also on a database-per-tenant instance where every tenant
//! database has its own pool (ten databases here: idle pooled sessions would show). Counted exactly from the server's own log
//! (`log_connections`/`log_disconnections`), on an instance whose `max_connections` leaves no
//! room for more: a session over the limit would fail the shard, not go unnoticed.

mod common;

use std::collections::BTreeMap;

use deployclaw::pipeline::validate;
use deployclaw::simulator::{CancelToken, NoProgress, RehearsalMode};
use deployclaw::topology::ephemeral::EphemeralOptions;
use deployclaw::topology::fixture::{FixtureLayout, FixtureSpec, start_fleet_with};

/// Sessions the server may count besides the `--concurrency` bounded ones (reachability,
/// introspection, probes), none of them per shard: the rehearsal's source session and its
/// `pg_dump`, the per-fleet rerun's, the rollback proof's `pg_stats` read — and a session
/// that is closing (its backend still holds a slot until it exits) while the next one opens.
/// Measured: 3–4 sessions at most in all, against 8–10 before the reachability check was
/// bounded per instance.
const EXTRA_SESSIONS: usize = 4;

/// The most sessions open at once in `log` (the server log from the run's start), from its
/// `connection authorized` and `disconnection` lines (`log_line_prefix` has the pid in `[]`),
/// with the `connection authorized` lines of the sessions open at that moment.
fn max_concurrent_sessions(log: &str) -> (usize, Vec<String>) {
    let mut open: BTreeMap<String, String> = BTreeMap::new();
    let mut max = (0, Vec::new());
    for line in log.lines() {
        let Some(pid) = line
            .split_once('[')
            .and_then(|(_, r)| r.split_once(']'))
            .map(|(p, _)| p.to_owned())
        else {
            continue;
        };
        if line.contains("connection authorized:") {
            open.insert(pid, line.to_owned());
            if open.len() > max.0 {
                max = (open.len(), open.values().cloned().collect());
            }
        } else if line.contains("disconnection:") {
            open.remove(&pid);
        }
    }
    max
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_per_instance_stay_within_the_concurrency_limit() {
    let concurrency = 2usize;
    let settings = [
        ("log_connections", "on"),
        ("log_disconnections", "on"),
        ("log_line_prefix", "'%m [%p] '"),
        // Room for the limit, the reserved superuser slots and nothing else.
        ("max_connections", "8"),
        ("superuser_reserved_connections", "1"),
    ];
    let ephemeral = EphemeralOptions {
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..EphemeralOptions::default()
    };
    let spec = FixtureSpec {
        tenants: 10,
        rows: 20,
        layout: FixtureLayout::DatabasePerTenant,
        concurrency: 1,
        ..FixtureSpec::default()
    };
    let fx = start_fleet_with(1, &spec, &ephemeral).await.expect("fleet");
    let log_path = fx.clusters[0].log_path();
    let from = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0) as usize;

    let mut opts = common::options(common::MIGRATION, RehearsalMode::Shadow);
    opts.sim.concurrency = concurrency as u32;
    opts.validate_rollback = true;
    let report = validate(&opts, &fx.fleet, &NoProgress, &CancelToken::new())
        .await
        .expect("validate");
    assert_eq!(report.shards.len(), 10);
    for s in &report.shards {
        assert!(
            s.findings.iter().all(|f| f.rule != "shard-unreachable"),
            "{}: {:?}",
            s.shard,
            s.findings
        );
    }
    let log = std::fs::read(&log_path).expect("server log");
    let log = String::from_utf8_lossy(&log[from.min(log.len())..]).into_owned();
    assert!(
        log.contains("connection authorized:"),
        "log_connections is on"
    );
    let (max, sessions) = max_concurrent_sessions(&log);
    assert!(
        max <= concurrency + EXTRA_SESSIONS,
        "{max} sessions at once on the instance with --concurrency {concurrency}:\n{}",
        sessions.join("\n")
    );
}

#[test]
fn the_session_counter_counts_overlap_only() {
    let log = "\
2026-12-05 07:00:00.000 UTC [10] LOG:  connection authorized: user=postgres database=a
2026-12-05 07:00:00.001 UTC [11] LOG:  connection authorized: user=postgres database=b
2026-12-05 07:00:00.002 UTC [10] LOG:  disconnection: session time: 0:00:00.002
2026-12-05 07:00:00.003 UTC [12] LOG:  connection authorized: user=postgres database=c
2026-12-05 07:00:00.004 UTC [99] LOG:  disconnection: session time: 0:00:00.002
2026-12-05 07:00:00.005 UTC [11] LOG:  disconnection: session time: 0:00:00.004
";
    assert_eq!(max_concurrent_sessions(log).0, 2);
}

//! Faults during validation, against real ephemeral PostgreSQL clusters: an instance that stops
//! (before and in the middle of a run), nothing listening on the port, a wrong password and an
//! unknown role, a table lock held by another session, and a probe `statement_timeout`. Each
//! must give a report (never a hang or a crash) in which the affected shards carry a finding
//! with the reason and every other shard keeps its normal verdict; afterwards no session, lock or
//! database is left behind on any instance.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use common::{MIGRATION, leftovers, options};
use deployclaw::gates::{Gate, Severity};
use deployclaw::pipeline::validate;
use deployclaw::report::{ShardReport, ValidationReport};
use deployclaw::simulator::{CancelToken, NoProgress, ProgressEvent, RehearsalMode};
use deployclaw::topology::fixture::{EphemeralFleet, FixtureSpec, Plant, start_fleet};
use deployclaw::topology::{Fleet, Instance, Shard, ShardLocation};
use sqlx::{Connection, PgConnection};

/// Generous bound for one validation of a small fleet; only a hang reaches it.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// 2 instances × 6 tenants, orphaned coupons planted on tenant 3 (instance pg-1) and tenant 5
/// (instance pg-2): RED `fk-orphans` there, GREEN elsewhere.
async fn small_fleet() -> EphemeralFleet {
    let spec = FixtureSpec {
        tenants: 6,
        rows: 40,
        ..FixtureSpec::default()
    }
    .plant(3, Plant::OrphanedCoupons { rows: 2 })
    .plant(5, Plant::OrphanedCoupons { rows: 2 });
    start_fleet(2, &spec).await.expect("fixture fleet")
}

fn tenant(shard: &str) -> usize {
    shard
        .rsplit("tenant_")
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

fn rules(s: &ShardReport) -> Vec<&str> {
    s.findings
        .iter()
        .filter(|f| f.severity > Severity::Info)
        .map(|f| f.rule.as_str())
        .collect()
}

/// The verdict a shard of [`small_fleet`] has when nothing goes wrong.
fn check_normal(s: &ShardReport) -> Result<(), String> {
    let r = rules(s);
    let ok = if [3, 5].contains(&tenant(&s.shard)) {
        s.gate == Gate::Red && r.contains(&"fk-orphans") && !r.contains(&"shard-unreachable")
    } else {
        s.gate == Gate::Green
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{}: {} {:?}", s.shard, s.gate, r))
    }
}

/// The shard is RED with `shard-unreachable` carrying a non-empty reason.
fn check_unreachable(s: &ShardReport) -> Result<(), String> {
    let f = s.findings.iter().find(|f| f.rule == "shard-unreachable");
    match f {
        Some(f)
            if s.gate == Gate::Red && f.severity == Severity::Red && f.message.contains(": ") =>
        {
            let reason = f
                .message
                .split_once("nothing was checked on it: ")
                .map(|x| x.1)
                .unwrap_or("");
            if reason.trim().is_empty() {
                Err(format!(
                    "{}: shard-unreachable without a reason: {}",
                    s.shard, f.message
                ))
            } else {
                Ok(())
            }
        }
        _ => Err(format!(
            "{}: expected RED shard-unreachable, got {} {:?}",
            s.shard,
            s.gate,
            rules(s)
        )),
    }
}

fn assert_all(
    report: &ValidationReport,
    mut expect: impl FnMut(&ShardReport) -> Result<(), String>,
) {
    let wrong: Vec<String> = report
        .shards
        .iter()
        .filter_map(|s| expect(s).err())
        .collect::<Vec<_>>();
    assert!(
        wrong.is_empty(),
        "unexpected verdicts:\n{}",
        wrong.join("\n")
    );
}

async fn run(
    opts: &deployclaw::pipeline::ValidateOptions,
    fleet: &Fleet,
    progress: &dyn deployclaw::simulator::Progress,
) -> ValidationReport {
    tokio::time::timeout(
        HANG_GUARD,
        validate(opts, fleet, progress, &CancelToken::new()),
    )
    .await
    .expect("validation hung")
    .expect("validation must produce a report")
}

/// The report's message for a shard-unreachable shard, for a look at the reason.
fn reason_of(report: &ValidationReport, shard: &str) -> String {
    report
        .shards
        .iter()
        .find(|s| s.shard == shard)
        .and_then(|s| s.findings.iter().find(|f| f.rule == "shard-unreachable"))
        .map(|f| f.message.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instance_stopped_before_validation_makes_only_its_shards_unreachable() {
    let mut fx = small_fleet().await;
    let pg2 = fx.clusters.remove(1);
    pg2.stop().expect("stop pg-2");

    let report = run(
        &options(MIGRATION, RehearsalMode::Shadow),
        &fx.fleet,
        &NoProgress,
    )
    .await;
    assert_eq!(report.shards.len(), 6);
    assert_all(&report, |s| {
        if s.instance == "pg-2" {
            check_unreachable(s)
        } else {
            check_normal(s)
        }
    });
    assert_eq!(report.gate, Gate::Red);
    // The reason names the instance's redacted URL, not a bare "error".
    let msg = reason_of(&report, "pg-2/app/tenant_0004");
    assert!(
        msg.contains("127.0.0.1"),
        "reason should say which server: {msg}"
    );
    assert_eq!(leftovers(&[&fx.clusters[0]]).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instance_stopped_in_the_middle_of_validation() {
    let mut fx = small_fleet().await;
    // The instance that stays up must be byte-identical afterwards, a stop in the middle or not.
    let pg1_before = common::fingerprint_db(&fx.fleet.instances[0].connection).await;
    let pg2 = Mutex::new(Some(fx.clusters.remove(1)));
    let stopped_at = Mutex::new(None::<String>);
    // Stop pg-2 (`pg_ctl -m immediate stop`) when the simulator announces its first shard: the
    // fleet has already been introspected (catalogs read), the probes are about to run.
    let progress = |e: ProgressEvent| {
        if let ProgressEvent::ShardStarted { shard } = e
            && shard.starts_with("pg-2/")
            && let Some(pg) = pg2.lock().unwrap().take()
        {
            pg.stop().expect("stop pg-2");
            *stopped_at.lock().unwrap() = Some(shard);
        }
    };
    let report = run(
        &options(MIGRATION, RehearsalMode::Shadow),
        &fx.fleet,
        &progress,
    )
    .await;
    assert!(
        stopped_at.lock().unwrap().is_some(),
        "pg-2 was never stopped"
    );
    assert_eq!(report.shards.len(), 6);
    assert_all(&report, |s| {
        if s.instance == "pg-2" {
            check_unreachable(s)
        } else {
            check_normal(s)
        }
    });
    // The introspection of pg-2 succeeded before the stop: the report still has the rollback
    // (proven on pg-1's shape).
    assert!(report.rollback.tested, "rollback: {:?}", report.rollback);
    assert_eq!(
        common::fingerprint_db(&fx.fleet.instances[0].connection).await,
        pg1_before
    );
    assert_eq!(leftovers(&[&fx.clusters[0]]).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instance_stopped_while_its_probes_run() {
    // 2 instances × 4 tenants; orphans on tenants 3 and 5 (one per instance). One probe
    // connection per instance, so pg-2's shards are probed one after the other; pg-2 is stopped
    // when its first shard's probes have finished: that shard keeps its verdict, the shards not
    // probed yet must come out RED `shard-unreachable`, a shard in flight either.
    let spec = FixtureSpec {
        tenants: 8,
        rows: 40,
        ..FixtureSpec::default()
    }
    .plant(3, Plant::OrphanedCoupons { rows: 2 })
    .plant(5, Plant::OrphanedCoupons { rows: 2 });
    let mut fx = start_fleet(2, &spec).await.expect("fixture fleet");
    let pg2 = Mutex::new(Some(fx.clusters.remove(1)));
    let finished_first = Mutex::new(None::<String>);
    let progress = |e: ProgressEvent| {
        if let ProgressEvent::ShardFinished { shard, .. } = e
            && shard.starts_with("pg-2/")
            && let Some(pg) = pg2.lock().unwrap().take()
        {
            pg.stop().expect("stop pg-2");
            *finished_first.lock().unwrap() = Some(shard);
        }
    };
    let mut opts = options(MIGRATION, RehearsalMode::Shadow);
    opts.sim.concurrency = 1;
    let report = run(&opts, &fx.fleet, &progress).await;
    let first = finished_first
        .lock()
        .unwrap()
        .clone()
        .expect("pg-2 was never stopped");
    assert_eq!(report.shards.len(), 8);
    let mut unreachable = 0;
    assert_all(&report, |s| {
        if s.instance != "pg-2" || s.shard == first {
            check_normal(s)
        } else if check_unreachable(s).is_ok() {
            unreachable += 1;
            Ok(())
        } else {
            check_normal(s).map_err(|e| format!("neither unreachable nor its normal verdict: {e}"))
        }
    });
    assert!(
        unreachable >= 1,
        "no pg-2 shard was still to be probed when pg-2 stopped"
    );
    assert_eq!(leftovers(&[&fx.clusters[0]]).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connection_refused_makes_only_that_instances_shards_unreachable() {
    let fx = small_fleet().await;
    let mut fleet = fx.fleet.clone();
    // A port nothing listens on: bind, note the port, close.
    let port = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let mut conn = fx.clusters[0].connection_spec();
    conn.port = port;
    fleet.instances.push(Instance {
        name: "gone".into(),
        connection: conn,
        labels: BTreeMap::new(),
        replica_of: None,
    });
    for n in [91, 92] {
        fleet.shards.push(Shard::new(
            "gone",
            ShardLocation::Schema {
                database: "app".into(),
                schema: format!("tenant_{n:04}"),
            },
        ));
    }
    let report = run(
        &options(MIGRATION, RehearsalMode::Shadow),
        &fleet,
        &NoProgress,
    )
    .await;
    assert_eq!(report.shards.len(), 8);
    assert_all(&report, |s| {
        if s.instance == "gone" {
            check_unreachable(s)
        } else {
            check_normal(s)
        }
    });
    let msg = reason_of(&report, "gone/app/tenant_0091");
    assert!(
        msg.to_lowercase().contains("refused"),
        "reason should say connection refused: {msg}"
    );
    let all: Vec<&deployclaw::topology::ephemeral::EphemeralPg> = fx.clusters.iter().collect();
    assert_eq!(leftovers(&all).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_password_and_unknown_role_make_shards_unreachable() {
    let fx = small_fleet().await;
    let pg1 = &fx.clusters[0];
    // Password authentication for `gate_reader` over TCP (the ephemeral cluster trusts everyone
    // else): a pg_hba.conf line before the trust lines, then a reload.
    common::create_reader(pg1, "gate_reader", "right-password-17").await;
    common::require_password_for(pg1, "gate_reader").await;

    let mut fleet = fx.fleet.clone();
    let pg1_shards: Vec<Shard> = fleet
        .shards
        .iter()
        .filter(|s| s.instance == "pg-1")
        .cloned()
        .collect();
    for (name, user, password) in [
        ("badpw", "gate_reader", Some("wrong-password")),
        ("nopw", "gate_reader", None),
        ("norole", "no_such_role", None),
    ] {
        let mut conn = pg1.connection_spec();
        conn.user = user.into();
        conn.password = password.map(deployclaw::topology::Secret::new);
        fleet.instances.push(Instance {
            name: name.into(),
            connection: conn,
            labels: BTreeMap::new(),
            replica_of: None,
        });
        for s in &pg1_shards {
            fleet.shards.push(Shard::new(name, s.location.clone()));
        }
    }
    let report = run(
        &options(MIGRATION, RehearsalMode::Shadow),
        &fleet,
        &NoProgress,
    )
    .await;
    assert_eq!(report.shards.len(), 6 + 3 * 3);
    assert_all(&report, |s| {
        if s.instance.starts_with("pg-") {
            check_normal(s)
        } else {
            check_unreachable(s)
        }
    });
    let badpw = reason_of(&report, "badpw/app/tenant_0001");
    assert!(badpw.contains("password authentication failed"), "{badpw}");
    assert!(
        !badpw.contains("wrong-password"),
        "the password must not be printed: {badpw}"
    );
    let norole = reason_of(&report, "norole/app/tenant_0001");
    assert!(norole.contains("no_such_role"), "{norole}");
    let all: Vec<&deployclaw::topology::ephemeral::EphemeralPg> = fx.clusters.iter().collect();
    assert_eq!(leftovers(&all).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_locked_by_another_session_gives_a_finding_not_a_hang() {
    let fx = small_fleet().await;
    let before = common::fingerprint_instances(&fx.fleet.instances).await;
    // Another session holds ACCESS EXCLUSIVE on tenant_0002.orders for the whole validation.
    let mut holder = PgConnection::connect_with(&fx.clusters[0].connect_options("app"))
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE tenant_0002.orders IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let mut opts = options(MIGRATION, RehearsalMode::Shadow);
    opts.sim.lock_timeout = Duration::from_millis(500);
    let result = tokio::time::timeout(
        HANG_GUARD,
        validate(&opts, &fx.fleet, &NoProgress, &CancelToken::new()),
    )
    .await;
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    holder.close().await.unwrap();
    let report = result
        .expect("validation hung on a locked table (it must give up after lock_timeout)")
        .expect("validation must produce a report");
    assert_all(&report, |s| {
        if s.shard == "pg-1/app/tenant_0002" {
            let lock_finding = s.findings.iter().any(|f| {
                f.severity >= Severity::Yellow
                    && (f.message.contains("55P03") || f.message.contains("lock timeout"))
            });
            if s.gate != Gate::Green && lock_finding {
                Ok(())
            } else {
                Err(format!(
                    "{}: expected a lock-timeout finding, got {} {:#?}",
                    s.shard, s.gate, s.findings
                ))
            }
        } else {
            check_normal(s)
        }
    });
    assert_eq!(
        common::fingerprint_instances(&fx.fleet.instances).await,
        before
    );
    let all: Vec<&deployclaw::topology::ephemeral::EphemeralPg> = fx.clusters.iter().collect();
    assert_eq!(leftovers(&all).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_probe_hitting_statement_timeout_is_reported_not_hung() {
    // tenant 2's events table is large; the CHECK probe must scan all of it and cannot finish
    // within a 1 ms statement_timeout.
    let spec = FixtureSpec {
        tenants: 4,
        rows: 40,
        ..FixtureSpec::default()
    }
    .plant(2, Plant::LargeEvents { rows: 200_000 });
    let fx = start_fleet(1, &spec).await.expect("fixture fleet");
    let before = common::fingerprint_instances(&fx.fleet.instances).await;
    let dir = tempfile::tempdir().unwrap();
    let sql = dir.path().join("check.sql");
    std::fs::write(
        &sql,
        "SET lock_timeout = '2s';\n\
         ALTER TABLE events ADD CONSTRAINT events_kind_check CHECK (length(kind) > 0) NOT VALID;\n\
         ALTER TABLE events VALIDATE CONSTRAINT events_kind_check;\n",
    )
    .unwrap();
    let mut opts = options(&sql, RehearsalMode::Shadow);
    opts.sim.probe_timeout = Duration::from_millis(1);
    let report = run(&opts, &fx.fleet, &NoProgress).await;
    assert_eq!(report.shards.len(), 4);
    let large = report
        .shards
        .iter()
        .find(|s| s.shard == "pg-1/app/tenant_0002")
        .unwrap();
    assert_ne!(large.gate, Gate::Green, "{:#?}", large.findings);
    assert!(
        large.findings.iter().any(|f| f.rule == "check-violations"
            && f.severity >= Severity::Yellow
            && f.message.contains("57014")),
        "the timed-out probe must be reported with its SQLSTATE: {:#?}",
        large.findings
    );
    // A probe that could not run never leaves a shard GREEN, and a timeout is not unreachability.
    for s in &report.shards {
        let could_not_check = s
            .findings
            .iter()
            .any(|f| f.message.contains("could not check"));
        assert!(
            !(could_not_check && s.gate == Gate::Green),
            "{}: GREEN with a probe error",
            s.shard
        );
        assert!(
            !rules(s).contains(&"shard-unreachable") || s.gate != Gate::Red,
            "{}: {:?}",
            s.shard,
            rules(s)
        );
    }
    // A probe cancelled by its timeout changed nothing.
    assert_eq!(
        common::fingerprint_instances(&fx.fleet.instances).await,
        before
    );
    assert_eq!(leftovers(&[&fx.clusters[0]]).await, Vec::<String>::new());
}

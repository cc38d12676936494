//! `ProbeOn::Replica` edge cases on real PostgreSQL: a writer without a replica keeps its
//! probes and says so; a replica that cannot serve one of the shard's databases (its own
//! `pg_hba.conf` rejects it) falls back to the writer for that shard, with the reason, while the
//! other shard's probes run on the replica. The planted NULLs are found either way.

mod common;

use std::time::Duration;

use simulator::{NoProgress, ProbeOn, RehearsalMode, SimOptions, SimulationResult};
use sqlx::Connection;
use topology::ephemeral::EphemeralOptions;
use topology::{Fleet, Instance};

const SETUP: &str = "CREATE SCHEMA tenant_x; CREATE TABLE tenant_x.orders (id int PRIMARY KEY, code text);
INSERT INTO tenant_x.orders SELECT g, CASE WHEN g % 5 = 0 THEN NULL ELSE 'c' END FROM generate_series(1, 20) g;";

const MIGRATION: &str = "ALTER TABLE orders ALTER COLUMN code SET NOT NULL;";

fn options() -> SimOptions {
    SimOptions {
        rehearsal: RehearsalMode::Skip,
        calibrate: false,
        probe_on: ProbeOn::Replica,
        max_replica_lag: Duration::from_secs(5),
        ..SimOptions::default()
    }
}

async fn simulate(fleet: &Fleet) -> SimulationResult {
    let m = common::migration(MIGRATION);
    let cancel = simulator::CancelToken::new();
    simulator::run(&m, fleet, None, &options(), &NoProgress, &cancel)
        .await
        .expect("simulate")
}

/// Every shard found the 4 NULLs.
fn found_the_nulls(r: &SimulationResult) {
    for s in &r.shards {
        assert!(
            s.probes.iter().any(|p| p.would_fail && p.count == 4),
            "{}: {:?}",
            s.shard,
            s.probes
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallbacks_to_the_writer_are_said_per_shard() {
    let pg = common::start().await;
    for db in ["db_a", "db_b"] {
        common::create_db(&pg, db).await;
        common::exec(
            &pg,
            db,
            &SETUP.replace("tenant_x", &db.replace("db_", "tenant_")),
        )
        .await;
    }
    let mut fleet = common::fleet(&[&pg], &[(0, "db_a", "tenant_a"), (0, "db_b", "tenant_b")]);

    // No replica in the fleet: probes on the writer, said.
    let r = simulate(&fleet).await;
    found_the_nulls(&r);
    for s in &r.shards {
        let read = s.live.replica.as_ref().expect("replica read");
        assert_eq!(read.instance, "");
        assert_eq!(
            read.refused.as_deref(),
            Some("instance `pg-1` has no read replica in the fleet (`replica_of`)")
        );
    }
    assert!(r.steps.iter().any(|s| s.action == "probe on replica"
        && s.details.ends_with("0 shard(s) on 0 replica(s), 2 shard(s) on their writer (instance `pg-1` has no read replica in the fleet (`replica_of`))")), "{:?}", r.steps);

    // A replica whose own pg_hba.conf rejects db_b: db_a probed there, db_b on the writer.
    let standby = tokio::task::block_in_place(|| pg.start_replica(EphemeralOptions::default()))
        .expect("replica");
    let hba = standby.data_dir().join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).expect("hba");
    std::fs::write(&hba, format!("host db_b all 127.0.0.1/32 reject\n{old}")).expect("hba");
    let mut c = sqlx::PgConnection::connect_with(&standby.connect_options("postgres"))
        .await
        .expect("connect replica");
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&mut c)
        .await
        .expect("reload");
    c.close().await.ok();
    // The reload is asynchronous: wait until a new connection to db_b is refused.
    let mut refused = false;
    for _ in 0..100 {
        let opts = standby.connection_spec().with_database("db_b");
        let opts = opts.to_connect_options().expect("options");
        if sqlx::PgConnection::connect_with(&opts).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refused,
        "the replica's pg_hba.conf change did not take effect"
    );
    fleet.instances.push(Instance {
        name: "pg-1-ro".into(),
        connection: standby.connection_spec(),
        labels: Default::default(),
        replica_of: Some("pg-1".into()),
    });
    let r = simulate(&fleet).await;
    found_the_nulls(&r);
    let a = r.shards[0].live.replica.as_ref().expect("a");
    assert_eq!(
        (a.instance.as_str(), a.refused.as_deref()),
        ("pg-1-ro", None)
    );
    let b = r.shards[1].live.replica.as_ref().expect("b");
    assert_eq!(b.instance, "pg-1-ro");
    let reason = b.refused.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("`pg-1-ro` could not be read while probing: cannot connect:"),
        "{reason}"
    );
    assert!(r.shards.iter().all(|s| s.unreachable.is_none()));
}

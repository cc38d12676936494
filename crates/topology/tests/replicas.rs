//! Read replicas in the topology: `replica_of` in the topology file (a replica has no shards of
//! its own, errors with file/line/column), the fleet's one-line summary, and
//! `EphemeralPg::start_replica` (a real streaming hot standby made with `pg_basebackup -R`).

use sqlx::{Connection, PgConnection};
use topology::ephemeral::{EphemeralOptions, EphemeralPg};
use topology::{DiscoverySpec, Fleet, ShardSource, Topology, TopologyError};

const FILE: &str = r#"
[defaults]
database = "app"
schemas = "tenant_*"

[[instance]]
name = "eu-1"
host = "db-eu-1.internal"

[[instance]]
name = "eu-1-ro"
host = "db-eu-1-ro.internal"
replica_of = "eu-1"
"#;

#[test]
fn replica_of_is_parsed_and_a_replica_gets_no_shard_source() {
    let mut t = Topology::from_toml_str(FILE, "fleet.toml").expect("parse");
    assert_eq!(t.instances[0].instance.replica_of, None);
    assert_eq!(
        t.instances[0].shards,
        ShardSource::Discover(DiscoverySpec::schemas("tenant_*"))
    );
    let ro = &t.instances[1];
    assert_eq!(ro.instance.replica_of.as_deref(), Some("eu-1"));
    // `[defaults] schemas` does not apply to a replica, nor does a command-line pattern.
    assert_eq!(ro.shards, ShardSource::Explicit(Vec::new()));
    t.override_discovery(&DiscoverySpec::schemas("t_*"));
    assert_eq!(t.instances[1].shards, ShardSource::Explicit(Vec::new()));
    assert_eq!(
        t.instances[0].shards,
        ShardSource::Discover(DiscoverySpec::schemas("t_*"))
    );
}

fn invalid(text: &str) -> (usize, usize, String) {
    match Topology::from_toml_str(text, "bad.toml") {
        Err(TopologyError::TopologyFileInvalid {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn a_bad_replica_of_is_an_error_at_its_instance() {
    let unknown = "[[instance]]\nname = \"w\"\nhost = \"h\"\n\n[[instance]]\nname = \"r\"\nhost = \"h2\"\nreplica_of = \"nope\"\n";
    let (line, column, message) = invalid(unknown);
    assert_eq!((line, column), (5, 1), "{message}");
    assert_eq!(
        message,
        "instance `r`: replica_of = \"nope\": no instance named `nope`"
    );

    let chain =
        format!("{unknown}\n[[instance]]\nname = \"rr\"\nhost = \"h3\"\nreplica_of = \"r\"\n")
            .replace("\"nope\"", "\"w\"");
    let (line, _, message) = invalid(&chain);
    assert_eq!(line, 10, "{message}");
    assert!(message.contains("`r` is itself a replica"), "{message}");

    let itself = "[[instance]]\nname = \"w\"\nhost = \"h\"\nreplica_of = \"w\"\n";
    assert!(invalid(itself).2.contains("cannot replicate itself"));

    let with_shards = "[[instance]]\nname = \"w\"\nhost = \"h\"\n\n[[instance]]\nname = \"r\"\nhost = \"h2\"\nreplica_of = \"w\"\nshards = [\"tenant_a\"]\n";
    let (line, _, message) = invalid(with_shards);
    assert_eq!(line, 5);
    assert!(message.contains("has no shards of its own"), "{message}");

    let in_defaults = "[defaults]\nreplica_of = \"w\"\n[[instance]]\nname = \"w\"\nhost = \"h\"\n";
    assert!(invalid(in_defaults).2.contains("replica_of"));
}

#[test]
fn the_fleet_summary_counts_reader_replicas_like_the_seed_log() {
    let t = Topology::from_toml_str(FILE, "fleet.toml").expect("parse");
    let mut fleet = Fleet {
        instances: t.instances.iter().map(|i| i.instance.clone()).collect(),
        shards: Vec::new(),
    };
    for k in 0..100 {
        fleet.shards.push(topology::Shard::new(
            "eu-1",
            topology::ShardLocation::Schema {
                database: "app".into(),
                schema: format!("tenant_{k}"),
            },
        ));
    }
    assert_eq!(
        fleet.summary_line(),
        "Found 100 tenant shards across 1 reader replica"
    );
    let ro: Vec<&str> = fleet.replicas_of("eu-1").map(|i| i.name.as_str()).collect();
    assert_eq!(ro, ["eu-1-ro"]);
    fleet.instances.pop();
    assert_eq!(
        fleet.summary_line(),
        "Found 100 tenant shards on 1 instance(s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_replica_streams_the_primary_as_a_hot_standby() {
    let primary = EphemeralPg::start_async(EphemeralOptions::default())
        .await
        .expect("primary");
    let replica =
        tokio::task::block_in_place(|| primary.start_replica(EphemeralOptions::default()));
    let replica = replica.expect("replica");
    let mut p = PgConnection::connect_with(&primary.connect_options("postgres"))
        .await
        .expect("connect primary");
    sqlx::raw_sql("CREATE TABLE streamed (x int); INSERT INTO streamed VALUES (42)")
        .execute(&mut p)
        .await
        .expect("write on primary");
    let mut r = PgConnection::connect_with(&replica.connect_options("postgres"))
        .await
        .expect("connect replica");
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut r)
        .await
        .expect("recovery");
    assert!(in_recovery, "the replica is a standby");
    // Replication is asynchronous: wait (bounded) for the row, no timing asserted.
    let mut seen = None;
    for _ in 0..100 {
        seen = sqlx::query_scalar::<_, i32>("SELECT x FROM streamed")
            .fetch_optional(&mut r)
            .await
            .ok()
            .flatten();
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, Some(42), "the primary's write reached the replica");
    let refused = sqlx::query("CREATE TABLE nope (x int)")
        .execute(&mut r)
        .await;
    assert!(refused.is_err(), "a hot standby is read-only");
}

//! Read replicas in RDS discovery against a real moto server (feature `aws`): an RDS read
//! replica (`CreateDBInstanceReadReplica`) is discovered as the replica of its source, an Aurora
//! reader member as the replica of its cluster; neither carries shards.

#![cfg(feature = "aws")]

mod aws_support;

use aws_support::{Moto, create_aurora, create_instance, rds_client};
use topology::aws::{RdsSource, discover_rds};

#[tokio::test]
async fn read_replicas_are_discovered_as_replicas_of_their_writer() {
    let moto = Moto::start();
    let c = rds_client(&moto, "us-east-1").await;
    create_instance(&c, "pg-a", "postgres", Some("app"), &[("env", "prod")]).await;
    c.create_db_instance_read_replica()
        .db_instance_identifier("pg-a-ro")
        .source_db_instance_identifier("pg-a")
        .send()
        .await
        .expect("read replica");
    create_aurora(&c, "aurora-main", Some("tenants"), &[]).await;
    c.create_db_instance()
        .db_instance_identifier("aurora-main-2")
        .db_cluster_identifier("aurora-main")
        .engine("aurora-postgresql")
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .expect("aurora reader");

    let source = RdsSource {
        profile: Some("moto".into()),
        endpoint_url: Some(moto.url()),
        ..RdsSource::default()
    };
    let all = discover_rds(&source).await.expect("discover");
    let found: Vec<(&str, Option<&str>)> = all
        .iter()
        .map(|i| (i.name.as_str(), i.replica_of.as_deref()))
        .collect();
    // The Aurora writer member stays behind its cluster's endpoint; the reader member and the
    // RDS read replica are instances of their own, replicas of their writer.
    assert_eq!(
        found,
        [
            ("aurora-main", None),
            ("aurora-main-2", Some("aurora-main")),
            ("pg-a", None),
            ("pg-a-ro", Some("pg-a")),
        ],
        "{all:#?}"
    );
    let ro = &all[3];
    assert_eq!(
        ro.connection.host,
        "pg-a-ro.aaaaaaaaaa.us-east-1.rds.amazonaws.com"
    );
    let reader = &all[1];
    assert_eq!(reader.labels["rds:cluster"], "aurora-main");
    assert!(reader.connection.host.starts_with("aurora-main-2."));

    let fleet = topology::Fleet {
        instances: all.clone(),
        shards: Vec::new(),
    };
    let of_a: Vec<&str> = fleet.replicas_of("pg-a").map(|i| i.name.as_str()).collect();
    assert_eq!(of_a, ["pg-a-ro"]);
    assert_eq!(fleet.replica_count(), 2);
}

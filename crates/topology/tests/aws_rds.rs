//! RDS fleet discovery against a real moto server (feature `aws`).
//!
//! Needs `moto_server` (see `aws_support`); fails with the install command when it is missing.

#![cfg(feature = "aws")]

mod aws_support;

use aws_support::{Moto, create_aurora, create_instance, init_aws_env, rds_client};
use topology::aws::{
    AwsSession, EndpointTarget, LABEL_CLUSTER, LABEL_ENDPOINT, LABEL_KIND, RdsSource, TagFilter,
    discover_rds, discover_rds_with, iam_auth_token, resolve_iam_passwords,
    resolve_iam_passwords_with,
};
use topology::{DiscoverySpec, Fleet, Instance, TopologyError};

/// A source on `moto` with the named profile `moto` (us-east-1).
fn source(moto: &Moto) -> RdsSource {
    RdsSource {
        profile: Some("moto".into()),
        endpoint_url: Some(moto.url()),
        ..RdsSource::default()
    }
}

fn names(instances: &[Instance]) -> Vec<&str> {
    instances.iter().map(|i| i.name.as_str()).collect()
}

/// Two standalone PostgreSQL instances, one Aurora PostgreSQL cluster with a member, one MySQL
/// instance and one Aurora MySQL cluster (never returned).
async fn seed_fleet(moto: &Moto) {
    let c = rds_client(moto, "us-east-1").await;
    create_instance(
        &c,
        "pg-a",
        "postgres",
        Some("app"),
        &[("env", "prod"), ("team", "core")],
    )
    .await;
    create_instance(
        &c,
        "pg-b",
        "postgres",
        None,
        &[("env", "staging"), ("team", "core")],
    )
    .await;
    create_aurora(
        &c,
        "aurora-main",
        Some("tenants"),
        &[("env", "prod"), ("team", "payments")],
    )
    .await;
    create_instance(&c, "my-mysql", "mysql", None, &[("env", "prod")]).await;
    c.create_db_cluster()
        .db_cluster_identifier("my-aurora-mysql")
        .engine("aurora-mysql")
        .master_username("admin")
        .master_user_password("ClusterPassw0rdNeverPrinted")
        .send()
        .await
        .expect("aurora-mysql cluster");
}

#[tokio::test]
async fn discovers_clusters_and_standalone_instances() {
    let moto = Moto::start();
    seed_fleet(&moto).await;

    let all = discover_rds(&source(&moto)).await.expect("discover all");
    assert_eq!(names(&all), ["aurora-main", "pg-a", "pg-b"], "{all:#?}");

    let aurora = &all[0];
    assert_eq!(aurora.labels["rds:kind"], "cluster");
    assert_eq!(aurora.labels["rds:engine"], "aurora-postgresql");
    assert_eq!(aurora.labels["rds:engine_version"], "15.4");
    assert_eq!(aurora.labels["rds:identifier"], "aurora-main");
    assert_eq!(aurora.labels["rds:region"], "us-east-1");
    assert_eq!(
        aurora.labels["rds:arn"],
        "arn:aws:rds:us-east-1:123456789012:cluster:aurora-main"
    );
    assert_eq!(aurora.labels["env"], "prod");
    assert_eq!(aurora.labels["team"], "payments");
    // The writer endpoint, not the reader (`cluster-ro-`) or the member instance.
    assert!(
        aurora.connection.host.starts_with("aurora-main.cluster-")
            && aurora
                .connection
                .host
                .ends_with(".us-east-1.rds.amazonaws.com"),
        "{}",
        aurora.connection.host
    );
    assert_eq!(aurora.connection.port, 5432);
    assert_eq!(aurora.connection.user, "cluster_admin");
    assert_eq!(aurora.connection.database, "tenants");
    assert_eq!(aurora.connection.sslmode.as_deref(), Some("require"));
    assert!(!aurora.connection.iam_auth);
    assert!(aurora.connection.password.is_none());

    let pg_a = &all[1];
    assert_eq!(pg_a.labels["rds:kind"], "instance");
    assert_eq!(pg_a.labels["rds:engine"], "postgres");
    assert_eq!(
        pg_a.labels["rds:arn"],
        "arn:aws:rds:us-east-1:123456789012:db:pg-a"
    );
    assert_eq!(pg_a.labels["rds:status"], "available");
    assert_eq!(
        pg_a.connection.host,
        "pg-a.aaaaaaaaaa.us-east-1.rds.amazonaws.com"
    );
    assert_eq!(
        pg_a.labels["rds:endpoint"],
        "pg-a.aaaaaaaaaa.us-east-1.rds.amazonaws.com:5432"
    );
    assert_eq!(pg_a.connection.user, "master_user");
    assert_eq!(pg_a.connection.database, "app");
    // No initial database: `postgres`.
    assert_eq!(all[2].connection.database, "postgres");

    // What `topology discover` shows for an RDS fleet (cluster endpoints have a random part).
    insta::assert_yaml_snapshot!("rds_fleet", all, {
        "[0].connection.host" => "[aurora writer endpoint]",
        "[0].labels[\"rds:endpoint\"]" => "[aurora writer endpoint]:5432",
    });
}

#[tokio::test]
async fn selects_by_cluster_instance_and_either_identifier() {
    let moto = Moto::start();
    seed_fleet(&moto).await;
    let base = source(&moto);
    let session = AwsSession::load(&base).await.expect("session");

    let by_cluster = RdsSource {
        cluster_ids: vec!["aurora-main".into()],
        ..base.clone()
    };
    assert_eq!(
        names(&discover_rds_with(&session, &by_cluster).await.unwrap()),
        ["aurora-main"]
    );

    let by_instance = RdsSource {
        instance_ids: vec!["pg-b".into()],
        ..base.clone()
    };
    assert_eq!(
        names(&discover_rds_with(&session, &by_instance).await.unwrap()),
        ["pg-b"]
    );

    // `--target-db <id>`: either kind, by identifier or ARN.
    for (target, id, kind) in [
        ("aurora-main", "aurora-main", "cluster"),
        ("pg-a", "pg-a", "instance"),
        (
            "arn:aws:rds:us-east-1:123456789012:cluster:aurora-main",
            "aurora-main",
            "cluster",
        ),
        (
            "arn:aws:rds:us-east-1:123456789012:db:pg-b",
            "pg-b",
            "instance",
        ),
    ] {
        assert!(topology::aws::is_rds_target(target));
        let found = discover_rds_with(
            &session,
            &RdsSource {
                profile: base.profile.clone(),
                endpoint_url: base.endpoint_url.clone(),
                ..RdsSource::target(target)
            },
        )
        .await
        .unwrap();
        assert_eq!(names(&found), [id]);
        assert_eq!(found[0].labels[LABEL_KIND], kind);
        assert_eq!(found[0].labels["rds:arn"].rsplit(':').next(), Some(id));
    }
    let two = RdsSource {
        identifiers: vec!["pg-b".into(), "aurora-main".into()],
        ..base.clone()
    };
    assert_eq!(
        names(&discover_rds_with(&session, &two).await.unwrap()),
        ["aurora-main", "pg-b"]
    );

    // A named Aurora member is returned as its own endpoint, labelled with its cluster...
    let member = RdsSource {
        identifiers: vec!["aurora-main-1".into()],
        ..base.clone()
    };
    let found = discover_rds_with(&session, &member).await.unwrap();
    assert_eq!(names(&found), ["aurora-main-1"]);
    assert_eq!(found[0].labels[LABEL_CLUSTER], "aurora-main");
    // ...but folded into its cluster when the cluster is selected too.
    let both = RdsSource {
        identifiers: vec!["aurora-main-1".into(), "aurora-main".into()],
        ..base.clone()
    };
    assert_eq!(
        names(&discover_rds_with(&session, &both).await.unwrap()),
        ["aurora-main"]
    );

    // Unknown names, and non-PostgreSQL engines, are errors that say what to check.
    for missing in ["no-such-db", "my-mysql", "my-aurora-mysql"] {
        let err = discover_rds_with(
            &session,
            &RdsSource {
                identifiers: vec!["pg-a".into(), missing.into()],
                ..base.clone()
            },
        )
        .await
        .expect_err("unknown identifier");
        assert!(
            matches!(&err, TopologyError::AwsNotFound { identifiers, .. } if identifiers == &[missing.to_string()]),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(missing)
                && msg.contains("us-east-1")
                && msg.contains("--aws-profile")
                && msg.contains("`moto`"),
            "{msg}"
        );
    }
    let err = discover_rds_with(
        &session,
        &RdsSource {
            cluster_ids: vec!["pg-a".into()],
            ..base.clone()
        },
    )
    .await
    .expect_err("an instance id is not a cluster id");
    assert!(matches!(err, TopologyError::AwsNotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn filters_by_tags_and_engine() {
    let moto = Moto::start();
    seed_fleet(&moto).await;
    let base = source(&moto);
    let session = AwsSession::load(&base).await.expect("session");
    let with_tags = |tags: &[&str]| RdsSource {
        tags: tags
            .iter()
            .map(|t| t.parse::<TagFilter>().unwrap())
            .collect(),
        ..base.clone()
    };

    let prod = discover_rds_with(&session, &with_tags(&["env=prod"]))
        .await
        .unwrap();
    assert_eq!(names(&prod), ["aurora-main", "pg-a"]); // my-mysql is prod too, but not PostgreSQL
    let either = discover_rds_with(&session, &with_tags(&["env=prod", "env=staging"]))
        .await
        .unwrap();
    assert_eq!(names(&either), ["aurora-main", "pg-a", "pg-b"]);
    let core_prod = discover_rds_with(&session, &with_tags(&["env=prod", "team=core"]))
        .await
        .unwrap();
    assert_eq!(names(&core_prod), ["pg-a"]);
    let has_owner = discover_rds_with(&session, &with_tags(&["owner"]))
        .await
        .unwrap();
    assert!(has_owner.is_empty());
    // A tag filter narrows a named selection without turning it into "not found".
    let named = RdsSource {
        identifiers: vec!["pg-b".into()],
        ..with_tags(&["env=prod"])
    };
    assert!(
        discover_rds_with(&session, &named)
            .await
            .unwrap()
            .is_empty()
    );

    let aurora_only = RdsSource {
        engines: vec!["aurora-postgresql".into()],
        ..base.clone()
    };
    assert_eq!(
        names(&discover_rds_with(&session, &aurora_only).await.unwrap()),
        ["aurora-main"]
    );
    let rds_pg_only = RdsSource {
        engines: vec!["postgres".into()],
        ..base.clone()
    };
    assert_eq!(
        names(&discover_rds_with(&session, &rds_pg_only).await.unwrap()),
        ["pg-a", "pg-b"]
    );
    let err = discover_rds_with(
        &session,
        &RdsSource {
            engines: vec!["mysql".into()],
            ..base.clone()
        },
    )
    .await
    .expect_err("mysql is not supported");
    assert!(
        err.to_string().contains("unsupported engine `mysql`"),
        "{err}"
    );
}

#[tokio::test]
async fn follows_pagination_past_one_page() {
    let moto = Moto::start();
    let c = rds_client(&moto, "us-east-1").await;
    for i in 0..25 {
        create_instance(
            &c,
            &format!("tenant-db-{i:02}"),
            "postgres",
            None,
            &[("fleet", "paged")],
        )
        .await;
    }
    // moto honours MaxRecords: one page holds 20 and says there is more.
    let first = c
        .describe_db_instances()
        .max_records(20)
        .send()
        .await
        .unwrap();
    assert_eq!(first.db_instances().len(), 20);
    assert!(first.marker().is_some());

    let found = discover_rds(&RdsSource {
        page_size: Some(20),
        ..source(&moto)
    })
    .await
    .unwrap();
    let expected: Vec<String> = (0..25).map(|i| format!("tenant-db-{i:02}")).collect();
    assert_eq!(
        names(&found),
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );

    let err = discover_rds(&RdsSource {
        page_size: Some(5),
        ..source(&moto)
    })
    .await
    .expect_err("page size below the API minimum");
    assert!(err.to_string().contains("20..=100"), "{err}");

    // The harness wipes moto's state on request.
    moto.reset();
    assert!(discover_rds(&source(&moto)).await.unwrap().is_empty());
}

#[tokio::test]
async fn named_profile_from_config_files_sets_region_and_keys() {
    let moto = Moto::start();
    let eu = rds_client(&moto, aws_support::PROD_REGION).await;
    create_instance(&eu, "prod-eu", "postgres", None, &[]).await;
    let us = rds_client(&moto, "us-east-1").await;
    create_instance(&us, "dev-us", "postgres", None, &[]).await;

    // `--aws-profile prod`: region eu-west-1 and the prod keys come from the profile files.
    let prod = RdsSource {
        profile: Some("prod".into()),
        endpoint_url: Some(moto.url()),
        iam_auth: true,
        user: Some("iam_deployer".into()),
        ..RdsSource::default()
    };
    let session = AwsSession::load(&prod).await.expect("prod session");
    assert_eq!(session.region(), aws_support::PROD_REGION);
    assert_eq!(session.profile(), Some("prod"));
    let mut found = discover_rds_with(&session, &prod).await.unwrap();
    assert_eq!(names(&found), ["prod-eu"]);
    assert_eq!(
        found[0].labels["rds:arn"],
        "arn:aws:rds:eu-west-1:123456789012:db:prod-eu"
    );
    assert_eq!(found[0].connection.user, "iam_deployer");
    assert!(found[0].connection.iam_auth);
    // The IAM token is signed with the profile's key id for the profile's region.
    assert_eq!(
        resolve_iam_passwords_with(&session, &mut found)
            .await
            .unwrap(),
        1
    );
    let token = found[0]
        .connection
        .password
        .as_ref()
        .expect("token")
        .expose()
        .to_string();
    assert!(
        token.contains(&format!("X-Amz-Credential={}%2F", aws_support::PROD_KEY_ID))
            && token.contains("%2Feu-west-1%2Frds-db%2Faws4_request"),
        "{token}"
    );

    // An explicit region overrides the profile's.
    let us_override = RdsSource {
        region: Some("us-east-1".into()),
        ..prod.clone()
    };
    assert_eq!(
        names(&discover_rds(&us_override).await.unwrap()),
        ["dev-us"]
    );
    // The default chain with AWS_PROFILE unset and no [default] profile has no region.
    let err = discover_rds(&RdsSource {
        endpoint_url: Some(moto.url()),
        ..RdsSource::default()
    })
    .await
    .expect_err("no default profile");
    assert!(
        matches!(err, TopologyError::AwsNoRegion { profile: None }),
        "{err:?}"
    );
}

#[tokio::test]
async fn missing_region_credentials_or_endpoint_fail_fast_with_advice() {
    init_aws_env();
    let moto = Moto::start();
    let on_moto = |profile: &str| RdsSource {
        profile: Some(profile.into()),
        endpoint_url: Some(moto.url()),
        ..RdsSource::default()
    };
    let mut messages: Vec<String> = Vec::new();

    let err = AwsSession::load(&on_moto("noregion"))
        .await
        .expect_err("no region");
    assert!(
        matches!(&err, TopologyError::AwsNoRegion { profile: Some(p) } if p == "noregion"),
        "{err:?}"
    );
    messages.push(err.to_string());

    // Region but no keys (and the metadata service disabled): a clear error, at once.
    let err = AwsSession::load(&on_moto("nocreds"))
        .await
        .expect_err("no credentials");
    assert!(
        matches!(&err, TopologyError::AwsNoCredentials { profile: Some(p), .. } if p == "nocreds"),
        "{err:?}"
    );
    messages.push(err.to_string());

    // A profile that does not exist: said so, with or without a region.
    for region in [Some("us-east-1"), None] {
        let err = AwsSession::load(&RdsSource {
            region: region.map(str::to_string),
            ..on_moto("does-not-exist")
        })
        .await
        .expect_err("unknown profile");
        assert!(
            matches!(&err, TopologyError::AwsNoCredentials { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("profile `does-not-exist` is not defined"),
            "{err}"
        );
        messages.push(err.to_string());
    }

    // Unknown identifiers.
    let err = discover_rds(&RdsSource {
        identifiers: vec!["prod-db".into(), "prod-db-2".into()],
        ..on_moto("moto")
    })
    .await
    .expect_err("not found");
    assert!(!err.is_unreachable());
    messages.push(err.to_string());

    // Nothing listening on the endpoint: an API error classed as "fleet unreachable".
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = discover_rds(&RdsSource {
        endpoint_url: Some(format!("http://127.0.0.1:{closed}")),
        ..on_moto("moto")
    })
    .await
    .expect_err("nothing listening");
    assert!(
        matches!(&err, TopologyError::AwsApi { operation, .. } if operation == "DescribeDBClusters"),
        "{err:?}"
    );
    assert!(err.is_unreachable());
    messages.push(err.to_string());

    // Bad command-line forms.
    messages.push("=prod".parse::<TagFilter>().unwrap_err().to_string());
    let mut s = RdsSource::default();
    messages.push(
        s.add_endpoint_mapping("pg-a=localhost")
            .unwrap_err()
            .to_string(),
    );
    messages.push(s.add_endpoint_mapping("pg-a").unwrap_err().to_string());
    messages.push(
        discover_rds(&RdsSource {
            engines: vec!["aurora-mysql".into()],
            ..on_moto("moto")
        })
        .await
        .unwrap_err()
        .to_string(),
    );

    insta::assert_yaml_snapshot!("aws_error_messages", messages);
}

#[tokio::test]
async fn iam_token_is_a_local_presigned_connect_url() {
    let moto = Moto::start();
    let session = AwsSession::load(&source(&moto)).await.expect("session");
    let host = "pg-a.aaaaaaaaaa.us-east-1.rds.amazonaws.com";
    let token = iam_auth_token(&session, host, 5432, "iam_user")
        .await
        .expect("token");
    let t = token.expose();
    assert!(
        t.starts_with(&format!("{host}:5432/?Action=connect&DBUser=iam_user&")),
        "{t}"
    );
    for part in [
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        &format!("X-Amz-Credential={}%2F", aws_support::MOTO_KEY_ID),
        "%2Fus-east-1%2Frds-db%2Faws4_request",
        "X-Amz-Expires=900",
        "X-Amz-SignedHeaders=host",
        "X-Amz-Signature=",
    ] {
        assert!(t.contains(part), "{part} missing in token");
    }
    let signature = t.rsplit("X-Amz-Signature=").next().unwrap();
    assert_eq!(signature.len(), 64);
    assert!(signature.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(!t.contains(aws_support::MOTO_SECRET));
    // Printing the token shows nothing.
    assert_eq!(format!("{token}"), "***");
    assert_eq!(format!("{token:?}"), "Secret(***)");
    // Different users get different tokens.
    let other = iam_auth_token(&session, host, 5432, "someone_else")
        .await
        .unwrap();
    assert_ne!(other.expose(), t);
    let err = iam_auth_token(&session, host, 5432, "")
        .await
        .expect_err("empty user");
    assert!(matches!(err, TopologyError::AwsIamToken { .. }));
}

#[tokio::test]
async fn endpoint_mapping_reaches_a_local_postgres_and_iam_token_keeps_the_rds_host() {
    let moto = Moto::start();
    let pg =
        topology::ephemeral::EphemeralPg::start(topology::ephemeral::EphemeralOptions::default())
            .expect("ephemeral pg");
    let c = rds_client(&moto, "us-east-1").await;
    create_instance(
        &c,
        "tenants-db",
        "postgres",
        Some("postgres"),
        &[("env", "prod")],
    )
    .await;
    create_aurora(&c, "tenants-aurora", None, &[]).await;

    // Seed two tenant schemas on the local server the endpoint is mapped to.
    let admin = pg.pool("postgres", 1).await.expect("pool");
    sqlx::raw_sql(
        "create schema tenant_001; create table tenant_001.users (id bigint primary key, email text not null); \
         create schema tenant_002; create table tenant_002.users (id bigint primary key, email text not null);",
    )
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query("create role iam_deployer login")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;

    let mut src = RdsSource {
        iam_auth: true,
        user: Some("iam_deployer".into()),
        ..source(&moto)
    };
    // By address (as a user maps to an SSH tunnel) and by identifier.
    src.add_endpoint_mapping(&format!(
        "tenants-db.aaaaaaaaaa.us-east-1.rds.amazonaws.com=127.0.0.1:{}",
        pg.port()
    ))
    .unwrap();
    src.endpoint_map.insert(
        "tenants-aurora".into(),
        EndpointTarget::new("localhost", pg.port()),
    );
    let mut fleet = discover_rds(&src).await.expect("discover");
    assert_eq!(names(&fleet), ["tenants-aurora", "tenants-db"]);
    for inst in &fleet {
        assert_eq!(inst.connection.port, pg.port());
        assert!(["127.0.0.1", "localhost"].contains(&inst.connection.host.as_str()));
        assert_eq!(
            inst.connection.sslmode.as_deref(),
            Some("prefer"),
            "loopback: no TLS required"
        );
        assert!(inst.connection.iam_auth);
    }
    assert_eq!(
        fleet[1].labels[LABEL_ENDPOINT],
        "tenants-db.aaaaaaaaaa.us-east-1.rds.amazonaws.com:5432"
    );

    // At connect time: tokens for the RDS host (not 127.0.0.1), then a live connection through
    // the mapped endpoint.
    assert_eq!(resolve_iam_passwords(&mut fleet, &src).await.unwrap(), 2);
    let token = fleet[1]
        .connection
        .password
        .as_ref()
        .expect("token")
        .expose();
    assert!(token.starts_with("tenants-db.aaaaaaaaaa.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=iam_deployer&"));
    let aurora_token = fleet[0]
        .connection
        .password
        .as_ref()
        .expect("token")
        .expose();
    assert!(
        aurora_token.starts_with("tenants-aurora.cluster-"),
        "signed for the cluster writer endpoint"
    );

    let pool = fleet[1]
        .connection
        .connect_pool("tenants-db", 1)
        .await
        .expect("connect through mapping");
    let (user,): (String,) = sqlx::query_as("select current_user::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(user, "iam_deployer");
    let schemas: Vec<(String,)> = sqlx::query_as(
        "select nspname::text from pg_namespace where nspname like 'tenant\\_%' order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        schemas,
        [("tenant_001".to_string(),), ("tenant_002".to_string(),)]
    );
    // Catalog introspection of a shard through the mapped endpoint.
    let catalog = topology::catalog::introspect_schema(&pool, "tenant_002")
        .await
        .expect("introspect");
    let users = catalog.table("users").expect("users table");
    assert_eq!(users.columns.keys().collect::<Vec<_>>(), ["email", "id"]);
    assert!(users.columns["email"].not_null);
    assert!(users.primary_key().is_some());
    pool.close().await;

    // The whole path in one call: RDS API -> mapped endpoints -> IAM tokens -> live shard
    // discovery on every instance.
    let fleet = Fleet::from_rds(&src, &DiscoverySpec::schemas("tenant_*"))
        .await
        .expect("rds fleet");
    assert_eq!(names(&fleet.instances), ["tenants-aurora", "tenants-db"]);
    assert!(
        fleet
            .instances
            .iter()
            .all(|i| i.connection.password.is_some())
    );
    let shard_ids: Vec<&str> = fleet.shards.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        shard_ids,
        [
            "tenants-aurora/postgres/tenant_001",
            "tenants-aurora/postgres/tenant_002",
            "tenants-db/postgres/tenant_001",
            "tenants-db/postgres/tenant_002",
        ]
    );
}

#[tokio::test]
async fn secrets_never_appear_in_debug_display_or_errors() {
    let moto = Moto::start();
    seed_fleet(&moto).await;
    let mut src = RdsSource {
        iam_auth: true,
        ..source(&moto)
    };
    src.add_endpoint_mapping("pg-a=127.0.0.1:1").unwrap();
    let session = AwsSession::load(&src).await.unwrap();
    let mut fleet = discover_rds_with(&session, &src).await.unwrap();
    resolve_iam_passwords_with(&session, &mut fleet)
        .await
        .unwrap();
    let tokens: Vec<String> = fleet
        .iter()
        .map(|i| {
            i.connection
                .password
                .as_ref()
                .expect("token")
                .expose()
                .to_string()
        })
        .collect();
    assert_eq!(tokens.len(), 3);

    let mut printed = vec![
        format!("{session:?}"),
        format!("{src:?}"),
        format!("{fleet:?}"),
        format!("{fleet:#?}"),
    ];
    printed.push(serde_json::to_string(&fleet).unwrap());
    for inst in &fleet {
        printed.push(format!("{:?}", inst.connection));
        printed.push(format!("{}", inst.connection.password.as_ref().unwrap()));
        printed.push(inst.connection.redacted_url());
    }
    // Every error this module produces, with the keys configured.
    let mut errors: Vec<TopologyError> = Vec::new();
    for profile in ["noregion", "nocreds", "does-not-exist"] {
        let s = RdsSource {
            profile: Some(profile.into()),
            endpoint_url: Some(moto.url()),
            ..RdsSource::default()
        };
        errors.push(AwsSession::load(&s).await.expect_err(profile));
    }
    errors.push(
        discover_rds_with(
            &session,
            &RdsSource {
                identifiers: vec!["missing".into()],
                ..src.clone()
            },
        )
        .await
        .unwrap_err(),
    );
    errors.push(iam_auth_token(&session, "h", 5432, "").await.unwrap_err());
    errors.push(
        discover_rds(&RdsSource {
            endpoint_url: Some("http://127.0.0.1:9".into()),
            ..src.clone()
        })
        .await
        .unwrap_err(),
    );
    for e in &errors {
        printed.push(e.to_string());
        printed.push(format!("{e:?}"));
    }

    let mut secrets: Vec<&str> = aws_support::ALL_SECRETS.to_vec();
    secrets.extend(["MasterPassw0rdNeverPrinted", "ClusterPassw0rdNeverPrinted"]);
    secrets.extend(tokens.iter().map(String::as_str));
    // The signature part alone must not leak either.
    let sigs: Vec<&str> = tokens
        .iter()
        .filter_map(|t| t.rsplit("X-Amz-Signature=").next())
        .collect();
    secrets.extend(sigs);
    for text in &printed {
        for secret in &secrets {
            assert!(!text.contains(secret), "a secret leaked into: {text}");
        }
    }
}

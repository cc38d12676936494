//! The recommended least-privilege role for the gate (SECURITY.md): `pg_read_all_data` +
//! `pg_read_all_stats`, no superuser, no ownership. With it the whole gate (discovery, catalog,
//! probes, the shadow clone by pg_dump, the rehearsal and the rollback proof on the shadow) gives
//! exactly the verdicts a superuser run gives, and no finding is a permission error.

mod common;

use std::collections::BTreeMap;

use deployclaw::fleet_source::{FleetRequest, FleetTarget, resolve_fleet};
use deployclaw::pipeline::validate;
use deployclaw::simulator::{CancelToken, NoProgress, RehearsalMode};
use deployclaw::topology::DiscoverySpec;
use deployclaw::topology::fixture::{FixtureSpec, Plant, start_fleet};
use sqlx::{Connection, PgConnection};

const PASSWORD: &str = "least-privilege-pw-7f3a";

fn request(url: &str) -> FleetRequest {
    FleetRequest {
        target: FleetTarget::classify(url).expect("a URL"),
        discovery: Some(DiscoverySpec::schemas("tenant_*")),
        max_shards: None,
    }
}

/// shard → (gate, sorted rule names of its findings).
type Verdicts = BTreeMap<String, (String, Vec<String>)>;

async fn run(url: &str, source: &str) -> (Verdicts, deployclaw::report::ValidationReport) {
    run_in(url, source, RehearsalMode::Shadow).await
}

async fn run_in(
    url: &str,
    source: &str,
    mode: RehearsalMode,
) -> (Verdicts, deployclaw::report::ValidationReport) {
    let (fleet, _) = resolve_fleet(&request(url)).await.expect("fleet");
    let mut opts = common::options(common::MIGRATION, mode);
    opts.validate_rollback = true;
    opts.fleet_source = source.into();
    let report = validate(&opts, &fleet, &NoProgress, &CancelToken::new())
        .await
        .expect("report");
    let v = report
        .shards
        .iter()
        .map(|s| {
            let mut rules: Vec<String> = s.findings.iter().map(|f| f.rule.clone()).collect();
            rules.sort();
            (s.shard.clone(), (format!("{:?}", s.gate), rules))
        })
        .collect();
    (v, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_least_privilege_role_gets_the_superusers_verdicts() {
    let spec = FixtureSpec {
        tenants: 4,
        rows: 40,
        ..FixtureSpec::default()
    }
    .plant(2, Plant::OrphanedCoupons { rows: 2 })
    .plant(3, Plant::NullShippingAddresses { rows: 1 });
    let fx = start_fleet(1, &spec).await.expect("fixture fleet");
    let pg = &fx.clusters[0];
    let mut c = PgConnection::connect_with(&pg.connect_options("postgres"))
        .await
        .expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE gate_min LOGIN PASSWORD '{PASSWORD}' NOSUPERUSER NOCREATEDB NOCREATEROLE;
         GRANT pg_read_all_data, pg_read_all_stats TO gate_min;"
    )))
    .execute(&mut c)
    .await
    .expect("create the role");
    c.close().await.expect("close");
    common::require_password_for(pg, "gate_min").await;

    let su_url = format!("postgres://postgres@127.0.0.1:{}/app", pg.port());
    let min_url = format!("postgres://gate_min:{PASSWORD}@127.0.0.1:{}/app", pg.port());
    let (as_su, _) = run(&su_url, "superuser").await;
    let (as_min, report) = run(&min_url, "gate_min").await;
    assert_eq!(
        as_min, as_su,
        "the least-privilege role must see what a superuser sees"
    );
    assert!(
        report.rollback.tested,
        "the rollback proof runs with the least-privilege role: {:?}",
        report.rollback
    );
    let planted = &as_min
        .iter()
        .find(|(s, _)| s.ends_with("tenant_0002"))
        .expect("tenant 2")
        .1;
    assert!(planted.1.iter().any(|r| r == "fk-orphans"), "{planted:?}");
    for s in &report.shards {
        for f in &s.findings {
            let text = format!("{} {}", f.message, f.help.clone().unwrap_or_default());
            assert!(
                !text.contains("permission denied") && !text.contains("must be owner"),
                "{}: {}: {text}",
                s.shard,
                f.rule
            );
        }
    }
}

/// In place, the migration runs with the gate's own role. A read-only role cannot run its DDL:
/// that is said plainly (yellow, "the gate's role lacks a privilege"), never reported as the
/// migration failing (red `statement-fails`), and never GREEN.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_place_with_the_read_only_role_says_what_it_lacks() {
    let spec = FixtureSpec {
        tenants: 2,
        rows: 20,
        ..FixtureSpec::default()
    };
    let fx = start_fleet(1, &spec).await.expect("fixture fleet");
    let pg = &fx.clusters[0];
    let mut c = PgConnection::connect_with(&pg.connect_options("postgres"))
        .await
        .expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE gate_min LOGIN PASSWORD '{PASSWORD}';
         GRANT pg_read_all_data, pg_read_all_stats TO gate_min;"
    )))
    .execute(&mut c)
    .await
    .expect("create the role");
    c.close().await.expect("close");
    let before = common::fingerprint_db(&pg.connection_spec()).await;
    let url = format!("postgres://gate_min:{PASSWORD}@127.0.0.1:{}/app", pg.port());
    let (verdicts, report) = run_in(&url, "gate_min", RehearsalMode::InPlace).await;
    for s in &report.shards {
        assert_ne!(
            format!("{:?}", s.gate),
            "Green",
            "{}: {verdicts:?}",
            s.shard
        );
        let privilege: Vec<_> = s
            .findings
            .iter()
            .filter(|f| f.message.contains("the gate's role lacks a privilege"))
            .collect();
        assert!(!privilege.is_empty(), "{}: {:#?}", s.shard, s.findings);
        insta::assert_snapshot!(
            "in_place_privilege_finding",
            format!(
                "{}\nhelp: {}",
                privilege[0].message,
                privilege[0].help.clone().unwrap_or_default()
            )
        );
        for f in privilege {
            assert_eq!(f.rule, "statement-fails");
            assert_eq!(format!("{:?}", f.severity), "Yellow", "{f:?}");
        }
    }
    assert_eq!(
        common::fingerprint_db(&pg.connection_spec()).await,
        before,
        "the target is unchanged"
    );
}

//! Passwords never leave the process: a full library run against a role that really needs its
//! password (scram-sha-256 via pg_hba.conf on an ephemeral cluster), every rendering of the
//! report, the execution log, the fleet's `Debug`, and the errors of the failure paths (wrong
//! password, nothing listening, unknown host). The CLI side (stdout, stderr, report dir, signing
//! key) is tested in crates/cli/tests/validate_cli.rs.

mod common;

use deployclaw::fleet_source::{FleetRequest, FleetTarget, resolve_fleet};
use deployclaw::pipeline::validate;
use deployclaw::report::render;
use deployclaw::simulator::{CancelToken, NoProgress, RehearsalMode};
use deployclaw::topology::DiscoverySpec;
use deployclaw::topology::fixture::{FixtureSpec, Plant, start_fleet};

const PASSWORD: &str = "S3cr3t-Пароль-'\"`-x9";

fn secrets() -> Vec<String> {
    vec![
        PASSWORD.to_string(),
        common::pct(PASSWORD),
        "S3cr3t".into(),
        "Пароль".into(),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for s in secrets() {
        assert!(
            !text.contains(&s),
            "{what} contains the password (form of {} chars)",
            s.len()
        );
    }
}

fn request(url: &str) -> FleetRequest {
    FleetRequest {
        target: FleetTarget::classify(url).expect("a URL"),
        discovery: Some(DiscoverySpec::schemas("tenant_*")),
        max_shards: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_password_of_a_real_password_role_appears_nowhere() {
    let spec = FixtureSpec {
        tenants: 3,
        rows: 40,
        ..FixtureSpec::default()
    }
    .plant(2, Plant::OrphanedCoupons { rows: 2 });
    let fx = start_fleet(1, &spec).await.expect("fixture fleet");
    let pg = &fx.clusters[0];
    common::create_reader(pg, "gate_reader", PASSWORD).await;
    common::require_password_for(pg, "gate_reader").await;
    let before = common::fingerprint_db(&pg.connection_spec()).await;
    let url = format!(
        "postgres://gate_reader:{}@127.0.0.1:{}/app",
        common::pct(PASSWORD),
        pg.port()
    );

    // The password is needed (the connection is refused without it) ...
    let no_pw = format!("postgres://gate_reader@127.0.0.1:{}/app", pg.port());
    let e = resolve_fleet(&request(&no_pw))
        .await
        .expect_err("no password must fail");
    assert!(e.is_unreachable(), "{e}");

    // ... and with it the whole gate runs, reads every shard and finds the planted problem.
    let (fleet, source) = resolve_fleet(&request(&url)).await.expect("fleet");
    assert_clean("fleet source", &source);
    assert_clean("fleet Debug", &format!("{fleet:?}"));
    assert_clean("fleet JSON", &serde_json::to_string(&fleet).unwrap());
    let mut opts = common::options(common::MIGRATION, RehearsalMode::Shadow);
    opts.fleet_source = source;
    let report = validate(&opts, &fleet, &NoProgress, &CancelToken::new())
        .await
        .expect("report");
    assert_eq!(report.shards.len(), 3);
    assert!(
        report
            .shards
            .iter()
            .all(|s| !s.findings.iter().any(|f| f.rule == "shard-unreachable")),
        "{:#?}",
        report.shards
    );
    assert!(
        report.rollback.tested,
        "the rollback proof dumps the shard with the password: {:?}",
        report.rollback
    );
    let planted = report
        .shards
        .iter()
        .find(|s| s.shard.ends_with("tenant_0002"))
        .unwrap();
    assert!(planted.findings.iter().any(|f| f.rule == "fk-orphans"));

    assert_clean("report Debug", &format!("{report:?}"));
    assert_clean("json", &render::json(&report).unwrap());
    assert_clean("markdown", &render::markdown(&report, &Default::default()));
    assert_clean("html", &render::html(&report));
    assert_clean(
        "sarif",
        &render::sarif(&report, &Default::default()).unwrap(),
    );
    assert_clean("junit", &render::junit(&report, &Default::default()));
    assert_clean("terminal", &render::terminal(&report, &Default::default()));
    let dir = tempfile::tempdir().unwrap();
    for f in render::write_all(&report, dir.path()).unwrap() {
        assert_clean(
            &f.display().to_string(),
            &String::from_utf8_lossy(&std::fs::read(&f).unwrap()),
        );
    }

    // The failure paths: a wrong password, nothing listening, an unknown host.
    let wrong = format!(
        "postgres://gate_reader:{}@127.0.0.1:{}/app",
        common::pct("S3cr3t-wrong"),
        pg.port()
    );
    let dead = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    for target in [
        wrong,
        format!(
            "postgres://gate_reader:{}@127.0.0.1:{dead}/app",
            common::pct(PASSWORD)
        ),
        format!(
            "postgres://gate_reader:{}@no-such-host.invalid/app",
            common::pct(PASSWORD)
        ),
    ] {
        let e = resolve_fleet(&request(&target))
            .await
            .expect_err("must fail");
        assert!(e.is_unreachable(), "{e}");
        assert_clean("error", &e.to_string());
        assert_clean("error Debug", &format!("{e:?}"));
    }
    // Invalid URLs holding the password.
    for bad in [
        format!(
            "postgres://gate_reader:{}@127.0.0.1:notaport/app",
            common::pct(PASSWORD)
        ),
        format!(
            "postgres://gate_reader:{}@h/app?sslmode=bogus",
            common::pct(PASSWORD)
        ),
        format!(
            "postgres://gate_reader:{}@h/app?bogus=1",
            common::pct(PASSWORD)
        ),
    ] {
        let e = resolve_fleet(&request(&bad))
            .await
            .expect_err("invalid URL");
        assert_clean("invalid URL error", &e.to_string());
        assert_clean("invalid URL description", &request(&bad).target.describe());
    }

    assert_eq!(
        common::fingerprint_db(&pg.connection_spec()).await,
        before,
        "the target changed"
    );
    assert_eq!(common::leftovers(&[pg]).await, Vec::<String>::new());
}

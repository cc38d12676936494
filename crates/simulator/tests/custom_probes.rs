//! Custom SQL probes: rows as JSON (at most 5, truncation flagged), errors as outcomes that do
//! not disturb the other probes, settings changed by a probe rolled back, one statement only.

mod common;

use common::*;
use serde_json::json;
use simulator::{
    CancelToken, CustomProbe, NoProgress, ProbeKind, RehearsalMode, SimError, SimOptions, Simulator,
};

const HOSTILE: &str = "te\"nant; DROP TABLE x; --";

fn schema_sql(schema: &str) -> String {
    let s = simulator::quote_ident(schema);
    format!(
        "CREATE SCHEMA {s};
         CREATE TABLE {s}.items (id int PRIMARY KEY, price int);
         INSERT INTO {s}.items VALUES (1, 10), (2, -1), (3, -5), (4, NULL), (5, 0), (6, 7), (7, 8);"
    )
}

const MIGRATION: &str = "ALTER TABLE items ADD CONSTRAINT price_positive CHECK (price >= 0);\n";

fn probes() -> Vec<CustomProbe> {
    vec![
        CustomProbe::new(
            "negatives",
            "SELECT id, price FROM {schema}.items WHERE price < 0 ORDER BY id;",
        ),
        // Succeeds, but changes a setting: must not leak into the probes after it.
        CustomProbe::new(
            "hijack",
            "SELECT set_config('search_path', 'pg_catalog', true) AS sp",
        ),
        CustomProbe::new("broken", "SELECT nope FROM {schema}.items"),
        CustomProbe::new(
            "injection",
            "SELECT 1) AS q; DELETE FROM {schema}.items; SELECT (1",
        ),
        CustomProbe::new("slow", "SELECT pg_sleep(30) AS slept"),
        // Unqualified: resolves through the shard's search_path (restored after `hijack`).
        CustomProbe::new(
            "all-items",
            "SELECT id FROM items ORDER BY id -- all of them",
        ),
        CustomProbe::new("nothing", "SELECT 1 AS x WHERE false"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_probes_return_rows_and_errors_per_shard() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", &schema_sql("tenant_a")).await;
    exec(&pg, "app", &schema_sql(HOSTILE)).await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a"), (0, "app", HOSTILE)]);
    let m = migration(MIGRATION);
    let sim = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::Skip,
        probe_timeout: std::time::Duration::from_secs(1),
        custom_probes: probes(),
        ..Default::default()
    });
    let res = sim
        .run(&m, &fleet, None, &NoProgress, &CancelToken::new())
        .await
        .expect("run");
    assert_eq!(res.shards.len(), 2);
    for ev in &res.shards {
        assert!(
            ev.unreachable.is_none() && ev.incomplete.is_none(),
            "{ev:#?}"
        );
        let c = &ev.custom_probes;
        assert_eq!(c.len(), 7, "{c:#?}");

        let neg = &c["negatives"];
        assert_eq!(
            neg.rows,
            vec![json!({"id": 2, "price": -1}), json!({"id": 3, "price": -5})]
        );
        assert!(!neg.truncated && neg.error.is_none());

        assert_eq!(c["hijack"].rows, vec![json!({"sp": "pg_catalog"})]);

        let broken = c["broken"].error.as_ref().expect("broken probe fails");
        assert_eq!(broken.sqlstate.as_deref(), Some("42703"), "{broken:?}");
        assert!(c["broken"].rows.is_empty());

        // Only one statement can run, and the transaction is read-only anyway.
        assert!(c["injection"].error.is_some(), "{:?}", c["injection"]);

        let slow = c["slow"].error.as_ref().expect("slow probe times out");
        assert_eq!(slow.sqlstate.as_deref(), Some("57014"), "{slow:?}");

        let all = &c["all-items"];
        assert!(all.error.is_none(), "{all:?}");
        assert_eq!(
            all.rows,
            (1..=5).map(|i| json!({ "id": i })).collect::<Vec<_>>()
        );
        assert!(all.truncated);

        assert!(c["nothing"].rows.is_empty() && !c["nothing"].truncated);
        assert!(c["nothing"].error.is_none());

        // The built-in probes ran as usual.
        let check = ev
            .probes
            .iter()
            .find(|p| p.kind == ProbeKind::CheckViolations)
            .expect("check probe");
        assert_eq!((check.count, check.error.as_ref()), (2, None), "{check:#?}");
    }
    // The target is unchanged.
    let mut c = conn(&pg, "app").await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant_a.items")
        .fetch_one(&mut c)
        .await
        .expect("count");
    assert_eq!(n, 7);

    // Evidence round-trips; older evidence without the field still reads.
    let ev = &res.shards[0];
    let back: simulator::ShardEvidence =
        serde_json::from_value(serde_json::to_value(ev).expect("to json")).expect("from json");
    assert_eq!(&back, ev);
    let mut old = serde_json::to_value(ev).expect("to json");
    old.as_object_mut().expect("object").remove("custom_probes");
    let old: simulator::ShardEvidence = serde_json::from_value(old).expect("old evidence");
    assert!(old.custom_probes.is_empty());
}

#[tokio::test]
async fn duplicate_custom_probe_names_are_invalid_options() {
    let fleet = topology::Fleet::default();
    let sim = Simulator::new(SimOptions {
        custom_probes: vec![
            CustomProbe::new("p", "SELECT 1"),
            CustomProbe::new("p", "SELECT 2"),
        ],
        ..Default::default()
    });
    let r = sim
        .run(
            &migration(MIGRATION),
            &fleet,
            None,
            &NoProgress,
            &CancelToken::new(),
        )
        .await;
    assert!(matches!(r, Err(SimError::InvalidOptions { .. })), "{r:?}");
}

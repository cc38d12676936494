//! Custom SQL probe rules from `deployclaw.toml`, end to end: the pipeline runs every
//! `[[custom_rules]] kind = "probe"` query on every shard (simulator), and the rule turns the
//! rows into a finding on exactly the shards that returned rows, with the rows as evidence. A
//! probe whose SQL fails gives a "could not check" finding on every shard and breaks nothing.

mod common;

use common::{MIGRATION, options};
use deployclaw::gates::{Config, Gate, ProbeRuleSpec, Severity};
use deployclaw::pipeline::validate;
use deployclaw::report::ShardReport;
use deployclaw::simulator::{
    CancelToken, NoProgress, RehearsalMode, custom_probe_sql, expand_probe_template,
};
use deployclaw::topology::fixture::{FixtureSpec, Plant, start_fleet};
use sqlx::{Connection, PgConnection};

const CONFIG: &str = r#"
[[custom_rules]]
kind = "probe"
name = "no-negative-payments"
code = "ACME010"
severity = "red"
sql = "SELECT id, amount_cents FROM {schema}.payments WHERE amount_cents < 0 ORDER BY id;"
message = "{rows} negative payment(s) in {schema}"
help = "refund or correct negative payments first"

[[custom_rules]]
kind = "probe"
name = "broken-probe"
code = "ACME011"
severity = "yellow"
sql = "SELECT no_such_column FROM {schema}.payments"
message = "{rows} row(s)"
"#;

const PLANTED: usize = 2;

fn tenant(shard: &str) -> usize {
    shard
        .rsplit("tenant_")
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

fn finding<'a>(s: &'a ShardReport, rule: &str) -> Option<&'a deployclaw::gates::Finding> {
    s.findings.iter().find(|f| f.rule == rule)
}

#[test]
fn simulator_and_gates_build_the_same_probe_query() {
    for (sql, schema) in [
        (
            "SELECT id FROM {schema}.payments WHERE amount_cents < 0;",
            "tenant_0001",
        ),
        (
            "  WITH x AS (SELECT 1) TABLE x -- trailing comment\n;; ",
            "te\"nant; DROP TABLE x; --",
        ),
        ("VALUES ({schema}.f(1))", "Ünïcode space"),
    ] {
        let spec = ProbeRuleSpec::new("p", "X1", Severity::Red, sql, "m");
        assert_eq!(custom_probe_sql(sql, schema), spec.query_for_schema(schema));
        assert_eq!(
            expand_probe_template(sql, schema),
            spec.sql_for_schema(schema)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_probe_rules_flag_the_planted_shard_only() {
    let spec = FixtureSpec {
        tenants: 3,
        rows: 40,
        ..FixtureSpec::default()
    }
    .plant(PLANTED, Plant::NegativePayments { rows: 2 });
    let fx = start_fleet(1, &spec).await.expect("fixture fleet");

    let config = Config::from_toml_str("deployclaw.toml", CONFIG).expect("config parses");
    assert_eq!(config.probe_rules().len(), 2);
    let mut opts = options(MIGRATION, RehearsalMode::Skip);
    opts.validate_rollback = false;
    opts.config = config;
    assert!(
        opts.sim.custom_probes.is_empty(),
        "the pipeline fills them from the config"
    );

    let report = validate(&opts, &fx.fleet, &NoProgress, &CancelToken::new())
        .await
        .expect("validation runs");
    assert_eq!(report.shards.len(), 3);

    // The planted rows, read directly.
    let planted = fx
        .fleet
        .shards
        .iter()
        .find(|s| tenant(&s.id) == PLANTED)
        .expect("planted shard");
    let schema = planted.location.schema().to_string();
    let mut c = PgConnection::connect_with(&fx.clusters[0].connect_options("app"))
        .await
        .expect("connect");
    let q = format!(
        "SELECT to_jsonb(x) FROM (SELECT id, amount_cents FROM \"{schema}\".payments WHERE amount_cents < 0 ORDER BY id) x"
    );
    let expected: Vec<serde_json::Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(q))
        .fetch_all(&mut c)
        .await
        .expect("planted rows");
    c.close().await.expect("close");
    assert_eq!(expected.len(), 2, "{expected:?}");

    for s in &report.shards {
        let is_planted = tenant(&s.shard) == PLANTED;
        // The custom rule fires exactly on the planted shard, with the rows as evidence.
        match finding(s, "no-negative-payments") {
            Some(f) => {
                assert!(is_planted, "{}: unexpected custom finding {f:#?}", s.shard);
                assert_eq!(f.code, "ACME010");
                assert_eq!(f.severity, Severity::Red);
                assert_eq!(f.message, format!("2 negative payment(s) in {schema}"));
                let ev = f.evidence.as_ref().expect("evidence");
                assert_eq!(
                    ev["rows"],
                    serde_json::Value::Array(expected.clone()),
                    "{ev:#}"
                );
                assert_eq!(ev["truncated"], false);
                assert_eq!(ev["row_count"], "2");
                assert!(
                    ev["sql"]
                        .as_str()
                        .unwrap_or_default()
                        .contains(&format!("\"{schema}\".payments")),
                    "{ev:#}"
                );
            }
            None => assert!(
                !is_planted,
                "{}: no custom finding: {:#?}",
                s.shard, s.findings
            ),
        }
        // The broken probe: a "could not check" finding with the server's error on every shard.
        let b = finding(s, "broken-probe")
            .unwrap_or_else(|| panic!("{}: no broken-probe finding", s.shard));
        assert!(
            b.message.contains("could not run on this shard"),
            "{}",
            b.message
        );
        assert!(b.message.contains("42703"), "{}", b.message);
        assert_eq!(b.severity, Severity::Yellow);
        assert!(
            b.evidence
                .as_ref()
                .and_then(|e| e["error"].as_str())
                .unwrap_or_default()
                .contains("no_such_column"),
            "{b:#?}"
        );
        // ...and nothing else broke: the shard was probed, the built-in probes still work.
        assert!(
            finding(s, "shard-unreachable").is_none(),
            "{}: {:#?}",
            s.shard,
            s.findings
        );
        if is_planted {
            assert_eq!(s.gate, Gate::Red);
            assert!(
                finding(s, "check-violations").is_some(),
                "{}: {:#?}",
                s.shard,
                s.findings
            );
        } else {
            assert!(
                finding(s, "check-violations").is_none(),
                "{}: {:#?}",
                s.shard,
                s.findings
            );
            assert_eq!(s.gate, Gate::Yellow, "{}: {:#?}", s.shard, s.findings);
        }
    }
}

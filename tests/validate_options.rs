//! `ValidateOptions`: the migration from text as well as from a file, and the rules derived from
//! the configuration. Before, `ValidateOptions::new` carried `Registry::builtin()`: a
//! configuration with a `[[custom_rules]] kind = "probe"` made the simulator run the probe on
//! every shard, and its rows were then dropped because no rule read them (a silent green).

mod common;

use common::options;
use deployclaw::gates::{Config, Finding, GateRule, RuleContext, RuleMeta, Severity};
use deployclaw::pipeline::{MigrationSource, ValidateOptions, validate};
use deployclaw::simulator::{CancelToken, NoProgress, RehearsalMode};
use deployclaw::topology::fixture::{FixtureSpec, start_fleet};

const CONFIG: &str = r#"
[[custom_rules]]
kind = "probe"
name = "every-shard-has-users"
code = "ACME020"
severity = "red"
sql = "SELECT count(*) AS n FROM {schema}.users HAVING count(*) > 0"
message = "{schema} has users"
"#;

const MIGRATION: &str = "SET lock_timeout = '1s';\nALTER TABLE users ADD COLUMN note text;\n";

/// A Rust rule of the library user's own, run next to the configured ones.
struct EveryShard;

impl GateRule for EveryShard {
    fn meta(&self) -> RuleMeta<'_> {
        RuleMeta::new("ACME021", "every-shard", Severity::Info)
            .with_scope(deployclaw::gates::RuleScope::Shard)
    }
    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        ctx.shard_evidence()
            .map(|e| {
                vec![Finding::new(
                    "every-shard",
                    "ACME021",
                    Severity::Info,
                    format!("saw {}", e.shard),
                )]
            })
            .unwrap_or_default()
    }
}

#[test]
fn the_registry_is_derived_from_the_configuration() {
    let mut o = ValidateOptions::from_sql("m.sql", MIGRATION);
    let builtin = o.registry().expect("registry").len();
    o.config = Config::from_toml_str("deployclaw.toml", CONFIG).expect("config");
    o.extra_rules
        .register(Box::new(EveryShard))
        .expect("register");
    let r = o.registry().expect("registry");
    assert_eq!(r.len(), builtin + 2);
    assert!(r.get("every-shard-has-users").is_some());
    assert!(r.get("ACME021").is_some());
    assert_eq!(o.migration.name(), "m.sql");
    assert!(matches!(&o.migration, MigrationSource::Text { sql, .. } if sql == MIGRATION));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_rules_of_the_configuration_report_on_every_shard_from_text() {
    let spec = FixtureSpec {
        tenants: 2,
        rows: 10,
        ..FixtureSpec::default()
    };
    let fx = start_fleet(1, &spec).await.expect("fixture fleet");
    // The common test options (no calibration), with the migration as text and only the
    // configuration set: no registry is handed over.
    let mut opts = options("unused.sql", RehearsalMode::Skip);
    opts.migration = MigrationSource::Text {
        name: "inline_v1.sql".into(),
        sql: MIGRATION.into(),
    };
    opts.validate_rollback = false;
    opts.config = Config::from_toml_str("deployclaw.toml", CONFIG).expect("config");
    opts.extra_rules
        .register(Box::new(EveryShard))
        .expect("register");

    let report = validate(&opts, &fx.fleet, &NoProgress, &CancelToken::new())
        .await
        .expect("validation runs");
    assert_eq!(report.migration.file, "inline_v1.sql");
    assert_eq!(report.migration.statements, 2);
    assert_eq!(
        report.migration.sha256,
        deployclaw::report::sha256_hex(MIGRATION.as_bytes())
    );
    assert_eq!(report.shards.len(), 2);
    for s in &report.shards {
        let rules: Vec<&str> = s.findings.iter().map(|f| f.rule.as_str()).collect();
        assert!(
            rules.contains(&"every-shard-has-users"),
            "{}: the configured probe rule's rows were dropped: {rules:?}",
            s.shard
        );
        assert!(rules.contains(&"every-shard"), "{}: {rules:?}", s.shard);
    }
}

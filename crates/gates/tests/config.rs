//! `deployclaw.toml` parsing and its effect on `Registry::lint`.

use gates::migration_parser::{PgVersion, TransactionMode, parse};
use gates::{Config, GatesError, Registry, Severity};

const FULL: &str = r#"
pg_version = 12
transaction_mode = "wrap-file"
tenant_schema_pattern = ["tenant_*", "acct_*"]

[rules]
disable = ["renaming-column", "DC304"]

[rules.severity]
dropping-column = "yellow"
DC501 = "info"

[lock_budget]
max_blocking_ms = 2000

[approval]
required_for = "yellow"

[[custom_rules]]
kind = "statement"
name = "no-tmp"
code = "ACME001"
operation = "create_table"
table = "tmp_*"
message = "`{table}` looks temporary"
"#;

#[test]
fn parses_every_section() {
    let c = Config::from_toml_str("deployclaw.toml", FULL).unwrap();
    assert_eq!(c.pg_version, Some(PgVersion(12)));
    assert_eq!(c.transaction_mode, Some(TransactionMode::WrapFile));
    assert_eq!(c.tenant_schema_pattern, vec!["tenant_*", "acct_*"]);
    assert_eq!(c.rules.disable, vec!["renaming-column", "DC304"]);
    assert_eq!(
        c.rules.severity.get("dropping-column"),
        Some(&Severity::Yellow)
    );
    assert_eq!(c.rules.severity.get("DC501"), Some(&Severity::Info));
    assert_eq!(c.lock_budget.max_blocking_ms, 2000);
    assert!(c.approval.is_some());
    assert_eq!(c.custom_rules.len(), 1);
    let opts = c.parse_options();
    assert_eq!(opts.pg_version, PgVersion(12));
    assert_eq!(opts.transaction_mode, TransactionMode::WrapFile);
    Registry::builtin().check_config(&c).unwrap();
}

#[test]
fn a_single_tenant_pattern_string_is_accepted() {
    let c = Config::from_toml_str("d.toml", "tenant_schema_pattern = \"customer_*\"\n").unwrap();
    assert_eq!(c.tenant_schema_patterns(), vec!["customer_*"]);
    assert_eq!(Config::default().tenant_schema_patterns(), vec!["tenant_*"]);
}

#[test]
fn unknown_key_is_rejected_with_its_location() {
    let err = Config::from_toml_str(
        "deployclaw.toml",
        "pg_version = 15\n\n[rules]\ndisabled = [\"x\"]\n",
    )
    .unwrap_err();
    match &err {
        GatesError::UnknownConfigKey {
            file,
            line,
            column,
            key,
            expected,
        } => {
            assert_eq!(
                (file.as_str(), *line, *column, key.as_str()),
                ("deployclaw.toml", 4, 1, "disabled")
            );
            assert!(expected.contains("disable"), "{expected}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    insta::assert_snapshot!(err.to_string(), @"deployclaw.toml:4:1: unknown key `disabled` in configuration (expected one of: disable, severity)");

    let err = Config::from_toml_str("d.toml", "pg_versoin = 15\n").unwrap_err();
    assert!(
        matches!(&err, GatesError::UnknownConfigKey { key, line: 1, .. } if key == "pg_versoin"),
        "{err}"
    );
}

#[test]
fn invalid_values_name_the_key_and_position() {
    let err = Config::from_toml_str("d.toml", "[rules.severity]\ndropping-table = \"orange\"\n")
        .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @r#"d.toml:2:18: invalid value for `rules.severity.dropping-table`: `orange` (expected "red", "yellow" or "info")"#);

    let err =
        Config::from_toml_str("d.toml", "transaction_mode = \"per-statement\"\n").unwrap_err();
    assert!(
        matches!(&err, GatesError::InvalidConfigValue { key, line: 1, column: 20, .. } if key == "transaction_mode"),
        "{err}"
    );

    let err = Config::from_toml_str("d.toml", "pg_version = 3\n").unwrap_err();
    assert!(
        matches!(&err, GatesError::InvalidConfigValue { key, .. } if key == "pg_version"),
        "{err}"
    );

    let err =
        Config::from_toml_str("d.toml", "tenant_schema_pattern = \"tenant_[\"\n").unwrap_err();
    assert!(
        matches!(&err, GatesError::InvalidConfigValue { key, .. } if key == "tenant_schema_pattern"),
        "{err}"
    );
}

#[test]
fn toml_syntax_errors_carry_a_position() {
    let err = Config::from_toml_str("d.toml", "pg_version = 15\n[rules\n").unwrap_err();
    assert!(
        matches!(&err, GatesError::ConfigSyntax { line: 2, .. }),
        "{err:?}"
    );
    let err = Config::from_toml_str("d.toml", "pg_version = \"fifteen\"\n").unwrap_err();
    assert!(
        matches!(&err, GatesError::ConfigSyntax { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn unknown_rule_names_are_reported_by_check_config() {
    let c = Config::from_toml_str(
        "d.toml",
        "[rules]\ndisable = [\"DC101\", \"requre-concurrent-index\"]\n",
    )
    .unwrap();
    let err = Registry::builtin().check_config(&c).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"d.toml:2:21: unknown rule `requre-concurrent-index` in `rules.disable` (see `deployclaw rules` for the list)");

    let mut built = Config::default();
    built
        .rules
        .severity
        .insert("no-such-rule".into(), Severity::Info);
    let err = Registry::builtin().check_config(&built).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown rule `no-such-rule` in `rules.severity` (see `deployclaw rules` for the list)"
    );
}

const MIGRATION: &str = "\
ALTER TABLE users RENAME COLUMN name TO display_name;
ALTER TABLE customer RENAME TO customers;
ALTER TABLE users DROP COLUMN legacy_flags;
";

fn lint(config: &Config) -> Vec<(String, Severity)> {
    let m = parse("m.sql", MIGRATION, &config.parse_options()).unwrap();
    Registry::builtin()
        .lint(&m, config)
        .into_iter()
        .map(|f| (f.rule, f.severity))
        .collect()
}

#[test]
fn disable_and_severity_overrides_apply_to_lint() {
    let defaults = lint(&Config::default());
    assert!(defaults.contains(&("renaming-column".into(), Severity::Yellow)));
    assert!(defaults.contains(&("renaming-table".into(), Severity::Yellow)));
    assert!(defaults.contains(&("dropping-column".into(), Severity::Red)));
    assert!(defaults.contains(&("missing-lock-timeout".into(), Severity::Yellow)));

    let c = Config::from_toml_str("d.toml", FULL).unwrap();
    let got = lint(&c);
    assert!(
        !got.iter().any(|(r, _)| r == "renaming-column"),
        "disabled by name: {got:?}"
    );
    assert!(
        !got.iter().any(|(r, _)| r == "renaming-table"),
        "disabled by code: {got:?}"
    );
    assert!(
        got.contains(&("dropping-column".into(), Severity::Yellow)),
        "override by name: {got:?}"
    );
    assert!(
        got.iter()
            .filter(|(r, _)| r == "missing-lock-timeout")
            .all(|(_, s)| *s == Severity::Info)
    );
    assert!(
        got.iter().any(|(r, _)| r == "missing-lock-timeout"),
        "override by code keeps the rule: {got:?}"
    );
}

#[test]
fn limits_max_statements_is_read_and_checked() {
    assert_eq!(
        Config::default().limits.max_statements,
        gates::DEFAULT_MAX_STATEMENTS
    );
    let c = Config::from_toml_str("d.toml", "[limits]\nmax_statements = 250000\n").unwrap();
    assert_eq!(c.limits.max_statements, 250_000);
    let err = Config::from_toml_str("d.toml", "[limits]\nmax_statements = 0\n").unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"d.toml:2:18: invalid value for `limits.max_statements`: `0` (expected a number of statements, 1 or more)");
    let err = Config::from_toml_str("d.toml", "[limits]\nmax_statement = 5\n").unwrap_err();
    assert!(
        matches!(&err, GatesError::UnknownConfigKey { key, line: 2, .. } if key == "max_statement"),
        "{err}"
    );
}

#[test]
fn shadow_data_is_opt_in_read_and_checked() {
    assert_eq!(Config::default().shadow, gates::ShadowConfig::default());
    assert_eq!(Config::default().shadow.data, None);
    let c = Config::from_toml_str(
        "d.toml",
        "[shadow]\ndata = \"sample\"\nsample_rows = 50\nsample_bytes = 1048576\n",
    )
    .unwrap();
    assert_eq!(c.shadow.data, Some(gates::ShadowDataKind::Sample));
    assert_eq!(c.shadow.sample_rows, Some(50));
    assert_eq!(c.shadow.sample_bytes, Some(1 << 20));
    let err = Config::from_toml_str("d.toml", "[shadow]\ndata = \"real\"\n").unwrap_err();
    insta::assert_snapshot!(err.to_string(), @r#"d.toml:2:8: invalid value for `shadow.data`: `real` (expected "synthetic" or "sample")"#);
    let err = Config::from_toml_str("d.toml", "[shadow]\nsample_rows = 0\n").unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"d.toml:2:15: invalid value for `shadow.sample_rows`: `0` (expected rows per table, 1 or more)");
}

/// `[data_changes] max_unbatched_rows`: read, defaulted, and a negative count is an error at
/// its position.
#[test]
fn data_changes_threshold_is_read_and_checked() {
    let c = Config::from_toml_str("d.toml", "[data_changes]\nmax_unbatched_rows = 500\n").unwrap();
    assert_eq!(c.data_changes.max_unbatched_rows, 500);
    assert_eq!(
        Config::default().data_changes.max_unbatched_rows,
        gates::DEFAULT_MAX_UNBATCHED_ROWS
    );
    let e = Config::from_toml_str("d.toml", "[data_changes]\nmax_unbatched_rows = -1\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("d.toml:2:") && e.contains("data_changes.max_unbatched_rows"),
        "{e}"
    );
}

/// `[live] idle_in_transaction_red_after`: a duration, defaulted to 30 s; an unparseable one is
/// an error at its position.
#[test]
fn live_idle_in_transaction_limit_is_read_and_checked() {
    let c = Config::from_toml_str(
        "l.toml",
        "[live]\nidle_in_transaction_red_after = \"2min\"\n",
    )
    .unwrap();
    assert_eq!(c.live.idle_in_transaction_red_after_ms, 120_000);
    assert_eq!(
        Config::default().live.idle_in_transaction_red_after_ms,
        gates::DEFAULT_IDLE_IN_TRANSACTION_RED_AFTER_MS
    );
    let err = Config::from_toml_str(
        "l.toml",
        "[live]\nidle_in_transaction_red_after = \"soon\"\n",
    )
    .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @r#"l.toml:2:33: invalid value for `live.idle_in_transaction_red_after`: `soon` (expected a duration such as "30s", "500ms" or "2min")"#);
}

/// The configuration example in README.md is a valid `deployclaw.toml` (every key the streams
/// documented, no table twice).
#[test]
fn the_readme_example_configuration_is_valid() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let section = readme
        .split("## Configuration (`deployclaw.toml`)")
        .nth(1)
        .expect("the configuration section");
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a toml block");
    let config = gates::Config::from_toml_str("README.md", example)
        .unwrap_or_else(|e| panic!("the README example does not parse: {e}"));
    assert_eq!(config.live.traffic_window_ms, Some(1000));
    assert_eq!(config.live.idle_in_transaction_red_after_ms, 30_000);
}

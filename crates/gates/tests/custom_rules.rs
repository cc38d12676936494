//! Declarative `[[custom_rules]]`: parsing and validation (with positions), statement-pattern
//! rules through `Registry::lint`, SQL probe rules through the per-shard context.

use gates::migration_parser::parse;
use gates::{
    Config, CustomProbeOutcome, CustomRuleSpec, GatesError, Registry, RuleContext, RuleScope,
    Severity, evaluate_shard,
};
use serde_json::json;

const CONFIG: &str = r#"
[[custom_rules]]
kind = "statement"
name = "no-drop-billing-columns"
code = "ACME001"
severity = "red"
operation = "drop_column"
table = "billing_*"
column = "*_cents"
message = "dropping `{column}` from `{table}` loses billing history"
help = "archive the column into billing_archive first"

[[custom_rules]]
kind = "statement"
name = "no-tmp-tables"
code = "DC801"
operation = "create_table"
table = "tmp_*"
message = "`{table}` looks temporary ({operation})"

[[custom_rules]]
kind = "probe"
name = "no-open-invoices"
code = "ACME002"
severity = "red"
sql = "SELECT id, status FROM {schema}.invoices WHERE status = 'open';"
message = "{rows} open invoice(s) in {schema}: the migration would change them mid-flight"
help = "close or migrate open invoices first"
"#;

const MIGRATION: &str = "\
SET lock_timeout = '2s';
ALTER TABLE billing_accounts DROP COLUMN balance_cents;
ALTER TABLE billing_accounts DROP COLUMN note;
ALTER TABLE users DROP COLUMN credit_cents;
CREATE TABLE tmp_import (id int);
";

#[test]
fn custom_rules_parse_into_typed_specs() {
    let c = Config::from_toml_str("deployclaw.toml", CONFIG).unwrap();
    assert_eq!(c.custom_rules.len(), 3);
    let CustomRuleSpec::Statement(s) = &c.custom_rules[0] else {
        panic!("statement rule expected: {:?}", c.custom_rules[0]);
    };
    assert_eq!(
        (
            s.name.as_str(),
            s.code.as_str(),
            s.severity,
            s.operation.as_str()
        ),
        (
            "no-drop-billing-columns",
            "ACME001",
            Severity::Red,
            "drop_column"
        )
    );
    assert_eq!(s.table.as_deref(), Some("billing_*"));
    // severity defaults to yellow
    assert!(
        matches!(&c.custom_rules[1], CustomRuleSpec::Statement(s) if s.severity == Severity::Yellow)
    );
    let probes = c.probe_rules();
    assert_eq!(probes.len(), 1);
    assert_eq!(probes[0].name, "no-open-invoices");
    assert_eq!(c.statement_rules().len(), 2);
    assert_eq!(
        probes[0].sql_for_schema("tenant_0042"),
        "SELECT id, status FROM \"tenant_0042\".invoices WHERE status = 'open'"
    );
    insta::assert_snapshot!(probes[0].query_for_schema("tenant\"x"), @r#"
    SELECT to_jsonb(q) AS row FROM (SELECT id, status FROM "tenant""x".invoices WHERE status = 'open'
    ) AS q LIMIT 6
    "#);
}

#[test]
fn statement_rules_fire_through_lint_like_builtins() {
    let c = Config::from_toml_str("deployclaw.toml", CONFIG).unwrap();
    let registry = Registry::for_config(&c).unwrap();
    registry.check_config(&c).unwrap();
    assert_eq!(
        registry.get("acme001").map(|r| r.meta().scope),
        Some(RuleScope::Static)
    );
    assert_eq!(
        registry.get("no-open-invoices").map(|r| r.meta().scope),
        Some(RuleScope::Shard)
    );
    let m = parse("m.sql", MIGRATION, &c.parse_options()).unwrap();
    let findings: Vec<_> = registry
        .lint(&m, &c)
        .into_iter()
        .filter(|f| !f.code.starts_with("DC3") && !f.code.starts_with("DC5"))
        .collect();
    let got: Vec<(u32, &str, Severity, &str)> = findings
        .iter()
        .map(|f| {
            (
                f.location.as_ref().unwrap().line,
                f.code.as_str(),
                f.severity,
                f.message.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                2,
                "ACME001",
                Severity::Red,
                "dropping `balance_cents` from `billing_accounts` loses billing history"
            ),
            (
                5,
                "DC801",
                Severity::Yellow,
                "`tmp_import` looks temporary (create_table)"
            ),
        ]
    );
    assert_eq!(
        findings[0].help.as_deref(),
        Some("archive the column into billing_archive first")
    );
    // configuration applies to custom rules like to built-ins
    let mut c2 = c.clone();
    c2.rules.disable.push("no-tmp-tables".into());
    c2.rules.severity.insert("ACME001".into(), Severity::Info);
    let f = registry.lint(&m, &c2);
    assert!(!f.iter().any(|f| f.code == "DC801"));
    assert!(
        f.iter()
            .any(|f| f.code == "ACME001" && f.severity == Severity::Info)
    );
    // docs exist for `deployclaw explain`
    let explain = registry.explain("no-drop-billing-columns").unwrap();
    assert!(explain.contains("billing_*"), "{explain}");
}

#[test]
fn probe_rules_turn_rows_into_findings() {
    let c = Config::from_toml_str("deployclaw.toml", CONFIG).unwrap();
    let registry = Registry::for_config(&c).unwrap();
    let m = parse("m.sql", "SET lock_timeout = '2s';\n", &c.parse_options()).unwrap();

    // static lint: the probe rule is silent
    assert!(registry.lint(&m, &c).is_empty());

    let rows: Vec<_> = (1..=7)
        .map(|i| json!({"id": i, "status": "open"}))
        .collect();
    let ctx = RuleContext::new(&m, &c)
        .with_shard_id("tenant_0042", "db-1")
        .with_shard_schema("tenant_0042")
        .with_custom_probe_rows("no-open-invoices", rows);
    let v = evaluate_shard(&registry, &ctx);
    assert_eq!(v.gate, gates::Gate::Red);
    assert_eq!(v.findings.len(), 1);
    let f = &v.findings[0];
    assert_eq!(
        (f.rule.as_str(), f.code.as_str()),
        ("no-open-invoices", "ACME002")
    );
    assert!(f.location.is_none());
    let ev = f.evidence.as_ref().unwrap();
    assert_eq!(
        ev["rows"].as_array().map(Vec::len),
        Some(5),
        "first 5 rows kept: {ev}"
    );
    insta::assert_snapshot!(serde_json::to_string_pretty(f).unwrap());

    // no rows: nothing; a failing query: reported (unproven), with the error
    let ctx = RuleContext::new(&m, &c)
        .with_shard_id("tenant_0001", "db-1")
        .with_custom_probe("no-open-invoices", CustomProbeOutcome::rows(vec![]));
    assert_eq!(evaluate_shard(&registry, &ctx).gate, gates::Gate::Green);
    let ctx = RuleContext::new(&m, &c)
        .with_shard_id("t", "db-1")
        .with_custom_probe(
            "no-open-invoices",
            CustomProbeOutcome::failed("42P01: relation \"tenant_0001.invoices\" does not exist"),
        );
    let v = evaluate_shard(&registry, &ctx);
    assert_eq!(v.findings.len(), 1);
    assert!(
        v.findings[0].message.contains("could not run"),
        "{}",
        v.findings[0].message
    );
}

fn config_err(toml: &str) -> GatesError {
    Config::from_toml_str("deployclaw.toml", toml).unwrap_err()
}

#[test]
fn invalid_custom_rules_are_rejected_with_their_position() {
    let base = "[[custom_rules]]\nkind = \"statement\"\nname = \"x-rule\"\ncode = \"ACME9\"\nmessage = \"m\"\n";
    let errors = [
        config_err(&format!("{base}operation = \"drop_colum\"\n")),
        config_err(&format!(
            "{base}operation = \"drop_column\"\ntable = \"billing_[\"\n"
        )),
        config_err(&format!(
            "{base}operation = \"drop_column\"\nsql = \"SELECT 1\"\n"
        )),
        config_err(&format!(
            "{base}operation = \"drop_column\"\ncolour = \"red\"\n"
        )),
        config_err(base),
        config_err(
            "\n\n[[custom_rules]]\nkind = \"probe\"\nname = \"p\"\ncode = \"DC101\"\nsql = \"SELECT 1\"\nmessage = \"m\"\n",
        ),
        config_err(
            "[[custom_rules]]\nkind = \"probe\"\nname = \"p\"\ncode = \"X1\"\nsql = \"DELETE FROM {schema}.t\"\nmessage = \"m\"\n",
        ),
        config_err(
            "[[custom_rules]]\nkind = \"probe\"\nname = \"p\"\ncode = \"X1\"\nsql = \"SELECT 1; DROP TABLE t\"\nmessage = \"m\"\n",
        ),
        config_err(
            "[[custom_rules]]\nkind = \"regex\"\nname = \"p\"\ncode = \"X1\"\nmessage = \"m\"\n",
        ),
        config_err(
            "[[custom_rules]]\nkind = \"probe\"\nname = \"dropping-table\"\ncode = \"X1\"\nsql = \"SELECT 1\"\nmessage = \"m\"\n",
        ),
        config_err(
            "[[custom_rules]]\nkind = \"probe\"\nname = \"a\"\ncode = \"X1\"\nsql = \"SELECT 1\"\nmessage = \"m\"\n[[custom_rules]]\nkind = \"probe\"\nname = \"b\"\ncode = \"x1\"\nsql = \"SELECT 1\"\nmessage = \"m\"\n",
        ),
        config_err("[lock_budget]\nmax_blocking_ms = -1\n"),
        config_err("[lock_budget]\nmax_ms = 100\n"),
    ];
    for e in &errors {
        match e {
            GatesError::InvalidConfigValue { line, .. }
            | GatesError::UnknownConfigKey { line, .. }
            | GatesError::ConfigSyntax { line, .. } => assert!(*line > 0, "{e}"),
            other => panic!("unexpected error {other:?}"),
        }
    }
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!(text.join("\n"));
}

#[test]
fn dc8xx_codes_are_allowed_and_clashes_with_rust_rules_are_reported() {
    let c = Config::from_toml_str(
        "d.toml",
        "[[custom_rules]]\nkind = \"statement\"\nname = \"no-tmp\"\ncode = \"DC899\"\noperation = \"any\"\ntable = \"tmp_*\"\nmessage = \"tmp\"\n",
    )
    .unwrap();
    let mut registry = Registry::for_config(&c).unwrap();
    let m = parse(
        "m.sql",
        "CREATE TABLE tmp_a (id int);\nTRUNCATE tmp_b;\n",
        &c.parse_options(),
    )
    .unwrap();
    let codes: Vec<_> = registry
        .lint(&m, &c)
        .into_iter()
        .filter(|f| f.code == "DC899")
        .collect();
    assert_eq!(codes.len(), 2, "operation = any matches both: {codes:?}");
    let err = registry.with_custom_rules(&c).unwrap_err();
    assert!(
        matches!(err, GatesError::DuplicateRule { clash: "name", .. }),
        "{err}"
    );
}

#[test]
fn operation_kinds_match_the_parser() {
    let sql = "\
CREATE TABLE a (id int);
ALTER TABLE a ADD COLUMN b int;
ALTER TABLE a DROP COLUMN b;
ALTER TABLE a ALTER COLUMN id SET NOT NULL;
CREATE INDEX a_idx ON a (id);
TRUNCATE a;
UPDATE a SET id = 1;
";
    let m = parse("m.sql", sql, &Default::default()).unwrap();
    let kinds: Vec<String> = m
        .statements
        .iter()
        .flat_map(|s| s.operations.iter().map(|op| op.kind().as_str().to_string()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            "create_table",
            "add_column",
            "drop_column",
            "set_not_null",
            "create_index",
            "truncate",
            "update"
        ]
    );
    for k in &kinds {
        assert!(gates::OPERATION_KINDS.contains(&k.as_str()), "{k}");
    }
    // Every name a configuration could use before the kinds were typed still works.
    let before_typed_kinds = "create_table drop_table rename_table add_column drop_column \
        rename_column alter_column_type set_not_null drop_not_null set_default drop_default \
        add_constraint validate_constraint drop_constraint rename_constraint create_index \
        drop_index rename_index reindex create_enum add_enum_value rename_enum_value drop_type \
        truncate create_schema drop_schema drop_database update delete insert create_view \
        drop_view refresh_materialized_view lock_table maintenance alter_table_other \
        attach_partition detach_partition set reset transaction do create_sequence \
        create_extension create_function create_trigger comment create_database \
        attach_index_partition alter_system other any";
    for k in before_typed_kinds.split_whitespace() {
        assert!(
            gates::OPERATION_KINDS.contains(&k),
            "{k} no longer accepted"
        );
    }
    for k in [
        "drop_function",
        "drop_trigger",
        "create_domain",
        "alter_sequence",
    ] {
        assert!(gates::OPERATION_KINDS.contains(&k), "{k}");
    }
}

/// The operations typed in issue 13 (they were `other` before) can be named by a statement rule,
/// and their table or object matches `table`.
#[test]
fn statement_rules_match_the_typed_operations() {
    let toml = r#"
[[custom_rules]]
kind = "statement"
name = "no-trigger-drops-on-crates"
code = "ACME010"
operation = "drop_trigger"
table = "crates"
message = "{operation} on `{table}`"

[[custom_rules]]
kind = "statement"
name = "no-function-drops"
code = "ACME011"
operation = "drop_function"
table = "semver_*"
message = "{operation} of `{table}`"
"#;
    let c = Config::from_toml_str("deployclaw.toml", toml).unwrap();
    let registry = Registry::for_config(&c).unwrap();
    let sql = "\
SET lock_timeout = '2s';
DROP TRIGGER t1 ON crates;
DROP TRIGGER t2 ON users;
DROP FUNCTION semver_ord(text), other_fn;
";
    let m = parse("m.sql", sql, &c.parse_options()).unwrap();
    let got: Vec<(u32, String)> = registry
        .lint(&m, &c)
        .into_iter()
        .filter(|f| f.code.starts_with("ACME"))
        .map(|f| (f.location.as_ref().unwrap().line, f.message))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, "drop_trigger on `crates`".to_string()),
            (4, "drop_function of `semver_ord`".to_string()),
        ]
    );
}

/// A probe that could change the shard or leak a credential is refused when the file is read,
/// and the error points at the offending place *inside* the `sql` string, whatever TOML string
/// form holds it (basic with escapes, literal, multi-line basic with a line-ending backslash,
/// multi-line literal).
#[test]
fn hostile_probe_sql_is_refused_at_its_place_in_the_file() {
    let rule = |sql: &str| {
        format!(
            "# probes\n[[custom_rules]]\nkind = \"probe\"\nname = \"p\"\ncode = \"X1\"\nmessage = \"m\"\nsql = {sql}\n"
        )
    };
    let cases = [
        r#""SELECT pg_create_physical_replication_slot('s')""#.to_string(),
        r#""SELECT count(*) FROM {schema}.t WHERE pg_stat_reset() IS NULL""#.to_string(),
        r#""SELECT \"x\", pg_terminate_backend(42) FROM {schema}.t""#.to_string(),
        "'SELECT 1 FROM {schema}.t WHERE pg_advisory_lock(7) IS NOT NULL'".to_string(),
        "\"\"\"\nSELECT rolname,\n       rolpassword\n  FROM pg_authid\"\"\"".to_string(),
        "'''\n  SELECT usename, passwd\n  FROM pg_catalog.pg_shadow'''".to_string(),
        "\"\"\"SELECT 1 \\\n    FROM {schema}.t, pg_read_file('/etc/passwd')\"\"\"".to_string(),
        r#""SELECT lo_get(16385)""#.to_string(),
        r#""WITH d AS (DELETE FROM {schema}.t RETURNING *) SELECT * FROM d""#.to_string(),
        r#""SELECT * FROM {schema}.t FOR UPDATE""#.to_string(),
        r#""SELECT * INTO stolen FROM {schema}.t""#.to_string(),
        r#""SELECT 1; DROP TABLE t""#.to_string(),
        r#""DELETE FROM {schema}.t""#.to_string(),
        "'''\nSELECT id\n  FROM {schema}.t\n WHERE x = pg_catalog.set_config('a.b', 'c', false)'''"
            .to_string(),
        r#""SELECT \u00e9t\u00E9, dblink('h', 'q') FROM {schema}.t""#.to_string(),
    ];
    let mut text = Vec::new();
    for sql in &cases {
        let toml = rule(sql);
        let e = config_err(&toml);
        let GatesError::InvalidConfigValue {
            line, column, key, ..
        } = &e
        else {
            panic!("{sql}: unexpected error {e:?}");
        };
        assert_eq!(key, "custom_rules.sql", "{e}");
        assert!(*line >= 7, "{sql}: {e}");
        // What the position points at in the file.
        let at: String = toml
            .lines()
            .nth(*line as usize - 1)
            .unwrap()
            .chars()
            .skip(*column as usize - 1)
            .take(12)
            .collect();
        text.push(format!("{e}\n    points at: {at}"));
    }
    insta::assert_snapshot!(text.join("\n"));
}

/// An honest probe (a count of NULLs, a join of the tenant's tables, catalog sizes) is accepted.
#[test]
fn honest_probe_sql_is_accepted() {
    for sql in [
        "SELECT count(*) AS nulls FROM {schema}.payments WHERE paid_at IS NULL HAVING count(*) > 0",
        "SELECT o.id FROM {schema}.orders o JOIN {schema}.payments p ON p.order_id = o.id WHERE lower(p.currency) <> 'eur';",
        "SELECT pg_total_relation_size('{schema}.payments') AS bytes WHERE now() > '2000-01-01'",
    ] {
        let toml = format!(
            "[[custom_rules]]\nkind = \"probe\"\nname = \"p\"\ncode = \"X1\"\nmessage = \"m\"\nsql = \"{sql}\"\n"
        );
        let c = Config::from_toml_str("deployclaw.toml", &toml)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(c.probe_rules().len(), 1);
    }
}

#[test]
fn testing_helpers_check_a_configured_statement_rule() {
    let c = Config::from_toml_str("deployclaw.toml", CONFIG).unwrap();
    let registry = Registry::for_config(&c).unwrap();
    let findings = gates::testing::lint_sql_with(&registry, &c, MIGRATION);
    let custom: Vec<_> = findings
        .into_iter()
        .filter(|f| f.code.starts_with("ACME") || f.code == "DC801")
        .collect();
    // by name or by code
    gates::testing::assert_findings(&custom, &[("ACME001", 2), ("no-tmp-tables", 5)]);
}

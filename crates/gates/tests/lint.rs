//! `Registry::lint` behaviour: inline ignores, ordering, custom rules, version-aware rules and
//! cross-statement tracking.

use gates::migration_parser::{Operation, PgVersion, parse};
use gates::{Config, Finding, GateRule, GatesError, Registry, RuleContext, RuleMeta, Severity};

fn lint_with(sql: &str, config: &Config) -> Vec<Finding> {
    let m = parse("m.sql", sql, &config.parse_options()).unwrap();
    Registry::builtin().lint(&m, config)
}

fn lint(sql: &str) -> Vec<Finding> {
    lint_with(sql, &Config::default())
}

fn on_pg(v: u32) -> Config {
    let mut c = Config::default();
    c.pg_version = Some(PgVersion(v));
    c
}

fn rules(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.rule.as_str()).collect()
}

#[test]
fn inline_ignore_by_name_code_and_all() {
    let sql = "\
SET lock_timeout = '2s';
-- deployclaw:ignore require-concurrent-index
CREATE INDEX a_idx ON orders (a);
-- deployclaw:ignore DC101
CREATE INDEX b_idx ON orders (b);
CREATE INDEX c_idx ON orders (c); -- deployclaw:ignore all
CREATE INDEX d_idx ON orders (d);
";
    let f = lint(sql);
    assert_eq!(rules(&f), vec!["require-concurrent-index"]);
    assert_eq!(f[0].location.as_ref().unwrap().line, 7);
}

#[test]
fn inline_ignore_only_silences_the_named_rule() {
    let sql = "\
-- deployclaw:ignore dropping-table
DROP TABLE audit_log;
";
    assert_eq!(rules(&lint(sql)), vec!["missing-lock-timeout"]);
}

#[test]
fn file_level_ignore() {
    let sql = "\
-- deployclaw:ignore-file ban-truncate, DC501
TRUNCATE sessions;
DROP TABLE audit_log;
";
    assert_eq!(rules(&lint(sql)), vec!["dropping-table"]);
}

#[test]
fn findings_are_sorted_by_location_and_carry_it() {
    let sql = "ALTER TABLE users DROP COLUMN a;\n  CREATE INDEX i ON t (x);\n";
    let f = lint(sql);
    let locs: Vec<(u32, u32, &str)> = f
        .iter()
        .map(|f| {
            (
                f.location.as_ref().unwrap().line,
                f.location.as_ref().unwrap().column,
                f.code.as_str(),
            )
        })
        .collect();
    assert_eq!(
        locs,
        vec![
            (1, 1, "DC301"),
            (1, 1, "DC501"),
            (2, 3, "DC101"),
            (2, 3, "DC501")
        ]
    );
    assert_eq!(f[2].statement.as_deref(), Some("CREATE INDEX i ON t (x)"));
    assert_eq!(f[2].location.as_ref().unwrap().statement, 1);
}

#[test]
fn unparsed_statement_includes_the_parser_error() {
    let f = lint("SET lock_timeout = '1s';\nALTER TABLE orders FROBNICATE;\n");
    assert_eq!(rules(&f), vec!["unparsed-statement"]);
    assert_eq!(f[0].code, "DC901");
    assert_eq!(f[0].severity, Severity::Yellow);
    assert!(f[0].message.contains("FROBNICATE"), "{}", f[0].message);
}

struct NoTmpTables;

impl GateRule for NoTmpTables {
    fn meta(&self) -> RuleMeta<'_> {
        RuleMeta::new("ACME001", "no-tmp-tables", Severity::Info)
    }
    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        ctx.operations()
            .filter_map(|(stmt, op)| match op {
                Operation::CreateTable { table, .. } if table.name.starts_with("tmp_") => {
                    Some(ctx.finding(self, stmt, format!("`{table}` looks temporary")))
                }
                _ => None,
            })
            .collect()
    }
}

#[test]
fn custom_rules_register_and_obey_config() {
    let mut reg = Registry::builtin();
    reg.register(Box::new(NoTmpTables)).unwrap();
    assert!(reg.get("acme001").is_some());
    let dup = reg.register(Box::new(NoTmpTables)).unwrap_err();
    assert!(matches!(
        dup,
        GatesError::DuplicateRule { clash: "name", .. }
    ));

    let m = parse("m.sql", "CREATE TABLE tmp_x (id int);", &Default::default()).unwrap();
    let f = reg.lint(&m, &Config::default());
    assert_eq!(rules(&f), vec!["no-tmp-tables"]);
    assert_eq!(f[0].severity, Severity::Info);

    let c = Config::from_toml_str("d.toml", "[rules.severity]\nno-tmp-tables = \"red\"\n").unwrap();
    reg.check_config(&c).unwrap();
    assert_eq!(reg.lint(&m, &c)[0].severity, Severity::Red);
    let c = Config::from_toml_str("d.toml", "[rules]\ndisable = [\"ACME001\"]\n").unwrap();
    assert!(reg.lint(&m, &c).is_empty());
}

#[test]
fn setting_not_null_is_version_aware() {
    let sql = "\
SET lock_timeout = '2s';
ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
";
    assert!(lint_with(sql, &on_pg(12)).is_empty());
    let f = lint_with(sql, &on_pg(11));
    assert_eq!(rules(&f), vec!["setting-not-null"]);
    assert!(
        f[0].help
            .as_deref()
            .unwrap_or("")
            .contains("PostgreSQL 11 always scans")
    );
    // A dropped proof no longer counts.
    let dropped = sql.replace(
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
        "ALTER TABLE users DROP CONSTRAINT users_email_nn;\nALTER TABLE users ALTER COLUMN email SET NOT NULL;",
    );
    assert_eq!(
        rules(&lint_with(&dropped, &on_pg(15))),
        vec!["setting-not-null"]
    );
    // A proof on another column does not count.
    let other = sql.replace("COLUMN email SET", "COLUMN phone SET");
    assert_eq!(
        rules(&lint_with(&other, &on_pg(15))),
        vec!["setting-not-null"]
    );
}

#[test]
fn defaults_are_version_aware() {
    let sql = "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT 'en';\n";
    assert!(lint_with(sql, &on_pg(11)).is_empty());
    assert_eq!(
        rules(&lint_with(sql, &on_pg(10))),
        vec!["adding-volatile-default"]
    );
    let volatile = "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();\n";
    assert_eq!(
        rules(&lint_with(volatile, &on_pg(17))),
        vec!["adding-volatile-default"]
    );
}

#[test]
fn enum_value_in_transaction_is_version_aware() {
    let sql = "\
SET lock_timeout = '2s';
BEGIN;
ALTER TYPE order_status ADD VALUE 'refunded';
COMMIT;
";
    assert_eq!(
        rules(&lint_with(sql, &on_pg(11))),
        vec!["enum-value-in-transaction"]
    );
    assert!(lint_with(sql, &on_pg(12)).is_empty());
    let used = sql.replace(
        "COMMIT;",
        "UPDATE orders SET status = 'refunded' WHERE id = 7;\nCOMMIT;",
    );
    let f = lint_with(&used, &on_pg(15));
    assert_eq!(rules(&f), vec!["enum-value-in-transaction"]);
    assert!(f[0].message.contains("55P04"), "{}", f[0].message);
    // A type created in the same transaction may be extended there.
    let created =
        "BEGIN;\nCREATE TYPE mood AS ENUM ('ok');\nALTER TYPE mood ADD VALUE 'meh';\nCOMMIT;\n";
    assert!(lint_with(created, &on_pg(11)).is_empty());
}

#[test]
fn wrap_file_mode_puts_concurrent_statements_in_a_transaction() {
    let sql = "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY i ON orders (a);\n";
    assert!(lint(sql).is_empty());
    let c = Config::from_toml_str("d.toml", "transaction_mode = \"wrap-file\"\n").unwrap();
    let f = lint_with(sql, &c);
    assert_eq!(rules(&f), vec!["concurrent-in-transaction"]);
    assert!(f[0].help.as_deref().unwrap_or("").contains("wrap-file"));
}

#[test]
fn renames_are_followed() {
    // A new table renamed is still new; an existing table renamed is still existing.
    let sql = "\
SET lock_timeout = '2s';
CREATE TABLE staging (id int);
ALTER TABLE staging RENAME TO imports;
CREATE INDEX imports_id_idx ON imports (id);
ALTER TABLE old_orders RENAME TO orders_v2;
CREATE INDEX orders_v2_id_idx ON orders_v2 (id);
";
    let f = lint(sql);
    assert_eq!(
        rules(&f),
        vec!["renaming-table", "require-concurrent-index"]
    );
    assert_eq!(f[1].location.as_ref().unwrap().line, 6);
}

#[test]
fn a_table_dropped_and_recreated_is_new() {
    let sql = "\
SET lock_timeout = '2s';
CREATE TABLE t (id int);
DROP TABLE t;
CREATE TABLE t (id int, v text);
ALTER TABLE t ADD COLUMN w text NOT NULL;
";
    assert!(lint(sql).is_empty());
}

#[test]
fn multiple_exclusive_locks_counts_a_renamed_table_once() {
    let sql = "\
SET lock_timeout = '2s';
BEGIN;
ALTER TABLE orders ADD COLUMN a int;
ALTER TABLE orders RENAME TO purchases;
ALTER TABLE purchases ADD COLUMN b int;
COMMIT;
";
    assert_eq!(rules(&lint(sql)), vec!["renaming-table"]);
    let two = "SET lock_timeout = '2s';\nDROP TABLE a, b;\n";
    assert_eq!(
        rules(&lint(two)),
        vec![
            "multiple-exclusive-locks",
            "dropping-table",
            "dropping-table"
        ]
    );
}

#[test]
fn explain_returns_the_doc_comment() {
    let reg = Registry::builtin();
    let text = reg.explain("DC101").unwrap();
    assert_eq!(reg.explain("require-concurrent-index"), Some(text.clone()));
    assert_eq!(reg.explain("no-such-rule"), None);
    assert!(text.starts_with("# require-concurrent-index (DC101)\n\nDefault severity: yellow\n"));
    assert!(text.contains("\n## Why is this bad?\n"));
    assert!(
        text.contains("CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);")
    );
}

#[test]
fn missing_lock_timeout_fires_once_per_table_per_transaction() {
    let sql = "\
BEGIN;
ALTER TABLE users ADD COLUMN a int;
ALTER TABLE users ADD COLUMN b int;
ALTER TABLE orders ADD COLUMN c int;
COMMIT;
ALTER TABLE users ADD COLUMN d int;
";
    let lines: Vec<u32> = lint(sql)
        .iter()
        .filter(|f| f.rule == "missing-lock-timeout")
        .map(|f| f.location.as_ref().unwrap().line)
        .collect();
    assert_eq!(lines, vec![2, 4, 6]);
}

#[test]
fn multiple_exclusive_locks_ignores_drops_of_unknown_indexes() {
    let sql = "\
SET lock_timeout = '2s';
BEGIN;
ALTER TABLE users ADD COLUMN a int;
DROP INDEX users_a_idx;
COMMIT;
";
    assert_eq!(rules(&lint(sql)), vec!["require-concurrent-index-drop"]);
}

#[test]
fn uncommitted_transaction_handles_every_end_form_and_wrap_file() {
    let open = "SET lock_timeout = '2s';\nBEGIN;\nALTER TABLE orders ADD COLUMN note text;\n";
    let f = lint(open);
    assert_eq!(rules(&f), vec!["uncommitted-transaction"]);
    let at = f[0].location.as_ref().expect("points at the BEGIN");
    assert_eq!((at.line, at.column), (2, 1));
    assert!(
        f[0].message.contains("1 statement after it"),
        "{}",
        f[0].message
    );
    // Closed by every spelling of COMMIT / ROLLBACK, and by PREPARE TRANSACTION.
    for end in [
        "COMMIT;",
        "commit work;",
        "END;",
        "END TRANSACTION;",
        "ROLLBACK;",
        "ABORT;",
        "COMMIT AND NO CHAIN;",
        "PREPARE TRANSACTION 'm1';",
    ] {
        let sql = format!("{open}{end}\n");
        let f = lint(&sql);
        // (PREPARE TRANSACTION is also `unparsed-statement`: sqlparser does not know it.)
        assert!(
            !rules(&f).contains(&"uncommitted-transaction"),
            "{end}: {f:?}"
        );
    }
    // ROLLBACK TO SAVEPOINT and COMMIT PREPARED do not end the block.
    for not_end in ["ROLLBACK TO SAVEPOINT s;", "COMMIT PREPARED 'x';"] {
        let sql = format!("{open}SAVEPOINT s;\n{not_end}\n");
        assert!(
            rules(&lint(&sql)).contains(&"uncommitted-transaction"),
            "{not_end}"
        );
    }
    // AND CHAIN opens the next transaction at once: the finding points at it.
    let chained = format!("{open}COMMIT AND CHAIN;\nALTER TABLE orders ADD COLUMN b text;\n");
    let f = lint(&chained);
    assert_eq!(rules(&f), vec!["uncommitted-transaction"]);
    assert_eq!(f[0].location.as_ref().map(|l| l.line), Some(4));
    // A BEGIN nested in an open block is a no-op: the outer BEGIN is reported.
    let nested = format!("{open}BEGIN;\n");
    assert_eq!(lint(&nested)[0].location.as_ref().map(|l| l.line), Some(2));
    // START TRANSACTION opens a block too.
    let start = "SET lock_timeout = '2s';\nSTART TRANSACTION;\n";
    assert_eq!(rules(&lint(start)), vec!["uncommitted-transaction"]);
    // The runner wraps the file and commits at the end: nothing to report.
    let c = Config::from_toml_str("d.toml", "transaction_mode = \"wrap-file\"\n").unwrap();
    assert!(lint_with(open, &c).is_empty());
}

#[test]
fn findings_past_the_per_rule_limit_are_summed_up_in_one() {
    let n = gates::MAX_FINDINGS_PER_RULE + 500;
    let mut sql = String::from("SET lock_timeout = '2s';\n");
    for i in 0..n {
        sql.push_str(&format!("CREATE INDEX IF NOT EXISTS i{i} ON orders (a);\n"));
    }
    let f = lint(&sql);
    let of_rule: Vec<&Finding> = f
        .iter()
        .filter(|f| f.rule == "require-concurrent-index")
        .collect();
    // The first MAX listed one by one, then one finding for the other 500.
    assert_eq!(of_rule.len(), gates::MAX_FINDINGS_PER_RULE + 1);
    let last = of_rule[gates::MAX_FINDINGS_PER_RULE];
    assert_eq!(last.severity, Severity::Yellow);
    // Statement 1,001 of the rule is on line 1,002 (after the SET).
    let first_omitted = gates::MAX_FINDINGS_PER_RULE as u32 + 2;
    assert_eq!(last.location.as_ref().unwrap().line, first_omitted);
    assert!(
        last.message.starts_with(&format!(
            "500 more `require-concurrent-index` findings (lines {first_omitted} to {}) are not listed",
            n + 1
        )),
        "{}",
        last.message
    );
    // The listed ones are the first, in file order.
    assert_eq!(of_rule[0].location.as_ref().unwrap().line, 2);
}

//! Helpers for authors of custom rules: lint a snippet of SQL with a registry and compare the
//! findings with what the rule should report, without a database.
//!
//! ```
//! use gates::testing::{assert_findings, lint_sql, registry_with};
//! use gates::{Finding, GateRule, RuleContext, RuleMeta, Severity};
//! use gates::migration_parser::Operation;
//!
//! struct NoTmpTables;
//!
//! impl GateRule for NoTmpTables {
//!     fn meta(&self) -> RuleMeta<'_> {
//!         RuleMeta::new("ACME001", "no-tmp-tables", Severity::Yellow)
//!     }
//!     fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
//!         ctx.operations()
//!             .filter_map(|(stmt, op)| match op {
//!                 Operation::CreateTable { table, .. } if table.name.starts_with("tmp_") => {
//!                     Some(ctx.finding(self, stmt, format!("table `{table}` looks temporary")))
//!                 }
//!                 _ => None,
//!             })
//!             .collect()
//!     }
//! }
//!
//! let findings = lint_sql(
//!     &registry_with(NoTmpTables),
//!     "CREATE TABLE users (id int);\nCREATE TABLE tmp_import (id int);",
//! );
//! assert_findings(&findings, &[("no-tmp-tables", 2)]);
//! ```

use crate::{Config, Finding, GateRule, Registry};

/// A registry holding only `rule` (no built-in rules), to test one rule alone.
pub fn registry_with(rule: impl GateRule + 'static) -> Registry {
    let mut r = Registry::empty();
    // An empty registry accepts any one rule.
    let _ = r.register(Box::new(rule));
    r
}

/// Parse `sql` as `test.sql` with the default configuration and run `registry` on it (static
/// rules; per-shard rules need a [`RuleContext`](crate::RuleContext) with evidence — build one
/// with [`RuleContext::with_shard`](crate::RuleContext::with_shard) and
/// `evidence::ShardEvidence::new`).
///
/// # Panics
///
/// When `sql` is not SQL text at all (binary, an unterminated quote): a test helper, the
/// message names the place.
pub fn lint_sql(registry: &Registry, sql: &str) -> Vec<Finding> {
    lint_sql_with(registry, &Config::default(), sql)
}

/// [`lint_sql`] with a configuration (PostgreSQL version, transaction mode, disabled rules).
///
/// # Panics
///
/// As [`lint_sql`].
pub fn lint_sql_with(registry: &Registry, config: &Config, sql: &str) -> Vec<Finding> {
    match migration_parser::parse("test.sql", sql, &config.parse_options()) {
        Ok(m) => registry.lint(&m, config),
        Err(e) => panic!("lint_sql: the test SQL is not SQL text: {e}"),
    }
}

/// Assert that `findings` are exactly `expected`: `(rule name or code, 1-based line)` pairs, in
/// any order (a finding without a location has line 0).
///
/// # Panics
///
/// When they differ, with both lists and every finding's message.
pub fn assert_findings(findings: &[Finding], expected: &[(&str, u32)]) {
    let line = |f: &Finding| f.location.as_ref().map_or(0, |l| l.line);
    let mut got: Vec<(String, u32)> = findings.iter().map(|f| (f.rule.clone(), line(f))).collect();
    let mut want: Vec<(String, u32)> = expected
        .iter()
        .map(|(rule, l)| {
            let name = findings
                .iter()
                .find(|f| f.code.eq_ignore_ascii_case(rule))
                .map_or_else(|| rule.to_string(), |f| f.rule.clone());
            (name, *l)
        })
        .collect();
    got.sort();
    want.sort();
    if got != want {
        let details: Vec<String> = findings
            .iter()
            .map(|f| format!("  {} ({}) line {}: {}", f.rule, f.code, line(f), f.message))
            .collect();
        panic!(
            "findings differ\n  expected: {want:?}\n  got:      {got:?}\nfindings:\n{}",
            details.join("\n")
        );
    }
}

//! Writing your own gate rules in Rust, against the public API of the `gates` crate.
//!
//! Two rules, registered next to the built-in ones in one `Registry`:
//!
//! * `prefer-jsonb` (static): a `json` column should be `jsonb`;
//! * `big-table-touch` (per shard): a statement that locks a table larger than 1 GB on *this*
//!   shard, from the simulator's evidence.
//!
//! Run it with `cargo run --example custom_rule`. It asserts what it prints, so a change in the
//! API or in the rules' behaviour fails loudly (CI runs it; `crates/gates/tests/example.rs`
//! runs the same code as a test).

use gates::evidence::{ShardEvidence, TableStats};
use gates::migration_parser::{Operation, parse};
use gates::testing::{assert_findings, lint_sql, registry_with};
use gates::{
    Config, Finding, Gate, GateRule, Registry, RuleContext, RuleMeta, RuleScope, Severity,
    evaluate_shard,
};

/// A static rule: `json` columns should be `jsonb` (indexable, compact, no duplicate keys).
pub struct PreferJsonb;

impl GateRule for PreferJsonb {
    fn meta(&self) -> RuleMeta<'_> {
        RuleMeta::new("ACME101", "prefer-jsonb", Severity::Yellow).with_docs(
            " ## What it does\n Flags columns of type `json`.\n\n ## Why is this bad?\n `json` keeps \
             the text as is: no GIN index, duplicate keys kept, re-parsed on every access.\n\n \
             ## Safe alternative\n ```sql\n ALTER TABLE events ADD COLUMN payload jsonb;\n ```\n",
        )
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let columns: Vec<(&str, &str)> = match op {
                Operation::AddColumn { column, .. } => {
                    vec![(column.name.as_str(), column.data_type.as_str())]
                }
                Operation::CreateTable { columns, .. } => columns
                    .iter()
                    .map(|c| (c.name.as_str(), c.data_type.as_str()))
                    .collect(),
                Operation::AlterColumnType {
                    column, new_type, ..
                } => vec![(column.as_str(), new_type.as_str())],
                _ => continue,
            };
            for (name, ty) in columns {
                if ty == "json" {
                    out.push(
                        ctx.finding(self, stmt, format!("column `{name}` is `json`"))
                            .with_help(format!("declare `{name}` as jsonb")),
                    );
                }
            }
        }
        out
    }
}

/// A per-shard rule: a statement that locks a table of more than `limit_bytes` on this shard.
pub struct BigTableTouch {
    /// Size limit, bytes.
    pub limit_bytes: i64,
}

impl GateRule for BigTableTouch {
    fn meta(&self) -> RuleMeta<'_> {
        RuleMeta::new("ACME102", "big-table-touch", Severity::Info).with_scope(RuleScope::Shard)
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(evidence) = ctx.shard_evidence() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            for lock in ctx.lock_facts(op) {
                let Some(stats) = ctx.table_stats(&evidence.schema, &lock.relation.name) else {
                    continue;
                };
                if stats.total_bytes > self.limit_bytes {
                    out.push(
                        ctx.finding(
                            self,
                            stmt,
                            format!(
                                "takes {} on `{}.{}`, which is {} MB on shard {}",
                                lock.mode.sql_name(),
                                stats.schema,
                                stats.table,
                                stats.total_bytes / 1_000_000,
                                evidence.shard
                            ),
                        )
                        .with_evidence(serde_json::json!({ "total_bytes": stats.total_bytes })),
                    );
                }
            }
        }
        out
    }
}

const MIGRATION: &str = "\
SET lock_timeout = '2s';
ALTER TABLE events ADD COLUMN payload json;
CREATE TABLE audit (id bigint PRIMARY KEY, detail json, at timestamptz);
ALTER TABLE events ADD COLUMN kind text;
";

/// A shard as the simulator describes it: `events` is 4.2 GB there (built by hand with the
/// evidence builders; no database needed).
fn shard() -> ShardEvidence {
    let mut shard = ShardEvidence::new("tenant_0042", "tenant_0042").with_table(
        TableStats::new("tenant_0042", "events")
            .with_bytes(4_200_000_000, 3_900_000_000)
            .with_rows(52_000_000),
    );
    shard.instance = "db-1".into();
    shard.database = "app".into();
    shard.server_version = Some(16);
    shard
}

/// Lint the migration with the built-in rules plus the two custom ones, statically and for one
/// shard; check the outcome and return the lines the example prints.
pub fn run() -> Vec<String> {
    let config = Config::default();
    let migration = parse("m.sql", MIGRATION, &config.parse_options()).expect("migration parses");

    let mut registry = Registry::builtin();
    registry
        .register(Box::new(PreferJsonb))
        .expect("no clash with built-in rules");
    registry
        .register(Box::new(BigTableTouch {
            limit_bytes: 1_000_000_000,
        }))
        .expect("no clash with built-in rules");

    let mut lines = Vec::new();

    // The rule alone, as its unit test would check it (`gates::testing`).
    assert_findings(
        &lint_sql(&registry_with(PreferJsonb), MIGRATION),
        &[("prefer-jsonb", 2), ("ACME101", 3)],
    );

    // Static lint: the custom static rule fires twice, the per-shard one stays silent.
    let findings = registry.lint(&migration, &config);
    let jsonb: Vec<u32> = findings
        .iter()
        .filter(|f| f.rule == "prefer-jsonb")
        .map(|f| f.location.as_ref().map_or(0, |l| l.line))
        .collect();
    assert_eq!(jsonb, vec![2, 3], "prefer-jsonb fires on lines 2 and 3");
    assert!(!findings.iter().any(|f| f.rule == "big-table-touch"));
    for f in &findings {
        let line = f.location.as_ref().map_or(0, |l| l.line);
        lines.push(format!(
            "m.sql:{line}: {}[{}] {}",
            f.severity, f.code, f.message
        ));
    }

    // Configuration treats custom rules like built-ins.
    let strict = Config::from_toml_str(
        "deployclaw.toml",
        "[rules.severity]\nprefer-jsonb = \"red\"\n",
    )
    .expect("config parses");
    registry
        .check_config(&strict)
        .expect("prefer-jsonb is known");
    assert_eq!(
        Gate::from_findings(&registry.lint(&migration, &strict)),
        Gate::Red
    );

    // Per shard: the same registry, with the shard's evidence.
    let evidence = shard();
    let ctx = RuleContext::new(&migration, &config).with_shard(&evidence);
    let verdict = evaluate_shard(&registry, &ctx);
    let big: Vec<&Finding> = verdict
        .findings
        .iter()
        .filter(|f| f.rule == "big-table-touch")
        .collect();
    assert_eq!(big.len(), 2, "both ALTER TABLE events statements: {big:?}");
    assert!(
        big[0].message.contains("4200 MB on shard tenant_0042"),
        "{}",
        big[0].message
    );
    assert_eq!(
        verdict.gate,
        Gate::Yellow,
        "prefer-jsonb is yellow, big-table-touch info"
    );
    for f in &big {
        lines.push(format!(
            "{}: {}[{}] {}",
            verdict.shard, f.severity, f.code, f.message
        ));
    }
    lines.push(format!("shard {} gate: {}", verdict.shard, verdict.gate));
    lines
}

fn main() {
    for line in run() {
        println!("{line}");
    }
}

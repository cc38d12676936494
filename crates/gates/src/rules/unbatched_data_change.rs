use evidence::ProbeKind;
use migration_parser::{LockMode, Operation, QualifiedName, RowFilter, Statement};
use serde_json::json;

use super::shard_support::fmt_count;
use crate::{Finding, GateRule, RuleContext, RuleMeta, Severity, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags data changes inside the migration that are backfills of unknown size: `UPDATE` or
    /// `DELETE` without `WHERE`, `UPDATE` or `DELETE` whose `WHERE` is not a bounded batch, and
    /// `INSERT ... SELECT` backfills into an existing table. A `WHERE` is a bounded batch when
    /// it contains a `LIMIT` (`id IN (SELECT id ... LIMIT n)`, `ctid = ANY (ARRAY(SELECT ctid
    /// ... LIMIT n))`), a key range (`BETWEEN`, or a lower and an upper bound on one column
    /// joined by `AND`), or names rows by key (`id = 42`, `id IN (1, 2)`); anything else
    /// (`WHERE plan IS NULL`, `WHERE created_at < now() - interval '90 days'`) touches as many
    /// rows as match — on every shard a different number.
    ///
    /// Per shard, the finding carries the number of rows the statement touches there: for a
    /// `WHERE`, the planner's estimate (`EXPLAIN` in the read-only probe transaction, nothing
    /// executed) or, when that estimate is small, an exact `count(*)` of the same `WHERE` under
    /// the probe's `statement_timeout` (probe `row_estimate`); without `WHERE`, the table's row
    /// estimate. Where that figure is below `[data_changes] max_unbatched_rows` (default
    /// 10,000), the finding is info on that shard. The lock budget does not demote it: its locks
    /// (`ROW EXCLUSIVE` and row locks) block no reads, so the lock-time estimate says nothing
    /// about its size — the row figure does.
    ///
    /// ## Why is this bad?
    /// The statement runs as one transaction over every row it matches: it takes a `ROW
    /// EXCLUSIVE` lock and a row lock on every row it changes, held until commit, so concurrent
    /// updates of those rows wait; it writes a dead tuple per row (bloat, replica lag, WAL
    /// spikes); and in a transactional migration it extends every other lock the migration
    /// holds. Runtime grows with the matching rows — different on every shard. Every PostgreSQL
    /// version.
    ///
    /// Severity **yellow**: it succeeds, but its duration and blocking are unbounded (info on a
    /// shard where it touches fewer rows than the configured threshold).
    ///
    /// ## Safe alternative
    /// Backfill in small batches, each in its own transaction, outside the schema migration:
    /// ```sql
    /// UPDATE users SET plan = 'free'
    /// WHERE id IN (SELECT id FROM users WHERE plan IS NULL LIMIT 5000);
    /// -- repeat until 0 rows
    /// ```
    pub struct UnbatchedDataChange {
        code: "DC205",
        name: "unbatched-data-change",
        severity: Yellow,
    }
}

/// The rows a statement touches on this shard, when the shard's evidence says.
struct Rows {
    count: u64,
    exact: bool,
    basis: &'static str,
    relation: String,
}

impl GateRule for UnbatchedDataChange {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let row_lock = LockMode::RowExclusive.sql_name();
        for (stmt, op) in ctx.operations() {
            let (table, verb, filter) = match op {
                Operation::Update { table, filter, .. } => (table, "UPDATE", filter.as_ref()),
                Operation::Delete { table, filter, .. } => (table, "DELETE", filter.as_ref()),
                Operation::Insert {
                    table,
                    from_select: true,
                } => {
                    if !ctx.is_new_table(table, stmt.index) {
                        out.push(self.insert_select(ctx, stmt, table, row_lock));
                    }
                    continue;
                }
                _ => continue,
            };
            // A system catalog (`UPDATE pg_index SET indisvalid = ...`) holds a few rows per object.
            let catalog =
                table.schema.as_deref() == Some("pg_catalog") || table.name.starts_with("pg_");
            if catalog || filter.is_some_and(|f| f.batched) || ctx.is_new_table(table, stmt.index) {
                continue;
            }
            let whole = match filter {
                None => format!("{verb} of every row of `{table}` (no WHERE)"),
                Some(f) => format!(
                    "{verb} of `{table}` WHERE {} is not a bounded batch (no LIMIT, key range or key lookup): a \
                     backfill of unknown size that",
                    short(&f.where_sql)
                ),
            };
            let (rows, matched) = if filter.is_some() {
                ("every row it changes", "every row it matches")
            } else {
                ("every row", "every row")
            };
            let verb_tail = if verb == "UPDATE" {
                format!(", and rewrites {matched} (bloat, WAL, replica lag)")
            } else {
                String::new()
            };
            let message = format!(
                "{whole} runs as one transaction: it holds a {row_lock} lock and a row lock on {rows} until \
                 commit, blocking concurrent updates of those rows{verb_tail}"
            );
            let figure = rows_on_shard(ctx, stmt.index, table, filter);
            out.push(self.with_rows(ctx, ctx.finding(self, stmt, message), figure));
        }
        out
    }
}

impl UnbatchedDataChange {
    fn insert_select(
        &self,
        ctx: &RuleContext<'_>,
        stmt: &Statement,
        table: &QualifiedName,
        row_lock: &str,
    ) -> Finding {
        ctx.finding(
            self,
            stmt,
            format!(
                "INSERT ... SELECT into `{table}` copies rows in one transaction whose duration grows with the \
                 source table, holding a {row_lock} lock on `{table}` and every other lock of the migration \
                 until commit"
            ),
        )
        .with_help(HELP)
    }

    /// The finding with this shard's figure (and info under the threshold).
    fn with_rows(&self, ctx: &RuleContext<'_>, f: Finding, rows: Option<Rows>) -> Finding {
        let f = f.with_help(HELP);
        let Some(rows) = rows else {
            return f;
        };
        let threshold = ctx.config().data_changes.max_unbatched_rows;
        let approx = if rows.exact { "" } else { "≈ " };
        let mut message = format!(
            "{} On this shard: {approx}{} rows of `{}` ({}).",
            f.message,
            fmt_count(rows.count as i64),
            rows.relation,
            rows.basis
        );
        let under = rows.count < threshold;
        if under {
            message.push_str(&format!(
                " That is under the `[data_changes] max_unbatched_rows` threshold of {threshold}."
            ));
        }
        let mut f = f.with_evidence(json!({
            "rows": rows.count,
            "exact": rows.exact,
            "basis": rows.basis,
            "relation": rows.relation,
            "max_unbatched_rows": threshold,
        }));
        f.message = message;
        if under && f.severity == Severity::Yellow {
            f.severity = Severity::Info;
        }
        f
    }
}

const HELP: &str = "Backfill in batches of a few thousand rows (by key range or `WHERE id IN (SELECT ... LIMIT n)`), \
                    each in its own transaction, outside the schema migration";

/// The condition on one line, at most 80 characters.
fn short(sql: &str) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match one.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &one[..i]),
        None => one,
    }
}

/// The rows statement `index` touches on this shard: its `row_estimate` probe for a `WHERE`,
/// the table's row estimate without one.
fn rows_on_shard(
    ctx: &RuleContext<'_>,
    index: usize,
    table: &QualifiedName,
    filter: Option<&RowFilter>,
) -> Option<Rows> {
    let ev = ctx.shard_evidence()?;
    if filter.is_some() {
        let p = ev.probes.iter().find(|p| {
            p.kind == ProbeKind::RowEstimate
                && p.statement_index == Some(index)
                && p.skipped.is_none()
                && p.error.is_none()
        })?;
        return Some(Rows {
            count: p.count,
            exact: p.exact,
            basis: if p.exact {
                "exact count of the same WHERE"
            } else {
                "planner estimate of the same WHERE, EXPLAIN"
            },
            relation: format!("{}.{}", p.schema, p.table),
        });
    }
    let schema = table
        .schema
        .clone()
        .or_else(|| ctx.shard_schema().map(str::to_string))?;
    let stats = ctx.table_stats(&schema, &table.name)?;
    Some(Rows {
        count: stats.row_estimate.filter(|n| *n >= 0)? as u64,
        exact: false,
        basis: "the table's row estimate: every row",
        relation: format!("{schema}.{}", table.name),
    })
}

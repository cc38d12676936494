use migration_parser::{LockMode, Operation};

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags data changes inside the migration that touch a whole existing table in one
    /// statement: `UPDATE` or `DELETE` without `WHERE`, and `INSERT ... SELECT` backfills into an
    /// existing table.
    ///
    /// ## Why is this bad?
    /// The statement runs as one transaction over every row: it takes a `ROW EXCLUSIVE` lock and
    /// a row lock on every row it changes, held until commit, so concurrent updates of those rows
    /// wait; it writes a dead tuple per row (bloat, replica lag, WAL spikes); and in a
    /// transactional migration it extends every other lock the migration holds. Runtime grows
    /// with the table — different on every shard. Every PostgreSQL version.
    ///
    /// Severity **yellow**: it succeeds, but its duration and blocking are unbounded.
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
        duration: true,
    }
}

impl GateRule for UnbatchedDataChange {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let row_lock = LockMode::RowExclusive.sql_name();
        for (stmt, op) in ctx.operations() {
            let (table, message) = match op {
                Operation::Update {
                    table,
                    has_where: false,
                    ..
                } => (
                    table,
                    format!(
                        "UPDATE of every row of `{table}` (no WHERE) runs as one transaction: it holds a {row_lock} lock \
                         and a row lock on every row until commit, blocking concurrent updates of those rows, and \
                         rewrites every row (bloat, WAL, replica lag)"
                    ),
                ),
                Operation::Delete {
                    table,
                    has_where: false,
                } => (
                    table,
                    format!(
                        "DELETE of every row of `{table}` (no WHERE) runs as one transaction: it holds a {row_lock} lock \
                         and a row lock on every row until commit, blocking concurrent updates of those rows"
                    ),
                ),
                Operation::Insert {
                    table,
                    from_select: true,
                } => (
                    table,
                    format!(
                        "INSERT ... SELECT into `{table}` copies rows in one transaction whose duration grows with the \
                         source table, holding a {row_lock} lock on `{table}` and every other lock of the migration \
                         until commit"
                    ),
                ),
                _ => continue,
            };
            if ctx.is_new_table(table, stmt.index) {
                continue;
            }
            out.push(ctx.finding(self, stmt, message).with_help(
                "Backfill in batches of a few thousand rows (by key range or `WHERE id IN (SELECT ... LIMIT n)`), \
                 each in its own transaction, outside the schema migration",
            ));
        }
        out
    }
}

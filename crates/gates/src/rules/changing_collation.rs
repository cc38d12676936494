use migration_parser::{LockMode, Operation};

use super::{lock_on, lock_phrase};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `ALTER COLUMN ... TYPE ... COLLATE ...` on an existing table.
    ///
    /// ## Why is this bad?
    /// Changing a column's collation rebuilds every index on the column (and rewrites the table
    /// when the type changes too) while holding an `ACCESS EXCLUSIVE` lock, blocking all reads
    /// and writes (every PostgreSQL version). It also changes sort order and equality for the
    /// application, and a unique index can start to reject (or accept) values it did not before.
    ///
    /// Severity **yellow**: it succeeds, but blocks all traffic for the rebuild and changes
    /// behaviour.
    ///
    /// ## Safe alternative
    /// Leave the column alone and build the index you need with the collation, concurrently:
    /// ```sql
    /// CREATE INDEX CONCURRENTLY users_name_c_idx ON users (name COLLATE "C");
    /// ```
    /// or add a new column with the collation, backfill in batches and swap.
    pub struct ChangingCollation {
        code: "DC206",
        name: "changing-collation",
        severity: Yellow,
        duration: true,
    }
}

impl GateRule for ChangingCollation {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let Operation::AlterColumnType {
                table,
                column,
                collation: Some(collation),
                ..
            } = op
            else {
                continue;
            };
            if ctx.is_new_table(table, stmt.index) {
                continue;
            }
            let lock = lock_on(ctx, op, table, LockMode::AccessExclusive);
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "Changing the collation of `{table}`.`{column}` to {} rebuilds every index on the \
                         column while holding {}, and changes its sort order and equality",
                        super::ident(collation),
                        lock_phrase(lock, table)
                    ),
                )
                .with_help(format!(
                    "Build the index you need with the collation concurrently instead: \
                     `CREATE INDEX CONCURRENTLY ... ON {} ({} COLLATE {});`",
                    super::qname(table),
                    super::ident(column),
                    super::ident(collation)
                )),
            );
        }
        out
    }
}

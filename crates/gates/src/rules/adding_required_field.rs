use migration_parser::Operation;

use super::{ident, qname};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `ADD COLUMN ... NOT NULL` without a `DEFAULT` on an existing table (identity,
    /// serial and generated columns supply their own values and are not flagged). Not flagged
    /// either when the same transaction block emptied the table first (`DELETE FROM t` without
    /// `WHERE`, or `TRUNCATE t`) and nothing inserted since: the table has no rows then. (A row
    /// another session commits in between still fails the `ALTER`, which rolls the whole block
    /// back, `DELETE` included.)
    ///
    /// ## Why is this bad?
    /// Existing rows would get NULL in a column that forbids it, so on any shard where the table
    /// has rows the statement fails with `column "..." of relation "..." contains null values`
    /// (SQLSTATE 23502), on every PostgreSQL version. It only succeeds on empty tables — which
    /// differ from shard to shard.
    ///
    /// Severity **red**: the migration fails on every non-empty shard.
    ///
    /// (On PostgreSQL 11+ a constant default makes the column cheap: no rewrite. On 10 and older
    /// any default rewrites the table; `adding-volatile-default` reports that.)
    ///
    /// ## Safe alternative
    /// Give it a constant default (catalog-only on PostgreSQL 11+):
    /// ```sql
    /// ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';
    /// ```
    /// or add it nullable, backfill in batches, then make it NOT NULL through a validated
    /// `CHECK (plan IS NOT NULL)` (see `setting-not-null`).
    pub struct AddingRequiredField {
        code: "DC201",
        name: "adding-required-field",
        severity: Red,
    }
}

impl GateRule for AddingRequiredField {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let Operation::AddColumn { table, column, .. } = op else {
                continue;
            };
            if !column.not_null
                || column.default.is_some()
                || column.serial
                || column.identity
                || column.generated_stored
                || ctx.is_new_table(table, stmt.index)
                || ctx.emptied_in_transaction(table, stmt.index).is_some()
            {
                continue;
            }
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "ADD COLUMN `{}` NOT NULL without a DEFAULT fails on every shard where `{table}` has rows \
                         (ERROR: column \"{}\" of relation \"{}\" contains null values, SQLSTATE 23502)",
                        column.name, column.name, table.name
                    ),
                )
                .with_help(format!(
                    "Add a constant DEFAULT (no rewrite on PostgreSQL 11+): `ALTER TABLE {} ADD COLUMN {} {} NOT NULL DEFAULT <value>;` \
                     or add it nullable, backfill in batches, then SET NOT NULL via a validated CHECK",
                    qname(table),
                    ident(&column.name),
                    column.data_type
                )),
            );
        }
        out
    }
}

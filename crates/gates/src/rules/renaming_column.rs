use migration_parser::Operation;

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE ... RENAME COLUMN` on a table that existed before the migration.
    ///
    /// ## Why is this bad?
    /// The rename is instant (a brief `ACCESS EXCLUSIVE` lock), but application code that is
    /// running while the migration ships still uses the old name and fails with
    /// `column "..." does not exist` until it is redeployed — on every shard at once. Every
    /// PostgreSQL version.
    ///
    /// Severity **yellow**: the migration succeeds, but breaks running code unless a human has
    /// sequenced the deploy.
    ///
    /// ## Safe alternative
    /// Expand and contract: add the new column, write both, backfill, switch reads, then drop
    /// the old column in a later migration:
    /// ```sql
    /// ALTER TABLE users ADD COLUMN display_name text;
    /// -- app writes both columns; backfill display_name from name in batches;
    /// -- app reads display_name; later: ALTER TABLE users DROP COLUMN name;
    /// ```
    pub struct RenamingColumn {
        code: "DC303",
        name: "renaming-column",
        severity: Yellow,
    }
}

impl GateRule for RenamingColumn {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let Operation::RenameColumn {
                table,
                column,
                new_name,
            } = op
            else {
                continue;
            };
            if ctx.is_new_table(table, stmt.index) {
                continue;
            }
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "RENAME COLUMN `{column}` TO `{new_name}` on `{table}` breaks running application code that still \
                         uses `{column}` until it is redeployed"
                    ),
                )
                .with_help(format!(
                    "Expand and contract: add `{new_name}`, write both columns, backfill, switch reads, then drop \
                     `{column}` in a later migration"
                )),
            );
        }
        out
    }
}

use migration_parser::Operation;

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE ... RENAME TO` on a table that existed before the migration.
    ///
    /// ## Why is this bad?
    /// The rename is instant (a brief `ACCESS EXCLUSIVE` lock), but running application code
    /// still uses the old name and fails with `relation "..." does not exist` until it is
    /// redeployed, on every shard at once. Every PostgreSQL version.
    ///
    /// Severity **yellow**: the migration succeeds, but breaks running code unless a human has
    /// sequenced the deploy.
    ///
    /// ## Safe alternative
    /// Rename, and keep the old name working with an updatable view until every client has
    /// moved:
    /// ```sql
    /// BEGIN;
    /// ALTER TABLE customer RENAME TO customers;
    /// CREATE VIEW customer AS SELECT * FROM customers;
    /// COMMIT;
    /// ```
    pub struct RenamingTable {
        code: "DC304",
        name: "renaming-table",
        severity: Yellow,
    }
}

impl GateRule for RenamingTable {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let Operation::RenameTable { table, new_name } = op else {
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
                        "RENAME `{table}` TO `{new_name}` breaks running application code that still uses `{table}` \
                         until it is redeployed"
                    ),
                )
                .with_help(format!(
                    "Keep the old name working during the deploy: in the same transaction, \
                     `CREATE VIEW {} AS SELECT * FROM {};`, and drop the view once no client uses it",
                    super::qname(table),
                    super::ident(new_name)
                )),
            );
        }
        out
    }
}

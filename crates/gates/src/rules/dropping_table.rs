use migration_parser::Operation;

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `DROP TABLE` of a table that existed before the migration (tables the migration
    /// created itself may be dropped freely).
    ///
    /// ## Why is this bad?
    /// Every row of the table is gone on every shard; a rollback can recreate the table but not
    /// its data. With `CASCADE`, dependent views and foreign keys go too. Running code that
    /// uses the table fails at once. It takes an `ACCESS EXCLUSIVE` lock. Every PostgreSQL
    /// version.
    ///
    /// Severity **red**: irreversible data loss needs explicit approval.
    ///
    /// ## Safe alternative
    /// Stop using the table in the application first, rename it out of the way (reversible),
    /// and drop it in a later, approved migration:
    /// ```sql
    /// ALTER TABLE audit_log RENAME TO audit_log_retired;
    /// -- weeks later, with approval:
    /// DROP TABLE audit_log_retired;
    /// ```
    pub struct DroppingTable {
        code: "DC302",
        name: "dropping-table",
        severity: Red,
    }
}

impl GateRule for DroppingTable {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let Operation::DropTable { table, cascade, .. } = op else {
                continue;
            };
            if ctx.is_new_table(table, stmt.index) {
                continue;
            }
            let cascade = if *cascade {
                ", and CASCADE also drops the views and foreign keys that depend on it"
            } else {
                ""
            };
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "DROP TABLE `{table}` deletes all its rows on every shard (a rollback cannot restore them) and \
                         breaks running code that uses it{cascade}"
                    ),
                )
                .with_help(format!(
                    "Stop using `{table}` first, rename it out of the way (`ALTER TABLE {t} RENAME TO {t2};`, reversible) \
                     and drop it later with approval",
                    t = super::qname(table),
                    t2 = super::ident(&format!("{}_retired", table.name))
                )),
            );
        }
        out
    }
}

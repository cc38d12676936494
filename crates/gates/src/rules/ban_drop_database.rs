use migration_parser::Operation;

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `DROP DATABASE`, and says so louder for `DROP DATABASE ... WITH (FORCE)`, its most
    /// dangerous form.
    ///
    /// ## Why is this bad?
    /// It deletes a whole database — for a database-per-tenant fleet, a whole tenant — and
    /// cannot be rolled back (it cannot even run inside a transaction block). It needs exclusive
    /// access to the database: it fails while other sessions are connected, and since PostgreSQL
    /// 13 `WITH (FORCE)` terminates them. Every PostgreSQL version.
    ///
    /// Severity **red**: irreversible data loss; never part of a schema migration.
    ///
    /// ## Safe alternative
    /// Decommission tenants with an operator runbook (backup, verify, then drop), not with a
    /// migration applied to the fleet:
    /// ```sql
    /// -- runbook, not a migration:
    /// -- pg_dump -Fc tenant_0042 > tenant_0042.dump && dropdb tenant_0042
    /// ```
    pub struct BanDropDatabase {
        code: "DC306",
        name: "ban-drop-database",
        severity: Red,
    }
}

impl GateRule for BanDropDatabase {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        ctx.operations()
            .filter_map(|(stmt, op)| match op {
                Operation::DropDatabase { name, force } => Some(
                    ctx.finding(
                        self,
                        stmt,
                        format!(
                            "DROP DATABASE `{name}`{} deletes the whole database and every row in it; it cannot be rolled back",
                            if *force {
                                " WITH (FORCE) terminates every session connected to it, then"
                            } else {
                                ""
                            }
                        ),
                    )
                    .with_help("Remove it from the migration; decommission databases with a runbook (backup, verify, drop)"),
                ),
                _ => None,
            })
            .collect()
    }
}

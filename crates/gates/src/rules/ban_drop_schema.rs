use migration_parser::Operation;

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `DROP SCHEMA` of a schema the migration did not create itself.
    ///
    /// ## Why is this bad?
    /// In a schema-per-tenant fleet a schema *is* a tenant: dropping it (with `CASCADE`, every
    /// table, view, function and row in it) is irreversible data loss, and applied by fan-out it
    /// runs on every shard. It takes `ACCESS EXCLUSIVE` locks on everything it drops. Every
    /// PostgreSQL version.
    ///
    /// Severity **red**: irreversible data loss needs explicit approval.
    ///
    /// ## Safe alternative
    /// Decommission tenants with a runbook (dump, verify, drop), or rename the schema out of the
    /// way first (reversible):
    /// ```sql
    /// ALTER SCHEMA reporting RENAME TO reporting_retired;
    /// ```
    pub struct BanDropSchema {
        code: "DC307",
        name: "ban-drop-schema",
        severity: Red,
    }
}

impl GateRule for BanDropSchema {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let Operation::DropSchema { name, cascade, .. } = op else {
                continue;
            };
            if ctx.is_new_schema(name, stmt.index) {
                continue;
            }
            let cascade = if *cascade {
                " and, with CASCADE, every table, view and function in it"
            } else {
                ""
            };
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!("DROP SCHEMA `{name}` deletes the schema{cascade} on every shard; it cannot be rolled back"),
                )
                .with_help(format!(
                    "Rename it out of the way instead (`ALTER SCHEMA {} RENAME TO {};`, reversible) and drop it later \
                     with approval",
                    super::ident(name),
                    super::ident(&format!("{name}_retired"))
                )),
            );
        }
        out
    }
}

use migration_parser::Operation;

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `ALTER TYPE ... ADD VALUE` inside a transaction block when that fails: always on
    /// PostgreSQL 11 and older, and on 12+ when a later statement of the same transaction uses
    /// the new value. Enum types created in the same transaction are exempt.
    ///
    /// ## Why is this bad?
    /// Before PostgreSQL 12, `ALTER TYPE ... ADD VALUE` cannot run inside a transaction block
    /// (`ERROR: ALTER TYPE ... ADD cannot run inside a transaction block`, SQLSTATE 25001). Since
    /// 12 it can, but the new value cannot be used until the transaction commits:
    /// `ERROR: unsafe use of new value "..." of enum type ...` (SQLSTATE 55P04).
    ///
    /// Severity **red**: the migration fails.
    ///
    /// ## Safe alternative
    /// Add the value in its own transaction (outside `BEGIN ... COMMIT`, or in its own migration
    /// file when the runner wraps files), and use it afterwards:
    /// ```sql
    /// ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded';
    /// -- later transaction:
    /// UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;
    /// ```
    pub struct EnumValueInTransaction {
        code: "DC503",
        name: "enum-value-in-transaction",
        severity: Red,
    }
}

impl GateRule for EnumValueInTransaction {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let old_pg = ctx.pg_version().0 < 12;
        for (stmt, op) in ctx.operations() {
            let Operation::AddEnumValue { name, value, .. } = op else {
                continue;
            };
            if !stmt.tx.in_block
                || ctx.enum_created_in(name, stmt.index) == Some(stmt.tx.transaction)
            {
                continue;
            }
            if old_pg {
                out.push(
                    ctx.finding(
                        self,
                        stmt,
                        format!(
                            "ALTER TYPE `{name}` ADD VALUE '{value}' inside a transaction block fails on PostgreSQL {}: \
                             ERROR: ALTER TYPE ... ADD cannot run inside a transaction block (SQLSTATE 25001)",
                            ctx.pg_version()
                        ),
                    )
                    .with_help("Run it outside BEGIN ... COMMIT (or in its own migration file when the runner wraps files)"),
                );
                continue;
            }
            let literal = format!("'{}'", value.replace('\'', "''"));
            let user = ctx.statements().iter().find(|s| {
                s.index > stmt.index
                    && s.tx.transaction == stmt.tx.transaction
                    && s.sql.contains(&literal)
            });
            if let Some(user) = user {
                out.push(
                    ctx.finding(
                        self,
                        stmt,
                        format!(
                            "the new value '{value}' of `{name}` is used at line {} in the same transaction, which fails: \
                             ERROR: unsafe use of new value \"{value}\" of enum type {} (SQLSTATE 55P04)",
                            user.span.line, name.name
                        ),
                    )
                    .with_help("COMMIT after ADD VALUE and use the value in a later transaction"),
                );
            }
        }
        out
    }
}

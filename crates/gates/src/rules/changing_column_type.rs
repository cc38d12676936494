use migration_parser::{LockMode, Operation};

use super::{lock_on, lock_phrase};
use crate::types::{TypeChange, type_change};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `ALTER COLUMN ... TYPE` on an existing table unless the change is binary-coercible
    /// or a no-op (the parser's type-change table, checked against a real server): the same type
    /// and modifiers (`uuid` → `uuid`), widening `varchar(n)`, `varchar` → `text`, `text` →
    /// unbounded `varchar`, widening `numeric(p,s)` to `numeric(p2,s)` with `p2 >= p`, a larger
    /// `timestamp(p)`, `cidr` → `inet`. A `USING` that is only the column's cast to the new type
    /// (`USING id::uuid`) counts as none. Narrowing `varchar(n)`, `text` → `varchar(n)`,
    /// `bytea` → `text`, integer widening, `json` ↔ `jsonb` and `timestamp` ↔ `timestamptz`
    /// (catalog-only from PostgreSQL 12 only under a UTC session, which a linter cannot know)
    /// rewrite; the message says when a value may not fit. When the old type is not known from
    /// the migration itself, a change to `text`, `varchar[(n)]` or unconstrained `numeric`
    /// without `USING` is assumed to be a widening (the per-shard rehearsal checks it); a change
    /// to `numeric(p,s)` from an unknown type is not (real histories change `integer` to
    /// `decimal(5,2)`: a rewrite).
    ///
    /// ## Why is this bad?
    /// Any other type change rewrites the whole table and rebuilds every index on it while
    /// holding an `ACCESS EXCLUSIVE` lock, blocking all reads and writes for a time that grows
    /// with the table (every PostgreSQL version). The running application may also break on the
    /// new type.
    ///
    /// Severity **yellow**: it succeeds when every value converts (failures are reported per
    /// shard by `cast-failures`), but blocks all traffic for the rewrite.
    ///
    /// ## Safe alternative
    /// Add a new column, backfill it in batches, keep it in sync with a trigger, switch the
    /// application over, then drop the old column:
    /// ```sql
    /// ALTER TABLE events ADD COLUMN id_new bigint;
    /// -- trigger to copy id into id_new on write; backfill in batches; then swap names.
    /// ```
    /// Binary-coercible changes are safe as is:
    /// ```sql
    /// ALTER TABLE users ALTER COLUMN email TYPE varchar(320);  -- from varchar(255)
    /// ALTER TABLE users ALTER COLUMN bio TYPE text;            -- from varchar
    /// ```
    pub struct ChangingColumnType {
        code: "DC203",
        name: "changing-column-type",
        severity: Yellow,
        duration: true,
    }
}

impl GateRule for ChangingColumnType {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let Operation::AlterColumnType {
                table,
                column,
                new_type,
                using,
                ..
            } = op
            else {
                continue;
            };
            if ctx.is_new_table(table, stmt.index) {
                continue;
            }
            let old = ctx.column_type(table, column, stmt.index);
            let change = type_change(
                old,
                new_type,
                using.as_deref(),
                column,
                ctx.pg_version(),
                stmt.settings.timezone_is_utc(),
            );
            let TypeChange::Rewrite { may_fail } = change else {
                continue;
            };
            let lock = lock_on(ctx, op, table, LockMode::AccessExclusive);
            let from = old.map(|o| format!(" (from {o})")).unwrap_or_default();
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "ALTER COLUMN `{column}` TYPE {new_type}{from} rewrites `{table}` and rebuilds its indexes \
                         while holding {}{}",
                        lock_phrase(lock, table),
                        if may_fail && old.is_some() {
                            "; a value that does not fit the new type fails the statement"
                        } else {
                            ""
                        }
                    ),
                )
                .with_help(
                    "Add a new column of the new type, backfill it in batches, keep it in sync with a trigger, \
                     switch the application over, then drop the old column. Widening varchar(n), or varchar to \
                     text, needs no rewrite",
                ),
            );
        }
        out
    }
}

use migration_parser::{ConstraintKind, LockMode, Operation};

use super::{lock_on, lock_phrase};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `ADD CONSTRAINT ... EXCLUDE USING ...` on an existing table.
    ///
    /// ## Why is this bad?
    /// An exclusion constraint builds its index and checks every existing row while holding an
    /// `ACCESS EXCLUSIVE` lock, blocking all reads and writes of the table for the whole build,
    /// on every PostgreSQL version. Unlike `UNIQUE`, there is no `USING INDEX` form and no
    /// `NOT VALID`: it cannot be built online.
    ///
    /// Severity **yellow**: it succeeds when no rows conflict, but blocks all traffic to the
    /// table for the build.
    ///
    /// ## Safe alternative
    /// Add it while the table is small, in a maintenance window, or build a new table with the
    /// constraint and migrate the data into it in batches:
    /// ```sql
    /// SET lock_timeout = '2s';
    /// ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap
    ///     EXCLUDE USING gist (room_id WITH =, during WITH &&);  -- in a maintenance window
    /// ```
    pub struct AddingExclusionConstraint {
        code: "DC106",
        name: "adding-exclusion-constraint",
        severity: Yellow,
        duration: true,
    }
}

impl GateRule for AddingExclusionConstraint {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let Operation::AddConstraint { table, constraint } = op else {
                continue;
            };
            if !matches!(constraint.kind, ConstraintKind::Exclusion { .. })
                || ctx.is_new_table(table, stmt.index)
            {
                continue;
            }
            let lock = lock_on(ctx, op, table, LockMode::AccessExclusive);
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "ADD EXCLUDE on `{table}` builds its index and checks every row while holding {}; \
                         it has no CONCURRENTLY or NOT VALID form",
                        lock_phrase(lock, table)
                    ),
                )
                .with_help(
                    "Run it in a maintenance window with a lock_timeout, or create a new table with the \
                     constraint and copy the data over in batches",
                ),
            );
        }
        out
    }
}

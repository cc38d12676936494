use evidence::ProbeKind;
use migration_parser::{ConstraintKind, Operation};

use super::shard_support::{
    DataFailure, agree, count_phrase, data_probe_findings, samples_phrase, table_sql,
};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard: reports rows for which a new `CHECK` constraint (`ADD CONSTRAINT ... CHECK`,
    /// `ADD COLUMN ... CHECK`, or a later `VALIDATE CONSTRAINT`) is false, found by the
    /// simulator's read-only probe on that shard. Evidence: the count and sample keys.
    ///
    /// ## Why is this bad?
    /// Adding (or validating) the constraint scans every row — `ADD CHECK` under an
    /// `ACCESS EXCLUSIVE` lock that blocks all reads and writes — and aborts with SQLSTATE
    /// `23514` (`check_violation`) at the first failing row. The migration fails on this shard.
    /// Every PostgreSQL version.
    ///
    /// Severity **red**: the migration would fail on this shard; **yellow** when the probe
    /// failed (the data was not checked); **info** when the probe was left to the rehearsal
    /// while the shard's rows exist (the reason is quoted: the rehearsal's tables are empty
    /// unless `--shadow-data sample`, so nobody read those rows).
    ///
    /// ## Safe alternative
    /// Fix the rows first, or add the constraint `NOT VALID` (new rows are checked at once),
    /// fix the old rows, then validate under `SHARE UPDATE EXCLUSIVE`:
    /// ```sql
    /// ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID;
    /// UPDATE orders SET total = 0 WHERE NOT (total >= 0);
    /// ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;
    /// ```
    pub struct CheckViolations {
        code: "DC314",
        name: "check-violations",
        severity: Red,
        scope: Shard,
    }
}

impl GateRule for CheckViolations {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        data_probe_findings(self, ctx, ProbeKind::CheckViolations, |p, op| {
            let expr = match op {
                Some(Operation::AddConstraint { constraint, .. }) => match &constraint.kind {
                    ConstraintKind::Check { expr } => Some(expr.clone()),
                    _ => None,
                },
                Some(Operation::AddColumn { column, .. }) => column.check.clone(),
                _ => None,
            };
            let t = table_sql(op, p);
            if let (Some(Operation::AlterColumnType { column, .. }), Some(domain)) =
                (op, &p.constraint)
            {
                return DataFailure {
                    found: format!(
                        "{} of `{}.{}` {} a CHECK of the domain `{domain}` that `{column}` becomes{}",
                        count_phrase(p, "row"),
                        p.schema,
                        p.table,
                        agree(p.count, "break", "breaks"),
                        samples_phrase(&p.samples, "sample keys")
                    ),
                    help: format!(
                        "Fix those values of {t} on this shard first: the type change converts every row and \
                         checks the domain on each (a NOT VALID domain constraint is still checked on a cast)"
                    ),
                };
            }
            let cond = expr.clone().unwrap_or_else(|| "<check expression>".into());
            DataFailure {
                found: format!(
                    "{} of `{}.{}` {} {}{}",
                    count_phrase(p, "row"),
                    p.schema,
                    p.table,
                    agree(p.count, "violate", "violates"),
                    match &expr {
                        Some(e) => format!("CHECK ({e})"),
                        None => "the new CHECK constraint".into(),
                    },
                    samples_phrase(&p.samples, "sample keys")
                ),
                help: format!(
                    "Fix those rows on this shard first (`SELECT * FROM {t} WHERE NOT ({cond});`), or add the constraint \
                     NOT VALID (new rows are checked at once) and fix them before `VALIDATE CONSTRAINT`"
                ),
            }
        })
    }
}

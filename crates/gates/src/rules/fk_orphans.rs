use evidence::ProbeKind;
use migration_parser::{ConstraintKind, Operation};

use super::shard_support::{
    DataFailure, agree, count_phrase, data_probe_findings, samples_phrase, table_sql,
};
use super::{ident, qname};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard: reports rows that a new foreign key (`ADD CONSTRAINT ... FOREIGN KEY`,
    /// `ADD COLUMN ... REFERENCES` with a default, or a later `VALIDATE CONSTRAINT`) would
    /// reject — referencing values with no matching row in the referenced table — found by the
    /// simulator's read-only orphan probe on that shard. Evidence: the count and sample keys.
    ///
    /// ## Why is this bad?
    /// PostgreSQL validates every existing row when the key is added (or validated) and aborts
    /// the statement with SQLSTATE `23503` (`foreign_key_violation`) at the first orphan, after
    /// holding `SHARE ROW EXCLUSIVE` on both tables (blocking all writes to them) for the scan.
    /// The migration fails on this shard and the rest of its transaction rolls back, so the
    /// fleet ends up with shards on different schema versions. Every PostgreSQL version.
    ///
    /// Orphans under a constraint added `NOT VALID` and never validated do not fail the
    /// migration; they are reported as yellow (the later `VALIDATE` will fail).
    ///
    /// Severity **red**: the migration would fail on this shard; **yellow** when the probe
    /// failed (the data was not checked); **info** when the probe was left to the rehearsal
    /// while the shard's rows exist (the reason is quoted: the rehearsal's tables are empty
    /// unless `--shadow-data sample`, so nobody read those rows).
    ///
    /// ## Safe alternative
    /// Fix or delete the orphans first, or add the key `NOT VALID` (new rows are checked at
    /// once), clean up, then validate:
    /// ```sql
    /// ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    ///     FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
    /// DELETE FROM orders o
    ///  WHERE o.customer_id IS NOT NULL
    ///    AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id);
    /// ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
    /// ```
    pub struct FkOrphans {
        code: "DC311",
        name: "fk-orphans",
        severity: Red,
        scope: Shard,
    }
}

impl GateRule for FkOrphans {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        data_probe_findings(self, ctx, ProbeKind::FkOrphans, |p, op| {
            let fk = op.and_then(|o| match o {
                Operation::AddConstraint { constraint, .. } => match &constraint.kind {
                    ConstraintKind::ForeignKey {
                        columns,
                        ref_table,
                        ref_columns,
                        ..
                    } => Some((columns.clone(), ref_table.clone(), ref_columns.clone())),
                    _ => None,
                },
                Operation::AddColumn { column, .. } => match &column.references {
                    Some(ConstraintKind::ForeignKey {
                        ref_table,
                        ref_columns,
                        ..
                    }) => Some((
                        vec![column.name.clone()],
                        ref_table.clone(),
                        ref_columns.clone(),
                    )),
                    _ => None,
                },
                _ => None,
            });
            let t = table_sql(op, p);
            let cols = fk
                .as_ref()
                .map(|(c, _, _)| c.clone())
                .or_else(|| p.column.clone().map(|c| vec![c]))
                .unwrap_or_default();
            let col_list = if cols.is_empty() {
                "referencing columns".to_string()
            } else {
                format!("`{}`", cols.join(", "))
            };
            let target = fk
                .as_ref()
                .map(|(_, r, _)| format!("`{r}`"))
                .unwrap_or_else(|| "the referenced table".into());
            let found = format!(
                "{} of `{}.{}` {} {col_list} values with no matching row in {target}{}",
                count_phrase(p, "row"),
                p.schema,
                p.table,
                agree(p.count, "have", "has"),
                samples_phrase(&p.samples, "sample keys")
            );
            let cleanup = match &fk {
                Some((cols, rt, rcols)) if !cols.is_empty() && cols.len() == rcols.len() => {
                    let conds: Vec<String> = cols
                        .iter()
                        .zip(rcols)
                        .map(|(c, r)| format!("p.{} = c.{}", ident(r), ident(c)))
                        .collect();
                    let not_null: Vec<String> = cols
                        .iter()
                        .map(|c| format!("c.{} IS NOT NULL", ident(c)))
                        .collect();
                    format!(
                        "`DELETE FROM {t} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {});` \
                         (or point them at a valid row, or set them NULL)",
                        not_null.join(" AND "),
                        qname(rt),
                        conds.join(" AND ")
                    )
                }
                _ => format!("(find them with the probe's query on {t})"),
            };
            let not_valid = matches!(op, Some(Operation::AddConstraint { constraint, .. }) if constraint.not_valid);
            let help = if not_valid {
                format!(
                    "Fix or delete the orphans on this shard before `VALIDATE CONSTRAINT`: {cleanup}"
                )
            } else {
                format!(
                    "Fix or delete the orphans on this shard first: {cleanup}; or add the foreign key NOT VALID \
                     (new rows are checked at once) and clean up before `VALIDATE CONSTRAINT`"
                )
            };
            DataFailure { found, help }
        })
    }
}

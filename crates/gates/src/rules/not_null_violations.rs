use evidence::ProbeKind;
use migration_parser::Operation;

use super::ident;
use super::shard_support::{
    DataFailure, agree, count_phrase, data_probe_findings, samples_phrase, table_sql,
};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard: reports NULLs in a column the migration makes `NOT NULL`
    /// (`ALTER COLUMN ... SET NOT NULL`, `ADD PRIMARY KEY`), and existing rows that an added
    /// `NOT NULL` column without a `DEFAULT` would leave NULL — found by the simulator's
    /// read-only probe on that shard. Evidence: the count and the primary keys of sample rows.
    ///
    /// ## Why is this bad?
    /// `SET NOT NULL` scans the whole table under an `ACCESS EXCLUSIVE` lock (blocking all reads
    /// and writes) and aborts with SQLSTATE `23502` (`not_null_violation`) at the first NULL;
    /// `ADD COLUMN ... NOT NULL` without a default fails the same way on any non-empty table.
    /// The migration fails on this shard. Every PostgreSQL version.
    ///
    /// Severity **red**: the migration would fail on this shard; **yellow** when the probe
    /// failed (the data was not checked); **info** when the probe was left to the rehearsal
    /// while the shard's rows exist (the reason is quoted: the rehearsal's tables are empty
    /// unless `--shadow-data sample`, so nobody read those rows).
    ///
    /// ## Safe alternative
    /// Backfill in batches first, then prove the column non-null without a long lock
    /// (PostgreSQL 12+ skips the `SET NOT NULL` scan when a validated CHECK proves it):
    /// ```sql
    /// UPDATE users SET email = '' WHERE email IS NULL AND id BETWEEN 1 AND 10000;  -- repeat per batch
    /// ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;
    /// ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;
    /// ALTER TABLE users ALTER COLUMN email SET NOT NULL;
    /// ALTER TABLE users DROP CONSTRAINT users_email_not_null;
    /// ```
    pub struct NotNullViolations {
        code: "DC312",
        name: "not-null-violations",
        severity: Red,
        scope: Shard,
    }
}

impl GateRule for NotNullViolations {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        data_probe_findings(self, ctx, ProbeKind::NotNullViolations, |p, op| {
            let t = table_sql(op, p);
            let col = p.column.clone().unwrap_or_else(|| "the column".into());
            let c = ident(&col);
            if let Some(Operation::AddColumn { column, .. }) = op {
                let c = ident(&column.name);
                return DataFailure {
                    found: format!(
                        "`{}.{}` has {}, which the new NOT NULL column `{}` without a DEFAULT would leave NULL",
                        p.schema,
                        p.table,
                        count_phrase(p, "row"),
                        column.name
                    ),
                    help: format!(
                        "Give the column a constant DEFAULT (catalog-only on PostgreSQL 11+): \
                         `ALTER TABLE {t} ADD COLUMN {c} {} NOT NULL DEFAULT <value>;`, or add it nullable, \
                         backfill in batches and set NOT NULL afterwards",
                        column.data_type
                    ),
                };
            }
            let nulls = format!(
                "{} of `{}.{}` {} NULL in `{col}`",
                count_phrase(p, "row"),
                p.schema,
                p.table,
                agree(p.count, "have", "has"),
            );
            let samples = samples_phrase(&p.samples, "sample keys");
            if let (Some(Operation::AlterColumnType { new_type, .. }), Some(domain)) =
                (op, &p.constraint)
            {
                return DataFailure {
                    found: format!(
                        "{nulls}, which the NOT NULL domain `{domain}` the column becomes rejects{samples}"
                    ),
                    help: format!(
                        "Backfill the NULLs on this shard first, in batches (`UPDATE {t} SET {c} = <value> WHERE {c} IS NULL;`), \
                         or create `{new_type}` without NOT NULL and add it with `ALTER DOMAIN ... SET NOT NULL` once the data is clean"
                    ),
                };
            }
            DataFailure {
                found: format!("{nulls}{samples}"),
                help: format!(
                    "Backfill the NULLs on this shard first, in batches: `UPDATE {t} SET {c} = <value> WHERE {c} IS NULL;`, \
                     then add `CHECK ({c} IS NOT NULL) NOT VALID`, VALIDATE it, and SET NOT NULL (no scan on PostgreSQL 12+)"
                ),
            }
        })
    }
}

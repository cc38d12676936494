use evidence::ProbeKind;
use migration_parser::{ConstraintKind, Operation};

use super::ident;
use super::shard_support::{
    DataFailure, agree, count_phrase, data_probe_findings, samples_phrase, table_sql,
};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard: reports groups of rows with equal keys under a new `UNIQUE` or
    /// `PRIMARY KEY` constraint or unique index (NULLs count as distinct unless
    /// `NULLS NOT DISTINCT`), found by the simulator's read-only duplicate probe on that shard.
    /// Evidence: the number of duplicate groups and sample key values.
    ///
    /// ## Why is this bad?
    /// Building the unique index reads the whole table — under a `SHARE` lock (blocking all
    /// writes) for `CREATE UNIQUE INDEX`, `ACCESS EXCLUSIVE` (blocking reads and writes) for
    /// `ADD CONSTRAINT ... UNIQUE` — and aborts with SQLSTATE `23505` (`unique_violation`) at
    /// the first duplicate. `CREATE UNIQUE INDEX CONCURRENTLY` also fails, and leaves an
    /// `INVALID` index behind that must be dropped. Every PostgreSQL version.
    ///
    /// Severity **red**: the migration would fail on this shard; **yellow** when the probe
    /// failed (the data was not checked); **info** when the probe was left to the rehearsal
    /// while the shard's rows exist (the reason is quoted: the rehearsal's tables are empty
    /// unless `--shadow-data sample`, so nobody read those rows).
    ///
    /// ## Safe alternative
    /// Remove or merge the duplicates first, then build the index concurrently and attach it:
    /// ```sql
    /// SELECT email, count(*) FROM users GROUP BY email HAVING count(*) > 1;  -- resolve these
    /// CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);
    /// ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;
    /// ```
    pub struct UniqueViolations {
        code: "DC313",
        name: "unique-violations",
        severity: Red,
        scope: Shard,
    }
}

impl GateRule for UniqueViolations {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        data_probe_findings(self, ctx, ProbeKind::UniqueViolations, |p, op| {
            let cols: Vec<String> = match op {
                Some(Operation::AddConstraint { constraint, .. }) => match &constraint.kind {
                    ConstraintKind::Unique { columns, .. }
                    | ConstraintKind::PrimaryKey { columns, .. } => columns.clone(),
                    _ => Vec::new(),
                },
                Some(Operation::CreateIndex { columns, .. }) => columns.clone(),
                _ => Vec::new(),
            };
            let cols = if cols.is_empty() {
                p.column.clone().map(|c| vec![c]).unwrap_or_default()
            } else {
                cols
            };
            let t = table_sql(op, p);
            let key_sql = if cols.is_empty() {
                "<key columns>".to_string()
            } else {
                cols.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")
            };
            DataFailure {
                found: format!(
                    "{} of rows of `{}.{}` {} the same ({}){}{}",
                    count_phrase(p, "group"),
                    p.schema,
                    p.table,
                    agree(p.count, "share", "shares"),
                    if cols.is_empty() {
                        "key".to_string()
                    } else {
                        cols.join(", ")
                    },
                    samples_phrase(&p.samples, "sample keys"),
                    if matches!(
                        op,
                        Some(Operation::CreateIndex {
                            concurrently: true,
                            ..
                        })
                    ) {
                        "; CONCURRENTLY then leaves an INVALID index behind that must be dropped"
                    } else {
                        ""
                    }
                ),
                help: format!(
                    "Remove or merge the duplicates on this shard first (`SELECT {key_sql}, count(*) FROM {t} GROUP BY {key_sql} HAVING count(*) > 1;`), \
                     then build the index with CREATE UNIQUE INDEX CONCURRENTLY and attach it with ADD CONSTRAINT ... UNIQUE USING INDEX"
                ),
            }
        })
    }
}

use evidence::ProbeKind;
use migration_parser::Operation;

use super::shard_support::{
    DataFailure, count_phrase, data_probe_findings, samples_phrase, table_sql,
};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard: reports values that `ALTER COLUMN ... TYPE` (with its `USING` expression, if
    /// any) cannot convert to the new type, found by the simulator's read-only cast probe on
    /// that shard: the conversion the `ALTER` makes, evaluated over the table under a
    /// savepoint, and the values longer than a `varchar(n)` / `char(n)` / `bit(n)` target takes
    /// (an explicit cast would cut them, the `ALTER` fails). Evidence: the count and sample
    /// values.
    ///
    /// ## Why is this bad?
    /// The type change rewrites the table under an `ACCESS EXCLUSIVE` lock (blocking all reads
    /// and writes) and aborts at the first value it cannot convert with a class-22 data
    /// exception: SQLSTATE `22P02` (`invalid_text_representation`), `22003`
    /// (`numeric_value_out_of_range`), `22001` (`string_data_right_truncation`), `22007`/`22008`
    /// (bad date/time). All the rewrite work is lost and the migration fails on this shard.
    /// Every PostgreSQL version.
    ///
    /// Severity **red**: the migration would fail on this shard; **yellow** when the probe
    /// failed (the data was not checked); **info** when the probe was left to the rehearsal
    /// while the shard's rows exist (the reason is quoted: the rehearsal's tables are empty
    /// unless `--shadow-data sample`, so nobody read those rows).
    ///
    /// ## Safe alternative
    /// Clean the values first, or change the type in steps without a long lock: add a column
    /// of the new type, backfill it in batches with an expression that handles bad values,
    /// switch the application, then drop the old column:
    /// ```sql
    /// ALTER TABLE orders ADD COLUMN amount_num numeric(12,2);
    /// UPDATE orders SET amount_num = CASE WHEN amount ~ '^-?[0-9]+(\.[0-9]+)?$' THEN amount::numeric END
    ///  WHERE id BETWEEN 1 AND 10000;  -- repeat per batch
    /// ```
    pub struct CastFailures {
        code: "DC315",
        name: "cast-failures",
        severity: Red,
        scope: Shard,
    }
}

impl GateRule for CastFailures {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        data_probe_findings(self, ctx, ProbeKind::CastFailures, |p, op| {
            let new_type = match op {
                Some(Operation::AlterColumnType { new_type, .. }) => Some(new_type.clone()),
                _ => None,
            };
            let t = table_sql(op, p);
            let col = p.column.clone().unwrap_or_else(|| "the column".into());
            DataFailure {
                found: format!(
                    "{} of `{}.{}`.`{col}` cannot be converted to {}{}",
                    count_phrase(p, "value"),
                    p.schema,
                    p.table,
                    new_type
                        .as_deref()
                        .map(|t| format!("`{t}`"))
                        .unwrap_or_else(|| "the new type".into()),
                    samples_phrase(&p.samples, "samples")
                ),
                help: format!(
                    "Clean those values on {t} first, or change the type in steps: add a column of the new type, \
                     backfill it in batches with an expression that handles the bad values, switch the application, \
                     then drop the old column"
                ),
            }
        })
    }
}

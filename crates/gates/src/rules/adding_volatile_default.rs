use migration_parser::{LockMode, Operation, Volatility};

use super::{ident, lock_on, lock_phrase, qname};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `ADD COLUMN` on an existing table whose new values must be computed for every row:
    /// a volatile `DEFAULT` (`random()`, `gen_random_uuid()`, `clock_timestamp()`, `nextval()`),
    /// a `serial` or identity column (not a primary key: `adding-serial-primary-key` covers
    /// those), a `GENERATED ... STORED` column, and — on PostgreSQL 10 and older — any `DEFAULT`.
    ///
    /// ## Why is this bad?
    /// PostgreSQL rewrites the whole table and all its indexes while holding an
    /// `ACCESS EXCLUSIVE` lock, blocking all reads and writes for a time that grows with the
    /// table. Since PostgreSQL 11 a constant or stable default (`'free'`, `0`, `now()`) is stored
    /// in the catalog instead and needs no rewrite; volatile defaults still rewrite.
    ///
    /// Severity **yellow**: it succeeds, but blocks all traffic to the table for the rewrite.
    ///
    /// ## Safe alternative
    /// Add the column without the volatile default, set the default for new rows, and backfill
    /// existing rows in batches:
    /// ```sql
    /// ALTER TABLE orders ADD COLUMN public_id uuid;
    /// ALTER TABLE orders ALTER COLUMN public_id SET DEFAULT gen_random_uuid();
    /// -- backfill in batches, outside the migration:
    /// UPDATE orders SET public_id = gen_random_uuid() WHERE id BETWEEN 1 AND 10000 AND public_id IS NULL;
    /// ```
    pub struct AddingVolatileDefault {
        code: "DC202",
        name: "adding-volatile-default",
        severity: Yellow,
        duration: true,
    }
}

impl GateRule for AddingVolatileDefault {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let old_pg = ctx.pg_version().0 < 11;
        for (stmt, op) in ctx.operations() {
            let Operation::AddColumn { table, column, .. } = op else {
                continue;
            };
            if column.primary_key
                || !migration_parser::add_column_rewrites(column, ctx.pg_version())
                || ctx.is_new_table(table, stmt.index)
            {
                continue;
            }
            let why = if let Some(d) = column
                .default
                .as_ref()
                .filter(|d| d.volatility == Volatility::Volatile)
            {
                format!(
                    "volatile DEFAULT `{}` is evaluated for every existing row",
                    d.sql
                )
            } else if column.serial {
                format!(
                    "`{}` column fills every existing row from a sequence",
                    column.data_type
                )
            } else if column.identity {
                "identity column fills every existing row from a sequence".to_string()
            } else if column.generated_stored {
                "GENERATED ... STORED column is computed for every existing row".to_string()
            } else if let (true, Some(d)) = (old_pg, &column.default) {
                format!(
                    "on PostgreSQL {} any DEFAULT (here `{}`) is written into every existing row",
                    ctx.pg_version(),
                    d.sql
                )
            } else {
                "every existing row gets the new value".to_string()
            };
            let lock = lock_on(ctx, op, table, LockMode::AccessExclusive);
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "ADD COLUMN `{}` rewrites `{table}` and all its indexes ({why}) while holding {}",
                        column.name,
                        lock_phrase(lock, table)
                    ),
                )
                .with_help(format!(
                    "Add the column without the default (`ALTER TABLE {t} ADD COLUMN {c} {ty};`), set the default \
                     for new rows with `ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT ...;`, and backfill existing rows \
                     in batches outside the migration",
                    t = qname(table),
                    c = ident(&column.name),
                    ty = column.data_type
                )),
            );
        }
        out
    }
}

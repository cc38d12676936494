use migration_parser::Operation;

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX ... CONCURRENTLY`
    /// and `DETACH PARTITION ... CONCURRENTLY` — and the other statements PostgreSQL refuses
    /// there (`VACUUM`, `CREATE`/`DROP DATABASE`, `ALTER SYSTEM`) — inside a transaction block: an explicit
    /// `BEGIN ... COMMIT`, or the whole file when the runner wraps it in one transaction
    /// (`transaction_mode = "wrap-file"`: `psql -1`, sqlx, Diesel, golang-migrate, Flyway).
    ///
    /// ## Why is this bad?
    /// PostgreSQL refuses them there: `ERROR: CREATE INDEX CONCURRENTLY cannot run inside a
    /// transaction block` (SQLSTATE 25001), on every version. The migration fails on every shard.
    ///
    /// Severity **red**: the migration fails.
    ///
    /// ## Safe alternative
    /// Run the statement outside any transaction block — as its own statement with
    /// `transaction_mode = "autocommit"`, or in its own migration file that the runner executes
    /// without a transaction (golang-migrate/goose `-- +goose NO TRANSACTION`, Flyway
    /// `executeInTransaction=false`, sqlx `-- no-transaction`):
    /// ```sql
    /// -- no BEGIN/COMMIT around it:
    /// CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);
    /// ```
    pub struct ConcurrentInTransaction {
        code: "DC502",
        name: "concurrent-in-transaction",
        severity: Red,
    }
}

impl GateRule for ConcurrentInTransaction {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let wrapped = ctx.file_is_wrapped();
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            if !stmt.tx.in_block {
                continue;
            }
            // ADD VALUE (PG < 12) is enum-value-in-transaction's.
            if matches!(op, Operation::AddEnumValue { .. })
                || !migration_parser::blocked_in_transaction(op, ctx.pg_version())
            {
                continue;
            }
            let what = match op {
                Operation::CreateIndex { .. } => "CREATE INDEX CONCURRENTLY".to_string(),
                Operation::DropIndex { .. } => "DROP INDEX CONCURRENTLY".to_string(),
                Operation::Reindex {
                    target_kind,
                    concurrently,
                    ..
                } => {
                    format!(
                        "REINDEX {}{}",
                        target_kind.keyword(),
                        if *concurrently { " CONCURRENTLY" } else { "" }
                    )
                }
                Operation::DetachPartition { .. } => {
                    "ALTER TABLE ... DETACH PARTITION CONCURRENTLY".to_string()
                }
                Operation::Maintenance { command, .. } => command.words().to_uppercase(),
                Operation::CreateDatabase { .. } => "CREATE DATABASE".to_string(),
                Operation::DropDatabase { .. } => "DROP DATABASE".to_string(),
                Operation::AlterSystem { .. } => "ALTER SYSTEM".to_string(),
                _ => "This statement".to_string(),
            };
            let help = if wrapped {
                "The runner wraps the whole file in one transaction (transaction_mode = \"wrap-file\"): move this \
                 statement to its own migration file that runs without a transaction (goose `-- +goose NO TRANSACTION`, \
                 Flyway `executeInTransaction=false`, sqlx `-- no-transaction`)"
            } else {
                "Move it out of the BEGIN ... COMMIT block so it runs on its own"
            };
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "{what} inside a transaction block fails on every shard: ERROR: {what} cannot run inside a \
                         transaction block (SQLSTATE 25001)"
                    ),
                )
                .with_help(help),
            );
        }
        out
    }
}

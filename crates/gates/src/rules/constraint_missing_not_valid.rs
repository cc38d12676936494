use migration_parser::{ColumnDef, ConstraintKind, LockMode, Operation, QualifiedName, Statement};

use super::{lock_on, lock_phrase, qname};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags a `FOREIGN KEY` or `CHECK` constraint added to an existing table without
    /// `NOT VALID` (including `ADD COLUMN ... CHECK`, and `ADD COLUMN ... REFERENCES` with a
    /// non-null `DEFAULT`: without one PostgreSQL skips the validation, as every value is NULL),
    /// and a `VALIDATE CONSTRAINT` that runs in the same transaction as the `NOT VALID` add.
    ///
    /// ## Why is this bad?
    /// Adding the constraint validates every existing row while holding the lock:
    /// `ADD FOREIGN KEY` takes `SHARE ROW EXCLUSIVE` on **both** tables (blocking all writes to
    /// them), `ADD CHECK` takes `ACCESS EXCLUSIVE` (blocking reads and writes), on every
    /// PostgreSQL version, for the duration of a full scan. Validating inside the transaction
    /// that added the constraint keeps that strong lock during the scan, which defeats
    /// `NOT VALID`.
    ///
    /// Severity **yellow**: it succeeds when the data conforms, but blocks traffic for the scan
    /// (rows that do not conform are reported per shard by `fk-orphans` / `check-violations`).
    ///
    /// ## Safe alternative
    /// Add it `NOT VALID` (a brief lock, no scan), then validate it in a separate transaction:
    /// `VALIDATE CONSTRAINT` takes only `SHARE UPDATE EXCLUSIVE`, which blocks neither reads nor
    /// writes.
    /// ```sql
    /// ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    ///     FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
    /// -- separate transaction:
    /// ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
    /// ```
    pub struct ConstraintMissingNotValid {
        code: "DC103",
        name: "constraint-missing-not-valid",
        severity: Yellow,
        duration: true,
    }
}

fn has_non_null_default(column: &ColumnDef) -> bool {
    column
        .default
        .as_ref()
        .is_some_and(|d| !d.sql.trim().eq_ignore_ascii_case("null"))
}

/// The fix: the statement itself with `NOT VALID` appended (when it is a single-action
/// `ALTER TABLE`), then `VALIDATE CONSTRAINT` in a separate transaction.
fn help(stmt: &Statement, table: &QualifiedName, kind: &str, name: Option<&str>) -> String {
    let t = qname(table);
    let n = name
        .map(super::ident)
        .unwrap_or_else(|| "<constraint_name>".into());
    let add = if stmt.operations.len() == 1 {
        format!("{} NOT VALID;", super::one_line(&stmt.sql))
    } else {
        format!("ALTER TABLE {t} ADD CONSTRAINT {n} {kind} NOT VALID;")
    };
    format!(
        "Add it NOT VALID, then validate it in a separate transaction (VALIDATE takes only SHARE \
         UPDATE EXCLUSIVE, which blocks neither reads nor writes): `{add}` then \
         `ALTER TABLE {t} VALIDATE CONSTRAINT {n};`"
    )
}

impl GateRule for ConstraintMissingNotValid {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            match op {
                Operation::AddConstraint { table, constraint } if !constraint.not_valid => {
                    if ctx.is_new_table(table, stmt.index) {
                        continue;
                    }
                    let name = constraint.name.as_deref();
                    match &constraint.kind {
                        ConstraintKind::ForeignKey { ref_table, .. } => {
                            let lock = lock_on(ctx, op, table, LockMode::ShareRowExclusive);
                            out.push(
                                ctx.finding(
                                    self,
                                    stmt,
                                    format!(
                                        "ADD FOREIGN KEY on `{table}` takes {} and on `{ref_table}` \
                                         while it scans every row of `{table}` to validate the key",
                                        lock_phrase(lock, table)
                                    ),
                                )
                                .with_help(help(stmt, table, "FOREIGN KEY (...) REFERENCES ...", name)),
                            );
                        }
                        ConstraintKind::Check { .. } => {
                            let lock = lock_on(ctx, op, table, LockMode::AccessExclusive);
                            out.push(
                                ctx.finding(
                                    self,
                                    stmt,
                                    format!(
                                        "ADD CHECK on `{table}` takes {} while it scans every row \
                                         to validate the constraint",
                                        lock_phrase(lock, table)
                                    ),
                                )
                                .with_help(help(
                                    stmt,
                                    table,
                                    "CHECK (...)",
                                    name,
                                )),
                            );
                        }
                        _ => {}
                    }
                }
                // PostgreSQL skips validating an inline foreign key when the new column has no
                // default (every value is NULL); a CHECK is always checked against every row.
                Operation::AddColumn { table, column, .. }
                    if (column.check.is_some()
                        || (column.references.is_some() && has_non_null_default(column)))
                        && ctx.is_existing_table(table, stmt.index) =>
                {
                    let lock = lock_on(ctx, op, table, LockMode::AccessExclusive);
                    let what = if column.references.is_some() {
                        "REFERENCES"
                    } else {
                        "CHECK"
                    };
                    out.push(
                        ctx.finding(
                            self,
                            stmt,
                            format!(
                                "ADD COLUMN `{}` with an inline {what} constraint on `{table}` takes \
                                 {} while it scans every row to validate the constraint",
                                column.name,
                                lock_phrase(lock, table)
                            ),
                        )
                        .with_help(format!(
                            "Add the column without the constraint, then add the constraint NOT VALID \
                             and VALIDATE it in a separate transaction: `ALTER TABLE {t} ADD CONSTRAINT <name> {kind} NOT VALID;` \
                             then `ALTER TABLE {t} VALIDATE CONSTRAINT <name>;`",
                            t = qname(table),
                            kind = if what == "CHECK" { "CHECK (...)" } else { "FOREIGN KEY (...) REFERENCES ..." }
                        )),
                    );
                }
                Operation::ValidateConstraint { table, name } if stmt.tx.in_block => {
                    let Some(added) = ctx.constraint_added(table, name, stmt.index) else {
                        continue;
                    };
                    if !added.not_valid
                        || added.transaction != stmt.tx.transaction
                        || ctx.is_new_table(table, stmt.index)
                    {
                        continue;
                    }
                    let add_op = ctx.statements().get(added.statement).and_then(|s| {
                        s.operations
                            .iter()
                            .find(|o| matches!(o, Operation::AddConstraint { .. }))
                    });
                    let lock = add_op
                        .map(|o| lock_on(ctx, o, table, LockMode::AccessExclusive))
                        .unwrap_or(LockMode::AccessExclusive);
                    out.push(
                        ctx.finding(
                            self,
                            stmt,
                            format!(
                                "VALIDATE CONSTRAINT `{name}` runs in the same transaction that added \
                                 it NOT VALID, so the ADD CONSTRAINT's lock is still held for the whole \
                                 validation scan: {}",
                                lock_phrase(lock, table)
                            ),
                        )
                        .with_help(format!(
                            "COMMIT after the NOT VALID add and run `ALTER TABLE {} VALIDATE CONSTRAINT {};` \
                             in its own transaction",
                            qname(table),
                            super::ident(name)
                        )),
                    );
                }
                _ => {}
            }
        }
        out
    }
}

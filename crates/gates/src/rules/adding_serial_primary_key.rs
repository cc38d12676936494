use migration_parser::{ConstraintKind, LockMode, Operation};

use super::{ident, lock_on, lock_phrase, qname};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags adding a primary key to an existing table in a way that builds it under the
    /// `ALTER TABLE` lock: `ADD COLUMN id serial/bigserial/identity PRIMARY KEY` (or any
    /// `ADD COLUMN ... PRIMARY KEY`), and `ADD [CONSTRAINT ...] PRIMARY KEY (cols)` without
    /// `USING INDEX`.
    ///
    /// ## Why is this bad?
    /// Both hold an `ACCESS EXCLUSIVE` lock (blocking all reads and writes) while PostgreSQL
    /// builds the primary key's unique index over the whole table; a new serial/identity column
    /// also rewrites the table to fill every row, and `PRIMARY KEY (cols)` first checks the
    /// columns for NULLs with a full scan. Every PostgreSQL version.
    ///
    /// Severity **yellow**: it succeeds on clean data, but blocks all traffic for the build.
    ///
    /// ## Safe alternative
    /// Build the unique index concurrently and attach it (the columns must already be
    /// `NOT NULL`; see `setting-not-null`):
    /// ```sql
    /// CREATE UNIQUE INDEX CONCURRENTLY events_pkey_idx ON events (id);
    /// ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey_idx;
    /// ```
    /// For a new surrogate key, add a nullable column, fill it from a sequence in batches, then
    /// proceed as above.
    pub struct AddingSerialPrimaryKey {
        code: "DC204",
        name: "adding-serial-primary-key",
        severity: Yellow,
        duration: true,
    }
}

impl GateRule for AddingSerialPrimaryKey {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let (table, what, columns) = match op {
                Operation::AddColumn { table, column, .. } if column.primary_key => {
                    let what = if column.serial || column.identity {
                        format!(
                            "ADD COLUMN `{}` {} PRIMARY KEY rewrites `{table}` to fill every row and builds the primary key index",
                            column.name,
                            if column.identity {
                                "GENERATED AS IDENTITY"
                            } else {
                                column.data_type.as_str()
                            }
                        )
                    } else {
                        format!(
                            "ADD COLUMN `{}` PRIMARY KEY builds the primary key index on `{table}`",
                            column.name
                        )
                    };
                    (table, what, vec![column.name.clone()])
                }
                Operation::AddConstraint { table, constraint } => match &constraint.kind {
                    ConstraintKind::PrimaryKey {
                        columns,
                        using_index: None,
                    } => (
                        table,
                        format!(
                            "ADD PRIMARY KEY on `{table}` checks the key columns for NULLs and builds the primary key index"
                        ),
                        columns.clone(),
                    ),
                    _ => continue,
                },
                _ => continue,
            };
            if ctx.is_new_table(table, stmt.index) {
                continue;
            }
            let lock = lock_on(ctx, op, table, LockMode::AccessExclusive);
            let idx = ident(&format!("{}_pkey_idx", table.name));
            let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
            out.push(
                ctx.finding(self, stmt, format!("{what} while holding {}", lock_phrase(lock, table))).with_help(format!(
                    "Make the key columns NOT NULL first, build the index concurrently, then attach it: \
                     `CREATE UNIQUE INDEX CONCURRENTLY {idx} ON {t} ({c});` then \
                     `ALTER TABLE {t} ADD CONSTRAINT {pk} PRIMARY KEY USING INDEX {idx};`",
                    t = qname(table),
                    c = cols.join(", "),
                    pk = ident(&format!("{}_pkey", table.name)),
                )),
            );
        }
        out
    }
}

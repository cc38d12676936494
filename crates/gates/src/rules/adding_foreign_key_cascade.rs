use migration_parser::{ConstraintKind, FkAction, Operation};

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags a foreign key with `ON DELETE CASCADE` added to a table that existed before the
    /// migration (`ADD CONSTRAINT ... FOREIGN KEY` or `ADD COLUMN ... REFERENCES`).
    ///
    /// ## Why is this bad?
    /// From then on, deleting a row of the referenced table silently deletes the matching
    /// existing rows of this table — and whatever cascades from there. One application `DELETE`
    /// can remove far more data than intended, holding row locks on all of it. How far it reaches
    /// depends on each shard's data (`cascade-reach` measures it per shard). Every PostgreSQL
    /// version.
    ///
    /// Severity **yellow**: the migration succeeds, but the cascade's reach needs a human's
    /// review.
    ///
    /// ## Safe alternative
    /// Keep the default `NO ACTION` (or `RESTRICT`) and delete children explicitly, or accept the
    /// cascade after reviewing its reach:
    /// ```sql
    /// ALTER TABLE order_items ADD CONSTRAINT order_items_order_fk
    ///     FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE RESTRICT NOT VALID;
    /// ```
    pub struct AddingForeignKeyCascade {
        code: "DC308",
        name: "adding-foreign-key-cascade",
        severity: Yellow,
    }
}

impl GateRule for AddingForeignKeyCascade {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let (table, fk) = match op {
                Operation::AddConstraint { table, constraint } => (table, Some(&constraint.kind)),
                Operation::AddColumn { table, column, .. } => (table, column.references.as_ref()),
                _ => continue,
            };
            let Some(ConstraintKind::ForeignKey {
                ref_table,
                on_delete: FkAction::Cascade,
                ..
            }) = fk
            else {
                continue;
            };
            if ctx.is_new_table(table, stmt.index) {
                continue;
            }
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "ON DELETE CASCADE makes every DELETE on `{ref_table}` silently delete the matching existing rows \
                         of `{table}` (and whatever cascades from there)"
                    ),
                )
                .with_help(
                    "Use ON DELETE RESTRICT / NO ACTION and delete child rows explicitly, or approve after reviewing \
                     the per-shard cascade reach",
                ),
            );
        }
        out
    }
}

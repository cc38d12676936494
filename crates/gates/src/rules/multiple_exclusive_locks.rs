use std::collections::BTreeMap;

use migration_parser::{LockMode, Operation, QualifiedName};

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags a transaction that takes `ACCESS EXCLUSIVE` locks on two or more tables that existed
    /// before the migration (an explicit `BEGIN ... COMMIT` block, the whole file under
    /// `transaction_mode = "wrap-file"`, or one statement naming several tables).
    ///
    /// ## Why is this bad?
    /// Locks are held until the transaction ends. While the transaction waits for the second
    /// table's lock, the first table is already blocked for all reads and writes; the outage of
    /// each table lasts as long as the whole transaction. Application transactions that touch
    /// the same tables in the other order can deadlock with the migration. True on every
    /// PostgreSQL version.
    ///
    /// Severity **yellow**: it usually succeeds, but widens the blocking window and can deadlock.
    ///
    /// ## Safe alternative
    /// Change one table per transaction, each with a short `lock_timeout`:
    /// ```sql
    /// SET lock_timeout = '2s';
    /// ALTER TABLE orders ADD COLUMN note text;      -- own transaction
    /// ALTER TABLE customers ADD COLUMN note text;   -- own transaction
    /// ```
    pub struct MultipleExclusiveLocks {
        code: "DC108",
        name: "multiple-exclusive-locks",
        severity: Yellow,
    }
}

impl GateRule for MultipleExclusiveLocks {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        // transaction id -> (tables locked in order, statement index where the 2nd was taken)
        let mut per_tx: BTreeMap<usize, (Vec<QualifiedName>, Option<usize>)> = BTreeMap::new();
        for stmt in ctx.statements() {
            for op in &stmt.operations {
                for fact in ctx.lock_facts(op) {
                    if fact.mode != LockMode::AccessExclusive
                        || ctx.is_new_relation(&fact.relation, stmt.index)
                    {
                        continue;
                    }
                    // Index-level operations report the index; count its table when the migration
                    // knows it, and skip it otherwise (it may be a table already counted).
                    let table = match op {
                        Operation::DropIndex { .. }
                        | Operation::RenameIndex { .. }
                        | Operation::AttachIndexPartition { .. } => {
                            ctx.index_table(&fact.relation, stmt.index).cloned()
                        }
                        Operation::Reindex { target_kind, .. }
                            if *target_kind == migration_parser::ReindexTarget::Index =>
                        {
                            ctx.index_table(&fact.relation, stmt.index).cloned()
                        }
                        _ => Some(fact.relation.clone()),
                    };
                    let Some(table) = table else {
                        continue;
                    };
                    if ctx.is_new_table(&table, stmt.index) {
                        continue;
                    }
                    let id = ctx.table_identity(&table, stmt.index);
                    let entry = per_tx.entry(stmt.tx.transaction).or_default();
                    if !entry.0.iter().any(|t| crate::same_name(t, &id)) {
                        entry.0.push(id);
                        if entry.0.len() == 2 && entry.1.is_none() {
                            entry.1 = Some(stmt.index);
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (tables, second) in per_tx.values() {
            let Some(stmt) = second.and_then(|i| ctx.statements().get(i)) else {
                continue;
            };
            let names: Vec<String> = tables.iter().map(|t| format!("`{t}`")).collect();
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "This transaction takes ACCESS EXCLUSIVE locks on {} existing tables ({}); each blocks \
                         {} until COMMIT, so the first stays blocked while the transaction waits for the next, \
                         and application transactions locking them in another order can deadlock",
                        tables.len(),
                        names.join(", "),
                        LockMode::AccessExclusive.blocks()
                    ),
                )
                .with_help(
                    "Change one table per transaction (or let each statement autocommit), each after \
                     `SET lock_timeout = '2s';`",
                ),
            );
        }
        out
    }
}

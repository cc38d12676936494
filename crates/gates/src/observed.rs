//! What the rehearsal observed for one statement, set against what the static knowledge
//! predicted: the relations it rewrote (`relfilenode` changed) and the write-blocking locks it
//! took (`pg_locks`) on relations that existed before the migration. Shared by the rules
//! `observed-rewrite` and `observed-lock` and by [`Registry::demote_unobserved_rewrites`]
//! (crate::Registry::demote_unobserved_rewrites).
//!
//! Precedence (ARCHITECTURE.md, "Precedence of evidence"): static knowledge < rehearsal
//! observation < probe evidence on real data.

use std::collections::BTreeSet;

use evidence::{
    LockSource, ObservedLock, RehearsalMode, RehearsalResult, StatementOutcome, StatementRehearsal,
};
use migration_parser::{LockMode, Operation, QualifiedName, Rewrite};

use crate::RuleContext;

/// Relation kinds whose locks block application traffic (indexes and sequences are reported
/// through their table).
const TABLE_LIKE: [&str; 3] = ["table", "partitioned_table", "materialized_view"];

/// The statement's rehearsal record, when the statement ran to completion in a rehearsal that
/// was set up (the only records whose observations mean something).
pub(crate) fn succeeded(r: &RehearsalResult, index: usize) -> Option<&StatementRehearsal> {
    if r.setup_error.is_some() || r.mode == RehearsalMode::Skip {
        return None;
    }
    r.statements
        .iter()
        .find(|s| s.index == index && s.outcome == StatementOutcome::Succeeded)
}

/// Relations (`schema.name`) the migration created before statement `index` (or in it).
fn created_by_migration(r: &RehearsalResult, index: usize) -> BTreeSet<&str> {
    r.statements
        .iter()
        .filter(|s| s.index <= index)
        .flat_map(|s| s.created.iter().map(String::as_str))
        .collect()
}

/// The relations (`schema.name`) statement `st` rewrote that existed before the migration
/// (TOAST tables are reported through their table). Empty when it rewrote nothing.
pub(crate) fn pre_existing_rewrites<'r>(
    r: &'r RehearsalResult,
    st: &'r StatementRehearsal,
) -> Vec<&'r str> {
    let created = created_by_migration(r, st.index);
    st.rewritten
        .iter()
        .map(String::as_str)
        .filter(|n| !n.starts_with("pg_toast.") && !created.contains(n))
        .collect()
}

/// The relation kind of `schema.name` as the statement's observed locks name it.
pub(crate) fn relkind_of<'r>(st: &'r StatementRehearsal, relation: &str) -> Option<&'r str> {
    st.locks
        .iter()
        .find(|l| format!("{}.{}", l.schema, l.relation) == relation)
        .map(|l| l.relkind.as_str())
}

/// The strongest lock the statement was observed holding on `schema.name`.
pub(crate) fn observed_lock_on(st: &StatementRehearsal, relation: &str) -> Option<LockMode> {
    st.locks
        .iter()
        .filter(|l| format!("{}.{}", l.schema, l.relation) == relation)
        .map(|l| l.mode)
        .max()
}

/// Whether `relation` is a table-like relation (or one the locks do not name).
pub(crate) fn table_like(st: &StatementRehearsal, relation: &str) -> bool {
    relkind_of(st, relation).is_none_or(|k| TABLE_LIKE.contains(&k))
}

/// The write-blocking locks statement `st` took itself — not held after the previous
/// statement of its transaction block — on table-like relations that existed before the
/// migration. Only locks read from `pg_locks` count.
pub(crate) fn new_blocking_locks<'r>(
    r: &'r RehearsalResult,
    st: &'r StatementRehearsal,
) -> Vec<&'r ObservedLock> {
    if st.lock_source != LockSource::Observed {
        return Vec::new();
    }
    let previous: Vec<&ObservedLock> = if st.in_block {
        r.statements
            .iter()
            .rfind(|p| p.index < st.index)
            .filter(|p| p.in_block)
            .map(|p| p.locks.iter().collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let created = created_by_migration(r, st.index);
    st.locks
        .iter()
        .filter(|l| {
            !l.created_here
                && l.mode.blocks_writes()
                && TABLE_LIKE.contains(&l.relkind.as_str())
                && !created.contains(format!("{}.{}", l.schema, l.relation).as_str())
                && !previous
                    .iter()
                    .any(|p| p.schema == l.schema && p.relation == l.relation && p.mode >= l.mode)
        })
        .collect()
}

/// `schema.name` as a qualified name.
fn qualified(relation: &str) -> QualifiedName {
    match relation.split_once('.') {
        Some((s, n)) => QualifiedName {
            schema: Some(s.to_string()),
            name: n.to_string(),
        },
        None => QualifiedName {
            schema: None,
            name: relation.to_string(),
        },
    }
}

/// What the static knowledge predicts statement `index` does to `relation` (`schema.name`):
/// the strongest lock it takes on it and whether it rewrites it. `(None, false)` for a
/// statement without typed operations (unparsed, `DO`, a function call).
pub(crate) fn predicted(
    ctx: &RuleContext<'_>,
    index: usize,
    relation: &str,
) -> (Option<LockMode>, bool) {
    let Some(stmt) = ctx.statement(index) else {
        return (None, false);
    };
    let target = qualified(relation);
    let mut lock: Option<LockMode> = None;
    let mut rewrite = false;
    for op in &stmt.operations {
        for fact in ctx.lock_facts(op) {
            let mut names = vec![fact.relation.clone()];
            // After a rename the relation is observed under its new name.
            if let Operation::RenameTable { new_name, .. } = op {
                names.push(QualifiedName {
                    schema: fact.relation.schema.clone(),
                    name: new_name.clone(),
                });
            }
            if !names
                .iter()
                .any(|n| migration_parser::same_relation(n, &target))
            {
                continue;
            }
            lock = lock.max(Some(fact.mode));
            rewrite |= fact.rewrite != Rewrite::None;
        }
        // TRUNCATE gives the table a new relfilenode: that is the truncation, not a rewrite.
        if let Operation::Truncate { tables, .. } = op
            && tables
                .iter()
                .any(|t| migration_parser::same_relation(t, &target))
        {
            rewrite = true;
        }
    }
    (lock, rewrite)
}

/// The relation as this shard names it: the rehearsal's clone keeps the rehearsed shard's
/// schema, so another shard of the same shape reads its own schema.
pub(crate) fn on_this_shard(ctx: &RuleContext<'_>, r: &RehearsalResult, relation: &str) -> String {
    match (relation.split_once('.'), ctx.shard_schema()) {
        (Some((s, n)), Some(mine)) if s == r.schema => format!("{mine}.{n}"),
        _ => relation.to_string(),
    }
}

/// "in the rehearsal of this shard's schema shape (shadow copy of `tenant_1`)".
pub(crate) fn place(r: &RehearsalResult) -> String {
    match r.mode {
        RehearsalMode::InPlace => "in the in-place rehearsal".to_string(),
        _ => format!(
            "in the rehearsal of this shard's schema shape (shadow copy of `{}`)",
            r.shard
        ),
    }
}

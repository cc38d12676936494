//! The built-in rules, one module per rule. Each rule's documentation is its struct's doc
//! comment (also available as `Rule::META.docs`).
//!
//! Static rules look at the migration. Per-shard rules ([`RuleScope::Shard`](crate::RuleScope))
//! read the evidence a [`RuleContext`] carries for one shard and report nothing without it:
//! DC109 `observed-lock`; DC110 `lock-time-budget`; DC111 `lock-queue-risk`; DC208 `observed-rewrite`; DC311–DC319 `fk-orphans`, `not-null-violations`,
//! `unique-violations`, `check-violations`, `cast-failures`, `statement-fails`,
//! `rollback-irreversible`, `rollback-mismatch`, `rollback-unproven`; DC320 `breaking-change-in-use`; DC402–DC404 `schema-drift`, `cascade-reach`,
//! `shard-unreachable`; DC406 `second-tenant-fails`; DC407 `replica-not-used`; DC505 `in-place-refused`. The fleet rule
//! ([`RuleScope::Fleet`](crate::RuleScope)) DC902 `query-stats-unavailable` reports once per run.

use std::fmt::Display;

use migration_parser::{LockMode, Operation, QualifiedName};

use crate::{GateRule, RuleContext};

mod adding_exclusion_constraint;
mod adding_foreign_key_cascade;
mod adding_required_field;
mod adding_serial_primary_key;
mod adding_unique_constraint;
mod adding_volatile_default;
mod ban_drop_database;
mod ban_drop_schema;
mod ban_truncate;
mod breaking_change_in_use;
mod cascade_reach;
mod cast_failures;
mod changing_collation;
mod changing_column_type;
mod check_violations;
mod concurrent_in_transaction;
mod constraint_missing_not_valid;
mod dropping_column;
mod dropping_table;
mod enum_value_in_transaction;
mod fk_orphans;
mod hardcoded_tenant_schema;
mod in_place_refused;
mod lock_queue_risk;
mod lock_time_budget;
mod missing_lock_timeout;
mod multiple_exclusive_locks;
mod non_tenant_object;
mod not_null_violations;
mod observed_lock;
mod observed_rewrite;
mod query_stats_unavailable;
mod refresh_matview_blocking;
mod renaming_column;
mod renaming_table;
mod replica_not_used;
mod require_concurrent_index;
mod require_concurrent_index_drop;
mod rollback_irreversible;
mod rollback_mismatch;
mod rollback_unproven;
mod schema_drift;
mod second_tenant_fails;
mod setting_not_null;
mod shard_support;
mod shard_unreachable;
mod statement_fails;
mod table_rewrite_maintenance;
mod unbatched_data_change;
mod uncommitted_transaction;
mod unique_violations;
mod unparsed_statement;

pub use adding_exclusion_constraint::AddingExclusionConstraint;
pub use adding_foreign_key_cascade::AddingForeignKeyCascade;
pub use adding_required_field::AddingRequiredField;
pub use adding_serial_primary_key::AddingSerialPrimaryKey;
pub use adding_unique_constraint::AddingUniqueConstraint;
pub use adding_volatile_default::AddingVolatileDefault;
pub use ban_drop_database::BanDropDatabase;
pub use ban_drop_schema::BanDropSchema;
pub use ban_truncate::BanTruncate;
pub use breaking_change_in_use::BreakingChangeInUse;
pub use cascade_reach::CascadeReach;
pub use cast_failures::CastFailures;
pub use changing_collation::ChangingCollation;
pub use changing_column_type::ChangingColumnType;
pub use check_violations::CheckViolations;
pub use concurrent_in_transaction::ConcurrentInTransaction;
pub use constraint_missing_not_valid::ConstraintMissingNotValid;
pub use dropping_column::DroppingColumn;
pub use dropping_table::DroppingTable;
pub use enum_value_in_transaction::EnumValueInTransaction;
pub use fk_orphans::FkOrphans;
pub use hardcoded_tenant_schema::HardcodedTenantSchema;
pub use in_place_refused::InPlaceRefused;
pub use lock_queue_risk::LockQueueRisk;
pub use lock_time_budget::LockTimeBudget;
pub use missing_lock_timeout::MissingLockTimeout;
pub use multiple_exclusive_locks::MultipleExclusiveLocks;
pub use non_tenant_object::NonTenantObject;
pub use not_null_violations::NotNullViolations;
pub use observed_lock::ObservedLock;
pub use observed_rewrite::ObservedRewrite;
pub use query_stats_unavailable::QueryStatsUnavailable;
pub use refresh_matview_blocking::RefreshMatviewBlocking;
pub use renaming_column::RenamingColumn;
pub use renaming_table::RenamingTable;
pub use replica_not_used::ReplicaNotUsed;
pub use require_concurrent_index::RequireConcurrentIndex;
pub use require_concurrent_index_drop::RequireConcurrentIndexDrop;
pub use rollback_irreversible::RollbackIrreversible;
pub use rollback_mismatch::RollbackMismatch;
pub use rollback_unproven::RollbackUnproven;
pub use schema_drift::SchemaDrift;
pub use second_tenant_fails::SecondTenantFails;
pub use setting_not_null::SettingNotNull;
pub use shard_unreachable::ShardUnreachable;
pub use statement_fails::StatementFails;
pub use table_rewrite_maintenance::TableRewriteMaintenance;
pub use unbatched_data_change::UnbatchedDataChange;
pub use uncommitted_transaction::UncommittedTransaction;
pub use unique_violations::UniqueViolations;
pub use unparsed_statement::UnparsedStatement;

/// The built-in rules, in code order.
pub(crate) fn builtin() -> Vec<Box<dyn GateRule>> {
    vec![
        Box::new(RequireConcurrentIndex),
        Box::new(RequireConcurrentIndexDrop),
        Box::new(ConstraintMissingNotValid),
        Box::new(AddingUniqueConstraint),
        Box::new(SettingNotNull),
        Box::new(AddingExclusionConstraint),
        Box::new(RefreshMatviewBlocking),
        Box::new(MultipleExclusiveLocks),
        Box::new(ObservedLock),
        Box::new(LockTimeBudget),
        Box::new(LockQueueRisk),
        Box::new(AddingRequiredField),
        Box::new(AddingVolatileDefault),
        Box::new(ChangingColumnType),
        Box::new(AddingSerialPrimaryKey),
        Box::new(UnbatchedDataChange),
        Box::new(ChangingCollation),
        Box::new(TableRewriteMaintenance),
        Box::new(ObservedRewrite),
        Box::new(DroppingColumn),
        Box::new(DroppingTable),
        Box::new(RenamingColumn),
        Box::new(RenamingTable),
        Box::new(BanTruncate),
        Box::new(BanDropDatabase),
        Box::new(BanDropSchema),
        Box::new(AddingForeignKeyCascade),
        Box::new(FkOrphans),
        Box::new(NotNullViolations),
        Box::new(UniqueViolations),
        Box::new(CheckViolations),
        Box::new(CastFailures),
        Box::new(StatementFails),
        Box::new(RollbackIrreversible),
        Box::new(RollbackMismatch),
        Box::new(RollbackUnproven),
        Box::new(BreakingChangeInUse),
        Box::new(HardcodedTenantSchema),
        Box::new(SchemaDrift),
        Box::new(CascadeReach),
        Box::new(ShardUnreachable),
        Box::new(NonTenantObject),
        Box::new(SecondTenantFails),
        Box::new(ReplicaNotUsed),
        Box::new(MissingLockTimeout),
        Box::new(ConcurrentInTransaction),
        Box::new(EnumValueInTransaction),
        Box::new(UncommittedTransaction),
        Box::new(InPlaceRefused),
        Box::new(UnparsedStatement),
        Box::new(QueryStatsUnavailable),
    ]
}

/// The strongest lock `op` takes on `relation` per the knowledge table, or `fallback`.
pub(crate) fn lock_on(
    ctx: &RuleContext<'_>,
    op: &Operation,
    relation: &QualifiedName,
    fallback: LockMode,
) -> LockMode {
    ctx.strongest_lock(op, Some(relation))
        .map(|f| f.mode)
        .unwrap_or(fallback)
}

/// "an ACCESS EXCLUSIVE lock that blocks all reads and writes on `orders`".
pub(crate) fn lock_phrase(mode: LockMode, relation: &dyn Display) -> String {
    let name = mode.sql_name();
    let article = if name.starts_with(['A', 'E']) {
        "an"
    } else {
        "a"
    };
    format!(
        "{article} {name} lock that blocks {} on `{relation}`",
        mode.blocks()
    )
}

/// An identifier as it must be written in SQL, quoted exactly when PostgreSQL's `quote_ident`
/// would (the one quoting module, `migration_parser::pg_quote`).
pub(crate) fn ident(s: &str) -> String {
    migration_parser::pg_quote::quote_ident_minimal(s)
}

/// A qualified name as SQL.
pub(crate) fn qname(q: &QualifiedName) -> String {
    match &q.schema {
        Some(s) => format!("{}.{}", ident(s), ident(&q.name)),
        None => ident(&q.name),
    }
}

/// Insert `word` after the first occurrence of the keyword `after` in `sql`
/// (case-insensitive, whole word), e.g. `CONCURRENTLY` after `INDEX`.
pub(crate) fn insert_after_keyword(sql: &str, after: &str, word: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let needle = after.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower.get(from..)?.find(&needle) {
        let start = from + pos;
        let end = start + needle.len();
        let before_ok = start == 0 || !lower.as_bytes()[start - 1].is_ascii_alphanumeric();
        let after_ok = end == lower.len() || !lower.as_bytes()[end].is_ascii_alphanumeric();
        if before_ok && after_ok {
            return Some(format!("{} {word}{}", &sql[..end], &sql[end..]));
        }
        from = end;
    }
    None
}

/// "an ACCESS EXCLUSIVE lock", "a SHARE lock".
pub(crate) fn a_lock(mode: LockMode) -> String {
    let name = mode.sql_name();
    let article = if name.starts_with(['A', 'E']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name} lock")
}

/// SQL on one line: each line trimmed, joined with single spaces (for help text).
pub(crate) fn one_line(sql: &str) -> String {
    sql.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

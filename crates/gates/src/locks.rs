//! Stop-gap lock facts, used only when [`migration_parser::lock_facts`] returns nothing for an
//! operation (its knowledge table was still a stub when the rules were written). The parser's
//! table is the source of truth; delete this module once it covers every operation.

use migration_parser::{
    ConstraintKind, LockFact, LockMode, Operation, PgVersion, QualifiedName, Rewrite, Scan,
    Volatility,
};

const DOC: &str = "https://www.postgresql.org/docs/current/explicit-locking.html";

fn fact(relation: &QualifiedName, mode: LockMode, rewrite: Rewrite, scan: Scan) -> LockFact {
    LockFact { relation: relation.clone(), mode, rewrite, scan, doc: DOC }
}

/// The locks `op` takes, from PostgreSQL's documentation ("13.3.1 Table-Level Locks" and the
/// ALTER TABLE reference).
pub(crate) fn fallback_lock_facts(op: &Operation, version: PgVersion) -> Vec<LockFact> {
    use LockMode::*;
    use Operation as O;
    let none = Rewrite::None;
    let ae = |t: &QualifiedName| vec![fact(t, AccessExclusive, Rewrite::None, Scan::None)];
    match op {
        O::CreateTable { partition_of: Some(parent), .. } => {
            vec![fact(parent, AccessExclusive, none, Scan::None)]
        }
        O::DropTable { table, .. }
        | O::RenameTable { table, .. }
        | O::DropColumn { table, .. }
        | O::RenameColumn { table, .. }
        | O::DropNotNull { table, .. }
        | O::SetDefault { table, .. }
        | O::DropDefault { table, .. }
        | O::DropConstraint { table, .. }
        | O::RenameConstraint { table, .. } => ae(table),
        O::AddColumn { table, column, .. } => {
            let volatile = column.default.as_ref().is_some_and(|d| d.volatility == Volatility::Volatile)
                || column.serial
                || column.identity
                || column.generated_stored
                || (version.0 < 11 && column.default.is_some());
            let rewrite = if volatile { Rewrite::Table } else { Rewrite::None };
            let mut v = vec![fact(table, AccessExclusive, rewrite, Scan::None)];
            if let Some(ConstraintKind::ForeignKey { ref_table, .. }) = &column.references {
                v.push(fact(ref_table, ShareRowExclusive, none, Scan::None));
            }
            v
        }
        O::AlterColumnType { table, .. } => vec![fact(table, AccessExclusive, Rewrite::Table, Scan::Full)],
        O::SetNotNull { table, .. } => vec![fact(table, AccessExclusive, none, Scan::Full)],
        O::AddConstraint { table, constraint } => {
            let scan = if constraint.not_valid { Scan::None } else { Scan::Full };
            match &constraint.kind {
                ConstraintKind::ForeignKey { ref_table, .. } => vec![
                    fact(table, ShareRowExclusive, none, scan),
                    fact(ref_table, ShareRowExclusive, none, Scan::None),
                ],
                ConstraintKind::Check { .. } => vec![fact(table, AccessExclusive, none, scan)],
                ConstraintKind::Unique { using_index: Some(_), .. }
                | ConstraintKind::PrimaryKey { using_index: Some(_), .. } => ae(table),
                _ => vec![fact(table, AccessExclusive, Rewrite::Indexes, Scan::Full)],
            }
        }
        O::ValidateConstraint { table, .. } => vec![fact(table, ShareUpdateExclusive, none, Scan::Full)],
        O::CreateIndex { table, concurrently, .. } => {
            let mode = if *concurrently { ShareUpdateExclusive } else { Share };
            vec![fact(table, mode, Rewrite::Indexes, Scan::Full)]
        }
        O::DropIndex { name, concurrently, .. } => {
            let mode = if *concurrently { ShareUpdateExclusive } else { AccessExclusive };
            vec![fact(name, mode, none, Scan::None)]
        }
        O::RenameIndex { name, .. } => {
            let mode = if version.0 >= 12 { ShareUpdateExclusive } else { AccessExclusive };
            vec![fact(name, mode, none, Scan::None)]
        }
        O::Reindex { name, concurrently, target_kind } => {
            if *concurrently {
                vec![fact(name, ShareUpdateExclusive, Rewrite::Indexes, Scan::Full)]
            } else if target_kind == "index" {
                vec![fact(name, AccessExclusive, Rewrite::Indexes, Scan::Full)]
            } else {
                vec![fact(name, Share, Rewrite::Indexes, Scan::Full)]
            }
        }
        O::Truncate { tables, .. } => {
            tables.iter().map(|t| fact(t, AccessExclusive, Rewrite::Table, Scan::None)).collect()
        }
        O::Update { table, .. } | O::Delete { table, .. } | O::Insert { table, .. } => {
            vec![fact(table, RowExclusive, none, Scan::None)]
        }
        O::RefreshMaterializedView { name, concurrently } => {
            let mode = if *concurrently { Exclusive } else { AccessExclusive };
            vec![fact(name, mode, Rewrite::Table, Scan::Full)]
        }
        O::DropView { name, .. } => ae(name),
        O::LockTable { tables, mode } => tables.iter().map(|t| fact(t, *mode, none, Scan::None)).collect(),
        O::Maintenance { command, tables } => {
            let (mode, rewrite) = match command.as_str() {
                "vacuum full" | "cluster" => (AccessExclusive, Rewrite::Table),
                _ => (ShareUpdateExclusive, Rewrite::None),
            };
            tables.iter().map(|t| fact(t, mode, rewrite, Scan::Full)).collect()
        }
        O::AlterTableOther { table, action } => {
            let a = action.as_str();
            if a.starts_with("set logged") || a.starts_with("set unlogged") || a.starts_with("set tablespace") {
                vec![fact(table, AccessExclusive, Rewrite::Table, Scan::None)]
            } else if a.starts_with("set statistics") || a.starts_with("set storage parameters") {
                vec![fact(table, ShareUpdateExclusive, none, Scan::None)]
            } else if a.contains("trigger") {
                vec![fact(table, ShareRowExclusive, none, Scan::None)]
            } else {
                ae(table)
            }
        }
        O::AttachPartition { table, partition } => {
            let parent = if version.0 >= 12 { ShareUpdateExclusive } else { AccessExclusive };
            vec![fact(table, parent, none, Scan::None), fact(partition, AccessExclusive, none, Scan::Full)]
        }
        O::DetachPartition { table, partition, concurrently } => {
            let parent = if *concurrently { ShareUpdateExclusive } else { AccessExclusive };
            vec![fact(table, parent, none, Scan::None), fact(partition, AccessExclusive, none, Scan::None)]
        }
        O::CreateTrigger { table, .. } => vec![fact(table, ShareRowExclusive, none, Scan::None)],
        _ => Vec::new(),
    }
}

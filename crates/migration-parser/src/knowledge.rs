//! The knowledge table: which lock each [`Operation`] takes on which relation, whether it
//! rewrites or scans, per PostgreSQL major version 11–17 (other versions clamp to that range).
//!
//! Every fact carries the documentation page it comes from (`https://www.postgresql.org/docs/<v>/...`).
//! The comments cite the sentence of the docs each entry rests on. Where the docs are silent the
//! comment says where the fact comes from (`tablecmds.c`, `AlterTableGetLockLevel`).
//!
//! What the table cannot know without the catalog or earlier statements is exposed as functions:
//! [`set_not_null_skips_scan`] (a validated `CHECK (c IS NOT NULL)` exists),
//! [`check_proves_not_null`], [`attach_partition_skips_scan`]. Type changes (old type → new
//! type) are their own table, `type_changes.rs` ([`crate::type_change_outcome`]).

use crate::actions::{AlterTableAction, MaintenanceCommand, ReindexTarget};
use crate::kind::OperationKind;
use crate::locks::{LockFact, LockMode, Rewrite, Scan};
use crate::model::{
    ColumnDef, ConstraintDef, ConstraintKind, Operation, PgVersion, QualifiedName, Volatility,
};

use LockMode::*;

/// Documentation pages, one URL per supported major version 11..=17.
#[derive(Clone, Copy)]
enum Page {
    AlterTable,
    AlterIndex,
    CreateIndex,
    DropIndex,
    Reindex,
    CreateTable,
    DropTable,
    DropView,
    Truncate,
    RefreshMatview,
    CreateTrigger,
    Lock,
    Vacuum,
    Cluster,
    Analyze,
    ExplicitLocking,
    DropTrigger,
    DropSequence,
    AlterView,
    AlterSequence,
}

macro_rules! versions {
    ($page:literal) => {
        [
            concat!("https://www.postgresql.org/docs/11/", $page),
            concat!("https://www.postgresql.org/docs/12/", $page),
            concat!("https://www.postgresql.org/docs/13/", $page),
            concat!("https://www.postgresql.org/docs/14/", $page),
            concat!("https://www.postgresql.org/docs/15/", $page),
            concat!("https://www.postgresql.org/docs/16/", $page),
            concat!("https://www.postgresql.org/docs/17/", $page),
        ]
    };
}

fn doc(page: Page, v: PgVersion) -> &'static str {
    let urls: [&'static str; 7] = match page {
        Page::AlterTable => versions!("sql-altertable.html"),
        Page::AlterIndex => versions!("sql-alterindex.html"),
        Page::CreateIndex => versions!("sql-createindex.html"),
        Page::DropIndex => versions!("sql-dropindex.html"),
        Page::Reindex => versions!("sql-reindex.html"),
        Page::CreateTable => versions!("sql-createtable.html"),
        Page::DropTable => versions!("sql-droptable.html"),
        Page::DropView => versions!("sql-dropview.html"),
        Page::Truncate => versions!("sql-truncate.html"),
        Page::RefreshMatview => versions!("sql-refreshmaterializedview.html"),
        Page::CreateTrigger => versions!("sql-createtrigger.html"),
        Page::Lock => versions!("sql-lock.html"),
        Page::Vacuum => versions!("sql-vacuum.html"),
        Page::Cluster => versions!("sql-cluster.html"),
        Page::Analyze => versions!("sql-analyze.html"),
        Page::ExplicitLocking => versions!("explicit-locking.html"),
        Page::DropTrigger => versions!("sql-droptrigger.html"),
        Page::DropSequence => versions!("sql-dropsequence.html"),
        Page::AlterView => versions!("sql-alterview.html"),
        Page::AlterSequence => versions!("sql-altersequence.html"),
    };
    let i = (v.clamped().0 - PgVersion::MIN.0) as usize;
    urls[i.min(urls.len() - 1)]
}

struct Facts {
    v: PgVersion,
    out: Vec<LockFact>,
}

impl Facts {
    fn add(
        &mut self,
        relation: &QualifiedName,
        mode: LockMode,
        rewrite: Rewrite,
        scan: Scan,
        page: Page,
    ) {
        self.out.push(LockFact {
            relation: relation.clone(),
            mode,
            rewrite,
            scan,
            doc: doc(page, self.v),
        });
    }
}

/// The relation name used for "every table in the database" (`VACUUM FULL` without a table).
pub(crate) fn all_tables() -> QualifiedName {
    QualifiedName::new("*")
}

/// Whether `ADD COLUMN col` rewrites the table on `v`.
///
/// sql-altertable, Notes: "When a column is added with ADD COLUMN and a non-volatile DEFAULT is
/// specified, the default is evaluated at the time of the statement and the result stored in the
/// table's metadata. That value will be used for the column for all existing rows. [...] Adding a
/// column with a volatile DEFAULT or changing the type of an existing column will require the
/// entire table and its indexes to be rewritten." (PG 11+; before 11 any non-null default
/// rewrote). A stored generated column is computed for every row; an identity or `serial` column
/// fills existing rows from a sequence (`nextval()` is volatile).
pub fn add_column_rewrites(col: &ColumnDef, v: PgVersion) -> bool {
    if col.generated_stored || col.identity || col.serial {
        return true;
    }
    match &col.default {
        None => false,
        Some(d) if d.sql.trim().eq_ignore_ascii_case("null") => false,
        Some(d) => d.volatility == Volatility::Volatile || v.0 < 11,
    }
}

/// Whether `SET NOT NULL` can skip its full-table scan: from PG 12, "SET NOT NULL [...] the
/// table [...] scan [...] is skipped if a valid CHECK constraint is found which proves no NULL can
/// exist" (sql-altertable, `SET/DROP NOT NULL`). `validated_check_exists` must come from the
/// catalog or from earlier statements (see [`check_proves_not_null`] and
/// `MigrationState::not_null_proven`).
pub fn set_not_null_skips_scan(v: PgVersion, validated_check_exists: bool) -> bool {
    v.0 >= 12 && validated_check_exists
}

/// Whether a CHECK expression (as SQL text) proves `column IS NOT NULL`: `c IS NOT NULL`,
/// optionally parenthesised and optionally `AND`-ed with other conditions.
pub fn check_proves_not_null(check_expr: &str, column: &str) -> bool {
    let strip = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '(' && *c != ')')
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let col = column.trim_matches('"');
    let target = format!("{} is not null", col.to_lowercase());
    let expr = strip(check_expr);
    expr.to_lowercase()
        .split(" and ")
        .any(|part| part.trim().replace('"', "") == target)
}

/// Whether `ATTACH PARTITION` can skip scanning the partition: "the scan [...] can be avoided by
/// adding a valid CHECK constraint to the table that allows only rows satisfying the desired
/// partition constraint before running this command" (sql-altertable, `ATTACH PARTITION`).
/// `matching_check_exists` must come from the catalog or earlier statements.
pub fn attach_partition_skips_scan(matching_check_exists: bool) -> bool {
    matching_check_exists
}

/// Whether the operation cannot run inside a transaction block on `version` (the server raises
/// `25001 active_sql_transaction`, or the feature does not exist there).
///
/// `CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY` ("cannot be executed inside a
/// transaction block", sql-createindex / sql-dropindex), `REINDEX ... CONCURRENTLY` (PG 12+, and
/// `REINDEX SCHEMA|DATABASE|SYSTEM` always), `ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY`
/// (PG 14+), `VACUUM`, `CLUSTER` without a table, `CREATE/DROP DATABASE`, `ALTER SYSTEM`, and
/// `ALTER TYPE ... ADD VALUE` before PG 12 ("ALTER TYPE ... ADD VALUE (the form that adds a new
/// value to an enum type) cannot be executed inside a transaction block", sql-altertype, PG 11).
pub fn blocked_in_transaction(op: &Operation, version: PgVersion) -> bool {
    match op {
        Operation::CreateIndex { concurrently, .. } => *concurrently,
        Operation::DropIndex { concurrently, .. } => *concurrently,
        Operation::Reindex {
            concurrently,
            target_kind,
            ..
        } => *concurrently || target_kind.is_wide(),
        Operation::DetachPartition { concurrently, .. } => *concurrently,
        Operation::AddEnumValue { .. } => version.0 < 12,
        Operation::Maintenance { command, tables } => {
            command.is_vacuum() || (*command == MaintenanceCommand::Cluster && tables.is_empty())
        }
        Operation::CreateDatabase { .. }
        | Operation::DropDatabase { .. }
        | Operation::AlterSystem { .. } => true,
        _ => false,
    }
}

/// The locks an operation takes on PostgreSQL `version`. Operations that take no relation lock
/// (SET, BEGIN, ...) return an empty list.
pub fn lock_facts(op: &Operation, version: PgVersion) -> Vec<LockFact> {
    let v = version.clamped();
    let mut f = Facts { v, out: Vec::new() };
    match op {
        Operation::CreateTable { .. }
        | Operation::DropTable { .. }
        | Operation::RenameTable { .. }
        | Operation::RenameColumn { .. }
        | Operation::DropColumn { .. }
        | Operation::DropNotNull { .. }
        | Operation::SetDefault { .. }
        | Operation::DropDefault { .. }
        | Operation::DropConstraint { .. }
        | Operation::RenameConstraint { .. }
        | Operation::AddColumn { .. }
        | Operation::AlterColumnType { .. }
        | Operation::SetNotNull { .. }
        | Operation::ValidateConstraint { .. } => table_facts(&mut f, op),
        Operation::AlterTableOther { .. }
        | Operation::AttachPartition { .. }
        | Operation::DetachPartition { .. }
        | Operation::CreateTrigger { .. }
        | Operation::DropTrigger { .. } => alter_table_other_facts(&mut f, op),
        Operation::AddConstraint { table, constraint } => {
            add_constraint_facts(&mut f, table, constraint)
        }
        Operation::CreateIndex { .. }
        | Operation::DropIndex { .. }
        | Operation::RenameIndex { .. }
        | Operation::AttachIndexPartition { .. }
        | Operation::Reindex { .. } => index_facts(&mut f, op),
        Operation::Truncate { .. }
        | Operation::Update { .. }
        | Operation::Delete { .. }
        | Operation::Insert { .. }
        | Operation::DropView { .. }
        | Operation::RefreshMaterializedView { .. }
        | Operation::LockTable { .. }
        | Operation::Maintenance { .. }
        | Operation::DropSequence { .. }
        | Operation::RenameView { .. }
        | Operation::RenameSequence { .. }
        | Operation::AlterSequence { .. } => relation_facts(&mut f, op),
        // No relation lock (see `takes_relation_locks`); `DROP TRIGGER` without a table
        // (invalid in PostgreSQL) has none either.
        Operation::CreateEnum { .. }
        | Operation::AddEnumValue { .. }
        | Operation::RenameEnumValue { .. }
        | Operation::DropType { .. }
        | Operation::CreateSchema { .. }
        | Operation::DropSchema { .. }
        | Operation::DropDatabase { .. }
        | Operation::CreateView { .. }
        | Operation::Set { .. }
        | Operation::Reset { .. }
        | Operation::Transaction(_)
        | Operation::Do { .. }
        | Operation::CreateSequence { .. }
        | Operation::CreateExtension { .. }
        | Operation::CreateFunction { .. }
        | Operation::Comment { .. }
        | Operation::CreateDatabase { .. }
        | Operation::AlterSystem { .. }
        | Operation::DropFunction { .. }
        | Operation::CreateType { .. }
        | Operation::RenameType { .. }
        | Operation::CreateDomain { .. }
        | Operation::DropDomain { .. }
        | Operation::DropExtension { .. }
        | Operation::Other { .. } => {}
    }
    f.out
}

/// `CREATE|DROP TABLE`, the `ALTER TABLE` forms and triggers.
fn table_facts(f: &mut Facts, op: &Operation) {
    let (none, table_rw, v) = (Rewrite::None, Rewrite::Table, f.v);
    match op {
        Operation::CreateTable {
            table,
            columns,
            constraints,
            partition_of,
            ..
        } => {
            // A new table: nobody else can see it yet. Its ACCESS EXCLUSIVE lock is harmless.
            f.add(table, AccessExclusive, none, Scan::None, Page::CreateTable);
            // sql-createtable, PARTITION OF: "Creating a partition using PARTITION OF requires
            // taking an ACCESS EXCLUSIVE lock on the parent table" (ddl-partitioning contrasts it
            // with ATTACH PARTITION's SHARE UPDATE EXCLUSIVE).
            if let Some(parent) = partition_of {
                f.add(parent, AccessExclusive, none, Scan::None, Page::CreateTable);
            }
            // A foreign key takes SHARE ROW EXCLUSIVE on the referenced table (explicit-locking:
            // "Acquired by CREATE TRIGGER and some forms of ALTER TABLE"; the FK's triggers are
            // created on the referenced table).
            let refs = columns
                .iter()
                .filter_map(|c| c.references.as_ref())
                .chain(constraints.iter().map(|c| &c.kind))
                .filter_map(|k| match k {
                    ConstraintKind::ForeignKey { ref_table, .. } => Some(ref_table),
                    _ => None,
                });
            for r in refs {
                if r != table && !f.out.iter().any(|x| &x.relation == r) {
                    f.add(r, ShareRowExclusive, none, Scan::None, Page::CreateTable);
                }
            }
        }
        // DROP TABLE of a table with foreign keys also takes ACCESS EXCLUSIVE on the referenced
        // tables (their FK triggers are dropped; observed on PG 15) — only the catalog knows them.
        // sql-droptable / explicit-locking: "ACCESS EXCLUSIVE: Acquired by the DROP TABLE,
        // TRUNCATE, REINDEX, CLUSTER, VACUUM FULL, and REFRESH MATERIALIZED VIEW (without
        // CONCURRENTLY) commands. Many forms of ALTER INDEX and ALTER TABLE also acquire a lock at
        // this level."
        Operation::DropTable { table, .. } => {
            f.add(table, AccessExclusive, none, Scan::None, Page::DropTable)
        }
        // sql-altertable: "An ACCESS EXCLUSIVE lock is acquired unless explicitly noted." RENAME,
        // DROP COLUMN ("does not physically remove the column, but simply makes it invisible"),
        // DROP/SET DEFAULT, DROP NOT NULL, DROP/RENAME CONSTRAINT are catalog-only.
        Operation::RenameTable { table, .. }
        | Operation::RenameColumn { table, .. }
        | Operation::DropColumn { table, .. }
        | Operation::DropNotNull { table, .. }
        | Operation::SetDefault { table, .. }
        | Operation::DropDefault { table, .. }
        | Operation::DropConstraint { table, .. }
        | Operation::RenameConstraint { table, .. } => {
            f.add(table, AccessExclusive, none, Scan::None, Page::AlterTable)
        }
        Operation::AddColumn { table, column, .. } => {
            let rewrite = if add_column_rewrites(column, v) {
                table_rw
            } else {
                none
            };
            // NOT NULL without a default, a CHECK, or a new UNIQUE/PRIMARY KEY index read every
            // existing row under the lock (a rewrite reads them anyway).
            let scans = column.check.is_some()
                || column.unique
                || column.primary_key
                || (column.not_null && column.default.is_none() && rewrite == none);
            f.add(
                table,
                AccessExclusive,
                rewrite,
                if scans || rewrite == table_rw {
                    Scan::Full
                } else {
                    Scan::None
                },
                Page::AlterTable,
            );
            if let Some(ConstraintKind::ForeignKey { ref_table, .. }) = &column.references {
                f.add(
                    ref_table,
                    ShareRowExclusive,
                    none,
                    Scan::None,
                    Page::AlterTable,
                );
            }
        }
        // sql-altertable, SET DATA TYPE: "Adding a column with a volatile DEFAULT or changing the
        // type of an existing column will require the entire table and its indexes to be
        // rewritten." Without the old type the table assumes the rewrite; see
        // `type_change_rewrites` for the binary-coercible exceptions.
        Operation::AlterColumnType { table, .. } => f.add(
            table,
            AccessExclusive,
            table_rw,
            Scan::Full,
            Page::AlterTable,
        ),
        // sql-altertable, SET NOT NULL: "SET NOT NULL may only be applied to a column provided
        // none of the records in the table contain a NULL value for the column. Ordinarily this
        // is checked during the ALTER TABLE by scanning the entire table; however, if a valid
        // CHECK constraint is found which proves no NULL can exist, then the table scan is
        // skipped." (the skip exists from PG 12; see `set_not_null_skips_scan`).
        Operation::SetNotNull { table, .. } => {
            f.add(table, AccessExclusive, none, Scan::Full, Page::AlterTable)
        }
        // sql-altertable, VALIDATE CONSTRAINT: "This command acquires a SHARE UPDATE EXCLUSIVE
        // lock." For a foreign key the referenced table also gets ROW SHARE; the operation does
        // not name it — find the constraint with `MigrationState::constraint` or the
        // catalog.
        Operation::ValidateConstraint { table, .. } => f.add(
            table,
            ShareUpdateExclusive,
            none,
            Scan::Full,
            Page::AlterTable,
        ),
        // Dispatched by `lock_facts`: other operations never reach here.
        _ => {}
    }
}

/// `ALTER TABLE` actions without an operation of their own, partitions and triggers.
fn alter_table_other_facts(f: &mut Facts, op: &Operation) {
    let (none, v) = (Rewrite::None, f.v);
    match op {
        Operation::AlterTableOther { table, action } => {
            let (mode, rewrite, scan) = alter_table_other(action);
            f.add(table, mode, rewrite, scan, Page::AlterTable);
        }
        // sql-altertable, ATTACH PARTITION: "Attaching a partition acquires a SHARE UPDATE
        // EXCLUSIVE lock on the parent table, in addition to the ACCESS EXCLUSIVE locks on the
        // table being attached" (PG 12+; PG 11 locked the parent ACCESS EXCLUSIVE). "[...] a
        // full table scan is performed on the table being attached to verify that no existing
        // row in the table violates the partition constraint. It is possible to avoid this scan
        // by adding a valid CHECK constraint" (see `attach_partition_skips_scan`).
        Operation::AttachPartition { table, partition } => {
            let parent = if v.0 >= 12 {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            };
            f.add(table, parent, none, Scan::None, Page::AlterTable);
            f.add(
                partition,
                AccessExclusive,
                none,
                Scan::Full,
                Page::AlterTable,
            );
        }
        // sql-altertable, DETACH PARTITION: "If CONCURRENTLY is specified [PG 14+] [...] a SHARE
        // UPDATE EXCLUSIVE lock is taken on both parent table and partition"; otherwise ACCESS
        // EXCLUSIVE on both.
        Operation::DetachPartition {
            table,
            partition,
            concurrently,
        } => {
            let mode = if *concurrently && v.0 >= 14 {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            };
            f.add(table, mode, none, Scan::None, Page::AlterTable);
            f.add(partition, mode, none, Scan::None, Page::AlterTable);
        }
        // sql-createtrigger / explicit-locking: SHARE ROW EXCLUSIVE "Acquired by CREATE TRIGGER".
        Operation::CreateTrigger { table, .. } => f.add(
            table,
            ShareRowExclusive,
            none,
            Scan::None,
            Page::CreateTrigger,
        ),
        // trigger.c, RemoveTriggerById: the trigger's table is opened with
        // AccessExclusiveLock (sql-droptrigger does not say; observed on PG 15).
        Operation::DropTrigger {
            table: Some(table), ..
        } => f.add(table, AccessExclusive, none, Scan::None, Page::DropTrigger),
        // Dispatched by `lock_facts`: other operations never reach here.
        _ => {}
    }
}

/// `ADD CONSTRAINT`: the lock depends on the kind of constraint.
fn add_constraint_facts(f: &mut Facts, table: &QualifiedName, constraint: &ConstraintDef) {
    let none = Rewrite::None;
    let scan = if constraint.not_valid {
        Scan::None
    } else {
        Scan::Full
    };
    match &constraint.kind {
        // sql-altertable: "ADD FOREIGN KEY requires a SHARE ROW EXCLUSIVE lock on the
        // referenced table, in addition to the lock on the table on which the constraint
        // is declared" — which is also SHARE ROW EXCLUSIVE (explicit-locking, SHARE ROW
        // EXCLUSIVE: "some forms of ALTER TABLE"; AlterTableGetLockLevel: AT_AddConstraint
        // with CONSTR_FOREIGN → ShareRowExclusiveLock). NOT VALID skips the check of
        // existing rows.
        ConstraintKind::ForeignKey { ref_table, .. } => {
            f.add(table, ShareRowExclusive, none, scan, Page::AlterTable);
            if ref_table != table {
                f.add(
                    ref_table,
                    ShareRowExclusive,
                    none,
                    Scan::None,
                    Page::AlterTable,
                );
            }
        }
        // CHECK: ACCESS EXCLUSIVE; "the constraint will be checked against all existing
        // rows unless NOT VALID".
        ConstraintKind::Check { .. } => f.add(table, AccessExclusive, none, scan, Page::AlterTable),
        // UNIQUE / PRIMARY KEY USING INDEX: "the index is [...] converted to a constraint
        // [...] no index build": brief ACCESS EXCLUSIVE. (PRIMARY KEY USING INDEX on a
        // nullable column also runs SET NOT NULL, which scans.)
        ConstraintKind::PrimaryKey {
            using_index: Some(_),
            ..
        }
        | ConstraintKind::Unique {
            using_index: Some(_),
            ..
        } => f.add(table, AccessExclusive, none, Scan::None, Page::AlterTable),
        // UNIQUE / PRIMARY KEY / EXCLUDE build an index under ACCESS EXCLUSIVE: every row
        // is read while reads and writes wait.
        ConstraintKind::PrimaryKey { .. }
        | ConstraintKind::Unique { .. }
        | ConstraintKind::Exclusion { .. } => {
            f.add(table, AccessExclusive, none, Scan::Full, Page::AlterTable)
        }
    }
}

/// Index builds, drops, renames, attachments and `REINDEX`.
fn index_facts(f: &mut Facts, op: &Operation) {
    let (none, v) = (Rewrite::None, f.v);
    match op {
        Operation::CreateIndex {
            table,
            concurrently,
            only,
            ..
        } => {
            // sql-createindex: "Normally PostgreSQL locks the table to be indexed against writes
            // and performs the entire index build with a single scan of the table." (SHARE).
            // CONCURRENTLY: SHARE UPDATE EXCLUSIVE ("builds the index without taking any locks
            // that prevent concurrent inserts, updates, or deletes"), two scans.
            // ON ONLY: "the index is [...] marked invalid" and not built on partitions.
            let mode = if *concurrently {
                ShareUpdateExclusive
            } else {
                Share
            };
            f.add(
                table,
                mode,
                none,
                if *only { Scan::None } else { Scan::Full },
                Page::CreateIndex,
            );
        }
        // sql-dropindex: without CONCURRENTLY "DROP INDEX acquires an ACCESS EXCLUSIVE lock on
        // the table, blocking other accesses until the index drop can be completed. With this
        // option, the command instead waits until conflicting transactions have completed."
        // The relation reported is the index: its table is only known from the catalog.
        Operation::DropIndex {
            name, concurrently, ..
        } => {
            let mode = if *concurrently {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            };
            f.add(name, mode, none, Scan::None, Page::DropIndex);
        }
        // sql-alterindex, RENAME: "Renaming an index acquires a SHARE UPDATE EXCLUSIVE lock."
        // (PG 12+; PG 11 took ACCESS EXCLUSIVE.)
        Operation::RenameIndex { name, .. } => {
            let mode = if v.0 >= 12 {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            };
            f.add(name, mode, none, Scan::None, Page::AlterIndex);
        }
        // sql-alterindex: "An ACCESS EXCLUSIVE lock is held unless explicitly noted" (ATTACH
        // PARTITION is not): catalog-only, brief. The attached index is locked ACCESS EXCLUSIVE
        // too (tablecmds.c, ATExecAttachPartitionIdx).
        Operation::AttachIndexPartition { index, partition } => {
            f.add(index, AccessExclusive, none, Scan::None, Page::AlterIndex);
            f.add(
                partition,
                AccessExclusive,
                none,
                Scan::None,
                Page::AlterIndex,
            );
        }
        // sql-reindex: "REINDEX is similar to a drop and recreate of the index [...] locks out
        // writes but not reads of the index's parent table. It also takes an ACCESS EXCLUSIVE
        // lock on the specific index being processed, which will block reads that attempt to
        // use that index." (observed on PG 15: REINDEX INDEX i → i ACCESS EXCLUSIVE + its table
        // SHARE; REINDEX TABLE t → t SHARE + every index of t ACCESS EXCLUSIVE, which blocks the
        // planning of any query on t). CONCURRENTLY (PG 12+): SHARE UPDATE EXCLUSIVE. Before 12
        // CONCURRENTLY does not exist: the plain form is what can run. The relation reported is
        // the one named (index, table, schema or database).
        Operation::Reindex {
            name,
            concurrently,
            target_kind,
        } => {
            let mode = if *concurrently && v.0 >= 12 {
                ShareUpdateExclusive
            } else if *target_kind == ReindexTarget::Index {
                AccessExclusive
            } else {
                Share
            };
            f.add(name, mode, Rewrite::Indexes, Scan::Full, Page::Reindex);
        }
        // Dispatched by `lock_facts`: other operations never reach here.
        _ => {}
    }
}

/// Data changes, views, explicit locks, maintenance and sequences.
fn relation_facts(f: &mut Facts, op: &Operation) {
    let (none, table_rw) = (Rewrite::None, Rewrite::Table);
    match op {
        // sql-truncate: "TRUNCATE acquires an ACCESS EXCLUSIVE lock on each table it operates
        // on". It swaps in empty files (new relfilenode) but that does not take time growing with
        // the table, so it is not reported as a rewrite.
        Operation::Truncate { tables, .. } => {
            for t in tables {
                f.add(t, AccessExclusive, none, Scan::None, Page::Truncate);
            }
        }
        // explicit-locking: ROW EXCLUSIVE "acquired by any command that modifies data in a table".
        Operation::Update {
            table, has_where, ..
        }
        | Operation::Delete {
            table, has_where, ..
        } => f.add(
            table,
            RowExclusive,
            none,
            if *has_where { Scan::None } else { Scan::Full },
            Page::ExplicitLocking,
        ),
        Operation::Insert { table, .. } => {
            f.add(table, RowExclusive, none, Scan::None, Page::ExplicitLocking)
        }
        Operation::DropView { name, .. } => {
            f.add(name, AccessExclusive, none, Scan::None, Page::DropView)
        }
        // sql-refreshmaterializedview: without CONCURRENTLY the matview is replaced under ACCESS
        // EXCLUSIVE (explicit-locking lists REFRESH MATERIALIZED VIEW (without CONCURRENTLY));
        // CONCURRENTLY takes EXCLUSIVE ("Acquired by REFRESH MATERIALIZED VIEW CONCURRENTLY"):
        // reads continue, the new contents are diffed in.
        Operation::RefreshMaterializedView { name, concurrently } => {
            if *concurrently {
                f.add(name, Exclusive, none, Scan::Full, Page::RefreshMatview);
            } else {
                f.add(
                    name,
                    AccessExclusive,
                    table_rw,
                    Scan::Full,
                    Page::RefreshMatview,
                );
            }
        }
        // sql-lock: the mode named, ACCESS EXCLUSIVE when none is.
        Operation::LockTable { tables, mode } => {
            for t in tables {
                f.add(t, *mode, none, Scan::None, Page::Lock);
            }
        }
        Operation::Maintenance { command, tables } => {
            let targets: Vec<QualifiedName> = if tables.is_empty() {
                vec![all_tables()]
            } else {
                tables.clone()
            };
            // sql-vacuum: "VACUUM FULL [...] requires an ACCESS EXCLUSIVE lock on each table while
            // it is being processed" and writes a new copy; plain VACUUM/ANALYZE take SHARE
            // UPDATE EXCLUSIVE (explicit-locking). sql-cluster: "When a table is being clustered,
            // an ACCESS EXCLUSIVE lock is acquired on it."
            let (mode, rewrite, scan, page) = match command {
                MaintenanceCommand::VacuumFull => {
                    (AccessExclusive, table_rw, Scan::Full, Page::Vacuum)
                }
                MaintenanceCommand::Cluster => {
                    (AccessExclusive, table_rw, Scan::Full, Page::Cluster)
                }
                MaintenanceCommand::Analyze => {
                    (ShareUpdateExclusive, none, Scan::None, Page::Analyze)
                }
                MaintenanceCommand::Vacuum | MaintenanceCommand::VacuumAnalyze => {
                    (ShareUpdateExclusive, none, Scan::Full, Page::Vacuum)
                }
            };
            for t in &targets {
                f.add(t, mode, rewrite, scan, page);
            }
        }
        // sql-dropsequence: a sequence is a relation, dropped like a table under ACCESS
        // EXCLUSIVE (dependency.c locks every relation it deletes).
        Operation::DropSequence { name, .. } => {
            f.add(name, AccessExclusive, none, Scan::None, Page::DropSequence)
        }
        // sql-alterview, RENAME: a relation rename (RenameRelation: AccessExclusiveLock).
        Operation::RenameView { name, .. } => {
            f.add(name, AccessExclusive, none, Scan::None, Page::AlterView)
        }
        // sql-altersequence, RENAME: a relation rename (RenameRelation: AccessExclusiveLock;
        // nextval() waits until the transaction ends).
        Operation::RenameSequence { name, .. } => {
            f.add(name, AccessExclusive, none, Scan::None, Page::AlterSequence)
        }
        // sql-altersequence: sequence.c, AlterSequence opens the sequence with
        // ShareRowExclusiveLock (PG 10+), which waits for and blocks nextval() (ROW EXCLUSIVE):
        // inserts that draw from the sequence wait until the transaction ends.
        Operation::AlterSequence { name, .. } => f.add(
            name,
            ShareRowExclusive,
            none,
            Scan::None,
            Page::AlterSequence,
        ),
        // Dispatched by `lock_facts`: other operations never reach here.
        _ => {}
    }
}

/// Whether operations of `kind` take a lock on a relation the knowledge table names
/// ([`lock_facts`] returns at least one fact for them). An exhaustive match: a new
/// [`OperationKind`] does not compile until it is placed here, and the coverage test in
/// `tests/knowledge.rs` checks every kind of [`OperationKind::ALL`] against [`lock_facts`].
///
/// The kinds that take none lock no relation (settings, transaction control, enum and other
/// types, schemas, databases, functions, extensions, a new view or sequence nobody sees yet), or
/// only objects the table does not describe: `DROP TYPE|DOMAIN|SCHEMA ... CASCADE` (what it
/// drops is only known from the catalog), `COMMENT ON` (SHARE UPDATE EXCLUSIVE on the relation
/// commented, catalog-only and brief), `DO` and [`Operation::Other`] (opaque).
pub fn takes_relation_locks(kind: OperationKind) -> bool {
    use OperationKind as K;
    match kind {
        K::CreateTable
        | K::DropTable
        | K::RenameTable
        | K::AddColumn
        | K::DropColumn
        | K::RenameColumn
        | K::AlterColumnType
        | K::SetNotNull
        | K::DropNotNull
        | K::SetDefault
        | K::DropDefault
        | K::AddConstraint
        | K::ValidateConstraint
        | K::DropConstraint
        | K::RenameConstraint
        | K::CreateIndex
        | K::DropIndex
        | K::RenameIndex
        | K::Reindex
        | K::Truncate
        | K::Update
        | K::Delete
        | K::Insert
        | K::DropView
        | K::RefreshMaterializedView
        | K::LockTable
        | K::Maintenance
        | K::AlterTableOther
        | K::AttachPartition
        | K::DetachPartition
        | K::CreateTrigger
        | K::AttachIndexPartition
        | K::DropTrigger
        | K::RenameView
        | K::DropSequence
        | K::RenameSequence
        | K::AlterSequence => true,
        K::CreateEnum
        | K::AddEnumValue
        | K::RenameEnumValue
        | K::DropType
        | K::CreateSchema
        | K::DropSchema
        | K::DropDatabase
        | K::CreateView
        | K::Set
        | K::Reset
        | K::Transaction
        | K::Do
        | K::CreateSequence
        | K::CreateExtension
        | K::CreateFunction
        | K::Comment
        | K::CreateDatabase
        | K::AlterSystem
        | K::DropFunction
        | K::CreateType
        | K::RenameType
        | K::CreateDomain
        | K::DropDomain
        | K::DropExtension
        | K::Other => false,
    }
}

/// Lock, rewrite and scan of the `ALTER TABLE` actions of [`Operation::AlterTableOther`].
fn alter_table_other(action: &AlterTableAction) -> (LockMode, Rewrite, Scan) {
    use AlterTableAction as A;
    match action {
        // sql-altertable, SET LOGGED/UNLOGGED: "This form changes the table from unlogged to
        // logged or vice-versa [...]" — implemented as a rewrite (ATRewriteTables); SET
        // TABLESPACE: "moves the data file(s) associated with the table to the new tablespace";
        // SET ACCESS METHOD (PG 15+) rewrites the table.
        A::SetLogged | A::SetUnlogged | A::SetAccessMethod => {
            (AccessExclusive, Rewrite::Table, Scan::Full)
        }
        A::SetTablespace { .. } => (AccessExclusive, Rewrite::Table, Scan::None),
        // "SET STATISTICS acquires a SHARE UPDATE EXCLUSIVE lock."; CLUSTER ON / SET WITHOUT
        // CLUSTER: "requires SHARE UPDATE EXCLUSIVE".
        A::SetStatistics { .. } | A::ClusterOn { .. } | A::SetWithoutCluster => {
            (ShareUpdateExclusive, Rewrite::None, Scan::None)
        }
        // SET ( storage_parameter ): "SHARE UPDATE EXCLUSIVE lock will be taken for fillfactor,
        // toast and autovacuum storage parameters, as well as the planner parameter
        // parallel_workers" (the common ones; other parameters take ACCESS EXCLUSIVE).
        A::SetStorageParameters | A::ResetStorageParameters => {
            (ShareUpdateExclusive, Rewrite::None, Scan::None)
        }
        // "Enabling and disabling triggers acquires a SHARE ROW EXCLUSIVE lock" (wording of PG
        // 9.5+; ENABLE/DISABLE TRIGGER).
        A::EnableTrigger { .. } | A::DisableTrigger { .. } => {
            (ShareRowExclusive, Rewrite::None, Scan::None)
        }
        // Everything else: "An ACCESS EXCLUSIVE lock is acquired unless explicitly noted",
        // catalog-only.
        A::SetSchema { .. }
        | A::SetWithoutOids
        | A::SetStorage { .. }
        | A::SetCompression { .. }
        | A::SetAttributeOptions { .. }
        | A::AddIdentity { .. }
        | A::ColumnOptions { .. }
        | A::ReplicaIdentity
        | A::EnableRule
        | A::DisableRule
        | A::EnableRowLevelSecurity
        | A::DisableRowLevelSecurity
        | A::ForceRowLevelSecurity
        | A::NoForceRowLevelSecurity
        | A::OwnerTo
        | A::Inherit { .. }
        | A::NoInherit { .. }
        | A::OfType
        | A::NotOfType
        | A::Other { .. } => (AccessExclusive, Rewrite::None, Scan::None),
    }
}

//! The knowledge table: which lock each operation takes on which table, and what it rewrites,
//! per PostgreSQL major version.

use serde::{Deserialize, Serialize};

use crate::names::QualifiedName;

/// PostgreSQL table-level lock modes, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LockMode {
    /// `ACCESS SHARE`: SELECT.
    AccessShare,
    /// `ROW SHARE`: SELECT FOR UPDATE.
    RowShare,
    /// `ROW EXCLUSIVE`: INSERT/UPDATE/DELETE.
    RowExclusive,
    /// `SHARE UPDATE EXCLUSIVE`: VACUUM, CREATE INDEX CONCURRENTLY, VALIDATE CONSTRAINT.
    ShareUpdateExclusive,
    /// `SHARE`: CREATE INDEX.
    Share,
    /// `SHARE ROW EXCLUSIVE`: CREATE TRIGGER, ADD FOREIGN KEY (both tables).
    ShareRowExclusive,
    /// `EXCLUSIVE`: REFRESH MATERIALIZED VIEW CONCURRENTLY.
    Exclusive,
    /// `ACCESS EXCLUSIVE`: most ALTER TABLE forms, DROP, TRUNCATE.
    AccessExclusive,
}

impl LockMode {
    /// The name as PostgreSQL's docs spell it (`ACCESS EXCLUSIVE`).
    pub fn sql_name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// The name as `pg_locks.mode` spells it (`AccessExclusiveLock`).
    pub fn pg_locks_name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "AccessShareLock",
            LockMode::RowShare => "RowShareLock",
            LockMode::RowExclusive => "RowExclusiveLock",
            LockMode::ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            LockMode::Share => "ShareLock",
            LockMode::ShareRowExclusive => "ShareRowExclusiveLock",
            LockMode::Exclusive => "ExclusiveLock",
            LockMode::AccessExclusive => "AccessExclusiveLock",
        }
    }

    /// Parse a `pg_locks.mode` value.
    pub fn from_pg_locks_name(s: &str) -> Option<LockMode> {
        LockMode::ALL.into_iter().find(|m| m.pg_locks_name() == s)
    }

    /// All modes, weakest first.
    pub const ALL: [LockMode; 8] = [
        LockMode::AccessShare,
        LockMode::RowShare,
        LockMode::RowExclusive,
        LockMode::ShareUpdateExclusive,
        LockMode::Share,
        LockMode::ShareRowExclusive,
        LockMode::Exclusive,
        LockMode::AccessExclusive,
    ];

    /// Whether a lock in `self` mode conflicts with one in `other` mode (PostgreSQL's
    /// table-level lock conflict matrix, docs "13.3.1 Table-Level Locks").
    pub fn conflicts_with(self, other: LockMode) -> bool {
        use LockMode::*;
        let conflicts: &[LockMode] = match self {
            AccessShare => &[AccessExclusive],
            RowShare => &[Exclusive, AccessExclusive],
            RowExclusive => &[Share, ShareRowExclusive, Exclusive, AccessExclusive],
            ShareUpdateExclusive => &[
                ShareUpdateExclusive,
                Share,
                ShareRowExclusive,
                Exclusive,
                AccessExclusive,
            ],
            Share => &[
                RowExclusive,
                ShareUpdateExclusive,
                ShareRowExclusive,
                Exclusive,
                AccessExclusive,
            ],
            ShareRowExclusive => &[
                RowExclusive,
                ShareUpdateExclusive,
                Share,
                ShareRowExclusive,
                Exclusive,
                AccessExclusive,
            ],
            Exclusive => &[
                RowShare,
                RowExclusive,
                ShareUpdateExclusive,
                Share,
                ShareRowExclusive,
                Exclusive,
                AccessExclusive,
            ],
            AccessExclusive => &LockMode::ALL,
        };
        conflicts.contains(&other)
    }

    /// What a lock in this mode blocks, in words for messages
    /// (`reads and writes`, `writes`, `other schema changes`).
    pub fn blocks(self) -> &'static str {
        use LockMode::*;
        match self {
            AccessExclusive => "all reads and writes",
            Exclusive => "all writes and SELECT ... FOR UPDATE/SHARE",
            ShareRowExclusive | Share => "all writes (INSERT, UPDATE, DELETE)",
            ShareUpdateExclusive => "VACUUM and other schema changes, but not reads or writes",
            RowExclusive | RowShare | AccessShare => "only conflicting schema changes",
        }
    }

    /// Whether this mode blocks ordinary writes (INSERT/UPDATE/DELETE).
    pub fn blocks_writes(self) -> bool {
        self.conflicts_with(LockMode::RowExclusive)
    }

    /// Whether this mode blocks ordinary reads (SELECT).
    pub fn blocks_reads(self) -> bool {
        self.conflicts_with(LockMode::AccessShare)
    }
}

impl std::fmt::Display for LockMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.sql_name())
    }
}

/// What an operation rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rewrite {
    /// Catalog-only change.
    None,
    /// The whole table (and its indexes) is rewritten: time grows with table size.
    Table,
    /// Only indexes are rebuilt.
    Indexes,
}

/// Whether the operation reads the whole table while holding its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scan {
    /// No scan.
    None,
    /// A full scan under the lock (SET NOT NULL without a proving CHECK, validating FK/CHECK,
    /// building an index).
    Full,
}

/// The lock one operation takes on one relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFact {
    /// The relation locked.
    pub relation: QualifiedName,
    /// The mode.
    pub mode: LockMode,
    /// What is rewritten.
    pub rewrite: Rewrite,
    /// Whether the relation is scanned under the lock.
    pub scan: Scan,
    /// Where PostgreSQL documents it.
    pub doc: &'static str,
}

//! What the seeding reports: rows per table, tables skipped with why, columns that fell back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Values known to be valid per `(table, column)` of the pre-migration schema (table
/// unqualified, in the proof's schema), as text (cast to the column's type on insert).
pub type ValueHints = BTreeMap<(String, String), Vec<String>>;

/// A column that could not take its preferred values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ColumnFallback {
    /// Table.
    pub table: String,
    /// Column.
    pub column: String,
    /// What happened (names and SQLSTATEs only, never a value).
    pub reason: String,
}

/// What [`seed_rows`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedReport {
    /// Rows inserted per table (tables that got at least one).
    pub rows: BTreeMap<String, usize>,
    /// Tables that got no row, with why.
    pub skipped: BTreeMap<String, String>,
    /// Tables that got fewer rows than asked, with why the last row failed.
    pub short: BTreeMap<String, String>,
    /// Columns that fell back (to other candidates than the hints or the migration's needs, or
    /// to NULL).
    pub fallbacks: Vec<ColumnFallback>,
    /// `(table, column)` whose rows took at least one value from the hints.
    pub hinted: Vec<(String, String)>,
}

impl SeedReport {
    /// Rows inserted in all.
    pub fn total(&self) -> usize {
        self.rows.values().sum()
    }

    /// `None` when every table got its rows; otherwise what a proof prints after "data round
    /// trip partial: " (`table x: why; table y: why`).
    pub fn partial(&self) -> Option<String> {
        let parts: Vec<String> = self
            .skipped
            .iter()
            .chain(&self.short)
            .map(|(t, why)| format!("table {t}: {why}"))
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

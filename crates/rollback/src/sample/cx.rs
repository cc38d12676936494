//! What the seeding of every table shares.

use std::collections::{BTreeMap, HashMap};

use topology::catalog::Catalog;

use super::report::{SeedReport, ValueHints};
use super::types::TypeInfo;

/// What every table's seeding shares.
pub(super) struct SeedCx<'a> {
    /// The working catalog (with the temporary constraints).
    pub cat: &'a Catalog,
    /// Real values per column.
    pub hints: &'a ValueHints,
    /// Types the migration casts columns to.
    pub casts: &'a BTreeMap<(String, String), Vec<String>>,
    /// Rows per table.
    pub n: usize,
    /// The `pg_temp` cast tester is there.
    pub checker: bool,
    /// Types described so far.
    pub types: HashMap<String, TypeInfo>,
    /// Foreign keys `(table, constraint)` left NULL because the parent had no row yet (a
    /// cycle): filled once every table is seeded.
    pub later: Vec<(String, String)>,
    /// The report being filled.
    pub report: &'a mut SeedReport,
}

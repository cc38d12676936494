//! How deep the one differ compares ([`DiffMode`]); what it reports
//! ([`evidence::CatalogDifference`], naming objects with [`evidence::ObjectRef`]) is evidence.

use serde::{Deserialize, Serialize};

/// How deep [`diff_catalogs`](super::diff_catalogs) compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffMode {
    /// What makes two tenants share one rehearsal (drift, [`Catalog::fingerprint`](super::Catalog::fingerprint)): tables,
    /// views, columns (not their order), constraints, indexes, sequences and enum labels.
    Shape,
    /// Every difference an exact round trip must not leave (the rollback proof): the shape plus
    /// column order, triggers, row security, storage parameters, comments on indexes, sequences
    /// and types, domains, composite types, functions, extensions and schemas. Identity
    /// sequences are compared through their columns.
    Exact,
}

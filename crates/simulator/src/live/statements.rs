//! The application's own queries: normalised `pg_stat_statements` entries that use a table or
//! column the migration drops, renames or converts incompatibly.

use evidence::QueryUse;
use migration_parser::Migration;

use super::{LiveDatabase, PerShard};
use crate::control::CancelToken;

/// The query uses of every shard of `db`. (Not implemented yet: nothing is read.)
pub(crate) async fn read(
    _migration: &Migration,
    _db: &LiveDatabase<'_>,
    _cancel: &CancelToken,
) -> PerShard<QueryUse> {
    PerShard::new()
}

//! Traffic on the relations the migration locks: `pg_stat_user_tables` sampled twice a window
//! apart (or `pg_stat_statements`), as rates.

use evidence::TableTraffic;
use migration_parser::Migration;

use super::{LiveDatabase, LiveOptions, PerShard};
use crate::control::CancelToken;

/// The traffic of every shard of `db`. (Not implemented yet: nothing is read.)
pub(crate) async fn read(
    _migration: &Migration,
    _db: &LiveDatabase<'_>,
    _options: &LiveOptions,
    _cancel: &CancelToken,
) -> PerShard<TableTraffic> {
    PerShard::new()
}

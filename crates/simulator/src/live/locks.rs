//! Lock-queue risk now: sessions holding or waiting for a lock on a relation the migration
//! locks in a conflicting mode (one `pg_stat_activity` × `pg_locks` read per database).

use evidence::LockHolder;
use migration_parser::Migration;

use super::{LiveDatabase, PerShard};
use crate::control::CancelToken;

/// The lock holders of every shard of `db`. (Not implemented yet: nothing is read.)
pub(crate) async fn read(
    _migration: &Migration,
    _db: &LiveDatabase<'_>,
    _cancel: &CancelToken,
) -> PerShard<LockHolder> {
    PerShard::new()
}

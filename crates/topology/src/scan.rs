//! Introspect a whole fleet: every shard's [`Catalog`], with bounded concurrency, one set-based
//! introspection per (instance, database) rather than per shard.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt as _};

use crate::catalog::{Catalog, introspect_schema, introspect_schemas};
use crate::{Fleet, TopologyError};

/// Options for [`introspect_fleet`].
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// (instance, database) groups introspected at the same time.
    pub concurrency: usize,
    /// Schemas per introspection call (keeps result sets bounded on huge databases).
    pub chunk: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            concurrency: 4,
            chunk: 2000,
        }
    }
}

/// The result of [`introspect_fleet`]: catalogs of the shards that could be read, and the
/// errors of those that could not (by instance/database group).
#[derive(Debug, Default)]
pub struct FleetCatalogs {
    /// Catalog per shard id.
    pub catalogs: BTreeMap<String, Catalog>,
    /// Failures: the shard ids affected and the error.
    pub errors: Vec<(Vec<String>, TopologyError)>,
}

/// Introspect every shard of `fleet`. Shards are grouped by (instance, database); each group
/// is read with [`introspect_schemas`] over one connection, `opts.concurrency` groups at a
/// time. An unreachable instance fails only its own shards.
pub async fn introspect_fleet(fleet: &Fleet, opts: &ScanOptions) -> FleetCatalogs {
    let mut groups: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for s in &fleet.shards {
        groups
            .entry((s.instance.clone(), s.location.database().to_string()))
            .or_default()
            .push((s.id.clone(), s.location.schema().to_string()));
    }
    let mut jobs = Vec::new();
    for ((inst, db), shards) in groups {
        for chunk in shards.chunks(opts.chunk.max(1)) {
            jobs.push((inst.clone(), db.clone(), chunk.to_vec()));
        }
    }
    let results: Vec<_> = stream::iter(jobs)
        .map(|(inst, db, shards)| async move {
            let ids: Vec<String> = shards.iter().map(|(id, _)| id.clone()).collect();
            let Some(instance) = fleet.instance(&inst) else {
                return (
                    Vec::new(),
                    vec![(
                        ids,
                        TopologyError::InvalidFixture {
                            reason: format!("shard refers to unknown instance `{inst}`"),
                        },
                    )],
                );
            };
            let pool = match instance
                .connection
                .with_database(&db)
                .connect_pool(&inst, 1)
                .await
            {
                Ok(p) => p,
                Err(e) => return (Vec::new(), vec![(ids, e)]),
            };
            let mut schemas: Vec<String> = shards.iter().map(|(_, s)| s.clone()).collect();
            schemas.sort();
            schemas.dedup();
            let r = match introspect_schemas(&pool, &schemas).await {
                Ok(mut cats) => (
                    shards
                        .into_iter()
                        .filter_map(|(id, schema)| cats.remove(&schema).map(|c| (id, c)))
                        .collect::<Vec<_>>(),
                    Vec::new(),
                ),
                Err(e @ TopologyError::Connect { .. }) => (Vec::new(), vec![(ids, e)]),
                Err(_) => {
                    // One schema may be unreadable (e.g. a table held in ACCESS EXCLUSIVE by
                    // another session makes pg_get_expr/pg_get_indexdef hit lock_timeout):
                    // read the schemas one by one so only that shard fails.
                    let mut ok = Vec::new();
                    let mut failed = Vec::new();
                    for (id, schema) in shards {
                        match introspect_schema(&pool, &schema).await {
                            Ok(c) => ok.push((id, c)),
                            Err(e) => failed.push((vec![id], e)),
                        }
                    }
                    (ok, failed)
                }
            };
            pool.close().await;
            r
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let mut out = FleetCatalogs::default();
    for (ok, failed) in results {
        out.catalogs.extend(ok);
        out.errors.extend(failed);
    }
    out
}

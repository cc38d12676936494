//! Lock-queue risk now: sessions holding or waiting for a lock on a relation the migration
//! locks in a conflicting mode (one `pg_stat_activity` × `pg_locks` read per database).
//!
//! The relations come from the parser's lock knowledge ([`migration_parser::lock_facts`] for
//! the server's major version), each resolved with [`MigrationState`] to its name on the shard
//! before the migration (a relation the migration creates cannot be locked by anyone else yet)
//! and, when unqualified, to the shard's schema. One read-only query per database then joins
//! every (schema, relation) of every shard in it to `pg_locks` and `pg_stat_activity`; our own
//! backend and the run's other sessions (`application_name = deployclaw-simulator`) are left
//! out. A row is kept when its mode conflicts ([`LockMode::conflicts_with`]) with the lock of
//! the first statement that locks that relation in a conflicting mode: that is where the
//! migration would queue. The session's query is normalised ([`normalize_query`]): no literal
//! of it is kept.
//!
//! Without `pg_read_all_stats` (or superuser) other roles' sessions show no state, age or query
//! (`<insufficient privilege>`): the read is then [`LiveStatus::Unavailable`] with how to grant
//! it, never an empty "nothing found".

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use evidence::{LiveStatus, LockHolder};
use migration_parser::{
    LockMode, Migration, MigrationState, PgVersion, Step, lock_facts, normalize_query,
};
use sqlx::Row;

use super::{LiveDatabase, PerShard};
use crate::control::CancelToken;

/// `statement_timeout` of the lock read (it reads two small views; it must not hang a run).
pub(crate) const LOCK_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Characters kept of a session's normalised query.
pub(crate) const QUERY_CHARS: usize = 200;

/// The server major assumed when the driver did not report one.
const DEFAULT_MAJOR: u32 = 16;

/// A relation lock the migration takes, with the relation's name on the shard before it runs
/// (`schema` `None`: the shard's own schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MigrationLock {
    /// Schema the SQL named, if any.
    pub schema: Option<String>,
    /// Relation name on the shard.
    pub name: String,
    /// 0-based statement index.
    pub statement: usize,
    /// Lock mode.
    pub mode: LockMode,
}

/// Every relation lock of `migration` on a relation that exists before it, in statement order.
pub(crate) fn migration_locks(migration: &Migration, major: u32) -> Vec<MigrationLock> {
    let state = MigrationState::new(migration);
    let mut out = Vec::new();
    for st in &migration.statements {
        for (k, op) in st.operations.iter().enumerate() {
            let at = Step {
                statement: st.index,
                op: k,
            };
            let after = Step {
                statement: st.index,
                op: k + 1,
            };
            for f in lock_facts(op, PgVersion(major)) {
                // The relation this very operation creates (CREATE TABLE) is nobody's yet.
                if state.relation(&f.relation, after).is_created() {
                    continue;
                }
                if let Some(q) = state.relation(&f.relation, at).on_shard() {
                    out.push(MigrationLock {
                        schema: q.schema.clone(),
                        name: q.name.clone(),
                        statement: st.index,
                        mode: f.mode,
                    });
                }
            }
        }
    }
    out
}

/// The lock holders of every shard of `db`.
pub(crate) async fn read(
    migration: &Migration,
    db: &LiveDatabase<'_>,
    cancel: &CancelToken,
) -> PerShard<LockHolder> {
    let mut out = PerShard::new();
    if cancel.is_cancelled() || db.shards.is_empty() {
        return out;
    }
    let found = read_database(migration, db).await;
    for shard in &db.shards {
        let entry = match &found {
            Ok(by_shard) => (
                LiveStatus::Read,
                by_shard.get(&shard.id).cloned().unwrap_or_default(),
            ),
            Err(reason) => (
                LiveStatus::Unavailable {
                    reason: reason.clone(),
                },
                Vec::new(),
            ),
        };
        out.insert(shard.id.clone(), entry);
    }
    out
}

/// Where a (schema, relation) is locked: per shard index, the statement and mode.
type Wanted = BTreeMap<(String, String), Vec<(usize, usize, LockMode)>>;

/// One read-only transaction on the database: the privilege check, then the one set-based
/// query. The holders per shard id, or why the read could not run.
async fn read_database(
    migration: &Migration,
    db: &LiveDatabase<'_>,
) -> Result<HashMap<String, Vec<LockHolder>>, String> {
    let failed = |what: &str, e: sqlx::Error| {
        let (state, msg) = crate::conn::sqlstate_and_message(&e);
        let state = state.map(|s| format!(" ({s})")).unwrap_or_default();
        format!(
            "the lock read on {}/{} {what}{state}: {msg}",
            db.instance, db.database
        )
    };
    let mut conn = db
        .connection()
        .await
        .map_err(|e| failed("could not connect", e))?;
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(|e| failed("could not connect", e))?;
    let major = tx
        .server_version_num()
        .map(|v| v / 10_000)
        .unwrap_or(DEFAULT_MAJOR);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET TRANSACTION READ ONLY; SET LOCAL lock_timeout = 2000; SET LOCAL statement_timeout = {}",
        LOCK_READ_TIMEOUT.as_millis()
    )))
    .execute(&mut *tx)
    .await
    .map_err(|e| failed("could not start", e))?;
    let (user, allowed): (String, bool) =
        sqlx::query_as("SELECT current_user::text, pg_has_role('pg_read_all_stats', 'USAGE')")
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| failed("could not check its privilege", e))?;
    if !allowed {
        let _ = tx.rollback().await;
        return Err(format!(
            "the role `{user}` cannot see other sessions' state, age and query in pg_stat_activity \
             (`<insufficient privilege>`): grant it with `GRANT pg_read_all_stats TO {}` \
             (or `pg_monitor`)",
            migration_parser::pg_quote::quote_ident_minimal(&user)
        ));
    }
    let wanted = wanted(migration, major, db);
    let mut by_shard: HashMap<String, Vec<LockHolder>> = HashMap::new();
    if wanted.is_empty() {
        let _ = tx.rollback().await;
        return Ok(by_shard);
    }
    let (schemas, names): (Vec<String>, Vec<String>) = wanted.keys().cloned().unzip();
    let rows = sqlx::query(HOLDERS_SQL)
        .bind(&schemas)
        .bind(&names)
        .bind(crate::conn::APPLICATION_NAME)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| failed("failed", e))?;
    let _ = tx.rollback().await;
    for row in rows {
        let key: (String, String) = (row.get(0), row.get(1));
        let Some(mode) = LockMode::from_pg_locks_name(row.get::<&str, _>(7)) else {
            continue;
        };
        let Some(targets) = wanted.get(&key) else {
            continue;
        };
        let query: Option<String> = row.get(9);
        let holder = LockHolder {
            pid: row.get(2),
            application_name: row.get(3),
            state: row.get(4),
            xact_age_ms: row.get::<Option<i64>, _>(5).map(|v| v.max(0) as u64),
            state_age_ms: row.get::<Option<i64>, _>(6).map(|v| v.max(0) as u64),
            relation: format!("{}.{}", key.0, key.1),
            mode: mode.pg_locks_name().to_string(),
            granted: row.get(8),
            query: query
                .filter(|q| !q.trim().is_empty())
                .map(|q| normalize_query(&q, QUERY_CHARS)),
            ..LockHolder::default()
        };
        // Per shard: the first statement whose lock on this relation conflicts.
        let mut seen: Vec<usize> = Vec::new();
        for &(shard, statement, migration_mode) in targets {
            if seen.contains(&shard) || !migration_mode.conflicts_with(mode) {
                continue;
            }
            seen.push(shard);
            let list = by_shard.entry(db.shards[shard].id.clone()).or_default();
            push_strongest(
                list,
                LockHolder {
                    blocks_mode: migration_mode.pg_locks_name().to_string(),
                    blocks_statement: statement,
                    ..holder.clone()
                },
            );
        }
    }
    Ok(by_shard)
}

/// Add `h`, keeping one entry per (pid, relation): the strongest mode (a session holding both
/// `AccessShareLock` and `RowExclusiveLock` on a table is one holder).
fn push_strongest(list: &mut Vec<LockHolder>, h: LockHolder) {
    let rank = |m: &str| LockMode::from_pg_locks_name(m);
    match list
        .iter_mut()
        .find(|o| o.pid == h.pid && o.relation == h.relation)
    {
        Some(o) if rank(&h.mode) > rank(&o.mode) => *o = h,
        Some(_) => {}
        None => list.push(h),
    }
}

/// Every (schema, relation) of every shard of `db` the migration locks, with where.
fn wanted(migration: &Migration, major: u32, db: &LiveDatabase<'_>) -> Wanted {
    let locks = migration_locks(migration, major);
    let mut wanted = Wanted::new();
    for (i, shard) in db.shards.iter().enumerate() {
        for l in &locks {
            let schema = l
                .schema
                .clone()
                .unwrap_or_else(|| shard.location.schema().to_string());
            wanted
                .entry((schema, l.name.clone()))
                .or_default()
                .push((i, l.statement, l.mode));
        }
    }
    wanted
}

/// Sessions holding or waiting for a lock on any of the (schema, relation) pairs `$1`/`$2`,
/// except this backend and the run's other sessions (`$3`). Ages in ms.
const HOLDERS_SQL: &str = "\
SELECT t.nsp, t.rel, a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
       (extract(epoch FROM now() - a.xact_start) * 1000)::bigint,
       (extract(epoch FROM now() - a.state_change) * 1000)::bigint,
       l.mode, l.granted, a.query
  FROM unnest($1::text[], $2::text[]) AS t(nsp, rel)
  JOIN pg_catalog.pg_namespace n ON n.nspname = t.nsp
  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.rel
  JOIN pg_catalog.pg_locks l ON l.locktype = 'relation' AND l.relation = c.oid
   AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
  JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
 WHERE l.pid <> pg_backend_pid() AND coalesce(a.application_name, '') <> $3
 ORDER BY a.pid, t.nsp, t.rel, l.mode";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Migration {
        migration_parser::parse("m.sql", sql, &Default::default()).expect("parses")
    }

    #[test]
    fn relations_the_migration_creates_are_not_watched_and_renames_resolve_to_the_shard_name() {
        let m = parse(
            "CREATE TABLE fresh (id int);\n\
             ALTER TABLE fresh ADD COLUMN a int;\n\
             ALTER TABLE orders RENAME TO orders_old;\n\
             ALTER TABLE orders_old ADD COLUMN b int;\n\
             CREATE INDEX CONCURRENTLY i ON shared.plans (id);",
        );
        let locks = migration_locks(&m, 16);
        let got: Vec<(Option<&str>, &str, usize, LockMode)> = locks
            .iter()
            .map(|l| (l.schema.as_deref(), l.name.as_str(), l.statement, l.mode))
            .collect();
        assert!(got.iter().all(|(_, n, _, _)| *n != "fresh"), "{got:?}");
        assert!(
            got.contains(&(None, "orders", 2, LockMode::AccessExclusive)),
            "{got:?}"
        );
        assert!(
            got.contains(&(None, "orders", 3, LockMode::AccessExclusive)),
            "the renamed table is the shard's `orders`: {got:?}"
        );
        assert!(
            got.contains(&(Some("shared"), "plans", 4, LockMode::ShareUpdateExclusive)),
            "{got:?}"
        );
    }

    #[test]
    fn one_holder_per_pid_and_relation_with_its_strongest_mode() {
        let h = |mode: &str| LockHolder {
            pid: 7,
            relation: "s.t".into(),
            mode: mode.into(),
            ..LockHolder::default()
        };
        let mut list = Vec::new();
        push_strongest(&mut list, h("AccessShareLock"));
        push_strongest(&mut list, h("RowExclusiveLock"));
        push_strongest(&mut list, h("AccessShareLock"));
        assert_eq!(list, vec![h("RowExclusiveLock")]);
    }
}

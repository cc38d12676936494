//! The application's own queries: normalised `pg_stat_statements` entries that use a table or
//! column the migration drops, renames or converts incompatibly.
//!
//! One read-only transaction per database, whatever the number of its shards: is the extension
//! installed here (`pg_extension`), the database's statements (`dbid`; calls summed over users
//! and search paths per normalised text), the statistics' reset time
//! (`pg_stat_statements_info`, PG 14+), and the current types of the columns the migration
//! converts. What SQL means is the parser's
//! ([`migration_parser::scan_query`]): each query text is parsed once and resolved per shard
//! with the shard's schema as the first schema of its search path. A query text belongs to a
//! database, not to a schema: in schema-per-tenant, an unqualified application query (the
//! application sets `search_path` per tenant, and `pg_stat_statements` does not record which
//! tenant a call came from) matches every tenant shard of the database; a schema-qualified one
//! only the shard of that schema.
//!
//! Statements of the role the gate connects as are kept apart ([`QueryUse::by_gate_role`]):
//! deployclaw's own probes of earlier runs name the tables and columns the migration touches,
//! and cannot be told from an application that shares the gate's role.
//!
//! Could not read → [`LiveStatus::Unavailable`] with the reason and how to enable it: the
//! extension not installed in this database, not loaded (`shared_preload_libraries`), or query
//! texts of other roles hidden (`<insufficient privilege>`: the gate's role lacks
//! `pg_read_all_stats`). Nothing of a query is kept unless it uses what the migration changes,
//! and then only its normalised text with any literal masked ([`migration_parser::display_query`]).

use std::collections::{BTreeMap, HashMap};

use evidence::{LiveStatus, QueryUse};
use migration_parser::pg_quote::{quote_ident, quote_literal};
use migration_parser::{BreakingChange, Change, Migration, QueryScan};
use sqlx::{AssertSqlSafe, PgConnection, Row};

use super::{LiveDatabase, PerShard};
use crate::control::CancelToken;
use crate::probe_tx::exec;

/// How to turn the extension on, appended to every "unavailable" reason.
const HOW_TO_ENABLE: &str = "set `shared_preload_libraries = 'pg_stat_statements'` \
    (on RDS/Aurora: in the DB parameter group) and restart, then run `CREATE EXTENSION \
    pg_stat_statements` in each database";

/// Longest query text kept in a [`QueryUse`].
const MAX_QUERY_CHARS: usize = 200;

/// One normalised statement text of `pg_stat_statements` (calls summed over users, top-level
/// flags and search paths).
struct Entry {
    queryid: i64,
    query: String,
    calls: i64,
    /// Run by the gate's own role ([`QueryUse::by_gate_role`]).
    own: bool,
}

/// What one read of a database found.
struct Read {
    entries: Vec<Entry>,
    stats_since: Option<String>,
    /// (schema, table, column) → current type (`format_type`).
    types: HashMap<(String, String, String), String>,
}

/// The query uses of every shard of `db`, and how many query texts naming a changed table
/// could not be parsed (skipped).
pub(crate) async fn read(
    migration: &Migration,
    db: &LiveDatabase<'_>,
    cancel: &CancelToken,
) -> (PerShard<QueryUse>, u64) {
    let changes = migration_parser::breaking_changes(migration);
    let mut out = PerShard::new();
    if changes.is_empty() || db.shards.is_empty() || cancel.is_cancelled() {
        // Nothing an application could still be using: nothing to read.
        return (out, 0);
    }
    let schemas: Vec<String> = db
        .shards
        .iter()
        .map(|s| s.location.schema().to_string())
        .collect();
    let read = match read_database(db, &changes, &schemas).await {
        Ok(r) => r,
        Err(reason) => {
            for s in &db.shards {
                let status = LiveStatus::Unavailable {
                    reason: reason.clone(),
                };
                out.insert(s.id.clone(), (status, Vec::new()));
            }
            return (out, 0);
        }
    };
    let (parsed, skipped) = parse_candidates(&read.entries, &changes);
    for shard in &db.shards {
        let schema = shard.location.schema();
        let mut uses = Vec::new();
        for (entry, names) in &parsed {
            for i in names.uses(&changes, schema) {
                if let Some(u) = query_use(entry, &changes[i], schema, &read) {
                    uses.push(u);
                }
            }
        }
        uses.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.queryid.cmp(&b.queryid)));
        out.insert(shard.id.clone(), (LiveStatus::Read, uses));
    }
    (out, skipped)
}

/// The statements that may mention a changed table, parsed once each, and how many of them
/// could not be parsed. Texts that are not data statements are dropped; unparseable ones are
/// skipped and counted (never guessed).
fn parse_candidates<'e>(
    entries: &'e [Entry],
    changes: &[BreakingChange],
) -> (Vec<(&'e Entry, migration_parser::QueryNames)>, u64) {
    let mut skipped = 0;
    let mut parsed = Vec::new();
    for e in entries
        .iter()
        .filter(|e| migration_parser::may_mention(&e.query, changes))
    {
        match migration_parser::scan_query(&e.query) {
            QueryScan::Data(n) => parsed.push((e, n)),
            QueryScan::NotData => {}
            QueryScan::Unparseable(_) => skipped += 1,
        }
    }
    (parsed, skipped)
}

/// The [`QueryUse`] of `entry` using `change` on a shard with schema `schema`; `None` for a
/// type change the application's code survives ([`migration_parser::client_compatible`]).
fn query_use(
    entry: &Entry,
    change: &BreakingChange,
    schema: &str,
    read: &Read,
) -> Option<QueryUse> {
    let target = change.target(schema);
    let detail = match &change.change {
        Change::Drop => None,
        Change::Rename { to } => Some(format!("to {to}")),
        Change::TypeChange { new_type } => {
            let key = (
                change.table.schema.as_deref().unwrap_or(schema).to_string(),
                change.table.name.clone(),
                change.column.clone().unwrap_or_default(),
            );
            match read.types.get(&key) {
                Some(old) if migration_parser::client_compatible(old, new_type) => return None,
                Some(old) => Some(format!("{old} → {new_type}")),
                None => Some(format!("→ {new_type}")),
            }
        }
    };
    Some(QueryUse {
        queryid: entry.queryid,
        query: migration_parser::display_query(&entry.query, MAX_QUERY_CHARS),
        calls: entry.calls,
        uses: target,
        change: change.change.verb().to_string(),
        detail,
        statement: change.statement,
        stats_since: read.stats_since.clone(),
        by_gate_role: entry.own,
    })
}

/// One read-only transaction on a connection of the run's pool; `Err` is the "unavailable"
/// reason a user reads.
async fn read_database(
    db: &LiveDatabase<'_>,
    changes: &[BreakingChange],
    schemas: &[String],
) -> Result<Read, String> {
    let mut conn = db
        .connection()
        .await
        .map_err(|e| format!("could not connect to database `{}`: {e}", db.database))?;
    let conn: &mut PgConnection = &mut conn;
    exec(
        conn,
        "BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = '30s'",
    )
    .await
    .map_err(|e| e.to_string())?;
    let r = read_in_transaction(conn, db.database, changes, schemas).await;
    let _ = exec(conn, "ROLLBACK").await;
    r
}

async fn read_in_transaction(
    conn: &mut PgConnection,
    database: &str,
    changes: &[BreakingChange],
    schemas: &[String],
) -> Result<Read, String> {
    let ext: Option<(String, bool)> = sqlx::query_as(
        "SELECT n.nspname::text, to_regclass(format('%I.pg_stat_statements_info', n.nspname)) IS NOT NULL \
         FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace \
         WHERE e.extname = 'pg_stat_statements'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| format!("could not read pg_extension in database `{database}`: {e}"))?;
    let Some((ext_schema, has_info)) = ext else {
        return Err(format!(
            "pg_stat_statements is not installed in database `{database}`: {HOW_TO_ENABLE}"
        ));
    };
    let view = format!("{}.pg_stat_statements", quote_ident(&ext_schema));
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT queryid, query, calls, \
         userid = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS own FROM {view} \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| {
        let (_, message) = crate::conn::sqlstate_and_message(&e);
        format!(
            "pg_stat_statements could not be read in database `{database}` ({message}): \
             {HOW_TO_ENABLE}"
        )
    })?;
    let entries = aggregate(rows, database)?;
    let stats_since = if has_info {
        sqlx::query_scalar::<_, Option<String>>(AssertSqlSafe(format!(
            "SELECT to_char(stats_reset AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
             FROM {}.pg_stat_statements_info",
            quote_ident(&ext_schema)
        )))
        .fetch_optional(&mut *conn)
        .await
        .ok()
        .flatten()
        .flatten()
    } else {
        None
    };
    let types = column_types(conn, changes, schemas).await;
    Ok(Read {
        entries,
        stats_since,
        types,
    })
}

/// Sum calls per normalised text: the same text run under several search paths (one per
/// tenant) has one `queryid` per resolution, and which tenant each came from is not recorded, so
/// the database's figure is their sum (under the `queryid` called most). A hidden text (`<insufficient privilege>`: another role's query,
/// the gate's role lacks `pg_read_all_stats`) makes the read unavailable: a partial view would
/// pass a query it cannot see.
fn aggregate(rows: Vec<sqlx::postgres::PgRow>, database: &str) -> Result<Vec<Entry>, String> {
    let mut by_text: BTreeMap<(String, bool), (Entry, i64)> = BTreeMap::new();
    let mut hidden = 0usize;
    for row in rows {
        let queryid: Option<i64> = row.try_get("queryid").unwrap_or(None);
        let query: Option<String> = row.try_get("query").unwrap_or(None);
        let calls: i64 = row.try_get("calls").unwrap_or(0);
        let own: bool = row.try_get("own").unwrap_or(false);
        let (Some(queryid), Some(query)) = (queryid, query) else {
            hidden += 1;
            continue;
        };
        if query == "<insufficient privilege>" {
            hidden += 1;
            continue;
        }
        let (e, top) = by_text.entry((query.clone(), own)).or_insert((
            Entry {
                queryid,
                query,
                calls: 0,
                own,
            },
            i64::MIN,
        ));
        e.calls += calls;
        if calls > *top {
            *top = calls;
            e.queryid = queryid;
        }
    }
    if hidden > 0 {
        return Err(format!(
            "the texts of {hidden} statement(s) of other roles in pg_stat_statements of database \
             `{database}` are hidden from the gate's role (`<insufficient privilege>`): \
             `GRANT pg_read_all_stats TO` the gate's role"
        ));
    }
    Ok(by_text.into_values().map(|(e, _)| e).collect())
}

/// The current types of the columns the migration converts, in every shard schema of the
/// database (one query).
async fn column_types(
    conn: &mut PgConnection,
    changes: &[BreakingChange],
    schemas: &[String],
) -> HashMap<(String, String, String), String> {
    let converted: Vec<&BreakingChange> = changes
        .iter()
        .filter(|c| matches!(c.change, Change::TypeChange { .. }))
        .collect();
    if converted.is_empty() {
        return HashMap::new();
    }
    let mut nsp: Vec<String> = schemas.to_vec();
    nsp.extend(converted.iter().filter_map(|c| c.table.schema.clone()));
    let tables: Vec<String> = converted.iter().map(|c| c.table.name.clone()).collect();
    let columns: Vec<String> = converted.iter().filter_map(|c| c.column.clone()).collect();
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod) \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = ANY({}::text[]) AND c.relname = ANY({}::text[]) \
         AND a.attname = ANY({}::text[]) AND a.attnum > 0 AND NOT a.attisdropped",
        text_array(&nsp),
        text_array(&tables),
        text_array(&columns)
    );
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default();
    rows.into_iter()
        .map(|(s, t, c, ty)| ((s, t, c), ty))
        .collect()
}

/// `ARRAY['a','b']` of quoted literals (`ARRAY[]` when empty).
fn text_array(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| quote_literal(s)).collect();
    format!("ARRAY[{}]", inner.join(","))
}

//! `--shadow-data sample`: a bounded, FK-closed sample of a shard's real rows, copied into the
//! shadow before the rehearsal (and handed to the rollback proof as SQL), for migrations whose
//! outcome depends on real values — an `INSERT` that references an existing parent row fails
//! on an empty shadow although it succeeds on the shard.
//!
//! Opt-in ([`ShadowData::Sample`]; the default is [`ShadowData::Synthetic`]: no real row is
//! read). Reading is `sample_read`: one `REPEATABLE READ READ ONLY` transaction per shard with
//! `statement_timeout`, plain `SELECT`s (no `COPY`, no temporary table), rows in primary-key
//! order, at most [`SampleLimits::rows_per_table`] per table and
//! [`SampleLimits::max_bytes`] in all, then every parent row a sampled row references (past
//! the per-table bound; a closure over twice the byte cap gives up). Tables the role cannot
//! read are skipped with a note, and so are their children.
//!
//! Why primary-key order and not `TABLESAMPLE` (measured on PostgreSQL 15, a 2-million-row,
//! 299 MB table, 1000 rows): `ORDER BY pk LIMIT 1000` is an index scan of 22 buffers (1.3–1.7
//! ms) and gives the same rows on every run; `TABLESAMPLE BERNOULLI` reads the whole table
//! (32,778 buffers, 185–255 ms); `TABLESAMPLE SYSTEM` is as cheap as the index scan but needs a
//! percentage per table, returns a varying number of rows (976 for 0.05 %) and different rows
//! each run, so two runs of the gate could disagree. The closure's parent lookups go through
//! the parent's unique index (1000 keys: one index probe each).
//!
//! Where the rows go: only into the shadow database (0700 Unix socket, dropped afterwards) and
//! into [`ShadowSample::sql`] for the rollback proof's shadow. Never into a report, a log line
//! or an error: [`ShadowSample`]'s `Debug` shows counts only, notes name tables only, a failed
//! load is reported by table and SQLSTATE, and the messages of statements rehearsed on real rows
//! are withheld whole (the SQLSTATE and the statement say what failed).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use migration_parser::Migration;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use topology::ConnectionSpec;

use super::sample_read::{ForeignKey, SampledRows, SampledTable, TableInfo, read_sample};
pub use super::sample_read::{SampleError, SampleLimits};
use crate::conn::{connect_options, sqlstate_and_message};
use crate::dump::schemas_to_clone;
use crate::ident::{quote_ident, quote_literal, quote_qualified};

/// Which rows the shadow holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ShadowData {
    /// No real row: the rehearsal's tables are empty, the proof seeds synthetic rows (default).
    #[default]
    Synthetic,
    /// A bounded, FK-closed sample of the shard's real rows (`--shadow-data sample`).
    Sample(SampleLimits),
}

impl ShadowData {
    /// The sample's bounds, when real rows are asked for.
    pub fn sample_limits(&self) -> Option<SampleLimits> {
        match self {
            ShadowData::Synthetic => None,
            ShadowData::Sample(l) => Some(*l),
        }
    }
}

/// One statement of a sample: the table it fills (for notes) and its SQL.
#[derive(Clone)]
struct SampleStatement {
    table: String,
    sql: String,
}

/// A shard's sample as SQL for a shadow: one `INSERT` per table (parents before children),
/// then sequences advanced past the copied keys. Holds real rows: its `Debug` shows counts.
#[derive(Clone)]
pub struct ShadowSample {
    statements: Vec<SampleStatement>,
    /// The whole script (every statement), for `rollback::ProveOptions::sample_data`.
    pub sql: Arc<str>,
    /// Rows copied.
    pub rows: u64,
    /// Tables with at least one row copied.
    pub tables: usize,
    /// Rows added as parents past the per-table bound.
    pub beyond_bound: u64,
    /// Bytes of the script.
    pub bytes: u64,
    /// Tables skipped and why (names only).
    pub notes: Vec<String>,
}

impl std::fmt::Debug for ShadowSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowSample")
            .field("rows", &self.rows)
            .field("tables", &self.tables)
            .field("beyond_bound", &self.beyond_bound)
            .field("bytes", &self.bytes)
            .field("notes", &self.notes)
            .finish_non_exhaustive()
    }
}

impl ShadowSample {
    /// "real sample, N rows from M tables of shard X" (plus the parents added past the bound).
    pub fn summary(&self, shard: &str) -> String {
        let mut s = format!(
            "real sample, {} rows from {} tables of shard {shard}",
            self.rows, self.tables
        );
        if self.beyond_bound > 0 {
            s.push_str(&format!(
                " ({} parent rows past the per-table bound, for the foreign keys)",
                self.beyond_bound
            ));
        }
        if !self.notes.is_empty() {
            s.push_str(&format!("; {}", self.notes.join("; ")));
        }
        s
    }

    /// Read the sample of `schemas` of the shard's database on `conn` (see the module docs).
    pub async fn read(
        conn: &mut PgConnection,
        schemas: &[String],
        limits: SampleLimits,
        statement_timeout: Duration,
    ) -> Result<ShadowSample, SampleError> {
        let (tables, fks, sampled, notes) =
            read_sample(conn, schemas, limits, statement_timeout).await?;
        Ok(render(&tables, &fks, sampled, notes))
    }

    /// Insert the sample on the shadow (`conn`, the demoted owner), statement by statement;
    /// returns one note per statement that failed — its table and SQLSTATE, never the
    /// server's message (which may quote a value).
    pub async fn load(&self, conn: &mut PgConnection) -> Vec<String> {
        let mut notes = Vec::new();
        for st in &self.statements {
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(st.sql.clone()))
                .execute(&mut *conn)
                .await
            {
                let (sqlstate, _) = sqlstate_and_message(&e);
                notes.push(format!(
                    "shadow sample: loading {} failed (SQLSTATE {})",
                    st.table,
                    sqlstate.as_deref().unwrap_or("none")
                ));
            }
        }
        notes
    }
}

/// Tables in an order where every parent comes before its children (self-references aside);
/// tables of a cycle follow in name order.
fn parents_first(n: usize, fks: &[ForeignKey]) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    for fk in fks.iter().filter(|f| f.child != f.parent) {
        indegree[fk.child] += 1;
    }
    let mut order = Vec::with_capacity(n);
    let mut done = vec![false; n];
    while let Some(next) = (0..n).find(|&i| !done[i] && indegree[i] == 0) {
        done[next] = true;
        order.push(next);
        for fk in fks.iter().filter(|f| f.parent == next && f.child != next) {
            indegree[fk.child] -= 1;
        }
    }
    order.extend((0..n).filter(|&i| !done[i]));
    order
}

/// Rows of one table ordered so that a row another row references (self-reference) comes
/// first; rows of a reference cycle keep their order.
fn rows_parents_first(rows: Vec<SampledRows>) -> Vec<SampledRows> {
    if rows.iter().all(|r| r.self_refs.iter().all(Option::is_none)) {
        return rows;
    }
    let mut by_key: HashMap<(usize, &Vec<String>), usize> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        for (k, key) in r.self_keys.iter().enumerate() {
            if let Some(key) = key {
                by_key.insert((k, key), i);
            }
        }
    }
    let mut state = vec![0u8; rows.len()]; // 0 new, 1 on the path, 2 placed
    let mut order = Vec::with_capacity(rows.len());
    for start in 0..rows.len() {
        let mut stack = vec![start];
        while let Some(&i) = stack.last() {
            if state[i] == 2 {
                stack.pop();
                continue;
            }
            state[i] = 1;
            let parent = rows[i].self_refs.iter().enumerate().find_map(|(k, r)| {
                let p = *by_key.get(&(k, r.as_ref()?))?;
                (state[p] == 0).then_some(p)
            });
            match parent {
                Some(p) => stack.push(p),
                None => {
                    state[i] = 2;
                    order.push(i);
                    stack.pop();
                }
            }
        }
    }
    let mut slots: Vec<Option<SampledRows>> = rows.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The sample as SQL statements (see [`ShadowSample`]).
fn render(
    tables: &[TableInfo],
    fks: &[ForeignKey],
    mut sampled: Vec<SampledTable>,
    notes: Vec<String>,
) -> ShadowSample {
    let mut statements = Vec::new();
    let (mut rows, mut used, mut beyond) = (0u64, 0usize, 0u64);
    for i in parents_first(tables.len(), fks) {
        let t = &tables[i];
        let s = std::mem::take(&mut sampled[i]);
        if s.rows.is_empty() {
            continue;
        }
        used += 1;
        rows += s.rows.len() as u64;
        beyond += s.beyond_bound;
        let name = quote_qualified(&t.schema, &t.name);
        let cols: Vec<String> = t.columns.iter().map(|c| quote_ident(c)).collect();
        let ordered = rows_parents_first(s.rows);
        for chunk in ordered.chunks(1000) {
            let values: Vec<&str> = chunk.iter().map(|r| r.tuple.as_str()).collect();
            statements.push(SampleStatement {
                table: name.clone(),
                sql: format!(
                    "INSERT INTO {name} ({}){} VALUES\n{};\n",
                    cols.join(", "),
                    if t.identity_always {
                        " OVERRIDING SYSTEM VALUE"
                    } else {
                        ""
                    },
                    values.join(",\n")
                ),
            });
        }
        for c in &t.sequence_columns {
            statements.push(SampleStatement {
                table: name.clone(),
                sql: format!(
                    "SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence({}, {}), m) \
                     FROM (SELECT max({})::bigint AS m FROM {name}) x WHERE m > 0;\n",
                    quote_literal(&name),
                    quote_literal(c),
                    quote_ident(c)
                ),
            });
        }
    }
    let sql: String = statements.iter().map(|s| s.sql.as_str()).collect();
    ShadowSample {
        bytes: sql.len() as u64,
        sql: Arc::from(sql),
        statements,
        rows,
        tables: used,
        beyond_bound: beyond,
        notes,
    }
}

type SampleCell = Arc<tokio::sync::OnceCell<Result<Arc<ShadowSample>, SampleError>>>;

/// One sample per shard and run, shared by the rehearsal and the rollback proof (which clone
/// the same representative shard), so the shard is read once. Lives in
/// [`crate::SimOptions::sample_cache`]: every clone of the options shares it.
#[derive(Default)]
pub struct SampleCache {
    cells: Mutex<BTreeMap<String, SampleCell>>,
}

impl std::fmt::Debug for SampleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SampleCache { .. }")
    }
}

impl SampleCache {
    /// An empty cache.
    pub fn new() -> SampleCache {
        SampleCache::default()
    }

    /// [`ShadowSample::read`] of `schemas` of `source_db` on `source` (on a connection of its
    /// own), once per distinct request.
    pub async fn sample(
        &self,
        source: &ConnectionSpec,
        source_db: &str,
        schemas: &[String],
        limits: SampleLimits,
        statement_timeout: Duration,
    ) -> Result<Arc<ShadowSample>, SampleError> {
        let key = format!(
            "{}\0{}\0{}\0{source_db}\0{}\0{limits:?}",
            source.host,
            source.port,
            source.user,
            schemas.join("\0")
        );
        let cell = {
            let mut cells = match self.cells.lock() {
                Ok(c) => c,
                Err(p) => p.into_inner(),
            };
            cells.entry(key).or_default().clone()
        };
        cell.get_or_init(|| async {
            let opts = connect_options(source, source_db).map_err(|e| SampleError::Query {
                sqlstate: None,
                message: e.to_string(),
            })?;
            let mut conn = PgConnection::connect_with(&opts).await?;
            let r = ShadowSample::read(&mut conn, schemas, limits, statement_timeout).await;
            let _ = conn.close().await;
            r.map(Arc::new)
        })
        .await
        .clone()
    }
}

/// The sample SQL for a rollback proof of shard schema `schema` of `source_db` (for
/// `rollback::ProveOptions::sample_data`): `None` unless `data` is [`ShadowData::Sample`], or
/// when no sample could be read (the proof then seeds synthetic rows). Reads the same schemas
/// the rehearsal clones, through the run's `cache` ([`crate::SimOptions::sample_cache`]), so a shard
/// the rehearsal sampled is not read again; `statement_timeout` bounds each read.
pub async fn proof_sample(
    data: ShadowData,
    cache: &SampleCache,
    statement_timeout: Duration,
    source: &ConnectionSpec,
    source_db: &str,
    schema: &str,
    migration: &Migration,
) -> Option<Arc<str>> {
    let limits = data.sample_limits()?;
    let schemas = schemas_to_clone(source, source_db, schema, None, migration)
        .await
        .ok()?;
    let sample = cache
        .sample(source, source_db, &schemas, limits, statement_timeout)
        .await
        .ok()?;
    Some(sample.sql.clone())
}

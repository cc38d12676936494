//! Reading a bounded, FK-closed sample of a shard's rows ([`read_sample`]): one `REPEATABLE
//! READ READ ONLY` transaction on the source, always rolled back. Each table is read in its
//! primary-key order (`LIMIT` rows per table); then, until nothing is missing, every parent row
//! that a sampled row references through a foreign key is read too — past the per-table bound —
//! so the shadow's foreign keys hold. Values leave the server only as SQL literals
//! (`format('%L', col)`: the type's output function, never a cast a tenant may have defined),
//! under fixed `DateStyle`, `IntervalStyle`, `TimeZone` and
//! `extra_float_digits`, so they read back as they were whatever the shadow's settings.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::conn::sqlstate_and_message;
use crate::ident::{quote_ident, quote_qualified};
use crate::probe_tx::exec;

/// Bounds of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SampleLimits {
    /// Rows read per table (in primary-key order); parents a sampled row references are added
    /// past this bound.
    pub rows_per_table: u32,
    /// Bytes of SQL literals in all: no further table is sampled once reached; a foreign-key
    /// closure past twice this gives the sample up.
    pub max_bytes: u64,
}

impl Default for SampleLimits {
    fn default() -> Self {
        SampleLimits {
            rows_per_table: 1000,
            max_bytes: 64 << 20,
        }
    }
}

/// Why no sample was taken. Carries no row value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SampleError {
    /// A query on the source failed (SQLSTATE and the server's message of a catalog or
    /// `SELECT` query: no row value).
    #[error("reading the sample failed{}: {message}", sqlstate.as_deref().map(|s| format!(" ({s})")).unwrap_or_default())]
    Query {
        /// The SQLSTATE.
        sqlstate: Option<String>,
        /// The message.
        message: String,
    },
    /// The parents the sampled rows reference exceed twice the byte cap.
    #[error("the rows the sample's foreign keys need exceed twice the byte cap of {max_bytes}")]
    TooLarge {
        /// The cap.
        max_bytes: u64,
    },
}

impl From<sqlx::Error> for SampleError {
    fn from(e: sqlx::Error) -> Self {
        let (sqlstate, message) = sqlstate_and_message(&e);
        SampleError::Query { sqlstate, message }
    }
}

/// One sampled row: its `VALUES` tuple and, per self-referencing foreign key of its table, the
/// key it references and its own key (to order rows of one table parents first).
#[derive(Clone, Default)]
pub(super) struct SampledRows {
    pub tuple: String,
    pub self_refs: Vec<Option<Vec<String>>>,
    pub self_keys: Vec<Option<Vec<String>>>,
}

/// The rows sampled from one table.
#[derive(Clone, Default)]
pub(super) struct SampledTable {
    pub rows: Vec<SampledRows>,
    /// Rows added as parents past the per-table bound.
    pub beyond_bound: u64,
}

/// A table of the sampled schemas, as the source's catalog describes it.
#[derive(Debug, Clone)]
pub(super) struct TableInfo {
    pub oid: i64,
    pub schema: String,
    pub name: String,
    pub readable: bool,
    pub partitioned: bool,
    /// Columns that take a value on `INSERT` (not generated), in order.
    pub columns: Vec<String>,
    pub primary_key: Vec<String>,
    pub identity_always: bool,
    /// Columns whose default is an owned sequence (serial or identity).
    pub sequence_columns: Vec<String>,
}

impl TableInfo {
    fn qualified(&self) -> String {
        quote_qualified(&self.schema, &self.name)
    }
}

/// A foreign key between two tables of the sample (indexes into the table list).
#[derive(Debug, Clone)]
pub(super) struct ForeignKey {
    pub child: usize,
    pub parent: usize,
    pub child_columns: Vec<String>,
    pub parent_columns: Vec<String>,
    /// `format_type` of the parent's columns, to turn the text values back into keys.
    pub parent_types: Vec<String>,
}

const TABLES_SQL: &str = "
SELECT c.oid::int8, n.nspname::text, c.relname::text,
       pg_catalog.has_table_privilege(c.oid, 'SELECT'), c.relkind = 'p',
       coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                    AND coalesce(pg_catalog.to_jsonb(a) ->> 'attgenerated', '') = ''), '{}'),
       coalesce((SELECT array_agg(a.attname::text ORDER BY pg_catalog.array_position(i.indkey::int2[], a.attnum))
                  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a
                    ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
                  WHERE i.indrelid = c.oid AND i.indisprimary), '{}'),
       EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                 AND NOT a.attisdropped AND a.attidentity = 'a'),
       coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                    AND pg_catalog.pg_get_serial_sequence(c.oid::regclass::text, a.attname) IS NOT NULL), '{}')
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY ($1::text[])
 ORDER BY n.nspname, c.relname";

const FKS_SQL: &str = "
SELECT co.conrelid::int8, co.confrelid::int8,
       (SELECT array_agg(a.attname::text ORDER BY k.i) FROM unnest(co.conkey) WITH ORDINALITY k(n, i)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.n),
       (SELECT array_agg(a.attname::text ORDER BY k.i) FROM unnest(co.confkey) WITH ORDINALITY k(n, i)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.n),
       (SELECT array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY k.i)
          FROM unnest(co.confkey) WITH ORDINALITY k(n, i)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.n)
  FROM pg_catalog.pg_constraint co
 WHERE co.contype = 'f' AND co.conparentid = 0 AND co.conrelid::int8 = ANY ($1::int8[])
 ORDER BY co.conrelid, co.conname";

/// Read the tables of `schemas` and the foreign keys between them. A foreign key whose parent
/// is outside the list (or not readable) makes its child unsampleable: its rows could not be
/// inserted on the shadow with their parents missing.
async fn catalog(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<(Vec<TableInfo>, Vec<ForeignKey>, Vec<String>), sqlx::Error> {
    let rows = sqlx::query(TABLES_SQL)
        .bind(schemas)
        .fetch_all(&mut *conn)
        .await?;
    let mut tables = Vec::with_capacity(rows.len());
    for r in &rows {
        tables.push(TableInfo {
            oid: r.try_get(0)?,
            schema: r.try_get(1)?,
            name: r.try_get(2)?,
            readable: r.try_get(3)?,
            partitioned: r.try_get(4)?,
            columns: r.try_get(5)?,
            primary_key: r.try_get(6)?,
            identity_always: r.try_get(7)?,
            sequence_columns: r.try_get(8)?,
        });
    }
    let oids: Vec<i64> = tables.iter().map(|t| t.oid).collect();
    let by_oid: BTreeMap<i64, usize> = oids.iter().enumerate().map(|(i, o)| (*o, i)).collect();
    let rows = sqlx::query(FKS_SQL)
        .bind(&oids)
        .fetch_all(&mut *conn)
        .await?;
    let mut fks = Vec::new();
    let mut notes = Vec::new();
    for r in &rows {
        let child = by_oid[&r.try_get::<i64, _>(0)?];
        let Some(&parent) = by_oid.get(&r.try_get::<i64, _>(1)?) else {
            tables[child].readable = false;
            notes.push(format!(
                "{}: not sampled (a foreign key references a table outside the cloned schemas)",
                tables[child].qualified()
            ));
            continue;
        };
        fks.push(ForeignKey {
            child,
            parent,
            child_columns: r.try_get(2)?,
            parent_columns: r.try_get(3)?,
            parent_types: r.try_get(4)?,
        });
    }
    // A table we cannot read cannot give its children their parents: skip those too.
    for t in &tables {
        if !t.readable && !notes.iter().any(|n| n.starts_with(&t.qualified())) {
            notes.push(format!(
                "{}: not sampled (no SELECT privilege)",
                t.qualified()
            ));
        }
    }
    loop {
        let mut changed = false;
        for fk in &fks {
            if tables[fk.child].readable && !tables[fk.parent].readable {
                tables[fk.child].readable = false;
                notes.push(format!(
                    "{}: not sampled (its parent {} is not sampled)",
                    tables[fk.child].qualified(),
                    tables[fk.parent].qualified()
                ));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    Ok((tables, fks, notes))
}

/// `SELECT <row as a VALUES tuple>, <one text[] per outgoing foreign key>, <one text[] per
/// incoming self-reference's key> FROM table`.
fn select_rows(t: &TableInfo, fks: &[(usize, &ForeignKey)], alias: &str) -> String {
    let values: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("pg_catalog.format('%L', {alias}.{})", quote_ident(c)))
        .collect();
    let mut list = vec![format!(
        "'(' || concat_ws(', ', {}) || ')'",
        values.join(", ")
    )];
    for (_, fk) in fks {
        list.push(text_array(alias, &fk.child_columns));
    }
    for (_, fk) in fks.iter().filter(|(_, fk)| fk.child == fk.parent) {
        list.push(text_array(alias, &fk.parent_columns));
    }
    format!(
        "SELECT {} FROM {}{} AS {alias}",
        list.join(", "),
        if t.partitioned { "" } else { "ONLY " },
        t.qualified()
    )
}

fn text_array(alias: &str, cols: &[String]) -> String {
    let parts: Vec<String> = cols
        .iter()
        .map(|c| {
            let c = format!("{alias}.{}", quote_ident(c));
            format!("CASE WHEN {c} IS NULL THEN NULL ELSE pg_catalog.format('%s', {c}) END")
        })
        .collect();
    format!("ARRAY[{}]::text[]", parts.join(", "))
}

/// A key tuple with no NULL part (MATCH SIMPLE: a NULL part references nothing).
fn complete(v: Option<Vec<Option<String>>>) -> Option<Vec<String>> {
    v?.into_iter().collect()
}

/// The state of one sampling run.
struct Sampler<'a> {
    tables: &'a [TableInfo],
    fks: &'a [ForeignKey],
    out: Vec<SampledTable>,
    seen: Vec<HashSet<String>>,
    /// Per foreign key: the keys already asked of the parent, and those still to ask.
    asked: Vec<HashSet<Vec<String>>>,
    pending: Vec<Vec<Vec<String>>>,
    bytes: u64,
}

impl Sampler<'_> {
    /// Outgoing foreign keys of table `t`, with their index.
    fn outgoing(&self, t: usize) -> Vec<(usize, &ForeignKey)> {
        self.fks
            .iter()
            .enumerate()
            .filter(|(_, f)| f.child == t)
            .collect()
    }

    /// Run `sql` (a [`select_rows`] with a tail) and add its rows to table `t`; returns how
    /// many were new.
    async fn fetch(
        &mut self,
        conn: &mut PgConnection,
        t: usize,
        sql: String,
        binds: Vec<Vec<String>>,
        beyond_bound: bool,
    ) -> Result<u64, sqlx::Error> {
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&mut *conn).await?;
        let out_fks = self.outgoing(t);
        let selfs: Vec<usize> = out_fks
            .iter()
            .filter(|(_, f)| f.parent == t)
            .map(|(i, _)| *i)
            .collect();
        let out_idx: Vec<usize> = out_fks.iter().map(|(i, _)| *i).collect();
        let mut new = 0;
        for r in rows {
            let tuple: String = r.try_get(0)?;
            if !self.seen[t].insert(tuple.clone()) {
                continue;
            }
            new += 1;
            self.bytes += tuple.len() as u64;
            let mut refs = Vec::new();
            for (k, fk) in out_idx.iter().enumerate() {
                let key = complete(r.try_get(1 + k)?);
                if let Some(key) = &key
                    && self.asked[*fk].insert(key.clone())
                {
                    self.pending[*fk].push(key.clone());
                }
                refs.push(key);
            }
            let mut keys = Vec::new();
            for k in 0..selfs.len() {
                keys.push(complete(r.try_get(1 + out_idx.len() + k)?));
            }
            let table = &mut self.out[t];
            table.rows.push(SampledRows {
                tuple,
                self_refs: selfs
                    .iter()
                    .map(|fk| refs[out_idx.iter().position(|i| i == fk).unwrap_or(0)].clone())
                    .collect(),
                self_keys: keys,
            });
            if beyond_bound {
                table.beyond_bound += 1;
            }
        }
        Ok(new)
    }

    /// Ask every parent for the rows its children reference, until none is missing.
    async fn close(&mut self, conn: &mut PgConnection, max_bytes: u64) -> Result<(), SampleError> {
        while let Some(fk) = self.pending.iter().position(|p| !p.is_empty()) {
            let keys = std::mem::take(&mut self.pending[fk]);
            let f = self.fks[fk].clone();
            let parent = &self.tables[f.parent];
            for chunk in keys.chunks(1000) {
                let mut binds: Vec<Vec<String>> = vec![Vec::new(); f.parent_columns.len()];
                for key in chunk {
                    for (i, v) in key.iter().enumerate() {
                        binds[i].push(v.clone());
                    }
                }
                let casts: Vec<String> = f
                    .parent_types
                    .iter()
                    .enumerate()
                    .map(|(i, ty)| format!("u.c{i}::{ty}"))
                    .collect();
                let unnest: Vec<String> =
                    (1..=binds.len()).map(|i| format!("${i}::text[]")).collect();
                let names: Vec<String> = (0..binds.len()).map(|i| format!("c{i}")).collect();
                let cols: Vec<String> = f
                    .parent_columns
                    .iter()
                    .map(|c| format!("p.{}", quote_ident(c)))
                    .collect();
                let sql = format!(
                    "{} WHERE ({}) IN (SELECT {} FROM unnest({}) AS u({}))",
                    select_rows(parent, &self.outgoing(f.parent), "p"),
                    cols.join(", "),
                    casts.join(", "),
                    unnest.join(", "),
                    names.join(", ")
                );
                self.fetch(conn, f.parent, sql, binds, true).await?;
                if self.bytes > max_bytes.saturating_mul(2) {
                    return Err(SampleError::TooLarge { max_bytes });
                }
            }
        }
        Ok(())
    }
}

/// Read the sample of `schemas` on `conn` (the shard's database) in one read-only transaction,
/// rolled back at the end whatever happened.
pub(super) async fn read_sample(
    conn: &mut PgConnection,
    schemas: &[String],
    limits: SampleLimits,
    statement_timeout: Duration,
) -> Result<
    (
        Vec<TableInfo>,
        Vec<ForeignKey>,
        Vec<SampledTable>,
        Vec<String>,
    ),
    SampleError,
> {
    let setup = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path = ''; \
         SET LOCAL DateStyle = 'ISO, MDY'; SET LOCAL IntervalStyle = 'postgres'; \
         SET LOCAL TimeZone = 'UTC'; SET LOCAL extra_float_digits = 3; \
         SET LOCAL bytea_output = 'hex'; SET LOCAL jit = off; \
         SET LOCAL idle_in_transaction_session_timeout = {}; SET LOCAL statement_timeout = {}",
        (statement_timeout.as_millis() * 4).max(60_000),
        statement_timeout.as_millis().max(1)
    );
    exec(conn, &setup).await?;
    let r = sample_in_transaction(conn, schemas, limits).await;
    let _ = exec(conn, "ROLLBACK").await;
    r
}

async fn sample_in_transaction(
    conn: &mut PgConnection,
    schemas: &[String],
    limits: SampleLimits,
) -> Result<
    (
        Vec<TableInfo>,
        Vec<ForeignKey>,
        Vec<SampledTable>,
        Vec<String>,
    ),
    SampleError,
> {
    let (tables, fks, mut notes) = catalog(conn, schemas).await?;
    let mut s = Sampler {
        tables: &tables,
        fks: &fks,
        out: tables.iter().map(|_| SampledTable::default()).collect(),
        seen: tables.iter().map(|_| HashSet::new()).collect(),
        asked: fks.iter().map(|_| HashSet::new()).collect(),
        pending: fks.iter().map(|_| Vec::new()).collect(),
        bytes: 0,
    };
    let mut capped = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        if !t.readable || t.columns.is_empty() {
            continue;
        }
        if s.bytes >= limits.max_bytes {
            capped.push(t.qualified());
            continue;
        }
        let order = if t.primary_key.is_empty() {
            String::new()
        } else {
            let cols: Vec<String> = t
                .primary_key
                .iter()
                .map(|c| format!("t.{}", quote_ident(c)))
                .collect();
            format!(" ORDER BY {}", cols.join(", "))
        };
        let sql = format!(
            "{}{order} LIMIT {}",
            select_rows(t, &s.outgoing(i), "t"),
            limits.rows_per_table
        );
        s.fetch(conn, i, sql, Vec::new(), false).await?;
    }
    if !capped.is_empty() {
        notes.push(format!(
            "byte cap of {} reached: {} table(s) not sampled ({})",
            limits.max_bytes,
            capped.len(),
            capped.join(", ")
        ));
    }
    s.close(conn, limits.max_bytes).await?;
    let out = s.out;
    Ok((tables, fks, out, notes))
}

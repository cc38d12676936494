//! The per-connection engine of one rehearsal: runs a statement, and reads the relation locks
//! it took (`pg_locks`) and the relations it rewrote or created (`relfilenode`).

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use migration_parser::{LockMode, PgVersion, Statement, lock_facts};
use sqlx::{AssertSqlSafe, PgConnection, Row};

use super::{LockSource, NotRunReason, ObservedLock, StatementOutcome, StatementRehearsal};
use crate::conn::sqlstate_and_message;
use crate::control::CancelToken;

type LockKey = (u32, String);

#[derive(Debug, Clone)]
struct RelInfo {
    schema: String,
    name: String,
    relkind: String,
    relfilenode: i64,
}

async fn relations(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<HashMap<u32, RelInfo>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text, c.relfilenode::int8
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ANY($1)",
    )
    .bind(schemas)
    .fetch_all(&mut *conn)
    .await?;
    let mut m = HashMap::new();
    for r in rows {
        let oid: i64 = r.try_get(0)?;
        m.insert(
            oid as u32,
            RelInfo {
                schema: r.try_get(1)?,
                name: r.try_get(2)?,
                relkind: r.try_get(3)?,
                relfilenode: r.try_get(4)?,
            },
        );
    }
    Ok(m)
}

async fn held_locks(conn: &mut PgConnection) -> Result<Vec<(u32, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT l.relation::int8, l.mode FROM pg_locks l
          WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND l.relation >= 16384",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut v = Vec::new();
    for r in rows {
        let oid: i64 = r.try_get(0)?;
        let mode: String = r.try_get(1)?;
        v.push((oid as u32, mode));
    }
    Ok(v)
}

fn relkind_name(k: &str) -> &'static str {
    match k {
        "r" => "table",
        "p" => "partitioned_table",
        "i" | "I" => "index",
        "S" => "sequence",
        "v" => "view",
        "m" => "materialized_view",
        "f" => "foreign_table",
        "t" => "toast",
        _ => "other",
    }
}

/// The per-connection state of one rehearsal.
pub(super) struct Engine<'a> {
    pub(super) conn: &'a mut PgConnection,
    schemas: Vec<String>,
    shard_schema: String,
    version: u32,
    pub(super) cancel: CancelToken,
    /// Locks held when the current unit (autocommit statement or block) started.
    baseline: BTreeSet<LockKey>,
    /// Relations that existed when the current unit started.
    unit_relations: HashMap<u32, RelInfo>,
    /// In-place: one transaction for everything, so a lock an earlier statement took is not
    /// listed again; knowledge-table locks confirmed by a held lock of equal or stronger mode
    /// on the same relation are added.
    in_place: bool,
}

impl<'a> Engine<'a> {
    /// An engine on `conn`, observing the relations of `schemas`; `in_place` for the target.
    pub(super) fn new(
        conn: &'a mut PgConnection,
        schemas: Vec<String>,
        shard_schema: &str,
        version: u32,
        cancel: &CancelToken,
        in_place: bool,
    ) -> Self {
        Engine {
            conn,
            schemas,
            shard_schema: shard_schema.to_string(),
            version,
            cancel: cancel.clone(),
            baseline: BTreeSet::new(),
            unit_relations: HashMap::new(),
            in_place,
        }
    }

    /// `st` not run for `reason`, with the knowledge table's locks.
    pub(super) fn skipped(&self, st: &Statement, reason: NotRunReason) -> StatementRehearsal {
        not_run(st, reason, self.version, &self.shard_schema)
    }

    /// Our own control statements (`BEGIN`, `SAVEPOINT …`, `SET LOCAL …`).
    pub(super) async fn exec(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&mut *self.conn)
            .await
            .map(|_| ())
    }

    /// One statement of the migration, over the extended query protocol: the server accepts
    /// exactly one command per message, so a statement whose text the server would read as
    /// several (a split that disagreed with the server's lexer) is an error instead of running
    /// a second, unobserved command.
    pub(super) async fn exec_user(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        sqlx::query(AssertSqlSafe(sql.to_string()))
            .persistent(false)
            .execute(&mut *self.conn)
            .await
            .map(|_| ())
    }

    pub(super) async fn start_unit(&mut self) -> Result<(), sqlx::Error> {
        self.baseline = held_locks(self.conn).await?.into_iter().collect();
        self.unit_relations = relations(self.conn, &self.schemas).await?;
        Ok(())
    }

    /// Run `st` and time it (ms); with the relations as they were before it ran. `Err` only
    /// when the relations cannot be read; the statement's own result is the second value.
    async fn timed(
        &mut self,
        st: &Statement,
    ) -> Result<(HashMap<u32, RelInfo>, Result<(), sqlx::Error>, f64), sqlx::Error> {
        let before = relations(self.conn, &self.schemas).await?;
        let t0 = Instant::now();
        let r = self.exec_user(&st.sql).await;
        Ok((before, r, ms(t0)))
    }

    /// Run one statement in the current (open) transaction and record locks and rewrites.
    pub(super) async fn run_observed(
        &mut self,
        st: &Statement,
        in_block: bool,
    ) -> Result<StatementRehearsal, sqlx::Error> {
        let (before, r, duration_ms) = self.timed(st).await?;
        let mut rec = simple(st, StatementOutcome::Succeeded, in_block, duration_ms);
        match r {
            Err(e) => {
                if crate::conn::is_connection_error(&e) {
                    return Err(e);
                }
                let (sqlstate, message) = sqlstate_and_message(&e);
                rec.outcome = StatementOutcome::Failed { sqlstate, message };
                rec.lock_source = LockSource::Unknown;
            }
            Ok(()) => {
                let after = relations(self.conn, &self.schemas).await?;
                let locks_all = held_locks(self.conn).await?;
                let mut out = BTreeSet::new();
                for (oid, mode) in locks_all.iter().cloned() {
                    if self.baseline.contains(&(oid, mode.clone())) {
                        continue;
                    }
                    let Some(info) = after
                        .get(&oid)
                        .or_else(|| before.get(&oid))
                        .or_else(|| self.unit_relations.get(&oid))
                    else {
                        continue;
                    };
                    let Some(m) = LockMode::from_pg_locks_name(&mode) else {
                        continue;
                    };
                    out.insert(ObservedLock {
                        schema: info.schema.clone(),
                        relation: info.name.clone(),
                        relkind: relkind_name(&info.relkind).to_string(),
                        mode: m,
                        created_here: !self.unit_relations.contains_key(&oid),
                    });
                }
                if self.in_place {
                    let held: Vec<(String, String, LockMode)> = locks_all
                        .iter()
                        .filter_map(|(oid, mode)| {
                            let info = after.get(oid).or_else(|| before.get(oid))?;
                            Some((
                                info.schema.clone(),
                                info.name.clone(),
                                LockMode::from_pg_locks_name(mode)?,
                            ))
                        })
                        .collect();
                    for k in knowledge_locks(st, self.version, &self.shard_schema) {
                        let confirmed = held
                            .iter()
                            .any(|(s, n, m)| s == &k.schema && n == &k.relation && *m >= k.mode);
                        if confirmed
                            && !out.iter().any(|l| {
                                l.schema == k.schema && l.relation == k.relation && l.mode >= k.mode
                            })
                        {
                            out.insert(k);
                        }
                    }
                }
                rec.locks = out.into_iter().collect();
                (rec.rewritten, rec.created) = changes(&before, &after);
            }
        }
        Ok(rec)
    }

    /// Run a statement that cannot be in a transaction: bare, locks from the knowledge table.
    pub(super) async fn run_bare(
        &mut self,
        st: &Statement,
    ) -> Result<StatementRehearsal, sqlx::Error> {
        let (before, r, duration_ms) = self.timed(st).await?;
        let mut rec = simple(st, StatementOutcome::Succeeded, false, duration_ms);
        rec.locks = knowledge_locks(st, self.version, &self.shard_schema);
        rec.lock_source = LockSource::KnowledgeTable;
        if let Err(e) = r {
            if crate::conn::is_connection_error(&e) {
                return Err(e);
            }
            let (sqlstate, message) = sqlstate_and_message(&e);
            rec.outcome = StatementOutcome::Failed { sqlstate, message };
        } else {
            let after = relations(self.conn, &self.schemas).await?;
            (rec.rewritten, rec.created) = changes(&before, &after);
        }
        Ok(rec)
    }
}

/// The relations rewritten (`relfilenode` changed) and created between `before` and `after`,
/// as sorted `schema.name`.
fn changes(
    before: &HashMap<u32, RelInfo>,
    after: &HashMap<u32, RelInfo>,
) -> (Vec<String>, Vec<String>) {
    let (mut rewritten, mut created) = (Vec::new(), Vec::new());
    for (oid, a) in after {
        match before.get(oid) {
            Some(b)
                if b.relfilenode != a.relfilenode && a.relfilenode != 0 && b.relfilenode != 0 =>
            {
                rewritten.push(format!("{}.{}", a.schema, a.name));
            }
            None => created.push(format!("{}.{}", a.schema, a.name)),
            _ => {}
        }
    }
    rewritten.sort();
    created.sort();
    (rewritten, created)
}

/// Locks from the parser's knowledge table for a statement.
pub(crate) fn knowledge_locks(
    st: &Statement,
    version: u32,
    shard_schema: &str,
) -> Vec<ObservedLock> {
    let mut out = BTreeSet::new();
    for op in &st.operations {
        for f in lock_facts(op, PgVersion(version)) {
            out.insert(ObservedLock {
                schema: f
                    .relation
                    .schema
                    .clone()
                    .unwrap_or_else(|| shard_schema.to_string()),
                relation: f.relation.name.clone(),
                relkind: "table".into(),
                mode: f.mode,
                created_here: false,
            });
        }
    }
    out.into_iter().collect()
}

fn not_run(st: &Statement, reason: NotRunReason, version: u32, schema: &str) -> StatementRehearsal {
    StatementRehearsal {
        index: st.index,
        line: st.span.line,
        outcome: StatementOutcome::NotRun { reason },
        locks: knowledge_locks(st, version, schema),
        lock_source: LockSource::KnowledgeTable,
        rewritten: Vec::new(),
        created: Vec::new(),
        in_block: st.tx.in_block,
        duration_ms: 0.0,
    }
}

pub(super) fn simple(
    st: &Statement,
    outcome: StatementOutcome,
    in_block: bool,
    ms: f64,
) -> StatementRehearsal {
    StatementRehearsal {
        index: st.index,
        line: st.span.line,
        outcome,
        locks: Vec::new(),
        lock_source: LockSource::Observed,
        rewritten: Vec::new(),
        created: Vec::new(),
        in_block,
        duration_ms: ms,
    }
}

pub(super) fn failed(e: &sqlx::Error) -> StatementOutcome {
    let (sqlstate, message) = sqlstate_and_message(e);
    StatementOutcome::Failed { sqlstate, message }
}

pub(super) fn ms(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1000.0
}

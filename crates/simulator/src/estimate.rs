//! Lock-time estimate per shard: how long each statement would hold a lock that blocks reads or
//! writes, on *this* shard's data volume.
//!
//! ## Model
//!
//! For every statement:
//!
//! ```text
//! work_ms = catalog_ms
//!         + Σ rewritten tables   total_bytes(t) / rewrite_rate      (heap + indexes + TOAST)
//!         + Σ index builds       heap_bytes(t)  / index_rate        (CREATE INDEX, UNIQUE, PK)
//!         + Σ full scans         heap_bytes(t)  / scan_rate         (SET NOT NULL, FK/CHECK
//!                                                                    validation, ALTER TYPE check)
//! estimated_lock_ms = work_ms   if the session holds a lock that blocks writes (SHARE or
//!                               stronger) on a relation that existed before, during the statement
//!                   = 0         otherwise (CONCURRENTLY forms, catalog-free statements)
//! ```
//!
//! * *Rewritten* comes from the rehearsal (`relfilenode` changed); when the statement was not
//!   observed (no rehearsal, failed setup, not transactional), from the parser's knowledge table
//!   (`Rewrite::Table`). Scans come from the knowledge table (`Scan::Full`); an index build
//!   replaces the scan of the same table.
//! * *Locks held* are the locks the rehearsal saw *after* the statement within its transaction:
//!   inside a `BEGIN … COMMIT` block a lock taken by an early statement is still held while the
//!   later statements work, so their time counts too — exactly how a long block extends an
//!   `ACCESS EXCLUSIVE` lock.
//! * Sizes are the shard's own (`pg_total_relation_size`, `pg_relation_size`, summed over
//!   partitions), from the probes. 40 GB and 4 MB therefore differ by four orders of magnitude.
//! * Rates come from [`calibrate`] (a rewrite, an index build and a scan of a generated table of
//!   a few MB on the shadow server, timed), or the conservative [`Throughput::default`] constants
//!   when not calibrated. A warm, idle shadow server is faster than a busy production disk: treat
//!   the result as an order of magnitude, not a promise.
//! * Not modelled: time spent *waiting* for the lock behind long-running transactions (that is
//!   what `lock_timeout` is for), WAL/replication throughput, TOAST-heavy rows, parallel
//!   maintenance workers, and `UPDATE`/`DELETE` batches (row locks, not table locks).

use std::collections::HashMap;
use std::time::Instant;

use migration_parser::{Migration, Operation, PgVersion, Rewrite, Scan, Statement, lock_facts};
use sqlx::PgConnection;

use crate::probe::TableStats;
use crate::rehearsal::engine::knowledge_locks;
use crate::rehearsal::{
    LockSource, NotRunReason, RehearsalResult, StatementOutcome, StatementRehearsal,
};

pub use evidence::Throughput;

/// Calibrate on the connected (shadow) database: build a table of `rows` rows (≈ 100 bytes each),
/// then time a full scan, an index build and a rewrite (`ALTER COLUMN … TYPE bigint`). The table
/// lives in a private schema that is dropped afterwards.
pub async fn calibrate(conn: &mut PgConnection, rows: u32) -> Result<Throughput, sqlx::Error> {
    let schema = format!("deployclaw_calibration_{:08x}", rand::random::<u32>());
    let q = crate::ident::quote_ident(&schema);
    let run = async {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA {q};
             CREATE TABLE {q}.t (id integer, a integer, payload text);
             INSERT INTO {q}.t SELECT g, g % 1000, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, {rows}) g"
        )))
        .execute(&mut *conn)
        .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM (ANALYZE) {q}.t")))
            .execute(&mut *conn)
            .await?;
        let heap: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT pg_relation_size('{q}.t'::regclass)")))
            .fetch_one(&mut *conn)
            .await?;
        let heap_mb = heap as f64 / 1e6;
        // Scan: twice, the second one warm (as a busy table usually is).
        let scan_sql = format!("SELECT count(*) FROM {q}.t WHERE payload LIKE '%zz%z'");
        sqlx::query(sqlx::AssertSqlSafe(scan_sql.clone())).fetch_one(&mut *conn).await?;
        let t0 = Instant::now();
        sqlx::query(sqlx::AssertSqlSafe(scan_sql)).fetch_one(&mut *conn).await?;
        let scan_s = t0.elapsed().as_secs_f64().max(1e-4);
        let t0 = Instant::now();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE INDEX ON {q}.t (payload)")))
            .execute(&mut *conn)
            .await?;
        let index_s = t0.elapsed().as_secs_f64().max(1e-4);
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT pg_total_relation_size('{q}.t'::regclass)"
        )))
        .fetch_one(&mut *conn)
        .await?;
        let t0 = Instant::now();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER TABLE {q}.t ALTER COLUMN a TYPE bigint")))
            .execute(&mut *conn)
            .await?;
        let rewrite_s = t0.elapsed().as_secs_f64().max(1e-4);
        let t0 = Instant::now();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER TABLE {q}.t ADD COLUMN z integer")))
            .execute(&mut *conn)
            .await?;
        let catalog_ms = (t0.elapsed().as_secs_f64() * 1000.0).max(0.1);
        Ok::<_, sqlx::Error>(Throughput {
            scan_mb_per_s: heap_mb / scan_s,
            rewrite_mb_per_s: (total as f64 / 1e6) / rewrite_s,
            index_mb_per_s: heap_mb / index_s,
            catalog_ms,
            calibrated: true,
            sample_mb: total as f64 / 1e6,
        })
    }
    .await;
    let drop = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {q} CASCADE"
    )))
    .execute(&mut *conn)
    .await;
    let tp = run?;
    drop?;
    Ok(tp)
}

pub use evidence::{LockEstimate, StatementEstimate};

fn fmt_bytes(b: i64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// Estimate blocking-lock time on a shard whose tables live in `shard_schema` and have `tables`
/// sizes, from the rehearsal of its schema shape (`None`: no rehearsal, knowledge table only).
pub fn estimate(
    migration: &Migration,
    rehearsal: Option<&RehearsalResult>,
    shard_schema: &str,
    tables: &[TableStats],
    pg_version: u32,
    tp: &Throughput,
) -> LockEstimate {
    let shard = Shard {
        sizes: tables
            .iter()
            .map(|t| ((t.schema.clone(), t.table.clone()), t))
            .collect(),
        rehearsed_schema: rehearsal.map(|r| r.schema.as_str()).unwrap_or(shard_schema),
        shard_schema,
        pg_version,
        tp,
    };
    let out: Vec<StatementEstimate> = migration
        .statements
        .iter()
        .map(|st| {
            let rec = rehearsal.and_then(|r| r.statements.iter().find(|s| s.index == st.index));
            shard.statement(st, rec)
        })
        .collect();
    let total_lock: f64 = out.iter().map(|s| s.estimated_lock_ms).sum();
    let max_lock = out.iter().map(|s| s.estimated_lock_ms).fold(0.0, f64::max);
    let total: f64 = out.iter().map(|s| s.estimated_ms).sum();
    LockEstimate {
        statements: out,
        total_lock_ms: total_lock.round() as u64,
        max_statement_lock_ms: max_lock.round() as u64,
        total_ms: total.round() as u64,
        throughput: *tp,
    }
}

/// A (schema, table) key.
type TableKey = (String, String);

/// What [`estimate`] knows of one shard.
struct Shard<'a> {
    sizes: HashMap<TableKey, &'a TableStats>,
    /// The schema the rehearsal ran in (its relations are the shard's).
    rehearsed_schema: &'a str,
    shard_schema: &'a str,
    pg_version: u32,
    tp: &'a Throughput,
}

impl Shard<'_> {
    /// A schema of the rehearsal as the shard's.
    fn map(&self, s: &str) -> String {
        if s == self.rehearsed_schema {
            self.shard_schema.to_string()
        } else {
            s.to_string()
        }
    }

    /// A relation of the knowledge table as a key (unqualified: the shard's schema).
    fn key(&self, r: &migration_parser::QualifiedName) -> TableKey {
        (
            r.schema
                .clone()
                .unwrap_or_else(|| self.shard_schema.to_string()),
            r.name.clone(),
        )
    }

    /// The estimate of one statement, from its rehearsal `rec` when there is one.
    fn statement(&self, st: &Statement, rec: Option<&StatementRehearsal>) -> StatementEstimate {
        if let Some(r) = rec
            && matches!(
                r.outcome,
                StatementOutcome::NotRun {
                    reason: NotRunReason::TransactionAborted | NotRunReason::Cancelled
                }
            )
        {
            // Not rehearsed because an earlier statement failed: on a shard where that failure
            // does not happen (another tenant's data, locks) it runs, so it is estimated from
            // the knowledge table and this shard's sizes, never as free.
            let mut e = self.statement(st, None);
            e.basis = format!("not rehearsed (an earlier statement failed): {}", e.basis);
            return e;
        }
        let observed = rec.filter(|r| {
            r.lock_source == LockSource::Observed
                && matches!(r.outcome, StatementOutcome::Succeeded)
        });
        let locks = match (observed, rec) {
            (Some(r), _) => r.locks.clone(),
            (None, Some(r)) if r.lock_source == LockSource::KnowledgeTable => r.locks.clone(),
            _ => knowledge_locks(st, self.pg_version, self.shard_schema),
        };
        let rewritten = self.rewritten(st, observed);
        let tp = self.tp;
        let mut ms = tp.catalog_ms;
        let mut basis = Vec::new();
        for (s, n) in &rewritten {
            if let Some(t) = self.sizes.get(&(s.clone(), n.clone())) {
                ms += t.total_bytes as f64 / 1e6 / tp.rewrite_mb_per_s * 1000.0;
                basis.push(format!(
                    "rewrite {n} {} @ {:.0} MB/s",
                    fmt_bytes(t.total_bytes),
                    tp.rewrite_mb_per_s
                ));
            }
        }
        for op in &st.operations {
            self.scans_and_index_builds(op, &rewritten, &mut ms, &mut basis);
        }
        // Blocking locks on pre-existing relations.
        let blocking: Vec<_> = locks
            .iter()
            .filter(|l| !l.created_here && l.mode.blocks_writes())
            .collect();
        let strongest = blocking.iter().map(|l| l.mode).max();
        let mut blocked: Vec<String> = blocking
            .iter()
            .map(|l| format!("{}.{}", self.map(&l.schema), l.relation))
            .collect();
        blocked.sort();
        blocked.dedup();
        let lock_ms = if strongest.is_some() { ms } else { 0.0 };
        if basis.is_empty() {
            basis.push(format!("catalog only ({:.1} ms)", tp.catalog_ms));
        }
        StatementEstimate {
            index: st.index,
            estimated_ms: ms,
            blocking_lock: strongest,
            blocked_relations: blocked,
            blocks: strongest.map(|m| m.blocks().to_string()),
            estimated_lock_ms: lock_ms,
            basis: basis.join("; "),
        }
    }

    /// The tables the statement rewrites: observed on the rehearsal, else from the knowledge
    /// table. Sorted, without repeats.
    fn rewritten(&self, st: &Statement, observed: Option<&StatementRehearsal>) -> Vec<TableKey> {
        let mut rewritten: Vec<TableKey> = Vec::new();
        if let Some(r) = observed {
            for q in &r.rewritten {
                if let Some((s, n)) = q.split_once('.') {
                    rewritten.push((self.map(s), n.to_string()));
                }
            }
        } else {
            for op in &st.operations {
                for f in lock_facts(op, PgVersion(self.pg_version)) {
                    if f.rewrite == Rewrite::Table {
                        rewritten.push(self.key(&f.relation));
                    }
                }
            }
        }
        rewritten.sort();
        rewritten.dedup();
        rewritten
    }

    /// Add the index builds and full scans of `op` from the knowledge table to `ms` and
    /// `basis` (not on rewritten tables: the rewrite includes them).
    fn scans_and_index_builds(
        &self,
        op: &Operation,
        rewritten: &[TableKey],
        ms: &mut f64,
        basis: &mut Vec<String>,
    ) {
        let tp = self.tp;
        let index_build = match op {
            Operation::CreateIndex { table, .. } => Some(table.clone()),
            Operation::AddConstraint { table, constraint } => match &constraint.kind {
                migration_parser::ConstraintKind::Unique {
                    using_index: None, ..
                }
                | migration_parser::ConstraintKind::PrimaryKey {
                    using_index: None, ..
                } => Some(table.clone()),
                _ => None,
            },
            _ => None,
        };
        let mut done = Vec::new();
        if let Some(t) = &index_build {
            let key = self.key(t);
            if !rewritten.contains(&key)
                && let Some(ts) = self.sizes.get(&key)
            {
                *ms += ts.heap_bytes as f64 / 1e6 / tp.index_mb_per_s * 1000.0;
                basis.push(format!(
                    "index build on {} {} @ {:.0} MB/s",
                    key.1,
                    fmt_bytes(ts.heap_bytes),
                    tp.index_mb_per_s
                ));
            }
            done.push(key);
        }
        for f in lock_facts(op, PgVersion(self.pg_version)) {
            if f.scan != Scan::Full {
                continue;
            }
            let key = self.key(&f.relation);
            if rewritten.contains(&key) || done.contains(&key) {
                continue;
            }
            if let Some(ts) = self.sizes.get(&key) {
                *ms += ts.heap_bytes as f64 / 1e6 / tp.scan_mb_per_s * 1000.0;
                basis.push(format!(
                    "scan {} {} @ {:.0} MB/s",
                    key.1,
                    fmt_bytes(ts.heap_bytes),
                    tp.scan_mb_per_s
                ));
            }
            done.push(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use migration_parser::LockMode;

    fn stats(bytes: i64) -> Vec<TableStats> {
        vec![TableStats {
            schema: "s".into(),
            table: "t".into(),
            exists: true,
            heap_bytes: bytes * 3 / 4,
            total_bytes: bytes,
            index_bytes: bytes / 4,
            row_estimate: Some(bytes / 100),
        }]
    }

    #[test]
    fn forty_gigabytes_and_four_megabytes_differ() {
        let m = migration_parser::parse(
            "t.sql",
            "ALTER TABLE t ALTER COLUMN v TYPE bigint;\nCREATE INDEX i ON t (v);\nCREATE INDEX CONCURRENTLY j ON t (w);\nALTER TABLE t ADD COLUMN z int;",
            &Default::default(),
        )
        .expect("parse");
        let tp = Throughput::default();
        let small = estimate(&m, None, "s", &stats(4_000_000), 15, &tp);
        let big = estimate(&m, None, "s", &stats(40_000_000_000), 15, &tp);
        // Rewrite: 40 GB @ 40 MB/s = 1000 s; 4 MB = 100 ms (+ catalog).
        assert!(
            (big.statements[0].estimated_lock_ms - 1_000_005.0).abs() < 1.0,
            "{:#?}",
            big.statements[0]
        );
        assert!(
            (small.statements[0].estimated_lock_ms - 105.0).abs() < 1.0,
            "{:#?}",
            small.statements[0]
        );
        assert_eq!(
            big.statements[0].blocking_lock,
            Some(LockMode::AccessExclusive)
        );
        // CREATE INDEX: SHARE lock, heap / index rate.
        assert_eq!(big.statements[1].blocking_lock, Some(LockMode::Share));
        assert!((big.statements[1].estimated_lock_ms - (30e9 / 30e6 * 1000.0 + 5.0)).abs() < 1.0);
        // CONCURRENTLY: takes time, blocks nothing.
        assert_eq!(big.statements[2].estimated_lock_ms, 0.0);
        assert!(big.statements[2].estimated_ms > 1000.0);
        // ADD COLUMN: catalog only, but ACCESS EXCLUSIVE.
        assert_eq!(big.statements[3].estimated_lock_ms, 5.0);
        assert!(big.total_lock_ms > 1000 * small.total_lock_ms);
    }

    /// The in-place rehearsal of the shape's representative stopped at a lock timeout: the
    /// rewrite after it was not run there, but on a 40 GB shard of the shape it runs and
    /// holds ACCESS EXCLUSIVE for its rewrite — never estimated as free.
    #[test]
    fn a_statement_not_rehearsed_after_a_failure_is_estimated_from_the_knowledge_table() {
        let m = migration_parser::parse(
            "t.sql",
            "BEGIN;\nALTER TABLE t ADD COLUMN z int;\nALTER TABLE t ALTER COLUMN v TYPE bigint;\nCOMMIT;",
            &Default::default(),
        )
        .expect("parse");
        let statement = |index: usize, outcome| StatementRehearsal {
            index,
            line: index as u32 + 1,
            outcome,
            ..StatementRehearsal::default()
        };
        let rehearsal = RehearsalResult {
            schema: "s".into(),
            statements: vec![
                statement(0, StatementOutcome::Succeeded),
                statement(
                    1,
                    StatementOutcome::Failed {
                        sqlstate: Some("55P03".into()),
                        message: "canceling statement due to lock timeout".into(),
                    },
                ),
                statement(
                    2,
                    StatementOutcome::NotRun {
                        reason: NotRunReason::TransactionAborted,
                    },
                ),
            ],
            ..RehearsalResult::default()
        };
        let tp = Throughput::default();
        let est = estimate(&m, Some(&rehearsal), "s", &stats(40_000_000_000), 15, &tp);
        let st = &est.statements[2];
        assert_eq!(st.blocking_lock, Some(LockMode::AccessExclusive), "{st:#?}");
        assert!(st.estimated_lock_ms > 1_000_000.0, "{st:#?}");
        assert!(st.basis.starts_with("not rehearsed"), "{}", st.basis);
    }
}

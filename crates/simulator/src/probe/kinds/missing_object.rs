//! `missing_object`: an object a statement needs (table, column, constraint, index) is not on
//! the shard — drift. Also runs the one existence query for both directions (this kind and
//! `object_already_exists`).

use std::collections::BTreeSet;
use std::time::Instant;

use migration_parser::Operation;
use sqlx::{PgConnection, Row};

use crate::probe::cx::{Col, PlanCx, Rel, touched_tables};
use crate::probe::kind::ProbeKind;
use crate::probe::model::{ObjKind, ProbePlan, resolve};
use crate::probe::result::{ProbeResult, shard_query_failed};
use crate::probe::spec::ProbeSpec;
use crate::probe_tx::{ConnectionLost, savepoint};

/// The `missing_object` kind.
pub(crate) struct MissingObject;

impl ProbeSpec for MissingObject {
    fn kind(&self) -> ProbeKind {
        ProbeKind::MissingObject
    }

    fn plan(&self, op: &Operation, cx: &mut PlanCx<'_>) {
        for (t, must_exist) in touched_tables(op) {
            if must_exist && let Some(st) = cx.shard_table(t) {
                cx.require_table(&st);
            }
        }
        match op {
            Operation::DropColumn {
                table,
                column,
                if_exists: false,
                ..
            }
            | Operation::RenameColumn { table, column, .. }
            | Operation::DropNotNull { table, column }
            | Operation::SetDefault { table, column, .. }
            | Operation::DropDefault { table, column }
            | Operation::AlterColumnType { table, column, .. }
            | Operation::SetNotNull { table, column } => {
                if let Col::Shard(st, c) = cx.col(table, column) {
                    cx.require_column(&st, &c);
                }
            }
            Operation::ValidateConstraint { table, name }
            | Operation::RenameConstraint { table, name, .. }
            | Operation::DropConstraint {
                table,
                name,
                if_exists: false,
                ..
            } => {
                if let Some((st, c)) = cx.shard_constraint(table, name) {
                    cx.push_ref(ObjKind::Constraint, st, c, true);
                }
            }
            Operation::DropIndex {
                name,
                if_exists: false,
                ..
            }
            | Operation::RenameIndex { name, .. } => {
                if let Rel::Shard(n) = cx.rel(name) {
                    let index = n.name.clone();
                    cx.push_ref(ObjKind::Index, n, index, true);
                }
            }
            _ => {}
        }
    }
}

/// Existence of every object the migration refers to (or creates), one row per check. Every
/// lookup goes through `to_regclass` of the quoted name and the catalogs' oid indexes, so the
/// cost does not grow with the number of tenant schemas in the database.
const REFS_SQL: &str = "SELECT r.ord::int8, CASE r.k
    WHEN 'table' THEN EXISTS (SELECT 1 FROM pg_class c
                              WHERE c.oid = to_regclass(format('%I.%I', r.s, r.t))
                                AND c.relkind IN ('r','p','v','m','f'))
    WHEN 'relation' THEN to_regclass(format('%I.%I', r.s, r.x)) IS NOT NULL
    WHEN 'index' THEN EXISTS (SELECT 1 FROM pg_class c
                              WHERE c.oid = to_regclass(format('%I.%I', r.s, r.x))
                                AND c.relkind IN ('i','I'))
    WHEN 'column' THEN EXISTS (SELECT 1 FROM pg_attribute a
                              WHERE a.attrelid = to_regclass(format('%I.%I', r.s, r.t))
                                AND a.attname = r.x AND a.attnum > 0 AND NOT a.attisdropped)
    WHEN 'constraint' THEN EXISTS (SELECT 1 FROM pg_constraint co
                              WHERE co.conrelid = to_regclass(format('%I.%I', r.s, r.t))
                                AND co.conname = r.x)
    END
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS r(k, s, t, x, ord)";

pub(crate) async fn run_refs(
    conn: &mut PgConnection,
    shard_id: &str,
    schema: &str,
    plan: &ProbePlan,
) -> Result<Vec<ProbeResult>, ConnectionLost> {
    let started = Instant::now();
    let mut ks = Vec::new();
    let mut ss = Vec::new();
    let mut ts = Vec::new();
    let mut xs = Vec::new();
    for r in &plan.refs {
        let (s, t) = resolve(&r.table, schema);
        ks.push(r.kind.as_str().to_string());
        ss.push(s);
        ts.push(t);
        xs.push(r.name.clone());
    }
    let res = savepoint(conn, async |c| {
        sqlx::query(REFS_SQL)
            .bind(&ks)
            .bind(&ss)
            .bind(&ts)
            .bind(&xs)
            .fetch_all(&mut *c)
            .await
    })
    .await?;
    let elapsed = started.elapsed().as_millis() as u64;
    let rows = match res {
        Ok(rows) => rows,
        Err(e) => {
            return Ok(vec![shard_query_failed(
                shard_id,
                ProbeKind::MissingObject,
                schema,
                e,
                REFS_SQL,
                elapsed,
            )]);
        }
    };
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for row in rows {
        let ord: i64 = row.try_get(0).unwrap_or(0);
        let exists: Option<bool> = row.try_get(1).unwrap_or(None);
        let Some(r) = usize::try_from(ord - 1).ok().and_then(|i| plan.refs.get(i)) else {
            continue;
        };
        let exists = exists.unwrap_or(false);
        if exists == r.must_exist {
            continue;
        }
        let (s, t) = resolve(&r.table, schema);
        if !seen.insert((
            r.kind.as_str(),
            s.clone(),
            t.clone(),
            r.name.clone(),
            r.must_exist,
        )) {
            continue;
        }
        let (table, column, constraint) = match r.kind {
            ObjKind::Table => (t.clone(), None, None),
            ObjKind::Column => (t.clone(), Some(r.name.clone()), None),
            ObjKind::Constraint => (t.clone(), None, Some(r.name.clone())),
            ObjKind::Relation | ObjKind::Index => (String::new(), None, Some(r.name.clone())),
        };
        let what = match r.kind {
            ObjKind::Table => format!("table {s}.{t}"),
            ObjKind::Column => format!("column {s}.{t}.{}", r.name),
            ObjKind::Constraint => format!("constraint {} on {s}.{t}", r.name),
            ObjKind::Relation => format!("relation {s}.{}", r.name),
            ObjKind::Index => format!("index {s}.{}", r.name),
        };
        out.push(ProbeResult {
            shard: shard_id.to_string(),
            kind: if r.must_exist {
                ProbeKind::MissingObject
            } else {
                ProbeKind::ObjectAlreadyExists
            },
            statement_index: Some(r.statement_index),
            schema: s,
            table,
            column,
            constraint,
            count: 1,
            exact: true,
            samples: vec![what],
            would_fail: true,
            bytes: None,
            skipped: None,
            note: None,
            error: None,
            sql: REFS_SQL.to_string(),
            duration_ms: elapsed,
        });
    }
    Ok(out)
}

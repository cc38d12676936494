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
use crate::safety::SHARED_SCHEMA;

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
/// cost does not grow with the number of tenant schemas in the database. `f`: a schema to look
/// in when the name is not in `s` (`public` for an unqualified name the statement needs: the
/// shard's search path is `tenant, public`, so `REFERENCES countries` finds `public.countries`),
/// else empty.
const REFS_SQL: &str = "SELECT r.ord::int8, CASE r.k
    WHEN 'table' THEN EXISTS (SELECT 1 FROM pg_class c
                              WHERE c.oid = o.rel AND c.relkind IN ('r','p','v','m','f'))
    WHEN 'relation' THEN o.named IS NOT NULL
    WHEN 'index' THEN EXISTS (SELECT 1 FROM pg_class c
                              WHERE c.oid = o.named AND c.relkind IN ('i','I'))
    WHEN 'column' THEN EXISTS (SELECT 1 FROM pg_attribute a
                              WHERE a.attrelid = o.rel
                                AND a.attname = r.x AND a.attnum > 0 AND NOT a.attisdropped)
    WHEN 'constraint' THEN EXISTS (SELECT 1 FROM pg_constraint co
                              WHERE co.conrelid = o.rel AND co.conname = r.x)
    END
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
       WITH ORDINALITY AS r(k, s, t, x, f, ord)
 CROSS JOIN LATERAL (
   SELECT coalesce(to_regclass(format('%I.%I', r.s, r.t)),
                   CASE WHEN r.f <> '' THEN to_regclass(format('%I.%I', r.f, r.t)) END) AS rel,
          coalesce(to_regclass(format('%I.%I', r.s, r.x)),
                   CASE WHEN r.f <> '' THEN to_regclass(format('%I.%I', r.f, r.x)) END) AS named) o";

/// The arguments of [`REFS_SQL`] (kinds, schemas, tables, names, fallback schemas).
pub(crate) type RefArgs = [Vec<String>; 5];

/// The arguments of [`REFS_SQL`] for `plan` on the shard whose tables are in `schema`, appended
/// to `args`: one shard's, or a whole database's in a row.
pub(crate) fn push_ref_args(plan: &ProbePlan, schema: &str, args: &mut RefArgs) {
    for r in &plan.refs {
        let (s, t) = resolve(&r.table, schema);
        args[0].push(r.kind.as_str().to_string());
        args[1].push(s);
        args[2].push(t);
        args[3].push(r.name.clone());
        let fallback = r.must_exist && r.table.schema.is_none() && schema != SHARED_SCHEMA;
        args[4].push(if fallback {
            SHARED_SCHEMA.into()
        } else {
            String::new()
        });
    }
}

/// Run [`REFS_SQL`] on `args`: `(position in args, exists)` per row.
pub(crate) async fn fetch_refs(
    conn: &mut PgConnection,
    args: &RefArgs,
) -> Result<Vec<(usize, Option<bool>)>, sqlx::Error> {
    let rows = sqlx::query(REFS_SQL)
        .bind(&args[0])
        .bind(&args[1])
        .bind(&args[2])
        .bind(&args[3])
        .bind(&args[4])
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let ord: i64 = row.try_get(0)?;
        let exists: Option<bool> = row.try_get(1)?;
        if let Ok(i) = usize::try_from(ord - 1) {
            out.push((i, exists));
        }
    }
    Ok(out)
}

/// The existence checks of `plan` on one shard, in one query under the probe savepoint; a
/// failed query is the evidence ([`shard_query_failed`]).
pub(crate) async fn run_refs(
    conn: &mut PgConnection,
    shard_id: &str,
    schema: &str,
    plan: &ProbePlan,
) -> Result<Vec<ProbeResult>, ConnectionLost> {
    let started = Instant::now();
    let mut args: RefArgs = Default::default();
    push_ref_args(plan, schema, &mut args);
    let res = savepoint(conn, async |c| fetch_refs(c, &args).await).await?;
    let elapsed = started.elapsed().as_millis() as u64;
    match res {
        Ok(answers) => Ok(refs_results(shard_id, schema, plan, &answers, elapsed)),
        Err(e) => Ok(vec![shard_query_failed(
            shard_id,
            ProbeKind::MissingObject,
            schema,
            e,
            REFS_SQL,
            elapsed,
        )]),
    }
}

/// The findings of the existence answers `answers` (`(index in plan.refs, exists)`) of one
/// shard, read in `elapsed` ms: one result per object that is missing where the migration needs
/// it, or already there where it creates it.
pub(crate) fn refs_results(
    shard_id: &str,
    schema: &str,
    plan: &ProbePlan,
    answers: &[(usize, Option<bool>)],
    elapsed: u64,
) -> Vec<ProbeResult> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for &(i, exists) in answers {
        let Some(r) = plan.refs.get(i) else {
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
    out
}

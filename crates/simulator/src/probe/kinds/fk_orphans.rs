//! `fk_orphans`: rows whose foreign-key columns have no match in the referenced table, for a new
//! foreign key (or its later `VALIDATE`).

use std::collections::{BTreeSet, HashMap};

use migration_parser::{ConstraintDef, ConstraintKind, Operation, QualifiedName};
use sqlx::PgConnection;

use crate::ident::{quote_ident, quote_qualified};
use crate::probe::cx::{Col, PlanCx, Rel, constraint_outcome};
use crate::probe::kind::ProbeKind;
use crate::probe::model::{
    Check, FkJoin, PairOp, PlannedProbe, PreparedFk, ProbePlan, resolve, resolve_needed,
};
use crate::probe::result::{MAX_SAMPLES, ProbeError, ProbeResult, TableStats};
use crate::probe::spec::ProbeSpec;
use crate::probe::sql::{Target, primary_key};
use crate::probe_tx::{ConnectionLost, savepoint};

/// The `fk_orphans` kind.
pub(crate) struct FkOrphans;

impl ProbeSpec for FkOrphans {
    fn kind(&self) -> ProbeKind {
        ProbeKind::FkOrphans
    }

    fn plan(&self, op: &Operation, cx: &mut PlanCx<'_>) {
        if let Operation::AddConstraint { table, constraint } = op
            && let ConstraintKind::ForeignKey {
                columns,
                ref_table,
                ref_columns,
                match_full,
                ..
            } = &constraint.kind
        {
            plan_foreign_key(
                cx,
                table,
                constraint,
                (columns, *match_full),
                ref_table,
                ref_columns,
            );
        }
    }
}

/// An unqualified referenced table resolves in the same schema as the referencing one when that
/// one is qualified; otherwise both use the shard schema.
fn ref_table_key(t: &QualifiedName, from: &QualifiedName) -> QualifiedName {
    if t.schema.is_none() && from.schema.is_some() {
        from.sibling(&t.name)
    } else {
        t.clone()
    }
}

/// What an earlier statement did to the foreign key's tables that the shard's catalog does not
/// show, and PostgreSQL's check would see: the key columns from a primary key the migration
/// added to the referenced table (for a foreign key naming none), or why the rehearsal decides
/// (the operators the check compares with may not be the shard's). A `DROP INDEX` is not
/// followed (its table is unknown here): leaving every later foreign key to the rehearsal,
/// whose tables are empty, would lose the orphan count itself.
fn earlier_changes(
    cx: &PlanCx<'_>,
    (table, columns): (&QualifiedName, &[String]),
    (ref_table, ref_columns): (&QualifiedName, &[String]),
) -> (Option<Vec<String>>, Option<&'static str>) {
    let mut pk = None;
    let mut why = None;
    for (at, op) in cx.earlier() {
        let on_ref = |t: &QualifiedName| cx.state.same_relation(t, at, ref_table, cx.at);
        let on_fk = |t: &QualifiedName| cx.state.same_relation(t, at, table, cx.at);
        match op {
            Operation::AddConstraint {
                table: t,
                constraint,
            } if on_ref(t) => {
                if let ConstraintKind::PrimaryKey { columns: k, .. } = &constraint.kind {
                    pk = Some(k.clone());
                }
            }
            Operation::CreateIndex {
                table: t,
                unique: true,
                columns: keys,
                opclass,
                ..
            } if on_ref(t)
                && (*opclass || keys.iter().any(|k| super::unique::plain_key(k).is_none())) =>
            {
                why = Some(
                    "a unique index with an operator class, a collation or an expression is \
                     created on the referenced table earlier in the migration: rehearsal decides",
                );
            }
            Operation::DropConstraint { table: t, .. } if on_ref(t) => {
                why = Some(
                    "a constraint of the referenced table is dropped earlier in the migration \
                     (the key may be matched through another index): rehearsal decides",
                );
            }
            Operation::AlterColumnType {
                table: t, column, ..
            } if (on_ref(t) && (ref_columns.is_empty() || ref_columns.contains(column)))
                || (on_fk(t) && columns.contains(column)) =>
            {
                why =
                    Some("a key column's type changes earlier in the migration: rehearsal decides");
            }
            _ => {}
        }
    }
    (pk.filter(|_| ref_columns.is_empty()), why)
}

fn plan_foreign_key(
    cx: &mut PlanCx<'_>,
    table: &QualifiedName,
    constraint: &ConstraintDef,
    (columns, match_full): (&[String], bool),
    ref_table: &QualifiedName,
    ref_columns: &[String],
) {
    let (t, mut skipped) = cx.probe_table(table);
    let rt_written = ref_table_key(ref_table, table);
    let (rt, ref_created) = match cx.rel(&rt_written) {
        Rel::Shard(n) => (n, false),
        Rel::New(_) => (rt_written.clone(), true),
        Rel::Gone => {
            skipped.get_or_insert_with(|| {
                "referenced table dropped or renamed away earlier in the migration: rehearsal decides"
                    .into()
            });
            (rt_written.clone(), true)
        }
    };
    if !ref_created {
        cx.plan.tables.insert(rt.clone());
        cx.require_table(&rt);
        for rc in ref_columns {
            if let Col::Shard(st, c) = cx.col(&rt_written, rc) {
                cx.require_column(&st, &c);
            }
        }
    }
    let mut cols = Vec::new();
    for c in columns {
        match cx.col(table, c) {
            Col::Added(def) => {
                let why = if def.default.is_none() {
                    "column added earlier in the migration without a default: all NULL"
                } else {
                    "column added earlier in the migration: rehearsal decides"
                };
                skipped.get_or_insert_with(|| why.into());
            }
            Col::Shard(st, sc) => cx.require_column(&st, &sc),
            Col::Other => {}
        }
        cols.push(cx.col_name(table, c));
    }
    let (added_pk, why) = if ref_created {
        (None, None)
    } else {
        earlier_changes(cx, (table, columns), (&rt_written, ref_columns))
    };
    if let Some(why) = why {
        skipped.get_or_insert_with(|| why.into());
    }
    let ref_cols = added_pk
        .as_deref()
        .unwrap_or(ref_columns)
        .iter()
        .map(|c| cx.col_name(&rt_written, c))
        .collect();
    let (mut would_fail, mut note, statement_index) = constraint_outcome(cx, table, constraint);
    // Rows the migration writes to the referenced table first may be the ones that match.
    if !ref_created && let Some((s, _)) = cx.state.data_changes_before(&rt_written, cx.at).next() {
        would_fail = false;
        let n = format!(
            "statement {} changes the referenced table's rows first: count is before that change",
            s.statement + 1
        );
        note = Some(match note {
            Some(x) => format!("{x}; {n}"),
            None => n,
        });
    }
    cx.push_probe(PlannedProbe {
        statement_index,
        kind: ProbeKind::FkOrphans,
        table: t,
        column: Some(cols.join(", ")),
        constraint: constraint.name.clone(),
        check: Check::Orphans {
            columns: cols,
            ref_table: rt,
            ref_columns: ref_cols,
            ref_created,
            match_full,
        },
        would_fail,
        skipped,
        note,
    });
}

/// The orphan query, as PostgreSQL's own check reads it: rows of `target` (quoted; `ONLY`
/// unless `fk_only` is false: a partitioned table) with non-NULL `cols` and no row in the
/// referenced table (quoted) with equal `ref_cols` by the operators of `join`; no referenced
/// table = every non-NULL row (the referenced table is new).
pub(crate) fn orphans_sql(
    qt: &str,
    (cols, match_full): (&[String], bool),
    fk_only: bool,
    referenced: Option<(&str, &[String], &FkJoin)>,
) -> String {
    // MATCH SIMPLE checks rows whose key columns are all non-NULL; MATCH FULL every row with
    // one non-NULL (some NULL and some not never matches: a violation).
    let not_null = cols
        .iter()
        .map(|c| format!("x.{} IS NOT NULL", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(if match_full { " OR " } else { " AND " });
    let exists = match referenced {
        None => String::new(),
        Some((qref, rcols, join)) => {
            let quals = cols
                .iter()
                .zip(rcols.iter())
                .zip(&join.ops)
                .map(|((c, rc), op)| {
                    format!(
                        "p.{}{} OPERATOR({}) x.{}{}{}",
                        quote_ident(rc),
                        op.left_cast,
                        op.operator,
                        quote_ident(c),
                        op.right_cast,
                        op.collate
                    )
                })
                .collect::<Vec<_>>()
                .join(" AND ");
            let only = if join.pk_only { "ONLY " } else { "" };
            format!(" AND NOT EXISTS (SELECT 1 FROM {only}{qref} AS p WHERE {quals})")
        }
    };
    let only = if fk_only { "ONLY " } else { "" };
    format!(
        "SELECT count(*) OVER (), {} FROM {only}{qt} AS x WHERE ({not_null}){exists} LIMIT {MAX_SAMPLES}",
        crate::probe::sql::row_text("x", cols)
    )
}

/// Whether `qt` (quoted, qualified) is a plain table, to be read `ONLY` by an orphan query (a
/// partitioned table is read with its partitions); an error is the probe's.
async fn reads_only(
    conn: &mut PgConnection,
    qt: &str,
) -> Result<Result<bool, ProbeError>, ConnectionLost> {
    let kind = savepoint(conn, async |c| {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT (SELECT r.relkind::pg_catalog.text FROM pg_catalog.pg_class r
                      WHERE r.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1))",
        )
        .bind(qt)
        .fetch_one(&mut *c)
        .await
    })
    .await?;
    Ok(kind.map(|k| k.as_deref() != Some("p")))
}

/// Primary-key columns per `(schema, table)`, as the shard's transaction has read them.
pub(crate) type PkCache = HashMap<(String, String), Vec<String>>;

/// The SQL of a [`Check::Orphans`] probe on `target`; `None` when the probe cannot run (the
/// reason is in `r.error`). Unnamed referenced columns are the referenced table's primary key.
/// An unqualified referenced table that the shard's schema lacks (`missing`: the tables the
/// shard's catalog read did not find) is `public`'s, as the shard's search path `tenant,
/// public` resolves it.
pub(crate) async fn sql(
    conn: &mut PgConnection,
    target: &Target<'_>,
    check: &Check,
    r: &mut ProbeResult,
    (pk_cache, missing, prepared): (
        &mut PkCache,
        &BTreeSet<(String, String)>,
        Option<PreparedFk>,
    ),
) -> Result<Option<String>, ConnectionLost> {
    let Check::Orphans {
        columns,
        ref_table,
        ref_columns,
        ref_created,
        match_full,
    } = check
    else {
        return Ok(None);
    };
    let fk = (target.qt.as_str(), columns.as_slice(), *match_full);
    // Looked up by the database's batch.
    if let Some((qref, refs, join)) = prepared {
        return Ok(joined_sql(fk, (&qref, &refs), join, r));
    }
    let (rs, rt) = resolve_needed(ref_table, target.shard_schema, |s, t| {
        missing.contains(&(s.to_string(), t.to_string()))
    });
    if *ref_created {
        return Ok(match reads_only(conn, &target.qt).await? {
            Ok(only) => Some(orphans_sql(&target.qt, (columns, *match_full), only, None)),
            Err(e) => {
                r.error = Some(e);
                None
            }
        });
    }
    let mut refcols = ref_columns.to_vec();
    let primary = refcols.is_empty();
    if primary {
        let looked_up = match pk_cache.get(&(rs.clone(), rt.clone())).cloned() {
            Some(v) => Ok(v),
            None => savepoint(conn, async |c| primary_key(c, pk_cache, &rs, &rt).await).await?,
        };
        refcols = match looked_up {
            Ok(v) => v,
            Err(e) => {
                r.error = Some(e);
                return Ok(None);
            }
        };
        if refcols.is_empty() {
            r.error = Some(ProbeError {
                sqlstate: Some("42830".into()),
                message: format!(
                    "referenced table {rs}.{rt} has no primary key and no columns were named"
                ),
            });
            return Ok(None);
        }
    }
    let qref = quote_qualified(&rs, &rt);
    referenced_sql(conn, fk, &qref, (&refcols, primary), None, r).await
}

/// The orphan query of `cols` of `qt` (`match_full`: `MATCH FULL`) referencing `ref_cols` of
/// `qref` (`primary`: its primary key, no columns named) with the operators PostgreSQL's check
/// uses ([`fk_join`]; `constraint`: an existing foreign key's own); `None` when they cannot be
/// found (the reason is in `r.error`).
pub(crate) async fn referenced_sql(
    conn: &mut PgConnection,
    (qt, cols, match_full): (&str, &[String], bool),
    qref: &str,
    (ref_cols, primary): (&[String], bool),
    constraint: Option<&str>,
    r: &mut ProbeResult,
) -> Result<Option<String>, ConnectionLost> {
    let request = FkRequest {
        n: 0,
        fk: qt.to_string(),
        pk: qref.to_string(),
        cols: cols.to_vec(),
        refs: ref_cols.to_vec(),
        con: constraint.map(str::to_string),
        prim: primary,
    };
    let join = fk_join(conn, request).await?;
    Ok(joined_sql(
        (qt, cols, match_full),
        (qref, ref_cols),
        join,
        r,
    ))
}

/// The orphan query of `fk` referencing `referenced` (table, key columns) by `join`, or `None`
/// with the lookup's error in `r`.
fn joined_sql(
    (qt, cols, match_full): (&str, &[String], bool),
    (qref, ref_cols): (&str, &[String]),
    join: Result<FkJoin, ProbeError>,
    r: &mut ProbeResult,
) -> Option<String> {
    match join {
        Ok(join) => Some(orphans_sql(
            qt,
            (cols, match_full),
            join.fk_only,
            Some((qref, ref_cols, &join)),
        )),
        Err(e) => {
            r.error = Some(e);
            None
        }
    }
}

/// The lookup behind [`FkJoin`], one query for any number of foreign keys (a database's batch
/// of shards reads all of theirs at once), every name qualified (it runs before the shard's
/// search path is set and must not depend on any: under the tenant's, an unqualified operator
/// could resolve to the tenant's own). `$1`: a
/// JSON array of [`FkRequest`]s. A new foreign key gets the operators `ADD FOREIGN KEY` would
/// choose: from the primary key's index when no columns were named (`prim`), else from the
/// unique, valid, non-partial index on exactly the referenced columns with the lowest oid
/// (PostgreSQL's index list is in oid order), else the default btree operator class of the
/// referenced column's type (an index the migration creates first; the type category's
/// preferred type first, as `GetDefaultOpClass` does: `varchar` gets `text_ops`, not
/// `bpchar_ops`); the cross-type operator when the family has it for the referencing column's
/// base type, else the key type's own. With `con`, the existing constraint's own operators
/// (`conpfeqop`: a `VALIDATE`). Valid on PostgreSQL 13 (no multiranges: `to_regtype` is NULL).
const FK_JOIN_SQL: &str = "WITH RECURSIVE
 req AS (
  SELECT q.n, pg_catalog.to_regclass(q.fk) AS fk, pg_catalog.to_regclass(q.pk) AS pk,
         q.cols, q.refs, q.con, q.prim
    FROM pg_catalog.jsonb_to_recordset($1::pg_catalog.jsonb)
         AS q(n pg_catalog.int4, fk pg_catalog.text, pk pg_catalog.text, cols pg_catalog.text[],
              refs pg_catalog.text[], con pg_catalog.text, prim pg_catalog.bool)),
 cols AS (
  SELECT r.n, u.i, fa.atttypid AS ftype, fa.attcollation AS fcoll,
         pa.attnum AS pnum, pa.atttypid AS ptype, pa.attcollation AS pcoll
    FROM req r
   CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(r.cols), pg_catalog.unnest(r.refs))
         WITH ORDINALITY AS u(f, p, i)
    JOIN pg_catalog.pg_attribute fa
      ON fa.attrelid OPERATOR(pg_catalog.=) r.fk
     AND fa.attname OPERATOR(pg_catalog.=) u.f::pg_catalog.name AND NOT fa.attisdropped
    JOIN pg_catalog.pg_attribute pa
      ON pa.attrelid OPERATOR(pg_catalog.=) r.pk
     AND pa.attname OPERATOR(pg_catalog.=) u.p::pg_catalog.name AND NOT pa.attisdropped),
 base AS (
  SELECT c.n, c.i, s.fk, t.oid AS cur, t.typbasetype AS next
    FROM cols c
   CROSS JOIN LATERAL (VALUES (true, c.ftype), (false, c.ptype)) AS s(fk, ty)
    JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) s.ty
  UNION ALL
  SELECT b.n, b.i, b.fk, t.oid, t.typbasetype
    FROM base b JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) b.next),
 idx AS (
  SELECT r.n, x.keys, x.classes
    FROM req r
   CROSS JOIN LATERAL (
     SELECT i.indkey::pg_catalog.int2[] AS keys, i.indclass::pg_catalog.oid[] AS classes
       FROM pg_catalog.pg_index i
      WHERE i.indrelid OPERATOR(pg_catalog.=) r.pk
        AND i.indisunique AND i.indimmediate AND i.indisvalid
        AND i.indexprs IS NULL AND i.indpred IS NULL
        AND i.indnkeyatts OPERATOR(pg_catalog.=)
            (SELECT pg_catalog.count(*) FROM cols c WHERE c.n OPERATOR(pg_catalog.=) r.n)
        AND NOT EXISTS (
          SELECT 1 FROM cols c
           WHERE c.n OPERATOR(pg_catalog.=) r.n
             AND NOT EXISTS (
               SELECT 1
                 FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(kn, o)
                WHERE k.kn OPERATOR(pg_catalog.=) c.pnum
                  AND k.o OPERATOR(pg_catalog.<=) i.indnkeyatts))
        AND (NOT r.prim OR i.indisprimary)
      ORDER BY i.indexrelid
      LIMIT 1) x),
 fam AS (
  SELECT c.n, c.i, o.opcfamily AS fam, o.opcintype AS intype
    FROM cols c
    JOIN idx ON idx.n OPERATOR(pg_catalog.=) c.n
   CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(idx.keys), pg_catalog.unnest(idx.classes))
         AS k(kn, cls)
    JOIN pg_catalog.pg_opclass o ON o.oid OPERATOR(pg_catalog.=) k.cls
   WHERE k.kn OPERATOR(pg_catalog.=) c.pnum
  UNION ALL
  SELECT pb.n, pb.i, d.fam, d.intype
    FROM base pb
   CROSS JOIN LATERAL (
     SELECT o.opcfamily AS fam, o.opcintype AS intype
       FROM pg_catalog.pg_opclass o
       JOIN pg_catalog.pg_am a ON a.oid OPERATOR(pg_catalog.=) o.opcmethod
       JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) pb.cur
       JOIN pg_catalog.pg_type it ON it.oid OPERATOR(pg_catalog.=) o.opcintype
      WHERE a.amname OPERATOR(pg_catalog.=) 'btree' AND o.opcdefault
        AND (o.opcintype OPERATOR(pg_catalog.=) pb.cur
             OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast k
                         WHERE k.castsource OPERATOR(pg_catalog.=) pb.cur
                           AND k.casttarget OPERATOR(pg_catalog.=) o.opcintype
                           AND k.castmethod OPERATOR(pg_catalog.=) 'b'
                           AND k.castcontext OPERATOR(pg_catalog.=) 'i')
             OR (o.opcintype OPERATOR(pg_catalog.=) 'pg_catalog.anyenum'::pg_catalog.regtype
                 AND t.typtype OPERATOR(pg_catalog.=) 'e')
             OR (o.opcintype OPERATOR(pg_catalog.=) 'pg_catalog.anyarray'::pg_catalog.regtype
                 AND t.typcategory OPERATOR(pg_catalog.=) 'A')
             OR (o.opcintype OPERATOR(pg_catalog.=) 'pg_catalog.anyrange'::pg_catalog.regtype
                 AND t.typtype OPERATOR(pg_catalog.=) 'r')
             OR (o.opcintype OPERATOR(pg_catalog.=) pg_catalog.to_regtype('pg_catalog.anymultirange')
                 AND t.typtype OPERATOR(pg_catalog.=) 'm')
             OR (o.opcintype OPERATOR(pg_catalog.=) 'pg_catalog.record'::pg_catalog.regtype
                 AND t.typtype OPERATOR(pg_catalog.=) 'c'))
      ORDER BY o.opcintype OPERATOR(pg_catalog.=) pb.cur DESC, it.typispreferred DESC
      LIMIT 1) d
   WHERE NOT pb.fk AND pb.next OPERATOR(pg_catalog.=) 0
     AND NOT EXISTS (SELECT 1 FROM idx WHERE idx.n OPERATOR(pg_catalog.=) pb.n)),
 eq AS (
  SELECT f.n, f.i,
         (SELECT a.amopopr FROM pg_catalog.pg_amop a
           WHERE a.amopfamily OPERATOR(pg_catalog.=) f.fam AND a.amoplefttype OPERATOR(pg_catalog.=) f.intype
             AND a.amoprighttype OPERATOR(pg_catalog.=) fb.cur AND a.amopstrategy OPERATOR(pg_catalog.=) 3) AS pf,
         (SELECT a.amopopr FROM pg_catalog.pg_amop a
           WHERE a.amopfamily OPERATOR(pg_catalog.=) f.fam AND a.amoplefttype OPERATOR(pg_catalog.=) fb.cur
             AND a.amoprighttype OPERATOR(pg_catalog.=) fb.cur AND a.amopstrategy OPERATOR(pg_catalog.=) 3) AS ff,
         (SELECT a.amopopr FROM pg_catalog.pg_amop a
           WHERE a.amopfamily OPERATOR(pg_catalog.=) f.fam AND a.amoplefttype OPERATOR(pg_catalog.=) f.intype
             AND a.amoprighttype OPERATOR(pg_catalog.=) f.intype AND a.amopstrategy OPERATOR(pg_catalog.=) 3) AS pp
    FROM fam f
    JOIN base fb ON fb.fk AND fb.n OPERATOR(pg_catalog.=) f.n AND fb.i OPERATOR(pg_catalog.=) f.i
                 AND fb.next OPERATOR(pg_catalog.=) 0),
 chosen AS (
  SELECT c.n, c.i, c.ftype, c.ptype, c.fcoll, c.pcoll,
         coalesce(
           (SELECT co.conpfeqop[c.i::pg_catalog.int4]
              FROM req r JOIN pg_catalog.pg_constraint co ON co.conrelid OPERATOR(pg_catalog.=) r.fk
             WHERE r.n OPERATOR(pg_catalog.=) c.n
               AND co.conname OPERATOR(pg_catalog.=) r.con::pg_catalog.name
               AND co.contype OPERATOR(pg_catalog.=) 'f'),
           (SELECT CASE WHEN e.pf IS NOT NULL AND e.ff IS NOT NULL THEN e.pf ELSE e.pp END
              FROM eq e WHERE e.n OPERATOR(pg_catalog.=) c.n AND e.i OPERATOR(pg_catalog.=) c.i)) AS opr
    FROM cols c)
SELECT ch.n, ch.i,
       opn.nspname::pg_catalog.text, op.oprname::pg_catalog.text,
       CASE WHEN ch.ptype OPERATOR(pg_catalog.<>) op.oprleft THEN ln.nspname::pg_catalog.text END,
       CASE WHEN ch.ptype OPERATOR(pg_catalog.<>) op.oprleft THEN lt.typname::pg_catalog.text END,
       CASE WHEN ch.ftype OPERATOR(pg_catalog.<>) op.oprright THEN rn.nspname::pg_catalog.text END,
       CASE WHEN ch.ftype OPERATOR(pg_catalog.<>) op.oprright THEN rt.typname::pg_catalog.text END,
       CASE WHEN ch.pcoll OPERATOR(pg_catalog.<>) ch.fcoll THEN cn.nspname::pg_catalog.text END,
       CASE WHEN ch.pcoll OPERATOR(pg_catalog.<>) ch.fcoll THEN co.collname::pg_catalog.text END,
       (SELECT x.relkind::pg_catalog.text FROM pg_catalog.pg_class x
         WHERE x.oid OPERATOR(pg_catalog.=) r.fk),
       (SELECT x.relkind::pg_catalog.text FROM pg_catalog.pg_class x
         WHERE x.oid OPERATOR(pg_catalog.=) r.pk)
  FROM chosen ch
  JOIN req r ON r.n OPERATOR(pg_catalog.=) ch.n
  LEFT JOIN pg_catalog.pg_operator op ON op.oid OPERATOR(pg_catalog.=) ch.opr
  LEFT JOIN pg_catalog.pg_namespace opn ON opn.oid OPERATOR(pg_catalog.=) op.oprnamespace
  LEFT JOIN pg_catalog.pg_type lt ON lt.oid OPERATOR(pg_catalog.=) op.oprleft
  LEFT JOIN pg_catalog.pg_namespace ln ON ln.oid OPERATOR(pg_catalog.=) lt.typnamespace
  LEFT JOIN pg_catalog.pg_type rt ON rt.oid OPERATOR(pg_catalog.=) op.oprright
  LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid OPERATOR(pg_catalog.=) rt.typnamespace
  LEFT JOIN pg_catalog.pg_collation co ON co.oid OPERATOR(pg_catalog.=) ch.pcoll
  LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) co.collnamespace
 ORDER BY ch.n, ch.i";

/// The orphan probes of `plan` on each shard of `schemas` (one database), looked up in one
/// query: per shard, probe index → [`PreparedFk`]. `sizes` and `pks`: what the batch read of
/// each shard before (a table the shard lacks, a primary key it has). A probe the batch cannot
/// prepare (its tables missing, a key it did not read) is left to the shard's own lookup.
pub(crate) async fn prepare_batch(
    conn: &mut PgConnection,
    plan: &ProbePlan,
    schemas: &[String],
    read: &[(&[TableStats], &PkCache)],
) -> Result<Vec<HashMap<usize, PreparedFk>>, sqlx::Error> {
    let mut requests = Vec::new();
    let mut whose = Vec::new();
    for (k, (schema, (sizes, pks))) in schemas.iter().zip(read).enumerate() {
        let missing = |s: &str, t: &str| {
            sizes
                .iter()
                .any(|x| !x.exists && x.schema == s && x.table == t)
        };
        for (pi, p) in plan.probes.iter().enumerate() {
            let Check::Orphans {
                columns,
                ref_table,
                ref_columns,
                ref_created: false,
                ..
            } = &p.check
            else {
                continue;
            };
            let (s, t) = resolve(&p.table, schema);
            if p.skipped.is_some() || missing(&s, &t) {
                continue;
            }
            let (rs, rt) = resolve_needed(ref_table, schema, missing);
            let refs = if ref_columns.is_empty() {
                match pks.get(&(rs.clone(), rt.clone())) {
                    Some(k) if !k.is_empty() => k.clone(),
                    _ => continue,
                }
            } else {
                ref_columns.clone()
            };
            let pk = quote_qualified(&rs, &rt);
            requests.push(FkRequest {
                n: i32::try_from(requests.len()).unwrap_or(i32::MAX),
                fk: quote_qualified(&s, &t),
                pk: pk.clone(),
                cols: columns.clone(),
                refs: refs.clone(),
                con: None,
                prim: ref_columns.is_empty(),
            });
            whose.push((k, pi, pk, refs));
        }
    }
    let mut out: Vec<HashMap<usize, PreparedFk>> = vec![HashMap::new(); schemas.len()];
    let joins = fk_joins(conn, &requests).await?;
    for ((k, pi, pk, refs), join) in whose.into_iter().zip(joins) {
        if let Some(m) = out.get_mut(k) {
            m.insert(pi, (pk, refs, join));
        }
    }
    Ok(out)
}

/// One foreign key [`FK_JOIN_SQL`] looks up.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct FkRequest {
    /// Its position in the batch.
    pub n: i32,
    /// The referencing table, quoted and qualified.
    pub fk: String,
    /// The referenced table, quoted and qualified.
    pub pk: String,
    /// The referencing columns.
    pub cols: Vec<String>,
    /// The referenced columns.
    pub refs: Vec<String>,
    /// An existing foreign key of `fk` whose operators are used (a `VALIDATE`).
    pub con: Option<String>,
    /// No columns were named: the referenced table's primary key is meant.
    pub prim: bool,
}

/// One row of [`FK_JOIN_SQL`].
type JoinRow = (
    i32,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// `schema.name` quoted, or nothing.
fn qualified(schema: Option<String>, name: Option<String>) -> Option<String> {
    Some(quote_qualified(&schema?, &name?))
}

/// [`FkJoin`] of each of `requests`, in one query ([`FK_JOIN_SQL`]). A foreign key whose
/// operator is not found gets the probe's error: the statement fails as well (no equality
/// operator or the columns missing), and the rehearsal says how.
pub(crate) async fn fk_joins(
    conn: &mut PgConnection,
    requests: &[FkRequest],
) -> Result<Vec<Result<FkJoin, ProbeError>>, sqlx::Error> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let json = serde_json::to_value(requests).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let rows = sqlx::query_as::<_, JoinRow>(FK_JOIN_SQL)
        .bind(json)
        .fetch_all(&mut *conn)
        .await?;
    let mut by_request: Vec<Vec<JoinRow>> = vec![Vec::new(); requests.len()];
    for row in rows {
        if let Some(v) = usize::try_from(row.0)
            .ok()
            .and_then(|n| by_request.get_mut(n))
        {
            v.push(row);
        }
    }
    Ok(requests
        .iter()
        .zip(by_request)
        .map(|(q, rows)| join_of(q, rows))
        .collect())
}

/// [`FkJoin`] of one foreign key, in a savepoint of the shard's transaction.
pub(crate) async fn fk_join(
    conn: &mut PgConnection,
    request: FkRequest,
) -> Result<Result<FkJoin, ProbeError>, ConnectionLost> {
    let joins = savepoint(conn, async |c| {
        fk_joins(c, std::slice::from_ref(&request)).await
    })
    .await?;
    Ok(joins.and_then(|mut v| {
        v.pop().unwrap_or_else(|| {
            Err(ProbeError {
                sqlstate: None,
                message: "the foreign key lookup returned nothing".into(),
            })
        })
    }))
}

/// The [`FkJoin`] of request `q` from its rows of [`FK_JOIN_SQL`].
fn join_of(q: &FkRequest, rows: Vec<JoinRow>) -> Result<FkJoin, ProbeError> {
    if rows.len() != q.cols.len() || q.cols.len() != q.refs.len() {
        return Err(ProbeError {
            sqlstate: Some("42703".into()),
            message: format!(
                "the foreign key's columns ({}) of {} or ({}) of {} are not all on this shard",
                q.cols.join(", "),
                q.fk,
                q.refs.join(", "),
                q.pk
            ),
        });
    }
    let mut join = FkJoin {
        fk_only: true,
        pk_only: true,
        ops: Vec::with_capacity(rows.len()),
    };
    for (i, (_, _, nsp, name, ln, lt, rn, rt, cn, cl, fk_kind, pk_kind)) in
        rows.into_iter().enumerate()
    {
        join.fk_only = fk_kind.as_deref() != Some("p");
        join.pk_only = pk_kind.as_deref() != Some("p");
        let operator = match (nsp, name) {
            // An operator's name is a run of these symbols (PostgreSQL allows no others).
            (Some(nsp), Some(name))
                if !name.is_empty() && name.chars().all(|ch| "+-*/<>=~!@#%^&|`?".contains(ch)) =>
            {
                format!("{}.{name}", quote_ident(&nsp))
            }
            _ => {
                return Err(ProbeError {
                    sqlstate: Some("42883".into()),
                    message: format!(
                        "no equality operator for {}.{} = {}.{} in the referenced key's operator family",
                        q.pk,
                        quote_ident(&q.refs[i]),
                        q.fk,
                        quote_ident(&q.cols[i])
                    ),
                });
            }
        };
        let cast = |t: Option<String>| t.map(|t| format!("::{t}")).unwrap_or_default();
        join.ops.push(PairOp {
            operator,
            left_cast: cast(qualified(ln, lt)),
            right_cast: cast(qualified(rn, rt)),
            collate: qualified(cn, cl)
                .map(|c| format!(" COLLATE {c}"))
                .unwrap_or_default(),
        });
    }
    Ok(join)
}

//! `fk_orphans`: rows whose foreign-key columns have no match in the referenced table, for a new
//! foreign key (or its later `VALIDATE`).

use std::collections::HashMap;

use migration_parser::{ConstraintDef, ConstraintKind, Operation, QualifiedName};
use sqlx::PgConnection;

use crate::ident::{quote_ident, quote_qualified};
use crate::probe::cx::{Col, PlanCx, Rel, constraint_outcome};
use crate::probe::kind::ProbeKind;
use crate::probe::model::{Check, PlannedProbe, resolve};
use crate::probe::result::{MAX_SAMPLES, ProbeError, ProbeResult};
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
                ..
            } = &constraint.kind
        {
            plan_foreign_key(cx, table, constraint, columns, ref_table, ref_columns);
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

fn plan_foreign_key(
    cx: &mut PlanCx<'_>,
    table: &QualifiedName,
    constraint: &ConstraintDef,
    columns: &[String],
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
    let ref_cols = ref_columns
        .iter()
        .map(|c| cx.col_name(&rt_written, c))
        .collect();
    let (would_fail, note, statement_index) = constraint_outcome(cx, table, constraint);
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
        },
        would_fail,
        skipped,
        note,
    });
}

/// The orphan query: rows of `target` with non-NULL `cols` and no row in `referenced` (quoted)
/// with equal `ref_cols`; no `referenced` = every non-NULL row (the referenced table is new).
pub(crate) fn orphans_sql(
    qt: &str,
    cols: &[String],
    referenced: Option<(&str, &[String])>,
) -> String {
    let not_null = cols
        .iter()
        .map(|c| format!("x.{} IS NOT NULL", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let exists = match referenced {
        None => String::new(),
        Some((qref, rcols)) => {
            let join = cols
                .iter()
                .zip(rcols.iter())
                .map(|(c, rc)| format!("p.{} = x.{}", quote_ident(rc), quote_ident(c)))
                .collect::<Vec<_>>()
                .join(" AND ");
            format!(" AND NOT EXISTS (SELECT 1 FROM {qref} AS p WHERE {join})")
        }
    };
    format!(
        "SELECT count(*) OVER (), {} FROM {qt} AS x WHERE {not_null}{exists} LIMIT {MAX_SAMPLES}",
        crate::probe::sql::row_text("x", cols)
    )
}

/// The SQL of a [`Check::Orphans`] probe on `target`; `None` when the probe cannot run (the
/// reason is in `r.error`). Unnamed referenced columns are the referenced table's primary key.
pub(crate) async fn sql(
    conn: &mut PgConnection,
    target: &Target<'_>,
    check: &Check,
    r: &mut ProbeResult,
    pk_cache: &mut HashMap<(String, String), Vec<String>>,
) -> Result<Option<String>, ConnectionLost> {
    let Check::Orphans {
        columns,
        ref_table,
        ref_columns,
        ref_created,
    } = check
    else {
        return Ok(None);
    };
    let (rs, rt) = resolve(ref_table, target.shard_schema);
    if *ref_created {
        return Ok(Some(orphans_sql(&target.qt, columns, None)));
    }
    let mut refcols = ref_columns.to_vec();
    if refcols.is_empty() {
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
    Ok(Some(orphans_sql(
        &target.qt,
        columns,
        Some((&qref, &refcols)),
    )))
}

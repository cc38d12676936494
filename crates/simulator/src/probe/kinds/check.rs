//! `check_violations`: rows for which a new `CHECK` expression is false, and rows that a
//! `VALIDATE CONSTRAINT` of a constraint already on the shard would reject (its definition is
//! looked up there; a foreign key is then an orphan probe).

use migration_parser::{ConstraintKind, Operation};
use sqlx::{PgConnection, Row};

use super::fk_orphans::referenced_sql;
use crate::ident::quote_qualified;
use crate::probe::cx::{PlanCx, constraint_outcome};
use crate::probe::kind::ProbeKind;
use crate::probe::model::{Bound, Check, PlannedProbe};
use crate::probe::result::{MAX_SAMPLES, ProbeResult};
use crate::probe::spec::ProbeSpec;
use crate::probe::sql::{Target, bound_sql};
use crate::probe_tx::{ConnectionLost, savepoint};

/// The `check_violations` kind.
pub(crate) struct CheckViolations;

impl ProbeSpec for CheckViolations {
    fn kind(&self) -> ProbeKind {
        ProbeKind::CheckViolations
    }

    fn plan(&self, op: &Operation, cx: &mut PlanCx<'_>) {
        match op {
            Operation::AddConstraint { table, constraint } => {
                let ConstraintKind::Check { expr } = &constraint.kind else {
                    return;
                };
                let (t, mut skipped) = cx.probe_table(table);
                let (would_fail, note, statement_index) = constraint_outcome(cx, table, constraint);
                let bound = cx.bindings(table, [expr.as_str()], &mut skipped);
                cx.push_probe(PlannedProbe {
                    statement_index,
                    kind: ProbeKind::CheckViolations,
                    table: t,
                    column: None,
                    constraint: constraint.name.clone(),
                    check: Check::Expression {
                        expr: expr.clone(),
                        bound,
                    },
                    would_fail,
                    skipped,
                    note,
                });
            }
            Operation::ValidateConstraint { table, name } => {
                // A constraint the migration added NOT VALID is probed at its ADD.
                let Some((t, name)) = cx.shard_constraint(table, name) else {
                    return;
                };
                let note = cx.data_note(table);
                cx.push_probe(PlannedProbe {
                    statement_index: cx.si,
                    kind: ProbeKind::CheckViolations,
                    table: t,
                    column: None,
                    constraint: Some(name.clone()),
                    check: Check::ValidateExisting { name },
                    would_fail: note.is_none(),
                    skipped: None,
                    note,
                });
            }
            _ => {}
        }
    }
}

/// Rows of `target` for which `expr` is false; `bound`: names it reads that the table lacks on
/// the shard.
pub(crate) fn expression_sql(target: &Target<'_>, expr: &str, bound: &[Bound]) -> String {
    format!(
        "SELECT count(*) OVER (), {} FROM {} AS x{} WHERE NOT ({expr}) LIMIT {MAX_SAMPLES}",
        target.sample,
        target.qt,
        bound_sql(bound)
    )
}

/// The definition of constraint `name` of `target` on the shard: `(contype, CHECK expression,
/// referenced schema, referenced table, columns, referenced columns, MATCH type)`. Every name
/// qualified: it must not depend on the search path (under the tenant's, `unnest(smallint[])`
/// would resolve to a tenant's exact match over `pg_catalog.unnest(anyarray)`).
const CONSTRAINT_SQL: &str = "SELECT co.contype::pg_catalog.text, pg_catalog.pg_get_expr(co.conbin, co.conrelid),
                            rn.nspname::pg_catalog.text, rc.relname::pg_catalog.text,
                            ARRAY(SELECT a.attname::pg_catalog.text
                                    FROM pg_catalog.unnest(co.conkey) WITH ORDINALITY k(n, o)
                                    JOIN pg_catalog.pg_attribute a
                                      ON a.attrelid OPERATOR(pg_catalog.=) co.conrelid
                                     AND a.attnum OPERATOR(pg_catalog.=) k.n
                                   ORDER BY k.o),
                            ARRAY(SELECT a.attname::pg_catalog.text
                                    FROM pg_catalog.unnest(co.confkey) WITH ORDINALITY k(n, o)
                                    JOIN pg_catalog.pg_attribute a
                                      ON a.attrelid OPERATOR(pg_catalog.=) co.confrelid
                                     AND a.attnum OPERATOR(pg_catalog.=) k.n
                                   ORDER BY k.o),
                            co.confmatchtype::pg_catalog.text
                       FROM pg_catalog.pg_constraint co
                       JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) co.conrelid
                       JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                       LEFT JOIN pg_catalog.pg_class rc ON rc.oid OPERATOR(pg_catalog.=) co.confrelid
                       LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid OPERATOR(pg_catalog.=) rc.relnamespace
                      WHERE n.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name
                        AND c.relname OPERATOR(pg_catalog.=) $2::pg_catalog.name
                        AND co.conname OPERATOR(pg_catalog.=) $3::pg_catalog.name";

/// The SQL of `VALIDATE CONSTRAINT name` on `target`, built from the constraint's definition on
/// the shard; `None` when there is nothing to run (`r` says why).
pub(crate) async fn validate_existing_sql(
    conn: &mut PgConnection,
    target: &Target<'_>,
    name: &str,
    r: &mut ProbeResult,
) -> Result<Option<String>, ConnectionLost> {
    let def = savepoint(conn, async |c| {
        sqlx::query(CONSTRAINT_SQL)
            .bind(target.schema)
            .bind(target.table)
            .bind(name)
            .fetch_optional(&mut *c)
            .await
    })
    .await?;
    let row = match def {
        Ok(Some(row)) => row,
        Ok(None) => {
            r.skipped = Some("constraint does not exist on this shard (see missing_object)".into());
            return Ok(None);
        }
        Err(e) => {
            r.error = Some(e);
            return Ok(None);
        }
    };
    let contype: String = row.try_get(0).unwrap_or_default();
    if contype == "f" {
        r.kind = ProbeKind::FkOrphans;
        let rs: String = row.try_get(2).unwrap_or_default();
        let rt: String = row.try_get(3).unwrap_or_default();
        let cols: Vec<String> = row.try_get(4).unwrap_or_default();
        let rcols: Vec<String> = row.try_get(5).unwrap_or_default();
        let full = row
            .try_get::<Option<String>, _>(6)
            .ok()
            .flatten()
            .as_deref()
            == Some("f");
        r.column = Some(cols.join(", "));
        let qref = quote_qualified(&rs, &rt);
        let fk = (target.qt.as_str(), cols.as_slice(), full);
        referenced_sql(conn, fk, &qref, (&rcols, false), Some(name), r).await
    } else if contype == "c" {
        let expr: Option<String> = row.try_get(1).unwrap_or(None);
        Ok(expr.map(|e| expression_sql(target, &e, &[])))
    } else {
        r.skipped = Some(format!("constraint type `{contype}` needs no data check"));
        Ok(None)
    }
}

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
                let bound = match cx.bindings(table, [expr.as_str()]) {
                    Ok(b) => b,
                    Err(why) => {
                        skipped.get_or_insert(why);
                        Vec::new()
                    }
                };
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
/// referenced schema, referenced table, columns, referenced columns)`.
const CONSTRAINT_SQL: &str = "SELECT co.contype::text, pg_get_expr(co.conbin, co.conrelid),
                            rn.nspname::text, rc.relname::text,
                            ARRAY(SELECT a.attname::text FROM unnest(co.conkey) WITH ORDINALITY k(n, o)
                                  JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.n ORDER BY k.o),
                            ARRAY(SELECT a.attname::text FROM unnest(co.confkey) WITH ORDINALITY k(n, o)
                                  JOIN pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.n ORDER BY k.o)
                       FROM pg_constraint co
                       JOIN pg_class c ON c.oid = co.conrelid
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                       LEFT JOIN pg_class rc ON rc.oid = co.confrelid
                       LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
                      WHERE n.nspname = $1 AND c.relname = $2 AND co.conname = $3";

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
        r.column = Some(cols.join(", "));
        let qref = quote_qualified(&rs, &rt);
        referenced_sql(conn, &target.qt, &cols, &qref, &rcols, Some(name), r).await
    } else if contype == "c" {
        let expr: Option<String> = row.try_get(1).unwrap_or(None);
        Ok(expr.map(|e| expression_sql(target, &e, &[])))
    } else {
        r.skipped = Some(format!("constraint type `{contype}` needs no data check"));
        Ok(None)
    }
}

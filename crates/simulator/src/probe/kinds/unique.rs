//! `unique_violations`: groups of rows with equal keys under a new unique index, `UNIQUE` or
//! `PRIMARY KEY` constraint (a primary key also gets a `not_null_violations` probe per column).

use migration_parser::{ConstraintDef, ConstraintKind, Operation, QualifiedName};

use crate::ident::quote_ident;
use crate::probe::cx::{Col, PlanCx};
use crate::probe::kind::ProbeKind;
use crate::probe::model::Bound;
use crate::probe::model::{Check, PlannedProbe};
use crate::probe::result::MAX_SAMPLES;
use crate::probe::spec::ProbeSpec;
use crate::probe::sql::Target;
use crate::probe::sql::bound_sql;

/// The `unique_violations` kind.
pub(crate) struct UniqueViolations;

impl ProbeSpec for UniqueViolations {
    fn kind(&self) -> ProbeKind {
        ProbeKind::UniqueViolations
    }

    fn plan(&self, op: &Operation, cx: &mut PlanCx<'_>) {
        match op {
            Operation::CreateIndex {
                name,
                table,
                columns,
                unique: true,
                predicate,
                ..
            } => {
                let (t, mut skipped) = cx.probe_table(table);
                let note = cx.data_note(table);
                let mut keys = Vec::new();
                let mut exprs: Vec<&str> = predicate.iter().map(String::as_str).collect();
                for c in columns {
                    let key = key_sql(c);
                    let Some(n) = column_named(&key) else {
                        // An expression: the names it reads that the shard lacks are bound.
                        exprs.push(c);
                        keys.push(key);
                        continue;
                    };
                    keys.push(match cx.col(table, &n) {
                        // A column added earlier: its single value, or the rehearsal's.
                        Col::Added(def) => {
                            added_key(cx.single_value(table, &n, def), key, &mut skipped)
                        }
                        // A column of the shard, under its name there (renamed earlier or not).
                        _ => quote_ident(&cx.col_name(table, &n)),
                    });
                }
                let bound = cx.bindings(table, exprs, &mut skipped);
                cx.push_probe(PlannedProbe {
                    statement_index: cx.si,
                    kind: ProbeKind::UniqueViolations,
                    table: t,
                    column: None,
                    constraint: name.clone(),
                    check: Check::Duplicates {
                        keys,
                        predicate: predicate.clone(),
                        nulls_not_distinct: cx.sql_upper.contains("NULLS NOT DISTINCT"),
                        bound,
                    },
                    would_fail: note.is_none(),
                    skipped,
                    note,
                });
            }
            Operation::AddConstraint { table, constraint } => match &constraint.kind {
                ConstraintKind::Unique {
                    columns,
                    using_index: None,
                    nulls_not_distinct,
                } if !columns.is_empty() => {
                    let nnd = *nulls_not_distinct || cx.sql_upper.contains("NULLS NOT DISTINCT");
                    plan_key(cx, table, constraint, columns, nnd, false);
                }
                ConstraintKind::PrimaryKey {
                    columns,
                    using_index: None,
                } if !columns.is_empty() => {
                    plan_key(cx, table, constraint, columns, false, true);
                }
                _ => {}
            },
            _ => {}
        }
    }
}

/// Probes of a new `UNIQUE` / `PRIMARY KEY` (`primary`: one NULL probe per column first).
fn plan_key(
    cx: &mut PlanCx<'_>,
    table: &QualifiedName,
    constraint: &ConstraintDef,
    columns: &[String],
    nulls_not_distinct: bool,
    primary: bool,
) {
    let (t, mut skipped) = cx.probe_table(table);
    let mut keys = Vec::new();
    for c in columns {
        let key = quote_ident(&cx.col_name(table, c));
        match cx.col(table, c) {
            Col::Added(def) => keys.push(added_key(
                cx.single_value(table, c, def).filter(|_| !primary),
                key,
                &mut skipped,
            )),
            Col::Shard(st, sc) => {
                cx.require_column(&st, &sc);
                keys.push(key);
            }
            Col::Other => keys.push(key),
        }
    }
    let note = cx.data_note(table);
    let probe = |kind, column, check| PlannedProbe {
        statement_index: cx.si,
        kind,
        table: t.clone(),
        column,
        constraint: constraint.name.clone(),
        check,
        would_fail: note.is_none(),
        skipped: skipped.clone(),
        note: note.clone(),
    };
    let mut planned = Vec::new();
    if primary {
        for c in columns {
            let sc = cx.col_name(table, c);
            planned.push(probe(
                ProbeKind::NotNullViolations,
                Some(sc.clone()),
                Check::Nulls { column: sc },
            ));
        }
    }
    planned.push(probe(
        ProbeKind::UniqueViolations,
        Some(columns.join(", ")),
        Check::Duplicates {
            keys,
            predicate: None,
            nulls_not_distinct,
            bound: Vec::new(),
        },
    ));
    for p in planned {
        cx.push_probe(p);
    }
}

/// The key for a column the migration added earlier: the one value every existing row holds
/// in it, when known; else the column as written (`key`), with the probe left to the rehearsal.
fn added_key(value: Option<String>, key: String, skipped: &mut Option<String>) -> String {
    value.unwrap_or_else(|| {
        skipped.get_or_insert_with(|| {
            "column added earlier in the migration: rehearsal decides".into()
        });
        key
    })
}

/// Turn an index key as written into a GROUP BY expression: plain column names are quoted,
/// quoted names kept, expressions kept verbatim (the migration runs them anyway); a trailing
/// `ASC`/`DESC`/`NULLS FIRST|LAST` is dropped.
pub(crate) fn key_sql(k: &str) -> String {
    let mut s = k.trim().to_string();
    loop {
        let up = s.to_ascii_uppercase();
        let mut changed = false;
        for suffix in [" NULLS FIRST", " NULLS LAST", " ASC", " DESC"] {
            if up.ends_with(suffix) {
                s.truncate(s.len() - suffix.len());
                s = s.trim_end().to_string();
                changed = true;
                break;
            }
        }
        if !changed {
            break;
        }
    }
    if is_plain_ident(&s) {
        quote_ident(&s)
    } else {
        s
    }
}

/// The column an index key as written names, when it is only a column name (with `ASC`,
/// `DESC`, `NULLS …` at most): no expression, operator class or collation.
pub(crate) fn plain_key(k: &str) -> Option<String> {
    column_named(&key_sql(k))
}

/// The column a key from [`key_sql`] names, when it is a (quoted) column name and not an
/// expression.
fn column_named(key: &str) -> Option<String> {
    let inner = key.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.replace("\"\"", "").contains('"')).then(|| inner.replace("\"\"", "\""))
}

fn is_plain_ident(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_lowercase() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
}

fn key_row_text(keys: &[String]) -> String {
    match keys {
        [one] => crate::probe::sql::value_text(one),
        many => format!("(ROW({}))::text", many.join(", ")),
    }
}

/// Groups of rows of `target` with equal `keys` (NULL keys excluded unless `NULLS NOT
/// DISTINCT`), each sample `key x count`; `bound`: names the keys and the predicate read that
/// the table lacks on the shard.
pub(crate) fn duplicates_sql(
    target: &Target<'_>,
    keys: &[String],
    predicate: Option<&str>,
    nulls_not_distinct: bool,
    bound: &[Bound],
) -> String {
    let mut conds: Vec<String> = Vec::new();
    if !nulls_not_distinct {
        conds.extend(keys.iter().map(|k| format!("({k}) IS NOT NULL")));
    }
    if let Some(p) = predicate {
        conds.push(format!("({p})"));
    }
    let where_ = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    format!(
        "SELECT count(*) OVER (), {} || ' x' || (count(*))::pg_catalog.text FROM {} AS x{}{where_} GROUP BY {} HAVING count(*) > 1 LIMIT {MAX_SAMPLES}",
        key_row_text(keys),
        target.qt,
        bound_sql(bound),
        keys.iter()
            .map(|k| format!("({k})"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_are_quoted_or_kept() {
        assert_eq!(key_sql("email"), "\"email\"");
        assert_eq!(key_sql("email DESC NULLS LAST"), "\"email\"");
        assert_eq!(key_sql("lower(email)"), "lower(email)");
        assert_eq!(key_sql("\"Email\""), "\"Email\"");
    }
}

//! The rows an `UPDATE` / `DELETE` touches, as the statement writes them ([`RowFilter`]), and
//! whether its `WHERE` bounds it to a batch.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use sqlparser::ast::{BinaryOperator, Expr, InTarget, Query, TableWithJoins, Visit, Visitor};

/// The row set of an `UPDATE` / `DELETE` with a `WHERE` clause, as SQL that selects the same
/// rows: `SELECT count(*) FROM {from_sql} WHERE {where_sql}` counts them (joins with `FROM` /
/// `USING` tables may count a row more than once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowFilter {
    /// The target table with its alias, then the statement's `FROM` / `USING` tables.
    pub from_sql: String,
    /// The `WHERE` condition.
    pub where_sql: String,
    /// The condition bounds the statement to a batch: it contains a `LIMIT` / `FETCH FIRST`
    /// (`id IN (SELECT id ... LIMIT n)`, `ctid = ANY (ARRAY(SELECT ctid ... LIMIT n))`), a key
    /// range (`BETWEEN`, or a lower and an upper bound on the same column, joined by `AND`), or
    /// names single rows by key (`id = …`, `id IN (…)`, `ctid = …`).
    pub batched: bool,
}

/// The filter of a statement on `target` with extra `from` tables and `selection`; `None`
/// without a `WHERE`.
pub(crate) fn row_filter(
    target: &TableWithJoins,
    from: &[TableWithJoins],
    selection: Option<&Expr>,
) -> Option<RowFilter> {
    let selection = selection?;
    let from_sql = std::iter::once(target)
        .chain(from)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Some(RowFilter {
        from_sql,
        where_sql: selection.to_string(),
        batched: has_limit(selection) || bounded(selection),
    })
}

struct LimitFinder(bool);

impl Visitor for LimitFinder {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if q.limit_clause.is_some() || q.fetch.is_some() {
            self.0 = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

fn has_limit(e: &Expr) -> bool {
    let mut f = LimitFinder(false);
    let _ = e.visit(&mut f);
    f.0
}

/// The top-level `AND` conjuncts of `e`.
fn conjuncts<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner) => conjuncts(inner, out),
        other => out.push(other),
    }
}

/// The column an expression names (last part of a compound identifier), lowercased.
fn column(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(i.value.to_lowercase()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.to_lowercase()),
        Expr::Nested(inner) => column(inner),
        _ => None,
    }
}

fn is_key(col: &str) -> bool {
    col == "id" || col == "ctid"
}

/// A key range or a key lookup among the top-level conjuncts.
fn bounded(e: &Expr) -> bool {
    let mut parts = Vec::new();
    conjuncts(e, &mut parts);
    let (mut lower, mut upper) = (BTreeSet::new(), BTreeSet::new());
    for p in parts {
        match p {
            Expr::Between {
                negated: false,
                expr,
                ..
            } if column(expr).is_some() => return true,
            Expr::In {
                expr,
                target: InTarget::List(_),
                negated: false,
                ..
            } if column(expr).is_some_and(|c| is_key(&c)) => return true,
            Expr::BinaryOp { left, op, right } => {
                let (l, r) = (column(left), column(right));
                match op {
                    // `id = 42`, not the join condition `a.id = b.a_id`.
                    BinaryOperator::Eq
                        if (l.as_deref().is_some_and(is_key) && r.is_none())
                            || (r.as_deref().is_some_and(is_key) && l.is_none()) =>
                    {
                        return true;
                    }
                    BinaryOperator::Gt | BinaryOperator::GtEq => {
                        lower.extend(l);
                        upper.extend(r);
                    }
                    BinaryOperator::Lt | BinaryOperator::LtEq => {
                        upper.extend(l);
                        lower.extend(r);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    lower.intersection(&upper).next().is_some()
}

//! The reverse conversion of `ALTER COLUMN … TYPE … USING`: an expression that accepts every
//! value the forward conversion produced and gives back the value it came from.
//!
//! When the forward `USING` is a literal mapping — a simple or searched `CASE` over the column,
//! or a comparison `col = 'label'` that turns a column into a boolean — the reverse is the
//! mapping turned around (`CASE WHEN col::text = 'label' THEN 'old'::old_type … END`). Otherwise a
//! conversion from or to an enum goes through `text` (`col::text::old_type`): PostgreSQL has no
//! cast between an enum and anything but the string types, so `col::smallint` would fail.

use migration_parser::sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Value};
use migration_parser::sqlparser::dialect::PostgreSqlDialect;
use migration_parser::sqlparser::parser::Parser;

use crate::names::{quote_ident, quote_literal};

/// One column's type change, as its reverse needs it.
pub(crate) struct TypeChange<'a> {
    /// The column (as named when the rollback converts it back).
    pub(crate) column: &'a str,
    /// The type before the migration (`format_type`).
    pub(crate) old_type: &'a str,
    /// The type the migration converted to, as written.
    pub(crate) new_type: &'a str,
    /// The forward `USING` expression.
    pub(crate) forward_using: Option<&'a str>,
    /// The labels of the old type when it is an enum.
    pub(crate) old_labels: Option<&'a [String]>,
    /// The new type is an enum.
    pub(crate) new_is_enum: bool,
}

/// The reverse `USING` expression and how faithful it is.
pub(crate) struct ReverseUsing {
    /// The expression (after `USING`).
    pub(crate) sql: String,
    /// Derived from the forward mapping (the labels mapped back), not a plain cast.
    pub(crate) derived: bool,
    /// Why some values may not come back as they were, when they may not.
    pub(crate) lossy: Option<String>,
}

/// A literal of a mapping, by its text form (what `value::text` prints).
#[derive(Clone, PartialEq, Eq)]
struct Lit(String);

/// A forward conversion written as a literal mapping: `(old, new)` pairs and the new value of
/// every other old value.
struct Mapping {
    pairs: Vec<(Lit, Lit)>,
    otherwise: Option<Lit>,
}

/// The reverse conversion of `c`.
pub(crate) fn reverse_using(c: &TypeChange<'_>) -> ReverseUsing {
    let qc = quote_ident(c.column);
    if let Some(m) = c
        .forward_using
        .and_then(|u| Parser::new(&PostgreSqlDialect {}).try_with_sql(u).ok())
        .and_then(|mut p| p.parse_expr().ok())
        .and_then(|e| mapping(&e, c.column))
    {
        return reversed(&m, &qc, c);
    }
    let through_text = (c.old_labels.is_some() || c.new_is_enum)
        && !(texty(c.old_type) || texty(c.new_type))
        || (c.old_labels.is_some() && c.new_is_enum);
    let sql = if through_text {
        format!("{qc}::text::{}", c.old_type)
    } else {
        format!("{qc}::{}", c.old_type)
    };
    ReverseUsing {
        sql,
        derived: false,
        lossy: None,
    }
}

/// A string type: every value converts to and from it by its text form.
fn texty(t: &str) -> bool {
    let t = t.trim().to_ascii_lowercase();
    t == "text" || t.starts_with("character") || t.starts_with("varchar") || t.starts_with("char")
}

/// The mapping turned around: `CASE WHEN col::text = 'new' THEN 'old'::old_type … END`.
fn reversed(m: &Mapping, qc: &str, c: &TypeChange<'_>) -> ReverseUsing {
    let mut lossy: Vec<String> = Vec::new();
    let mut seen: Vec<&Lit> = Vec::new();
    let mut arms: Vec<String> = Vec::new();
    for (old, new) in &m.pairs {
        if seen.contains(&new) {
            lossy.push(format!("several values became {}", quote_literal(&new.0)));
            continue;
        }
        seen.push(new);
        arms.push(format!(
            "WHEN {qc}::text = {} THEN {}::{}",
            quote_literal(&new.0),
            quote_literal(&old.0),
            c.old_type
        ));
    }
    let mut else_sql = None;
    if let Some(other) = &m.otherwise {
        let mapped: Vec<&Lit> = m.pairs.iter().map(|(o, _)| o).collect();
        let rest = remaining_old_values(c, &mapped);
        match rest.as_slice() {
            [only] => else_sql = Some(format!("{}::{}", quote_literal(only), c.old_type)),
            [first, ..] => {
                lossy.push(format!(
                    "{} came from any of {}; it goes back to {}",
                    quote_literal(&other.0),
                    rest.iter()
                        .map(|r| quote_literal(r))
                        .collect::<Vec<_>>()
                        .join(", "),
                    quote_literal(first)
                ));
                else_sql = Some(format!("{}::{}", quote_literal(first), c.old_type));
            }
            [] => lossy.push(format!(
                "the values that became {} are not known; they go back as NULL",
                quote_literal(&other.0)
            )),
        }
    }
    let mut sql = String::from("CASE");
    if else_sql.is_some() {
        sql.push_str(&format!(" WHEN {qc} IS NULL THEN NULL"));
    }
    for a in arms {
        sql.push(' ');
        sql.push_str(&a);
    }
    if let Some(e) = else_sql {
        sql.push_str(&format!(" ELSE {e}"));
    }
    sql.push_str(" END");
    ReverseUsing {
        sql,
        derived: true,
        lossy: (!lossy.is_empty()).then(|| lossy.join("; ")),
    }
}

/// The old values a mapping's `ELSE` stood for: the other boolean, or the enum's other labels.
fn remaining_old_values(c: &TypeChange<'_>, mapped: &[&Lit]) -> Vec<String> {
    let has = |v: &str| mapped.iter().any(|l| l.0 == v);
    if matches!(
        c.old_type.trim().to_ascii_lowercase().as_str(),
        "boolean" | "bool"
    ) {
        return ["true", "false"]
            .into_iter()
            .filter(|v| !has(v))
            .map(str::to_string)
            .collect();
    }
    c.old_labels
        .map(|labels| labels.iter().filter(|l| !has(l)).cloned().collect())
        .unwrap_or_default()
}

/// The literal mapping `e` writes over `column`, if it is one.
fn mapping(e: &Expr, column: &str) -> Option<Mapping> {
    match unwrap(e) {
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            let mut pairs = Vec::new();
            for w in conditions {
                let old = match operand {
                    Some(op) if is_column(op, column) => literal(&w.condition)?,
                    Some(_) => return None,
                    None => condition_value(&w.condition, column)?,
                };
                pairs.push((old, literal(&w.result)?));
            }
            let otherwise = match else_result {
                Some(r) => Some(literal(r)?),
                None => None,
            };
            Some(Mapping { pairs, otherwise })
        }
        Expr::BinaryOp { left, op, right } => {
            let value = match (is_column(left, column), is_column(right, column)) {
                (true, false) => literal(right)?,
                (false, true) => literal(left)?,
                _ => return None,
            };
            let (hit, miss) = match op {
                BinaryOperator::Eq => ("true", "false"),
                BinaryOperator::NotEq => ("false", "true"),
                _ => return None,
            };
            Some(Mapping {
                pairs: vec![(value, Lit(hit.into()))],
                otherwise: Some(Lit(miss.into())),
            })
        }
        _ => None,
    }
}

/// The old value a searched `CASE` condition picks: `col = lit`, `col` (true), `NOT col` (false).
fn condition_value(cond: &Expr, column: &str) -> Option<Lit> {
    match unwrap(cond) {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            if is_column(left, column) {
                literal(right)
            } else if is_column(right, column) {
                literal(left)
            } else {
                None
            }
        }
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } if is_column(expr, column) => Some(Lit("false".into())),
        Expr::IsTrue(x) if is_column(x, column) => Some(Lit("true".into())),
        Expr::IsFalse(x) if is_column(x, column) => Some(Lit("false".into())),
        x if is_column(x, column) => Some(Lit("true".into())),
        _ => None,
    }
}

/// `e` without parentheses and casts.
fn unwrap(e: &Expr) -> &Expr {
    match e {
        Expr::Nested(x) => unwrap(x),
        Expr::Cast { expr, .. } => unwrap(expr),
        other => other,
    }
}

/// `e` names `column` (possibly cast or qualified).
fn is_column(e: &Expr, column: &str) -> bool {
    let same = |i: &migration_parser::sqlparser::ast::Ident| {
        if i.quote_style.is_some() {
            i.value == column
        } else {
            i.value.to_lowercase() == column
        }
    };
    match unwrap(e) {
        Expr::Identifier(i) => same(i),
        Expr::CompoundIdentifier(parts) => parts.last().is_some_and(same),
        _ => false,
    }
}

/// The text form of a literal (a string, a number, a boolean), casts aside.
fn literal(e: &Expr) -> Option<Lit> {
    match unwrap(e) {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(Lit(s.clone())),
            Value::Number(n, _) => Some(Lit(n.to_string())),
            Value::Boolean(b) => Some(Lit(b.to_string())),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match unwrap(expr) {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => Some(Lit(format!("-{n}"))),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change<'a>(using: &'a str, old: &'a str, new: &'a str) -> TypeChange<'a> {
        TypeChange {
            column: "s",
            old_type: old,
            new_type: new,
            forward_using: Some(using),
            old_labels: None,
            new_is_enum: true,
        }
    }

    #[test]
    fn a_simple_case_is_turned_around() {
        let r = reverse_using(&change(
            "CASE s WHEN 0 THEN 'a'::e WHEN 1 THEN 'b'::e END",
            "smallint",
            "e",
        ));
        assert!(r.derived && r.lossy.is_none(), "{:?}", r.lossy);
        assert_eq!(
            r.sql,
            "CASE WHEN s::text = 'a' THEN '0'::smallint WHEN s::text = 'b' THEN '1'::smallint END"
        );
    }

    #[test]
    fn a_boolean_else_goes_back_to_the_other_boolean() {
        let r = reverse_using(&change(
            "CASE WHEN s THEN 'yes'::e ELSE 'no'::e END",
            "BOOLEAN",
            "e",
        ));
        assert!(r.lossy.is_none(), "{:?}", r.lossy);
        assert!(r.sql.ends_with("ELSE 'false'::BOOLEAN END"), "{}", r.sql);
        assert!(
            r.sql.starts_with("CASE WHEN s IS NULL THEN NULL"),
            "{}",
            r.sql
        );
    }

    #[test]
    fn several_values_into_one_are_reported_lossy() {
        let r = reverse_using(&change(
            "CASE s WHEN 1 THEN 'a' WHEN 2 THEN 'a' END",
            "integer",
            "e",
        ));
        assert!(
            r.lossy
                .is_some_and(|l| l.contains("several values became 'a'"))
        );
    }

    #[test]
    fn an_unknown_expression_goes_through_text_for_enums_only() {
        let mut c = change("f(s)", "smallint", "e");
        assert_eq!(reverse_using(&c).sql, "s::text::smallint");
        c.new_is_enum = false;
        assert_eq!(reverse_using(&c).sql, "s::smallint");
        c.new_type = "text";
        c.new_is_enum = true;
        assert_eq!(reverse_using(&c).sql, "s::smallint");
    }
}

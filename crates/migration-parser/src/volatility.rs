//! Default volatility of an expression, as PostgreSQL would classify it.
//!
//! Literals and casts of literals are immutable. `now()` and the SQL-standard time and user
//! keywords are stable (one value per statement: `ADD COLUMN ... DEFAULT now()` does not rewrite
//! on PG 11+). `random()`, `gen_random_uuid()`, `uuid_generate_v*()`, `clock_timestamp()`,
//! `nextval()`, `timeofday()` are volatile. A small list of well-known immutable functions
//! (`lower`, `coalesce`, `jsonb_build_object`, ...) is classified by its arguments.
//!
//! **Unknown functions are classified `Volatile`.** A wrong "volatile" makes the linter ask a human
//! to confirm that an `ADD COLUMN ... DEFAULT f()` will not rewrite the table; a wrong
//! "immutable/stable" would hide a full table rewrite under an `ACCESS EXCLUSIVE` lock. The
//! conservative error is the cheap one. Subqueries are volatile for the same reason.

use sqlparser::ast::{self, FunctionArg, FunctionArgExpr, FunctionArguments};

use crate::model::Volatility;

const STABLE_FUNCTIONS: &[&str] = &[
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtime",
    "localtimestamp",
    "statement_timestamp",
    "transaction_timestamp",
    "current_user",
    "session_user",
    "user",
    "current_role",
    "current_schema",
    "current_schemas",
    "current_catalog",
    "current_database",
    "current_setting",
    "to_char",
    "to_timestamp",
    "age",
];

const VOLATILE_FUNCTIONS: &[&str] = &[
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "clock_timestamp",
    "nextval",
    "setval",
    "currval",
    "lastval",
    "timeofday",
    "txid_current",
    "pg_current_xact_id",
    "random_normal",
    "uuidv7",
    "uuidv4",
];

const IMMUTABLE_FUNCTIONS: &[&str] = &[
    "lower",
    "upper",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "length",
    "abs",
    "round",
    "trim",
    "btrim",
    "concat_ws",
    "md5",
    "array",
    "jsonb_build_object",
    "jsonb_build_array",
    "json_build_array",
    "to_tsvector",
    "uuid_nil",
    "make_date",
    "make_interval",
    "int4range",
    "int8range",
    "numrange",
    "tsrange",
    "daterange",
];

fn rank(v: Volatility) -> u8 {
    match v {
        Volatility::Immutable => 0,
        Volatility::Stable => 1,
        Volatility::Volatile => 2,
    }
}

fn max(a: Volatility, b: Volatility) -> Volatility {
    if rank(a) >= rank(b) { a } else { b }
}

fn all<'a>(exprs: impl IntoIterator<Item = &'a ast::Expr>) -> Volatility {
    exprs
        .into_iter()
        .map(classify)
        .fold(Volatility::Immutable, max)
}

fn function(f: &ast::Function) -> Volatility {
    let name = f
        .name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_lowercase())
        .unwrap_or_default();
    let args = match &f.args {
        FunctionArguments::List(l) => all(l.args.iter().filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
            | FunctionArg::Named {
                arg: FunctionArgExpr::Expr(e),
                ..
            }
            | FunctionArg::ExprNamed {
                arg: FunctionArgExpr::Expr(e),
                ..
            } => Some(e),
            _ => None,
        })),
        FunctionArguments::Subquery(_) => Volatility::Volatile,
        FunctionArguments::None => Volatility::Immutable,
    };
    if VOLATILE_FUNCTIONS.contains(&name.as_str()) {
        Volatility::Volatile
    } else if STABLE_FUNCTIONS.contains(&name.as_str()) {
        max(Volatility::Stable, args)
    } else if IMMUTABLE_FUNCTIONS.contains(&name.as_str()) {
        args
    } else {
        Volatility::Volatile
    }
}

fn keyword_identifier(i: &ast::Ident) -> Volatility {
    if i.quote_style.is_none() && STABLE_FUNCTIONS.contains(&i.value.to_lowercase().as_str()) {
        Volatility::Stable
    } else {
        Volatility::Immutable
    }
}

/// Classify an expression (see the module documentation for the rules).
pub(crate) fn classify(e: &ast::Expr) -> Volatility {
    use ast::Expr as E;
    match e {
        E::Value(_) | E::TypedString(_) | E::Interval(_) => Volatility::Immutable,
        E::Identifier(i) => keyword_identifier(i),
        E::CompoundIdentifier(_) => Volatility::Immutable,
        E::Cast { expr, .. } => classify(expr),
        E::Nested(inner) => classify(inner),
        E::UnaryOp { expr, .. } => classify(expr),
        E::BinaryOp { left, right, .. } => max(classify(left), classify(right)),
        E::IsNull(x)
        | E::IsNotNull(x)
        | E::IsTrue(x)
        | E::IsFalse(x)
        | E::IsNotTrue(x)
        | E::IsNotFalse(x) => classify(x),
        E::Function(f) => function(f),
        E::Array(a) => all(&a.elem),
        E::Tuple(t) => all(t),
        E::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            let mut v = operand.as_deref().map_or(Volatility::Immutable, classify);
            for c in conditions {
                v = max(v, max(classify(&c.condition), classify(&c.result)));
            }
            if let Some(e) = else_result {
                v = max(v, classify(e));
            }
            v
        }
        E::Subquery(_) | E::Exists { .. } => Volatility::Volatile,
        other => {
            // Forms not modelled above: anything with a call in it is treated as volatile.
            if other.to_string().contains('(') {
                Volatility::Volatile
            } else {
                Volatility::Immutable
            }
        }
    }
}

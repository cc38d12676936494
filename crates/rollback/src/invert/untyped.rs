//! Statements without a typed operation: unparsable text and `Operation::Other` (what the
//! parser's model does not describe: `GRANT`, `CREATE POLICY`, bare queries, ...), judged by the
//! parser's description of them.

use migration_parser::{Operation, Statement, StatementKind, statement_refs};

use super::{Inversion, Outcome, tx};
use crate::generator::Gen;
use crate::names::{quote_ident, split_dotted, split_ident};

/// Statements the typed model does not describe (`Operation::Other`).
pub(crate) struct Untyped;

impl Inversion for Untyped {
    fn family(&self) -> &'static str {
        "untyped"
    }

    fn invert(&self, _g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::Other { description } => other(stmt, description),
            _ => super::misrouted(stmt),
        }
    }
}

/// A statement without operations: it did not parse.
pub(crate) fn opaque(stmt: &Statement) -> Outcome {
    match &stmt.kind {
        StatementKind::Unparsed { error, .. } => Outcome::Irreversible(format!(
            "cannot invert procedural or unrecognised code (the statement did not parse: {error})"
        )),
        StatementKind::Parsed => Outcome::Irreversible(format!(
            "{} is not inverted automatically",
            super::sql::first_words(&stmt.sql, 3)
        )),
    }
}

/// `Operation::Other`, from the leading keywords the parser describes it with.
fn other(stmt: &Statement, description: &str) -> Outcome {
    let words: Vec<String> = description
        .split_whitespace()
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match (w(0), w(1)) {
        ("GRANT", _) | ("REVOKE", _) => Outcome::Irreversible(
            "privileges are not introspected; GRANT/REVOKE is not inverted".into(),
        ),
        ("CHECKPOINT", _) => Outcome::NoOp("CHECKPOINT changes no structure".into()),
        ("CREATE", "POLICY") => create_policy(&stmt.sql).unwrap_or_else(|| {
            Outcome::Irreversible("CREATE POLICY: the policy's name or table is unclear".into())
        }),
        ("SELECT" | "WITH" | "VALUES" | "SHOW" | "EXPLAIN" | "TABLE", _) => {
            match statement_refs(&stmt.sql) {
                Ok(refs) if refs.functions.is_empty() => {
                    Outcome::NoOp("a query changes nothing".into())
                }
                _ => Outcome::Irreversible(
                    "cannot invert procedural code: the query calls functions whose side effects are unknown"
                        .into(),
                ),
            }
        }
        _ => Outcome::Irreversible(format!(
            "{} is not inverted automatically",
            if description.is_empty() {
                super::sql::first_words(&stmt.sql, 3)
            } else {
                description.to_string()
            }
        )),
    }
}

/// `CREATE POLICY p ON t ...`: drop it. The parser's model has no policy operation yet, so
/// the name and table are read after the two keywords (the one reading of statement text left).
fn create_policy(sql: &str) -> Option<Outcome> {
    let sql = super::sql::strip_leading_comments(sql);
    let rest = sql
        .get(..6)?
        .eq_ignore_ascii_case("CREATE")
        .then(|| sql[6..].trim_start())?;
    let rest = rest
        .get(..6)?
        .eq_ignore_ascii_case("POLICY")
        .then(|| rest[6..].trim_start())?;
    let (policy, r) = split_ident(rest);
    let policy = policy?;
    let r = r.trim_start();
    let table = r
        .get(..2)
        .filter(|on| on.eq_ignore_ascii_case("on"))
        .map(|_| split_dotted(&r[2..]))?;
    let table = match table.as_slice() {
        [t] => quote_ident(t),
        [s, t] => format!("{}.{}", quote_ident(s), quote_ident(t)),
        _ => return None,
    };
    Some(Outcome::Inverse(vec![tx(format!(
        "DROP POLICY {} ON {table}",
        quote_ident(&policy)
    ))]))
}

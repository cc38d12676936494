//! Statements without a typed operation (`Operation::Other`, unparsed, bare queries): what
//! their first words say. Temporary: each `DROP FUNCTION|TRIGGER|SEQUENCE|EXTENSION|DOMAIN`,
//! `CREATE DOMAIN|TYPE|POLICY`, `ALTER SEQUENCE` read here moves to its family's typed arm when
//! `migration_parser::Operation` gets the variant (issue 13, `vocab`), and this text reading
//! goes.

use migration_parser::{Operation, QualifiedName, Statement, StatementKind};

use super::sql::{
    first_words, normalise_args, sequence_sql, split_top_level, strip_leading_comments,
    unqualify_function,
};
use super::{Inversion, Outcome, qn, sibling, tx};
use crate::catalog::TypeSnap;
use crate::generate::Gen;
use crate::names::{quote_ident, quote_literal, split_dotted, split_ident};

/// Statements sqlparser parsed but the typed model does not describe (`Operation::Other`).
pub(crate) struct Untyped;

impl Inversion for Untyped {
    fn family(&self) -> &'static str {
        "untyped"
    }

    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, _op: &Operation) -> Outcome {
        opaque(g, stmt)
    }
}

/// A statement without typed operations: unparsed, a bare query, or something only the
/// statement text tells.
pub(crate) fn opaque(g: &mut Gen<'_>, stmt: &Statement) -> Outcome {
    if let Some(o) = by_keywords(g, stmt) {
        return o;
    }
    match &stmt.kind {
        StatementKind::Unparsed { error, .. } => Outcome::Irreversible(format!(
            "cannot invert procedural or unrecognised code (the statement did not parse: {error})"
        )),
        StatementKind::Parsed => {
            let head = stmt.sql.trim_start().to_ascii_uppercase();
            let is_query = ["SELECT", "WITH", "VALUES", "SHOW", "EXPLAIN", "TABLE"]
                .iter()
                .any(|k| head.starts_with(k));
            if is_query && stmt.sql.contains('(') {
                Outcome::Irreversible(
                    "cannot invert procedural code: the query calls functions whose side effects are unknown".into(),
                )
            } else if is_query {
                Outcome::NoOp("a query changes nothing".into())
            } else {
                Outcome::Irreversible(format!(
                    "{} is not inverted automatically",
                    first_words(&stmt.sql, 3)
                ))
            }
        }
    }
}

/// The first words of a statement, upper-cased, and the text after them.
struct Text<'s> {
    sql: &'s str,
    words: Vec<String>,
}

impl<'s> Text<'s> {
    fn new(sql: &'s str) -> Text<'s> {
        let sql = strip_leading_comments(sql);
        let words = sql
            .split_whitespace()
            .take(4)
            .map(|w| w.to_ascii_uppercase())
            .collect();
        Text { sql, words }
    }

    /// Word `i` (upper-cased), or "".
    fn w(&self, i: usize) -> &str {
        self.words.get(i).map(String::as_str).unwrap_or("")
    }

    /// The text after the first `n` words.
    fn after(&self, n: usize) -> &'s str {
        let mut rest = self.sql;
        for _ in 0..n {
            rest = rest.trim_start();
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            rest = &rest[end..];
        }
        rest.trim_start()
    }
}

/// `IF EXISTS` at the start of `s`, and the rest.
fn if_exists(s: &str) -> (bool, String) {
    match s.get(..9) {
        Some(head) if head.eq_ignore_ascii_case("IF EXISTS") => {
            (true, s[9..].trim_start().to_string())
        }
        _ => (false, s.to_string()),
    }
}

/// A possibly qualified name from its dotted parts.
fn dotted_name(parts: &[String]) -> Option<QualifiedName> {
    let n = parts.last()?.clone();
    Some(QualifiedName {
        schema: (parts.len() > 1).then(|| parts[0].clone()),
        name: n,
    })
}

/// Statements recognised from their text.
fn by_keywords(g: &mut Gen<'_>, stmt: &Statement) -> Option<Outcome> {
    let t = Text::new(&stmt.sql);
    match (t.w(0), t.w(1)) {
        ("DROP", "FUNCTION") | ("DROP", "PROCEDURE") => drop_functions(g, &t),
        ("DROP", "TRIGGER") => drop_trigger(g, &t),
        ("DROP", "SEQUENCE") => drop_sequences(g, &t),
        ("DROP", "EXTENSION") => drop_extensions(g, &t),
        ("DROP", "DOMAIN") => drop_domains(g, &t),
        ("CREATE", "DOMAIN") => create_domain(g, &t),
        ("CREATE", "TYPE") => create_type(&t),
        ("CREATE", "POLICY") => create_policy(&t),
        ("ALTER", "SEQUENCE") => alter_sequence(g, &t),
        ("GRANT", _) | ("REVOKE", _) => Some(Outcome::Irreversible(
            "privileges are not introspected; GRANT/REVOKE is not inverted".into(),
        )),
        ("ANALYZE", _)
        | ("ANALYSE", _)
        | ("VACUUM", _)
        | ("CLUSTER", _)
        | ("CHECKPOINT", _)
        | ("REINDEX", _) => Some(Outcome::NoOp(format!("{} changes no structure", t.w(0)))),
        ("DROP", "INDEX") => drop_index_text(g, &t),
        _ => None,
    }
}

/// Functions, procedures (`DROP FUNCTION|PROCEDURE`): the old definitions.
fn drop_functions(g: &mut Gen<'_>, t: &Text<'_>) -> Option<Outcome> {
    let (ie, rest) = if_exists(t.after(2));
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for item in split_top_level(&rest) {
        let parts = split_dotted(&item);
        let Some(fname) = parts.last().cloned() else {
            continue;
        };
        let other_schema = parts.len() > 1 && parts[0] != g.schema();
        let prefix = format!("{fname}(");
        let keys: Vec<String> = if other_schema {
            Vec::new()
        } else {
            g.state
                .functions
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .cloned()
                .collect()
        };
        // With an argument list, pick the overload whose identity arguments match.
        let wanted = item.find('(').map(|p| normalise_args(&item[p..]));
        let keys: Vec<String> = match &wanted {
            Some(a) if keys.len() > 1 => keys
                .into_iter()
                .filter(|k| normalise_args(&k[fname.len()..]) == *a)
                .collect(),
            _ => keys,
        };
        if keys.is_empty() {
            missing.push(item.trim().to_string());
        }
        for k in keys {
            if let Some(f) = g.state.functions.remove(&k) {
                if f.definition.is_empty() {
                    continue;
                }
                out.push(tx(unqualify_function(
                    f.definition.trim_end(),
                    &g.state.schema,
                )));
                if let Some(c) = f.comment {
                    let kw = if t.w(1) == "PROCEDURE" {
                        "PROCEDURE"
                    } else {
                        "FUNCTION"
                    };
                    out.push(tx(format!("COMMENT ON {kw} {k} IS {}", quote_literal(&c))));
                }
            }
        }
    }
    Some(if missing.is_empty() || ie {
        if out.is_empty() {
            Outcome::NoOp("function did not exist (IF EXISTS)".into())
        } else {
            Outcome::Inverse(out)
        }
    } else {
        Outcome::Irreversible(format!(
            "function {} is not in the pre-migration catalog",
            missing.join(", ")
        ))
    })
}

/// `DROP TRIGGER t ON tbl`: the old definition.
fn drop_trigger(g: &mut Gen<'_>, t: &Text<'_>) -> Option<Outcome> {
    let (ie, rest) = if_exists(t.after(2));
    let (tname, r) = split_ident(&rest);
    let tname = tname?;
    let r = r.trim_start();
    let on = r.get(..2).is_some_and(|x| x.eq_ignore_ascii_case("on"));
    let tbl = if on {
        split_dotted(&r[2..])
    } else {
        Vec::new()
    };
    let tkey = match tbl.as_slice() {
        [t] => Some(t.clone()),
        [s, t] if *s == g.state.schema => Some(t.clone()),
        _ => None,
    };
    let def = tkey
        .as_ref()
        .and_then(|t| g.state.tables.get_mut(t))
        .and_then(|t| t.triggers.remove(&tname));
    Some(match def {
        Some(d) if !d.is_empty() => Outcome::Inverse(vec![tx(d)]),
        Some(_) => Outcome::NoOp(format!("trigger {tname} was created by this migration")),
        None if ie => Outcome::NoOp(format!("trigger {tname} did not exist (IF EXISTS)")),
        None => Outcome::Irreversible(format!(
            "trigger {tname} is not in the pre-migration catalog"
        )),
    })
}

/// `DROP SEQUENCE`: the old sequence (its position restarts).
fn drop_sequences(g: &mut Gen<'_>, t: &Text<'_>) -> Option<Outcome> {
    let (ie, rest) = if_exists(t.after(2));
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for item in split_top_level(&rest) {
        let parts = split_dotted(&item);
        let Some(q) = dotted_name(&parts) else {
            continue;
        };
        let n = q.name.clone();
        match g.key(&q).and_then(|k| g.state.sequences.remove(&k)) {
            Some(s) if !s.data_type.is_empty() => {
                out.push(tx(sequence_sql(&qn(&q), &s)));
                if let Some((t, c)) = &s.owned_by {
                    out.push(tx(format!(
                        "ALTER SEQUENCE {} OWNED BY {}.{}",
                        qn(&q),
                        sibling(&q, t),
                        quote_ident(c)
                    )));
                }
            }
            Some(_) => {}
            None => missing.push(n),
        }
    }
    Some(if missing.is_empty() || ie {
        if out.is_empty() {
            Outcome::NoOp("nothing to recreate".into())
        } else {
            Outcome::Partial(
                out,
                "the sequence's position is lost; it restarts at its START value".into(),
            )
        }
    } else {
        Outcome::Irreversible(format!(
            "sequence {} is not in the pre-migration catalog",
            missing.join(", ")
        ))
    })
}

/// `DROP EXTENSION`: recreated in its old schema.
fn drop_extensions(g: &mut Gen<'_>, t: &Text<'_>) -> Option<Outcome> {
    let (ie, rest) = if_exists(t.after(2));
    let mut out = Vec::new();
    for item in split_top_level(&rest) {
        let Some(n) = split_dotted(&item).first().cloned() else {
            continue;
        };
        match g.state.extensions.remove(&n) {
            Some(s) => out.push(tx(format!(
                "CREATE EXTENSION {} SCHEMA {}",
                quote_ident(&n),
                quote_ident(&s)
            ))),
            None if ie => {}
            None => {
                return Some(Outcome::Irreversible(format!(
                    "extension {n} is not in the pre-migration catalog"
                )));
            }
        }
    }
    Some(if out.is_empty() {
        Outcome::NoOp("extension did not exist (IF EXISTS)".into())
    } else {
        Outcome::Inverse(out)
    })
}

/// `DROP DOMAIN`: the old definition.
fn drop_domains(g: &mut Gen<'_>, t: &Text<'_>) -> Option<Outcome> {
    let (ie, rest) = if_exists(t.after(2));
    let mut out = Vec::new();
    for item in split_top_level(&rest) {
        let parts = split_dotted(&item);
        let Some(q) = dotted_name(&parts) else {
            continue;
        };
        let n = q.name.clone();
        match g.key(&q).and_then(|k| g.state.types.remove(&k)) {
            Some(TypeSnap::Domain { definition, .. }) => {
                out.push(tx(format!("CREATE DOMAIN {} {definition}", qn(&q))))
            }
            _ if ie => {}
            _ => {
                return Some(Outcome::Irreversible(format!(
                    "domain {n} is not in the pre-migration catalog"
                )));
            }
        }
    }
    Some(if out.is_empty() {
        Outcome::NoOp("domain did not exist (IF EXISTS)".into())
    } else {
        Outcome::Inverse(out)
    })
}

/// `CREATE DOMAIN`: drop it.
fn create_domain(g: &mut Gen<'_>, t: &Text<'_>) -> Option<Outcome> {
    let parts = split_dotted(t.after(2));
    let q = dotted_name(&parts)?;
    if let Some(k) = g.key(&q) {
        g.state.types.insert(
            k,
            TypeSnap::Domain {
                definition: String::new(),
                comment: None,
            },
        );
    }
    Some(Outcome::Inverse(vec![tx(format!(
        "DROP DOMAIN {}",
        qn(&q)
    ))]))
}

/// `CREATE TYPE` (composite, range, ...): drop it.
fn create_type(t: &Text<'_>) -> Option<Outcome> {
    let parts = split_dotted(t.after(2));
    let q = dotted_name(&parts)?;
    Some(Outcome::Inverse(vec![tx(format!("DROP TYPE {}", qn(&q)))]))
}

/// `CREATE POLICY p ON t`: drop it.
fn create_policy(t: &Text<'_>) -> Option<Outcome> {
    let (pname, r) = split_ident(t.after(2));
    let pname = pname?;
    let r = r.trim_start();
    let tbl = if r.get(..2).is_some_and(|x| x.eq_ignore_ascii_case("on")) {
        split_dotted(&r[2..])
    } else {
        return None;
    };
    let tq = match tbl.as_slice() {
        [t] => QualifiedName::new(t.clone()),
        [s, t] => QualifiedName::qualified(s.clone(), t.clone()),
        _ => return None,
    };
    Some(Outcome::Inverse(vec![tx(format!(
        "DROP POLICY {} ON {}",
        quote_ident(&pname),
        qn(&tq)
    ))]))
}

/// `ALTER SEQUENCE`: the old parameters (not the position).
fn alter_sequence(g: &mut Gen<'_>, t: &Text<'_>) -> Option<Outcome> {
    let (_, rest) = if_exists(t.after(2));
    let parts = split_dotted(&rest);
    let q = dotted_name(&parts)?;
    let n = q.name.clone();
    let s = g.key(&q).and_then(|k| g.state.sequences.get(&k).cloned());
    Some(match s {
        Some(s) if !s.data_type.is_empty() => {
            let mut sql = format!(
                "ALTER SEQUENCE {} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {}{}",
                qn(&q),
                s.data_type,
                s.increment,
                s.min,
                s.max,
                s.start,
                s.cache,
                if s.cycle { " CYCLE" } else { " NO CYCLE" }
            );
            match &s.owned_by {
                Some((t, c)) => {
                    sql.push_str(&format!(" OWNED BY {}.{}", sibling(&q, t), quote_ident(c)))
                }
                None => sql.push_str(" OWNED BY NONE"),
            }
            Outcome::Partial(
                vec![tx(sql)],
                format!(
                    "ALTER SEQUENCE {n}: the parameters are restored, a changed current value (RESTART) is not"
                ),
            )
        }
        Some(_) => Outcome::NoOp(format!("sequence {n} is created by this migration")),
        None => Outcome::Irreversible(format!("sequence {n} is not in the pre-migration catalog")),
    })
}

/// `DROP INDEX [CONCURRENTLY]` that did not parse into an operation.
fn drop_index_text(g: &mut Gen<'_>, t: &Text<'_>) -> Option<Outcome> {
    // DROP INDEX CONCURRENTLY that did not parse into an operation.
    let mut rest = t.after(2);
    if rest.to_ascii_uppercase().starts_with("CONCURRENTLY") {
        rest = rest[12..].trim_start();
    }
    let (ie, rest) = if_exists(rest);
    let mut out = Vec::new();
    for item in split_top_level(&rest) {
        let parts = split_dotted(&item);
        let Some(q) = dotted_name(&parts) else {
            continue;
        };
        match g.drop_index(&q, ie) {
            Outcome::Inverse(v) => out.extend(v),
            other => return Some(other),
        }
    }
    Some(Outcome::Inverse(out))
}

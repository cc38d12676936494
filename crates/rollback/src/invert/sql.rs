//! SQL text the inversions write (constraint and column definitions, sequences, functions) and
//! the few readings of statement text that the typed operations do not carry yet.

use crate::catalog::{ColumnSnap, SequenceSnap};
use crate::names::{quote_ident, split_ident};
use migration_parser::{ConstraintKind, FkAction, QualifiedName};

pub(crate) fn fk_action(a: FkAction) -> &'static str {
    match a {
        FkAction::NoAction => "NO ACTION",
        FkAction::Restrict => "RESTRICT",
        FkAction::Cascade => "CASCADE",
        FkAction::SetNull => "SET NULL",
        FkAction::SetDefault => "SET DEFAULT",
    }
}

pub(crate) fn cols_sql(cols: &[String]) -> String {
    cols.iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A constraint from the migration rendered as `pg_get_constraintdef` would print it (close
/// enough to re-add it if the same migration drops it again).
pub(crate) fn constraint_sql(kind: &ConstraintKind) -> String {
    match kind {
        ConstraintKind::PrimaryKey { columns, .. } => {
            format!("PRIMARY KEY ({})", cols_sql(columns))
        }
        ConstraintKind::Unique {
            columns,
            nulls_not_distinct,
            ..
        } => format!(
            "UNIQUE {}({})",
            if *nulls_not_distinct {
                "NULLS NOT DISTINCT "
            } else {
                ""
            },
            cols_sql(columns)
        ),
        ConstraintKind::ForeignKey {
            columns,
            ref_table,
            ref_columns,
            on_delete,
            on_update,
            match_full,
        } => {
            let mut s = format!(
                "FOREIGN KEY ({}) REFERENCES {}",
                cols_sql(columns),
                qn(ref_table)
            );
            if !ref_columns.is_empty() {
                s.push_str(&format!("({})", cols_sql(ref_columns)));
            }
            if *match_full {
                s.push_str(" MATCH FULL");
            }
            if *on_update != FkAction::NoAction {
                s.push_str(&format!(" ON UPDATE {}", fk_action(*on_update)));
            }
            if *on_delete != FkAction::NoAction {
                s.push_str(&format!(" ON DELETE {}", fk_action(*on_delete)));
            }
            s
        }
        ConstraintKind::Check { expr } => format!("CHECK ({expr})"),
        ConstraintKind::Exclusion { sql } => sql.clone(),
    }
}

pub(crate) fn kind_code(kind: &ConstraintKind) -> &'static str {
    match kind {
        ConstraintKind::PrimaryKey { .. } => "p",
        ConstraintKind::Unique { .. } => "u",
        ConstraintKind::ForeignKey { .. } => "f",
        ConstraintKind::Check { .. } => "c",
        ConstraintKind::Exclusion { .. } => "x",
    }
}

pub(crate) fn kind_columns(
    kind: &ConstraintKind,
    check_cols: impl Fn(&str) -> Vec<String>,
) -> Vec<String> {
    match kind {
        ConstraintKind::PrimaryKey { columns, .. }
        | ConstraintKind::Unique { columns, .. }
        | ConstraintKind::ForeignKey { columns, .. } => columns.clone(),
        ConstraintKind::Check { expr } => check_cols(expr),
        ConstraintKind::Exclusion { .. } => Vec::new(),
    }
}

/// Add `CONCURRENTLY` to a `CREATE [UNIQUE] INDEX` statement.
pub(crate) fn concurrent_index(def: &str) -> String {
    for p in ["CREATE UNIQUE INDEX ", "CREATE INDEX "] {
        if let Some(rest) = def.strip_prefix(p) {
            if rest.starts_with("CONCURRENTLY ") {
                return def.to_string();
            }
            return format!("{p}CONCURRENTLY {rest}");
        }
    }
    def.to_string()
}

/// Remove `CONCURRENTLY` and `IF NOT EXISTS` from a `CREATE INDEX` as written.
pub(crate) fn plain_index(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i].to_ascii_uppercase();
        if w == "CONCURRENTLY" {
            i += 1;
            continue;
        }
        if w == "IF"
            && words
                .get(i + 1)
                .is_some_and(|x| x.eq_ignore_ascii_case("NOT"))
            && words
                .get(i + 2)
                .is_some_and(|x| x.eq_ignore_ascii_case("EXISTS"))
        {
            i += 3;
            continue;
        }
        out.push(words[i]);
        i += 1;
    }
    out.join(" ")
}

pub(crate) fn column_sql(c: &ColumnSnap, with_not_null: bool) -> String {
    let mut s = format!("{} {}", quote_ident(&c.name), c.data_type);
    if let Some(coll) = &c.collation {
        s.push_str(&format!(" COLLATE {coll}"));
    }
    if let Some(g) = &c.generated {
        s.push_str(&format!(" GENERATED ALWAYS AS ({g}) STORED"));
    } else if let Some(d) = &c.default {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    if let Some(i) = &c.identity {
        s.push_str(&format!(" GENERATED {i} AS IDENTITY"));
    }
    if with_not_null && c.not_null && c.identity.is_none() {
        s.push_str(" NOT NULL");
    }
    s
}

pub(crate) fn sequence_sql(name: &str, s: &SequenceSnap) -> String {
    format!(
        "CREATE SEQUENCE {name} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {}{}",
        s.data_type,
        s.increment,
        s.min,
        s.max,
        s.start,
        s.cache,
        if s.cycle { " CYCLE" } else { " NO CYCLE" }
    )
}

/// Strip the `schema.` qualifier `pg_get_functiondef` always prints after `FUNCTION`/`PROCEDURE`.
pub(crate) fn unqualify_function(def: &str, schema: &str) -> String {
    let q = format!("{}.", quote_ident(schema));
    for kw in ["FUNCTION ", "PROCEDURE "] {
        let pat = format!("{kw}{q}");
        if let Some(pos) = def.find(&pat) {
            let mut s = def.to_string();
            s.replace_range(pos..pos + pat.len(), kw);
            return s;
        }
    }
    def.to_string()
}

/// Identifiers (lower-cased, unquoted) that appear in an expression: a cheap stand-in for
/// `pull_var_clause` when naming CHECK constraints.
pub(crate) fn expr_idents(expr: &str, columns: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = expr;
    while !rest.is_empty() {
        let (id, r) = split_ident(rest);
        match id {
            Some(id) => {
                if columns.contains(&id) && !out.contains(&id) && !r.trim_start().starts_with('(') {
                    out.push(id);
                }
                rest = r;
            }
            None => {
                let mut chars = rest.chars();
                let c = chars.next().unwrap_or(' ');
                if c == '\'' {
                    // skip a string literal
                    let after = chars.as_str();
                    rest = after.find('\'').map_or("", |p| &after[p + 1..]);
                } else {
                    rest = chars.as_str();
                }
            }
        }
    }
    out
}

pub(crate) fn first_line(sql: &str) -> String {
    let l = strip_leading_comments(sql)
        .lines()
        .next()
        .unwrap_or("")
        .trim();
    if l.chars().count() > 100 {
        format!("{}…", l.chars().take(100).collect::<String>())
    } else {
        l.to_string()
    }
}

pub(crate) fn first_words(sql: &str, n: usize) -> String {
    strip_leading_comments(sql)
        .split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn strip_leading_comments(sql: &str) -> &str {
    let mut s = sql.trim_start();
    loop {
        if let Some(r) = s.strip_prefix("--") {
            s = r.find('\n').map_or("", |p| &r[p + 1..]).trim_start();
        } else if let Some(r) = s.strip_prefix("/*") {
            s = r.find("*/").map_or("", |p| &r[p + 2..]).trim_start();
        } else {
            return s;
        }
    }
}

pub(crate) fn split_dotted_plain(object: &str) -> Vec<String> {
    // The parser gives normalised parts joined by '.'; quoted names with dots are rare.
    object.split('.').map(str::to_string).collect()
}

pub(crate) fn normalise_args(a: &str) -> String {
    a.to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '"')
        .collect()
}

/// The identity argument types of a function's argument list (with or without parentheses,
/// as written in a migration or as `pg_get_function_identity_arguments` prints it): names,
/// `IN`/`VARIADIC` and defaults dropped, `OUT` arguments left out, common aliases spelled as
/// `format_type` does (`int` → `integer`).
pub(crate) fn identity_types(a: &str) -> Vec<String> {
    let a = a.trim();
    let a = a
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .unwrap_or(a);
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for ch in a.chars().chain(std::iter::once(',')) {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                if let Some(t) = arg_type(&cur) {
                    out.push(t);
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out
}

/// The type of one argument, or `None` for an `OUT` argument or an empty list.
fn arg_type(arg: &str) -> Option<String> {
    let lower = arg.to_ascii_lowercase().replace('"', "");
    let lower = lower
        .split(" default ")
        .next()
        .unwrap_or("")
        .split('=')
        .next()
        .unwrap_or("")
        .to_string();
    let mut words: Vec<&str> = lower.split_whitespace().collect();
    match words.first() {
        None => return None,
        Some(&"out") => return None,
        Some(&"in") | Some(&"variadic") => {
            words.remove(0);
        }
        Some(&"inout") => {
            words.remove(0);
        }
        _ => {}
    }
    const TYPE_STARTS: [&str; 9] = [
        "double",
        "character",
        "char",
        "bit",
        "timestamp",
        "time",
        "interval",
        "national",
        "varying",
    ];
    if words.len() > 1 && !TYPE_STARTS.contains(&words[0]) {
        words.remove(0);
    }
    let t = words.join(" ");
    let t = t.rsplit('.').next().unwrap_or(&t).to_string();
    let alias = match t.as_str() {
        "int" | "int4" => "integer",
        "int8" => "bigint",
        "int2" => "smallint",
        "bool" => "boolean",
        "float8" | "float" => "double precision",
        "float4" => "real",
        "varchar" => "character varying",
        "timestamptz" => "timestamp with time zone",
        "timestamp" => "timestamp without time zone",
        "timetz" => "time with time zone",
        "decimal" => "numeric",
        other => other,
    };
    Some(alias.to_string())
}

pub(crate) fn partition_bound_sql(sql: &str) -> Option<String> {
    let up = sql.to_ascii_uppercase();
    up.find("FOR VALUES")
        .map(|p| sql[p..].trim().trim_end_matches(';').to_string())
        .or_else(|| up.rfind(" DEFAULT").map(|_| "DEFAULT".to_string()))
}

/// A statement's SQL as a rollback statement: without leading comments and the trailing `;`.
pub(crate) fn statement_sql(sql: &str) -> String {
    strip_leading_comments(sql)
        .trim_end()
        .trim_end_matches(';')
        .trim_end()
        .to_string()
}

/// SQL for a name as the migration wrote it (qualified only if it was).
pub(crate) fn qn(q: &QualifiedName) -> String {
    match &q.schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&q.name)),
        None => quote_ident(&q.name),
    }
}

#[cfg(test)]
mod tests {
    use super::identity_types;

    #[test]
    fn identity_types_drop_names_defaults_and_out_arguments() {
        assert_eq!(
            identity_types("(p_id integer, p_factor numeric DEFAULT 1, OUT r int)"),
            vec!["integer", "numeric"]
        );
        assert_eq!(identity_types("int, int4"), vec!["integer", "integer"]);
        assert_eq!(
            identity_types("a double precision, b character varying(10)"),
            vec!["double precision", "character varying(10)"]
        );
        assert_eq!(
            identity_types("score numeric, published timestamptz"),
            vec!["numeric", "timestamp with time zone"]
        );
        assert!(identity_types("").is_empty());
    }
}

//! The one quoting module: every identifier and literal deployclaw writes into SQL goes through
//! here (probe queries, the shadow clone, generated rollbacks, messages). Checked against
//! PostgreSQL's own `quote_ident`/`quote_literal` and parser in `crates/simulator/tests/pg_quote.rs`.
//!
//! * [`quote_ident`] always double-quotes: for SQL deployclaw runs (safe for any name,
//!   including keywords, upper case, spaces, quotes and semicolons).
//! * [`quote_ident_minimal`] quotes only when PostgreSQL's `quote_ident` would: for SQL a human
//!   reads (generated rollbacks, messages).
//! * [`quote_literal`] writes a string literal that means the same under any
//!   `standard_conforming_strings` setting.
//!
//! A NUL character cannot occur in a PostgreSQL identifier or text value; it is dropped.

/// PostgreSQL keywords that are not "unreserved" (reserved, type/function-name and column-name
/// keywords, PostgreSQL 11–17): an identifier spelled like one of these must be quoted.
const KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "json",
    "json_array",
    "json_arrayagg",
    "json_exists",
    "json_object",
    "json_objectagg",
    "json_query",
    "json_scalar",
    "json_serialize",
    "json_table",
    "json_value",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "merge_action",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

/// Always double-quote an identifier, doubling embedded double quotes.
///
/// ```
/// use migration_parser::pg_quote::quote_ident;
/// assert_eq!(quote_ident("users"), "\"users\"");
/// assert_eq!(quote_ident("te\"nant; DROP TABLE x"), "\"te\"\"nant; DROP TABLE x\"");
/// ```
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for ch in name.chars() {
        match ch {
            '"' => out.push_str("\"\""),
            '\0' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Quote an identifier exactly when PostgreSQL's `quote_ident` does: bare when it is lower-case
/// ASCII letters, digits and `_`, does not start with a digit, and is not a
/// non-unreserved keyword; otherwise as [`quote_ident`].
///
/// ```
/// use migration_parser::pg_quote::quote_ident_minimal;
/// assert_eq!(quote_ident_minimal("orders"), "orders");
/// assert_eq!(quote_ident_minimal("user"), "\"user\"");
/// assert_eq!(quote_ident_minimal("Orders"), "\"Orders\"");
/// ```
pub fn quote_ident_minimal(name: &str) -> String {
    let bare = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !KEYWORDS.contains(&name);
    if bare {
        name.to_string()
    } else {
        quote_ident(name)
    }
}

/// `"schema"."name"`, both parts always quoted.
pub fn quote_qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// Quote a string literal: single quotes doubled; a value containing a backslash is written as
/// `E'...'` with backslashes doubled, so it means the same whatever
/// `standard_conforming_strings` is.
///
/// ```
/// use migration_parser::pg_quote::quote_literal;
/// assert_eq!(quote_literal("it's"), "'it''s'");
/// assert_eq!(quote_literal("a\\'; x"), "E'a\\\\''; x'");
/// ```
pub fn quote_literal(value: &str) -> String {
    let clean: String = value.chars().filter(|c| *c != '\0').collect();
    if clean.contains('\\') {
        format!("E'{}'", clean.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", clean.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_injection_attempts() {
        assert_eq!(
            quote_ident("te\"nant; DROP TABLE x; --"),
            "\"te\"\"nant; DROP TABLE x; --\""
        );
        assert_eq!(quote_ident("Ünïcode space"), "\"Ünïcode space\"");
        assert_eq!(quote_ident(""), "\"\"");
        assert_eq!(quote_ident("a\0b"), "\"ab\"");
        assert_eq!(quote_qualified("s\"", "t"), "\"s\"\"\".\"t\"");
        assert_eq!(quote_ident_minimal("select"), "\"select\"");
        assert_eq!(quote_ident_minimal("a$1"), "\"a$1\"");
        assert_eq!(quote_ident_minimal("1a"), "\"1a\"");
        assert_eq!(quote_ident_minimal(""), "\"\"");
    }
}

//! Quoting helpers: every identifier and literal the simulator puts into generated SQL goes
//! through here.

/// Quote an identifier for PostgreSQL: wrap in double quotes and double every embedded double
/// quote. Works for any name (spaces, quotes, unicode, semicolons, keywords); a NUL byte cannot
/// occur in a PostgreSQL identifier and is dropped.
///
/// ```
/// assert_eq!(simulator::quote_ident("users"), "\"users\"");
/// assert_eq!(simulator::quote_ident("te\"nant"), "\"te\"\"nant\"");
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

/// `"schema"."name"`, both parts quoted.
pub fn quote_qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// Quote a string literal: `E'...'`-free standard form with doubled single quotes. Backslashes
/// are literal under `standard_conforming_strings = on` (the default since PostgreSQL 9.1); to be
/// independent of that setting, a literal containing a backslash is written as `E'...'` with
/// backslashes doubled.
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
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\'; x"), "E'a\\\\''; x'");
    }
}

//! Identifier quoting (from the one quoting module, `migration_parser::pg_quote`) and
//! PostgreSQL's rules for names it chooses itself.

pub use migration_parser::pg_quote::{quote_ident_minimal as quote_ident, quote_literal};

/// PostgreSQL's `makeObjectName(name1, name2, label)`: `name1_name2_label`, with `name1` and
/// `name` as PostgreSQL stores it: cut to 63 bytes (`NAMEDATALEN - 1`) on a character
/// boundary, as the server does to a longer identifier in any statement.
pub fn truncate_identifier(name: &str) -> &str {
    if name.len() <= 63 {
        return name;
    }
    let mut end = 63;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// `name2` shortened (the longer one first) so the result fits in 63 bytes.
pub fn make_object_name(name1: &str, name2: Option<&str>, label: Option<&str>) -> String {
    let overhead = label.map_or(0, |l| l.len() + 1) + usize::from(name2.is_some());
    let avail = 63usize.saturating_sub(overhead);
    let mut n1 = name1.len();
    let mut n2 = name2.map_or(0, str::len);
    while n1 + n2 > avail {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    let clip = |s: &str, n: usize| -> String {
        let mut end = n.min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    };
    let mut out = clip(name1, n1);
    if let Some(n) = name2 {
        out.push('_');
        out.push_str(&clip(n, n2));
    }
    if let Some(l) = label {
        out.push('_');
        out.push_str(l);
    }
    out
}

/// PostgreSQL's `ChooseRelationName` / `ChooseConstraintName`: the first of `name1_name2_label`,
/// `name1_name2_label1`, `...label2` that `taken` does not report as used.
pub fn choose_name(
    name1: &str,
    name2: Option<&str>,
    label: &str,
    taken: impl Fn(&str) -> bool,
) -> String {
    let mut pass = 0u32;
    loop {
        let l = if pass == 0 {
            label.to_string()
        } else {
            format!("{label}{pass}")
        };
        let candidate = make_object_name(name1, name2, Some(&l));
        if !taken(&candidate) {
            return candidate;
        }
        pass += 1;
    }
}

/// PostgreSQL's `ChooseIndexNameAddition` / `ChooseForeignKeyConstraintNameAddition`: the column
/// names joined by `_`, stopping once the text reaches 63 bytes.
pub fn name_addition(columns: &[String]) -> String {
    let mut out = String::new();
    for c in columns {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(c);
        if out.len() >= 63 {
            break;
        }
    }
    out
}

/// The column name PostgreSQL uses for an index key when choosing an index name: the column for
/// a plain column (or a cast of one), the function name for a function call, else `expr`.
pub fn index_column_name(key: &str) -> String {
    let mut k = key.trim();
    while k.starts_with('(') && k.ends_with(')') && balanced_inner(k) {
        k = k[1..k.len() - 1].trim();
    }
    let (ident, rest) = split_ident(k);
    let Some(ident) = ident else {
        return "expr".into();
    };
    let raw_rest = rest;
    let rest = rest.trim_start();
    if rest.starts_with('(') {
        return ident.rsplit('.').next().unwrap_or(&ident).to_string();
    }
    if let Some(after_dot) = rest.strip_prefix('.') {
        // qualified function or column reference
        let (_, r2) = split_ident(after_dot);
        if r2.trim_start().starts_with('(') {
            let (i2, _) = split_ident(after_dot);
            return i2.unwrap_or_else(|| "expr".into());
        }
        return "expr".into();
    }
    if rest.is_empty()
        || rest.starts_with("::")
        || raw_rest.chars().next().is_some_and(char::is_whitespace)
    {
        let upper = rest.trim().to_ascii_uppercase();
        if rest.is_empty()
            || rest.starts_with("::")
            || upper.starts_with("ASC")
            || upper.starts_with("DESC")
            || upper.starts_with("NULLS")
            || upper.starts_with("COLLATE")
            || upper
                .split_whitespace()
                .next()
                .is_some_and(|w| w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return ident;
        }
    }
    "expr".into()
}

fn balanced_inner(k: &str) -> bool {
    let mut depth = 0i32;
    for (i, ch) in k.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 && i != k.len() - 1 {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

/// Split a leading identifier (bare, folded to lower case, or double-quoted) off `s`.
pub fn split_ident(s: &str) -> (Option<String>, &str) {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if chars.peek().map(|(_, c)| *c) == Some('"') {
                    out.push('"');
                    chars.next();
                } else {
                    return (Some(out), &rest[i + 1..]);
                }
            } else {
                out.push(c);
            }
        }
        return (None, s);
    }
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '$'))
        .map_or(s.len(), |(i, _)| i);
    if end == 0 || s.starts_with(|c: char| c.is_ascii_digit()) {
        return (None, s);
    }
    (Some(s[..end].to_lowercase()), &s[end..])
}

/// Split a dotted name as written (`a.b`, `"A".b.c`) into its normalised parts.
pub fn split_dotted(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = s.trim();
    loop {
        let (id, r) = split_ident(rest);
        match id {
            Some(id) => parts.push(id),
            None => return parts,
        }
        let r = r.trim_start();
        match r.strip_prefix('.') {
            Some(r2) => rest = r2,
            None => return parts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("users"), "users");
        assert_eq!(quote_ident("User"), "\"User\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("1a"), "\"1a\"");
        assert_eq!(quote_ident("name"), "name");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn identifiers_are_cut_as_the_server_cuts_them() {
        let long = "idx_post_aggregates_featured_community_newest_comment_time_necro";
        assert_eq!(long.len(), 64);
        assert_eq!(truncate_identifier(long), &long[..63]);
        assert_eq!(truncate_identifier("short"), "short");
        let wide = format!("{}é", "a".repeat(62));
        assert_eq!(truncate_identifier(&wide), "a".repeat(62));
    }

    #[test]
    fn object_names() {
        assert_eq!(
            make_object_name("users", Some("email"), Some("key")),
            "users_email_key"
        );
        assert_eq!(make_object_name("users", None, Some("pkey")), "users_pkey");
        let long = "a".repeat(40);
        let n = make_object_name(&long, Some(&"b".repeat(40)), Some("fkey"));
        assert_eq!(n.len(), 63);
        assert!(n.ends_with("_fkey"));
        assert_eq!(
            choose_name("t", Some("c"), "key", |n| n == "t_c_key"),
            "t_c_key1"
        );
    }

    #[test]
    fn index_columns() {
        assert_eq!(index_column_name("email"), "email");
        assert_eq!(index_column_name("lower(email)"), "lower");
        assert_eq!(index_column_name("(lower(email))"), "lower");
        assert_eq!(index_column_name("name gin_trgm_ops"), "name");
        assert_eq!(index_column_name("created_at DESC"), "created_at");
        assert_eq!(index_column_name("a + b"), "expr");
        assert_eq!(index_column_name("\"Foo\""), "Foo");
        assert_eq!(split_dotted("public.\"T\".c"), vec!["public", "T", "c"]);
    }
}

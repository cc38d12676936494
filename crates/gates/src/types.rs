//! Whether `ALTER COLUMN ... TYPE` rewrites the table. Local until the parser provides
//! `type_change_rewrites`.

/// The outcome of a type change, as far as the SQL tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeChange {
    /// Binary-coercible: catalog-only (indexes on the column may still be rebuilt for some
    /// changes, but the table is not).
    NoRewrite,
    /// The table and its indexes are rewritten under ACCESS EXCLUSIVE.
    Rewrite,
    /// The old type is unknown and the new type is a typical widening target (`text`,
    /// `varchar[(n)]`, unconstrained `numeric`): assumed binary-coercible.
    AssumedWidening,
}

/// A type name normalised: lower-cased, single spaces, aliases folded to one spelling.
fn normalize(ty: &str) -> String {
    let t = ty.trim().to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    let t = t.replace("character varying", "varchar").replace(" (", "(");
    match t.as_str() {
        "int" | "int4" => "integer".into(),
        "int8" => "bigint".into(),
        "int2" => "smallint".into(),
        "bool" => "boolean".into(),
        "decimal" => "numeric".into(),
        "float8" | "double precision" => "double precision".into(),
        "timestamptz" => "timestamp with time zone".into(),
        "timestamp without time zone" => "timestamp".into(),
        _ => t.replacen("decimal(", "numeric(", 1),
    }
}

/// `name(args)` split into the name and its numeric arguments.
fn split(ty: &str) -> (&str, Vec<u32>) {
    match ty.split_once('(') {
        Some((name, rest)) => {
            let args = rest
                .trim_end_matches(')')
                .split(',')
                .filter_map(|a| a.trim().parse::<u32>().ok())
                .collect();
            (name.trim(), args)
        }
        None => (ty, Vec::new()),
    }
}

/// Classify changing a column from `old` (when known) to `new`, with an optional `USING`.
pub(crate) fn type_change(old: Option<&str>, new: &str, using: Option<&str>) -> TypeChange {
    let new_n = normalize(new);
    let (new_name, new_args) = split(&new_n);
    if using.is_some() {
        return TypeChange::Rewrite;
    }
    let Some(old) = old else {
        return match new_name {
            "text" | "varchar" => TypeChange::AssumedWidening,
            "numeric" if new_args.is_empty() => TypeChange::AssumedWidening,
            _ => TypeChange::Rewrite,
        };
    };
    let old_n = normalize(old);
    if old_n == new_n {
        return TypeChange::NoRewrite;
    }
    let (old_name, old_args) = split(&old_n);
    let widened = |o: &[u32], n: &[u32]| match (o.first(), n.first()) {
        (_, None) => true,
        (Some(a), Some(b)) => b >= a,
        (None, Some(_)) => false,
    };
    let ok = match (old_name, new_name) {
        ("varchar", "varchar") => widened(&old_args, &new_args),
        ("varchar", "text") | ("text", "varchar") if new_args.is_empty() => true,
        ("varchar", "text") => true,
        ("numeric", "numeric") => {
            new_args.is_empty()
                || (old_args.len() == 2 && new_args.len() == 2 && new_args[1] == old_args[1] && new_args[0] >= old_args[0])
        }
        ("varbit" | "bit varying", "varbit" | "bit varying") => widened(&old_args, &new_args),
        ("cidr", "inet") => true,
        ("xml", "text") => true,
        _ => false,
    };
    if ok { TypeChange::NoRewrite } else { TypeChange::Rewrite }
}

#[cfg(test)]
mod tests {
    use super::{TypeChange::*, type_change};

    #[test]
    fn binary_coercible_changes() {
        assert_eq!(type_change(Some("varchar(20)"), "varchar(64)", None), NoRewrite);
        assert_eq!(type_change(Some("character varying(20)"), "text", None), NoRewrite);
        assert_eq!(type_change(Some("varchar(64)"), "varchar(20)", None), Rewrite);
        assert_eq!(type_change(Some("integer"), "bigint", None), Rewrite);
        assert_eq!(type_change(Some("int"), "integer", None), NoRewrite);
        assert_eq!(type_change(Some("numeric(10,2)"), "numeric(12,2)", None), NoRewrite);
        assert_eq!(type_change(Some("numeric(10,2)"), "numeric(12,3)", None), Rewrite);
        assert_eq!(type_change(None, "text", None), AssumedWidening);
        assert_eq!(type_change(None, "varchar(255)", None), AssumedWidening);
        assert_eq!(type_change(None, "bigint", None), Rewrite);
        assert_eq!(type_change(Some("varchar(20)"), "text", Some("x::text")), Rewrite);
    }
}

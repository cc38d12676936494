//! Whether `ALTER COLUMN ... TYPE` rewrites the table, on top of the parser's
//! [`migration_parser::type_change_rewrites`] (which needs the old type).

/// The outcome of a type change, as far as the SQL tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeChange {
    /// Binary-coercible: catalog-only.
    NoRewrite,
    /// The table and its indexes are rewritten under ACCESS EXCLUSIVE (or the pair is unknown to
    /// the knowledge table, which is treated the same way).
    Rewrite,
    /// The old type is unknown and the new type is a typical widening target (`text`,
    /// `varchar[(n)]`, unconstrained `numeric`) without `USING`: assumed binary-coercible; the
    /// per-shard catalog settles it.
    AssumedWidening,
}

/// Classify changing a column from `old` (when known) to `new`, with an optional `USING`.
pub(crate) fn type_change(old: Option<&str>, new: &str, using: Option<&str>) -> TypeChange {
    if using.is_some() {
        return TypeChange::Rewrite;
    }
    match old {
        Some(old) => match migration_parser::type_change_rewrites(old, new) {
            Some(false) => TypeChange::NoRewrite,
            _ => TypeChange::Rewrite,
        },
        None => {
            let n = new.trim().to_lowercase();
            let base = n.split('(').next().unwrap_or("").trim();
            match base {
                "text" | "varchar" | "character varying" => TypeChange::AssumedWidening,
                "numeric" | "decimal" if !n.contains('(') => TypeChange::AssumedWidening,
                _ => TypeChange::Rewrite,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{TypeChange::*, type_change};

    #[test]
    fn binary_coercible_changes() {
        assert_eq!(
            type_change(Some("varchar(20)"), "varchar(64)", None),
            NoRewrite
        );
        assert_eq!(
            type_change(Some("character varying(20)"), "text", None),
            NoRewrite
        );
        assert_eq!(
            type_change(Some("varchar(64)"), "varchar(20)", None),
            Rewrite
        );
        assert_eq!(type_change(Some("integer"), "bigint", None), Rewrite);
        assert_eq!(
            type_change(Some("numeric(10,2)"), "numeric(12,2)", None),
            NoRewrite
        );
        assert_eq!(type_change(None, "text", None), AssumedWidening);
        assert_eq!(type_change(None, "varchar(255)", None), AssumedWidening);
        assert_eq!(
            type_change(None, "character varying(255)", None),
            AssumedWidening
        );
        assert_eq!(type_change(None, "bigint", None), Rewrite);
        assert_eq!(type_change(None, "numeric(12,2)", None), Rewrite);
        assert_eq!(
            type_change(Some("varchar(20)"), "text", Some("x::text")),
            Rewrite
        );
    }
}

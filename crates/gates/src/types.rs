//! Whether `ALTER COLUMN ... TYPE` rewrites the table, on top of the parser's
//! [`migration_parser::type_change_outcome`] (which needs the old type).

use migration_parser::{
    PgVersion, TypeChangeOutcome, canonical_type, type_change_outcome, using_is_plain_cast,
};

/// The outcome of a type change, as far as the SQL tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeChange {
    /// Binary-coercible, or the same type: catalog-only.
    NoRewrite,
    /// The table and its indexes are rewritten under ACCESS EXCLUSIVE (or the pair is unknown to
    /// the knowledge table, which is treated the same way); `may_fail` when some values of the
    /// old type do not fit the new one.
    Rewrite { may_fail: bool },
    /// The old type is unknown and the new type is a typical widening target (`text`,
    /// `varchar[(n)]`, unconstrained `numeric`) without `USING`: assumed binary-coercible; the
    /// per-shard rehearsal settles it. (`numeric(p,s)` is not assumed: on real histories it
    /// mostly comes from an integer or float column, a rewrite.)
    AssumedWidening,
}

/// Classify changing `column` from `old` (when known) to `new` on `version`, with an optional
/// `USING` (a plain cast of the column to the new type counts as none). `session_utc`: the
/// migration set a zero-offset `TimeZone` before the statement (otherwise the zone the deploy
/// runs under is unknown, and `timestamp` ↔ `timestamptz` counts as a rewrite).
pub(crate) fn type_change(
    old: Option<&str>,
    new: &str,
    using: Option<&str>,
    column: &str,
    version: PgVersion,
    session_utc: bool,
) -> TypeChange {
    if using.is_some_and(|u| !using_is_plain_cast(u, column, new)) {
        return TypeChange::Rewrite {
            may_fail: old.is_none_or(|o| canonical_type(o) != canonical_type(new)),
        };
    }
    match old {
        Some(old) => match type_change_outcome(old, new, version, session_utc) {
            TypeChangeOutcome::NoOp | TypeChangeOutcome::CatalogOnly => TypeChange::NoRewrite,
            TypeChangeOutcome::Rewrite { may_fail } => TypeChange::Rewrite { may_fail },
            _ => TypeChange::Rewrite { may_fail: true },
        },
        None => match canonical_type(new) {
            (t, _) if t == "text" || t == "varchar" => TypeChange::AssumedWidening,
            (t, m) if t == "numeric" && m.is_empty() => TypeChange::AssumedWidening,
            _ => TypeChange::Rewrite { may_fail: false },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{TypeChange::*, type_change};
    use migration_parser::PgVersion;

    fn tc(old: Option<&str>, new: &str, using: Option<&str>) -> super::TypeChange {
        type_change(old, new, using, "c", PgVersion(15), false)
    }

    #[test]
    fn binary_coercible_changes() {
        assert_eq!(tc(Some("varchar(20)"), "varchar(64)", None), NoRewrite);
        assert_eq!(tc(Some("character varying(20)"), "text", None), NoRewrite);
        assert_eq!(
            tc(Some("varchar(64)"), "varchar(20)", None),
            Rewrite { may_fail: true }
        );
        assert_eq!(
            tc(Some("integer"), "bigint", None),
            Rewrite { may_fail: false }
        );
        assert_eq!(tc(Some("numeric(10,2)"), "numeric(12,2)", None), NoRewrite);
        assert_eq!(tc(Some("uuid"), "uuid", Some("c::uuid")), NoRewrite);
        assert_eq!(tc(None, "text", None), AssumedWidening);
        assert_eq!(tc(None, "varchar(255)", None), AssumedWidening);
        assert_eq!(tc(None, "character varying(255)", None), AssumedWidening);
        assert_eq!(tc(None, "bigint", None), Rewrite { may_fail: false });
        assert_eq!(tc(None, "numeric(12,2)", None), Rewrite { may_fail: false });
        assert_eq!(
            tc(Some("varchar(20)"), "text", Some("lower(c)")),
            Rewrite { may_fail: true }
        );
        assert_eq!(tc(Some("varchar(20)"), "text", Some("c::text")), NoRewrite);
    }
}

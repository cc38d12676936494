//! `ALTER COLUMN ... TYPE` knowledge: which type changes rewrite the table, per PostgreSQL major
//! version 11–17, as one table of data ([`TYPE_CHANGES`]).
//!
//! sql-altertable, Notes: "when changing the type of an existing column, if the USING clause does
//! not change the column contents and the old type is either binary coercible to the new type or
//! an unconstrained domain over the new type, a table rewrite is not needed. However, indexes
//! must still be rebuilt unless the system can verify that the new index would be logically
//! equivalent to the existing one."
//!
//! The table is derived from the server's `pg_cast` (`castmethod = 'b'`: binary coercible) and
//! from the length-coercion support functions of the types with modifiers (`varchar_support`,
//! `numeric_support`, `timestamp_support`, `interval_support`, `varbit_support`; `bpchar` and
//! `bit` have none). `crates/migration-parser/tests/type_changes.rs` checks every entry against
//! the installed server (a table per pair, `pg_class.relfilenode` before and after the
//! `ALTER`, and `pg_cast` for every [`Coercion::Binary`] entry); the other versions rest on the
//! release notes and the source (the only version-dependent entry is `timestamp` ↔
//! `timestamptz`, PostgreSQL 12's "avoid a table rewrite when the session time zone is UTC").
//!
//! A change to the *same* type with the same modifiers (`uuid → uuid`, `jsonb → jsonb`) is a
//! no-op for every type and needs no entry.

use crate::model::PgVersion;

/// How PostgreSQL carries out changing a column from one type to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coercion {
    /// Binary coercible (`pg_cast.castmethod = 'b'`): catalog-only, unless the new type carries
    /// a modifier (a length coercion then checks, and rewrites, every value).
    Binary,
    /// The same base type with a different modifier: the type's length-coercion support
    /// function decides (see [`Typmod`]).
    Typmod(Typmod),
    /// Catalog-only from PostgreSQL `since` when the session `TimeZone` is UTC, a rewrite
    /// otherwise (the values are reinterpreted in the session time zone).
    UtcOnly {
        /// First major version that skips the rewrite.
        since: u32,
    },
    /// The table and its indexes are rewritten.
    Rewrite {
        /// Some values of the old type are not valid in the new one: the statement can fail.
        may_fail: bool,
    },
}

/// What a modifier change does, by the type's support function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typmod {
    /// `varchar(n)`, `varbit(n)`: no rewrite when the new length is absent or not smaller;
    /// otherwise every value is checked (and a longer one fails the statement).
    Length,
    /// `numeric(p,s)`: no rewrite to `numeric(q ≥ p, s)` or unconstrained `numeric`; any other
    /// change rewrites (and can overflow).
    Precision,
    /// `timestamp(p)`, `timestamptz(p)`, `time(p)`, `timetz(p)`, `interval(p)`: no rewrite when
    /// the new precision is absent, the maximum (6), or not smaller than the old one.
    FractionalSeconds,
    /// `char(n)`, `bit(n)`: no support function; any change rewrites (and can fail).
    Exact,
}

/// One row of the table: changes from any of `from` to any of `to` (canonical type names, see
/// [`canonical_type`]); an empty `to` means a modifier change within the `from` type.
#[derive(Debug, Clone, Copy)]
pub struct TypeChangeFact {
    /// Old types.
    pub from: &'static [&'static str],
    /// New types.
    pub to: &'static [&'static str],
    /// What PostgreSQL does.
    pub coercion: Coercion,
}

const fn fact(
    from: &'static [&'static str],
    to: &'static [&'static str],
    coercion: Coercion,
) -> TypeChangeFact {
    TypeChangeFact { from, to, coercion }
}

const REWRITE: Coercion = Coercion::Rewrite { may_fail: false };
const REWRITE_MAY_FAIL: Coercion = Coercion::Rewrite { may_fail: true };
/// `to` of a row about modifier changes within each `from` type.
const SAME: &[&str] = &[];
const INTS: &[&str] = &["int2", "int4", "int8"];
const STRINGS: &[&str] = &["text", "varchar"];

/// The type-change table, first match wins. Same type and modifiers is a no-op before it is
/// consulted; a pair not listed is unknown.
pub const TYPE_CHANGES: &[TypeChangeFact] = &[
    // Modifier changes within one type (the support functions).
    fact(&["varchar"], &["varchar"], Coercion::Typmod(Typmod::Length)),
    fact(&["varbit"], &["varbit"], Coercion::Typmod(Typmod::Length)),
    fact(
        &["numeric"],
        &["numeric"],
        Coercion::Typmod(Typmod::Precision),
    ),
    fact(
        &["timestamp", "timestamptz", "time", "timetz", "interval"],
        SAME,
        Coercion::Typmod(Typmod::FractionalSeconds),
    ),
    fact(&["bpchar", "bit"], SAME, Coercion::Typmod(Typmod::Exact)),
    // pg_cast castmethod 'b'.
    fact(&["varchar"], &["text"], Coercion::Binary),
    fact(&["text"], &["varchar"], Coercion::Binary),
    fact(&["cidr"], &["inet"], Coercion::Binary),
    fact(&["xml"], &["text", "varchar"], Coercion::Binary),
    fact(&["bit"], &["varbit"], Coercion::Binary),
    fact(&["int4"], &["oid"], Coercion::Binary),
    fact(&["oid"], &["int4"], Coercion::Binary),
    // PostgreSQL 12+: catalog-only under TimeZone UTC.
    fact(
        &["timestamp"],
        &["timestamptz"],
        Coercion::UtcOnly { since: 12 },
    ),
    fact(
        &["timestamptz"],
        &["timestamp"],
        Coercion::UtcOnly { since: 12 },
    ),
    // Everything else rewrites: a function or I/O conversion runs on every row.
    fact(&["int2"], &["int4", "int8"], REWRITE),
    fact(&["int4"], &["int8"], REWRITE),
    fact(&["int8"], &["int4", "int2"], REWRITE_MAY_FAIL),
    fact(&["int4"], &["int2"], REWRITE_MAY_FAIL),
    fact(
        INTS,
        &["numeric", "float4", "float8", "text", "varchar"],
        REWRITE,
    ),
    fact(&["float4"], &["float8"], REWRITE),
    fact(&["json"], &["jsonb"], REWRITE_MAY_FAIL),
    fact(&["jsonb"], &["json"], REWRITE),
    fact(&["bytea"], &["text", "varchar"], REWRITE),
    fact(&["bpchar"], &["text", "varchar"], REWRITE),
    fact(STRINGS, &["bpchar", "name"], REWRITE_MAY_FAIL),
    fact(&["name"], STRINGS, REWRITE),
    fact(&["inet"], &["cidr"], REWRITE_MAY_FAIL),
    fact(&["date"], &["timestamp", "timestamptz"], REWRITE),
    fact(
        STRINGS,
        &[
            "int2",
            "int4",
            "int8",
            "numeric",
            "uuid",
            "jsonb",
            "json",
            "bool",
            "timestamp",
            "timestamptz",
            "date",
        ],
        REWRITE_MAY_FAIL,
    ),
];

/// What changing a column's type does, as far as the two type names tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeChangeOutcome {
    /// The same type and modifiers: nothing changes.
    NoOp,
    /// Catalog-only: no table rewrite (indexes on the column may still be rebuilt, under the
    /// same ACCESS EXCLUSIVE lock).
    CatalogOnly,
    /// The table and its indexes are rewritten under ACCESS EXCLUSIVE.
    Rewrite {
        /// Some existing values may not fit the new type: the statement can fail.
        may_fail: bool,
    },
    /// The table does not know this pair.
    Unknown,
}

/// A type name normalised: aliases to one spelling (`character varying` → `varchar`,
/// `integer` → `int4`, `timestamp with time zone` → `timestamptz`), lower case, a leading
/// `pg_catalog.` dropped; and its modifiers (`varchar(20)` → `[20]`).
pub fn canonical_type(t: &str) -> (String, Vec<u32>) {
    let t = t.trim().to_lowercase().replace('"', "");
    let t = t.strip_prefix("pg_catalog.").unwrap_or(&t).to_string();
    let (base, mods) = match t.find('(') {
        Some(p) => {
            let close = t.rfind(')').unwrap_or(t.len()).max(p + 1);
            let inner = &t[p + 1..close.min(t.len())];
            let rest = t.get(close + 1..).unwrap_or("").trim();
            let mods: Vec<u32> = inner
                .split(',')
                .filter_map(|x| x.trim().parse().ok())
                .collect();
            (format!("{} {rest}", t[..p].trim()), mods)
        }
        None => (t.clone(), Vec::new()),
    };
    let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
    let canon = match base.as_str() {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "character varying" | "varchar" => "varchar",
        "character" | "char" | "bpchar" => "bpchar",
        "decimal" | "numeric" => "numeric",
        "timestamp" | "timestamp without time zone" => "timestamp",
        "timestamptz" | "timestamp with time zone" => "timestamptz",
        "time" | "time without time zone" => "time",
        "timetz" | "time with time zone" => "timetz",
        "bool" | "boolean" => "bool",
        "float8" | "double precision" => "float8",
        "float4" | "real" => "float4",
        "bit varying" | "varbit" => "varbit",
        other => other,
    };
    (canon.to_string(), mods)
}

/// What changing a column from `old_type` to `new_type` does on PostgreSQL `version` (clamped
/// to 11–17), with a plain cast (no `USING`, or one [`using_is_plain_cast`] accepts).
/// `session_utc`: the session `TimeZone` is known to be UTC (only `timestamp` ↔ `timestamptz`
/// depends on it).
pub fn type_change_outcome(
    old_type: &str,
    new_type: &str,
    version: PgVersion,
    session_utc: bool,
) -> TypeChangeOutcome {
    let (ob, om) = canonical_type(old_type);
    let (nb, nm) = canonical_type(new_type);
    if ob == nb && om == nm {
        return TypeChangeOutcome::NoOp;
    }
    let Some(fact) = TYPE_CHANGES.iter().find(|f| {
        f.from.contains(&ob.as_str())
            && (f.to.contains(&nb.as_str()) || (f.to.is_empty() && ob == nb))
    }) else {
        return TypeChangeOutcome::Unknown;
    };
    let catalog_only = |ok: bool, may_fail: bool| match ok {
        true => TypeChangeOutcome::CatalogOnly,
        false => TypeChangeOutcome::Rewrite { may_fail },
    };
    match fact.coercion {
        Coercion::Binary => catalog_only(nm.is_empty(), true),
        Coercion::Typmod(rule) => catalog_only(
            typmod_keeps(rule, &om, &nm),
            rule != Typmod::FractionalSeconds,
        ),
        Coercion::UtcOnly { since } => {
            catalog_only(session_utc && version.clamped().0 >= since, false)
        }
        Coercion::Rewrite { may_fail } => TypeChangeOutcome::Rewrite { may_fail },
    }
}

/// Whether a modifier change from `old` to `new` keeps every value as it is (no rewrite).
fn typmod_keeps(rule: Typmod, old: &[u32], new: &[u32]) -> bool {
    match (rule, old.first(), new.first()) {
        (Typmod::Exact, ..) => old == new,
        (_, _, None) => true,
        (Typmod::FractionalSeconds, _, Some(6)) => true,
        (_, None, Some(_)) => false,
        (Typmod::Length | Typmod::FractionalSeconds, Some(o), Some(n)) => n >= o,
        (Typmod::Precision, Some(o), Some(n)) => {
            n >= o && old.get(1).copied().unwrap_or(0) == new.get(1).copied().unwrap_or(0)
        }
    }
}

/// Whether changing a column's type from `old_type` to `new_type` rewrites the table on the
/// default version with the session time zone unknown: `Some(false)` catalog-only (or no-op),
/// `Some(true)` rewrite, `None` unknown. See [`type_change_outcome`].
pub fn type_change_rewrites(old_type: &str, new_type: &str) -> Option<bool> {
    match type_change_outcome(old_type, new_type, PgVersion::DEFAULT, false) {
        TypeChangeOutcome::NoOp | TypeChangeOutcome::CatalogOnly => Some(false),
        TypeChangeOutcome::Rewrite { .. } => Some(true),
        TypeChangeOutcome::Unknown => None,
    }
}

/// Whether `USING expr` of `ALTER COLUMN column TYPE new_type` is just the column or its plain
/// cast to the new type (`c`, `c::T`, `(c)::T`, `CAST(c AS T)`): PostgreSQL treats it as no
/// `USING` at all (a relabel of the column, checked on the server: `uuid → uuid USING c::uuid`
/// and `varchar → text USING c::text` do not rewrite).
pub fn using_is_plain_cast(using: &str, column: &str, new_type: &str) -> bool {
    let norm = |s: &str| {
        s.trim()
            .to_lowercase()
            .replace('"', "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (e, col) = (norm(using), norm(column));
    let is_col = |s: &str| {
        let s = s.trim();
        s == col
            || s.strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .map(str::trim)
                == Some(col.as_str())
    };
    let same_type = |t: &str| canonical_type(t) == canonical_type(new_type);
    if is_col(&e) {
        return true;
    }
    if let Some(inner) = e
        .strip_prefix("cast")
        .map(str::trim_start)
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.strip_suffix(')'))
        && let Some((value, ty)) = inner.rsplit_once(" as ")
    {
        return is_col(value) && same_type(ty);
    }
    match e.split_once("::") {
        Some((value, ty)) => is_col(value) && !ty.contains("::") && same_type(ty),
        None => false,
    }
}

//! The *shape* of a catalog: everything structural, nothing volatile. Fingerprints hash it and
//! [`super::diff`] compares it, so two catalogs have the same fingerprint exactly when their
//! diff is empty.
//!
//! Excluded: the schema's own name (its qualifier is stripped from every definition), oids,
//! relfilenodes, sizes, row estimates, column positions (a column dropped and re-added is the
//! same shape) and sequence current values.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::{
    Catalog, ConstraintKind, FkAction, Identity, Persistence, QualifiedName, TableKind, quote_ident,
};

/// SHA-256 of a catalog's shape, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub String);

impl Fingerprint {
    /// The first 12 hex digits, for display.
    pub fn short(&self) -> &str {
        self.0.get(..12).unwrap_or(&self.0)
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Catalog {
    /// Stable SHA-256 of the catalog's shape (see the module doc of `catalog` for what counts).
    /// Identical tenants in differently named schemas share one fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        let shape = Shape::of(self);
        // serde_json over structs and BTreeMaps is deterministic.
        let bytes = serde_json::to_vec(&shape).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(b"deployclaw-catalog-shape-v1\n");
        h.update(&bytes);
        Fingerprint(hex::encode(h.finalize()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Shape {
    pub tables: BTreeMap<String, TableShape>,
    pub sequences: BTreeMap<String, SequenceShape>,
    pub enums: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TableShape {
    pub kind: TableKind,
    pub persistence: Persistence,
    pub partitioning: Option<String>,
    pub view_definition: Option<String>,
    pub columns: BTreeMap<String, ColumnShape>,
    pub constraints: BTreeMap<String, ConstraintShape>,
    pub indexes: BTreeMap<String, IndexShape>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ColumnShape {
    pub data_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    pub collation: Option<String>,
    pub identity: Option<Identity>,
    pub generated: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ConstraintShape {
    pub kind: ConstraintKind,
    pub definition: String,
    pub validated: bool,
    pub deferrable: bool,
    pub deferred: bool,
    pub references: Option<String>,
    pub on_delete: Option<FkAction>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct IndexShape {
    pub definition: String,
    pub unique: bool,
    pub primary: bool,
    pub valid: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SequenceShape {
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    pub owned_by: Option<String>,
}

impl SequenceShape {
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} start {} increment {} min {} max {} cache {}{}{}",
            self.data_type,
            self.start,
            self.increment,
            self.min,
            self.max,
            self.cache,
            if self.cycle { " cycle" } else { "" },
            self.owned_by
                .as_deref()
                .map(|o| format!(" owned by {o}"))
                .unwrap_or_default()
        )
    }
}

/// Strip the schema's own qualifier (`tenant_0001.` or `"Tenant 1".`) from a definition. Only
/// occurrences at an identifier boundary are stripped, so `xtenant_0001.` is left alone.
pub(crate) fn strip_schema(def: &str, schema: &str) -> String {
    let q = quote_ident(schema);
    let needle = format!("{q}.");
    let mut out = String::with_capacity(def.len());
    let mut rest = def;
    while let Some(pos) = rest.find(&needle) {
        let before = &rest[..pos];
        let boundary = before
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$' || c == '"'));
        out.push_str(before);
        if boundary {
            // dropped
        } else {
            out.push_str(&needle);
        }
        rest = &rest[pos + needle.len()..];
    }
    out.push_str(rest);
    out
}

/// A referenced table, relative to `own` schema: bare name when in the same schema.
pub(crate) fn relative(q: &QualifiedName, own: &str) -> String {
    if q.schema == own {
        quote_ident(&q.name)
    } else {
        q.to_string()
    }
}

impl Shape {
    pub(crate) fn of(c: &Catalog) -> Shape {
        let s = c.schema.as_str();
        let n = |v: &str| strip_schema(v, s);
        let tables = c
            .tables
            .iter()
            .map(|(name, t)| {
                let partitioning = match (&t.partition_key, &t.partition_of, &t.partition_bound) {
                    (Some(k), _, _) => Some(format!("PARTITION BY {}", n(k))),
                    (None, Some(p), b) => Some(format!(
                        "PARTITION OF {} {}",
                        relative(p, s),
                        b.as_deref().map(n).unwrap_or_default()
                    )),
                    _ => None,
                };
                let columns = t
                    .columns
                    .iter()
                    .map(|(cn, col)| {
                        (
                            cn.clone(),
                            ColumnShape {
                                data_type: n(&col.data_type),
                                not_null: col.not_null,
                                default: col.default.as_deref().map(n),
                                collation: col.collation.clone(),
                                identity: col.identity,
                                generated: col.generated.as_deref().map(n),
                                comment: col.comment.clone(),
                            },
                        )
                    })
                    .collect();
                let constraints = t
                    .constraints
                    .iter()
                    .map(|(cn, con)| {
                        (
                            cn.clone(),
                            ConstraintShape {
                                kind: con.kind,
                                // `NOT VALID` is compared through `validated`.
                                definition: {
                                    let d = n(&con.definition);
                                    d.strip_suffix(" NOT VALID")
                                        .map(str::to_string)
                                        .unwrap_or(d)
                                },
                                validated: con.validated,
                                deferrable: con.deferrable,
                                deferred: con.deferred,
                                references: con
                                    .foreign_key
                                    .as_ref()
                                    .map(|fk| relative(&fk.references, s)),
                                on_delete: con.foreign_key.as_ref().map(|fk| fk.on_delete),
                                comment: con.comment.clone(),
                            },
                        )
                    })
                    .collect();
                let indexes = t
                    .indexes
                    .iter()
                    .map(|(iname, ix)| {
                        (
                            iname.clone(),
                            IndexShape {
                                definition: n(&ix.definition),
                                unique: ix.unique,
                                primary: ix.primary,
                                valid: ix.valid,
                            },
                        )
                    })
                    .collect();
                (
                    name.clone(),
                    TableShape {
                        kind: t.kind,
                        persistence: t.persistence,
                        partitioning,
                        view_definition: t.view_definition.as_deref().map(n),
                        columns,
                        constraints,
                        indexes,
                        comment: t.comment.clone(),
                    },
                )
            })
            .collect();
        let sequences = c
            .sequences
            .iter()
            .map(|(name, q)| {
                (
                    name.clone(),
                    SequenceShape {
                        data_type: q.data_type.clone(),
                        start: q.start,
                        increment: q.increment,
                        min: q.min,
                        max: q.max,
                        cache: q.cache,
                        cycle: q.cycle,
                        owned_by: q
                            .owned_by
                            .as_ref()
                            .map(|(t, col)| format!("{}.{}", quote_ident(t), quote_ident(col))),
                    },
                )
            })
            .collect();
        let enums = c
            .enums
            .iter()
            .map(|(k, e)| (k.clone(), e.labels.clone()))
            .collect();
        Shape {
            tables,
            sequences,
            enums,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_own_schema_at_boundaries() {
        assert_eq!(
            strip_schema(
                "FOREIGN KEY (a) REFERENCES tenant_1.accounts(id)",
                "tenant_1"
            ),
            "FOREIGN KEY (a) REFERENCES accounts(id)"
        );
        assert_eq!(
            strip_schema("nextval('tenant_1.s'::regclass)", "tenant_1"),
            "nextval('s'::regclass)"
        );
        assert_eq!(
            strip_schema("xtenant_1.accounts", "tenant_1"),
            "xtenant_1.accounts"
        );
        assert_eq!(
            strip_schema("REFERENCES shared.plans(id)", "tenant_1"),
            "REFERENCES shared.plans(id)"
        );
        assert_eq!(
            strip_schema("ON \"Tenant A\".t USING btree (x)", "Tenant A"),
            "ON t USING btree (x)"
        );
    }
}

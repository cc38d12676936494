//! The *shape* of a catalog: everything structural, nothing volatile. Fingerprints hash it and
//! [`super::diff`] compares it, so two catalogs have the same fingerprint exactly when their
//! diff is empty.
//!
//! Two depths ([`DiffMode`]). `Shape` (fingerprints, drift) excludes the schema's own name (its
//! qualifier is stripped from every definition), oids, relfilenodes, sizes, row estimates,
//! column positions (a column dropped and re-added is the same shape), sequence current values,
//! and the objects only an exact round trip compares. `Exact` (the rollback proof) adds column
//! order, triggers, row security, storage parameters, comments on indexes, sequences and types,
//! domains, composite types, functions, extensions and schemas; identity sequences are compared
//! through their column there. The schema qualifier is stripped in both.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::difference::DiffMode;
use super::{
    Catalog, ConstraintType, FkAction, Identity, Persistence, TableKind, TableName, quote_ident,
};
use evidence::{ObjectKind, ObjectRef};

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
        let shape = Shape::of(self, DiffMode::Shape);
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
    /// Exact only: comments of enum types.
    #[serde(skip)]
    pub enum_comments: BTreeMap<String, Option<String>>,
    /// Exact only: functions, domains, composite types, extensions and schemas.
    #[serde(skip)]
    pub objects: BTreeMap<ObjectRef, ObjectShape>,
}

/// An object compared by definition and comment (exact mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectShape {
    pub definition: String,
    pub comment: Option<String>,
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
    /// Exact only: column names in `attnum` order.
    #[serde(skip)]
    pub column_order: Vec<String>,
    /// Exact only: trigger definitions (`(disabled)` appended when disabled).
    #[serde(skip)]
    pub triggers: BTreeMap<String, String>,
    /// Exact only.
    #[serde(skip)]
    pub row_security: bool,
    /// Exact only.
    #[serde(skip)]
    pub options: Option<String>,
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
    pub kind: ConstraintType,
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
    /// Exact only.
    #[serde(skip)]
    pub comment: Option<String>,
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
    /// Exact only.
    #[serde(skip)]
    pub comment: Option<String>,
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

impl Catalog {
    /// A copy whose definitions (types, defaults, generation expressions, constraints, indexes,
    /// views, partitioning, triggers, functions, domains and composite types) name the
    /// catalog's own objects without its schema qualifier, as PostgreSQL prints them under
    /// `search_path = <schema>`: SQL built from it runs in every tenant schema. References to
    /// other schemas stay qualified.
    pub fn unqualified(&self) -> Catalog {
        let s = self.schema.as_str();
        let n = |v: &mut String| *v = strip_schema(v, s);
        let no = |v: &mut Option<String>| {
            if let Some(x) = v {
                *x = strip_schema(x, s);
            }
        };
        let mut c = self.clone();
        for t in c.tables.values_mut() {
            no(&mut t.partition_key);
            no(&mut t.partition_bound);
            no(&mut t.view_definition);
            for col in t.columns.values_mut() {
                n(&mut col.data_type);
                no(&mut col.default);
                no(&mut col.generated);
                no(&mut col.collation);
            }
            t.constraints
                .values_mut()
                .for_each(|k| n(&mut k.definition));
            t.indexes.values_mut().for_each(|i| n(&mut i.definition));
            t.triggers.values_mut().for_each(|tr| n(&mut tr.definition));
        }
        c.domains.values_mut().for_each(|d| n(&mut d.definition));
        c.composites.values_mut().for_each(|d| n(&mut d.definition));
        c.functions = std::mem::take(&mut c.functions)
            .into_values()
            .map(|mut f| {
                f.definition = strip_function_header(&f.definition, s);
                n(&mut f.arguments);
                (f.signature(), f)
            })
            .collect();
        c
    }
}

/// [`strip_schema`] on the part of a `pg_get_functiondef` text PostgreSQL deparsed (name,
/// arguments, result, attributes, a SQL-standard body), never on a body given as a string
/// (`AS $function$ ... $function$`), which is the author's text and may name the schema on
/// purpose (a function with `SET search_path = ''`).
pub(crate) fn strip_function_header(def: &str, schema: &str) -> String {
    match def.find("\nAS $") {
        Some(p) => format!("{}{}", strip_schema(&def[..p], schema), &def[p..]),
        None => strip_schema(def, schema),
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
pub(crate) fn relative(q: &TableName, own: &str) -> String {
    if q.schema == own {
        quote_ident(&q.name)
    } else {
        q.to_string()
    }
}

impl Shape {
    pub(crate) fn of(c: &Catalog, mode: DiffMode) -> Shape {
        let exact = mode == DiffMode::Exact;
        let s = c.schema.as_str();
        let n = |v: &str| strip_schema(v, s);
        let tables = c
            .tables
            .iter()
            .map(|(name, t)| (name.clone(), TableShape::of(t, s, exact)))
            .collect();
        let sequences = c
            .sequences
            .iter()
            .filter(|(_, q)| !(exact && q.identity))
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
                        comment: q.comment.clone().filter(|_| exact),
                    },
                )
            })
            .collect();
        let enums = c
            .enums
            .iter()
            .map(|(k, e)| (k.clone(), e.labels.clone()))
            .collect();
        let mut shape = Shape {
            tables,
            sequences,
            enums,
            enum_comments: BTreeMap::new(),
            objects: BTreeMap::new(),
        };
        if !exact {
            return shape;
        }
        shape.enum_comments = c
            .enums
            .iter()
            .map(|(k, e)| (k.clone(), e.comment.clone()))
            .collect();
        let mut add = |kind, name: &str, definition: String, comment: &Option<String>| {
            shape.objects.insert(
                ObjectRef::new(kind, n(name)),
                ObjectShape {
                    definition,
                    comment: comment.clone(),
                },
            );
        };
        for (k, d) in &c.domains {
            add(ObjectKind::Domain, k, n(&d.definition), &d.comment);
        }
        for (k, t) in &c.composites {
            add(ObjectKind::Type, k, n(&t.definition), &t.comment);
        }
        for (k, f) in &c.functions {
            add(
                ObjectKind::Function,
                k,
                strip_function_header(&f.definition, s),
                &f.comment,
            );
        }
        for (e, sch) in &c.extensions {
            // Its schema, as named (the extension lives outside the tenant schemas).
            add(ObjectKind::Extension, e, sch.clone(), &None);
        }
        for sch in &c.schemas {
            // The catalog's own schema is the one compared; its name is not.
            let name = if sch == s { "(own schema)" } else { sch };
            add(ObjectKind::Schema, name, "exists".into(), &None);
        }
        shape
    }
}

impl TableShape {
    fn of(t: &super::Table, s: &str, exact: bool) -> TableShape {
        let n = |v: &str| strip_schema(v, s);
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
                        collation: col.collation.as_deref().map(n),
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
                        comment: ix.comment.clone().filter(|_| exact),
                    },
                )
            })
            .collect();
        let mut shape = TableShape {
            kind: t.kind,
            persistence: t.persistence,
            partitioning,
            view_definition: t.view_definition.as_deref().map(n),
            columns,
            constraints,
            indexes,
            comment: t.comment.clone(),
            column_order: Vec::new(),
            triggers: BTreeMap::new(),
            row_security: false,
            options: None,
        };
        if exact {
            shape.column_order = t
                .columns_in_order()
                .into_iter()
                .map(|c| c.name.clone())
                .collect();
            shape.triggers = t
                .triggers
                .iter()
                .map(|(k, tr)| {
                    let mut d = n(&tr.definition);
                    if !tr.enabled {
                        d.push_str(" (disabled)");
                    }
                    (k.clone(), d)
                })
                .collect();
            shape.row_security = t.row_security;
            shape.options = t.options.clone();
        }
        shape
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

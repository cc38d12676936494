//! The one catalog differ (two depths, [`DiffMode`]) and fleet drift.

use std::collections::BTreeMap;

use serde::Serialize;

pub use super::difference::DiffMode;
use super::shape::{ColumnShape, ObjectShape, Shape, TableShape};
use super::{Catalog, Fingerprint, Identity};
use evidence::shown_or_none as opt;
pub use evidence::{CatalogDifference, ObjectKind, ObjectRef};

/// [`diff_catalogs`] in [`DiffMode::Shape`]: empty exactly when the two catalogs have the same
/// [`Catalog::fingerprint`].
pub fn diff(a: &Catalog, b: &Catalog) -> Vec<CatalogDifference> {
    diff_catalogs(a, b, DiffMode::Shape)
}

/// Differences from `a` (expected, the reference) to `b` (actual), in a deterministic order
/// (tables by name; within a table: table properties, columns, constraints, indexes, triggers;
/// then sequences, enums and, in [`DiffMode::Exact`], the other objects by class and name).
/// The schema names themselves are not compared: each side's own qualifier is stripped from
/// its definitions.
pub fn diff_catalogs(a: &Catalog, b: &Catalog, mode: DiffMode) -> Vec<CatalogDifference> {
    let sa = Shape::of(a, mode);
    let sb = Shape::of(b, mode);
    let mut out = Vec::new();
    use CatalogDifference as D;

    let mut names: Vec<&String> = sa.tables.keys().chain(sb.tables.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        match (sa.tables.get(name), sb.tables.get(name)) {
            (Some(_), None) => out.push(D::MissingTable {
                table: name.clone(),
            }),
            (None, Some(_)) => out.push(D::ExtraTable {
                table: name.clone(),
            }),
            (Some(ta), Some(tb)) => diff_table(name, ta, tb, &mut out),
            (None, None) => {}
        }
    }

    for (name, qa) in &sa.sequences {
        match sb.sequences.get(name) {
            None => out.push(D::MissingSequence {
                sequence: name.clone(),
            }),
            Some(qb) if qa != qb => out.push(D::SequenceDiffers {
                sequence: name.clone(),
                expected: qa.describe(),
                actual: qb.describe(),
            }),
            Some(_) => {}
        }
    }
    for name in sb
        .sequences
        .keys()
        .filter(|k| !sa.sequences.contains_key(*k))
    {
        out.push(D::ExtraSequence {
            sequence: name.clone(),
        });
    }
    for (name, la) in &sa.enums {
        match sb.enums.get(name) {
            None => out.push(D::MissingEnum { name: name.clone() }),
            Some(lb) if la != lb => out.push(D::EnumLabelsDiffer {
                name: name.clone(),
                expected: la.clone(),
                actual: lb.clone(),
            }),
            Some(_) => {}
        }
    }
    for name in sb.enums.keys().filter(|k| !sa.enums.contains_key(*k)) {
        out.push(D::ExtraEnum { name: name.clone() });
    }
    diff_exact_extras(&sa, &sb, &mut out);
    out
}

/// Comments of sequences and enum types, and the objects only [`DiffMode::Exact`] reads (empty
/// in shape mode).
fn diff_exact_extras(sa: &Shape, sb: &Shape, out: &mut Vec<CatalogDifference>) {
    for (name, qa) in &sa.sequences {
        if let Some(qb) = sb.sequences.get(name) {
            let object = ObjectRef::new(ObjectKind::Sequence, name.clone());
            comment_differs(object, &qa.comment, &qb.comment, out);
        }
    }
    for (name, ca) in &sa.enum_comments {
        if let Some(cb) = sb.enum_comments.get(name) {
            comment_differs(ObjectRef::new(ObjectKind::Type, name.clone()), ca, cb, out);
        }
    }
    diff_objects(&sa.objects, &sb.objects, out);
}

/// Missing, extra and differing objects of one map, in key order.
fn diff_objects(
    a: &BTreeMap<ObjectRef, ObjectShape>,
    b: &BTreeMap<ObjectRef, ObjectShape>,
    out: &mut Vec<CatalogDifference>,
) {
    use CatalogDifference as D;
    for (object, oa) in a {
        match b.get(object) {
            None => out.push(D::MissingObject {
                object: object.clone(),
                definition: oa.definition.clone(),
            }),
            Some(ob) => {
                if oa.definition != ob.definition {
                    out.push(D::ObjectDiffers {
                        object: object.clone(),
                        aspect: "definition".into(),
                        expected: oa.definition.clone(),
                        actual: ob.definition.clone(),
                    });
                }
                comment_differs(object.clone(), &oa.comment, &ob.comment, out);
            }
        }
    }
    for (object, ob) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
        out.push(D::ExtraObject {
            object: object.clone(),
            definition: ob.definition.clone(),
        });
    }
}

fn comment_differs(
    object: ObjectRef,
    a: &Option<String>,
    b: &Option<String>,
    out: &mut Vec<CatalogDifference>,
) {
    if a != b {
        out.push(CatalogDifference::ObjectDiffers {
            object,
            aspect: "comment".into(),
            expected: opt(a),
            actual: opt(b),
        });
    }
}

/// Triggers as objects of their table.
fn trigger_objects(table: &str, t: &TableShape) -> BTreeMap<ObjectRef, ObjectShape> {
    t.triggers
        .iter()
        .map(|(name, def)| {
            (
                ObjectRef::on(ObjectKind::Trigger, name.clone(), table),
                ObjectShape {
                    definition: def.clone(),
                    comment: None,
                },
            )
        })
        .collect()
}

fn diff_indexes(table: &str, a: &TableShape, b: &TableShape, out: &mut Vec<CatalogDifference>) {
    use CatalogDifference as D;
    let t = || table.to_string();
    for (name, ia) in &a.indexes {
        match b.indexes.get(name) {
            None => out.push(D::MissingIndex {
                table: t(),
                index: name.clone(),
                definition: ia.definition.clone(),
            }),
            Some(ib) => {
                if ia.definition != ib.definition
                    || ia.unique != ib.unique
                    || ia.primary != ib.primary
                {
                    out.push(D::IndexDefinitionDiffers {
                        table: t(),
                        index: name.clone(),
                        expected: ia.definition.clone(),
                        actual: ib.definition.clone(),
                    });
                }
                if ia.valid != ib.valid {
                    out.push(D::IndexValidDiffers {
                        table: t(),
                        index: name.clone(),
                        expected: ia.valid,
                        actual: ib.valid,
                    });
                }
            }
        }
    }
    for (name, ib) in b
        .indexes
        .iter()
        .filter(|(k, _)| !a.indexes.contains_key(*k))
    {
        out.push(D::ExtraIndex {
            table: t(),
            index: name.clone(),
            definition: ib.definition.clone(),
        });
    }
}

/// Column order, row security, storage parameters, index comments and triggers of a table
/// (all empty or equal in shape mode).
fn diff_table_exact(table: &str, a: &TableShape, b: &TableShape, out: &mut Vec<CatalogDifference>) {
    use CatalogDifference as D;
    let common = |x: &TableShape, y: &TableShape| -> Vec<String> {
        x.column_order
            .iter()
            .filter(|c| y.columns.contains_key(*c))
            .cloned()
            .collect()
    };
    let (oa, ob) = (common(a, b), common(b, a));
    if oa != ob {
        out.push(D::ColumnOrderDiffers {
            table: table.to_string(),
            expected: oa,
            actual: ob,
        });
    }
    let props = [
        (
            "row level security",
            a.row_security.to_string(),
            b.row_security.to_string(),
        ),
        ("storage parameters", opt(&a.options), opt(&b.options)),
    ];
    for (aspect, x, y) in props {
        if x != y {
            out.push(D::TableDiffers {
                table: table.to_string(),
                aspect: aspect.to_string(),
                expected: x,
                actual: y,
            });
        }
    }
    for (name, ia) in &a.indexes {
        if let Some(ib) = b.indexes.get(name) {
            let object = ObjectRef::on(ObjectKind::Index, name.clone(), table);
            comment_differs(object, &ia.comment, &ib.comment, out);
        }
    }
    diff_objects(&trigger_objects(table, a), &trigger_objects(table, b), out);
}

fn diff_table(table: &str, a: &TableShape, b: &TableShape, out: &mut Vec<CatalogDifference>) {
    use CatalogDifference as D;
    let t = || table.to_string();
    let aspect = |out: &mut Vec<CatalogDifference>, aspect: &str, x: String, y: String| {
        if x != y {
            out.push(D::TableDiffers {
                table: t(),
                aspect: aspect.to_string(),
                expected: x,
                actual: y,
            });
        }
    };
    aspect(
        out,
        "kind",
        format!("{:?}", a.kind),
        format!("{:?}", b.kind),
    );
    aspect(
        out,
        "persistence",
        format!("{:?}", a.persistence),
        format!("{:?}", b.persistence),
    );
    aspect(
        out,
        "partitioning",
        opt(&a.partitioning),
        opt(&b.partitioning),
    );
    aspect(
        out,
        "view definition",
        opt(&a.view_definition),
        opt(&b.view_definition),
    );
    if a.comment != b.comment {
        out.push(D::CommentDiffers {
            table: t(),
            expected: a.comment.clone(),
            actual: b.comment.clone(),
        });
    }

    for (cn, ca) in &a.columns {
        match b.columns.get(cn) {
            None => out.push(D::MissingColumn {
                table: t(),
                column: cn.clone(),
                data_type: ca.data_type.clone(),
            }),
            Some(cb) => diff_column(table, cn, ca, cb, out),
        }
    }
    for (cn, cb) in b
        .columns
        .iter()
        .filter(|(k, _)| !a.columns.contains_key(*k))
    {
        out.push(D::ExtraColumn {
            table: t(),
            column: cn.clone(),
            data_type: cb.data_type.clone(),
        });
    }

    for (name, ka) in &a.constraints {
        match b.constraints.get(name) {
            None => out.push(D::MissingConstraint {
                table: t(),
                constraint: name.clone(),
                definition: ka.definition.clone(),
            }),
            Some(kb) => {
                // pg_get_constraintdef includes DEFERRABLE / INITIALLY DEFERRED and ON DELETE.
                if ka.definition != kb.definition
                    || ka.kind != kb.kind
                    || (ka.deferrable, ka.deferred) != (kb.deferrable, kb.deferred)
                    || ka.references != kb.references
                {
                    out.push(D::ConstraintDefinitionDiffers {
                        table: t(),
                        constraint: name.clone(),
                        expected: ka.definition.clone(),
                        actual: kb.definition.clone(),
                    });
                }
                if ka.validated != kb.validated {
                    out.push(D::ConstraintValidatedDiffers {
                        table: t(),
                        constraint: name.clone(),
                        expected: ka.validated,
                        actual: kb.validated,
                    });
                }
                if ka.comment != kb.comment {
                    out.push(D::ColumnDiffers {
                        table: t(),
                        column: format!("(constraint {name})"),
                        aspect: "comment".into(),
                        expected: opt(&ka.comment),
                        actual: opt(&kb.comment),
                    });
                }
            }
        }
    }
    for (name, kb) in b
        .constraints
        .iter()
        .filter(|(k, _)| !a.constraints.contains_key(*k))
    {
        out.push(D::ExtraConstraint {
            table: t(),
            constraint: name.clone(),
            definition: kb.definition.clone(),
        });
    }

    diff_indexes(table, a, b, out);
    diff_table_exact(table, a, b, out);
}

fn diff_column(
    table: &str,
    column: &str,
    a: &ColumnShape,
    b: &ColumnShape,
    out: &mut Vec<CatalogDifference>,
) {
    use CatalogDifference as D;
    if a.data_type != b.data_type {
        out.push(D::ColumnTypeDiffers {
            table: table.to_string(),
            column: column.to_string(),
            expected: a.data_type.clone(),
            actual: b.data_type.clone(),
        });
    }
    if a.not_null != b.not_null {
        out.push(D::NullabilityDiffers {
            table: table.to_string(),
            column: column.to_string(),
            expected_not_null: a.not_null,
            actual_not_null: b.not_null,
        });
    }
    if a.default != b.default {
        out.push(D::DefaultDiffers {
            table: table.to_string(),
            column: column.to_string(),
            expected: a.default.clone(),
            actual: b.default.clone(),
        });
    }
    let ident = |i: &Option<Identity>| match i {
        None => "none".to_string(),
        Some(Identity::Always) => "GENERATED ALWAYS AS IDENTITY".to_string(),
        Some(Identity::ByDefault) => "GENERATED BY DEFAULT AS IDENTITY".to_string(),
    };
    let props = [
        ("collation", opt(&a.collation), opt(&b.collation)),
        ("identity", ident(&a.identity), ident(&b.identity)),
        (
            "generation expression",
            opt(&a.generated),
            opt(&b.generated),
        ),
        ("comment", opt(&a.comment), opt(&b.comment)),
    ];
    for (aspect, x, y) in props {
        if x != y {
            out.push(D::ColumnDiffers {
                table: table.to_string(),
                column: column.to_string(),
                aspect: aspect.to_string(),
                expected: x,
                actual: y,
            });
        }
    }
}

/// Shards sharing one catalog shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShapeGroup {
    /// The shape's fingerprint.
    pub fingerprint: Fingerprint,
    /// Shard ids with this shape, sorted.
    pub shards: Vec<String>,
    /// Number of tables in the shape.
    pub tables: usize,
}

/// A shard whose shape differs from the reference shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftedShard {
    /// Shard id.
    pub shard: String,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// What differs from the reference (reference = expected, this shard = actual).
    pub differences: Vec<CatalogDifference>,
}

/// Shards grouped by fingerprint, the majority shape as reference, and the drifted shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftReport {
    /// Groups, largest first (ties: by first shard id).
    pub groups: Vec<ShapeGroup>,
    /// The reference (majority) fingerprint; `None` for an empty fleet.
    pub reference: Option<Fingerprint>,
    /// Shard id whose catalog served as the reference (the first of the majority group).
    pub reference_shard: Option<String>,
    /// Every shard not in the reference group, with its differences, sorted by shard id.
    pub drifted: Vec<DriftedShard>,
}

/// Group shards by catalog fingerprint; the largest group is the reference shape (ties broken
/// by the smallest first shard id, so the result is deterministic); every other shard is
/// drifted, with its [`diff`] against the reference group's first shard.
pub fn detect_drift<'a, I>(catalogs: I) -> DriftReport
where
    I: IntoIterator<Item = (&'a str, &'a Catalog)>,
{
    let mut by_fp: BTreeMap<Fingerprint, Vec<(&'a str, &'a Catalog)>> = BTreeMap::new();
    for (id, c) in catalogs {
        by_fp.entry(c.fingerprint()).or_default().push((id, c));
    }
    for v in by_fp.values_mut() {
        v.sort_by(|x, y| x.0.cmp(y.0));
    }
    let mut groups: Vec<(Fingerprint, Vec<(&'a str, &'a Catalog)>)> = by_fp.into_iter().collect();
    groups.sort_by(|(_, a), (_, b)| b.len().cmp(&a.len()).then_with(|| a[0].0.cmp(b[0].0)));
    let reference = groups.first().map(|(fp, members)| (fp.clone(), members[0]));
    let mut drifted = Vec::new();
    if let Some((ref_fp, (_, ref_cat))) = &reference {
        for (fp, members) in &groups {
            if fp == ref_fp {
                continue;
            }
            // All members share a shape, so one diff serves the group.
            let differences = diff(ref_cat, members[0].1);
            for (id, _) in members {
                drifted.push(DriftedShard {
                    shard: id.to_string(),
                    fingerprint: fp.clone(),
                    differences: differences.clone(),
                });
            }
        }
    }
    drifted.sort_by(|a, b| a.shard.cmp(&b.shard));
    DriftReport {
        groups: groups
            .iter()
            .map(|(fp, m)| ShapeGroup {
                fingerprint: fp.clone(),
                shards: m.iter().map(|(id, _)| id.to_string()).collect(),
                tables: m[0].1.tables.len(),
            })
            .collect(),
        reference: reference.as_ref().map(|(fp, _)| fp.clone()),
        reference_shard: reference.as_ref().map(|(_, (id, _))| id.to_string()),
        drifted,
    }
}

//! Views and materialized views: create (or replace), drop, refresh.

use super::dependents::{Target, view_sql};
use super::{Inversion, Outcome, misrouted, qn, sibling, tx};
use crate::catalog::ViewSnap;
use crate::generator::Gen;
use crate::names::quote_ident;
use migration_parser::state::Namespace;
use migration_parser::{Operation, QualifiedName, Statement};
use std::collections::BTreeMap;

/// The view family.
pub(crate) struct Views;

impl Inversion for Views {
    fn family(&self) -> &'static str {
        "view"
    }

    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::CreateView {
                name,
                materialized,
                or_replace,
                ..
            } => {
                let old = g.key(name).and_then(|k| g.state.views.get(&k).cloned());
                if let Some(k) = g.key(name) {
                    g.state.views.insert(
                        k,
                        ViewSnap {
                            materialized: *materialized,
                            definition: String::new(),
                            indexes: BTreeMap::new(),
                            comment: None,
                        },
                    );
                }
                let kw = if *materialized {
                    "MATERIALIZED VIEW"
                } else {
                    "VIEW"
                };
                match old {
                    Some(v) if *or_replace && v.definition.is_empty() => {
                        // Replaces a view created earlier in this migration: its own CREATE
                        // brings the earlier query back.
                        match g.creating_sql(Namespace::Relation, name) {
                            Some(sql) => Outcome::Inverse(vec![
                                tx(format!("DROP {kw} {}", qn(name))),
                                tx(sql),
                            ]),
                            None => Outcome::Irreversible(format!(
                                "the previous definition of view {name} is unknown"
                            )),
                        }
                    }
                    Some(v) if *or_replace => replace_view(g, name, kw, v),
                    _ => Outcome::Inverse(vec![tx(format!("DROP {kw} {}", qn(name)))]),
                }
            }
            Operation::DropView {
                name,
                if_exists,
                cascade,
                ..
            } => {
                let lost = if *cascade {
                    g.key(name)
                        .map(|k| g.cascade_views(Target::Relation(&k)))
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                let out = drop_view(g, name, *if_exists);
                match out {
                    Outcome::Inverse(v) if !lost.is_empty() => Outcome::Partial(
                        v,
                        format!(
                            "DROP VIEW {name} CASCADE also dropped views created earlier in this migration ({}); \
                             they are not restored",
                            lost.join(", ")
                        ),
                    ),
                    other => other,
                }
            }
            Operation::RefreshMaterializedView { .. } => {
                Outcome::NoOp("REFRESH changes no structure".into())
            }
            Operation::RenameView {
                name,
                new_name,
                materialized,
            } => {
                if let Some(k) = g.key(name) {
                    let Some(v) = g.state.views.remove(&k) else {
                        return Outcome::NoOp(format!(
                            "view {name} did not exist (ALTER VIEW IF EXISTS is a no-op)"
                        ));
                    };
                    g.state.views.insert(new_name.clone(), v);
                }
                Outcome::Inverse(vec![tx(format!(
                    "ALTER {} {} RENAME TO {}",
                    if *materialized {
                        "MATERIALIZED VIEW"
                    } else {
                        "VIEW"
                    },
                    sibling(name, new_name),
                    quote_ident(&name.name)
                ))])
            }
            _ => misrouted(stmt),
        }
    }
}

/// `CREATE OR REPLACE VIEW` over a view that had definition `old`: drop the new one (with the
/// views that read it, which come back with it), and recreate the old one — at the end of the
/// rollback when it is the shard's view, where the names it reads are the shard's again.
fn replace_view(g: &mut Gen<'_>, name: &QualifiedName, kw: &str, old: ViewSnap) -> Outcome {
    let key = g.key(name).unwrap_or_else(|| name.name.clone());
    let readers = g.views_depending_on(Target::Relation(&key));
    let mut lost = Vec::new();
    for r in &readers {
        if let Some(v) = g.state.views.get(r).cloned()
            && !g.defer_view(r, &v)
        {
            lost.push(r.clone());
        }
    }
    let cascade = if readers.is_empty() { "" } else { " CASCADE" };
    let mut out = vec![tx(format!("DROP {kw} {}{cascade}", qn(name)))];
    if !g.defer_view(&key, &old) {
        out.extend(view_sql(name, &old));
    }
    if lost.is_empty() {
        Outcome::Inverse(out)
    } else {
        Outcome::Partial(
            out,
            format!(
                "restoring view {name} drops the views that read it; those created by this migration ({}) \
                 are not recreated",
                lost.join(", ")
            ),
        )
    }
}

/// `DROP VIEW`: the view from the catalog (query, indexes, comment), or, for a view created
/// earlier in this migration, its own `CREATE`.
fn drop_view(g: &mut Gen<'_>, name: &QualifiedName, if_exists: bool) -> Outcome {
    let Some(v) = g.key(name).and_then(|k| g.state.views.remove(&k)) else {
        if let Some(sql) = g.creating_sql(Namespace::Relation, name) {
            // Created earlier in this migration in another schema's name.
            return Outcome::Inverse(vec![tx(sql)]);
        }
        return if if_exists {
            Outcome::NoOp(format!("view {name} did not exist (IF EXISTS)"))
        } else {
            Outcome::Irreversible(format!("view {name} is not in the pre-migration catalog"))
        };
    };
    if v.definition.is_empty() {
        // Created earlier in this migration: its own CREATE recreates it.
        let Some(sql) = g.creating_sql(Namespace::Relation, name) else {
            return Outcome::Irreversible(format!("the definition of view {name} is unknown"));
        };
        let mut out = vec![tx(sql)];
        out.extend(v.indexes.values().map(|i| tx(i.definition.clone())));
        return Outcome::Inverse(out);
    }
    if g.key(name).is_some_and(|k| g.defer_view(&k, &v)) {
        // A view of the shard: recreated at the end of the rollback.
        return Outcome::Inverse(Vec::new());
    }
    Outcome::Inverse(view_sql(name, &v))
}

//! Views and materialized views: create (or replace), drop, refresh.

use super::{Inversion, Outcome, misrouted, qn, sibling, tx};
use crate::RollbackStatement;
use crate::catalog::ViewSnap;
use crate::generator::Gen;
use crate::names::{quote_ident, quote_literal};
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
                    Some(v) if *or_replace => {
                        let mut out = vec![
                            tx(format!("DROP {kw} {}", qn(name))),
                            tx(format!(
                                "CREATE {kw} {} AS {}",
                                qn(name),
                                v.definition.trim_end_matches(';').trim()
                            )),
                        ];
                        if let Some(c) = v.comment {
                            out.push(tx(format!(
                                "COMMENT ON {kw} {} IS {}",
                                qn(name),
                                quote_literal(&c)
                            )));
                        }
                        Outcome::Inverse(out)
                    }
                    _ => Outcome::Inverse(vec![tx(format!("DROP {kw} {}", qn(name)))]),
                }
            }
            Operation::DropView {
                name,
                if_exists,
                cascade,
                ..
            } => {
                // What depends on a view of the shard is not in the catalog; what depends on a
                // view created here was created here too.
                let of_shard = g
                    .key(name)
                    .and_then(|k| g.state.views.get(&k))
                    .is_some_and(|v| !v.definition.is_empty());
                match drop_view(g, name, *if_exists) {
                    Outcome::Inverse(v) if *cascade && of_shard => Outcome::Partial(
                        v,
                        format!(
                            "DROP VIEW {name} CASCADE also dropped what depended on it (views, rules); \
                             that is not restored"
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

fn view_sql(name: &QualifiedName, v: &ViewSnap) -> Vec<RollbackStatement> {
    let kw = if v.materialized {
        "MATERIALIZED VIEW"
    } else {
        "VIEW"
    };
    let mut out = vec![tx(format!(
        "CREATE {kw} {} AS {}",
        qn(name),
        v.definition.trim().trim_end_matches(';')
    ))];
    for i in v.indexes.values() {
        out.push(tx(i.definition.clone()));
    }
    if let Some(c) = &v.comment {
        out.push(tx(format!(
            "COMMENT ON {kw} {} IS {}",
            qn(name),
            quote_literal(c)
        )));
    }
    out
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
    Outcome::Inverse(view_sql(name, &v))
}

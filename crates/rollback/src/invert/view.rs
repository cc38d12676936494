//! Views and materialized views: create (or replace), drop, refresh.

use super::{Inversion, Outcome, misrouted, qn, tx};
use crate::RollbackStatement;
use crate::generate::Gen;
use crate::names::quote_literal;
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
            } => {
                let old = g.key(name).and_then(|k| g.state.views.get(&k).cloned());
                if let Some(k) = g.key(name) {
                    g.state.views.insert(
                        k,
                        crate::catalog::ViewSnap {
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
                name, if_exists, ..
            } => {
                let Some(v) = g.key(name).and_then(|k| g.state.views.remove(&k)) else {
                    return if *if_exists {
                        Outcome::NoOp(format!("view {name} did not exist (IF EXISTS)"))
                    } else {
                        Outcome::Irreversible(format!(
                            "view {name} is not in the pre-migration catalog"
                        ))
                    };
                };
                Outcome::Inverse(view_sql(name, &v))
            }
            Operation::RefreshMaterializedView { .. } => {
                Outcome::NoOp("REFRESH changes no structure".into())
            }
            _ => misrouted(stmt),
        }
    }
}

fn view_sql(name: &QualifiedName, v: &crate::catalog::ViewSnap) -> Vec<RollbackStatement> {
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

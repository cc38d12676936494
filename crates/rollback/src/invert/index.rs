//! Indexes: create (PostgreSQL's default names), drop (`pg_get_indexdef`, `CONCURRENTLY`),
//! rename, `REINDEX`.

use super::sql::{concurrent_index, plain_index};
use super::{Inversion, Outcome, misrouted, no_tx, qn, sibling, tx};
use crate::catalog::IndexSnap;
use crate::generator::Gen;
use crate::names::{choose_name, index_column_name, name_addition, quote_ident, quote_literal};
use migration_parser::{Operation, QualifiedName, Statement};

/// The index family.
pub(crate) struct Indexes;

impl Inversion for Indexes {
    fn family(&self) -> &'static str {
        "index"
    }

    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::CreateIndex {
                name,
                table,
                columns,
                concurrently: _,
                if_not_exists,
                only,
                ..
            } => {
                let tname = table.name.clone();
                let colnames: Vec<String> = {
                    let mut seen: Vec<String> = Vec::new();
                    for c in columns {
                        let mut n = index_column_name(c);
                        let base = n.clone();
                        let mut k = 1;
                        while seen.contains(&n) {
                            n = format!("{base}{k}");
                            k += 1;
                        }
                        seen.push(n);
                    }
                    seen
                };
                let iname = match name {
                    Some(n) => crate::names::truncate_identifier(n).to_string(),
                    None => choose_name(&tname, Some(&name_addition(&colnames)), "idx", |n| {
                        g.relation_taken(n)
                    }),
                };
                let exists = g.find_index(&iname).is_some();
                if *if_not_exists && exists {
                    return Outcome::NoOp(format!("index {iname} already existed (IF NOT EXISTS)"));
                }
                let partitioned = g.table(table).is_some_and(|t| t.kind == "p");
                let deps: Vec<String> = columns.iter().map(|c| index_column_name(c)).collect();
                let def = plain_index(&stmt.sql);
                if let Some(t) = g.table_mut(table) {
                    t.indexes.insert(
                        iname.clone(),
                        IndexSnap {
                            definition: def,
                            constraint: false,
                            valid: true,
                            columns: deps,
                            comment: None,
                            origin: None,
                        },
                    );
                } else if let Some(v) = g.key(table).and_then(|k| g.state.views.get_mut(&k)) {
                    v.indexes.insert(
                        iname.clone(),
                        IndexSnap {
                            definition: def,
                            constraint: false,
                            valid: true,
                            columns: deps,
                            comment: None,
                            origin: None,
                        },
                    );
                }
                let target = sibling(table, &iname);
                if g.opts.concurrently && !partitioned && !*only {
                    Outcome::Inverse(vec![no_tx(format!("DROP INDEX CONCURRENTLY {target}"))])
                } else {
                    Outcome::Inverse(vec![tx(format!("DROP INDEX {target}"))])
                }
            }
            Operation::DropIndex {
                name, if_exists, ..
            } => g.drop_index(name, *if_exists),
            Operation::RenameIndex { name, new_name } => {
                if g.key(name).is_some()
                    && g.find_index(&name.name).is_none()
                    && !g
                        .state
                        .views
                        .values()
                        .any(|v| v.indexes.contains_key(&name.name))
                {
                    return Outcome::NoOp(format!(
                        "index {name} did not exist (ALTER INDEX IF EXISTS is a no-op)"
                    ));
                }
                if let Some((tk, _)) = g.find_index(&name.name)
                    && let Some(t) = g.state.tables.get_mut(&tk)
                {
                    if let Some(i) = t.indexes.remove(&name.name) {
                        t.indexes.insert(new_name.clone(), i);
                    }
                    if let Some(c) = t.constraints.remove(&name.name) {
                        t.constraints.insert(new_name.clone(), c);
                    }
                    for c in t.constraints.values_mut() {
                        if c.index.as_deref() == Some(name.name.as_str()) {
                            c.index = Some(new_name.clone());
                        }
                    }
                }
                Outcome::Inverse(vec![tx(format!(
                    "ALTER INDEX {} RENAME TO {}",
                    sibling(name, new_name),
                    quote_ident(&name.name)
                ))])
            }
            Operation::Reindex { .. } => Outcome::NoOp("REINDEX changes no structure".into()),
            Operation::AttachIndexPartition { index, partition } => Outcome::Irreversible(format!(
                "ALTER INDEX {index} ATTACH PARTITION {partition}: PostgreSQL cannot detach an index partition; \
                 dropping {partition} undoes it only with its partition"
            )),
            _ => misrouted(stmt),
        }
    }
}

impl Gen<'_> {
    pub(crate) fn find_index(&self, name: &str) -> Option<(String, IndexSnap)> {
        let name = crate::names::truncate_identifier(name);
        for (tk, t) in &self.state.tables {
            if let Some(i) = t.indexes.get(name) {
                return Some((tk.clone(), i.clone()));
            }
        }
        None
    }

    pub(crate) fn drop_index(&mut self, name: &QualifiedName, if_exists: bool) -> Outcome {
        // The server cut a longer name to 63 bytes when it created the index.
        let name = &name.sibling(crate::names::truncate_identifier(&name.name));
        let found = if self.key(name).is_some() {
            self.find_index(&name.name)
        } else {
            None
        };
        let Some((tk, ix)) = found else {
            // Materialized view indexes.
            let mv = self.key(name).and_then(|_| {
                self.state
                    .views
                    .iter()
                    .find_map(|(vn, v)| v.indexes.get(&name.name).map(|i| (vn.clone(), i.clone())))
            });
            if let Some((vn, i)) = mv {
                if let Some(v) = self.state.views.get_mut(&vn) {
                    v.indexes.remove(&name.name);
                }
                return Outcome::Inverse(vec![tx(i.definition)]);
            }
            return if if_exists {
                Outcome::NoOp(format!("index {name} did not exist (IF EXISTS)"))
            } else {
                Outcome::Irreversible(format!("index {name} is not in the pre-migration catalog"))
            };
        };
        if ix.constraint {
            return Outcome::Irreversible(format!(
                "index {name} backs a constraint; DROP INDEX fails on it (drop the constraint instead)"
            ));
        }
        let t = self.state.tables.get(&tk).cloned().unwrap_or_default();
        if let Some(tm) = self.state.tables.get_mut(&tk) {
            tm.indexes.remove(&name.name);
        }
        if ix.definition.is_empty() {
            return Outcome::Irreversible(format!("the definition of index {name} is unknown"));
        }
        let mut v = Vec::new();
        if self.opts.concurrently && t.kind != "p" && t.origin.is_some() {
            v.push(no_tx(concurrent_index(&ix.definition)));
        } else {
            v.push(tx(ix.definition.clone()));
        }
        if let Some(c) = &ix.comment {
            v.push(tx(format!(
                "COMMENT ON INDEX {} IS {}",
                qn(name),
                quote_literal(c)
            )));
        }
        Outcome::Inverse(v)
    }
}

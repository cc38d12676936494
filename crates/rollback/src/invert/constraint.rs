//! Constraints: add (PostgreSQL's default names), validate, drop (re-added `NOT VALID` +
//! `VALIDATE` at the end), rename.

use super::sql::{concurrent_index, constraint_sql, expr_idents, kind_code, kind_columns};
use super::{Inversion, Outcome, misrouted, no_tx, qn, sibling, tx};
use crate::RollbackStatement;
use crate::catalog::{ConstraintSnap, IndexSnap};
use crate::generator::Gen;
use crate::names::{quote_ident, quote_literal};
use migration_parser::{ConstraintDef, ConstraintKind, Operation, QualifiedName, Statement};

/// The constraint family.
pub(crate) struct Constraints;

impl Inversion for Constraints {
    fn family(&self) -> &'static str {
        "constraint"
    }

    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::AddConstraint { table, constraint } => g.add_constraint(table, constraint),
            Operation::ValidateConstraint { table, name } => {
                let Some(t) = g.table_mut(table) else {
                    return Outcome::NoOp(
                        "validating changes no structure of an object created here".into(),
                    );
                };
                let Some(c) = t.constraints.get_mut(name) else {
                    return Outcome::Irreversible(format!(
                        "constraint {name} is not in the pre-migration catalog"
                    ));
                };
                let was = c.validated;
                c.validated = true;
                if was {
                    Outcome::NoOp(format!("constraint {name} was already validated"))
                } else if c.origin.is_none() {
                    Outcome::NoOp(format!(
                        "constraint {name} is created by this migration; undoing its ADD drops it"
                    ))
                } else {
                    let def = c.definition.clone();
                    Outcome::Inverse(vec![
                        tx(format!(
                            "ALTER TABLE {} DROP CONSTRAINT {}",
                            qn(table),
                            quote_ident(name)
                        )),
                        tx(format!(
                            "ALTER TABLE {} ADD CONSTRAINT {} {}",
                            qn(table),
                            quote_ident(name),
                            def
                        )),
                    ])
                }
            }
            Operation::DropConstraint {
                table,
                name,
                if_exists,
                cascade,
            } => g.drop_constraint(table, name, *if_exists, *cascade),
            Operation::RenameConstraint {
                table,
                name,
                new_name,
            } => {
                if let Some(t) = g.table_mut(table)
                    && let Some(mut c) = t.constraints.remove(name)
                {
                    if let Some(ix) = c
                        .index
                        .clone()
                        .filter(|_| matches!(c.kind.as_str(), "p" | "u" | "x"))
                        && ix == *name
                    {
                        if let Some(i) = t.indexes.remove(&ix) {
                            t.indexes.insert(new_name.clone(), i);
                        }
                        c.index = Some(new_name.clone());
                    }
                    t.constraints.insert(new_name.clone(), c);
                }
                Outcome::Inverse(vec![tx(format!(
                    "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
                    qn(table),
                    quote_ident(new_name),
                    quote_ident(name)
                ))])
            }
            _ => misrouted(stmt),
        }
    }
}

impl Gen<'_> {
    /// Add a constraint created by the migration to the working catalog; returns its name.
    pub(crate) fn register_constraint(
        &mut self,
        table: &QualifiedName,
        c: &ConstraintDef,
    ) -> String {
        let all_cols: Vec<String> = self
            .table(table)
            .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        let cols = kind_columns(&c.kind, |e| expr_idents(e, &all_cols));
        let name = match &c.name {
            Some(n) => n.clone(),
            None => match &c.kind {
                ConstraintKind::PrimaryKey {
                    using_index: Some(i),
                    ..
                }
                | ConstraintKind::Unique {
                    using_index: Some(i),
                    ..
                } => i.clone(),
                k => self.default_constraint_name(&table.name, k, &cols),
            },
        };
        let using = match &c.kind {
            ConstraintKind::PrimaryKey { using_index, .. }
            | ConstraintKind::Unique { using_index, .. } => using_index.clone(),
            _ => None,
        };
        let code = kind_code(&c.kind);
        let ref_table = match &c.kind {
            ConstraintKind::ForeignKey { ref_table, .. } => Some(qn(ref_table)),
            _ => None,
        };
        let mut def = constraint_sql(&c.kind);
        if c.not_valid {
            def.push_str(" NOT VALID");
        }
        // A foreign key depends on the referenced key's index (`conindid`): dropping that key
        // with CASCADE drops the foreign key too.
        let referenced_index = match &c.kind {
            ConstraintKind::ForeignKey {
                ref_table,
                ref_columns,
                ..
            } => self.referenced_index(ref_table, ref_columns),
            _ => None,
        };
        let Some(t) = self.table_mut(table) else {
            return name;
        };
        let index = if code == "f" {
            referenced_index
        } else if matches!(code, "p" | "u" | "x") {
            if let Some(u) = &using {
                if let Some(mut ix) = t.indexes.remove(u) {
                    ix.constraint = true;
                    t.indexes.insert(name.clone(), ix);
                }
            } else {
                t.indexes.insert(
                    name.clone(),
                    IndexSnap {
                        definition: String::new(),
                        constraint: true,
                        valid: true,
                        columns: cols.clone(),
                        comment: None,
                        origin: None,
                    },
                );
            }
            Some(name.clone())
        } else {
            None
        };
        t.constraints.insert(
            name.clone(),
            ConstraintSnap {
                kind: code.into(),
                definition: def,
                validated: !c.not_valid,
                columns: cols,
                ref_table,
                index,
                comment: None,
                inherited: false,
                origin: None,
            },
        );
        name
    }

    /// Re-add a foreign key or check: `NOT VALID` now, `VALIDATE` at the end of the script in its
    /// own transaction (when the constraint existed before the migration and was validated).
    pub(crate) fn readd_fk_or_check(
        &mut self,
        q: &str,
        table_key: &str,
        name: &str,
        c: &ConstraintSnap,
    ) -> Vec<RollbackStatement> {
        let def = c.definition.trim();
        if def.ends_with("NOT VALID") || !matches!(c.kind.as_str(), "f" | "c") {
            return vec![tx(format!(
                "ALTER TABLE {q} ADD CONSTRAINT {} {def}",
                quote_ident(name)
            ))];
        }
        let origin_table = self
            .state
            .tables
            .get(table_key)
            .and_then(|t| t.origin.clone())
            .or_else(|| Some(table_key.to_string()));
        match (c.origin.as_deref(), origin_table, c.validated) {
            (Some(orig), Some(ot), true) if !orig.is_empty() => {
                let prefix = q
                    .rsplit_once('.')
                    .map(|(s, _)| format!("{s}."))
                    .unwrap_or_default();
                self.validations.push(tx(format!(
                    "ALTER TABLE {prefix}{} VALIDATE CONSTRAINT {}",
                    quote_ident(&ot),
                    quote_ident(orig)
                )));
                vec![tx(format!(
                    "ALTER TABLE {q} ADD CONSTRAINT {} {def} NOT VALID",
                    quote_ident(name)
                ))]
            }
            _ => vec![tx(format!(
                "ALTER TABLE {q} ADD CONSTRAINT {} {def}",
                quote_ident(name)
            ))],
        }
    }

    pub(crate) fn add_constraint(&mut self, table: &QualifiedName, c: &ConstraintDef) -> Outcome {
        let using = match &c.kind {
            ConstraintKind::PrimaryKey { using_index, .. }
            | ConstraintKind::Unique { using_index, .. } => using_index.clone(),
            _ => None,
        };
        let old_index = using
            .as_ref()
            .and_then(|u| self.table(table).and_then(|t| t.indexes.get(u).cloned()));
        let partitioned = self.table(table).is_some_and(|t| t.kind == "p");
        let table_is_old = self.table(table).is_some_and(|t| t.origin.is_some());
        // A primary key makes its columns NOT NULL, and dropping it does not undo that.
        let nullable_pk_cols: Vec<String> = match &c.kind {
            ConstraintKind::PrimaryKey {
                columns,
                using_index,
            } => {
                let cols: Vec<String> = match using_index {
                    Some(u) => self
                        .table(table)
                        .and_then(|t| t.indexes.get(u))
                        .map(|i| i.columns.clone())
                        .unwrap_or_default(),
                    None => columns.clone(),
                };
                cols.into_iter()
                    .filter(|col| {
                        self.table(table)
                            .and_then(|t| t.column(col))
                            .is_some_and(|c| !c.not_null)
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        let name = self.register_constraint(table, c);
        let mut v = vec![tx(format!(
            "ALTER TABLE {} DROP CONSTRAINT {}",
            qn(table),
            quote_ident(&name)
        ))];
        for col in &nullable_pk_cols {
            v.push(tx(format!(
                "ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL",
                qn(table),
                quote_ident(col)
            )));
            if let Some(cm) = self.table_mut(table).and_then(|t| t.column_mut(col)) {
                cm.not_null = true;
            }
        }
        if let (Some(u), Some(ix)) = (&using, old_index) {
            // The constraint took the index over (and renamed it); dropping it dropped the index.
            if !ix.definition.is_empty() {
                let def = ix.definition.clone();
                if self.opts.concurrently && !partitioned && table_is_old {
                    v.push(no_tx(concurrent_index(&def)));
                } else {
                    v.push(tx(def));
                }
                if let Some(cm) = &ix.comment {
                    v.push(tx(format!(
                        "COMMENT ON INDEX {} IS {}",
                        sibling(table, u),
                        quote_literal(cm)
                    )));
                }
            }
        }
        Outcome::Inverse(v)
    }

    pub(crate) fn drop_constraint(
        &mut self,
        table: &QualifiedName,
        name: &str,
        if_exists: bool,
        cascade: bool,
    ) -> Outcome {
        let Some(t) = self.table(table).cloned() else {
            return Outcome::Irreversible(format!(
                "table {table} is not in the pre-migration catalog; cannot re-add {name}"
            ));
        };
        let Some(c) = t.constraints.get(name).cloned() else {
            return if if_exists {
                Outcome::NoOp(format!("constraint {name} did not exist (IF EXISTS)"))
            } else {
                Outcome::Irreversible(format!(
                    "constraint {name} on {table} is not in the pre-migration catalog"
                ))
            };
        };
        let q = qn(table);
        let k = table.name.clone();
        let mut v = Vec::new();
        let deferrable = c.definition.contains("DEFERRABLE");
        match c.kind.as_str() {
            "p" | "u" => {
                let ix = c
                    .index
                    .as_ref()
                    .and_then(|i| t.indexes.get(i).map(|x| (i.clone(), x.clone())));
                match ix {
                    Some((iname, i))
                        if self.opts.concurrently
                            && t.kind != "p"
                            && !deferrable
                            && !i.definition.is_empty()
                            && t.origin.is_some() =>
                    {
                        v.push(no_tx(concurrent_index(&i.definition)));
                        v.push(tx(format!(
                            "ALTER TABLE {q} ADD CONSTRAINT {} {} USING INDEX {}",
                            quote_ident(name),
                            if c.kind == "p" {
                                "PRIMARY KEY"
                            } else {
                                "UNIQUE"
                            },
                            quote_ident(&iname)
                        )));
                    }
                    _ => v.push(tx(format!(
                        "ALTER TABLE {q} ADD CONSTRAINT {} {}",
                        quote_ident(name),
                        c.definition
                    ))),
                }
            }
            "f" | "c" => v.extend(self.readd_fk_or_check(&q, &k, name, &c)),
            _ => v.push(tx(format!(
                "ALTER TABLE {q} ADD CONSTRAINT {} {}",
                quote_ident(name),
                c.definition
            ))),
        }
        if let Some(cm) = &c.comment {
            v.push(tx(format!(
                "COMMENT ON CONSTRAINT {} ON {q} IS {}",
                quote_ident(name),
                quote_literal(cm)
            )));
        }
        // A foreign key or check of the shard, on a table and under a name the migration did
        // not change, is re-added at the end of the rollback: its definition names the
        // referenced table and the columns as they were before the migration, which earlier
        // parts of the rollback (renames back) restore.
        if matches!(c.kind.as_str(), "f" | "c")
            && self
                .key(table)
                .is_some_and(|key| t.origin.as_deref() == Some(key.as_str()))
            && c.origin.as_deref() == Some(name)
        {
            self.defer_statements(std::mem::take(&mut v));
        }
        if let Some(ix) = c
            .index
            .as_ref()
            .filter(|_| matches!(c.kind.as_str(), "p" | "u" | "x"))
            && let Some(cm) = t.indexes.get(ix).and_then(|i| i.comment.clone())
        {
            v.push(tx(format!(
                "COMMENT ON INDEX {} IS {}",
                sibling(table, ix),
                quote_literal(&cm)
            )));
        }
        // Foreign keys that depended on a dropped unique/primary key went with it (CASCADE).
        if cascade && matches!(c.kind.as_str(), "p" | "u") {
            v.extend(self.readd_referencing_fks(table, |_, f| f.index == c.index));
        }
        if let Some(tm) = self.table_mut(table) {
            tm.constraints.remove(name);
            if let Some(ix) = c
                .index
                .as_ref()
                .filter(|_| matches!(c.kind.as_str(), "p" | "u" | "x"))
            {
                tm.indexes.remove(ix);
            }
        }
        Outcome::Inverse(v)
    }

    /// Re-add the foreign keys of other tables that reference `table` and pass `keep` (table
    /// key, constraint): a `CASCADE` dropped them with what they relied on. They leave the
    /// working catalog.
    pub(crate) fn readd_referencing_fks(
        &mut self,
        table: &QualifiedName,
        keep: impl Fn(&str, &ConstraintSnap) -> bool,
    ) -> Vec<RollbackStatement> {
        let qk = quote_ident(&table.name);
        let deps: Vec<(String, String, ConstraintSnap)> = self
            .state
            .tables
            .iter()
            .flat_map(|(tn, ot)| {
                ot.constraints
                    .iter()
                    .filter(|(_, f)| {
                        f.kind == "f" && f.ref_table.as_deref() == Some(qk.as_str()) && keep(tn, f)
                    })
                    .map(|(fc, f)| (tn.clone(), fc.clone(), f.clone()))
            })
            .collect();
        let mut v = Vec::new();
        for (tn, fc, f) in deps {
            let oq = sibling(table, &tn);
            v.extend(self.readd_fk_or_check(&oq, &tn, &fc, &f));
            if let Some(x) = self.state.tables.get_mut(&tn) {
                x.constraints.remove(&fc);
            }
        }
        v
    }

    /// The index of the primary key (no columns given) or unique key over `columns` of
    /// `ref_table` in the working catalog: what a new foreign key to it depends on.
    fn referenced_index(&self, ref_table: &QualifiedName, columns: &[String]) -> Option<String> {
        let t = self.table(ref_table)?;
        t.constraints.values().find_map(|k| {
            let fits = match k.kind.as_str() {
                "p" => columns.is_empty() || k.columns == columns,
                "u" => !columns.is_empty() && k.columns == columns,
                _ => false,
            };
            if fits { k.index.clone() } else { None }
        })
    }
}

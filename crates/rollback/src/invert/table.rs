//! Tables: create, drop (the structure from the catalog), rename, partitions, persistence,
//! row security, `LOCK`.

use super::sql::{column_sql, partition_bound_sql, sequence_sql};
use super::{Inversion, Outcome, StmtExt, misrouted, qn, sibling, tx};
use crate::catalog::{ConstraintSnap, SequenceSnap, TableSnap};
use crate::generator::Gen;
use crate::names::{quote_ident, quote_literal};
use crate::{Reversibility, RollbackStatement};
use migration_parser::{
    AlterTableAction, ColumnDef, ConstraintDef, Operation, QualifiedName, Statement,
};

/// The table family.
pub(crate) struct Tables;

impl Inversion for Tables {
    fn family(&self) -> &'static str {
        "table"
    }

    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::CreateTable {
                table,
                columns,
                constraints,
                if_not_exists,
                partition_of,
                ..
            } => {
                if *if_not_exists && g.table(table).is_some() {
                    return Outcome::NoOp(format!(
                        "table {} already existed (IF NOT EXISTS)",
                        table
                    ));
                }
                g.apply_create_table(table, columns, constraints, partition_of.as_ref());
                Outcome::Inverse(vec![tx(format!("DROP TABLE {}", qn(table)))])
            }
            Operation::DropTable {
                table,
                if_exists,
                cascade,
            } => g.drop_table(table, *if_exists, *cascade),
            Operation::RenameTable { table, new_name } => {
                if let Some(k) = g.key(table) {
                    if !g.state.tables.contains_key(&k)
                        && !g.state.views.contains_key(&k)
                        && !g.state.sequences.contains_key(&k)
                    {
                        return Outcome::NoOp(format!(
                            "{table} did not exist (ALTER ... IF EXISTS is a no-op)"
                        ));
                    }
                    g.rename_table(&k, new_name);
                }
                Outcome::Inverse(vec![tx(format!(
                    "ALTER TABLE {} RENAME TO {}",
                    sibling(table, new_name),
                    quote_ident(&table.name)
                ))])
            }
            Operation::LockTable { .. } => Outcome::NoOp("LOCK changes nothing".into()),
            Operation::AlterTableOther { table, action } => g.alter_table_other(table, action),
            Operation::AttachPartition { table, partition } => {
                let bound = partition_bound_sql(&stmt.sql);
                if let Some(k) = g.key(partition)
                    && let Some(p) = g.state.tables.get_mut(&k)
                {
                    p.partition_of = Some((qn(table), bound.unwrap_or_default()));
                }
                Outcome::Inverse(vec![tx(format!(
                    "ALTER TABLE {} DETACH PARTITION {}",
                    qn(table),
                    qn(partition)
                ))])
            }
            Operation::DetachPartition {
                table, partition, ..
            } => {
                let bound = g.table(partition).and_then(|p| p.partition_of.clone());
                if let Some(p) = g.table_mut(partition) {
                    p.partition_of = None;
                }
                match bound {
                    Some((_, b)) if !b.is_empty() => Outcome::Inverse(vec![tx(format!(
                        "ALTER TABLE {} ATTACH PARTITION {} {}",
                        qn(table),
                        qn(partition),
                        b
                    ))]),
                    _ => Outcome::Irreversible(format!(
                        "the partition bound of {partition} is not in the pre-migration catalog"
                    )),
                }
            }
            _ => misrouted(stmt),
        }
    }
}

impl Gen<'_> {
    pub(crate) fn apply_create_table(
        &mut self,
        table: &QualifiedName,
        columns: &[ColumnDef],
        constraints: &[ConstraintDef],
        partition_of: Option<&QualifiedName>,
    ) {
        let Some(k) = self.key(table) else { return };
        let mut t = TableSnap {
            kind: "r".into(),
            origin: None,
            ..Default::default()
        };
        if let Some(p) = partition_of {
            t.partition_of = Some((qn(p), String::new()));
        }
        self.state.tables.insert(k.clone(), t);
        for c in columns {
            self.apply_add_column(table, c);
        }
        for c in constraints {
            self.register_constraint(table, c);
        }
    }

    pub(crate) fn rename_table(&mut self, old: &str, new: &str) {
        if let Some(t) = self.state.tables.remove(old) {
            self.state.tables.insert(new.to_string(), t);
        }
        let (qo, qnew) = (quote_ident(old), quote_ident(new));
        for t in self.state.tables.values_mut() {
            for c in t.constraints.values_mut() {
                if c.ref_table.as_deref() == Some(qo.as_str()) {
                    c.ref_table = Some(qnew.clone());
                }
            }
        }
        for s in self.state.sequences.values_mut() {
            if let Some((t, _)) = &mut s.owned_by
                && t == old
            {
                *t = new.to_string();
            }
        }
    }

    pub(crate) fn drop_table(
        &mut self,
        table: &QualifiedName,
        if_exists: bool,
        cascade: bool,
    ) -> Outcome {
        let Some(k) = self.key(table) else {
            return Outcome::Irreversible(format!(
                "table {table} is in schema {} which was not introspected; it cannot be recreated",
                table.schema.clone().unwrap_or_default()
            ));
        };
        let Some(t) = self.state.tables.get(&k).cloned() else {
            return if if_exists {
                Outcome::NoOp(format!("table {table} did not exist (IF EXISTS)"))
            } else {
                Outcome::Irreversible(format!("table {table} is not in the pre-migration catalog"))
            };
        };
        let q = qn(table);
        let mut v: Vec<RollbackStatement> = Vec::new();
        let loss = Reversibility::DataLoss;
        let note = format!("recreates the structure of {table}; its rows are gone");
        // Owned sequences go with the table.
        let owned = self.owned_sequences(&k, None);
        for (n, s) in &owned {
            if !s.data_type.is_empty() {
                v.push(
                    tx(sequence_sql(&sibling(table, n), s)).rev(loss, "sequence position restarts"),
                );
            }
        }
        v.extend(
            self.table_sql(table, &t)
                .into_iter()
                .map(|s| s.rev(loss, note.clone())),
        );
        for (n, s) in &owned {
            if let Some((_, c)) = &s.owned_by
                && !s.data_type.is_empty()
            {
                v.push(tx(format!(
                    "ALTER SEQUENCE {} OWNED BY {}.{}",
                    sibling(table, n),
                    q,
                    quote_ident(c)
                )));
            }
        }
        // Foreign keys of other tables pointing here were dropped by CASCADE.
        if cascade {
            v.extend(self.readd_referencing_fks(table, |tn, _| tn != k));
        }
        self.state.tables.remove(&k);
        for (n, _) in owned {
            self.state.sequences.remove(&n);
        }
        let mut reason =
            format!("DROP TABLE {table}: its rows are lost; the rollback recreates an empty table");
        if cascade {
            let lost = self.cascade_views(super::dependents::Target::Relation(&k));
            if !lost.is_empty() {
                reason.push_str(&format!(
                    "; CASCADE also dropped views created earlier in this migration ({}), which are not restored",
                    lost.join(", ")
                ));
            }
        }
        if t.origin.is_none() {
            // Created earlier in this migration: nothing of value existed before.
            return Outcome::Inverse(v);
        }
        Outcome::Partial(v, reason)
    }

    /// `CREATE TABLE` and everything attached to it, from the working catalog.
    pub(crate) fn table_sql(
        &mut self,
        table: &QualifiedName,
        t: &TableSnap,
    ) -> Vec<RollbackStatement> {
        let q = qn(table);
        let mut v = Vec::new();
        let mut items: Vec<String> = Vec::new();
        let mut later: Vec<(String, ConstraintSnap)> = Vec::new();
        for c in &t.columns {
            items.push(column_sql(c, true));
        }
        for (cn, c) in &t.constraints {
            if c.inherited {
                continue;
            }
            if c.kind == "f" || !c.validated {
                later.push((cn.clone(), c.clone()));
            } else {
                items.push(format!("CONSTRAINT {} {}", quote_ident(cn), c.definition));
            }
        }
        let head = if t.unlogged {
            "CREATE UNLOGGED TABLE"
        } else {
            "CREATE TABLE"
        };
        let mut sql = match &t.partition_of {
            Some((parent, bound)) if !bound.is_empty() => {
                let cons: Vec<String> = items
                    .iter()
                    .filter(|i| i.starts_with("CONSTRAINT "))
                    .cloned()
                    .collect();
                if cons.is_empty() {
                    format!("{head} {q} PARTITION OF {parent} {bound}")
                } else {
                    format!(
                        "{head} {q} PARTITION OF {parent} (\n    {}\n) {bound}",
                        cons.join(",\n    ")
                    )
                }
            }
            _ => format!("{head} {q} (\n    {}\n)", items.join(",\n    ")),
        };
        if let Some(pk) = &t.partition_key {
            sql.push_str(&format!(" PARTITION BY {pk}"));
        }
        if let Some(o) = &t.options {
            sql.push_str(&format!(" WITH ({o})"));
        }
        v.push(tx(sql));
        for (iname, i) in &t.indexes {
            if !i.constraint && !i.definition.is_empty() {
                v.push(tx(i.definition.clone()));
            }
            if let Some(c) = &i.comment {
                v.push(tx(format!(
                    "COMMENT ON INDEX {} IS {}",
                    sibling(table, iname),
                    quote_literal(c)
                )));
            }
        }
        for (cn, c) in later {
            let tk = table.name.clone();
            v.extend(self.readd_fk_or_check(&q, &tk, &cn, &c));
        }
        if let Some(c) = &t.comment {
            v.push(tx(format!("COMMENT ON TABLE {q} IS {}", quote_literal(c))));
        }
        for c in &t.columns {
            if let Some(cm) = &c.comment {
                v.push(tx(format!(
                    "COMMENT ON COLUMN {q}.{} IS {}",
                    quote_ident(&c.name),
                    quote_literal(cm)
                )));
            }
        }
        for (cn, c) in &t.constraints {
            if let Some(cm) = &c.comment {
                v.push(tx(format!(
                    "COMMENT ON CONSTRAINT {} ON {q} IS {}",
                    quote_ident(cn),
                    quote_literal(cm)
                )));
            }
        }
        for def in t.triggers.values() {
            if !def.is_empty() {
                v.push(tx(def.clone()));
            }
        }
        if t.row_security {
            v.push(tx(format!("ALTER TABLE {q} ENABLE ROW LEVEL SECURITY")));
        }
        v
    }

    pub(crate) fn alter_table_other(
        &mut self,
        table: &QualifiedName,
        action: &AlterTableAction,
    ) -> Outcome {
        let q = qn(table);
        let Some(t) = self.table_mut(table) else {
            return Outcome::Irreversible(format!(
                "ALTER TABLE ... {} on a table not in the pre-migration catalog",
                action.words().to_uppercase()
            ));
        };
        match action {
            AlterTableAction::SetLogged | AlterTableAction::SetUnlogged => {
                let to_unlogged = *action == AlterTableAction::SetUnlogged;
                let was = t.unlogged;
                t.unlogged = to_unlogged;
                if was == to_unlogged {
                    Outcome::NoOp(format!(
                        "{table} was already {}",
                        if was { "unlogged" } else { "logged" }
                    ))
                } else {
                    Outcome::Inverse(vec![tx(format!(
                        "ALTER TABLE {q} SET {}",
                        if was { "UNLOGGED" } else { "LOGGED" }
                    ))])
                }
            }
            AlterTableAction::EnableRowLevelSecurity
            | AlterTableAction::DisableRowLevelSecurity => {
                let on = *action == AlterTableAction::EnableRowLevelSecurity;
                let was = t.row_security;
                t.row_security = on;
                if was == on {
                    Outcome::NoOp(format!(
                        "row level security on {table} was already {}",
                        if on { "on" } else { "off" }
                    ))
                } else {
                    Outcome::Inverse(vec![tx(format!(
                        "ALTER TABLE {q} {} ROW LEVEL SECURITY",
                        if was { "ENABLE" } else { "DISABLE" }
                    ))])
                }
            }
            other => Outcome::Irreversible(format!(
                "ALTER TABLE ... {} is not inverted automatically",
                other.words().to_uppercase()
            )),
        }
    }

    /// The sequences owned by `table_key` (by its `column` when given), as the working catalog
    /// has them: they go when the table or column is dropped.
    pub(crate) fn owned_sequences(
        &self,
        table_key: &str,
        column: Option<&str>,
    ) -> Vec<(String, SequenceSnap)> {
        self.state
            .sequences
            .iter()
            .filter(|(_, s)| {
                s.owned_by
                    .as_ref()
                    .is_some_and(|(ot, oc)| ot == table_key && column.is_none_or(|c| c == oc))
            })
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect()
    }
}

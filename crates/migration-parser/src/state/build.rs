//! The mutations [`apply`](super::apply) makes to a [`MigrationState`] while walking.

use super::{
    Cascade, ColumnOrigin, ColumnRecord, ConstraintRecord, DataChange, MigrationState, Namespace,
    ObjectId, ObjectKind, ObjectRecord, Origin, Resolved, Step, column_freed_at, same_name,
};
use crate::model::{ConstraintDef, ConstraintKind, QualifiedName};

impl MigrationState {
    pub(crate) fn push_object(&mut self, rec: ObjectRecord) -> usize {
        let i = self.objects.len();
        let ns = rec.kind.namespace();
        for (_, n) in &rec.names {
            self.index_name(ns, &n.name, i);
        }
        self.objects.push(rec);
        i
    }

    fn index_name(&mut self, ns: Namespace, name: &str, i: usize) {
        let e = self.by_name.entry((ns, name.to_string())).or_default();
        if e.last() != Some(&i) {
            e.push(i);
        }
    }

    /// A new object created at `at`.
    pub(crate) fn create(
        &mut self,
        at: Step,
        tx: usize,
        kind: ObjectKind,
        name: &QualifiedName,
        if_not_exists: bool,
    ) -> usize {
        self.push_object(ObjectRecord {
            kind,
            origin: Origin::Created(at),
            created_tx: Some(tx),
            if_not_exists,
            on: None,
            dropped: None,
            names: vec![(None, name.clone())],
            labels: Vec::new(),
            columns_known: true,
        })
    }

    /// The record `name` denotes at `at`, creating one for an untouched shard object.
    pub(crate) fn touch(
        &mut self,
        kind: ObjectKind,
        name: &QualifiedName,
        at: Step,
    ) -> Option<usize> {
        match self.resolve(kind.namespace(), name, at) {
            Resolved::Tracked(id, _) => Some(id.0),
            Resolved::Shard(n) => Some(self.push_object(ObjectRecord {
                kind,
                origin: Origin::Shard(n.clone()),
                created_tx: None,
                if_not_exists: false,
                on: None,
                dropped: None,
                names: vec![(None, n)],
                labels: Vec::new(),
                columns_known: false,
            })),
            Resolved::Free { .. } | Resolved::MaybeDropped { .. } => None,
        }
    }

    pub(crate) fn set_columns_known(&mut self, i: usize, known: bool) {
        self.objects[i].columns_known = known;
    }

    pub(crate) fn has_label(&self, i: usize, label: &str) -> bool {
        self.objects[i].labels.iter().any(|l| l == label)
    }

    /// Whether table record `t` has a column named `column` alive at `at`.
    pub(crate) fn column_exists(&self, t: usize, column: &str, at: Step) -> bool {
        self.columns_of.get(&t).is_some_and(|cs| {
            cs.iter()
                .any(|&c| self.columns[c].alive_at(at) && self.columns[c].name_at(at) == column)
        })
    }

    pub(crate) fn set_on(&mut self, i: usize, table: usize) {
        self.objects[i].on = Some(ObjectId(table));
    }

    pub(crate) fn push_label(&mut self, i: usize, label: String) {
        self.objects[i].labels.push(label);
    }

    pub(crate) fn rename_label(&mut self, i: usize, from: &str, to: &str) {
        for l in self.objects[i].labels.iter_mut().filter(|l| *l == from) {
            *l = to.to_string();
        }
    }

    pub(crate) fn rename(&mut self, i: usize, at: Step, new: QualifiedName) {
        let ns = self.objects[i].kind.namespace();
        self.index_name(ns, &new.name, i);
        self.objects[i].names.push((Some(at), new));
    }

    /// Drop record `i` at `at`, with what depends on it that the migration knows of.
    pub(crate) fn drop_object(&mut self, i: usize, at: Step) {
        if self.objects[i].dropped.is_some() {
            return;
        }
        self.objects[i].dropped = Some(at);
        for j in 0..self.objects.len() {
            if self.objects[j].on == Some(ObjectId(i)) && self.objects[j].dropped.is_none() {
                self.objects[j].dropped = Some(at);
            }
        }
        if let Some(cols) = self.columns_of.get(&i) {
            for &c in cols {
                self.columns[c].dropped.get_or_insert(at);
            }
        }
        if let Some(cs) = self.constraints_of.get(&i) {
            for &c in cs {
                self.constraints[c].dropped.get_or_insert(at);
            }
        }
    }

    /// Foreign keys the migration added that reference record `i` (dropped with it by CASCADE).
    pub(crate) fn drop_fks_referencing(&mut self, i: usize, at: Step) {
        let names: Vec<QualifiedName> = self.objects[i].names().cloned().collect();
        for c in self.constraints.iter_mut() {
            if let Some(ConstraintDef {
                kind: ConstraintKind::ForeignKey { ref_table, .. },
                ..
            }) = &c.def
                && names.iter().any(|n| same_name(n, ref_table))
                && c.alive_at(at)
            {
                c.dropped = Some(at);
            }
        }
    }

    pub(crate) fn push_cascade(&mut self, at: Step, from: &QualifiedName, namespace: Namespace) {
        self.cascades.push(Cascade {
            at,
            from: from.clone(),
            namespace,
        });
    }

    pub(crate) fn drop_schema(&mut self, at: Step, schema: &str) {
        self.dropped_schemas.push((at, schema.to_string()));
        let doomed: Vec<usize> = (0..self.objects.len())
            .filter(|&i| {
                let r = &self.objects[i];
                r.alive_at(at) && r.name_at(at).schema.as_deref() == Some(schema)
            })
            .collect();
        for i in doomed {
            self.drop_object(i, at);
        }
    }

    /// Record that the shard relation `table` (or a column of it) was dropped at `at`.
    pub(crate) fn push_implicit_drop(&mut self, at: Step, table: QualifiedName) {
        self.implicit_drops.push((at, table));
    }

    pub(crate) fn push_opaque(&mut self, at: Step) {
        self.opaque.push(at);
    }

    pub(crate) fn push_data_change(&mut self, at: Step, table: usize, change: DataChange) {
        self.data_changes.push((at, table, change));
    }

    /// The column record `column` of table record `t` denotes at `at`, creating one for an
    /// untouched column of a shard table.
    pub(crate) fn touch_column(&mut self, t: usize, column: &str, at: Step) -> Option<usize> {
        let cols = self.columns_of.get(&t).cloned().unwrap_or_default();
        if let Some(&c) = cols
            .iter()
            .filter(|&&c| self.columns[c].alive_at(at) && self.columns[c].name_at(at) == column)
            .max()
        {
            return Some(c);
        }
        if cols
            .iter()
            .any(|&c| column_freed_at(&self.columns[c], column, at).is_some())
            || self.objects[t].is_created()
        {
            return None;
        }
        Some(self.push_column(t, ColumnOrigin::Shard(column.to_string()), column))
    }

    pub(crate) fn push_column(&mut self, t: usize, origin: ColumnOrigin, name: &str) -> usize {
        let c = self.columns.len();
        let mut rec = ColumnRecord {
            table: ObjectId(t),
            origin,
            dropped: None,
            names: vec![(None, name.to_string())],
            types: Vec::new(),
            not_null: Vec::new(),
            assigned: Vec::new(),
        };
        if let ColumnOrigin::Created(s, def) = &rec.origin {
            rec.types.push((*s, def.data_type.clone()));
            rec.not_null.push((*s, def.not_null || def.primary_key));
        }
        self.columns.push(rec);
        self.columns_of.entry(t).or_default().push(c);
        c
    }

    pub(crate) fn column_mut(&mut self, c: usize) -> &mut ColumnRecord {
        &mut self.columns[c]
    }

    pub(crate) fn rename_column(&mut self, c: usize, at: Step, new: &str) {
        self.columns[c].names.push((Some(at), new.to_string()));
    }

    pub(crate) fn set_column_type(&mut self, c: usize, at: Step, ty: &str) {
        self.columns[c].types.push((at, ty.to_string()));
    }

    pub(crate) fn set_column_not_null(&mut self, c: usize, at: Step, not_null: bool) {
        self.columns[c].not_null.push((at, not_null));
    }

    pub(crate) fn assign_column(&mut self, c: usize, at: Step) {
        self.columns[c].assigned.push(at);
    }

    pub(crate) fn push_constraint(
        &mut self,
        t: usize,
        at: Option<(Step, usize)>,
        name: Option<String>,
        def: Option<ConstraintDef>,
    ) -> usize {
        let validated = match (&def, at) {
            (Some(d), Some((s, _))) if !d.not_valid => Some(s),
            _ => None,
        };
        let k = self.constraints.len();
        self.constraints.push(ConstraintRecord {
            table: ObjectId(t),
            def,
            added: at.map(|(s, _)| s),
            added_tx: at.map(|(_, tx)| tx),
            validated,
            dropped: None,
            names: vec![(None, name)],
        });
        self.constraints_of.entry(t).or_default().push(k);
        k
    }

    /// The constraint record named `name` on table record `t` alive at `at`, creating one for
    /// a constraint of the shard.
    pub(crate) fn touch_constraint(&mut self, t: usize, name: &str, at: Step) -> usize {
        let found = self.constraints_of.get(&t).and_then(|cs| {
            cs.iter()
                .copied()
                .filter(|&c| {
                    self.constraints[c].alive_at(at)
                        && self.constraints[c].name_at(at) == Some(name)
                })
                .max()
        });
        found.unwrap_or_else(|| self.push_constraint(t, None, Some(name.to_string()), None))
    }

    pub(crate) fn constraint_mut(&mut self, k: usize) -> &mut ConstraintRecord {
        &mut self.constraints[k]
    }

    pub(crate) fn rename_constraint(&mut self, k: usize, at: Step, new: &str) {
        self.constraints[k]
            .names
            .push((Some(at), Some(new.to_string())));
    }
}

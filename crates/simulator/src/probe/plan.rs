//! Probe planning: one walk over the migration's operations in order (pure, no IO).
//!
//! For each operation every probe kind (`kinds::SPECS`) plans its probes from the state the walk
//! holds — what the statements *before* it did — and only then is the operation applied to the
//! state. The state knows which relations the migration created (they are empty or new: no data
//! probe, no existence check), renames (probes use the name *on the shard*), dropped objects,
//! added columns, backfills and data changes.

use std::collections::{BTreeSet, HashMap};

use migration_parser::{ColumnDef, ConstraintDef, Migration, Operation, QualifiedName};

use super::kinds;
use super::{ObjKind, ObjRef, PlannedProbe, ProbePlan};

/// A relation as named on the shard (renames by the migration undone).
pub(crate) type TKey = QualifiedName;

/// Migration state as the walk goes statement by statement.
#[derive(Default)]
pub(crate) struct Walk {
    /// Tables created by the migration (current names).
    created_tables: BTreeSet<TKey>,
    /// current name → name on the shard.
    table_alias: HashMap<TKey, TKey>,
    /// Tables dropped by the migration (names on the shard).
    pub(crate) dropped_tables: BTreeSet<TKey>,
    /// (shard table, current column) → column added by the migration.
    added_columns: HashMap<(TKey, String), ColumnDef>,
    /// (shard table, current column) → column name on the shard.
    column_alias: HashMap<(TKey, String), String>,
    /// (shard table, column) dropped.
    pub(crate) dropped_columns: BTreeSet<(TKey, String)>,
    /// (shard table, column) → statement index of an UPDATE assigning it.
    backfilled: HashMap<(TKey, String), usize>,
    /// shard table → statement index of a DELETE/UPDATE/INSERT on it.
    data_changed: HashMap<TKey, usize>,
    /// (shard table, constraint) created by the migration → definition.
    created_constraints: HashMap<(TKey, String), ConstraintDef>,
    /// (schema option, relation name) created by the migration (indexes, tables).
    pub(crate) created_relations: BTreeSet<TKey>,
    /// (shard table, constraint) dropped by the migration.
    pub(crate) dropped_constraints: BTreeSet<(TKey, String)>,
}

impl Walk {
    /// The name on the shard of table `t` as the migration names it now.
    pub(crate) fn shard_table(&self, t: &QualifiedName) -> TKey {
        self.table_alias
            .get(t)
            .cloned()
            .unwrap_or_else(|| t.clone())
    }

    /// Whether the migration created `shard_t` (it is empty, and not on the shard).
    pub(crate) fn is_created(&self, shard_t: &TKey) -> bool {
        self.created_tables.contains(shard_t)
    }

    /// The name on the shard of column `c` (as the migration names it now) of `t`.
    pub(crate) fn shard_column(&self, t: &TKey, c: &str) -> String {
        self.column_alias
            .get(&(t.clone(), c.to_string()))
            .cloned()
            .unwrap_or_else(|| c.to_string())
    }

    /// The definition of column `c` of `t` when the migration added it.
    pub(crate) fn added(&self, t: &TKey, c: &str) -> Option<&ColumnDef> {
        self.added_columns.get(&(t.clone(), c.to_string()))
    }

    /// Whether the migration created constraint `name` on `t` (and has not dropped it).
    pub(crate) fn created_constraint(&self, t: &TKey, name: &str) -> bool {
        self.created_constraints
            .contains_key(&(t.clone(), name.to_string()))
    }

    /// The statement (0-based) that backfills column `c` (shard name) of `t`, if any.
    pub(crate) fn backfilled_by(&self, t: &TKey, c: &str) -> Option<usize> {
        self.backfilled.get(&(t.clone(), c.to_string())).copied()
    }

    /// Why a probe of column `column_as_written` of `t` needs no run, if it does not.
    pub(crate) fn skip_reason(&self, t: &TKey, column_as_written: &str) -> Option<String> {
        if self.is_created(t) {
            Some("table created by the migration: empty".into())
        } else if self.added(t, column_as_written).is_some() {
            Some("column added earlier in the migration".into())
        } else {
            None
        }
    }

    /// "statement N changes this table's rows first" when an earlier statement does.
    pub(crate) fn data_note(&self, t: &TKey) -> Option<String> {
        self.data_changed.get(t).map(|i| {
            format!(
                "statement {} changes this table's rows first: count is before that change",
                i + 1
            )
        })
    }

    /// Apply `op` (of statement `si`) to the state, after its probes are planned.
    fn apply(&mut self, op: &Operation, si: usize) {
        match op {
            Operation::CreateTable { table, .. } => {
                self.created_tables.insert(table.clone());
                self.created_relations.insert(table.clone());
            }
            Operation::DropTable { table, .. } => {
                let t = self.shard_table(table);
                self.dropped_tables.insert(t.clone());
                self.created_tables.remove(&t);
            }
            Operation::RenameTable { table, new_name } => {
                let t = self.shard_table(table);
                let new = with_schema_of(table, new_name);
                if self.created_tables.remove(&t) {
                    self.created_tables.insert(new.clone());
                }
                self.table_alias.insert(new, t);
            }
            Operation::AddColumn { table, column, .. } => {
                let t = self.shard_table(table);
                self.added_columns
                    .insert((t, column.name.clone()), column.clone());
            }
            Operation::DropColumn { table, column, .. } => {
                let t = self.shard_table(table);
                let c = self.shard_column(&t, column);
                self.dropped_columns.insert((t, c));
            }
            Operation::RenameColumn {
                table,
                column,
                new_name,
            } => {
                let t = self.shard_table(table);
                let c = self.shard_column(&t, column);
                if let Some(def) = self.added_columns.remove(&(t.clone(), column.clone())) {
                    self.added_columns
                        .insert((t.clone(), new_name.clone()), def);
                }
                self.column_alias.insert((t, new_name.clone()), c);
            }
            Operation::AddConstraint { table, constraint } => {
                if let Some(name) = &constraint.name {
                    let t = self.shard_table(table);
                    self.created_constraints
                        .insert((t, name.clone()), constraint.clone());
                }
            }
            Operation::DropConstraint { table, name, .. } => {
                let t = self.shard_table(table);
                self.created_constraints.remove(&(t.clone(), name.clone()));
                self.dropped_constraints.insert((t, name.clone()));
            }
            Operation::CreateIndex {
                name: Some(n),
                table,
                ..
            } => {
                self.created_relations.insert(with_schema_of(table, n));
            }
            Operation::RenameIndex { name, new_name } => {
                self.created_relations
                    .insert(with_schema_of(name, new_name));
            }
            Operation::Truncate { tables, .. } => {
                for table in tables {
                    let t = self.shard_table(table);
                    self.data_changed.entry(t).or_insert(si);
                }
            }
            Operation::Update { table, columns, .. } => {
                let t = self.shard_table(table);
                for c in columns {
                    let sc = self.shard_column(&t, c);
                    self.backfilled.entry((t.clone(), sc)).or_insert(si);
                }
                self.data_changed.entry(t).or_insert(si);
            }
            Operation::Delete { table, .. } | Operation::Insert { table, .. } => {
                let t = self.shard_table(table);
                self.data_changed.entry(t).or_insert(si);
            }
            _ => {}
        }
    }
}

/// What a probe kind sees while it plans one operation.
pub(crate) struct PlanCx<'a> {
    /// The plan so far.
    pub plan: &'a mut ProbePlan,
    /// What the statements before this one did.
    pub walk: &'a Walk,
    /// The statement's index (0-based).
    pub si: usize,
    /// The statement's SQL, upper-cased (for options the operation model does not carry).
    pub sql_upper: &'a str,
    /// (table as written, constraint) → the statement that validates it later.
    validated_later: &'a HashMap<(QualifiedName, String), usize>,
}

impl PlanCx<'_> {
    /// Add an existence reference of statement `si`.
    pub(crate) fn push_ref(&mut self, kind: ObjKind, table: TKey, name: String, must_exist: bool) {
        self.plan.refs.push(ObjRef {
            statement_index: self.si,
            kind,
            table,
            name,
            must_exist,
        });
    }

    /// Column `c` (shard name) of `t` must exist.
    pub(crate) fn require_column(&mut self, t: &TKey, c: &str) {
        self.push_ref(ObjKind::Column, t.clone(), c.to_string(), true);
    }

    /// Table `t` (shard name) must exist, unless the migration created or dropped it (asked
    /// once per table).
    pub(crate) fn require_table(&mut self, t: &TKey) {
        if self.walk.is_created(t)
            || self.walk.dropped_tables.contains(t)
            || self
                .plan
                .refs
                .iter()
                .any(|r| r.kind == ObjKind::Table && &r.table == t)
        {
            return;
        }
        self.push_ref(ObjKind::Table, t.clone(), String::new(), true);
    }

    /// Add a data probe.
    pub(crate) fn push_probe(&mut self, p: PlannedProbe) {
        self.plan.probes.push(p);
    }

    /// The statement that validates constraint `name` of `table` (as written) later, if any.
    pub(crate) fn validated_at(
        &self,
        table: &QualifiedName,
        name: Option<&String>,
    ) -> Option<usize> {
        name.and_then(|n| {
            self.validated_later
                .get(&(table.clone(), n.clone()))
                .copied()
        })
    }
}

/// Plan the probes for `migration` (pure; no IO). See the module docs for how earlier
/// statements of the same migration are taken into account.
pub fn plan(migration: &Migration) -> ProbePlan {
    let mut plan = ProbePlan::default();
    let mut walk = Walk::default();
    // Which constraints get VALIDATEd later (by table as written, name).
    let mut validated_later: HashMap<(QualifiedName, String), usize> = HashMap::new();
    for st in &migration.statements {
        for op in &st.operations {
            if let Operation::ValidateConstraint { table, name } = op {
                validated_later
                    .entry((table.clone(), name.clone()))
                    .or_insert(st.index);
            }
        }
    }
    for st in &migration.statements {
        let sql_upper = st.sql.to_ascii_uppercase();
        for op in &st.operations {
            let mut cx = PlanCx {
                plan: &mut plan,
                walk: &walk,
                si: st.index,
                sql_upper: &sql_upper,
                validated_later: &validated_later,
            };
            for spec in kinds::SPECS {
                spec.plan(op, &mut cx);
            }
            walk.apply(op, st.index);
        }
    }
    plan
}

/// The tables `op` reads or changes, as named on the shard, and whether each must exist
/// (`DROP TABLE IF EXISTS` does not need it).
pub(crate) fn touched_tables(op: &Operation, w: &Walk) -> Vec<(TKey, bool)> {
    match op {
        Operation::DropTable {
            table, if_exists, ..
        } => vec![(w.shard_table(table), !*if_exists)],
        Operation::RenameTable { table, .. }
        | Operation::AddColumn { table, .. }
        | Operation::DropColumn { table, .. }
        | Operation::RenameColumn { table, .. }
        | Operation::AlterColumnType { table, .. }
        | Operation::SetNotNull { table, .. }
        | Operation::DropNotNull { table, .. }
        | Operation::SetDefault { table, .. }
        | Operation::DropDefault { table, .. }
        | Operation::AddConstraint { table, .. }
        | Operation::ValidateConstraint { table, .. }
        | Operation::DropConstraint { table, .. }
        | Operation::RenameConstraint { table, .. }
        | Operation::CreateIndex { table, .. }
        | Operation::Update { table, .. }
        | Operation::Delete { table, .. }
        | Operation::Insert { table, .. }
        | Operation::AlterTableOther { table, .. }
        | Operation::CreateTrigger { table, .. } => vec![(w.shard_table(table), true)],
        Operation::Truncate { tables, .. } | Operation::LockTable { tables, .. } => {
            tables.iter().map(|t| (w.shard_table(t), true)).collect()
        }
        _ => Vec::new(),
    }
}

/// `name` in the schema of `t`.
pub(crate) fn with_schema_of(t: &QualifiedName, name: &str) -> QualifiedName {
    QualifiedName {
        schema: t.schema.clone(),
        name: name.to_string(),
    }
}

/// Whether a column default makes every existing row non-NULL.
pub(crate) fn default_is_non_null(c: &ColumnDef) -> bool {
    if c.identity || c.serial || c.generated_stored {
        return true;
    }
    match &c.default {
        Some(d) => !d.sql.trim().eq_ignore_ascii_case("null"),
        None => false,
    }
}

/// The outcome a constraint's violations have: `(would_fail, note, statement)`. A `NOT VALID`
/// constraint only fails later, at its `VALIDATE` (if any), and is probed there.
pub(crate) fn constraint_outcome(
    cx: &PlanCx<'_>,
    table_as_written: &QualifiedName,
    t: &TKey,
    c: &ConstraintDef,
) -> (bool, Option<String>, usize) {
    let base_note = cx.walk.data_note(t);
    if !c.not_valid {
        return (base_note.is_none(), base_note, cx.si);
    }
    match cx.validated_at(table_as_written, c.name.as_ref()) {
        Some(v) => (
            base_note.is_none(),
            Some(format!(
                "NOT VALID: existing rows are checked by VALIDATE in statement {}",
                v + 1
            )),
            v,
        ),
        None => (
            false,
            Some(
                "NOT VALID and never validated in this migration: existing rows stay unchecked"
                    .into(),
            ),
            cx.si,
        ),
    }
}

/// "table created by the migration: empty" when it is.
pub(crate) fn empty_skip(w: &Walk, t: &TKey) -> Option<String> {
    w.is_created(t)
        .then(|| "table created by the migration: empty".to_string())
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

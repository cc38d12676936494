//! [`MigrationState`]: the one model of what a migration does to a schema, statement by
//! statement.
//!
//! Every consumer that needs to know "what is `x` at this point of the migration" — the static
//! rules (is this table new? was this CHECK validated earlier?), probe planning (which object on
//! the shard does this name denote, can the name be taken on the shard?), rollback generation
//! (which columns did the migration add, under which names) — asks this one walker instead of
//! following the statements itself.
//!
//! # The model
//!
//! The walk is catalog-free: the state starts from "the shard, whatever it holds", and records
//! only what the migration does. Every object the migration creates, renames, alters or drops gets
//! an [`ObjectRecord`] with an [`Origin`] (created at a [`Step`], or an object of the shard and its
//! name there), its name history, and when it was dropped. Columns and constraints hang off their
//! table's record, so identity survives renames of the table, of the column, or both.
//!
//! A name is looked up **at a step** (the state just before that operation runs) with
//! [`MigrationState::relation`], [`MigrationState::type_`], ... and resolves to a [`Resolved`]:
//!
//! * [`Resolved::Tracked`]: an object the migration knows — created by it, or a shard object it
//!   touched (its [`Origin::Shard`] name says what to look for on the shard);
//! * [`Resolved::Shard`]: a name the migration has not touched yet — whatever the shard has under
//!   it (probes decide whether it exists);
//! * [`Resolved::Free`]: nothing has the name any more — the migration dropped it, or renamed it
//!   away (`RENAME COLUMN ts TO ts_old` frees `ts`);
//! * [`Resolved::MaybeDropped`]: a `CASCADE` earlier in the migration may have dropped the shard's
//!   object of that name (dependents of a dropped view, table, type or schema are not known
//!   without the catalog).
//!
//! Steps are ordered (statement, operation within the statement): in
//! `ALTER TABLE t ADD COLUMN a int, ADD CONSTRAINT c CHECK (a > 0)` the constraint's step sees the
//! column.
//!
//! ```
//! use migration_parser::{parse, ParseOptions, QualifiedName, Resolved, state::ColumnResolved,
//!     MigrationState, Step};
//! let m = parse("m.sql",
//!     "ALTER TABLE ev RENAME COLUMN ts TO ts_old;\nALTER TABLE ev ADD COLUMN ts timestamptz;",
//!     &ParseOptions::default()).unwrap();
//! let state = MigrationState::new(&m);
//! let ev = QualifiedName::new("ev");
//! // Before the rename, `ts` is the shard's column (tracked: the migration touches it).
//! match state.column(&ev, "ts", Step::before(0)) {
//!     ColumnResolved::Tracked(c) => assert_eq!(c.shard_name(), Some("ts")),
//!     other => panic!("{other:?}"),
//! }
//! // When the column is added, `ts` has been freed by the rename: nothing on the shard can clash.
//! assert!(matches!(state.column(&ev, "ts", Step::before(1)), ColumnResolved::Free { .. }));
//! // `ts_old` is the shard's `ts`.
//! match state.column(&ev, "ts_old", Step::before(1)) {
//!     ColumnResolved::Tracked(c) => assert_eq!(c.shard_name(), Some("ts")),
//!     other => panic!("{other:?}"),
//! }
//! ```

use std::collections::HashMap;

use crate::analysis::same_relation as same_name;

mod apply;
mod build;

use crate::model::{ColumnDef, ConstraintDef, ConstraintKind, Migration, QualifiedName};

/// A point in the migration: just before operation `op` of statement `statement` runs.
/// Ordered by statement, then operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Step {
    /// 0-based statement index ([`crate::Statement::index`]).
    pub statement: usize,
    /// 0-based position in [`crate::Statement::operations`].
    pub op: usize,
}

impl Step {
    /// Just before statement `statement` (its first operation).
    pub fn before(statement: usize) -> Step {
        Step { statement, op: 0 }
    }
    /// Just after statement `statement` (before the next one).
    pub fn after(statement: usize) -> Step {
        Step::before(statement + 1)
    }
}

/// Which PostgreSQL namespace a name lives in: names clash only within one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// `pg_class`: tables, views, materialized views, indexes, sequences.
    Relation,
    /// `pg_type`: enums, composite types, domains.
    Type,
    /// `pg_namespace`: schemas.
    Schema,
    /// `pg_proc`: functions and procedures.
    Function,
}

/// What an object is, as far as the migration says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ObjectKind {
    /// A table.
    Table,
    /// A view.
    View,
    /// A materialized view.
    MaterializedView,
    /// An index.
    Index,
    /// A sequence.
    Sequence,
    /// A relation of the shard the migration names without saying what it is (`ALTER TABLE`
    /// also renames views and sequences).
    Relation,
    /// An enum type.
    Enum,
    /// Another type (composite, range, domain, or a shard type of unknown form).
    Type,
    /// A schema.
    Schema,
    /// A function or procedure.
    Function,
}

impl ObjectKind {
    /// The namespace its name lives in.
    pub fn namespace(self) -> Namespace {
        match self {
            ObjectKind::Table
            | ObjectKind::View
            | ObjectKind::MaterializedView
            | ObjectKind::Index
            | ObjectKind::Sequence
            | ObjectKind::Relation => Namespace::Relation,
            ObjectKind::Enum | ObjectKind::Type => Namespace::Type,
            ObjectKind::Schema => Namespace::Schema,
            ObjectKind::Function => Namespace::Function,
        }
    }
}

/// Where an object comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An object of the shard, with its name there before the migration.
    Shard(QualifiedName),
    /// Created by the migration at this step.
    Created(Step),
}

/// Identifies an [`ObjectRecord`] within one [`MigrationState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(usize);

/// An object the migration created or touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    /// What it is.
    pub kind: ObjectKind,
    /// Where it comes from.
    pub origin: Origin,
    /// Transaction ([`crate::TxContext::transaction`]) of the statement that created it.
    pub created_tx: Option<usize>,
    /// `CREATE ... IF NOT EXISTS`: the shard may already hold it (then the create was a no-op).
    pub if_not_exists: bool,
    /// The table an index is on.
    pub on: Option<ObjectId>,
    /// The step that dropped it (it is alive at that step, gone after).
    pub dropped: Option<Step>,
    /// Names in order: (from when — `None` for the name it had before the migration, name).
    names: Vec<(Option<Step>, QualifiedName)>,
    /// Enum labels in order, with the step each was added at (`None`: known from creation).
    labels: Vec<String>,
    /// Whether all its columns are known (created by a plain `CREATE TABLE`, not `AS SELECT`,
    /// `LIKE` or `PARTITION OF`).
    columns_known: bool,
}

impl ObjectRecord {
    /// The step that created it, if the migration did.
    pub fn created(&self) -> Option<Step> {
        match self.origin {
            Origin::Created(s) => Some(s),
            Origin::Shard(_) => None,
        }
    }
    /// Whether the migration created it.
    pub fn is_created(&self) -> bool {
        self.created().is_some()
    }
    /// Its name on the shard before the migration, for an object of the shard.
    pub fn shard_name(&self) -> Option<&QualifiedName> {
        match &self.origin {
            Origin::Shard(n) => Some(n),
            Origin::Created(_) => None,
        }
    }
    /// Its name at `at`.
    pub fn name_at(&self, at: Step) -> &QualifiedName {
        let mut current = &self.names[0].1;
        for (from, n) in &self.names {
            if from.is_none_or(|f| f < at) {
                current = n;
            }
        }
        current
    }
    /// Every name it had, in order.
    pub fn names(&self) -> impl Iterator<Item = &QualifiedName> {
        self.names.iter().map(|(_, n)| n)
    }
    /// Whether it exists at `at` (after its creation, up to and including its drop step).
    pub fn alive_at(&self, at: Step) -> bool {
        self.created().is_none_or(|c| c < at) && self.dropped.is_none_or(|d| at <= d)
    }
    /// Enum labels the migration gave it (creation and `ADD VALUE`), for an enum it created.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }
}

/// Where a column comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnOrigin {
    /// A column of the shard's table, with its name there.
    Shard(String),
    /// Created by the migration (with its table, or by `ADD COLUMN`) at this step.
    Created(Step, Box<ColumnDef>),
}

/// A column the migration created or touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRecord {
    /// Its table.
    pub table: ObjectId,
    /// Where it comes from.
    pub origin: ColumnOrigin,
    /// The step that dropped it.
    pub dropped: Option<Step>,
    names: Vec<(Option<Step>, String)>,
    /// (step, type as lower-cased SQL) set by the migration: the definition's type, then each
    /// `ALTER COLUMN ... TYPE`.
    types: Vec<(Step, String)>,
    /// (step, not null) set by the migration: definition, `SET`/`DROP NOT NULL`.
    not_null: Vec<(Step, bool)>,
    /// Statements that assigned it (`UPDATE ... SET col = ...`).
    assigned: Vec<Step>,
}

impl ColumnRecord {
    /// Its name on the shard, for a column of the shard.
    pub fn shard_name(&self) -> Option<&str> {
        match &self.origin {
            ColumnOrigin::Shard(n) => Some(n),
            ColumnOrigin::Created(..) => None,
        }
    }
    /// Its definition and the step that created it, for a column the migration created.
    pub fn created(&self) -> Option<(Step, &ColumnDef)> {
        match &self.origin {
            ColumnOrigin::Created(s, def) => Some((*s, def)),
            ColumnOrigin::Shard(_) => None,
        }
    }
    /// Its name at `at`.
    pub fn name_at(&self, at: Step) -> &str {
        let mut current = &self.names[0].1;
        for (from, n) in &self.names {
            if from.is_none_or(|f| f < at) {
                current = n;
            }
        }
        current
    }
    /// Whether it exists at `at`.
    pub fn alive_at(&self, at: Step) -> bool {
        self.created().is_none_or(|(c, _)| c < at) && self.dropped.is_none_or(|d| at <= d)
    }
    /// The type the migration gave it before `at` (lower-cased SQL), if it did.
    pub fn type_at(&self, at: Step) -> Option<&str> {
        self.types
            .iter()
            .rev()
            .find(|(s, _)| *s < at)
            .map(|(_, t)| t.as_str())
    }
    /// Whether the migration made it NOT NULL (or nullable) before `at`, if it did.
    pub fn not_null_at(&self, at: Step) -> Option<bool> {
        self.not_null
            .iter()
            .rev()
            .find(|(s, _)| *s < at)
            .map(|(_, n)| *n)
    }
    /// The last `UPDATE` assigning it before `at`.
    pub fn assigned_before(&self, at: Step) -> Option<Step> {
        self.assigned.iter().rev().find(|s| **s < at).copied()
    }
}

/// A constraint the migration added or touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstraintRecord {
    /// Its table.
    pub table: ObjectId,
    /// Its definition, for a constraint the migration added.
    pub def: Option<ConstraintDef>,
    /// The step that added it; `None` for a constraint of the shard.
    pub added: Option<Step>,
    /// Transaction of the statement that added it.
    pub added_tx: Option<usize>,
    /// The step that validated it (for one added without `NOT VALID`: its creation step).
    pub validated: Option<Step>,
    /// The step that dropped it.
    pub dropped: Option<Step>,
    names: Vec<(Option<Step>, Option<String>)>,
}

impl ConstraintRecord {
    /// Its name at `at` (`None` for an unnamed constraint: PostgreSQL picks the name).
    pub fn name_at(&self, at: Step) -> Option<&str> {
        let mut current = self.names[0].1.as_deref();
        for (from, n) in &self.names {
            if from.is_none_or(|f| f < at) {
                current = n.as_deref();
            }
        }
        current
    }
    /// Whether it exists at `at`.
    pub fn alive_at(&self, at: Step) -> bool {
        self.added.is_none_or(|c| c < at) && self.dropped.is_none_or(|d| at <= d)
    }
    /// Whether it is validated before `at` (checked against every existing row).
    pub fn validated_before(&self, at: Step) -> bool {
        self.validated.is_some_and(|v| v < at) && self.dropped.is_none_or(|d| at <= d)
    }
}

/// What a name denotes at a step. See the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// An object the migration created or touched, alive at that step.
    Tracked(ObjectId, &'a ObjectRecord),
    /// Untouched so far: whatever the shard holds under this name (it may not exist).
    Shard(QualifiedName),
    /// Nothing has this name any more: dropped or renamed away at `by`.
    Free {
        /// The step that freed the name.
        by: Step,
    },
    /// A `CASCADE` at `by` (dropping `cascade_from`) may have dropped the shard's object.
    MaybeDropped {
        /// The cascading drop.
        by: Step,
        /// What it dropped.
        cascade_from: QualifiedName,
    },
}

impl Resolved<'_> {
    /// The tracked record, if any.
    pub fn record(&self) -> Option<&ObjectRecord> {
        match self {
            Resolved::Tracked(_, r) => Some(r),
            _ => None,
        }
    }
    /// Whether the name denotes an object the migration created (alive at that step).
    pub fn is_created(&self) -> bool {
        self.record().is_some_and(ObjectRecord::is_created)
    }
    /// The name to look for on the shard: an untouched name, or a shard object the migration
    /// touched (its name before the migration). `None` when the name denotes something the
    /// migration created, or nothing.
    pub fn on_shard(&self) -> Option<&QualifiedName> {
        match self {
            Resolved::Tracked(_, r) => r.shard_name(),
            Resolved::Shard(n) => Some(n),
            Resolved::Free { .. } | Resolved::MaybeDropped { .. } => None,
        }
    }
}

/// What a column name denotes at a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnResolved<'a> {
    /// A column the migration created or touched, alive at that step.
    Tracked(&'a ColumnRecord),
    /// Untouched: the shard table's column of this name (it may not exist).
    Shard {
        /// The table's name on the shard.
        table: QualifiedName,
        /// The column's name on the shard.
        column: String,
    },
    /// No column has this name at that step: dropped or renamed away at `by`.
    Free {
        /// The step that freed it.
        by: Step,
    },
    /// The table was created by the migration with all its columns known, and none has this
    /// name: the statement would fail (42703).
    Missing,
    /// The table is not there (dropped, renamed away, or maybe dropped by a cascade), or it was
    /// created with columns the migration does not spell out (`AS SELECT`, `LIKE`).
    Unknown,
}

/// A data change of a table (`INSERT`, `UPDATE`, `DELETE`, `TRUNCATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataChange {
    /// `INSERT`.
    Insert,
    /// `UPDATE`.
    Update {
        /// With a `WHERE` clause.
        has_where: bool,
    },
    /// `DELETE`.
    Delete {
        /// With a `WHERE` clause.
        has_where: bool,
    },
    /// `TRUNCATE`.
    Truncate,
}

/// A cascading drop whose dependents the migration does not name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cascade {
    at: Step,
    from: QualifiedName,
    namespace: Namespace,
}

/// The migration's effect on the schema, statement by statement. See the
/// [module documentation](self).
#[derive(Debug, Clone, Default)]
pub struct MigrationState {
    objects: Vec<ObjectRecord>,
    /// (namespace, unqualified name) → every record that ever had the name.
    by_name: HashMap<(Namespace, String), Vec<usize>>,
    columns: Vec<ColumnRecord>,
    /// table record → its column records.
    columns_of: HashMap<usize, Vec<usize>>,
    constraints: Vec<ConstraintRecord>,
    constraints_of: HashMap<usize, Vec<usize>>,
    data_changes: Vec<(Step, usize, DataChange)>,
    cascades: Vec<Cascade>,
    dropped_schemas: Vec<(Step, String)>,
    /// (step, table of the shard as named then): a drop of a shard relation or of one of its
    /// columns, which silently takes the shard objects that depend on it along (indexes,
    /// sequences owned by a column, constraints, triggers), CASCADE or not.
    implicit_drops: Vec<(Step, QualifiedName)>,
    opaque: Vec<Step>,
}

impl MigrationState {
    /// Walk `migration` once.
    pub fn new(migration: &Migration) -> MigrationState {
        let mut s = MigrationState::default();
        for st in &migration.statements {
            for (k, op) in st.operations.iter().enumerate() {
                let at = Step {
                    statement: st.index,
                    op: k,
                };
                apply::apply(&mut s, at, st.tx.transaction, op);
            }
        }
        s
    }

    /// The record behind an id.
    pub fn object(&self, id: ObjectId) -> &ObjectRecord {
        &self.objects[id.0]
    }

    /// Every object the migration created or touched.
    pub fn objects(&self) -> impl Iterator<Item = (ObjectId, &ObjectRecord)> {
        self.objects
            .iter()
            .enumerate()
            .map(|(i, r)| (ObjectId(i), r))
    }

    /// What the relation name `name` (table, view, index, sequence) denotes at `at`.
    pub fn relation(&self, name: &QualifiedName, at: Step) -> Resolved<'_> {
        self.resolve(Namespace::Relation, name, at)
    }

    /// What the type name `name` denotes at `at`.
    pub fn type_(&self, name: &QualifiedName, at: Step) -> Resolved<'_> {
        self.resolve(Namespace::Type, name, at)
    }

    /// What the schema name `name` denotes at `at`.
    pub fn schema(&self, name: &str, at: Step) -> Resolved<'_> {
        self.resolve(Namespace::Schema, &QualifiedName::new(name), at)
    }

    /// What the function name `name` denotes at `at` (any overload).
    pub fn function(&self, name: &QualifiedName, at: Step) -> Resolved<'_> {
        self.resolve(Namespace::Function, name, at)
    }

    /// What `name` in `namespace` denotes at `at`.
    pub fn resolve(&self, namespace: Namespace, name: &QualifiedName, at: Step) -> Resolved<'_> {
        let ids = self.ids_named(namespace, &name.name);
        if let Some(&i) = ids
            .iter()
            .filter(|&&i| {
                let r = &self.objects[i];
                r.alive_at(at) && same_name(r.name_at(at), name)
            })
            .max()
        {
            return Resolved::Tracked(ObjectId(i), &self.objects[i]);
        }
        // The name was held by something the migration knows, which is gone now: free.
        let freed = ids
            .iter()
            .filter_map(|&i| self.freed_at(&self.objects[i], name, at))
            .max();
        if let Some(by) = freed {
            return Resolved::Free { by };
        }
        if let Some(schema) = &name.schema
            && let Some((by, _)) = self
                .dropped_schemas
                .iter()
                .rev()
                .find(|(s, n)| *s < at && n == schema)
        {
            return Resolved::Free { by: *by };
        }
        if let Some(c) = self
            .cascades
            .iter()
            .rev()
            .find(|c| c.at < at && cascade_reaches(c, namespace, name))
        {
            return Resolved::MaybeDropped {
                by: c.at,
                cascade_from: c.from.clone(),
            };
        }
        Resolved::Shard(name.clone())
    }

    /// When `r` (not alive under `name` at `at`) stopped having `name` before `at`: its drop,
    /// or the rename away. `None` if it never had the name before `at`.
    fn freed_at(&self, r: &ObjectRecord, name: &QualifiedName, at: Step) -> Option<Step> {
        let mut held_from: Option<Option<Step>> = None;
        let mut freed: Option<Step> = None;
        for (from, n) in &r.names {
            if from.is_some_and(|f| f >= at) {
                break;
            }
            if same_name(n, name) {
                held_from = Some(*from);
                freed = None;
            } else if held_from.is_some() && freed.is_none() {
                freed = *from;
            }
        }
        held_from?;
        // A rename's step is the step the new name takes effect after; the name is free after it.
        freed.or(r.dropped.filter(|d| *d < at))
    }

    fn ids_named(&self, namespace: Namespace, name: &str) -> &[usize] {
        self.by_name
            .get(&(namespace, name.to_string()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// What column `column` of the relation `table` (as named at `at`) denotes at `at`.
    pub fn column(&self, table: &QualifiedName, column: &str, at: Step) -> ColumnResolved<'_> {
        match self.relation(table, at) {
            Resolved::Tracked(id, rec) => self.column_of(id, rec, column, at),
            Resolved::Shard(t) => ColumnResolved::Shard {
                table: t,
                column: column.to_string(),
            },
            Resolved::Free { .. } | Resolved::MaybeDropped { .. } => ColumnResolved::Unknown,
        }
    }

    fn column_of<'s>(
        &'s self,
        id: ObjectId,
        rec: &'s ObjectRecord,
        column: &str,
        at: Step,
    ) -> ColumnResolved<'s> {
        let cols = self.columns_of.get(&id.0).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(&c) = cols
            .iter()
            .filter(|&&c| {
                let r = &self.columns[c];
                r.alive_at(at) && r.name_at(at) == column
            })
            .max()
        {
            return ColumnResolved::Tracked(&self.columns[c]);
        }
        let freed = cols
            .iter()
            .filter_map(|&c| column_freed_at(&self.columns[c], column, at))
            .max();
        if let Some(by) = freed {
            return ColumnResolved::Free { by };
        }
        match &rec.origin {
            Origin::Shard(t) => ColumnResolved::Shard {
                table: t.clone(),
                column: column.to_string(),
            },
            Origin::Created(_) if rec.columns_known => ColumnResolved::Missing,
            Origin::Created(_) => ColumnResolved::Unknown,
        }
    }

    /// Every column record of a tracked table.
    pub fn columns_of(&self, table: ObjectId) -> impl Iterator<Item = &ColumnRecord> {
        self.columns_of
            .get(&table.0)
            .into_iter()
            .flatten()
            .map(|&c| &self.columns[c])
    }

    /// The constraint named `name` on `table` (as named at `at`), alive at `at`, if the
    /// migration added or touched it.
    pub fn constraint(
        &self,
        table: &QualifiedName,
        name: &str,
        at: Step,
    ) -> Option<&ConstraintRecord> {
        let Resolved::Tracked(id, _) = self.relation(table, at) else {
            return None;
        };
        self.constraints_of(id)
            .filter(|c| c.alive_at(at) && c.name_at(at) == Some(name))
            .last()
    }

    /// Whether a constraint named `name` on `table` was dropped or renamed away before `at`
    /// (so a new constraint of that name cannot clash with the shard's).
    pub fn constraint_name_freed(&self, table: &QualifiedName, name: &str, at: Step) -> bool {
        let Resolved::Tracked(id, _) = self.relation(table, at) else {
            return false;
        };
        self.constraints_of(id).any(|c| {
            // A constraint added at or after `at` held no name before it.
            c.added.is_none_or(|a| a < at)
                && c.names
                    .iter()
                    .any(|(from, n)| from.is_none_or(|f| f < at) && n.as_deref() == Some(name))
                && !(c.alive_at(at) && c.name_at(at) == Some(name))
        })
    }

    /// Every constraint record of a tracked table.
    pub fn constraints_of(&self, table: ObjectId) -> impl Iterator<Item = &ConstraintRecord> {
        self.constraints_of
            .get(&table.0)
            .into_iter()
            .flatten()
            .map(|&c| &self.constraints[c])
    }

    /// Whether a validated `CHECK` proving `column IS NOT NULL` holds on `table` before `at`
    /// (PostgreSQL 12+ then skips the scan of `SET NOT NULL`).
    pub fn not_null_proven(&self, table: &QualifiedName, column: &str, at: Step) -> bool {
        let Resolved::Tracked(id, _) = self.relation(table, at) else {
            return false;
        };
        self.constraints_of(id).any(|c| {
            c.validated_before(at)
                && matches!(&c.def, Some(ConstraintDef { kind: ConstraintKind::Check { expr }, .. })
                    if crate::check_proves_not_null(expr, column))
        })
    }

    /// Data changes of `table` (as named at `at`) before `at`, in order.
    pub fn data_changes_before(
        &self,
        table: &QualifiedName,
        at: Step,
    ) -> impl Iterator<Item = (Step, DataChange)> + '_ {
        let id = match self.relation(table, at) {
            Resolved::Tracked(id, _) => Some(id.0),
            _ => None,
        };
        self.data_changes
            .iter()
            .filter(move |(s, t, _)| *s < at && Some(*t) == id)
            .map(|(s, _, d)| (*s, *d))
    }

    /// The step of the `DELETE` without `WHERE` or `TRUNCATE` that left `table` (as named at
    /// `at`) empty before `at`, when nothing since may have put rows back: no `INSERT` into it
    /// and no opaque code (`DO`) in between. `UPDATE` and `DELETE` keep an empty table empty.
    /// Whether concurrent sessions could have inserted meanwhile is the caller's question (the
    /// same transaction block).
    pub fn emptied_before(&self, table: &QualifiedName, at: Step) -> Option<Step> {
        let mut emptied = None;
        for (step, change) in self.data_changes_before(table, at) {
            match change {
                DataChange::Delete { has_where: false } | DataChange::Truncate => {
                    emptied = Some(step)
                }
                DataChange::Insert => emptied = None,
                DataChange::Update { .. } | DataChange::Delete { .. } => {}
            }
        }
        let emptied = emptied?;
        self.opaque_before(at)
            .all(|s| s < emptied)
            .then_some(emptied)
    }

    /// Whether two names at two steps denote the same relation (following renames).
    pub fn same_relation(
        &self,
        a: &QualifiedName,
        a_at: Step,
        b: &QualifiedName,
        b_at: Step,
    ) -> bool {
        match (self.relation(a, a_at), self.relation(b, b_at)) {
            (Resolved::Tracked(x, _), Resolved::Tracked(y, _)) => x == y,
            (Resolved::Shard(x), Resolved::Shard(y)) => same_name(&x, &y),
            _ => false,
        }
    }

    /// Whether a shard object named `name` may have been dropped before `at` along with a shard
    /// relation (or column) the migration dropped — without CASCADE, PostgreSQL drops a table's
    /// indexes, constraints, triggers and owned sequences with it. Ask it before checking that a
    /// name the migration creates is still free on the shard: the index of a dropped
    /// materialized view no longer holds its name. Returns the latest such drop in the same
    /// schema (an index lives in its table's schema).
    pub fn dependent_maybe_dropped(&self, name: &QualifiedName, at: Step) -> Option<Step> {
        self.implicit_drops
            .iter()
            .rev()
            .find(|(s, t)| {
                *s < at
                    && match (&t.schema, &name.schema) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    }
            })
            .map(|(s, _)| *s)
    }

    /// Steps of opaque code (`DO` blocks) before `at`: what they change is unknown.
    pub fn opaque_before(&self, at: Step) -> impl Iterator<Item = Step> + '_ {
        self.opaque.iter().copied().filter(move |s| *s < at)
    }
}

pub(crate) fn column_freed_at(c: &ColumnRecord, column: &str, at: Step) -> Option<Step> {
    let mut held = false;
    let mut freed: Option<Step> = None;
    for (from, n) in &c.names {
        if from.is_some_and(|f| f >= at) {
            break;
        }
        if n == column {
            held = true;
            freed = None;
        } else if held && freed.is_none() {
            freed = *from;
        }
    }
    if !held {
        return None;
    }
    freed.or(c.dropped.filter(|d| *d < at))
}

/// Whether a cascade may have dropped the shard's object `name` in `namespace`: dependents of a
/// relation are views, materialized views and (through columns of the type) nothing we name
/// here; dependents of a type are columns and other types; of a schema, everything in it (handled
/// as a drop). Tables and indexes of the shard are not dropped by a cascade from another
/// relation, only their constraints.
fn cascade_reaches(c: &Cascade, namespace: Namespace, name: &QualifiedName) -> bool {
    // Dependents may live in any schema: the name's schema does not narrow it.
    let _ = name;
    matches!(
        (c.namespace, namespace),
        (Namespace::Relation, Namespace::Relation)
            | (Namespace::Type, Namespace::Type | Namespace::Relation)
            | (Namespace::Function, _)
    )
}

//! Read-only probes: what the shard's *data* and *catalog* say about each operation.
//!
//! [`plan`] walks the migration's operations in order (pure, no IO) and yields a [`ProbePlan`];
//! [`run_probes`] executes it on one shard inside a single
//! `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY` transaction with `SET LOCAL`
//! `statement_timeout` / `lock_timeout`, one `SAVEPOINT` per probe (so a failing probe does not
//! abort the others), and always ends it with `ROLLBACK`.
//!
//! The walk tracks what earlier statements of the same migration did, because statements run in
//! order: a table created by the migration is empty (no data probes), a column added with a
//! non-NULL default has no NULLs, a renamed table/column is probed under its name *on the shard*,
//! a `NOT VALID` constraint that is validated later is probed at the `VALIDATE`, and a column
//! that an earlier `UPDATE` backfills is still probed but marked as not conclusive.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use migration_parser::{ColumnDef, ConstraintKind, Migration, Operation, QualifiedName};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::conn::is_connection_error;
use crate::ident::{quote_ident, quote_literal, quote_qualified};

pub use evidence::{MAX_SAMPLES, ProbeError, ProbeKind, ProbeResult, TableStats};

/// A data probe before it is bound to a shard.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Check {
    Orphans {
        columns: Vec<String>,
        ref_table: QualifiedName,
        ref_columns: Vec<String>,
        ref_created: bool,
    },
    /// `VALIDATE CONSTRAINT name` of a constraint that exists on the shard: definition looked up.
    ValidateExisting {
        name: String,
    },
    Nulls {
        column: String,
    },
    AllRowsNull {
        column: String,
    },
    Duplicates {
        keys: Vec<String>,
        predicate: Option<String>,
        nulls_not_distinct: bool,
    },
    Expression {
        expr: String,
    },
    Cast {
        column: String,
        new_type: String,
        using: Option<String>,
    },
}

/// One planned data probe.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlannedProbe {
    pub statement_index: usize,
    pub kind: ProbeKind,
    /// The table's name on the shard (renames undone).
    pub table: QualifiedName,
    pub column: Option<String>,
    pub constraint: Option<String>,
    pub check: Check,
    pub would_fail: bool,
    pub skipped: Option<String>,
    pub note: Option<String>,
}

/// What an existence reference expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ObjKind {
    Table,
    Column,
    Constraint,
    /// Any relation name in the schema (index names share the relation namespace).
    Relation,
    Index,
}

impl ObjKind {
    fn as_str(self) -> &'static str {
        match self {
            ObjKind::Table => "table",
            ObjKind::Column => "column",
            ObjKind::Constraint => "constraint",
            ObjKind::Relation => "relation",
            ObjKind::Index => "index",
        }
    }
}

/// A reference to a catalog object the statement needs to exist (or not to exist).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ObjRef {
    pub statement_index: usize,
    pub kind: ObjKind,
    /// Table (for tables, columns, constraints) or the schema-carrying name (relations, indexes).
    pub table: QualifiedName,
    /// Column, constraint or index name (empty for tables).
    pub name: String,
    pub must_exist: bool,
}

/// The probes a migration needs, independent of any shard.
#[derive(Debug, Clone, Default)]
pub struct ProbePlan {
    pub(crate) probes: Vec<PlannedProbe>,
    pub(crate) refs: Vec<ObjRef>,
    /// Tables (as named on the shard) whose sizes are wanted.
    pub(crate) tables: BTreeSet<QualifiedName>,
}

impl ProbePlan {
    /// Number of data probes (orphans, NULLs, duplicates, checks, casts) in the plan.
    pub fn data_probe_count(&self) -> usize {
        self.probes.len()
    }
    /// Number of existence checks.
    pub fn reference_count(&self) -> usize {
        self.refs.len()
    }
    /// Tables whose size is measured, as named on the shard (unqualified = the shard's schema).
    pub fn tables(&self) -> Vec<String> {
        self.tables.iter().map(|t| t.to_string()).collect()
    }
}

type TKey = QualifiedName;

/// Migration state as the walk goes statement by statement.
#[derive(Default)]
struct Walk {
    /// Tables created by the migration (current names).
    created_tables: BTreeSet<TKey>,
    /// current name → name on the shard.
    table_alias: HashMap<TKey, TKey>,
    /// Tables dropped by the migration (names on the shard).
    dropped_tables: BTreeSet<TKey>,
    /// (shard table, current column) → column added by the migration.
    added_columns: HashMap<(TKey, String), ColumnDef>,
    /// (shard table, current column) → column name on the shard.
    column_alias: HashMap<(TKey, String), String>,
    /// (shard table, column) dropped.
    dropped_columns: BTreeSet<(TKey, String)>,
    /// (shard table, column) → statement index of an UPDATE assigning it.
    backfilled: HashMap<(TKey, String), usize>,
    /// shard table → statement index of a DELETE/UPDATE/INSERT on it.
    data_changed: HashMap<TKey, usize>,
    /// (shard table, constraint) created by the migration → definition.
    created_constraints: HashMap<(TKey, String), migration_parser::ConstraintDef>,
    /// (schema option, relation name) created by the migration (indexes, tables).
    created_relations: BTreeSet<TKey>,
    dropped_constraints: BTreeSet<(TKey, String)>,
}

impl Walk {
    fn shard_table(&self, t: &QualifiedName) -> TKey {
        self.table_alias
            .get(t)
            .cloned()
            .unwrap_or_else(|| t.clone())
    }
    fn is_created(&self, shard_t: &TKey) -> bool {
        self.created_tables.contains(shard_t)
    }
    fn shard_column(&self, t: &TKey, c: &str) -> String {
        self.column_alias
            .get(&(t.clone(), c.to_string()))
            .cloned()
            .unwrap_or_else(|| c.to_string())
    }
    fn added(&self, t: &TKey, c: &str) -> Option<&ColumnDef> {
        self.added_columns.get(&(t.clone(), c.to_string()))
    }
}

fn with_schema_of(t: &QualifiedName, name: &str) -> QualifiedName {
    QualifiedName {
        schema: t.schema.clone(),
        name: name.to_string(),
    }
}

/// Whether a column default makes every existing row non-NULL.
fn default_is_non_null(c: &ColumnDef) -> bool {
    if c.identity || c.serial || c.generated_stored {
        return true;
    }
    match &c.default {
        Some(d) => !d.sql.trim().eq_ignore_ascii_case("null"),
        None => false,
    }
}

fn ref_table_key(t: &QualifiedName, from: &QualifiedName) -> QualifiedName {
    // An unqualified referenced table resolves in the same schema as the referencing one when
    // that one is qualified; otherwise both use the shard schema.
    if t.schema.is_none() && from.schema.is_some() {
        with_schema_of(from, &t.name)
    } else {
        t.clone()
    }
}

/// Plan the probes for `migration` (pure; no IO). See the module docs for how earlier
/// statements of the same migration are taken into account.
pub fn plan(migration: &Migration) -> ProbePlan {
    let mut plan = ProbePlan::default();
    let mut w = Walk::default();

    // Pre-pass: which constraints get VALIDATEd later (by table as written, name).
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
        let si = st.index;
        let sql_upper = st.sql.to_ascii_uppercase();
        for op in &st.operations {
            match op {
                Operation::CreateTable {
                    table,
                    if_not_exists,
                    ..
                } => {
                    if !*if_not_exists && !w.dropped_tables.contains(table) {
                        plan.refs.push(ObjRef {
                            statement_index: si,
                            kind: ObjKind::Relation,
                            table: table.clone(),
                            name: table.name.clone(),
                            must_exist: false,
                        });
                    }
                    w.created_tables.insert(table.clone());
                    w.created_relations.insert(table.clone());
                }
                Operation::DropTable {
                    table, if_exists, ..
                } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, !*if_exists);
                    w.dropped_tables.insert(t.clone());
                    w.created_tables.remove(&t);
                }
                Operation::RenameTable { table, new_name } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                    let new = with_schema_of(table, new_name);
                    plan.refs.push(ObjRef {
                        statement_index: si,
                        kind: ObjKind::Relation,
                        table: new.clone(),
                        name: new_name.clone(),
                        must_exist: false,
                    });
                    if w.created_tables.remove(&t) {
                        w.created_tables.insert(new.clone());
                    }
                    w.table_alias.insert(new, t);
                }
                Operation::AddColumn {
                    table,
                    column,
                    if_not_exists,
                } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                    let created = w.is_created(&t);
                    if !created
                        && !*if_not_exists
                        && !w
                            .dropped_columns
                            .contains(&(t.clone(), column.name.clone()))
                    {
                        plan.refs.push(ObjRef {
                            statement_index: si,
                            kind: ObjKind::Column,
                            table: t.clone(),
                            name: column.name.clone(),
                            must_exist: false,
                        });
                    }
                    if !created && column.not_null && !default_is_non_null(column) {
                        plan.probes.push(PlannedProbe {
                            statement_index: si,
                            kind: ProbeKind::NotNullViolations,
                            table: t.clone(),
                            column: Some(column.name.clone()),
                            constraint: None,
                            check: Check::AllRowsNull {
                                column: column.name.clone(),
                            },
                            would_fail: true,
                            skipped: None,
                            note: Some("NOT NULL column added without a default: every existing row would be NULL".into()),
                        });
                    }
                    w.added_columns
                        .insert((t, column.name.clone()), column.clone());
                }
                Operation::DropColumn {
                    table,
                    column,
                    if_exists,
                    ..
                } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                    let c = w.shard_column(&t, column);
                    if !*if_exists && !w.is_created(&t) && w.added(&t, column).is_none() {
                        push_col_ref(&mut plan, si, &t, &c);
                    }
                    w.dropped_columns.insert((t, c));
                }
                Operation::RenameColumn {
                    table,
                    column,
                    new_name,
                } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                    let c = w.shard_column(&t, column);
                    if !w.is_created(&t) && w.added(&t, column).is_none() {
                        push_col_ref(&mut plan, si, &t, &c);
                        plan.refs.push(ObjRef {
                            statement_index: si,
                            kind: ObjKind::Column,
                            table: t.clone(),
                            name: new_name.clone(),
                            must_exist: false,
                        });
                    }
                    if let Some(def) = w.added_columns.remove(&(t.clone(), column.clone())) {
                        w.added_columns.insert((t.clone(), new_name.clone()), def);
                    }
                    w.column_alias.insert((t, new_name.clone()), c);
                }
                Operation::AlterColumnType {
                    table,
                    column,
                    new_type,
                    using,
                    ..
                } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                    let c = w.shard_column(&t, column);
                    let skipped = skip_reason(&w, &t, column);
                    if skipped.is_none() {
                        push_col_ref(&mut plan, si, &t, &c);
                    }
                    plan.probes.push(PlannedProbe {
                        statement_index: si,
                        kind: ProbeKind::CastFailures,
                        table: t.clone(),
                        column: Some(c.clone()),
                        constraint: None,
                        check: Check::Cast {
                            column: c,
                            new_type: new_type.clone(),
                            using: using.clone(),
                        },
                        would_fail: true,
                        skipped,
                        note: data_note(&w, &t, None),
                    });
                }
                Operation::SetNotNull { table, column } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                    let c = w.shard_column(&t, column);
                    let mut skipped = skip_reason(&w, &t, column);
                    if let Some(def) = w.added(&t, column) {
                        skipped = Some(if default_is_non_null(def) {
                            "column added earlier in the migration with a non-NULL default: no NULLs".into()
                        } else {
                            "column added earlier in the migration without a default: rehearsal decides".into()
                        });
                    } else if !w.is_created(&t) {
                        push_col_ref(&mut plan, si, &t, &c);
                    }
                    let note = w
                        .backfilled
                        .get(&(t.clone(), c.clone()))
                        .map(|i| format!("column is backfilled by statement {}: count is before the backfill", i + 1))
                        .or_else(|| data_note(&w, &t, None));
                    let would_fail = note.is_none();
                    plan.probes.push(PlannedProbe {
                        statement_index: si,
                        kind: ProbeKind::NotNullViolations,
                        table: t,
                        column: Some(c.clone()),
                        constraint: None,
                        check: Check::Nulls { column: c },
                        would_fail,
                        skipped,
                        note,
                    });
                }
                Operation::DropNotNull { table, column }
                | Operation::SetDefault { table, column, .. }
                | Operation::DropDefault { table, column } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                    if !w.is_created(&t) && w.added(&t, column).is_none() {
                        let c = w.shard_column(&t, column);
                        push_col_ref(&mut plan, si, &t, &c);
                    }
                }
                Operation::AddConstraint { table, constraint } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                    let created = w.is_created(&t);
                    if let Some(name) = &constraint.name {
                        if !created && !w.dropped_constraints.contains(&(t.clone(), name.clone())) {
                            plan.refs.push(ObjRef {
                                statement_index: si,
                                kind: ObjKind::Constraint,
                                table: t.clone(),
                                name: name.clone(),
                                must_exist: false,
                            });
                        }
                        w.created_constraints
                            .insert((t.clone(), name.clone()), constraint.clone());
                    }
                    let validated_at = constraint
                        .name
                        .as_ref()
                        .and_then(|n| validated_later.get(&(table.clone(), n.clone())).copied());
                    plan_constraint(
                        &mut plan,
                        &w,
                        si,
                        table,
                        &t,
                        constraint.name.clone(),
                        &constraint.kind,
                        constraint.not_valid,
                        validated_at,
                        &sql_upper,
                    );
                }
                Operation::ValidateConstraint { table, name } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                    match w
                        .created_constraints
                        .get(&(t.clone(), name.clone()))
                        .cloned()
                    {
                        Some(_) => {
                            // probed at the ADD CONSTRAINT ... NOT VALID (would_fail set there).
                        }
                        None => {
                            if !w.is_created(&t) {
                                plan.refs.push(ObjRef {
                                    statement_index: si,
                                    kind: ObjKind::Constraint,
                                    table: t.clone(),
                                    name: name.clone(),
                                    must_exist: true,
                                });
                                plan.probes.push(PlannedProbe {
                                    statement_index: si,
                                    kind: ProbeKind::CheckViolations,
                                    table: t.clone(),
                                    column: None,
                                    constraint: Some(name.clone()),
                                    check: Check::ValidateExisting { name: name.clone() },
                                    would_fail: data_note(&w, &t, None).is_none(),
                                    skipped: None,
                                    note: data_note(&w, &t, None),
                                });
                            }
                        }
                    }
                }
                Operation::DropConstraint {
                    table,
                    name,
                    if_exists,
                    ..
                } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                    if !*if_exists
                        && !w.is_created(&t)
                        && !w
                            .created_constraints
                            .contains_key(&(t.clone(), name.clone()))
                    {
                        plan.refs.push(ObjRef {
                            statement_index: si,
                            kind: ObjKind::Constraint,
                            table: t.clone(),
                            name: name.clone(),
                            must_exist: true,
                        });
                    }
                    w.created_constraints.remove(&(t.clone(), name.clone()));
                    w.dropped_constraints.insert((t, name.clone()));
                }
                Operation::RenameConstraint { table, name, .. } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                    if !w.is_created(&t)
                        && !w
                            .created_constraints
                            .contains_key(&(t.clone(), name.clone()))
                    {
                        plan.refs.push(ObjRef {
                            statement_index: si,
                            kind: ObjKind::Constraint,
                            table: t.clone(),
                            name: name.clone(),
                            must_exist: true,
                        });
                    }
                }
                Operation::CreateIndex {
                    name,
                    table,
                    columns,
                    unique,
                    if_not_exists,
                    predicate,
                    ..
                } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                    if let Some(n) = name {
                        let rel = with_schema_of(table, n);
                        if !*if_not_exists && !w.created_relations.contains(&rel) {
                            plan.refs.push(ObjRef {
                                statement_index: si,
                                kind: ObjKind::Relation,
                                table: rel.clone(),
                                name: n.clone(),
                                must_exist: false,
                            });
                        }
                        w.created_relations.insert(rel);
                    }
                    if *unique {
                        let nnd = sql_upper.contains("NULLS NOT DISTINCT");
                        let keys: Vec<String> = columns.iter().map(|c| key_sql(c)).collect();
                        let skipped = if w.is_created(&t) {
                            Some("table created by the migration: empty".to_string())
                        } else {
                            None
                        };
                        plan.probes.push(PlannedProbe {
                            statement_index: si,
                            kind: ProbeKind::UniqueViolations,
                            table: t.clone(),
                            column: None,
                            constraint: name.clone(),
                            check: Check::Duplicates {
                                keys,
                                predicate: predicate.clone(),
                                nulls_not_distinct: nnd,
                            },
                            would_fail: data_note(&w, &t, None).is_none(),
                            skipped,
                            note: data_note(&w, &t, None),
                        });
                    }
                }
                Operation::DropIndex {
                    name, if_exists, ..
                } if !*if_exists && !w.created_relations.contains(name) => {
                    plan.refs.push(ObjRef {
                        statement_index: si,
                        kind: ObjKind::Index,
                        table: name.clone(),
                        name: name.name.clone(),
                        must_exist: true,
                    });
                }
                Operation::RenameIndex { name, new_name } => {
                    if !w.created_relations.contains(name) {
                        plan.refs.push(ObjRef {
                            statement_index: si,
                            kind: ObjKind::Index,
                            table: name.clone(),
                            name: name.name.clone(),
                            must_exist: true,
                        });
                    }
                    w.created_relations.insert(with_schema_of(name, new_name));
                }
                Operation::Truncate { tables, .. } => {
                    for table in tables {
                        let t = w.shard_table(table);
                        touch_table(&mut plan, &w, si, &t, true);
                        w.data_changed.entry(t).or_insert(si);
                    }
                }
                Operation::Update { table, columns, .. } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                    for c in columns {
                        let sc = w.shard_column(&t, c);
                        w.backfilled.entry((t.clone(), sc)).or_insert(si);
                    }
                    w.data_changed.entry(t).or_insert(si);
                }
                Operation::Delete { table, .. } | Operation::Insert { table, .. } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                    w.data_changed.entry(t).or_insert(si);
                }
                Operation::AlterTableOther { table, .. }
                | Operation::CreateTrigger { table, .. } => {
                    let t = w.shard_table(table);
                    touch_table(&mut plan, &w, si, &t, true);
                }
                Operation::LockTable { tables, .. } => {
                    for table in tables {
                        let t = w.shard_table(table);
                        touch_table(&mut plan, &w, si, &t, true);
                    }
                }
                _ => {}
            }
        }
    }
    plan
}

/// Turn an index key as written into a GROUP BY expression: plain column names are quoted,
/// quoted names kept, expressions kept verbatim (the migration runs them anyway); a trailing
/// `ASC`/`DESC`/`NULLS FIRST|LAST` is dropped.
fn key_sql(k: &str) -> String {
    let mut s = k.trim().to_string();
    loop {
        let up = s.to_ascii_uppercase();
        let mut changed = false;
        for suffix in [" NULLS FIRST", " NULLS LAST", " ASC", " DESC"] {
            if up.ends_with(suffix) {
                s.truncate(s.len() - suffix.len());
                s = s.trim_end().to_string();
                changed = true;
                break;
            }
        }
        if !changed {
            break;
        }
    }
    if is_plain_ident(&s) {
        quote_ident(&s)
    } else {
        s
    }
}

fn is_plain_ident(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_lowercase() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
}

fn push_col_ref(plan: &mut ProbePlan, si: usize, t: &TKey, c: &str) {
    plan.refs.push(ObjRef {
        statement_index: si,
        kind: ObjKind::Column,
        table: t.clone(),
        name: c.to_string(),
        must_exist: true,
    });
}

/// Record that `t` (shard name) is touched: size wanted, and it must exist unless the migration
/// created it.
fn touch_table(plan: &mut ProbePlan, w: &Walk, si: usize, t: &TKey, must_exist: bool) {
    if w.is_created(t) {
        return;
    }
    plan.tables.insert(t.clone());
    if must_exist
        && !w.dropped_tables.contains(t)
        && !plan
            .refs
            .iter()
            .any(|r| r.kind == ObjKind::Table && &r.table == t)
    {
        plan.refs.push(ObjRef {
            statement_index: si,
            kind: ObjKind::Table,
            table: t.clone(),
            name: String::new(),
            must_exist: true,
        });
    }
}

fn skip_reason(w: &Walk, t: &TKey, column_as_written: &str) -> Option<String> {
    if w.is_created(t) {
        Some("table created by the migration: empty".into())
    } else if w.added(t, column_as_written).is_some() {
        Some("column added earlier in the migration".into())
    } else {
        None
    }
}

fn data_note(w: &Walk, t: &TKey, _col: Option<&str>) -> Option<String> {
    w.data_changed.get(t).map(|i| {
        format!(
            "statement {} changes this table's rows first: count is before that change",
            i + 1
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn plan_constraint(
    plan: &mut ProbePlan,
    w: &Walk,
    si: usize,
    table_as_written: &QualifiedName,
    t: &TKey,
    name: Option<String>,
    kind: &ConstraintKind,
    not_valid: bool,
    validated_at: Option<usize>,
    sql_upper: &str,
) {
    let created = w.is_created(t);
    let empty_skip = || -> Option<String> {
        if created {
            Some("table created by the migration: empty".into())
        } else {
            None
        }
    };
    let base_note = data_note(w, t, None);
    // NOT VALID constraints only fail later, at VALIDATE (if any).
    let (would_fail, note) = if not_valid {
        match validated_at {
            Some(v) => (
                base_note.is_none(),
                Some(format!(
                    "NOT VALID: existing rows are checked by VALIDATE in statement {}",
                    v + 1
                )),
            ),
            None => (
                false,
                Some(
                    "NOT VALID and never validated in this migration: existing rows stay unchecked"
                        .into(),
                ),
            ),
        }
    } else {
        (base_note.is_none(), base_note.clone())
    };
    match kind {
        ConstraintKind::ForeignKey {
            columns,
            ref_table,
            ref_columns,
            ..
        } => {
            let rt_written = ref_table_key(ref_table, table_as_written);
            let rt = w.shard_table(&rt_written);
            let ref_created = w.is_created(&rt);
            if !ref_created {
                plan.tables.insert(rt.clone());
                if !plan
                    .refs
                    .iter()
                    .any(|r| r.kind == ObjKind::Table && r.table == rt)
                {
                    plan.refs.push(ObjRef {
                        statement_index: si,
                        kind: ObjKind::Table,
                        table: rt.clone(),
                        name: String::new(),
                        must_exist: true,
                    });
                }
                for rc in ref_columns {
                    if w.added(&rt, rc).is_none() {
                        push_col_ref(plan, si, &rt, &w.shard_column(&rt, rc));
                    }
                }
            }
            let mut skipped = empty_skip();
            let mut cols = Vec::new();
            for c in columns {
                if let Some(def) = w.added(t, c) {
                    if def.default.is_none() {
                        skipped.get_or_insert_with(|| {
                            "column added earlier in the migration without a default: all NULL"
                                .into()
                        });
                    } else {
                        skipped.get_or_insert_with(|| {
                            "column added earlier in the migration: rehearsal decides".into()
                        });
                    }
                } else if !created {
                    push_col_ref(plan, si, t, &w.shard_column(t, c));
                }
                cols.push(w.shard_column(t, c));
            }
            let ref_cols = ref_columns.iter().map(|c| w.shard_column(&rt, c)).collect();
            plan.probes.push(PlannedProbe {
                statement_index: validated_at.filter(|_| not_valid).unwrap_or(si),
                kind: ProbeKind::FkOrphans,
                table: t.clone(),
                column: Some(cols.join(", ")),
                constraint: name,
                check: Check::Orphans {
                    columns: cols,
                    ref_table: rt,
                    ref_columns: ref_cols,
                    ref_created,
                },
                would_fail,
                skipped,
                note,
            });
        }
        ConstraintKind::Check { expr } => {
            plan.probes.push(PlannedProbe {
                statement_index: validated_at.filter(|_| not_valid).unwrap_or(si),
                kind: ProbeKind::CheckViolations,
                table: t.clone(),
                column: None,
                constraint: name,
                check: Check::Expression { expr: expr.clone() },
                would_fail,
                skipped: empty_skip(),
                note,
            });
        }
        ConstraintKind::Unique {
            columns,
            using_index,
            nulls_not_distinct,
        } => {
            if using_index.is_some() || columns.is_empty() {
                return;
            }
            let mut skipped = empty_skip();
            for c in columns {
                if w.added(t, c).is_some() {
                    skipped.get_or_insert_with(|| {
                        "column added earlier in the migration: rehearsal decides".into()
                    });
                } else if !created {
                    push_col_ref(plan, si, t, &w.shard_column(t, c));
                }
            }
            plan.probes.push(PlannedProbe {
                statement_index: si,
                kind: ProbeKind::UniqueViolations,
                table: t.clone(),
                column: Some(columns.join(", ")),
                constraint: name,
                check: Check::Duplicates {
                    keys: columns
                        .iter()
                        .map(|c| quote_ident(&w.shard_column(t, c)))
                        .collect(),
                    predicate: None,
                    nulls_not_distinct: *nulls_not_distinct
                        || sql_upper.contains("NULLS NOT DISTINCT"),
                },
                would_fail: base_note.is_none(),
                skipped,
                note: base_note.clone(),
            });
        }
        ConstraintKind::PrimaryKey {
            columns,
            using_index,
        } => {
            if using_index.is_some() || columns.is_empty() {
                return;
            }
            let mut skipped = empty_skip();
            for c in columns {
                if w.added(t, c).is_some() {
                    skipped.get_or_insert_with(|| {
                        "column added earlier in the migration: rehearsal decides".into()
                    });
                } else if !created {
                    push_col_ref(plan, si, t, &w.shard_column(t, c));
                }
            }
            for c in columns {
                let sc = w.shard_column(t, c);
                plan.probes.push(PlannedProbe {
                    statement_index: si,
                    kind: ProbeKind::NotNullViolations,
                    table: t.clone(),
                    column: Some(sc.clone()),
                    constraint: name.clone(),
                    check: Check::Nulls { column: sc },
                    would_fail: base_note.is_none(),
                    skipped: skipped.clone(),
                    note: base_note.clone(),
                });
            }
            plan.probes.push(PlannedProbe {
                statement_index: si,
                kind: ProbeKind::UniqueViolations,
                table: t.clone(),
                column: Some(columns.join(", ")),
                constraint: name,
                check: Check::Duplicates {
                    keys: columns
                        .iter()
                        .map(|c| quote_ident(&w.shard_column(t, c)))
                        .collect(),
                    predicate: None,
                    nulls_not_distinct: false,
                },
                would_fail: base_note.is_none(),
                skipped,
                note: base_note,
            });
        }
        ConstraintKind::Exclusion { .. } => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------------------------

/// Limits for a probe transaction.
#[derive(Debug, Clone, Copy)]
pub struct ProbeLimits {
    /// `statement_timeout` for every probe query.
    pub statement_timeout: Duration,
    /// `lock_timeout` for every probe query (probes take only ACCESS SHARE locks, which wait
    /// behind an ACCESS EXCLUSIVE holder).
    pub lock_timeout: Duration,
    /// Server major version (16+ uses `pg_input_is_valid`).
    pub server_version: u32,
}

/// Outcome of probing one shard.
#[derive(Debug, Clone, Default)]
pub struct ShardProbes {
    /// Every probe result, in plan order (existence failures, then data probes, then sizes).
    pub results: Vec<ProbeResult>,
    /// Sizes of the touched tables.
    pub tables: Vec<TableStats>,
    /// Results of the custom probes, by name.
    pub custom: std::collections::BTreeMap<String, crate::CustomProbeRows>,
}

fn resolve(q: &QualifiedName, shard_schema: &str) -> (String, String) {
    (
        q.schema.clone().unwrap_or_else(|| shard_schema.to_string()),
        q.name.clone(),
    )
}

/// A failure that ends the shard's probing: the connection is gone (→ unreachable).
#[derive(Debug)]
pub(crate) struct ConnectionLost(pub sqlx::Error);

pub(crate) fn lost_or<T>(
    e: sqlx::Error,
    f: impl FnOnce(sqlx::Error) -> T,
) -> Result<T, ConnectionLost> {
    if is_connection_error(&e) {
        Err(ConnectionLost(e))
    } else {
        Ok(f(e))
    }
}

pub(crate) fn probe_error(e: sqlx::Error) -> ProbeError {
    let (sqlstate, message) = crate::conn::sqlstate_and_message(&e);
    ProbeError { sqlstate, message }
}

pub(crate) async fn exec(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Run `plan` and the `custom` probes on shard `shard_id` (tables in `schema`) over `conn`.
/// Opens and always ends one read-only transaction. Returns `Err` only when the connection is
/// lost.
pub(crate) async fn run_probes(
    conn: &mut PgConnection,
    shard_id: &str,
    schema: &str,
    plan: &ProbePlan,
    custom: &[crate::CustomProbe],
    limits: ProbeLimits,
    cancel: &crate::CancelToken,
) -> Result<ShardProbes, ConnectionLost> {
    let r = run_in_tx(conn, shard_id, schema, plan, limits, cancel).await;
    let r = match r {
        Ok(mut v) if !custom.is_empty() => {
            crate::custom::run_custom_probes(conn, schema, custom, cancel)
                .await
                .map(|c| {
                    v.custom = c;
                    v
                })
        }
        other => other,
    };
    // Always end the transaction; if even that fails, the connection is unusable (the caller
    // closes it) and the server rolls back.
    let end = match exec(conn, "ROLLBACK").await {
        // A stray cancel (see `establish_savepoint`) can hit the ROLLBACK too: try again.
        Err(e) if !is_connection_error(&e) => exec(conn, "ROLLBACK").await,
        other => other,
    };
    match (r, end) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(ConnectionLost(e)),
    }
}

async fn run_in_tx(
    conn: &mut PgConnection,
    shard_id: &str,
    schema: &str,
    plan: &ProbePlan,
    limits: ProbeLimits,
    cancel: &crate::CancelToken,
) -> Result<ShardProbes, ConnectionLost> {
    // One round trip opens the transaction and sets it up. `standard_conforming_strings` is
    // forced on: custom probes were checked by a parser that reads strings that way, and a
    // server that reads `'a\'` differently could run what the check took for a string. JIT is
    // off: the catalog lookups below are tiny queries whose cost estimates on a catalog of
    // thousands of schemas can cross `jit_above_cost` (compiling then costs far more than
    // running), and a gate wants predictable probes more than JIT's gain on a long scan.
    // Generic plans keep the constant catalog queries from being re-planned for every shard
    // although only the names differ (the data probes are unnamed statements without
    // parameters: planned once either way).
    let mut setup = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
         SET LOCAL lock_timeout = {}; SET LOCAL idle_in_transaction_session_timeout = {}; \
         SET LOCAL jit = off; SET LOCAL standard_conforming_strings = on; \
         SET LOCAL search_path TO {}",
        limits.lock_timeout.as_millis().max(1),
        (limits.statement_timeout.as_millis() * 4).max(60_000),
        // The path the custom-probe pre-flight resolved function names on.
        crate::safety::probe_search_path(schema)
            .iter()
            .map(|s| quote_ident(s))
            .collect::<Vec<_>>()
            .join(", "),
    );
    if limits.server_version >= 12 {
        setup.push_str("; SET LOCAL plan_cache_mode = force_generic_plan");
    }
    // Last: the statements of the setup itself never run under a (possibly tiny) timeout.
    setup.push_str(&format!(
        "; SET LOCAL statement_timeout = {}",
        limits.statement_timeout.as_millis().max(1)
    ));
    exec(conn, &setup).await.map_err(ConnectionLost)?;

    let mut out = ShardProbes::default();

    // 1. existence checks, one query.
    if !plan.refs.is_empty() {
        out.results
            .extend(run_refs(conn, shard_id, schema, plan).await?);
    }
    // 2. sizes, one query.
    let (stats, size_results) = run_sizes(conn, shard_id, schema, plan).await?;
    let missing: BTreeSet<(String, String)> = stats
        .iter()
        .filter(|s| !s.exists)
        .map(|s| (s.schema.clone(), s.table.clone()))
        .collect();
    // 3. primary keys of the probed tables (the sample key of offending rows), one query.
    let mut pk_cache = primary_keys(conn, schema, plan).await?;
    // 4. data probes.
    for p in &plan.probes {
        if cancel.is_cancelled() {
            break;
        }
        let (s, t) = resolve(&p.table, schema);
        let mut r = ProbeResult {
            shard: shard_id.to_string(),
            kind: p.kind,
            statement_index: Some(p.statement_index),
            schema: s.clone(),
            table: t.clone(),
            column: p.column.clone(),
            constraint: p.constraint.clone(),
            count: 0,
            exact: true,
            samples: Vec::new(),
            would_fail: false,
            bytes: None,
            skipped: p.skipped.clone(),
            note: p.note.clone(),
            error: None,
            sql: String::new(),
            duration_ms: 0,
        };
        if r.skipped.is_none() && missing.contains(&(s.clone(), t.clone())) {
            r.skipped = Some("table does not exist on this shard (see missing_object)".into());
        }
        if r.skipped.is_none() {
            run_one(conn, schema, p, &mut r, &mut pk_cache, limits).await?;
            r.would_fail = p.would_fail && r.count > 0;
        }
        out.results.push(r);
    }
    out.results.extend(size_results);
    out.tables = stats;
    Ok(out)
}

async fn savepoint<T>(
    conn: &mut PgConnection,
    f: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
) -> Result<Result<T, ProbeError>, ConnectionLost> {
    // A savepoint that succeeded is not released: the next `SAVEPOINT` of the same name stacks
    // on it (PostgreSQL allows that), and `ROLLBACK TO` always goes back to the newest one. A
    // read-only subtransaction gets no transaction id, so stacking costs nothing but saves one
    // round trip per probe; the whole transaction is rolled back at the end anyway.
    establish_savepoint(conn, PROBE_SAVEPOINT).await?;
    match f(conn).await {
        Ok(v) => Ok(Ok(v)),
        Err(e) => {
            let pe = lost_or(e, probe_error)?;
            rollback_to_savepoint(conn, PROBE_SAVEPOINT).await?;
            Ok(Err(pe))
        }
    }
}

// A control statement can fail although nothing is wrong with it: when a `statement_timeout`
// fires just as the previous statement ends, PostgreSQL delivers the cancel to the next one
// ("canceling statement due to user request"). With a tiny probe timeout that happens. The
// transaction is then aborted but the previous savepoint still exists (they stack), so both
// helpers go back to it and try once more; only a second failure gives up.

/// The savepoint every probe runs under.
const PROBE_SAVEPOINT: &str = "deployclaw_probe";

/// `SAVEPOINT name`, recovering once from a stray cancel (see above) by going back to the
/// newest probe savepoint (the catalog lookups always leave one).
pub(crate) async fn establish_savepoint(
    conn: &mut PgConnection,
    name: &str,
) -> Result<(), ConnectionLost> {
    let sql = format!("SAVEPOINT {name}");
    match exec(conn, &sql).await {
        Ok(()) => Ok(()),
        Err(e) if is_connection_error(&e) => Err(ConnectionLost(e)),
        Err(_) => {
            rollback_to_savepoint(conn, PROBE_SAVEPOINT).await?;
            exec(conn, &sql).await.map_err(ConnectionLost)
        }
    }
}

/// `ROLLBACK TO SAVEPOINT name`, tried twice (it is valid in an aborted transaction).
pub(crate) async fn rollback_to_savepoint(
    conn: &mut PgConnection,
    name: &str,
) -> Result<(), ConnectionLost> {
    let sql = format!("ROLLBACK TO SAVEPOINT {name}");
    match exec(conn, &sql).await {
        Ok(()) => Ok(()),
        Err(e) if is_connection_error(&e) => Err(ConnectionLost(e)),
        Err(_) => exec(conn, &sql).await.map_err(ConnectionLost),
    }
}

/// Rows of `(count(*) OVER (), sample)`.
async fn count_and_samples(
    conn: &mut PgConnection,
    sql: &str,
) -> Result<(u64, Vec<String>), sqlx::Error> {
    // Unique to this shard: not worth a slot in the connection's statement cache.
    let rows = sqlx::query(AssertSqlSafe(sql.to_string()))
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?;
    let mut n = 0u64;
    let mut samples = Vec::new();
    for row in rows {
        let c: i64 = row.try_get(0)?;
        n = c.max(0) as u64;
        let s: Option<String> = row.try_get(1)?;
        samples.push(s.unwrap_or_else(|| "NULL".into()));
    }
    Ok((n, samples))
}

/// Primary-key columns (in key order) of every table a data probe reads or joins, in one
/// query; a table without a primary key maps to an empty list. A failure leaves the map empty
/// ([`primary_key`] then looks tables up one by one).
async fn primary_keys(
    conn: &mut PgConnection,
    schema: &str,
    plan: &ProbePlan,
) -> Result<HashMap<(String, String), Vec<String>>, ConnectionLost> {
    let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
    for p in &plan.probes {
        if p.skipped.is_some() {
            continue;
        }
        wanted.insert(resolve(&p.table, schema));
        if let Check::Orphans {
            ref_table,
            ref_columns,
            ref_created: false,
            ..
        } = &p.check
            && ref_columns.is_empty()
        {
            wanted.insert(resolve(ref_table, schema));
        }
    }
    let mut out = HashMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    let (ss, ts): (Vec<String>, Vec<String>) = wanted.into_iter().unzip();
    let res = savepoint(conn, async |c| {
        sqlx::query(PKS_SQL)
            .bind(&ss)
            .bind(&ts)
            .fetch_all(&mut *c)
            .await
    })
    .await?;
    if let Ok(rows) = res {
        for row in rows {
            let s: String = row.try_get(0).unwrap_or_default();
            let t: String = row.try_get(1).unwrap_or_default();
            let cols: Vec<String> = row.try_get(2).unwrap_or_default();
            out.insert((s, t), cols);
        }
    }
    Ok(out)
}

/// Primary-key columns per `(schema, table)`, looked up by oid (`to_regclass` of the quoted
/// name, then `pg_index_indrelid_index`).
const PKS_SQL: &str = "SELECT r.s, r.t,
       ARRAY(SELECT a.attname::text
               FROM pg_index i
               CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(n, o)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
              WHERE i.indrelid = to_regclass(format('%I.%I', r.s, r.t)) AND i.indisprimary
              ORDER BY k.o)
  FROM unnest($1::text[], $2::text[]) AS r(s, t)";

async fn primary_key(
    conn: &mut PgConnection,
    cache: &mut HashMap<(String, String), Vec<String>>,
    schema: &str,
    table: &str,
) -> Result<Vec<String>, sqlx::Error> {
    if let Some(v) = cache.get(&(schema.to_string(), table.to_string())) {
        return Ok(v.clone());
    }
    let rows = sqlx::query(PKS_SQL)
        .bind(vec![schema.to_string()])
        .bind(vec![table.to_string()])
        .fetch_all(&mut *conn)
        .await?;
    let cols: Vec<String> = match rows.first() {
        Some(r) => r.try_get(2)?,
        None => Vec::new(),
    };
    cache.insert((schema.to_string(), table.to_string()), cols.clone());
    Ok(cols)
}

/// `row(a, b)::text` or `a::text` over alias `alias`.
fn row_text(alias: &str, cols: &[String]) -> String {
    match cols {
        [] => format!("{alias}.ctid::text"),
        [one] => format!("{alias}.{}::text", quote_ident(one)),
        many => format!(
            "(ROW({}))::text",
            many.iter()
                .map(|c| format!("{alias}.{}", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn key_row_text(keys: &[String]) -> String {
    match keys {
        [one] => format!("({one})::text"),
        many => format!("(ROW({}))::text", many.join(", ")),
    }
}

/// Integer range for the regex fallback of common casts.
fn int_range(ty: &str) -> Option<(&'static str, &'static str)> {
    match ty.trim() {
        "smallint" | "int2" => Some(("-32768", "32767")),
        "integer" | "int" | "int4" => Some(("-2147483648", "2147483647")),
        "bigint" | "int8" => Some(("-9223372036854775808", "9223372036854775807")),
        _ => None,
    }
}

/// A boolean SQL condition over text value `v` that is true when `v` is NOT valid input for
/// `ty`, for the types the fallback knows; `None` otherwise.
fn invalid_text_condition(ty: &str, v: &str) -> Option<String> {
    let ty = ty.trim();
    if let Some((lo, hi)) = int_range(ty) {
        return Some(format!(
            "(CASE WHEN btrim({v}) ~ '^[+-]?[0-9]+$' THEN btrim({v})::numeric NOT BETWEEN {lo} AND {hi} ELSE true END)"
        ));
    }
    if ty == "numeric"
        || ty == "decimal"
        || ty.starts_with("numeric(")
        || ty.starts_with("decimal(")
    {
        return Some(format!(
            "NOT (btrim({v}) ~* '^([+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)(e[+-]?[0-9]+)?|nan|[+-]?infinity)$')"
        ));
    }
    if ty == "boolean" || ty == "bool" {
        return Some(format!(
            "NOT (lower(btrim({v})) IN ('t','tr','tru','true','f','fa','fal','fals','false','y','ye','yes','n','no','on','of','off','1','0'))"
        ));
    }
    if ty == "uuid" {
        return Some(format!(
            "NOT (replace(btrim(btrim({v}), '{{}}'), '-', '') ~ '^[0-9a-fA-F]{{32}}$')"
        ));
    }
    None
}

/// Whether `using` is just `col::ty` / `CAST(col AS ty)` (any quoting, case, spacing).
fn is_plain_cast(using: &str, column: &str, ty: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '"' && *c != '(' && *c != ')')
            .collect::<String>()
            .to_lowercase()
    };
    let u = norm(using);
    let c = norm(column);
    let t = norm(ty);
    u == format!("{c}::{t}") || u == format!("cast{c}as{t}")
}

async fn run_one(
    conn: &mut PgConnection,
    shard_schema: &str,
    p: &PlannedProbe,
    r: &mut ProbeResult,
    pk_cache: &mut HashMap<(String, String), Vec<String>>,
    limits: ProbeLimits,
) -> Result<(), ConnectionLost> {
    let (s, t) = resolve(&p.table, shard_schema);
    let qt = quote_qualified(&s, &t);
    let started = Instant::now();
    // Sample key of offending rows: the primary key (or ctid).
    let pk: Vec<String> = match pk_cache.get(&(s.clone(), t.clone())) {
        Some(v) => v.clone(),
        None => savepoint(conn, async |c| primary_key(c, pk_cache, &s, &t).await)
            .await?
            .unwrap_or_default(),
    };
    let sample = row_text("x", &pk);
    let sql = match &p.check {
        Check::Orphans {
            columns,
            ref_table,
            ref_columns,
            ref_created,
        } => {
            let (rs, rt) = resolve(ref_table, shard_schema);
            let mut refcols = ref_columns.clone();
            if refcols.is_empty() && !ref_created {
                let cached = pk_cache.get(&(rs.clone(), rt.clone())).cloned();
                let looked_up = match cached {
                    Some(v) => Ok(v),
                    None => {
                        savepoint(conn, async |c| primary_key(c, pk_cache, &rs, &rt).await).await?
                    }
                };
                refcols = match looked_up {
                    Ok(v) => v,
                    Err(e) => {
                        r.error = Some(e);
                        return Ok(());
                    }
                };
                if refcols.is_empty() {
                    r.error = Some(ProbeError {
                        sqlstate: Some("42830".into()),
                        message: format!(
                            "referenced table {rs}.{rt} has no primary key and no columns were named"
                        ),
                    });
                    return Ok(());
                }
            }
            let not_null = columns
                .iter()
                .map(|c| format!("x.{} IS NOT NULL", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(" AND ");
            let exists = if *ref_created {
                String::new()
            } else {
                let join = columns
                    .iter()
                    .zip(refcols.iter())
                    .map(|(c, rc)| format!("p.{} = x.{}", quote_ident(rc), quote_ident(c)))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                format!(
                    " AND NOT EXISTS (SELECT 1 FROM {} AS p WHERE {join})",
                    quote_qualified(&rs, &rt)
                )
            };
            format!(
                "SELECT count(*) OVER (), {} FROM {qt} AS x WHERE {not_null}{exists} LIMIT {MAX_SAMPLES}",
                row_text("x", columns)
            )
        }
        Check::ValidateExisting { name } => {
            // Look the constraint up on the shard and build the matching check.
            let def = savepoint(conn, async |c| {
                sqlx::query(
                    "SELECT co.contype::text, pg_get_expr(co.conbin, co.conrelid),
                            rn.nspname::text, rc.relname::text,
                            ARRAY(SELECT a.attname::text FROM unnest(co.conkey) WITH ORDINALITY k(n, o)
                                  JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.n ORDER BY k.o),
                            ARRAY(SELECT a.attname::text FROM unnest(co.confkey) WITH ORDINALITY k(n, o)
                                  JOIN pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.n ORDER BY k.o)
                       FROM pg_constraint co
                       JOIN pg_class c ON c.oid = co.conrelid
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                       LEFT JOIN pg_class rc ON rc.oid = co.confrelid
                       LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
                      WHERE n.nspname = $1 AND c.relname = $2 AND co.conname = $3",
                )
                .bind(&s)
                .bind(&t)
                .bind(name)
                .fetch_optional(&mut *c)
                .await
            })
            .await?;
            let row = match def {
                Ok(Some(row)) => row,
                Ok(None) => {
                    r.skipped =
                        Some("constraint does not exist on this shard (see missing_object)".into());
                    return Ok(());
                }
                Err(e) => {
                    r.error = Some(e);
                    return Ok(());
                }
            };
            let contype: String = row.try_get(0).unwrap_or_default();
            if contype == "f" {
                r.kind = ProbeKind::FkOrphans;
                let rs: String = row.try_get(2).unwrap_or_default();
                let rt: String = row.try_get(3).unwrap_or_default();
                let cols: Vec<String> = row.try_get(4).unwrap_or_default();
                let rcols: Vec<String> = row.try_get(5).unwrap_or_default();
                r.column = Some(cols.join(", "));
                let not_null = cols
                    .iter()
                    .map(|c| format!("x.{} IS NOT NULL", quote_ident(c)))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                let join = cols
                    .iter()
                    .zip(rcols.iter())
                    .map(|(c, rc)| format!("p.{} = x.{}", quote_ident(rc), quote_ident(c)))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                format!(
                    "SELECT count(*) OVER (), {} FROM {qt} AS x WHERE {not_null} AND NOT EXISTS (SELECT 1 FROM {} AS p WHERE {join}) LIMIT {MAX_SAMPLES}",
                    row_text("x", &cols),
                    quote_qualified(&rs, &rt)
                )
            } else if contype == "c" {
                let expr: Option<String> = row.try_get(1).unwrap_or(None);
                match expr {
                    Some(e) => format!(
                        "SELECT count(*) OVER (), {sample} FROM {qt} AS x WHERE NOT ({e}) LIMIT {MAX_SAMPLES}"
                    ),
                    None => return Ok(()),
                }
            } else {
                r.skipped = Some(format!("constraint type `{contype}` needs no data check"));
                return Ok(());
            }
        }
        Check::Nulls { column } => format!(
            "SELECT count(*) OVER (), {sample} FROM {qt} AS x WHERE x.{} IS NULL LIMIT {MAX_SAMPLES}",
            quote_ident(column)
        ),
        Check::AllRowsNull { .. } => {
            // Rows that would be NULL = every row; counted up to a cap so a huge table is cheap.
            r.exact = true;
            format!(
                "SELECT count(*) OVER (), {sample} FROM (SELECT * FROM {qt} LIMIT 1000001) AS x LIMIT {MAX_SAMPLES}"
            )
        }
        Check::Duplicates {
            keys,
            predicate,
            nulls_not_distinct,
        } => {
            let mut conds: Vec<String> = Vec::new();
            if !nulls_not_distinct {
                conds.extend(keys.iter().map(|k| format!("({k}) IS NOT NULL")));
            }
            if let Some(p) = predicate {
                conds.push(format!("({p})"));
            }
            let where_ = if conds.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conds.join(" AND "))
            };
            format!(
                "SELECT count(*) OVER (), {} || ' x' || count(*) FROM {qt}{where_} GROUP BY {} HAVING count(*) > 1 LIMIT {MAX_SAMPLES}",
                key_row_text(keys),
                keys.iter()
                    .map(|k| format!("({k})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Check::Expression { expr } => format!(
            "SELECT count(*) OVER (), {sample} FROM {qt} AS x WHERE NOT ({expr}) LIMIT {MAX_SAMPLES}"
        ),
        Check::Cast {
            column,
            new_type,
            using,
        } => {
            let col = quote_ident(column);
            if using.is_none() && limits.server_version >= 16 {
                format!(
                    "SELECT count(*) OVER (), {col}::text FROM {qt} WHERE {col} IS NOT NULL AND NOT pg_input_is_valid({col}::text, {}) LIMIT {MAX_SAMPLES}",
                    quote_literal(new_type)
                )
            } else {
                // PostgreSQL < 16 (or a USING expression): evaluate the cast over the whole table
                // under a savepoint. Success ⇒ 0 failures. Failure ⇒ at least one; the regex
                // fallback then counts exactly for integer/numeric/boolean/uuid targets.
                // `USING col::newtype` is the same as no USING: the regex fallback applies.
                let using = using
                    .clone()
                    .filter(|u| !is_plain_cast(u, column, new_type));
                let src = using.clone().unwrap_or_else(|| col.clone());
                let attempt = format!("SELECT count(({src})::{new_type}) FROM {qt}");
                r.sql = attempt.clone();
                let res = savepoint(conn, async |c| {
                    sqlx::query(AssertSqlSafe(attempt.clone()))
                        .persistent(false)
                        .fetch_one(&mut *c)
                        .await
                        .map(|_| ())
                })
                .await?;
                match res {
                    Ok(()) => {
                        r.count = 0;
                        r.duration_ms = started.elapsed().as_millis() as u64;
                        return Ok(());
                    }
                    Err(e)
                        if e.sqlstate.as_deref() == Some("57014")
                            || e.sqlstate.as_deref() == Some("55P03") =>
                    {
                        r.error = Some(e);
                        r.duration_ms = started.elapsed().as_millis() as u64;
                        return Ok(());
                    }
                    Err(e) => {
                        r.count = 1;
                        r.exact = false;
                        r.samples = vec![e.message.clone()];
                        if using.is_none()
                            && let Some(cond) =
                                invalid_text_condition(new_type, &format!("{col}::text"))
                        {
                            let q = format!(
                                "SELECT count(*) OVER (), {col}::text FROM {qt} WHERE {col} IS NOT NULL AND {cond} LIMIT {MAX_SAMPLES}"
                            );
                            if let Ok((n, samples)) =
                                savepoint(conn, async |c| count_and_samples(c, &q).await).await?
                                && n > 0
                            {
                                r.count = n;
                                r.exact = true;
                                r.samples = samples;
                                r.sql = format!("{attempt};\n{q}");
                            }
                        }
                        r.duration_ms = started.elapsed().as_millis() as u64;
                        return Ok(());
                    }
                }
            }
        }
    };
    r.sql = sql.clone();
    match savepoint(conn, async |c| count_and_samples(c, &sql).await).await? {
        Ok((n, samples)) => {
            r.count = n;
            r.samples = samples;
            if matches!(p.check, Check::AllRowsNull { .. }) && n > 1_000_000 {
                r.exact = false;
            }
        }
        Err(e) => r.error = Some(e),
    }
    r.duration_ms = started.elapsed().as_millis() as u64;
    Ok(())
}

/// Existence of every object the migration refers to (or creates), one row per check. Every
/// lookup goes through `to_regclass` of the quoted name and the catalogs' oid indexes, so the
/// cost does not grow with the number of tenant schemas in the database.
const REFS_SQL: &str = "SELECT r.ord::int8, CASE r.k
    WHEN 'table' THEN EXISTS (SELECT 1 FROM pg_class c
                              WHERE c.oid = to_regclass(format('%I.%I', r.s, r.t))
                                AND c.relkind IN ('r','p','v','m','f'))
    WHEN 'relation' THEN to_regclass(format('%I.%I', r.s, r.x)) IS NOT NULL
    WHEN 'index' THEN EXISTS (SELECT 1 FROM pg_class c
                              WHERE c.oid = to_regclass(format('%I.%I', r.s, r.x))
                                AND c.relkind IN ('i','I'))
    WHEN 'column' THEN EXISTS (SELECT 1 FROM pg_attribute a
                              WHERE a.attrelid = to_regclass(format('%I.%I', r.s, r.t))
                                AND a.attname = r.x AND a.attnum > 0 AND NOT a.attisdropped)
    WHEN 'constraint' THEN EXISTS (SELECT 1 FROM pg_constraint co
                              WHERE co.conrelid = to_regclass(format('%I.%I', r.s, r.t))
                                AND co.conname = r.x)
    END
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS r(k, s, t, x, ord)";

async fn run_refs(
    conn: &mut PgConnection,
    shard_id: &str,
    schema: &str,
    plan: &ProbePlan,
) -> Result<Vec<ProbeResult>, ConnectionLost> {
    let started = Instant::now();
    let mut ks = Vec::new();
    let mut ss = Vec::new();
    let mut ts = Vec::new();
    let mut xs = Vec::new();
    for r in &plan.refs {
        let (s, t) = resolve(&r.table, schema);
        ks.push(r.kind.as_str().to_string());
        ss.push(s);
        ts.push(t);
        xs.push(r.name.clone());
    }
    let res = savepoint(conn, async |c| {
        sqlx::query(REFS_SQL)
            .bind(&ks)
            .bind(&ss)
            .bind(&ts)
            .bind(&xs)
            .fetch_all(&mut *c)
            .await
    })
    .await?;
    let elapsed = started.elapsed().as_millis() as u64;
    let rows = match res {
        Ok(rows) => rows,
        Err(e) => {
            return Ok(vec![ProbeResult {
                shard: shard_id.to_string(),
                kind: ProbeKind::MissingObject,
                statement_index: None,
                schema: schema.to_string(),
                table: String::new(),
                column: None,
                constraint: None,
                count: 0,
                exact: false,
                samples: vec![],
                would_fail: false,
                bytes: None,
                skipped: None,
                note: None,
                error: Some(e),
                sql: REFS_SQL.to_string(),
                duration_ms: elapsed,
            }]);
        }
    };
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for row in rows {
        let ord: i64 = row.try_get(0).unwrap_or(0);
        let exists: Option<bool> = row.try_get(1).unwrap_or(None);
        let Some(r) = usize::try_from(ord - 1).ok().and_then(|i| plan.refs.get(i)) else {
            continue;
        };
        let exists = exists.unwrap_or(false);
        if exists == r.must_exist {
            continue;
        }
        let (s, t) = resolve(&r.table, schema);
        if !seen.insert((
            r.kind.as_str(),
            s.clone(),
            t.clone(),
            r.name.clone(),
            r.must_exist,
        )) {
            continue;
        }
        let (table, column, constraint) = match r.kind {
            ObjKind::Table => (t.clone(), None, None),
            ObjKind::Column => (t.clone(), Some(r.name.clone()), None),
            ObjKind::Constraint => (t.clone(), None, Some(r.name.clone())),
            ObjKind::Relation | ObjKind::Index => (String::new(), None, Some(r.name.clone())),
        };
        let what = match r.kind {
            ObjKind::Table => format!("table {s}.{t}"),
            ObjKind::Column => format!("column {s}.{t}.{}", r.name),
            ObjKind::Constraint => format!("constraint {} on {s}.{t}", r.name),
            ObjKind::Relation => format!("relation {s}.{}", r.name),
            ObjKind::Index => format!("index {s}.{}", r.name),
        };
        out.push(ProbeResult {
            shard: shard_id.to_string(),
            kind: if r.must_exist {
                ProbeKind::MissingObject
            } else {
                ProbeKind::ObjectAlreadyExists
            },
            statement_index: Some(r.statement_index),
            schema: s,
            table,
            column,
            constraint,
            count: 1,
            exact: true,
            samples: vec![what],
            would_fail: true,
            bytes: None,
            skipped: None,
            note: None,
            error: None,
            sql: REFS_SQL.to_string(),
            duration_ms: elapsed,
        });
    }
    Ok(out)
}

/// Sizes of the planned tables (summed over partitions). Every catalog lookup is by oid
/// (`to_regclass` of the quoted name, then `pg_class_oid_index`): on a database with thousands of
/// tenant schemas a join over `pg_class` costs a sequential scan per shard, and an `OR` in the
/// join once pushed the plan over `jit_above_cost` (400 ms of JIT compilation per shard).
const SIZES_SQL: &str = "SELECT r.s, r.t, c.oid IS NOT NULL,
       COALESCE(sum(pg_relation_size(p.oid)), 0)::int8,
       COALESCE(sum(pg_total_relation_size(p.oid)), 0)::int8,
       COALESCE(sum(pg_indexes_size(p.oid)), 0)::int8,
       sum(GREATEST(p.reltuples, 0))::int8,
       bool_and(p.reltuples < 0) FILTER (WHERE p.relkind <> 'p')
  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(s, t, ord)
  LEFT JOIN LATERAL (SELECT c.oid, c.relkind FROM pg_class c
                      WHERE c.oid = to_regclass(format('%I.%I', r.s, r.t))
                        AND c.relkind IN ('r', 'p', 'm')) c ON true
  LEFT JOIN LATERAL (SELECT pc.oid, pc.relkind, pc.reltuples FROM pg_class pc
                      WHERE c.relkind <> 'p' AND pc.oid = c.oid
                     UNION ALL
                     SELECT pc.oid, pc.relkind, pc.reltuples FROM pg_class pc
                      WHERE c.relkind = 'p'
                        AND pc.oid = ANY (ARRAY(SELECT relid FROM pg_partition_tree(c.oid)))) p ON true
 GROUP BY r.ord, r.s, r.t, c.oid
 ORDER BY r.ord";

async fn run_sizes(
    conn: &mut PgConnection,
    shard_id: &str,
    schema: &str,
    plan: &ProbePlan,
) -> Result<(Vec<TableStats>, Vec<ProbeResult>), ConnectionLost> {
    if plan.tables.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let started = Instant::now();
    let (ss, ts): (Vec<String>, Vec<String>) =
        plan.tables.iter().map(|t| resolve(t, schema)).unzip();
    let res = savepoint(conn, async |c| {
        sqlx::query(SIZES_SQL)
            .bind(&ss)
            .bind(&ts)
            .fetch_all(&mut *c)
            .await
    })
    .await?;
    let elapsed = started.elapsed().as_millis() as u64;
    let rows = match res {
        Ok(rows) => rows,
        Err(_) => return Ok((Vec::new(), Vec::new())),
    };
    let mut stats = Vec::new();
    let mut results = Vec::new();
    for row in rows {
        let s: String = row.try_get(0).unwrap_or_default();
        let t: String = row.try_get(1).unwrap_or_default();
        let exists: bool = row.try_get(2).unwrap_or(false);
        let heap: i64 = row.try_get(3).unwrap_or(0);
        let total: i64 = row.try_get(4).unwrap_or(0);
        let idx: i64 = row.try_get(5).unwrap_or(0);
        let tuples: Option<i64> = row.try_get(6).unwrap_or(None);
        let never_analyzed: Option<bool> = row.try_get(7).unwrap_or(None);
        let row_estimate = if never_analyzed == Some(true) {
            None
        } else {
            tuples
        };
        if exists {
            results.push(ProbeResult {
                shard: shard_id.to_string(),
                kind: ProbeKind::TableSize,
                statement_index: None,
                schema: s.clone(),
                table: t.clone(),
                column: None,
                constraint: None,
                count: row_estimate.unwrap_or(0).max(0) as u64,
                exact: false,
                samples: vec![],
                would_fail: false,
                bytes: Some(total),
                skipped: None,
                note: if row_estimate.is_none() {
                    Some("never analyzed: no row estimate".into())
                } else {
                    None
                },
                error: None,
                sql: SIZES_SQL.to_string(),
                duration_ms: elapsed,
            });
        }
        stats.push(TableStats {
            schema: s,
            table: t,
            exists,
            heap_bytes: heap,
            total_bytes: total,
            index_bytes: idx,
            row_estimate,
        });
    }
    Ok((stats, results))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(sql: &str) -> Migration {
        migration_parser::parse("t.sql", sql, &Default::default()).expect("parse")
    }

    #[test]
    fn plan_follows_renames_backfills_and_validate() {
        let p = plan(&m("ALTER TABLE a RENAME TO b;
ALTER TABLE b ADD CONSTRAINT fk FOREIGN KEY (x) REFERENCES p (id);
ALTER TABLE b RENAME COLUMN y TO z;
ALTER TABLE b ALTER COLUMN z SET NOT NULL;
ALTER TABLE c ADD CONSTRAINT ck CHECK (v > 0) NOT VALID;
ALTER TABLE c VALIDATE CONSTRAINT ck;
UPDATE d SET w = 1;
ALTER TABLE d ALTER COLUMN w SET NOT NULL;
ALTER TABLE e ADD CONSTRAINT e_fk FOREIGN KEY (q) REFERENCES p (id) NOT VALID;
"));
        let fk = p
            .probes
            .iter()
            .find(|x| x.kind == ProbeKind::FkOrphans && x.statement_index == 1)
            .unwrap();
        assert_eq!(
            fk.table,
            QualifiedName::new("a"),
            "probed under the shard's name"
        );
        assert!(fk.would_fail);
        let nn = p.probes.iter().find(|x| x.statement_index == 3).unwrap();
        assert_eq!(
            (nn.table.name.as_str(), nn.column.as_deref()),
            ("a", Some("y"))
        );
        let ck = p
            .probes
            .iter()
            .find(|x| x.kind == ProbeKind::CheckViolations)
            .unwrap();
        assert_eq!(
            ck.statement_index, 5,
            "NOT VALID + VALIDATE: probed at the VALIDATE"
        );
        assert!(ck.would_fail);
        let bf = p.probes.iter().find(|x| x.statement_index == 7).unwrap();
        assert!(
            !bf.would_fail && bf.note.as_deref().unwrap_or("").contains("backfilled"),
            "{bf:?}"
        );
        let nv = p.probes.iter().find(|x| x.statement_index == 8).unwrap();
        assert!(!nv.would_fail, "NOT VALID without VALIDATE never fails");
        assert!(p.tables.contains(&QualifiedName::new("a")));
        assert!(!p.tables.contains(&QualifiedName::new("b")));
        assert!(
            p.refs
                .iter()
                .any(|r| r.kind == ObjKind::Relation && r.name == "b" && !r.must_exist)
        );
    }

    #[test]
    fn index_keys_are_quoted_or_kept() {
        assert_eq!(key_sql("email"), "\"email\"");
        assert_eq!(key_sql("email DESC NULLS LAST"), "\"email\"");
        assert_eq!(key_sql("lower(email)"), "lower(email)");
        assert_eq!(key_sql("\"Email\""), "\"Email\"");
        assert!(is_plain_cast(
            "legacy_amount::integer",
            "legacy_amount",
            "integer"
        ));
        assert!(is_plain_cast("CAST(\"v\" AS bigint)", "v", "bigint"));
        assert!(!is_plain_cast("(v::numeric * 2)::bigint", "v", "bigint"));
    }
}

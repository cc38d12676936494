//! What a name denotes at the operation being planned, from the one model of the migration
//! ([`MigrationState`]): the context every probe kind plans with ([`PlanCx`]).

use migration_parser::state::{ColumnResolved, ObjectKind, Origin};
use migration_parser::{
    ColumnDef, ConstraintDef, Migration, MigrationState, Operation, QualifiedName, Resolved, Step,
};

use migration_parser::Volatility;

use super::model::{Bound, ObjKind, ObjRef, PlannedProbe, ProbePlan};
use crate::ident::quote_ident;

/// What a relation name denotes at the operation being planned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rel {
    /// A relation of the shard, under this name there (renames by the migration undone); it
    /// may not exist (the existence probe says).
    Shard(QualifiedName),
    /// Created by the migration: not on the shard.
    New(ObjectKind),
    /// Dropped or renamed away earlier in the migration, or maybe taken along by a `CASCADE`:
    /// what the statement meets is decided by the rehearsal.
    Gone,
}

/// What a column name denotes at the operation being planned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Col<'a> {
    /// A column of a shard table: (table, column) as named on the shard.
    Shard(QualifiedName, String),
    /// Added by the migration earlier.
    Added(&'a ColumnDef),
    /// In a relation the migration created, or gone: nothing to look for on the shard.
    Other,
}

/// What a probe kind sees while it plans one operation.
pub(crate) struct PlanCx<'a> {
    /// The plan so far.
    pub plan: &'a mut ProbePlan,
    /// The migration planned.
    pub migration: &'a Migration,
    /// The migration's effect, statement by statement.
    pub state: &'a MigrationState,
    /// Just before the operation planned.
    pub at: Step,
    /// The statement's index (0-based).
    pub si: usize,
    /// The statement's SQL, upper-cased (for options the operation model does not carry).
    pub sql_upper: &'a str,
    /// Earlier statements with no typed operation (the parser did not type them, e.g. an
    /// `ALTER TYPE … ADD VALUE E'…'`), upper-cased: what they change is unknown to the model.
    pub untyped_before: &'a [String],
    /// Whether an earlier statement runs code whose effect on rows the model cannot follow: a
    /// `DO` block, a statement with no typed operation, or one it only knows as
    /// [`Operation::Other`] (`SELECT backfill()`, `CALL`, …).
    pub code_before: bool,
}

/// Names of built-in types a migration writes without modifiers.
const BUILTIN_TYPES: &[&str] = &[
    "smallint",
    "integer",
    "int",
    "int2",
    "int4",
    "int8",
    "bigint",
    "numeric",
    "decimal",
    "real",
    "float4",
    "float8",
    "boolean",
    "bool",
    "text",
    "varchar",
    "bpchar",
    "uuid",
    "json",
    "jsonb",
    "date",
    "time",
    "timetz",
    "timestamp",
    "timestamptz",
    "interval",
    "bytea",
    "inet",
    "cidr",
    "money",
    "bit",
    "varbit",
    "xml",
    "oid",
];

impl PlanCx<'_> {
    /// Whether an earlier statement the model does not follow names `name` (ASCII case
    /// folded, as a whole word): it may have changed that object in a way the model does not
    /// know. A built-in type's name never counts: no statement changes `integer` (a function
    /// body or `DO` block mentioning it would otherwise leave every cast to it unprobed).
    pub(crate) fn untyped_mentions(&self, name: &str) -> bool {
        if BUILTIN_TYPES.contains(&name.to_ascii_lowercase().as_str()) {
            return false;
        }
        let n = name.to_ascii_uppercase();
        let word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
        self.untyped_before.iter().any(|s| {
            s.match_indices(&n).any(|(i, _)| {
                !s[..i].chars().next_back().is_some_and(word)
                    && !s[i + n.len()..].chars().next().is_some_and(word)
            })
        })
    }

    /// What relation `t` (as the migration names it here) denotes.
    pub(crate) fn rel(&self, t: &QualifiedName) -> Rel {
        match self.state.relation(t, self.at) {
            Resolved::Tracked(_, r) => match &r.origin {
                Origin::Shard(n) => Rel::Shard(n.clone()),
                Origin::Created(_) => Rel::New(r.kind),
            },
            Resolved::Shard(n) => Rel::Shard(n),
            Resolved::Free { .. } | Resolved::MaybeDropped { .. } => Rel::Gone,
        }
    }

    /// The name on the shard of relation `t`, when it denotes one.
    pub(crate) fn shard_table(&self, t: &QualifiedName) -> Option<QualifiedName> {
        match self.rel(t) {
            Rel::Shard(n) => Some(n),
            _ => None,
        }
    }

    /// What column `c` of relation `t` (both as the migration names them here) denotes.
    pub(crate) fn col(&self, t: &QualifiedName, c: &str) -> Col<'_> {
        match self.state.column(t, c, self.at) {
            ColumnResolved::Tracked(rec) => match (rec.created(), rec.shard_name()) {
                (Some((_, def)), _) => Col::Added(def),
                (None, Some(name)) => match self.shard_table(t) {
                    Some(st) => Col::Shard(st, name.to_string()),
                    None => Col::Other,
                },
                (None, None) => Col::Other,
            },
            ColumnResolved::Shard { table, column } => Col::Shard(table, column),
            _ => Col::Other,
        }
    }

    /// The name on the shard of column `c` of `t`, else `c` as written.
    pub(crate) fn col_name(&self, t: &QualifiedName, c: &str) -> String {
        match self.col(t, c) {
            Col::Shard(_, name) => name,
            _ => c.to_string(),
        }
    }

    /// The table a data probe of `t` reads (its name on the shard, else as written) and why the
    /// probe needs no run on the shard, if it does not.
    pub(crate) fn probe_table(&self, t: &QualifiedName) -> (QualifiedName, Option<String>) {
        match self.rel(t) {
            Rel::Shard(n) => (n, None),
            Rel::New(ObjectKind::Table) => (
                t.clone(),
                Some("table created by the migration: empty".into()),
            ),
            Rel::New(_) => (
                t.clone(),
                Some(
                    "created by the migration: its rows are not on the shard (rehearsal decides)"
                        .into(),
                ),
            ),
            Rel::Gone => (
                t.clone(),
                Some("dropped or renamed away earlier in the migration: rehearsal decides".into()),
            ),
        }
    }

    /// Add an existence reference of this statement.
    pub(crate) fn push_ref(
        &mut self,
        kind: ObjKind,
        table: QualifiedName,
        name: String,
        must_exist: bool,
    ) {
        self.plan.refs.push(ObjRef {
            statement_index: self.si,
            kind,
            table,
            name,
            must_exist,
        });
    }

    /// Column `c` (shard name) of `t` (shard name) must exist.
    pub(crate) fn require_column(&mut self, t: &QualifiedName, c: &str) {
        self.push_ref(ObjKind::Column, t.clone(), c.to_string(), true);
    }

    /// Table `t` (shard name) must exist (asked once per table).
    pub(crate) fn require_table(&mut self, t: &QualifiedName) {
        if self.plan.required_tables.insert(t.clone()) {
            self.push_ref(ObjKind::Table, t.clone(), String::new(), true);
        }
    }

    /// The shard's constraint that `name` on `table` denotes here: (table, constraint) as named
    /// on the shard. `None` when the migration added it, or dropped or renamed the name away,
    /// or the table is not the shard's.
    pub(crate) fn shard_constraint(
        &self,
        table: &QualifiedName,
        name: &str,
    ) -> Option<(QualifiedName, String)> {
        let st = self.shard_table(table)?;
        match self.state.constraint(table, name, self.at) {
            Some(c) if c.added.is_some() => None,
            Some(c) => Some((st, c.name_at(Step::default()).unwrap_or(name).to_string())),
            None if self.state.constraint_name_freed(table, name, self.at) => None,
            None => Some((st, name.to_string())),
        }
    }

    /// Add a data probe.
    pub(crate) fn push_probe(&mut self, p: PlannedProbe) {
        self.plan.probes.push(p);
    }

    /// "statement N changes this table's rows first" when an earlier statement does.
    pub(crate) fn data_note(&self, t: &QualifiedName) -> Option<String> {
        self.state
            .data_changes_before(t, self.at)
            .next()
            .map(|(s, _)| {
                format!(
                    "statement {} changes this table's rows first: count is before that change",
                    s.statement + 1
                )
            })
    }

    /// The statement (0-based) of the first `UPDATE` before this one that assigns column `c` of
    /// `t`, if any.
    pub(crate) fn backfilled_by(&self, t: &QualifiedName, c: &str) -> Option<usize> {
        match self.state.column(t, c, self.at) {
            ColumnResolved::Tracked(rec) => rec.assigned_before(self.at).map(|s| s.statement),
            _ => None,
        }
    }

    /// The one value every existing row holds in column `c` of `table` the migration added
    /// earlier, as an expression cast to the column's type (a bare constant in `GROUP BY` would
    /// be a position): its default when that is evaluated once for all rows (not volatile, not
    /// an identity, serial or generated column; NULL without a default), no statement set the
    /// column since (no `UPDATE` of it, no code the model does not follow before), and its type
    /// is one of the shard.
    pub(crate) fn single_value(
        &self,
        table: &QualifiedName,
        c: &str,
        def: &ColumnDef,
    ) -> Option<String> {
        if def.identity
            || def.serial
            || def.generated_stored
            || !self.added_column_untouched(table, c)
        {
            return None;
        }
        if let Some(ty) = type_name(&def.data_type)
            && self.state.type_(&ty, self.at).record().is_some()
        {
            // A type the migration creates or changes: not on the shard in that form.
            return None;
        }
        let value = match &def.default {
            None => "NULL".to_string(),
            Some(e) if e.volatility != Volatility::Volatile => e.sql.clone(),
            Some(_) => return None,
        };
        Some(format!("(({value})::{})", def.data_type))
    }

    /// The names `exprs` (the migration's expressions over `table`) read that the table lacks
    /// on the shard at this point ([`Bound`]): a column renamed earlier is the shard's column,
    /// one added earlier its [`Self::single_value`]. When an added column's value is not known
    /// the rehearsal decides: `skipped` gets the reason (unless it has one) and nothing is bound.
    pub(crate) fn bindings<'e>(
        &self,
        table: &QualifiedName,
        exprs: impl IntoIterator<Item = &'e str>,
        skipped: &mut Option<String>,
    ) -> Vec<Bound> {
        let mut bound: Vec<Bound> = Vec::new();
        for w in exprs.into_iter().flat_map(words) {
            if bound.iter().any(|b| b.name == w) {
                continue;
            }
            match self.col(table, &w) {
                Col::Added(def) => match self.single_value(table, &w, def) {
                    Some(sql) => bound.push(Bound {
                        name: w,
                        sql,
                        migration_code: true,
                    }),
                    None => {
                        skipped.get_or_insert_with(|| {
                            "an expression reads a column added earlier in the migration whose \
                             value in the existing rows is not known: rehearsal decides"
                                .into()
                        });
                        return Vec::new();
                    }
                },
                Col::Shard(_, name) if name != w => bound.push(Bound {
                    sql: format!("x.{}", quote_ident(&name)),
                    name: w,
                    migration_code: false,
                }),
                _ => {}
            }
        }
        bound
    }

    /// The migration's operations before the one planned, each with the step just before it.
    pub(crate) fn earlier(&self) -> impl Iterator<Item = (Step, &Operation)> + '_ {
        let at = self.at;
        self.migration.statements.iter().flat_map(move |st| {
            st.operations.iter().enumerate().filter_map(move |(op, o)| {
                let step = Step {
                    statement: st.index,
                    op,
                };
                (step < at).then_some((step, o))
            })
        })
    }

    /// Whether column `c` of `t`, added earlier by the migration, still holds in every existing
    /// row what its `ADD COLUMN` gave it: no statement assigned it since ([`Self::backfilled_by`])
    /// and no code the model cannot follow ran before ([`PlanCx::code_before`]).
    pub(crate) fn added_column_untouched(&self, t: &QualifiedName, c: &str) -> bool {
        self.backfilled_by(t, c).is_none() && !self.code_before
    }

    /// The statement that validates constraint `name`, added by this operation on `table`, later.
    pub(crate) fn validated_at(
        &self,
        table: &QualifiedName,
        name: Option<&String>,
    ) -> Option<usize> {
        let after = Step {
            statement: self.si,
            op: self.at.op + 1,
        };
        let c = self.state.constraint(table, name?, after)?;
        c.validated.filter(|v| *v > self.at).map(|v| v.statement)
    }

    /// The shard name a relation the statement creates under `name` could clash with: `None`
    /// when the name is free (the migration dropped, renamed away or created what had it, or a
    /// `CASCADE` may have taken it along). An `index` name is also free once the migration
    /// dropped a shard relation or column in that schema: its indexes go with it unnamed
    /// ([`MigrationState::dependent_maybe_dropped`]).
    pub(crate) fn clashing_relation(
        &self,
        name: &QualifiedName,
        index: bool,
    ) -> Option<QualifiedName> {
        match self.state.relation(name, self.at) {
            Resolved::Tracked(_, r) => r.shard_name().cloned(),
            Resolved::Shard(n)
                if !(index && self.state.dependent_maybe_dropped(&n, self.at).is_some()) =>
            {
                Some(n)
            }
            _ => None,
        }
    }
}

/// The tables `op` reads or changes, as the migration names them, and whether each must exist
/// (`DROP TABLE IF EXISTS` does not need it).
pub(crate) fn touched_tables(op: &Operation) -> Vec<(&QualifiedName, bool)> {
    match op {
        Operation::DropTable {
            table, if_exists, ..
        } => vec![(table, !*if_exists)],
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
        | Operation::CreateTrigger { table, .. } => vec![(table, true)],
        Operation::Truncate { tables, .. } | Operation::LockTable { tables, .. } => {
            tables.iter().map(|t| (t, true)).collect()
        }
        _ => Vec::new(),
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
    c: &ConstraintDef,
) -> (bool, Option<String>, usize) {
    let base_note = cx.data_note(table_as_written);
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

/// A type name as written (`mood`, `public.mood`, `"Mood"`) as a qualified name; `None` for
/// arrays, modifiers and anything else that is not a plain name.
pub(crate) fn type_name(ty: &str) -> Option<QualifiedName> {
    let mut parts = Vec::new();
    for part in ty.trim().split('.') {
        let p = part.trim();
        let name = if let Some(inner) = p.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
            inner.replace("\"\"", "\"")
        } else if !p.is_empty()
            && p.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        {
            p.to_lowercase()
        } else {
            return None;
        };
        parts.push(name);
    }
    match parts.as_slice() {
        [n] => Some(QualifiedName::new(n.clone())),
        [s, n] => Some(QualifiedName::qualified(s.clone(), n.clone())),
        _ => None,
    }
}

/// The identifier-like words of an expression (lowercased unless quoted), string literals
/// left out: the names it may read.
pub(crate) fn words(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut literal = false;
    for ch in expr.chars() {
        if literal {
            // `''` inside a literal closes and reopens it: the same state either way.
            literal = ch != '\'';
            continue;
        }
        if ch == '"' {
            if quoted {
                out.push(std::mem::take(&mut cur));
            }
            quoted = !quoted;
        } else if quoted || ch.is_alphanumeric() || ch == '_' {
            cur.push(if quoted { ch } else { ch.to_ascii_lowercase() });
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            literal = ch == '\'';
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

//! Inverse generation: from a parsed [`Migration`] and the pre-migration catalog to a
//! [`Rollback`].
//!
//! The generator walks the migration *forward*, keeping a working copy of the catalog: the
//! inverse of each operation is computed from the state just before it (so `RENAME` then
//! `DROP COLUMN` recreates the column under the right name), then the operation is applied to the
//! working copy. The inverses are emitted in reverse statement order.

use std::collections::BTreeMap;

use migration_parser::{
    ColumnDef, ConstraintDef, ConstraintKind, FkAction, Migration, Operation, QualifiedName,
    Statement, StatementKind,
};

use crate::catalog::{
    CatalogSnapshot, ColumnSnap, ConstraintSnap, IndexSnap, SequenceSnap, TableSnap, TypeSnap,
};
use crate::names::{
    choose_name, index_column_name, make_object_name, name_addition, quote_ident, quote_literal,
    split_dotted, split_ident,
};
use crate::{Irreversible, NoOp, Options, Placement, Reversibility, Rollback, RollbackStatement};

/// What one operation's inversion yields.
enum Outcome {
    /// Statements that undo it.
    Inverse(Vec<RollbackStatement>),
    /// Statements that restore the structure, plus why the undo is still incomplete (data gone).
    Partial(Vec<RollbackStatement>, String),
    /// Nothing to undo, and why.
    NoOp(String),
    /// Cannot be undone, and why.
    Irreversible(String),
}

fn tx(sql: impl Into<String>) -> RollbackStatement {
    RollbackStatement {
        sql: sql.into(),
        source_statement: 0,
        line: 0,
        reversible: Reversibility::Exact,
        note: None,
        placement: Placement::Transaction,
    }
}

fn no_tx(sql: impl Into<String>) -> RollbackStatement {
    RollbackStatement {
        placement: Placement::NoTransaction,
        ..tx(sql)
    }
}

trait StmtExt {
    fn rev(self, r: Reversibility, note: impl Into<String>) -> Self;
}
impl StmtExt for RollbackStatement {
    fn rev(mut self, r: Reversibility, note: impl Into<String>) -> Self {
        self.reversible = r;
        self.note = Some(note.into());
        self
    }
}

/// SQL for a name as the migration wrote it (qualified only if it was).
fn qn(q: &QualifiedName) -> String {
    match &q.schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&q.name)),
        None => quote_ident(&q.name),
    }
}

/// `name` in the same schema as `like` (qualified only if `like` was).
fn sibling(like: &QualifiedName, name: &str) -> String {
    qn(&QualifiedName {
        schema: like.schema.clone(),
        name: name.to_string(),
    })
}

fn fk_action(a: FkAction) -> &'static str {
    match a {
        FkAction::NoAction => "NO ACTION",
        FkAction::Restrict => "RESTRICT",
        FkAction::Cascade => "CASCADE",
        FkAction::SetNull => "SET NULL",
        FkAction::SetDefault => "SET DEFAULT",
    }
}

fn cols_sql(cols: &[String]) -> String {
    cols.iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A constraint from the migration rendered as `pg_get_constraintdef` would print it (close
/// enough to re-add it if the same migration drops it again).
fn constraint_sql(kind: &ConstraintKind) -> String {
    match kind {
        ConstraintKind::PrimaryKey { columns, .. } => {
            format!("PRIMARY KEY ({})", cols_sql(columns))
        }
        ConstraintKind::Unique {
            columns,
            nulls_not_distinct,
            ..
        } => format!(
            "UNIQUE {}({})",
            if *nulls_not_distinct {
                "NULLS NOT DISTINCT "
            } else {
                ""
            },
            cols_sql(columns)
        ),
        ConstraintKind::ForeignKey {
            columns,
            ref_table,
            ref_columns,
            on_delete,
            on_update,
        } => {
            let mut s = format!(
                "FOREIGN KEY ({}) REFERENCES {}",
                cols_sql(columns),
                qn(ref_table)
            );
            if !ref_columns.is_empty() {
                s.push_str(&format!("({})", cols_sql(ref_columns)));
            }
            if *on_update != FkAction::NoAction {
                s.push_str(&format!(" ON UPDATE {}", fk_action(*on_update)));
            }
            if *on_delete != FkAction::NoAction {
                s.push_str(&format!(" ON DELETE {}", fk_action(*on_delete)));
            }
            s
        }
        ConstraintKind::Check { expr } => format!("CHECK ({expr})"),
        ConstraintKind::Exclusion { sql } => sql.clone(),
    }
}

fn kind_code(kind: &ConstraintKind) -> &'static str {
    match kind {
        ConstraintKind::PrimaryKey { .. } => "p",
        ConstraintKind::Unique { .. } => "u",
        ConstraintKind::ForeignKey { .. } => "f",
        ConstraintKind::Check { .. } => "c",
        ConstraintKind::Exclusion { .. } => "x",
    }
}

fn kind_columns(kind: &ConstraintKind, check_cols: impl Fn(&str) -> Vec<String>) -> Vec<String> {
    match kind {
        ConstraintKind::PrimaryKey { columns, .. }
        | ConstraintKind::Unique { columns, .. }
        | ConstraintKind::ForeignKey { columns, .. } => columns.clone(),
        ConstraintKind::Check { expr } => check_cols(expr),
        ConstraintKind::Exclusion { .. } => Vec::new(),
    }
}

/// Add `CONCURRENTLY` to a `CREATE [UNIQUE] INDEX` statement.
fn concurrent_index(def: &str) -> String {
    for p in ["CREATE UNIQUE INDEX ", "CREATE INDEX "] {
        if let Some(rest) = def.strip_prefix(p) {
            if rest.starts_with("CONCURRENTLY ") {
                return def.to_string();
            }
            return format!("{p}CONCURRENTLY {rest}");
        }
    }
    def.to_string()
}

/// Remove `CONCURRENTLY` and `IF NOT EXISTS` from a `CREATE INDEX` as written.
fn plain_index(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i].to_ascii_uppercase();
        if w == "CONCURRENTLY" {
            i += 1;
            continue;
        }
        if w == "IF"
            && words
                .get(i + 1)
                .is_some_and(|x| x.eq_ignore_ascii_case("NOT"))
            && words
                .get(i + 2)
                .is_some_and(|x| x.eq_ignore_ascii_case("EXISTS"))
        {
            i += 3;
            continue;
        }
        out.push(words[i]);
        i += 1;
    }
    out.join(" ")
}

pub(crate) fn column_sql(c: &ColumnSnap, with_not_null: bool) -> String {
    let mut s = format!("{} {}", quote_ident(&c.name), c.data_type);
    if let Some(coll) = &c.collation {
        s.push_str(&format!(" COLLATE {coll}"));
    }
    if let Some(g) = &c.generated {
        s.push_str(&format!(" GENERATED ALWAYS AS ({g}) STORED"));
    } else if let Some(d) = &c.default {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    if let Some(i) = &c.identity {
        s.push_str(&format!(" GENERATED {i} AS IDENTITY"));
    }
    if with_not_null && c.not_null && c.identity.is_none() {
        s.push_str(" NOT NULL");
    }
    s
}

pub(crate) fn sequence_sql(name: &str, s: &SequenceSnap) -> String {
    format!(
        "CREATE SEQUENCE {name} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {}{}",
        s.data_type,
        s.increment,
        s.min,
        s.max,
        s.start,
        s.cache,
        if s.cycle { " CYCLE" } else { " NO CYCLE" }
    )
}

/// Strip the `schema.` qualifier `pg_get_functiondef` always prints after `FUNCTION`/`PROCEDURE`.
fn unqualify_function(def: &str, schema: &str) -> String {
    let q = format!("{}.", quote_ident(schema));
    for kw in ["FUNCTION ", "PROCEDURE "] {
        let pat = format!("{kw}{q}");
        if let Some(pos) = def.find(&pat) {
            let mut s = def.to_string();
            s.replace_range(pos..pos + pat.len(), kw);
            return s;
        }
    }
    def.to_string()
}

/// Identifiers (lower-cased, unquoted) that appear in an expression: a cheap stand-in for
/// `pull_var_clause` when naming CHECK constraints.
fn expr_idents(expr: &str, columns: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = expr;
    while !rest.is_empty() {
        let (id, r) = split_ident(rest);
        match id {
            Some(id) => {
                if columns.contains(&id) && !out.contains(&id) && !r.trim_start().starts_with('(') {
                    out.push(id);
                }
                rest = r;
            }
            None => {
                let mut chars = rest.chars();
                let c = chars.next().unwrap_or(' ');
                if c == '\'' {
                    // skip a string literal
                    let after = chars.as_str();
                    rest = after.find('\'').map_or("", |p| &after[p + 1..]);
                } else {
                    rest = chars.as_str();
                }
            }
        }
    }
    out
}

/// A pre-migration catalog [`generate`] can work from: a [`topology::catalog::Catalog`] (the one
/// catalog model; the generator walks the migration over its working copy of it).
pub trait PreMigrationCatalog {
    /// The catalog as a snapshot.
    fn snapshot(&self) -> std::borrow::Cow<'_, CatalogSnapshot>;
}

impl PreMigrationCatalog for CatalogSnapshot {
    fn snapshot(&self) -> std::borrow::Cow<'_, CatalogSnapshot> {
        std::borrow::Cow::Borrowed(self)
    }
}

impl PreMigrationCatalog for topology::catalog::Catalog {
    fn snapshot(&self) -> std::borrow::Cow<'_, CatalogSnapshot> {
        std::borrow::Cow::Owned(CatalogSnapshot::from_topology(self))
    }
}

struct Gen<'a> {
    opts: &'a Options,
    migration: &'a Migration,
    state: CatalogSnapshot,
    /// Inverse statements per source statement (in forward order).
    per_statement: Vec<Vec<RollbackStatement>>,
    irreversible: Vec<Irreversible>,
    no_ops: Vec<NoOp>,
    validations: Vec<RollbackStatement>,
}

/// Generate the rollback of `migration` against the pre-migration catalog of the shard's schema.
///
/// Unqualified names in the migration resolve to `catalog.schema` (the tenant schema, as the
/// migration's `search_path` would); the rollback keeps them unqualified so it runs per tenant
/// the same way. Every statement of the migration ends up in exactly one of
/// [`Rollback::statements`] (through `source_statement`), [`Rollback::irreversible`] or
/// [`Rollback::no_ops`] — possibly both of the first two when the structure comes back but data
/// does not.
pub fn generate<C: PreMigrationCatalog + ?Sized>(
    migration: &Migration,
    catalog: &C,
    options: &Options,
) -> Rollback {
    let mut state = catalog.snapshot().into_owned();
    // Origins: every object of the catalog existed before the migration.
    let names: Vec<String> = state.tables.keys().cloned().collect();
    for n in names {
        if let Some(t) = state.tables.get_mut(&n) {
            t.origin = Some(n.clone());
            let cn: Vec<String> = t.constraints.keys().cloned().collect();
            for c in cn {
                if let Some(con) = t.constraints.get_mut(&c) {
                    con.origin = Some(c.clone());
                }
            }
            let inames: Vec<String> = t.indexes.keys().cloned().collect();
            for i in inames {
                if let Some(ix) = t.indexes.get_mut(&i) {
                    ix.origin = Some(i.clone());
                }
            }
        }
    }
    let mut g = Gen {
        opts: options,
        migration,
        state,
        per_statement: Vec::new(),
        irreversible: Vec::new(),
        no_ops: Vec::new(),
        validations: Vec::new(),
    };
    for stmt in &migration.statements {
        let inv = g.statement(stmt);
        g.per_statement.push(inv);
    }
    g.finish()
}

impl Gen<'_> {
    fn schema(&self) -> &str {
        &self.state.schema
    }

    /// The key of `q` in the working catalog, or `None` when it lives in another schema.
    fn key(&self, q: &QualifiedName) -> Option<String> {
        match &q.schema {
            Some(s) if s != self.schema() => None,
            _ => Some(q.name.clone()),
        }
    }

    fn table(&self, q: &QualifiedName) -> Option<&TableSnap> {
        self.key(q).and_then(|k| self.state.tables.get(&k))
    }

    fn table_mut(&mut self, q: &QualifiedName) -> Option<&mut TableSnap> {
        let k = self.key(q)?;
        self.state.tables.get_mut(&k)
    }

    fn relation_taken(&self, name: &str) -> bool {
        self.state.tables.contains_key(name)
            || self.state.sequences.contains_key(name)
            || self.state.views.contains_key(name)
            || self
                .state
                .tables
                .values()
                .any(|t| t.indexes.contains_key(name))
            || self
                .state
                .views
                .values()
                .any(|v| v.indexes.contains_key(name))
    }

    fn constraint_taken(&self, name: &str) -> bool {
        self.state
            .tables
            .values()
            .any(|t| t.constraints.contains_key(name))
    }

    /// The name PostgreSQL gives an unnamed constraint on `table`.
    fn default_constraint_name(
        &self,
        table: &str,
        kind: &ConstraintKind,
        columns: &[String],
    ) -> String {
        match kind {
            ConstraintKind::PrimaryKey { .. } => {
                choose_name(table, None, "pkey", |n| self.relation_taken(n))
            }
            ConstraintKind::Unique { .. } => {
                choose_name(table, Some(&name_addition(columns)), "key", |n| {
                    self.relation_taken(n)
                })
            }
            ConstraintKind::Exclusion { .. } => {
                choose_name(table, Some(&name_addition(columns)), "excl", |n| {
                    self.relation_taken(n)
                })
            }
            ConstraintKind::ForeignKey { columns, .. } => {
                choose_name(table, Some(&name_addition(columns)), "fkey", |n| {
                    self.constraint_taken(n)
                })
            }
            ConstraintKind::Check { .. } => {
                let col = if columns.len() == 1 {
                    Some(columns[0].as_str())
                } else {
                    None
                };
                choose_name(table, col, "check", |n| self.constraint_taken(n))
            }
        }
    }

    fn statement(&mut self, stmt: &Statement) -> Vec<RollbackStatement> {
        let mut parts: Vec<Vec<RollbackStatement>> = Vec::new();
        let mut reasons: Vec<(bool, String)> = Vec::new(); // (irreversible?, reason)
        let mut ops = stmt.operations.clone();
        // PostgreSQL runs the actions of one ALTER TABLE in passes, not in written order
        // (drops, type changes, added columns, column attributes, indexes, constraints).
        ops.sort_by_key(alter_pass);
        let outcomes: Vec<Outcome> = if ops.is_empty() {
            vec![self.opaque(stmt)]
        } else {
            ops.iter().map(|op| self.operation(stmt, op)).collect()
        };
        for o in outcomes {
            match o {
                Outcome::Inverse(v) => parts.push(v),
                Outcome::Partial(v, r) => {
                    parts.push(v);
                    reasons.push((true, r));
                }
                Outcome::NoOp(r) => reasons.push((false, r)),
                Outcome::Irreversible(r) => reasons.push((true, r)),
            }
        }
        let mut out: Vec<RollbackStatement> = Vec::new();
        for p in parts.into_iter().rev() {
            out.extend(p);
        }
        for s in &mut out {
            s.source_statement = stmt.index;
            s.line = stmt.span.line;
        }
        let irreversible: Vec<String> = reasons
            .iter()
            .filter(|r| r.0)
            .map(|r| r.1.clone())
            .collect();
        if !irreversible.is_empty() {
            self.irreversible.push(Irreversible {
                statement: stmt.index,
                line: stmt.span.line,
                column: stmt.span.column,
                sql: first_line(&stmt.sql),
                reason: irreversible.join("; "),
            });
        } else if out.is_empty() {
            let why: Vec<String> = reasons.iter().map(|r| r.1.clone()).collect();
            self.no_ops.push(NoOp {
                statement: stmt.index,
                line: stmt.span.line,
                sql: first_line(&stmt.sql),
                reason: if why.is_empty() {
                    "nothing to undo".into()
                } else {
                    why.join("; ")
                },
            });
        }
        out
    }

    /// A statement without typed operations: unparsed, a bare query, or something only the
    /// statement text tells.
    fn opaque(&mut self, stmt: &Statement) -> Outcome {
        if let Some(o) = self.by_keywords(stmt) {
            return o;
        }
        match &stmt.kind {
            StatementKind::Unparsed { error, .. } => Outcome::Irreversible(format!(
                "cannot invert procedural or unrecognised code (the statement did not parse: {error})"
            )),
            StatementKind::Parsed => {
                let head = stmt.sql.trim_start().to_ascii_uppercase();
                let is_query = ["SELECT", "WITH", "VALUES", "SHOW", "EXPLAIN", "TABLE"]
                    .iter()
                    .any(|k| head.starts_with(k));
                if is_query && stmt.sql.contains('(') {
                    Outcome::Irreversible(
                        "cannot invert procedural code: the query calls functions whose side effects are unknown".into(),
                    )
                } else if is_query {
                    Outcome::NoOp("a query changes nothing".into())
                } else {
                    Outcome::Irreversible(format!(
                        "{} is not inverted automatically",
                        first_words(&stmt.sql, 3)
                    ))
                }
            }
        }
    }

    fn operation(&mut self, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::CreateTable {
                table,
                columns,
                constraints,
                if_not_exists,
                partition_of,
                ..
            } => {
                if *if_not_exists && self.table(table).is_some() {
                    return Outcome::NoOp(format!(
                        "table {} already existed (IF NOT EXISTS)",
                        table
                    ));
                }
                self.apply_create_table(table, columns, constraints, partition_of.as_ref());
                Outcome::Inverse(vec![tx(format!("DROP TABLE {}", qn(table)))])
            }
            Operation::DropTable {
                table,
                if_exists,
                cascade,
            } => self.drop_table(table, *if_exists, *cascade),
            Operation::RenameTable { table, new_name } => {
                if let Some(k) = self.key(table) {
                    if !self.state.tables.contains_key(&k)
                        && !self.state.views.contains_key(&k)
                        && !self.state.sequences.contains_key(&k)
                    {
                        return Outcome::NoOp(format!(
                            "{table} did not exist (ALTER ... IF EXISTS is a no-op)"
                        ));
                    }
                    self.rename_table(&k, new_name);
                }
                Outcome::Inverse(vec![tx(format!(
                    "ALTER TABLE {} RENAME TO {}",
                    sibling(table, new_name),
                    quote_ident(&table.name)
                ))])
            }
            Operation::AddColumn {
                table,
                column,
                if_not_exists,
            } => {
                if *if_not_exists
                    && self
                        .table(table)
                        .and_then(|t| t.column(&column.name))
                        .is_some()
                {
                    return Outcome::NoOp(format!(
                        "column {}.{} already existed (IF NOT EXISTS)",
                        table, column.name
                    ));
                }
                self.apply_add_column(table, column);
                Outcome::Inverse(vec![tx(format!(
                    "ALTER TABLE {} DROP COLUMN {}",
                    qn(table),
                    quote_ident(&column.name)
                ))])
            }
            Operation::DropColumn {
                table,
                column,
                if_exists,
                cascade,
            } => self.drop_column(table, column, *if_exists, *cascade),
            Operation::RenameColumn {
                table,
                column,
                new_name,
            } => {
                if let Some(t) = self.table_mut(table) {
                    rename_column_in(t, column, new_name);
                }
                let tname = table.name.clone();
                for s in self.state.sequences.values_mut() {
                    if let Some((t, c)) = &mut s.owned_by
                        && *t == tname
                        && c == column
                    {
                        *c = new_name.clone();
                    }
                }
                Outcome::Inverse(vec![tx(format!(
                    "ALTER TABLE {} RENAME COLUMN {} TO {}",
                    qn(table),
                    quote_ident(new_name),
                    quote_ident(column)
                ))])
            }
            Operation::AlterColumnType {
                table,
                column,
                new_type,
                collation,
                using,
            } => self.alter_type(
                table,
                column,
                new_type,
                collation.as_deref(),
                using.as_deref(),
            ),
            Operation::SetNotNull { table, column } => {
                let before = self
                    .table(table)
                    .and_then(|t| t.column(column))
                    .map(|c| c.not_null);
                if let Some(c) = self.table_mut(table).and_then(|t| t.column_mut(column)) {
                    c.not_null = true;
                }
                match before {
                    Some(true) => {
                        Outcome::NoOp(format!("{}.{} was already NOT NULL", table, column))
                    }
                    _ => Outcome::Inverse(vec![tx(format!(
                        "ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL",
                        qn(table),
                        quote_ident(column)
                    ))]),
                }
            }
            Operation::DropNotNull { table, column } => {
                let before = self
                    .table(table)
                    .and_then(|t| t.column(column))
                    .map(|c| c.not_null);
                if let Some(c) = self.table_mut(table).and_then(|t| t.column_mut(column)) {
                    c.not_null = false;
                }
                match before {
                    Some(false) => {
                        Outcome::NoOp(format!("{}.{} was already nullable", table, column))
                    }
                    _ => Outcome::Inverse(vec![
                        tx(format!(
                            "ALTER TABLE {} ALTER COLUMN {} SET NOT NULL",
                            qn(table),
                            quote_ident(column)
                        ))
                        .rev(
                            Reversibility::MayFail,
                            "fails if NULLs were written after the migration",
                        ),
                    ]),
                }
            }
            Operation::SetDefault {
                table,
                column,
                default,
            } => {
                let Some(c) = self.table_mut(table).and_then(|t| t.column_mut(column)) else {
                    return Outcome::Irreversible(format!(
                        "the previous default of {}.{} is unknown (column not in the pre-migration catalog)",
                        table, column
                    ));
                };
                let old = c.default.replace(default.sql.clone());
                Outcome::Inverse(vec![tx(restore_default(table, column, old.as_deref()))])
            }
            Operation::DropDefault { table, column } => {
                let Some(c) = self.table_mut(table).and_then(|t| t.column_mut(column)) else {
                    return Outcome::Irreversible(format!(
                        "the previous default of {}.{} is unknown (column not in the pre-migration catalog)",
                        table, column
                    ));
                };
                match c.default.take() {
                    Some(old) => {
                        Outcome::Inverse(vec![tx(restore_default(table, column, Some(&old)))])
                    }
                    None => Outcome::NoOp(format!("{}.{} had no default", table, column)),
                }
            }
            Operation::AddConstraint { table, constraint } => {
                self.add_constraint(table, constraint)
            }
            Operation::ValidateConstraint { table, name } => {
                let Some(t) = self.table_mut(table) else {
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
            } => self.drop_constraint(table, name, *if_exists, *cascade),
            Operation::RenameConstraint {
                table,
                name,
                new_name,
            } => {
                if let Some(t) = self.table_mut(table)
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
                    Some(n) => n.clone(),
                    None => choose_name(&tname, Some(&name_addition(&colnames)), "idx", |n| {
                        self.relation_taken(n)
                    }),
                };
                let exists = self.find_index(&iname).is_some();
                if *if_not_exists && exists {
                    return Outcome::NoOp(format!("index {iname} already existed (IF NOT EXISTS)"));
                }
                let partitioned = self.table(table).is_some_and(|t| t.kind == "p");
                let deps: Vec<String> = columns.iter().map(|c| index_column_name(c)).collect();
                let def = plain_index(&stmt.sql);
                if let Some(t) = self.table_mut(table) {
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
                } else if let Some(v) = self.key(table).and_then(|k| self.state.views.get_mut(&k)) {
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
                if self.opts.concurrently && !partitioned && !*only {
                    Outcome::Inverse(vec![no_tx(format!("DROP INDEX CONCURRENTLY {target}"))])
                } else {
                    Outcome::Inverse(vec![tx(format!("DROP INDEX {target}"))])
                }
            }
            Operation::DropIndex {
                name, if_exists, ..
            } => self.drop_index(name, *if_exists),
            Operation::RenameIndex { name, new_name } => {
                if self.key(name).is_some()
                    && self.find_index(&name.name).is_none()
                    && !self
                        .state
                        .views
                        .values()
                        .any(|v| v.indexes.contains_key(&name.name))
                {
                    return Outcome::NoOp(format!(
                        "index {name} did not exist (ALTER INDEX IF EXISTS is a no-op)"
                    ));
                }
                if let Some((tk, _)) = self.find_index(&name.name)
                    && let Some(t) = self.state.tables.get_mut(&tk)
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
            Operation::CreateEnum { name, values } => {
                if let Some(k) = self.key(name) {
                    self.state.types.insert(
                        k,
                        TypeSnap::Enum {
                            labels: values.clone(),
                            comment: None,
                        },
                    );
                }
                Outcome::Inverse(vec![tx(format!("DROP TYPE {}", qn(name)))])
            }
            Operation::AddEnumValue {
                name,
                value,
                if_not_exists,
            } => {
                let key = self.key(name);
                if let Some(TypeSnap::Enum { labels, .. }) =
                    key.as_ref().and_then(|k| self.state.types.get_mut(k))
                {
                    if labels.contains(value) {
                        if *if_not_exists {
                            return Outcome::NoOp(format!(
                                "enum {name} already had the value {value:?} (IF NOT EXISTS)"
                            ));
                        }
                    } else {
                        labels.push(value.clone());
                    }
                }
                Outcome::Irreversible(format!(
                    "PostgreSQL cannot remove a value from an enum (there is no ALTER TYPE ... DROP VALUE) and rows may \
                     already hold {value:?}; undoing needs a new type without the value, every column using {name} \
                     re-cast to it (after rows holding {value:?} are changed), the old type dropped and the new one renamed"
                ))
            }
            Operation::RenameEnumValue {
                name,
                value,
                new_value,
            } => {
                if let Some(TypeSnap::Enum { labels, .. }) =
                    self.key(name).and_then(|k| self.state.types.get_mut(&k))
                {
                    for l in labels.iter_mut() {
                        if l == value {
                            *l = new_value.clone();
                        }
                    }
                }
                Outcome::Inverse(vec![tx(format!(
                    "ALTER TYPE {} RENAME VALUE {} TO {}",
                    qn(name),
                    quote_literal(new_value),
                    quote_literal(value)
                ))])
            }
            Operation::DropType {
                name,
                if_exists,
                cascade,
            } => {
                let found = self.key(name).and_then(|k| self.state.types.remove(&k));
                let Some(ty) = found else {
                    return if *if_exists {
                        Outcome::NoOp(format!("type {name} did not exist (IF EXISTS)"))
                    } else {
                        Outcome::Irreversible(format!(
                            "type {name} is not in the pre-migration catalog"
                        ))
                    };
                };
                let mut v = match &ty {
                    TypeSnap::Enum { labels, .. } => vec![tx(format!(
                        "CREATE TYPE {} AS ENUM ({})",
                        qn(name),
                        labels
                            .iter()
                            .map(|l| quote_literal(l))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))],
                    TypeSnap::Domain { definition, .. } => {
                        vec![tx(format!("CREATE DOMAIN {} {}", qn(name), definition))]
                    }
                    TypeSnap::Composite { definition, .. } => {
                        vec![tx(format!("CREATE TYPE {} AS {}", qn(name), definition))]
                    }
                };
                let comment = match &ty {
                    TypeSnap::Enum { comment, .. }
                    | TypeSnap::Domain { comment, .. }
                    | TypeSnap::Composite { comment, .. } => comment,
                };
                if let Some(c) = comment {
                    v.push(tx(format!(
                        "COMMENT ON TYPE {} IS {}",
                        qn(name),
                        quote_literal(c)
                    )));
                }
                if *cascade {
                    Outcome::Partial(
                        v,
                        format!(
                            "DROP TYPE {name} CASCADE also dropped the columns and objects using it; they are not restored"
                        ),
                    )
                } else {
                    Outcome::Inverse(v)
                }
            }
            Operation::Truncate { tables, .. } => {
                if tables
                    .iter()
                    .all(|t| self.table(t).is_some_and(|t| t.origin.is_none()))
                {
                    Outcome::NoOp("truncates only tables this migration creates".into())
                } else {
                    Outcome::Irreversible(format!(
                        "TRUNCATE deletes every row of {}; a rollback script cannot bring data back",
                        tables
                            .iter()
                            .map(|t| t.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            }
            Operation::CreateSchema {
                name,
                if_not_exists,
            } => {
                if *if_not_exists && self.state.schemas.contains(name) {
                    return Outcome::NoOp(format!("schema {name} already existed (IF NOT EXISTS)"));
                }
                self.state.schemas.insert(name.clone());
                Outcome::Inverse(vec![tx(format!("DROP SCHEMA {}", quote_ident(name)))])
            }
            Operation::DropSchema {
                name, if_exists, ..
            } => {
                if *if_exists && !self.state.schemas.contains(name) {
                    return Outcome::NoOp(format!("schema {name} did not exist (IF EXISTS)"));
                }
                Outcome::Irreversible(format!(
                    "DROP SCHEMA {name}: the objects in it (and their data) cannot be recreated from the tenant schema's catalog"
                ))
            }
            Operation::DropDatabase { name } => {
                Outcome::Irreversible(format!("DROP DATABASE {name} destroys everything in it"))
            }
            Operation::Update { table, .. }
            | Operation::Delete { table, .. }
            | Operation::Insert { table, .. } => {
                if self.table(table).is_some_and(|t| t.origin.is_none()) {
                    Outcome::NoOp(format!(
                        "rows of {table} (created by this migration) go away with the table"
                    ))
                } else {
                    let what = match op {
                        Operation::Update { .. } => "UPDATE overwrites values",
                        Operation::Delete { .. } => "DELETE removes rows",
                        _ => "INSERT adds rows that cannot be told apart from existing ones",
                    };
                    Outcome::Irreversible(format!(
                        "data change on {table}: {what}; a schema rollback cannot undo it"
                    ))
                }
            }
            Operation::CreateView {
                name,
                materialized,
                or_replace,
            } => {
                let old = self
                    .key(name)
                    .and_then(|k| self.state.views.get(&k).cloned());
                if let Some(k) = self.key(name) {
                    self.state.views.insert(
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
                let Some(v) = self.key(name).and_then(|k| self.state.views.remove(&k)) else {
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
            Operation::LockTable { .. } => Outcome::NoOp("LOCK changes nothing".into()),
            Operation::Maintenance { command, .. } => {
                Outcome::NoOp(format!("{command} changes no structure"))
            }
            Operation::AlterTableOther { table, action } => self.alter_table_other(table, action),
            Operation::AttachPartition { table, partition } => {
                let bound = partition_bound_sql(&stmt.sql);
                if let Some(k) = self.key(partition)
                    && let Some(p) = self.state.tables.get_mut(&k)
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
                let bound = self.table(partition).and_then(|p| p.partition_of.clone());
                if let Some(p) = self.table_mut(partition) {
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
            Operation::Set { .. } | Operation::Reset { .. } => {
                Outcome::NoOp("session setting".into())
            }
            Operation::Transaction(_) => Outcome::NoOp("transaction control".into()),
            Operation::Do { .. } => {
                Outcome::Irreversible("cannot invert procedural code (DO block)".into())
            }
            Operation::CreateSequence { name } => {
                if let Some(k) = self.key(name) {
                    self.state.sequences.insert(k, SequenceSnap::default());
                }
                Outcome::Inverse(vec![tx(format!("DROP SEQUENCE {}", qn(name)))])
            }
            Operation::CreateExtension { name } => {
                if self.state.extensions.contains_key(name) {
                    return Outcome::NoOp(format!("extension {name} was already installed"));
                }
                self.state
                    .extensions
                    .insert(name.clone(), self.schema().to_string());
                Outcome::Inverse(vec![tx(format!("DROP EXTENSION {}", quote_ident(name)))])
            }
            Operation::CreateFunction { name } => {
                let prefix = format!("{}(", name.name);
                let old: Vec<(String, String)> = if self.key(name).is_some() {
                    self.state
                        .functions
                        .iter()
                        .filter(|(k, _)| k.starts_with(&prefix))
                        .map(|(k, f)| (k.clone(), f.definition.clone()))
                        .collect()
                } else {
                    Vec::new()
                };
                let head: Vec<String> = strip_leading_comments(&stmt.sql)
                    .split_whitespace()
                    .take(4)
                    .map(|w| w.to_ascii_uppercase())
                    .collect();
                let procedure = head.iter().any(|w| w == "PROCEDURE");
                if old.is_empty() {
                    self.state.functions.insert(
                        format!("{}()", name.name),
                        crate::catalog::FunctionSnap::default(),
                    );
                    Outcome::Inverse(vec![tx(format!(
                        "DROP {} {}",
                        if procedure { "PROCEDURE" } else { "FUNCTION" },
                        qn(name)
                    ))])
                } else {
                    let schema = self.schema().to_string();
                    Outcome::Inverse(
                        old.iter()
                            .map(|(_, d)| {
                                tx(unqualify_function(d.trim_end(), &schema)).rev(
                                    Reversibility::MayFail,
                                    "restores the previous body; a new overload with other arguments would stay",
                                )
                            })
                            .collect(),
                    )
                }
            }
            Operation::CreateTrigger { name, table } => {
                let old = self
                    .table(table)
                    .and_then(|t| t.triggers.get(name).cloned());
                if let Some(t) = self.table_mut(table) {
                    t.triggers.insert(name.clone(), String::new());
                }
                let mut v = vec![tx(format!(
                    "DROP TRIGGER {} ON {}",
                    quote_ident(name),
                    qn(table)
                ))];
                if let Some(def) = old.filter(|d| !d.is_empty()) {
                    v.push(tx(def));
                }
                Outcome::Inverse(v)
            }
            Operation::Comment {
                object_kind,
                object,
                text,
            } => self.comment(object_kind, object, text.as_deref()),
            Operation::Other { .. } => self.opaque(stmt),
            _ => Outcome::Irreversible(format!(
                "{} is not inverted automatically (operation not known to the rollback generator)",
                first_words(&stmt.sql, 3)
            )),
        }
    }

    fn find_index(&self, name: &str) -> Option<(String, IndexSnap)> {
        for (tk, t) in &self.state.tables {
            if let Some(i) = t.indexes.get(name) {
                return Some((tk.clone(), i.clone()));
            }
        }
        None
    }

    fn apply_create_table(
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

    fn apply_add_column(&mut self, table: &QualifiedName, c: &ColumnDef) {
        let Some(k) = self.key(table) else { return };
        let tname = k.clone();
        let col = ColumnSnap {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            not_null: c.not_null || c.primary_key,
            default: c.default.as_ref().map(|d| d.sql.clone()),
            collation: c.collation.clone(),
            identity: c.identity.then(|| "BY DEFAULT".to_string()),
            generated: None,
            comment: None,
        };
        if let Some(t) = self.state.tables.get_mut(&k) {
            t.columns.push(col);
        } else {
            return;
        }
        if c.serial {
            let seq = make_object_name(&tname, Some(&c.name), Some("seq"));
            self.state.sequences.insert(
                seq,
                SequenceSnap {
                    owned_by: Some((tname.clone(), c.name.clone())),
                    ..Default::default()
                },
            );
        }
        let cols = vec![c.name.clone()];
        if c.primary_key {
            self.register_constraint(
                table,
                &ConstraintDef {
                    name: None,
                    kind: ConstraintKind::PrimaryKey {
                        columns: cols.clone(),
                        using_index: None,
                    },
                    not_valid: false,
                },
            );
        }
        if c.unique {
            self.register_constraint(
                table,
                &ConstraintDef {
                    name: None,
                    kind: ConstraintKind::Unique {
                        columns: cols.clone(),
                        using_index: None,
                        nulls_not_distinct: false,
                    },
                    not_valid: false,
                },
            );
        }
        if let Some(ConstraintKind::ForeignKey {
            ref_table,
            ref_columns,
            on_delete,
            on_update,
            ..
        }) = &c.references
        {
            self.register_constraint(
                table,
                &ConstraintDef {
                    name: None,
                    kind: ConstraintKind::ForeignKey {
                        columns: cols.clone(),
                        ref_table: ref_table.clone(),
                        ref_columns: ref_columns.clone(),
                        on_delete: *on_delete,
                        on_update: *on_update,
                    },
                    not_valid: false,
                },
            );
        }
        if let Some(e) = &c.check {
            self.register_constraint(
                table,
                &ConstraintDef {
                    name: None,
                    kind: ConstraintKind::Check { expr: e.clone() },
                    not_valid: false,
                },
            );
        }
    }

    /// Add a constraint created by the migration to the working catalog; returns its name.
    fn register_constraint(&mut self, table: &QualifiedName, c: &ConstraintDef) -> String {
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
        let Some(t) = self.table_mut(table) else {
            return name;
        };
        let index = if matches!(code, "p" | "u" | "x") {
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

    fn rename_table(&mut self, old: &str, new: &str) {
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

    fn drop_table(&mut self, table: &QualifiedName, if_exists: bool, cascade: bool) -> Outcome {
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
        let owned: Vec<(String, SequenceSnap)> = self
            .state
            .sequences
            .iter()
            .filter(|(_, s)| s.owned_by.as_ref().is_some_and(|(ot, _)| *ot == k))
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
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
        let qk = quote_ident(&k);
        let mut extra = Vec::new();
        if cascade {
            let others: Vec<(String, String, ConstraintSnap)> = self
                .state
                .tables
                .iter()
                .filter(|(n, _)| **n != k)
                .flat_map(|(n, ot)| {
                    ot.constraints
                        .iter()
                        .filter(|(_, c)| {
                            c.kind == "f" && c.ref_table.as_deref() == Some(qk.as_str())
                        })
                        .map(|(cn, c)| (n.clone(), cn.clone(), c.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            for (ot, cn, c) in others {
                let oq = sibling(table, &ot);
                extra.extend(self.readd_fk_or_check(&oq, &ot, &cn, &c));
                if let Some(x) = self.state.tables.get_mut(&ot) {
                    x.constraints.remove(&cn);
                }
            }
        }
        v.extend(extra);
        self.state.tables.remove(&k);
        for (n, _) in owned {
            self.state.sequences.remove(&n);
        }
        let mut reason =
            format!("DROP TABLE {table}: its rows are lost; the rollback recreates an empty table");
        if cascade {
            reason.push_str("; CASCADE may also have dropped views that are not restored");
        }
        if t.origin.is_none() {
            // Created earlier in this migration: nothing of value existed before.
            return Outcome::Inverse(v);
        }
        Outcome::Partial(v, reason)
    }

    /// `CREATE TABLE` and everything attached to it, from the working catalog.
    fn table_sql(&mut self, table: &QualifiedName, t: &TableSnap) -> Vec<RollbackStatement> {
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

    /// Re-add a foreign key or check: `NOT VALID` now, `VALIDATE` at the end of the script in its
    /// own transaction (when the constraint existed before the migration and was validated).
    fn readd_fk_or_check(
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

    fn drop_column(
        &mut self,
        table: &QualifiedName,
        column: &str,
        if_exists: bool,
        cascade: bool,
    ) -> Outcome {
        let Some(t) = self.table(table).cloned() else {
            return Outcome::Irreversible(format!(
                "table {table} is not in the pre-migration catalog; cannot re-add {column}"
            ));
        };
        let Some(col) = t.column(column).cloned() else {
            return if if_exists {
                Outcome::NoOp(format!("column {table}.{column} did not exist (IF EXISTS)"))
            } else {
                Outcome::Irreversible(format!(
                    "column {table}.{column} is not in the pre-migration catalog"
                ))
            };
        };
        let k = table.name.clone();
        let q = qn(table);
        let loss = Reversibility::DataLoss;
        let mut v = Vec::new();
        let owned: Vec<(String, SequenceSnap)> = self
            .state
            .sequences
            .iter()
            .filter(|(_, s)| {
                s.owned_by
                    .as_ref()
                    .is_some_and(|(ot, oc)| *ot == k && oc == column)
            })
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
        for (n, s) in &owned {
            if !s.data_type.is_empty() {
                v.push(
                    tx(sequence_sql(&sibling(table, n), s)).rev(loss, "sequence position restarts"),
                );
            }
        }
        let fills = col.default.is_some() || col.identity.is_some() || col.generated.is_some();
        v.push(
            tx(format!(
                "ALTER TABLE {q} ADD COLUMN {}",
                column_sql(&col, fills)
            ))
            .rev(
                loss,
                format!("re-adds {table}.{column}; its values are gone"),
            ),
        );
        if col.not_null && !fills {
            v.push(
                tx(format!(
                    "ALTER TABLE {q} ALTER COLUMN {} SET NOT NULL",
                    quote_ident(column)
                ))
                .rev(
                    Reversibility::MayFail,
                    "fails on a table with rows: the dropped values must be backfilled first",
                ),
            );
        }
        for (n, s) in &owned {
            if !s.data_type.is_empty() {
                v.push(tx(format!(
                    "ALTER SEQUENCE {} OWNED BY {q}.{}",
                    sibling(table, n),
                    quote_ident(column)
                )));
            }
        }
        if let Some(cm) = &col.comment {
            v.push(tx(format!(
                "COMMENT ON COLUMN {q}.{} IS {}",
                quote_ident(column),
                quote_literal(cm)
            )));
        }
        // Constraints and indexes that used the column went with it.
        let mut dropped_idx: Vec<String> = Vec::new();
        for (cn, c) in &t.constraints {
            if c.inherited || !c.columns.iter().any(|x| x == column) {
                continue;
            }
            if let Some(ix) = &c.index
                && matches!(c.kind.as_str(), "p" | "u" | "x")
            {
                dropped_idx.push(ix.clone());
            }
            if matches!(c.kind.as_str(), "f" | "c") {
                let mut r = self.readd_fk_or_check(&q, &k, cn, c);
                v.append(&mut r);
            } else {
                v.push(tx(format!(
                    "ALTER TABLE {q} ADD CONSTRAINT {} {}",
                    quote_ident(cn),
                    c.definition
                )));
            }
            if let Some(cm) = &c.comment {
                v.push(tx(format!(
                    "COMMENT ON CONSTRAINT {} ON {q} IS {}",
                    quote_ident(cn),
                    quote_literal(cm)
                )));
            }
        }
        let mut idx_stmts = Vec::new();
        for (iname, i) in &t.indexes {
            if i.constraint || !i.columns.iter().any(|x| x == column) {
                continue;
            }
            dropped_idx.push(iname.clone());
            if i.definition.is_empty() {
                continue;
            }
            if self.opts.concurrently && t.kind != "p" {
                idx_stmts.push(no_tx(concurrent_index(&i.definition)));
            } else {
                idx_stmts.push(tx(i.definition.clone()));
            }
            if let Some(cm) = &i.comment {
                idx_stmts.push(tx(format!(
                    "COMMENT ON INDEX {} IS {}",
                    sibling(table, iname),
                    quote_literal(cm)
                )));
            }
        }
        v.extend(idx_stmts);
        // Foreign keys of other tables that relied on a unique key over the column (CASCADE).
        if cascade {
            let qk = quote_ident(&k);
            let deps: Vec<(String, String, ConstraintSnap)> = self
                .state
                .tables
                .iter()
                .filter(|(tn, _)| **tn != k)
                .flat_map(|(tn, ot)| {
                    ot.constraints
                        .iter()
                        .filter(|(_, f)| {
                            f.kind == "f"
                                && f.ref_table.as_deref() == Some(qk.as_str())
                                && f.index.as_ref().is_some_and(|i| dropped_idx.contains(i))
                        })
                        .map(|(fc, f)| (tn.clone(), fc.clone(), f.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            for (tn, fc, f) in deps {
                let oq = sibling(table, &tn);
                v.extend(self.readd_fk_or_check(&oq, &tn, &fc, &f));
                if let Some(x) = self.state.tables.get_mut(&tn) {
                    x.constraints.remove(&fc);
                }
            }
        }
        let mut notes = format!(
            "DROP COLUMN {table}.{column}: its values are lost; the rollback re-adds the column empty"
        );
        if col.default.is_some() {
            notes.push_str(" (filled with its default)");
        }
        if cascade {
            notes.push_str("; CASCADE may also have dropped views on the column, which are not restored (foreign keys of other tables are)");
        }
        // Apply.
        if let Some(tm) = self.table_mut(table) {
            tm.columns.retain(|c| c.name != column);
            tm.constraints
                .retain(|_, c| c.inherited || !c.columns.iter().any(|x| x == column));
            for i in &dropped_idx {
                tm.indexes.remove(i);
            }
        }
        for (n, _) in owned {
            self.state.sequences.remove(&n);
        }
        if t.origin.is_none() {
            return Outcome::Inverse(v);
        }
        Outcome::Partial(v, notes)
    }

    fn alter_type(
        &mut self,
        table: &QualifiedName,
        column: &str,
        new_type: &str,
        collation: Option<&str>,
        using: Option<&str>,
    ) -> Outcome {
        let Some(col) = self.table(table).and_then(|t| t.column(column)).cloned() else {
            return Outcome::Irreversible(format!(
                "the previous type of {table}.{column} is unknown (column not in the pre-migration catalog)"
            ));
        };
        if let Some(c) = self.table_mut(table).and_then(|t| t.column_mut(column)) {
            c.data_type = new_type.to_string();
            c.collation = collation.map(str::to_string);
        }
        let q = qn(table);
        let qc = quote_ident(column);
        let (mut rev, mut note) = narrowing(new_type, &col.data_type);
        if let Some(u) = using {
            let plain = u.replace(['"', ' '], "").to_ascii_lowercase();
            let trivial = plain == column.to_ascii_lowercase()
                || plain.starts_with(&format!("{}::", column.to_ascii_lowercase()));
            if !trivial && rev == Reversibility::Exact {
                rev = Reversibility::MayFail;
            }
            if !trivial {
                note = format!(
                    "{note}; the migration converted with USING {u}, whose inverse is not derived automatically"
                );
            }
        }
        let mut v = Vec::new();
        if let Some(d) = &col.default {
            v.push(tx(format!(
                "ALTER TABLE {q} ALTER COLUMN {qc} DROP DEFAULT"
            )));
            let mut s = format!("ALTER TABLE {q} ALTER COLUMN {qc} TYPE {}", col.data_type);
            if let Some(c) = &col.collation {
                s.push_str(&format!(" COLLATE {c}"));
            }
            s.push_str(&format!(" USING {qc}::{}", col.data_type));
            v.push(tx(s).rev(rev, note));
            v.push(tx(format!(
                "ALTER TABLE {q} ALTER COLUMN {qc} SET DEFAULT {d}"
            )));
        } else {
            let mut s = format!("ALTER TABLE {q} ALTER COLUMN {qc} TYPE {}", col.data_type);
            if let Some(c) = &col.collation {
                s.push_str(&format!(" COLLATE {c}"));
            }
            s.push_str(&format!(" USING {qc}::{}", col.data_type));
            v.push(tx(s).rev(rev, note));
        }
        Outcome::Inverse(v)
    }

    fn add_constraint(&mut self, table: &QualifiedName, c: &ConstraintDef) -> Outcome {
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

    fn drop_constraint(
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
            let qk = quote_ident(&k);
            let deps: Vec<(String, String, ConstraintSnap)> = self
                .state
                .tables
                .iter()
                .flat_map(|(tn, ot)| {
                    ot.constraints
                        .iter()
                        .filter(|(_, f)| {
                            f.kind == "f"
                                && f.ref_table.as_deref() == Some(qk.as_str())
                                && f.index == c.index
                        })
                        .map(|(fc, f)| (tn.clone(), fc.clone(), f.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            for (tn, fc, f) in deps {
                let oq = sibling(table, &tn);
                v.extend(self.readd_fk_or_check(&oq, &tn, &fc, &f));
                if let Some(x) = self.state.tables.get_mut(&tn) {
                    x.constraints.remove(&fc);
                }
            }
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

    fn drop_index(&mut self, name: &QualifiedName, if_exists: bool) -> Outcome {
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

    fn alter_table_other(&mut self, table: &QualifiedName, action: &str) -> Outcome {
        let q = qn(table);
        let Some(t) = self.table_mut(table) else {
            return Outcome::Irreversible(format!(
                "ALTER TABLE ... {action} on a table not in the pre-migration catalog"
            ));
        };
        match action {
            "set logged" | "set unlogged" => {
                let to_unlogged = action == "set unlogged";
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
            "enable row level security" | "disable row level security" => {
                let on = action.starts_with("enable");
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
                other.to_uppercase()
            )),
        }
    }

    fn comment(&mut self, kind: &str, object: &str, _text: Option<&str>) -> Outcome {
        let parts = split_dotted_plain(object);
        let schema = self.schema().to_string();
        let in_schema = |p: &[String], n: usize| -> Option<Vec<String>> {
            // strip a leading schema qualifier equal to ours
            if p.len() == n + 1 && p[0] == schema {
                Some(p[1..].to_vec())
            } else if p.len() == n {
                Some(p.to_vec())
            } else {
                None
            }
        };
        let object_sql = parts
            .iter()
            .map(|p| quote_ident(p))
            .collect::<Vec<_>>()
            .join(".");
        let kind_up = kind.to_uppercase();
        let old: Option<Option<String>> = match kind {
            "table" => in_schema(&parts, 1).and_then(|p| {
                let t = self.state.tables.get_mut(&p[0])?;
                Some(std::mem::replace(&mut t.comment, _text.map(str::to_string)))
            }),
            "column" => in_schema(&parts, 2).and_then(|p| {
                let c = self.state.tables.get_mut(&p[0])?.column_mut(&p[1])?;
                Some(std::mem::replace(&mut c.comment, _text.map(str::to_string)))
            }),
            "view" | "materialized view" => in_schema(&parts, 1).and_then(|p| {
                let v = self.state.views.get_mut(&p[0])?;
                Some(std::mem::replace(&mut v.comment, _text.map(str::to_string)))
            }),
            "index" => in_schema(&parts, 1).and_then(|p| {
                let t = self
                    .state
                    .tables
                    .values_mut()
                    .find(|t| t.indexes.contains_key(&p[0]))?;
                let i = t.indexes.get_mut(&p[0])?;
                Some(std::mem::replace(&mut i.comment, _text.map(str::to_string)))
            }),
            "sequence" => in_schema(&parts, 1).and_then(|p| {
                let s = self.state.sequences.get_mut(&p[0])?;
                Some(std::mem::replace(&mut s.comment, _text.map(str::to_string)))
            }),
            "type" => in_schema(&parts, 1).and_then(|p| {
                let ty = self.state.types.get_mut(&p[0])?;
                let c = match ty {
                    TypeSnap::Enum { comment, .. }
                    | TypeSnap::Domain { comment, .. }
                    | TypeSnap::Composite { comment, .. } => comment,
                };
                Some(std::mem::replace(c, _text.map(str::to_string)))
            }),
            "function" | "procedure" => {
                let (name_part, args) = match object.find('(') {
                    Some(p) => (&object[..p], Some(&object[p..])),
                    None => (object, None),
                };
                let fparts = split_dotted_plain(name_part);
                in_schema(&fparts, 1).and_then(|p| {
                    let prefix = format!("{}(", p[0]);
                    let keys: Vec<String> = self
                        .state
                        .functions
                        .keys()
                        .filter(|k| k.starts_with(&prefix))
                        .cloned()
                        .collect();
                    let key = if keys.len() == 1 {
                        keys[0].clone()
                    } else {
                        let want = args.map(normalise_args)?;
                        keys.into_iter()
                            .find(|k| normalise_args(&k[p[0].len()..]) == want)?
                    };
                    let f = self.state.functions.get_mut(&key)?;
                    Some(std::mem::replace(&mut f.comment, _text.map(str::to_string)))
                })
            }
            _ => None,
        };
        let object_sql = if matches!(kind, "function" | "procedure") {
            let (name_part, args) = match object.find('(') {
                Some(p) => (&object[..p], &object[p..]),
                None => (object, ""),
            };
            format!(
                "{}{args}",
                split_dotted_plain(name_part)
                    .iter()
                    .map(|p| quote_ident(p))
                    .collect::<Vec<_>>()
                    .join(".")
            )
        } else {
            object_sql
        };
        match old {
            Some(old) => Outcome::Inverse(vec![tx(format!(
                "COMMENT ON {kind_up} {object_sql} IS {}",
                old.as_deref().map_or("NULL".to_string(), quote_literal)
            ))]),
            None => Outcome::Irreversible(format!(
                "the previous comment on {kind} {object} is unknown (object not in the pre-migration catalog)"
            )),
        }
    }

    /// Statements recognised from their text: DROP FUNCTION/TRIGGER/SEQUENCE/EXTENSION/DOMAIN,
    /// CREATE DOMAIN/POLICY/TYPE (composite), ALTER SEQUENCE, GRANT/REVOKE, ANALYZE, ...
    fn by_keywords(&mut self, stmt: &Statement) -> Option<Outcome> {
        let sql = strip_leading_comments(&stmt.sql);
        let words: Vec<String> = sql
            .split_whitespace()
            .take(4)
            .map(|w| w.to_ascii_uppercase())
            .collect();
        let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
        let after = |n: usize| -> &str {
            let mut rest = sql;
            for _ in 0..n {
                rest = rest.trim_start();
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                rest = &rest[end..];
            }
            rest.trim_start()
        };
        let if_exists = |s: &str| -> (bool, String) {
            let up = s.to_ascii_uppercase();
            if up.starts_with("IF EXISTS") {
                (true, s[9..].trim_start().to_string())
            } else {
                (false, s.to_string())
            }
        };
        match (w(0), w(1)) {
            ("DROP", "FUNCTION") | ("DROP", "PROCEDURE") => {
                let (ie, rest) = if_exists(after(2));
                let mut out = Vec::new();
                let mut missing = Vec::new();
                for item in split_top_level(&rest) {
                    let parts = split_dotted(&item);
                    let Some(fname) = parts.last().cloned() else {
                        continue;
                    };
                    let other_schema = parts.len() > 1 && parts[0] != self.schema();
                    let prefix = format!("{fname}(");
                    let keys: Vec<String> = if other_schema {
                        Vec::new()
                    } else {
                        self.state
                            .functions
                            .keys()
                            .filter(|k| k.starts_with(&prefix))
                            .cloned()
                            .collect()
                    };
                    // With an argument list, pick the overload whose identity arguments match.
                    let wanted = item.find('(').map(|p| normalise_args(&item[p..]));
                    let keys: Vec<String> = match &wanted {
                        Some(a) if keys.len() > 1 => keys
                            .into_iter()
                            .filter(|k| normalise_args(&k[fname.len()..]) == *a)
                            .collect(),
                        _ => keys,
                    };
                    if keys.is_empty() {
                        missing.push(item.trim().to_string());
                    }
                    for k in keys {
                        if let Some(f) = self.state.functions.remove(&k) {
                            if f.definition.is_empty() {
                                continue;
                            }
                            out.push(tx(unqualify_function(
                                f.definition.trim_end(),
                                &self.state.schema,
                            )));
                            if let Some(c) = f.comment {
                                let kw = if w(1) == "PROCEDURE" {
                                    "PROCEDURE"
                                } else {
                                    "FUNCTION"
                                };
                                out.push(tx(format!(
                                    "COMMENT ON {kw} {k} IS {}",
                                    quote_literal(&c)
                                )));
                            }
                        }
                    }
                }
                Some(if missing.is_empty() || ie {
                    if out.is_empty() {
                        Outcome::NoOp("function did not exist (IF EXISTS)".into())
                    } else {
                        Outcome::Inverse(out)
                    }
                } else {
                    Outcome::Irreversible(format!(
                        "function {} is not in the pre-migration catalog",
                        missing.join(", ")
                    ))
                })
            }
            ("DROP", "TRIGGER") => {
                let (ie, rest) = if_exists(after(2));
                let (tname, r) = split_ident(&rest);
                let tname = tname?;
                let r = r.trim_start();
                let on = r.get(..2).is_some_and(|x| x.eq_ignore_ascii_case("on"));
                let tbl = if on {
                    split_dotted(&r[2..])
                } else {
                    Vec::new()
                };
                let tkey = match tbl.as_slice() {
                    [t] => Some(t.clone()),
                    [s, t] if *s == self.state.schema => Some(t.clone()),
                    _ => None,
                };
                let def = tkey
                    .as_ref()
                    .and_then(|t| self.state.tables.get_mut(t))
                    .and_then(|t| t.triggers.remove(&tname));
                Some(match def {
                    Some(d) if !d.is_empty() => Outcome::Inverse(vec![tx(d)]),
                    Some(_) => {
                        Outcome::NoOp(format!("trigger {tname} was created by this migration"))
                    }
                    None if ie => {
                        Outcome::NoOp(format!("trigger {tname} did not exist (IF EXISTS)"))
                    }
                    None => Outcome::Irreversible(format!(
                        "trigger {tname} is not in the pre-migration catalog"
                    )),
                })
            }
            ("DROP", "SEQUENCE") => {
                let (ie, rest) = if_exists(after(2));
                let mut out = Vec::new();
                let mut missing = Vec::new();
                for item in split_top_level(&rest) {
                    let parts = split_dotted(&item);
                    let Some(n) = parts.last().cloned() else {
                        continue;
                    };
                    let q = QualifiedName {
                        schema: (parts.len() > 1).then(|| parts[0].clone()),
                        name: n.clone(),
                    };
                    match self.key(&q).and_then(|k| self.state.sequences.remove(&k)) {
                        Some(s) if !s.data_type.is_empty() => {
                            out.push(tx(sequence_sql(&qn(&q), &s)));
                            if let Some((t, c)) = &s.owned_by {
                                out.push(tx(format!(
                                    "ALTER SEQUENCE {} OWNED BY {}.{}",
                                    qn(&q),
                                    sibling(&q, t),
                                    quote_ident(c)
                                )));
                            }
                        }
                        Some(_) => {}
                        None => missing.push(n),
                    }
                }
                Some(if missing.is_empty() || ie {
                    if out.is_empty() {
                        Outcome::NoOp("nothing to recreate".into())
                    } else {
                        Outcome::Partial(
                            out,
                            "the sequence's position is lost; it restarts at its START value"
                                .into(),
                        )
                    }
                } else {
                    Outcome::Irreversible(format!(
                        "sequence {} is not in the pre-migration catalog",
                        missing.join(", ")
                    ))
                })
            }
            ("DROP", "EXTENSION") => {
                let (ie, rest) = if_exists(after(2));
                let mut out = Vec::new();
                for item in split_top_level(&rest) {
                    let Some(n) = split_dotted(&item).first().cloned() else {
                        continue;
                    };
                    match self.state.extensions.remove(&n) {
                        Some(s) => out.push(tx(format!(
                            "CREATE EXTENSION {} SCHEMA {}",
                            quote_ident(&n),
                            quote_ident(&s)
                        ))),
                        None if ie => {}
                        None => {
                            return Some(Outcome::Irreversible(format!(
                                "extension {n} is not in the pre-migration catalog"
                            )));
                        }
                    }
                }
                Some(if out.is_empty() {
                    Outcome::NoOp("extension did not exist (IF EXISTS)".into())
                } else {
                    Outcome::Inverse(out)
                })
            }
            ("DROP", "DOMAIN") => {
                let (ie, rest) = if_exists(after(2));
                let mut out = Vec::new();
                for item in split_top_level(&rest) {
                    let parts = split_dotted(&item);
                    let Some(n) = parts.last().cloned() else {
                        continue;
                    };
                    let q = QualifiedName {
                        schema: (parts.len() > 1).then(|| parts[0].clone()),
                        name: n.clone(),
                    };
                    match self.key(&q).and_then(|k| self.state.types.remove(&k)) {
                        Some(TypeSnap::Domain { definition, .. }) => {
                            out.push(tx(format!("CREATE DOMAIN {} {definition}", qn(&q))))
                        }
                        _ if ie => {}
                        _ => {
                            return Some(Outcome::Irreversible(format!(
                                "domain {n} is not in the pre-migration catalog"
                            )));
                        }
                    }
                }
                Some(if out.is_empty() {
                    Outcome::NoOp("domain did not exist (IF EXISTS)".into())
                } else {
                    Outcome::Inverse(out)
                })
            }
            ("CREATE", "DOMAIN") => {
                let parts = split_dotted(after(2));
                let n = parts.last()?.clone();
                let q = QualifiedName {
                    schema: (parts.len() > 1).then(|| parts[0].clone()),
                    name: n,
                };
                if let Some(k) = self.key(&q) {
                    self.state.types.insert(
                        k,
                        TypeSnap::Domain {
                            definition: String::new(),
                            comment: None,
                        },
                    );
                }
                Some(Outcome::Inverse(vec![tx(format!(
                    "DROP DOMAIN {}",
                    qn(&q)
                ))]))
            }
            ("CREATE", "TYPE") => {
                let parts = split_dotted(after(2));
                let n = parts.last()?.clone();
                let q = QualifiedName {
                    schema: (parts.len() > 1).then(|| parts[0].clone()),
                    name: n,
                };
                Some(Outcome::Inverse(vec![tx(format!("DROP TYPE {}", qn(&q)))]))
            }
            ("CREATE", "POLICY") => {
                let (pname, r) = split_ident(after(2));
                let pname = pname?;
                let r = r.trim_start();
                let tbl = if r.get(..2).is_some_and(|x| x.eq_ignore_ascii_case("on")) {
                    split_dotted(&r[2..])
                } else {
                    return None;
                };
                let tq = match tbl.as_slice() {
                    [t] => QualifiedName::new(t.clone()),
                    [s, t] => QualifiedName::qualified(s.clone(), t.clone()),
                    _ => return None,
                };
                Some(Outcome::Inverse(vec![tx(format!(
                    "DROP POLICY {} ON {}",
                    quote_ident(&pname),
                    qn(&tq)
                ))]))
            }
            ("CREATE", "OR")
                if w(2) == "REPLACE" && (w(3) == "FUNCTION" || w(3) == "PROCEDURE") =>
            {
                None
            }
            ("ALTER", "SEQUENCE") => {
                let (_, rest) = if_exists(after(2));
                let parts = split_dotted(&rest);
                let n = parts.last()?.clone();
                let q = QualifiedName {
                    schema: (parts.len() > 1).then(|| parts[0].clone()),
                    name: n.clone(),
                };
                let s = self
                    .key(&q)
                    .and_then(|k| self.state.sequences.get(&k).cloned());
                Some(match s {
                    Some(s) if !s.data_type.is_empty() => {
                        let mut sql = format!(
                            "ALTER SEQUENCE {} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {}{}",
                            qn(&q),
                            s.data_type,
                            s.increment,
                            s.min,
                            s.max,
                            s.start,
                            s.cache,
                            if s.cycle { " CYCLE" } else { " NO CYCLE" }
                        );
                        match &s.owned_by {
                            Some((t, c)) => sql.push_str(&format!(
                                " OWNED BY {}.{}",
                                sibling(&q, t),
                                quote_ident(c)
                            )),
                            None => sql.push_str(" OWNED BY NONE"),
                        }
                        Outcome::Partial(
                            vec![tx(sql)],
                            format!(
                                "ALTER SEQUENCE {n}: the parameters are restored, a changed current value (RESTART) is not"
                            ),
                        )
                    }
                    Some(_) => Outcome::NoOp(format!("sequence {n} is created by this migration")),
                    None => Outcome::Irreversible(format!(
                        "sequence {n} is not in the pre-migration catalog"
                    )),
                })
            }
            ("GRANT", _) | ("REVOKE", _) => Some(Outcome::Irreversible(
                "privileges are not introspected; GRANT/REVOKE is not inverted".into(),
            )),
            ("ANALYZE", _)
            | ("ANALYSE", _)
            | ("VACUUM", _)
            | ("CLUSTER", _)
            | ("CHECKPOINT", _)
            | ("REINDEX", _) => Some(Outcome::NoOp(format!("{} changes no structure", w(0)))),
            ("DROP", "INDEX") => {
                // DROP INDEX CONCURRENTLY that did not parse into an operation.
                let mut rest = after(2);
                if rest.to_ascii_uppercase().starts_with("CONCURRENTLY") {
                    rest = rest[12..].trim_start();
                }
                let (ie, rest) = if_exists(rest);
                let mut out = Vec::new();
                for item in split_top_level(&rest) {
                    let parts = split_dotted(&item);
                    let Some(n) = parts.last().cloned() else {
                        continue;
                    };
                    let q = QualifiedName {
                        schema: (parts.len() > 1).then(|| parts[0].clone()),
                        name: n,
                    };
                    match self.drop_index(&q, ie) {
                        Outcome::Inverse(v) => out.extend(v),
                        other => return Some(other),
                    }
                }
                Some(Outcome::Inverse(out))
            }
            _ => None,
        }
    }

    fn finish(self) -> Rollback {
        let mut statements: Vec<RollbackStatement> = Vec::new();
        for v in self.per_statement.into_iter().rev() {
            statements.extend(v);
        }
        let mut validations = self.validations;
        validations.reverse();
        for mut s in validations {
            s.placement = Placement::OwnTransaction;
            s.note = Some("validates a constraint re-added NOT VALID above".into());
            statements.push(s);
        }
        crate::assemble(
            &self.migration.file,
            statements,
            self.irreversible,
            self.no_ops,
            self.opts,
        )
    }
}

fn alter_pass(op: &Operation) -> u8 {
    match op {
        Operation::DropConstraint { .. } | Operation::DropColumn { .. } => 0,
        Operation::AlterColumnType { .. } => 1,
        Operation::AddColumn { .. } => 2,
        Operation::SetNotNull { .. }
        | Operation::DropNotNull { .. }
        | Operation::SetDefault { .. }
        | Operation::DropDefault { .. } => 3,
        Operation::AddConstraint { constraint, .. } => match constraint.kind {
            ConstraintKind::PrimaryKey { .. }
            | ConstraintKind::Unique { .. }
            | ConstraintKind::Exclusion { .. } => 4,
            _ => 5,
        },
        _ => 6,
    }
}

fn restore_default(table: &QualifiedName, column: &str, old: Option<&str>) -> String {
    match old {
        Some(d) => format!(
            "ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {d}",
            qn(table),
            quote_ident(column)
        ),
        None => format!(
            "ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT",
            qn(table),
            quote_ident(column)
        ),
    }
}

fn rename_column_in(t: &mut TableSnap, old: &str, new: &str) {
    if let Some(c) = t.column_mut(old) {
        c.name = new.to_string();
    }
    for c in t.constraints.values_mut() {
        for x in &mut c.columns {
            if x == old {
                *x = new.to_string();
            }
        }
    }
    for i in t.indexes.values_mut() {
        for x in &mut i.columns {
            if x == old {
                *x = new.to_string();
            }
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

/// Is the cast from the type after the migration back to the old one lossy?
fn narrowing(new_type: &str, old_type: &str) -> (Reversibility, String) {
    let n = new_type.trim().to_ascii_lowercase();
    let o = old_type.trim().to_ascii_lowercase();
    let int_rank = |t: &str| -> Option<u8> {
        match t {
            "smallint" | "int2" => Some(1),
            "integer" | "int" | "int4" | "serial" => Some(2),
            "bigint" | "int8" | "bigserial" => Some(3),
            _ => None,
        }
    };
    let texty = |t: &str| {
        t == "text"
            || t.starts_with("character varying")
            || t.starts_with("varchar")
            || t.starts_with("char")
    };
    let len = |t: &str| -> Option<u32> {
        t.split_once('(')
            .and_then(|(_, r)| r.trim_end_matches(')').trim().parse().ok())
    };
    if n == o {
        return (Reversibility::Exact, "same type".into());
    }
    if let (Some(a), Some(b)) = (int_rank(&n), int_rank(&o)) {
        return if a <= b {
            (Reversibility::Exact, format!("{n} fits in {o}"))
        } else {
            (
                Reversibility::MayFail,
                format!(
                    "{n} values outside the {o} range make the cast back fail (integer out of range)"
                ),
            )
        };
    }
    if texty(&n) && texty(&o) {
        return match (len(&n), len(&o)) {
            (_, None) if o == "text" || o.starts_with("character varying") && len(&o).is_none() => {
                (Reversibility::Exact, format!("{o} holds every {n} value"))
            }
            (Some(a), Some(b)) if a <= b => (Reversibility::Exact, format!("{n} fits in {o}")),
            _ => (
                Reversibility::MayLoseData,
                format!(
                    "casting {n} back to {o} silently truncates values longer than {} characters",
                    len(&o).unwrap_or(0)
                ),
            ),
        };
    }
    if n.starts_with("numeric") || n.starts_with("double") || n == "real" {
        if int_rank(&o).is_some() {
            return (
                Reversibility::MayLoseData,
                format!("casting {n} back to {o} rounds fractions and may overflow"),
            );
        }
        if o.starts_with("numeric(") || o == "real" {
            return (
                Reversibility::MayLoseData,
                format!("casting {n} back to {o} may round or overflow"),
            );
        }
    }
    if n.starts_with("timestamp") && o.starts_with("timestamp") {
        return (
            Reversibility::MayLoseData,
            format!("casting {n} back to {o} converts through the session time zone"),
        );
    }
    if texty(&o) && o == "text" {
        return (Reversibility::Exact, "every value has a text form".into());
    }
    (
        Reversibility::MayFail,
        format!("the cast from {n} back to {o} may fail for values written after the migration"),
    )
}

fn first_line(sql: &str) -> String {
    let l = strip_leading_comments(sql)
        .lines()
        .next()
        .unwrap_or("")
        .trim();
    if l.chars().count() > 100 {
        format!("{}…", l.chars().take(100).collect::<String>())
    } else {
        l.to_string()
    }
}

fn first_words(sql: &str, n: usize) -> String {
    strip_leading_comments(sql)
        .split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

fn strip_leading_comments(sql: &str) -> &str {
    let mut s = sql.trim_start();
    loop {
        if let Some(r) = s.strip_prefix("--") {
            s = r.find('\n').map_or("", |p| &r[p + 1..]).trim_start();
        } else if let Some(r) = s.strip_prefix("/*") {
            s = r.find("*/").map_or("", |p| &r[p + 2..]).trim_start();
        } else {
            return s;
        }
    }
}

/// Split `a, b(x, y), c CASCADE` on top-level commas, dropping a trailing CASCADE/RESTRICT.
fn split_top_level(s: &str) -> Vec<String> {
    let s = s.trim().trim_end_matches(';');
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    let mut quoted = false;
    for ch in s.chars() {
        match ch {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if depth == 0 && !quoted => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur);
    out.into_iter()
        .map(|x| {
            let t = x.trim().to_string();
            let up = t.to_ascii_uppercase();
            for suffix in [" CASCADE", " RESTRICT"] {
                if up.ends_with(suffix) {
                    return t[..t.len() - suffix.len()].trim().to_string();
                }
            }
            t
        })
        .filter(|x| !x.is_empty())
        .collect()
}

fn split_dotted_plain(object: &str) -> Vec<String> {
    // The parser gives normalised parts joined by '.'; quoted names with dots are rare.
    object.split('.').map(str::to_string).collect()
}

fn normalise_args(a: &str) -> String {
    a.to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '"')
        .collect()
}

fn partition_bound_sql(sql: &str) -> Option<String> {
    let up = sql.to_ascii_uppercase();
    up.find("FOR VALUES")
        .map(|p| sql[p..].trim().trim_end_matches(';').to_string())
        .or_else(|| up.rfind(" DEFAULT").map(|_| "DEFAULT".to_string()))
}

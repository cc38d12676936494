//! [`Gen`]: the state of rollback generation — the migration walked forward over a working copy
//! of the catalog — and the questions the inversions ask it. The walk itself is in
//! [`crate::generate`]; the inversions, in [`crate::invert`], see only this.

use migration_parser::state::Namespace;
use migration_parser::{ConstraintKind, Migration, MigrationState, QualifiedName, Step};

use std::collections::BTreeMap;

use crate::catalog::{CatalogSnapshot, TableSnap, ViewSnap};
use crate::names::{choose_name, name_addition};
use crate::{Irreversible, NoOp, Options, RollbackStatement};

/// A view of the shard to recreate at the end of the rollback (`invert::dependents`).
#[derive(Clone)]
pub(crate) struct Deferred {
    /// Its name in the working schema.
    pub(crate) name: String,
    /// Its pre-migration definition.
    pub(crate) view: ViewSnap,
    /// The migration statement whose undo it belongs to.
    pub(crate) statement: usize,
}

/// The generator: the migration walked forward over a working copy of the catalog.
pub(crate) struct Gen<'a> {
    /// The generation options.
    pub(crate) opts: &'a Options,
    pub(crate) migration: &'a Migration,
    /// The working catalog: the pre-migration one with every earlier operation applied.
    pub(crate) state: CatalogSnapshot,
    /// Inverse statements per source statement (in forward order).
    pub(crate) per_statement: Vec<Vec<RollbackStatement>>,
    pub(crate) irreversible: Vec<Irreversible>,
    pub(crate) no_ops: Vec<NoOp>,
    /// `VALIDATE CONSTRAINT`s run at the end of the script, each in its own transaction.
    pub(crate) validations: Vec<RollbackStatement>,
    /// What each name denotes at each step of the migration (the parser's one walker).
    pub(crate) names: MigrationState,
    /// The operation being inverted.
    pub(crate) step: Step,
    /// The views of the pre-migration catalog, by name.
    pub(crate) pre_views: BTreeMap<String, ViewSnap>,
    /// Views of the shard recreated at the end of the rollback (`invert::dependents`).
    pub(crate) deferred: Vec<Deferred>,
    /// Statements run at the end of the rollback, before the deferred views (constraints of
    /// the shard whose definitions name what the rollback renames back).
    pub(crate) deferred_statements: Vec<RollbackStatement>,
}

impl Gen<'_> {
    /// The SQL of the statement that created `name` (in `namespace`) earlier in this migration,
    /// when the name denotes that object at the current operation ([`MigrationState`]): running
    /// it again recreates an object whose definition the working catalog does not hold (a view's
    /// query, a function's body, a sequence's options).
    pub(crate) fn creating_sql(
        &self,
        namespace: Namespace,
        name: &QualifiedName,
    ) -> Option<String> {
        let resolved = self.names.resolve(namespace, name, self.step);
        if !resolved.is_created() {
            return None;
        }
        let created = resolved.record()?.created()?;
        let st = self.migration.statements.get(created.statement)?;
        Some(crate::invert::sql::statement_sql(&st.sql))
    }

    pub(crate) fn schema(&self) -> &str {
        &self.state.schema
    }

    /// The key of `q` in the working catalog, or `None` when it lives in another schema.
    /// The key of `q` in the working catalog (its name as the server stores it, cut to 63
    /// bytes), or `None` when it lives in another schema.
    pub(crate) fn key(&self, q: &QualifiedName) -> Option<String> {
        match &q.schema {
            Some(s) if s != self.schema() => None,
            _ => Some(crate::names::truncate_identifier(&q.name).to_string()),
        }
    }

    pub(crate) fn table(&self, q: &QualifiedName) -> Option<&TableSnap> {
        self.key(q).and_then(|k| self.state.tables.get(&k))
    }

    pub(crate) fn table_mut(&mut self, q: &QualifiedName) -> Option<&mut TableSnap> {
        let k = self.key(q)?;
        self.state.tables.get_mut(&k)
    }

    /// The labels of `ty` (a type name as written or as `format_type` prints it) when it is an
    /// enum of the working catalog.
    pub(crate) fn enum_labels(&self, ty: &str) -> Option<&[String]> {
        let ty = ty.trim();
        let (schema, name) = split_type_name(ty)?;
        if schema.as_deref().is_some_and(|s| s != self.schema()) {
            return None;
        }
        match self.state.types.get(&name) {
            Some(crate::catalog::TypeSnap::Enum { labels, .. }) => Some(labels.as_slice()),
            _ => None,
        }
    }

    pub(crate) fn relation_taken(&self, name: &str) -> bool {
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

    pub(crate) fn constraint_taken(&self, name: &str) -> bool {
        self.state
            .tables
            .values()
            .any(|t| t.constraints.contains_key(name))
    }

    /// The name PostgreSQL gives an unnamed constraint on `table`.
    pub(crate) fn default_constraint_name(
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
}

/// `[schema.]name` of a type as written (unquoted parts folded to lower case), or `None` for a
/// type with modifiers or array brackets (never an enum's plain name).
fn split_type_name(ty: &str) -> Option<(Option<String>, String)> {
    if ty.contains(['(', '[']) {
        return None;
    }
    let fold = |p: &str| {
        let p = p.trim();
        match p.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
            Some(q) => q.replace("\"\"", "\""),
            None => p.to_lowercase(),
        }
    };
    // A quoted name may hold a dot; split only outside quotes.
    let mut in_quotes = false;
    let mut cut = None;
    for (i, ch) in ty.char_indices() {
        match ch {
            '"' => in_quotes = !in_quotes,
            '.' if !in_quotes => cut = Some(i),
            _ => {}
        }
    }
    Some(match cut {
        Some(i) => (Some(fold(&ty[..i])), fold(&ty[i + 1..])),
        None => (None, fold(ty)),
    })
}

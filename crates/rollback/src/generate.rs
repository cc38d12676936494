//! Inverse generation: from a parsed [`Migration`] and the pre-migration catalog to a
//! [`Rollback`].
//!
//! The generator walks the migration *forward*, keeping a working copy of the catalog: the
//! inverse of each operation is computed from the state just before it (so `RENAME` then
//! `DROP COLUMN` recreates the column under the right name), then the operation is applied to the
//! working copy. The inverses are emitted in reverse statement order, except what must wait until
//! every name is the shard's again (views, foreign keys and checks of the shard recreated from
//! their pre-migration definitions: `invert::dependents`), which runs at the end, before the
//! constraint validations. The inversions themselves live in [`crate::invert`], one module per
//! family of operations.

use migration_parser::{ConstraintKind, Migration, MigrationState, Operation, Statement, Step};

use crate::catalog::CatalogSnapshot;
use crate::generator::Gen;
use crate::invert::sql::first_line;
use crate::invert::{self, Outcome};
use crate::{Irreversible, NoOp, Options, Placement, Rollback, RollbackStatement};

pub(crate) use crate::invert::sql::{column_sql, sequence_sql};

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
    walk(migration, catalog, options).finish()
}

/// The catalog after `migration`, worked out without a database: the generator's forward walk
/// over `catalog`. Definitions the migration's typed operations do not carry (view queries,
/// function bodies, trigger definitions) are empty in the result, so the later drop of such an
/// object is reported irreversible. Used to build the pre-state of database-free fixtures from a
/// few lines of setup SQL.
pub fn catalog_after<C: PreMigrationCatalog + ?Sized>(
    migration: &Migration,
    catalog: &C,
) -> CatalogSnapshot {
    walk(migration, catalog, &Options::default()).state
}

/// Every statement of `migration` inverted and applied, in order, over a copy of `catalog`.
fn walk<'a, C: PreMigrationCatalog + ?Sized>(
    migration: &'a Migration,
    catalog: &C,
    options: &'a Options,
) -> Gen<'a> {
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
    let pre_views = state.views.clone();
    let mut g = Gen {
        opts: options,
        migration,
        state,
        per_statement: Vec::new(),
        irreversible: Vec::new(),
        no_ops: Vec::new(),
        validations: Vec::new(),
        names: MigrationState::new(migration),
        step: Step::default(),
        pre_views,
        deferred: Vec::new(),
        deferred_statements: Vec::new(),
    };
    for stmt in &migration.statements {
        let inv = g.statement(stmt);
        g.per_statement.push(inv);
    }
    g
}

impl Gen<'_> {
    fn statement(&mut self, stmt: &Statement) -> Vec<RollbackStatement> {
        let mut parts: Vec<Vec<RollbackStatement>> = Vec::new();
        let mut reasons: Vec<(bool, String)> = Vec::new(); // (irreversible?, reason)
        // PostgreSQL runs the actions of one ALTER TABLE in passes, not in written order
        // (drops, type changes, added columns, column attributes, indexes, constraints).
        let mut order: Vec<usize> = (0..stmt.operations.len()).collect();
        order.sort_by_key(|i| alter_pass(&stmt.operations[*i]));
        let outcomes: Vec<Outcome> = if order.is_empty() {
            self.step = Step::before(stmt.index);
            vec![invert::untyped(stmt)]
        } else {
            order
                .into_iter()
                .map(|i| {
                    self.step = Step {
                        statement: stmt.index,
                        op: i,
                    };
                    let op = &stmt.operations[i];
                    invert::inversion(op).invert(self, stmt, op)
                })
                .collect()
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
        } else if out.is_empty() && !self.has_deferred(stmt.index) {
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

    /// Part of the undo of statement `index` runs at the end of the rollback.
    fn has_deferred(&self, index: usize) -> bool {
        self.deferred.iter().any(|d| d.statement == index)
            || self
                .deferred_statements
                .iter()
                .any(|s| s.source_statement == index)
    }

    fn finish(self) -> Rollback {
        let mut statements: Vec<RollbackStatement> = Vec::new();
        for v in self.per_statement.into_iter().rev() {
            statements.extend(v);
        }
        let deferred_views = invert::dependents::deferred_sql(&self.deferred, &self.state.schema);
        for mut s in self.deferred_statements.into_iter().chain(deferred_views) {
            if let Some(st) = self.migration.statements.get(s.source_statement) {
                s.line = st.span.line;
            }
            statements.push(s);
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

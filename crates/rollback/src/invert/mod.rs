//! The inversions, one module per family of operations (like `gates::rules`).
//!
//! Each family is a unit struct implementing [`Inversion`]; [`inversion`] is the one registry
//! that maps every [`Operation`] variant to its family. To invert a new operation kind: add its
//! arm to the family module that owns the objects it changes and its variant to the registry's
//! match (`tests/invert_fixtures.rs` fails for a kind that falls through to
//! [`Unknown`]).
//!
//! An inversion reads the working catalog of [`Gen`] *before* the operation, applies the
//! operation to it, and returns an [`Outcome`]: the statements that undo it (in the order they
//! must run), or why there is nothing to undo or why it cannot be undone.

mod column;
mod comment;
mod constraint;
mod data;
mod function;
mod index;
mod misc;
mod schema;
mod sequence;
pub(crate) mod sql;
mod table;
mod type_;
mod untyped;
mod view;

use crate::generate::Gen;
use crate::names::quote_ident;
use crate::{Placement, Reversibility, RollbackStatement};
use migration_parser::{Operation, QualifiedName, Statement};

/// What one operation's inversion yields.
pub(crate) enum Outcome {
    /// Statements that undo it.
    Inverse(Vec<RollbackStatement>),
    /// Statements that restore the structure, plus why the undo is still incomplete (data gone).
    Partial(Vec<RollbackStatement>, String),
    /// Nothing to undo, and why.
    NoOp(String),
    /// Cannot be undone, and why.
    Irreversible(String),
}

/// The inversions of one family of operations.
pub(crate) trait Inversion: Sync {
    /// The family's name, as the fixtures under `tests/fixtures/invert/` are named.
    fn family(&self) -> &'static str;

    /// The outcome of undoing `op` (one operation of `stmt`), from the working catalog of `g`
    /// just before it; applies `op` to that catalog.
    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome;
}

/// The family that inverts `op`: one arm per [`Operation`] variant.
pub(crate) fn inversion(op: &Operation) -> &'static dyn Inversion {
    match op {
        Operation::CreateTable { .. }
        | Operation::DropTable { .. }
        | Operation::RenameTable { .. }
        | Operation::AttachPartition { .. }
        | Operation::DetachPartition { .. }
        | Operation::AlterTableOther { .. }
        | Operation::LockTable { .. } => &table::Tables,
        Operation::AddColumn { .. }
        | Operation::DropColumn { .. }
        | Operation::RenameColumn { .. }
        | Operation::AlterColumnType { .. }
        | Operation::SetNotNull { .. }
        | Operation::DropNotNull { .. }
        | Operation::SetDefault { .. }
        | Operation::DropDefault { .. } => &column::Columns,
        Operation::AddConstraint { .. }
        | Operation::ValidateConstraint { .. }
        | Operation::DropConstraint { .. }
        | Operation::RenameConstraint { .. } => &constraint::Constraints,
        Operation::CreateIndex { .. }
        | Operation::DropIndex { .. }
        | Operation::RenameIndex { .. }
        | Operation::Reindex { .. }
        | Operation::AttachIndexPartition { .. } => &index::Indexes,
        Operation::CreateEnum { .. }
        | Operation::AddEnumValue { .. }
        | Operation::RenameEnumValue { .. }
        | Operation::DropType { .. } => &type_::Types,
        Operation::CreateView { .. }
        | Operation::DropView { .. }
        | Operation::RefreshMaterializedView { .. } => &view::Views,
        Operation::CreateFunction { .. } | Operation::CreateTrigger { .. } => &function::Functions,
        Operation::CreateSequence { .. } => &sequence::Sequences,
        Operation::CreateSchema { .. }
        | Operation::DropSchema { .. }
        | Operation::CreateDatabase { .. }
        | Operation::DropDatabase { .. }
        | Operation::CreateExtension { .. } => &schema::Schemas,
        Operation::Update { .. }
        | Operation::Delete { .. }
        | Operation::Insert { .. }
        | Operation::Truncate { .. } => &data::Data,
        Operation::Comment { .. } => &comment::Comments,
        Operation::Set { .. }
        | Operation::Reset { .. }
        | Operation::Transaction(_)
        | Operation::Do { .. }
        | Operation::Maintenance { .. }
        | Operation::AlterSystem { .. } => &misc::Session,
        Operation::Other { .. } => &untyped::Untyped,
        // `Operation` is `#[non_exhaustive]` (another crate): a variant added there lands here
        // until it gets its arm; the fixture coverage test fails for it.
        _ => &Unknown,
    }
}

/// Inverse of a statement without typed operations (unparsed, a bare query, ...).
pub(crate) fn untyped(g: &mut Gen<'_>, stmt: &Statement) -> Outcome {
    untyped::opaque(g, stmt)
}

/// An operation the registry does not know yet: irreversible, never silent.
pub(crate) struct Unknown;

/// The reason [`Unknown`] gives (the coverage test looks for it).
pub(crate) const UNKNOWN_OPERATION: &str = "operation not known to the rollback generator";

impl Inversion for Unknown {
    fn family(&self) -> &'static str {
        "unknown"
    }

    fn invert(&self, _g: &mut Gen<'_>, stmt: &Statement, _op: &Operation) -> Outcome {
        misrouted(stmt)
    }
}

/// The outcome for an operation that reached a family that does not invert it.
fn misrouted(stmt: &Statement) -> Outcome {
    Outcome::Irreversible(format!(
        "{} is not inverted automatically ({UNKNOWN_OPERATION})",
        sql::first_words(&stmt.sql, 3)
    ))
}

/// A rollback statement that runs inside the rollback's transaction.
pub(crate) fn tx(sql: impl Into<String>) -> RollbackStatement {
    RollbackStatement {
        sql: sql.into(),
        source_statement: 0,
        line: 0,
        reversible: Reversibility::Exact,
        note: None,
        placement: Placement::Transaction,
    }
}

/// A rollback statement that runs outside any transaction (`CONCURRENTLY`).
pub(crate) fn no_tx(sql: impl Into<String>) -> RollbackStatement {
    RollbackStatement {
        placement: Placement::NoTransaction,
        ..tx(sql)
    }
}

/// Marks a rollback statement as less than exact.
pub(crate) trait StmtExt {
    /// The statement with this reversibility and note.
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
pub(crate) fn qn(q: &QualifiedName) -> String {
    match &q.schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&q.name)),
        None => quote_ident(&q.name),
    }
}

/// `name` in the same schema as `like` (qualified only if `like` was).
pub(crate) fn sibling(like: &QualifiedName, name: &str) -> String {
    qn(&QualifiedName {
        schema: like.schema.clone(),
        name: name.to_string(),
    })
}

//! The inversions, one module per family of operations (like `gates::rules`).
//!
//! Each family is a unit struct implementing [`Inversion`]; [`family_of`] is the one registry
//! that maps every [`OperationKind`] to its family. To invert a new operation kind: add its arm
//! to the family module that owns the objects it changes, its kind to the registry's match, and
//! a statement to `tests/fixtures/invert/<family>.sql` (`tests/invert_fixtures.rs` fails for a
//! kind that falls through to [`Unknown`] or has no fixture).
//!
//! An inversion reads the working catalog of [`Gen`] *before* the operation, applies the
//! operation to it, and returns an [`Outcome`]: the statements that undo it (in the order they
//! must run), or why there is nothing to undo or why it cannot be undone.

pub(crate) mod column;
mod comment;
mod constraint;
mod data;
pub(crate) mod dependents;
mod enum_value;
mod function;
mod index;
mod misc;
mod schema;
mod sequence;
pub(crate) mod sql;
mod table;
mod type_;
mod untyped;
mod using;
mod view;

use crate::generator::Gen;
use crate::{Placement, Reversibility, RollbackStatement};
use migration_parser::{Operation, OperationKind, QualifiedName, Statement};

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

/// The family that inverts `op`.
pub(crate) fn inversion(op: &Operation) -> &'static dyn Inversion {
    family_of(op.kind())
}

/// The family that inverts operations of `kind`: one arm per [`OperationKind`].
pub(crate) fn family_of(kind: OperationKind) -> &'static dyn Inversion {
    use OperationKind as K;
    match kind {
        K::CreateTable
        | K::DropTable
        | K::RenameTable
        | K::AttachPartition
        | K::DetachPartition
        | K::AlterTableOther
        | K::LockTable => &table::Tables,
        K::AddColumn
        | K::DropColumn
        | K::RenameColumn
        | K::AlterColumnType
        | K::SetNotNull
        | K::DropNotNull
        | K::SetDefault
        | K::DropDefault => &column::Columns,
        K::AddConstraint | K::ValidateConstraint | K::DropConstraint | K::RenameConstraint => {
            &constraint::Constraints
        }
        K::CreateIndex | K::DropIndex | K::RenameIndex | K::Reindex | K::AttachIndexPartition => {
            &index::Indexes
        }
        K::CreateEnum
        | K::AddEnumValue
        | K::RenameEnumValue
        | K::DropType
        | K::CreateType
        | K::RenameType
        | K::CreateDomain
        | K::DropDomain => &type_::Types,
        K::CreateView | K::DropView | K::RenameView | K::RefreshMaterializedView => &view::Views,
        K::CreateFunction | K::DropFunction | K::CreateTrigger | K::DropTrigger => {
            &function::Functions
        }
        K::CreateSequence | K::DropSequence | K::AlterSequence | K::RenameSequence => {
            &sequence::Sequences
        }
        K::CreateSchema
        | K::DropSchema
        | K::CreateDatabase
        | K::DropDatabase
        | K::CreateExtension
        | K::DropExtension => &schema::Schemas,
        K::Update | K::Delete | K::Insert | K::Truncate => &data::Data,
        K::Comment => &comment::Comments,
        K::Set | K::Reset | K::Transaction | K::Do | K::Maintenance | K::AlterSystem => {
            &misc::Session
        }
        K::Other => &untyped::Untyped,
        // `OperationKind` is `#[non_exhaustive]` (another crate): a kind added there lands here
        // until it gets its arm; the coverage test over `OperationKind::ALL` fails for it.
        _ => &Unknown,
    }
}

/// Inverse of a statement without operations (it did not parse).
pub(crate) fn untyped(stmt: &Statement) -> Outcome {
    untyped::opaque(stmt)
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

pub(crate) use sql::qn;

/// `name` in the same schema as `like` (qualified only if `like` was).
pub(crate) fn sibling(like: &QualifiedName, name: &str) -> String {
    qn(&like.sibling(name))
}

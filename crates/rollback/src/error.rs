//! The crate's single error type.

use std::path::PathBuf;

/// What stops the rollback crate from doing its job. A rollback that does not restore the
/// catalog, a step that fails on the shadow, or an irreversible statement is an *outcome*
/// ([`crate::Proof`], [`crate::Irreversible`]), never an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RollbackError {
    /// A query the prover itself needs (introspection, creating or dropping the scratch
    /// database) failed.
    #[error("{action}: {source}")]
    Database {
        /// What was being done.
        action: String,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
    /// Connecting to the shadow server failed.
    #[error("cannot connect to the shadow server ({target}): {source}")]
    Connect {
        /// The server (host:port/database, never a password).
        target: String,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
    /// Reading the shadow's catalog failed.
    #[error("cannot read the shadow's catalog: {0}")]
    Catalog(#[source] topology::TopologyError),
    /// Starting an ephemeral PostgreSQL for the shadow failed.
    #[error("cannot start an ephemeral PostgreSQL shadow: {0}")]
    Ephemeral(#[from] topology::TopologyError),
    /// The pre-migration setup SQL failed on the shadow.
    #[error("setup SQL failed on the shadow (SQLSTATE {sqlstate}): {message}")]
    Setup {
        /// SQLSTATE, or `-----` when the failure was not a server error.
        sqlstate: String,
        /// The server's message.
        message: String,
    },
    /// A migration or rollback file could not be parsed at all.
    #[error("cannot parse {file}: {source}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's error.
        #[source]
        source: migration_parser::ParseError,
    },
    /// A migrations directory or file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A migrations directory has no layout this crate knows.
    #[error("{}: no known migration layout (Diesel, sqlx, golang-migrate, dbmate, Flyway, Liquibase, Prisma, Drizzle, Atlas) found", path.display())]
    UnknownLayout {
        /// The directory.
        path: PathBuf,
    },
    /// Two layouts match one directory: which one applies is not guessed.
    #[error("{}: ambiguous migration layout: both {first} and {second} match; point at a directory of one tool", path.display())]
    AmbiguousLayout {
        /// The directory.
        path: PathBuf,
        /// One layout that matches.
        first: migration_parser::layout::Layout,
        /// Another.
        second: migration_parser::layout::Layout,
    },
    /// A migration tool's own file (`atlas.sum`, Drizzle's `_journal.json`) is malformed or does
    /// not match the directory.
    #[error("{}:{line}:{column}: {message}", path.display())]
    LayoutFile {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

//! # migration-parser
//!
//! SQL migration text → [`Migration`]: statements with line/column [`Span`]s, a typed
//! [`Operation`] model, the transaction structure as the runner executes the file, the session
//! settings in effect per statement, inline ignores, and a knowledge table ([`lock_facts`]) of the
//! lock level, rewrite and scan per operation and PostgreSQL major version (11–17).
//!
//! The parser does no IO beyond what the caller hands it, and knows nothing of databases.
//!
//! ## How a file is read
//!
//! * The file is tokenized **once** with sqlparser's PostgreSQL tokenizer and split on `;` outside
//!   parentheses (strings, quoted identifiers, dollar-quoted bodies and comments are single
//!   tokens). psql meta-commands (`\set ...`) run to the end of their line. Empty statements
//!   are dropped. A tokenizer failure (unterminated string, quoted identifier, dollar quote or
//!   block comment) is the only [`ParseError`] besides binary / non-UTF-8 input
//!   ([`parse_bytes`]).
//! * Each statement is parsed alone by sqlparser from those tokens, so its errors carry
//!   file-relative locations. Forms sqlparser 0.64 rejects or mis-parses (`DROP INDEX
//!   CONCURRENTLY`, `DO`, `REINDEX`, `VACUUM`, `CLUSTER`, `CREATE INDEX ... ON ONLY`, `ALTER COLUMN
//!   ... TYPE ... COLLATE`, `ALTER TABLE ... SET SCHEMA|TABLESPACE`, `CREATE TABLE (LIKE ...
//!   INCLUDING ...)`, `CREATE MATERIALIZED VIEW ... WITH [NO] DATA`, `ALTER INDEX ... ATTACH
//!   PARTITION`, `ALTER SYSTEM`, `COMMENT ON CONSTRAINT|FUNCTION ...`, `ALTER SEQUENCE`) are
//!   recognised from tokens and reported as [`StatementKind::Parsed`] with full operations: the
//!   user's SQL is valid. Only a statement nothing understood is [`StatementKind::Unparsed`]
//!   (with sqlparser's message and location); it never stops the file.
//! * Names are normalised as PostgreSQL folds them: unquoted → lower case, quoted → verbatim.
//! * Transactions ([`TxContext`]) follow the server's semantics for the chosen
//!   [`TransactionMode`]; settings ([`SessionSettings`]) follow `SET`, `SET LOCAL`, `RESET`,
//!   `set_config()` and transaction ends. See [`TransactionMode`] for the details.
//! * `-- deployclaw:ignore rule[, rule]` on the comment line(s) directly above a statement (no
//!   blank line in between) or at the end of its first line fills
//!   [`Statement::ignored_rules`]; `-- deployclaw:ignore-file rule` anywhere fills
//!   [`Migration::file_ignored_rules`]. `/* ... */` comments work the same way. A bare
//!   `-- deployclaw:ignore` silences all rules (`all`); text after ` -- ` is a free-form reason.
//!
//! ## The vocabulary
//!
//! [`Operation`] is typed all the way down: `ALTER TABLE` actions without an operation of their
//! own are [`AlterTableAction`]s, maintenance is a [`MaintenanceCommand`], `REINDEX` names a
//! [`ReindexTarget`], and functions, triggers, views, types, domains, sequences and extensions
//! have their own create/drop/rename operations; [`Operation::Other`] keeps only what no consumer
//! needs (GRANT, CREATE POLICY, ALTER FUNCTION, COPY, queries, ...). [`Operation::kind`] gives
//! the fieldless [`OperationKind`], whose [`OperationKind::ALL`] lets every consumer (lock
//! knowledge: [`takes_relation_locks`]; rules, probes, rollback inversions) test that it
//! handles each kind, and whose [`OperationKind::as_str`] names are what custom rules match.
//!
//! ## Knowledge beyond one statement
//!
//! [`lock_facts`] describes one operation. What needs the catalog or earlier statements is
//! exposed separately: [`type_change_rewrites`], [`set_not_null_skips_scan`],
//! [`check_proves_not_null`], [`add_column_rewrites`], [`blocked_in_transaction`], and the one
//! walker of the whole file, [`MigrationState`] (what each name denotes at each step: created,
//! the shard's, freed by a drop or rename, maybe dropped by a cascade).

mod actions;
mod analysis;
mod app_queries;
mod convert;
mod grammar;
mod kind;
mod knowledge;
pub mod layout;
mod locks;
mod model;
mod names;
pub mod normalize;
mod parse;
pub mod pg_quote;
mod refs;
mod row_filter;
mod session;
mod side_effects;
mod slices;
mod split;
pub mod state;
mod tokens;
mod type_changes;
mod volatility;

pub use actions::{
    AlterTableAction, MaintenanceCommand, ReindexTarget, SequenceOwnedBy, TypeAttribute,
    TypeRepresentation,
};
pub use analysis::same_relation;
pub use app_queries::{
    BreakingChange, Change, QueryNames, QueryScan, breaking_changes, client_compatible,
    display_query, may_mention, query_uses, scan_query,
};
pub use kind::{OperationKind, UnknownOperationKind};
pub use knowledge::lock_facts;
pub use knowledge::{
    add_column_rewrites, attach_partition_skips_scan, blocked_in_transaction,
    check_proves_not_null, set_not_null_skips_scan, takes_relation_locks,
};
pub use locks::{LockFact, LockMode, Rewrite, Scan};
pub use model::*;
pub use normalize::normalize_query;
pub use refs::{
    FunctionCall, QueryProblem, SqlRefs, read_only_query, statement_refs, table_sources,
};
pub use row_filter::RowFilter;
pub use session::parse_duration_ms;
pub use side_effects::{
    CallContext, ProcCandidate, SQL_SPECIAL_FORMS, VOLATILE_WITHOUT_EFFECTS, credential_relation,
    denied_function, judge_call,
};
pub use sqlparser;
pub use state::{MigrationState, Resolved, Step};
pub use type_changes::{
    Coercion, TYPE_CHANGES, TypeChangeFact, TypeChangeOutcome, Typmod, canonical_type,
    type_change_outcome, type_change_rewrites, using_is_plain_cast,
};

/// Errors that stop a file from being parsed at all. A statement that does not parse is not an
/// error: it becomes [`StatementKind::Unparsed`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input is not valid UTF-8 text.
    #[error("{file}: not UTF-8 text (invalid byte at line {line}, column {column})")]
    NotUtf8 {
        /// The file.
        file: String,
        /// Line of the first invalid byte.
        line: u32,
        /// Column of the first invalid byte.
        column: u32,
    },
    /// The tokenizer failed: unterminated string, quoted identifier or dollar quote.
    #[error("{file}:{line}:{column}: {message}")]
    Tokenize {
        /// The file.
        file: String,
        /// Line.
        line: u32,
        /// Column.
        column: u32,
        /// What is wrong.
        message: String,
    },
    /// The file has more statements than the caller's limit ([`parse_limited`]); reading
    /// stopped at the first statement over it, so memory holds at most `limit` statements.
    #[error(
        "{file}:{line}:{column}: too many statements: {about}{total} in the file, over the limit of {limit} (statement {n} starts here)",
        about = if *exact { "" } else { "about " },
        total = thousands(*total),
        limit = thousands(*limit),
        n = thousands(limit + 1)
    )]
    TooManyStatements {
        /// The file.
        file: String,
        /// Line of the first statement over the limit.
        line: u32,
        /// Column of the first statement over the limit.
        column: u32,
        /// The limit.
        limit: usize,
        /// Statements in the file, at least `limit + 1`: exact when the whole file was read
        /// (`exact`), else counted from the statement boundaries without parsing (trailing
        /// comments or a stray `;` count as one, so it can be a few too many).
        total: usize,
        /// Whether `total` is exact.
        exact: bool,
    },
    /// The input looks binary (contains NUL bytes).
    #[error("{file}: binary data, not SQL (NUL byte at line {line}, column {column})")]
    Binary {
        /// The file.
        file: String,
        /// Line.
        line: u32,
        /// Column.
        column: u32,
    },
}

/// Parse migration `source` named `file` (used in messages).
///
/// Fails only when the file cannot be tokenized at all (unterminated string, quoted identifier,
/// dollar quote or comment); a statement that does not parse becomes [`StatementKind::Unparsed`].
pub fn parse(file: &str, source: &str, options: &ParseOptions) -> Result<Migration, ParseError> {
    parse::parse(file, source, options)
}

/// `1234567` as `1,234,567`, for messages.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// [`parse`], but fail with [`ParseError::TooManyStatements`] as soon as the file turns out to
/// have more than `max_statements` statements, before parsing the rest: memory and time stay
/// bounded by the limit, not by the file. For callers whose cost grows with every statement
/// (a rehearsal and a report line per statement and shard).
pub fn parse_limited(
    file: &str,
    source: &str,
    options: &ParseOptions,
    max_statements: usize,
) -> Result<Migration, ParseError> {
    parse::parse_limited(file, source, options, max_statements)
}

/// [`parse_bytes`] with the statement limit of [`parse_limited`].
pub fn parse_bytes_limited(
    file: &str,
    bytes: &[u8],
    options: &ParseOptions,
    max_statements: usize,
) -> Result<Migration, ParseError> {
    let text = checked_text(file, bytes)?;
    parse_limited(file, text, options, max_statements)
}

/// The two ways the parser can read a file, for tests and fuzzing that check they agree. Not
/// part of the stable API.
#[doc(hidden)]
pub mod reference {
    use crate::parse::{Strategy, parse_with};
    use crate::{Migration, ParseError, ParseOptions};

    /// Tokenize the whole file at once and split it (the reference behaviour).
    pub fn parse_whole_file(
        file: &str,
        source: &str,
        options: &ParseOptions,
    ) -> Result<Migration, ParseError> {
        parse_with(file, source, options, Strategy::Whole, None).map(|m| m.expect("whole parses"))
    }

    /// Statement by statement only; `Ok(None)` when the statement boundaries found without
    /// tokens were not confirmed by sqlparser's tokenizer (then [`crate::parse`] reads the
    /// whole file instead).
    pub fn parse_statement_by_statement(
        file: &str,
        source: &str,
        options: &ParseOptions,
    ) -> Result<Option<Migration>, ParseError> {
        parse_with(file, source, options, Strategy::SlicedOnly, None)
    }
}

/// Line and column (1-based, columns in characters) of byte `pos` of `bytes`, for pointing at
/// a bad byte of input that is not (yet) known to be valid UTF-8.
pub fn byte_location(bytes: &[u8], pos: usize) -> (u32, u32) {
    split::location_of_bytes(bytes, pos)
}

/// Parse raw bytes: checks for NUL bytes and UTF-8 first, then [`parse`].
pub fn parse_bytes(
    file: &str,
    bytes: &[u8],
    options: &ParseOptions,
) -> Result<Migration, ParseError> {
    parse(file, checked_text(file, bytes)?, options)
}

/// The bytes as text: an error at the first NUL byte or invalid UTF-8.
fn checked_text<'b>(file: &str, bytes: &'b [u8]) -> Result<&'b str, ParseError> {
    if let Some(pos) = bytes.iter().position(|b| *b == 0) {
        let (line, column) = split::location_of_bytes(bytes, pos);
        return Err(ParseError::Binary {
            file: file.to_string(),
            line,
            column,
        });
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let (line, column) = split::location_of_bytes(bytes, e.valid_up_to());
            Err(ParseError::NotUtf8 {
                file: file.to_string(),
                line,
                column,
            })
        }
    }
}

/// The first `n` words of `sql` after leading comments, upper-cased (a word is a run of ASCII
/// letters, digits and `_`; anything else separates words). For classifying a statement by its
/// keywords where the typed operations do not say enough.
///
/// ```
/// assert_eq!(migration_parser::leading_words("-- x\n/* y */ commit and chain", 2), ["COMMIT", "AND"]);
/// ```
pub fn leading_words(sql: &str, n: usize) -> Vec<String> {
    let mut rest = sql;
    loop {
        let t = rest.trim_start();
        if let Some(after) = t.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = t.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            rest = t;
            break;
        }
    }
    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .take(n)
        .map(|w| w.to_ascii_uppercase())
        .collect()
}

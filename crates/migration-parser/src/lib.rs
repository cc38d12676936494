//! # migration-parser
//!
//! SQL migration text → [`Migration`]: statements with line/column [`Span`]s, a typed
//! [`Operation`] model, the transaction structure as the runner executes the file, and a
//! knowledge table ([`lock_facts`]) of the lock level and rewrite per operation and PostgreSQL
//! major version.
//!
//! The parser does no IO beyond what the caller hands it, and knows nothing of databases.
//! A statement `sqlparser` cannot parse never stops the file: it is kept as
//! [`StatementKind::Unparsed`] with its location.

mod convert;
mod knowledge;
mod locks;
mod model;
mod parse;
mod session;
mod split;
mod tokens;
mod volatility;

pub use locks::{LockFact, LockMode, Rewrite, Scan, lock_facts};
pub use model::*;
pub use sqlparser;

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

/// Parse raw bytes: checks for NUL bytes and UTF-8 first, then [`parse`].
pub fn parse_bytes(file: &str, bytes: &[u8], options: &ParseOptions) -> Result<Migration, ParseError> {
    if let Some(pos) = bytes.iter().position(|b| *b == 0) {
        let (line, column) = split::location_of_bytes(bytes, pos);
        return Err(ParseError::Binary { file: file.to_string(), line, column });
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => parse(file, s, options),
        Err(e) => {
            let (line, column) = split::location_of_bytes(bytes, e.valid_up_to());
            Err(ParseError::NotUtf8 { file: file.to_string(), line, column })
        }
    }
}

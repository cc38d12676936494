//! The crate's error type. Findings are outcomes, not errors: errors are about configuration,
//! registry misuse and input that cannot be linted.

/// Errors from configuration parsing, configuration checking, rule registration, and reading
/// the inputs of [`crate::lint`].
///
/// Positions are 1-based; `line == 0` means the position is not known (a [`Config`](crate::Config)
/// built in code rather than parsed from a file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GatesError {
    /// The configuration is not valid TOML, or a value has the wrong TOML type.
    #[error("{}{message}", pos(file, *line, *column))]
    ConfigSyntax {
        /// The configuration file.
        file: String,
        /// Line.
        line: u32,
        /// Column.
        column: u32,
        /// What the TOML parser said.
        message: String,
    },
    /// A key deployclaw does not know (often a typo).
    #[error("{}unknown key `{key}` in configuration (expected one of: {expected})", pos(file, *line, *column))]
    UnknownConfigKey {
        /// The configuration file.
        file: String,
        /// Line.
        line: u32,
        /// Column.
        column: u32,
        /// The unknown key.
        key: String,
        /// The keys allowed there, comma-separated.
        expected: String,
    },
    /// A known key with a value deployclaw cannot use.
    #[error("{}invalid value for `{key}`: {message}", pos(file, *line, *column))]
    InvalidConfigValue {
        /// The configuration file.
        file: String,
        /// Line.
        line: u32,
        /// Column.
        column: u32,
        /// The key.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// `[rules]` names a rule no registered rule has (neither as name nor as code).
    #[error("{}unknown rule `{rule}` in `{key}` (see `deployclaw rules` for the list)", pos(file, *line, *column))]
    UnknownRule {
        /// The configuration file (empty when built in code).
        file: String,
        /// Line (0 when unknown).
        line: u32,
        /// Column (0 when unknown).
        column: u32,
        /// The configuration key (`rules.disable`, `rules.severity`).
        key: String,
        /// The rule as written.
        rule: String,
    },
    /// A rule with the same name or code is already registered.
    #[error(
        "cannot register rule `{name}` ({code}): a rule with that {clash} is already registered"
    )]
    DuplicateRule {
        /// Code of the rule being registered.
        code: String,
        /// Name of the rule being registered.
        name: String,
        /// `name` or `code`.
        clash: &'static str,
    },
    /// A file or directory could not be read (missing, a directory where a file was expected,
    /// over the size cap of [`crate::input`]).
    #[error("{file}: {message}")]
    Read {
        /// The path as given.
        file: String,
        /// The operating system's message (without Rust's `(os error N)`).
        message: String,
    },
    /// An input is not SQL text: binary, not UTF-8, an unterminated quote. A statement that
    /// does not parse is not an error (it is the `unparsed-statement` finding).
    #[error("{}{message}", pos(file, *line, *column))]
    Parse {
        /// The input (empty when not known).
        file: String,
        /// Line (0 when not known).
        line: u32,
        /// Column (0 when not known).
        column: u32,
        /// What is wrong.
        message: String,
    },
    /// An input the user named holds no SQL statement (empty, or comments only): most likely
    /// the wrong file, and a clean result would approve nothing.
    #[error("{file}: contains no SQL statements (the file is empty or holds only comments)")]
    NoStatements {
        /// The input.
        file: String,
    },
    /// Two migration-tool layouts match a directory `lint DIR` was given
    /// ([`migration_parser::layout::detect`]): which files are rollbacks is not guessed.
    #[error(
        "{dir}: ambiguous migration layout: both {first} and {second} match; point at a directory of one tool"
    )]
    AmbiguousLayout {
        /// The directory.
        dir: String,
        /// One layout that matches.
        first: String,
        /// Another.
        second: String,
    },
}

impl GatesError {
    /// [`GatesError::Read`] for `path`.
    pub(crate) fn read(path: &std::path::Path, e: &std::io::Error) -> GatesError {
        let s = e.to_string();
        let message = match s.find(" (os error") {
            Some(i) => s[..i].to_string(),
            None => s,
        };
        GatesError::Read {
            file: path.display().to_string(),
            message,
        }
    }

    /// [`GatesError::Parse`] for a file the parser could not read as SQL text.
    pub(crate) fn parse(e: &migration_parser::ParseError) -> GatesError {
        use migration_parser::ParseError as P;
        let (file, line, column, message) = match e {
            P::NotUtf8 { file, line, column } => {
                (file, *line, *column, "not UTF-8 text (invalid byte)".into())
            }
            P::Binary { file, line, column } => (
                file,
                *line,
                *column,
                "binary data, not SQL (NUL byte)".into(),
            ),
            P::Tokenize {
                file,
                line,
                column,
                message,
            } => (file, *line, *column, message.clone()),
            other => {
                return GatesError::Parse {
                    file: String::new(),
                    line: 0,
                    column: 0,
                    message: other.to_string(),
                };
            }
        };
        GatesError::Parse {
            file: file.clone(),
            line,
            column,
            message,
        }
    }
}

fn pos(file: &str, line: u32, column: u32) -> String {
    match (file.is_empty(), line) {
        (true, 0) => String::new(),
        (false, 0) => format!("{file}: "),
        (true, _) => format!("{line}:{column}: "),
        (false, _) => format!("{file}:{line}:{column}: "),
    }
}

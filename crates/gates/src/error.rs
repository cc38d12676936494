//! The crate's error type. Findings are outcomes, not errors: errors are about configuration
//! and registry misuse.

/// Errors from configuration parsing, configuration checking and rule registration.
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
}

fn pos(file: &str, line: u32, column: u32) -> String {
    match (file.is_empty(), line) {
        (true, 0) => String::new(),
        (false, 0) => format!("{file}: "),
        (true, _) => format!("{line}:{column}: "),
        (false, _) => format!("{file}:{line}:{column}: "),
    }
}

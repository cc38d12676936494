//! `deployclaw lint`, `explain`, `rules`: the static gates, with no database.
//!
//! `lint` reads files, directories (recursively, `*.sql`, natural order, rollback scripts only
//! with `--include-rollbacks`) or standard input (`-`),
//! and lints them with the library ([`gates::lint`]: parse, the rules of the configuration's
//! registry (`--config`, else `./deployclaw.toml` when present), all files in parallel); this
//! module only handles the arguments and prints the findings in the chosen format. Exit codes: 0 no red or yellow finding (or only yellow with `--allow-yellow`),
//! 1 yellow, 2 red, 3 usage or input error (the message names file, line and column).
//!
//! A file named on the command line (or standard input) without any SQL statement — empty,
//! comments only — is an input error: it is most likely the wrong file, and a clean result
//! would approve nothing. The same file found by walking a directory lints cleanly: empty
//! placeholder migrations are common in real histories.

use crate::exit;
use clap::{Args, ValueEnum};
use gates::lint::{LintInput, LintedFile as Linted};
use gates::{Config, GatesError, Registry, Severity};
use migration_parser::{ParseOptions, PgVersion, TransactionMode};
use report::lint::{LintedFile, RuleInfo, Summary, TextOptions, ToolInfo};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Output format of `deployclaw lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    /// Compiler-style diagnostics with source excerpts and a summary line.
    Text,
    /// `{"findings":[{"rule","severity","line","column","statement","message","help",...}]}`.
    Json,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
    /// GitHub Actions workflow commands (`::error file=...::message`).
    Github,
}

/// Output format of `deployclaw rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    /// A table.
    Text,
    /// `{"rules":[{"code","name","severity","summary"}]}`.
    Json,
}

/// When to colour text output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When standard output is a terminal and `NO_COLOR` is not set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// How the migration runner wraps a file in transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TxModeArg {
    /// As `psql -f`: each statement outside an explicit BEGIN/COMMIT commits on its own.
    Autocommit,
    /// As `psql -1`, Diesel, sqlx, golang-migrate, Flyway: the whole file is one transaction.
    WrapFile,
}

/// Arguments of `deployclaw lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files or directories (searched recursively for *.sql) to lint; `-` reads standard input.
    /// A named file (or standard input) holding no SQL statement is an input error (exit 3);
    /// empty files inside a directory are linted (cleanly). Rollback scripts in a directory
    /// (`down.sql`, `*.down.sql`, Flyway `U…__*.sql`, dbmate `-- migrate:down`) are skipped
    /// unless `--include-rollbacks`.
    #[arg(required_unless_present = "changed_since", value_name = "FILE|DIR|-")]
    pub paths: Vec<PathBuf>,
    /// Lint only the migration files changed since this git revision (committed on this
    /// branch since REF, plus uncommitted and untracked files; rollback scripts excluded), under
    /// the paths given (the whole repository when none). Nothing changed: exit 0.
    #[arg(long, value_name = "REF")]
    pub changed_since: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub format: LintFormat,
    /// PostgreSQL major version the migration runs on (11–17) [default: from the config, else 15].
    #[arg(long, value_name = "N")]
    pub pg_version: Option<u32>,
    /// Configuration file [default: ./deployclaw.toml when present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How the runner wraps each file in transactions [default: autocommit].
    #[arg(long, value_enum, value_name = "MODE")]
    pub transaction_mode: Option<TxModeArg>,
    /// Colour the text output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Exit 0 instead of 1 when the worst finding is yellow.
    #[arg(long)]
    pub allow_yellow: bool,
    /// Also lint the rollback scripts found in directories, with the rules that fit a rollback
    /// (dropping what the migration added is not flagged). A rollback file named on the command
    /// line is always linted that way.
    #[arg(long)]
    pub include_rollbacks: bool,
}

/// Arguments of `deployclaw explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Rule name (`require-concurrent-index`) or code (`DC101`).
    pub rule: String,
    /// Configuration file, for custom rules [default: ./deployclaw.toml when present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Arguments of `deployclaw rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = RulesFormat::Text)]
    pub format: RulesFormat,
    /// Configuration file, for custom rules [default: ./deployclaw.toml when present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The default configuration file, used when present and `--config` is not given.
const DEFAULT_CONFIG: &str = "deployclaw.toml";
/// Display name of standard input.
const STDIN_NAME: &str = "<stdin>";

/// An input error: printed on stderr as is, exit code 3.
#[derive(Debug)]
struct InputError(String);

/// `deployclaw lint`.
pub fn run(a: LintArgs) -> i32 {
    let (mut config, registry) = match load_config(a.config.as_deref()) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let pg_version = match a.pg_version {
        Some(v) if !(PgVersion::MIN.0..=PgVersion::MAX.0).contains(&v) => {
            return fail(&InputError(format!(
                "error: --pg-version {v} is not supported (expected {} to {})",
                PgVersion::MIN,
                PgVersion::MAX
            )));
        }
        Some(v) => PgVersion(v),
        None => config.pg_version.unwrap_or_default(),
    };
    let transaction_mode = match a.transaction_mode {
        Some(TxModeArg::Autocommit) => TransactionMode::Autocommit,
        Some(TxModeArg::WrapFile) => TransactionMode::WrapFile,
        None => config.transaction_mode.unwrap_or_default(),
    };
    // Flags override the file; the rules see the same settings the parser used.
    config.pg_version = Some(pg_version);
    config.transaction_mode = Some(transaction_mode);
    let options = ParseOptions {
        pg_version,
        transaction_mode,
    };

    let mut input_errors = 0usize;
    let mut inputs: Vec<LintInput> = Vec::new();
    let mut stdin_used = false;
    if let Some(base) = &a.changed_since {
        let files = match super::changed::changed_migrations(base, &a.paths) {
            Ok(f) => f,
            Err(m) => return fail(&InputError(m)),
        };
        if files.is_empty() {
            eprintln!("deployclaw: no migration file changed since {base}");
            return exit::GREEN;
        }
        for f in files {
            match LintInput::read(&f) {
                Ok(i) => inputs.push(i.found_in_directory()),
                Err(e) => {
                    input_errors += 1;
                    eprintln!("{}", input_error(&e));
                }
            }
        }
    }
    for path in a.paths.iter().filter(|_| a.changed_since.is_none()) {
        let dir = gates::lint::DirOptions::include_rollbacks(a.include_rollbacks);
        match collect(path, dir, &mut stdin_used, &mut inputs) {
            Ok(()) => {}
            Err(e) => {
                input_errors += 1;
                eprintln!("{}", e.0);
            }
        }
    }
    if inputs.is_empty() && input_errors == 0 {
        return fail(&InputError("error: no .sql files to lint".to_string()));
    }

    let mut linted: Vec<Linted> = Vec::with_capacity(inputs.len());
    for result in gates::lint::lint_inputs(&registry, &config, &inputs, &options) {
        match result {
            Ok(file) => linted.push(file),
            Err(e) => {
                input_errors += 1;
                eprintln!("{}", input_error(&e));
            }
        }
    }

    let files: Vec<LintedFile<'_>> = linted
        .iter()
        .map(|l| LintedFile {
            file: &l.name,
            source: &l.source,
            findings: &l.findings,
        })
        .collect();
    let out = match a.format {
        LintFormat::Text => {
            let color = match a.color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => std::io::stdout().is_terminal() && no_color_unset(),
            };
            if files.is_empty() {
                // Nothing could be read: the errors on stderr say why; no "0 files" summary.
                String::new()
            } else {
                report::lint::render_text(&files, &TextOptions { color })
            }
        }
        LintFormat::Json => report::lint::render_json(&files),
        LintFormat::Sarif => {
            report::lint::render_sarif(&files, &rule_infos(&registry), &tool_info())
        }
        LintFormat::Github => report::lint::render_github(&files),
    };
    write_stdout(&out);

    if input_errors > 0 {
        return exit::INPUT;
    }
    match Summary::of(&files).worst() {
        Some(Severity::Red) => exit::RED,
        Some(Severity::Yellow) if !a.allow_yellow => exit::YELLOW,
        _ => exit::GREEN,
    }
}

/// `file:line:col: error: message` for an input `gates::lint` could not lint.
fn input_error(e: &GatesError) -> String {
    match e {
        GatesError::Parse {
            file,
            line,
            column,
            message,
        } if *line > 0 => format!("{file}:{line}:{column}: error: {message}"),
        GatesError::Parse { message, .. } => format!("error: {message}"),
        GatesError::Read { file, message } => format!("{file}: error: {message}"),
        GatesError::NoStatements { file } => format!(
            "{file}: error: contains no SQL statements (the file is empty or holds only comments)"
        ),
        other => format!("error: {other}"),
    }
}

/// Add the inputs `path` names to `out`: stdin, one file, or the `*.sql` files under a directory.
fn collect(
    path: &Path,
    dir: gates::lint::DirOptions,
    stdin_used: &mut bool,
    out: &mut Vec<LintInput>,
) -> Result<(), InputError> {
    if path.as_os_str() == "-" {
        if std::mem::replace(stdin_used, true) {
            return Err(InputError(
                "error: `-` (standard input) given more than once".into(),
            ));
        }
        let buf = gates::input::read_capped_from(std::io::stdin().lock()).map_err(|e| {
            InputError(format!(
                "{STDIN_NAME}: error: cannot read standard input: {}",
                io_msg(&e)
            ))
        })?;
        out.push(LintInput::new(STDIN_NAME, buf));
        return Ok(());
    }
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|e| InputError(format!("{shown}: error: {}", io_msg(&e))))?;
    if meta.is_dir() {
        let files = gates::lint::read_dir_inputs_with(path, dir)
            .map_err(|e| InputError(input_error(&e)))?;
        if files.is_empty() {
            eprintln!("{shown}: warning: no .sql files in this directory");
        }
        out.extend(files);
        return Ok(());
    }
    out.push(LintInput::read(path).map_err(|e| InputError(input_error(&e)))?);
    Ok(())
}

/// An IO error without Rust's `(os error N)` suffix.
fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Write to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn write_stdout(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

fn fail(e: &InputError) -> i32 {
    eprintln!("{}", e.0);
    exit::INPUT
}

fn tool_info() -> ToolInfo {
    ToolInfo {
        name: "deployclaw".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        information_uri: Some(env!("CARGO_PKG_REPOSITORY").to_string()).filter(|s| !s.is_empty()),
    }
}

/// `deployclaw explain RULE|CODE`.
pub fn explain(a: ExplainArgs) -> i32 {
    let (_config, registry) = match load_config(a.config.as_deref()) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let infos = rule_infos(&registry);
    let wanted = a.rule.trim();
    let found = infos
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(wanted) || r.code.eq_ignore_ascii_case(wanted));
    match found {
        Some(r) => {
            write_stdout(&explain_text(&registry, r));
            exit::GREEN
        }
        None => {
            let mut msg = format!("error: unknown rule `{wanted}`");
            let close = suggestions(wanted, &infos);
            if !close.is_empty() {
                msg.push_str(&format!("\n  did you mean {}?", close.join(", ")));
            }
            msg.push_str("\n  `deployclaw rules` lists every rule");
            fail(&InputError(msg))
        }
    }
}

/// Names close to `wanted` (edit distance, or a substring match), best first, at most 3.
fn suggestions(wanted: &str, infos: &[RuleInfo]) -> Vec<String> {
    let w = wanted.to_ascii_lowercase();
    let mut scored: Vec<(usize, &RuleInfo)> = infos
        .iter()
        .filter_map(|r| {
            let d = levenshtein(&w, &r.name).min(levenshtein(&w, &r.code.to_ascii_lowercase()));
            let limit = (w.len() / 3).max(2);
            let sub = w.len() >= 4 && r.name.contains(&w);
            (d <= limit || sub).then_some((if sub { d.min(limit) } else { d }, r))
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    scored
        .into_iter()
        .take(3)
        .map(|(_, r)| format!("`{}` ({})", r.name, r.code))
        .collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `deployclaw rules`.
pub fn rules(a: RulesArgs) -> i32 {
    let (_config, registry) = match load_config(a.config.as_deref()) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let infos = rule_infos(&registry);
    let out = match a.format {
        RulesFormat::Text => report::lint::render_rules_text(&infos),
        RulesFormat::Json => report::lint::render_rules_json(&infos),
    };
    write_stdout(&out);
    exit::GREEN
}

// ---------------------------------------------------------------------------------------------
// The seam to `gates`: configuration, registry, rule metadata.
// ---------------------------------------------------------------------------------------------

/// Load `--config FILE`, else `./deployclaw.toml` when present, else the defaults; and the
/// registry of built-in rules plus the configuration's custom rules.
fn load_config(path: Option<&Path>) -> Result<(Config, Registry), InputError> {
    let path = match path {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.is_file()),
    };
    let Some(path) = path else {
        return Ok((Config::default(), Registry::builtin()));
    };
    let shown = path.display().to_string();
    let text = gates::input::read_capped_to_string(&path)
        .map_err(|e| InputError(format!("{shown}: error: {}", io_msg(&e))))?;
    let config =
        Config::from_toml_str(&shown, &text).map_err(|e| InputError(config_error(&shown, &e)))?;
    let registry =
        Registry::for_config(&config).map_err(|e| InputError(config_error(&shown, &e)))?;
    registry
        .check_config(&config)
        .map_err(|e| InputError(config_error(&shown, &e)))?;
    Ok((config, registry))
}

/// Every registered rule, in registry order, as the report renderers want them.
fn rule_infos(registry: &Registry) -> Vec<RuleInfo> {
    registry
        .iter()
        .map(|r| {
            let m = r.meta();
            RuleInfo {
                code: m.code.to_string(),
                name: m.name.to_string(),
                default_severity: m.severity,
                summary: one_line_summary(&m),
                docs: m.explain(),
            }
        })
        .collect()
}

/// The first sentence of the rule's `## What it does` section (or of its docs).
fn one_line_summary(m: &gates::RuleMeta<'_>) -> String {
    let body = m
        .section("What it does")
        .unwrap_or_else(|| m.docs.trim().to_string());
    let flat = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match sentence_end(&flat) {
        Some(i) => flat[..=i].to_string(),
        None => flat,
    }
}

/// Byte index of the `.` ending the first sentence: followed by a space, outside `code`, and
/// not part of `...`.
fn sentence_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut in_code = false;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'`' => in_code = !in_code,
            b'.' if !in_code && b.get(i + 1) == Some(&b' ') && (i == 0 || b[i - 1] != b'.') => {
                return Some(i);
            }
            _ => {}
        }
    }
    None
}

/// `file:line:col: error: message` for a configuration error (gates' messages already start
/// with the position when they know it).
fn config_error(file: &str, e: &gates::GatesError) -> String {
    let msg = e.to_string();
    match msg.split_once(": ") {
        Some((pos, rest)) if pos.starts_with(file) => format!("{pos}: error: {rest}"),
        _ => format!("{file}: error: {msg}"),
    }
}

fn explain_text(_registry: &Registry, r: &RuleInfo) -> String {
    let mut s = r.docs.clone();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_find_typos() {
        let infos = vec![RuleInfo {
            code: "DC101".into(),
            name: "require-concurrent-index".into(),
            default_severity: Severity::Red,
            summary: String::new(),
            docs: String::new(),
        }];
        assert_eq!(suggestions("require-concurent-index", &infos).len(), 1);
        assert_eq!(suggestions("dc10", &infos).len(), 1);
        assert!(suggestions("zzz", &infos).is_empty());
    }
}

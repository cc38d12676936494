//! Linting many migration files at once: a directory of migrations ([`lint_dir`]), or any list
//! of inputs ([`lint_inputs`]), on all cores with `rayon` (files are independent; results keep
//! the inputs' order, so output is the same as one file after the other).
//!
//! ```
//! use gates::{Config, Registry};
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("10_b.sql"), "CREATE INDEX i ON t (c);").unwrap();
//! std::fs::write(dir.path().join("2_a.sql"), "SET lock_timeout = '1s';").unwrap();
//! let linted = gates::lint::lint_dir(&Registry::builtin(), &Config::default(), dir.path()).unwrap();
//! // natural order: 2_a before 10_b
//! assert!(linted[0].as_ref().unwrap().name.ends_with("2_a.sql"));
//! let b = linted[1].as_ref().unwrap();
//! assert!(b.findings.iter().any(|f| f.rule == "require-concurrent-index"));
//! ```

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use migration_parser::ParseOptions;
use migration_parser::layout::{self, FileRole, file_role};
use rayon::prelude::*;

use crate::{Config, Finding, GatesError, Registry};

/// One input to lint: a name for messages and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LintInput {
    /// The name in messages (the path as given, or `<stdin>`).
    pub name: String,
    /// Its content.
    pub bytes: Vec<u8>,
    /// Named by the user (a file on the command line, standard input), not found by walking a
    /// directory: then an input without any statement is an error
    /// ([`GatesError::NoStatements`]: most likely the wrong file), while an empty file in a
    /// migrations directory is common and lints cleanly.
    pub explicit: bool,
    /// A rollback script (`down.sql`, `*.down.sql`, Flyway `U…__*.sql`, see
    /// [`migration_parser::layout`]): linted with the rollback-appropriate rules (without
    /// [`ROLLBACK_EXEMPT_RULES`]). Set for a named file whose name says so and for the rollbacks
    /// [`read_dir_inputs_with`] includes on request.
    pub rollback: bool,
}

/// Rules whose findings are what a rollback script is for: it drops what its migration added
/// (a column or table the previous application version never used). Every other rule (locks,
/// rewrites, transactions, unparsed statements) applies to rollbacks as to migrations.
pub const ROLLBACK_EXEMPT_RULES: &[&str] = &["dropping-column", "dropping-table"];

/// Which files of a directory [`read_dir_inputs_with`] lints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirOptions {
    /// Lint rollback scripts too (`--include-rollbacks`), with the rollback-appropriate rules.
    /// Off: `down.sql`, `*.down.sql`, Flyway undo files and dbmate `-- migrate:down` sections are
    /// not linted.
    pub include_rollbacks: bool,
}

impl DirOptions {
    /// Rollbacks included or not.
    pub fn include_rollbacks(include_rollbacks: bool) -> DirOptions {
        DirOptions { include_rollbacks }
    }
}

impl LintInput {
    /// An input the user named, holding `bytes`.
    pub fn new(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> LintInput {
        LintInput {
            name: name.into(),
            bytes: bytes.into(),
            explicit: true,
            rollback: false,
        }
    }

    /// The same input, marked a rollback script (or not).
    #[must_use]
    pub fn as_rollback(mut self, rollback: bool) -> LintInput {
        self.rollback = rollback;
        self
    }

    /// The same input, found by walking a directory (an empty file is not an error).
    #[must_use]
    pub fn found_in_directory(mut self) -> LintInput {
        self.explicit = false;
        self
    }

    /// Read the file at `path` (with the size cap of [`crate::input::read_capped`]) as an input
    /// the user named; a rollback script by its name (see [`LintInput::rollback`]) is marked so.
    pub fn read(path: &Path) -> Result<LintInput, GatesError> {
        let bytes = crate::input::read_capped(path).map_err(|e| GatesError::read(path, &e))?;
        let rollback = file_role(path, Path::is_file) == FileRole::Rollback;
        Ok(LintInput::new(path.display().to_string(), bytes).as_rollback(rollback))
    }
}

/// A linted input: its text and the findings, in file order (by position; findings without a
/// location first).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LintedFile {
    /// The input's name.
    pub name: String,
    /// The SQL text.
    pub source: String,
    /// The findings.
    pub findings: Vec<Finding>,
}

/// Parse and lint one input with `options`. An input that is not SQL text (binary, not UTF-8,
/// an unterminated quote) is [`GatesError::Parse`] with file, line and column; a named input
/// without statements is [`GatesError::NoStatements`].
pub fn lint_input(
    registry: &Registry,
    config: &Config,
    input: &LintInput,
    options: &ParseOptions,
) -> Result<LintedFile, GatesError> {
    // A dbmate file's `-- migrate:down` section is its rollback: blanked (lines kept) unless
    // the input is linted as a rollback.
    let up_only = match std::str::from_utf8(&input.bytes) {
        Ok(text) if !input.rollback => layout::without_rollback_section(text),
        _ => None,
    };
    let bytes = up_only.as_ref().map_or(&input.bytes[..], |t| t.as_bytes());
    let mut migration = migration_parser::parse_bytes(&input.name, bytes, options)
        .map_err(|e| GatesError::parse(&e))?;
    if up_only.is_some() {
        // Findings quote the file as it is.
        migration.source = String::from_utf8_lossy(&input.bytes).into_owned();
    }
    if input.explicit && migration.statements.is_empty() {
        return Err(GatesError::NoStatements {
            file: input.name.clone(),
        });
    }
    let mut findings = registry.lint(&migration, config);
    if input.rollback {
        findings.retain(|f| !ROLLBACK_EXEMPT_RULES.contains(&f.rule.as_str()));
    }
    // File order: by position, file-level findings (no location) first.
    findings.sort_by_key(|f| f.location.as_ref().map(|l| (l.line, l.column)));
    Ok(LintedFile {
        name: input.name.clone(),
        source: migration.source,
        findings,
    })
}

/// [`lint_input`] for every input, in parallel on rayon's pool; the results keep the inputs'
/// order.
pub fn lint_inputs(
    registry: &Registry,
    config: &Config,
    inputs: &[LintInput],
    options: &ParseOptions,
) -> Vec<Result<LintedFile, GatesError>> {
    inputs
        .par_iter()
        .map(|input| lint_input(registry, config, input, options))
        .collect()
}

/// Lint every migration under `dir` ([`sql_files`]: recursive, natural order; rollback scripts
/// skipped, see [`read_dir_inputs`]) with the configuration's parse options. `Err` when the directory cannot be walked or a file cannot
/// be read; per file, a parse error is that file's result.
pub fn lint_dir(
    registry: &Registry,
    config: &Config,
    dir: &Path,
) -> Result<Vec<Result<LintedFile, GatesError>>, GatesError> {
    let inputs = read_dir_inputs(dir)?;
    Ok(lint_inputs(
        registry,
        config,
        &inputs,
        &config.parse_options(),
    ))
}

/// The migrations under `dir` ([`sql_files`], without rollback scripts), read as inputs found
/// in a directory.
pub fn read_dir_inputs(dir: &Path) -> Result<Vec<LintInput>, GatesError> {
    read_dir_inputs_with(dir, DirOptions::default())
}

/// The `*.sql` files under `dir` ([`sql_files`]) read as inputs found in a directory; rollback
/// scripts ([`migration_parser::layout::file_role`]) only when `options` include them, marked
/// [`LintInput::rollback`].
/// Two layouts matching `dir` ([`migration_parser::layout::detect`]) are an error naming both.
pub fn read_dir_inputs_with(dir: &Path, options: DirOptions) -> Result<Vec<LintInput>, GatesError> {
    let files = sql_files(dir)?;
    check_layout(dir, &files)?;
    let present: std::collections::HashSet<&Path> = files.iter().map(PathBuf::as_path).collect();
    files
        .iter()
        .filter_map(|f| {
            let rollback = file_role(f, |p| present.contains(p)) == FileRole::Rollback;
            (options.include_rollbacks || !rollback)
                .then(|| LintInput::read(f).map(|i| i.found_in_directory().as_rollback(rollback)))
        })
        .collect()
}

/// Refuse a directory two migration-tool layouts match (the shared detection, from the names
/// of its `.sql` files two levels deep and the tools' own files).
fn check_layout(dir: &Path, files: &[PathBuf]) -> Result<(), GatesError> {
    let mut names: Vec<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix(dir).ok())
        .filter(|r| r.components().count() <= 2)
        .map(|r| {
            r.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    for own in ["migration_lock.toml", "meta/_journal.json", "atlas.sum"] {
        if dir.join(own).is_file() {
            names.push(own.to_string());
        }
    }
    match layout::detect(&names, |f| std::fs::read_to_string(dir.join(f)).ok()) {
        Err(a) => Err(GatesError::AmbiguousLayout {
            dir: dir.display().to_string(),
            first: a.first.to_string(),
            second: a.second.to_string(),
        }),
        Ok(_) => Ok(()),
    }
}

/// Every `*.sql` file under `dir`, recursively, in natural path order (`2_a.sql` before
/// `10_a.sql`); hidden entries (`.git`) are skipped and symbolic links to directories are not
/// followed (no cycles).
pub fn sql_files(dir: &Path) -> Result<Vec<PathBuf>, GatesError> {
    let mut files = Vec::new();
    walk(dir, &mut files).map_err(|(p, e)| GatesError::read(&p, &e))?;
    files.sort_by(|a, b| natural_path_cmp(a, b));
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), (PathBuf, std::io::Error)> {
    let entries = std::fs::read_dir(dir).map_err(|e| (dir.to_path_buf(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| (dir.to_path_buf(), e))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let ty = entry.file_type().map_err(|e| (path.clone(), e))?;
        if ty.is_dir() {
            walk(&path, out)?;
        } else if (ty.is_file() || (ty.is_symlink() && path.is_file()))
            && path
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("sql"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Compare paths component by component in natural order (`2_a` before `10_a`).
pub fn natural_path_cmp(a: &Path, b: &Path) -> Ordering {
    let mut ca = a.components();
    let mut cb = b.components();
    loop {
        match (ca.next(), cb.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let o = natural_cmp(
                    &x.as_os_str().to_string_lossy(),
                    &y.as_os_str().to_string_lossy(),
                );
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// Natural string order: runs of ASCII digits compare by value, the rest byte-wise; ties broken
/// byte-wise so the order is total and stable.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let na = trim_zeros(&ab[si..i]);
            let nb = trim_zeros(&bb[sj..j]);
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            let o = ab[i].cmp(&bb[j]);
            if o != Ordering::Equal {
                return o;
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j)).then_with(|| a.cmp(b))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|c| **c == b'0').count();
    &d[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers_by_value() {
        let mut v = vec!["10_b.sql", "2_a.sql", "1_c.sql", "02_a.sql", "a.sql"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["1_c.sql", "02_a.sql", "2_a.sql", "10_b.sql", "a.sql"]);
    }
}

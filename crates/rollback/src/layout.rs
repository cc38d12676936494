//! Up/down pairs from a migrations directory: Diesel, sqlx, golang-migrate (and tools with the
//! same flat layout), dbmate, Flyway, Liquibase formatted SQL, Prisma, Drizzle, Atlas. Which tool
//! a directory belongs to, and which file names and sections are up and down scripts, is
//! `migration_parser::layout` (shared with `lint`, which skips rollbacks); this module reads the
//! files and pairs them (the other tools are in `tools.rs`).

mod tools;

use std::path::{Path, PathBuf};

use migration_parser::layout;
use serde::{Deserialize, Serialize};

use crate::RollbackError;

pub use migration_parser::layout::Layout;

/// One migration with its down script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationPair {
    /// The name the tool knows it by (directory, base file name).
    pub name: String,
    /// Its version as the tool sorts it.
    pub version: String,
    /// The up SQL.
    pub up: String,
    /// The down SQL, if there is one.
    pub down: Option<String>,
    /// Where the up SQL is.
    pub up_path: PathBuf,
    /// Where the down SQL is.
    pub down_path: Option<PathBuf>,
    /// False when the tool runs it outside a transaction (Diesel `run_in_transaction = false`,
    /// sqlx `-- no-transaction`, dbmate `transaction:false`).
    pub run_in_transaction: bool,
    /// The layout it came from.
    pub layout: Layout,
}

pub(crate) fn read(path: &Path) -> Result<String, RollbackError> {
    std::fs::read_to_string(path).map_err(|source| RollbackError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn entries(dir: &Path) -> Result<Vec<PathBuf>, RollbackError> {
    let rd = std::fs::read_dir(dir).map_err(|source| RollbackError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(|source| RollbackError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        v.push(e.path());
    }
    v.sort();
    Ok(v)
}

pub(crate) fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Numeric sort key of a version (digits only), falling back to the text.
pub(crate) fn version_key(v: &str) -> (u128, String) {
    (v.parse::<u128>().unwrap_or(u128::MAX), v.to_string())
}

/// Paths of the files of `dir` and of its direct subdirectories, relative to it and
/// `/`-separated, sorted.
fn relative_files(dir: &Path) -> Result<Vec<String>, RollbackError> {
    let mut out = Vec::new();
    for p in entries(dir)? {
        if p.is_dir() {
            for q in entries(&p)?.into_iter().filter(|q| q.is_file()) {
                out.push(format!("{}/{}", file_name(&p), file_name(&q)));
            }
        } else {
            out.push(file_name(&p));
        }
    }
    Ok(out)
}

/// Detect the layout of `dir` ([`migration_parser::layout::detect`]) and list its migrations in
/// the order the tool applies them. Two matching layouts are an error naming both.
pub fn discover(dir: &Path) -> Result<Vec<MigrationPair>, RollbackError> {
    let rel = relative_files(dir)?;
    let detected =
        layout::detect(&rel, |f| std::fs::read_to_string(dir.join(f)).ok()).map_err(|a| {
            RollbackError::AmbiguousLayout {
                path: dir.to_path_buf(),
                first: a.first,
                second: a.second,
            }
        })?;
    let files = entries(dir)?;
    match detected {
        None => Err(RollbackError::UnknownLayout {
            path: dir.to_path_buf(),
        }),
        Some(Layout::Diesel) => diesel(&files),
        Some(Layout::Sqlx | Layout::GolangMigrate) => flat(&files),
        Some(Layout::Dbmate) => dbmate(dir, &files),
        Some(Layout::Flyway) => tools::flyway(&files),
        Some(Layout::Liquibase) => tools::liquibase(&files),
        Some(Layout::Prisma) => tools::prisma(&files),
        Some(Layout::Drizzle) => tools::drizzle(dir),
        Some(Layout::Atlas) => tools::atlas(dir, &files),
    }
}

fn diesel(files: &[PathBuf]) -> Result<Vec<MigrationPair>, RollbackError> {
    let diesel: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.join("up.sql").is_file())
        .collect();
    {
        let mut out = Vec::new();
        for d in diesel {
            let name = file_name(d);
            let version = name.split('_').next().unwrap_or("").replace('-', "");
            let up = read(&d.join("up.sql"))?;
            let down_path = d.join("down.sql");
            let down = if down_path.is_file() {
                Some(read(&down_path)?)
            } else {
                None
            };
            let meta = d.join("metadata.toml");
            let run_in_transaction = if meta.is_file() {
                let text = read(&meta)?;
                toml::from_str::<toml::Table>(&text)
                    .ok()
                    .and_then(|t| t.get("run_in_transaction").and_then(|v| v.as_bool()))
                    .unwrap_or(true)
            } else {
                true
            };
            out.push(MigrationPair {
                name,
                version,
                up,
                down,
                up_path: d.join("up.sql"),
                down_path: down_path.is_file().then_some(down_path),
                run_in_transaction,
                layout: Layout::Diesel,
            });
        }
        // Diesel sorts version strings.
        out.sort_by(|a, b| a.version.cmp(&b.version).then(a.name.cmp(&b.name)));
        Ok(out)
    }
}

/// Flat up/down files (the name rules are `migration_parser::layout`'s, shared with `lint`).
fn flat(files: &[PathBuf]) -> Result<Vec<MigrationPair>, RollbackError> {
    let ups: Vec<(String, PathBuf)> = files
        .iter()
        .filter_map(|p| layout::up_base(&file_name(p)).map(|b| (b.to_string(), p.clone())))
        .collect();
    {
        let downs: Vec<(String, PathBuf)> = files
            .iter()
            .filter_map(|p| layout::down_base(&file_name(p)).map(|b| (b.to_string(), p.clone())))
            .collect();
        let mut out = Vec::new();
        let all_long = ups
            .iter()
            .all(|(b, _)| b.split('_').next().is_some_and(|v| v.len() >= 14));
        for (base, up_path) in ups {
            let version = base.split(['_', '.']).next().unwrap_or("").to_string();
            let up = read(&up_path)?;
            let down_path = downs
                .iter()
                .find(|(b, _)| *b == base)
                .map(|(_, p)| p.clone());
            let down = match &down_path {
                Some(p) => Some(read(p)?),
                None => None,
            };
            let run_in_transaction = up
                .lines()
                .next()
                .is_none_or(|l| l.trim() != "-- no-transaction");
            out.push(MigrationPair {
                name: base,
                version,
                up,
                down,
                up_path,
                down_path,
                run_in_transaction,
                layout: if all_long {
                    Layout::Sqlx
                } else {
                    Layout::GolangMigrate
                },
            });
        }
        out.sort_by(|a, b| {
            version_key(&a.version)
                .cmp(&version_key(&b.version))
                .then(a.name.cmp(&b.name))
        });
        Ok(out)
    }
}

/// dbmate: single files with sections.
fn dbmate(dir: &Path, files: &[PathBuf]) -> Result<Vec<MigrationPair>, RollbackError> {
    let mut out = Vec::new();
    for p in files.iter().filter(|p| file_name(p).ends_with(".sql")) {
        let text = read(p)?;
        let Some(sections) = layout::dbmate_sections(&text) else {
            continue;
        };
        let run_in_transaction = sections.up_in_transaction;
        let up = text[sections.up.clone()].to_string();
        let down = sections.down.clone().map(|d| text[d].to_string());
        let down_at = sections.down_marker;
        let name = file_name(p).trim_end_matches(".sql").to_string();
        out.push(MigrationPair {
            version: name.split('_').next().unwrap_or("").to_string(),
            name,
            up,
            down,
            up_path: p.clone(),
            down_path: down_at.map(|_| p.clone()),
            run_in_transaction,
            layout: Layout::Dbmate,
        });
    }
    if out.is_empty() {
        return Err(RollbackError::UnknownLayout {
            path: dir.to_path_buf(),
        });
    }
    out.sort_by(|a, b| {
        version_key(&a.version)
            .cmp(&version_key(&b.version))
            .then(a.name.cmp(&b.name))
    });
    Ok(out)
}

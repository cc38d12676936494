//! Flyway, Liquibase formatted SQL, Prisma, Drizzle and Atlas directories as migration pairs.
//! The name and file-format rules are `migration_parser::layout`'s; this reads the files.

use std::path::{Path, PathBuf};

use migration_parser::layout::{self, FlywayKind, LayoutProblem};

use super::{Layout, MigrationPair, file_name, read};
use crate::RollbackError;

fn problem(path: &Path, p: LayoutProblem) -> RollbackError {
    RollbackError::LayoutFile {
        path: path.to_path_buf(),
        line: p.line,
        column: p.column,
        message: p.message,
    }
}

fn pair(
    name: String,
    version: String,
    up: String,
    up_path: PathBuf,
    layout: Layout,
) -> MigrationPair {
    MigrationPair {
        name,
        version,
        up,
        down: None,
        up_path,
        down_path: None,
        run_in_transaction: true,
        layout,
    }
}

/// Flyway: `V…__` scripts in numeric version order, each with the `U…__` undo of its version,
/// then the `R__` repeatables by description (no undo).
pub(super) fn flyway(files: &[PathBuf]) -> Result<Vec<MigrationPair>, RollbackError> {
    let scripts: Vec<(layout::FlywayScript, &PathBuf)> = files
        .iter()
        .filter(|p| p.is_file())
        .filter_map(|p| layout::flyway_script(&file_name(p)).map(|s| (s, p)))
        .collect();
    let mut versioned: Vec<&(layout::FlywayScript, &PathBuf)> = scripts
        .iter()
        .filter(|(s, _)| s.kind == FlywayKind::Versioned)
        .collect();
    versioned.sort_by(|(a, _), (b, _)| layout::flyway_version_cmp(&a.version, &b.version));
    let mut out = Vec::new();
    for (s, path) in versioned {
        let undo = scripts.iter().find(|(u, _)| {
            u.kind == FlywayKind::Undo && layout::flyway_version_cmp(&u.version, &s.version).is_eq()
        });
        let mut p = pair(
            file_name(path).trim_end_matches(".sql").to_string(),
            s.version_text.clone(),
            read(path)?,
            (*path).clone(),
            Layout::Flyway,
        );
        if let Some((_, u)) = undo {
            p.down = Some(read(u)?);
            p.down_path = Some((*u).clone());
        }
        out.push(p);
    }
    let mut repeatable: Vec<&(layout::FlywayScript, &PathBuf)> = scripts
        .iter()
        .filter(|(s, _)| s.kind == FlywayKind::Repeatable)
        .collect();
    repeatable.sort_by(|(a, _), (b, _)| a.description.cmp(&b.description));
    for (_, path) in repeatable {
        let name = file_name(path).trim_end_matches(".sql").to_string();
        out.push(pair(
            name,
            String::new(),
            read(path)?,
            (*path).clone(),
            Layout::Flyway,
        ));
    }
    Ok(out)
}

/// Liquibase formatted SQL: every changeset of every file (files by name, changesets in file
/// order), its `--rollback` lines as the down script.
pub(super) fn liquibase(files: &[PathBuf]) -> Result<Vec<MigrationPair>, RollbackError> {
    let mut out = Vec::new();
    for path in files
        .iter()
        .filter(|p| p.is_file() && file_name(p).to_ascii_lowercase().ends_with(".sql"))
    {
        let text = read(path)?;
        let Some(changesets) = layout::liquibase_changesets(&text) else {
            continue;
        };
        for c in changesets {
            out.push(MigrationPair {
                name: format!("{}::{}", file_name(path), c.id),
                version: c.id,
                up: c.sql,
                down_path: c.rollback.as_ref().map(|_| path.clone()),
                down: c.rollback,
                up_path: path.clone(),
                run_in_transaction: c.run_in_transaction,
                layout: Layout::Liquibase,
            });
        }
    }
    Ok(out)
}

/// Prisma: `<name>/migration.sql` by directory name (Prisma's timestamps sort as text).
pub(super) fn prisma(files: &[PathBuf]) -> Result<Vec<MigrationPair>, RollbackError> {
    let mut out = Vec::new();
    for d in files.iter().filter(|p| p.join("migration.sql").is_file()) {
        let name = file_name(d);
        let version = name.split('_').next().unwrap_or_default().to_string();
        let up_path = d.join("migration.sql");
        out.push(pair(
            name,
            version,
            read(&up_path)?,
            up_path,
            Layout::Prisma,
        ));
    }
    Ok(out)
}

/// Drizzle: the `<tag>.sql` files in the order of `meta/_journal.json`.
pub(super) fn drizzle(dir: &Path) -> Result<Vec<MigrationPair>, RollbackError> {
    let journal = dir.join("meta").join("_journal.json");
    let tags = layout::drizzle_journal(&read(&journal)?).map_err(|p| problem(&journal, p))?;
    let mut out = Vec::new();
    for (i, tag) in tags.into_iter().enumerate() {
        let up_path = dir.join(format!("{tag}.sql"));
        if !up_path.is_file() {
            return Err(problem(
                &journal,
                LayoutProblem {
                    line: 1,
                    column: 1,
                    message: format!("the journal lists `{tag}`, but {tag}.sql is missing"),
                },
            ));
        }
        out.push(pair(
            tag,
            i.to_string(),
            read(&up_path)?,
            up_path,
            Layout::Drizzle,
        ));
    }
    Ok(out)
}

/// Atlas: the files `atlas.sum` lists, in its order; a file listed but missing, or a `.sql`
/// file not listed, is an error (the sum file does not match the directory).
pub(super) fn atlas(dir: &Path, files: &[PathBuf]) -> Result<Vec<MigrationPair>, RollbackError> {
    let sum_path = dir.join("atlas.sum");
    let sum = read(&sum_path)?;
    let listed = layout::atlas_sum(&sum).map_err(|p| problem(&sum_path, p))?;
    let mismatch = |line: usize, message: String| {
        problem(
            &sum_path,
            LayoutProblem {
                line,
                column: 1,
                message,
            },
        )
    };
    for f in files.iter().filter(|p| p.is_file()) {
        let name = file_name(f);
        if name.ends_with(".sql") && !listed.contains(&name) {
            return Err(mismatch(
                1,
                format!("{name} is not listed in atlas.sum (run `atlas migrate hash`)"),
            ));
        }
    }
    let mut out = Vec::new();
    for (i, name) in listed.iter().enumerate() {
        if !dir.join(name).is_file() {
            return Err(mismatch(
                i + 2,
                format!("atlas.sum lists {name}, which is not in the directory"),
            ));
        }
    }
    layout::atlas_check_sums(&sum, |f| std::fs::read(dir.join(f)).ok())
        .map_err(|p| problem(&sum_path, p))?;
    for (i, name) in listed.into_iter().enumerate() {
        let up_path = dir.join(&name);
        if !up_path.is_file() {
            return Err(mismatch(
                i + 2,
                format!("atlas.sum lists {name}, which is not in the directory"),
            ));
        }
        let version = name.split('_').next().unwrap_or_default().to_string();
        let stem = name.trim_end_matches(".sql").to_string();
        out.push(pair(stem, version, read(&up_path)?, up_path, Layout::Atlas));
    }
    Ok(out)
}

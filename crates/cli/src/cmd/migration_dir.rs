//! `validate-migration --sql-file DIR`: the migration to gate picked from a migrations
//! directory (the layout detected by the shared detection, `rollback::discover`), with its down
//! script as the rollback to prove and the tool's transaction behaviour.

use std::path::Path;

use deployclaw::pipeline::MigrationSource;
use migration_parser::TransactionMode;

use crate::exit;

/// The migration picked from a directory.
pub(crate) struct Picked {
    /// The up script, named by its file (and the migration, for sectioned layouts).
    pub migration: MigrationSource,
    /// Its down script, when the layout has one and it is not empty.
    pub rollback: Option<MigrationSource>,
    /// How the tool runs it (wrapped in a transaction or not).
    pub transaction_mode: TransactionMode,
}

/// Pick `name` (a migration's name or version), or the newest migration of `dir`; the choice
/// is printed. An unknown layout, an empty directory or an unknown name is an input error.
pub(crate) fn pick(dir: &Path, name: Option<&str>) -> Result<Picked, i32> {
    let pairs = rollback::discover(dir).map_err(|e| {
        eprintln!("deployclaw: {e}");
        exit::INPUT
    })?;
    let Some(last) = pairs.last() else {
        eprintln!("deployclaw: {}: no migrations found", dir.display());
        return Err(exit::INPUT);
    };
    let pair = match name {
        None => last,
        Some(n) => pairs
            .iter()
            .find(|p| p.name == n || p.version == n)
            .ok_or_else(|| {
                eprintln!(
                    "deployclaw: --migration {n}: no migration of {} has that name or version (newest: {})",
                    dir.display(),
                    last.name
                );
                exit::INPUT
            })?,
    };
    let up_file = std::fs::read_to_string(&pair.up_path).unwrap_or_default();
    // A file holding several migrations (Liquibase changesets) names the one taken.
    let up_name = if up_file.trim() == pair.up.trim() {
        pair.up_path.display().to_string()
    } else {
        format!("{} [{}]", pair.up_path.display(), pair.name)
    };
    let rollback = match (&pair.down, &pair.down_path) {
        (Some(sql), Some(path)) if has_statement(sql) => Some(MigrationSource::Text {
            name: if up_name.ends_with(']') {
                format!("{} [{} rollback]", path.display(), pair.name)
            } else {
                path.display().to_string()
            },
            sql: sql.clone(),
        }),
        _ => None,
    };
    let position = pairs.iter().position(|p| p.name == pair.name).unwrap_or(0) + 1;
    eprintln!(
        "deployclaw: {} ({:?} layout, migration {position} of {}): validating {}{}",
        dir.display(),
        pair.layout,
        pairs.len(),
        pair.name,
        match &rollback {
            Some(MigrationSource::Text { name, .. }) =>
                format!("; its down script {name} is proven as the rollback"),
            _ => "; it has no down script: the generated rollback is proven".into(),
        }
    );
    Ok(Picked {
        migration: MigrationSource::Text {
            name: up_name,
            sql: pair.up.clone(),
        },
        rollback,
        transaction_mode: if pair.run_in_transaction {
            TransactionMode::WrapFile
        } else {
            TransactionMode::Autocommit
        },
    })
}

/// Some SQL besides comments and whitespace (an empty down script is no rollback).
fn has_statement(sql: &str) -> bool {
    migration_parser::parse("down", sql, &Default::default())
        .map_or(true, |m| !m.statements.is_empty())
}

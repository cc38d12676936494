//! Which migration tool a directory belongs to, and the readers of the tools' own files
//! (Flyway names, Liquibase changesets, Drizzle's journal, Atlas's sum file). Names and
//! contents in, no IO.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A migration tool's directory layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `<version>_<name>/up.sql` and `down.sql`, optional `metadata.toml`.
    Diesel,
    /// `<timestamp>_<name>.up.sql` / `.down.sql` (14-digit versions).
    Sqlx,
    /// `<n>_<name>.up.sql` / `.down.sql` (golang-migrate and look-alikes).
    GolangMigrate,
    /// One file per migration with `-- migrate:up` and `-- migrate:down` sections.
    Dbmate,
    /// `V<version>__<name>.sql`, `U<version>__<name>.sql` undo scripts, `R__<name>.sql`
    /// repeatables.
    Flyway,
    /// `--liquibase formatted sql` files of `--changeset author:id` blocks.
    Liquibase,
    /// `<name>/migration.sql` directories beside `migration_lock.toml`.
    Prisma,
    /// `<tag>.sql` files in the order of `meta/_journal.json`.
    Drizzle,
    /// `.sql` files in the order of `atlas.sum`.
    Atlas,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Diesel => "Diesel",
            Layout::Sqlx => "sqlx",
            Layout::GolangMigrate => "golang-migrate",
            Layout::Dbmate => "dbmate",
            Layout::Flyway => "Flyway",
            Layout::Liquibase => "Liquibase",
            Layout::Prisma => "Prisma",
            Layout::Drizzle => "Drizzle",
            Layout::Atlas => "Atlas",
        })
    }
}

/// What is wrong with a tool's own file (`atlas.sum`, `_journal.json`): the 1-based line and
/// column and a message. The caller adds the path and turns it into its crate's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutProblem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl LayoutProblem {
    pub(crate) fn at(line: usize, column: usize, message: impl Into<String>) -> Self {
        LayoutProblem {
            line,
            column,
            message: message.into(),
        }
    }
}

/// The outcome of [`detect`] when two layouts match one directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ambiguous {
    /// The first layout that matches.
    pub first: Layout,
    /// Another one.
    pub second: Layout,
}

/// The layout of a directory from its files' paths relative to it (`/`-separated, e.g.
/// `V1__init.sql`, `20240101_init/migration.sql`, `meta/_journal.json`). `text(path)` gives a
/// top-level `.sql` file's contents (Liquibase and dbmate are told by their markers).
/// `Ok(None)`: no layout matches; `Err`: two do.
pub fn detect(
    files: &[String],
    text: impl Fn(&str) -> Option<String>,
) -> Result<Option<Layout>, Ambiguous> {
    let top_sql = || {
        files
            .iter()
            .filter(|f| !f.contains('/') && f.to_ascii_lowercase().ends_with(".sql"))
    };
    let has = |name: &str| files.iter().any(|f| f == name);
    let in_subdir = |name: &str| {
        files
            .iter()
            .any(|f| f.split_once('/').is_some_and(|(_, n)| n == name))
    };
    let mut found = Vec::new();
    if has("migration_lock.toml") || in_subdir("migration.sql") {
        found.push(Layout::Prisma);
    }
    if has("meta/_journal.json") {
        found.push(Layout::Drizzle);
    }
    if has("atlas.sum") {
        found.push(Layout::Atlas);
    }
    if in_subdir("up.sql") {
        found.push(Layout::Diesel);
    }
    if top_sql().any(|f| flyway_script(f).is_some_and(|s| s.kind == FlywayKind::Versioned)) {
        found.push(Layout::Flyway);
    }
    let ups: Vec<&str> = top_sql().filter_map(|f| super::up_base(f)).collect();
    if !ups.is_empty() {
        let long = ups
            .iter()
            .all(|b| b.split('_').next().is_some_and(|v| v.len() >= 14));
        found.push(if long {
            Layout::Sqlx
        } else {
            Layout::GolangMigrate
        });
    }
    let texts: Vec<String> = if found.is_empty() || found == [Layout::Atlas] {
        top_sql().filter_map(|f| text(f)).collect()
    } else {
        Vec::new()
    };
    if texts.iter().any(|t| is_liquibase(t)) {
        found.push(Layout::Liquibase);
    } else if texts.iter().any(|t| super::dbmate_sections(t).is_some()) {
        found.push(Layout::Dbmate);
    }
    match found[..] {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        [first, second, ..] => Err(Ambiguous { first, second }),
    }
}

/// The kind of a Flyway script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlywayKind {
    /// `V<version>__…`: applied once, in version order.
    Versioned,
    /// `U<version>__…`: undoes the versioned script of the same version.
    Undo,
    /// `R__…`: applied after the versioned scripts, by description.
    Repeatable,
}

/// A Flyway script's name, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlywayScript {
    /// Versioned, undo or repeatable.
    pub kind: FlywayKind,
    /// The version's numeric segments (`1_10` and `1.10` → `[1, 10]`); empty for repeatables.
    pub version: Vec<u64>,
    /// The version as written (`1_10`); empty for repeatables.
    pub version_text: String,
    /// The description (what follows `__`, without `.sql`).
    pub description: String,
}

/// `V1_10__add.sql` → versioned 1.10 "add"; `U1_10__add.sql` → its undo; `R__views.sql` →
/// repeatable. `None` for other names (Flyway's default prefixes and separator).
pub fn flyway_script(file_name: &str) -> Option<FlywayScript> {
    let stem = file_name
        .strip_suffix(".sql")
        .or_else(|| file_name.strip_suffix(".SQL"))?;
    if let Some(description) = stem.strip_prefix("R__") {
        return Some(FlywayScript {
            kind: FlywayKind::Repeatable,
            version: Vec::new(),
            version_text: String::new(),
            description: description.to_string(),
        });
    }
    let kind = match stem.chars().next()? {
        'V' => FlywayKind::Versioned,
        'U' => FlywayKind::Undo,
        _ => return None,
    };
    let (version_text, description) = stem[1..].split_once("__")?;
    let version = version_text
        .split(['.', '_'])
        .map(|s| s.parse::<u64>().ok())
        .collect::<Option<Vec<u64>>>()?;
    Some(FlywayScript {
        kind,
        version,
        version_text: version_text.to_string(),
        description: description.to_string(),
    })
}

/// Flyway's order of versions: numeric by segments, missing segments are zero (`1` = `1.0`,
/// `1.9` < `1.10`).
pub fn flyway_version_cmp(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            a.get(i)
                .copied()
                .unwrap_or(0)
                .cmp(&b.get(i).copied().unwrap_or(0))
        })
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn is_liquibase(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .is_some_and(|l| {
            l.strip_prefix("--")
                .is_some_and(|r| r.trim().eq_ignore_ascii_case("liquibase formatted sql"))
        })
}

/// One `--changeset author:id` block of a Liquibase formatted SQL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changeset {
    /// `author:id`.
    pub id: String,
    /// 1-based line of the `--changeset` comment.
    pub line: usize,
    /// The block's SQL (its `--rollback` lines left out, other lines kept in place).
    pub sql: String,
    /// The SQL of its `--rollback` lines (`None` when it has none, or says `not required`).
    pub rollback: Option<String>,
    /// False when the changeset says `runInTransaction:false`.
    pub run_in_transaction: bool,
}

/// The changesets of a Liquibase formatted SQL file; `None` when `text` is not one.
pub fn liquibase_changesets(text: &str) -> Option<Vec<Changeset>> {
    if !is_liquibase(text) {
        return None;
    }
    let mut out: Vec<Changeset> = Vec::new();
    let mut rollback: Vec<String> = Vec::new();
    let finish = |out: &mut Vec<Changeset>, rollback: &mut Vec<String>| {
        if let Some(last) = out.last_mut() {
            let r = rollback.join("\n");
            let r = r.trim();
            last.rollback =
                (!r.is_empty() && !r.eq_ignore_ascii_case("not required")).then(|| r.to_string());
        }
        rollback.clear();
    };
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        let directive = t.strip_prefix("--").map(str::trim_start);
        if let Some(rest) = directive.and_then(|d| d.strip_prefix("changeset")) {
            finish(&mut out, &mut rollback);
            let mut words = rest.split_whitespace();
            let id = words.next().unwrap_or_default().to_string();
            let run_in_transaction =
                !words.any(|w| w.eq_ignore_ascii_case("runInTransaction:false"));
            out.push(Changeset {
                id,
                line: i + 1,
                sql: String::new(),
                rollback: None,
                run_in_transaction,
            });
        } else if let Some(rest) = directive.and_then(|d| d.strip_prefix("rollback")) {
            rollback.push(rest.trim().to_string());
        } else if let Some(last) = out.last_mut() {
            last.sql.push_str(line);
            last.sql.push('\n');
        }
    }
    finish(&mut out, &mut rollback);
    Some(out)
}

/// The migration tags of a Drizzle `meta/_journal.json`, in the order of their `idx`
/// (each is the file `<tag>.sql`).
pub fn drizzle_journal(json: &str) -> Result<Vec<String>, LayoutProblem> {
    #[derive(Deserialize)]
    struct Journal {
        entries: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        idx: u64,
        tag: String,
    }
    let mut journal: Journal = serde_json::from_str(json).map_err(|e| {
        LayoutProblem::at(e.line(), e.column(), format!("not a Drizzle journal: {e}"))
    })?;
    journal.entries.sort_by_key(|e| e.idx);
    Ok(journal.entries.into_iter().map(|e| e.tag).collect())
}

/// The files an Atlas `atlas.sum` lists, in its order, after checking its format: a first line
/// `h1:<sum>` then one `<file> h1:<sum>` line per file, each sum the base64 of a SHA-256 (44
/// characters ending in `=`).
pub fn atlas_sum(text: &str) -> Result<Vec<String>, LayoutProblem> {
    let valid_sum = |s: &str| {
        s.strip_prefix("h1:").is_some_and(|b| {
            b.len() == 44
                && b.ends_with('=')
                && b[..43]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
        })
    };
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, l)) if valid_sum(l.trim_end()) => {}
        _ => {
            return Err(LayoutProblem::at(
                1,
                1,
                "the first line of atlas.sum must be the directory sum `h1:<base64 SHA-256>`",
            ));
        }
    }
    let mut files = Vec::new();
    for (i, line) in lines {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let Some((file, sum)) = line.rsplit_once(' ') else {
            return Err(LayoutProblem::at(
                i + 1,
                1,
                "expected `<file> h1:<base64 SHA-256>`",
            ));
        };
        if !valid_sum(sum) {
            return Err(LayoutProblem::at(
                i + 1,
                file.len() + 2,
                format!("`{sum}` is not a sum `h1:<base64 SHA-256>`"),
            ));
        }
        files.push(file.to_string());
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flyway_names_and_version_order() {
        let v = |n: &str| flyway_script(n).expect(n);
        assert_eq!(v("V1_10__a.sql").version, [1, 10]);
        assert_eq!(v("U2.1__a.sql").kind, FlywayKind::Undo);
        assert_eq!(v("R__views.sql").kind, FlywayKind::Repeatable);
        assert_eq!(flyway_script("Users__x.sql"), None);
        assert_eq!(flyway_script("V1__x.txt"), None);
        assert_eq!(flyway_version_cmp(&[1, 9], &[1, 10]), Ordering::Less);
        assert_eq!(flyway_version_cmp(&[1], &[1, 0]), Ordering::Equal);
        assert_eq!(flyway_version_cmp(&[2], &[1, 99]), Ordering::Greater);
    }

    #[test]
    fn detection_by_names_and_markers() {
        let d = |files: &[&str], text: &'static str| {
            let files: Vec<String> = files.iter().map(|s| s.to_string()).collect();
            detect(&files, |_| Some(text.to_string()))
        };
        assert_eq!(d(&["V1__a.sql", "U1__a.sql"], ""), Ok(Some(Layout::Flyway)));
        assert_eq!(
            d(&["migration_lock.toml", "1_a/migration.sql"], ""),
            Ok(Some(Layout::Prisma))
        );
        assert_eq!(
            d(&["0000_a.sql", "meta/_journal.json"], ""),
            Ok(Some(Layout::Drizzle))
        );
        assert_eq!(d(&["1.sql", "atlas.sum"], ""), Ok(Some(Layout::Atlas)));
        assert_eq!(
            d(&["a.sql"], "--liquibase formatted sql\n--changeset a:1\n"),
            Ok(Some(Layout::Liquibase))
        );
        assert_eq!(d(&["a.sql"], "-- migrate:up\n"), Ok(Some(Layout::Dbmate)));
        assert_eq!(d(&["a.sql"], "SELECT 1;"), Ok(None));
        assert_eq!(
            d(&["V1__a.sql", "1_a/up.sql"], ""),
            Err(Ambiguous {
                first: Layout::Diesel,
                second: Layout::Flyway
            })
        );
    }

    #[test]
    fn atlas_sum_format_and_drizzle_journal() {
        let sum = "h1:D90HoTnN7ntLjU5855zhqeH8lM6a5bv49lmoIr3OeUs=\n\
                   1_a.sql h1:IdchVlC21IbGGZ7r4qbJF64dBnhoAYVrLRLDYdLP7xY=\n";
        assert_eq!(atlas_sum(sum), Ok(vec!["1_a.sql".to_string()]));
        assert_eq!(atlas_sum("1_a.sql h1:x").map_err(|p| p.line), Err(1));
        assert_eq!(
            drizzle_journal(r#"{"entries":[{"idx":1,"tag":"b"},{"idx":0,"tag":"a"}]}"#),
            Ok(vec!["a".to_string(), "b".to_string()])
        );
        assert!(drizzle_journal("{").is_err());
    }
}

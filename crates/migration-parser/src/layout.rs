//! Migration-tool layouts by file name and section markers: which files of a migrations
//! directory are migrations and which are their rollbacks. The one place that knows it: `lint`
//! walks a directory with it (rollbacks are linted only on request), `rollback::discover` pairs
//! up and down scripts with it. Names only, no IO.
//!
//! | tool | migration | rollback |
//! |---|---|---|
//! | Diesel | `<version>_<name>/up.sql` | `<version>_<name>/down.sql` |
//! | sqlx, golang-migrate and look-alikes | `<version>_<name>.up.sql` (or `_up.sql`) | `….down.sql` (or `_down.sql`) |
//! | Flyway | `V<version>__<name>.sql` | `U<version>__<name>.sql` (undo) |
//! | dbmate | the `-- migrate:up` section of a file | its `-- migrate:down` section |
//! | Flyway repeatables | `R__<name>.sql`, applied after every versioned script | none |
//! | Liquibase formatted SQL | each `--changeset author:id` block | its `--rollback` lines |
//! | Prisma | `<name>/migration.sql` (beside `migration_lock.toml`) | none |
//! | Drizzle | `<tag>.sql`, ordered by `meta/_journal.json` | none |
//! | Atlas | the files `atlas.sum` lists, in its order | none |
//!
//! [`detect`] says which tool a directory belongs to (an error naming both when two match);
//! the readers ([`flyway_script`], [`liquibase_changesets`], [`drizzle_journal`],
//! [`atlas_sum`]) take names and file contents, the callers do the reading.

use std::ops::Range;
use std::path::Path;

mod atlas_hash;
mod tools;
pub use atlas_hash::atlas_check_sums;
pub use tools::*;

/// What a file of a migrations directory is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// A migration (or a file no layout claims: linted as one).
    Migration,
    /// A rollback script of some layout (Diesel `down.sql`, `*.down.sql`, `*_down.sql`,
    /// Flyway `U…__*.sql`).
    Rollback,
}

/// The role of the file at `path`, by its file name. `has_file(p)` says whether a sibling file
/// exists: `x_down.sql` is a rollback only beside an `x_up.sql` (`0005_shut_down.sql` alone is
/// a migration); `.down.sql`, Diesel's `down.sql` and Flyway's `U…__` need no sibling.
pub fn file_role(path: &Path, has_file: impl Fn(&Path) -> bool) -> FileRole {
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy())
        .unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    let underscore_pair = || {
        lower.strip_suffix("_down.sql").is_some_and(|_| {
            has_file(&path.with_file_name(format!("{}_up.sql", &name[..name.len() - 9])))
        })
    };
    if lower == "down.sql"
        || lower.ends_with(".down.sql")
        || flyway_undo(&name)
        || underscore_pair()
    {
        FileRole::Rollback
    } else {
        FileRole::Migration
    }
}

/// The base of an up script's file name (`1_add.up.sql` / `1_add_up.sql` → `1_add`).
pub fn up_base(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(".up.sql")
        .or_else(|| file_name.strip_suffix("_up.sql"))
        .filter(|b| !b.is_empty())
}

/// The base of a down script's file name (`1_add.down.sql` / `1_add_down.sql` → `1_add`).
pub fn down_base(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(".down.sql")
        .or_else(|| file_name.strip_suffix("_down.sql"))
        .filter(|b| !b.is_empty())
}

/// Flyway's undo scripts: `U<version>__<description>.sql`, the version made of digits, `.` and
/// `_` (Flyway's default prefix and separator).
fn flyway_undo(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('U') else {
        return false;
    };
    let Some((version, _)) = rest.split_once("__") else {
        return false;
    };
    !version.is_empty()
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '_')
        && name.to_ascii_lowercase().ends_with(".sql")
}

/// The sections of a dbmate file (byte ranges of the SQL after each marker line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbmateSections {
    /// The SQL of the `-- migrate:up` section.
    pub up: Range<usize>,
    /// The SQL of the `-- migrate:down` section, if there is one.
    pub down: Option<Range<usize>>,
    /// The marker line of the `-- migrate:down` section (from its start).
    pub down_marker: Option<usize>,
    /// False when the up marker says `transaction:false`.
    pub up_in_transaction: bool,
}

/// The sections of `text` when it is a dbmate migration (`-- migrate:up` present).
pub fn dbmate_sections(text: &str) -> Option<DbmateSections> {
    let up_at = text.find("-- migrate:up")?;
    let down_at = text.find("-- migrate:down");
    let line_end = |at: usize| text[at..].find('\n').map_or(text.len(), |e| at + e);
    let up_line_end = line_end(up_at);
    let up = match down_at {
        Some(d) if d > up_at => up_line_end..d,
        _ => up_line_end..text.len(),
    };
    let down = down_at.map(|d| {
        let start = line_end(d);
        let end = if up_at > d { up_at } else { text.len() };
        start..end.max(start)
    });
    Some(DbmateSections {
        up,
        down,
        down_marker: down_at,
        up_in_transaction: !text[up_at..up_line_end].contains("transaction:false"),
    })
}

/// `text` with a dbmate file's `-- migrate:down` section (marker line included) blanked out:
/// every character but line ends becomes a space, so lines and columns of the rest stay where
/// they are. `None` when there is no such section.
pub fn without_rollback_section(text: &str) -> Option<String> {
    let s = dbmate_sections(text)?;
    let (marker, down) = (s.down_marker?, s.down?);
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..marker]);
    out.extend(
        text[marker..down.end]
            .chars()
            .map(|c| if c == '\n' || c == '\r' { c } else { ' ' }),
    );
    out.push_str(&text[down.end..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_name() {
        let has = |p: &Path| p.ends_with("2_b_up.sql");
        for (p, role) in [
            ("m/2020_add/up.sql", FileRole::Migration),
            ("m/2020_add/down.sql", FileRole::Rollback),
            ("1_add.up.sql", FileRole::Migration),
            ("1_add.down.sql", FileRole::Rollback),
            ("2_b_down.sql", FileRole::Rollback),
            ("0005_shut_down.sql", FileRole::Migration),
            ("20240101000000_add.DOWN.sql", FileRole::Rollback),
            ("V1__init.sql", FileRole::Migration),
            ("U1__init.sql", FileRole::Rollback),
            ("U1.2_3__init.sql", FileRole::Rollback),
            ("Users__x.sql", FileRole::Migration),
            ("update_down_payments.sql", FileRole::Migration),
            ("down.sql.bak", FileRole::Migration),
            ("0001_slowdown.sql", FileRole::Migration),
        ] {
            assert_eq!(file_role(Path::new(p), has), role, "{p}");
        }
    }

    #[test]
    fn dbmate_down_section_is_blanked_keeping_lines() {
        let text = "-- migrate:up\nCREATE TABLE t (a int);\n\n-- migrate:down\nDROP TABLE t;\n";
        let out = without_rollback_section(text).expect("has a down section");
        assert_eq!(out.len(), text.len());
        assert_eq!(out.lines().count(), text.lines().count());
        assert!(
            out.contains("CREATE TABLE t")
                && !out.contains("DROP")
                && !out.contains("migrate:down")
        );
        assert_eq!(without_rollback_section("-- migrate:up\nSELECT 1;"), None);
        assert_eq!(without_rollback_section("SELECT 1;"), None);
        let s =
            dbmate_sections("-- migrate:up transaction:false\nX;\n-- migrate:down\nY;").unwrap();
        assert!(!s.up_in_transaction);
    }
}

//! The libpq password file (`~/.pgpass`, `PGPASSFILE`), read in-process.
//!
//! libpq's rules: the file is `PGPASSFILE` when set, else `$HOME/.pgpass`; it is ignored (with
//! a warning) when it is not a regular file or when its group or others have any access; each
//! line is `host:port:database:user:password`, `#` starts a comment line, a field that is
//! exactly `*` matches anything, `\:` and `\\` escape a colon and a backslash, and the first
//! matching line wins. Host `localhost` also matches a Unix-socket connection (a host that is
//! a directory; the directory itself matches too).
//!
//! Why not sqlx's own lookup: it runs only inside `PgConnectOptions::new()` (before the host
//! and user are set), falls back to `~/.pgpass` when `PGPASSFILE` names a file without a
//! match, and logs a malformed line — password included — at `warn`. And the password must
//! also reach `pg_dump` / `psql`, which run with a scrubbed environment and get it through a
//! private in-memory password file (`simulator::dump`): so deployclaw resolves it once, into
//! [`ConnectionSpec::password`], with [`ConnectionSpec::resolve_password`].
//!
//! Warnings (an ignored file) are queued, once per file per process, for the caller to print:
//! [`take_warnings`]. They name the file and the mode, never a line of it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{ConnectionSpec, Secret};

static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static WARNED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn warn_once(path: &Path, message: String) {
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if warned.iter().any(|p| p == path) {
        return;
    }
    warned.push(path.to_path_buf());
    WARNINGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(message);
}

/// Warnings queued by password-file lookups since the last call (each ignored file once per
/// process). The CLI prints them on standard error.
pub fn take_warnings() -> Vec<String> {
    std::mem::take(&mut *WARNINGS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The password file libpq would read: `PGPASSFILE` when set and not empty, else
/// `$HOME/.pgpass`; `None` when neither is known.
pub fn passfile_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".pgpass"))
}

/// Match one field against `want`, libpq's way: `*` alone matches anything, otherwise the
/// field (with `\` escapes removed) must equal `want`. Returns the rest of the line after the
/// field's `:` when it matches.
fn match_field<'a>(line: &'a str, want: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut field = String::new();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => field.push(chars.next().map(|(_, n)| n)?),
            ':' => return (field == want).then(|| &line[i + 1..]),
            c => field.push(c),
        }
    }
    None
}

/// The password field: up to the first unescaped `:` or the end, with escapes removed.
fn password_field(rest: &str) -> String {
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => out.push(n),
                None => out.push('\\'),
            },
            ':' => break,
            c => out.push(c),
        }
    }
    out
}

/// The password for `host:port/database` as `user` in password-file `text` (first matching
/// line), or `None`. A host starting with `/` (a Unix socket directory) also matches
/// `localhost`.
pub fn find_password(
    text: &str,
    host: &str,
    port: u16,
    database: &str,
    user: &str,
) -> Option<Secret> {
    let port = port.to_string();
    let socket = host.is_empty() || host.starts_with('/');
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let after_host = match_field(line, host)
            .or_else(|| socket.then(|| match_field(line, "localhost")).flatten());
        let matched = after_host
            .and_then(|r| match_field(r, &port))
            .and_then(|r| match_field(r, database))
            .and_then(|r| match_field(r, user));
        if let Some(rest) = matched {
            return Some(Secret::new(password_field(rest)));
        }
    }
    None
}

/// Look the password up in the file at `path`. A missing file is no password; a file that is
/// not a regular file, or that its group or others may access, is ignored with a warning
/// ([`take_warnings`]), as libpq does.
pub fn lookup_in(path: &Path, host: &str, port: u16, database: &str, user: &str) -> Option<Secret> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        warn_once(
            path,
            format!(
                "password file {} is not a plain file; ignored",
                path.display()
            ),
        );
        return None;
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        warn_once(
            path,
            format!(
                "password file {} has group or world access (mode {:o}); permissions should be \
                 u=rw (0600) or less; ignored",
                path.display(),
                mode & 0o777
            ),
        );
        return None;
    }
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            warn_once(
                path,
                format!(
                    "password file {} cannot be read ({e}); ignored",
                    path.display()
                ),
            );
            return None;
        }
    };
    find_password(&text, host, port, database, user)
}

impl ConnectionSpec {
    /// Fill in the password the way libpq finds one, when none was given (and the spec does
    /// not use an RDS IAM token): `PGPASSWORD`, else the password file ([`passfile_path`]).
    /// Done once, in-process, so that the driver and the client programs (`pg_dump`, which
    /// runs with a scrubbed environment) use the same password.
    pub fn resolve_password(&mut self) {
        if self.password.is_some() || self.iam_auth {
            return;
        }
        if let Some(p) = std::env::var_os("PGPASSWORD") {
            self.password = Some(Secret::new(p.to_string_lossy().into_owned()));
            return;
        }
        self.resolve_password_from_file();
    }

    /// Fill in a missing password from the password file only, never from `PGPASSWORD`: for
    /// connections to a `--shadow` scratch server, which must not receive the target's
    /// password that `PGPASSWORD` holds.
    pub fn resolve_password_from_file(&mut self) {
        if self.password.is_some() || self.iam_auth {
            return;
        }
        if let Some(path) = passfile_path() {
            self.password = lookup_in(&path, &self.host, self.port, &self.database, &self.user);
        }
    }

    /// [`ConnectionSpec::resolve_password`] by value.
    pub fn with_resolved_password(mut self) -> ConnectionSpec {
        self.resolve_password();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
        find_password(text, host, port, db, user).map(|s| s.expose().to_string())
    }

    #[test]
    fn first_match_wins_with_wildcards() {
        let f = "# comment\n\
                 db1:5432:app:alice:one\n\
                 *:5432:app:alice:two\n\
                 *:*:*:*:three\n";
        assert_eq!(pw(f, "db1", 5432, "app", "alice").as_deref(), Some("one"));
        assert_eq!(pw(f, "db2", 5432, "app", "alice").as_deref(), Some("two"));
        assert_eq!(pw(f, "db1", 5433, "app", "alice").as_deref(), Some("three"));
        assert_eq!(
            pw("db1:5432:app:alice:x\n", "db1", 5432, "app", "bob"),
            None
        );
        // A `*` that is part of a field is literal.
        assert_eq!(
            pw("db*:5432:app:alice:x\n", "db1", 5432, "app", "alice"),
            None
        );
    }

    #[test]
    fn escapes_in_fields_and_password() {
        let f = r"h\:x:5432:d\\b:u:p\:w\\d:tail";
        assert_eq!(pw(f, "h:x", 5432, r"d\b", "u").as_deref(), Some(r"p:w\d"));
        assert_eq!(
            pw("h:5432:d:u:pw\r\n", "h", 5432, "d", "u").as_deref(),
            Some("pw")
        );
        // Too few fields: no match, no panic.
        assert_eq!(pw("h:5432:d\n", "h", 5432, "d", "u"), None);
        assert_eq!(pw("h:5432:d:u\\", "h", 5432, "d", "u"), None);
    }

    #[test]
    fn localhost_matches_a_unix_socket() {
        let f = "localhost:5433:app:u:sock\n";
        assert_eq!(
            pw(f, "/tmp/pgsock", 5433, "app", "u").as_deref(),
            Some("sock")
        );
        assert_eq!(
            pw(f, "localhost", 5433, "app", "u").as_deref(),
            Some("sock")
        );
        assert_eq!(pw(f, "127.0.0.1", 5433, "app", "u"), None);
        let lit = "/tmp/pgsock:5433:app:u:lit\n";
        assert_eq!(
            pw(lit, "/tmp/pgsock", 5433, "app", "u").as_deref(),
            Some("lit")
        );
    }

    #[test]
    fn group_readable_file_is_ignored_with_a_warning() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "*:*:*:*:SECRETX\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(lookup_in(&path, "h", 1, "d", "u").is_none());
        let w = take_warnings().join("\n");
        assert!(w.contains("group or world access"), "{w}");
        assert!(!w.contains("SECRETX"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            lookup_in(&path, "h", 1, "d", "u")
                .map(|s| s.expose().to_string())
                .as_deref(),
            Some("SECRETX")
        );
        assert!(lookup_in(dir.path(), "h", 1, "d", "u").is_none());
        assert!(lookup_in(&dir.path().join("missing"), "h", 1, "d", "u").is_none());
    }
}

//! `pg_dump --schema-only` of a shard's schemas, the [`DumpCache`] that lets the rehearsal and
//! the rollback proof of one run share a dump, and the environment of the PostgreSQL client
//! programs (`pg_dump`, `psql`).
//!
//! **A client program inherits nothing of deployclaw's environment.** [`client_command`] builds
//! it with [`topology::child::command`] (cleared environment, a private empty `HOME`) and sets
//! only the libpq variables for the one connection it makes, so no `PGPASSWORD`, `PGPASSFILE`
//! or `password_env` variable of the parent reaches it.
//!
//! **Passwords never go through the environment.** `PGPASSWORD` is visible to every process of
//! the same user (and in `ps e` on some systems); PostgreSQL's documentation advises against it.
//! On Linux the password is written to an anonymous in-memory file (`memfd_create`, mode 0600,
//! nothing on disk, gone with the process even after `SIGKILL`) that only the one child inherits,
//! and the child reads it as its `PGPASSFILE` (`/dev/fd/N`). Elsewhere a private temporary file
//! (mode 0600) is used and removed when the child has finished.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use migration_parser::Migration;
use sqlx::{Connection as _, PgConnection, Row};
use topology::ConnectionSpec;

use crate::SimError;
use crate::conn::connect_options;
use crate::ident::quote_ident;

/// The `TimeZone` an ordinary libpq client of `database` gets (server, database and role
/// settings; the child has no `PGTZ`), read with `psql`: our own sqlx sessions always start
/// under UTC, which would hide that `timestamp` ↔ `timestamptz` rewrites under any other zone.
/// `None` when it cannot be read.
pub(crate) async fn client_timezone(
    bin_dir: &Path,
    spec: &ConnectionSpec,
    database: &str,
) -> Option<String> {
    let (mut psql, _env) = client_command(&bin_dir.join("psql"), spec, database).ok()?;
    psql.args(["-X", "-A", "-t", "-q", "-c", "SHOW TimeZone"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), psql.output())
        .await
        .ok()?
        .ok()?;
    let tz = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !tz.is_empty()).then_some(tz)
}

/// The `TimeZone` a rehearsal runs under when the shard's cannot be read: a fixed offset other
/// than zero (UTC+1, no daylight saving). PostgreSQL 12+ skips the rewrite of a
/// `timestamp` ↔ `timestamptz` change only under a zero offset, so an unknown zone is rehearsed
/// as the one that rewrites: it may report a rewrite a UTC client would not do, never hide one.
pub(crate) const UNKNOWN_TIMEZONE_STAND_IN: &str = "Etc/GMT-1";

/// The `TimeZone` to rehearse under for a shard: its client's ([`client_timezone`]), else
/// [`UNKNOWN_TIMEZONE_STAND_IN`] with the execution log's line saying so.
pub(crate) fn rehearsal_timezone(read: Option<String>, shard: &str) -> (String, Option<String>) {
    match read {
        Some(tz) => (tz, None),
        None => (
            UNKNOWN_TIMEZONE_STAND_IN.to_string(),
            Some(format!(
                "the TimeZone a client of shard {shard} gets could not be read (psql SHOW TimeZone): \
                 rehearsed under {UNKNOWN_TIMEZONE_STAND_IN} (UTC+1), where a timestamp <-> timestamptz \
                 change rewrites its table (under UTC it would not)"
            )),
        ),
    }
}

/// `pg_dump --schema-only` of `schemas` of `source_db` (no owners, privileges, publications,
/// subscriptions, security labels or tablespaces), with `--lock-wait-timeout` so the dump never
/// waits behind — or makes a deploy queue behind — a lock another session holds. Returns the
/// SQL script as bytes. Used to clone a shard's structure into a shadow.
pub async fn dump_schemas(
    bin_dir: &Path,
    source: &ConnectionSpec,
    source_db: &str,
    schemas: &[String],
) -> Result<Vec<u8>, SimError> {
    let (mut dump, _env) =
        client_command(&bin_dir.join("pg_dump"), source, source_db).map_err(|e| {
            SimError::PgTool {
                program: "pg_dump".into(),
                message: format!("cannot prepare its environment: {e}"),
            }
        })?;
    // pg_dump holds ACCESS SHARE on every dumped table until it ends: never wait for a lock
    // another session holds (a deploy's ACCESS EXCLUSIVE would otherwise queue behind us).
    dump.arg("--schema-only")
        .arg("--lock-wait-timeout=5s")
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg("--no-publications")
        .arg("--no-subscriptions")
        .arg("--no-security-labels")
        .arg("--no-tablespaces");
    for s in schemas {
        // A pg_dump pattern: inside double quotes, * ? . are literal and "" is a quote.
        dump.arg(format!("--schema={}", quote_ident(s)));
    }
    dump.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = dump.output().await.map_err(|e| SimError::PgTool {
        program: "pg_dump".into(),
        message: format!("cannot run {}: {e}", bin_dir.join("pg_dump").display()),
    })?;
    if !out.status.success() {
        return Err(SimError::PgTool {
            program: "pg_dump".into(),
            message: tail(&String::from_utf8_lossy(&out.stderr)),
        });
    }
    Ok(out.stdout)
}

/// Runs each distinct `pg_dump` (server, user, database, schemas) once and hands the same
/// script to every caller — concurrent callers wait for the first. Meant for the lifetime of one
/// validation run (the rehearsal and the rollback proof clone the same representative shard);
/// it never expires, so do not keep one across runs.
#[derive(Debug, Default)]
pub struct DumpCache {
    dumps: Memo<Arc<Vec<u8>>>,
    /// The schema lists of [`DumpCache::schemas_to_clone`], read once per request.
    lists: Memo<Vec<String>>,
}

/// One result per distinct request key, computed once (concurrent callers wait for the
/// first); a failure is kept too, as its message.
#[derive(Debug)]
struct Memo<T>(Mutex<HashMap<String, MemoCell<T>>>);

/// One request's result, once it is known.
type MemoCell<T> = Arc<tokio::sync::OnceCell<Result<T, String>>>;

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo(Mutex::new(HashMap::new()))
    }
}

impl<T: Clone> Memo<T> {
    /// How many distinct requests were made.
    fn len(&self) -> usize {
        match self.0.lock() {
            Ok(c) => c.len(),
            Err(p) => p.into_inner().len(),
        }
    }

    /// The result for the request on `source` named by `parts`, running `run` the first time;
    /// an error as [`SimError::PgTool`] of `program`.
    async fn get(
        &self,
        (source, source_db, parts): (&ConnectionSpec, &str, &[&str]),
        program: &str,
        run: impl AsyncFnOnce() -> Result<T, String>,
    ) -> Result<T, SimError> {
        let key = format!(
            "{}\0{}\0{}\0{source_db}\0{}",
            source.host,
            source.port,
            source.user,
            parts.join("\0")
        );
        let cell = {
            let mut cells = match self.0.lock() {
                Ok(c) => c,
                Err(p) => p.into_inner(),
            };
            cells.entry(key).or_default().clone()
        };
        cell.get_or_init(|| run())
            .await
            .clone()
            .map_err(|message| SimError::PgTool {
                program: program.into(),
                message,
            })
    }
}

impl DumpCache {
    /// An empty cache.
    pub fn new() -> DumpCache {
        DumpCache::default()
    }

    /// How many distinct dumps were asked for (each ran `pg_dump` once, or is running it).
    pub fn len(&self) -> usize {
        self.dumps.len()
    }

    /// How many distinct schema lists ([`DumpCache::schemas_to_clone`]) were read (each once).
    pub fn lists_read(&self) -> usize {
        self.lists.len()
    }

    /// Whether no dump was asked for.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`dump_schemas`], once per distinct request.
    pub async fn dump(
        &self,
        bin_dir: &Path,
        source: &ConnectionSpec,
        source_db: &str,
        schemas: &[String],
    ) -> Result<Arc<Vec<u8>>, SimError> {
        let parts: Vec<&str> = schemas.iter().map(String::as_str).collect();
        self.dumps
            .get((source, source_db, &parts), "pg_dump", async || {
                dump_schemas(bin_dir, source, source_db, schemas)
                    .await
                    .map(Arc::new)
                    .map_err(|e| match e {
                        SimError::PgTool { message, .. } => message,
                        other => other.to_string(),
                    })
            })
            .await
    }

    /// [`schemas_to_clone`], read from the source once per distinct request: the pipeline's
    /// early dump, the rehearsal's and the rollback proof's ask for the same shard and partner,
    /// and each would otherwise open a connection to the source to read the same list again.
    /// A failure is cached too (as its message).
    pub async fn schemas_to_clone(
        &self,
        source: &ConnectionSpec,
        source_db: &str,
        schema: &str,
        partner: Option<&str>,
        migration: &Migration,
    ) -> Result<Vec<String>, SimError> {
        let named = schemas_named(migration);
        let mut parts = vec![schema, partner.unwrap_or("\u{1}")];
        parts.extend(named.iter().map(String::as_str));
        self.lists
            .get((source, source_db, &parts), "deployclaw", async || {
                schemas_to_clone(source, source_db, schema, partner, migration)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await
    }
}

/// The schemas a shadow copy of shard schema `schema` needs: itself, the schemas its foreign
/// keys point into and its column types live in, and the schemas `migration` names — those that
/// exist on the source; with a `partner` schema (the shard the first rehearsal runs the
/// migration for next, see [`fleet_partner`](crate::fleet_partner)), the same for it too,
/// sorted. The rehearsal clones exactly these; so should a rollback proof, so that both share
/// one dump through a [`DumpCache`].
pub async fn schemas_to_clone(
    source: &ConnectionSpec,
    source_db: &str,
    schema: &str,
    partner: Option<&str>,
    migration: &Migration,
) -> Result<Vec<String>, SimError> {
    let opts = connect_options(source, source_db).map_err(|e| SimError::PgTool {
        program: "deployclaw".into(),
        message: e.to_string(),
    })?;
    let mut conn = sqlx::PgConnection::connect_with(&opts)
        .await
        .map_err(|source_err| SimError::Shadow {
            url: crate::conn::redacted(source, source_db),
            what: "connect to read the schemas to clone".into(),
            source: source_err,
        })?;
    let named: BTreeSet<String> = schemas_named(migration);
    let r = clone_lists_on(&mut conn, schema, partner, &named)
        .await
        .map(|(_, all)| all);
    let _ = conn.close().await;
    r.map_err(|source_err| SimError::Shadow {
        url: crate::conn::redacted(source, source_db),
        what: "read the schemas to clone".into(),
        source: source_err,
    })
}

/// Schemas to clone for `schema`: itself, schemas its foreign keys point into, schemas of its
/// column types, and schemas named by the migration, that exist on the source.
/// [`schemas_to_clone_on`] of `schema` (its own list), and the sorted union with the
/// `partner` schema's list: what a clone holding both restores (the same list, so the same
/// [`DumpCache`] entry, wherever it is asked for).
pub(crate) async fn clone_lists_on(
    conn: &mut PgConnection,
    schema: &str,
    partner: Option<&str>,
    named: &BTreeSet<String>,
) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
    let own = schemas_to_clone_on(conn, schema, named).await?;
    let Some(b) = partner else {
        return Ok((own.clone(), own));
    };
    let mut all: BTreeSet<String> = own.iter().cloned().collect();
    all.extend(schemas_to_clone_on(conn, b, named).await?);
    Ok((own, all.into_iter().collect()))
}

pub(crate) async fn schemas_to_clone_on(
    conn: &mut PgConnection,
    schema: &str,
    named_by_migration: &BTreeSet<String>,
) -> Result<Vec<String>, sqlx::Error> {
    let named: Vec<String> = named_by_migration.iter().cloned().collect();
    let rows = sqlx::query(
        "WITH s AS (SELECT oid FROM pg_namespace WHERE nspname = $1)
         SELECT nspname::text FROM (
           SELECT $1::name AS nspname
           UNION SELECT rn.nspname FROM pg_constraint co
             JOIN pg_class c ON c.oid = co.conrelid JOIN pg_class rc ON rc.oid = co.confrelid
             JOIN pg_namespace rn ON rn.oid = rc.relnamespace
            WHERE co.contype = 'f' AND c.relnamespace = (SELECT oid FROM s)
           UNION SELECT tn.nspname FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
             JOIN pg_namespace tn ON tn.oid = t.typnamespace
            WHERE c.relnamespace = (SELECT oid FROM s) AND a.attnum > 0
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                              AND d.objid = t.oid AND d.deptype = 'e')
           UNION SELECT nspname FROM pg_namespace WHERE nspname = ANY($2)
         ) x
         WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
         ORDER BY 1",
    )
    .bind(schema)
    .bind(&named)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .collect())
}

/// Schemas a migration names explicitly (qualified names).
pub(crate) fn schemas_named(migration: &Migration) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    let json = serde_json::to_value(&migration.statements).unwrap_or_default();
    collect_schemas(&json, &mut s);
    s
}

fn collect_schemas(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let (Some(serde_json::Value::String(schema)), Some(serde_json::Value::String(_))) =
                (m.get("schema"), m.get("name"))
            {
                out.insert(schema.clone());
            }
            for x in m.values() {
                collect_schemas(x, out);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                collect_schemas(x, out);
            }
        }
        _ => {}
    }
}

/// Keeps the password file of one client program alive until the program has finished.
#[derive(Debug)]
pub(crate) struct Passfile {
    #[cfg(target_os = "linux")]
    _fd: std::os::fd::OwnedFd,
    #[cfg(not(target_os = "linux"))]
    _file: Option<std::path::PathBuf>,
}

#[cfg(not(target_os = "linux"))]
impl Drop for Passfile {
    fn drop(&mut self) {
        if let Some(p) = self._file.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// One `.pgpass` line matching any host, port, database and user (the file is private to one
/// child), with `\` and `:` escaped as libpq expects.
fn passfile_line(password: &str) -> String {
    let mut line = String::from("*:*:*:*:");
    for c in password.chars() {
        if matches!(c, '\\' | ':') {
            line.push('\\');
        }
        if c != '\n' && c != '\r' {
            line.push(c);
        }
    }
    line.push('\n');
    line
}

#[cfg(target_os = "linux")]
fn passfile_for(
    cmd: &mut tokio::process::Command,
    password: &str,
) -> std::io::Result<Option<Passfile>> {
    use std::io::Write as _;
    use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
    // SAFETY: memfd_create takes a NUL-terminated name and flags; the returned descriptor (or
    // -1) is owned by us from here on.
    let raw = unsafe { libc::memfd_create(c"deployclaw-pgpass".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh, valid descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // libpq ignores a password file that group or others can read.
    // SAFETY: fchmod on a valid descriptor.
    if unsafe { libc::fchmod(fd.as_raw_fd(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut file = std::fs::File::from(fd.try_clone()?);
    file.write_all(passfile_line(password).as_bytes())?;
    let n = fd.as_raw_fd();
    cmd.env("PGPASSFILE", format!("/dev/fd/{n}"));
    // SAFETY: the closure only calls fcntl (async-signal-safe) in the child, before exec: the
    // descriptor loses its close-on-exec flag in that one child, so no other child (and no
    // server started meanwhile) ever inherits it.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(n, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(Some(Passfile { _fd: fd }))
}

#[cfg(not(target_os = "linux"))]
fn passfile_for(
    cmd: &mut tokio::process::Command,
    password: &str,
) -> std::io::Result<Option<Passfile>> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = std::env::temp_dir().join(format!(
        ".deployclaw-pgpass-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    let guard = Passfile {
        _file: Some(path.clone()),
    };
    f.write_all(passfile_line(password).as_bytes())?;
    cmd.env("PGPASSFILE", &path);
    Ok(Some(guard))
}

/// What must outlive a client program started by [`client_command`]: its password file and
/// its private `HOME`.
#[derive(Debug)]
pub(crate) struct ClientEnv {
    _passfile: Option<Passfile>,
    _home: topology::child::PrivateHome,
}

/// A client program (`pg_dump`, `psql`) pointed at `spec` / `database`, with the scrubbed
/// environment of [`topology::child::command`] plus the libpq variables of this one connection
/// (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGAPPNAME`, `PGCONNECT_TIMEOUT`, `PGSSLMODE`
/// and the certificate paths of [`topology::child::ssl_file_vars`] when TLS is not disabled).
/// The password, if any, goes into a private password file (see the module doc); never
/// `PGPASSWORD`. Keep the returned guard alive until the program has exited.
pub(crate) fn client_command(
    program: &Path,
    spec: &ConnectionSpec,
    database: &str,
) -> std::io::Result<(tokio::process::Command, ClientEnv)> {
    let home = topology::child::PrivateHome::new()?;
    let mut cmd = tokio::process::Command::from(topology::child::command(program, home.path()));
    cmd.env("PGHOST", &spec.host)
        .env("PGPORT", spec.port.to_string())
        .env("PGUSER", &spec.user)
        .env("PGDATABASE", database)
        .env("PGAPPNAME", crate::conn::APPLICATION_NAME)
        .env("PGCONNECT_TIMEOUT", "15");
    if let Some(m) = &spec.sslmode {
        cmd.env("PGSSLMODE", m);
    }
    if spec.sslmode.as_deref() != Some("disable") {
        for (var, path) in topology::child::ssl_file_vars() {
            cmd.env(var, path);
        }
    }
    let passfile = match &spec.password {
        Some(p) => passfile_for(&mut cmd, p.expose())?,
        // No password: the child has no password source at all (its HOME is empty), so a
        // server that asks for one fails the connection.
        None => None,
    };
    Ok((
        cmd,
        ClientEnv {
            _passfile: passfile,
            _home: home,
        },
    ))
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let start = lines.len().saturating_sub(5);
    lines[start..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(password: Option<&str>) -> ConnectionSpec {
        ConnectionSpec {
            host: "127.0.0.1".into(),
            port: 5432,
            user: "gate".into(),
            database: "app".into(),
            password: password.map(|p| topology::Secret::new(p.to_string())),
            sslmode: None,
            iam_auth: false,
        }
    }

    /// What a child sees: its PGPASSWORD, the mode and content of its PGPASSFILE, and what its
    /// open descriptors point to.
    async fn child_view(cmd: &mut tokio::process::Command) -> String {
        let out = cmd
            .arg("-c")
            .arg(
                r#"echo "pw=${PGPASSWORD-unset}"; f="${PGPASSFILE-}"; \
                   if [ -n "$f" ]; then echo "mode=$(stat -L -c %a "$f")"; printf 'line=%s\n' "$(cat "$f")"; fi; \
                   for fd in /proc/self/fd/*; do readlink "$fd"; done"#,
            )
            .output()
            .await
            .expect("sh runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[tokio::test]
    async fn password_reaches_only_its_child_through_a_private_passfile() {
        let secret = "s3cr:t\\pw";
        let (mut with, guard) =
            client_command(Path::new("/bin/sh"), &spec(Some(secret)), "app").expect("passfile");
        assert!(guard._passfile.is_some());
        // A second child spawned while the first one's password file is open.
        let (mut other, none) =
            client_command(Path::new("/bin/sh"), &spec(None), "app").expect("no passfile");
        assert!(none._passfile.is_none());
        let seen = child_view(&mut with).await;
        assert!(seen.contains("pw=unset"), "{seen}");
        assert!(seen.contains("mode=600"), "{seen}");
        assert!(seen.contains("line=*:*:*:*:s3cr\\:t\\\\pw"), "{seen}");
        let other_seen = child_view(&mut other).await;
        assert!(!other_seen.contains("line="), "{other_seen}");
        // The first child holds the in-memory password file; the other one does not.
        assert!(seen.contains("memfd:deployclaw-pgpass"), "{seen}");
        assert!(
            !other_seen.contains("deployclaw-pgpass"),
            "the other child inherited the password file: {other_seen}"
        );
        drop(guard);
    }

    #[test]
    fn passfile_escapes_separators() {
        assert_eq!(passfile_line("a:b\\c"), "*:*:*:*:a\\:b\\\\c\n");
        assert_eq!(passfile_line("plain"), "*:*:*:*:plain\n");
        assert_eq!(passfile_line("x\ny"), "*:*:*:*:xy\n");
    }
}

#[cfg(test)]
mod timezone_tests {
    use super::*;

    #[test]
    fn an_unknown_timezone_is_rehearsed_under_a_non_zero_offset_and_said() {
        let (tz, note) = rehearsal_timezone(None, "pg-1/app/t1");
        assert_eq!(tz, "Etc/GMT-1");
        assert!(note.unwrap().contains("could not be read"));
        let (tz, note) = rehearsal_timezone(Some("Europe/Berlin".into()), "pg-1/app/t1");
        assert_eq!((tz.as_str(), note), ("Europe/Berlin", None));
    }
}

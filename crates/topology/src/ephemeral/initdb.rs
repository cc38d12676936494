//! `initdb` of a cluster, the spare databases a cached template carries, and taking one of them
//! (or `CREATE DATABASE`) for a scratch database.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;

use crate::TopologyError;

use super::SPARE_DATABASE_PREFIX;
use super::os::{command, tail};

/// Run `initdb` into `data_dir` (trust authentication, UTF-8, C.UTF-8 locale, superuser
/// `postgres`, no fsync).
pub(super) fn initdb(
    bin_dir: &Path,
    run_as: Option<(u32, u32)>,
    dir: &Path,
    data_dir: &Path,
) -> Result<(), TopologyError> {
    let out = command(&bin_dir.join("initdb"), run_as, dir)
        .arg("-D")
        .arg(data_dir)
        .args(INITDB_ARGS)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| TopologyError::io(format!("run {}", bin_dir.join("initdb").display()), e))?;
    if !out.status.success() {
        return Err(TopologyError::PgCommandFailed {
            program: "initdb".into(),
            status: out.status.to_string(),
            dir: dir.to_path_buf(),
            log_tail: tail(
                &String::from_utf8_lossy(&[out.stdout, out.stderr].concat()),
                15,
            ),
        });
    }
    Ok(())
}

pub(super) const INITDB_ARGS: [&str; 8] = [
    "-A",
    "trust",
    "-E",
    "UTF8",
    "--locale=C.UTF-8",
    "--no-sync",
    "-U",
    "postgres",
];

/// The major version a data directory was made for (`PG_VERSION`), 0 when unreadable.
pub(super) fn data_dir_version(data_dir: &Path) -> u32 {
    std::fs::read_to_string(data_dir.join("PG_VERSION"))
        .ok()
        .and_then(|v| {
            v.trim()
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok())
        })
        .unwrap_or(0)
}

/// Make `n` spare databases in a freshly initialised, never-started `data_dir` with the
/// single-user backend (`postgres --single`, as `initdb` itself creates databases): no server,
/// no port, and a clean shutdown checkpoint at the end, so the directory can be copied.
pub(super) fn add_spare_databases(
    bin_dir: &Path,
    run_as: Option<(u32, u32)>,
    dir: &Path,
    data_dir: &Path,
    n: u32,
) -> Result<(), TopologyError> {
    if n == 0 {
        return Ok(());
    }
    let version = data_dir_version(data_dir);
    // FILE_COPY (the only strategy before 15) is the cheap one without other sessions.
    let strategy = if version >= 15 {
        " STRATEGY file_copy"
    } else {
        ""
    };
    let mut script = String::new();
    for i in 1..=n {
        script.push_str(&format!(
            "CREATE DATABASE {SPARE_DATABASE_PREFIX}{i} TEMPLATE template0{strategy}\n"
        ));
    }
    let mut child = command(&bin_dir.join("postgres"), run_as, dir)
        .args([
            "--single",
            "-F",
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
        ])
        .args(["-c", "log_min_messages=warning", "-D"])
        .arg(data_dir)
        .arg("postgres")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| TopologyError::io(format!("run {}", bin_dir.join("postgres").display()), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| TopologyError::io("write to the single-user backend", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| TopologyError::io("wait for the single-user backend", e))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || stderr.contains("ERROR:") || stderr.contains("FATAL:") {
        return Err(TopologyError::PgCommandFailed {
            program: "postgres --single (spare databases)".into(),
            status: out.status.to_string(),
            dir: dir.to_path_buf(),
            log_tail: tail(&stderr, 15),
        });
    }
    Ok(())
}

/// Create database `name` on the server behind `conn` (a superuser or a role with CREATEDB):
/// with `ephemeral` (the server is an [`EphemeralPg`](super::EphemeralPg) this process started), by renaming a
/// spare database when it was made from a template with
/// [`EphemeralOptions::spare_databases`](super::EphemeralOptions::spare_databases) (about a millisecond), else with
/// `CREATE DATABASE name TEMPLATE template0`. Two sessions racing for the same spare are
/// fine: the one whose rename fails takes the next spare or creates the database. Never pass
/// `ephemeral` for any other server (a `--shadow` scratch server): a database there that is
/// named like a spare is somebody else's, and renaming it would fill and then drop it.
pub async fn create_database(
    conn: &mut sqlx::PgConnection,
    name: &str,
    ephemeral: bool,
) -> Result<(), sqlx::Error> {
    let pattern = format!("{}%", SPARE_DATABASE_PREFIX.replace('_', "\\_"));
    let spares: Vec<String> = if ephemeral {
        sqlx::query_scalar(
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1 ORDER BY datname",
        )
        .bind(&pattern)
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default()
    } else {
        Vec::new()
    };
    for spare in spares {
        let rename = format!(
            "ALTER DATABASE {} RENAME TO {}",
            crate::catalog::quote_ident_always(&spare),
            crate::catalog::quote_ident_always(name)
        );
        if sqlx::raw_sql(sqlx::AssertSqlSafe(rename))
            .execute(&mut *conn)
            .await
            .is_ok()
        {
            return Ok(());
        }
    }
    // On an ephemeral cluster of PostgreSQL 15 or later the copy is made file by file: cheaper
    // than WAL_LOG's block-by-block copy, and the checkpoint it forces is cheap on a private
    // cluster; a scratch server keeps the default (no checkpoints forced on a shared server).
    let file_copy = ephemeral
        && sqlx::query_scalar::<_, String>("SELECT current_setting('server_version_num')")
            .fetch_one(&mut *conn)
            .await
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .is_some_and(|v| v >= 150_000);
    let create = format!(
        "CREATE DATABASE {} TEMPLATE template0{}",
        crate::catalog::quote_ident_always(name),
        if file_copy { " STRATEGY FILE_COPY" } else { "" }
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

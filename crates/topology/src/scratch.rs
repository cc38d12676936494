//! Scratch databases on a shared server (`--shadow URL`): leases that prove a run is alive, and
//! the reaper that drops the leftovers of runs that died (`SIGKILL`, a lost CI runner).
//!
//! **Why this is safe for a live concurrent run.** Every scratch database is named
//! [`SCRATCH_DATABASE_PREFIX`] + 16 random hex digits; those 64 bits are also the key of a
//! session-level advisory lock. A run takes that lock on its [`Lease`] connection *before* it
//! creates the database and holds it until the database is dropped or the run ends — the
//! server releases session locks when the session ends, however the client died. The reaper
//! ([`reap_leftovers`]) lists the scratch databases, then drops only those whose key no session
//! holds in `pg_locks` (which shows the advisory locks of every database of the server, so it
//! does not matter which database a run's `--shadow` URL names). A database that exists had its
//! lock taken before it was created, so "no lock" means its run is gone. The drop uses
//! `WITH (FORCE)` (PostgreSQL 13+): a statement the dead run left executing (its backend lives
//! on until the statement ends) must not keep the leftover alive.

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _, PgConnection};

use crate::catalog::quote_ident_always;

/// Name prefix of every scratch database deployclaw creates on a shared server.
pub const SCRATCH_DATABASE_PREFIX: &str = "deployclaw_shadow_";

/// A fresh scratch database name: [`SCRATCH_DATABASE_PREFIX`] + 16 random hex digits.
pub fn new_scratch_name() -> String {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most `b.len()` bytes into the valid buffer `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    let mut v = u64::from_ne_bytes(b);
    if n != 8 {
        v ^= std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id()).rotate_left(32);
    }
    format!("{SCRATCH_DATABASE_PREFIX}{v:016x}")
}

/// The advisory-lock key of a scratch database name, `None` for a name deployclaw did not make
/// (exactly what [`new_scratch_name`] makes: 16 *lowercase* hex digits; the reaper drops only
/// these).
pub fn lease_key(name: &str) -> Option<i64> {
    let hex = name.strip_prefix(SCRATCH_DATABASE_PREFIX)?;
    if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|v| v as i64)
}

/// The session that holds the advisory locks of a run's scratch databases. Dropping it (or the
/// process dying) ends the session, and the server releases every lock it held.
#[derive(Debug)]
pub struct Lease {
    conn: tokio::sync::Mutex<PgConnection>,
}

impl Lease {
    /// Open the lease session with `admin` (the `--shadow` URL's database).
    pub async fn open(admin: &PgConnectOptions) -> Result<Lease, sqlx::Error> {
        let conn = admin
            .clone()
            .application_name("deployclaw-shadow-lease")
            .connect()
            .await?;
        Ok(Lease {
            conn: tokio::sync::Mutex::new(conn),
        })
    }

    /// Take the lock of `name` (before creating it). Fails for a name without a key.
    pub async fn take(&self, name: &str) -> Result<(), sqlx::Error> {
        let key = lease_key(name).ok_or_else(|| {
            sqlx::Error::Protocol(format!("{name} is not a deployclaw scratch database name"))
        })?;
        let mut c = self.conn.lock().await;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *c)
            .await?;
        if got {
            Ok(())
        } else {
            Err(sqlx::Error::Protocol(format!(
                "the lease of {name} is held by another session"
            )))
        }
    }

    /// Release the lock of `name` (after dropping it). Best effort: the lock goes with the
    /// session anyway.
    pub async fn release(&self, name: &str) {
        if let Some(key) = lease_key(name) {
            let mut c = self.conn.lock().await;
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(key)
                .execute(&mut *c)
                .await;
        }
    }

    /// Close the session (releasing every lock).
    pub async fn close(self) {
        let _ = self.conn.into_inner().close().await;
    }
}

/// What [`reap_leftovers`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Scratch databases of dead runs, dropped.
    pub dropped: Vec<String>,
    /// Scratch databases nobody holds a lease on but that could not be dropped (no privilege,
    /// a session still connected before PostgreSQL 13), with the reason.
    pub left: Vec<(String, String)>,
}

impl Reaped {
    /// One line for a run's step log; `None` when there was nothing to reap.
    pub fn summary(&self) -> Option<String> {
        if self.dropped.is_empty() && self.left.is_empty() {
            return None;
        }
        let mut s = format!(
            "dropped {} leftover scratch database(s) of dead runs",
            self.dropped.len()
        );
        if !self.dropped.is_empty() {
            s.push_str(&format!(": {}", self.dropped.join(", ")));
        }
        for (name, why) in &self.left {
            s.push_str(&format!("; left {name} ({why})"));
        }
        Some(s)
    }
}

/// Drop the scratch databases ([`SCRATCH_DATABASE_PREFIX`]) of runs that are gone: those whose
/// lease lock no session holds (see the module doc).
pub async fn reap_leftovers(conn: &mut PgConnection) -> Result<Reaped, sqlx::Error> {
    let pattern = format!("{}%", SCRATCH_DATABASE_PREFIX.replace('_', "\\_"));
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1 ORDER BY datname",
    )
    .bind(&pattern)
    .fetch_all(&mut *conn)
    .await?;
    let version: i32 =
        sqlx::query_scalar("SELECT current_setting('server_version_num')::int / 10000")
            .fetch_one(&mut *conn)
            .await?;
    let mut out = Reaped::default();
    for name in names {
        let Some(key) = lease_key(&name) else {
            continue;
        };
        // A bigint advisory key shows in pg_locks as classid = high 32 bits, objid = low 32
        // bits, objsubid = 1.
        let held: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1
               AND classid::bigint = ($1::bigint >> 32) & 4294967295
               AND objid::bigint = $1::bigint & 4294967295)",
        )
        .bind(key)
        .fetch_one(&mut *conn)
        .await?;
        if held {
            // A live run holds it.
            continue;
        }
        let force = if version >= 13 { " WITH (FORCE)" } else { "" };
        let r = sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {}{force}",
            quote_ident_always(&name)
        )))
        .execute(&mut *conn)
        .await;
        match r {
            Ok(_) => out.dropped.push(name),
            Err(e) => {
                let why = match &e {
                    sqlx::Error::Database(d) => d.message().to_string(),
                    other => other.to_string(),
                };
                out.left.push((name, why));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_lease_key() {
        let a = new_scratch_name();
        let b = new_scratch_name();
        assert_ne!(a, b);
        assert!(lease_key(&a).is_some(), "{a}");
        assert_eq!(
            lease_key("deployclaw_shadow_ffffffffffffffff"),
            Some(-1),
            "the 64 bits, as a signed key"
        );
        assert_eq!(lease_key("deployclaw_shadow_xyz"), None);
        assert_eq!(lease_key("deployclaw_shadow_0123456789abcdef0"), None);
        assert_eq!(lease_key("other_0123456789abcdef"), None);
        // Not a name deployclaw makes (its names are lowercase): never reaped.
        assert_eq!(lease_key("deployclaw_shadow_0123456789ABCDEF"), None);
        assert_eq!(lease_key("deployclaw_shadow_+123456789abcdef"), None);
    }
}

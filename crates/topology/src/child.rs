//! The environment of every program deployclaw starts (`initdb`, `pg_ctl`, `postgres`, the
//! cluster watchdog, `pg_dump`, `psql`, `pg_config`).
//!
//! A child never inherits deployclaw's environment: [`command`] clears it and sets only
//! `PATH`, `HOME` (a private directory), `LC_ALL`/`LANG` (`C.UTF-8`) and `TZ` (`UTC`). What a
//! client program needs to reach a server (`PGHOST`, `PGPORT`, `PGUSER`, …) its caller sets
//! explicitly from a [`crate::ConnectionSpec`]; a password goes only through a private in-memory
//! password file (see `simulator::dump`). So `PGPASSWORD`, `PGPASSFILE`, `PGSERVICE`, every
//! other `PG*` variable of the parent and every variable a topology file names in
//! `password_env` stay in deployclaw's own process: they never appear in a child's
//! `/proc/<pid>/environ`, which every process of the child's OS user (for the shadow's server
//! programs: `postgres` when deployclaw runs as root) can read.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `PATH` of a child when deployclaw itself has none.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A [`Command`] for `program` with a scrubbed environment: only `PATH` (deployclaw's own, or
/// [`DEFAULT_PATH`]), `HOME=home`, `LC_ALL=LANG=C.UTF-8` and `TZ=UTC`. Every program deployclaw
/// starts is built here; add what the child needs on top, never the parent's environment.
pub fn command(program: impl AsRef<OsStr>, home: &Path) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| DEFAULT_PATH.into()),
        )
        .env("HOME", home)
        // Server programs must not inherit a locale that initdb rejects; client programs'
        // messages are parsed in English.
        .env("LC_ALL", "C.UTF-8")
        .env("LANG", "C.UTF-8")
        .env("TZ", "UTC");
    c
}

/// An empty directory (mode 0700) private to this process, used as a client program's `HOME`
/// so that it reads no `~/.pgpass`, `~/.psqlrc` or `~/.pg_service.conf` of the user: removed
/// when dropped. Made under [`std::env::temp_dir`] with a random name.
#[derive(Debug)]
pub struct PrivateHome {
    path: PathBuf,
}

impl PrivateHome {
    /// Create the directory.
    pub fn new() -> std::io::Result<PrivateHome> {
        let base = std::env::temp_dir();
        let pid = std::process::id();
        let mut last = None;
        for _ in 0..16 {
            let path = base.join(format!("deployclaw-home-{pid}-{:016x}", random_u64()));
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    let home = PrivateHome { path };
                    std::fs::set_permissions(&home.path, std::fs::Permissions::from_mode(0o700))?;
                    return Ok(home);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("cannot make a private directory")))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// 64 random bits from the kernel (falls back to the clock).
fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most `b.len()` bytes into the valid buffer `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 8 {
        return u64::from_ne_bytes(b);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The client-certificate files libpq would use for `sslmode` with certificates, as absolute
/// paths to set explicitly in a client's environment (the child's `HOME` is private, so its
/// libpq would not find `~/.postgresql/*`): `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`,
/// `PGSSLCRL` from deployclaw's environment, else the files under `~/.postgresql/` that exist.
/// Paths only, never a secret's content.
pub fn ssl_file_vars() -> Vec<(&'static str, PathBuf)> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    [
        ("PGSSLROOTCERT", "root.crt"),
        ("PGSSLCERT", "postgresql.crt"),
        ("PGSSLKEY", "postgresql.key"),
        ("PGSSLCRL", "root.crl"),
    ]
    .into_iter()
    .filter_map(|(var, file)| {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return Some((var, PathBuf::from(v)));
        }
        let p = home.as_ref()?.join(".postgresql").join(file);
        p.is_file().then_some((var, p))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_sees_only_the_scrubbed_environment() {
        let home = PrivateHome::new().expect("private home");
        // SAFETY: test-local variable names; no other thread of this test reads them.
        unsafe {
            std::env::set_var("PGPASSWORD", "child-env-secret-1");
            std::env::set_var("DC_CHILD_TEST_PW", "child-env-secret-2");
        }
        let out = command("/usr/bin/env", home.path())
            .output()
            .expect("env runs");
        let env = String::from_utf8_lossy(&out.stdout);
        assert!(!env.contains("child-env-secret"), "{env}");
        let names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, ["HOME", "LANG", "LC_ALL", "PATH", "TZ"], "{env}");
        assert!(env.contains(&format!("HOME={}", home.path().display())));
        let mode = std::fs::metadata(home.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let p = home.path().to_path_buf();
        drop(home);
        assert!(!p.exists(), "the private home is removed on drop");
    }
}

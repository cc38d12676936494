//! Throw-away PostgreSQL clusters started from the server binaries installed on the machine.
//!
//! [`EphemeralPg::start`] runs `initdb` into a fresh directory under [`std::env::temp_dir`]
//! (`/tmp/dcpg-<pid>-<n>`, mode 0700, short so the Unix socket path stays under the 107-byte
//! limit), then `pg_ctl -w start` with the socket in that directory and, with
//! [`Listen::Loopback`] (the default, for stand-ins of target instances), TCP on `127.0.0.1` at a
//! free port (retried on a bind race). A shadow ([`EphemeralOptions::shadow`],
//! [`Listen::SocketOnly`]) has no TCP listener and a `pg_hba.conf` of `local` lines only: only
//! the cluster's OS user and root can reach its socket. Durability is switched off (`fsync`,
//! `synchronous_commit`, `full_page_writes`) — these clusters hold nothing worth keeping.
//! Every program runs with the scrubbed environment of [`crate::child::command`].
//!
//! * **Synchronous.** Starting takes roughly half a second of blocking process work (see
//!   `BENCHMARKS.md`). From async code call [`EphemeralPg::start_async`] (a
//!   `spawn_blocking` wrapper) or wrap it yourself. Dropping also blocks briefly (`pg_ctl stop`).
//! * **Root.** `initdb` refuses to run as root. When the effective uid is 0, every server program
//!   runs as the OS user [`EphemeralOptions::run_as`] (`postgres` by default, uid/gid from
//!   `/etc/passwd`) and the directory is chowned to it; `HOME` is set to the cluster directory.
//! * **Cleanup.** [`Drop`] stops the server (`pg_ctl -m immediate -w stop`) and removes the
//!   directory. Every live cluster is also in a process-wide registry: [`cleanup_all`] stops them
//!   all (call it from a Ctrl-C handler). Finally each cluster has a tiny watchdog process
//!   (`/bin/sh`, in its own session, ignoring SIGINT/SIGTERM/SIGHUP) that waits on a pipe from this
//!   process: if this process dies in any way — even `SIGKILL` — the pipe closes and the
//!   watchdog stops the server and removes the directory.
//! * **Several at once** work: each cluster has its own directory, socket and port.
//!
//! ```no_run
//! use topology::ephemeral::{EphemeralOptions, EphemeralPg};
//! let pg = EphemeralPg::start(EphemeralOptions::default())?;
//! println!("{} (PostgreSQL {})", pg.url(), pg.version());
//! # Ok::<(), topology::TopologyError>(())
//! ```

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};

use crate::{ConnectionSpec, TopologyError};

/// Options for [`EphemeralPg::start`].
#[derive(Debug, Clone)]
pub struct EphemeralOptions {
    /// Directory holding `initdb`, `pg_ctl` and `postgres`. `None` searches: `pg_config --bindir`,
    /// then `/usr/lib/postgresql/<N>/bin` (highest `N`), then `PATH`.
    pub bin_dir: Option<PathBuf>,
    /// Fixed port. `None` picks a free loopback port (and retries on a bind race) with
    /// [`Listen::Loopback`], and 5432 with [`Listen::SocketOnly`] (the socket file
    /// `<dir>/.s.PGSQL.5432` is in the cluster's own directory, so clusters never collide).
    pub port: Option<u16>,
    /// Where the server accepts connections. [`Listen::SocketOnly`] for every shadow
    /// ([`EphemeralOptions::shadow`]); the default [`Listen::Loopback`] is for clusters that
    /// stand in for target instances (the demo fleet, test fixtures) and must be reachable by
    /// URL like a real server.
    pub listen: Listen,
    /// Extra server settings written to `postgresql.conf` (`name = 'value'`), after the defaults
    /// (`fsync=off`, `synchronous_commit=off`, `full_page_writes=off`,
    /// `max_locks_per_transaction=256`, `max_connections=200`), so they can override them.
    pub settings: Vec<(String, String)>,
    /// Seconds `pg_ctl -w` waits for the server to accept connections.
    pub start_timeout_secs: u32,
    /// OS user to run the server programs as when this process is root.
    pub run_as: String,
    /// A directory where a pristine data directory made by `initdb` is kept and copied for the
    /// next clusters instead of running `initdb` again (copying ~30 MB takes ~0.05 s; `initdb`
    /// takes 0.4–0.6 s of CPU). The template is never started; it is keyed by the server
    /// binaries (path, size and modification time of `postgres`) and the user it belongs to,
    /// created atomically (written under a temporary name, then renamed), used only when it is
    /// owned by this process's user and not readable by others, and rebuilt when a cluster made
    /// from it fails to start. `None` (the default) always runs `initdb`.
    pub template_cache: Option<PathBuf>,
    /// Empty databases (copies of `template0`, named [`SPARE_DATABASE_PREFIX`]`1`…`N`) made once
    /// in the cached template, so that [`create_database`] on a cluster copied from it renames
    /// one (~1 ms) instead of running `CREATE DATABASE` (0.1–0.6 s of copying under load).
    /// Only used with [`EphemeralOptions::template_cache`]; each spare adds ~7 MB to the copy.
    /// Default 0.
    pub spare_databases: u32,
    /// Directory under which the cluster's own directory is made. `None` (the default) uses
    /// [`std::env::temp_dir`]; [`memory_temp_dir`] gives a RAM-backed one where the machine has
    /// it (file creation there is several times cheaper than on a journaling file system).
    pub base_dir: Option<PathBuf>,
}

/// Where an ephemeral cluster accepts connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Listen {
    /// Its Unix socket only: `listen_addresses = ''`, the socket in the cluster's own directory
    /// (mode 0700, owned by the cluster's OS user), and a `pg_hba.conf` of `local` lines only.
    /// `trust` there admits exactly the processes that can traverse that directory: the
    /// cluster's OS user and root. Every other local user gets "permission denied" on the
    /// socket, and there is no TCP port at all.
    SocketOnly,
    /// The private socket and TCP on `127.0.0.1`, `trust` for both (any local user can connect
    /// over TCP): for stand-ins of target instances in tests and the demo, never for a shadow.
    #[default]
    Loopback,
}

/// `/dev/shm` when it is a world-writable, sticky tmpfs with at least `min_free` bytes free,
/// else `None`: a place for a small throw-away cluster (a shadow holds structure and sample
/// rows, not a target's data) where creating and copying its ~1,500 files costs a third of what
/// it costs on ext4 (BENCHMARKS.md). Memory-backed, so nothing of it reaches a disk.
pub fn memory_temp_dir(min_free: u64) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt as _;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let path = PathBuf::from("/dev/shm");
    let meta = std::fs::metadata(&path).ok()?;
    // Sticky and writable by everyone: the cluster's directory is handed to the `postgres`
    // user when this process is root, and nobody else can remove it.
    if !meta.is_dir() || meta.permissions().mode() & 0o1777 != 0o1777 {
        return None;
    }
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized, zeroed out-buffer.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    let is_tmpfs = st.f_type as i64 == TMPFS_MAGIC;
    #[allow(clippy::unnecessary_cast)]
    let free = (st.f_bavail as u64).saturating_mul(st.f_bsize as u64);
    (is_tmpfs && free >= min_free).then_some(path)
}

/// Name prefix of the spare databases an ephemeral cluster made from a template holds (see
/// [`EphemeralOptions::spare_databases`]).
pub const SPARE_DATABASE_PREFIX: &str = "deployclaw_spare_";

impl Default for EphemeralOptions {
    fn default() -> Self {
        EphemeralOptions {
            bin_dir: None,
            port: None,
            listen: Listen::Loopback,
            settings: Vec::new(),
            start_timeout_secs: 60,
            run_as: "postgres".to_string(),
            template_cache: None,
            spare_databases: 0,
            base_dir: None,
        }
    }
}

impl EphemeralOptions {
    /// The options of a shadow: [`Listen::SocketOnly`], everything else default.
    pub fn shadow() -> EphemeralOptions {
        EphemeralOptions {
            listen: Listen::SocketOnly,
            ..EphemeralOptions::default()
        }
    }
}

/// A running throw-away PostgreSQL cluster. Stopped and deleted on drop.
///
/// The superuser is `postgres` with `trust` authentication on the private socket (and on
/// loopback with [`Listen::Loopback`]).
#[derive(Debug)]
pub struct EphemeralPg {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    dir: PathBuf,
    data_dir: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    listen: Listen,
    version: u32,
    run_as: Option<(u32, u32)>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    stopped: bool,
    watchdog: Option<(Child, ChildStdin)>,
}

fn registry() -> &'static Mutex<BTreeMap<u64, Arc<Inner>>> {
    static REG: OnceLock<Mutex<BTreeMap<u64, Arc<Inner>>>> = OnceLock::new();
    REG.get_or_init(|| Mutex::new(BTreeMap::new()))
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Stop and delete every ephemeral cluster this process started that is still running. Safe to
/// call more than once and from any thread (for example a Ctrl-C handler); handles to stopped
/// clusters stay valid but their servers are gone. Returns how many clusters were stopped.
pub fn cleanup_all() -> usize {
    let live: Vec<Arc<Inner>> = match registry().lock() {
        Ok(mut reg) => std::mem::take(&mut *reg).into_values().collect(),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner())
            .into_values()
            .collect(),
    };
    let n = live.len();
    for c in live {
        let _ = c.shutdown();
    }
    n
}

/// Number of ephemeral clusters of this process currently registered as running.
pub fn live_count() -> usize {
    registry().lock().map(|r| r.len()).unwrap_or(0)
}

impl EphemeralPg {
    /// Initialise and start a cluster. Blocks (see the module doc); typically ~0.5 s.
    pub fn start(opts: EphemeralOptions) -> Result<EphemeralPg, TopologyError> {
        let bin_dir = match &opts.bin_dir {
            Some(d) => {
                if has_server_binaries(d) {
                    d.clone()
                } else {
                    return Err(TopologyError::PgBinariesNotFound {
                        searched: vec![d.display().to_string()],
                    });
                }
            }
            None => find_bin_dir()?,
        };
        let run_as = if is_root() {
            Some(lookup_user(&opts.run_as)?)
        } else {
            None
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let dir = make_cluster_dir(id, opts.base_dir.as_deref())?;
        // From here on the directory must be removed on failure.
        let guard = DirGuard(Some(dir.clone()));
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| TopologyError::io(format!("chown {}", dir.display()), e))?;
        }
        let data_dir = dir.join("data");

        let template = opts
            .template_cache
            .as_deref()
            .and_then(|cache| Template::locate(cache, &bin_dir, run_as, opts.spare_databases));
        let mut from_template = template
            .as_ref()
            .is_some_and(|t| t.copy_into(&data_dir, run_as).is_ok());
        if !from_template {
            let _ = std::fs::remove_dir_all(&data_dir);
            initdb(&bin_dir, run_as, &dir, &data_dir)?;
            if let Some(t) = &template {
                // Best effort: without spares `create_database` falls back to CREATE DATABASE,
                // and a cache that cannot be written only costs the next initdb.
                let _ = add_spare_databases(&bin_dir, run_as, &dir, &data_dir, t.spares);
                let _ = t.store(&data_dir);
            }
        }
        let version = data_dir_version(&data_dir);
        write_config(&data_dir, &dir, opts.listen, &opts.settings)?;

        // pg_ctl start, retrying on a port race.
        let log = dir.join("server.log");
        let mut attempt = 0;
        let port = loop {
            attempt += 1;
            let port = match (opts.port, opts.listen) {
                (Some(p), _) => p,
                (None, Listen::SocketOnly) => 5432,
                (None, _) => free_port()?,
            };
            let out = command(&bin_dir.join("pg_ctl"), run_as, &dir)
                .arg("-D")
                .arg(&data_dir)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-s", "-t", &opts.start_timeout_secs.to_string()])
                .args(["-o", &format!("-p {port}")])
                .arg("start")
                .stdin(Stdio::null())
                .output()
                .map_err(|e| {
                    TopologyError::io(format!("run {}", bin_dir.join("pg_ctl").display()), e)
                })?;
            if out.status.success() {
                break port;
            }
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            let bind_race =
                server_log.contains("could not bind") || server_log.contains("already in use");
            if bind_race && opts.port.is_none() && attempt < 8 {
                // Make sure nothing half-started is left, then try another port.
                stop_quietly(&bin_dir, run_as, &dir, &data_dir);
                let _ = std::fs::write(&log, "");
                continue;
            }
            let combined = format!(
                "{}{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                server_log
            );
            if from_template {
                // A cluster copied from the cached template did not start: forget the template,
                // make this one with initdb and try once more.
                from_template = false;
                if let Some(t) = &template {
                    t.discard();
                }
                stop_quietly(&bin_dir, run_as, &dir, &data_dir);
                let _ = std::fs::remove_dir_all(&data_dir);
                let _ = std::fs::write(&log, "");
                initdb(&bin_dir, run_as, &dir, &data_dir)?;
                if let Some(t) = &template {
                    let _ = add_spare_databases(&bin_dir, run_as, &dir, &data_dir, t.spares);
                    let _ = t.store(&data_dir);
                }
                write_config(&data_dir, &dir, opts.listen, &opts.settings)?;
                continue;
            }
            return Err(TopologyError::PgCommandFailed {
                program: "pg_ctl start".into(),
                status: out.status.to_string(),
                dir: dir.clone(),
                log_tail: tail(&combined, 15),
            });
        };

        let watchdog = spawn_watchdog(&bin_dir, &data_dir, &dir, run_as).ok();
        let inner = Arc::new(Inner {
            id,
            dir,
            data_dir,
            bin_dir,
            port,
            listen: opts.listen,
            version,
            run_as,
            state: Mutex::new(State {
                stopped: false,
                watchdog,
            }),
        });
        if let Ok(mut reg) = registry().lock() {
            reg.insert(id, inner.clone());
        }
        std::mem::forget(guard);
        Ok(EphemeralPg { inner })
    }

    /// [`EphemeralPg::start`] on tokio's blocking pool.
    pub async fn start_async(opts: EphemeralOptions) -> Result<EphemeralPg, TopologyError> {
        tokio::task::spawn_blocking(move || EphemeralPg::start(opts))
            .await
            .map_err(|e| {
                TopologyError::io("ephemeral start task", std::io::Error::other(e.to_string()))
            })?
    }

    /// Start `n` clusters concurrently (one thread each).
    pub fn start_many(
        n: usize,
        opts: &EphemeralOptions,
    ) -> Result<Vec<EphemeralPg>, TopologyError> {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let o = opts.clone();
                std::thread::spawn(move || EphemeralPg::start(o))
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(pg)) => out.push(pg),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(TopologyError::io(
                        "ephemeral start thread",
                        std::io::Error::other("thread panicked"),
                    ));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres` ([`Listen::Loopback`]) or
    /// `postgres://postgres@/postgres?host=<socket dir>&port=PORT` ([`Listen::SocketOnly`]).
    pub fn url(&self) -> String {
        self.url_for_db("postgres")
    }

    /// URL of database `db` on this cluster (the name is percent-encoded as needed), over the
    /// way the cluster listens (see [`EphemeralPg::url`]).
    pub fn url_for_db(&self, db: &str) -> String {
        self.connection_spec().with_database(db).redacted_url()
    }

    /// How the cluster listens.
    pub fn listen(&self) -> Listen {
        self.inner.listen
    }

    /// A [`ConnectionSpec`] for the `postgres` database: over the private socket with
    /// [`Listen::SocketOnly`] (`host` is the socket directory), else TCP on `127.0.0.1`;
    /// `sslmode=disable`, no password.
    pub fn connection_spec(&self) -> ConnectionSpec {
        ConnectionSpec {
            host: self.host(),
            port: self.inner.port,
            user: "postgres".into(),
            database: "postgres".into(),
            password: None,
            sslmode: Some("disable".into()),
            iam_auth: false,
        }
    }

    /// `127.0.0.1`, or the socket directory for a socket-only cluster.
    fn host(&self) -> String {
        match self.inner.listen {
            Listen::SocketOnly => self.inner.dir.to_string_lossy().into_owned(),
            Listen::Loopback => "127.0.0.1".into(),
        }
    }

    /// sqlx connect options for database `db`, over the way the cluster listens (see
    /// [`EphemeralPg::connection_spec`]).
    pub fn connect_options(&self, db: &str) -> PgConnectOptions {
        let o = PgConnectOptions::new_without_pgpass()
            .port(self.inner.port)
            .username("postgres")
            .database(db)
            .ssl_mode(PgSslMode::Disable);
        match self.inner.listen {
            Listen::SocketOnly => o.socket(&self.inner.dir),
            Listen::Loopback => o.host("127.0.0.1"),
        }
    }

    /// A small connection pool (up to `max_connections`) to database `db`.
    pub async fn pool(&self, db: &str, max_connections: u32) -> Result<PgPool, TopologyError> {
        PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(self.connect_options(db))
            .await
            .map_err(|source| TopologyError::Connect {
                instance: format!("ephemeral:{}", self.inner.port),
                url: self.url_for_db(db),
                source,
            })
    }

    /// The port: TCP on 127.0.0.1 with [`Listen::Loopback`]; with [`Listen::SocketOnly`] only
    /// the number in the socket file's name (`.s.PGSQL.<port>`).
    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// Directory holding the Unix socket (`.s.PGSQL.<port>`); also the cluster's root directory.
    pub fn socket_dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Directory of the server binaries used.
    pub fn bin_dir(&self) -> &Path {
        &self.inner.bin_dir
    }

    /// Server major version (`15`, `16`, ...).
    pub fn version(&self) -> u32 {
        self.inner.version
    }

    /// Path of the server log.
    pub fn log_path(&self) -> PathBuf {
        self.inner.dir.join("server.log")
    }

    /// Stop the server and delete the directory now, reporting failures (drop does the same
    /// silently).
    pub fn stop(self) -> Result<(), TopologyError> {
        if let Ok(mut reg) = registry().lock() {
            reg.remove(&self.inner.id);
        }
        self.inner.shutdown()
    }
}

impl Drop for EphemeralPg {
    fn drop(&mut self) {
        if let Ok(mut reg) = registry().lock() {
            reg.remove(&self.inner.id);
        }
        let _ = self.inner.shutdown();
    }
}

impl Inner {
    fn shutdown(&self) -> Result<(), TopologyError> {
        let mut st = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if st.stopped {
            return Ok(());
        }
        st.stopped = true;
        if let Some((mut child, stdin)) = st.watchdog.take() {
            let _ = child.kill();
            drop(stdin);
            let _ = child.wait();
        }
        let stop = command(&self.bin_dir.join("pg_ctl"), self.run_as, &self.dir)
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "-s", "-t", "30", "stop"])
            .stdin(Stdio::null())
            .output();
        let rm = std::fs::remove_dir_all(&self.dir);
        match stop {
            Ok(o) if !o.status.success() => {
                return Err(TopologyError::PgCommandFailed {
                    program: "pg_ctl stop".into(),
                    status: o.status.to_string(),
                    dir: self.dir.clone(),
                    log_tail: tail(&String::from_utf8_lossy(&[o.stdout, o.stderr].concat()), 10),
                });
            }
            Err(e) => return Err(TopologyError::io("run pg_ctl stop", e)),
            Ok(_) => {}
        }
        rm.map_err(|e| TopologyError::io(format!("remove {}", self.dir.display()), e))
    }
}

/// `pg_ctl -m immediate stop`, ignoring the outcome: makes sure a half-started server is gone.
fn stop_quietly(bin_dir: &Path, run_as: Option<(u32, u32)>, dir: &Path, data_dir: &Path) {
    let _ = command(&bin_dir.join("pg_ctl"), run_as, dir)
        .arg("-D")
        .arg(data_dir)
        .args(["-m", "immediate", "-w", "-s", "stop"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Run `initdb` into `data_dir` (trust authentication, UTF-8, C.UTF-8 locale, superuser
/// `postgres`, no fsync).
fn initdb(
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

const INITDB_ARGS: [&str; 8] = [
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
fn data_dir_version(data_dir: &Path) -> u32 {
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
fn add_spare_databases(
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
/// with `ephemeral` (the server is an [`EphemeralPg`] this process started), by renaming a
/// spare database when it was made from a template with
/// [`EphemeralOptions::spare_databases`] (about a millisecond), else with
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
    let create = format!(
        "CREATE DATABASE {} TEMPLATE template0",
        crate::catalog::quote_ident_always(name)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// A cached, never-started data directory (see [`EphemeralOptions::template_cache`]).
struct Template {
    cache: PathBuf,
    path: PathBuf,
    /// Spare databases it holds.
    spares: u32,
}

impl Template {
    /// The template for these binaries in `cache`, creating `cache` (mode 0700) if needed.
    /// `None` when the cache directory is not ours or the binaries cannot be identified.
    fn locate(
        cache: &Path,
        bin_dir: &Path,
        run_as: Option<(u32, u32)>,
        spares: u32,
    ) -> Option<Template> {
        use sha2::{Digest, Sha256};
        use std::os::unix::fs::MetadataExt as _;
        if !cache.exists() {
            std::fs::create_dir_all(cache).ok()?;
            std::fs::set_permissions(cache, std::fs::Permissions::from_mode(0o700)).ok()?;
        }
        let meta = std::fs::symlink_metadata(cache).ok()?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
            return None;
        }
        let postgres = std::fs::metadata(bin_dir.join("postgres")).ok()?;
        let mut h = Sha256::new();
        h.update(b"deployclaw-pg-template-v2\0");
        h.update(bin_dir.as_os_str().as_encoded_bytes());
        h.update(format!(
            "\0{}\0{}\0{}\0{:?}\0{}\0spares={spares}",
            postgres.len(),
            postgres.mtime(),
            postgres.mtime_nsec(),
            run_as,
            INITDB_ARGS.join(" ")
        ));
        let key = hex::encode(&h.finalize()[..8]);
        Some(Template {
            cache: cache.to_path_buf(),
            path: cache.join(format!("pg-template-{key}")),
            spares,
        })
    }

    /// Whether the template exists, is complete and is private to this user.
    fn usable(&self) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(meta) = std::fs::symlink_metadata(&self.path) else {
            return false;
        };
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        meta.is_dir()
            && meta.uid() == me
            && meta.mode() & 0o077 == 0
            && self.path.join("PG_VERSION").is_file()
            && self.path.join("global/pg_control").is_file()
    }

    /// Copy the template to `data_dir` (which must not exist), owned by `run_as` when given.
    fn copy_into(&self, data_dir: &Path, run_as: Option<(u32, u32)>) -> std::io::Result<()> {
        if !self.usable() {
            return Err(std::io::Error::other("no usable template"));
        }
        copy_tree(&self.path, data_dir, run_as)
    }

    /// Keep a copy of the freshly initialised `data_dir` as the template (atomically: copied
    /// under a temporary name, then renamed; a template another process stored first wins).
    fn store(&self, data_dir: &Path) -> std::io::Result<()> {
        if self.usable() {
            return Ok(());
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = self
            .cache
            .join(format!(".tmp-template-{}-{nanos:x}", std::process::id()));
        let r = copy_tree(data_dir, &tmp, None).and_then(|()| {
            if self.path.exists() {
                // An unusable leftover (incomplete or foreign): replace it.
                std::fs::remove_dir_all(&self.path)?;
            }
            std::fs::rename(&tmp, &self.path)
        });
        if r.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        r
    }

    /// Remove the template (a cluster made from it did not start).
    fn discard(&self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Copy a directory tree of regular files (no symlinks, no special files), keeping modes, and
/// give every copy to `owner` when set.
fn copy_tree(src: &Path, dst: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(src)?;
    if !meta.is_dir() {
        return Err(std::io::Error::other(format!(
            "{} is not a directory",
            src.display()
        )));
    }
    std::fs::create_dir(dst)?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o700))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(dst, Some(uid), Some(gid))?;
    }
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let to = dst.join(entry.file_name());
        if ty.is_dir() {
            copy_tree(&entry.path(), &to, owner)?;
        } else if ty.is_file() {
            std::fs::copy(entry.path(), &to)?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&to, Some(uid), Some(gid))?;
            }
        } else {
            return Err(std::io::Error::other(format!(
                "{} is not a regular file or directory",
                entry.path().display()
            )));
        }
    }
    Ok(())
}

/// Removes a half-made cluster directory (and stops a half-started server) on early return.
struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// uid and gid of `user` from /etc/passwd.
fn lookup_user(user: &str) -> Result<(u32, u32), TopologyError> {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| TopologyError::io("read /etc/passwd", e))?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4
            && f[0] == user
            && let (Ok(uid), Ok(gid)) = (f[2].parse::<u32>(), f[3].parse::<u32>())
        {
            return Ok((uid, gid));
        }
    }
    Err(TopologyError::NoUnprivilegedUser {
        user: user.to_string(),
    })
}

/// A server program's command: the scrubbed environment of [`crate::child::command`] with the
/// cluster's private directory as `HOME`, run as `run_as` when given.
fn command(program: &Path, run_as: Option<(u32, u32)>, home: &Path) -> Command {
    let mut c = crate::child::command(program, home);
    if let Some((uid, gid)) = run_as {
        // std drops root's supplementary groups (setgroups(0)) when uid is set by root.
        c.uid(uid).gid(gid);
    }
    c
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| is_executable(&dir.join(b)))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Find the server binaries: `pg_config --bindir`, `/usr/lib/postgresql/<N>/bin` (highest N),
/// then `PATH` (following symlinks of `initdb`). The first successful answer is remembered for
/// the rest of the process (the search runs `pg_config`).
pub fn find_bin_dir() -> Result<PathBuf, TopologyError> {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    if let Some(d) = FOUND.get() {
        return Ok(d.clone());
    }
    let d = search_bin_dir()?;
    Ok(FOUND.get_or_init(|| d).clone())
}

fn search_bin_dir() -> Result<PathBuf, TopologyError> {
    let mut searched = Vec::new();
    let home = crate::child::PrivateHome::new()
        .map_err(|e| TopologyError::io("make a private directory for pg_config", e))?;
    if let Ok(out) = crate::child::command("pg_config", home.path())
        .arg("--bindir")
        .stdin(Stdio::null())
        .output()
        && out.status.success()
    {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server_binaries(&d) {
            return Ok(d);
        }
        searched.push(format!("pg_config --bindir ({})", d.display()));
    } else {
        searched.push("pg_config --bindir (not found)".into());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((n, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    for (_, d) in versions.iter().rev() {
        if has_server_binaries(d) {
            return Ok(d.clone());
        }
    }
    searched.push("/usr/lib/postgresql/<N>/bin".into());
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let initdb = d.join("initdb");
            if is_executable(&initdb) {
                let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                if let Some(parent) = real.parent()
                    && has_server_binaries(parent)
                {
                    return Ok(parent.to_path_buf());
                }
                if has_server_binaries(&d) {
                    return Ok(d);
                }
            }
        }
    }
    searched.push("PATH".into());
    Err(TopologyError::PgBinariesNotFound { searched })
}

fn make_cluster_dir(id: u64, base: Option<&Path>) -> Result<PathBuf, TopologyError> {
    let mut base = base.map_or_else(std::env::temp_dir, Path::to_path_buf);
    // Socket path = <dir>/.s.PGSQL.<port> must stay < 107 bytes.
    if base.as_os_str().len() > 60 {
        base = PathBuf::from("/tmp");
    }
    let pid = std::process::id();
    for salt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!(
            "dcpg-{pid}-{id}-{:x}",
            (nanos ^ salt.wrapping_mul(2654435761)) & 0xffff
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| TopologyError::io(format!("chmod {}", dir.display()), e))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(TopologyError::io(format!("create {}", dir.display()), e)),
        }
    }
    Err(TopologyError::io(
        "create ephemeral cluster dir",
        std::io::Error::other("too many collisions"),
    ))
}

fn quote_conf(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

fn write_config(
    data_dir: &Path,
    socket_dir: &Path,
    listen: Listen,
    extra: &[(String, String)],
) -> Result<(), TopologyError> {
    write_hba(data_dir, listen)?;
    let mut conf = String::from("\n# deployclaw ephemeral cluster\n");
    let socket = socket_dir.to_string_lossy();
    let addresses = match listen {
        Listen::SocketOnly => "",
        Listen::Loopback => "127.0.0.1",
    };
    let defaults: [(&str, &str); 9] = [
        ("listen_addresses", addresses),
        ("unix_socket_directories", &socket),
        ("fsync", "off"),
        ("synchronous_commit", "off"),
        ("full_page_writes", "off"),
        ("max_connections", "200"),
        ("max_locks_per_transaction", "256"),
        ("shared_buffers", "64MB"),
        ("log_min_messages", "warning"),
    ];
    for (k, v) in defaults {
        conf.push_str(&format!("{k} = {}\n", quote_conf(v)));
    }
    for (k, v) in extra {
        if listen == Listen::SocketOnly && k.eq_ignore_ascii_case("listen_addresses") {
            return Err(TopologyError::InvalidFixture {
                reason: "listen_addresses cannot be set on a socket-only cluster".into(),
            });
        }
        if !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(TopologyError::InvalidFixture {
                reason: format!("invalid server setting name `{k}`"),
            });
        }
        conf.push_str(&format!("{k} = {}\n", quote_conf(v)));
    }
    let path = data_dir.join("postgresql.conf");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| TopologyError::io(format!("open {}", path.display()), e))?;
    f.write_all(conf.as_bytes())
        .map_err(|e| TopologyError::io(format!("write {}", path.display()), e))
}

/// Replace the `pg_hba.conf` `initdb` wrote: `local` lines only for [`Listen::SocketOnly`],
/// plus `host` lines for `127.0.0.1`/`::1` for [`Listen::Loopback`]; `trust` everywhere (the
/// socket's directory is the access control, see [`Listen`]).
fn write_hba(data_dir: &Path, listen: Listen) -> Result<(), TopologyError> {
    let mut hba = String::from(
        "# deployclaw ephemeral cluster: the socket directory is private (0700)\n\
         local all all trust\n\
         local replication all trust\n",
    );
    if listen == Listen::Loopback {
        hba.push_str(
            "host all all 127.0.0.1/32 trust\n\
             host all all ::1/128 trust\n\
             host replication all 127.0.0.1/32 trust\n",
        );
    }
    let path = data_dir.join("pg_hba.conf");
    std::fs::write(&path, hba)
        .map_err(|e| TopologyError::io(format!("write {}", path.display()), e))
}

fn free_port() -> Result<u16, TopologyError> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| TopologyError::io("bind 127.0.0.1:0", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| TopologyError::io("local_addr", e))
}

const WATCHDOG: &str = r#"trap '' INT TERM HUP QUIT PIPE
read _unused
"$0" -D "$1" -m immediate -w -s stop >/dev/null 2>&1
rm -rf "$2"
"#;

fn spawn_watchdog(
    bin_dir: &Path,
    data_dir: &Path,
    dir: &Path,
    run_as: Option<(u32, u32)>,
) -> std::io::Result<(Child, ChildStdin)> {
    let mut c = command(Path::new("/bin/sh"), run_as, dir);
    c.arg("-c")
        .arg(WATCHDOG)
        .arg(bin_dir.join("pg_ctl"))
        .arg(data_dir)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; runs in the child before exec. Its own session keeps
    // terminal signals (Ctrl-C to the foreground process group) away from the watchdog.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = c.spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("watchdog stdin"))?;
    Ok((child, stdin))
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<EphemeralPg>();
}

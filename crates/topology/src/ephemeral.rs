//! Throw-away PostgreSQL clusters started from the server binaries installed on the machine.
//!
//! [`EphemeralPg::start`] runs `initdb` into a fresh directory under [`std::env::temp_dir`]
//! (`/tmp/dcpg-<pid>-<n>`, mode 0700, short so the Unix socket path stays under the 107-byte
//! limit), then starts `postgres` on it (as `pg_ctl -w start` would, waiting for `ready` in
//! `postmaster.pid`, but polling every 2 ms) with the socket in that directory and, with
//! [`Listen::Loopback`] (the default, for stand-ins of target instances), TCP on `127.0.0.1` at a
//! free port (retried on a bind race). A shadow ([`EphemeralOptions::shadow`],
//! [`Listen::SocketOnly`]) has no TCP listener and a `pg_hba.conf` of `local` lines only: only
//! the cluster's OS user and root can reach its socket. Durability is switched off (`fsync`,
//! `synchronous_commit`, `full_page_writes`) — these clusters hold nothing worth keeping.
//! Every program runs with the scrubbed environment of [`crate::child::command`].
//!
//! * **Synchronous.** Starting takes roughly half a second of blocking process work (see
//!   `BENCHMARKS.md`). From async code call [`EphemeralPg::start_async`] (a
//!   `spawn_blocking` wrapper) or wrap it yourself. Dropping also blocks briefly (the stop).
//! * **Root.** `initdb` refuses to run as root. When the effective uid is 0, every server program
//!   runs as the OS user [`EphemeralOptions::run_as`] (`postgres` by default, uid/gid from
//!   `/etc/passwd`) and the directory is chowned to it; `HOME` is set to the cluster directory.
//! * **Cleanup.** [`Drop`] stops the server (immediate shutdown: `SIGQUIT` to the postmaster,
//!   `pg_ctl -m immediate -w stop` if that fails) and removes the
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
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};

use crate::{ConnectionSpec, TopologyError};

mod config;
mod initdb;
mod os;
mod replica;
mod template;

pub use initdb::create_database;
pub use os::find_bin_dir;
pub use template::TEMPLATE_FORMAT;

use config::write_config;
use initdb::{add_spare_databases, data_dir_version, initdb};
use os::{
    DirGuard, command, free_port, has_server_binaries, is_root, lookup_user, make_cluster_dir,
    spawn_watchdog, tail,
};
use template::{Template, init_data_dir};

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
    /// Seconds the start waits for the server to accept connections.
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
    /// The cluster that makes the template (the first one, by `initdb`) has none: it starts
    /// before its template is finished ([`EphemeralPg::wait_for_template`]). Default 0.
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
    /// The postmaster, this process's child: reaped when it has stopped.
    server: Option<Child>,
    /// A first run's template being made in the background from a staging directory inside
    /// the cluster's directory: joined before the directory is removed.
    template_thread: Option<std::thread::JoinHandle<()>>,
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
        let mut template_thread = None;
        if !from_template {
            template_thread = init_data_dir(template.as_ref(), &bin_dir, run_as, &dir, &data_dir)?;
        }
        let version = data_dir_version(&data_dir);
        write_config(&data_dir, &dir, opts.listen, &opts.settings)?;

        // Start the server, retrying on a port race.
        let log = dir.join("server.log");
        let mut attempt = 0;
        let (port, server) = loop {
            attempt += 1;
            let port = match (opts.port, opts.listen) {
                (Some(p), _) => p,
                (None, Listen::SocketOnly) => 5432,
                (None, _) => free_port()?,
            };
            let status = match start_server(&bin_dir, run_as, &dir, &data_dir, port, &opts)? {
                StartAttempt::Ready(child) => break (port, child),
                StartAttempt::Failed(status) => status,
            };
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            let bind_race =
                server_log.contains("could not bind") || server_log.contains("already in use");
            if bind_race && opts.port.is_none() && attempt < 8 {
                // Make sure nothing half-started is left, then try another port.
                stop_quietly(&bin_dir, run_as, &dir, &data_dir);
                let _ = std::fs::write(&log, "");
                continue;
            }
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
                program: "postgres (start)".into(),
                status,
                dir: dir.clone(),
                log_tail: tail(&server_log, 15),
            });
        };

        let pg = EphemeralPg::register(Inner {
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
                watchdog: None,
                server: Some(server),
                template_thread,
            }),
        });
        std::mem::forget(guard);
        Ok(pg)
    }

    /// A started cluster: its watchdog spawned, entered in the registry.
    fn register(mut inner: Inner) -> EphemeralPg {
        let watchdog =
            spawn_watchdog(&inner.bin_dir, &inner.data_dir, &inner.dir, inner.run_as).ok();
        if let Ok(st) = inner.state.get_mut() {
            st.watchdog = watchdog;
        }
        let inner = Arc::new(inner);
        if let Ok(mut reg) = registry().lock() {
            reg.insert(inner.id, inner.clone());
        }
        EphemeralPg { inner }
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

    /// Wait until the template cache holds this cluster's template: a cluster made by
    /// `initdb` on a first run ([`EphemeralOptions::template_cache`], no usable template yet)
    /// starts at once from a copy of a staging `initdb`, while a background thread adds the
    /// spare databases to the staging copy and stores it as the template. Stopping the cluster
    /// waits for it too; this is for callers (tests) that want the template before that.
    pub fn wait_for_template(&self) {
        let thread = match self.inner.state.lock() {
            Ok(mut s) => s.template_thread.take(),
            Err(p) => p.into_inner().template_thread.take(),
        };
        if let Some(t) = thread {
            let _ = t.join();
        }
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
        if let Some(t) = st.template_thread.take() {
            let _ = t.join();
        }
        if let Some((mut child, stdin)) = st.watchdog.take() {
            let _ = child.kill();
            drop(stdin);
            let _ = child.wait();
        }
        let mut server = st.server.take();
        let mut result = Ok(());
        if !os::stop_immediately(&self.data_dir, std::time::Duration::from_secs(30)) {
            // The fast path could not: pg_ctl's own immediate stop, and the postmaster killed
            // if it is still there after that.
            let stop = command(&self.bin_dir.join("pg_ctl"), self.run_as, &self.dir)
                .arg("-D")
                .arg(&self.data_dir)
                .args(["-m", "immediate", "-w", "-s", "-t", "30", "stop"])
                .stdin(Stdio::null())
                .output();
            result = match stop {
                Ok(o) if !o.status.success() => Err(TopologyError::PgCommandFailed {
                    program: "pg_ctl stop".into(),
                    status: o.status.to_string(),
                    dir: self.dir.clone(),
                    log_tail: tail(&String::from_utf8_lossy(&[o.stdout, o.stderr].concat()), 10),
                }),
                Err(e) => Err(TopologyError::io("run pg_ctl stop", e)),
                Ok(_) => Ok(()),
            };
            if let Some(child) = server.as_mut()
                && matches!(child.try_wait(), Ok(None))
            {
                let _ = child.kill();
            }
        }
        // Reap the postmaster (it has exited: its pid file is gone, or it was killed).
        if let Some(mut child) = server {
            let _ = child.wait();
        }
        let rm = std::fs::remove_dir_all(&self.dir);
        result?;
        rm.map_err(|e| TopologyError::io(format!("remove {}", self.dir.display()), e))
    }
}

/// How a start attempt ended: the postmaster (this process's child, reaped at shutdown)
/// accepting connections, or its exit status.
pub(crate) enum StartAttempt {
    /// The server is ready.
    Ready(Child),
    /// It did not come up: the exit status (or why it was given up on).
    Failed(String),
}

/// Start the server of `data_dir` on `port`, logging to `<dir>/server.log`, and wait until it
/// accepts connections — what `pg_ctl -w start` does, but polling the server's
/// `postmaster.pid` every 2 ms instead of every 100 ms (`pg_ctl` waited a tenth of a second on
/// every start). The postmaster runs in a process group of its own, so a Ctrl-C on the terminal
/// reaches the gate (which stops it cleanly), not the server.
fn start_server(
    bin_dir: &Path,
    run_as: Option<(u32, u32)>,
    dir: &Path,
    data_dir: &Path,
    port: u16,
    opts: &EphemeralOptions,
) -> Result<StartAttempt, TopologyError> {
    use std::os::unix::process::CommandExt as _;
    let program = bin_dir.join("postgres");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .map_err(|e| TopologyError::io("open server.log", e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| TopologyError::io("open server.log", e))?;
    let mut child = command(&program, run_as, dir)
        .arg("-D")
        .arg(data_dir)
        .args(["-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| TopologyError::io(format!("run {}", program.display()), e))?;
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_secs(u64::from(opts.start_timeout_secs));
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(StartAttempt::Failed(status.to_string()));
        }
        // `ready` once it accepts connections, `standby` for a hot standby that accepts
        // read-only ones.
        if let Some((pid, status)) = os::read_pid_file(data_dir)
            && pid == child.id()
            && matches!(status.as_str(), "ready" | "standby")
        {
            return Ok(StartAttempt::Ready(child));
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(StartAttempt::Failed(format!(
                "not ready after {} s",
                opts.start_timeout_secs
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
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

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<EphemeralPg>();
}

//! The operating system side of a cluster: running as the `postgres` user when root, finding
//! the server binaries, the cluster directory, a free port, the watchdog that stops an
//! orphaned server.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

use crate::TopologyError;

/// Removes a half-made cluster directory (and stops a half-started server) on early return.
pub(super) struct DirGuard(pub(super) Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

pub(super) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// uid and gid of `user` from /etc/passwd.
pub(super) fn lookup_user(user: &str) -> Result<(u32, u32), TopologyError> {
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
pub(super) fn command(program: &Path, run_as: Option<(u32, u32)>, home: &Path) -> Command {
    let mut c = crate::child::command(program, home);
    if let Some((uid, gid)) = run_as {
        // std drops root's supplementary groups (setgroups(0)) when uid is set by root.
        c.uid(uid).gid(gid);
    }
    c
}

pub(super) fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| is_executable(&dir.join(b)))
}

pub(super) fn is_executable(p: &Path) -> bool {
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

pub(super) fn search_bin_dir() -> Result<PathBuf, TopologyError> {
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

pub(super) fn make_cluster_dir(id: u64, base: Option<&Path>) -> Result<PathBuf, TopologyError> {
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

pub(super) fn free_port() -> Result<u16, TopologyError> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| TopologyError::io("bind 127.0.0.1:0", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| TopologyError::io("local_addr", e))
}

pub(super) const WATCHDOG: &str = r#"trap '' INT TERM HUP QUIT PIPE
read _unused
"$0" -D "$1" -m immediate -w -s stop >/dev/null 2>&1
rm -rf "$2"
"#;

pub(super) fn spawn_watchdog(
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

pub(super) fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// The postmaster's pid (line 1 of `postmaster.pid`) and its status (line 8: `starting`,
/// `ready`, `standby`, `stopping`), when the server of `data_dir` has written the file.
pub(super) fn read_pid_file(data_dir: &Path) -> Option<(u32, String)> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let status = lines.nth(6).unwrap_or_default().trim().to_string();
    Some((pid, status))
}

/// Immediate shutdown of the server of `data_dir` without `pg_ctl`: `SIGQUIT` to the
/// postmaster named in `postmaster.pid`, then wait (polling every 2 ms, up to `timeout`) until
/// the postmaster has removed that file — which it does as it exits, after every backend it
/// started is gone. `pg_ctl -w stop` does the same but polls every 100 ms, which was a tenth of
/// a second at the end of every run. `false` when the pid file could not be read, the signal
/// could not be sent, or the server outlived `timeout`: the caller falls back to `pg_ctl`.
pub(super) fn stop_immediately(data_dir: &Path, timeout: std::time::Duration) -> bool {
    let pid_file = data_dir.join("postmaster.pid");
    let Some(pid) = read_pid_file(data_dir)
        .and_then(|(pid, _)| libc::pid_t::try_from(pid).ok())
        .filter(|p| *p > 1)
    else {
        return false;
    };
    // SAFETY: kill(2) has no memory preconditions; the pid is the postmaster this process
    // started (it holds the data directory's lock file, so it is alive and ours).
    if unsafe { libc::kill(pid, libc::SIGQUIT) } != 0 {
        return false;
    }
    let deadline = std::time::Instant::now() + timeout;
    while pid_file.exists() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    true
}

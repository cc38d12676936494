//! [`EphemeralPg::start_replica`]: a streaming read replica of an ephemeral cluster, made with
//! `pg_basebackup -R` over the primary's private socket (the primary's `pg_hba.conf` admits
//! `local replication`; `wal_level = replica` and `max_wal_senders` are PostgreSQL's defaults).

use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use super::config::write_config;
use super::os::{DirGuard, command, free_port, make_cluster_dir, tail};
use super::{
    EphemeralOptions, EphemeralPg, Inner, Listen, NEXT_ID, StartAttempt, State, start_server,
    stop_quietly,
};
use crate::TopologyError;

impl EphemeralPg {
    /// Start a hot-standby streaming replica of this cluster: `pg_basebackup -R -X stream`
    /// (run as the same unprivileged OS user as the primary) into a fresh cluster directory,
    /// then started with `opts.listen`, `opts.port` and `opts.settings` (e.g.
    /// `recovery_min_apply_delay`) appended to the configuration copied from the primary.
    /// `opts.bin_dir`, `run_as`, `template_cache` and `spare_databases` are ignored: the
    /// replica uses the primary's binaries and user. Blocks like [`EphemeralPg::start`]; the
    /// replica is stopped and deleted on drop, independently of the primary.
    pub fn start_replica(&self, opts: EphemeralOptions) -> Result<EphemeralPg, TopologyError> {
        let (bin_dir, run_as) = (self.inner.bin_dir.clone(), self.inner.run_as);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let dir = make_cluster_dir(id, opts.base_dir.as_deref())?;
        let guard = DirGuard(Some(dir.clone()));
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| TopologyError::io(format!("chown {}", dir.display()), e))?;
        }
        let data_dir = dir.join("data");
        let out = command(&bin_dir.join("pg_basebackup"), run_as, &dir)
            .arg("-D")
            .arg(&data_dir)
            .args([
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
                "-U",
                "postgres",
            ])
            .arg("-h")
            .arg(self.socket_dir())
            .args(["-p", &self.port().to_string()])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| TopologyError::io("run pg_basebackup", e))?;
        if !out.status.success() {
            return Err(TopologyError::PgCommandFailed {
                program: "pg_basebackup".into(),
                status: out.status.to_string(),
                dir: dir.clone(),
                log_tail: tail(
                    &String::from_utf8_lossy(&[out.stdout, out.stderr].concat()),
                    15,
                ),
            });
        }
        let mut settings = vec![("hot_standby".to_string(), "on".to_string())];
        settings.extend(opts.settings.iter().cloned());
        write_config(&data_dir, &dir, opts.listen, &settings)?;
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
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            if (log.contains("could not bind") || log.contains("already in use"))
                && opts.port.is_none()
                && attempt < 8
            {
                stop_quietly(&bin_dir, run_as, &dir, &data_dir);
                let _ = std::fs::write(dir.join("server.log"), "");
                continue;
            }
            stop_quietly(&bin_dir, run_as, &dir, &data_dir);
            return Err(TopologyError::PgCommandFailed {
                program: "postgres (replica start)".into(),
                status,
                dir: dir.clone(),
                log_tail: tail(&log, 15),
            });
        };
        let pg = EphemeralPg::register(Inner {
            id,
            dir,
            data_dir,
            bin_dir,
            port,
            listen: opts.listen,
            version: self.inner.version,
            run_as,
            state: Mutex::new(State {
                stopped: false,
                watchdog: None,
                server: Some(server),
                template_thread: None,
            }),
        });
        std::mem::forget(guard);
        Ok(pg)
    }
}

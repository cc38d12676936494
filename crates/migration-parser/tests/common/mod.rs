//! An ephemeral PostgreSQL cluster for the parser's real-server tests (`pg_locks.rs`,
//! `type_changes.rs`): started from the installed server binaries, as the `postgres` OS user
//! when the test runs as root, on a private Unix socket; stopped and removed on drop.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

/// An ephemeral cluster on a private Unix socket; stopped and removed on drop.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
}

/// The port in the cluster's private socket directory (no TCP).
const PORT: &str = "5433";

fn newest_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, b)| b)
}

fn postgres_ids() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.starts_with("postgres:"))?;
    let f: Vec<&str> = line.split(':').collect();
    Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
}

impl Cluster {
    /// Start a cluster; `None` when no server binaries are installed.
    pub fn start() -> Option<Cluster> {
        let bin = newest_bin_dir()?;
        let as_postgres = std::fs::metadata("/proc/self").ok()?.uid() == 0;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!("mp{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let ids = postgres_ids();
        if as_postgres {
            let (uid, gid) = ids?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).ok()?;
        }
        let c = Cluster {
            bin,
            dir,
            as_postgres,
        };
        let data = c.dir.join("data");
        let ok = c
            .server_cmd("initdb")
            .args([
                "-D",
                data.to_str()?,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .output()
            .ok()?
            .status
            .success();
        assert!(ok, "initdb failed");
        let opts = format!(
            "-c listen_addresses= -k {} -p {PORT} -c fsync=off -c timezone=UTC",
            c.dir.display()
        );
        let log = c.dir.join("server.log");
        let ok = c
            .server_cmd("pg_ctl")
            .args([
                "-D",
                data.to_str()?,
                "-l",
                log.to_str()?,
                "-w",
                "-t",
                "60",
                "-o",
                &opts,
                "start",
            ])
            .output()
            .ok()?
            .status
            .success();
        assert!(
            ok,
            "pg_ctl start failed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Some(c)
    }

    fn server_cmd(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env("HOME", &self.dir);
        if self.as_postgres
            && let Some((uid, gid)) = postgres_ids()
        {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// Run SQL with psql; returns stdout, panics on error.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql).unwrap_or_else(|e| panic!("{sql}\n{e}"))
    }

    /// Run SQL with psql (`ON_ERROR_STOP`): stdout, or stderr when it failed.
    #[allow(dead_code)]
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "postgres",
                "-p",
                PORT,
                "-h",
            ])
            .arg(&self.dir)
            .args(["-d", "postgres", "-c", sql])
            .output()
            .expect("psql runs");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

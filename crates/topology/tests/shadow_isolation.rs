//! A shadow cluster (socket-only) is reachable by nobody but the cluster's OS user and root, and
//! inherits none of deployclaw's secrets. Real PostgreSQL.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::{Command, Output};

use topology::ephemeral::{EphemeralOptions, EphemeralPg, Listen};

fn postmaster_pid(pg: &EphemeralPg) -> u32 {
    std::fs::read_to_string(pg.data_dir().join("postmaster.pid"))
        .expect("postmaster.pid")
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid")
}

/// Socket inodes of the open descriptors of `pid`.
fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// TCP ports (v4 and v6) on which `pid` holds a listening socket.
fn tcp_listen_ports(pid: u32) -> Vec<u16> {
    let inodes = socket_inodes(pid);
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, rem_address, st (0A = LISTEN), ..., inode (field 9)
            if f.len() > 9 && f[3] == "0A" && f[9].parse().is_ok_and(|i| inodes.contains(&i)) {
                let port = f[1].rsplit(':').next().unwrap_or("0");
                ports.push(u16::from_str_radix(port, 16).expect("hex port"));
            }
        }
    }
    ports
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        == 0
}

/// `psql … -c 'select 1'` to `host`/`port` as OS user `user` (`None`: as this process), with
/// an empty environment.
fn psql_as(user: Option<&str>, bin: &Path, host: &str, port: u16) -> Output {
    let psql = bin.join("psql");
    let mut c = match user {
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={u}"),
                "--regid=nogroup",
                "--clear-groups",
                "--",
            ])
            .arg(&psql);
            c
        }
        None => Command::new(&psql),
    };
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .args(["-X", "-w", "-At", "-h", host, "-p", &port.to_string()])
        .args(["-U", "postgres", "-d", "postgres", "-c", "select 1"]);
    c.output().expect("run psql")
}

#[test]
fn another_local_user_cannot_connect_to_a_shadow() {
    // A port nobody listens on (the shadow itself must not open it).
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pg = EphemeralPg::start(EphemeralOptions {
        port: Some(port),
        ..EphemeralOptions::shadow()
    })
    .expect("start shadow");
    assert_eq!(pg.listen(), Listen::SocketOnly);
    let dir = pg.socket_dir();
    assert!(dir.as_os_str().len() + ".s.PGSQL.65535".len() < 107);
    assert!(pg.url().contains("?host=%2F"), "{}", pg.url());

    // The socket's directory is private to the cluster's OS user.
    let meta = std::fs::metadata(dir).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o700, "socket dir mode");
    let owner = std::fs::metadata(pg.data_dir()).unwrap().uid();
    assert_eq!(meta.uid(), owner, "socket dir owned by the cluster's user");
    assert!(dir.join(format!(".s.PGSQL.{port}")).exists());

    // No TCP at all: not a single listening socket of the postmaster, and the port refuses.
    let pid = postmaster_pid(&pg);
    assert_eq!(
        tcp_listen_ports(pid),
        Vec::<u16>::new(),
        "postmaster listens on TCP"
    );
    let pid_file = std::fs::read_to_string(pg.data_dir().join("postmaster.pid")).unwrap();
    let listen_line = pid_file.lines().nth(5).unwrap_or("");
    assert!(
        listen_line.trim().is_empty(),
        "listen addresses: {listen_line:?}"
    );
    // pg_hba.conf: no `host` lines.
    let hba = std::fs::read_to_string(pg.data_dir().join("pg_hba.conf")).unwrap();
    assert!(
        hba.lines().all(|l| !l.trim_start().starts_with("host")),
        "{hba}"
    );

    let socket = dir.to_string_lossy().into_owned();
    let bin = pg.bin_dir();
    // As this process (root, or the cluster's own user), the socket works: the refusals below
    // are not a broken psql.
    let me = psql_as(None, bin, &socket, port);
    assert!(
        me.status.success(),
        "{}",
        String::from_utf8_lossy(&me.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&me.stdout).trim(), "1");

    let tcp_me = psql_as(None, bin, "127.0.0.1", port);
    assert!(
        !tcp_me.status.success(),
        "TCP connection to the shadow worked"
    );
    if is_root() {
        // `nobody`: neither over the socket nor over TCP on any port the postmaster has.
        let out = psql_as(Some("nobody"), bin, &socket, port);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "nobody connected: {err}");
        assert!(err.contains("Permission denied"), "{err}");
        for p in [port]
            .into_iter()
            .chain(tcp_listen_ports(pid))
            .collect::<BTreeSet<_>>()
        {
            let out = psql_as(Some("nobody"), bin, "127.0.0.1", p);
            assert!(!out.status.success(), "nobody connected over TCP port {p}");
        }
    } else {
        // Without root we cannot become another user; the mode and owner checks above, plus
        // "no TCP", are what keeps every other user out.
        assert_ne!(meta.mode() & 0o007, 0o007);
    }
}

#[test]
fn shadow_server_inherits_no_secret() {
    let secret = format!("pw-{}-{:x}", std::process::id(), rand_u64());
    let topo_secret = format!("topo-{}-{:x}", std::process::id(), rand_u64());
    // SAFETY: this test binary's other test does not read these variables.
    unsafe {
        std::env::set_var("PGPASSWORD", &secret);
        std::env::set_var("DC_ISOLATION_TOPOLOGY_PW", &topo_secret);
        std::env::set_var("PGHOST", "db.invalid");
    }
    let pg = EphemeralPg::start(EphemeralOptions::shadow()).expect("start shadow");
    let pid = postmaster_pid(&pg);
    // The postmaster and every process it started (checkpointer, walwriter, ...).
    let mut pids = vec![pid];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(pid) {
            pids.push(p);
        }
    }
    assert!(pids.len() > 1, "found the server's child processes");
    for p in pids {
        for what in ["environ", "cmdline"] {
            let raw = std::fs::read(format!("/proc/{p}/{what}")).unwrap_or_default();
            let text = String::from_utf8_lossy(&raw).replace('\0', "\n");
            assert!(
                !text.contains(&secret),
                "{what} of {p} has PGPASSWORD's value"
            );
            assert!(!text.contains(&topo_secret), "{what} of {p} has the secret");
            if what == "environ" {
                assert!(!raw.is_empty(), "environ of {p} is readable");
                assert!(
                    !text.lines().any(|l| l.starts_with("PGPASSWORD=")
                        || l.starts_with("PGHOST=")
                        || l.starts_with("DC_ISOLATION")),
                    "environ of {p}: {text}"
                );
            }
        }
    }
}

fn rand_u64() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn a_shadow_copied_from_the_template_cache_is_socket_only_too() {
    let cache = tempfile::tempdir().unwrap();
    let opts = EphemeralOptions {
        template_cache: Some(cache.path().join("c")),
        spare_databases: 1,
        ..EphemeralOptions::shadow()
    };
    // The first start makes the template (initdb's pg_hba.conf has `host` lines), the second
    // copies it.
    drop(EphemeralPg::start(opts.clone()).expect("first shadow"));
    let pg = EphemeralPg::start(opts).expect("shadow from the template");
    let hba = std::fs::read_to_string(pg.data_dir().join("pg_hba.conf")).unwrap();
    assert!(
        hba.lines().all(|l| !l.trim_start().starts_with("host")),
        "{hba}"
    );
    assert_eq!(tcp_listen_ports(postmaster_pid(&pg)), Vec::<u16>::new());
    let me = psql_as(
        None,
        pg.bin_dir(),
        &pg.socket_dir().to_string_lossy(),
        pg.port(),
    );
    assert!(
        me.status.success(),
        "{}",
        String::from_utf8_lossy(&me.stderr)
    );
}

//! A cluster's `postgresql.conf` and `pg_hba.conf`.

use std::io::Write as _;
use std::path::Path;

use crate::TopologyError;

use super::Listen;

pub(super) fn quote_conf(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

pub(super) fn write_config(
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
pub(super) fn write_hba(data_dir: &Path, listen: Listen) -> Result<(), TopologyError> {
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

//! `postgres://` URLs ⇄ [`ConnectionSpec`], and sqlx connect options. The password only ever
//! goes into a [`Secret`] and from there straight into the driver's options.

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::{ConnectionSpec, Secret, TopologyError};

/// Percent-encode a URL component (user, database, query value).
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn decode_component(s: &str, what: &str) -> Result<String, TopologyError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => {
                    out.push(v);
                    i += 3;
                }
                None => {
                    return Err(TopologyError::InvalidUrl {
                        reason: format!("bad percent-encoding in {what}"),
                    });
                }
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| TopologyError::InvalidUrl {
        reason: format!("{what} is not UTF-8 after percent-decoding"),
    })
}

impl ConnectionSpec {
    /// Parse a `postgres://` or `postgresql://` URL:
    /// `postgres://[user[:password]@][host][:port][/database][?param=value&...]`.
    ///
    /// Query parameters understood: `host` (a socket directory when it starts with `/`), `port`,
    /// `user`, `password`, `dbname`, `sslmode`. Defaults: host `localhost`, port 5432, user
    /// `postgres`, database = user. The password (from the URL) becomes a [`Secret`]; errors
    /// never repeat the URL.
    /// Surrounding whitespace is ignored.
    pub fn from_url(url: &str) -> Result<ConnectionSpec, TopologyError> {
        let url = url.trim();
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| TopologyError::InvalidUrl {
                reason: format!(
                    "{} (it must start with postgres:// or postgresql://, or be libpq \
                     key=value pairs)",
                    crate::conninfo::mask_unparsed(url)
                ),
            })?;
        let (main, query) = match rest.split_once('?') {
            Some((m, q)) => (m, Some(q)),
            None => (rest, None),
        };
        if query.is_some_and(|q| {
            q.split('&')
                .any(|kv| kv.split_once('=').map_or(kv, |(k, _)| k).contains('@'))
        }) {
            return Err(TopologyError::InvalidUrl {
                reason: "an `@` after `?`: percent-encode `/` (%2F), `?` (%3F) and `#` (%23) in \
                         the user name and password"
                    .into(),
            });
        }
        let (authority, path) = match main.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (main, None),
        };
        // `postgres://u:pa/ss@h/db`: the password's `/` ended the authority early; what follows
        // would be read (and printed) as the database name.
        if path.is_some_and(|p| p.contains('@')) {
            return Err(TopologyError::InvalidUrl {
                reason: "an `@` after the first `/`: percent-encode `/` (%2F), `?` (%3F) and `#` \
                         (%23) in the user name and password"
                    .into(),
            });
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let mut user = None;
        let mut password = None;
        if let Some(ui) = userinfo {
            match ui.split_once(':') {
                Some((u, p)) => {
                    user = Some(decode_component(u, "user")?);
                    password = Some(Secret::new(decode_component(p, "password")?));
                }
                None => user = Some(decode_component(ui, "user")?),
            }
        }
        let mut host = None;
        let mut port = None;
        if !hostport.is_empty() {
            if hostport.contains(',') {
                return Err(TopologyError::InvalidUrl {
                    reason: "multiple hosts are not supported".into(),
                });
            }
            let (h, p) = if let Some(r) = hostport.strip_prefix('[') {
                let (h, after) = r.split_once(']').ok_or_else(|| TopologyError::InvalidUrl {
                    reason: "unterminated [ in IPv6 host".into(),
                })?;
                (h.to_string(), after.strip_prefix(':'))
            } else {
                match hostport.rsplit_once(':') {
                    Some((h, p)) => (h.to_string(), Some(p)),
                    None => (hostport.to_string(), None),
                }
            };
            if !h.is_empty() {
                host = Some(decode_component(&h, "host")?);
            }
            if let Some(p) = p.filter(|p| !p.is_empty()) {
                port = Some(parse_port(p)?);
            }
        }
        let mut database = match path {
            Some(p) if !p.is_empty() => Some(decode_component(p, "database")?),
            _ => None,
        };
        let mut sslmode = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = decode_component(v, k)?;
            match k {
                "host" => host = Some(v),
                "port" => port = Some(parse_port(&v)?),
                "user" => user = Some(v),
                "password" => password = Some(Secret::new(v)),
                "dbname" => database = Some(v),
                "sslmode" => {
                    v.parse::<PgSslMode>()
                        .map_err(|_| TopologyError::InvalidUrl {
                            reason: "unknown sslmode (disable, allow, prefer, require, \
                                     verify-ca, verify-full)"
                                .into(),
                        })?;
                    sslmode = Some(v)
                }
                // Harmless libpq parameters we do not model.
                "application_name" | "connect_timeout" | "options" | "target_session_attrs" => {}
                other => {
                    return Err(TopologyError::InvalidUrl {
                        reason: format!(
                            "unsupported URL parameter {}",
                            crate::conninfo::printable_key(other)
                        ),
                    });
                }
            }
        }
        let user = user.unwrap_or_else(|| "postgres".to_string());
        Ok(ConnectionSpec {
            host: host.unwrap_or_else(|| "localhost".to_string()),
            port: port.unwrap_or(5432),
            database: database.unwrap_or_else(|| user.clone()),
            user,
            password,
            sslmode,
            iam_auth: false,
        })
    }

    /// Parse any connection string a user may give: a `postgres://` / `postgresql://` URL
    /// ([`ConnectionSpec::from_url`]) or libpq keyword/value pairs
    /// ([`crate::conninfo::parse_keyword_value`]: `host=db user=app password='...' dbname=app`).
    /// Surrounding whitespace is ignored. Errors never repeat a value; print the input only
    /// through [`crate::mask_connection_string`].
    pub fn parse(s: &str) -> Result<ConnectionSpec, TopologyError> {
        let t = s.trim();
        if crate::conninfo::looks_like_keyword_value(t) {
            crate::conninfo::parse_keyword_value(t)
        } else {
            ConnectionSpec::from_url(t)
        }
    }

    /// The URL with the password replaced by `***` — the only form that may be printed.
    pub fn redacted_url(&self) -> String {
        self.url_with_password(self.password.as_ref().map(|_| "***"))
    }

    /// The same connection pointed at another database.
    pub fn with_database(&self, database: &str) -> ConnectionSpec {
        ConnectionSpec {
            database: database.to_string(),
            ..self.clone()
        }
    }

    fn url_with_password(&self, pw: Option<&str>) -> String {
        let mut u = String::from("postgres://");
        u.push_str(&encode_component(&self.user));
        if let Some(p) = pw {
            u.push(':');
            u.push_str(p);
        }
        u.push('@');
        let mut params = Vec::new();
        if self.host.starts_with('/') {
            params.push(format!("host={}", encode_component(&self.host)));
            params.push(format!("port={}", self.port));
        } else {
            if self.host.contains(':') {
                u.push_str(&format!("[{}]", self.host));
            } else {
                u.push_str(&encode_component(&self.host));
            }
            u.push_str(&format!(":{}", self.port));
        }
        u.push('/');
        u.push_str(&encode_component(&self.database));
        if let Some(s) = &self.sslmode {
            params.push(format!("sslmode={}", encode_component(s)));
        }
        if !params.is_empty() {
            u.push('?');
            u.push_str(&params.join("&"));
        }
        u
    }

    /// sqlx connect options for this spec. The password is handed to the driver directly, never
    /// formatted into a string. Without a password, `PGPASSWORD` from the environment applies.
    pub fn to_connect_options(&self) -> Result<PgConnectOptions, TopologyError> {
        let mut o = PgConnectOptions::new_without_pgpass()
            .port(self.port)
            .username(&self.user)
            .database(&self.database)
            .application_name("deployclaw");
        o = if self.host.starts_with('/') {
            o.socket(&self.host)
        } else {
            o.host(&self.host)
        };
        if let Some(p) = &self.password {
            o = o.password(p.expose());
        }
        if let Some(m) = &self.sslmode {
            let mode = m
                .parse::<PgSslMode>()
                .map_err(|_| TopologyError::InvalidUrl {
                    reason: format!("unknown sslmode `{m}`"),
                })?;
            o = o.ssl_mode(mode);
        }
        Ok(o)
    }

    /// Open one connection to this spec; `instance` names it in errors. Fails fast (no retry).
    pub async fn connect(&self, instance: &str) -> Result<sqlx::PgConnection, TopologyError> {
        use sqlx::ConnectOptions as _;
        let opts = self.to_connect_options()?;
        opts.connect()
            .await
            .map_err(|source| TopologyError::Connect {
                instance: instance.to_string(),
                url: self.redacted_url(),
                source,
            })
    }

    /// Connect a pool (up to `max_connections`) to this spec; `instance` names it in errors.
    /// One connection is opened first, so an unreachable server fails fast instead of after
    /// the pool's acquire timeout.
    pub async fn connect_pool(
        &self,
        instance: &str,
        max_connections: u32,
    ) -> Result<sqlx::PgPool, TopologyError> {
        use sqlx::Connection as _;
        let probe = self.connect(instance).await?;
        let _ = probe.close().await;
        let opts = self.to_connect_options()?;
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(std::time::Duration::from_secs(15))
            .connect_with(opts)
            .await
            .map_err(|source| TopologyError::Connect {
                instance: instance.to_string(),
                url: self.redacted_url(),
                source,
            })
    }
}

fn parse_port(p: &str) -> Result<u16, TopologyError> {
    p.parse::<u16>().map_err(|_| TopologyError::InvalidUrl {
        reason: "invalid port (not a number from 0 to 65535)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_url_and_redacts() {
        let s = ConnectionSpec::from_url(
            "postgres://app:s%40cret@db.example.com:6432/tenants?sslmode=require",
        )
        .unwrap();
        assert_eq!(s.host, "db.example.com");
        assert_eq!(s.port, 6432);
        assert_eq!(s.user, "app");
        assert_eq!(s.database, "tenants");
        assert_eq!(s.password.as_ref().map(|p| p.expose()), Some("s@cret"));
        assert_eq!(s.sslmode.as_deref(), Some("require"));
        let r = s.redacted_url();
        assert_eq!(
            r,
            "postgres://app:***@db.example.com:6432/tenants?sslmode=require"
        );
        assert!(!format!("{s:?}").contains("s@cret"));
    }

    #[test]
    fn parses_socket_dir_and_defaults() {
        let s = ConnectionSpec::from_url("postgresql:///mydb?host=/tmp/sock&port=5433").unwrap();
        assert_eq!(s.host, "/tmp/sock");
        assert_eq!(s.port, 5433);
        assert_eq!(s.database, "mydb");
        assert_eq!(s.user, "postgres");
        assert_eq!(
            s.redacted_url(),
            "postgres://postgres@/mydb?host=%2Ftmp%2Fsock&port=5433"
        );
        let o = s.to_connect_options().unwrap();
        assert_eq!(
            o.get_socket()
                .map(|p| p.to_string_lossy().into_owned())
                .as_deref(),
            Some("/tmp/sock")
        );
    }

    #[test]
    fn rejects_bad_urls_without_echoing_password() {
        let e = ConnectionSpec::from_url("mysql://u:pw@h/db").unwrap_err();
        assert!(!e.to_string().contains("pw"));
        let e = ConnectionSpec::from_url("postgres://u:topsecret@h:notaport/db").unwrap_err();
        assert!(e.to_string().contains("invalid port"));
        assert!(!e.to_string().contains("topsecret"));
        assert!(ConnectionSpec::from_url("postgres://h/db?sslmode=bogus").is_err());
        assert!(ConnectionSpec::from_url("postgres://[::1]:5432/db").is_ok());
    }

    #[test]
    fn unencoded_delimiters_in_the_password_are_refused_without_echo() {
        for url in [
            "postgres://u:pa/SECRETX@h/db",
            "postgres://u:pa?SECRETX@h/db",
            "postgres://u:pa#x?SECRETX@h:5432/db",
            "postgres://u:pa?ss@SECRETX/db",
            "postgres://u:pa:SECRETX@h:SECRETX/db",
        ] {
            let e = ConnectionSpec::from_url(url).unwrap_err().to_string();
            assert!(!e.contains("SECRETX"), "{url}: {e}");
            assert!(
                !crate::mask_connection_string(url).contains("SECRETX"),
                "{url}"
            );
        }
    }

    #[test]
    fn parse_accepts_every_form_and_trims() {
        for s in [
            "  postgres://u:pw@h:5433/app ",
            "postgresql://u:pw@h:5433/app",
            "host=h port=5433 user=u password=pw dbname=app",
            "\thost='h' port = 5433 user=u password='pw' dbname=app\n",
        ] {
            let c = ConnectionSpec::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(c.redacted_url(), "postgres://u:***@h:5433/app", "{s}");
            assert_eq!(c.password.as_ref().map(|p| p.expose()), Some("pw"));
        }
    }
}

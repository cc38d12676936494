//! libpq keyword/value connection strings (`host=db port=5432 user=app password='s3 cret'
//! dbname=app`) → [`ConnectionSpec`], and [`mask_connection_string`], the one function that
//! turns any connection string — valid or not — into a form that may be printed.
//!
//! The grammar is libpq's (`conninfo_parse`): `key = value` pairs separated by whitespace,
//! whitespace allowed around `=`; a value is either a run of non-space characters or a
//! single-quoted string; in both, `\` escapes the next character (`\'`, `\\`). Errors name the
//! key they are about but never repeat a value, a stray word (it may be half of a password) or
//! an unknown key that does not look like a key.

use sqlx::postgres::PgSslMode;

use crate::{ConnectionSpec, Secret, TopologyError};

/// The keywords deployclaw understands. Others are an error (a typo such as `pasword` must not
/// silently connect without the password).
pub const KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "application_name",
    "connect_timeout",
    "options",
];

fn invalid(reason: impl Into<String>) -> TopologyError {
    TopologyError::InvalidUrl {
        reason: reason.into(),
    }
}

/// A key as it may appear in an error message: only when it looks like a keyword (ASCII
/// letters, digits, `_`, at most 40 characters), otherwise a placeholder.
pub(crate) fn printable_key(key: &str) -> String {
    if !key.is_empty()
        && key.len() <= 40
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        format!("`{key}`")
    } else {
        "a key that is not a keyword".to_string()
    }
}

/// True when `s` (already trimmed) has the shape of a keyword/value string: it starts with a
/// keyword-like word followed (after optional spaces) by `=`.
pub fn looks_like_keyword_value(s: &str) -> bool {
    let s = s.trim();
    let key_len = s
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    key_len > 0 && s[key_len..].trim_start().starts_with('=')
}

/// Split a keyword/value string into `(key, value)` pairs, libpq's way.
fn pairs(s: &str) -> Result<Vec<(String, String)>, TopologyError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // The word may be part of a password with a space in it: never echo it.
            return Err(invalid(
                "a word without `=` (write `key=value`; quote values with spaces: key='a b')",
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(invalid(format!(
                            "unterminated quoted value for {}",
                            printable_key(&key)
                        )));
                    }
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => {
                            return Err(invalid(format!(
                                "unterminated quoted value for {}",
                                printable_key(&key)
                            )));
                        }
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

fn parse_number<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, TopologyError> {
    v.parse::<T>()
        .map_err(|_| invalid(format!("`{key}` is not a valid number")))
}

/// Parse a libpq keyword/value connection string (see the module doc). Defaults as for URLs:
/// host `localhost`, port 5432, user `postgres`, database = user. `hostaddr` is the host when
/// `host` is not given (both at once is an error: deployclaw has one address per instance).
/// `application_name`, `connect_timeout` and `options` are checked and otherwise ignored.
pub fn parse_keyword_value(s: &str) -> Result<ConnectionSpec, TopologyError> {
    let mut host = None;
    let mut hostaddr = None;
    let mut port = None;
    let mut user = None;
    let mut database = None;
    let mut password = None;
    let mut sslmode = None;
    for (key, value) in pairs(s)? {
        match key.as_str() {
            "host" => host = Some(value),
            "hostaddr" => hostaddr = Some(value),
            "port" => port = Some(parse_number::<u16>("port", &value)?),
            "dbname" => database = Some(value),
            "user" => user = Some(value),
            "password" => password = Some(Secret::new(value)),
            "sslmode" => {
                if value.parse::<PgSslMode>().is_err() {
                    return Err(invalid(
                        "unknown `sslmode` (disable, allow, prefer, require, verify-ca, verify-full)",
                    ));
                }
                sslmode = Some(value)
            }
            "connect_timeout" => {
                parse_number::<u32>("connect_timeout", &value)?;
            }
            "application_name" | "options" => {}
            _ => {
                return Err(invalid(format!(
                    "unknown keyword {} (known: {})",
                    printable_key(&key),
                    KEYWORDS.join(", ")
                )));
            }
        }
    }
    let host = match (host.filter(|h| !h.is_empty()), hostaddr) {
        (Some(_), Some(_)) => return Err(invalid("give `host` or `hostaddr`, not both")),
        (Some(h), None) | (None, Some(h)) => h,
        (None, None) => "localhost".to_string(),
    };
    if host.contains(',') {
        return Err(invalid("multiple hosts are not supported"));
    }
    let user = user
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres".into());
    Ok(ConnectionSpec {
        host,
        port: port.unwrap_or(5432),
        database: database
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| user.clone()),
        user,
        password,
        sslmode,
        iam_auth: false,
    })
}

/// A printable form of any connection string a user gave (`--target-db`, `--shadow`, a
/// topology file's `url`): the one function every message that mentions one goes through.
///
/// * a string [`ConnectionSpec::parse`] accepts → [`ConnectionSpec::redacted_url`] (password
///   as `***`);
/// * anything else with a `://` → only its scheme (when it is a plain word): `mysql://***`;
/// * anything else with `=` → its keywords with every value hidden: `host=*** password=***`;
/// * anything else with `@` or `:` (a URL without scheme, `user:pw@host`) → `***`, except an
///   AWS ARN (`arn:…`, which holds no secret);
/// * a plain word or path (a topology file, an RDS identifier) → itself.
pub fn mask_connection_string(s: &str) -> String {
    match ConnectionSpec::parse(s) {
        Ok(spec) => spec.redacted_url(),
        Err(_) => mask_unparsed(s),
    }
}

/// [`mask_connection_string`] of a string that does not parse (no parsing, so the parser's
/// own errors can use it).
pub(crate) fn mask_unparsed(s: &str) -> String {
    let t = s.trim();
    if let Some((scheme, _)) = t.split_once("://") {
        let plain = !scheme.is_empty()
            && scheme.len() <= 20
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        return if plain {
            format!("{scheme}://***")
        } else {
            "***".to_string()
        };
    }
    if t.contains('=') {
        let keys: Vec<String> = t
            .split_whitespace()
            .filter_map(|w| w.split_once('=').map(|(k, _)| k))
            .filter(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .map(|k| format!("{k}=***"))
            .collect();
        return if keys.is_empty() {
            "***".to_string()
        } else {
            keys.join(" ")
        };
    }
    if t.starts_with("arn:") && !t.contains('@') {
        return t.to_string();
    }
    if t.contains('@') || t.contains(':') {
        return "***".to_string();
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ConnectionSpec {
        parse_keyword_value(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn keyword_value_basic_and_defaults() {
        let s = p("host=h port=5433 user=u password=pw dbname=app sslmode=require");
        assert_eq!(
            (
                s.host.as_str(),
                s.port,
                s.user.as_str(),
                s.database.as_str()
            ),
            ("h", 5433, "u", "app")
        );
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("pw"));
        assert_eq!(s.sslmode.as_deref(), Some("require"));
        let d = p("user=alice");
        assert_eq!(
            (d.host.as_str(), d.port, d.database.as_str()),
            ("localhost", 5432, "alice")
        );
        assert!(d.password.is_none());
        assert_eq!(p("hostaddr=10.0.0.1").host, "10.0.0.1");
        assert_eq!(p("host=/tmp/sock").host, "/tmp/sock");
        p("application_name=x connect_timeout=10 options='-c search_path=a'");
    }

    #[test]
    fn keyword_value_spaces_quotes_and_escapes() {
        let s = p("  host = h   password = 'x y'  ");
        assert_eq!(s.host, "h");
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("x y"));
        // libpq: a quoted value ends at the first unescaped quote; `'s'` is then a bad word.
        assert!(parse_keyword_value("password='it''s'").is_err());
        let s = p(r"password='a b\'c\\d' user=u");
        assert_eq!(s.password.as_ref().map(Secret::expose), Some(r"a b'c\d"));
        assert_eq!(s.user, "u");
        let s = p(r"password=a\ b dbname=x");
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("a b"));
        assert_eq!(s.database, "x");
        let s = p("password='' user=u");
        assert_eq!(s.password.as_ref().map(Secret::expose), Some(""));
        // libpq skips spaces after `=`: the next word is the value.
        assert_eq!(p("host= port").host, "port");
    }

    #[test]
    fn keyword_value_errors_name_the_key_never_the_value() {
        let cases = [
            ("host=h pasword=SECRETX", "unknown keyword `pasword`"),
            (
                "password=SECRETX port=SECRETX",
                "`port` is not a valid number",
            ),
            ("password=my SECRETX", "a word without `=`"),
            (
                "password='SECRETX",
                "unterminated quoted value for `password`",
            ),
            ("password=SECRETX sslmode=SECRETX", "unknown `sslmode`"),
            ("host=a hostaddr=1.2.3.4 password=SECRETX", "not both"),
            ("password=x SECRETX-1=2", "a key that is not a keyword"),
            ("password=x connect_timeout=SECRETX", "`connect_timeout`"),
        ];
        for (input, want) in cases {
            let e = parse_keyword_value(input).unwrap_err().to_string();
            assert!(e.contains(want), "{input}: {e}");
            assert!(!e.contains("SECRETX"), "{input}: {e}");
        }
    }

    #[test]
    fn detects_the_keyword_value_shape() {
        assert!(looks_like_keyword_value("host=h"));
        assert!(looks_like_keyword_value("  dbname = x"));
        assert!(!looks_like_keyword_value("postgres://u@h/db"));
        assert!(!looks_like_keyword_value("fleet.toml"));
        assert!(!looks_like_keyword_value("=x"));
    }

    #[test]
    fn masks_every_form() {
        let cases = [
            ("postgres://u:SECRETX@h/db", "postgres://u:***@h:5432/db"),
            (
                " postgresql://u:SECRETX@h/db ",
                "postgres://u:***@h:5432/db",
            ),
            ("postgress://u:SECRETX@h/db", "postgress://***"),
            ("mysql://u:SECRETX@h/db", "mysql://***"),
            ("my sql://u:SECRETX@h/db", "***"),
            (
                "host=h password=SECRETX dbname=app",
                "postgres://postgres:***@h:5432/app",
            ),
            ("host=h password=SECRETX bogus", "host=*** password=***"),
            ("u:SECRETX@h/db", "***"),
            ("fleet.toml", "fleet.toml"),
            (
                "arn:aws:rds:eu-west-1:1:cluster:x",
                "arn:aws:rds:eu-west-1:1:cluster:x",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(mask_connection_string(input), want, "{input}");
        }
    }
}

//! Connection helpers: [`topology::ConnectionSpec`] → sqlx options, error classification.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use topology::ConnectionSpec;

/// `application_name` of every session the simulator opens (so leftovers are easy to find).
pub const APPLICATION_NAME: &str = "deployclaw-simulator";

/// sqlx connect options for `spec`, connecting to `database`. The password (or an IAM token the
/// caller already put into `spec.password`) is passed to the driver, never printed.
pub fn connect_options(
    spec: &ConnectionSpec,
    database: &str,
) -> Result<PgConnectOptions, topology::TopologyError> {
    Ok(spec
        .with_database(database)
        .to_connect_options()?
        .application_name(APPLICATION_NAME)
        .statement_cache_capacity(STATEMENT_CACHE)
        .disable_statement_logging())
}

/// [`connect_options`] for a connection to the *shadow* (ephemeral cluster or `--shadow` scratch
/// server). Without a password in `spec`, the password is set to the empty string: the driver
/// would otherwise take `PGPASSWORD` from deployclaw's environment — the target's password —
/// and send it to the shadow server when that asks for one.
pub fn shadow_connect_options(
    spec: &ConnectionSpec,
    database: &str,
) -> Result<PgConnectOptions, topology::TopologyError> {
    let o = connect_options(spec, database)?;
    Ok(if spec.password.is_none() {
        o.password("")
    } else {
        o
    })
}

/// Prepared statements sqlx keeps per connection (it closes the least recently used one
/// beyond that). Not 0: with the cache disabled sqlx still prepares every persistent query as
/// a *named* statement and never closes it, so the server backend kept one plan (~27 KB) per
/// query for the connection's life — a rehearsal of 100,000 statements (four catalog
/// queries each) grew its shadow backend past 7 GB, and a pooled probe connection grew on
/// every shard it served. A small cache bounds that and reuses the plans of the constant
/// catalog queries, as `plan_cache_mode = force_generic_plan` in the probes intends.
/// Statements of the migration itself are never prepared as named statements.
pub const STATEMENT_CACHE: usize = 32;

/// A printable form of the connection: never with a password.
pub fn redacted(spec: &ConnectionSpec, database: &str) -> String {
    spec.with_database(database).redacted_url()
}

/// A pool of at most `max` connections, connected lazily, with bounded acquire time.
pub fn lazy_pool(options: PgConnectOptions, max: u32, acquire_timeout: Duration) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max.max(1))
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        .idle_timeout(Some(Duration::from_secs(30)))
        .test_before_acquire(true)
        .connect_lazy_with(options)
}

/// True when the error means the connection or server is gone (as opposed to an SQL error a
/// query produced): the shard is then reported unreachable.
pub fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Configuration(_) => true,
        sqlx::Error::Database(db) => {
            // 08xxx connection exceptions, 28xxx auth, 57P01..57P03 admin shutdown / cannot
            // connect now, 3D000 database does not exist.
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            code.starts_with("08")
                || code.starts_with("28")
                || matches!(code.as_str(), "57P01" | "57P02" | "57P03" | "3D000")
        }
        _ => false,
    }
}

/// SQLSTATE and message of a driver error.
pub fn sqlstate_and_message(e: &sqlx::Error) -> (Option<String>, String) {
    match e {
        sqlx::Error::Database(db) => (db.code().map(|c| c.into_owned()), db.message().to_string()),
        other => (None, other.to_string()),
    }
}

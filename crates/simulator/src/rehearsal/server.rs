//! The server rehearsals run on — an ephemeral cluster started for the run, or a `--shadow`
//! scratch server — its throwaway databases (dropped on success, error, cancellation and, from
//! [`Drop`], when the future was abandoned) and the shadow sessions the migration runs in.

use std::path::PathBuf;

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use topology::ConnectionSpec;
use topology::ephemeral::{EphemeralOptions, EphemeralPg};

use super::RehearsalLimits;
use crate::SimError;
use crate::conn::{redacted, shadow_connect_options};
use crate::ident::quote_ident;

/// The server rehearsals run on.
pub(crate) struct ShadowServer {
    pub spec: ConnectionSpec,
    pub bin_dir: PathBuf,
    pub version: u32,
    /// Keeps the ephemeral cluster alive (stopped on drop).
    _ephemeral: Option<EphemeralPg>,
    /// On a scratch server: the session holding the lease of every database this run created
    /// (see [`topology::scratch`]).
    lease: Option<std::sync::Arc<topology::scratch::Lease>>,
    /// What the reaper did when this run connected (leftovers of dead runs).
    pub reaped: topology::scratch::Reaped,
    /// Whether every database gets its own owner role that the migration runs as (the
    /// ephemeral cluster, where the admin is a superuser; see [`ShadowDb::demote`]). Also the
    /// only server whose spare databases may be taken (never on a scratch server).
    private_owner: bool,
}

impl ShadowServer {
    /// Start an ephemeral cluster.
    pub async fn ephemeral() -> Result<ShadowServer, SimError> {
        let pg = EphemeralPg::start_async(EphemeralOptions::shadow())
            .await
            .map_err(|source| SimError::ShadowStart { source })?;
        Ok(ShadowServer {
            spec: pg.connection_spec(),
            bin_dir: pg.bin_dir().to_path_buf(),
            version: pg.version(),
            _ephemeral: Some(pg),
            lease: None,
            reaped: Default::default(),
            private_owner: true,
        })
    }

    /// Use an existing scratch server: drop the scratch databases of dead runs
    /// ([`topology::scratch::reap_leftovers`], before this run holds any lease) and open the
    /// session that will hold this run's leases. `ephemeral`: it is an ephemeral cluster this
    /// process started (see `SimOptions::shadow_is_ephemeral`); nothing is reaped there (no
    /// dead run used it, and the rollback proof's unleased databases live on it).
    pub async fn external(spec: ConnectionSpec, ephemeral: bool) -> Result<ShadowServer, SimError> {
        let bin_dir = topology::ephemeral::find_bin_dir()
            .map_err(|source| SimError::ShadowStart { source })?;
        let mut conn = admin_connect(&spec).await?;
        let version = server_version(&mut conn)
            .await
            .map_err(|source| SimError::Shadow {
                url: spec.redacted_url(),
                what: "read server_version_num".into(),
                source,
            })?;
        // An ephemeral cluster this process started holds no dead run's databases, but it may
        // hold the rollback proof's, which run unleased beside the rehearsal: never reap it.
        let reaped = if ephemeral {
            Ok(topology::scratch::Reaped::default())
        } else {
            topology::scratch::reap_leftovers(&mut conn).await
        };
        let _ = conn.close().await;
        let reaped = reaped.map_err(|source| SimError::Shadow {
            url: spec.redacted_url(),
            what: "look for leftover scratch databases".into(),
            source,
        })?;
        let opts = shadow_connect_options(&spec, &spec.database)
            .map_err(|source| SimError::ShadowStart { source })?;
        let lease = topology::scratch::Lease::open(&opts)
            .await
            .map_err(|source| SimError::Shadow {
                url: spec.redacted_url(),
                what: "open the lease session".into(),
                source,
            })?;
        Ok(ShadowServer {
            spec,
            bin_dir,
            version,
            _ephemeral: None,
            lease: Some(std::sync::Arc::new(lease)),
            reaped,
            private_owner: ephemeral,
        })
    }

    /// Create a fresh, uniquely named database (on a scratch server: after taking its lease).
    pub async fn create_db(&self) -> Result<ShadowDb, SimError> {
        let name = topology::scratch::new_scratch_name();
        if let Some(lease) = &self.lease {
            lease.take(&name).await.map_err(|source| SimError::Shadow {
                url: self.spec.redacted_url(),
                what: format!("take the lease of {name}"),
                source,
            })?;
        }
        let mut conn = admin_connect(&self.spec).await?;
        // A spare database of an ephemeral shadow made from the cached template is renamed;
        // on a scratch server (never a spare there) this is CREATE DATABASE … TEMPLATE template0.
        let mut r =
            topology::ephemeral::create_database(&mut conn, &name, self.private_owner).await;
        if r.is_ok() && self.private_owner {
            // The owner clones as a superuser (extensions, every object kind), then is demoted
            // before the migration runs as it.
            let q = quote_ident(&name);
            r = sqlx::raw_sql(AssertSqlSafe(format!(
                "CREATE ROLE {q} LOGIN SUPERUSER; ALTER DATABASE {q} OWNER TO {q}"
            )))
            .execute(&mut conn)
            .await
            .map(|_| ());
        }
        let _ = conn.close().await;
        r.map_err(|source| SimError::Shadow {
            url: self.spec.redacted_url(),
            what: format!("create database {name}"),
            source,
        })?;
        Ok(ShadowDb {
            admin: self.spec.clone(),
            owner: self.private_owner.then(|| name.clone()),
            name,
            dropped: false,
            lease: self.lease.clone(),
        })
    }
}

async fn admin_connect(spec: &ConnectionSpec) -> Result<PgConnection, SimError> {
    let opts = shadow_connect_options(spec, &spec.database)
        .map_err(|source| SimError::ShadowStart { source })?;
    PgConnection::connect_with(&opts)
        .await
        .map_err(|source| SimError::Shadow {
            url: spec.redacted_url(),
            what: "connect".into(),
            source,
        })
}

pub(crate) async fn server_version(conn: &mut PgConnection) -> Result<u32, sqlx::Error> {
    let v: String = sqlx::query_scalar("SELECT current_setting('server_version_num')")
        .fetch_one(&mut *conn)
        .await?;
    Ok(v.trim().parse::<u32>().map(|n| n / 10000).unwrap_or(0))
}

/// A database on the shadow server that is dropped when the rehearsal ends.
pub(crate) struct ShadowDb {
    admin: ConnectionSpec,
    /// The database's own owner role (named like the database) on the ephemeral cluster.
    owner: Option<String>,
    pub name: String,
    dropped: bool,
    /// The run's lease session, released once the database is gone.
    lease: Option<std::sync::Arc<topology::scratch::Lease>>,
}

impl ShadowDb {
    /// Who clones into this database and runs the migration in it: its private owner role
    /// when it has one, else the admin (the `--shadow` URL's role).
    pub fn spec(&self) -> ConnectionSpec {
        let mut spec = self.admin.clone();
        if let Some(owner) = &self.owner {
            spec.user = owner.clone();
        }
        spec
    }

    /// After the clone, before the migration runs: take superuser away from the private owner.
    /// The migration is untrusted input; as a superuser it could run programs as the server's
    /// OS user (`COPY … TO PROGRAM`), read its files and reach every other cluster of that user.
    /// As the owner of the cloned objects it can still change them like the deploy role would.
    pub async fn demote(&self) -> Result<(), SimError> {
        let Some(owner) = &self.owner else {
            return Ok(());
        };
        let mut conn = admin_connect(&self.admin).await?;
        let r = sqlx::raw_sql(AssertSqlSafe(format!(
            "ALTER ROLE {} NOSUPERUSER",
            quote_ident(owner)
        )))
        .execute(&mut conn)
        .await;
        let _ = conn.close().await;
        r.map(|_| ()).map_err(|source| SimError::Shadow {
            url: self.admin.redacted_url(),
            what: format!("demote {owner}"),
            source,
        })
    }

    /// Drop the database (terminating any session still in it), then release its lease.
    pub async fn drop_now(mut self) -> Result<(), SimError> {
        self.dropped = true;
        let r = drop_database(&self.admin, &self.name).await;
        if let (Ok(()), Some(lease)) = (&r, &self.lease) {
            lease.release(&self.name).await;
        }
        if let (Ok(()), Some(owner)) = (&r, &self.owner)
            && let Ok(mut conn) = admin_connect(&self.admin).await
        {
            // Best effort: the ephemeral cluster goes away with the run anyway.
            let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP ROLE IF EXISTS {}",
                quote_ident(owner)
            )))
            .execute(&mut conn)
            .await;
            let _ = conn.close().await;
        }
        r
    }
}

async fn drop_database(admin: &ConnectionSpec, name: &str) -> Result<(), SimError> {
    let mut conn = admin_connect(admin).await?;
    let r = sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(name)
    )))
    .execute(&mut conn)
    .await;
    let _ = conn.close().await;
    r.map(|_| ()).map_err(|source| SimError::Shadow {
        url: admin.redacted_url(),
        what: format!("drop database {name}"),
        source,
    })
}

impl Drop for ShadowDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // The future owning us was abandoned (panic, dropped task): drop the database from a
        // helper thread with its own small runtime, and wait for it.
        let admin = self.admin.clone();
        let name = self.name.clone();
        let h = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(drop_database(&admin, &name));
            }
        });
        let _ = h.join();
    }
}

/// Prepare a shadow connection to `db` with the given search path and session timeouts.
pub(crate) async fn shadow_connection(
    spec: &ConnectionSpec,
    db: &str,
    shard_schema: &str,
    limits: RehearsalLimits,
) -> Result<PgConnection, SimError> {
    let opts: PgConnectOptions =
        shadow_connect_options(spec, db).map_err(|source| SimError::ShadowStart { source })?;
    let mut conn = PgConnection::connect_with(&opts)
        .await
        .map_err(|source| SimError::Shadow {
            url: redacted(spec, db),
            what: "connect to shadow database".into(),
            source,
        })?;
    let setup = format!(
        "SET statement_timeout = {}; SET lock_timeout = {}",
        limits.statement_timeout.as_millis().max(1),
        limits.lock_timeout.as_millis().max(1)
    );
    let r = async {
        sqlx::raw_sql(AssertSqlSafe(setup))
            .execute(&mut conn)
            .await?;
        sqlx::query("SELECT set_config('search_path', $1, false)")
            .bind(format!("{}, public", quote_ident(shard_schema)))
            .execute(&mut conn)
            .await?;
        Ok::<_, sqlx::Error>(())
    }
    .await;
    r.map_err(|source| SimError::Shadow {
        url: redacted(spec, db),
        what: "prepare shadow session".into(),
        source,
    })?;
    Ok(conn)
}

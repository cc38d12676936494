//! The [`Shadow`]: a server on which the prover creates, copies and drops scratch databases, and
//! the sessions it opens on them.

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use topology::catalog::Catalog;
use topology::ephemeral::{EphemeralOptions, EphemeralPg};

use super::model::Setup;
use super::setup::{Loaded, introspect, load_setup, populate_matviews};
use crate::RollbackError;
use crate::names::quote_ident;

/// Where proofs run: a server on which the prover may create and drop scratch databases.
#[derive(Debug)]
pub struct Shadow {
    admin: PgConnectOptions,
    pub(super) target: String,
    _ephemeral: Option<EphemeralPg>,
    version: u32,
    /// On a scratch server (`from_url`): the session holding the lease of every scratch
    /// database this prover created, opened (after reaping the leftovers of dead runs) when the
    /// first one is made. See [`topology::scratch`].
    lease: Option<tokio::sync::OnceCell<topology::scratch::Lease>>,
    reaped: std::sync::Mutex<topology::scratch::Reaped>,
    /// On an ephemeral cluster (where the admin is a superuser): [`crate::prove`] runs the
    /// migration and the rollback as the scratch database's own owner role, demoted from
    /// superuser once the structure is loaded (see [`Shadow::load_as_owner`]). Also the only
    /// server whose spare databases may be taken (never on a scratch server).
    private_owner: bool,
}

impl Shadow {
    /// Start a throw-away PostgreSQL (stopped when the `Shadow` is dropped).
    pub async fn ephemeral() -> Result<Shadow, RollbackError> {
        let pg = EphemeralPg::start_async(EphemeralOptions::shadow()).await?;
        let mut shadow = Shadow::from_ephemeral(&pg);
        shadow._ephemeral = Some(pg);
        Ok(shadow)
    }

    /// Use an existing ephemeral cluster (the caller keeps it alive).
    pub fn from_ephemeral(pg: &EphemeralPg) -> Shadow {
        Shadow {
            admin: pg.connect_options("postgres"),
            target: format!("ephemeral {}", pg.url()),
            _ephemeral: None,
            version: pg.version(),
            lease: None,
            reaped: Default::default(),
            private_owner: true,
        }
    }

    /// A scratch server (`--shadow URL`); the role must be allowed to create databases. The URL's
    /// database is only used to connect for `CREATE DATABASE` / `DROP DATABASE`.
    /// Accepts what [`topology::ConnectionSpec::parse`] accepts (URL or libpq key=value
    /// pairs); without a password in it, the password file applies (never `PGPASSWORD`, which
    /// is the target's).
    pub fn from_url(url: &str) -> Result<Shadow, RollbackError> {
        // The scratch server never gets the target's password: only what its own URL or the
        // password file holds — not PGPASSWORD, and without a password the driver must not
        // fall back to PGPASSWORD either.
        let mut spec = topology::ConnectionSpec::parse(url)?;
        spec.resolve_password_from_file();
        let mut admin: PgConnectOptions = spec.to_connect_options()?;
        if spec.password.is_none() {
            admin = admin.password("");
        }
        Ok(Shadow {
            admin,
            target: spec.redacted_url(),
            _ephemeral: None,
            version: 13,
            lease: Some(tokio::sync::OnceCell::new()),
            reaped: Default::default(),
            private_owner: false,
        })
    }

    async fn admin_conn(&self) -> Result<PgConnection, RollbackError> {
        self.admin
            .connect()
            .await
            .map_err(|source| RollbackError::Connect {
                target: self.target.clone(),
                source,
            })
    }

    /// A session on `db` as the server's admin (the `--shadow` URL's role).
    pub(super) async fn connect(&self, db: &str) -> Result<PgConnection, RollbackError> {
        self.admin
            .clone()
            .database(db)
            .connect()
            .await
            .map_err(|source| RollbackError::Connect {
                target: format!("{}/{db}", self.target),
                source,
            })
    }

    /// Run `sql` as the admin.
    async fn admin_exec(&self, action: &str, sql: String) -> Result<(), RollbackError> {
        let mut admin = self.admin_conn().await?;
        let r = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut admin).await;
        let _ = admin.close().await;
        r.map(|_| ()).map_err(|source| RollbackError::Database {
            action: action.to_string(),
            source,
        })
    }

    /// A session on `db` for untrusted SQL (the migration, a rollback script, sample data): on
    /// an ephemeral cluster as the owner role [`Shadow::load_as_owner`] made for `owner_of`
    /// (demoted by then), on a scratch server as the `--shadow` URL's role.
    pub(super) async fn owner_conn(
        &self,
        db: &str,
        owner_of: &str,
    ) -> Result<PgConnection, RollbackError> {
        if !self.private_owner {
            return self.connect(db).await;
        }
        self.admin
            .clone()
            .username(owner_of)
            .database(db)
            .connect()
            .await
            .map_err(|source| RollbackError::Connect {
                target: format!("{}/{db}", self.target),
                source,
            })
    }

    /// Load `setup` on `db` and populate its materialized views. On an ephemeral cluster `db`
    /// gets its own owner role (named like it), which loads `setup` as a superuser (every
    /// object kind, extensions) and is then demoted; the views are refreshed by the demoted
    /// role — as a superuser the tenant's SQL could run programs as the server's OS user
    /// (`COPY … TO PROGRAM`) and reach every other cluster of that user. On a scratch server:
    /// the `--shadow` URL's role, as given. A setup that does not load is
    /// `Err(RollbackError::Setup)`, with what [`Loaded`] says about extensions.
    pub(super) async fn load_as_owner(
        &self,
        db: &str,
        setup: Setup<'_>,
        extensions: &std::collections::BTreeMap<String, String>,
    ) -> Result<Loaded, RollbackError> {
        if !self.private_owner {
            let mut conn = self.connect(db).await?;
            let loaded = load_setup(&mut conn, setup, extensions).await;
            if loaded.error.is_none() {
                populate_matviews(&mut conn).await;
            }
            let _ = conn.close().await;
            return Ok(loaded);
        }
        let q = quote_ident(db);
        self.admin_exec(
            "create the scratch database's owner",
            format!("CREATE ROLE {q} LOGIN SUPERUSER; ALTER DATABASE {q} OWNER TO {q}"),
        )
        .await?;
        let mut conn = self.owner_conn(db, db).await?;
        let loaded = load_setup(&mut conn, setup, extensions).await;
        let _ = conn.close().await;
        self.admin_exec(
            "demote the scratch database's owner",
            format!("ALTER ROLE {q} NOSUPERUSER"),
        )
        .await?;
        if loaded.error.is_none() {
            let mut conn = self.owner_conn(db, db).await?;
            populate_matviews(&mut conn).await;
            let _ = conn.close().await;
        }
        Ok(loaded)
    }

    /// A copy of the loaded scratch database `template` (no session may be open on it), owned
    /// like it: the data phase of a proof starts from the same structure without loading it
    /// again.
    pub(super) async fn copy_db(&self, name: &str, template: &str) -> Result<(), RollbackError> {
        self.create_db(name, Some(template)).await?;
        if self.private_owner {
            self.admin_exec(
                "hand the copy to the scratch database's owner",
                format!(
                    "ALTER DATABASE {} OWNER TO {}",
                    quote_ident(name),
                    quote_ident(template)
                ),
            )
            .await?;
        }
        Ok(())
    }

    /// Drop the owner role [`Shadow::load_as_owner`] made for `db` (after `db` and its copies).
    /// Best effort.
    pub(super) async fn drop_owner(&self, db: &str) {
        if self.private_owner {
            let _ = self
                .admin_exec(
                    "drop role",
                    format!("DROP ROLE IF EXISTS {}", quote_ident(db)),
                )
                .await;
        }
    }

    pub(super) fn scratch_name() -> String {
        topology::scratch::new_scratch_name()
    }

    /// Scratch databases of dead runs this prover dropped on a scratch server (empty until
    /// the first scratch database is made, and on an ephemeral shadow).
    pub fn reaped(&self) -> topology::scratch::Reaped {
        match self.reaped.lock() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// On a scratch server: the lease session (reaping leftovers first when opening it).
    async fn lease(&self) -> Result<Option<&topology::scratch::Lease>, RollbackError> {
        let Some(cell) = &self.lease else {
            return Ok(None);
        };
        let lease = cell
            .get_or_try_init(|| async {
                let mut admin = self.admin_conn().await?;
                let reaped = topology::scratch::reap_leftovers(&mut admin).await;
                let _ = admin.close().await;
                let reaped = reaped.map_err(|source| RollbackError::Database {
                    action: "look for leftover scratch databases".into(),
                    source,
                })?;
                if let Ok(mut r) = self.reaped.lock() {
                    *r = reaped;
                }
                topology::scratch::Lease::open(&self.admin)
                    .await
                    .map_err(|source| RollbackError::Connect {
                        target: self.target.clone(),
                        source,
                    })
            })
            .await?;
        Ok(Some(lease))
    }

    /// Create scratch database `name`: empty, or a copy of `template`.
    pub(super) async fn create_db(
        &self,
        name: &str,
        template: Option<&str>,
    ) -> Result<(), RollbackError> {
        if let Some(lease) = self.lease().await? {
            lease
                .take(name)
                .await
                .map_err(|source| RollbackError::Database {
                    action: format!("take the lease of {name}"),
                    source,
                })?;
        }
        let mut admin = self.admin_conn().await?;
        let r = match template {
            Some(t) => {
                // On the private ephemeral cluster the copy is made file by file (the
                // checkpoint it forces is cheap there); on a scratch server, WAL_LOG (the
                // default since PostgreSQL 15) spares a shared server's checkpoints.
                let strategy = if self.private_owner && self.version >= 15 {
                    " STRATEGY FILE_COPY"
                } else {
                    ""
                };
                let sql = format!(
                    "CREATE DATABASE {} TEMPLATE {}{strategy}",
                    quote_ident(name),
                    quote_ident(t)
                );
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await
                    .map(|_| ())
            }
            // An empty database: a spare of an ephemeral shadow made from the cached template
            // is renamed (instant); on a scratch server CREATE DATABASE … TEMPLATE template0.
            None => {
                topology::ephemeral::create_database(&mut admin, name, self.private_owner).await
            }
        };
        let _ = admin.close().await;
        r.map_err(|source| RollbackError::Database {
            action: format!("create scratch database {name}"),
            source,
        })
    }

    /// Drop scratch database `name` if it exists (forcing other sessions out).
    pub(super) async fn drop_db(&self, name: &str) -> Result<(), RollbackError> {
        let mut admin = self.admin_conn().await?;
        let version: i32 =
            sqlx::query_scalar("SELECT current_setting('server_version_num')::int / 10000")
                .fetch_one(&mut admin)
                .await
                .unwrap_or(self.version as i32);
        let force = if version >= 13 { " WITH (FORCE)" } else { "" };
        let r = sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {}{force}",
            quote_ident(name)
        )))
        .execute(&mut admin)
        .await;
        let _ = admin.close().await;
        if let (Ok(_), Ok(Some(lease))) = (&r, self.lease().await) {
            lease.release(name).await;
        }
        r.map(|_| ()).map_err(|source| RollbackError::Database {
            action: format!("drop scratch database {name}"),
            source,
        })
    }

    /// The catalog of `schema` after loading `setup` on a scratch database (dropped again):
    /// the pre-migration catalog for [`crate::generate`] when the structure is given as SQL.
    pub async fn catalog_of(
        &self,
        setup: Setup<'_>,
        schema: &str,
    ) -> Result<Catalog, RollbackError> {
        let db = Shadow::scratch_name();
        self.create_db(&db, None).await?;
        let result = async {
            let mut conn = self.connect(&db).await?;
            let loaded = load_setup(&mut conn, setup, &Default::default()).await;
            let snap = match loaded.error {
                Some(e) => Err(e),
                None => introspect(&mut conn, schema).await,
            };
            let _ = conn.close().await;
            snap
        }
        .await;
        let dropped = self.drop_db(&db).await;
        let snap = result?;
        dropped?;
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::Shadow;

    #[test]
    fn shadow_target_is_redacted() {
        let s = Shadow::from_url("postgres://app:s3cret@db:5432/x").unwrap();
        assert_eq!(s.target, "postgres://app:***@db:5432/x");
        let s = Shadow::from_url("host=db user=app password=s3cret dbname=x").unwrap();
        assert_eq!(s.target, "postgres://app:***@db:5432/x");
        assert!(Shadow::from_url("mysql://a:p%40ss@h/x").is_err());
    }
}

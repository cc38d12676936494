//! Proving a rollback on a shadow database: forward → rollback → exact catalog comparison.

use migration_parser::{Migration, ParseOptions, TransactionMode};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use topology::ephemeral::{EphemeralOptions, EphemeralPg};

use crate::catalog::{CatalogSnapshot, Mismatch, mismatches};
use crate::exec::{SqlFailure, execute_migration, execute_steps};
use crate::names::quote_ident;
use crate::sample::{ValueHints, column_values, compare_values, seed_rows};
use crate::{MigrationPair, Options, Rollback, RollbackError, generate};
use topology::catalog::Catalog;

/// Where proofs run: a server on which the prover may create and drop scratch databases.
#[derive(Debug)]
pub struct Shadow {
    admin: PgConnectOptions,
    target: String,
    _ephemeral: Option<EphemeralPg>,
    version: u32,
    /// On a scratch server (`from_url`): the session holding the lease of every scratch
    /// database this prover created, opened (after reaping the leftovers of dead runs) when the
    /// first one is made. See [`topology::scratch`].
    lease: Option<tokio::sync::OnceCell<topology::scratch::Lease>>,
    reaped: std::sync::Mutex<topology::scratch::Reaped>,
    /// On an ephemeral cluster (where the admin is a superuser): [`prove`] runs the migration
    /// and the rollback as the scratch database's own owner role, demoted from superuser once
    /// the structure is loaded (see [`Shadow::owner_session`]). Also the only server whose
    /// spare databases may be taken (never on a scratch server).
    private_owner: bool,
}

impl Shadow {
    /// Start a throw-away PostgreSQL (stopped when the `Shadow` is dropped).
    pub async fn ephemeral() -> Result<Shadow, RollbackError> {
        let pg = EphemeralPg::start_async(EphemeralOptions::shadow()).await?;
        let admin = pg.connect_options("postgres");
        let target = format!("ephemeral {}", pg.url());
        let version = pg.version();
        Ok(Shadow {
            admin,
            target,
            _ephemeral: Some(pg),
            version,
            lease: None,
            reaped: Default::default(),
            private_owner: true,
        })
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

    async fn connect(&self, db: &str) -> Result<PgConnection, RollbackError> {
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

    /// A session on `db` for untrusted SQL (the migration, a rollback script). On an ephemeral
    /// cluster: `db` gets its own owner role (named like it), which loads `setup` as a
    /// superuser (every object kind, extensions) and is then demoted, and the session returned
    /// is that role's — as a superuser the migration could run programs as the server's OS
    /// user (`COPY … TO PROGRAM`) and reach every other cluster of that user. On a scratch
    /// server: the `--shadow` URL's role, as given.
    async fn owner_session(
        &self,
        db: &str,
        setup: Setup<'_>,
    ) -> Result<PgConnection, RollbackError> {
        if !self.private_owner {
            let mut conn = self.connect(db).await?;
            load_setup(&mut conn, setup).await?;
            populate_matviews(&mut conn, setup).await;
            return Ok(conn);
        }
        let q = quote_ident(db);
        self.admin_exec(
            "create the scratch database's owner",
            format!("CREATE ROLE {q} LOGIN SUPERUSER; ALTER DATABASE {q} OWNER TO {q}"),
        )
        .await?;
        let owner = self.admin.clone().username(db).database(db);
        let target = format!("{}/{db}", self.target);
        let mut conn = owner
            .connect()
            .await
            .map_err(|source| RollbackError::Connect {
                target: target.clone(),
                source,
            })?;
        let loaded = load_setup(&mut conn, setup).await;
        let _ = conn.close().await;
        loaded?;
        self.admin_exec(
            "demote the scratch database's owner",
            format!("ALTER ROLE {q} NOSUPERUSER"),
        )
        .await?;
        let mut conn = owner
            .connect()
            .await
            .map_err(|source| RollbackError::Connect { target, source })?;
        populate_matviews(&mut conn, setup).await;
        Ok(conn)
    }

    /// Drop the owner role [`Shadow::owner_session`] made for `db` (after `db`). Best effort.
    async fn drop_owner(&self, db: &str) {
        if self.private_owner {
            let _ = self
                .admin_exec(
                    "drop role",
                    format!("DROP ROLE IF EXISTS {}", quote_ident(db)),
                )
                .await;
        }
    }

    fn scratch_name() -> String {
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

    async fn create_db(&self, name: &str, template: Option<&str>) -> Result<(), RollbackError> {
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
                let sql = format!(
                    "CREATE DATABASE {} TEMPLATE {}",
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

    async fn drop_db(&self, name: &str) -> Result<(), RollbackError> {
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
}

impl Shadow {
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
            load_setup(&mut conn, setup).await?;
            let snap = introspect(&mut conn, schema).await;
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

async fn load_setup(conn: &mut PgConnection, setup: Setup<'_>) -> Result<(), RollbackError> {
    match setup {
        Setup::Sql(sql) => run_setup(conn, sql).await,
        Setup::Catalog(c) => match CatalogSnapshot::from_topology(c)
            .load_into(conn)
            .await
            .into_iter()
            .next()
        {
            Some(f) => Err(RollbackError::Setup {
                sqlstate: f.sqlstate.unwrap_or_else(|| "-----".into()),
                message: format!("{} -- {}", f.message, f.sql),
            }),
            None => Ok(()),
        },
    }
}

/// Populate the materialized views a [`Setup::Catalog`] left empty (`WITH NO DATA`), on
/// `conn` of the demoted owner: `REFRESH` runs each view's query — the tenant's functions — as
/// the view's owner, never as the superuser that loaded the catalog. Best effort, in creation
/// order, passing again over those that failed (one may read another) until no pass makes
/// progress; a view left empty fails where it is read.
async fn populate_matviews(conn: &mut PgConnection, setup: Setup<'_>) {
    let Setup::Catalog(c) = setup else {
        return;
    };
    let mut todo: Vec<String> = c
        .tables
        .iter()
        .filter(|(_, t)| t.kind == topology::catalog::TableKind::MaterializedView)
        .map(|(n, _)| format!("{}.{}", quote_ident(&c.schema), quote_ident(n)))
        .collect();
    loop {
        let mut left = Vec::new();
        for mv in &todo {
            let sql = format!("REFRESH MATERIALIZED VIEW {mv}");
            if sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await
                .is_err()
            {
                left.push(mv.clone());
            }
        }
        if left.is_empty() || left.len() == todo.len() {
            return;
        }
        todo = left;
    }
}

async fn run_setup(conn: &mut PgConnection, setup_sql: &str) -> Result<(), RollbackError> {
    if setup_sql.trim().is_empty() {
        return Ok(());
    }
    sqlx::raw_sql(AssertSqlSafe(setup_sql.to_string()))
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| {
            let (sqlstate, message) = match &e {
                sqlx::Error::Database(d) => (
                    d.code().map(|c| c.into_owned()).unwrap_or_default(),
                    d.message().to_string(),
                ),
                other => ("-----".to_string(), other.to_string()),
            };
            RollbackError::Setup { sqlstate, message }
        })
}

/// The three outcomes of a proof, as the report and the rules read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ProofOutcome {
    /// Forward then rollback restored the catalog exactly (and the sample data when `data`).
    Proven {
        /// The data round trip ran on sample rows too.
        data: bool,
        /// Why the data round trip did not run or is partial, when it is.
        note: Option<String>,
    },
    /// The rollback ran and did not restore, or failed: every difference, one line each.
    Mismatch {
        /// The differences (catalog objects, the failing rollback statement).
        differences: Vec<String>,
    },
    /// The proof could not be carried out (the forward migration failed on the shadow, the
    /// shadow could not be set up, ...): why.
    NotProven {
        /// Why.
        reason: String,
    },
}

impl Proof {
    /// The proof's outcome: proven, mismatch (every difference) or not proven (why).
    pub fn outcome(&self) -> ProofOutcome {
        if let Some(e) = &self.forward_error {
            return ProofOutcome::NotProven {
                reason: format!("the forward migration failed on the shadow: {e}"),
            };
        }
        let mut differences: Vec<String> = self
            .mismatches
            .iter()
            .filter(|m| !m.column_order_only)
            .map(|m| m.to_string())
            .collect();
        if let Some(e) = &self.rollback_error {
            differences.insert(0, format!("the rollback failed on the shadow: {e}"));
        }
        if !differences.is_empty() {
            return ProofOutcome::Mismatch { differences };
        }
        ProofOutcome::Proven {
            data: self.rows_seeded > 0,
            note: (self.rows_seeded == 0).then(|| "no sample rows could be seeded".to_string()),
        }
    }
}

/// Options for [`prove`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProveOptions {
    /// The tenant schema the migration's unqualified names resolve to.
    pub schema: String,
    /// Rows to insert per table before the forward run (0 = structure only).
    pub sample_rows: usize,
    /// `statement_timeout` for everything run on the shadow.
    pub statement_timeout: String,
    /// Values known to be valid per `(table, column)` of the pre-migration schema (e.g. the
    /// shard's `pg_stats` most common values and histogram bounds), preferred by the sample rows
    /// over synthetic ones.
    pub value_hints: ValueHints,
    /// Real rows to load instead of generated ones (`--shadow-data sample`): SQL run after the
    /// setup (plain `INSERT`s, parents before children). `None`: generated sample rows.
    pub sample_data: Option<std::sync::Arc<str>>,
}

impl Default for ProveOptions {
    fn default() -> Self {
        ProveOptions {
            schema: "public".into(),
            sample_rows: 3,
            statement_timeout: "120s".into(),
            value_hints: ValueHints::new(),
            sample_data: None,
        }
    }
}

/// The pre-migration structure to load on the shadow.
#[derive(Debug, Clone, Copy)]
pub enum Setup<'a> {
    /// SQL run as one multi-statement string (e.g. `pg_dump --schema-only` output; no `COPY`
    /// data, no psql meta-commands).
    Sql(&'a str),
    /// A shard's introspected catalog, recreated statement by statement (extensions, types,
    /// sequences, functions, tables, constraints, indexes, triggers, views, comments).
    Catalog(&'a Catalog),
}

/// Which rollback to prove.
#[derive(Debug, Clone)]
pub enum RollbackSource<'a> {
    /// Generate it on the shadow from the forward migration and the catalog C0 taken there.
    Generate(Options),
    /// A rollback generated beforehand.
    Generated(&'a Rollback),
    /// A user-supplied rollback script (`--rollback-file`), parsed.
    Script(&'a Migration),
}

/// A column whose values did not survive forward → rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnLoss {
    /// Table.
    pub table: String,
    /// Column.
    pub column: String,
    /// Rows before the forward run.
    pub rows_before: usize,
    /// Values (of `rows_before`) not found again afterwards.
    pub values_lost: usize,
    /// What happened.
    pub reason: String,
}

/// The outcome of a proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// Forward and rollback both ran to the end on the shadow.
    pub tested: bool,
    /// Tested, and the catalog after the rollback equals the one before the migration (up to
    /// column order, see [`Mismatch::column_order_only`]).
    pub restored: bool,
    /// The forward statement that failed, if any (then the rollback was not run).
    pub forward_error: Option<SqlFailure>,
    /// The rollback statement that failed, if any.
    pub rollback_error: Option<SqlFailure>,
    /// Every difference between the catalog before the migration and after the rollback
    /// (`rollback-mismatch`). Also filled after a failed rollback (what state it left).
    pub mismatches: Vec<Mismatch>,
    /// Columns whose sample values did not survive the round trip.
    pub data_loss: Vec<ColumnLoss>,
    /// Sample rows inserted before the forward run.
    pub rows_seeded: usize,
    /// The rollback that was proven, when it was generated on the shadow.
    pub rollback: Option<Rollback>,
}

/// Prove a rollback: on a scratch database of `shadow`, load the pre-migration structure
/// (`setup`: SQL, or a shard's catalog), seed sample rows, take
/// catalog C0 of `options.schema`, run `forward`, run the rollback, take C2 and compare.
/// The scratch database is dropped whatever happens.
pub async fn prove(
    shadow: &Shadow,
    setup: Setup<'_>,
    forward: &Migration,
    rollback: RollbackSource<'_>,
    options: &ProveOptions,
) -> Result<Proof, RollbackError> {
    let db = Shadow::scratch_name();
    shadow.create_db(&db, None).await?;
    let result = prove_in(shadow, &db, setup, forward, rollback, options).await;
    let dropped = shadow.drop_db(&db).await;
    if dropped.is_ok() {
        shadow.drop_owner(&db).await;
    }
    let proof = result?;
    dropped?;
    Ok(proof)
}

async fn session(
    conn: &mut PgConnection,
    schema: &str,
    timeout: &str,
) -> Result<(), RollbackError> {
    let path = if schema == "public" {
        "public".to_string()
    } else {
        format!("{}, public", quote_ident(schema))
    };
    sqlx::query(
        "SELECT set_config('search_path', $1, false), set_config('statement_timeout', $2, false)",
    )
    .bind(path)
    .bind(timeout)
    .execute(&mut *conn)
    .await
    .map(|_| ())
    .map_err(|source| RollbackError::Database {
        action: "set search_path and statement_timeout".into(),
        source,
    })
}

async fn prove_in(
    shadow: &Shadow,
    db: &str,
    setup: Setup<'_>,
    forward: &Migration,
    rollback: RollbackSource<'_>,
    options: &ProveOptions,
) -> Result<Proof, RollbackError> {
    let mut conn = shadow.owner_session(db, setup).await?;
    session(&mut conn, &options.schema, &options.statement_timeout).await?;
    let c0 = introspect(&mut conn, &options.schema).await?;
    let s0 = CatalogSnapshot::from_topology(&c0);
    let rows_seeded = if options.sample_rows > 0 {
        seed_rows(
            &mut conn,
            &c0,
            options.sample_rows,
            &options.value_hints,
            forward,
        )
        .await
        .total()
    } else {
        0
    };
    let before = column_values(&mut conn, &s0).await?;
    let mut proof = Proof {
        tested: false,
        restored: false,
        forward_error: None,
        rollback_error: None,
        mismatches: Vec::new(),
        data_loss: Vec::new(),
        rows_seeded,
        rollback: None,
    };
    if let Err(f) = execute_migration(&mut conn, forward).await {
        proof.forward_error = Some(f);
        let _ = conn.close().await;
        return Ok(proof);
    }
    let result = match rollback {
        RollbackSource::Generate(o) => {
            let rb = generate(forward, &s0, &o);
            let r = execute_steps(&mut conn, &rb.steps).await;
            proof.rollback = Some(rb);
            r
        }
        RollbackSource::Generated(rb) => execute_steps(&mut conn, &rb.steps).await,
        RollbackSource::Script(m) => execute_migration(&mut conn, m).await,
    };
    if let Err(f) = result {
        proof.rollback_error = Some(f);
    }
    session(&mut conn, &options.schema, &options.statement_timeout).await?;
    let c2 = introspect(&mut conn, &options.schema).await?;
    proof.mismatches = mismatches(&c0, &c2);
    let after = column_values(&mut conn, &CatalogSnapshot::from_topology(&c2)).await?;
    proof.data_loss = compare_values(&before, &after);
    proof.tested = proof.rollback_error.is_none();
    proof.restored = proof.tested && proof.mismatches.iter().all(|m| m.column_order_only);
    let _ = conn.close().await;
    Ok(proof)
}

/// The exact catalog of `schema` on `conn` (topology's one introspection).
async fn introspect(conn: &mut PgConnection, schema: &str) -> Result<Catalog, RollbackError> {
    topology::catalog::introspect_schema_conn(conn, schema)
        .await
        .map_err(RollbackError::Catalog)
}

/// Options for [`prove_history`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryOptions {
    /// SQL run once on the empty database before the first migration (extensions, the tool's
    /// bookkeeping table).
    pub setup_sql: String,
    /// The schema migrations run in.
    pub schema: String,
    /// Options for the generated rollbacks.
    pub generate: Options,
    /// Skip proving the project's own down scripts.
    pub skip_upstream: bool,
    /// `statement_timeout` on the shadow.
    pub statement_timeout: String,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        HistoryOptions {
            setup_sql: String::new(),
            schema: "public".into(),
            generate: Options::default(),
            skip_upstream: false,
            statement_timeout: "120s".into(),
        }
    }
}

/// The proof of one migration of a history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The migration's name.
    pub name: String,
    /// The up script failed (the history stops there).
    pub up_error: Option<SqlFailure>,
    /// The project's own down script, run right after the up: `None` when there is none.
    pub upstream: Option<Proof>,
    /// The down script is empty or comments only.
    pub upstream_empty: bool,
    /// The generated rollback of the up, from the catalog before it.
    pub generated: Option<Proof>,
}

/// The proofs of a whole history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryReport {
    /// One entry per migration, in order.
    pub entries: Vec<HistoryEntry>,
}

fn parse(name: &str, sql: &str, in_tx: bool) -> Result<Migration, RollbackError> {
    let opts = ParseOptions {
        transaction_mode: if in_tx {
            TransactionMode::WrapFile
        } else {
            TransactionMode::Autocommit
        },
        ..Default::default()
    };
    migration_parser::parse(name, sql, &opts).map_err(|source| RollbackError::Parse {
        file: name.to_string(),
        source,
    })
}

fn failed_proof(f: SqlFailure) -> Proof {
    Proof {
        tested: false,
        restored: false,
        forward_error: None,
        rollback_error: Some(f),
        mismatches: Vec::new(),
        data_loss: Vec::new(),
        rows_seeded: 0,
        rollback: None,
    }
}

/// Replay a history of up/down pairs on one scratch database. For every migration: catalog C0,
/// up; then on a copy of the database (`CREATE DATABASE … TEMPLATE`) the project's down script,
/// compared with C0; and on another copy the rollback generated from the parsed up and C0,
/// compared with C0. The history continues from the state after the up. All scratch databases
/// are dropped. `progress` is called with each finished entry.
pub async fn prove_history(
    shadow: &Shadow,
    pairs: &[MigrationPair],
    options: &HistoryOptions,
    mut progress: impl FnMut(&HistoryEntry),
) -> Result<HistoryReport, RollbackError> {
    let main = Shadow::scratch_name();
    shadow.create_db(&main, None).await?;
    let result = history_in(shadow, &main, pairs, options, &mut progress).await;
    let dropped = shadow.drop_db(&main).await;
    let report = result?;
    dropped?;
    Ok(report)
}

async fn history_in(
    shadow: &Shadow,
    main: &str,
    pairs: &[MigrationPair],
    options: &HistoryOptions,
    progress: &mut dyn FnMut(&HistoryEntry),
) -> Result<HistoryReport, RollbackError> {
    if !options.setup_sql.trim().is_empty() {
        let mut conn = shadow.connect(main).await?;
        run_setup(&mut conn, &options.setup_sql).await?;
        let _ = conn.close().await;
    }
    let mut entries = Vec::new();
    for pair in pairs {
        let up = parse(&pair.name, &pair.up, pair.run_in_transaction)?;
        let mut conn = shadow.connect(main).await?;
        session(&mut conn, &options.schema, &options.statement_timeout).await?;
        let c0 = introspect(&mut conn, &options.schema).await?;
        let up_result = execute_migration(&mut conn, &up).await;
        let _ = conn.close().await;
        let mut entry = HistoryEntry {
            name: pair.name.clone(),
            up_error: None,
            upstream: None,
            upstream_empty: false,
            generated: None,
        };
        if let Err(f) = up_result {
            entry.up_error = Some(f);
            progress(&entry);
            entries.push(entry);
            break;
        }
        if let (Some(down), false) = (&pair.down, options.skip_upstream) {
            let proof = match parse(
                &format!("{}/down", pair.name),
                down,
                pair.run_in_transaction,
            ) {
                Ok(m) if pair.run_in_transaction => {
                    // A transactional down runs inside BEGIN ... ROLLBACK on the main database:
                    // exactly as the tool runs it, without copying the database.
                    entry.upstream_empty = m.statements.is_empty();
                    let stmts: Vec<(usize, u32, String)> = m
                        .statements
                        .iter()
                        .map(|s| (s.index, s.span.line, s.sql.clone()))
                        .collect();
                    in_rolled_back_tx(shadow, main, options, &c0, &stmts).await?
                }
                Ok(m) => {
                    entry.upstream_empty = m.statements.is_empty();
                    on_copy(shadow, main, options, &c0, |conn| {
                        Box::pin(async move { execute_migration(conn, &m).await })
                    })
                    .await?
                }
                Err(e) => failed_proof(SqlFailure {
                    statement: 0,
                    line: 0,
                    sql: String::new(),
                    sqlstate: None,
                    message: e.to_string(),
                }),
            };
            entry.upstream = Some(proof);
        }
        let rb = generate(&up, &c0, &options.generate);
        let steps = rb.steps.clone();
        // Without CONCURRENTLY steps the whole script can run in one transaction that is rolled
        // back on the main database (same catalog effect as its separate transactions); with
        // them it runs as written on a copy.
        let transactional = rb
            .statements
            .iter()
            .all(|s| s.placement != crate::Placement::NoTransaction);
        let mut proof = if transactional {
            let stmts: Vec<(usize, u32, String)> = steps
                .iter()
                .enumerate()
                .filter(|(_, s)| *s != "BEGIN" && *s != "COMMIT")
                .map(|(i, s)| (i, 0, s.clone()))
                .collect();
            in_rolled_back_tx(shadow, main, options, &c0, &stmts).await?
        } else {
            on_copy(shadow, main, options, &c0, |conn| {
                Box::pin(async move { execute_steps(conn, &steps).await })
            })
            .await?
        };
        proof.rollback = Some(rb);
        entry.generated = Some(proof);
        progress(&entry);
        entries.push(entry);
    }
    Ok(HistoryReport { entries })
}

/// Run a migration's statements after `BEGIN` on `main`, introspect, and roll back.
async fn in_rolled_back_tx(
    shadow: &Shadow,
    main: &str,
    options: &HistoryOptions,
    c0: &Catalog,
    statements: &[(usize, u32, String)],
) -> Result<Proof, RollbackError> {
    let mut conn = shadow.connect(main).await?;
    session(&mut conn, &options.schema, &options.statement_timeout).await?;
    let db = |action: &str, source: sqlx::Error| RollbackError::Database {
        action: action.to_string(),
        source,
    };
    sqlx::raw_sql("BEGIN")
        .execute(&mut conn)
        .await
        .map_err(|e| db("begin", e))?;
    let mut failed = None;
    for (index, line, sql) in statements {
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
        {
            let (sqlstate, message) = match &e {
                sqlx::Error::Database(d) => {
                    (d.code().map(|c| c.into_owned()), d.message().to_string())
                }
                other => (None, other.to_string()),
            };
            failed = Some(SqlFailure {
                statement: *index,
                line: *line,
                sql: sql
                    .trim()
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(120)
                    .collect(),
                sqlstate,
                message,
            });
            break;
        }
    }
    if failed.is_some() {
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut conn)
            .await
            .map_err(|e| db("rollback", e))?;
    }
    // Inside the still open transaction when the statements ran: the catalog they left.
    let c2 = if failed.is_some() {
        introspect(&mut conn, &options.schema).await?
    } else {
        topology::catalog::introspect_schema_in_transaction(&mut conn, &options.schema)
            .await
            .map_err(RollbackError::Catalog)?
    };
    if failed.is_none() {
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut conn)
            .await
            .map_err(|e| db("rollback", e))?;
    }
    let _ = conn.close().await;
    let mismatches = mismatches(c0, &c2);
    let tested = failed.is_none();
    Ok(Proof {
        tested,
        restored: tested && mismatches.iter().all(|m| m.column_order_only),
        forward_error: None,
        rollback_error: failed,
        mismatches,
        data_loss: Vec::new(),
        rows_seeded: 0,
        rollback: None,
    })
}

type StepFuture<'c> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), SqlFailure>> + Send + 'c>>;

/// Copy `main`, run `f` on the copy, compare its catalog with `c0`, drop the copy.
async fn on_copy<F>(
    shadow: &Shadow,
    main: &str,
    options: &HistoryOptions,
    c0: &Catalog,
    f: F,
) -> Result<Proof, RollbackError>
where
    F: for<'c> FnOnce(&'c mut PgConnection) -> StepFuture<'c>,
{
    let copy = Shadow::scratch_name();
    shadow.create_db(&copy, Some(main)).await?;
    let inner = async {
        let mut conn = shadow.connect(&copy).await?;
        session(&mut conn, &options.schema, &options.statement_timeout).await?;
        let r = f(&mut conn).await;
        session(&mut conn, &options.schema, &options.statement_timeout).await?;
        let c2 = introspect(&mut conn, &options.schema).await?;
        let _ = conn.close().await;
        let mismatches = mismatches(c0, &c2);
        let tested = r.is_ok();
        Ok::<Proof, RollbackError>(Proof {
            tested,
            restored: tested && mismatches.iter().all(|m| m.column_order_only),
            forward_error: None,
            rollback_error: r.err(),
            mismatches,
            data_loss: Vec::new(),
            rows_seeded: 0,
            rollback: None,
        })
    }
    .await;
    let dropped = shadow.drop_db(&copy).await;
    let p = inner?;
    dropped?;
    Ok(p)
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

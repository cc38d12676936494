//! `deployclaw rollback generate` (and `rollback prove`, in `rollback_prove.rs`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use sqlx::Connection as _;
use topology::catalog::Catalog;

use crate::exit;

/// Rollback subcommands.
#[derive(Debug, Subcommand)]
pub enum RollbackCommand {
    /// Print the generated rollback of a migration against a shard's catalog.
    #[command(after_help = super::help::ROLLBACK_GENERATE)]
    Generate(GenerateArgs),
    /// Replay a migrations directory on a throw-away PostgreSQL and prove every down script
    /// (and the generated rollback of every migration) against the catalog before it.
    #[command(after_help = super::help::ROLLBACK_PROVE)]
    Prove(super::rollback_prove::ProveArgs),
}

/// Arguments of `deployclaw rollback generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The migration file.
    #[arg(long)]
    pub sql_file: PathBuf,
    /// Read the pre-migration catalog from this instance (postgres:// URL or libpq key=value
    /// pairs; without a password, PGPASSWORD or the password file applies).
    #[arg(long, conflicts_with = "schema_file")]
    pub target_db: Option<String>,
    /// Read the pre-migration catalog from a schema dump (`pg_dump --schema-only` output),
    /// loaded into an ephemeral PostgreSQL.
    #[arg(long)]
    pub schema_file: Option<PathBuf>,
    /// The tenant schema whose catalog is used (default: the first schema matching
    /// --tenant-schemas, else `public`).
    #[arg(long)]
    pub schema: Option<String>,
    /// Tenant schema pattern used to pick a shard when --schema is not given.
    #[arg(long, default_value = "tenant_*")]
    pub tenant_schemas: String,
    /// Configuration file (transaction mode, PostgreSQL version).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Run a rollback subcommand.
pub fn run(c: RollbackCommand) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deployclaw: {e}");
            return exit::INPUT;
        }
    };
    let code = match c {
        RollbackCommand::Generate(a) => rt.block_on(generate(a)),
        RollbackCommand::Prove(a) => rt.block_on(super::rollback_prove::prove(a)),
    };
    topology::ephemeral::cleanup_all();
    code
}

async fn generate(a: GenerateArgs) -> i32 {
    let config = match super::validate::load_config(a.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("deployclaw: {e}");
            return exit::INPUT;
        }
    };
    for file in std::iter::once(&a.sql_file).chain(a.schema_file.as_ref()) {
        if let Err(code) = super::check_input_file(file) {
            return code;
        }
    }
    let migration = match deployclaw::pipeline::load_migration(&a.sql_file, &config) {
        Ok((m, _)) => m,
        Err(e) => {
            eprintln!("deployclaw: {e}");
            return exit::INPUT;
        }
    };
    let snapshot = match (&a.target_db, &a.schema_file) {
        (Some(url), None) => {
            let spec = match super::connection_flag("--target-db", url) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match from_spec(spec, a.schema.as_deref(), &a.tenant_schemas).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("deployclaw: {e}");
                    return exit::UNREACHABLE;
                }
            }
        }
        (None, Some(file)) => {
            match from_dump(file, a.schema.as_deref().unwrap_or("public")).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("deployclaw: {e}");
                    return exit::INPUT;
                }
            }
        }
        _ => {
            eprintln!(
                "deployclaw: give the pre-migration catalog with --target-db URL or --schema-file DUMP"
            );
            return exit::INPUT;
        }
    };
    let rb = rollback::generate(&migration, &snapshot, &rollback::Options::default());
    println!("{}", rb.script.trim_end());
    for i in &rb.irreversible {
        eprintln!(
            "deployclaw: {}:{}:{}: irreversible: {} ({})",
            a.sql_file.display(),
            i.line,
            i.column,
            i.sql,
            i.reason
        );
    }
    exit::GREEN
}

async fn from_spec(
    spec: topology::ConnectionSpec,
    schema: Option<&str>,
    pattern: &str,
) -> anyhow::Result<Catalog> {
    let schema = match schema {
        Some(s) => s.to_owned(),
        None => {
            let instance = topology::Instance {
                name: "target".into(),
                connection: spec.clone(),
                labels: Default::default(),
                replica_of: None,
            };
            let shards = topology::discover_on_instance(
                &instance,
                &topology::DiscoverySpec::schemas(pattern),
            )
            .await?;
            shards
                .first()
                .map(|s| s.location.schema().to_owned())
                .unwrap_or_else(|| "public".to_owned())
        }
    };
    let mut conn = spec.connect("target").await?;
    let snap = topology::catalog::introspect_schema_conn(&mut conn, &schema).await?;
    let _ = conn.close().await;
    Ok(snap)
}

async fn from_dump(file: &std::path::Path, schema: &str) -> anyhow::Result<Catalog> {
    if !file.is_file() {
        anyhow::bail!("{}: no such file", file.display());
    }
    let pg = topology::ephemeral::EphemeralPg::start_async(
        topology::ephemeral::EphemeralOptions::shadow(),
    )
    .await?;
    let home = topology::child::PrivateHome::new()?;
    let mut psql = topology::child::command(pg.bin_dir().join("psql"), home.path());
    psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &pg.url(), "-f"]);
    let res = tokio::process::Command::from(psql)
        .arg(file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .await?;
    if !res.status.success() {
        anyhow::bail!(
            "{}: loading the schema dump failed: {}",
            file.display(),
            String::from_utf8_lossy(&res.stderr)
                .lines()
                .next()
                .unwrap_or("")
        );
    }
    let mut conn = sqlx::PgConnection::connect_with(&pg.connect_options("postgres")).await?;
    let snap = topology::catalog::introspect_schema_conn(&mut conn, schema).await?;
    let _ = conn.close().await;
    Ok(snap)
}

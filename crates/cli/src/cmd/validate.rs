//! `deployclaw validate-migration` and `deployclaw demo`: the whole gate.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use deployclaw::PipelineError;
use deployclaw::fleet_source::{FleetRequest, FleetTarget, resolve_fleet};
use deployclaw::pipeline::{MigrationSource, ValidateOptions, validate};
use gates::{Config, Gate, Registry};
use report::ValidationReport;
use report::render::{MarkdownOptions, TerminalOptions};
use simulator::{CancelToken, RehearsalMode, SampleLimits, ShadowData};
use topology::DiscoverySpec;

use crate::exit;
use crate::progress::CliProgress;

/// How the report is printed on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A terminal summary.
    Text,
    /// The JSON report.
    Json,
    /// Markdown for a pull-request comment.
    Markdown,
    /// Self-contained HTML.
    Html,
    /// SARIF 2.1.0 of the static findings.
    Sarif,
    /// JUnit XML, one test case per shard.
    Junit,
}

/// Where the migration is rehearsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Rehearse {
    /// On a shadow copy (ephemeral cluster, or `--shadow URL`).
    Shadow,
    /// On the target inside a transaction that is always rolled back (opt-in).
    InPlace,
    /// No rehearsal, probes only.
    None,
}

/// Which rows the shadow holds (`--shadow-data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShadowDataArg {
    /// No real row leaves the shard: empty tables in the rehearsal, synthetic rows in the proof.
    Synthetic,
    /// Opt-in: a bounded, FK-closed sample of each rehearsed shard's real rows is copied into
    /// the shadow (and the rollback proof's shadow), never into the report.
    Sample,
}

/// Where the data probes run (`--probe-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbeOnArg {
    /// On each shard's own instance.
    Writer,
    /// On a read replica of each shard's writer (`replica_of`, RDS read replicas, Aurora
    /// readers) within `[probes] max_replica_lag`; otherwise on the writer, said in a finding.
    Replica,
}

impl ProbeOnArg {
    /// The simulator's value.
    fn probe_on(self) -> simulator::ProbeOn {
        match self {
            ProbeOnArg::Writer => simulator::ProbeOn::Writer,
            ProbeOnArg::Replica => simulator::ProbeOn::Replica,
        }
    }
}

/// The fleet in one line on stderr; with read replicas as the seed's log says it ("Found 100
/// tenant shards across 3 reader replicas").
fn announce_fleet(fleet: &topology::Fleet, source: &str) {
    if fleet.replica_count() > 0 {
        eprintln!("deployclaw: {} from {source}", fleet.summary_line());
    } else {
        eprintln!(
            "deployclaw: {} shards on {} instance(s) from {source}",
            fleet.shards.len(),
            fleet.instances.len()
        );
    }
}

/// Arguments of `deployclaw validate-migration`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The migration file (`-`: standard input, named `<stdin>` in the report), or a
    /// migrations directory of a known layout: its newest migration (or --migration) is
    /// validated, and its down script proven as the rollback.
    #[arg(long)]
    pub sql_file: PathBuf,
    /// With a migrations directory: the migration to validate (name or version) instead of
    /// the newest.
    #[arg(long, value_name = "NAME")]
    pub migration: Option<String>,
    /// The fleet: a postgres:// URL or libpq key=value pairs (without a password: PGPASSWORD,
    /// else the password file PGPASSFILE / ~/.pgpass), a topology file, or an RDS
    /// cluster/instance identifier.
    #[arg(long)]
    pub target_db: Option<String>,
    /// A topology file (same as --target-db FILE).
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// Schema-per-tenant: tenant schemas matching this pattern (glob, e.g. `tenant_*`).
    #[arg(long)]
    pub tenant_schemas: Option<String>,
    /// Database-per-tenant: tenant databases matching this pattern.
    #[arg(long)]
    pub tenant_databases: Option<String>,
    /// Validate at most N shards (round-robin over the instances).
    #[arg(long)]
    pub tenant_shards: Option<usize>,
    /// RDS flags.
    #[command(flatten)]
    pub aws: super::aws::AwsArgs,
    /// Generate the rollback and prove it on the shadow.
    #[arg(long)]
    pub validate_rollback: bool,
    /// Prove this rollback script instead of the generated one.
    #[arg(long)]
    pub rollback_file: Option<PathBuf>,
    /// Issue an approval token for the deploy step (signed with --sign-key).
    #[arg(long)]
    pub generate_safety_gates: bool,
    /// A scratch server for the shadow (instead of an ephemeral cluster): a URL or libpq
    /// key=value pairs.
    #[arg(long)]
    pub shadow: Option<String>,
    /// Where to rehearse.
    #[arg(long, value_enum, default_value_t = Rehearse::Shadow)]
    pub rehearse: Rehearse,
    /// Which rows the shadow holds [default: `[shadow] data` of the config, else synthetic].
    /// `sample` copies real rows of the shard into the shadow: for migrations whose outcome
    /// depends on real values (an INSERT referencing an existing parent row).
    #[arg(long, value_enum, value_name = "KIND")]
    pub shadow_data: Option<ShadowDataArg>,
    /// Rows per table of `--shadow-data sample`, in primary-key order; parent rows the sampled
    /// rows reference are added past it [default: `[shadow] sample_rows`, else 1000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub shadow_sample_rows: Option<u32>,
    /// Bytes of the whole `--shadow-data sample` [default: `[shadow] sample_bytes`, else 64 MiB].
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub shadow_sample_bytes: Option<u64>,
    /// Where the data probes run [default: `[probes] probe_on` of the config, else writer].
    /// `replica`: on a read replica of each writer; the writer gets only catalog and activity
    /// reads.
    #[arg(long, value_enum, value_name = "WHERE")]
    pub probe_on: Option<ProbeOnArg>,
    /// Connections per instance.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u32,
    /// Blocking-lock budget per shard, in milliseconds.
    #[arg(long)]
    pub lock_budget_ms: Option<u64>,
    /// Sample the traffic on the tables the migration locks twice at least this far apart, in
    /// milliseconds, to say how many writes (and reads) would queue behind each long lock
    /// [default: `[live] traffic_window_ms` of the config, else 1000]; 0 = no sampling.
    #[arg(long, value_name = "MS")]
    pub traffic_window_ms: Option<u64>,
    /// Write every rendering of the report (json, md, html, sarif, junit, rollback.sql) here
    /// (default: `./deployclaw-report`, printed).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// What to print on standard output.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Ed25519 signing key file (see `deployclaw keygen`).
    #[arg(long)]
    pub sign_key: Option<PathBuf>,
    /// Configuration file (default: ./deployclaw.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A YELLOW fleet exits 0.
    #[arg(long)]
    pub allow_yellow: bool,
    /// PostgreSQL major version for the static rules (default: from the config, else 15).
    #[arg(long)]
    pub pg_version: Option<u32>,
    /// Validity of the approval token, in hours.
    #[arg(long, default_value_t = 24)]
    pub token_hours: i64,
    /// Refuse a migration of more statements than this (exit 3) [default: `[limits]
    /// max_statements` of the config, else 10000]. Every statement is rehearsed and reported
    /// on every shard, so time and memory grow with it; `deployclaw lint` has no limit.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_statements: Option<u64>,
    /// Validate only partition K of N: the shards whose id hashes (SHA-256) to K. The report is
    /// partial (`fleet.partition`); combine the N parts with `deployclaw report merge`.
    #[arg(long, value_name = "K/N")]
    pub partition: Option<report::Partition>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Machine-local caches of `validate-migration` and `demo`: the shadow cluster's `initdb`
/// template and its throughput calibration (`deployclaw::cache`).
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Directory for deployclaw's caches. Default: $XDG_CACHE_HOME/deployclaw, else
    /// ~/.cache/deployclaw.
    #[arg(long, env = "DEPLOYCLAW_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Use no cache: run initdb for the shadow and calibrate on every run.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// Measure the shadow's throughput again even if a recent calibration is cached.
    #[arg(long)]
    pub recalibrate: bool,
}

impl CacheArgs {
    /// The cache directory to use, `None` with `--no-cache` or when no home is known.
    pub fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        if let Some(d) = &self.cache_dir {
            return Some(d.clone());
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .map(|h| h.join(".cache"))
            })?;
        Some(base.join("deployclaw"))
    }
}

/// `--shadow-data` and its bounds over the configuration's `[shadow]` section; a sample is
/// announced on standard error (real rows will be read).
fn shadow_data(a: &ValidateArgs, config: &gates::ShadowConfig) -> ShadowData {
    let sample = match a.shadow_data {
        Some(ShadowDataArg::Sample) => true,
        Some(ShadowDataArg::Synthetic) => false,
        None => config.data == Some(gates::ShadowDataKind::Sample),
    };
    if !sample {
        return ShadowData::Synthetic;
    }
    let d = SampleLimits::default();
    let rows = a
        .shadow_sample_rows
        .or(config.sample_rows)
        .unwrap_or(d.rows_per_table);
    eprintln!(
        "deployclaw: --shadow-data sample: up to {rows} rows per table of each rehearsed shard are copied into the shadow"
    );
    ShadowData::Sample(SampleLimits {
        rows_per_table: rows,
        max_bytes: a
            .shadow_sample_bytes
            .or(config.sample_bytes)
            .unwrap_or(d.max_bytes),
    })
}

/// Where the ephemeral shadow goes: an explicit `TMPDIR` wins (the user chose where temporary
/// files live); otherwise the library's choice (a RAM-backed directory when there is one).
fn shadow_base_dir(library_choice: Option<PathBuf>) -> Option<PathBuf> {
    match std::env::var_os("TMPDIR") {
        Some(t) if !t.is_empty() => None,
        _ => library_choice,
    }
}

/// Arguments of `deployclaw demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Tenant schemas to create.
    #[arg(long, default_value_t = 100)]
    pub tenants: usize,
    /// Ephemeral instances.
    #[arg(long, default_value_t = 3)]
    pub instances: usize,
    /// Where the report files go.
    #[arg(long, default_value = "deployclaw-demo-report")]
    pub report_dir: PathBuf,
    /// What to print on standard output.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Cancel on Ctrl-C; clusters this process started are removed by their owners' Drop and, as
/// a last resort, by `cleanup_all` at exit.
fn install_ctrl_c(cancel: CancelToken) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("deployclaw: interrupted, cancelling (cleaning up shadows and connections)");
            cancel.cancel();
            // A second Ctrl-C exits at once, after removing ephemeral clusters.
            if tokio::signal::ctrl_c().await.is_ok() {
                topology::ephemeral::cleanup_all();
                std::process::exit(130);
            }
        }
    });
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub(crate) fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let path = match path {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from("deployclaw.toml")).filter(|p| p.is_file()),
    };
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = deployclaw::input::read_capped_to_string(&path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    let config = Config::from_toml_str(&path.display().to_string(), &text)?;
    Ok(config)
}

/// The message of an error reading the migration, with what to do about a statement limit.
fn input_error_message(e: &PipelineError) -> String {
    match e {
        PipelineError::Parse(migration_parser::ParseError::TooManyStatements { .. }) => format!(
            "{e}\n  validate-migration rehearses and reports every statement on every shard, so its time and \
             memory grow with each one.\n  Split the migration, or raise the limit with --max-statements N or \
             `[limits] max_statements = N` in deployclaw.toml; `deployclaw lint` checks files of any size."
        ),
        e => e.to_string(),
    }
}

fn pipeline_exit(e: &PipelineError) -> i32 {
    match e {
        PipelineError::Cancelled => 130,
        e if e.is_unreachable() => exit::UNREACHABLE,
        // A custom probe that may not run is an input error, not an unreachable fleet.
        PipelineError::Simulator(deployclaw::simulator::SimError::UnsafeCustomProbe { .. }) => {
            exit::INPUT
        }
        PipelineError::Simulator(_) => exit::UNREACHABLE,
        _ => exit::INPUT,
    }
}

/// `deployclaw validate-migration`.
pub fn run(a: ValidateArgs) -> i32 {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deployclaw: {e}");
            return exit::INPUT;
        }
    };
    let code = rt.block_on(run_async(a));
    topology::ephemeral::cleanup_all();
    code
}

async fn run_async(a: ValidateArgs) -> i32 {
    let mut config = match load_config(a.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("deployclaw: {e}");
            return exit::INPUT;
        }
    };
    if let Some(v) = a.pg_version {
        if !(11..=17).contains(&v) {
            eprintln!("deployclaw: --pg-version {v} is not supported (11–17)");
            return exit::INPUT;
        }
        config.pg_version = Some(migration_parser::PgVersion(v));
    }
    let registry = match Registry::for_config(&config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("deployclaw: {e}");
            return exit::INPUT;
        }
    };
    if let Err(e) = registry.check_config(&config) {
        eprintln!("deployclaw: {e}");
        return exit::INPUT;
    }
    let (migration, dir_rollback) = match migration_source(&a) {
        Ok(s) => s,
        Err(code) => return code,
    };
    tool_transaction_mode(&mut config, &dir_rollback);
    // Input errors before any connection: the shadow's connection string.
    let shadow = match a
        .shadow
        .as_deref()
        .map(|u| super::connection_flag("--shadow", u))
    {
        Some(Ok(c)) => Some(c),
        Some(Err(code)) => return code,
        None => None,
    };
    if let Some(n) = a.max_statements {
        config.limits.max_statements = usize::try_from(n).unwrap_or(usize::MAX);
    }
    // The migration is read (up to the statement limit) before any shard is contacted: an
    // input that is too large, binary or unterminated is an input error, never the fleet's.
    if let Err(e) = deployclaw::pipeline::load_source_for_gate(&migration, &config) {
        eprintln!("deployclaw: {}", input_error_message(&e));
        return pipeline_exit(&e);
    }
    // Fleet.
    let target = match (&a.target_db, &a.topology) {
        (_, Some(t)) => FleetTarget::Topology(t.clone()),
        (Some(t), None) => match FleetTarget::classify(t) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("deployclaw: {e}");
                return exit::INPUT;
            }
        },
        (None, None) => {
            eprintln!(
                "deployclaw: give the fleet with --target-db URL|TOPOLOGY|RDS-ID or --topology FILE"
            );
            return exit::INPUT;
        }
    };
    let mut target = target;
    if let Err(e) = a.aws.apply(&mut target) {
        eprintln!("deployclaw: {e}");
        return exit::INPUT;
    }
    let discovery = match discovery(&a) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let req = FleetRequest {
        target,
        discovery,
        max_shards: a.tenant_shards,
    };
    let (fleet, source) = match resolve_fleet(&req).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("deployclaw: {e}");
            return pipeline_exit(&e);
        }
    };
    announce_fleet(&fleet, &source);

    // Options.
    let mut opts = match migration {
        MigrationSource::Text { name, sql } => ValidateOptions::from_sql(name, sql),
        _ => ValidateOptions::new(&a.sql_file),
    };
    opts.config = config;
    opts.fleet_source = source;
    opts.rollback = match (&a.rollback_file, dir_rollback) {
        (Some(f), _) => Some(MigrationSource::File(f.clone())),
        (None, Some((down, _))) => down,
        (None, None) => None,
    };
    opts.validate_rollback = a.validate_rollback || opts.rollback.is_some();
    opts.policy.allow_yellow = a.allow_yellow;
    opts.lock_budget_ms = a.lock_budget_ms;
    opts.traffic_window = a.traffic_window_ms.map(Duration::from_millis);
    opts.cache_dir = a.cache.dir();
    opts.recalibrate = a.cache.recalibrate;
    opts.shadow_base_dir = shadow_base_dir(opts.shadow_base_dir);
    opts.sim.concurrency = a.concurrency.max(1);
    opts.sim.rehearsal = match a.rehearse {
        Rehearse::Shadow => RehearsalMode::Shadow,
        Rehearse::InPlace => RehearsalMode::InPlace,
        Rehearse::None => RehearsalMode::Skip,
    };
    opts.sim.shadow = shadow;
    opts.shadow_data = Some(shadow_data(&a, &opts.config.shadow));
    opts.probe_on = a.probe_on.map(ProbeOnArg::probe_on);
    opts.partition = a.partition;
    let sign_key = match load_sign_key(&a) {
        Ok(k) => k,
        Err(code) => return code,
    };

    let cancel = CancelToken::new();
    install_ctrl_c(cancel.clone());
    let progress = Arc::new(CliProgress::new());
    let result = validate(&opts, &fleet, progress.as_ref(), &cancel).await;
    progress.finish();
    let mut report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("deployclaw: {}", input_error_message(&e));
            return pipeline_exit(&e);
        }
    };
    let report_dir = a
        .report_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_REPORT_DIR));
    if let Err(code) = token_and_signature(&a, &report_dir, sign_key.as_ref(), &mut report) {
        return code;
    }
    finish(&report, Some(&report_dir), a.format, a.allow_yellow)
}

/// The `--sign-key` file (unreadable or malformed: an input error).
fn load_sign_key(a: &ValidateArgs) -> Result<Option<report::SigningKey>, i32> {
    a.sign_key
        .as_ref()
        .map(|p| {
            report::load_signing_key(p).map_err(|e| {
                eprintln!("deployclaw: {e}");
                exit::INPUT
            })
        })
        .transpose()
}

/// `--tenant-schemas` or `--tenant-databases` (not both: an input error).
fn discovery(a: &ValidateArgs) -> Result<Option<DiscoverySpec>, i32> {
    match (&a.tenant_schemas, &a.tenant_databases) {
        (Some(_), Some(_)) => {
            eprintln!("deployclaw: give either --tenant-schemas or --tenant-databases, not both");
            Err(exit::INPUT)
        }
        (Some(p), None) => Ok(Some(DiscoverySpec::schemas(p.clone()))),
        (None, Some(p)) => Ok(Some(DiscoverySpec::databases(p.clone()))),
        (None, None) => Ok(None),
    }
}

/// A migration picked from a directory runs as its tool runs it (in a transaction or not),
/// unless the configuration says.
fn tool_transaction_mode(config: &mut Config, pick: &DirPick) {
    if let Some((_, Some(mode))) = pick
        && config.transaction_mode.is_none()
    {
        config.transaction_mode = Some(*mode);
    }
}

/// What a migrations directory adds: the picked migration's down script and how its tool runs it.
type DirPick = Option<(
    Option<MigrationSource>,
    Option<migration_parser::TransactionMode>,
)>;

/// The migration to gate: the file, (`--sql-file -`) standard input read once with the same
/// cap as a file, or the migration picked from a directory with its down script; the files
/// (and `--rollback-file`) checked before any connection.
fn migration_source(a: &ValidateArgs) -> Result<(MigrationSource, DirPick), i32> {
    if let Some(file) = &a.rollback_file {
        super::check_input_file(file)?;
    }
    if a.sql_file.is_dir() {
        let picked = super::migration_dir::pick(&a.sql_file, a.migration.as_deref())?;
        return Ok((
            picked.migration,
            Some((picked.rollback, Some(picked.transaction_mode))),
        ));
    }
    if a.migration.is_some() {
        eprintln!("deployclaw: --migration needs --sql-file to be a migrations directory");
        return Err(exit::INPUT);
    }
    let source = if a.sql_file.as_os_str() == "-" {
        let sql = read_stdin_sql().map_err(|msg| {
            eprintln!("{msg}");
            exit::INPUT
        })?;
        MigrationSource::Text {
            name: STDIN_NAME.into(),
            sql,
        }
    } else {
        super::check_input_file(&a.sql_file)?;
        MigrationSource::File(a.sql_file.clone())
    };
    Ok((source, None))
}

/// Where `validate-migration` writes its reports without `--report-dir` (printed).
const DEFAULT_REPORT_DIR: &str = "deployclaw-report";

/// The name standard input gets in diagnostics and the report.
const STDIN_NAME: &str = "<stdin>";

/// The migration from standard input, capped like a file; not UTF-8 → an input error at its
/// line and column.
fn read_stdin_sql() -> Result<String, String> {
    let buf = gates::input::read_capped_from(std::io::stdin().lock())
        .map_err(|e| format!("{STDIN_NAME}: error: cannot read standard input: {e}"))?;
    String::from_utf8(buf).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        let col = at
            - bytes[..at]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        format!("{STDIN_NAME}:{line}:{col}: error: the migration is not valid UTF-8")
    })
}

/// Issue the approval token (`--generate-safety-gates`) and sign the report (`--sign-key`).
fn token_and_signature(
    a: &ValidateArgs,
    report_dir: &Path,
    sign_key: Option<&report::SigningKey>,
    out: &mut ValidationReport,
) -> Result<(), i32> {
    if a.generate_safety_gates {
        match sign_key {
            Some(k) => match report::issue_token(
                out,
                k,
                chrono::Utc::now(),
                chrono::Duration::hours(a.token_hours),
            ) {
                Ok(t) => out.approval_token = Some(t),
                Err(e) => {
                    eprintln!("deployclaw: {e}");
                    return Err(exit::INPUT);
                }
            },
            None => eprintln!(
                "deployclaw: no --sign-key: safety gates computed, no approval token issued"
            ),
        }
    }
    // The `output` block (report and rollback paths, compact token) is covered by the signature.
    out.set_output(Some(report_dir));
    if let Some(k) = sign_key
        && let Err(e) = report::sign(out, k)
    {
        eprintln!("deployclaw: {e}");
        return Err(exit::INPUT);
    }
    Ok(())
}

/// Print the report, write the report dir, and compute the exit code.
pub(crate) fn finish(
    report: &ValidationReport,
    dir: Option<&Path>,
    format: ReportFormat,
    allow_yellow: bool,
) -> i32 {
    if let Some(dir) = dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("deployclaw: {}: {e}", dir.display());
            return exit::INPUT;
        }
        match report::render::write_all(report, dir) {
            Ok(files) => {
                for f in files {
                    eprintln!("deployclaw: wrote {}", f.display());
                }
            }
            Err(e) => {
                eprintln!("deployclaw: {e}");
                return exit::INPUT;
            }
        }
    }
    let out = match format {
        ReportFormat::Text => Ok(report::render::terminal(
            report,
            &TerminalOptions {
                color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
                ..TerminalOptions::default()
            },
        )),
        ReportFormat::Json => report::render::json(report),
        ReportFormat::Markdown => Ok(report::render::markdown(
            report,
            &MarkdownOptions::default(),
        )),
        ReportFormat::Html => Ok(report::render::html(report)),
        ReportFormat::Sarif => {
            report::render::sarif(report, &report::render::SarifOptions::default())
        }
        ReportFormat::Junit => Ok(report::render::junit(
            report,
            &report::render::JunitOptions::default(),
        )),
    };
    match out {
        Ok(s) => println!("{s}"),
        Err(e) => {
            eprintln!("deployclaw: {e}");
            return exit::INPUT;
        }
    }
    gate_exit(report, allow_yellow)
}

/// Exit code of a report: 0 green, 1 yellow (0 with allow_yellow), 2 red, 4 when every shard
/// was unreachable.
fn gate_exit(report: &ValidationReport, allow_yellow: bool) -> i32 {
    let all_unreachable = !report.shards.is_empty()
        && report
            .shards
            .iter()
            .all(|s| s.findings.iter().any(|f| f.rule == "shard-unreachable"));
    if all_unreachable {
        return exit::UNREACHABLE;
    }
    match report.gate {
        Gate::Green => exit::GREEN,
        Gate::Yellow if allow_yellow => exit::GREEN,
        Gate::Yellow => exit::YELLOW,
        Gate::Red => exit::RED,
    }
}

/// `deployclaw demo`.
pub fn demo(a: DemoArgs) -> i32 {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deployclaw: {e}");
            return exit::INPUT;
        }
    };
    let code = rt.block_on(async {
        let cancel = CancelToken::new();
        install_ctrl_c(cancel.clone());
        let opts = deployclaw::demo::DemoOptions {
            tenants: a.tenants,
            instances: a.instances,
            report_dir: a.report_dir.clone(),
            cache_dir: a.cache.dir(),
            recalibrate: a.cache.recalibrate,
            shadow_base_dir: shadow_base_dir(deployclaw::pipeline::default_shadow_base_dir()),
            ..Default::default()
        };
        eprintln!(
            "deployclaw demo: starting {} ephemeral PostgreSQL instances with {} tenant schemas (planted problems on {} of them)",
            opts.instances,
            opts.tenants,
            deployclaw::demo::demo_plants(opts.tenants, opts.large_tenant_events).len()
        );
        let progress = CliProgress::new();
        let started = std::time::Instant::now();
        let result = deployclaw::demo::run_demo(&opts, &progress, &cancel).await;
        progress.finish();
        match result {
            Ok((report, files)) => {
                for f in &files {
                    eprintln!("deployclaw demo: wrote {}", f.display());
                }
                eprintln!("deployclaw demo: done in {:.1} s", started.elapsed().as_secs_f64());
                // The demo ran: exit 0. The gate it shows is printed; `validate-migration`
                // keeps the gate exit codes.
                match finish(&report, None, a.format, false) {
                    exit::INPUT => exit::INPUT,
                    code => {
                        eprintln!(
                            "deployclaw demo: gate {} (validate-migration would exit {code})",
                            report.gate
                        );
                        exit::GREEN
                    }
                }
            }
            Err(e) => {
                eprintln!("deployclaw demo: {e}");
                pipeline_exit(&e)
            }
        }
    });
    topology::ephemeral::cleanup_all();
    let _ = Duration::ZERO;
    code
}

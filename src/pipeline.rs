//! The whole gate, composed: parse → static gates → introspect the fleet → probes and rehearsal
//! → rollback (generate and prove) → per-shard gates → report.
//!
//! This is what `deployclaw validate-migration` runs; a library user gets the same by calling
//! [`validate`] with a [`Fleet`] they resolved (see [`resolve_fleet`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use gates::{Config, Finding, Gate, Registry};
use migration_parser::{Migration, StatementKind};
use report::{
    FleetInfo, GatePolicy, LockTrace, MigrationInfo, Rehearsal, ShardReport, StatementError,
    StatementTrace, ValidationReport,
};
use simulator::{
    CancelToken, Progress, RehearsalResult, SimOptions, SimulationResult, StatementOutcome,
};
use topology::{Catalog, Fleet, FleetCatalogs, ScanOptions};

use crate::PipelineError;

/// Where the migration comes from: a file, or text in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationSource {
    /// A file, read with the size cap of [`crate::input`].
    File(PathBuf),
    /// SQL text; `name` is what reports and messages call it (e.g. `schema_v42.sql`).
    Text {
        /// The name in the report and in messages.
        name: String,
        /// The SQL.
        sql: String,
    },
}

impl MigrationSource {
    /// The name in the report and in messages: the path as given, or the text's name.
    pub fn name(&self) -> String {
        match self {
            MigrationSource::File(p) => p.display().to_string(),
            MigrationSource::Text { name, .. } => name.clone(),
        }
    }
}

/// Everything [`validate`] needs besides the fleet.
///
/// `#[non_exhaustive]`: start from [`ValidateOptions::new`] (a file) or
/// [`ValidateOptions::from_sql`] (text) and set fields. The rules are derived from
/// [`config`](Self::config) when the gate runs ([`ValidateOptions::registry`]): the built-in
/// rules, the configuration's `[[custom_rules]]` (whose SQL probes the simulator runs) and
/// [`extra_rules`](Self::extra_rules) — so a probe rule of the configuration can never run
/// without the rule that reads its rows.
#[derive(Debug)]
#[non_exhaustive]
pub struct ValidateOptions {
    /// The migration: a file or text.
    pub migration: MigrationSource,
    /// Gate configuration (`deployclaw.toml`).
    pub config: Config,
    /// Rules of your own (Rust [`gates::GateRule`]s) run next to the built-in and configured
    /// ones. Default: none.
    pub extra_rules: Registry,
    /// Probe, rehearsal and concurrency options.
    pub sim: SimOptions,
    /// Generate the rollback and prove it on the shadow.
    pub validate_rollback: bool,
    /// A user-supplied rollback to prove instead of the generated one.
    pub rollback_file: Option<PathBuf>,
    /// How safety gates and approvals are derived.
    pub policy: GatePolicy,
    /// Where the fleet came from, for the report (`postgres://…` redacted, a topology file, an
    /// RDS identifier).
    pub fleet_source: String,
    /// Blocking-lock budget per statement in milliseconds (`lock-time-budget`); `None` uses
    /// the configuration's `[lock_budget] max_blocking_ms`.
    pub lock_budget_ms: Option<u64>,
    /// A directory for machine-local caches ([`crate::cache`]): the ephemeral shadow's
    /// `initdb` template and its throughput calibration. `None` (the default) caches nothing:
    /// every run makes its shadow with `initdb` and calibrates.
    pub cache_dir: Option<PathBuf>,
    /// Calibrate again even when [`ValidateOptions::cache_dir`] holds a recent calibration
    /// (the new figures replace it).
    pub recalibrate: bool,
    /// Where the ephemeral shadow cluster's directory is made. [`ValidateOptions::new`] picks
    /// [`default_shadow_base_dir`] (`/dev/shm` when it is a tmpfs with 1 GiB free: the shadow holds only structure and sample rows, and its file-heavy work —
    /// copying the template, creating relations — costs a third there); `None` uses
    /// [`std::env::temp_dir`].
    pub shadow_base_dir: Option<PathBuf>,
}

impl ValidateOptions {
    /// The effective blocking-lock budget in milliseconds.
    pub fn lock_budget(&self) -> u64 {
        self.lock_budget_ms
            .unwrap_or(self.config.lock_budget.max_blocking_ms)
    }

    /// The rules of this run: the built-in ones, the `[[custom_rules]]` of
    /// [`config`](Self::config), then [`extra_rules`](Self::extra_rules). Fails when two of them
    /// share a name or code.
    pub fn registry(&self) -> Result<Registry, gates::GatesError> {
        let mut r = Registry::for_config(&self.config)?;
        r.extend_from(&self.extra_rules)?;
        Ok(r)
    }

    /// Options for the migration in `sql_file`, with the default configuration and simulator
    /// settings.
    pub fn new(sql_file: impl Into<PathBuf>) -> ValidateOptions {
        ValidateOptions::with_source(MigrationSource::File(sql_file.into()))
    }

    /// Options for a migration given as text (`name` is what the report calls it).
    pub fn from_sql(name: impl Into<String>, sql: impl Into<String>) -> ValidateOptions {
        ValidateOptions::with_source(MigrationSource::Text {
            name: name.into(),
            sql: sql.into(),
        })
    }

    fn with_source(migration: MigrationSource) -> ValidateOptions {
        ValidateOptions {
            migration,
            config: Config::default(),
            extra_rules: Registry::empty(),
            sim: SimOptions::default(),
            validate_rollback: true,
            rollback_file: None,
            policy: GatePolicy::default(),
            fleet_source: String::new(),
            lock_budget_ms: None,
            cache_dir: None,
            recalibrate: false,
            shadow_base_dir: default_shadow_base_dir(),
        }
    }
}

/// Free space a RAM-backed directory must have to hold the ephemeral shadow.
const SHADOW_MEMORY_DIR_MIN_FREE: u64 = 1 << 30;

/// The default [`ValidateOptions::shadow_base_dir`]: [`topology::ephemeral::memory_temp_dir`]
/// with 1 GiB free, else `None` ([`std::env::temp_dir`]).
pub fn default_shadow_base_dir() -> Option<PathBuf> {
    topology::ephemeral::memory_temp_dir(SHADOW_MEMORY_DIR_MIN_FREE)
}

/// Read and parse a migration file with the configuration's parse options. A statement that
/// does not parse is not an error (it becomes a finding); unreadable, binary or non-UTF-8 input
/// and unterminated quotes are, and so is a file without any statement
/// ([`PipelineError::NoStatements`]).
pub fn load_migration(
    path: &std::path::Path,
    config: &Config,
) -> Result<(Migration, Vec<u8>), PipelineError> {
    load(path, config, None)
}

/// [`load_migration`] for the whole gate: a migration of more statements than
/// `config.limits.max_statements` (`[limits]` in `deployclaw.toml`, the CLI's
/// `--max-statements`) is an input error ([`migration_parser::ParseError::TooManyStatements`]),
/// found before the rest of the file is parsed. [`validate`] calls it first; a caller can call
/// it before resolving the fleet, so that an oversized file never reaches a shard.
pub fn load_migration_for_gate(
    path: &std::path::Path,
    config: &Config,
) -> Result<(Migration, Vec<u8>), PipelineError> {
    load(path, config, Some(config.limits.max_statements))
}

/// [`load_migration_for_gate`] for a [`MigrationSource`]: a file, or text in memory (parsed
/// under its name, with the same statement limit).
pub fn load_source_for_gate(
    source: &MigrationSource,
    config: &Config,
) -> Result<(Migration, Vec<u8>), PipelineError> {
    match source {
        MigrationSource::File(path) => load_migration_for_gate(path, config),
        MigrationSource::Text { name, sql } => parse_loaded(
            name.clone(),
            sql.as_bytes().to_vec(),
            config,
            Some(config.limits.max_statements),
        ),
    }
}

fn load(
    path: &std::path::Path,
    config: &Config,
    limit: Option<usize>,
) -> Result<(Migration, Vec<u8>), PipelineError> {
    let bytes = crate::input::read_capped(path).map_err(|source| PipelineError::Read {
        file: path.display().to_string(),
        source,
    })?;
    parse_loaded(path.display().to_string(), bytes, config, limit)
}

fn parse_loaded(
    file: String,
    bytes: Vec<u8>,
    config: &Config,
    limit: Option<usize>,
) -> Result<(Migration, Vec<u8>), PipelineError> {
    let options = config.parse_options();
    let migration = match limit {
        Some(n) => migration_parser::parse_bytes_limited(&file, &bytes, &options, n)?,
        None => migration_parser::parse_bytes(&file, &bytes, &options)?,
    };
    if migration.statements.is_empty() {
        return Err(PipelineError::NoStatements { file });
    }
    Ok((migration, bytes))
}

/// Run the whole gate against `fleet` and return the (unsigned) report.
///
/// Findings are outcomes: a red shard is an `Ok` report whose gate is RED. `Err` means the
/// gate could not run at all (unreadable migration, no shadow could be started, cancelled).
pub async fn validate(
    opts: &ValidateOptions,
    fleet: &Fleet,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<ValidationReport, PipelineError> {
    let started = Instant::now();
    let mut steps: Vec<(String, String, u64)> = Vec::new();
    // The configuration's SQL probe rules run on every shard with the simulator's probes.
    let mut sim_opts = opts.sim.clone();
    // In place, no lock is waited for longer than the lock budget, and a stalled session is
    // ended by the server soon after it.
    sim_opts
        .lock_budget
        .get_or_insert(std::time::Duration::from_millis(opts.lock_budget()));
    // The rehearsal and the rollback proof clone the same representative shard: one pg_dump.
    sim_opts
        .dump_cache
        .get_or_insert_with(|| std::sync::Arc::new(simulator::DumpCache::new()));
    // The rules come from the configuration: its probe rules' rows always have a reader.
    let registry = opts.registry().map_err(PipelineError::Config)?;
    let probes = opts.config.probe_rules();
    sim_opts
        .custom_probes
        .extend(probes.iter().map(gates::ProbeRuleSpec::probe));

    // 1. parse + static gates
    let t = Instant::now();
    let (migration, bytes) = load_source_for_gate(&opts.migration, &opts.config)?;
    let unparsed = migration
        .statements
        .iter()
        .filter(|s| matches!(s.kind, StatementKind::Unparsed { .. }))
        .count();
    steps.push((
        "parse".into(),
        format!(
            "{} statements parsed from {} ({} unparsed)",
            migration.statements.len(),
            opts.migration.name(),
            unparsed
        ),
        ms(t),
    ));
    let t = Instant::now();
    let static_findings = registry.lint(&migration, &opts.config);
    steps.push((
        "static_gates".into(),
        format!(
            "{} rules, {} findings",
            registry.len(),
            static_findings.len()
        ),
        ms(t),
    ));

    // On a `--shadow` scratch server, drop what dead runs left behind (before the rehearsal and
    // the proof take leases of their own; live runs' databases are leased and stay).
    if let Some(spec) = &opts.sim.shadow {
        let t = Instant::now();
        if let Some(line) = reap_scratch_leftovers(spec).await {
            steps.push(("reap shadow leftovers".into(), line, ms(t)));
        }
    }

    // 2. introspect the fleet and, meanwhile, start the shadow cluster that the rehearsal and
    // the rollback proof share (one start instead of two, off the critical path).
    let t = Instant::now();
    let scan = ScanOptions {
        concurrency: opts.sim.concurrency.max(1) as usize,
        ..ScanOptions::default()
    };
    let introspect = async {
        let r = topology::introspect_fleet(fleet, &scan).await;
        (r, ms(t))
    };
    let ((FleetCatalogs { catalogs, errors }, introspect_ms), shared_shadow) =
        tokio::join!(introspect, start_shared_shadow(opts));
    let shadow = match shared_shadow {
        Some(SharedShadow {
            pg: Ok(pg),
            start_ms,
            calibration,
        }) => {
            steps.push((
                "start shadow".into(),
                format!(
                    "ephemeral cluster (PostgreSQL {}, under {}), shared by the rehearsal and the rollback proof",
                    pg.version(),
                    pg.socket_dir()
                        .parent()
                        .map_or_else(|| "?".into(), |d| d.display().to_string()),
                ),
                start_ms,
            ));
            sim_opts.shadow = Some(pg.connection_spec());
            sim_opts.shadow_is_ephemeral = true;
            match calibration {
                Some(Calibration::Cached(tp, age)) => {
                    steps.push((
                        "calibrate".into(),
                        format!(
                            "cached calibration of this machine from {} ago: {}",
                            human_age(age),
                            simulator::calibration_summary(&tp)
                        ),
                        0,
                    ));
                    sim_opts.throughput = Some(tp);
                }
                Some(Calibration::Measured(Ok(tp), took)) => {
                    steps.push((
                        "calibrate".into(),
                        simulator::calibration_summary(&tp),
                        took,
                    ));
                    sim_opts.throughput = Some(tp);
                }
                Some(Calibration::Measured(Err(e), took)) => {
                    steps.push((
                        "calibrate".into(),
                        format!("failed, using defaults: {e}"),
                        took,
                    ));
                    sim_opts.calibrate = false;
                }
                None => {}
            }
            Some(pg)
        }
        Some(SharedShadow {
            pg: Err(e),
            start_ms,
            ..
        }) => {
            // The simulator and the proof try on their own and report the failure.
            steps.push(("start shadow".into(), format!("failed: {e}"), start_ms));
            None
        }
        None => None,
    };
    let mut unreachable: BTreeMap<String, String> = BTreeMap::new();
    for (ids, err) in &errors {
        for id in ids {
            unreachable.insert(id.clone(), err.to_string());
        }
    }
    let drift = topology::catalog::detect_drift(catalogs.iter().map(|(k, v)| (k.as_str(), v)));
    steps.push((
        "introspect".into(),
        format!(
            "{} shards on {} instances read, {} unreachable, {} schema shapes, {} drifted",
            catalogs.len(),
            fleet.instances.len(),
            unreachable.len(),
            drift.groups.len(),
            drift.drifted.len()
        ),
        introspect_ms,
    ));
    if cancel.is_cancelled() {
        return Err(PipelineError::Cancelled);
    }

    // 3. probes + rehearsal, and 4. the rollback proof, concurrently: the proof needs only the
    // catalogs (it runs in a database of its own on the shared shadow), so it overlaps the
    // probes of the fleet.
    let t = Instant::now();
    let dump_cache = sim_opts.dump_cache.clone();
    let rollback_fut = async {
        let r = crate::rollback_step::rollback_for(
            opts,
            fleet,
            &migration,
            &catalogs,
            drift.reference_shard.as_deref(),
            shadow.as_ref(),
            dump_cache.as_deref(),
        )
        .await;
        (r, ms(t))
    };
    let sim_fut = simulator::run(
        &migration,
        fleet,
        Some(&catalogs),
        &sim_opts,
        progress,
        cancel,
    );
    let (sim, (rollback, rollback_ms)) = tokio::join!(sim_fut, rollback_fut);
    let sim = sim.map_err(|e| sim_error(e, &opts.config))?;
    let rollback = rollback?;
    drop(shadow);
    for s in &sim.steps {
        steps.push((s.action.clone(), s.details.clone(), s.duration_ms));
    }
    if cancel.is_cancelled() {
        return Err(PipelineError::Cancelled);
    }
    steps.push((
        "rollback".into(),
        format!(
            "{} rollback, {}, {} irreversible step(s){}",
            rollback.info.source,
            if rollback.info.tested {
                "tested on the shadow"
            } else {
                "not tested"
            },
            rollback.info.irreversible.len(),
            if rollback.info.mismatches.is_empty() {
                String::new()
            } else {
                format!(", {} mismatch(es)", rollback.info.mismatches.len())
            }
        ),
        rollback_ms,
    ));

    // 5. per-shard gates
    let t = Instant::now();
    let shards = crate::shard_gates::evaluate(
        opts,
        &registry,
        &migration,
        fleet,
        &catalogs,
        &drift,
        &unreachable,
        &sim,
        &rollback,
    );
    let counts = report::GateCounts::of(shards.iter().map(|s| &s.gate));
    steps.push((
        "gates".into(),
        format!(
            "{} shards: {} green, {} yellow, {} red",
            counts.total(),
            counts.green,
            counts.yellow,
            counts.red
        ),
        ms(t),
    ));

    // 6. the report
    let migration_info = MigrationInfo {
        file: opts.migration.name(),
        sha256: report::sha256_hex(&bytes),
        statements: migration.statements.len(),
    };
    let fingerprint = report::fleet_fingerprint(shards.iter().map(|s| {
        (
            s.instance.as_str(),
            s.shard.as_str(),
            s.schema_fingerprint.as_str(),
        )
    }));
    let fleet_info = FleetInfo {
        source: opts.fleet_source.clone(),
        instances: fleet.instances.len(),
        shards: fleet.shards.len(),
        fingerprint,
    };
    let mut report = ValidationReport::new(migration_info, fleet_info);
    report.tool_version = env!("CARGO_PKG_VERSION").to_owned();
    for (action, details, d) in steps {
        report.push_step(action, details, d);
    }
    report.static_findings = static_findings;
    report.rehearsals = rehearsals_for_report(&migration, &sim);
    report.shards = shards;
    report.rollback = rollback.info;
    report.finalize(&gate_policy(opts)?);
    report.total_duration_ms = ms(started);
    Ok(report)
}

/// The pipeline error for a simulator error: a custom probe refused by the pre-flight becomes
/// the configuration error of its rule's `sql` (file, line, column: exit 3 like a refusal when
/// the file is read), cancellation becomes [`PipelineError::Cancelled`].
fn sim_error(e: simulator::SimError, config: &gates::Config) -> PipelineError {
    match e {
        simulator::SimError::Cancelled => PipelineError::Cancelled,
        simulator::SimError::UnsafeCustomProbe {
            probe,
            shard,
            line,
            column,
            reason,
        } if config.probe_rules().iter().any(|p| p.name == probe) => {
            let on = shard.map(|s| format!(" on shard {s}")).unwrap_or_default();
            let reason = if reason.starts_with("calls ") || reason.starts_with("reads ") {
                format!("the query {reason}")
            } else {
                reason
            };
            PipelineError::Config(config.probe_refusal(
                &probe,
                (line, column),
                format!(
                    "custom rule `{probe}` refused{on}: {reason}; no custom probe ran on any shard"
                ),
            ))
        }
        e => e.into(),
    }
}

/// The gate policy with the configuration's `[approval]` table applied: `low`, `medium`,
/// `high`, `critical` = the role that must approve at that risk level (`""` = none).
pub fn gate_policy(opts: &ValidateOptions) -> Result<GatePolicy, PipelineError> {
    let mut policy = opts.policy.clone();
    let Some(table) = &opts.config.approval else {
        return Ok(policy);
    };
    for (key, value) in table {
        let Some(role) = value.as_str() else {
            return Err(PipelineError::Usage(format!(
                "[approval] {key}: expected a role name string, found {value}"
            )));
        };
        let role = (!role.is_empty()).then(|| role.to_owned());
        match key.as_str() {
            "low" => policy.approval.low = role,
            "medium" => policy.approval.medium = role,
            "high" => policy.approval.high = role,
            "critical" => policy.approval.critical = role,
            other => {
                return Err(PipelineError::Usage(format!(
                    "[approval]: unknown key `{other}` (expected low, medium, high, critical)"
                )));
            }
        }
    }
    Ok(policy)
}

/// Spare databases in the shadow's cached template: one for the rehearsal of the majority
/// shape, one for the rollback proof (further shapes fall back to `CREATE DATABASE`).
const SHADOW_SPARE_DATABASES: u32 = 2;

/// The shadow cluster the pipeline starts for the rehearsal and the rollback proof.
struct SharedShadow {
    pg: Result<topology::ephemeral::EphemeralPg, topology::TopologyError>,
    start_ms: u64,
    calibration: Option<Calibration>,
}

enum Calibration {
    /// From [`ValidateOptions::cache_dir`], measured this long ago.
    Cached(simulator::Throughput, std::time::Duration),
    /// Measured now, taking this many milliseconds.
    Measured(Result<simulator::Throughput, simulator::SimError>, u64),
}

/// Start the ephemeral shadow cluster when the rehearsal or the rollback proof needs one and no
/// `--shadow URL` was given (`None` when nothing needs it), and calibrate on it unless the cache
/// holds a recent calibration. This runs while the fleet is introspected, before the probes
/// load the machine, so the calibration measures the shadow and not the probes' contention.
async fn start_shared_shadow(opts: &ValidateOptions) -> Option<SharedShadow> {
    let needed = opts.sim.shadow.is_none()
        && (opts.sim.rehearsal == simulator::RehearsalMode::Shadow || opts.validate_rollback);
    if !needed {
        return None;
    }
    let t = Instant::now();
    let pg = topology::ephemeral::EphemeralPg::start_async(topology::ephemeral::EphemeralOptions {
        template_cache: opts.cache_dir.clone(),
        spare_databases: SHADOW_SPARE_DATABASES,
        base_dir: opts.shadow_base_dir.clone(),
        ..topology::ephemeral::EphemeralOptions::shadow()
    })
    .await;
    let start_ms = ms(t);
    let wants_calibration = opts.sim.calibrate
        && opts.sim.throughput.is_none()
        && opts.sim.rehearsal == simulator::RehearsalMode::Shadow;
    let calibrate = async {
        match &pg {
            Ok(pg) if wants_calibration => {
                let key = crate::cache::ephemeral_key(pg.bin_dir(), pg.version());
                let cached = opts
                    .cache_dir
                    .as_deref()
                    .filter(|_| !opts.recalibrate)
                    .and_then(|dir| crate::cache::load_calibration(dir, &key));
                Some(match cached {
                    Some((tp, age)) => Calibration::Cached(tp, age),
                    None => {
                        let t = Instant::now();
                        let sim = simulator::SimOptions {
                            shadow_is_ephemeral: true,
                            ..opts.sim.clone()
                        };
                        let r = simulator::calibrate_shadow(&pg.connection_spec(), &sim).await;
                        if let (Ok(tp), Some(dir)) = (&r, &opts.cache_dir) {
                            // Best effort: an unwritable cache only costs the next run a calibration.
                            let _ = crate::cache::store_calibration(dir, &key, tp);
                        }
                        Calibration::Measured(r, ms(t))
                    }
                })
            }
            _ => None,
        }
    };
    let calibration = calibrate.await;
    Some(SharedShadow {
        pg,
        start_ms,
        calibration,
    })
}

/// [`topology::scratch::reap_leftovers`] on the scratch server `spec`: the line for the step
/// log, `None` when there was nothing to reap. A failure is a line too (the rehearsal reports
/// its own connection problems).
async fn reap_scratch_leftovers(spec: &topology::ConnectionSpec) -> Option<String> {
    let mut conn = match simulator::shadow_connect_options(spec, &spec.database) {
        Ok(o) => match <sqlx::PgConnection as sqlx::Connection>::connect_with(&o).await {
            Ok(c) => c,
            Err(e) => {
                return Some(format!(
                    "failed: cannot connect to {}: {e}",
                    spec.redacted_url()
                ));
            }
        },
        Err(e) => return Some(format!("failed: {e}")),
    };
    let r = topology::scratch::reap_leftovers(&mut conn).await;
    let _ = sqlx::Connection::close(conn).await;
    match r {
        Ok(reaped) => reaped.summary(),
        Err(e) => Some(format!("failed: {e}")),
    }
}

fn human_age(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

fn ms(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The per-statement lock timeline of every rehearsal, in the report's shape.
pub fn rehearsals_for_report(migration: &Migration, sim: &SimulationResult) -> Vec<Rehearsal> {
    sim.rehearsals
        .values()
        .map(|r| rehearsal_for_report(migration, sim, r))
        .collect()
}

fn rehearsal_for_report(
    migration: &Migration,
    sim: &SimulationResult,
    r: &RehearsalResult,
) -> Rehearsal {
    let members: Vec<_> = sim
        .shards
        .iter()
        .filter(|s| s.rehearsal.as_deref() == Some(r.fingerprint.as_str()))
        .collect();
    // The largest shard of the shape gives the per-statement estimate shown in the timeline.
    let largest = members
        .iter()
        .filter_map(|s| s.estimate.as_ref())
        .max_by_key(|e| e.total_lock_ms);
    // By statement index: one lookup per statement, not a scan of the estimate's statements.
    let estimated: std::collections::HashMap<usize, f64> = largest
        .map(|e| {
            e.statements
                .iter()
                .map(|x| (x.index, x.estimated_lock_ms))
                .collect()
        })
        .unwrap_or_default();
    let statements = r
        .statements
        .iter()
        .map(|st| {
            let sql = migration
                .statements
                .get(st.index)
                .map(|s| one_line(&s.sql))
                .unwrap_or_default();
            StatementTrace {
                index: st.index,
                line: st.line,
                sql,
                locks: st
                    .locks
                    .iter()
                    .filter(|l| !l.created_here)
                    .map(|l| LockTrace {
                        relation: format!("{}.{}", l.schema, l.relation),
                        mode: l.mode,
                    })
                    .collect(),
                rewrites: st.rewritten.clone(),
                duration_ms: st.duration_ms.max(0.0).round() as u64,
                estimated_lock_ms: estimated
                    .get(&st.index)
                    .map(|ms| ms.max(0.0).round() as u64),
                error: match &st.outcome {
                    StatementOutcome::Failed { sqlstate, message } => Some(StatementError {
                        sqlstate: sqlstate.clone().unwrap_or_default(),
                        message: message.clone(),
                    }),
                    _ => None,
                },
            }
        })
        .collect();
    Rehearsal {
        schema_fingerprint: r.fingerprint.clone(),
        representative_shard: r.shard.clone(),
        shard_count: members.len(),
        statements,
    }
}

/// A statement shortened to one line of at most 120 characters.
pub fn one_line(sql: &str) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 120 {
        let cut: String = flat.chars().take(117).collect();
        format!("{cut}...")
    } else {
        flat
    }
}

/// Build one shard's report entry from its findings.
pub fn shard_report(
    shard: &str,
    instance: &str,
    findings: Vec<Finding>,
    estimated_lock_ms: u64,
    fingerprint: String,
    duration_ms: u64,
) -> ShardReport {
    ShardReport {
        shard: shard.to_owned(),
        instance: instance.to_owned(),
        gate: Gate::from_findings(&findings),
        findings,
        estimated_lock_ms,
        schema_fingerprint: fingerprint,
        duration_ms,
    }
}

#[allow(dead_code)]
fn _assert_types(_: &Catalog) {}

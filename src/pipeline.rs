//! The whole gate, composed: parse → static gates → introspect the fleet → probes and rehearsal
//! → rollback (generate and prove) → per-shard gates → report.
//!
//! This is what `deployclaw validate-migration` runs; a library user gets the same by calling
//! [`validate`] with a [`Fleet`] they resolved (see [`resolve_fleet`]).

use std::time::Instant;

use gates::{Config, Finding};
use migration_parser::{Migration, StatementKind};
use report::{FleetInfo, GatePolicy, MigrationInfo, RollbackInfo, ShardReport, ValidationReport};
use simulator::{CancelToken, Progress, SimOptions, SimulationResult};
use topology::Fleet;

use crate::PipelineError;
pub use crate::options::{MigrationSource, ValidateOptions, default_shadow_base_dir};
pub use crate::rehearsal_report::{one_line, rehearsals_for_report};
pub use crate::shard_gates::shard_report;
use crate::shared_shadow::reap_scratch_leftovers;
use crate::steps::{Steps, ms};

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
    let mut steps: Steps = Vec::new();
    // `--partition K/N`: the slice of the fleet this run validates (crate::partition).
    let whole_fleet = fleet;
    let sliced = crate::partition::slice_for_run(opts, fleet, &mut steps);
    let fleet = sliced.as_ref().unwrap_or(whole_fleet);
    let sim_opts = sim_options(opts);
    // The rules come from the configuration: its probe rules' rows always have a reader.
    let registry = opts.registry().map_err(PipelineError::Config)?;

    // 1. parse + static gates
    let (migration, bytes, mut static_findings) = parse_and_lint(opts, &registry, &mut steps)?;

    // On a `--shadow` scratch server, drop what dead runs left behind (before the rehearsal and
    // the proof take leases of their own; live runs' databases are leased and stay).
    if let Some(spec) = &opts.sim.shadow {
        let t = Instant::now();
        if let Some(line) = reap_scratch_leftovers(spec).await {
            steps.push(("reap shadow leftovers".into(), line, ms(t)));
        }
    }

    // 2.–4. introspect, probe and rehearse, generate and prove the rollback; the shared
    // shadow starts beside them.
    let crate::fleet_phase::FleetPhase {
        catalogs,
        drift,
        unreachable,
        sim,
        rollback,
    } = crate::fleet_phase::run_fleet_phase(
        opts, fleet, &migration, sim_opts, progress, cancel, &mut steps,
    )
    .await?;

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
    // Fleet rules report once per run, beside the static findings.
    static_findings.extend(crate::shard_gates::fleet_findings(
        opts, &registry, &migration, &sim,
    ));
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
    let parts = ReportParts {
        shards_in_fleet: whole_fleet.shards.len(),
        drift_reference: drift.reference.as_ref().map(|f| f.0.clone()),
        migration: &migration,
        bytes: &bytes,
        static_findings,
        sim: &sim,
        shards,
        rollback: rollback.info,
    };
    build_report(opts, fleet, steps, parts, started)
}

/// The simulator's options for this run: the lock budget bounds in-place waits, one dump
/// cache is shared by the rehearsal and the rollback proof, and the configuration's SQL probe
/// rules run on every shard with the simulator's probes.
fn sim_options(opts: &ValidateOptions) -> SimOptions {
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
    // Which rows the shadow holds: flag, else `[shadow]`, else the options as given.
    sim_opts.shadow_data = opts.shadow_data();
    // Where the data probes run: flag, else `[probes]`, else the options as given.
    sim_opts.probe_on = opts.probe_on();
    sim_opts.max_replica_lag = opts.max_replica_lag();
    // The traffic window: flag, else `[live]`, else the options as given.
    sim_opts.live = opts.live_options();
    let probes = opts.config.probe_rules();
    sim_opts
        .custom_probes
        .extend(probes.iter().map(gates::ProbeRuleSpec::probe));
    sim_opts
}

/// Step 1: read and parse the migration ([`load_migration_for_gate`]) and run the static
/// rules; both logged.
fn parse_and_lint(
    opts: &ValidateOptions,
    registry: &gates::Registry,
    steps: &mut Steps,
) -> Result<(Migration, Vec<u8>, Vec<Finding>), PipelineError> {
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
    Ok((migration, bytes, static_findings))
}

/// What the steps of [`validate`] produced, for [`build_report`].
struct ReportParts<'a> {
    /// Shards of the whole fleet (before `--partition`).
    shards_in_fleet: usize,
    /// The drift reference's shape, recorded in a partial report.
    drift_reference: Option<String>,
    migration: &'a Migration,
    bytes: &'a [u8],
    static_findings: Vec<Finding>,
    sim: &'a SimulationResult,
    shards: Vec<ShardReport>,
    rollback: RollbackInfo,
}

/// Step 6: the report, finalized with the gate policy.
fn build_report(
    opts: &ValidateOptions,
    fleet: &Fleet,
    steps: Steps,
    parts: ReportParts<'_>,
    started: Instant,
) -> Result<ValidationReport, PipelineError> {
    let ReportParts {
        shards_in_fleet,
        drift_reference,
        migration,
        bytes,
        static_findings,
        sim,
        shards,
        rollback,
    } = parts;
    let migration_info = MigrationInfo {
        file: opts.migration.name(),
        sha256: report::sha256_hex(bytes),
        statements: migration.statements.len(),
    };
    let fingerprint = report::fleet_fingerprint(shards.iter().map(|s| {
        (
            s.instance.as_str(),
            s.shard.as_str(),
            s.schema_fingerprint.as_str(),
        )
    }));
    let policy = gate_policy(opts)?;
    let fleet_info = FleetInfo {
        source: opts.fleet_source.clone(),
        instances: fleet.instances.len(),
        shards: fleet.shards.len(),
        fingerprint,
        partition: opts
            .partition
            .map(|p| crate::partition::info(opts, p, shards_in_fleet, drift_reference, &policy)),
        merged_from: Vec::new(),
    };
    let mut report = ValidationReport::new(migration_info, fleet_info);
    report.tool_version = env!("CARGO_PKG_VERSION").to_owned();
    for (action, details, d) in steps {
        report.push_step(action, details, d);
    }
    report.static_findings = static_findings;
    report.rehearsals = rehearsals_for_report(migration, sim);
    report.shards = shards;
    report.rollback = rollback;
    report.finalize(&policy);
    report.total_duration_ms = ms(started);
    Ok(report)
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

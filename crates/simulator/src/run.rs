//! The options and the output of a simulation run ([`SimOptions`], [`SimulationResult`],
//! [`ShardEvidence`]). The run itself — reachability, probes, rehearsals, assembly — lives in
//! `simulate/` (one file per phase).

use std::time::Duration;

use topology::{Catalog, ConnectionSpec};

use crate::custom::CustomProbe;
use crate::estimate::Throughput;
use crate::rehearsal::sample::{SampleCache, ShadowData};
use crate::rehearsal::{RehearsalLimits, RehearsalMode};

/// Options of a simulation run.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Connections per instance (probes of several shards of one instance share them).
    pub concurrency: u32,
    /// `statement_timeout` of every probe query.
    pub probe_timeout: Duration,
    /// `lock_timeout` of probe queries and rehearsal statements.
    pub lock_timeout: Duration,
    /// Upper bound for all probes of one shard; the shard is then reported incomplete.
    pub shard_timeout: Duration,
    /// Connect timeout per instance.
    pub connect_timeout: Duration,
    /// `statement_timeout` of rehearsal statements.
    pub rehearsal_statement_timeout: Duration,
    /// Shadow (default), in place, or none.
    pub rehearsal: RehearsalMode,
    /// `--shadow URL`: a scratch server to create the shadow databases on instead of an
    /// ephemeral cluster.
    pub shadow: Option<ConnectionSpec>,
    /// `shadow` is an ephemeral cluster this process started (an `EphemeralPg` shared with
    /// other steps), not a scratch server: its admin is a superuser, so every shadow database
    /// gets its own owner role that the migration runs as, demoted from superuser; and its
    /// spare databases may be taken. Never set it for a `--shadow URL`. Default false.
    pub shadow_is_ephemeral: bool,
    /// A shadow the caller is still starting ([`crate::PendingShadow`]): the rehearsal waits
    /// for it (and takes its spec, throughput and calibration choice, overriding `shadow`,
    /// `throughput` and `calibrate`) instead of starting its own, while the probes run at
    /// once. Default: none.
    pub shadow_pending: Option<crate::PendingShadow>,
    /// Calibrate throughput on the shadow (otherwise [`Throughput::default`]).
    pub calibrate: bool,
    /// Rows of the calibration table (≈ 100 bytes each).
    pub calibration_rows: u32,
    /// Use these figures instead of calibrating.
    pub throughput: Option<Throughput>,
    /// Custom read-only SQL probes (e.g. gates' `Config::probe_rules()`), run on every shard in
    /// the probe transaction after the built-in probes, each under its own savepoint; results in
    /// [`ShardEvidence::custom_probes`]. Names must be unique and non-empty. Default: none.
    pub custom_probes: Vec<CustomProbe>,
    /// Share the rehearsal's `pg_dump` of a shard with other users of the same cache in this
    /// run (the rollback proof clones the same shard). Default: none (dump on its own).
    pub dump_cache: Option<std::sync::Arc<crate::DumpCache>>,
    /// The blocking-lock budget (gates' `lock-time-budget`). In place, the rehearsal's
    /// `lock_timeout` is at most this, and `idle_in_transaction_session_timeout` is this plus
    /// [`IDLE_MARGIN`] (without a budget: `lock_timeout` plus the margin). Default: none.
    pub lock_budget: Option<Duration>,
    /// Which rows the shadow holds: none of the shard's (default) or, opt-in
    /// (`--shadow-data sample`), a bounded FK-closed sample of its real rows
    /// ([`crate::rehearsal::sample`]).
    pub shadow_data: ShadowData,
    /// The samples of this run, shared by every clone of these options (the rehearsal and the
    /// rollback proof read a shard once: [`crate::proof_sample`]).
    pub sample_cache: std::sync::Arc<SampleCache>,
    /// The live workload reads (lock holders, traffic, application queries) beside the probes.
    pub live: crate::live::LiveOptions,
    /// Where the data probes of a shard run (`--probe-on`): its writer (default) or a read
    /// replica of it ([`ProbeOn::Replica`]; the writer then gets only catalog and activity reads).
    pub probe_on: ProbeOn,
    /// With [`ProbeOn::Replica`]: a replica whose replay lag is over this is refused and the
    /// shard's probes run on its writer (`[probes] max_replica_lag`, default 5 s).
    pub max_replica_lag: Duration,
}

/// Where the data probes (orphans, NULLs, duplicates, casts, row estimates, custom probes —
/// everything that scans user rows) of a shard run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProbeOn {
    /// On the shard's own instance (the writer).
    #[default]
    Writer,
    /// On a read replica of the shard's writer (an instance with `replica_of`), when one is
    /// reachable, in recovery and within [`SimOptions::max_replica_lag`]; otherwise on the
    /// writer, and the shard's `live.replica` says why.
    Replica,
}

/// The default [`SimOptions::max_replica_lag`].
pub const DEFAULT_MAX_REPLICA_LAG: Duration = Duration::from_secs(5);

/// What the in-place rehearsal's `idle_in_transaction_session_timeout` adds to the lock budget.
pub const IDLE_MARGIN: Duration = Duration::from_secs(5);

impl SimOptions {
    /// The limits of rehearsal statements on a shadow (and of the calibration).
    pub(crate) fn shadow_limits(&self) -> RehearsalLimits {
        RehearsalLimits {
            statement_timeout: self.rehearsal_statement_timeout,
            lock_timeout: self.lock_timeout,
            idle_in_transaction_timeout: self.lock_timeout + IDLE_MARGIN,
        }
    }
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            concurrency: 4,
            probe_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(2),
            shard_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            rehearsal_statement_timeout: Duration::from_secs(60),
            rehearsal: RehearsalMode::Shadow,
            shadow: None,
            shadow_is_ephemeral: false,
            shadow_pending: None,
            calibrate: true,
            calibration_rows: 100_000,
            throughput: None,
            custom_probes: Vec::new(),
            dump_cache: None,
            lock_budget: None,
            shadow_data: ShadowData::Synthetic,
            sample_cache: std::sync::Arc::new(SampleCache::new()),
            live: crate::live::LiveOptions::default(),
            probe_on: ProbeOn::Writer,
            max_replica_lag: DEFAULT_MAX_REPLICA_LAG,
        }
    }
}

pub use evidence::{CatalogSummary, ShardEvidence, SimulationResult};

/// A few numbers about a shard's catalog.
pub(crate) fn catalog_summary(c: &Catalog) -> CatalogSummary {
    CatalogSummary {
        tables: c.tables.len(),
        columns: c.tables.values().map(|t| t.columns.len()).sum(),
        constraints: c.tables.values().map(|t| t.constraints.len()).sum(),
        indexes: c.tables.values().map(|t| t.indexes.len()).sum(),
        total_bytes: c.total_bytes(),
    }
}

/// The simulator: options plus [`Simulator::run`].
#[derive(Debug, Clone, Default)]
pub struct Simulator {
    /// Options.
    pub options: SimOptions,
}

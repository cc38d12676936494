//! [`ValidateOptions`]: everything the whole gate ([`crate::pipeline::validate`]) needs
//! besides the fleet. Its own file so that the pipeline's steps (rollback, per-shard gates,
//! shared shadow) read it without depending on the pipeline that calls them.

use std::path::PathBuf;

use gates::{Config, Registry};
use report::GatePolicy;
use simulator::SimOptions;

/// Everything [`validate`](crate::pipeline::validate) needs besides the fleet.
#[derive(Debug)]
pub struct ValidateOptions {
    /// The migration file.
    pub sql_file: PathBuf,
    /// Gate configuration (`deployclaw.toml`).
    pub config: Config,
    /// The rules (built-in plus custom ones).
    pub registry: Registry,
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

    /// Options with the built-in rules, default configuration and simulator settings.
    pub fn new(sql_file: impl Into<PathBuf>) -> ValidateOptions {
        ValidateOptions {
            sql_file: sql_file.into(),
            config: Config::default(),
            registry: Registry::builtin(),
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

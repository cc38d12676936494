//! [`ValidateOptions`]: everything the whole gate ([`crate::pipeline::validate`]) needs
//! besides the fleet. Its own file so that the pipeline's steps (rollback, per-shard gates,
//! shared shadow) read it without depending on the pipeline that calls them.

use std::path::PathBuf;

use gates::{Config, Registry};
use report::GatePolicy;
use simulator::{ProbeOn, SampleLimits, ShadowData, SimOptions};

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

/// Everything [`validate`](crate::pipeline::validate) needs besides the fleet.
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
    /// A user-supplied rollback to prove instead of the generated one: a file, or text (a
    /// down script picked from a migrations directory, a Liquibase `--rollback` section).
    pub rollback: Option<MigrationSource>,
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
    /// Which rows the shadow holds: `None` (the default) takes the configuration's `[shadow]`
    /// section, else [`SimOptions::shadow_data`] (synthetic unless set). `--shadow-data sample`
    /// sets [`ShadowData::Sample`]: a bounded, FK-closed sample of each rehearsed shard's real
    /// rows is copied into the shadow ([`simulator::rehearsal::sample`]). See
    /// [`ValidateOptions::shadow_data`].
    pub shadow_data: Option<ShadowData>,
    /// Where the data probes run (`--probe-on`): `None` (the default) takes the
    /// configuration's `[probes] probe_on`, else [`SimOptions::probe_on`] (the writer). See
    /// [`ValidateOptions::probe_on`].
    pub probe_on: Option<ProbeOn>,
    /// `--partition K/N`: validate only the shards whose id hashes to partition `K` of `N`
    /// ([`report::Partition`]); the report is partial (`fleet.partition`) and `deployclaw report
    /// merge` combines the parts. `None` (the default): the whole fleet. See
    /// [`crate::partition`] for which checks are per slice.
    pub partition: Option<report::Partition>,
    /// The traffic window of the live reads (`--traffic-window-ms`): `None` takes the
    /// configuration's `[live] traffic_window_ms`, else [`SimOptions::live`]. See
    /// [`ValidateOptions::live_options`].
    pub traffic_window: Option<std::time::Duration>,
}

impl ValidateOptions {
    /// The effective blocking-lock budget in milliseconds.
    pub fn lock_budget(&self) -> u64 {
        self.lock_budget_ms
            .unwrap_or(self.config.lock_budget.max_blocking_ms)
    }

    /// Which rows the shadow holds in this run: [`ValidateOptions::shadow_data`] when set, else
    /// the configuration's `[shadow]` (`data = "sample"`, `sample_rows`, `sample_bytes` over
    /// [`SampleLimits::default`]), else [`SimOptions::shadow_data`].
    pub fn shadow_data(&self) -> ShadowData {
        if let Some(d) = self.shadow_data {
            return d;
        }
        let c = &self.config.shadow;
        match c.data {
            Some(gates::ShadowDataKind::Sample) => {
                let d = SampleLimits::default();
                ShadowData::Sample(SampleLimits {
                    rows_per_table: c.sample_rows.unwrap_or(d.rows_per_table),
                    max_bytes: c.sample_bytes.unwrap_or(d.max_bytes),
                })
            }
            Some(_) => ShadowData::Synthetic,
            None => self.sim.shadow_data,
        }
    }

    /// Where the data probes run in this run: [`ValidateOptions::probe_on`] when set, else the
    /// configuration's `[probes] probe_on`, else [`SimOptions::probe_on`].
    pub fn probe_on(&self) -> ProbeOn {
        if let Some(p) = self.probe_on {
            return p;
        }
        match self.config.probes.probe_on {
            Some(gates::ProbeTarget::Replica) => ProbeOn::Replica,
            Some(_) => ProbeOn::Writer,
            None => self.sim.probe_on,
        }
    }

    /// The replica lag bound of this run: `[probes] max_replica_lag`, else
    /// [`SimOptions::max_replica_lag`].
    pub fn max_replica_lag(&self) -> std::time::Duration {
        self.config
            .probes
            .max_replica_lag_ms
            .map(std::time::Duration::from_millis)
            .unwrap_or(self.sim.max_replica_lag)
    }

    /// The live workload reads of this run: [`SimOptions::live`] with the traffic window of
    /// [`ValidateOptions::traffic_window`] when set, else of the configuration's `[live]
    /// traffic_window_ms`, and the run's [`lock_budget`](Self::lock_budget) (the window is
    /// waited out in full only where a lock comes near it: [`simulator::LiveOptions::lock_budget`]).
    pub fn live_options(&self) -> simulator::LiveOptions {
        let mut live = self.sim.live.clone();
        if let Some(w) = self.traffic_window.or(self
            .config
            .live
            .traffic_window_ms
            .map(std::time::Duration::from_millis))
        {
            live.traffic_window = w;
        }
        // The rates serve the lock-time budget: the window lasts in full only where a lock
        // comes near it.
        live.lock_budget = Some(std::time::Duration::from_millis(self.lock_budget()));
        live
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
            rollback: None,
            policy: GatePolicy::default(),
            fleet_source: String::new(),
            lock_budget_ms: None,
            cache_dir: None,
            recalibrate: false,
            shadow_base_dir: default_shadow_base_dir(),
            shadow_data: None,
            probe_on: None,
            partition: None,
            traffic_window: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        Config::from_toml_str("deployclaw.toml", toml).expect("config")
    }

    #[test]
    fn shadow_data_is_synthetic_unless_asked_for_and_the_flag_wins_over_the_config() {
        let mut o = ValidateOptions::from_sql("m.sql", "SELECT 1");
        assert_eq!(o.shadow_data(), ShadowData::Synthetic);
        o.config = config("[shadow]\ndata = \"sample\"\nsample_rows = 7\n");
        assert_eq!(
            o.shadow_data(),
            ShadowData::Sample(SampleLimits {
                rows_per_table: 7,
                ..SampleLimits::default()
            })
        );
        o.shadow_data = Some(ShadowData::Synthetic);
        assert_eq!(o.shadow_data(), ShadowData::Synthetic);
        // A library user's simulator options count when neither the flag nor the file says.
        let mut o = ValidateOptions::from_sql("m.sql", "SELECT 1");
        o.sim.shadow_data = ShadowData::Sample(SampleLimits::default());
        assert_eq!(o.shadow_data(), o.sim.shadow_data);
        o.config = config("[shadow]\ndata = \"synthetic\"\n");
        assert_eq!(o.shadow_data(), ShadowData::Synthetic);
    }

    #[test]
    fn probes_run_on_the_writer_unless_the_flag_or_the_config_says_replica() {
        let mut o = ValidateOptions::from_sql("m.sql", "SELECT 1");
        assert_eq!(o.probe_on(), ProbeOn::Writer);
        assert_eq!(o.max_replica_lag(), simulator::DEFAULT_MAX_REPLICA_LAG);
        o.config = config("[probes]\nprobe_on = \"replica\"\nmax_replica_lag = \"1.5s\"\n");
        assert_eq!(o.probe_on(), ProbeOn::Replica);
        assert_eq!(o.max_replica_lag(), std::time::Duration::from_millis(1500));
        o.probe_on = Some(ProbeOn::Writer);
        assert_eq!(o.probe_on(), ProbeOn::Writer);
        let bad = Config::from_toml_str("deployclaw.toml", "[probes]\nprobe_on = \"reader\"\n");
        let msg = bad.expect_err("invalid").to_string();
        assert!(
            msg.contains("deployclaw.toml:2:12") && msg.contains("probe_on"),
            "{msg}"
        );
    }

    #[test]
    fn the_traffic_window_comes_from_the_flag_then_the_config_then_the_sim_options() {
        use std::time::Duration;
        let mut o = ValidateOptions::from_sql("m.sql", "SELECT 1");
        // The library's defaults, and the run's lock budget: the window lasts in full only
        // where a lock comes near it.
        assert_eq!(
            o.live_options(),
            simulator::LiveOptions {
                lock_budget: Some(Duration::from_millis(o.lock_budget())),
                ..simulator::LiveOptions::default()
            }
        );
        assert_eq!(o.live_options().traffic_window, Duration::from_secs(1));
        o.lock_budget_ms = Some(250);
        assert_eq!(
            o.live_options().lock_budget,
            Some(Duration::from_millis(250))
        );
        o.sim.live.traffic_window = Duration::from_millis(700);
        assert_eq!(o.live_options().traffic_window, Duration::from_millis(700));
        o.config = config("[live]\ntraffic_window_ms = 0\n");
        assert_eq!(o.live_options().traffic_window, Duration::ZERO);
        o.traffic_window = Some(Duration::from_millis(1500));
        assert_eq!(o.live_options().traffic_window, Duration::from_millis(1500));
        assert!(o.live_options().enabled);
    }
}

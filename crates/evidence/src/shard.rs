//! Everything the simulator learned about one shard ([`ShardEvidence`]) and about a whole run
//! ([`SimulationResult`]): probes, lock-time estimates, the execution log.

use std::collections::BTreeMap;

use migration_parser::LockMode;
use serde::{Deserialize, Serialize};

use crate::{CustomProbeRows, ProbeResult, RehearsalResult, TableStats};

/// A few numbers about a shard's catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CatalogSummary {
    /// Tables and views.
    pub tables: usize,
    /// Columns over all tables.
    pub columns: usize,
    /// Constraints over all tables.
    pub constraints: usize,
    /// Indexes over all tables.
    pub indexes: usize,
    /// Total size in bytes.
    pub total_bytes: i64,
}

/// Everything the simulator learned about one shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ShardEvidence {
    /// Shard id.
    pub shard: String,
    /// Instance name.
    pub instance: String,
    /// Database.
    pub database: String,
    /// Schema.
    pub schema: String,
    /// Catalog fingerprint (key into [`SimulationResult::rehearsals`]).
    pub fingerprint: Option<String>,
    /// Catalog summary.
    pub catalog: Option<CatalogSummary>,
    /// Server major version.
    pub server_version: Option<u32>,
    /// Probe results (failing existence checks, data probes, table sizes).
    pub probes: Vec<ProbeResult>,
    /// Sizes of the tables the migration touches.
    pub tables: Vec<TableStats>,
    /// Results of `simulator::SimOptions::custom_probes` by probe name: rows, or the error (an outcome).
    /// Empty when the shard was not probed (unreachable).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_probes: BTreeMap<String, CustomProbeRows>,
    /// Fingerprint of the rehearsal that applies (shared by all shards of the shape).
    pub rehearsal: Option<String>,
    /// Lock-time estimate.
    pub estimate: Option<LockEstimate>,
    /// Estimated blocking-lock time, ms (sum over statements).
    pub estimated_lock_ms: u64,
    /// The shard could not be reached or read (connection refused, auth failure, stopped
    /// mid-run). Everything else is then empty.
    pub unreachable: Option<String>,
    /// The probes did not all finish (shard timeout).
    pub incomplete: Option<String>,
    /// Wall time spent probing the shard.
    pub duration_ms: u64,
    /// The per-fleet proof: this shard's run after another shard's run in the same database
    /// (shadow rehearsal of a database shared by several shards only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_rerun: Option<crate::FleetRerun>,
    /// The live workload: lock holders, traffic, application queries, the replica probed
    /// ([`crate::LiveEvidence`]). Omitted from the JSON when nothing was attempted.
    #[serde(default, skip_serializing_if = "crate::LiveEvidence::is_empty")]
    pub live: crate::LiveEvidence,
}

/// The output of a simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SimulationResult {
    /// Per shard, in fleet order.
    pub shards: Vec<ShardEvidence>,
    /// One rehearsal per schema shape, by fingerprint.
    pub rehearsals: BTreeMap<String, RehearsalResult>,
    /// Throughput used for the estimates.
    pub throughput: Throughput,
    /// Execution log.
    pub steps: Vec<Step>,
    /// Wall time.
    pub duration_ms: u64,
}

impl SimulationResult {
    /// The evidence for a shard id.
    pub fn shard(&self, id: &str) -> Option<&ShardEvidence> {
        self.shards.iter().find(|s| s.shard == id)
    }
    /// The rehearsal applying to a shard.
    pub fn rehearsal_for(&self, id: &str) -> Option<&RehearsalResult> {
        self.shard(id)
            .and_then(|s| s.rehearsal.as_ref())
            .and_then(|f| self.rehearsals.get(f))
    }
}

/// Throughput figures the model divides sizes by.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Sequential scan, MB/s (1 MB = 1,000,000 bytes).
    pub scan_mb_per_s: f64,
    /// Table rewrite (heap + index rebuild), MB/s of total relation size.
    pub rewrite_mb_per_s: f64,
    /// B-tree index build, MB/s of heap size.
    pub index_mb_per_s: f64,
    /// Fixed cost of a catalog-only change, ms.
    pub catalog_ms: f64,
    /// Measured by `simulator::estimate::calibrate` (false = the default constants).
    pub calibrated: bool,
    /// Size of the calibration table, MB.
    pub sample_mb: f64,
}

impl Default for Throughput {
    /// Conservative constants for a cloud volume under load: scan 150 MB/s, rewrite 40 MB/s,
    /// index build 30 MB/s, catalog change 5 ms.
    fn default() -> Self {
        Throughput {
            scan_mb_per_s: 150.0,
            rewrite_mb_per_s: 40.0,
            index_mb_per_s: 30.0,
            catalog_ms: 5.0,
            calibrated: false,
            sample_mb: 0.0,
        }
    }
}

/// The estimate for one statement on one shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StatementEstimate {
    /// 0-based statement index.
    pub index: usize,
    /// Estimated run time on this shard, ms.
    pub estimated_ms: f64,
    /// Strongest lock blocking reads or writes held on a pre-existing relation during the
    /// statement (`None`: nothing blocked).
    pub blocking_lock: Option<LockMode>,
    /// Relations (`schema.name`) held in [`StatementEstimate::blocking_lock`]-or-weaker blocking
    /// modes.
    pub blocked_relations: Vec<String>,
    /// What the lock blocks, in words (`all reads and writes`, `all writes …`).
    pub blocks: Option<String>,
    /// Time the blocking lock is held during this statement, ms.
    pub estimated_lock_ms: f64,
    /// How the figure was derived (`rewrite orders 1.2 GB @ 40 MB/s; …`).
    pub basis: String,
}

/// The estimate for one shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LockEstimate {
    /// Per statement, in file order.
    pub statements: Vec<StatementEstimate>,
    /// Sum of blocking-lock time over the statements, ms.
    pub total_lock_ms: u64,
    /// The longest single statement's blocking-lock time, ms.
    pub max_statement_lock_ms: u64,
    /// Estimated total run time of the migration on this shard, ms.
    pub total_ms: u64,
    /// The throughput used.
    pub throughput: Throughput,
}

/// One entry of the execution log (`steps[]` in the JSON report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Step {
    /// 1-based sequence number, in order of completion.
    pub step: u32,
    /// What was done (`probe shard`, `clone schema`, `rehearse`, `calibrate`, ...).
    pub action: String,
    /// Details (shard id, fingerprint, counts). Never contains a password.
    pub details: String,
    /// How long it took.
    pub duration_ms: u64,
}

//! Assembly: one [`ShardEvidence`] per shard, in fleet order, from what the phases found, with
//! the lock-time estimate of the rehearsal that applies to it.

use std::collections::{BTreeMap, HashMap};

use migration_parser::Migration;
use topology::Fleet;

use super::probing::ShardOutcome;
use super::reach::Reach;
use crate::estimate::{Throughput, estimate};
use crate::rehearsal::RehearsalResult;
use crate::run::{ShardEvidence, SimulationResult};

/// The evidence of every shard of `fleet`; `outs` are the probe outcomes by fleet index.
pub(super) fn assemble(
    migration: &Migration,
    fleet: &Fleet,
    reach: &Reach<'_>,
    mut outs: HashMap<usize, ShardOutcome>,
    rehearsals: &BTreeMap<String, RehearsalResult>,
    tp: &Throughput,
) -> Vec<ShardEvidence> {
    let mut shards = Vec::new();
    for (i, s) in fleet.shards.iter().enumerate() {
        let schema = s.location.schema().to_string();
        let mut ev = ShardEvidence {
            shard: s.id.clone(),
            instance: s.instance.clone(),
            database: s.location.database().to_string(),
            schema: schema.clone(),
            fingerprint: reach.fingerprints.get(&s.id).cloned(),
            catalog: reach.catalogs.get(&s.id).map(crate::run::catalog_summary),
            server_version: None,
            probes: Vec::new(),
            tables: Vec::new(),
            custom_probes: BTreeMap::new(),
            rehearsal: None,
            estimate: None,
            estimated_lock_ms: 0,
            unreachable: reach.unreachable.get(&s.id).cloned(),
            incomplete: None,
            duration_ms: 0,
            fleet_rerun: None,
            live: Default::default(),
        };
        if let Some(out) = outs.remove(&i) {
            ev.server_version = out.version;
            ev.duration_ms = out.duration.as_millis() as u64;
            ev.incomplete = out.incomplete;
            if out.unreachable.is_some() {
                ev.unreachable = out.unreachable;
            }
            if let Some(p) = out.probes {
                ev.probes = p.results;
                ev.tables = p.tables;
                ev.custom_probes = p.custom;
            }
        }
        if ev.unreachable.is_none() {
            let reh = ev.fingerprint.as_ref().and_then(|f| rehearsals.get(f));
            ev.rehearsal = reh.map(|r| r.fingerprint.clone());
            let version = ev.server_version.unwrap_or(migration.options.pg_version.0);
            let est = estimate(migration, reh, &schema, &ev.tables, version, tp);
            ev.estimated_lock_ms = est.total_lock_ms;
            ev.estimate = Some(est);
        } else {
            ev.fingerprint = None;
        }
        shards.push(ev);
    }
    shards
}

/// Estimate every reachable shard of `result` again with throughput `tp` (a calibration
/// measured after the run, when the machine was idle again), exactly as the run's assembly
/// would have with these figures (and what would queue behind each lock with them);
/// `result.throughput` becomes `tp`.
pub fn re_estimate(migration: &Migration, result: &mut SimulationResult, tp: &Throughput) {
    for ev in &mut result.shards {
        if ev.unreachable.is_some() || ev.estimate.is_none() {
            continue;
        }
        let reh = ev.rehearsal.as_ref().and_then(|f| result.rehearsals.get(f));
        let version = ev.server_version.unwrap_or(migration.options.pg_version.0);
        let est = estimate(migration, reh, &ev.schema, &ev.tables, version, tp);
        ev.estimated_lock_ms = est.total_lock_ms;
        // What would queue behind each lock is the rate times the new lock time.
        ev.live.queued = crate::live::traffic::queue_estimates(&est, &ev.live);
        ev.estimate = Some(est);
    }
    result.throughput = *tp;
}

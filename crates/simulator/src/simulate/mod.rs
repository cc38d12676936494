//! Orchestration of a simulation run, one file per phase: [`reach`] (connect, catalogs,
//! fingerprints, rehearsal jobs), [`probing`] (pools, custom-probe pre-flight, probes on every
//! shard in parallel, bounded per instance), [`rehearse`] (one rehearsal per schema shape:
//! [`shadow`] or [`in_place_run`], calibration), and [`assemble`] (evidence and lock-time
//! estimates per shard), [`replica`] (`--probe-on replica`: which replica each shard's data
//! probes run on, after measuring its lag). [`session`] guards sessions against cancellation; [`job`] is one
//! rehearsal to run.

mod assemble;
mod fleet_rerun;
mod in_place_run;
mod job;
mod probing;
mod reach;
mod rehearse;
mod replica;
mod session;
mod shadow;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use migration_parser::Migration;
use topology::{Catalog, Fleet};

pub use assemble::re_estimate;
pub use fleet_rerun::fleet_partner;
pub use shadow::{calibrate_shadow, calibration_summary};

use crate::SimError;
use crate::control::{CancelToken, Progress, ProgressEvent, StepLog};
use crate::probe::{self, ProbePlan};
use crate::rehearsal::RehearsalMode;
use crate::run::{SimOptions, SimulationResult, Simulator};

/// Shorthand for `Simulator { options }.run(...)`.
pub async fn run(
    migration: &Migration,
    fleet: &Fleet,
    catalogs: Option<&BTreeMap<String, Catalog>>,
    options: &SimOptions,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<SimulationResult, SimError> {
    Simulator {
        options: options.clone(),
    }
    .run(migration, fleet, catalogs, progress, cancel)
    .await
}

impl Simulator {
    /// A simulator with these options.
    pub fn new(options: SimOptions) -> Self {
        Simulator { options }
    }

    /// Probe every shard of `fleet`, rehearse once per schema shape, estimate lock time.
    ///
    /// `catalogs` (by shard id) gives each shard's fingerprint and catalog summary; when `None`
    /// the simulator introspects the fleet itself ([`topology::introspect_fleet`]). Shards whose
    /// catalog could not be read are reported unreachable. Returns `Err` only for
    /// [`SimError::Cancelled`] and invalid options; everything else is an outcome in the result.
    pub async fn run(
        &self,
        migration: &Migration,
        fleet: &Fleet,
        catalogs: Option<&BTreeMap<String, Catalog>>,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<SimulationResult, SimError> {
        let o = &self.options;
        check_options(o)?;
        let started = Instant::now();
        let steps = StepLog::default();
        let plan = plan_probes(migration, o, &steps);
        let mut reach = reach::reach(fleet, catalogs, o, cancel, &steps).await?;
        let rehearsal_count = if o.rehearsal == RehearsalMode::Skip {
            0
        } else {
            reach.jobs.len()
        };
        let mut pools = probing::Pools::open(fleet, &mut reach.unreachable, o);
        let mut replicas = replica::plan(fleet, &reach.unreachable, o, cancel, &steps).await;
        pools.use_replicas(fleet, &mut replicas, o);
        pools
            .check_custom_probes(fleet, &mut reach.unreachable, o, cancel, &steps)
            .await?;

        // Announced once the custom probes passed: a refused run never says it is probing.
        progress.event(ProgressEvent::Started {
            shards: fleet.shards.len(),
            rehearsals: rehearsal_count,
        });
        for s in &fleet.shards {
            if !reach.unreachable.contains_key(&s.id) {
                progress.event(ProgressEvent::ShardStarted {
                    shard: s.id.clone(),
                });
            }
        }
        // Probes (spawned) and rehearsals (this task) concurrently.
        let jobs = std::mem::take(&mut reach.jobs);
        let pair =
            fleet_rerun::first_pair(fleet, &reach.unreachable, jobs.first().map(|j| &j.shard));
        let live_dbs = pools.live_databases(fleet, &reach.unreachable);
        // Said when the probes and rehearsals are done (with the estimates made): the traffic
        // window lasts until then, and longer only where a rate can change the gate.
        let rest_done = crate::live::RestDone::default();
        let rest = async {
            let (outs, (rehearsals, tp, rerun)) = tokio::join!(
                pools.probe_all(
                    fleet,
                    &reach.unreachable,
                    &plan,
                    o,
                    progress,
                    cancel,
                    &steps
                ),
                rehearse::rehearse_all(migration, jobs, pair, o, progress, cancel, &steps)
            );
            let failed: Vec<(usize, String)> = outs
                .iter()
                .filter_map(|(i, o)| Some((*i, o.replica_failed.clone()?)))
                .collect();
            let shards = assemble::assemble(migration, fleet, &reach, outs, &rehearsals, &tp);
            let full_window = o
                .live
                .lock_budget
                .map(|b| crate::live::near_budget_databases(&shards, b, &tp));
            rest_done.finish(full_window);
            (shards, failed, rehearsals, tp, rerun)
        };
        let ((mut shards, failed, rehearsals, tp, rerun), mut live) = tokio::join!(
            rest,
            crate::live::read_all(migration, &live_dbs, &o.live, cancel, &rest_done, &steps)
        );
        drop(live_dbs);
        pools.close().await;
        if cancel.is_cancelled() {
            return Err(SimError::Cancelled);
        }
        replicas.failed_during_probing(fleet, failed.iter().map(|(i, r)| (*i, r.as_str())));
        for ev in &mut shards {
            if let Some(l) = live.remove(&ev.shard) {
                ev.live = l;
            }
            ev.live.replica = replicas.reads.remove(&ev.shard);
            if let Some(est) = &ev.estimate {
                ev.live.queued = crate::live::traffic::queue_estimates(est, &ev.live);
            }
        }
        if let Some((second, rerun)) = rerun
            && let Some(ev) = shards.iter_mut().find(|e| e.shard == second)
        {
            ev.fleet_rerun = Some(rerun);
        }
        Ok(SimulationResult {
            shards,
            rehearsals,
            throughput: tp,
            steps: steps.take(),
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// Options a run refuses before doing anything: no connections, custom probes without a
/// unique name, or one whose text is refused without looking at a shard.
fn check_options(o: &SimOptions) -> Result<(), SimError> {
    if o.concurrency == 0 {
        return Err(SimError::InvalidOptions {
            reason: "concurrency must be at least 1".into(),
        });
    }
    let mut names = HashSet::new();
    for p in &o.custom_probes {
        if p.name.is_empty() || !names.insert(p.name.as_str()) {
            return Err(SimError::InvalidOptions {
                reason: format!(
                    "custom probe names must be unique and non-empty (found `{}` twice or empty)",
                    p.name
                ),
            });
        }
        if let Some(refusal) = crate::custom::static_refusal(p) {
            return Err(refusal);
        }
    }
    Ok(())
}

/// Plan the probes of `migration`, and log the plan.
fn plan_probes(migration: &Migration, o: &SimOptions, steps: &StepLog) -> Arc<ProbePlan> {
    let t0 = Instant::now();
    let plan = Arc::new(probe::plan(migration));
    let mut planned = format!(
        "{} data probe(s), {} existence check(s), {} table(s) sized",
        plan.data_probe_count(),
        plan.reference_count(),
        plan.tables.len()
    );
    if !o.custom_probes.is_empty() {
        planned.push_str(&format!(", {} custom probe(s)", o.custom_probes.len()));
    }
    steps.push("plan probes", planned, t0.elapsed());
    plan
}

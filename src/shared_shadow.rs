//! The ephemeral shadow cluster the pipeline starts once for the rehearsal and the rollback
//! proof (with its throughput calibration, cached per machine), and the clean-up of a
//! `--shadow` scratch server's leftovers.

use std::time::Instant;

use simulator::SimOptions;

use crate::options::ValidateOptions;
use crate::steps::{Steps, ms};

/// Spare databases in the shadow's cached template: one for the rehearsal of the majority
/// shape, one for the rollback proof (further shapes fall back to `CREATE DATABASE`).
const SHADOW_SPARE_DATABASES: u32 = 2;

/// The shadow cluster the pipeline starts for the rehearsal and the rollback proof.
pub(crate) struct SharedShadow {
    pg: Result<topology::ephemeral::EphemeralPg, topology::TopologyError>,
    start_ms: u64,
    calibration: Option<Calibration>,
}

/// The throughput figures of the shared shadow.
enum Calibration {
    /// From [`ValidateOptions::cache_dir`], measured this long ago.
    Cached(simulator::Throughput, std::time::Duration),
    /// None cached: measured after the probes, the rehearsal and the proof, on an idle machine
    /// ([`calibrate_after_run`]); the run itself estimates nothing that needs it before.
    Deferred,
}

/// Start the ephemeral shadow cluster when the rehearsal or the rollback proof needs one and no
/// `--shadow URL` was given (`None` when nothing needs it), and look up its calibration in the
/// cache. This runs beside the introspection and the probes (the rehearsal and the proof wait
/// for it through a [`simulator::PendingShadow`]): on a first run on a machine its `initdb` is
/// off the probes' critical path.
pub(crate) async fn start_shared_shadow(opts: &ValidateOptions) -> Option<SharedShadow> {
    if !shadow_needed(opts) {
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
    let calibration = match &pg {
        Ok(pg) if wants_calibration(opts) => {
            let key = crate::cache::ephemeral_key(pg.bin_dir(), pg.version());
            let cached = opts
                .cache_dir
                .as_deref()
                .filter(|_| !opts.recalibrate)
                .and_then(|dir| crate::cache::load_calibration(dir, &key));
            Some(match cached {
                Some((tp, age)) => Calibration::Cached(tp, age),
                None => Calibration::Deferred,
            })
        }
        _ => None,
    };
    Some(SharedShadow {
        pg,
        start_ms,
        calibration,
    })
}

/// Whether the run starts an ephemeral shadow of its own (see [`start_shared_shadow`]).
pub(crate) fn shadow_needed(opts: &ValidateOptions) -> bool {
    opts.sim.shadow.is_none()
        && (opts.sim.rehearsal == simulator::RehearsalMode::Shadow || opts.validate_rollback)
}

/// Whether the run calibrates the shadow's throughput (no figures given, calibration on, a
/// shadow rehearsal).
fn wants_calibration(opts: &ValidateOptions) -> bool {
    opts.sim.calibrate
        && opts.sim.throughput.is_none()
        && opts.sim.rehearsal == simulator::RehearsalMode::Shadow
}

/// [`topology::scratch::reap_leftovers`] on the scratch server `spec`: the line for the step
/// log, `None` when there was nothing to reap. A failure is a line too (the rehearsal reports
/// its own connection problems).
pub(crate) async fn reap_scratch_leftovers(spec: &topology::ConnectionSpec) -> Option<String> {
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

/// `d` in the largest unit that keeps it readable (`90 s`, `5 min`, `3 h`, `2 days`).
fn human_age(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// The shared shadow, adopted: the cluster (which must live until the rehearsal and the proof
/// are done; `None` when it could not be started — the simulator and the proof then try on
/// their own and report it), what the rehearsal is told, and whether the calibration waits for
/// the end of the run.
pub(crate) struct Adopted {
    pub(crate) pg: Option<topology::ephemeral::EphemeralPg>,
    pub(crate) ready: simulator::ReadyShadow,
    pub(crate) calibrate_after: bool,
}

/// Adopt the shared shadow for the rehearsal and the proof, and log it.
pub(crate) fn adopt_shared_shadow(shared_shadow: SharedShadow, steps: &mut Steps) -> Adopted {
    let SharedShadow {
        pg,
        start_ms,
        calibration,
    } = shared_shadow;
    let pg = match pg {
        Ok(pg) => pg,
        Err(e) => {
            steps.push(("start shadow".into(), format!("failed: {e}"), start_ms));
            return Adopted {
                pg: None,
                ready: simulator::ReadyShadow::default(),
                calibrate_after: false,
            };
        }
    };
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
    let mut ready = simulator::ReadyShadow {
        spec: Some(pg.connection_spec()),
        throughput: None,
        calibrate: false,
    };
    let calibrate_after = match calibration {
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
            ready.throughput = Some(tp);
            false
        }
        Some(Calibration::Deferred) => true,
        None => false,
    };
    Adopted {
        pg: Some(pg),
        ready,
        calibrate_after,
    }
}

/// The calibration of a run whose cache held none: measured on the shared shadow `pg` once
/// the probes, the rehearsal and the proof are done (the machine idle again, so the figures
/// are the shadow's and not the probes' contention), stored in the cache, and every shard's
/// lock-time estimate made again with it ([`simulator::re_estimate`]) — the estimates the run
/// would have made had the figures been known before. A failure keeps the defaults and says so.
pub(crate) async fn calibrate_after_run(
    opts: &ValidateOptions,
    pg: &topology::ephemeral::EphemeralPg,
    migration: &migration_parser::Migration,
    sim: &mut simulator::SimulationResult,
    steps: &mut Steps,
) {
    let t = Instant::now();
    let sim_opts = SimOptions {
        shadow_is_ephemeral: true,
        ..opts.sim.clone()
    };
    match simulator::calibrate_shadow(&pg.connection_spec(), &sim_opts).await {
        Ok(tp) => {
            if let Some(dir) = &opts.cache_dir {
                let key = crate::cache::ephemeral_key(pg.bin_dir(), pg.version());
                // Best effort: an unwritable cache only costs the next run a calibration.
                let _ = crate::cache::store_calibration(dir, &key, &tp);
            }
            simulator::re_estimate(migration, sim, &tp);
            steps.push((
                "calibrate".into(),
                format!(
                    "{} (measured after the run; estimates made with it)",
                    simulator::calibration_summary(&tp)
                ),
                ms(t),
            ));
        }
        Err(e) => steps.push((
            "calibrate".into(),
            format!("failed, using defaults: {e}"),
            ms(t),
        )),
    }
}

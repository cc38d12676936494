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
    /// Measured now, taking this many milliseconds.
    Measured(Result<simulator::Throughput, simulator::SimError>, u64),
}

/// Start the ephemeral shadow cluster when the rehearsal or the rollback proof needs one and no
/// `--shadow URL` was given (`None` when nothing needs it), and calibrate on it unless the cache
/// holds a recent calibration. This runs while the fleet is introspected, before the probes
/// load the machine, so the calibration measures the shadow and not the probes' contention.
pub(crate) async fn start_shared_shadow(opts: &ValidateOptions) -> Option<SharedShadow> {
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

/// Use the shared shadow for the simulator (`sim_opts`), with its calibration, and log it.
/// Returns the cluster, which must live until the rehearsal and the proof are done; `None`
/// when there is none (the simulator and the proof then try on their own and report it).
pub(crate) fn adopt_shared_shadow(
    shared_shadow: Option<SharedShadow>,
    sim_opts: &mut SimOptions,
    steps: &mut Steps,
) -> Option<topology::ephemeral::EphemeralPg> {
    match shared_shadow {
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
    }
}

//! The rollback step of the pipeline: generate the inverse from the majority schema shape and,
//! with `validate_rollback`, prove it (or the user's `--rollback-file`) on a shadow — once per
//! schema shape (`rollback_proof.rs`), so that every shard gets its own shape's outcome.

use std::collections::BTreeMap;

use evidence::ProofStatus;
use migration_parser::Migration;
use report::RollbackInfo;
use rollback::{Options, Proof, Shadow};
use topology::catalog::DriftReport;
use topology::{Catalog, ConnectionSpec, Fleet};

use crate::PipelineError;
use crate::options::{MigrationSource, ValidateOptions};
use crate::rollback_proof::{ShapeJob, prove_shapes};

/// What the rollback step produced.
#[derive(Debug, Clone, Default)]
pub struct RollbackOutcome {
    /// The report's rollback section (with one proof per schema shape in `info.proofs`).
    pub info: RollbackInfo,
    /// Irreversible steps with their statement locations (for `rollback-irreversible`).
    pub irreversible: Vec<rollback::Irreversible>,
    /// The proof of the majority shape, when one ran.
    pub proof: Option<Proof>,
}

/// Generate (and, when asked, prove per schema shape) the rollback.
pub(crate) async fn rollback_for(
    opts: &ValidateOptions,
    fleet: &Fleet,
    migration: &Migration,
    catalogs: &BTreeMap<String, Catalog>,
    drift: &DriftReport,
    shared_shadow: Option<&topology::ephemeral::EphemeralPg>,
    dump_cache: Option<&simulator::DumpCache>,
) -> Result<RollbackOutcome, PipelineError> {
    // The representative shard: the first of the fleet's majority schema shape.
    let Some((shard_id, catalog)) = representative(catalogs, drift.reference_shard.as_deref())
    else {
        return Ok(RollbackOutcome {
            info: RollbackInfo {
                source: "none".into(),
                irreversible: vec!["no shard catalog could be read: rollback not generated".into()],
                ..RollbackInfo::default()
            },
            ..RollbackOutcome::default()
        });
    };
    let generated = rollback::generate(migration, catalog, &Options::default());
    let user = match &opts.rollback {
        Some(source) => {
            let (name, bytes) = match source {
                MigrationSource::File(path) => (
                    path.display().to_string(),
                    crate::input::read_capped(path).map_err(|source| PipelineError::Read {
                        file: path.display().to_string(),
                        source,
                    })?,
                ),
                MigrationSource::Text { name, sql } => (name.clone(), sql.as_bytes().to_vec()),
            };
            Some(migration_parser::parse_bytes(
                &name,
                &bytes,
                &opts.config.parse_options(),
            )?)
        }
        None => None,
    };
    let mut out = RollbackOutcome {
        info: RollbackInfo {
            source: if user.is_some() {
                "user".into()
            } else {
                "generated".into()
            },
            script: Some(match &user {
                Some(u) => u.source.clone(),
                None => generated.script.clone(),
            }),
            irreversible: generated
                .irreversible
                .iter()
                .map(|i| format!("line {}: {}: {}", i.line, i.sql, i.reason))
                .collect(),
            ..RollbackInfo::default()
        },
        irreversible: generated.irreversible.clone(),
        proof: None,
    };
    if !opts.validate_rollback {
        return Ok(out);
    }
    let shadow = match (&opts.sim.shadow, shared_shadow) {
        (Some(spec), _) => Shadow::from_url(&spec_url(spec))?,
        (None, Some(pg)) => Shadow::from_ephemeral(pg),
        (None, None) => Shadow::ephemeral().await?,
    };
    let jobs = shape_jobs(fleet, catalogs, drift, &shard_id);
    let proved = prove_shapes(
        fleet,
        migration,
        user.as_ref(),
        &jobs,
        &shadow,
        dump_cache,
        opts,
    )
    .await;
    for (job, (shape, proof)) in jobs.iter().zip(proved) {
        if let Some(p) = &proof {
            record_data_loss(&mut out.info, p);
        }
        if job.representative == shard_id {
            out.proof = proof;
        }
        out.info.proofs.push(shape);
    }
    summarize(&mut out.info, &shard_id);
    Ok(out)
}

/// One proof job per schema shape (drift detection's groups, largest first), proven on the
/// group's first shard — the majority shape on the reference shard.
fn shape_jobs<'a>(
    fleet: &Fleet,
    catalogs: &'a BTreeMap<String, Catalog>,
    drift: &DriftReport,
    reference: &str,
) -> Vec<ShapeJob<'a>> {
    // The first rehearsal's shard (the first one read, in fleet order) and its partner.
    let read = |s: &topology::Shard| catalogs.contains_key(&s.id);
    let first = fleet.shards.iter().find(|s| read(s));
    let partner = first.and_then(|f| Some((f, simulator::fleet_partner(fleet, f, read)?)));
    drift
        .groups
        .iter()
        .filter_map(|g| {
            let rep = if g.shards.iter().any(|s| s == reference) {
                reference
            } else {
                g.shards.first()?.as_str()
            };
            let (id, catalog) = catalogs.get_key_value(rep)?;
            Some(ShapeJob {
                fingerprint: g.fingerprint.0.clone(),
                representative: id.clone(),
                shards: g.shards.clone(),
                catalog,
                partner: partner
                    .filter(|(f, _)| &f.id == id)
                    .map(|(_, p)| p.location.schema().to_string()),
            })
        })
        .collect()
}

/// `tested` (forward and rollback ran on the majority shape, proven on `reference`) and
/// `mismatches` (every shape's differences; prefixed with the shape when there are several)
/// from the proofs per shape. `RollbackInfo::proven` (the report's `rollback_tested`) also
/// needs every shape proven.
fn summarize(info: &mut RollbackInfo, reference: &str) {
    let several = info.proofs.len() > 1;
    info.tested = info
        .proofs
        .iter()
        .any(|p| p.representative_shard == reference && p.outcome != ProofStatus::NotProven);
    info.mismatches = info
        .proofs
        .iter()
        .flat_map(|p| {
            p.differences.iter().map(move |d| {
                if several {
                    format!(
                        "shape {} ({}): {d}",
                        p.schema_fingerprint
                            .get(..12)
                            .unwrap_or(&p.schema_fingerprint),
                        p.representative_shard
                    )
                } else {
                    d.clone()
                }
            })
        })
        .collect();
}

/// Columns whose sample values did not survive the round trip, as irreversible lines.
fn record_data_loss(info: &mut RollbackInfo, proof: &Proof) {
    for loss in &proof.data_loss {
        let line = format!(
            "data: {}.{}: {} of {} sample values lost ({})",
            loss.table, loss.column, loss.values_lost, loss.rows_before, loss.reason
        );
        if !info.irreversible.contains(&line) {
            info.irreversible.push(line);
        }
    }
}

fn spec_url(spec: &ConnectionSpec) -> String {
    // The shadow's URL including its password (never printed: Shadow redacts it).
    let mut url = format!(
        "postgres://{}@{}:{}/{}",
        spec.user, spec.host, spec.port, spec.database
    );
    if spec.host.starts_with('/') {
        url = format!(
            "postgres://{}@localhost/{}?host={}&port={}",
            spec.user, spec.database, spec.host, spec.port
        );
    }
    if let Some(p) = &spec.password {
        url = url.replacen("@", &format!(":{}@", urlencode(p.expose())), 1);
    }
    url
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The catalog of the reference (majority-shape) shard, else the first one read.
fn representative<'a>(
    catalogs: &'a BTreeMap<String, Catalog>,
    reference_shard: Option<&str>,
) -> Option<(String, &'a Catalog)> {
    if let Some(id) = reference_shard
        && let Some(c) = catalogs.get(id)
    {
        return Some((id.to_owned(), c));
    }
    catalogs.iter().next().map(|(k, c)| (k.clone(), c))
}

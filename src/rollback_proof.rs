//! The rollback proof per schema shape: for each distinct catalog fingerprint, the shape's
//! representative shard is cloned (the rehearsal's `pg_dump`, through the run's cache), its
//! `pg_stats` value hints are read, and forward → rollback runs on the shared shadow. The
//! result is read only through `rollback::Proof::outcome()` and becomes the shape's
//! `evidence::ShapeProof`, which every shard of the shape gets.

use std::time::Instant;

use evidence::{ProofStatus, ShapeProof};
use futures::StreamExt as _;
use migration_parser::Migration;
use rollback::{Options, Proof, ProofOutcome, ProveOptions, RollbackSource, Shadow};
use topology::{Catalog, ConnectionSpec, Fleet};

use crate::options::ValidateOptions;
use crate::value_hints::{hint_columns, read_hints};

/// Proofs running at once on the shared shadow.
const MAX_CONCURRENT_PROOFS: usize = 2;

/// One schema shape to prove.
#[derive(Debug)]
pub(crate) struct ShapeJob<'a> {
    /// The shape's catalog fingerprint.
    pub fingerprint: String,
    /// The shard cloned for the proof.
    pub representative: String,
    /// Every shard of the shape.
    pub shards: Vec<String>,
    /// The representative's catalog (the generated rollback of this shape is built from it).
    pub catalog: &'a Catalog,
    /// The schema of the shard the first rehearsal runs after the representative's (when the
    /// representative is the first rehearsal's shard): its schemas are dumped too, so that the
    /// proof and the rehearsal share one `pg_dump` ([`simulator::fleet_partner`]).
    pub partner: Option<String>,
}

/// Prove every shape, at most [`MAX_CONCURRENT_PROOFS`] at a time, results in `jobs` order:
/// the shape's proof (never an `Err`: a proof that cannot run is `NotProven` with the reason)
/// and the underlying `Proof` when one ran.
pub(crate) async fn prove_shapes(
    fleet: &Fleet,
    migration: &Migration,
    user: Option<&Migration>,
    jobs: &[ShapeJob<'_>],
    shadow: &Shadow,
    dump_cache: Option<&simulator::DumpCache>,
    opts: &ValidateOptions,
) -> Vec<(ShapeProof, Option<Proof>)> {
    let columns = hint_columns(migration);
    let columns = &columns;
    futures::stream::iter(jobs)
        .map(|job| async move {
            let started = Instant::now();
            let (shape, proof) = prove_shape(
                fleet, migration, user, job, shadow, dump_cache, columns, opts,
            )
            .await;
            let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            (
                shape.with_shards(job.shards.clone()).with_duration_ms(ms),
                proof,
            )
        })
        .buffered(MAX_CONCURRENT_PROOFS)
        .collect()
        .await
}

/// Prove one shape on its representative shard.
#[allow(clippy::too_many_arguments)]
async fn prove_shape(
    fleet: &Fleet,
    migration: &Migration,
    user: Option<&Migration>,
    job: &ShapeJob<'_>,
    shadow: &Shadow,
    dump_cache: Option<&simulator::DumpCache>,
    columns: &[(String, String)],
    opts: &ValidateOptions,
) -> (ShapeProof, Option<Proof>) {
    let not_proven = |reason: String| {
        (
            ShapeProof::not_proven(&job.fingerprint, &job.representative, reason),
            None,
        )
    };
    let Some(shard) = fleet.shards.iter().find(|s| s.id == job.representative) else {
        return not_proven("the shard is not in the fleet".into());
    };
    let Some(instance) = fleet.instance(&shard.instance) else {
        return not_proven(format!("instance {} is not in the fleet", shard.instance));
    };
    let (database, schema) = (shard.location.database(), shard.location.schema());
    // The same schemas the rehearsal clones, dumped once for both through the run's cache; the
    // value hints are read from the source meanwhile.
    let (dumped, value_hints) = tokio::join!(
        dump_for_proof(
            &instance.connection,
            (database, schema, job.partner.as_deref()),
            migration,
            job.catalog,
            dump_cache,
        ),
        read_hints(
            &instance.connection,
            &instance.name,
            database,
            schema,
            columns,
        )
    );
    let setup = match dumped {
        Ok(s) => s,
        Err(e) => return not_proven(format!("cannot dump the shard's schema: {e}")),
    };
    // The generated rollback of this shape (an `ADD COLUMN IF NOT EXISTS` is undone only where
    // the column did not exist).
    let generated = rollback::generate(migration, job.catalog, &Options::default());
    let source = match user {
        Some(u) => RollbackSource::Script(u),
        None => RollbackSource::Generated(&generated),
    };
    // `--shadow-data sample`: the shard's real rows (read once, shared with the rehearsal).
    let sample_data = simulator::proof_sample(
        opts.shadow_data(),
        &opts.sim.sample_cache,
        opts.sim.probe_timeout,
        &instance.connection,
        database,
        schema,
        migration,
    )
    .await;
    let prove_opts = ProveOptions {
        schema: schema.to_owned(),
        value_hints,
        // A schema-filtered pg_dump leaves the shard's extensions out.
        extensions: job.catalog.extensions.clone(),
        sample_data,
        ..ProveOptions::default()
    };
    match rollback::prove(
        shadow,
        rollback::Setup::Sql(&setup),
        migration,
        source,
        &prove_opts,
    )
    .await
    {
        Ok(p) => (shape_proof(job, &p.outcome()), Some(p)),
        Err(e) => not_proven(format!("the shadow proof could not run: {e}")),
    }
}

/// The proof's outcome as the shape's plain-data evidence.
fn shape_proof(job: &ShapeJob<'_>, outcome: &ProofOutcome) -> ShapeProof {
    let (fp, rep) = (&job.fingerprint, &job.representative);
    match outcome {
        ProofOutcome::Proven { data, note } => {
            let p = ShapeProof::new(fp, rep, ProofStatus::Proven).with_data(*data);
            match note {
                Some(n) => p.with_reason(n.clone()),
                None => p,
            }
        }
        ProofOutcome::Mismatch { differences } => {
            ShapeProof::new(fp, rep, ProofStatus::Mismatch).with_differences(differences.clone())
        }
        ProofOutcome::NotProven { reason } => ShapeProof::not_proven(fp, rep, reason.clone()),
    }
}

/// The shard's schema plus every schema its foreign keys reference.
fn schemas_to_clone(c: &Catalog) -> Vec<String> {
    let mut s = vec![c.schema.clone()];
    for t in c.tables.values() {
        for k in t.constraints.values() {
            if let Some(fk) = &k.foreign_key
                && !s.contains(&fk.references.schema)
            {
                s.push(fk.references.schema.clone());
            }
        }
    }
    s
}

/// `pg_dump --schema-only` of the schemas the rehearsal clones for this shard (structure only;
/// the proof seeds its own rows), without psql meta-commands. With the `partner`'s schema, the
/// rehearsal's dump holds its schemas too: so does this one (the same dump); the proof reads
/// and compares only the shard's own schema.
async fn dump_for_proof(
    conn: &ConnectionSpec,
    (database, schema, partner): (&str, &str, Option<&str>),
    migration: &Migration,
    catalog: &Catalog,
    cache: Option<&simulator::DumpCache>,
) -> Result<String, String> {
    let bin = topology::ephemeral::find_bin_dir().map_err(|e| e.to_string())?;
    let listed = match cache {
        Some(c) => {
            c.schemas_to_clone(conn, database, schema, partner, migration)
                .await
        }
        None => simulator::schemas_to_clone(conn, database, schema, partner, migration).await,
    };
    let schemas = match listed {
        Ok(s) => s,
        // Reading the list failed: the shard's own schema and the ones its keys reference.
        Err(_) => schemas_to_clone(catalog),
    };
    let out = match cache {
        Some(c) => c.dump(&bin, conn, database, &schemas).await,
        None => simulator::dump_schemas(&bin, conn, database, &schemas)
            .await
            .map(std::sync::Arc::new),
    }
    .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out);
    // pg_dump sets search_path to '' for the session; the proof sets its own.
    Ok(text
        .lines()
        .filter(|l| {
            !l.starts_with("SELECT pg_catalog.set_config('search_path'") && !l.starts_with('\\')
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

//! The rollback step of the pipeline: generate the inverse from the majority schema shape and,
//! with `validate_rollback`, prove it (or the user's `--rollback-file`) on a shadow.

use std::collections::BTreeMap;

use migration_parser::Migration;
use report::RollbackInfo;
use rollback::{Options, Proof, ProveOptions, RollbackSource, Shadow};
use topology::{Catalog, ConnectionSpec, Fleet};

use crate::PipelineError;
use crate::options::ValidateOptions;

/// What the rollback step produced.
#[derive(Debug, Clone, Default)]
pub struct RollbackOutcome {
    /// The report's rollback section.
    pub info: RollbackInfo,
    /// Irreversible steps with their statement locations (for `rollback-irreversible`).
    pub irreversible: Vec<rollback::Irreversible>,
    /// The proof, when one ran.
    pub proof: Option<Proof>,
}

/// Generate (and, when asked, prove) the rollback for the fleet's majority schema shape.
pub(crate) async fn rollback_for(
    opts: &ValidateOptions,
    fleet: &Fleet,
    migration: &Migration,
    catalogs: &BTreeMap<String, Catalog>,
    reference_shard: Option<&str>,
    shared_shadow: Option<&topology::ephemeral::EphemeralPg>,
    dump_cache: Option<&simulator::DumpCache>,
) -> Result<RollbackOutcome, PipelineError> {
    // The representative shard: the first of the fleet's majority schema shape.
    let Some((shard_id, catalog)) = representative(catalogs, reference_shard) else {
        return Ok(RollbackOutcome {
            info: RollbackInfo {
                source: "none".into(),
                script: None,
                tested: false,
                irreversible: vec!["no shard catalog could be read: rollback not generated".into()],
                mismatches: vec![],
            },
            ..RollbackOutcome::default()
        });
    };
    let generated = rollback::generate(migration, catalog, &Options::default());
    let user = match &opts.rollback_file {
        Some(path) => {
            let bytes = crate::input::read_capped(path).map_err(|source| PipelineError::Read {
                file: path.display().to_string(),
                source,
            })?;
            Some(migration_parser::parse_bytes(
                &path.display().to_string(),
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
            tested: false,
            irreversible: generated
                .irreversible
                .iter()
                .map(|i| format!("line {}: {}: {}", i.line, i.sql, i.reason))
                .collect(),
            mismatches: vec![],
        },
        irreversible: generated.irreversible.clone(),
        proof: None,
    };
    if !opts.validate_rollback {
        return Ok(out);
    }
    let Some(shard) = fleet.shards.iter().find(|s| s.id == shard_id) else {
        return Ok(out);
    };
    let Some(instance) = fleet.instance(&shard.instance) else {
        return Ok(out);
    };
    // The same schemas the rehearsal clones, dumped once for both through the run's cache.
    let setup = match dump_for_proof(
        &instance.connection,
        shard.location.database(),
        shard.location.schema(),
        migration,
        catalog,
        dump_cache,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            out.info.mismatches.push(format!(
                "rollback not proven: cannot dump the shard's schema: {e}"
            ));
            return Ok(out);
        }
    };
    let shadow = match (&opts.sim.shadow, shared_shadow) {
        (Some(spec), _) => Shadow::from_url(&spec_url(spec))?,
        (None, Some(pg)) => Shadow::from_ephemeral(pg),
        (None, None) => Shadow::ephemeral().await?,
    };
    let source = match &user {
        Some(u) => RollbackSource::Script(u),
        None => RollbackSource::Generated(&generated),
    };
    let prove_opts = ProveOptions {
        schema: shard.location.schema().to_owned(),
        // A schema-filtered pg_dump leaves the shard's extensions out.
        extensions: catalog.extensions.clone(),
        ..ProveOptions::default()
    };
    let proof = match rollback::prove(
        &shadow,
        rollback::Setup::Sql(&setup),
        migration,
        source,
        &prove_opts,
    )
    .await
    {
        Ok(p) => p,
        Err(e) => {
            out.info.mismatches.push(format!(
                "rollback not proven: the shadow proof could not run: {e}"
            ));
            return Ok(out);
        }
    };
    out.info.tested = proof.tested;
    out.info.mismatches = proof
        .mismatches
        .iter()
        .filter(|m| !m.column_order_only)
        .map(|m| m.to_string())
        .collect();
    if let Some(e) = &proof.forward_error {
        out.info
            .mismatches
            .push(format!("forward migration failed on the shadow: {e}"));
    }
    if let Some(e) = &proof.rollback_error {
        out.info
            .mismatches
            .push(format!("rollback failed on the shadow: {e}"));
    }
    for loss in &proof.data_loss {
        let line = format!(
            "data: {}.{}: {} of {} sample values lost ({})",
            loss.table, loss.column, loss.values_lost, loss.rows_before, loss.reason
        );
        if !out.info.irreversible.contains(&line) {
            out.info.irreversible.push(line);
        }
    }
    out.proof = Some(proof);
    Ok(out)
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
/// the proof seeds its own rows), without psql meta-commands.
async fn dump_for_proof(
    conn: &ConnectionSpec,
    database: &str,
    schema: &str,
    migration: &Migration,
    catalog: &Catalog,
    cache: Option<&simulator::DumpCache>,
) -> Result<String, String> {
    let bin = topology::ephemeral::find_bin_dir().map_err(|e| e.to_string())?;
    let schemas = match simulator::schemas_to_clone(conn, database, schema, migration).await {
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

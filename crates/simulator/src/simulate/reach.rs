//! Reachability and shapes: one connection attempt per (instance, database), the shards'
//! catalogs (given, or introspected), the simulator's own fingerprint where introspection
//! failed, and the grouping of shards by schema shape into rehearsal jobs.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use topology::{Catalog, Fleet};

use super::job::RehearsalJob;
use super::session::instance;
use crate::SimError;
use crate::conn::{connect_options, redacted};
use crate::control::{CancelToken, StepLog};
use crate::run::SimOptions;

/// What the run knows about the fleet before probing: which shards are unreachable (with the
/// reason), each shard's catalog and fingerprint, and one rehearsal job per shape.
pub(super) struct Reach<'c> {
    /// Unreachable shards by id, with the reason.
    pub unreachable: HashMap<String, String>,
    /// Catalogs by shard id (the caller's, or introspected here).
    pub catalogs: Cow<'c, BTreeMap<String, Catalog>>,
    /// Fingerprint by shard id (reachable shards only).
    pub fingerprints: HashMap<String, String>,
    /// One job per fingerprint, in fleet order.
    pub jobs: Vec<RehearsalJob>,
}

/// Connect, read the catalogs, fingerprint and group the shards. `Err` only when cancelled.
pub(super) async fn reach<'c>(
    fleet: &Fleet,
    catalogs: Option<&'c BTreeMap<String, Catalog>>,
    o: &SimOptions,
    cancel: &CancelToken,
    steps: &StepLog,
) -> Result<Reach<'c>, SimError> {
    let mut unreachable = connect_all(fleet, o, steps).await;
    if cancel.is_cancelled() {
        return Err(SimError::Cancelled);
    }
    let mut introspect_failed: Vec<(String, String)> = Vec::new();
    let catalogs = match catalogs {
        Some(c) => Cow::Borrowed(c),
        None => {
            Cow::Owned(introspect(fleet, o, &mut unreachable, &mut introspect_failed, steps).await)
        }
    };
    if cancel.is_cancelled() {
        return Err(SimError::Cancelled);
    }
    let fallback = fallback(fleet, &catalogs, introspect_failed, &mut unreachable, steps).await;
    let (fingerprints, jobs) = group(fleet, &catalogs, &fallback, &mut unreachable);
    Ok(Reach {
        unreachable,
        catalogs,
        fingerprints,
        jobs,
    })
}

/// One connection attempt per (instance, database), concurrently — at most
/// [`SimOptions::concurrency`] at once per instance (a database-per-tenant instance has one
/// database per shard; its connection limit must hold) — so an unreachable instance costs one
/// connect timeout per database, not one per shard. Returns the unreachable shards.
async fn connect_all(fleet: &Fleet, o: &SimOptions, steps: &StepLog) -> HashMap<String, String> {
    let mut unreachable: HashMap<String, String> = HashMap::new();
    let t0 = Instant::now();
    let mut groups: BTreeMap<(String, String), ()> = BTreeMap::new();
    let mut bounds: HashMap<String, std::sync::Arc<tokio::sync::Semaphore>> = HashMap::new();
    for s in &fleet.shards {
        groups.insert((s.instance.clone(), s.location.database().to_string()), ());
        bounds.entry(s.instance.clone()).or_insert_with(|| {
            std::sync::Arc::new(tokio::sync::Semaphore::new(o.concurrency.max(1) as usize))
        });
    }
    let checks = groups.into_keys().map(|(inst, db)| {
        let bound = bounds.get(&inst).cloned();
        async move {
            let _permit = match &bound {
                Some(b) => b.acquire().await.ok(),
                None => None,
            };
            let r = connect_once(fleet, &inst, &db, o).await;
            (inst, db, r)
        }
    });
    let results = futures::future::join_all(checks).await;
    let mut bad = 0;
    for (inst, db, r) in results {
        if let Err(e) = r {
            bad += 1;
            for s in fleet
                .shards
                .iter()
                .filter(|s| s.instance == inst && s.location.database() == db)
            {
                unreachable.insert(s.id.clone(), e.clone());
            }
        }
    }
    steps.push(
        "connect",
        format!(
            "{bad} unreachable (instance, database) group(s), {} shard(s) affected",
            unreachable.len()
        ),
        t0.elapsed(),
    );
    unreachable
}

/// One connection to `db` on instance `inst`, closed at once; `Err` says why it failed.
async fn connect_once(fleet: &Fleet, inst: &str, db: &str, o: &SimOptions) -> Result<(), String> {
    let Some(i) = instance(fleet, inst) else {
        return Err(format!("instance `{inst}` is not in the fleet"));
    };
    let opts = connect_options(&i.connection, db).map_err(|e| e.to_string())?;
    match tokio::time::timeout(o.connect_timeout, PgConnection::connect_with(&opts)).await {
        Ok(Ok(c)) => {
            let _ = c.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(format!(
            "cannot connect to {}: {e}",
            redacted(&i.connection, db)
        )),
        Err(_) => Err(format!(
            "cannot connect to {}: no answer within {} s",
            redacted(&i.connection, db),
            o.connect_timeout.as_secs()
        )),
    }
}

/// Introspect the reachable shards ([`topology::introspect_fleet`]). A shard that cannot be
/// connected to becomes unreachable; one whose introspection failed otherwise is listed in
/// `introspect_failed`.
async fn introspect(
    fleet: &Fleet,
    o: &SimOptions,
    unreachable: &mut HashMap<String, String>,
    introspect_failed: &mut Vec<(String, String)>,
    steps: &StepLog,
) -> BTreeMap<String, Catalog> {
    let t0 = Instant::now();
    let reachable = Fleet {
        instances: fleet.instances.clone(),
        shards: fleet
            .shards
            .iter()
            .filter(|s| !unreachable.contains_key(&s.id))
            .cloned()
            .collect(),
    };
    let fc = topology::introspect_fleet(
        &reachable,
        &topology::ScanOptions {
            concurrency: o.concurrency as usize,
            ..Default::default()
        },
    )
    .await;
    for (ids, err) in &fc.errors {
        for id in ids {
            if matches!(err, topology::TopologyError::Connect { .. }) {
                unreachable.insert(id.clone(), err.to_string());
            } else {
                introspect_failed.push((id.clone(), err.to_string()));
            }
        }
    }
    let failed: usize = fc.errors.iter().map(|(ids, _)| ids.len()).sum();
    steps.push(
        "introspect",
        format!(
            "{} catalog(s) read, {failed} shard(s) failed",
            fc.catalogs.len()
        ),
        t0.elapsed(),
    );
    fc.catalogs
}

/// Shards whose introspection failed for another reason than connecting (or whose catalog
/// the caller did not give): the simulator's own fingerprint, or unreachable if even that
/// fails. Returns the fingerprints by shard id.
async fn fallback(
    fleet: &Fleet,
    catalogs: &BTreeMap<String, Catalog>,
    mut introspect_failed: Vec<(String, String)>,
    unreachable: &mut HashMap<String, String>,
    steps: &StepLog,
) -> HashMap<String, String> {
    let mut fallback: HashMap<String, String> = HashMap::new();
    for s in &fleet.shards {
        if !unreachable.contains_key(&s.id)
            && !catalogs.contains_key(&s.id)
            && !introspect_failed.iter().any(|(id, _)| id == &s.id)
        {
            introspect_failed.push((s.id.clone(), "no catalog given".into()));
        }
    }
    if introspect_failed.is_empty() {
        return fallback;
    }
    let t0 = Instant::now();
    let failed: HashSet<&str> = introspect_failed
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for s in fleet
        .shards
        .iter()
        .filter(|s| failed.contains(s.id.as_str()))
    {
        groups
            .entry((s.instance.clone(), s.location.database().to_string()))
            .or_default()
            .push(s.location.schema().to_string());
    }
    for ((inst, db), schemas) in groups {
        let Some(i) = instance(fleet, &inst) else {
            continue;
        };
        let res = match connect_options(&i.connection, &db) {
            Ok(opts) => fallback_fingerprints(&opts, &schemas)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        for s in fleet
            .shards
            .iter()
            .filter(|s| s.instance == inst && s.location.database() == db)
        {
            match &res {
                Ok(m) => match m.get(s.location.schema()) {
                    Some(fp) => {
                        fallback.insert(s.id.clone(), fp.clone());
                    }
                    None if failed.contains(s.id.as_str()) => {
                        unreachable.insert(
                            s.id.clone(),
                            format!("schema `{}` not found", s.location.schema()),
                        );
                    }
                    None => {}
                },
                Err(e) => {
                    if failed.contains(s.id.as_str()) {
                        unreachable.insert(s.id.clone(), e.clone());
                    }
                }
            }
        }
    }
    steps.push(
        "fingerprint fallback",
        format!(
            "catalog introspection failed for {} shard(s) ({}); used the simulator's own fingerprint",
            introspect_failed.len(),
            introspect_failed.first().map(|x| x.1.as_str()).unwrap_or("")
        ),
        t0.elapsed(),
    );
    fallback
}

/// Each reachable shard's fingerprint, and one rehearsal job per fingerprint (its first
/// shard in fleet order). A shard whose instance is not in the fleet becomes unreachable.
fn group(
    fleet: &Fleet,
    catalogs: &BTreeMap<String, Catalog>,
    fallback: &HashMap<String, String>,
    unreachable: &mut HashMap<String, String>,
) -> (HashMap<String, String>, Vec<RehearsalJob>) {
    let mut fingerprints: HashMap<String, String> = HashMap::new();
    let mut jobs: Vec<RehearsalJob> = Vec::new();
    let mut seen = HashSet::new();
    for s in &fleet.shards {
        let Some(inst) = instance(fleet, &s.instance) else {
            unreachable.insert(
                s.id.clone(),
                format!("instance `{}` is not in the fleet", s.instance),
            );
            continue;
        };
        if unreachable.contains_key(&s.id) {
            continue;
        }
        let fp = match (catalogs.get(&s.id), fallback.get(&s.id)) {
            (Some(c), _) => c.fingerprint().0,
            (None, Some(f)) => f.clone(),
            (None, None) => format!("unknown:{}", s.id),
        };
        fingerprints.insert(s.id.clone(), fp.clone());
        if seen.insert(fp.clone()) {
            jobs.push(RehearsalJob {
                fingerprint: fp,
                shard: s.clone(),
                spec: inst.connection.clone(),
            });
        }
    }
    (fingerprints, jobs)
}

/// Structural fingerprint computed by the simulator itself, used only when topology's catalog
/// introspection failed for a reachable shard. Same idea as `Catalog::fingerprint` (the schema's
/// own name stripped from definitions) but not byte-compatible with it: prefixed `sim:`.
const FALLBACK_FP_SQL: &str = r#"
SELECT s.nspname::text, 'sim:' || md5(coalesce((
  SELECT string_agg(x, E'\n' ORDER BY x) FROM (
    SELECT format('rel %s %s', c.relname, c.relkind) AS x FROM pg_class c WHERE c.relnamespace = s.oid
    UNION ALL
    SELECT format('col %s.%s %s %s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  replace(pg_get_expr(d.adbin, d.adrelid), quote_ident(s.nspname) || '.', ''))
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE c.relnamespace = s.oid AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('con %s %s', co.conname, replace(pg_get_constraintdef(co.oid), quote_ident(s.nspname) || '.', ''))
      FROM pg_constraint co WHERE co.connamespace = s.oid
    UNION ALL
    SELECT format('idx %s', replace(pg_get_indexdef(i.indexrelid), quote_ident(s.nspname) || '.', ''))
      FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = s.oid
  ) parts), ''))
FROM pg_namespace s WHERE s.nspname = ANY($1)
"#;

/// The simulator's own fingerprint ([`FALLBACK_FP_SQL`]) of `schemas`, by schema name.
async fn fallback_fingerprints(
    opts: &PgConnectOptions,
    schemas: &[String],
) -> Result<HashMap<String, String>, sqlx::Error> {
    let mut c = PgConnection::connect_with(opts).await?;
    // pg_get_indexdef & co. wait for a lock on a table another session holds: never hang.
    sqlx::query(
        "SELECT set_config('lock_timeout', '5s', false), set_config('statement_timeout', '60s', false)",
    )
    .execute(&mut c)
    .await?;
    let rows: Vec<(String, String)> = sqlx::query_as(FALLBACK_FP_SQL)
        .bind(schemas)
        .fetch_all(&mut c)
        .await?;
    let _ = c.close().await;
    Ok(rows.into_iter().collect())
}

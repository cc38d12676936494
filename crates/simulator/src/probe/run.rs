//! Running a [`ProbePlan`] on one shard: one read-only transaction, the existence query, the
//! sizes, the primary keys of the probed tables, then each data probe under its savepoint (the
//! SQL comes from its kind's module), and the custom probes.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use sqlx::PgConnection;

use super::kinds::{
    cast, check, fk_orphans, missing_object, not_null, row_estimate, table_size, unique,
};
use crate::conn::is_connection_error;
use crate::ident::{quote_ident, quote_qualified};
use crate::probe::kind::ProbeKind;
use crate::probe::model::{
    Check, PlannedProbe, ProbeLimits, ProbePlan, ShardCatalog, ShardProbes, resolve,
};
use crate::probe::result::ProbeResult;
use crate::probe::sql::{
    Target, count_and_samples, fetch_pks, primary_key, row_text, unproven_migration_code,
};
use crate::probe_tx::{ConnectionLost, exec, savepoint};

/// Run `plan` and the `custom` probes on shard `shard_id` (tables in `schema`) over `conn`.
/// Opens and always ends one read-only transaction. `read`: the shard's catalog answers when
/// its database's batch read them (`batch.rs`); without, the transaction reads them itself.
/// Returns `Err` only when the connection is lost.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_probes(
    conn: &mut PgConnection,
    shard_id: &str,
    schema: &str,
    plan: &ProbePlan,
    custom: &[crate::CustomProbe],
    limits: ProbeLimits,
    cancel: &crate::CancelToken,
    read: Option<ShardCatalog>,
) -> Result<ShardProbes, ConnectionLost> {
    let r = run_in_tx(conn, shard_id, schema, plan, limits, cancel, read).await;
    let r = match r {
        Ok(mut v) if !custom.is_empty() => {
            crate::custom::run_custom_probes(conn, schema, custom, cancel)
                .await
                .map(|c| {
                    v.custom = c;
                    v
                })
        }
        other => other,
    };
    // Always end the transaction; if even that fails, the connection is unusable (the caller
    // closes it) and the server rolls back.
    let end = match exec(conn, "ROLLBACK").await {
        // A stray cancel (see `establish_savepoint`) can hit the ROLLBACK too: try again.
        Err(e) if !is_connection_error(&e) => exec(conn, "ROLLBACK").await,
        other => other,
    };
    match (r, end) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(ConnectionLost(e)),
    }
}

async fn run_in_tx(
    conn: &mut PgConnection,
    shard_id: &str,
    schema: &str,
    plan: &ProbePlan,
    limits: ProbeLimits,
    cancel: &crate::CancelToken,
    read: Option<ShardCatalog>,
) -> Result<ShardProbes, ConnectionLost> {
    // One round trip opens the transaction and sets it up (see [`tx_setup`]).
    exec(conn, &tx_setup(limits))
        .await
        .map_err(ConnectionLost)?;

    let mut out = ShardProbes::default();

    // 1.-3.: the catalog, read beforehand for the whole database ([`super::batch`]) or here.
    let mut fk_joins = HashMap::new();
    let (stats, size_results, mut pk_cache) = match read {
        Some(read) => {
            fk_joins = read.fk_joins;
            out.results.extend(missing_object::refs_results(
                shard_id,
                schema,
                plan,
                &read.refs,
                read.duration_ms,
            ));
            let results = table_size::size_results(shard_id, &read.sizes, read.duration_ms);
            (read.sizes, results, read.pks)
        }
        None => {
            // 1. existence checks, one query.
            if !plan.refs.is_empty() {
                out.results
                    .extend(missing_object::run_refs(conn, shard_id, schema, plan).await?);
            }
            // 2. sizes, one query.
            let (stats, results) = table_size::run_sizes(conn, shard_id, schema, plan).await?;
            // 3. primary keys of the probed tables (the sample key of offending rows).
            (stats, results, primary_keys(conn, schema, plan).await?)
        }
    };
    let missing: BTreeSet<(String, String)> = stats
        .iter()
        .filter(|s| !s.exists)
        .map(|s| (s.schema.clone(), s.table.clone()))
        .collect();
    let mut results: Vec<ProbeResult> = plan
        .probes
        .iter()
        .map(|p| new_result(shard_id, schema, p, &missing))
        .collect();
    // 4. the catalog lookups of the orphan and `VALIDATE` probes (operators, keys, the
    // constraint's definition), still under `pg_catalog` like the queries above: every name in
    // them is qualified, and under the tenant's path each would be planned again per shard.
    let mut prepared: Vec<Option<Option<String>>> = vec![None; plan.probes.len()];
    for (i, ((p, r), sql)) in plan
        .probes
        .iter()
        .zip(&mut results)
        .zip(&mut prepared)
        .enumerate()
    {
        if cancel.is_cancelled() {
            break;
        }
        if r.skipped.is_none() {
            let started = Instant::now();
            let fk = fk_joins.remove(&i);
            *sql = catalog_sql(conn, schema, p, r, (&mut pk_cache, &missing, fk)).await?;
            r.duration_ms = started.elapsed().as_millis() as u64;
        }
    }
    // The path the custom-probe pre-flight resolved function names on, for what follows (the
    // data probes' expressions are the migration's, resolved as it will resolve them).
    let path = crate::safety::probe_search_path(schema)
        .iter()
        .map(|s| quote_ident(s))
        .collect::<Vec<_>>()
        .join(", ");
    exec(conn, &format!("SET LOCAL search_path TO {path}"))
        .await
        .map_err(ConnectionLost)?;
    // 5. data probes.
    for ((p, mut r), sql) in plan.probes.iter().zip(results).zip(prepared) {
        if cancel.is_cancelled() {
            break;
        }
        if r.skipped.is_none() && r.error.is_none() {
            let prepared_ms = r.duration_ms;
            run_one(conn, schema, p, &mut r, &mut pk_cache, sql).await?;
            r.duration_ms += prepared_ms;
            if matches!(p.check, Check::DomainChecks { .. }) {
                domain_error(&mut r, &out.results);
            }
            r.would_fail = p.would_fail && r.count > 0;
        }
        out.results.push(r);
    }
    out.results.extend(size_results);
    out.tables = stats;
    Ok(out)
}

/// The tables (schema, table) whose primary key a data probe of `plan` uses on the shard whose
/// tables are in `schema`: every table a probe reads, and the referenced table of an orphan
/// check that names no columns.
pub(crate) fn pk_tables(plan: &ProbePlan, schema: &str) -> BTreeSet<(String, String)> {
    let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
    for p in &plan.probes {
        if p.skipped.is_some() {
            continue;
        }
        wanted.insert(resolve(&p.table, schema));
        if let Check::Orphans {
            ref_table,
            ref_columns,
            ref_created: false,
            ..
        } = &p.check
            && ref_columns.is_empty()
        {
            wanted.insert(resolve(ref_table, schema));
        }
    }
    wanted
}

/// A domain's checks that raised an error on a row (a data exception or a violation, e.g. a
/// division by zero in a `CHECK`): the `ALTER` raises it too, so it is a failure of this shard,
/// unless the cast probe of the same statement already found values that do not convert (they
/// fail the statement first, and the checks never see them). Timeouts and other errors stay
/// the probe's error (could not check).
fn domain_error(r: &mut ProbeResult, earlier: &[ProbeResult]) {
    let Some(e) = r.error.take_if(|e| cast::raised_by_a_row(e)) else {
        return;
    };
    let converted = !earlier.iter().any(|c| {
        c.kind == ProbeKind::CastFailures && c.statement_index == r.statement_index && c.count > 0
    });
    if converted {
        r.count = 1;
        r.exact = false;
        r.samples = vec![format!(
            "the domain's check raised SQLSTATE {} on a row: {}",
            e.sqlstate.as_deref().unwrap_or("?"),
            e.message
        )];
    } else {
        r.skipped = Some(
            "values that do not convert to the domain's base type fail the statement first (see cast_failures)"
                .into(),
        );
    }
}

/// Primary-key columns (in key order) of every table of [`pk_tables`], in one query; a table
/// without a primary key maps to an empty list. A failure leaves the map empty
/// ([`primary_key`] then looks tables up one by one).
async fn primary_keys(
    conn: &mut PgConnection,
    schema: &str,
    plan: &ProbePlan,
) -> Result<HashMap<(String, String), Vec<String>>, ConnectionLost> {
    let wanted = pk_tables(plan, schema);
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let (ss, ts): (Vec<String>, Vec<String>) = wanted.into_iter().unzip();
    let res = savepoint(conn, async |c| fetch_pks(c, &ss, &ts).await).await?;
    Ok(res
        .map(|rows| rows.into_iter().collect())
        .unwrap_or_default())
}

/// The statement that opens a probe transaction (one round trip): read-only, repeatable read,
/// the limits, and the session settings the catalog queries are planned under.
pub(crate) fn tx_setup(limits: ProbeLimits) -> String {
    // `standard_conforming_strings` is forced on: custom probes were checked by a parser that
    // reads strings that way, and a server that reads `'a\'` differently could run what the
    // check took for a string. JIT is off: the catalog lookups are tiny queries whose cost
    // estimates on a catalog of thousands of schemas can cross `jit_above_cost` (compiling then
    // costs far more than running), and a gate wants predictable probes more than JIT's gain on
    // a long scan. Generic plans keep the constant catalog queries from being re-planned for
    // every shard although only the names differ (the data probes are unnamed statements
    // without parameters: planned once either way). A cached plan is also re-planned whenever
    // the search path differs from the one it was made under, so the catalog queries (which
    // name everything qualified) run under the same path on every shard, `pg_catalog`, and the
    // shard's own path is set after them, for the data and custom probes.
    let mut setup = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
         SET LOCAL lock_timeout = {}; SET LOCAL idle_in_transaction_session_timeout = {}; \
         SET LOCAL jit = off; SET LOCAL standard_conforming_strings = on; \
         SET LOCAL search_path TO pg_catalog",
        limits.lock_timeout.as_millis().max(1),
        (limits.statement_timeout.as_millis() * 4).max(60_000),
    );
    if limits.server_version >= 12 {
        setup.push_str("; SET LOCAL plan_cache_mode = force_generic_plan");
    }
    // Last: the statements of the setup itself never run under a (possibly tiny) timeout.
    setup.push_str(&format!(
        "; SET LOCAL statement_timeout = {}",
        limits.statement_timeout.as_millis().max(1)
    ));
    setup
}

/// The result of probe `p` on the shard whose tables are in `schema`, before it runs: skipped
/// when planned so or when its table is `missing` on the shard.
fn new_result(
    shard_id: &str,
    schema: &str,
    p: &PlannedProbe,
    missing: &BTreeSet<(String, String)>,
) -> ProbeResult {
    let (s, t) = resolve(&p.table, schema);
    let mut skipped = p.skipped.clone();
    if skipped.is_none() && missing.contains(&(s.clone(), t.clone())) {
        skipped = Some("table does not exist on this shard (see missing_object)".into());
    }
    ProbeResult {
        shard: shard_id.to_string(),
        kind: p.kind,
        statement_index: Some(p.statement_index),
        schema: s,
        table: t,
        column: p.column.clone(),
        constraint: p.constraint.clone(),
        count: 0,
        exact: true,
        samples: Vec::new(),
        would_fail: false,
        bytes: None,
        skipped,
        note: p.note.clone(),
        error: None,
        sql: String::new(),
        duration_ms: 0,
    }
}

/// The probed table of `p` on the shard whose tables are in `shard_schema`, with the sample key
/// of its offending rows: the primary key (or `ctid`).
async fn target_of<'a>(
    conn: &mut PgConnection,
    shard_schema: &'a str,
    (s, t): (&'a str, &'a str),
    pk_cache: &mut HashMap<(String, String), Vec<String>>,
) -> Result<Target<'a>, ConnectionLost> {
    let pk: Vec<String> = match pk_cache.get(&(s.to_string(), t.to_string())) {
        Some(v) => v.clone(),
        None => savepoint(conn, async |c| primary_key(c, pk_cache, s, t).await)
            .await?
            .unwrap_or_default(),
    };
    Ok(Target {
        shard_schema,
        schema: s,
        table: t,
        qt: quote_qualified(s, t),
        sample: row_text("x", &pk),
    })
}

/// The SQL of an orphan or `VALIDATE` probe, built from catalog lookups only (run before the
/// tenant's search path is set): `Some(None)` when it cannot run (`r` says why), `None` for the
/// other kinds (their SQL is built as they run).
async fn catalog_sql(
    conn: &mut PgConnection,
    shard_schema: &str,
    p: &PlannedProbe,
    r: &mut ProbeResult,
    (pk_cache, missing, fk): (
        &mut fk_orphans::PkCache,
        &BTreeSet<(String, String)>,
        Option<crate::probe::model::PreparedFk>,
    ),
) -> Result<Option<Option<String>>, ConnectionLost> {
    if !matches!(
        p.check,
        Check::Orphans { .. } | Check::ValidateExisting { .. }
    ) {
        return Ok(None);
    }
    let (s, t) = resolve(&p.table, shard_schema);
    let target = target_of(conn, shard_schema, (&s, &t), pk_cache).await?;
    Ok(Some(match &p.check {
        c @ Check::Orphans { .. } => {
            fk_orphans::sql(conn, &target, c, r, (pk_cache, missing, fk)).await?
        }
        Check::ValidateExisting { name } => {
            check::validate_existing_sql(conn, &target, name, r).await?
        }
        _ => None,
    }))
}

/// Run one data probe into `r`: its kind builds the SQL (`prepared`: already built from the
/// catalog, see [`catalog_sql`]), rows are `(count, sample)`.
async fn run_one(
    conn: &mut PgConnection,
    shard_schema: &str,
    p: &PlannedProbe,
    r: &mut ProbeResult,
    pk_cache: &mut HashMap<(String, String), Vec<String>>,
    prepared: Option<Option<String>>,
) -> Result<(), ConnectionLost> {
    let (s, t) = resolve(&p.table, shard_schema);
    let started = Instant::now();
    let target = target_of(conn, shard_schema, (&s, &t), pk_cache).await?;
    if let Check::RowEstimate { filter } = &p.check {
        row_estimate::run(conn, filter, r).await?;
        r.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(());
    }
    match unproven_migration_code(conn, &p.check).await? {
        Ok(None) => {}
        Ok(Some(why)) => {
            r.skipped = Some(why);
            r.duration_ms = started.elapsed().as_millis() as u64;
            return Ok(());
        }
        Err(e) => {
            r.error = Some(e);
            r.duration_ms = started.elapsed().as_millis() as u64;
            return Ok(());
        }
    }
    let sql = match &p.check {
        Check::Orphans { .. } | Check::ValidateExisting { .. } => prepared.flatten(),
        Check::Nulls { column } => Some(not_null::nulls_sql(&target, column)),
        Check::AllRowsNull { .. } => Some(not_null::all_rows_sql(&target)),
        Check::Duplicates {
            keys,
            predicate,
            nulls_not_distinct,
            bound,
        } => Some(unique::duplicates_sql(
            &target,
            keys,
            predicate.as_deref(),
            *nulls_not_distinct,
            bound,
        )),
        Check::Expression { expr, bound } => Some(check::expression_sql(&target, expr, bound)),
        Check::Labels {
            column,
            labels,
            shard_enum,
        } => Some(cast::labels_sql(
            &target,
            column,
            labels,
            shard_enum.as_deref(),
        )),
        c @ Check::Cast { .. } => {
            cast::run(conn, &target, c, r, started).await?;
            None
        }
        c @ Check::DomainChecks { .. } => cast::domain_checks_sql(&target, c),
        Check::RowEstimate { .. } => None,
    };
    let Some(sql) = sql else {
        return Ok(());
    };
    r.sql = sql.clone();
    match savepoint(conn, async |c| count_and_samples(c, &sql).await).await? {
        Ok((n, samples)) => {
            r.count = n;
            r.samples = samples;
            if matches!(p.check, Check::AllRowsNull { .. }) && n > not_null::ALL_ROWS_CAP {
                r.exact = false;
            }
        }
        Err(e) if p.kind == ProbeKind::CastFailures && cast::type_missing(&e).is_some() => {
            r.skipped = cast::type_missing(&e);
        }
        Err(e) => r.error = Some(e),
    }
    r.duration_ms = started.elapsed().as_millis() as u64;
    Ok(())
}

//! Custom SQL probes: read-only queries from the user's configuration (`[[custom_rules]]
//! kind = "probe"` in `deployclaw.toml`), run on every shard inside the simulator's read-only
//! probe transaction. The simulator only runs them and keeps the first rows; turning rows into
//! findings is the gates' job.
//!
//! Each probe runs as
//!
//! ```sql
//! SELECT to_jsonb(q) AS row FROM (<template, {schema} = "quoted schema", trailing ; removed>
//! ) AS q LIMIT 6
//! ```
//!
//! ([`custom_probe_sql`]) with the extended query protocol (one statement only), under its own
//! savepoint that is always rolled back (so neither an error nor a `set_config` inside the query
//! affects the probes after it), with the probe transaction's `statement_timeout` and
//! `lock_timeout`.
//!
//! Nothing of a probe runs on any shard before it is proven side-effect free
//! ([`check_probe_template`] statically, then every function it calls resolved on every shard
//! by [`crate::safety`] in a pre-flight that ends the run with
//! [`SimError::UnsafeCustomProbe`](crate::SimError::UnsafeCustomProbe) on the first refusal).

use std::collections::BTreeMap;

use migration_parser::read_only_query;
use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::probe_tx::{
    ConnectionLost, ProbeError, establish_savepoint, lost_or, probe_error, rollback_to_savepoint,
};

pub use evidence::{
    CustomProbe, CustomProbeRows, MAX_CUSTOM_PROBE_ROWS, SCHEMA_STAND_IN, check_probe_template,
    custom_probe_sql, expand_probe_template,
};

/// The static refusal of `probe`, if its template fails [`check_probe_template`].
pub(crate) fn static_refusal(probe: &CustomProbe) -> Option<crate::SimError> {
    check_probe_template(&probe.sql_template)
        .err()
        .map(|p| crate::SimError::UnsafeCustomProbe {
            probe: probe.name.clone(),
            shard: None,
            line: p.line,
            column: p.column,
            reason: p.message,
        })
}

/// The pre-flight of the custom probes on one (instance, database), on `conn`, before any of
/// them runs anywhere: for every shard of `shards` (`(id, schema)`) and every probe, the exact
/// query it would run is checked by [`migration_parser::read_only_query`], every function it
/// calls resolved on the shard's search path ([`crate::safety::refused_calls_on_paths`]) and
/// every view it reads opened up ([`crate::safety::refused_relations_on_paths`]): two catalog
/// queries for all shards. The first refusal (in shard, then probe order), with the
/// place in the template; `Ok(None)`: every probe may run on every shard.
pub(crate) async fn preflight(
    conn: &mut PgConnection,
    shards: &[(String, String)],
    probes: &[CustomProbe],
) -> Result<Option<crate::SimError>, sqlx::Error> {
    let mut requests = Vec::with_capacity(shards.len() * probes.len());
    let mut relations = Vec::with_capacity(requests.capacity());
    let mut owners = Vec::with_capacity(requests.capacity());
    for (id, schema) in shards {
        for p in probes {
            match read_only_query(&p.query_for_schema(schema)) {
                Ok(refs) => {
                    let path = crate::safety::probe_search_path(schema);
                    relations.push((path.clone(), refs.relations));
                    requests.push((path, refs.functions));
                    owners.push((id, p));
                }
                Err(problem) => {
                    return Ok(Some(crate::SimError::UnsafeCustomProbe {
                        probe: p.name.clone(),
                        shard: Some(id.clone()),
                        line: 0,
                        column: 0,
                        reason: problem.message,
                    }));
                }
            }
        }
    }
    let ctx = migration_parser::CallContext::ReadOnlyProbe;
    let calls = crate::safety::refused_calls_on_paths(conn, &requests, ctx).await?;
    let views = crate::safety::refused_relations_on_paths(conn, &relations, ctx).await?;
    // The first refusal: (is a call, name, reason).
    let first = owners
        .into_iter()
        .zip(calls.into_iter().zip(views))
        .find_map(|(owner, (calls, views))| {
            let by_call = calls
                .into_iter()
                .next()
                .map(|r| (true, r.call.name.name, r.reason));
            let by_view = || {
                views
                    .into_iter()
                    .next()
                    .map(|r| (false, r.relation.name, r.reason))
            };
            by_call.or_else(by_view).map(|r| (owner, r))
        });
    let first = first.map(|((id, p), (is_call, name, reason))| {
        // The place of the same call or relation in the template as written (the expanded
        // text has other columns).
        let at = check_probe_template(&p.sql_template).ok().and_then(|t| {
            if is_call {
                t.functions
                    .iter()
                    .find(|f| f.name.name == name)
                    .map(|f| (f.line, f.column))
            } else {
                let i = t.relations.iter().position(|n| n.name == name)?;
                t.relation_places.get(i).copied()
            }
        });
        let (line, column) = at.unwrap_or((0, 0));
        crate::SimError::UnsafeCustomProbe {
            probe: p.name.clone(),
            shard: Some(id.clone()),
            line,
            column,
            reason,
        }
    });
    Ok(first)
}

/// Run every probe of `probes` on the open probe transaction of `conn`, each under its own
/// savepoint that is always rolled back. Errors of a probe are outcomes; `Err` only when the
/// connection is lost. After `cancel` fires, the remaining probes are recorded as not run.
pub(crate) async fn run_custom_probes(
    conn: &mut PgConnection,
    schema: &str,
    probes: &[CustomProbe],
    cancel: &crate::CancelToken,
) -> Result<BTreeMap<String, CustomProbeRows>, ConnectionLost> {
    let mut out = BTreeMap::new();
    for p in probes {
        if cancel.is_cancelled() {
            out.insert(
                p.name.clone(),
                CustomProbeRows {
                    error: Some(ProbeError {
                        sqlstate: None,
                        message: "not run: probing of this shard was stopped (shard timeout or cancellation)".into(),
                    }),
                    ..CustomProbeRows::default()
                },
            );
            continue;
        }
        let sql = p.query_for_schema(schema);
        establish_savepoint(conn, "deployclaw_custom_probe").await?;
        let fetched = fetch_rows(conn, &sql).await;
        // Always roll back: a successful query may still have changed settings (set_config).
        // Not released: the next probe's savepoint stacks on it (see `probe_tx::savepoint`).
        rollback_to_savepoint(conn, "deployclaw_custom_probe").await?;
        let result = match fetched {
            Ok(mut rows) => {
                let truncated = rows.len() > MAX_CUSTOM_PROBE_ROWS;
                rows.truncate(MAX_CUSTOM_PROBE_ROWS);
                CustomProbeRows {
                    rows,
                    truncated,
                    error: None,
                }
            }
            Err(e) => CustomProbeRows {
                error: Some(lost_or(e, probe_error)?),
                ..CustomProbeRows::default()
            },
        };
        out.insert(p.name.clone(), result);
    }
    Ok(out)
}

async fn fetch_rows(
    conn: &mut PgConnection,
    sql: &str,
) -> Result<Vec<serde_json::Value>, sqlx::Error> {
    // Extended protocol: exactly one statement. Not cached: the text differs per shard.
    let rows = sqlx::query(AssertSqlSafe(sql.to_string()))
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            r.try_get::<Option<serde_json::Value>, _>(0)
                .map(|v| v.unwrap_or(serde_json::Value::Null))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_expanded_and_wrapped() {
        assert_eq!(
            custom_probe_sql(
                "  SELECT id FROM {schema}.t WHERE x < 0 -- note\n;; ",
                "a\"b"
            ),
            "SELECT to_jsonb(q) AS row FROM (SELECT id FROM \"a\"\"b\".t WHERE x < 0 -- note\n) AS q LIMIT 6"
        );
        assert_eq!(
            CustomProbe::new("p", "TABLE {schema}.{schema}").query_for_schema("s"),
            "SELECT to_jsonb(q) AS row FROM (TABLE \"s\".\"s\"\n) AS q LIMIT 6"
        );
    }
}

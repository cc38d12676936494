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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::ident::quote_ident;
use crate::probe::{
    ConnectionLost, ProbeError, establish_savepoint, lost_or, probe_error, rollback_to_savepoint,
};

/// Rows of a custom probe kept per shard; the query fetches one more to tell that there were
/// more ([`CustomProbeRows::truncated`]).
pub const MAX_CUSTOM_PROBE_ROWS: usize = 5;

/// A custom read-only SQL probe to run on every shard ([`crate::SimOptions::custom_probes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomProbe {
    /// Name; the key of the result in [`crate::ShardEvidence::custom_probes`] (for custom rules:
    /// the rule's name).
    pub name: String,
    /// One read-only `SELECT` / `WITH` / `VALUES` / `TABLE` statement; `{schema}` stands for the
    /// shard's schema as a quoted identifier. The probe transaction's `search_path` is the
    /// shard's schema, then `public`.
    pub sql_template: String,
}

impl CustomProbe {
    /// A probe named `name` running `sql_template`.
    pub fn new(name: impl Into<String>, sql_template: impl Into<String>) -> CustomProbe {
        CustomProbe {
            name: name.into(),
            sql_template: sql_template.into(),
        }
    }

    /// The query this probe runs on a shard whose schema is `schema` ([`custom_probe_sql`]).
    pub fn query_for_schema(&self, schema: &str) -> String {
        custom_probe_sql(&self.sql_template, schema)
    }
}

/// What a custom probe found on one shard.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CustomProbeRows {
    /// The first rows (at most [`MAX_CUSTOM_PROBE_ROWS`]), each a JSON object column → value
    /// (`to_jsonb` of the row). Empty when the query failed.
    #[serde(default)]
    pub rows: Vec<serde_json::Value>,
    /// The query returned more rows than `rows` holds.
    #[serde(default)]
    pub truncated: bool,
    /// The query failed (syntax, missing relation, permission, `statement_timeout` = SQLSTATE
    /// `57014`) or did not run (probing stopped by the shard timeout or cancellation: no
    /// SQLSTATE). The shard's other probes are not affected.
    #[serde(default)]
    pub error: Option<ProbeError>,
}

/// The template with `{schema}` replaced by `schema` as a quoted identifier, after trimming
/// whitespace and trailing `;`. Same as gates' `ProbeRuleSpec::sql_for_schema`.
///
/// ```
/// assert_eq!(
///     simulator::expand_probe_template(" SELECT 1 FROM {schema}.t ;\n", "tenant_1"),
///     "SELECT 1 FROM \"tenant_1\".t"
/// );
/// ```
pub fn expand_probe_template(template: &str, schema: &str) -> String {
    let sql = template.trim().trim_end_matches(';').trim_end();
    sql.replace("{schema}", &quote_ident(schema))
}

/// The query a custom probe runs on a shard: [`expand_probe_template`] wrapped so that every
/// row comes back as one `jsonb` column `row`, at most [`MAX_CUSTOM_PROBE_ROWS`] + 1 rows. The
/// newline before `)` ends a trailing `--` comment of the template. Same text as gates'
/// `ProbeRuleSpec::query_for_schema`.
///
/// ```
/// assert_eq!(
///     simulator::custom_probe_sql("SELECT id FROM {schema}.payments;", "te\"nant"),
///     "SELECT to_jsonb(q) AS row FROM (SELECT id FROM \"te\"\"nant\".payments\n) AS q LIMIT 6"
/// );
/// ```
pub fn custom_probe_sql(template: &str, schema: &str) -> String {
    format!(
        "SELECT to_jsonb(q) AS row FROM ({}\n) AS q LIMIT {}",
        expand_probe_template(template, schema),
        MAX_CUSTOM_PROBE_ROWS + 1
    )
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
        // Not released: the next probe's savepoint stacks on it (see `probe::savepoint`).
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

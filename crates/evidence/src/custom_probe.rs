//! Custom SQL probes (`[[custom_rules]] kind = "probe"`): the template contract shared by the
//! configuration (which checks it when the file is read) and the simulator (which runs it), and
//! the rows a probe returned.

use migration_parser::pg_quote::quote_ident;
use migration_parser::{QueryProblem, SqlRefs, read_only_query};
use serde::{Deserialize, Serialize};

use crate::ProbeError;

/// Rows of a custom probe kept per shard; the query fetches one more to tell that there were
/// more ([`CustomProbeRows::truncated`]).
pub const MAX_CUSTOM_PROBE_ROWS: usize = 5;

/// A custom read-only SQL probe to run on every shard (`simulator::SimOptions::custom_probes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomProbe {
    /// Name; the key of the result in [`ShardEvidence::custom_probes`](crate::ShardEvidence::custom_probes) (for custom rules:
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
///     evidence::expand_probe_template(" SELECT 1 FROM {schema}.t ;\n", "tenant_1"),
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
///     evidence::custom_probe_sql("SELECT id FROM {schema}.payments;", "te\"nant"),
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

/// What `{schema}` stands for in a static check of a template: a quoted identifier exactly as
/// long as the placeholder, so that a line and column in the checked text are the same line and
/// column in the template as written.
pub const SCHEMA_STAND_IN: &str = "\"schema\"";

/// The static half of the probe safety check, on the template as written: exactly one
/// read-only query ([`migration_parser::read_only_query`]: no data-modifying CTE, no row
/// locks, no `INTO`, no denied function, no credential catalog) with `{schema}` replaced by
/// [`SCHEMA_STAND_IN`]. The problem's line and column are positions in the template (leading
/// whitespace kept, trailing `;` and whitespace ignored as [`expand_probe_template`] does).
/// Returns what the template calls, for the run-time resolution on each shard.
///
/// ```
/// let p = evidence::check_probe_template("SELECT id\n  FROM {schema}.t, pg_stat_reset()").unwrap_err();
/// assert!(p.message.contains("pg_stat_reset"), "{}", p.message);
/// assert_eq!((p.line, p.column), (2, 20));
/// assert!(evidence::check_probe_template("SELECT count(*) FROM {schema}.t WHERE a IS NULL;").is_ok());
/// ```
pub fn check_probe_template(template: &str) -> Result<SqlRefs, QueryProblem> {
    let body = template.trim_end().trim_end_matches(';').trim_end();
    read_only_query(&body.replace("{schema}", SCHEMA_STAND_IN))
}

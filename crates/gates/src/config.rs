//! `deployclaw.toml`: which PostgreSQL version and transaction mode to assume, which rules are
//! disabled, severity overrides, the tenant schema pattern, the blocking-lock budget and
//! declarative custom rules.
//!
//! ```toml
//! pg_version = 15                      # major version the migration will run on
//! transaction_mode = "autocommit"      # or "wrap-file" (psql -1, sqlx, Flyway, ...)
//! tenant_schema_pattern = "tenant_*"   # or a list of globs
//!
//! [rules]
//! disable = ["renaming-column", "DC304"]   # names or codes
//!
//! [rules.severity]
//! dropping-column = "yellow"               # "red" | "yellow" | "info"
//! DC501 = "info"
//!
//! [lock_budget]
//! max_blocking_ms = 5000   # per statement and shard (rule lock-time-budget); default 5000
//!
//! [data_changes]
//! max_unbatched_rows = 10000   # an unbatched UPDATE/DELETE touching fewer rows on a shard is info
//!
//! [limits]
//! max_statements = 10000   # validate-migration refuses larger migrations (exit 3); lint has no limit
//!
//! [live]
//! idle_in_transaction_red_after = "30s"   # lock-queue-risk is red past this (default 30s)
//!
//! [probes]
//! probe_on = "replica"     # data probes on a read replica of each writer (default "writer")
//! max_replica_lag = "5s"   # a replica lagging more is refused: probes on the writer
//!
//! [shadow]
//! data = "sample"          # opt-in: copy a bounded, FK-closed sample of real rows to the shadow
//!                          # (default "synthetic": no real row leaves the shard)
//! sample_rows = 1000       # rows per table (parents a sampled row references are added past it)
//! sample_bytes = 67108864  # bytes of the whole sample
//!
//! [live]
//! traffic_window_ms = 1000 # traffic on the locked tables sampled over this window; 0 = none
//!
//! [[custom_rules]]         # see the `custom` module docs: kind = "statement" | "probe"
//! kind = "statement"
//! name = "no-drop-billing-columns"
//! code = "ACME001"
//! severity = "red"
//! operation = "drop_column"
//! table = "billing_*"
//! message = "dropping `{column}` from `{table}` loses billing history"
//!
//! # Reserved (accepted, kept as raw TOML, not yet interpreted):
//! # [approval]       approval token policy
//! ```
//!
//! Unknown keys are rejected with the key, file, line and column; so are invalid custom rules
//! (unknown operation kind, bad glob, reserved code, missing field).

use std::collections::BTreeMap;
use std::ops::Range;

use migration_parser::{ParseOptions, PgVersion, TransactionMode};
use serde::Deserialize;
use toml::Spanned;

use crate::custom::{self, CustomRuleSpec, ProbeRuleSpec, StatementRuleSpec};

mod live;
use crate::{GateRule, GatesError, RuleMeta, Severity};
pub use live::{DEFAULT_IDLE_IN_TRANSACTION_RED_AFTER_MS, LiveConfig};

/// The tenant schema pattern used when the configuration sets none.
pub const DEFAULT_TENANT_SCHEMA_PATTERN: &str = "tenant_*";

/// The blocking-lock budget per statement and shard when `[lock_budget]` sets none, ms.
pub const DEFAULT_MAX_BLOCKING_MS: u64 = 5_000;

/// `[lock_budget]`: how long one statement may hold a lock that blocks reads or writes on a
/// shard (estimated by the simulator) before `lock-time-budget` asks for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockBudget {
    /// Budget in milliseconds (default [`DEFAULT_MAX_BLOCKING_MS`]).
    pub max_blocking_ms: u64,
}

impl Default for LockBudget {
    fn default() -> Self {
        LockBudget {
            max_blocking_ms: DEFAULT_MAX_BLOCKING_MS,
        }
    }
}

impl LockBudget {
    /// A budget of `max_blocking_ms` milliseconds.
    pub const fn new(max_blocking_ms: u64) -> LockBudget {
        LockBudget { max_blocking_ms }
    }
}

/// The rows an unbatched `UPDATE` / `DELETE` may touch on a shard before
/// `unbatched-data-change` asks for a batched backfill, when `[data_changes]` sets none.
pub const DEFAULT_MAX_UNBATCHED_ROWS: u64 = 10_000;

/// `[data_changes]`: how large a data change in the migration may be on a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataChanges {
    /// An `UPDATE` / `DELETE` whose `WHERE` is not a bounded batch and whose row estimate on a
    /// shard (probe `row_estimate`) is below this is reported as info there (default
    /// [`DEFAULT_MAX_UNBATCHED_ROWS`]).
    pub max_unbatched_rows: u64,
}

impl Default for DataChanges {
    fn default() -> Self {
        DataChanges {
            max_unbatched_rows: DEFAULT_MAX_UNBATCHED_ROWS,
        }
    }
}

/// Statements of a migration `validate-migration` rehearses and reports when `[limits]` sets
/// no other figure. Its time and memory grow with every statement on every shard (a
/// rehearsal step, a lock trace and possibly a finding each); a migration of 10,000
/// statements takes about a minute on two cores.
pub const DEFAULT_MAX_STATEMENTS: usize = 10_000;

/// `[limits]`: how large an input the whole gate accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most statements a migration may have for `validate-migration` (default
    /// [`DEFAULT_MAX_STATEMENTS`]); a larger one is an input error naming both figures.
    pub max_statements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_statements: DEFAULT_MAX_STATEMENTS,
        }
    }
}

/// `[shadow] data`: which rows the shadow holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShadowDataKind {
    /// No real row (`"synthetic"`, the default).
    Synthetic,
    /// A bounded, FK-closed sample of the shard's real rows (`"sample"`).
    Sample,
}

/// `[shadow]`: which rows the shadow holds (the command line's `--shadow-data`,
/// `--shadow-sample-rows` override it). Unset fields take the simulator's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShadowConfig {
    /// `data`; `None`: not set (synthetic).
    pub data: Option<ShadowDataKind>,
    /// `sample_rows`: rows per table.
    pub sample_rows: Option<u32>,
    /// `sample_bytes`: bytes of the whole sample.
    pub sample_bytes: Option<u64>,
}

/// The gates configuration (`deployclaw.toml`).
///
/// Build it with [`Config::from_toml_str`], or start from [`Config::default`] and set fields
/// (command-line flags override the file that way).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// PostgreSQL major version the migration will run on. `None`: the version the migration
    /// was parsed with.
    pub pg_version: Option<PgVersion>,
    /// How the runner wraps the file in transactions. `None`: as the migration was parsed.
    pub transaction_mode: Option<TransactionMode>,
    /// Globs matching tenant schema names (`tenant_*`). Empty: [`DEFAULT_TENANT_SCHEMA_PATTERN`].
    pub tenant_schema_pattern: Vec<String>,
    /// `[rules]`: disabled rules and severity overrides.
    pub rules: RulesConfig,
    /// `[lock_budget]`: the per-statement blocking-lock budget (`lock-time-budget`).
    pub lock_budget: LockBudget,
    /// `[limits]`: input size limits of the whole gate.
    pub limits: Limits,
    /// `[shadow]`: which rows the shadow holds.
    pub shadow: ShadowConfig,
    /// `[probes]`: where the data probes run (writer or read replica, the lag bound).
    pub probes: crate::probes_config::ProbesConfig,
    /// `[data_changes]`: the row threshold of `unbatched-data-change` per shard.
    pub data_changes: DataChanges,
    /// `[live]`: the live workload reads (the traffic window) and the thresholds of the
    /// live-workload rules (`lock-queue-risk`).
    pub live: LiveConfig,
    /// `[approval]`, reserved: kept raw until the approval policy interprets it.
    pub approval: Option<toml::Table>,
    /// `[[custom_rules]]`: declarative statement-pattern and SQL-probe rules, validated.
    /// [`Registry::with_custom_rules`](crate::Registry::with_custom_rules) registers them.
    pub custom_rules: Vec<CustomRuleSpec>,
    /// Where the rule names in `[rules]` were written, for error messages.
    origin: Option<Origin>,
}

/// `[rules]` of the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RulesConfig {
    /// Rules (names or codes, case-insensitive) that do not run.
    pub disable: Vec<String>,
    /// Severity overrides by rule name or code.
    pub severity: BTreeMap<String, Severity>,
}

#[derive(Debug, Clone, PartialEq)]
struct Origin {
    file: String,
    /// (config key, rule as written, line, column)
    rule_positions: Vec<(String, String, u32, u32)>,
    /// Where each probe rule's `sql` is written.
    probe_sql: Vec<SqlOrigin>,
}

/// Where a probe rule's `sql` string is written in the file.
#[derive(Debug, Clone, PartialEq)]
struct SqlOrigin {
    /// The rule's name.
    rule: String,
    /// The TOML string literal as written, quotes included.
    raw: String,
    /// File line and column of its opening quote.
    start: (u32, u32),
}

impl SqlOrigin {
    /// File line and column of `(line, column)` within the decoded `sql` value.
    fn position(&self, value: &str, at: (u32, u32)) -> (u32, u32) {
        sql_position(&self.raw, self.start, value, at)
    }
}

/// `[lock_budget] max_blocking_ms` and `[data_changes] max_unbatched_rows` into `config`.
fn budgets(
    file: &str,
    text: &str,
    lock_budget: Option<RawLockBudget>,
    data_changes: Option<RawDataChanges>,
    config: &mut Config,
) -> Result<(), GatesError> {
    let at = |v: &Spanned<i64>| line_col(text, v.span().start);
    if let Some(v) = lock_budget.and_then(|b| b.max_blocking_ms) {
        let key = "lock_budget.max_blocking_ms";
        config.lock_budget.max_blocking_ms = non_negative(file, at(&v), &v, key, "milliseconds")?;
    }
    if let Some(v) = data_changes.and_then(|d| d.max_unbatched_rows) {
        let key = "data_changes.max_unbatched_rows";
        config.data_changes.max_unbatched_rows =
            non_negative(file, at(&v), &v, key, "a number of rows")?;
    }
    Ok(())
}

/// A configuration value that must be 0 or more, as `u64`; else an error at its position.
fn non_negative(
    file: &str,
    (line, column): (u32, u32),
    v: &Spanned<i64>,
    key: &str,
    expected: &str,
) -> Result<u64, GatesError> {
    let n = *v.get_ref();
    u64::try_from(n).map_err(|_| GatesError::InvalidConfigValue {
        file: file.to_string(),
        line,
        column,
        key: key.into(),
        message: format!("`{n}` (expected {expected}, 0 or more)"),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    pg_version: Option<Spanned<i64>>,
    transaction_mode: Option<Spanned<String>>,
    tenant_schema_pattern: Option<Spanned<OneOrMany>>,
    #[serde(default)]
    rules: RawRules,
    lock_budget: Option<RawLockBudget>,
    limits: Option<RawLimits>,
    shadow: Option<RawShadow>,
    probes: Option<crate::probes_config::RawProbes>,
    data_changes: Option<RawDataChanges>,
    live: Option<live::RawLive>,
    approval: Option<toml::Table>,
    #[serde(default)]
    custom_rules: Vec<Spanned<RawCustomRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLockBudget {
    max_blocking_ms: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataChanges {
    max_unbatched_rows: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_statements: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShadow {
    data: Option<Spanned<String>>,
    sample_rows: Option<Spanned<i64>>,
    sample_bytes: Option<Spanned<i64>>,
}

/// `[shadow]` of `file` (`text`), checked.
fn shadow_section(file: &str, text: &str, raw: RawShadow) -> Result<ShadowConfig, GatesError> {
    let invalid = |span: Range<usize>, key: &str, message: String| {
        let (line, column) = line_col(text, span.start);
        GatesError::InvalidConfigValue {
            file: file.to_string(),
            line,
            column,
            key: format!("shadow.{key}"),
            message,
        }
    };
    let mut out = ShadowConfig::default();
    if let Some(v) = raw.data {
        out.data = Some(match v.get_ref().as_str() {
            "synthetic" => ShadowDataKind::Synthetic,
            "sample" => ShadowDataKind::Sample,
            other => {
                return Err(invalid(
                    v.span(),
                    "data",
                    format!("`{other}` (expected \"synthetic\" or \"sample\")"),
                ));
            }
        });
    }
    if let Some(v) = raw.sample_rows {
        let n = *v.get_ref();
        out.sample_rows = Some(u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            invalid(
                v.span(),
                "sample_rows",
                format!("`{n}` (expected rows per table, 1 or more)"),
            )
        })?);
    }
    if let Some(v) = raw.sample_bytes {
        let n = *v.get_ref();
        out.sample_bytes = Some(u64::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            invalid(
                v.span(),
                "sample_bytes",
                format!("`{n}` (expected bytes, 1 or more)"),
            )
        })?);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustomRule {
    kind: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    code: Option<Spanned<String>>,
    severity: Option<Spanned<String>>,
    operation: Option<Spanned<String>>,
    table: Option<Spanned<String>>,
    column: Option<Spanned<String>>,
    sql: Option<Spanned<String>>,
    message: Option<Spanned<String>>,
    help: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    disable: Vec<Spanned<String>>,
    #[serde(default)]
    severity: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Config {
    /// Parse the TOML `text` of the configuration file `file` (the name is used in errors).
    pub fn from_toml_str(file: &str, text: &str) -> Result<Config, GatesError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        let at = |span: Range<usize>| line_col(text, span.start);
        let mut config = Config::default();

        if let Some(v) = raw.pg_version {
            let (line, column) = at(v.span());
            let n = *v.get_ref();
            if !(9..=99).contains(&n) {
                return Err(GatesError::InvalidConfigValue {
                    file: file.to_string(),
                    line,
                    column,
                    key: "pg_version".into(),
                    message: format!("`{n}` is not a PostgreSQL major version (expected e.g. 15)"),
                });
            }
            config.pg_version = u32::try_from(n).ok().map(PgVersion);
        }
        if let Some(v) = raw.transaction_mode {
            let (line, column) = at(v.span());
            config.transaction_mode = Some(match v.get_ref().as_str() {
                "autocommit" => TransactionMode::Autocommit,
                "wrap-file" => TransactionMode::WrapFile,
                other => {
                    return Err(GatesError::InvalidConfigValue {
                        file: file.to_string(),
                        line,
                        column,
                        key: "transaction_mode".into(),
                        message: format!("`{other}` (expected \"autocommit\" or \"wrap-file\")"),
                    });
                }
            });
        }
        if let Some(v) = raw.tenant_schema_pattern {
            let (line, column) = at(v.span());
            let patterns = match v.into_inner() {
                OneOrMany::One(p) => vec![p],
                OneOrMany::Many(ps) => ps,
            };
            for p in &patterns {
                if let Err(e) = globset::Glob::new(p) {
                    return Err(GatesError::InvalidConfigValue {
                        file: file.to_string(),
                        line,
                        column,
                        key: "tenant_schema_pattern".into(),
                        message: format!("`{p}` is not a valid glob: {}", e.kind()),
                    });
                }
            }
            config.tenant_schema_pattern = patterns;
        }

        let mut positions = Vec::new();
        for name in raw.rules.disable {
            let (line, column) = at(name.span());
            let name = name.into_inner();
            positions.push(("rules.disable".to_string(), name.clone(), line, column));
            config.rules.disable.push(name);
        }
        for (name, sev) in raw.rules.severity {
            let (line, column) = at(name.span());
            let name = name.into_inner();
            let severity = match sev.get_ref().as_str() {
                "red" => Severity::Red,
                "yellow" => Severity::Yellow,
                "info" => Severity::Info,
                other => {
                    let (line, column) = at(sev.span());
                    return Err(GatesError::InvalidConfigValue {
                        file: file.to_string(),
                        line,
                        column,
                        key: format!("rules.severity.{name}"),
                        message: format!("`{other}` (expected \"red\", \"yellow\" or \"info\")"),
                    });
                }
            };
            positions.push(("rules.severity".to_string(), name.clone(), line, column));
            config.rules.severity.insert(name, severity);
        }
        budgets(file, text, raw.lock_budget, raw.data_changes, &mut config)?;
        if let Some(limits) = raw.limits
            && let Some(v) = limits.max_statements
        {
            let (line, column) = at(v.span());
            let n = *v.get_ref();
            config.limits.max_statements =
                usize::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                    GatesError::InvalidConfigValue {
                        file: file.to_string(),
                        line,
                        column,
                        key: "limits.max_statements".into(),
                        message: format!("`{n}` (expected a number of statements, 1 or more)"),
                    }
                })?;
        }
        if let Some(l) = raw.live {
            config.live = live::live_section(file, text, l)?;
        }
        if let Some(shadow) = raw.shadow {
            config.shadow = shadow_section(file, text, shadow)?;
        }
        if let Some(probes) = raw.probes {
            let at = |offset: usize| line_col(text, offset);
            config.probes = crate::probes_config::probes_section(file, probes, at)?;
        }
        config.approval = raw.approval;
        let mut probe_sql = Vec::new();
        for entry in raw.custom_rules {
            let (line, column) = at(entry.span());
            let (spec, origin) = custom_rule(file, text, (line, column), entry.into_inner())?;
            probe_sql.extend(origin);
            if let Some(other) = config
                .custom_rules
                .iter()
                .find(|o| o.name() == spec.name() || o.code().eq_ignore_ascii_case(spec.code()))
            {
                return Err(GatesError::InvalidConfigValue {
                    file: file.to_string(),
                    line,
                    column,
                    key: "custom_rules".into(),
                    message: format!(
                        "rule `{}` ({}) has the same name or code as rule `{}` ({})",
                        spec.name(),
                        spec.code(),
                        other.name(),
                        other.code()
                    ),
                });
            }
            config.custom_rules.push(spec);
        }
        config.origin = Some(Origin {
            file: file.to_string(),
            rule_positions: positions,
            probe_sql,
        });
        Ok(config)
    }

    /// The options to parse a migration with under this configuration (unset fields take
    /// [`ParseOptions::default`]).
    pub fn parse_options(&self) -> ParseOptions {
        let d = ParseOptions::default();
        ParseOptions {
            pg_version: self.pg_version.unwrap_or(d.pg_version),
            transaction_mode: self.transaction_mode.unwrap_or(d.transaction_mode),
        }
    }

    /// Whether `[rules] disable` names this rule (by name or code, case-insensitive).
    pub fn is_disabled(&self, rule: &RuleMeta<'_>) -> bool {
        self.rules.disable.iter().any(|d| names_rule(d, rule))
    }

    /// The severity `[rules.severity]` sets for this rule, if any.
    pub fn severity_override(&self, rule: &RuleMeta<'_>) -> Option<Severity> {
        self.rules
            .severity
            .iter()
            .find(|(k, _)| names_rule(k, rule))
            .map(|(_, s)| *s)
    }

    /// The tenant schema globs in effect (the configured ones, or the default).
    pub fn tenant_schema_patterns(&self) -> Vec<&str> {
        if self.tenant_schema_pattern.is_empty() {
            vec![DEFAULT_TENANT_SCHEMA_PATTERN]
        } else {
            self.tenant_schema_pattern
                .iter()
                .map(String::as_str)
                .collect()
        }
    }

    /// The SQL probe rules of `[[custom_rules]]`, for the simulator (or the integrator) to run
    /// on every shard ([`ProbeRuleSpec::query_for_schema`]) and pass back with
    /// [`RuleContext::with_custom_probe`](crate::RuleContext::with_custom_probe).
    pub fn probe_rules(&self) -> Vec<ProbeRuleSpec> {
        self.custom_rules
            .iter()
            .filter_map(|r| match r {
                CustomRuleSpec::Probe(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    /// The configuration error for a probe rule that may not run (refused by the simulator's
    /// pre-flight, on a shard): `InvalidConfigValue` for `custom_rules.sql` at the file line
    /// and column of `(line, column)` within the rule's `sql` (1-based; `line == 0`: the `sql`
    /// value as a whole), so that a run-time refusal reads like a config-time one. Without a
    /// file (a configuration built in code) the position is 0.
    pub fn probe_refusal(
        &self,
        rule: &str,
        (line, column): (u32, u32),
        message: String,
    ) -> GatesError {
        let file = self
            .origin
            .as_ref()
            .map(|o| o.file.clone())
            .unwrap_or_default();
        let sql = self.probe_rules().into_iter().find(|p| p.name == rule);
        let (line, column) = self
            .origin
            .as_ref()
            .and_then(|o| o.probe_sql.iter().find(|s| s.rule == rule))
            .zip(sql)
            .map(|(o, p)| o.position(&p.sql, (line, column)))
            .unwrap_or((0, 0));
        GatesError::InvalidConfigValue {
            file,
            line,
            column,
            key: "custom_rules.sql".into(),
            message,
        }
    }

    /// The statement-pattern rules of `[[custom_rules]]`.
    pub fn statement_rules(&self) -> Vec<StatementRuleSpec> {
        self.custom_rules
            .iter()
            .filter_map(|r| match r {
                CustomRuleSpec::Statement(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    /// The rules `[[custom_rules]]` declares.
    pub fn custom_rule_set(&self) -> Result<Vec<Box<dyn GateRule>>, GatesError> {
        self.custom_rules
            .iter()
            .map(CustomRuleSpec::to_rule)
            .collect()
    }

    /// Every rule name or code written in `[rules]` with the key it is under and its position
    /// (`line == 0` when the config was not parsed from a file).
    pub(crate) fn rule_references(&self) -> Vec<(String, String, String, u32, u32)> {
        let file = self
            .origin
            .as_ref()
            .map(|o| o.file.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        for name in &self.rules.disable {
            out.push(self.position_of("rules.disable", name, &file));
        }
        for name in self.rules.severity.keys() {
            out.push(self.position_of("rules.severity", name, &file));
        }
        out
    }

    fn position_of(&self, key: &str, name: &str, file: &str) -> (String, String, String, u32, u32) {
        let (line, column) = self
            .origin
            .as_ref()
            .and_then(|o| {
                o.rule_positions
                    .iter()
                    .find(|(k, n, _, _)| k == key && n == name)
            })
            .map(|(_, _, l, c)| (*l, *c))
            .unwrap_or((0, 0));
        (
            file.to_string(),
            key.to_string(),
            name.to_string(),
            line,
            column,
        )
    }
}

/// Validate one `[[custom_rules]]` entry (`at`: position of the entry); for a probe, also
/// where its `sql` is written.
fn custom_rule(
    file: &str,
    text: &str,
    at: (u32, u32),
    raw: RawCustomRule,
) -> Result<(CustomRuleSpec, Option<SqlOrigin>), GatesError> {
    let err = |pos: (u32, u32), key: &str, message: String| GatesError::InvalidConfigValue {
        file: file.to_string(),
        line: pos.0,
        column: pos.1,
        key: format!("custom_rules.{key}"),
        message,
    };
    let pos_of = |v: &Spanned<String>| line_col(text, v.span().start);
    let required = |v: Option<Spanned<String>>, key: &str, what: &str| {
        v.ok_or_else(|| err(at, key, format!("missing (the {what})")))
    };
    let kind = required(raw.kind, "kind", "rule kind: \"statement\" or \"probe\"")?;
    let name = required(raw.name, "name", "rule name, kebab-case")?;
    if let Some(m) = custom::name_problem(name.get_ref()) {
        return Err(err(pos_of(&name), "name", m));
    }
    let code = required(raw.code, "code", "rule code, e.g. ACME001")?;
    if let Some(m) = custom::code_problem(code.get_ref()) {
        return Err(err(pos_of(&code), "code", m));
    }
    let severity = match raw.severity {
        None => Severity::Yellow,
        Some(s) => match s.get_ref().as_str() {
            "red" => Severity::Red,
            "yellow" => Severity::Yellow,
            "info" => Severity::Info,
            other => {
                return Err(err(
                    pos_of(&s),
                    "severity",
                    format!("`{other}` (expected \"red\", \"yellow\" or \"info\")"),
                ));
            }
        },
    };
    let message = required(raw.message, "message", "finding message")?.into_inner();
    let help = raw.help.map(Spanned::into_inner);
    let not_for = |v: &Option<Spanned<String>>, key: &str, kind: &str| match v {
        Some(v) => Err(err(
            pos_of(v),
            key,
            format!("`{key}` does not apply to kind = \"{kind}\""),
        )),
        None => Ok(()),
    };
    match kind.get_ref().as_str() {
        "statement" => {
            not_for(&raw.sql, "sql", "statement")?;
            let op = required(
                raw.operation,
                "operation",
                "operation kind, e.g. \"drop_column\"",
            )?;
            if !custom::OPERATION_KINDS.contains(&op.get_ref().as_str()) {
                return Err(err(
                    pos_of(&op),
                    "operation",
                    format!(
                        "unknown operation `{}` (expected one of: {})",
                        op.get_ref(),
                        custom::OPERATION_KINDS.join(", ")
                    ),
                ));
            }
            for (key, g) in [("table", &raw.table), ("column", &raw.column)] {
                if let Some(g) = g
                    && let Some(m) = custom::glob_problem(g.get_ref())
                {
                    return Err(err(pos_of(g), key, m));
                }
            }
            Ok((
                CustomRuleSpec::Statement(StatementRuleSpec {
                    name: name.into_inner(),
                    code: code.into_inner(),
                    severity,
                    operation: op.into_inner(),
                    table: raw.table.map(Spanned::into_inner),
                    column: raw.column.map(Spanned::into_inner),
                    message,
                    help,
                }),
                None,
            ))
        }
        "probe" => {
            not_for(&raw.operation, "operation", "probe")?;
            not_for(&raw.table, "table", "probe")?;
            not_for(&raw.column, "column", "probe")?;
            let sql = required(raw.sql, "sql", "read-only query")?;
            let origin = SqlOrigin {
                rule: name.get_ref().clone(),
                raw: text.get(sql.span()).unwrap_or_default().to_string(),
                start: pos_of(&sql),
            };
            if let Err(p) = evidence::check_probe_template(sql.get_ref()) {
                let at = origin.position(sql.get_ref(), (p.line, p.column));
                return Err(err(at, "sql", p.message));
            }
            Ok((
                CustomRuleSpec::Probe(ProbeRuleSpec {
                    name: name.into_inner(),
                    code: code.into_inner(),
                    severity,
                    sql: sql.into_inner(),
                    message,
                    help,
                }),
                Some(origin),
            ))
        }
        other => Err(err(
            pos_of(&kind),
            "kind",
            format!("`{other}` (expected \"statement\" or \"probe\")"),
        )),
    }
}

/// Whether `reference` (from configuration or an inline ignore) names `rule`: its name or
/// code, case-insensitively.
pub(crate) fn names_rule(reference: &str, rule: &RuleMeta<'_>) -> bool {
    let r = reference.trim();
    r.eq_ignore_ascii_case(rule.name) || r.eq_ignore_ascii_case(rule.code)
}

fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> GatesError {
    let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
    let message = e.message().trim().to_string();
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((key, tail)) = rest.split_once('`')
    {
        let expected = tail
            .split_once("expected ")
            .map(|(_, x)| {
                x.replace("one of ", "")
                    .replace('`', "")
                    .replace(" or ", ", ")
            })
            .unwrap_or_default();
        return GatesError::UnknownConfigKey {
            file: file.to_string(),
            line,
            column,
            key: key.to_string(),
            expected,
        };
    }
    GatesError::ConfigSyntax {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

/// File line and column of the place `(line, column)` (1-based, in characters; `line == 0`:
/// the value as a whole) of the decoded TOML string `value`, whose source `raw` (quotes
/// included) starts at file position `start`. Any TOML string form: basic (escapes), literal,
/// multi-line (the newline after the opening quotes is not part of the value; a line-ending
/// backslash joins lines). Falls back to `start` when the place cannot be mapped.
fn sql_position(
    raw: &str,
    start: (u32, u32),
    value: &str,
    (line, column): (u32, u32),
) -> (u32, u32) {
    if line == 0 {
        return start;
    }
    let Some(offsets) = decoded_offsets(raw, value) else {
        return start;
    };
    // The character index of (line, column) in the decoded value.
    let (mut l, mut c) = (1u32, 1u32);
    for (i, ch) in value.chars().enumerate() {
        if l == line && c == column {
            return offsets
                .get(i)
                .and_then(|off| raw.get(..*off))
                .map(|before| advance(start, before))
                .unwrap_or(start);
        }
        if ch == '\n' {
            l += 1;
            c = 1;
        } else {
            c += 1;
        }
    }
    start
}

/// The file position `at` moved past `s`.
fn advance(at: (u32, u32), s: &str) -> (u32, u32) {
    s.chars().fold(at, |(l, c), ch| {
        if ch == '\n' {
            (l.saturating_add(1), 1)
        } else {
            (l, c.saturating_add(1))
        }
    })
}

/// For each character of the TOML string literal `raw` (quotes included) once decoded, the byte
/// offset in `raw` of its source; `None` unless decoding gives exactly `expected`.
fn decoded_offsets(raw: &str, expected: &str) -> Option<Vec<usize>> {
    let delim = ["\"\"\"", "'''", "\"", "'"]
        .into_iter()
        .find(|d| raw.len() >= 2 * d.len() && raw.starts_with(d) && raw.ends_with(d))?;
    let escapes = delim.starts_with('"');
    let multi = delim.len() == 3;
    let end = raw.len() - delim.len();
    let mut i = delim.len();
    if multi {
        i += ["\r\n", "\n"]
            .into_iter()
            .find(|nl| raw[i..].starts_with(nl))
            .map_or(0, str::len);
    }
    let (mut out, mut offsets) = (String::new(), Vec::new());
    while i < end {
        let ch = raw.get(i..end)?.chars().next()?;
        if !(escapes && ch == '\\') {
            out.push(ch);
            offsets.push(i);
            i += ch.len_utf8();
            continue;
        }
        let esc = raw.get(i + 1..end)?.chars().next()?;
        let (decoded, len) = match esc {
            'b' => ('\u{8}', 2),
            't' => ('\t', 2),
            'n' => ('\n', 2),
            'f' => ('\u{c}', 2),
            'r' => ('\r', 2),
            'e' => ('\u{1b}', 2),
            '"' => ('"', 2),
            '\\' => ('\\', 2),
            'x' | 'u' | 'U' => {
                let n = match esc {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex = raw.get(i + 2..i + 2 + n)?;
                (char::from_u32(u32::from_str_radix(hex, 16).ok()?)?, 2 + n)
            }
            ' ' | '\t' | '\r' | '\n' if multi => {
                // Line-ending backslash: it and all whitespace and newlines after it vanish.
                i += 1;
                while raw[i..end].starts_with([' ', '\t', '\r', '\n']) {
                    i += 1;
                }
                continue;
            }
            _ => return None,
        };
        out.push(decoded);
        offsets.push(i);
        i += len;
    }
    (out == expected).then_some(offsets)
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

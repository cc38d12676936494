//! Declarative custom rules from `deployclaw.toml` (`[[custom_rules]]`): statement patterns
//! ([`StatementRuleSpec`] → [`CustomStatementRule`]) and SQL probes ([`ProbeRuleSpec`] →
//! [`CustomProbeRule`]).
//!
//! ```toml
//! [[custom_rules]]
//! kind = "statement"
//! name = "no-drop-billing-columns"
//! code = "ACME001"                 # not DCxxx (reserved for built-ins) unless DC800–DC899
//! severity = "red"                 # "red" | "yellow" | "info"; default "yellow"
//! operation = "drop_column"        # an operation kind (see OPERATION_KINDS) or "any"
//! table = "billing_*"              # optional glob on the table name (`schema.name` if it has a dot)
//! column = "*"                     # optional glob on the column(s) the operation touches
//! message = "dropping `{column}` from `{table}` loses billing history"
//! help = "archive the column first"   # optional
//!
//! [[custom_rules]]
//! kind = "probe"
//! name = "no-open-invoices"
//! code = "ACME002"
//! severity = "yellow"
//! sql = "SELECT id, status FROM {schema}.invoices WHERE status = 'open'"
//! message = "{rows} open invoice(s) on this shard"
//! help = "close or migrate open invoices first"   # optional
//! ```
//!
//! `operation` is one of the parser's operation kinds (`Operation` variants in snake_case), or
//! `any`: `create_table`, `drop_table`, `rename_table`, `add_column`, `drop_column`,
//! `rename_column`, `alter_column_type`, `set_not_null`, `drop_not_null`, `set_default`,
//! `drop_default`, `add_constraint`, `validate_constraint`, `drop_constraint`,
//! `rename_constraint`, `create_index`, `drop_index`, `rename_index`, `reindex`, `create_enum`,
//! `add_enum_value`, `rename_enum_value`, `drop_type`, `truncate`, `create_schema`,
//! `drop_schema`, `drop_database`, `update`, `delete`, `insert`, `create_view`, `drop_view`,
//! `refresh_materialized_view`, `lock_table`, `maintenance`, `alter_table_other`,
//! `attach_partition`, `detach_partition`, `set`, `reset`, `transaction`, `do`,
//! `create_sequence`, `create_extension`, `create_function`, `create_trigger`, `comment`,
//! `create_database`, `attach_index_partition`, `alter_system`, `other`
//! ([`OPERATION_KINDS`]). `table` matches the relation the operation acts on (every table of a
//! `TRUNCATE`); `column` the column(s) it touches (the added/dropped/altered column, the
//! columns of a new table, index, key or `UPDATE ... SET`); an operation without a table or
//! column never matches a `table` or `column` pattern. Required keys: `kind`, `name`, `code`,
//! `message`, and `operation` (statement) or `sql` (probe); `severity` defaults to `yellow`.
//! Codes must not start with `DC` (reserved for built-ins) except `DC800`–`DC899`; names must not
//! be a built-in rule's.
//!
//! Probe SQL must be exactly one read-only query, checked when the file is read
//! ([`evidence::check_probe_template`], parsed with sqlparser): a `SELECT` / `WITH` / `VALUES` /
//! `TABLE` with no data-modifying CTE, no `FOR UPDATE`/`FOR SHARE`, no `SELECT ... INTO`, no
//! call of an administrative or side-effecting function (advisory locks, replication slots,
//! statistics resets, ending sessions, sequences, server files, large objects, `dblink`, ...:
//! [`migration_parser::denied_function`]) and no read of a catalog that holds credentials
//! (`pg_authid`, `pg_shadow`, `pg_user_mapping`, large objects, ...). The error points at the
//! offending place inside the `sql` string (file line and column). Before any probe runs, the
//! simulator resolves every function it calls on every shard and refuses the run if one is
//! `VOLATILE` (a user-defined function that writes, say); see SECURITY.md.
//!
//! Messages may use placeholders: `{table}`, `{column}`, `{operation}` in statement rules;
//! `{rows}` (number of rows returned, `5+` when truncated), `{schema}` and `{shard}` in probe
//! rules. Gates does no IO: the simulator (or the integrator) runs each
//! [`Config::probe_rules`](crate::Config::probe_rules) query per shard and passes the rows to
//! [`RuleContext::with_custom_probe`](crate::RuleContext::with_custom_probe).

use globset::{Glob, GlobMatcher};
use migration_parser::{ConstraintKind, Operation, QualifiedName};
use serde::{Deserialize, Serialize};

use crate::{Finding, GateRule, GatesError, RuleContext, RuleMeta, RuleScope, Severity};

/// Operation kinds a statement rule's `operation` may name: the parser's
/// [`migration_parser::OperationKind`] names (snake_case variants of [`Operation`]), plus `any`.
pub const OPERATION_KINDS: &[&str] = &{
    let kinds = migration_parser::OperationKind::NAMES;
    let mut out = [""; migration_parser::OperationKind::NAMES.len() + 1];
    let mut i = 0;
    while i < kinds.len() {
        out[i] = kinds[i];
        i += 1;
    }
    out[kinds.len()] = "any";
    out
};

/// Maximum number of rows of a custom probe kept as evidence.
pub const MAX_PROBE_ROWS: usize = evidence::MAX_CUSTOM_PROBE_ROWS;

/// A declarative custom rule as written in `[[custom_rules]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CustomRuleSpec {
    /// `kind = "statement"`: a pattern on the migration's operations (static).
    Statement(StatementRuleSpec),
    /// `kind = "probe"`: a read-only SQL query run on every shard (per shard).
    Probe(ProbeRuleSpec),
}

impl CustomRuleSpec {
    /// The rule's name.
    pub fn name(&self) -> &str {
        match self {
            CustomRuleSpec::Statement(s) => &s.name,
            CustomRuleSpec::Probe(p) => &p.name,
        }
    }

    /// The rule's code.
    pub fn code(&self) -> &str {
        match self {
            CustomRuleSpec::Statement(s) => &s.code,
            CustomRuleSpec::Probe(p) => &p.code,
        }
    }

    /// The rule this spec declares.
    pub fn to_rule(&self) -> Result<Box<dyn GateRule>, GatesError> {
        Ok(match self {
            CustomRuleSpec::Statement(s) => Box::new(CustomStatementRule::new(s.clone())?),
            CustomRuleSpec::Probe(p) => Box::new(CustomProbeRule::new(p.clone())),
        })
    }
}

/// `kind = "statement"`: flag every operation of kind `operation` whose table and column match
/// the globs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatementRuleSpec {
    /// Rule name (kebab-case).
    pub name: String,
    /// Rule code (not `DC…` except `DC800`–`DC899`).
    pub code: String,
    /// Default severity.
    pub severity: Severity,
    /// Operation kind ([`OPERATION_KINDS`]).
    pub operation: String,
    /// Glob on the table (`schema.name` when the glob has a dot, else the bare name).
    pub table: Option<String>,
    /// Glob on the column(s) the operation touches.
    pub column: Option<String>,
    /// Message; `{table}`, `{column}`, `{operation}` are replaced.
    pub message: String,
    /// Help text.
    pub help: Option<String>,
}

impl StatementRuleSpec {
    /// A statement rule for `operation` with `message`, matching every table and column.
    pub fn new(
        name: impl Into<String>,
        code: impl Into<String>,
        severity: Severity,
        operation: impl Into<String>,
        message: impl Into<String>,
    ) -> StatementRuleSpec {
        StatementRuleSpec {
            name: name.into(),
            code: code.into(),
            severity,
            operation: operation.into(),
            table: None,
            column: None,
            message: message.into(),
            help: None,
        }
    }

    /// The same spec restricted to tables matching `glob`.
    #[must_use]
    pub fn with_table(mut self, glob: impl Into<String>) -> StatementRuleSpec {
        self.table = Some(glob.into());
        self
    }

    /// The same spec restricted to columns matching `glob`.
    #[must_use]
    pub fn with_column(mut self, glob: impl Into<String>) -> StatementRuleSpec {
        self.column = Some(glob.into());
        self
    }

    /// The same spec with help text.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> StatementRuleSpec {
        self.help = Some(help.into());
        self
    }
}

/// `kind = "probe"`: a read-only query run on every shard; any row returned is a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProbeRuleSpec {
    /// Rule name (kebab-case); also the key for
    /// [`RuleContext::with_custom_probe`](crate::RuleContext::with_custom_probe).
    pub name: String,
    /// Rule code.
    pub code: String,
    /// Default severity.
    pub severity: Severity,
    /// One read-only `SELECT` / `WITH` / `VALUES` / `TABLE` statement; `{schema}` stands for
    /// the quoted tenant schema.
    pub sql: String,
    /// Message; `{rows}`, `{schema}`, `{shard}` are replaced.
    pub message: String,
    /// Help text.
    pub help: Option<String>,
}

impl ProbeRuleSpec {
    /// A probe rule.
    pub fn new(
        name: impl Into<String>,
        code: impl Into<String>,
        severity: Severity,
        sql: impl Into<String>,
        message: impl Into<String>,
    ) -> ProbeRuleSpec {
        ProbeRuleSpec {
            name: name.into(),
            code: code.into(),
            severity,
            sql: sql.into(),
            message: message.into(),
            help: None,
        }
    }

    /// The same spec with help text.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> ProbeRuleSpec {
        self.help = Some(help.into());
        self
    }

    /// The query for one shard: `{schema}` replaced by the schema as a quoted identifier
    /// (`"tenant_0042"`), a trailing `;` removed.
    pub fn sql_for_schema(&self, schema: &str) -> String {
        evidence::expand_probe_template(&self.sql, schema)
    }

    /// What the simulator runs on a shard (in its read-only probe transaction): the query
    /// wrapped so that each row comes back as one `jsonb` column `row`, at most
    /// [`MAX_PROBE_ROWS`] + 1 rows (one more than kept, to tell that there were more).
    pub fn query_for_schema(&self, schema: &str) -> String {
        evidence::custom_probe_sql(&self.sql, schema)
    }

    /// The probe the simulator runs for this rule (named like the rule).
    pub fn probe(&self) -> evidence::CustomProbe {
        evidence::CustomProbe::new(self.name.clone(), self.sql.clone())
    }
}

/// Why `code` cannot be a custom rule's code, if it cannot.
pub(crate) fn code_problem(code: &str) -> Option<String> {
    let c = code.trim();
    if c.is_empty() {
        return Some("the code is empty".into());
    }
    if !c
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        return Some(format!("`{c}` (use letters, digits, `-` and `_`)"));
    }
    let upper = c.to_ascii_uppercase();
    if let Some(rest) = upper.strip_prefix("DC") {
        let custom_range =
            rest.len() == 3 && rest.starts_with('8') && rest.chars().all(|d| d.is_ascii_digit());
        if !custom_range {
            return Some(format!(
                "`{c}`: DC codes are reserved for built-in rules (use your own prefix, e.g. ACME001, or DC800–DC899)"
            ));
        }
    }
    None
}

/// Why `name` cannot be a custom rule's name, if it cannot.
pub(crate) fn name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if !ok {
        return Some(format!(
            "`{name}` (expected kebab-case: lower-case letters, digits and `-`)"
        ));
    }
    if crate::rules::builtin()
        .iter()
        .any(|r| r.meta().name == name)
    {
        return Some(format!("`{name}` is the name of a built-in rule"));
    }
    None
}

/// Why `glob` is not a valid glob, if it is not.
pub(crate) fn glob_problem(glob: &str) -> Option<String> {
    Glob::new(glob)
        .err()
        .map(|e| format!("`{glob}` is not a valid glob: {}", e.kind()))
}

fn invalid(key: &str, message: String) -> GatesError {
    GatesError::InvalidConfigValue {
        file: String::new(),
        line: 0,
        column: 0,
        key: key.to_string(),
        message,
    }
}

/// A statement-pattern rule from `[[custom_rules]] kind = "statement"`.
#[derive(Debug, Clone)]
pub struct CustomStatementRule {
    spec: StatementRuleSpec,
    table: Option<GlobMatcher>,
    column: Option<GlobMatcher>,
    docs: String,
}

impl CustomStatementRule {
    /// The rule for `spec`; fails on an invalid name, code, operation kind or glob (specs read
    /// by [`Config::from_toml_str`](crate::Config::from_toml_str) are already checked, with
    /// their position).
    pub fn new(spec: StatementRuleSpec) -> Result<CustomStatementRule, GatesError> {
        if let Some(m) = name_problem(&spec.name) {
            return Err(invalid("custom_rules.name", m));
        }
        if let Some(m) = code_problem(&spec.code) {
            return Err(invalid("custom_rules.code", m));
        }
        if !OPERATION_KINDS.contains(&spec.operation.as_str()) {
            return Err(invalid(
                "custom_rules.operation",
                format!(
                    "unknown operation `{}` (expected one of: {})",
                    spec.operation,
                    OPERATION_KINDS.join(", ")
                ),
            ));
        }
        let compile = |key: &str, g: &Option<String>| -> Result<Option<GlobMatcher>, GatesError> {
            match g {
                None => Ok(None),
                Some(g) => Glob::new(g)
                    .map(|g| Some(g.compile_matcher()))
                    .map_err(|e| invalid(key, format!("`{g}` is not a valid glob: {}", e.kind()))),
            }
        };
        let table = compile("custom_rules.table", &spec.table)?;
        let column = compile("custom_rules.column", &spec.column)?;
        let mut docs = format!(
            " ## What it does\n Custom rule from `deployclaw.toml`: flags `{}` operations",
            spec.operation
        );
        if let Some(t) = &spec.table {
            docs.push_str(&format!(" on tables matching `{t}`"));
        }
        if let Some(c) = &spec.column {
            docs.push_str(&format!(" touching columns matching `{c}`"));
        }
        docs.push_str(&format!(".\n\n ## Why is this bad?\n {}\n", spec.message));
        if let Some(h) = &spec.help {
            docs.push_str(&format!("\n ## Safe alternative\n {h}\n"));
        }
        Ok(CustomStatementRule {
            spec,
            table,
            column,
            docs,
        })
    }

    /// The spec this rule was built from.
    pub fn spec(&self) -> &StatementRuleSpec {
        &self.spec
    }

    fn table_matches(&self, names: &[&QualifiedName]) -> Option<String> {
        let Some(m) = &self.table else {
            return Some(names.first().map(|n| n.to_string()).unwrap_or_default());
        };
        let dotted = self.spec.table.as_deref().is_some_and(|g| g.contains('.'));
        names
            .iter()
            .find(|n| {
                if dotted {
                    m.is_match(n.to_string())
                } else {
                    m.is_match(&n.name)
                }
            })
            .map(|n| n.to_string())
    }

    fn column_matches(&self, columns: &[&str]) -> Option<String> {
        let Some(m) = &self.column else {
            return Some(columns.join(", "));
        };
        columns
            .iter()
            .find(|c| m.is_match(c))
            .map(|c| c.to_string())
    }
}

/// The relations an operation acts on (for `table = "glob"`).
fn target_tables(op: &Operation) -> Vec<&QualifiedName> {
    match op {
        Operation::Truncate { tables, .. }
        | Operation::LockTable { tables, .. }
        | Operation::Maintenance { tables, .. } => tables.iter().collect(),
        _ => crate::mentioned_names(op).into_iter().take(1).collect(),
    }
}

/// The columns an operation touches (for `column = "glob"`).
fn target_columns(op: &Operation) -> Vec<&str> {
    use Operation as O;
    match op {
        O::AddColumn { column, .. } => vec![column.name.as_str()],
        O::DropColumn { column, .. }
        | O::AlterColumnType { column, .. }
        | O::SetNotNull { column, .. }
        | O::DropNotNull { column, .. }
        | O::SetDefault { column, .. }
        | O::DropDefault { column, .. } => vec![column.as_str()],
        O::RenameColumn {
            column, new_name, ..
        } => vec![column.as_str(), new_name.as_str()],
        O::CreateTable { columns, .. } => columns.iter().map(|c| c.name.as_str()).collect(),
        O::CreateIndex { columns, .. } | O::Update { columns, .. } => {
            columns.iter().map(String::as_str).collect()
        }
        O::AddConstraint { constraint, .. } => match &constraint.kind {
            ConstraintKind::PrimaryKey { columns, .. }
            | ConstraintKind::Unique { columns, .. }
            | ConstraintKind::ForeignKey { columns, .. } => {
                columns.iter().map(String::as_str).collect()
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

impl GateRule for CustomStatementRule {
    fn meta(&self) -> RuleMeta<'_> {
        RuleMeta::new(&self.spec.code, &self.spec.name, self.spec.severity).with_docs(&self.docs)
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let kind = op.kind().as_str();
            if self.spec.operation != "any" && kind != self.spec.operation {
                continue;
            }
            let tables = target_tables(op);
            if self.table.is_some() && tables.is_empty() {
                continue;
            }
            let Some(table) = self.table_matches(&tables) else {
                continue;
            };
            let columns = target_columns(op);
            if self.column.is_some() && columns.is_empty() {
                continue;
            }
            let Some(column) = self.column_matches(&columns) else {
                continue;
            };
            let message = self
                .spec
                .message
                .replace("{table}", &table)
                .replace("{column}", &column)
                .replace("{operation}", kind);
            let mut f = ctx.finding(self, stmt, message);
            if let Some(h) = &self.spec.help {
                f = f.with_help(h.clone());
            }
            out.push(f.with_evidence(serde_json::json!({
                "operation": kind,
                "table": table,
                "column": column,
            })));
        }
        out
    }
}

/// A SQL probe rule from `[[custom_rules]] kind = "probe"`: turns the rows the probe returned on
/// a shard ([`RuleContext::custom_probe`]) into a finding.
#[derive(Debug, Clone)]
pub struct CustomProbeRule {
    spec: ProbeRuleSpec,
    docs: String,
}

impl CustomProbeRule {
    /// The rule for `spec`.
    pub fn new(spec: ProbeRuleSpec) -> CustomProbeRule {
        let mut docs = format!(
            " ## What it does\n Custom probe from `deployclaw.toml`: runs this read-only query on every shard and \
             reports the shard when it returns rows:\n ```sql\n {}\n ```\n\n ## Why is this bad?\n {}\n",
            spec.sql.trim(),
            spec.message
        );
        if let Some(h) = &spec.help {
            docs.push_str(&format!("\n ## Safe alternative\n {h}\n"));
        }
        CustomProbeRule { spec, docs }
    }

    /// The spec this rule was built from.
    pub fn spec(&self) -> &ProbeRuleSpec {
        &self.spec
    }
}

impl GateRule for CustomProbeRule {
    fn meta(&self) -> RuleMeta<'_> {
        RuleMeta::new(&self.spec.code, &self.spec.name, self.spec.severity)
            .with_docs(&self.docs)
            .with_scope(RuleScope::Shard)
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(outcome) = ctx.custom_probe(&self.spec.name) else {
            return Vec::new();
        };
        let shard = ctx.shard_id().unwrap_or_default();
        let (schema, sql) = match ctx.shard_schema() {
            Some(s) => (s, self.spec.sql_for_schema(s)),
            None => (shard, self.spec.sql.clone()),
        };
        if let Some(err) = &outcome.error {
            return vec![
                ctx.shard_finding(
                    self,
                    None,
                    format!(
                        "custom probe `{}` could not run on this shard, so its check is not proven: {err}",
                        self.spec.name
                    ),
                )
                .with_help("Fix the query in [[custom_rules]] (it runs read-only, with {schema} replaced by the quoted tenant schema)")
                .with_evidence(serde_json::json!({ "error": err, "sql": sql })),
            ];
        }
        if outcome.rows.is_empty() {
            return Vec::new();
        }
        let rows: Vec<&serde_json::Value> = outcome.rows.iter().take(MAX_PROBE_ROWS).collect();
        let more = outcome.truncated || outcome.rows.len() > MAX_PROBE_ROWS;
        let count = if more {
            format!("{MAX_PROBE_ROWS}+")
        } else {
            rows.len().to_string()
        };
        let message = self
            .spec
            .message
            .replace("{rows}", &count)
            .replace("{schema}", schema)
            .replace("{shard}", shard);
        let mut f = ctx.shard_finding(self, None, message);
        if let Some(h) = &self.spec.help {
            f = f.with_help(h.clone());
        }
        vec![f.with_evidence(serde_json::json!({
            "rows": rows,
            "row_count": count,
            "truncated": more,
            "sql": sql,
        }))]
    }
}

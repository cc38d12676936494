//! [`RuleContext`]: what a rule sees, and helpers that answer the questions most rules ask
//! ("was this table created earlier in this migration?", "is `col` already proven NOT NULL?").

use migration_parser::state::{ColumnResolved, ObjectKind};
use migration_parser::{
    ConstraintKind, LockFact, Migration, MigrationState, Operation, PgVersion, QualifiedName,
    Resolved, Statement, Step,
};

use std::collections::BTreeMap;

use evidence::{
    CatalogDifference, FkGraph, LiveEvidence, RehearsalResult, ShardEvidence, SimulationResult,
    TableStats,
};

use crate::{Config, CustomProbeOutcome, DriftItem, Finding, GateRule, Location, RollbackEvidence};

/// The most characters of a statement's first line a [`Finding`] carries as its text.
pub const MAX_STATEMENT_TEXT: usize = 300;

/// Everything a rule may look at.
///
/// `#[non_exhaustive]` with private fields. A context built with [`RuleContext::new`] holds the
/// migration and configuration only: static rules run, per-shard rules report nothing. The
/// `with_*` builders add one shard's evidence, so the same [`Registry`](crate::Registry) runs
/// static and per-shard rules:
///
/// ```
/// use gates::{Config, Registry, RuleContext, RollbackEvidence};
/// use gates::migration_parser::parse;
///
/// let config = Config::default();
/// let m = parse("m.sql", "ALTER TABLE orders ADD COLUMN note text;", &config.parse_options()).unwrap();
/// let rollback = RollbackEvidence::default();
/// let ctx = RuleContext::new(&m, &config)
///     .with_shard_id("tenant_0042", "db-1")
///     .with_unreachable("connection refused")
///     .with_rollback(&rollback)
///     .with_lock_budget_ms(2_000);
/// let verdict = gates::evaluate_shard(&Registry::builtin(), &ctx);
/// assert_eq!(verdict.gate, gates::Gate::Red); // shard-unreachable
/// ```
#[non_exhaustive]
pub struct RuleContext<'a> {
    migration: &'a Migration,
    config: &'a Config,
    pg_version: PgVersion,
    state: MigrationState,
    shard: ShardState<'a>,
    /// The run's live evidence per shard id, for fleet rules ([`RuleScope::Fleet`](crate::RuleScope)).
    fleet_live: Option<&'a BTreeMap<String, LiveEvidence>>,
}

/// The per-shard part of a [`RuleContext`]; empty for static linting.
#[derive(Default)]
struct ShardState<'a> {
    present: bool,
    id: Option<(String, String)>,
    schema: Option<String>,
    evidence: Option<&'a ShardEvidence>,
    unreachable: Option<String>,
    rehearsal: Option<&'a RehearsalResult>,
    drift: Vec<DriftItem>,
    drift_reference: Option<String>,
    fk_graph: Option<&'a FkGraph>,
    rollback: Option<&'a RollbackEvidence>,
    lock_budget_ms: Option<u64>,
    custom_probes: BTreeMap<String, CustomProbeOutcome>,
}

impl std::fmt::Debug for RuleContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleContext")
            .field("file", &self.migration.file)
            .field("pg_version", &self.pg_version)
            .field("shard", &self.shard_id())
            .finish_non_exhaustive()
    }
}

/// A constraint added by the migration, as [`RuleContext::constraint_added`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AddedConstraint {
    /// Index of the statement that added it.
    pub statement: usize,
    /// Transaction id of that statement.
    pub transaction: usize,
    /// Added `NOT VALID`.
    pub not_valid: bool,
}

impl<'a> RuleContext<'a> {
    /// A context for `migration` under `config`. The PostgreSQL version is the configured one,
    /// else the one the migration was parsed with.
    pub fn new(migration: &'a Migration, config: &'a Config) -> RuleContext<'a> {
        let pg_version = config.pg_version.unwrap_or(migration.options.pg_version);
        RuleContext {
            migration,
            config,
            pg_version,
            state: MigrationState::new(migration),
            shard: ShardState::default(),
            fleet_live: None,
        }
    }

    // ----- per-shard evidence (builders) -----------------------------------------------------

    /// The same context for the shard the simulator probed (`evidence.shard`,
    /// `evidence.instance`): its probes, table sizes, lock estimate and reachability. The PostgreSQL
    /// version is not changed; call [`with_pg_version`](Self::with_pg_version) with
    /// `evidence.server_version` to judge static rules by the shard's own server.
    #[must_use]
    pub fn with_shard(mut self, evidence: &'a ShardEvidence) -> RuleContext<'a> {
        self.shard.present = true;
        if self.shard.id.is_none() {
            self.shard.id = Some((evidence.shard.clone(), evidence.instance.clone()));
        }
        self.shard.evidence = Some(evidence);
        self
    }

    /// The same context for shard `shard` of a simulation: its [`ShardEvidence`]
    /// ([`with_shard`](Self::with_shard)) and the rehearsal of its schema shape
    /// ([`with_rehearsal`](Self::with_rehearsal)), when the simulation has them. A shard the
    /// simulation does not know is only named ([`with_shard_id`](Self::with_shard_id), empty
    /// instance).
    #[must_use]
    pub fn with_simulation(self, simulation: &'a SimulationResult, shard: &str) -> RuleContext<'a> {
        let mut ctx = match simulation.shard(shard) {
            Some(evidence) => self.with_shard(evidence),
            None => self.with_shard_id(shard, ""),
        };
        if let Some(r) = simulation.rehearsal_for(shard) {
            ctx = ctx.with_rehearsal(r);
        }
        ctx
    }

    /// The same context naming the shard and its instance (when there is no [`ShardEvidence`],
    /// e.g. a shard that could not even be introspected). Overrides the ids of
    /// [`with_shard`](Self::with_shard).
    #[must_use]
    pub fn with_shard_id(
        mut self,
        shard: impl Into<String>,
        instance: impl Into<String>,
    ) -> RuleContext<'a> {
        self.shard.present = true;
        self.shard.id = Some((shard.into(), instance.into()));
        self
    }

    /// The schema the shard's tables live in, when there is no [`ShardEvidence`] (which
    /// carries it). Overrides `evidence.schema`.
    #[must_use]
    pub fn with_shard_schema(mut self, schema: impl Into<String>) -> RuleContext<'a> {
        self.shard.present = true;
        self.shard.schema = Some(schema.into());
        self
    }

    /// The same context for a shard that could not be reached or read, with the reason
    /// (`shard-unreachable`). The simulator's [`ShardEvidence::unreachable`] counts as well.
    #[must_use]
    pub fn with_unreachable(mut self, reason: impl Into<String>) -> RuleContext<'a> {
        self.shard.present = true;
        self.shard.unreachable = Some(reason.into());
        self
    }

    /// The same context with the rehearsal of the shard's schema shape
    /// (`SimulationResult::rehearsal_for(shard)`): statement outcomes with SQLSTATE.
    #[must_use]
    pub fn with_rehearsal(mut self, rehearsal: &'a RehearsalResult) -> RuleContext<'a> {
        self.shard.present = true;
        self.shard.rehearsal = Some(rehearsal);
        self
    }

    /// The same context with the shard's differences from the fleet's majority shape
    /// (`topology::catalog::detect_drift` → `DriftedShard::differences`), for `schema-drift`.
    #[must_use]
    pub fn with_drift(mut self, differences: &[CatalogDifference]) -> RuleContext<'a> {
        self.shard.present = true;
        self.shard
            .drift
            .extend(differences.iter().map(DriftItem::from_difference));
        self
    }

    /// [`with_drift`](Self::with_drift) with entries built by hand.
    #[must_use]
    pub fn with_drift_items(mut self, items: Vec<DriftItem>) -> RuleContext<'a> {
        self.shard.present = true;
        self.shard.drift.extend(items);
        self
    }

    /// The shard whose catalog is the fleet's majority shape (`DriftReport::reference_shard`),
    /// named in `schema-drift` messages.
    #[must_use]
    pub fn with_drift_reference(mut self, shard: impl Into<String>) -> RuleContext<'a> {
        self.shard.drift_reference = Some(shard.into());
        self
    }

    /// The same context with the foreign-key graph of the shard's catalog before the migration
    /// (`topology::catalog::fk_graph_of`), for `cascade-reach`.
    #[must_use]
    pub fn with_fk_graph(mut self, graph: &'a FkGraph) -> RuleContext<'a> {
        self.shard.present = true;
        self.shard.fk_graph = Some(graph);
        self
    }

    /// The same context with what the rollback step found (`rollback-irreversible`,
    /// `rollback-mismatch`, `rollback-unproven`).
    #[must_use]
    pub fn with_rollback(mut self, rollback: &'a RollbackEvidence) -> RuleContext<'a> {
        self.shard.present = true;
        self.shard.rollback = Some(rollback);
        self
    }

    /// The same context with another blocking-lock budget than `[lock_budget]
    /// max_blocking_ms` (e.g. from a command-line flag), for `lock-time-budget`.
    #[must_use]
    pub fn with_lock_budget_ms(mut self, budget_ms: u64) -> RuleContext<'a> {
        self.shard.lock_budget_ms = Some(budget_ms);
        self
    }

    /// The same context with what the custom probe rule `name` ([`Config::probe_rules`])
    /// returned on this shard.
    #[must_use]
    pub fn with_custom_probe(
        mut self,
        name: impl Into<String>,
        outcome: CustomProbeOutcome,
    ) -> RuleContext<'a> {
        self.shard.present = true;
        self.shard.custom_probes.insert(name.into(), outcome);
        self
    }

    /// [`with_custom_probe`](Self::with_custom_probe) with the rows (JSON objects) the probe
    /// returned.
    #[must_use]
    pub fn with_custom_probe_rows(
        self,
        name: impl Into<String>,
        rows: Vec<serde_json::Value>,
    ) -> RuleContext<'a> {
        self.with_custom_probe(name, CustomProbeOutcome::rows(rows))
    }

    /// The same context for the fleet rules ([`RuleScope::Fleet`](crate::RuleScope)): the
    /// live evidence of every shard of the run, by shard id (findings reported once per run).
    #[must_use]
    pub fn with_fleet_live(mut self, live: &'a BTreeMap<String, LiveEvidence>) -> RuleContext<'a> {
        self.fleet_live = Some(live);
        self
    }

    /// Whether the run's live evidence was given (fleet rules report nothing otherwise).
    pub fn is_fleet_context(&self) -> bool {
        self.fleet_live.is_some()
    }

    /// The run's live evidence by shard id, in a fleet context.
    pub fn fleet_live(&self) -> Option<&'a BTreeMap<String, LiveEvidence>> {
        self.fleet_live
    }

    // ----- per-shard evidence (accessors) ----------------------------------------------------

    /// Whether any per-shard evidence was given (per-shard rules report nothing otherwise).
    pub fn is_shard_context(&self) -> bool {
        self.shard.present
    }

    /// The shard id, when this is a per-shard context.
    pub fn shard_id(&self) -> Option<&str> {
        self.shard.id.as_ref().map(|(s, _)| s.as_str())
    }

    /// The shard's instance, when known.
    pub fn instance(&self) -> Option<&str> {
        self.shard.id.as_ref().map(|(_, i)| i.as_str())
    }

    /// The simulator's evidence for the shard.
    pub fn shard_evidence(&self) -> Option<&'a ShardEvidence> {
        self.shard.evidence
    }

    /// The schema the shard's tables live in (unqualified names in the migration resolve to it).
    pub fn shard_schema(&self) -> Option<&str> {
        self.shard
            .schema
            .as_deref()
            .or_else(|| self.shard.evidence.map(|e| e.schema.as_str()))
    }

    /// Why the shard could not be reached or read, if it could not.
    pub fn unreachable(&self) -> Option<&str> {
        self.shard
            .unreachable
            .as_deref()
            .or_else(|| self.shard.evidence.and_then(|e| e.unreachable.as_deref()))
    }

    /// The rehearsal of the shard's schema shape.
    pub fn rehearsal(&self) -> Option<&'a RehearsalResult> {
        self.shard.rehearsal
    }

    /// The shard's drift from the fleet's majority shape.
    pub fn drift(&self) -> &[DriftItem] {
        &self.shard.drift
    }

    /// The reference shard of the drift comparison, when given.
    pub fn drift_reference(&self) -> Option<&str> {
        self.shard.drift_reference.as_deref()
    }

    /// The shard's foreign-key graph before the migration.
    pub fn fk_graph(&self) -> Option<&'a FkGraph> {
        self.shard.fk_graph
    }

    /// The rollback evidence.
    pub fn rollback(&self) -> Option<&'a RollbackEvidence> {
        self.shard.rollback
    }

    /// The blocking-lock budget in milliseconds: [`with_lock_budget_ms`](Self::with_lock_budget_ms),
    /// else `[lock_budget] max_blocking_ms` (default 5000).
    pub fn lock_budget_ms(&self) -> u64 {
        self.shard
            .lock_budget_ms
            .unwrap_or(self.config.lock_budget.max_blocking_ms)
    }

    /// What the custom probe rule `name` returned on this shard, if it ran.
    pub fn custom_probe(&self, name: &str) -> Option<&CustomProbeOutcome> {
        self.shard.custom_probes.get(name)
    }

    /// Size facts of `schema.table` on the shard, from the simulator.
    pub fn table_stats(&self, schema: &str, table: &str) -> Option<&'a TableStats> {
        self.shard
            .evidence?
            .tables
            .iter()
            .find(|t| t.schema == schema && t.table == table)
    }

    /// The migration statement with 0-based index `index`.
    pub fn statement(&self, index: usize) -> Option<&'a Statement> {
        self.migration.statements.get(index)
    }

    /// A finding of `rule` about statement `index` when there is one (located, with its text, as
    /// [`finding`](Self::finding)), else a finding about the shard as a whole (no location).
    pub fn shard_finding<R: GateRule + ?Sized>(
        &self,
        rule: &R,
        index: Option<usize>,
        message: impl Into<String>,
    ) -> Finding {
        match index.and_then(|i| self.statement(i)) {
            Some(stmt) => self.finding(rule, stmt, message),
            None => {
                let meta = rule.meta();
                Finding::new(meta.name, meta.code, meta.severity, message)
            }
        }
    }

    /// The same context assuming PostgreSQL `version` (e.g. the version a shard reports).
    #[must_use]
    pub fn with_pg_version(mut self, version: PgVersion) -> RuleContext<'a> {
        self.pg_version = version;
        self
    }

    /// The migration being checked.
    pub fn migration(&self) -> &'a Migration {
        self.migration
    }

    /// Its statements, in file order.
    pub fn statements(&self) -> &'a [Statement] {
        &self.migration.statements
    }

    /// Every operation with its statement, in file order.
    pub fn operations(&self) -> impl Iterator<Item = (&'a Statement, &'a Operation)> + 'a {
        self.migration
            .statements
            .iter()
            .flat_map(|s| s.operations.iter().map(move |op| (s, op)))
    }

    /// The PostgreSQL major version the rules assume.
    pub fn pg_version(&self) -> PgVersion {
        self.pg_version
    }

    /// The configuration.
    pub fn config(&self) -> &'a Config {
        self.config
    }

    /// The runner wraps the whole file in one transaction (`transaction_mode = "wrap-file"` in
    /// the configuration, else the mode the migration was parsed with).
    pub fn file_is_wrapped(&self) -> bool {
        self.config
            .transaction_mode
            .unwrap_or(self.migration().options.transaction_mode)
            == migration_parser::TransactionMode::WrapFile
    }

    /// Where `stmt` is, as a finding [`Location`].
    pub fn location(&self, stmt: &Statement) -> Location {
        Location {
            file: self.migration.file.clone(),
            statement: stmt.index,
            line: stmt.span.line,
            column: stmt.span.column,
            end_line: stmt.span.end_line,
            end_column: stmt.span.end_column,
        }
    }

    /// A finding of `rule` (its name, code and default severity) about `stmt`, with location
    /// and statement text (its first line, at most [`MAX_STATEMENT_TEXT`] characters) filled
    /// in. Add help with [`Finding::with_help`].
    pub fn finding<R: GateRule + ?Sized>(
        &self,
        rule: &R,
        stmt: &Statement,
        message: impl Into<String>,
    ) -> Finding {
        let meta = rule.meta();
        let first_line = stmt.sql.lines().next().unwrap_or("").trim();
        // The statement's first line, cut at MAX_STATEMENT_TEXT characters (a generated
        // single-line statement can be megabytes long).
        let cut = first_line
            .char_indices()
            .nth(MAX_STATEMENT_TEXT)
            .map(|(i, _)| &first_line[..i]);
        let text = match cut {
            Some(head) => format!("{} …", head.trim_end()),
            None if stmt.sql.trim().contains('\n') => format!("{first_line} …"),
            None => first_line.to_string(),
        };
        Finding::new(meta.name, meta.code, meta.severity, message)
            .with_location(self.location(stmt))
            .with_statement_text(text)
    }

    /// The migration's effect on the schema, statement by statement: the one walker
    /// ([`MigrationState`]) that probe planning and rollback generation use too.
    pub fn migration_state(&self) -> &MigrationState {
        &self.state
    }

    /// What the relation `name` denotes at statement `at`, counting an object created by that
    /// statement itself as created (a rule looking at `CREATE TABLE t ...` sees `t` as new).
    fn relation_at_statement(&self, name: &QualifiedName, at: usize) -> Resolved<'_> {
        let before = self.state.relation(name, Step::before(at));
        if before.is_created() {
            return before;
        }
        match self.state.relation(name, Step::after(at)) {
            r @ Resolved::Tracked(_, rec) if rec.created().is_some_and(|c| c.statement == at) => r,
            _ => before,
        }
    }

    /// Whether `table` (a table, view or materialized view) was created by statement `before`
    /// or an earlier one in this migration, and not dropped before it. Renames are followed:
    /// after `CREATE TABLE a; ALTER TABLE a RENAME TO b;`, `b` is new. Operations on new tables
    /// lock nobody: no running code uses them yet. `CREATE TABLE IF NOT EXISTS` counts as
    /// creating the table (idempotent migrations would otherwise be flagged throughout).
    pub fn is_new_table(&self, table: &QualifiedName, before: usize) -> bool {
        self.relation_at_statement(table, before)
            .record()
            .is_some_and(|r| r.is_created() && r.kind != ObjectKind::Index)
    }

    /// The statement (0-based) that emptied `table` (`DELETE` without `WHERE`, `TRUNCATE`)
    /// earlier in the same transaction block as statement `before`, with no `INSERT` or `DO`
    /// since: the table has no rows when statement `before` runs.
    pub fn emptied_in_transaction(&self, table: &QualifiedName, before: usize) -> Option<usize> {
        let stmt = self.statement(before)?;
        let step = self.state.emptied_before(table, Step::before(before))?;
        let by = self.statement(step.statement)?;
        (stmt.tx.in_block && by.tx.transaction == stmt.tx.transaction).then_some(step.statement)
    }

    /// Whether an operation on `table` at statement `before` touches a table that existed
    /// before the migration (the negation of [`is_new_table`](Self::is_new_table)).
    pub fn is_existing_table(&self, table: &QualifiedName, before: usize) -> bool {
        !self.is_new_table(table, before)
    }

    /// The name `table` (as named at statement `before`) had before the migration renamed it,
    /// or `table` itself. Two names with the same identity are the same table.
    pub fn table_identity(&self, table: &QualifiedName, before: usize) -> QualifiedName {
        match self.state.relation(table, Step::before(before)) {
            Resolved::Tracked(_, r) => r.shard_name().cloned().unwrap_or_else(|| table.clone()),
            _ => table.clone(),
        }
    }

    /// The table an index named `index` was created on earlier in this migration, if it was.
    pub fn index_table(&self, index: &QualifiedName, before: usize) -> Option<&QualifiedName> {
        let Resolved::Tracked(_, idx) = self.state.relation(index, Step::before(before)) else {
            return None;
        };
        let created = idx.created()?;
        let table = self.state.object(idx.on?);
        Some(table.name_at(created))
    }

    /// Whether a relation-level operation on `name` at `before` only touches something new:
    /// a table created earlier in the migration, or an index created earlier on such a table.
    pub fn is_new_relation(&self, name: &QualifiedName, before: usize) -> bool {
        match self.relation_at_statement(name, before) {
            Resolved::Tracked(_, r) if r.kind == ObjectKind::Index => {
                r.on.is_some_and(|t| self.state.object(t).is_created() && r.is_created())
            }
            Resolved::Tracked(_, r) => r.is_created(),
            _ => false,
        }
    }

    /// Whether a **validated** `CHECK (column IS NOT NULL)` on `table` exists before statement
    /// `before`: added without `NOT VALID`, or added `NOT VALID` and then `VALIDATE`d, and not
    /// dropped. On PostgreSQL 12+ `SET NOT NULL` then skips its full-table scan.
    pub fn not_null_proven(&self, table: &QualifiedName, column: &str, before: usize) -> bool {
        self.state
            .not_null_proven(table, column, Step::before(before))
    }

    /// The constraint `name` on `table` if this migration added it before statement `before`.
    pub fn constraint_added(
        &self,
        table: &QualifiedName,
        name: &str,
        before: usize,
    ) -> Option<AddedConstraint> {
        let c = self.state.constraint(table, name, Step::before(before))?;
        Some(AddedConstraint {
            statement: c.added?.statement,
            transaction: c.added_tx?,
            not_valid: c.def.as_ref().is_some_and(|d| d.not_valid),
        })
    }

    /// The type `column` of `table` was given by this migration before statement `before`
    /// (CREATE TABLE, ADD COLUMN or an earlier ALTER COLUMN TYPE), lower-cased SQL.
    pub fn column_type(&self, table: &QualifiedName, column: &str, before: usize) -> Option<&str> {
        match self.state.column(table, column, Step::before(before)) {
            ColumnResolved::Tracked(c) => c.type_at(Step::before(before)),
            _ => None,
        }
    }

    /// Whether schema `name` was created by this migration before statement `before`.
    pub fn is_new_schema(&self, name: &str, before: usize) -> bool {
        self.state.schema(name, Step::before(before)).is_created()
    }

    /// The transaction id of the statement that created enum type `name`, if this migration
    /// created it before statement `before`.
    pub fn enum_created_in(&self, name: &QualifiedName, before: usize) -> Option<usize> {
        self.state
            .type_(name, Step::before(before))
            .record()
            .filter(|r| r.kind == ObjectKind::Enum)
            .and_then(|r| r.created_tx)
    }

    /// The locks `op` takes on PostgreSQL [`pg_version`](Self::pg_version), from the parser's
    /// knowledge table ([`migration_parser::lock_facts`]).
    pub fn lock_facts(&self, op: &Operation) -> Vec<LockFact> {
        migration_parser::lock_facts(op, self.pg_version)
    }

    /// The strongest lock `op` takes on `relation` (or on any relation when `relation` is
    /// `None`).
    pub fn strongest_lock(
        &self,
        op: &Operation,
        relation: Option<&QualifiedName>,
    ) -> Option<LockFact> {
        self.lock_facts(op)
            .into_iter()
            .filter(|f| relation.is_none_or(|r| same_name(&f.relation, r)))
            .max_by_key(|f| f.mode)
    }
}

trait FindingExt {
    fn with_statement_text(self, text: String) -> Self;
}

impl FindingExt for Finding {
    fn with_statement_text(mut self, text: String) -> Self {
        self.statement = Some(text);
        self
    }
}

/// Whether two names may denote the same object: same name, and the same schema when both
/// name one (an unqualified name may resolve to any schema on the search path).
pub use migration_parser::same_relation as same_name;

/// Every relation-like name an operation mentions (tables, views, indexes, types, sequences,
/// functions), for rules that look at names rather than locks.
pub fn mentioned_names(op: &Operation) -> Vec<&QualifiedName> {
    use Operation as O;
    let mut out: Vec<&QualifiedName> = Vec::new();
    match op {
        O::CreateTable {
            table,
            columns,
            constraints,
            partition_of,
            ..
        } => {
            out.push(table);
            out.extend(partition_of);
            for c in columns {
                if let Some(ConstraintKind::ForeignKey { ref_table, .. }) = &c.references {
                    out.push(ref_table);
                }
            }
            for c in constraints {
                if let ConstraintKind::ForeignKey { ref_table, .. } = &c.kind {
                    out.push(ref_table);
                }
            }
        }
        O::AddColumn { table, column, .. } => {
            out.push(table);
            if let Some(ConstraintKind::ForeignKey { ref_table, .. }) = &column.references {
                out.push(ref_table);
            }
        }
        O::AddConstraint { table, constraint } => {
            out.push(table);
            if let ConstraintKind::ForeignKey { ref_table, .. } = &constraint.kind {
                out.push(ref_table);
            }
        }
        O::DropTable { table, .. }
        | O::RenameTable { table, .. }
        | O::DropColumn { table, .. }
        | O::RenameColumn { table, .. }
        | O::AlterColumnType { table, .. }
        | O::SetNotNull { table, .. }
        | O::DropNotNull { table, .. }
        | O::SetDefault { table, .. }
        | O::DropDefault { table, .. }
        | O::ValidateConstraint { table, .. }
        | O::DropConstraint { table, .. }
        | O::RenameConstraint { table, .. }
        | O::Update { table, .. }
        | O::Delete { table, .. }
        | O::Insert { table, .. }
        | O::AlterTableOther { table, .. }
        | O::CreateTrigger { table, .. } => out.push(table),
        O::CreateIndex { table, .. } => out.push(table),
        O::DropIndex { name, .. }
        | O::RenameIndex { name, .. }
        | O::Reindex { name, .. }
        | O::CreateEnum { name, .. }
        | O::AddEnumValue { name, .. }
        | O::RenameEnumValue { name, .. }
        | O::DropType { name, .. }
        | O::CreateView { name, .. }
        | O::DropView { name, .. }
        | O::RefreshMaterializedView { name, .. }
        | O::CreateSequence { name }
        | O::CreateFunction { name, .. }
        | O::DropFunction { name, .. }
        | O::CreateType { name, .. }
        | O::RenameType { name, .. }
        | O::CreateDomain { name, .. }
        | O::DropDomain { name, .. }
        | O::RenameView { name, .. }
        | O::DropSequence { name, .. }
        | O::RenameSequence { name, .. }
        | O::AlterSequence { name, .. } => out.push(name),
        O::DropTrigger {
            table: Some(table), ..
        } => out.push(table),
        O::Truncate { tables, .. }
        | O::LockTable { tables, .. }
        | O::Maintenance { tables, .. } => {
            out.extend(tables.iter());
        }
        O::AttachPartition { table, partition }
        | O::DetachPartition {
            table, partition, ..
        } => {
            out.push(table);
            out.push(partition);
        }
        _ => {}
    }
    out
}

//! # gates
//!
//! The rules that decide whether a PostgreSQL schema migration may ship to a multi-tenant fleet:
//! the [`GateRule`] trait, the [`Registry`] of built-in rules, the [`Config`] that enables,
//! disables and re-grades them (`deployclaw.toml`), and the outcome vocabulary
//! ([`Finding`], [`Severity`], [`Gate`]).
//!
//! ## Linting a migration
//!
//! ```
//! use gates::{Config, Registry, Severity};
//! use gates::migration_parser::{parse, ParseOptions};
//!
//! let sql = "CREATE INDEX orders_customer_idx ON orders (customer_id);";
//! let config = Config::default();
//! let migration = parse("m.sql", sql, &config.parse_options()).unwrap();
//! let findings = Registry::builtin().lint(&migration, &config);
//! assert!(findings.iter().any(|f| f.rule == "require-concurrent-index"));
//! assert_eq!(gates::Gate::from_findings(&findings), gates::Gate::Yellow);
//! ```
//!
//! A directory of migrations (recursive, natural order, all cores): [`lint::lint_dir`]; any
//! list of files or texts: [`lint::lint_inputs`]. `gates` depends on `migration-parser` and the
//! plain-data [`evidence`] crate only — no database driver, no async runtime.
//!
//! ## Severities
//!
//! * **Red** — the migration would fail, or lose data, without approval (`dropping-table`,
//!   `adding-required-field`, `concurrent-in-transaction`, ...).
//! * **Yellow** — it would succeed but a human must approve it: a long or blocking lock, a
//!   table rewrite, a rename that breaks running application code, a missing `lock_timeout`.
//! * **Info** — advisory only; does not change the gate.
//!
//! Each rule's documentation (`deployclaw explain RULE`, or [`RuleMeta::explain`]) says what it
//! detects, which lock it takes and what that blocks on which PostgreSQL versions, and the safe
//! alternative with SQL. Docs are written once, in the rule struct's doc comment, and captured
//! by [`declare_rule!`].
//!
//! ## Writing a rule
//!
//! Implement [`GateRule`] (see its example) and [`Registry::register`] it. [`RuleContext`]
//! gives the migration, the PostgreSQL version, the configuration and helpers:
//! [`RuleContext::finding`] builds a located finding, [`RuleContext::is_new_table`] tells
//! whether a table was created earlier in the migration (following renames),
//! [`RuleContext::not_null_proven`] whether a validated `CHECK (col IS NOT NULL)` exists, and
//! [`RuleContext::lock_facts`] which locks an operation takes. [`testing`] lints a snippet
//! with your rule and compares the findings ([`testing::lint_sql`], [`testing::assert_findings`]);
//! per-shard rules get hand-built evidence ([`evidence::ShardEvidence::new`] and friends).
//!
//! ## Per-shard rules and verdicts
//!
//! The same [`Registry`] holds the per-shard rules ([`RuleScope::Shard`]: `fk-orphans`,
//! `not-null-violations`, `unique-violations`, `check-violations`, `cast-failures`,
//! `statement-fails`, `lock-time-budget`, `schema-drift`, `cascade-reach`, `shard-unreachable`,
//! `rollback-irreversible`, `rollback-mismatch`, `rollback-unproven`). They
//! read the evidence a [`RuleContext`]
//! carries for one shard — the simulator's [`evidence::ShardEvidence`] and
//! [`evidence::RehearsalResult`], drift ([`DriftItem`] / [`evidence::CatalogDifference`]), the
//! shard's [`evidence::FkGraph`], a [`RollbackEvidence`], custom probe rows — and report nothing
//! without it, so static linting is unchanged. [`evaluate_shard`] runs every rule for one shard
//! and derives its [`ShardVerdict`]; [`fleet_gate`] is the worst shard gate.
//!
//! ```
//! use gates::{Config, Gate, Registry, RuleContext, evaluate_shard, fleet_gate};
//! use gates::migration_parser::parse;
//!
//! let config = Config::default();
//! let m = parse("m.sql", "SET lock_timeout = '2s';\nALTER TABLE t ADD COLUMN c int;", &config.parse_options()).unwrap();
//! let registry = Registry::for_config(&config).unwrap(); // built-ins + [[custom_rules]]
//! let ok = evaluate_shard(&registry, &RuleContext::new(&m, &config).with_shard_id("tenant_1", "db-1"));
//! let down = evaluate_shard(
//!     &registry,
//!     &RuleContext::new(&m, &config).with_shard_id("tenant_2", "db-2").with_unreachable("timeout"),
//! );
//! assert_eq!((ok.gate, down.gate), (Gate::Green, Gate::Red));
//! assert_eq!(fleet_gate(&[ok, down]), Gate::Red);
//! ```
//!
//! ## Declarative custom rules
//!
//! `[[custom_rules]]` in `deployclaw.toml` declares statement patterns and SQL probes without
//! Rust (see [`custom`]). Gates does no IO: [`Config::probe_rules`] lists the probe queries for
//! the simulator to run per shard, and their rows come back through
//! [`RuleContext::with_custom_probe`].
//!
//! ## Inline ignores
//!
//! `-- deployclaw:ignore RULE[, RULE]` on the line(s) before a statement, or
//! `-- deployclaw:ignore-file RULE` anywhere, silence rules by name or code (`all` silences
//! every rule).

#![warn(missing_docs)]

mod config;
mod context;
pub mod custom;
mod error;
mod finding;
pub mod input;
pub mod lint;
mod observed;
mod probes_config;
mod registry;
mod rule;
pub mod rules;
pub mod testing;
mod types;
mod verdict;

pub use config::{
    Config, DEFAULT_IDLE_IN_TRANSACTION_RED_AFTER_MS, DEFAULT_MAX_BLOCKING_MS,
    DEFAULT_MAX_STATEMENTS, DEFAULT_MAX_UNBATCHED_ROWS, DEFAULT_TENANT_SCHEMA_PATTERN, DataChanges,
    Limits, LiveConfig, LockBudget, RulesConfig, ShadowConfig, ShadowDataKind,
};
pub use context::{AddedConstraint, MAX_STATEMENT_TEXT, RuleContext, mentioned_names, same_name};
pub use custom::{
    CustomProbeRule, CustomRuleSpec, CustomStatementRule, OPERATION_KINDS, ProbeRuleSpec,
    StatementRuleSpec,
};
pub use error::GatesError;
pub use evidence;
pub use evidence::{CustomProbeOutcome, DriftItem, IrreversibleStep, RollbackEvidence};
pub use finding::{Finding, Gate, Location, Severity};
pub use migration_parser;
pub use probes_config::{ProbeTarget, ProbesConfig};
pub use registry::{MAX_FINDINGS_PER_RULE, REWRITE_PREDICTING_RULES, Registry};
pub use rule::{GateRule, RuleMeta, RuleScope};
pub use verdict::{GateSummary, ShardVerdict, evaluate_shard, fleet_gate, shard_exceptions};

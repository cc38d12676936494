//! Read-only probes: what the shard's *data* and *catalog* say about each operation.
//!
//! [`plan`] walks the migration's operations in order (pure, no IO) and yields a [`ProbePlan`];
//! `run_probes` executes it on one shard inside a single
//! `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY` transaction with `SET LOCAL`
//! `statement_timeout` / `lock_timeout`, one `SAVEPOINT` per probe (so a failing probe does not
//! abort the others), and always ends it with `ROLLBACK`.
//!
//! The walk tracks what earlier statements of the same migration did, because statements run in
//! order: a table created by the migration is empty (no data probes), a column added with a
//! non-NULL default has no NULLs, a renamed table/column is probed under its name *on the shard*,
//! a `NOT VALID` constraint that is validated later is probed at the `VALIDATE`, and a column
//! that an earlier `UPDATE` backfills is still probed but marked as not conclusive.
//!
//! Layout (imports point one way: `batch` → `run` → `kinds/*` → `spec`, `cx`, `sql`, `model`, `result`,
//! `kind`; this file only declares and re-exports):
//! - `kind.rs`: the kinds and what each predicts (SQLSTATE, explained failures, rule);
//! - `result.rs`: what a probe found (evidence); `model.rs`: the plan as data;
//! - `spec.rs`: the `ProbeSpec` trait; `kinds/`: one module per kind (how it
//!   is planned from an operation, its SQL, how its rows are read);
//! - `cx.rs`: what a name denotes at an operation, from the one model of the migration
//!   ([`migration_parser::MigrationState`]); `plan.rs`: the pass over the operations;
//! - `sql.rs`: the probed table on a shard, primary keys, counting rows; `run.rs`: the
//!   transaction on one shard; `batch.rs`: the catalog queries of all the shards of one
//!   database, read once for them.

pub(crate) mod batch;
pub(crate) mod cx;
pub(crate) mod kind;
pub(crate) mod kinds;
pub(crate) mod model;
mod plan;
pub(crate) mod result;
mod run;
pub(crate) mod spec;
pub(crate) mod sql;

pub(crate) use batch::read_catalog;
pub use kind::{ProbeFacts, ProbeKind};
pub(crate) use model::ShardCatalog;
pub use model::{ProbeLimits, ProbePlan, ShardProbes};
pub use plan::plan;
pub use result::{MAX_SAMPLES, ProbeError, ProbeResult, TableStats};
pub(crate) use run::run_probes;

pub(crate) use crate::probe_tx::ConnectionLost;

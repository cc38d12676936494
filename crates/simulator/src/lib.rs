//! # simulator
//!
//! Runs a parsed migration against every tenant shard of a fleet **without changing any
//! target**, and returns the evidence the gates decide on:
//!
//! * **Probes** ([`probe`]) — read-only queries on every shard, generated from the migration's
//!   typed operations: orphaned rows before a foreign key, NULLs before `SET NOT NULL` (and rows
//!   an added `NOT NULL` column without default would leave NULL), duplicate groups before a
//!   `UNIQUE` constraint or unique index (NULL semantics and `NULLS NOT DISTINCT` respected),
//!   rows failing a new `CHECK`, values failing a type change's cast, objects the migration
//!   needs that are missing or that it creates but already exist (drift), and the size and row
//!   estimate of every table touched. One `REPEATABLE READ READ ONLY` transaction per shard with
//!   `SET LOCAL statement_timeout`/`lock_timeout`, one savepoint per probe, always rolled back.
//!   Every identifier is quoted ([`quote_ident`]); values are bound parameters.
//! * **Custom probes** ([`SimOptions::custom_probes`]) — the user's own read-only queries
//!   (`{schema}` = the quoted shard schema, [`custom_probe_sql`]), run in the same transaction,
//!   each under a savepoint that is always rolled back; the first rows (as JSON) or the error
//!   land in [`ShardEvidence::custom_probes`].
//! * **Rehearsal** ([`rehearsal`]) — once per schema shape (catalog fingerprint): the shard's
//!   structure is cloned with `pg_dump --schema-only` into a fresh database on a shadow server
//!   (an ephemeral cluster by default, or [`SimOptions::shadow`]), and the migration runs there
//!   statement by statement with the file's real transaction structure. Per statement: outcome
//!   with SQLSTATE, relation locks from `pg_locks` (or the parser's knowledge table for
//!   statements that cannot run in a transaction), relations rewritten (`relfilenode`),
//!   duration. [`RehearsalMode::InPlace`] rehearses on the target inside one transaction that is
//!   always rolled back — only when every statement is proven free of effects a rollback does
//!   not undo ([`in_place`]); otherwise that shape is rehearsed on the shadow and the refused
//!   statements are listed in [`RehearsalResult::in_place_refused`].
//! * **Estimate** ([`estimate`]) — blocking-lock time per statement and shard, from the observed
//!   locks and rewrites and the shard's own table sizes, with throughput calibrated on the shadow.
//!
//! A failing statement, a probe that finds orphans or an unreachable shard are *outcomes* in the
//! [`SimulationResult`]; [`SimError`] is only for cancellation and invalid options.
//!
//! ## Use
//!
//! ```no_run
//! # async fn demo(migration: migration_parser::Migration, fleet: topology::Fleet) -> Result<(), simulator::SimError> {
//! use simulator::{CancelToken, ProgressEvent, SimOptions, Simulator};
//!
//! let cancel = CancelToken::new();
//! // e.g. from a Ctrl-C handler: cancel.cancel();
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ProgressEvent>();
//! tokio::spawn(async move {
//!     while let Some(event) = rx.recv().await {
//!         // render with indicatif
//!         let _ = event;
//!     }
//! });
//! let sim = Simulator::new(SimOptions { concurrency: 4, ..Default::default() });
//! // `None`: the simulator introspects the fleet itself; pass the catalogs if you already have them.
//! let result = sim.run(&migration, &fleet, None, &tx, &cancel).await?;
//! for shard in &result.shards {
//!     println!("{}: {} ms blocking, unreachable: {:?}", shard.shard, shard.estimated_lock_ms, shard.unreachable);
//! }
//! # Ok(()) }
//! ```
//!
//! ## Guarantees
//!
//! * Targets are only read (probes) — except with the opt-in [`RehearsalMode::InPlace`], which
//!   executes the migration inside a transaction that is always rolled back and never executes
//!   statements that cannot run in a transaction.
//! * At most [`SimOptions::concurrency`] connections per instance for probes; every session has
//!   `application_name = deployclaw-simulator`; all pools are closed before `run` returns.
//! * Shadow databases (`deployclaw_shadow_<random>`) are dropped on success, error and
//!   cancellation; the ephemeral shadow cluster is stopped and deleted.
//! * Cancellation ([`CancelToken`]) cancels running queries with `pg_cancel_backend`, rolls
//!   back, cleans up, and returns [`SimError::Cancelled`].
//! * Passwords never appear in results, steps or errors (URLs are redacted).

#![warn(missing_docs)]

mod conn;
mod control;
mod custom;
pub mod dump;
mod error;
pub mod estimate;
mod ident;
pub mod in_place;
mod live;
mod pending;
pub mod probe;
mod probe_tx;
pub mod rehearsal;
mod run;
pub mod safety;
mod simulate;

pub use conn::{
    APPLICATION_NAME, connect_options, is_connection_error, redacted, shadow_connect_options,
};
pub use control::{CancelToken, NoProgress, Progress, ProgressEvent, Step};
pub use custom::{
    CustomProbe, CustomProbeRows, MAX_CUSTOM_PROBE_ROWS, SCHEMA_STAND_IN, check_probe_template,
    custom_probe_sql, expand_probe_template,
};
pub use dump::{DumpCache, dump_schemas, schemas_to_clone};
pub use error::SimError;
pub use estimate::{LockEstimate, StatementEstimate, Throughput};
pub use ident::{quote_ident, quote_literal, quote_qualified};
pub use in_place::InPlaceRefusal;
pub use live::{LiveOptions, lock_near_budget};
pub use pending::{PendingShadow, ReadyShadow, ShadowStarter};
pub use probe::{ProbeError, ProbeKind, ProbePlan, ProbeResult, TableStats};
pub use rehearsal::sample::{
    SampleCache, SampleError, SampleLimits, ShadowData, ShadowSample, proof_sample,
};
pub use rehearsal::{
    FleetRerun, LockSource, NotRunReason, ObservedLock, RehearsalMode, RehearsalResult,
    StatementOutcome, StatementRehearsal,
};
pub use run::{
    CatalogSummary, DEFAULT_MAX_REPLICA_LAG, IDLE_MARGIN, ProbeOn, ShardEvidence, SimOptions,
    SimulationResult, Simulator,
};
pub use simulate::{calibrate_shadow, calibration_summary, fleet_partner, re_estimate, run};

//! # evidence
//!
//! What the gates decide on, as plain serde data: the simulator's per-shard findings
//! ([`ShardEvidence`], [`ProbeResult`], [`TableStats`], [`LockEstimate`]), the rehearsal of a
//! schema shape ([`RehearsalResult`], [`StatementRehearsal`], [`StatementOutcome`]), the whole
//! run ([`SimulationResult`]), catalog drift ([`CatalogDifference`], [`DriftItem`]), the
//! foreign-key graph ([`FkGraph`]), the rollback proof ([`RollbackEvidence`], one [`ShapeProof`]
//! per schema shape with its [`ProofStatus`]) and custom SQL
//! probes ([`CustomProbe`], [`CustomProbeRows`], [`CustomProbeOutcome`], and the template
//! contract [`check_probe_template`] / [`custom_probe_sql`]).
//!
//! The crate depends on `migration-parser`, `serde` and `serde_json` only: no database driver,
//! no async runtime. `simulator` and `topology` produce these types (and re-export them under
//! their old paths); `gates` reads them. So a lint-only user of `gates`, or the author of a
//! custom rule, builds evidence in a test without a database:
//!
//! ```
//! use evidence::{ProbeKind, ProbeResult, ShardEvidence, TableStats};
//!
//! let shard = ShardEvidence::new("tenant_7", "tenant_7")
//!     .with_table(TableStats::new("tenant_7", "orders").with_bytes(2_000_000_000, 1_500_000_000))
//!     .with_probe(ProbeResult::new("tenant_7", ProbeKind::FkOrphans, "tenant_7", "orders").with_count(3, true));
//! assert_eq!(shard.tables[0].total_bytes, 2_000_000_000);
//! assert!(shard.probes[0].would_fail);
//! ```
//!
//! Serialization is the JSON contract of the report (`shards[]`, `rehearsals[]`): field names
//! and enum spellings never change with a refactoring of the producers.

#![warn(missing_docs)]

mod builders;
mod catalog;
mod custom_probe;
mod difference;
mod fk_graph;
mod integrator;
mod live;
mod probe;
mod probe_kind;
mod rehearsal;
mod rollback_proof;
mod shard;

pub use catalog::{
    CatalogDifference, FkAction, ObjectKind, ObjectRef, TableName, opt as shown_or_none,
};
pub use custom_probe::{
    CustomProbe, CustomProbeRows, MAX_CUSTOM_PROBE_ROWS, SCHEMA_STAND_IN, check_probe_template,
    custom_probe_sql, expand_probe_template,
};
pub use fk_graph::{CascadeReach, FkEdge, FkGraph, FkReference};
pub use integrator::{CustomProbeOutcome, DriftItem, IrreversibleStep, RollbackEvidence};
pub use live::{
    LiveEvidence, LiveStatus, LockHolder, QueryUse, QueuedEstimate, ReplicaRead, TableTraffic,
};
pub use migration_parser;
pub use probe::{MAX_SAMPLES, ProbeError, ProbeResult, TableStats};
pub use probe_kind::{ProbeFacts, ProbeKind};
pub use rehearsal::{
    FleetRerun, InPlaceRefusal, LockSource, NotRunReason, ObservedLock, RehearsalMode,
    RehearsalResult, StatementOutcome, StatementRehearsal,
};
pub use rollback_proof::{ProofStatus, ShapeProof};
pub use shard::{
    CatalogSummary, LockEstimate, ShardEvidence, SimulationResult, StatementEstimate, Step,
    Throughput,
};

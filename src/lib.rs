//! # deployclaw
//!
//! Gate schema migrations for multi-tenant PostgreSQL fleets before they ship: parse the
//! migration, discover the fleet, check every shard with read-only probes and a rehearsal on a
//! shadow copy, generate and prove the rollback, and write a signed GREEN / YELLOW / RED report
//! per shard. The target is never changed.
//!
//! This crate re-exports the libraries ([`migration_parser`], [`evidence`], [`topology`],
//! [`simulator`], [`rollback`], [`gates`], [`report`]) and composes them into the whole gate
//! ([`pipeline::validate`]) and the self-contained demo ([`demo`]).
//!
//! ## Embedding the whole gate
//!
//! ```no_run
//! use deployclaw::pipeline::{ValidateOptions, validate};
//! use deployclaw::simulator::{CancelToken, NoProgress};
//! use deployclaw::topology::{DiscoverySpec, Fleet};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The fleet: every `tenant_*` schema of one instance.
//! let fleet = Fleet::from_url("prod-1", "postgres://gate@db1/app", &DiscoverySpec::schemas("tenant_*")).await?;
//! // The gate, with the built-in rules and default options.
//! let opts = ValidateOptions::new("migrations/schema_v42.sql");
//! let report = validate(&opts, &fleet, &NoProgress, &CancelToken::new()).await?;
//! println!("fleet gate: {} ({} shards)", report.gate, report.shards.len());
//! for shard in report.shards.iter().filter(|s| s.gate != deployclaw::gates::Gate::Green) {
//!     for f in &shard.findings {
//!         println!("{} {}: {}", shard.shard, f.rule, f.message);
//!     }
//! }
//! std::fs::write("report.json", deployclaw::report::render::json(&report)?)?;
//! # Ok(()) }
//! ```

pub use evidence;
pub use gates;
pub use migration_parser;
pub use report;
pub use rollback;
pub use simulator;
pub use topology;

pub mod cache;
pub mod demo;
mod error;
mod fleet_phase;
pub mod fleet_source;
pub mod input;
mod options;
pub mod partition;
pub mod pipeline;
mod rehearsal_report;
mod rollback_proof;
mod rollback_step;
mod shard_gates;
mod shared_shadow;
mod steps;
mod value_hints;

pub use error::PipelineError;
pub use rollback_step::RollbackOutcome;

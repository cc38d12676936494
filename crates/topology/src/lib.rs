//! # topology
//!
//! Where the tenants are, and what their schemas look like. This crate finds the tenant fleet,
//! reads every shard's catalog cheaply, and tells which shards share a schema shape and which
//! drifted. It never decides verdicts and never changes a target.
//!
//! | module | what |
//! |---|---|
//! | [`Fleet`], [`Instance`], [`Shard`], [`ShardLocation`], [`ConnectionSpec`], [`Secret`] | the fleet model; [`ConnectionSpec::from_url`], [`ConnectionSpec::redacted_url`], [`ConnectionSpec::to_connect_options`] (the password goes straight into the driver, never into a string) |
//! | [`conninfo`] | libpq `key=value` connection strings ([`ConnectionSpec::parse`] takes them and URLs) and [`mask_connection_string`], the one printable form of any connection string, valid or not |
//! | [`pgpass`] | the libpq password file (`PGPASSFILE`, else `~/.pgpass`) read in-process: [`ConnectionSpec::resolve_password`] fills a missing password from `PGPASSWORD` or the file, so the driver and `pg_dump` use the same one |
//! | [`topology_file`] | the TOML topology file ([`Topology`], [`Fleet::from_toml_file`]), format and example in its doc |
//! | [`discover`] | live discovery of tenant schemas or databases by glob / `LIKE` pattern: [`discover_on_instance`] is the plumbing every source (file, URL, AWS RDS) uses |
//! | [`catalog`] | set-based `pg_catalog` introspection of many schemas at once ([`catalog::introspect_schemas`]), the [`Catalog`] model, [`Catalog::fingerprint`], [`catalog::diff`], [`catalog::detect_drift`], and the foreign-key graph [`FkGraph`] (who references whom, `ON DELETE CASCADE` reach) |
//! | [`scan`] | [`introspect_fleet`]: every shard of a fleet, one introspection per (instance, database), bounded concurrency |
//! | [`child`] | the scrubbed environment of every program deployclaw starts ([`child::command`]) |
//! | [`ephemeral`] | throw-away PostgreSQL clusters from the installed server binaries (the default shadow, the demo, every test), cleaned up on drop, on [`ephemeral::cleanup_all`], and by a watchdog if the process dies |
//! | [`scratch`] | scratch databases on a shared `--shadow` server: run leases (advisory locks) and [`scratch::reap_leftovers`] for the leftovers of dead runs |
//! | [`fixture`] | a realistic multi-tenant fleet with planted problems, for tests, the demo and benchmarks |
//!
//! Errors are one enum, [`TopologyError`]; [`TopologyError::is_unreachable`] separates "could
//! not reach or read the fleet" (CLI exit 4) from bad input (exit 3). No error or `Debug`
//! output ever contains a password.
//!
//! ```no_run
//! # async fn f() -> Result<(), topology::TopologyError> {
//! use topology::{DiscoverySpec, Fleet, ScanOptions, introspect_fleet};
//! use topology::catalog::detect_drift;
//!
//! let fleet = Fleet::from_url("eu-1", "postgres://app@db.internal/app", &DiscoverySpec::schemas("tenant_*")).await?;
//! let scan = introspect_fleet(&fleet, &ScanOptions::default()).await;
//! let drift = detect_drift(scan.catalogs.iter().map(|(id, c)| (id.as_str(), c)));
//! for d in &drift.drifted {
//!     println!("{}: {} differences", d.shard, d.differences.len());
//! }
//! # Ok(()) }
//! ```
//!
//! The `aws` feature (off by default, on in the CLI) adds RDS / Aurora discovery with IAM auth.

#[cfg(feature = "aws")]
pub mod aws;
pub mod catalog;
pub mod child;
pub mod conninfo;
pub mod discover;
pub mod ephemeral;
mod error;
pub mod fixture;
mod fleet;
pub mod pgpass;
pub mod scan;
pub mod scratch;
pub mod topology_file;
mod url;

#[cfg(feature = "aws")]
pub use aws::{
    AwsSession, EndpointTarget, RdsSource, TagFilter, discover_rds, rds_fleet,
    resolve_iam_passwords,
};
pub use catalog::{Catalog, CatalogDifference, Fingerprint, FkGraph, TableName};
pub use conninfo::mask_connection_string;
pub use discover::{DiscoverySpec, discover_on_instance};
pub use error::TopologyError;
pub use fleet::{ConnectionSpec, Fleet, Instance, Secret, Shard, ShardLocation};
pub use scan::{FleetCatalogs, ScanOptions, introspect_fleet};
pub use topology_file::{ShardSource, Topology, TopologyInstance};

//! # topology
//!
//! Where the tenants are, and what their schemas look like: the [`Fleet`] of instances and
//! shards, ephemeral PostgreSQL clusters, catalog introspection, fingerprints, drift and the
//! foreign-key graph.

#[cfg(feature = "aws")]
pub mod aws;
pub mod catalog;
pub mod ephemeral;
mod error;
mod fleet;
mod url;

pub use catalog::{Catalog, CatalogDifference, Fingerprint, FkGraph, QualifiedName};
pub use error::TopologyError;
pub use fleet::{ConnectionSpec, Fleet, Instance, Secret, Shard, ShardLocation};
#[cfg(feature = "aws")]
pub use aws::{AwsSession, EndpointTarget, RdsSource, TagFilter, discover_rds, resolve_iam_passwords};

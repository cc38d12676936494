//! # topology
//!
//! Where the tenants are, and what their schemas look like: the [`Fleet`] of instances and
//! shards, ephemeral PostgreSQL clusters, catalog introspection, fingerprints, drift and the
//! foreign-key graph.

mod fleet;

pub use fleet::{ConnectionSpec, Fleet, Instance, Secret, Shard, ShardLocation};

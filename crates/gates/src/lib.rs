//! # gates
//!
//! The rules: the [`GateRule`] trait, the registry of built-in rules, custom rules,
//! configuration, and the verdicts per shard and fleet.

mod finding;

pub use finding::{Finding, Gate, Location, Severity};

//! `deployclaw topology ...`.
use clap::Subcommand;

/// Topology subcommands.
#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// Print the fleet, its schema shapes and drifted shards.
    Discover {},
}

pub fn run(_c: TopologyCommand) -> i32 {
    crate::exit::INPUT
}

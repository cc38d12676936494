//! What a probe found on one shard: the evidence the per-shard rules read (plain data).

pub use evidence::{MAX_SAMPLES, ProbeError, ProbeResult, TableStats};

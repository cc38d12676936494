//! What a probe found on one shard: the evidence the per-shard rules read (plain data).

pub use evidence::{MAX_SAMPLES, ProbeError, ProbeResult, TableStats};

use super::kind::ProbeKind;

/// The result of a probe of `kind` that reads the whole shard in one query (`sql`: existence,
/// sizes) when that query failed with `error`: the failure is the evidence.
pub(crate) fn shard_query_failed(
    shard_id: &str,
    kind: ProbeKind,
    schema: &str,
    error: ProbeError,
    sql: &str,
    duration_ms: u64,
) -> ProbeResult {
    let mut r = ProbeResult::new(shard_id, kind, schema, "").with_error(error);
    r.sql = sql.to_string();
    r.duration_ms = duration_ms;
    r
}

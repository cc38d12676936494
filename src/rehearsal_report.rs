//! The report's view of the rehearsals: the per-statement lock timeline of each schema shape.

use migration_parser::Migration;
use report::{LockTrace, Rehearsal, StatementError, StatementTrace};
use simulator::{RehearsalResult, SimulationResult, StatementOutcome};

/// The per-statement lock timeline of every rehearsal, in the report's shape.
pub fn rehearsals_for_report(migration: &Migration, sim: &SimulationResult) -> Vec<Rehearsal> {
    sim.rehearsals
        .values()
        .map(|r| rehearsal_for_report(migration, sim, r))
        .collect()
}

/// One rehearsal's timeline, with the estimate of the largest shard of its shape.
fn rehearsal_for_report(
    migration: &Migration,
    sim: &SimulationResult,
    r: &RehearsalResult,
) -> Rehearsal {
    let members: Vec<_> = sim
        .shards
        .iter()
        .filter(|s| s.rehearsal.as_deref() == Some(r.fingerprint.as_str()))
        .collect();
    // The largest shard of the shape gives the per-statement estimate shown in the timeline.
    let largest = members
        .iter()
        .filter_map(|s| s.estimate.as_ref())
        .max_by_key(|e| e.total_lock_ms);
    // By statement index: one lookup per statement, not a scan of the estimate's statements.
    let estimated: std::collections::HashMap<usize, f64> = largest
        .map(|e| {
            e.statements
                .iter()
                .map(|x| (x.index, x.estimated_lock_ms))
                .collect()
        })
        .unwrap_or_default();
    let statements = r
        .statements
        .iter()
        .map(|st| {
            let sql = migration
                .statements
                .get(st.index)
                .map(|s| one_line(&s.sql))
                .unwrap_or_default();
            StatementTrace {
                index: st.index,
                line: st.line,
                sql,
                locks: st
                    .locks
                    .iter()
                    .filter(|l| !l.created_here)
                    .map(|l| LockTrace {
                        relation: format!("{}.{}", l.schema, l.relation),
                        mode: l.mode,
                    })
                    .collect(),
                rewrites: st.rewritten.clone(),
                duration_ms: st.duration_ms.max(0.0).round() as u64,
                estimated_lock_ms: estimated
                    .get(&st.index)
                    .map(|ms| ms.max(0.0).round() as u64),
                error: match &st.outcome {
                    StatementOutcome::Failed { sqlstate, message } => Some(StatementError {
                        sqlstate: sqlstate.clone().unwrap_or_default(),
                        message: message.clone(),
                    }),
                    _ => None,
                },
            }
        })
        .collect();
    Rehearsal {
        schema_fingerprint: r.fingerprint.clone(),
        representative_shard: r.shard.clone(),
        shard_count: members.len(),
        statements,
    }
}

/// A statement shortened to one line of at most 120 characters.
pub fn one_line(sql: &str) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 120 {
        let cut: String = flat.chars().take(117).collect();
        format!("{cut}...")
    } else {
        flat
    }
}

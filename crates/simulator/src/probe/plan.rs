//! Probe planning: one pass over the migration's operations in order (pure, no IO), asking the
//! one model of the migration, [`MigrationState`], what each name denotes at that point.
//!
//! For each operation every probe kind (`kinds::SPECS`) plans its probes through [`PlanCx`]:
//! a relation the migration created is not on the shard (empty, or its rows come from the
//! migration: no data probe, no existence check), a renamed table or column is probed under its
//! name *on the shard*, a name that an earlier statement freed (dropped, renamed away, or maybe
//! taken along by a `CASCADE`) cannot clash with the shard, and a table whose rows an earlier
//! statement changed is probed with a note that the count is from before that change.

use migration_parser::{Migration, MigrationState, Operation, Step};

use super::cx::PlanCx;
use super::kinds;
use super::model::ProbePlan;

/// Plan the probes for `migration` (pure; no IO). See the module docs for how earlier
/// statements of the same migration are taken into account.
pub fn plan(migration: &Migration) -> ProbePlan {
    let state = MigrationState::new(migration);
    let mut plan = ProbePlan::default();
    // Earlier statements the model does not follow (no typed operation), upper-cased.
    let mut untyped: Vec<String> = Vec::new();
    let mut code_before = false;
    for st in &migration.statements {
        let sql_upper = st.sql.to_ascii_uppercase();
        for (k, op) in st.operations.iter().enumerate() {
            let mut cx = PlanCx {
                plan: &mut plan,
                migration,
                state: &state,
                at: Step {
                    statement: st.index,
                    op: k,
                },
                si: st.index,
                sql_upper: &sql_upper,
                untyped_before: &untyped,
                code_before,
            };
            for spec in kinds::SPECS {
                spec.plan(op, &mut cx);
            }
        }
        code_before |= st.operations.is_empty()
            || st
                .operations
                .iter()
                .any(|op| matches!(op, Operation::Do { .. } | Operation::Other { .. }));
        // A statement the model does not follow (untyped, `Other` such as `ALTER DOMAIN`, a
        // `DO` block) may change any object it names.
        if st.operations.is_empty()
            || st
                .operations
                .iter()
                .any(|op| matches!(op, Operation::Do { .. } | Operation::Other { .. }))
        {
            untyped.push(sql_upper);
        }
    }
    plan
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

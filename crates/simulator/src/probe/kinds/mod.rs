//! One module per probe kind, behind [`ProbeSpec`].
//!
//! A kind plans its probes from one operation (given what the statements before it did), builds
//! its SQL and reads its rows; what it predicts (SQLSTATE, the rehearsal failures it explains,
//! the rule that reports it) is [`ProbeKind::facts`](crate::probe::kind::ProbeKind::facts). To add a kind: a variant and its facts in
//! `probe/kind.rs`, a module here listed in [`SPECS`], and — for a data probe — a [`Check`]
//! variant dispatched in `probe/run.rs`.
//!
//! [`Check`]: crate::probe::model::Check

use crate::probe::spec::ProbeSpec;

pub(crate) mod already_exists;
pub(crate) mod cast;
pub(crate) mod check;
pub(crate) mod fk_orphans;
pub(crate) mod missing_object;
pub(crate) mod not_null;
pub(crate) mod row_estimate;
pub(crate) mod table_size;
pub(crate) mod unique;

/// Every kind, in the order they plan an operation (the order of their references and probes
/// in the plan: existence first, then data).
pub(crate) const SPECS: [&dyn ProbeSpec; 9] = [
    &table_size::TableSize,
    &missing_object::MissingObject,
    &already_exists::AlreadyExists,
    &fk_orphans::FkOrphans,
    &check::CheckViolations,
    &not_null::NotNullViolations,
    &unique::UniqueViolations,
    &cast::CastFailures,
    &row_estimate::RowEstimate,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::kind::ProbeKind;

    #[test]
    fn every_kind_has_one_module_and_a_rule() {
        for kind in ProbeKind::ALL {
            let n = SPECS.iter().filter(|s| s.kind() == kind).count();
            assert_eq!(n, 1, "{kind:?} needs exactly one module in SPECS");
            let f = kind.facts();
            assert_eq!(f.name, kind.as_str());
            if f.sqlstate.is_empty() {
                // A measurement for a rule (table_size, row_estimate): explains no failure.
                assert!(!f.rule.is_empty() && f.explains.is_empty() && f.explains_class.is_none());
            } else {
                assert!(!f.rule.is_empty(), "{kind:?} has no rule");
                assert!(
                    kind.explains(f.sqlstate),
                    "{kind:?} must explain its own SQLSTATE"
                );
            }
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
    }
}

//! [`ProbeSpec`]: the small trait every probe kind (`kinds/*.rs`) implements.

use migration_parser::Operation;

use super::cx::PlanCx;
use super::kind::ProbeKind;

/// One probe kind.
pub(crate) trait ProbeSpec: Sync {
    /// The kind this module implements (its facts: [`ProbeKind::facts`]).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by the coverage test over ProbeKind::ALL")
    )]
    fn kind(&self) -> ProbeKind;

    /// Plan this kind's probes for `op` into `cx.plan`; `cx` says what each name denotes just
    /// before `op` ([`migration_parser::MigrationState`] at that step).
    fn plan(&self, op: &Operation, cx: &mut PlanCx<'_>);
}

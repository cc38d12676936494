//! `not_null_violations`: NULLs in a column about to become `NOT NULL` (`SET NOT NULL`, a new
//! primary key — planned by [`super::unique`]), and the rows an added `NOT NULL` column without
//! a default would leave NULL (every row).

use migration_parser::Operation;

use super::ProbeSpec;
use crate::ident::quote_ident;
use crate::probe::plan::{PlanCx, default_is_non_null};
use crate::probe::run::Target;
use crate::probe::{Check, MAX_SAMPLES, PlannedProbe, ProbeKind};

/// The `not_null_violations` kind.
pub(crate) struct NotNullViolations;

/// Above this many rows, an added `NOT NULL` column's count is a lower bound.
pub(crate) const ALL_ROWS_CAP: u64 = 1_000_000;

impl ProbeSpec for NotNullViolations {
    fn kind(&self) -> ProbeKind {
        ProbeKind::NotNullViolations
    }

    fn plan(&self, op: &Operation, cx: &mut PlanCx<'_>) {
        let w = cx.walk;
        match op {
            Operation::AddColumn { table, column, .. } => {
                let t = w.shard_table(table);
                if w.is_created(&t) || !column.not_null || default_is_non_null(column) {
                    return;
                }
                cx.push_probe(PlannedProbe {
                    statement_index: cx.si,
                    kind: ProbeKind::NotNullViolations,
                    table: t,
                    column: Some(column.name.clone()),
                    constraint: None,
                    check: Check::AllRowsNull {
                        column: column.name.clone(),
                    },
                    would_fail: true,
                    skipped: None,
                    note: Some(
                        "NOT NULL column added without a default: every existing row would be NULL"
                            .into(),
                    ),
                });
            }
            Operation::SetNotNull { table, column } => {
                let t = w.shard_table(table);
                let c = w.shard_column(&t, column);
                let skipped = match w.added(&t, column) {
                    Some(def) if default_is_non_null(def) => Some(
                        "column added earlier in the migration with a non-NULL default: no NULLs"
                            .into(),
                    ),
                    Some(_) => Some(
                        "column added earlier in the migration without a default: rehearsal decides"
                            .into(),
                    ),
                    None => w.skip_reason(&t, column),
                };
                let note = w
                    .backfilled_by(&t, &c)
                    .map(|i| {
                        format!(
                            "column is backfilled by statement {}: count is before the backfill",
                            i + 1
                        )
                    })
                    .or_else(|| w.data_note(&t));
                cx.push_probe(PlannedProbe {
                    statement_index: cx.si,
                    kind: ProbeKind::NotNullViolations,
                    table: t,
                    column: Some(c.clone()),
                    constraint: None,
                    check: Check::Nulls { column: c },
                    would_fail: note.is_none(),
                    skipped,
                    note,
                });
            }
            _ => {}
        }
    }
}

/// Rows of `target` where `column` is NULL.
pub(crate) fn nulls_sql(target: &Target<'_>, column: &str) -> String {
    format!(
        "SELECT count(*) OVER (), {} FROM {} AS x WHERE x.{} IS NULL LIMIT {MAX_SAMPLES}",
        target.sample,
        target.qt,
        quote_ident(column)
    )
}

/// Every row of `target` (an added `NOT NULL` column without a default leaves each NULL),
/// counted up to [`ALL_ROWS_CAP`] + 1 so a huge table is cheap.
pub(crate) fn all_rows_sql(target: &Target<'_>) -> String {
    format!(
        "SELECT count(*) OVER (), {} FROM (SELECT * FROM {} LIMIT {}) AS x LIMIT {MAX_SAMPLES}",
        target.sample,
        target.qt,
        ALL_ROWS_CAP + 1
    )
}

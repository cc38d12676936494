//! `not_null_violations`: NULLs in a column about to become `NOT NULL` (`SET NOT NULL`, a new
//! primary key — planned by [`super::unique`]), and the rows an added `NOT NULL` column without
//! a default would leave NULL (every row) — also when the column is added nullable and set
//! `NOT NULL` by a later statement with no backfill in between.

use migration_parser::{Operation, QualifiedName};

use crate::ident::quote_ident;
use crate::probe::cx::{Col, PlanCx, default_is_non_null};
use crate::probe::kind::ProbeKind;
use crate::probe::model::{Check, PlannedProbe};
use crate::probe::result::MAX_SAMPLES;
use crate::probe::spec::ProbeSpec;
use crate::probe::sql::Target;

/// The `not_null_violations` kind.
pub(crate) struct NotNullViolations;

/// Above this many rows, an added `NOT NULL` column's count is a lower bound.
pub(crate) const ALL_ROWS_CAP: u64 = 1_000_000;

impl ProbeSpec for NotNullViolations {
    fn kind(&self) -> ProbeKind {
        ProbeKind::NotNullViolations
    }

    fn plan(&self, op: &Operation, cx: &mut PlanCx<'_>) {
        match op {
            Operation::AddColumn { table, column, .. } => {
                let Some(t) = cx.shard_table(table) else {
                    return;
                };
                if !column.not_null || default_is_non_null(column) {
                    return;
                }
                // `DELETE FROM t` / `TRUNCATE t` earlier, nothing inserted since: no rows then.
                let emptied = cx.state.emptied_before(table, cx.at).map(|s| {
                    format!(
                        "statement {} empties the table first: count is before that change",
                        s.statement + 1
                    )
                });
                cx.push_probe(PlannedProbe {
                    statement_index: cx.si,
                    kind: ProbeKind::NotNullViolations,
                    table: t,
                    column: Some(column.name.clone()),
                    constraint: None,
                    check: Check::AllRowsNull {
                        column: column.name.clone(),
                    },
                    would_fail: emptied.is_none(),
                    skipped: None,
                    note: Some(emptied.unwrap_or_else(|| {
                        "NOT NULL column added without a default: every existing row would be NULL"
                            .into()
                    })),
                });
            }
            Operation::SetNotNull { table, column } => plan_set_not_null(cx, table, column),
            _ => {}
        }
    }
}

fn plan_set_not_null(cx: &mut PlanCx<'_>, table: &QualifiedName, column: &str) {
    let (t, table_skip) = cx.probe_table(table);
    if let Col::Added(def) = cx.col(table, column)
        && !default_is_non_null(def)
        && table_skip.is_none()
        && cx.added_column_untouched(table, column)
    {
        // Added earlier without a default and assigned by no statement since (and no code the
        // model cannot follow ran before): NULL in every row the shard has. The rehearsal's
        // tables are empty, so only the shard can tell.
        let note = cx
            .state
            .emptied_before(table, cx.at)
            .map(|s| {
                format!(
                    "statement {} empties the table first: count is before that change",
                    s.statement + 1
                )
            })
            .or_else(|| cx.data_note(table));
        cx.push_probe(PlannedProbe {
            statement_index: cx.si,
            kind: ProbeKind::NotNullViolations,
            table: t,
            column: Some(column.to_string()),
            constraint: None,
            check: Check::AllRowsNull {
                column: column.to_string(),
            },
            would_fail: note.is_none(),
            skipped: None,
            note: Some(note.unwrap_or_else(|| {
                "column added earlier in the migration without a default and set by no statement \
                 before this one: every existing row is NULL"
                    .into()
            })),
        });
        return;
    }
    let (c, skipped) = match cx.col(table, column) {
        Col::Added(def) if default_is_non_null(def) => (
            column.to_string(),
            Some("column added earlier in the migration with a non-NULL default: no NULLs".into()),
        ),
        Col::Added(_) => (
            column.to_string(),
            Some(match cx.backfilled_by(table, column) {
                Some(k) => format!(
                    "column added earlier in the migration without a default and backfilled by \
                     statement {}: rehearsal decides",
                    k + 1
                ),
                None => "column added earlier in the migration without a default; earlier code the \
                         model does not follow (a DO block, a function call) may set it: rehearsal decides"
                    .into(),
            }),
        ),
        Col::Shard(_, c) => (c, table_skip),
        Col::Other => (
            column.to_string(),
            table_skip.or_else(|| {
                Some(
                    "column dropped or renamed away earlier in the migration: rehearsal decides"
                        .into(),
                )
            }),
        ),
    };
    let note = cx
        .backfilled_by(table, column)
        .map(|i| {
            format!(
                "column is backfilled by statement {}: count is before the backfill",
                i + 1
            )
        })
        .or_else(|| cx.data_note(table));
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

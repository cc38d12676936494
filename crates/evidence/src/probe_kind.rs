//! The probe kinds and what each one predicts.
//!
//! Plain data (serde only, no IO): the evidence a per-shard rule reads names a probe by its
//! [`ProbeKind`], and the rule asks the kind which SQLSTATE it predicts, whether a rehearsal
//! failure is the one it predicts, and which rule reports it. All facts of one kind sit in one
//! arm of [`ProbeKind::facts`], so a new kind is one variant and one arm here plus its module
//! under `simulator/src/probe/kinds/` (the coverage test there walks [`ProbeKind::ALL`]). It
//! lives in `evidence` because the per-shard rules of `gates` read these facts.

use serde::{Deserialize, Serialize};

/// What a probe checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// Rows whose foreign-key columns have no match in the referenced table.
    FkOrphans,
    /// NULLs in a column about to become `NOT NULL` (or rows that an added `NOT NULL` column
    /// without a default would leave NULL).
    NotNullViolations,
    /// Groups of rows with equal keys under a new `UNIQUE`/`PRIMARY KEY`/unique index.
    UniqueViolations,
    /// Rows for which a new `CHECK` expression is false.
    CheckViolations,
    /// Values that the new column type cannot represent (the `USING` expression included).
    CastFailures,
    /// An object the migration expects (table, column, constraint, index) is missing: drift.
    MissingObject,
    /// An object the migration creates (without `IF NOT EXISTS`) already exists: drift.
    ObjectAlreadyExists,
    /// Size and row estimate of a table the migration touches.
    TableSize,
    /// The rows an `UPDATE` / `DELETE` whose `WHERE` is not a bounded batch touches on the
    /// shard: the planner's estimate (`EXPLAIN`, nothing executed), or an exact `count(*)` of
    /// the same `WHERE` when the estimate is small. Predicts no failure.
    RowEstimate,
}

/// What a probe kind predicts about the statement it probes, and who reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeFacts {
    /// Stable snake_case name (as serialized).
    pub name: &'static str,
    /// The SQLSTATE the statement fails with when the probe finds something (`""` for kinds
    /// that predict no failure).
    pub sqlstate: &'static str,
    /// The condition name of [`ProbeFacts::sqlstate`], as a reader sees it.
    pub condition: &'static str,
    /// Every SQLSTATE of a rehearsal failure this kind explains.
    pub explains: &'static [&'static str],
    /// A SQLSTATE class (two characters) whose every code this kind explains, if any.
    pub explains_class: Option<&'static str>,
    /// The rule that reports this kind's findings (`""` for none).
    pub rule: &'static str,
}

impl ProbeKind {
    /// Every kind, in declaration order.
    pub const ALL: [ProbeKind; 9] = [
        ProbeKind::FkOrphans,
        ProbeKind::NotNullViolations,
        ProbeKind::UniqueViolations,
        ProbeKind::CheckViolations,
        ProbeKind::CastFailures,
        ProbeKind::MissingObject,
        ProbeKind::ObjectAlreadyExists,
        ProbeKind::TableSize,
        ProbeKind::RowEstimate,
    ];

    /// Everything this kind predicts, in one place.
    pub const fn facts(self) -> ProbeFacts {
        const fn f(
            name: &'static str,
            sqlstate: &'static str,
            condition: &'static str,
            explains: &'static [&'static str],
            explains_class: Option<&'static str>,
            rule: &'static str,
        ) -> ProbeFacts {
            ProbeFacts {
                name,
                sqlstate,
                condition,
                explains,
                explains_class,
                rule,
            }
        }
        match self {
            ProbeKind::FkOrphans => f(
                "fk_orphans",
                "23503",
                "foreign_key_violation",
                &["23503"],
                None,
                "fk-orphans",
            ),
            ProbeKind::NotNullViolations => f(
                "not_null_violations",
                "23502",
                "not_null_violation",
                &["23502"],
                None,
                "not-null-violations",
            ),
            ProbeKind::UniqueViolations => f(
                "unique_violations",
                "23505",
                "unique_violation",
                &["23505"],
                None,
                "unique-violations",
            ),
            ProbeKind::CheckViolations => f(
                "check_violations",
                "23514",
                "check_violation",
                &["23514"],
                None,
                "check-violations",
            ),
            // Any data exception: 22P02 bad text, 22003 out of range, 22001 too long,
            // 22007/22008 bad datetime, ...
            ProbeKind::CastFailures => f(
                "cast_failures",
                "22P02",
                "invalid_text_representation, or another class-22 data exception",
                &[],
                Some("22"),
                "cast-failures",
            ),
            ProbeKind::MissingObject => f(
                "missing_object",
                "42P01",
                "undefined_table",
                &["42P01", "42703", "42704", "3F000"],
                None,
                "schema-drift",
            ),
            ProbeKind::ObjectAlreadyExists => f(
                "object_already_exists",
                "42P07",
                "duplicate_table",
                &["42P07", "42701", "42710", "42P06"],
                None,
                "schema-drift",
            ),
            ProbeKind::TableSize => f("table_size", "", "", &[], None, "lock-time-budget"),
            ProbeKind::RowEstimate => f("row_estimate", "", "", &[], None, "unbatched-data-change"),
        }
    }

    /// Stable snake_case name (as serialized).
    pub fn as_str(self) -> &'static str {
        self.facts().name
    }

    /// The SQLSTATE a violation found by this kind raises, with its condition name
    /// (`("", "")` for [`ProbeKind::TableSize`]).
    pub fn sqlstate(self) -> (&'static str, &'static str) {
        let f = self.facts();
        (f.sqlstate, f.condition)
    }

    /// Whether a rehearsal failure with `sqlstate` is the failure this kind predicts.
    pub fn explains(self, sqlstate: &str) -> bool {
        let f = self.facts();
        f.explains.contains(&sqlstate) || f.explains_class.is_some_and(|c| sqlstate.starts_with(c))
    }

    /// The rule that reports this kind's findings (for [`ProbeKind::TableSize`], the rule whose
    /// estimate reads the sizes and reports a failure to read them).
    pub fn rule(self) -> &'static str {
        self.facts().rule
    }

    /// The SQLSTATE an existence finding about `object` (`column`, `constraint`, `table`,
    /// `relation`, `index`: the first word of the finding's sample) makes the statement fail
    /// with; [`ProbeKind::sqlstate`] for the data kinds.
    pub fn existence_sqlstate(self, object: &str) -> &'static str {
        match (self, object) {
            (ProbeKind::MissingObject, "column") => "42703",
            (ProbeKind::MissingObject, "constraint") => "42704",
            (ProbeKind::ObjectAlreadyExists, "column") => "42701",
            (ProbeKind::ObjectAlreadyExists, "constraint") => "42710",
            (kind, _) => kind.facts().sqlstate,
        }
    }
}

//! What a proof is asked ([`ProveOptions`], [`Setup`], [`RollbackSource`]) and what it finds
//! ([`Proof`], its [`DataPhase`], and [`ProofOutcome`], the one place that judges it).

use migration_parser::Migration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::catalog::Mismatch;
use crate::exec::SqlFailure;
use crate::sample::ValueHints;
use crate::{Options, Rollback};
use topology::catalog::Catalog;

/// The three outcomes of a proof, as the report and the rules read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ProofOutcome {
    /// Forward then rollback restored the catalog exactly (and the sample data when `data`).
    Proven {
        /// The data round trip ran on sample rows too.
        data: bool,
        /// Why the data round trip did not run or is partial, when it is.
        note: Option<String>,
    },
    /// The rollback ran and did not restore, or failed: every difference, one line each.
    Mismatch {
        /// The differences (catalog objects, the failing rollback statement), each saying in
        /// which phase (`structure:` on empty tables, `data:` on sample rows) it was seen.
        differences: Vec<String>,
    },
    /// The proof could not be carried out (the forward migration failed on the shadow, the
    /// shadow could not be set up, ...): why.
    NotProven {
        /// Why.
        reason: String,
    },
}

/// The second phase of a proof: the round trip on sample rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum DataPhase {
    /// Not asked for (no sample rows, no sample data), or not reached (the structural phase
    /// could not run).
    Skipped,
    /// It could not be set up (the sample data did not load), or the forward migration failed
    /// only because of the sample rows: why. The structural proof still counts.
    NotRun {
        /// Why.
        reason: String,
    },
    /// It ran.
    Ran {
        /// Rows inserted before the forward run (generated, or real with `sample_data`).
        rows: u64,
        /// The rows were real ones ([`ProveOptions::sample_data`]), not generated.
        real_rows: bool,
        /// Tables or columns the generated rows could not cover, and why (names only).
        #[serde(default)]
        partial: Option<String>,
        /// The rollback statement that failed on the rows, if any.
        rollback_error: Option<SqlFailure>,
        /// Differences between the catalog before and after, with rows in the tables.
        mismatches: Vec<Mismatch>,
    },
}

/// A column whose values did not survive forward → rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnLoss {
    /// Table.
    pub table: String,
    /// Column.
    pub column: String,
    /// Rows before the forward run.
    pub rows_before: usize,
    /// Values (of `rows_before`) not found again afterwards.
    pub values_lost: usize,
    /// What happened.
    pub reason: String,
}

/// The outcome of a proof: two phases, the structural round trip on empty tables (the fields
/// at the top) and the round trip on sample rows ([`Proof::data`]). Read it through
/// [`Proof::outcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// The rollback ran to the end in every phase that ran (forward and rollback of the
    /// structural phase, and the rollback of the data phase when it ran).
    pub tested: bool,
    /// Tested, and the catalog after the rollback equals the one before the migration in every
    /// phase (up to column order, see [`Mismatch::column_order_only`]).
    pub restored: bool,
    /// The structural phase's forward statement that failed, if any (then nothing else ran).
    pub forward_error: Option<SqlFailure>,
    /// The structural phase's rollback statement that failed, if any.
    pub rollback_error: Option<SqlFailure>,
    /// Every difference between the catalog before the migration and after the rollback in
    /// the structural phase (`rollback-mismatch`). Also filled after a failed rollback.
    pub mismatches: Vec<Mismatch>,
    /// Columns whose sample values did not survive the data phase's round trip.
    pub data_loss: Vec<ColumnLoss>,
    /// The data phase.
    pub data: DataPhase,
    /// The pre-migration structure could not be loaded on the shadow (then nothing ran): why.
    pub setup_error: Option<String>,
    /// Extensions the shard uses that the shadow server does not have.
    pub missing_extensions: Vec<String>,
    /// Wall-clock time of the whole proof (both phases: the "shard recovery time").
    pub duration_ms: u64,
    /// The rollback that was proven, when it was generated on the shadow.
    pub rollback: Option<Rollback>,
}

impl Proof {
    /// A proof with nothing run yet.
    pub(crate) fn empty() -> Proof {
        Proof {
            tested: false,
            restored: false,
            forward_error: None,
            rollback_error: None,
            mismatches: Vec::new(),
            data_loss: Vec::new(),
            data: DataPhase::Skipped,
            setup_error: None,
            missing_extensions: Vec::new(),
            duration_ms: 0,
            rollback: None,
        }
    }

    /// The proof of a history step: one structural round trip whose forward already ran.
    pub(crate) fn of_history(
        rollback_error: Option<SqlFailure>,
        mismatches: Vec<Mismatch>,
    ) -> Proof {
        let mut p = Proof::empty();
        p.rollback_error = rollback_error;
        p.mismatches = mismatches;
        p.settle();
        p
    }

    /// Set [`Proof::tested`] and [`Proof::restored`] from the phases.
    pub(crate) fn settle(&mut self) {
        let only_order = |m: &[Mismatch]| m.iter().all(|m| m.column_order_only);
        let (data_ok, data_same) = match &self.data {
            DataPhase::Ran {
                rollback_error,
                mismatches,
                ..
            } => (rollback_error.is_none(), only_order(mismatches)),
            _ => (true, true),
        };
        self.tested = self.setup_error.is_none()
            && self.forward_error.is_none()
            && self.rollback_error.is_none()
            && data_ok;
        self.restored = self.tested && only_order(&self.mismatches) && data_same;
    }

    /// The proof's outcome: proven, mismatch (every difference, by phase) or not proven (why).
    pub fn outcome(&self) -> ProofOutcome {
        if let Some(e) = &self.setup_error {
            return ProofOutcome::NotProven { reason: e.clone() };
        }
        if let Some(e) = &self.forward_error {
            return ProofOutcome::NotProven {
                reason: format!("the forward migration failed on the shadow: {e}"),
            };
        }
        let mut differences = differences("structure", &self.rollback_error, &self.mismatches);
        if let DataPhase::Ran {
            rollback_error,
            mismatches,
            ..
        } = &self.data
        {
            // What the empty tables already showed is not repeated.
            for d in self::differences("data", rollback_error, mismatches) {
                let seen = d
                    .strip_prefix("data: ")
                    .is_some_and(|rest| differences.contains(&format!("structure: {rest}")));
                if !seen {
                    differences.push(d);
                }
            }
        }
        if !differences.is_empty() {
            return ProofOutcome::Mismatch { differences };
        }
        match &self.data {
            DataPhase::Ran { rows: 0, .. } => ProofOutcome::Proven {
                data: false,
                note: Some("no sample rows could be seeded".into()),
            },
            DataPhase::Ran { partial, .. } => ProofOutcome::Proven {
                data: true,
                note: partial
                    .as_ref()
                    .map(|p| format!("data round trip partial: {p}")),
            },
            DataPhase::NotRun { reason } => ProofOutcome::Proven {
                data: false,
                note: Some(format!("structure only: {reason}")),
            },
            DataPhase::Skipped => ProofOutcome::Proven {
                data: false,
                note: Some("structure only: no sample rows were asked for".into()),
            },
        }
    }
}

/// One phase's differences, one line each, prefixed with the phase.
fn differences(
    phase: &str,
    rollback_error: &Option<SqlFailure>,
    mismatches: &[Mismatch],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(e) = rollback_error {
        out.push(format!("{phase}: the rollback failed on the shadow: {e}"));
    }
    out.extend(
        mismatches
            .iter()
            .filter(|m| !m.column_order_only)
            .map(|m| format!("{phase}: {m}")),
    );
    out
}

/// Options for [`crate::prove`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProveOptions {
    /// The tenant schema the migration's unqualified names resolve to.
    pub schema: String,
    /// Rows to insert per table before the data phase's forward run (0 and no `sample_data`:
    /// structure only).
    pub sample_rows: usize,
    /// `statement_timeout` for everything run on the shadow.
    pub statement_timeout: String,
    /// Values known to be valid per `(table, column)` of the pre-migration schema (e.g. the
    /// shard's `pg_stats` most common values and histogram bounds), preferred by the sample rows
    /// over synthetic ones.
    pub value_hints: ValueHints,
    /// Real rows to load instead of generated ones (`--shadow-data sample`): SQL run after the
    /// setup (plain `INSERT`s, parents before children). `None`: generated sample rows.
    pub sample_data: Option<std::sync::Arc<str>>,
    /// The shard's extensions (name → schema, e.g. its catalog's `extensions`), created on the
    /// scratch database before the setup when the shadow server has them — a schema-filtered
    /// `pg_dump` leaves them out. Those it lacks are listed in [`Proof::missing_extensions`].
    pub extensions: BTreeMap<String, String>,
}

impl Default for ProveOptions {
    fn default() -> Self {
        ProveOptions {
            schema: "public".into(),
            sample_rows: 3,
            statement_timeout: "120s".into(),
            value_hints: ValueHints::new(),
            sample_data: None,
            extensions: BTreeMap::new(),
        }
    }
}

/// The pre-migration structure to load on the shadow.
#[derive(Debug, Clone, Copy)]
pub enum Setup<'a> {
    /// SQL run as one multi-statement string (e.g. `pg_dump --schema-only` output; no `COPY`
    /// data, no psql meta-commands).
    Sql(&'a str),
    /// A shard's introspected catalog, recreated statement by statement (extensions, types,
    /// sequences, functions, tables, constraints, indexes, triggers, views, comments).
    Catalog(&'a Catalog),
}

/// Which rollback to prove.
#[derive(Debug, Clone)]
pub enum RollbackSource<'a> {
    /// Generate it on the shadow from the forward migration and the catalog C0 taken there.
    Generate(Options),
    /// A rollback generated beforehand.
    Generated(&'a Rollback),
    /// A user-supplied rollback script (`--rollback-file`), parsed.
    Script(&'a Migration),
}

//! Plain-data evidence the per-shard rules read besides the simulator's own types: drift
//! entries, the rollback proof, and the rows of custom SQL probes. The integrator fills these
//! from `topology`, `rollback` and the simulator.

use serde::{Deserialize, Serialize};

/// One way a shard's catalog differs from the fleet's majority shape (`schema-drift`).
///
/// Built from a [`CatalogDifference`](crate::CatalogDifference) with [`DriftItem::from_difference`] (what
/// gates' `RuleContext::with_drift` does), or by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DriftItem {
    /// Kind of difference, snake_case (`missing_column`, `extra_index`, ...).
    pub kind: String,
    /// The object, e.g. `column orders.note`, `index orders_status_idx`, `table audit_log`.
    pub object: String,
    /// The difference in words (`missing column orders.note (text)`), reference = expected.
    pub text: String,
}

impl DriftItem {
    /// A drift entry from its parts.
    pub fn new(
        kind: impl Into<String>,
        object: impl Into<String>,
        text: impl Into<String>,
    ) -> DriftItem {
        DriftItem {
            kind: kind.into(),
            object: object.into(),
            text: text.into(),
        }
    }

    /// Convert a catalog difference (reference = the fleet's majority shape, actual = this
    /// shard).
    pub fn from_difference(d: &crate::CatalogDifference) -> DriftItem {
        let value = serde_json::to_value(d).unwrap_or_default();
        let field = |k: &str| value.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let kind = field("kind").unwrap_or_else(|| "difference".into());
        let object = if let (Some(t), Some(c)) = (field("table"), field("column")) {
            format!("column {t}.{c}")
        } else if let (Some(t), Some(c)) = (field("table"), field("constraint")) {
            format!("constraint {c} on {t}")
        } else if let (Some(t), Some(i)) = (field("table"), field("index")) {
            format!("index {i} on {t}")
        } else if let Some(t) = field("table") {
            format!("table {t}")
        } else if let Some(s) = field("sequence") {
            format!("sequence {s}")
        } else {
            // enums and anything added later: the first string field names it.
            value
                .as_object()
                .and_then(|o| {
                    o.iter()
                        .find(|(k, v)| *k != "kind" && v.is_string())
                        .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or_default()))
                })
                .unwrap_or_else(|| kind.clone())
        };
        DriftItem {
            kind,
            object,
            text: d.to_string(),
        }
    }
}

/// A migration step the rollback cannot undo without losing data (`rollback-irreversible`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IrreversibleStep {
    /// 0-based index of the migration statement.
    pub statement: usize,
    /// Why (`dropped column values cannot be restored`).
    pub reason: String,
}

impl IrreversibleStep {
    /// An irreversible step.
    pub fn new(statement: usize, reason: impl Into<String>) -> IrreversibleStep {
        IrreversibleStep {
            statement,
            reason: reason.into(),
        }
    }
}

/// What the rollback step found, as plain data (the integrator fills it from
/// `rollback::generate` → `Rollback::irreversible` and `rollback::prove` → `Proof`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RollbackEvidence {
    /// Forward and rollback both ran on a shadow (`Proof::tested`). `rollback-mismatch` only
    /// judges a tested rollback.
    pub tested: bool,
    /// Steps that cannot be undone without data loss (`Rollback::irreversible`).
    pub irreversible: Vec<IrreversibleStep>,
    /// Catalog differences after forward → rollback (`Proof::mismatches`, `Display` of each,
    /// without the column-order-only ones).
    pub mismatches: Vec<String>,
    /// The rollback statement that failed during the proof (`Proof::rollback_error`), as
    /// `SQLSTATE: message`.
    pub rollback_error: Option<String>,
}

impl RollbackEvidence {
    /// Evidence of a tested rollback with these irreversible steps and mismatches.
    pub fn new(
        tested: bool,
        irreversible: Vec<IrreversibleStep>,
        mismatches: Vec<String>,
    ) -> RollbackEvidence {
        RollbackEvidence {
            tested,
            irreversible,
            mismatches,
            rollback_error: None,
        }
    }

    /// The same evidence with the failing rollback statement.
    #[must_use]
    pub fn with_rollback_error(mut self, error: impl Into<String>) -> RollbackEvidence {
        self.rollback_error = Some(error.into());
        self
    }
}

/// What a custom SQL probe (gates' `ProbeRuleSpec`) returned on one shard.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CustomProbeOutcome {
    /// The first rows, each a JSON object (column → value), e.g. from
    /// `SELECT to_jsonb(q) FROM (<sql>) AS q LIMIT 6`. Any row means the rule fires.
    pub rows: Vec<serde_json::Value>,
    /// The query returned more rows than `rows` holds.
    pub truncated: bool,
    /// The query failed (`SQLSTATE: message`); the rule then reports that it could not check.
    pub error: Option<String>,
}

impl CustomProbeOutcome {
    /// The rows a probe returned.
    pub fn rows(rows: Vec<serde_json::Value>) -> CustomProbeOutcome {
        CustomProbeOutcome {
            rows,
            truncated: false,
            error: None,
        }
    }

    /// A probe that failed with `error` (`SQLSTATE: message`).
    pub fn failed(error: impl Into<String>) -> CustomProbeOutcome {
        CustomProbeOutcome {
            rows: Vec::new(),
            truncated: false,
            error: Some(error.into()),
        }
    }

    /// What the simulator's run of the probe returned: its rows, or its error as
    /// `SQLSTATE: message` (the message alone when there is no SQLSTATE).
    pub fn from_rows(rows: &crate::CustomProbeRows) -> CustomProbeOutcome {
        match &rows.error {
            Some(err) => CustomProbeOutcome::failed(match &err.sqlstate {
                Some(state) => format!("{state}: {}", err.message),
                None => err.message.clone(),
            }),
            None => CustomProbeOutcome::rows(rows.rows.clone()).with_truncated(rows.truncated),
        }
    }

    /// The same outcome marked as having more rows than it holds.
    #[must_use]
    pub fn with_truncated(mut self, truncated: bool) -> CustomProbeOutcome {
        self.truncated = truncated;
        self
    }
}

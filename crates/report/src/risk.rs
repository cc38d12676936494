//! The overall risk level of a report, shared by the report model and the approval token.

use serde::{Deserialize, Serialize};

/// Overall risk of shipping the migration, derived by [`ValidationReport::finalize`](crate::ValidationReport::finalize).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum RiskLevel {
    /// Every shard is green.
    #[default]
    Low,
    /// Some shards are yellow, below the high-risk thresholds.
    Medium,
    /// Yellow shards at or over a high-risk threshold, or an irreversible step.
    High,
    /// At least one shard is red.
    Critical,
}

impl RiskLevel {
    /// `LOW`, `MEDIUM`, `HIGH`, `CRITICAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "LOW",
            RiskLevel::Medium => "MEDIUM",
            RiskLevel::High => "HIGH",
            RiskLevel::Critical => "CRITICAL",
        }
    }
}

impl std::fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

//! The rollback proof of one schema shape, as plain data: what `rollback::Proof::outcome()`
//! said for the shape's representative shard, which shards share it, and how long the proof
//! took (the shards' "recovery time").

use serde::{Deserialize, Serialize};

/// The three outcomes of a rollback proof, as the rules and the report read them (the plain
/// form of `rollback::ProofOutcome`, whose details travel in [`ShapeProof`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProofStatus {
    /// Forward then rollback restored the catalog exactly (and the sample data when
    /// [`ShapeProof::data`]).
    Proven,
    /// The rollback ran and did not restore the catalog, or one of its statements failed.
    Mismatch,
    /// The proof could not be carried out (the forward migration failed on the shadow, the
    /// shard's schema could not be cloned, an extension is missing on the shadow, ...).
    NotProven,
}

impl ProofStatus {
    /// `proven`, `mismatch` or `not proven`, as the report prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProofStatus::Proven => "proven",
            ProofStatus::Mismatch => "mismatch",
            ProofStatus::NotProven => "not proven",
        }
    }
}

/// The rollback proof of one schema shape (one proof per distinct catalog fingerprint; every
/// shard of the shape gets its result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShapeProof {
    /// The catalog fingerprint of the shape.
    pub schema_fingerprint: String,
    /// The shard whose schema was cloned for the proof.
    pub representative_shard: String,
    /// Every shard of this shape, in fleet order.
    pub shards: Vec<String>,
    /// Proven, mismatch or not proven.
    pub outcome: ProofStatus,
    /// Proven with the data round trip on sample rows too (`false`: structure only).
    pub data: bool,
    /// Not proven: why; proven: what was left out (e.g. why the data round trip did not run).
    pub reason: Option<String>,
    /// Mismatch: every difference, one line each (catalog objects, the failing statement).
    pub differences: Vec<String>,
    /// Wall-clock time of the proof on the shadow, in milliseconds: the shard recovery time.
    pub duration_ms: u64,
}

impl ShapeProof {
    /// A proof of `status` for the shape `schema_fingerprint`, proven on `representative_shard`.
    pub fn new(
        schema_fingerprint: impl Into<String>,
        representative_shard: impl Into<String>,
        status: ProofStatus,
    ) -> ShapeProof {
        let representative_shard = representative_shard.into();
        ShapeProof {
            schema_fingerprint: schema_fingerprint.into(),
            shards: vec![representative_shard.clone()],
            representative_shard,
            outcome: status,
            data: false,
            reason: None,
            differences: Vec::new(),
            duration_ms: 0,
        }
    }

    /// This proof as the evidence of one shard of the shape: everything but
    /// [`shards`](ShapeProof::shards), which is left empty (every shard of the shape shares the
    /// list; a copy per shard would cost the square of the fleet's size).
    pub fn for_one_shard(&self) -> ShapeProof {
        ShapeProof {
            schema_fingerprint: self.schema_fingerprint.clone(),
            representative_shard: self.representative_shard.clone(),
            shards: Vec::new(),
            outcome: self.outcome,
            data: self.data,
            reason: self.reason.clone(),
            differences: self.differences.clone(),
            duration_ms: self.duration_ms,
        }
    }

    /// A proof that could not be carried out, and why.
    pub fn not_proven(
        schema_fingerprint: impl Into<String>,
        representative_shard: impl Into<String>,
        reason: impl Into<String>,
    ) -> ShapeProof {
        ShapeProof::new(
            schema_fingerprint,
            representative_shard,
            ProofStatus::NotProven,
        )
        .with_reason(reason)
    }

    /// The same proof with these shards.
    #[must_use]
    pub fn with_shards(mut self, shards: Vec<String>) -> ShapeProof {
        self.shards = shards;
        self
    }

    /// The same proof with a reason (not proven) or a note (proven).
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> ShapeProof {
        self.reason = Some(reason.into());
        self
    }

    /// The same proof with these differences (mismatch).
    #[must_use]
    pub fn with_differences(mut self, differences: Vec<String>) -> ShapeProof {
        self.differences = differences;
        self
    }

    /// The same proof, marked as covering the data round trip (`true`) or structure only.
    #[must_use]
    pub fn with_data(mut self, data: bool) -> ShapeProof {
        self.data = data;
        self
    }

    /// The same proof with its duration (the shard recovery time).
    #[must_use]
    pub fn with_duration_ms(mut self, duration_ms: u64) -> ShapeProof {
        self.duration_ms = duration_ms;
        self
    }

    /// Proven (structure, and data when [`ShapeProof::data`]).
    pub fn proven(&self) -> bool {
        self.outcome == ProofStatus::Proven
    }
}

#[cfg(test)]
mod tests {
    use super::{ProofStatus, ShapeProof};

    #[test]
    fn one_shards_copy_of_a_proof_keeps_everything_but_the_shape_s_shard_list() {
        let shape = ShapeProof::new("fp", "i/app/t1", ProofStatus::Mismatch)
            .with_shards((1..=3).map(|i| format!("i/app/t{i}")).collect())
            .with_reason("why")
            .with_differences(vec!["column `x` missing".into()])
            .with_data(true)
            .with_duration_ms(42);
        let one = shape.for_one_shard();
        assert!(one.shards.is_empty());
        assert_eq!(
            ShapeProof {
                shards: shape.shards.clone(),
                ..one
            },
            shape
        );
    }
}

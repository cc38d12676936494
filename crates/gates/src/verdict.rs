//! Verdicts: the gate of one shard ([`evaluate_shard`]) and of the fleet ([`fleet_gate`]).
//!
//! A shard is **RED** when the migration would fail on it or lose data without approval (a red
//! finding: orphans for a new foreign key, a failing statement, an unreachable shard, a rollback
//! that does not restore the catalog, `DROP COLUMN`, ...), **YELLOW** when it would succeed but
//! needs a human (a yellow finding: a lock over the budget, an irreversible step, cascade reach,
//! drift), **GREEN** otherwise — info findings do not change the gate. The fleet gate is the
//! worst shard gate.

use serde::{Deserialize, Serialize};

use crate::{Finding, Gate, Registry, RuleContext};

/// The verdict for one shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShardVerdict {
    /// Shard id.
    pub shard: String,
    /// Instance the shard lives on.
    pub instance: String,
    /// The shard's gate: the worst severity of its findings (info counts as green).
    pub gate: Gate,
    /// Every finding for this shard — static rules (judged with the context's PostgreSQL
    /// version) and per-shard rules — sorted by location, then code.
    pub findings: Vec<Finding>,
    /// Estimated blocking-lock time on this shard over all statements, ms (0 when unknown).
    pub estimated_lock_ms: u64,
}

impl ShardVerdict {
    /// A verdict from findings; the gate is derived from them.
    pub fn new(
        shard: impl Into<String>,
        instance: impl Into<String>,
        findings: Vec<Finding>,
        estimated_lock_ms: u64,
    ) -> ShardVerdict {
        ShardVerdict {
            shard: shard.into(),
            instance: instance.into(),
            gate: Gate::from_findings(&findings),
            findings,
            estimated_lock_ms,
        }
    }
}

/// Run every enabled rule of `registry` — static and per-shard — on the shard in `ctx` and
/// derive its gate. Configuration (disable, severity overrides) and inline ignores apply as in
/// [`Registry::lint`]. The shard and instance come from
/// [`RuleContext::with_shard`] / [`RuleContext::with_shard_id`] (empty when neither was given).
/// A predicted rewrite the shard's rehearsal did not see is demoted to info
/// ([`Registry::demote_unobserved_rewrites`]).
pub fn evaluate_shard(registry: &Registry, ctx: &RuleContext<'_>) -> ShardVerdict {
    let mut findings = registry.lint_with(ctx);
    registry.demote_unobserved_rewrites(&mut findings, ctx.rehearsal());
    ShardVerdict::new(
        ctx.shard_id().unwrap_or_default(),
        ctx.instance().unwrap_or_default(),
        findings,
        ctx.shard_evidence()
            .map(|e| e.estimated_lock_ms)
            .unwrap_or(0),
    )
}

/// The fleet's gate: the worst shard gate (GREEN for an empty fleet).
pub fn fleet_gate(shards: &[ShardVerdict]) -> Gate {
    shards.iter().map(|s| s.gate).max().unwrap_or(Gate::Green)
}

/// How many shards got each gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GateSummary {
    /// GREEN shards.
    pub green: usize,
    /// YELLOW shards.
    pub yellow: usize,
    /// RED shards.
    pub red: usize,
}

impl GateSummary {
    /// Count the gates of `shards`.
    pub fn of(shards: &[ShardVerdict]) -> GateSummary {
        let mut s = GateSummary::default();
        for v in shards {
            match v.gate {
                Gate::Green => s.green += 1,
                Gate::Yellow => s.yellow += 1,
                Gate::Red => s.red += 1,
            }
        }
        s
    }

    /// Number of shards.
    pub fn total(&self) -> usize {
        self.green + self.yellow + self.red
    }

    /// The fleet gate these counts imply (the worst one present).
    pub fn gate(&self) -> Gate {
        if self.red > 0 {
            Gate::Red
        } else if self.yellow > 0 {
            Gate::Yellow
        } else {
            Gate::Green
        }
    }
}

impl std::fmt::Display for GateSummary {
    /// `100 shards: 95 green, 3 yellow, 2 red`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} shard{}: {} green, {} yellow, {} red",
            self.total(),
            if self.total() == 1 { "" } else { "s" },
            self.green,
            self.yellow,
            self.red
        )
    }
}

/// The shards that are not GREEN, worst first (then by shard id): the report's exceptions.
pub fn shard_exceptions(shards: &[ShardVerdict]) -> Vec<&ShardVerdict> {
    let mut v: Vec<&ShardVerdict> = shards.iter().filter(|s| s.gate != Gate::Green).collect();
    v.sort_by(|a, b| b.gate.cmp(&a.gate).then_with(|| a.shard.cmp(&b.shard)));
    v
}

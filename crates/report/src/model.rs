//! The validation report model: plain serde types the CLI fills and every rendering reads.
//!
//! Field names and order are part of the JSON contract (DESIGN.md, "CLI contract"); serde
//! serializes struct fields in declaration order, so the JSON rendering is stable.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use chrono::{DateTime, SubsecRound, Utc};
use gates::evidence::{ProofStatus, ShapeProof};
use gates::{Finding, Gate, Severity};
use migration_parser::LockMode;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ReportError;
use crate::partition::Partition;
use crate::risk::RiskLevel;
use crate::token::ApprovalToken;

/// The whole outcome of one `deployclaw validate-migration` run.
///
/// Build it with [`ValidationReport::new`], push steps, shards, rehearsals and static findings,
/// set the rollback, then call [`ValidationReport::finalize`] to compute the fleet gate and the
/// safety gates. Sign it last with [`crate::sign`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// Unique id of this run, UUID-v4 shaped (see [`new_execution_id`]).
    pub execution_id: String,
    /// When the run started (RFC 3339, UTC).
    pub timestamp: DateTime<Utc>,
    /// deployclaw's version (`CARGO_PKG_VERSION` of the CLI).
    pub tool_version: String,
    /// The migration that was validated.
    pub migration: MigrationInfo,
    /// The fleet it was validated against.
    pub fleet: FleetInfo,
    /// What the run did, in order.
    pub steps: Vec<Step>,
    /// One entry per shard, in fleet order.
    pub shards: Vec<ShardReport>,
    /// One rehearsal per distinct schema shape: the per-statement lock timeline.
    #[serde(default)]
    pub rehearsals: Vec<Rehearsal>,
    /// Findings of the static rules (statement-level, no database needed).
    #[serde(default)]
    pub static_findings: Vec<Finding>,
    /// The rollback and whether it was proven.
    pub rollback: RollbackInfo,
    /// The deploy decision derived from the shards (see [`ValidationReport::finalize`]).
    pub safety_gates: SafetyGates,
    /// The fleet gate: the worst shard gate.
    pub gate: Gate,
    /// Wall-clock duration of the whole run.
    pub total_duration_ms: u64,
    /// Ed25519 signature over the canonical report (see [`crate::sign`]); `null` when unsigned.
    pub signature: Option<Signature>,
    /// The approval token the deploy step checks (see [`crate::issue_token`]); `null` when none
    /// was issued.
    #[serde(default)]
    pub approval_token: Option<ApprovalToken>,
    /// Where this run's files are: the report, the rollback script next to it, and the
    /// approval token in its compact form (see [`ValidationReport::set_output`]).
    #[serde(default)]
    pub output: ReportOutput,
}

/// The report's `output` block: the files written and the token issued (`null` each when none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ReportOutput {
    /// Path of `report.json` in the report directory; `null` when no directory was given.
    pub report_file: Option<String>,
    /// Path of `rollback.sql`, written next to the report when there is a rollback script.
    pub rollback_script: Option<String>,
    /// The approval token in its compact form (`dct1.…`); `null` when unsigned.
    pub approval_token: Option<String>,
}

/// The migration file that was validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationInfo {
    /// Path as given on the command line.
    pub file: String,
    /// Lower-case hex sha256 of the file's bytes (see [`sha256_file`]).
    pub sha256: String,
    /// Number of statements in the file.
    pub statements: usize,
}

/// The fleet the migration was validated against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FleetInfo {
    /// Where the fleet came from (`topology fleet.toml`, `postgres://host/db`, `rds:cluster-1`).
    #[serde(default)]
    pub source: String,
    /// Number of database instances.
    pub instances: usize,
    /// Number of tenant shards.
    pub shards: usize,
    /// Identity of the fleet's membership and schema shapes (see [`fleet_fingerprint`]).
    pub fingerprint: String,
    /// The slice this report covers when it was made with `--partition K/N` (a partial
    /// report); omitted for a whole fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionInfo>,
    /// The partial reports a `deployclaw report merge` was built from, in partition order;
    /// omitted otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedPart>,
}

/// What a partial report (`validate-migration --partition K/N`) records about its slice, as
/// `fleet.partition` in the JSON; `report merge` checks the parts against each other with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// 1-based partition number (`K`).
    pub index: u32,
    /// Number of partitions (`N`).
    pub count: u32,
    /// Shards in the whole fleet, before slicing (`fleet.shards` is the slice's).
    pub shards_in_fleet: usize,
    /// The schema shape this slice took as the drift reference (its largest shape group);
    /// `null` when no catalog was read. Parts with different references are not merged.
    #[serde(default)]
    pub drift_reference: Option<String>,
    /// Hex SHA-256 over the options that change verdicts (configuration, lock budget, rehearsal
    /// mode, rollback proof, shadow data, approval policy); parts must agree.
    pub options_sha256: String,
    /// The gate policy the part was finalized with; the merged report is finalized with it.
    pub policy: GatePolicy,
}

impl PartitionInfo {
    /// The partition this slice is.
    pub fn partition(&self) -> Option<Partition> {
        Partition::new(self.index, self.count)
    }
}

/// One part a merged report was built from (`fleet.merged_from`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedPart {
    /// 1-based partition number.
    pub index: u32,
    /// The part's own execution id.
    pub execution_id: String,
    /// Shards the part validated.
    pub shards: usize,
    /// The key that signed the part (base64); `null` for an unsigned part admitted with
    /// `--allow-unsigned`.
    pub signed_by: Option<String>,
}

/// One step of the run (`parse`, `discover`, `introspect`, `probe`, `rehearse`, `rollback`,
/// `gates`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// 1-based position.
    pub step: u32,
    /// Short machine-friendly name of the action.
    pub action: String,
    /// One line for a human.
    pub details: String,
    /// Wall-clock duration.
    pub duration_ms: u64,
}

/// The verdict for one tenant shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardReport {
    /// Shard name (schema or database name).
    pub shard: String,
    /// Name of the instance it lives on.
    pub instance: String,
    /// The shard's gate (worst of its findings, as decided by the gates crate).
    pub gate: Gate,
    /// Everything the rules found on this shard, static findings included when they apply.
    pub findings: Vec<Finding>,
    /// Estimated time the migration blocks other sessions on this shard.
    pub estimated_lock_ms: u64,
    /// Catalog fingerprint; shards with the same one share a [`Rehearsal`].
    #[serde(default)]
    pub schema_fingerprint: String,
    /// Time spent probing this shard.
    #[serde(default)]
    pub duration_ms: u64,
    /// The rollback proof of this shard's schema shape (`--validate-rollback`); `null` when no
    /// proof was asked for.
    #[serde(default)]
    pub rollback: Option<ShardRollback>,
    /// The live workload read on this shard: sessions holding conflicting locks, traffic on the
    /// locked relations, application queries using what the migration changes, the replica
    /// probed. Omitted when nothing was read.
    #[serde(
        default,
        skip_serializing_if = "gates::evidence::LiveEvidence::is_empty"
    )]
    pub live: gates::evidence::LiveEvidence,
}

/// A shard's rollback result: its shape's proof outcome and duration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRollback {
    /// `proven`, `mismatch` or `not_proven`.
    pub outcome: ProofStatus,
    /// The shape whose proof this is (see [`RollbackInfo::proofs`]).
    pub schema_fingerprint: String,
    /// How long forward → rollback took on the shadow for this shape: the shard recovery time.
    pub recovery_time_ms: u64,
}

/// The rehearsal of the migration on one schema shape (a shadow copy of its catalog).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rehearsal {
    /// The catalog fingerprint rehearsed.
    pub schema_fingerprint: String,
    /// A shard with this shape whose catalog was cloned.
    pub representative_shard: String,
    /// How many shards share this shape.
    pub shard_count: usize,
    /// Per statement: locks, rewrites, timing, error. The lock timeline.
    pub statements: Vec<StatementTrace>,
}

/// What one statement did during the rehearsal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementTrace {
    /// 0-based statement index in the migration.
    pub index: usize,
    /// 1-based line where the statement starts.
    pub line: u32,
    /// The statement text, shortened to one line.
    pub sql: String,
    /// Table-level locks held when the statement finished (from `pg_locks`).
    pub locks: Vec<LockTrace>,
    /// Relations whose storage was rewritten (their `relfilenode` changed).
    pub rewrites: Vec<String>,
    /// Measured duration on the shadow.
    pub duration_ms: u64,
    /// Estimated blocking time on the largest shard of this shape, when sizes are known.
    pub estimated_lock_ms: Option<u64>,
    /// The error the statement raised, if any (the rehearsal stops there).
    pub error: Option<StatementError>,
}

impl StatementTrace {
    /// The strongest lock this statement took, if any.
    pub fn strongest_lock(&self) -> Option<LockMode> {
        self.locks.iter().map(|l| l.mode).max()
    }
}

/// A table-level lock observed in the rehearsal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockTrace {
    /// Qualified relation name (`tenant_0001.orders`).
    pub relation: String,
    /// Lock mode.
    pub mode: LockMode,
}

/// An error raised by a statement in the rehearsal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementError {
    /// Five-character SQLSTATE (`23503`).
    pub sqlstate: String,
    /// The server's message.
    pub message: String,
}

/// The rollback script and what is known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RollbackInfo {
    /// `generated` or `user` (from `--rollback-file`).
    #[serde(default)]
    pub source: String,
    /// The rollback SQL; `null` when none could be produced.
    pub script: Option<String>,
    /// Whether the rollback was rehearsed (forward, then rollback, on the shadow).
    pub tested: bool,
    /// Steps that cannot be undone without data loss, one line each.
    pub irreversible: Vec<String>,
    /// Differences between the catalog before the migration and after forward + rollback;
    /// empty when the rollback is proven.
    #[serde(default)]
    pub mismatches: Vec<String>,
    /// One proof per schema shape (`--validate-rollback`): outcome, shards, recovery time.
    #[serde(default)]
    pub proofs: Vec<ShapeProof>,
}

impl RollbackInfo {
    /// Tested and the catalog came back exactly: on every schema shape when proofs per shape
    /// ran.
    pub fn proven(&self) -> bool {
        self.tested && self.mismatches.is_empty() && self.proofs.iter().all(ShapeProof::proven)
    }
}

/// The deploy decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SafetyGates {
    /// May ship without further approval: fleet gate GREEN, or YELLOW with `allow_yellow`.
    pub migration_approved: bool,
    /// Overall risk.
    pub risk_level: RiskLevel,
    /// Role whose approval is needed (from the [`ApprovalPolicy`]); `null` when none.
    pub approval_required: Option<String>,
    /// Longest estimated blocking time of any shard, in whole seconds (rounded up): the
    /// downtime a tenant may see.
    pub estimated_downtime_sec: u64,
    /// The rollback was rehearsed and restored the catalog exactly, on every schema shape.
    pub rollback_tested: bool,
    /// Every shard that is not green, worst first, with its reasons.
    pub shard_exceptions: Vec<ShardException>,
}

/// A shard that is not green, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardException {
    /// Shard name.
    pub shard: String,
    /// Its instance.
    pub instance: String,
    /// Its gate (YELLOW or RED).
    pub gate: Gate,
    /// `rule: message` for every yellow or red finding, worst first.
    pub reasons: Vec<String>,
}

/// The report's Ed25519 signature (see [`crate::sign`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The signer's public key: standard base64 of the 32 raw bytes.
    pub public_key: String,
    /// The signature: standard base64 of the 64 bytes.
    pub value: String,
}

/// Which role must approve a migration at each risk level.
///
/// The default policy: `LOW` → none, `MEDIUM` → `TECH_LEAD`, `HIGH` → `DATA_OWNER`,
/// `CRITICAL` → `DBA`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    /// Role for `LOW` risk.
    pub low: Option<String>,
    /// Role for `MEDIUM` risk.
    pub medium: Option<String>,
    /// Role for `HIGH` risk.
    pub high: Option<String>,
    /// Role for `CRITICAL` risk.
    pub critical: Option<String>,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        ApprovalPolicy {
            low: None,
            medium: Some("TECH_LEAD".to_owned()),
            high: Some("DATA_OWNER".to_owned()),
            critical: Some("DBA".to_owned()),
        }
    }
}

impl ApprovalPolicy {
    /// The role that must approve at `risk`, if any.
    pub fn role_for(&self, risk: RiskLevel) -> Option<&str> {
        match risk {
            RiskLevel::Low => self.low.as_deref(),
            RiskLevel::Medium => self.medium.as_deref(),
            RiskLevel::High => self.high.as_deref(),
            RiskLevel::Critical => self.critical.as_deref(),
        }
    }
}

/// How the safety gates are derived from the shards (see [`ValidationReport::finalize`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatePolicy {
    /// Roles per risk level.
    pub approval: ApprovalPolicy,
    /// `--allow-yellow`: a YELLOW fleet counts as approved.
    pub allow_yellow: bool,
    /// A YELLOW fleet is `HIGH` risk from this many yellow shards on (default 10).
    pub high_risk_yellow_shards: usize,
    /// A YELLOW fleet is `HIGH` risk when a shard's estimated lock reaches this (default
    /// 5000 ms).
    pub high_risk_lock_ms: u64,
}

impl Default for GatePolicy {
    fn default() -> Self {
        GatePolicy {
            approval: ApprovalPolicy::default(),
            allow_yellow: false,
            high_risk_yellow_shards: 10,
            high_risk_lock_ms: 5_000,
        }
    }
}

/// Number of shards per gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct GateCounts {
    /// Green shards.
    pub green: usize,
    /// Yellow shards.
    pub yellow: usize,
    /// Red shards.
    pub red: usize,
}

impl GateCounts {
    /// Count one gate.
    pub fn add(&mut self, gate: Gate) {
        match gate {
            Gate::Green => self.green += 1,
            Gate::Yellow => self.yellow += 1,
            Gate::Red => self.red += 1,
        }
    }

    /// All shards counted.
    pub fn total(&self) -> usize {
        self.green + self.yellow + self.red
    }

    /// Count a set of gates.
    pub fn of<'a>(gates: impl IntoIterator<Item = &'a Gate>) -> GateCounts {
        let mut c = GateCounts::default();
        for g in gates {
            c.add(*g);
        }
        c
    }
}

/// The shards of one instance, for per-instance views.
#[derive(Debug, Clone)]
pub struct InstanceView<'a> {
    /// Instance name.
    pub instance: &'a str,
    /// Its shards, in report order.
    pub shards: Vec<&'a ShardReport>,
    /// Gate counts over them.
    pub counts: GateCounts,
    /// Worst gate among them.
    pub gate: Gate,
    /// Longest estimated lock among them.
    pub max_lock_ms: u64,
}

impl ValidationReport {
    /// An empty, unsigned report for `migration` and `fleet`, stamped now (millisecond
    /// precision) with a fresh
    /// execution id and this crate's version as tool version (overwrite `tool_version` from the
    /// CLI).
    pub fn new(migration: MigrationInfo, fleet: FleetInfo) -> ValidationReport {
        ValidationReport {
            execution_id: new_execution_id(),
            timestamp: Utc::now().trunc_subsecs(3),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            migration,
            fleet,
            steps: Vec::new(),
            shards: Vec::new(),
            rehearsals: Vec::new(),
            static_findings: Vec::new(),
            rollback: RollbackInfo::default(),
            safety_gates: SafetyGates::default(),
            gate: Gate::Green,
            total_duration_ms: 0,
            signature: None,
            approval_token: None,
            output: ReportOutput::default(),
        }
    }

    /// Fill the `output` block: `report_dir/report.json`, `report_dir/rollback.sql` when the
    /// report has a rollback script (what [`crate::render::write_all`] writes there), and the
    /// approval token's compact form when one was issued. Call it after
    /// [`crate::issue_token`] and before [`crate::sign`] (the signature covers it).
    pub fn set_output(&mut self, report_dir: Option<&Path>) {
        self.output = ReportOutput {
            report_file: report_dir.map(|d| d.join("report.json").display().to_string()),
            rollback_script: report_dir
                .filter(|_| self.rollback.script.is_some())
                .map(|d| d.join("rollback.sql").display().to_string()),
            approval_token: self
                .approval_token
                .as_ref()
                .and_then(|t| t.to_compact().ok()),
        };
    }

    /// Append a step, numbering it.
    pub fn push_step(
        &mut self,
        action: impl Into<String>,
        details: impl Into<String>,
        duration_ms: u64,
    ) {
        let step = u32::try_from(self.steps.len() + 1).unwrap_or(u32::MAX);
        self.steps.push(Step {
            step,
            action: action.into(),
            details: details.into(),
            duration_ms,
        });
    }

    /// Compute the fleet gate and the safety gates from the shards and the rollback.
    ///
    /// * fleet gate: the worst shard gate (with no shards: the static findings' gate);
    /// * risk: all green → `LOW`; any red → `CRITICAL`; otherwise yellow → `HIGH` when
    ///   `policy.high_risk_yellow_shards` or more shards are yellow, a shard's estimated lock
    ///   reaches `policy.high_risk_lock_ms`, or the rollback has an irreversible step; else
    ///   `MEDIUM`;
    /// * `approval_required`: the policy's role for the risk level;
    /// * `migration_approved`: gate GREEN, or YELLOW with `policy.allow_yellow`;
    /// * `estimated_downtime_sec`: the longest shard lock, rounded up to whole seconds;
    /// * `rollback_tested`: [`RollbackInfo::proven`];
    /// * `shard_exceptions`: every non-green shard, red first, with `rule: message` reasons.
    ///
    /// It also fills `fleet.instances` and `fleet.shards` when they are zero. Shard gates are
    /// not changed.
    pub fn finalize(&mut self, policy: &GatePolicy) {
        let counts = self.counts();
        self.gate = if self.shards.is_empty() {
            Gate::from_findings(&self.static_findings)
        } else {
            self.shards
                .iter()
                .map(|s| s.gate)
                .max()
                .unwrap_or(Gate::Green)
        };
        let max_lock_ms = self
            .shards
            .iter()
            .map(|s| s.estimated_lock_ms)
            .max()
            .unwrap_or(0);
        let risk = match self.gate {
            Gate::Red => RiskLevel::Critical,
            Gate::Green => RiskLevel::Low,
            Gate::Yellow => {
                if counts.yellow >= policy.high_risk_yellow_shards
                    || max_lock_ms >= policy.high_risk_lock_ms
                    || !self.rollback.irreversible.is_empty()
                {
                    RiskLevel::High
                } else {
                    RiskLevel::Medium
                }
            }
        };
        let mut exceptions: Vec<ShardException> = self
            .shards
            .iter()
            .filter(|s| s.gate != Gate::Green)
            .map(|s| ShardException {
                shard: s.shard.clone(),
                instance: s.instance.clone(),
                gate: s.gate,
                reasons: reasons(&s.findings),
            })
            .collect();
        exceptions.sort_by_key(|e| std::cmp::Reverse(e.gate));
        self.safety_gates = SafetyGates {
            migration_approved: self.gate == Gate::Green
                || (self.gate == Gate::Yellow && policy.allow_yellow),
            risk_level: risk,
            approval_required: policy.approval.role_for(risk).map(str::to_owned),
            estimated_downtime_sec: max_lock_ms.div_ceil(1000),
            rollback_tested: self.rollback.proven(),
            shard_exceptions: exceptions,
        };
        if self.fleet.shards == 0 {
            self.fleet.shards = self.shards.len();
        }
        if self.fleet.instances == 0 {
            self.fleet.instances = self.instances().len();
        }
    }

    /// Shards per gate.
    pub fn counts(&self) -> GateCounts {
        GateCounts::of(self.shards.iter().map(|s| &s.gate))
    }

    /// The shards grouped by instance, instances in order of first appearance.
    pub fn instances(&self) -> Vec<InstanceView<'_>> {
        let mut order: Vec<InstanceView<'_>> = Vec::new();
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &self.shards {
            let i = *index.entry(s.instance.as_str()).or_insert_with(|| {
                order.push(InstanceView {
                    instance: s.instance.as_str(),
                    shards: Vec::new(),
                    counts: GateCounts::default(),
                    gate: Gate::Green,
                    max_lock_ms: 0,
                });
                order.len() - 1
            });
            if let Some(v) = order.get_mut(i) {
                v.shards.push(s);
                v.counts.add(s.gate);
                v.gate = v.gate.max(s.gate);
                v.max_lock_ms = v.max_lock_ms.max(s.estimated_lock_ms);
            }
        }
        order
    }

    /// The shards, worst first: by gate, then by estimated lock time (longest first), then in
    /// report order.
    pub fn worst_shards(&self) -> Vec<&ShardReport> {
        let mut v: Vec<&ShardReport> = self.shards.iter().collect();
        v.sort_by(|a, b| {
            b.gate
                .cmp(&a.gate)
                .then(b.estimated_lock_ms.cmp(&a.estimated_lock_ms))
        });
        v
    }

    /// The rehearsal of a shard's schema shape, if there was one.
    pub fn rehearsal_for(&self, shard: &ShardReport) -> Option<&Rehearsal> {
        self.rehearsals
            .iter()
            .find(|r| r.schema_fingerprint == shard.schema_fingerprint)
    }
}

/// `rule: message` for every yellow or red finding, worst first.
pub fn reasons(findings: &[Finding]) -> Vec<String> {
    let mut v: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.severity >= Severity::Yellow)
        .collect();
    v.sort_by_key(|f| std::cmp::Reverse(f.severity));
    v.into_iter()
        .map(|f| format!("{}: {}", f.rule, f.message))
        .collect()
}

/// A fresh random execution id shaped like a UUID v4 (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
pub fn new_execution_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lower-case hex sha256 of a file's bytes, streamed.
pub fn sha256_file(path: &Path) -> Result<String, ReportError> {
    let mut f = std::fs::File::open(path).map_err(|e| ReportError::io("reading", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| ReportError::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The fleet fingerprint: hex sha256 over the sorted lines `instance\tshard\tschema_fingerprint`.
///
/// It changes when a shard is added, removed, moved, or its schema shape changes, so an
/// approval token issued for one fleet state does not pass on another.
pub fn fleet_fingerprint<'a>(
    shards: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> String {
    let mut lines: Vec<String> = shards
        .into_iter()
        .map(|(i, s, f)| format!("{i}\t{s}\t{f}\n"))
        .collect();
    lines.sort();
    sha256_hex(lines.concat().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_ids_are_uuid_v4_shaped_and_fresh() {
        let a = new_execution_id();
        let b = new_execution_id();
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(
            parts[3].chars().next(),
            Some('8' | '9' | 'a' | 'b')
        ));
    }

    #[test]
    fn fleet_fingerprint_ignores_order_and_sees_changes() {
        let a = fleet_fingerprint([("db1", "t1", "x"), ("db2", "t2", "y")]);
        let b = fleet_fingerprint([("db2", "t2", "y"), ("db1", "t1", "x")]);
        assert_eq!(a, b);
        assert_ne!(
            a,
            fleet_fingerprint([("db1", "t1", "x"), ("db2", "t2", "z")])
        );
        assert_ne!(
            a,
            fleet_fingerprint([("db1", "t1", "x"), ("db1", "t2", "y")])
        );
        assert_ne!(a, fleet_fingerprint([("db1", "t1", "x")]));
    }
}

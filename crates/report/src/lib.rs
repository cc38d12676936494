//! # report
//!
//! The deployclaw validation report: the model the CLI fills, its renderings, its Ed25519
//! signature, and the approval token the deploy step checks.
//!
//! ## Model
//!
//! [`ValidationReport`] holds one run of `deployclaw validate-migration`: the migration
//! ([`MigrationInfo`]: file, sha256), the fleet ([`FleetInfo`]), the [`Step`]s, one
//! [`ShardReport`] per shard (gate, findings, estimated lock time), the [`Rehearsal`]s (the
//! per-statement lock timeline of each schema shape), the static findings, the
//! [`RollbackInfo`], and the [`SafetyGates`] (the deploy decision). Its JSON field names are
//! the CLI contract of DESIGN.md.
//!
//! ```no_run
//! # use report::*;
//! # fn main() -> Result<(), ReportError> {
//! let mut r = ValidationReport::new(
//!     MigrationInfo { file: "schema_v42.sql".into(), sha256: sha256_file("schema_v42.sql".as_ref())?, statements: 4 },
//!     FleetInfo { source: "fleet.toml".into(), instances: 0, shards: 0, fingerprint: String::new(), ..Default::default() },
//! );
//! r.push_step("parse", "4 statements", 3);
//! // r.shards.push(ShardReport { .. }); r.rehearsals.push(..); r.rollback = RollbackInfo { .. };
//! r.fleet.fingerprint = fleet_fingerprint(
//!     r.shards.iter().map(|s| (s.instance.as_str(), s.shard.as_str(), s.schema_fingerprint.as_str())),
//! );
//! r.finalize(&GatePolicy { allow_yellow: false, ..GatePolicy::default() });
//! let key = load_signing_key("deployclaw.key".as_ref())?;
//! r.approval_token = Some(issue_token(&r, &key, chrono::Utc::now(), chrono::Duration::hours(24))?);
//! sign(&mut r, &key)?;
//! render::write_all(&r, "deployclaw-report".as_ref())?;
//! # Ok(()) }
//! ```
//!
//! ## Gates and risk
//!
//! [`ValidationReport::finalize`] computes the fleet gate (the worst shard gate) and the
//! [`SafetyGates`]: risk `LOW` (all green), `MEDIUM`/`HIGH` (yellow; `HIGH` from
//! [`GatePolicy::high_risk_yellow_shards`] yellow shards, a lock of
//! [`GatePolicy::high_risk_lock_ms`], or an irreversible rollback step), `CRITICAL` (any red);
//! the approving role from the [`ApprovalPolicy`] (default `MEDIUM` → `TECH_LEAD`, `HIGH` →
//! `DATA_OWNER`, `CRITICAL` → `DBA`); `migration_approved` when GREEN, or YELLOW with
//! `allow_yellow`.
//!
//! ## Renderings ([`render`])
//!
//! JSON ([`render::json`]), Markdown for a pull-request comment ([`render::markdown`]), one
//! self-contained offline HTML file with a shard heat-map and the lock timeline
//! ([`render::html`]), SARIF 2.1.0 of the static findings ([`render::sarif`]), JUnit XML with a
//! test case per shard ([`render::junit`]), and a terminal summary ([`render::terminal`]).
//!
//! ## Signing
//!
//! [`sign`] signs the canonical JSON ([`canonical_json`]: keys sorted, no whitespace) of the
//! report without its `signature` (and without the approval token's own signature) with
//! Ed25519; [`verify`] checks a report's JSON text and detects any change of content;
//! [`verify_migration_file`] checks that a migration file is the one validated. Key files are
//! PKCS#8 / SPKI PEM as OpenSSL writes them (see [`keys`]).
//!
//! The renderings of `deployclaw lint` results (text, JSON, SARIF, GitHub annotations) live in
//! [`lint`].
//!
//! ## Approval token
//!
//! [`issue_token`] makes an [`ApprovalToken`] binding the migration sha256, the fleet
//! fingerprint, the gate, the risk level, the approval role and a validity window;
//! [`check_token`] gives its [`TokenStatus`] for the file about to be deployed and the fleet as
//! it is now.

#![warn(missing_docs)]

mod canonical;
mod error;
pub mod keys;
pub mod lint;
mod merge;
mod model;
mod partition;
pub mod render;
mod risk;
mod sign;
mod token;

pub use canonical::canonical_json;
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use error::ReportError;
pub use gates::evidence::{ProofStatus, ShapeProof};
pub use gates::{Finding, Gate, Location, Severity};
pub use keys::{
    generate_keypair, load_signing_key, load_verifying_key, parse_signing_key, parse_verifying_key,
    public_key_base64, signing_key_to_pem, verifying_key_to_pem, write_keypair,
};
pub use merge::{MergeOptions, MergePart, merge, read_part};
pub use model::{
    ApprovalPolicy, FleetInfo, GateCounts, GatePolicy, InstanceView, LockTrace, MergedPart,
    MigrationInfo, PartitionInfo, Rehearsal, ReportOutput, RollbackInfo, SafetyGates,
    ShardException, ShardReport, ShardRollback, Signature, StatementError, StatementTrace, Step,
    ValidationReport, fleet_fingerprint, new_execution_id, reasons, sha256_file, sha256_hex,
};
pub use partition::{Partition, PartitionSyntaxError};
pub use risk::RiskLevel;
pub use sign::{Verification, issue_token, sign, signing_payload, verify, verify_migration_file};
pub use token::{ApprovalToken, TokenClaims, TokenStatus, check_token};

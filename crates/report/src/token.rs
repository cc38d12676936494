//! The approval token: a small signed statement the deploy step checks before it applies a
//! migration.
//!
//! It binds the migration's sha256, the fleet fingerprint, the fleet gate, the risk level,
//! whether the migration is approved and which role must approve it, and a validity window.
//! The signature covers `deployclaw-token-v1\n` followed by the canonical JSON of the
//! [`TokenClaims`].
//!
//! In a report the token is an object `{ "claims": {...}, "signature": "<base64>" }`. For
//! passing it around (environment variable, CI artifact) it also has a compact form:
//! `dct1.<base64url(canonical claims)>.<base64url(signature)>` (no padding), see
//! [`ApprovalToken::to_compact`] / [`ApprovalToken::from_compact`].

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::VerifyingKey;
use gates::Gate;
use serde::{Deserialize, Serialize};

use crate::canonical::canonical_json;
use crate::error::ReportError;
use crate::risk::RiskLevel;

const TOKEN_DOMAIN: &[u8] = b"deployclaw-token-v1\n";
const COMPACT_PREFIX: &str = "dct1";
/// Clock skew tolerated before `issued_at`.
const SKEW: Duration = Duration::minutes(5);

/// What an approval token states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// Token format version, `1`.
    pub version: u32,
    /// The validation run that issued it.
    pub execution_id: String,
    /// sha256 (hex) of the validated migration file.
    pub migration_sha256: String,
    /// Fingerprint of the validated fleet.
    pub fleet_fingerprint: String,
    /// Fleet gate.
    pub gate: Gate,
    /// Risk level.
    pub risk_level: RiskLevel,
    /// Whether the migration may ship without further approval.
    pub migration_approved: bool,
    /// Role that must approve, if any.
    pub approval_required: Option<String>,
    /// Issue time (RFC 3339, UTC).
    pub issued_at: DateTime<Utc>,
    /// End of validity (RFC 3339, UTC).
    pub expires_at: DateTime<Utc>,
    /// The issuer's public key (standard base64), for information: check against a trusted key.
    pub public_key: String,
}

/// A signed [`TokenClaims`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalToken {
    /// The statement.
    pub claims: TokenClaims,
    /// Ed25519 signature, standard base64 of the 64 bytes.
    pub signature: String,
}

/// The outcome of [`check_token`]. Checked in this order: signature, version, migration,
/// fleet, validity window, gate, approval.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenStatus {
    /// The token is good and the migration is approved: deploy.
    Valid,
    /// The token is good, the fleet is YELLOW and not approved: deploy only with `role`'s
    /// approval.
    NeedsApproval {
        /// Role that must approve (`None` when the policy names none).
        role: Option<String>,
    },
    /// The validated fleet was RED: do not deploy.
    Red,
    /// Past `expires_at`.
    Expired {
        /// When it expired.
        expired_at: DateTime<Utc>,
    },
    /// `issued_at` is in the future (beyond 5 minutes of clock skew).
    NotYetValid {
        /// When it becomes valid.
        issued_at: DateTime<Utc>,
    },
    /// The migration file to deploy is not the one validated.
    WrongMigration {
        /// sha256 in the token.
        expected: String,
        /// sha256 of the file to deploy.
        actual: String,
    },
    /// The fleet is not the one validated (shards added, removed or changed shape).
    WrongFleet {
        /// Fingerprint in the token.
        expected: String,
        /// Fingerprint now.
        actual: String,
    },
    /// The signature does not verify with the trusted key (forged, changed, or another key).
    BadSignature,
    /// A token format version this build does not know.
    UnsupportedVersion(u32),
}

impl TokenStatus {
    /// Only [`TokenStatus::Valid`] allows deploying without a further approval.
    pub fn is_valid(&self) -> bool {
        matches!(self, TokenStatus::Valid)
    }
}

impl std::fmt::Display for TokenStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenStatus::Valid => write!(f, "valid: the migration is approved"),
            TokenStatus::NeedsApproval { role: Some(r) } => {
                write!(f, "valid, but the migration needs approval by {r}")
            }
            TokenStatus::NeedsApproval { role: None } => {
                write!(f, "valid, but the migration needs approval")
            }
            TokenStatus::Red => write!(f, "valid, but the fleet gate was RED: do not deploy"),
            TokenStatus::Expired { expired_at } => {
                write!(f, "expired at {}", expired_at.to_rfc3339())
            }
            TokenStatus::NotYetValid { issued_at } => {
                write!(f, "not valid before {}", issued_at.to_rfc3339())
            }
            TokenStatus::WrongMigration { expected, actual } => write!(
                f,
                "issued for migration sha256 {expected}, but the file to deploy has {actual}"
            ),
            TokenStatus::WrongFleet { expected, actual } => write!(
                f,
                "issued for fleet {expected}, but the fleet is now {actual}"
            ),
            TokenStatus::BadSignature => {
                write!(f, "bad signature: forged, changed, or another key")
            }
            TokenStatus::UnsupportedVersion(v) => write!(f, "unsupported token version {v}"),
        }
    }
}

/// Check `token` before deploying the migration whose file has sha256
/// `migration_sha256` to the fleet whose fingerprint is now `fleet_fingerprint`.
pub fn check_token(
    token: &ApprovalToken,
    trusted: &VerifyingKey,
    migration_sha256: &str,
    fleet_fingerprint: &str,
    now: DateTime<Utc>,
) -> TokenStatus {
    let c = &token.claims;
    let Ok(payload) = token_payload(c) else {
        return TokenStatus::BadSignature;
    };
    let Ok(sig_bytes) = STANDARD.decode(&token.signature) else {
        return TokenStatus::BadSignature;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(&sig_bytes) else {
        return TokenStatus::BadSignature;
    };
    if trusted.verify_strict(&payload, &sig).is_err() {
        return TokenStatus::BadSignature;
    }
    if c.version != 1 {
        return TokenStatus::UnsupportedVersion(c.version);
    }
    if !c.migration_sha256.eq_ignore_ascii_case(migration_sha256) {
        return TokenStatus::WrongMigration {
            expected: c.migration_sha256.clone(),
            actual: migration_sha256.to_owned(),
        };
    }
    if c.fleet_fingerprint != fleet_fingerprint {
        return TokenStatus::WrongFleet {
            expected: c.fleet_fingerprint.clone(),
            actual: fleet_fingerprint.to_owned(),
        };
    }
    if now + SKEW < c.issued_at {
        return TokenStatus::NotYetValid {
            issued_at: c.issued_at,
        };
    }
    if now >= c.expires_at {
        return TokenStatus::Expired {
            expired_at: c.expires_at,
        };
    }
    if c.gate == Gate::Red {
        return TokenStatus::Red;
    }
    if !c.migration_approved {
        return TokenStatus::NeedsApproval {
            role: c.approval_required.clone(),
        };
    }
    TokenStatus::Valid
}

impl ApprovalToken {
    /// `dct1.<base64url(canonical claims)>.<base64url(signature)>`.
    pub fn to_compact(&self) -> Result<String, ReportError> {
        let claims = serde_json::to_value(&self.claims).map_err(|source| ReportError::Json {
            what: "approval token",
            source,
        })?;
        let sig = STANDARD
            .decode(&self.signature)
            .map_err(|e| ReportError::MalformedToken {
                reason: format!("signature is not base64: {e}"),
            })?;
        Ok(format!(
            "{COMPACT_PREFIX}.{}.{}",
            URL_SAFE_NO_PAD.encode(canonical_json(&claims)),
            URL_SAFE_NO_PAD.encode(sig)
        ))
    }

    /// Parse the compact form. The signature is not checked here: use [`check_token`].
    pub fn from_compact(s: &str) -> Result<ApprovalToken, ReportError> {
        let bad = |reason: &str| ReportError::MalformedToken {
            reason: reason.to_owned(),
        };
        let mut parts = s.trim().split('.');
        let (Some(prefix), Some(claims), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(
                "expected three dot-separated parts `dct1.<claims>.<signature>`",
            ));
        };
        if prefix != COMPACT_PREFIX {
            return Err(bad("it does not start with `dct1.`"));
        }
        let claims = URL_SAFE_NO_PAD
            .decode(claims)
            .map_err(|_| bad("claims are not base64url"))?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| bad("signature is not base64url"))?;
        let claims: TokenClaims =
            serde_json::from_slice(&claims).map_err(|source| ReportError::Json {
                what: "approval token",
                source,
            })?;
        Ok(ApprovalToken {
            claims,
            signature: STANDARD.encode(sig),
        })
    }
}

/// What a token's signature covers: the domain line and the canonical JSON of its claims.
pub(crate) fn token_payload(claims: &TokenClaims) -> Result<Vec<u8>, ReportError> {
    let v = serde_json::to_value(claims).map_err(|source| ReportError::Json {
        what: "approval token",
        source,
    })?;
    let mut out = TOKEN_DOMAIN.to_vec();
    out.extend_from_slice(canonical_json(&v).as_bytes());
    Ok(out)
}

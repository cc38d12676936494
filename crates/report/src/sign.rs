//! Signing and verifying reports.
//!
//! What is signed: the bytes `deployclaw-report-v1\n` followed by the canonical JSON
//! ([`crate::canonical_json`]) of the report as serialized by this crate, with the top-level
//! `signature` member and the `approval_token.signature` member removed. Any change to any
//! other value — a finding, a gate, a shard name, the migration sha256, an added or removed
//! member — breaks the signature; changes of key order or whitespace do not.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde_json::Value;

use crate::canonical::canonical_json;
use crate::error::ReportError;
use crate::keys::public_key_base64;
use crate::model::{Signature, ValidationReport, sha256_file};
use crate::token::{ApprovalToken, TokenClaims, token_payload};

const REPORT_DOMAIN: &[u8] = b"deployclaw-report-v1\n";

/// The result of a successful [`verify`].
#[derive(Debug, Clone)]
pub struct Verification {
    /// The verified report.
    pub report: ValidationReport,
    /// The key that signed it (standard base64 of the 32 bytes).
    pub public_key: String,
    /// Whether it was checked against a trusted key the caller gave (`false`: only against
    /// the key embedded in the report, which proves integrity but not origin).
    pub key_trusted: bool,
}

impl Verification {
    /// The status of the report's approval token against the report's own migration sha256
    /// and fleet fingerprint at `now` (signature, expiry, gate, approval); `None` without a
    /// token. For `deployclaw verify REPORT`. The deploy step should call
    /// [`crate::check_token`] with the sha256 of the file it is about to apply and the fleet's
    /// current fingerprint instead.
    pub fn token_status(
        &self,
        trusted: &VerifyingKey,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<crate::TokenStatus> {
        let r = &self.report;
        r.approval_token
            .as_ref()
            .map(|t| crate::check_token(t, trusted, &r.migration.sha256, &r.fleet.fingerprint, now))
    }
}

/// Sign `report` with `key`, replacing any previous signature.
///
/// Sign last: any later change to the report (except setting `approval_token.signature`)
/// invalidates the signature. Issue the approval token ([`crate::issue_token`]) before
/// signing so its claims are covered.
pub fn sign(report: &mut ValidationReport, key: &SigningKey) -> Result<(), ReportError> {
    report.signature = None;
    let text = serde_json::to_string(report).map_err(|source| ReportError::Json {
        what: "report",
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|source| ReportError::Json {
        what: "report",
        source,
    })?;
    let payload = signing_payload(&value);
    let sig = key.sign(&payload);
    report.signature = Some(Signature {
        algorithm: "ed25519".to_owned(),
        public_key: public_key_base64(&key.verifying_key()),
        value: STANDARD.encode(sig.to_bytes()),
    });
    Ok(())
}

/// Whether some object in the JSON `text` has the same key twice (after unescaping).
/// `serde_json` keeps the last value, other readers the first: a signed report must not let
/// them read different things.
fn has_duplicate_key(text: &str) -> bool {
    use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
    struct Walk;
    impl<'de> DeserializeSeed<'de> for Walk {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(Walk)
        }
    }
    impl<'de> Visitor<'de> for Walk {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
            while a.next_element_seed(Walk)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(k) = a.next_key::<String>()? {
                if !seen.insert(k) {
                    return Err(A::Error::custom("duplicate key"));
                }
                a.next_value_seed(Walk)?;
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    Walk.deserialize(&mut de).is_err()
}

/// Verify a report's JSON text.
///
/// With `trusted` the report must be signed by that key ([`ReportError::WrongKey`]
/// otherwise); without it the key embedded in the report is used and
/// [`Verification::key_trusted`] is `false`. Any change to the report's content after
/// signing gives [`ReportError::BadSignature`], and so does a key written twice in one object
/// (which `sign` never writes).
pub fn verify(
    report_json: &str,
    trusted: Option<&VerifyingKey>,
) -> Result<Verification, ReportError> {
    let value: Value = serde_json::from_str(report_json).map_err(|source| ReportError::Json {
        what: "report",
        source,
    })?;
    if has_duplicate_key(report_json) {
        // sign() never writes a key twice; readers disagree on which value counts.
        return Err(ReportError::BadSignature);
    }
    let sig_value = match value.get("signature") {
        None | Some(Value::Null) => return Err(ReportError::Unsigned),
        Some(v) => v.clone(),
    };
    let sig: Signature = serde_json::from_value(sig_value).map_err(|source| ReportError::Json {
        what: "report signature",
        source,
    })?;
    if sig.algorithm != "ed25519" {
        return Err(ReportError::UnsupportedAlgorithm(sig.algorithm));
    }
    let embedded =
        crate::keys::parse_verifying_key(&sig.public_key, "the report's signature.public_key")?;
    let key = match trusted {
        Some(t) => {
            if t.as_bytes() != embedded.as_bytes() {
                return Err(ReportError::WrongKey {
                    expected: public_key_base64(t),
                    found: sig.public_key,
                });
            }
            *t
        }
        None => embedded,
    };
    let sig_bytes = STANDARD
        .decode(&sig.value)
        .map_err(|_| ReportError::BadSignature)?;
    let signature =
        ed25519_dalek::Signature::from_slice(&sig_bytes).map_err(|_| ReportError::BadSignature)?;
    key.verify_strict(&signing_payload(&value), &signature)
        .map_err(|_| ReportError::BadSignature)?;
    let report: ValidationReport =
        serde_json::from_value(value).map_err(|source| ReportError::Json {
            what: "report",
            source,
        })?;
    Ok(Verification {
        report,
        public_key: public_key_base64(&key),
        key_trusted: trusted.is_some(),
    })
}

/// Check that the migration file at `path` is byte-for-byte the one the report validated
/// (same sha256). Use it in the deploy step with the file about to be applied.
pub fn verify_migration_file(report: &ValidationReport, path: &Path) -> Result<(), ReportError> {
    let actual = sha256_file(path)?;
    if actual.eq_ignore_ascii_case(&report.migration.sha256) {
        Ok(())
    } else {
        Err(ReportError::MigrationMismatch {
            path: path.to_path_buf(),
            expected: report.migration.sha256.clone(),
            actual,
        })
    }
}

/// The bytes a report signature covers, from the report's JSON value.
pub fn signing_payload(report: &Value) -> Vec<u8> {
    let mut v = report.clone();
    if let Some(obj) = v.as_object_mut() {
        obj.remove("signature");
        if let Some(Value::Object(tok)) = obj.get_mut("approval_token") {
            tok.remove("signature");
        }
    }
    let mut out = REPORT_DOMAIN.to_vec();
    out.extend_from_slice(canonical_json(&v).as_bytes());
    out
}

/// Issue a token for a finalized `report`, valid from `issued_at` for `ttl`.
pub fn issue_token(
    report: &ValidationReport,
    key: &SigningKey,
    issued_at: DateTime<Utc>,
    ttl: Duration,
) -> Result<ApprovalToken, ReportError> {
    let claims = TokenClaims {
        version: 1,
        execution_id: report.execution_id.clone(),
        migration_sha256: report.migration.sha256.clone(),
        fleet_fingerprint: report.fleet.fingerprint.clone(),
        gate: report.gate,
        risk_level: report.safety_gates.risk_level,
        migration_approved: report.safety_gates.migration_approved,
        approval_required: report.safety_gates.approval_required.clone(),
        issued_at,
        expires_at: issued_at + ttl,
        public_key: public_key_base64(&key.verifying_key()),
    };
    let payload = token_payload(&claims)?;
    let signature = STANDARD.encode(key.sign(&payload).to_bytes());
    Ok(ApprovalToken { claims, signature })
}

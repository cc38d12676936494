//! Ed25519 key generation and key files.
//!
//! File formats (interoperable with OpenSSL: `openssl pkey -in deployclaw.key -pubout` prints
//! the same public key):
//!
//! * signing (private) key: PKCS#8 v1 PEM, `-----BEGIN PRIVATE KEY-----` (RFC 8410), written
//!   with mode `0600`. Also accepted when loading: one line with the 32-byte seed in standard
//!   base64 or in hex.
//! * verifying (public) key: SubjectPublicKeyInfo PEM, `-----BEGIN PUBLIC KEY-----`. Also
//!   accepted when loading: one line with the 32 raw bytes in standard base64 (the form a
//!   report's `signature.public_key` carries) or in hex.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::error::ReportError;

/// DER prefix of an RFC 8410 PKCS#8 v1 Ed25519 private key; the 32-byte seed follows.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32-byte key follows.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A fresh random signing key (from the OS random source). Its public half is
/// `key.verifying_key()`.
pub fn generate_keypair() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

/// Standard base64 of the 32 raw public-key bytes (the form in `signature.public_key`).
pub fn public_key_base64(key: &VerifyingKey) -> String {
    STANDARD.encode(key.as_bytes())
}

/// The signing key as PKCS#8 PEM.
pub fn signing_key_to_pem(key: &SigningKey) -> String {
    let mut der = PKCS8_PREFIX.to_vec();
    der.extend_from_slice(&key.to_bytes());
    pem("PRIVATE KEY", &der)
}

/// The verifying key as SubjectPublicKeyInfo PEM.
pub fn verifying_key_to_pem(key: &VerifyingKey) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    pem("PUBLIC KEY", &der)
}

/// Parse a signing key from PKCS#8 PEM, or one line of base64 or hex with the 32-byte seed.
/// `what` names the input in errors.
pub fn parse_signing_key(text: &str, what: &str) -> Result<SigningKey, ReportError> {
    let bytes = key_bytes(text, "PRIVATE KEY", &PKCS8_PREFIX, what)?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// Parse a verifying key from SubjectPublicKeyInfo PEM, or one line of base64 or hex with the
/// 32 raw bytes. `what` names the input in errors.
pub fn parse_verifying_key(text: &str, what: &str) -> Result<VerifyingKey, ReportError> {
    let bytes = key_bytes(text, "PUBLIC KEY", &SPKI_PREFIX, what)?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| ReportError::KeyFormat {
        what: what.to_owned(),
        reason: format!("not a valid Ed25519 point: {e}"),
    })
}

/// Write `key` to `signing_path` (PKCS#8 PEM, mode 0600) and its public half to `public_path`
/// (SPKI PEM). Refuses to overwrite either file.
pub fn write_keypair(
    key: &SigningKey,
    signing_path: &Path,
    public_path: &Path,
) -> Result<(), ReportError> {
    for p in [signing_path, public_path] {
        if p.exists() {
            return Err(ReportError::KeyExists {
                path: p.to_path_buf(),
            });
        }
    }
    write_new(signing_path, signing_key_to_pem(key).as_bytes(), 0o600)?;
    write_new(
        public_path,
        verifying_key_to_pem(&key.verifying_key()).as_bytes(),
        0o644,
    )
}

/// Load a signing key file (see the module doc for the formats).
pub fn load_signing_key(path: &Path) -> Result<SigningKey, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::io("reading", path, e))?;
    parse_signing_key(&text, &path.display().to_string())
}

/// Load a public key file (see the module doc for the formats).
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::io("reading", path, e))?;
    parse_verifying_key(&text, &path.display().to_string())
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ReportError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            ReportError::KeyExists {
                path: path.to_path_buf(),
            }
        } else {
            ReportError::io("creating", path, e)
        }
    })?;
    f.write_all(bytes)
        .map_err(|e| ReportError::io("writing", path, e))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn key_bytes(text: &str, label: &str, prefix: &[u8], what: &str) -> Result<[u8; 32], ReportError> {
    let err = |reason: String| ReportError::KeyFormat {
        what: what.to_owned(),
        reason,
    };
    let text = text.trim();
    let begin = format!("-----BEGIN {label}-----");
    let raw: Vec<u8> = if text.starts_with("-----BEGIN") {
        let end = format!("-----END {label}-----");
        let body = text
            .strip_prefix(begin.as_str())
            .and_then(|t| t.trim_end().strip_suffix(end.as_str()))
            .ok_or_else(|| {
                let found = text.lines().next().unwrap_or_default();
                err(format!("expected a PEM `{begin}` block, found `{found}`"))
            })?;
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD
            .decode(b64)
            .map_err(|e| err(format!("bad base64 in PEM body: {e}")))?;
        match der.strip_prefix(prefix) {
            Some(k) if k.len() == 32 => k.to_vec(),
            _ => {
                return Err(err(format!(
                    "the PEM block is not an Ed25519 key in the expected DER form \
                     ({} bytes; expected {} bytes starting with the Ed25519 OID)",
                    der.len(),
                    prefix.len() + 32
                )));
            }
        }
    } else if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(text).map_err(|e| err(format!("bad hex: {e}")))?
    } else {
        STANDARD.decode(text).map_err(|_| {
            err(format!(
                "expected a `{begin}` PEM block, or 32 bytes in base64 or hex"
            ))
        })?
    };
    <[u8; 32]>::try_from(raw.as_slice())
        .map_err(|_| err(format!("expected 32 key bytes, found {}", raw.len())))
}

//! Signing, verification, key files and the approval token.

mod common;

use std::process::Command;

use chrono::Duration;
use common::*;
use report::render;
use report::*;
use serde_json::Value;

fn signed() -> (ValidationReport, String) {
    let mut r = fixture();
    r.approval_token = Some(issue_token(&r, &key(), t0(), Duration::hours(24)).unwrap());
    sign(&mut r, &key()).unwrap();
    let json = render::json(&r).unwrap();
    (r, json)
}

fn is_bad_signature(res: Result<Verification, ReportError>) -> bool {
    matches!(res, Err(ReportError::BadSignature))
}

#[test]
fn round_trip_with_trusted_and_embedded_key() {
    let (r, json) = signed();
    let v = verify(&json, Some(&key().verifying_key())).unwrap();
    assert!(v.key_trusted);
    assert_eq!(v.report, r);
    assert_eq!(v.public_key, public_key_base64(&key().verifying_key()));
    let v = verify(&json, None).unwrap();
    assert!(!v.key_trusted);
    // Re-formatting (compact, other key order) is not a change of content.
    let value: Value = serde_json::from_str(&json).unwrap();
    let compact = serde_json::to_string(&value).unwrap();
    assert!(verify(&compact, Some(&key().verifying_key())).is_ok());
    let canon = canonical_json(&value);
    assert!(verify(&canon, Some(&key().verifying_key())).is_ok());
    // The signing format is pinned: the same report and key always give this signature.
    insta::assert_json_snapshot!("signature", r.signature);
}

#[test]
fn any_change_breaks_the_signature() {
    let (_, json) = signed();
    let pk = key().verifying_key();
    // One byte of a finding's message.
    let t = json.replacen(
        "3 rows in tenant_0003.orders",
        "4 rows in tenant_0003.orders",
        1,
    );
    assert_ne!(t, json);
    assert!(is_bad_signature(verify(&t, Some(&pk))));
    // A sample key in a finding's evidence.
    let mut v: Value = serde_json::from_str(&json).unwrap();
    v["shards"][2]["findings"][0]["evidence"]["sample_keys"][0] = 18.into();
    assert!(is_bad_signature(verify(&v.to_string(), Some(&pk))));
    // A shard gate.
    let mut v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["shards"][2]["gate"], "RED");
    v["shards"][2]["gate"] = "GREEN".into();
    assert!(is_bad_signature(verify(&v.to_string(), Some(&pk))));
    // The fleet gate and the approval.
    let mut v: Value = serde_json::from_str(&json).unwrap();
    v["safety_gates"]["migration_approved"] = true.into();
    assert!(is_bad_signature(verify(&v.to_string(), Some(&pk))));
    // One hex digit of the migration sha256.
    let mut v: Value = serde_json::from_str(&json).unwrap();
    let sha = v["migration"]["sha256"].as_str().unwrap().to_owned();
    let flipped = format!(
        "{}{}",
        if sha.starts_with('0') { '1' } else { '0' },
        &sha[1..]
    );
    v["migration"]["sha256"] = flipped.into();
    assert!(is_bad_signature(verify(&v.to_string(), Some(&pk))));
    // An added member.
    let mut v: Value = serde_json::from_str(&json).unwrap();
    v["safety_gates"]["note"] = "approved by Bob".into();
    assert!(is_bad_signature(verify(&v.to_string(), Some(&pk))));
    // A removed shard.
    let mut v: Value = serde_json::from_str(&json).unwrap();
    v["shards"].as_array_mut().unwrap().remove(2);
    assert!(is_bad_signature(verify(&v.to_string(), Some(&pk))));
    // The token's claims (covered by the report signature too).
    let mut v: Value = serde_json::from_str(&json).unwrap();
    v["approval_token"]["claims"]["gate"] = "GREEN".into();
    assert!(is_bad_signature(verify(&v.to_string(), Some(&pk))));
    // The signature itself.
    let mut v: Value = serde_json::from_str(&json).unwrap();
    let sig = v["signature"]["value"].as_str().unwrap().to_owned();
    let other = if sig.starts_with('A') { "B" } else { "A" };
    v["signature"]["value"] = format!("{other}{}", &sig[1..]).into();
    assert!(is_bad_signature(verify(&v.to_string(), Some(&pk))));
    // Flip every single byte of a finding message: each flip is detected.
    let start = json
        .find("the new foreign key orders_customer_fk would fail")
        .unwrap();
    for i in start..start + 10 {
        let mut bytes = json.clone().into_bytes();
        bytes[i] ^= 0x01;
        let t = String::from_utf8(bytes).unwrap();
        assert!(
            is_bad_signature(verify(&t, Some(&pk))),
            "flip at byte {i} not detected"
        );
    }
}

#[test]
fn wrong_key_unsigned_and_garbage() {
    let (r, json) = signed();
    match verify(&json, Some(&other_key().verifying_key())) {
        Err(ReportError::WrongKey { expected, found }) => {
            assert_eq!(expected, public_key_base64(&other_key().verifying_key()));
            assert_eq!(found, public_key_base64(&key().verifying_key()));
        }
        other => panic!("expected WrongKey, got {other:?}"),
    }
    // An attacker who changes the report and re-signs it with their own key passes only an
    // untrusted check.
    let mut forged = r.clone();
    forged.shards[2].gate = Gate::Green;
    sign(&mut forged, &other_key()).unwrap();
    let forged_json = render::json(&forged).unwrap();
    assert!(verify(&forged_json, None).is_ok());
    assert!(matches!(
        verify(&forged_json, Some(&key().verifying_key())),
        Err(ReportError::WrongKey { .. })
    ));
    // Embedding the trusted key next to the forger's signature does not help.
    let mut v: Value = serde_json::from_str(&forged_json).unwrap();
    v["signature"]["public_key"] = public_key_base64(&key().verifying_key()).into();
    assert!(is_bad_signature(verify(
        &v.to_string(),
        Some(&key().verifying_key())
    )));
    // Unsigned.
    let unsigned = render::json(&fixture()).unwrap();
    assert!(matches!(
        verify(&unsigned, None),
        Err(ReportError::Unsigned)
    ));
    // Another algorithm.
    let mut v: Value = serde_json::from_str(&json).unwrap();
    v["signature"]["algorithm"] = "rsa".into();
    assert!(
        matches!(verify(&v.to_string(), None), Err(ReportError::UnsupportedAlgorithm(a)) if a == "rsa")
    );
    // Not JSON.
    assert!(matches!(
        verify("{not json", None),
        Err(ReportError::Json { .. })
    ));
}

#[test]
fn migration_file_check() {
    let (r, _) = signed();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema_v42.sql");
    std::fs::write(&path, SQL).unwrap();
    verify_migration_file(&r, &path).unwrap();
    std::fs::write(&path, SQL.replace("legacy_code", "legacy_kode")).unwrap();
    match verify_migration_file(&r, &path) {
        Err(ReportError::MigrationMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, r.migration.sha256);
            assert_ne!(actual, expected);
        }
        other => panic!("expected MigrationMismatch, got {other:?}"),
    }
    let missing = dir.path().join("nope.sql");
    assert!(matches!(
        verify_migration_file(&r, &missing),
        Err(ReportError::Io { .. })
    ));
}

#[test]
fn key_files_round_trip_and_refuse_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let sk_path = dir.path().join("deployclaw.key");
    let pk_path = dir.path().join("deployclaw.pub");
    let k = generate_keypair();
    write_keypair(&k, &sk_path, &pk_path).unwrap();
    let text = std::fs::read_to_string(&sk_path).unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(
        std::fs::read_to_string(&pk_path)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----\n")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sk_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let sk = load_signing_key(&sk_path).unwrap();
    let pk = load_verifying_key(&pk_path).unwrap();
    assert_eq!(sk.to_bytes(), k.to_bytes());
    assert_eq!(pk, k.verifying_key());
    let mut r = fixture();
    sign(&mut r, &sk).unwrap();
    assert!(verify(&render::json(&r).unwrap(), Some(&pk)).is_ok());
    assert!(matches!(
        write_keypair(&generate_keypair(), &sk_path, &dir.path().join("other.pub")),
        Err(ReportError::KeyExists { .. })
    ));
    // The key file was not touched.
    assert_eq!(std::fs::read_to_string(&sk_path).unwrap(), text);
}

#[test]
fn other_key_encodings() {
    let k = key();
    let b64 = base64_seed(&k);
    assert_eq!(
        parse_signing_key(&b64, "seed").unwrap().to_bytes(),
        k.to_bytes()
    );
    let hex_seed: String = k.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        parse_signing_key(&hex_seed, "seed").unwrap().to_bytes(),
        k.to_bytes()
    );
    // The report's signature.public_key form.
    let pk_b64 = public_key_base64(&k.verifying_key());
    assert_eq!(
        parse_verifying_key(&pk_b64, "pk").unwrap(),
        k.verifying_key()
    );
    // Errors name the input and say what was expected.
    let e = parse_signing_key("hello", "my.key")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("my.key") && e.contains("BEGIN PRIVATE KEY"),
        "{e}"
    );
    let e = parse_verifying_key(&signing_key_to_pem(&k), "k.pub")
        .unwrap_err()
        .to_string();
    assert!(e.contains("k.pub") && e.contains("BEGIN PUBLIC KEY"), "{e}");
    let e = parse_signing_key("AAAA", "short.key")
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected 32 key bytes, found 3"), "{e}");
}

fn base64_seed(k: &SigningKey) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(k.to_bytes())
}

fn openssl() -> Command {
    // OpenSSL is part of the Debian base system; a missing one is a broken machine, not a skip.
    Command::new("openssl")
}

#[test]
fn key_files_interoperate_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let sk_path = dir.path().join("k.key");
    let pk_path = dir.path().join("k.pub");
    write_keypair(&key(), &sk_path, &pk_path).unwrap();
    // OpenSSL reads our private key and derives the same public key file.
    let out = openssl()
        .args(["pkey", "-in"])
        .arg(&sk_path)
        .arg("-pubout")
        .output()
        .expect("openssl runs (apt-get install -y openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(&pk_path).unwrap()
    );
    // We read a key OpenSSL generated.
    let gen_path = dir.path().join("openssl.key");
    let st = openssl()
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&gen_path)
        .status()
        .unwrap();
    assert!(st.success());
    let k = load_signing_key(&gen_path).unwrap();
    let out = openssl()
        .args(["pkey", "-in"])
        .arg(&gen_path)
        .arg("-pubout")
        .output()
        .unwrap();
    let pk = parse_verifying_key(&String::from_utf8(out.stdout).unwrap(), "openssl pub").unwrap();
    assert_eq!(pk, k.verifying_key());
}

fn yellow_report(allow_yellow: bool) -> ValidationReport {
    let mut r = fixture_with(|shards| {
        for s in shards.iter_mut() {
            s.findings.retain(|f| f.severity != Severity::Red);
            s.gate = Gate::from_findings(&s.findings);
        }
    });
    r.finalize(&GatePolicy {
        allow_yellow,
        ..GatePolicy::default()
    });
    r
}

#[test]
fn token_status() {
    let pk = key().verifying_key();
    let hour = Duration::hours(1);
    // Approved yellow fleet.
    let r = yellow_report(true);
    let sha = r.migration.sha256.clone();
    let fleet = r.fleet.fingerprint.clone();
    let tok = issue_token(&r, &key(), t0(), Duration::hours(24)).unwrap();
    assert_eq!(tok.claims.approval_required.as_deref(), Some("DATA_OWNER"));
    assert_eq!(
        check_token(&tok, &pk, &sha, &fleet, t0() + hour),
        TokenStatus::Valid
    );
    // Expiry, and the 5-minute clock skew before issue.
    assert_eq!(
        check_token(&tok, &pk, &sha, &fleet, t0() + Duration::hours(24)),
        TokenStatus::Expired {
            expired_at: t0() + Duration::hours(24)
        }
    );
    assert_eq!(
        check_token(&tok, &pk, &sha, &fleet, t0() - Duration::minutes(4)),
        TokenStatus::Valid
    );
    assert!(matches!(
        check_token(&tok, &pk, &sha, &fleet, t0() - hour),
        TokenStatus::NotYetValid { .. }
    ));
    // Another migration file.
    let other_sha = sha256_hex(b"ALTER TABLE orders DROP COLUMN total;");
    assert_eq!(
        check_token(&tok, &pk, &other_sha, &fleet, t0() + hour),
        TokenStatus::WrongMigration {
            expected: sha.clone(),
            actual: other_sha
        }
    );
    // Another fleet (a shard was added since validation).
    let grown = fixture_with(|s| {
        let mut extra = s[0].clone();
        extra.shard = "tenant_0013".into();
        s.push(extra);
    });
    assert!(matches!(
        check_token(&tok, &pk, &sha, &grown.fleet.fingerprint, t0() + hour),
        TokenStatus::WrongFleet { .. }
    ));
    // Another key; changed claims.
    assert_eq!(
        check_token(
            &tok,
            &other_key().verifying_key(),
            &sha,
            &fleet,
            t0() + hour
        ),
        TokenStatus::BadSignature
    );
    let mut changed = tok.clone();
    changed.claims.expires_at = t0() + Duration::days(365);
    assert_eq!(
        check_token(&changed, &pk, &sha, &fleet, t0() + hour),
        TokenStatus::BadSignature
    );
    // Not approved (yellow without --allow-yellow): needs the role.
    let r = yellow_report(false);
    let tok = issue_token(&r, &key(), t0(), Duration::hours(24)).unwrap();
    assert_eq!(
        check_token(&tok, &pk, &sha, &fleet, t0() + hour),
        TokenStatus::NeedsApproval {
            role: Some("DATA_OWNER".into())
        }
    );
    // Red.
    let r = fixture();
    let tok = issue_token(&r, &key(), t0(), Duration::hours(24)).unwrap();
    let status = check_token(&tok, &pk, &sha, &r.fleet.fingerprint, t0() + hour);
    assert_eq!(status, TokenStatus::Red);
    assert!(!status.is_valid());
    assert_eq!(
        status.to_string(),
        "valid, but the fleet gate was RED: do not deploy"
    );
}

#[test]
fn compact_token_round_trip() {
    let r = yellow_report(true);
    let tok = issue_token(&r, &key(), t0(), Duration::hours(24)).unwrap();
    let compact = tok.to_compact().unwrap();
    assert!(compact.starts_with("dct1."));
    assert_eq!(compact.matches('.').count(), 2);
    let back = ApprovalToken::from_compact(&compact).unwrap();
    assert_eq!(back, tok);
    assert_eq!(
        check_token(
            &back,
            &key().verifying_key(),
            &r.migration.sha256,
            &r.fleet.fingerprint,
            t0()
        ),
        TokenStatus::Valid
    );
    for bad in ["", "dct1.abc", "dct2.a.b", "dct1.!!.AA", "dct1.e30.AA"] {
        assert!(
            ApprovalToken::from_compact(bad).is_err(),
            "{bad:?} accepted"
        );
    }
}

#[test]
fn token_inside_a_signed_report() {
    let (_, json) = signed();
    let v = verify(&json, Some(&key().verifying_key())).unwrap();
    let tok = v.report.approval_token.clone().unwrap();
    assert_eq!(
        check_token(
            &tok,
            &key().verifying_key(),
            &v.report.migration.sha256,
            &v.report.fleet.fingerprint,
            t0()
        ),
        TokenStatus::Red
    );
    assert_eq!(
        v.token_status(&key().verifying_key(), t0()),
        Some(TokenStatus::Red)
    );
    assert_eq!(
        v.token_status(&key().verifying_key(), t0() + Duration::days(2)),
        Some(TokenStatus::Expired {
            expired_at: t0() + Duration::hours(24)
        })
    );
    // The token's own signature is outside the report signature but checked by check_token.
    let mut val: Value = serde_json::from_str(&json).unwrap();
    val["approval_token"]["signature"] = val["signature"]["value"].clone();
    let v = verify(&val.to_string(), Some(&key().verifying_key())).unwrap();
    let tok = v.report.approval_token.unwrap();
    assert_eq!(
        check_token(
            &tok,
            &key().verifying_key(),
            &v.report.migration.sha256,
            &v.report.fleet.fingerprint,
            t0()
        ),
        TokenStatus::BadSignature
    );
}

/// A key written twice: `serde_json` keeps the last value, other JSON readers keep the first,
/// so a signed RED report with `"gate": "GREEN"` slipped in front would read GREEN to them
/// while the signature still checks. sign() never writes a key twice: not authentic.
#[test]
fn a_key_written_twice_is_not_authentic() {
    let (_, json) = signed();
    let pk = key().verifying_key();
    assert!(verify(&json, Some(&pk)).is_ok());
    let front = format!("{{\"gate\": \"GREEN\",{}", &json.trim_start()[1..]);
    assert!(is_bad_signature(verify(&front, Some(&pk))), "top level");
    // Nested, and spelled with an escape.
    let nested = json.replacen(
        "\"signature\": {",
        "\"signature\": {\"\\u0061lgorithm\": \"x\", ",
        1,
    );
    assert_ne!(nested, json);
    assert!(is_bad_signature(verify(&nested, Some(&pk))), "nested");
}

//! The report's `output` block (issue 14): where the report and the rollback script were
//! written, and the approval token (null when unsigned).

mod common;

use chrono::Duration;
use common::*;
use report::render;
use report::*;
use serde_json::Value;

/// Unsigned: the paths of `report.json` and of `rollback.sql` written next to it, token null;
/// the files are there and `rollback.sql` holds the report's script.
#[test]
fn output_names_the_report_and_the_rollback_script_written_next_to_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = fixture();
    r.set_output(Some(dir.path()));
    let written = render::write_all(&r, dir.path()).expect("write");
    let json: Value = serde_json::from_str(&render::json(&r).expect("json")).expect("parse");
    let out = &json["output"];
    let report_file = out["report_file"].as_str().expect("report_file");
    let rollback_script = out["rollback_script"].as_str().expect("rollback_script");
    assert_eq!(
        report_file,
        dir.path().join("report.json").display().to_string()
    );
    assert_eq!(
        rollback_script,
        dir.path().join("rollback.sql").display().to_string()
    );
    assert!(out["approval_token"].is_null());
    assert!(
        written
            .iter()
            .any(|p| p.display().to_string() == report_file)
    );
    assert_eq!(
        std::fs::read_to_string(rollback_script).expect("rollback.sql"),
        r.rollback.script.clone().expect("script")
    );
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(report_file).expect("report.json"))
            .expect("parse");
    assert_eq!(on_disk["output"], *out);
}

/// No report directory: both paths null; no script: no rollback path.
#[test]
fn output_is_null_without_a_directory_or_a_script() {
    let mut r = fixture();
    r.set_output(None);
    assert_eq!(r.output, ReportOutput::default());
    let dir = tempfile::tempdir().expect("tempdir");
    r.rollback.script = None;
    r.set_output(Some(dir.path()));
    assert!(r.output.report_file.is_some());
    assert_eq!(r.output.rollback_script, None);
}

/// Signed with a token: `approval_token` is the compact token, it parses back to the
/// report's token, and the signature covers the block.
#[test]
fn output_carries_the_compact_token_under_the_signature() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = fixture();
    r.approval_token = Some(issue_token(&r, &key(), t0(), Duration::hours(24)).unwrap());
    r.set_output(Some(dir.path()));
    sign(&mut r, &key()).unwrap();
    let compact = r.output.approval_token.clone().expect("token");
    assert!(compact.starts_with("dct1."), "{compact}");
    assert_eq!(
        ApprovalToken::from_compact(&compact).expect("parses"),
        r.approval_token.clone().expect("token")
    );
    let json = render::json(&r).unwrap();
    assert!(verify(&json, Some(&key().verifying_key())).is_ok());
    let tampered = json.replace(
        &dir.path().join("report.json").display().to_string(),
        "/elsewhere/report.json",
    );
    assert!(matches!(
        verify(&tampered, Some(&key().verifying_key())),
        Err(ReportError::BadSignature)
    ));
}

/// One shape not proven: `rollback_tested` is false, and every rendering says so — the shape
/// with its reason, each shard with its outcome and recovery time.
#[test]
fn a_shape_not_proven_shows_in_every_rendering() {
    let mut r = fixture();
    let reason = "the forward migration failed on the shadow: extension ltree is missing";
    let shape_b = r.rollback.proofs[1].clone();
    r.rollback.proofs[1] = ShapeProof::not_proven(
        shape_b.schema_fingerprint.clone(),
        shape_b.representative_shard.clone(),
        reason,
    )
    .with_shards(shape_b.shards.clone())
    .with_duration_ms(70);
    for s in r
        .shards
        .iter_mut()
        .filter(|s| shape_b.shards.contains(&s.shard))
    {
        if let Some(rb) = s.rollback.as_mut() {
            rb.outcome = ProofStatus::NotProven;
            rb.recovery_time_ms = 70;
        }
    }
    r.finalize(&GatePolicy::default());
    assert!(!r.safety_gates.rollback_tested);
    assert!(r.rollback.tested, "the majority shape was tested");

    let md = render::markdown(&r, &render::MarkdownOptions::default());
    assert!(md.contains("rollback ⚠️ not proven"), "{md}");
    assert!(
        md.contains("⚠️ not proven: the forward migration failed on the shadow"),
        "{md}"
    );
    assert!(md.contains("proven on 1 of 2 schema shapes"), "{md}");
    assert!(
        md.contains(
            "tenant\\_0003 — RED, estimated lock 640 ms, rollback not proven (recovery time 70 ms)"
        ),
        "{md}"
    );

    let html = render::html(&r);
    assert!(
        html.contains("<span class=\"badge yellow\">NOT PROVEN</span>"),
        "html badge"
    );
    assert!(html.contains("extension ltree is missing"));
    assert!(html.contains(
        "<tr><td>tenant_0003</td><td>db-east-1</td><td>not proven</td><td>70 ms</td></tr>"
    ));

    let text = render::terminal(&r, &render::TerminalOptions::default());
    assert!(
        text.contains("rollback NOT PROVEN (proven on 1 of 2 schema shapes)"),
        "{text}"
    );
}

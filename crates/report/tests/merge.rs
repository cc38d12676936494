//! `report::merge` without a database: the fixture report cut into partitions by
//! `report::Partition`, each part signed, merged back; what the merge refuses.

mod common;

use common::{SHAPE_A, SHAPE_B, fixture, key, other_key};
use report::{
    GatePolicy, MergeOptions, MergePart, Partition, PartitionInfo, ProofStatus, ValidationReport,
    merge, read_part, render, sign,
};

const N: u32 = 3;

/// Partition `k` of the fixture, as `validate-migration --partition k/N` would write it.
fn part_of(whole: &ValidationReport, k: u32) -> ValidationReport {
    let mut p = whole.clone();
    p.shards.retain(|s| Partition::of(&s.shard, N) == k);
    p.fleet.shards = p.shards.len();
    p.fleet.partition = Some(PartitionInfo {
        index: k,
        count: N,
        shards_in_fleet: whole.shards.len(),
        drift_reference: Some(SHAPE_A.to_owned()),
        options_sha256: "digest".to_owned(),
        policy: GatePolicy::default(),
    });
    for proof in &mut p.rollback.proofs {
        proof.shards.retain(|s| Partition::of(s, N) == k);
    }
    p.finalize(&GatePolicy::default());
    p
}

fn signed(mut r: ValidationReport, name: &str) -> MergePart {
    sign(&mut r, &key()).unwrap();
    let text = render::json(&r).unwrap();
    read_part(name, &text, &MergeOptions::default()).unwrap()
}

fn parts() -> Vec<MergePart> {
    let whole = fixture();
    (1..=N)
        .map(|k| signed(part_of(&whole, k), &format!("p{k}.json")))
        .collect()
}

fn refusal(parts: &[MergePart]) -> String {
    merge(parts).unwrap_err().to_string()
}

#[test]
fn the_parts_merge_back_into_the_fixture() {
    let whole = fixture();
    let sizes: Vec<usize> = (1..=N).map(|k| part_of(&whole, k).shards.len()).collect();
    assert!(sizes.iter().all(|n| *n > 0), "{sizes:?}");
    let mut ps = parts();
    ps.reverse();
    let m = merge(&ps).unwrap();
    assert_eq!(m.counts(), whole.counts());
    assert_eq!(m.gate, whole.gate);
    assert_eq!(m.safety_gates.risk_level, whole.safety_gates.risk_level);
    assert_eq!(m.fleet.fingerprint, whole.fleet.fingerprint);
    assert_eq!(m.fleet.shards, whole.shards.len());
    assert!(m.fleet.partition.is_none());
    let idx: Vec<u32> = m.fleet.merged_from.iter().map(|p| p.index).collect();
    assert_eq!(idx, [1, 2, 3]);
    for s in &whole.shards {
        let got = m.shards.iter().find(|x| x.shard == s.shard).unwrap();
        assert_eq!(
            (got.gate, &got.findings),
            (s.gate, &s.findings),
            "{}",
            s.shard
        );
    }
    // One rehearsal and one proof per shape, with every part's shards.
    assert_eq!(m.rehearsals.len(), 2);
    for proof in &m.rollback.proofs {
        let mut want = whole
            .rollback
            .proofs
            .iter()
            .find(|p| p.schema_fingerprint == proof.schema_fingerprint)
            .unwrap()
            .shards
            .clone();
        want.sort();
        assert_eq!(proof.shards, want);
    }
    assert!(m.steps.iter().any(|s| s.details.starts_with("part 3/3: ")));
    assert_eq!(m.steps.last().unwrap().action, "merge");
    // The summaries say what part of the fleet a report covers.
    let md = render::markdown(&m, &Default::default());
    assert!(
        md.contains("12 shards on 3 instances (merged from 3 partial reports)"),
        "{md}"
    );
    let part = part_of(&whole, 2);
    let text = render::terminal(&part, &Default::default());
    assert!(
        text.contains("(partition 2/3 of a 12-shard fleet)"),
        "{text}"
    );
    // The merge is a report like any other: signed, it verifies.
    let mut m = m;
    sign(&mut m, &key()).unwrap();
    report::verify(&render::json(&m).unwrap(), Some(&key().verifying_key())).unwrap();
}

#[test]
fn a_proof_that_failed_in_one_part_wins() {
    let whole = fixture();
    let mut ps = parts();
    let mut p2 = part_of(&whole, 2);
    for proof in &mut p2.rollback.proofs {
        if proof.schema_fingerprint == SHAPE_A {
            proof.outcome = ProofStatus::NotProven;
            proof.reason = Some("the shadow went away".into());
        }
    }
    ps[1] = signed(p2, "p2.json");
    let m = merge(&ps).unwrap();
    let a = m
        .rollback
        .proofs
        .iter()
        .find(|p| p.schema_fingerprint == SHAPE_A)
        .unwrap();
    assert_eq!(a.outcome, ProofStatus::NotProven);
    assert!(!m.safety_gates.rollback_tested);
    let b = m
        .rollback
        .proofs
        .iter()
        .find(|p| p.schema_fingerprint == SHAPE_B);
    assert!(b.is_none_or(|b| b.outcome == whole.rollback.proofs[1].outcome));
}

#[test]
fn parts_that_do_not_belong_together_are_refused() {
    let whole = fixture();
    let tweak = |f: &dyn Fn(&mut ValidationReport)| {
        let mut ps = parts();
        let mut p = part_of(&whole, 3);
        f(&mut p);
        ps[2] = signed(p, "p3.json");
        refusal(&ps)
    };
    let e = tweak(&|p| p.fleet.partition.as_mut().unwrap().drift_reference = Some(SHAPE_B.into()));
    assert!(
        e.contains("p3.json: its drift reference is schema shape c81e728d9d4c"),
        "{e}"
    );
    let e = tweak(&|p| p.fleet.partition.as_mut().unwrap().options_sha256 = "other".into());
    assert!(
        e.contains("p3.json: the digest of the options that change verdicts"),
        "{e}"
    );
    let e = tweak(&|p| p.fleet.partition.as_mut().unwrap().shards_in_fleet = 13);
    assert!(
        e.contains("p3.json: the fleet size is 13 shards, but p1.json has 12 shards"),
        "{e}"
    );
    let e = tweak(&|p| p.tool_version = "0.2.0".into());
    assert!(e.contains("the deployclaw version is 0.2.0"), "{e}");
    let e = tweak(&|p| {
        let s = p.shards[0].clone();
        p.shards.pop();
        p.shards.push(s.clone());
        p.shards[0].shard = "tenant_9999".into();
    });
    assert!(
        e.contains("does not belong to partition 3/3") || e.contains("the parts hold"),
        "{e}"
    );
    // A shard left out of its part: the count says so.
    let e = tweak(&|p| {
        p.shards.pop();
    });
    assert!(
        e.contains("the parts hold 11 shards, but the fleet had 12"),
        "{e}"
    );
    // Another signer.
    let mut ps = parts();
    let mut p = part_of(&whole, 2);
    sign(&mut p, &other_key()).unwrap();
    ps[1] = read_part(
        "p2.json",
        &render::json(&p).unwrap(),
        &MergeOptions::default(),
    )
    .unwrap();
    assert!(refusal(&ps).contains("p2.json: the signing key is"));
    // With a trusted key, the other signer's part does not even read.
    let trusted = key().verifying_key();
    let opts = MergeOptions {
        trusted: Some(&trusted),
        allow_unsigned: false,
    };
    let e = read_part("p2.json", &render::json(&p).unwrap(), &opts).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("p2.json: the report was signed by key"),
        "{e}"
    );
    assert!(refusal(&[]).contains("no reports to merge"));
}

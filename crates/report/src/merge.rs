//! `deployclaw report merge`: partial reports (`validate-migration --partition K/N`) into one
//! fleet report.
//!
//! [`read_part`] verifies each part's signature (the [`crate::verify`] code; an unsigned part
//! only with [`MergeOptions::allow_unsigned`]). [`merge`] checks that the parts belong together
//! — one migration (sha256), one tool version, one fleet source and size, the same options that
//! change verdicts ([`crate::PartitionInfo::options_sha256`]) and the same drift reference —
//! and that they cover the fleet exactly once: no shard twice, every partition `1..=N` once,
//! every shard in the partition its id hashes to, and as many shards as the fleet had. Then it
//! builds one report: shards (sorted by instance, then shard id), rehearsals and rollback
//! proofs per schema shape, the static findings, the steps of every part (their details
//! prefixed with `part K/N:`) and a `merge` step, finalized with the parts' gate policy (fleet
//! gate = worst shard, counts, risk, exceptions). The result is unsigned: sign it with
//! [`crate::sign`].

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ReportError;
use crate::model::{FleetInfo, MergedPart, PartitionInfo, ValidationReport, fleet_fingerprint};
use crate::partition::Partition;
use crate::{VerifyingKey, verify};

/// How [`read_part`] checks a part's signature.
#[derive(Debug, Clone, Copy, Default)]
pub struct MergeOptions<'a> {
    /// The signer's public key: every part must be signed by it. Without it each part is
    /// checked against the key it carries, and all parts must carry the same key.
    pub trusted: Option<&'a VerifyingKey>,
    /// Admit unsigned parts (`--allow-unsigned`). Off by default: an unsigned part is refused.
    pub allow_unsigned: bool,
}

/// One verified partial report.
#[derive(Debug, Clone)]
pub struct MergePart {
    /// What messages call it (the file name).
    pub name: String,
    /// The report.
    pub report: ValidationReport,
    /// The key that signed it (base64); `None` for an unsigned part.
    pub signed_by: Option<String>,
}

/// Read and verify one part's JSON text (`name` is for messages).
///
/// Errors: [`ReportError::MergePart`] wrapping the verification error (changed after signing,
/// wrong key, not JSON), or [`ReportError::MergeRefused`] for an unsigned part without
/// [`MergeOptions::allow_unsigned`].
pub fn read_part(
    name: &str,
    json: &str,
    opts: &MergeOptions<'_>,
) -> Result<MergePart, ReportError> {
    let wrap = |source: ReportError| ReportError::MergePart {
        file: name.to_owned(),
        source: Box::new(source),
    };
    match verify(json, opts.trusted) {
        Ok(v) => Ok(MergePart {
            name: name.to_owned(),
            report: v.report,
            signed_by: Some(v.public_key),
        }),
        Err(ReportError::Unsigned) if opts.allow_unsigned => {
            let report = serde_json::from_str(json).map_err(|source| {
                wrap(ReportError::Json {
                    what: "report",
                    source,
                })
            })?;
            Ok(MergePart {
                name: name.to_owned(),
                report,
                signed_by: None,
            })
        }
        Err(ReportError::Unsigned) => Err(refused(format!(
            "{name}: the part is not signed; sign the partial reports (--sign-key) or pass \
             --allow-unsigned"
        ))),
        Err(e) => Err(wrap(e)),
    }
}

fn refused(reason: String) -> ReportError {
    ReportError::MergeRefused { reason }
}

/// A part with its partition record, checked to be a partial report.
struct Checked<'a> {
    part: &'a MergePart,
    info: &'a PartitionInfo,
}

/// Merge verified parts into one unsigned fleet report (see the module doc).
pub fn merge(parts: &[MergePart]) -> Result<ValidationReport, ReportError> {
    let checked = check_parts(parts)?;
    check_coverage(&checked)?;
    Ok(build(&checked))
}

/// Every part is a partial report, and they agree on what must be the same.
fn check_parts(parts: &[MergePart]) -> Result<Vec<Checked<'_>>, ReportError> {
    let mut out = Vec::new();
    for part in parts {
        let Some(info) = &part.report.fleet.partition else {
            return Err(refused(format!(
                "{}: not a partial report (it was made without --partition K/N)",
                part.name
            )));
        };
        out.push(Checked { part, info });
    }
    let Some(first) = out.first() else {
        return Err(refused("no reports to merge".to_owned()));
    };
    let (a, ai) = (&first.part, first.info);
    for c in &out[1..] {
        let (b, bi) = (&c.part, c.info);
        let differs = |what: &str, x: &dyn std::fmt::Display, y: &dyn std::fmt::Display| {
            refused(format!(
                "{}: {what} is {y}, but {} has {x}: the parts are not of one run",
                b.name, a.name
            ))
        };
        let (ra, rb) = (&a.report, &b.report);
        if ra.migration.sha256 != rb.migration.sha256 {
            return Err(differs(
                "the migration sha256",
                &ra.migration.sha256,
                &rb.migration.sha256,
            ));
        }
        if ai.count != bi.count {
            return Err(differs("the number of partitions", &ai.count, &bi.count));
        }
        if ai.shards_in_fleet != bi.shards_in_fleet {
            return Err(differs(
                "the fleet size",
                &format!("{} shards", ai.shards_in_fleet),
                &format!("{} shards", bi.shards_in_fleet),
            ));
        }
        if ra.tool_version != rb.tool_version {
            return Err(differs(
                "the deployclaw version",
                &ra.tool_version,
                &rb.tool_version,
            ));
        }
        if ra.fleet.source != rb.fleet.source {
            return Err(differs(
                "the fleet source",
                &ra.fleet.source,
                &rb.fleet.source,
            ));
        }
        if ai.options_sha256 != bi.options_sha256 || ai.policy != bi.policy {
            return Err(differs(
                "the digest of the options that change verdicts",
                &ai.options_sha256,
                &bi.options_sha256,
            ));
        }
        if b.signed_by.is_some() && a.signed_by.is_some() && b.signed_by != a.signed_by {
            return Err(differs(
                "the signing key",
                &a.signed_by.clone().unwrap_or_default(),
                &b.signed_by.clone().unwrap_or_default(),
            ));
        }
    }
    check_drift_reference(&out)?;
    Ok(out)
}

/// Every part judged drift against the same schema shape.
fn check_drift_reference(parts: &[Checked<'_>]) -> Result<(), ReportError> {
    let mut seen: Option<(&str, &str)> = None;
    for c in parts {
        let Some(r) = c.info.drift_reference.as_deref() else {
            continue;
        };
        match seen {
            Some((name, s)) if s != r => {
                return Err(refused(format!(
                    "{}: its drift reference is schema shape {}, but {name} used {}: the fleet has no \
                     clear majority shape, so slices judge drift differently; validate with fewer \
                     partitions (or without --partition)",
                    c.part.name,
                    short(r),
                    short(s)
                )));
            }
            Some(_) => {}
            None => seen = Some((&c.part.name, r)),
        }
    }
    Ok(())
}

fn short(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}

/// The parts cover the fleet exactly once.
fn check_coverage(parts: &[Checked<'_>]) -> Result<(), ReportError> {
    let mut owner: BTreeMap<&str, (&str, u32)> = BTreeMap::new();
    for c in parts {
        for s in &c.part.report.shards {
            if let Some((other, k)) = owner.insert(&s.shard, (&c.part.name, c.info.index)) {
                return Err(refused(format!(
                    "shard `{}` is in both {other} (partition {k}/{n}) and {} (partition {}/{n}): \
                     the parts overlap",
                    s.shard,
                    c.part.name,
                    c.info.index,
                    n = c.info.count
                )));
            }
        }
    }
    let count = parts[0].info.count;
    let mut by_index: BTreeMap<u32, &str> = BTreeMap::new();
    for c in parts {
        let Some(p) = c.info.partition() else {
            return Err(refused(format!(
                "{}: partition {}/{} is not valid",
                c.part.name, c.info.index, c.info.count
            )));
        };
        if let Some(other) = by_index.insert(p.index, &c.part.name) {
            return Err(refused(format!(
                "partition {p} is given twice: {other} and {}",
                c.part.name
            )));
        }
        if let Some(s) = c.part.report.shards.iter().find(|s| !p.contains(&s.shard)) {
            return Err(refused(format!(
                "{}: shard `{}` does not belong to partition {p} (its id hashes to {}/{count})",
                c.part.name,
                s.shard,
                Partition::of(&s.shard, count)
            )));
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|k| !by_index.contains_key(k))
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() {
        let have: Vec<String> = by_index
            .iter()
            .map(|(k, name)| format!("{k}/{count} from {name}"))
            .collect();
        return Err(refused(format!(
            "partition {} missing (have {})",
            missing.join(", "),
            have.join(", ")
        )));
    }
    let fleet = parts[0].info.shards_in_fleet;
    if owner.len() != fleet {
        return Err(refused(format!(
            "the parts hold {} shards, but the fleet had {fleet} when they were made: shards are \
             missing from some part",
            owner.len()
        )));
    }
    Ok(())
}

/// The merged report, finalized and unsigned.
fn build(parts: &[Checked<'_>]) -> ValidationReport {
    let mut sorted: Vec<&Checked<'_>> = parts.iter().collect();
    sorted.sort_by_key(|c| c.info.index);
    let first = &sorted[0].part.report;
    let info = sorted[0].info;
    let mut shards: Vec<_> = sorted
        .iter()
        .flat_map(|c| c.part.report.shards.iter().cloned())
        .collect();
    shards.sort_by(|a, b| (&a.instance, &a.shard).cmp(&(&b.instance, &b.shard)));
    let fleet = FleetInfo {
        source: first.fleet.source.clone(),
        instances: sorted
            .iter()
            .map(|c| c.part.report.fleet.instances)
            .max()
            .unwrap_or(0),
        shards: info.shards_in_fleet,
        fingerprint: fleet_fingerprint(shards.iter().map(|s| {
            (
                s.instance.as_str(),
                s.shard.as_str(),
                s.schema_fingerprint.as_str(),
            )
        })),
        partition: None,
        merged_from: sorted
            .iter()
            .map(|c| MergedPart {
                index: c.info.index,
                execution_id: c.part.report.execution_id.clone(),
                shards: c.part.report.shards.len(),
                signed_by: c.part.signed_by.clone(),
            })
            .collect(),
    };
    let mut r = ValidationReport::new(first.migration.clone(), fleet);
    r.tool_version = first.tool_version.clone();
    for c in &sorted {
        for s in &c.part.report.steps {
            let details = format!("part {}/{}: {}", c.info.index, c.info.count, s.details);
            r.push_step(s.action.clone(), details, s.duration_ms);
        }
    }
    r.push_step(
        "merge",
        format!(
            "{} partial reports merged: {} shards, partitions 1..{} each once",
            sorted.len(),
            shards.len(),
            info.count
        ),
        0,
    );
    r.shards = shards;
    r.static_findings = first.static_findings.clone();
    r.rehearsals = merged_rehearsals(&sorted);
    r.rollback = merged_rollback(&sorted);
    r.total_duration_ms = sorted
        .iter()
        .map(|c| c.part.report.total_duration_ms)
        .max()
        .unwrap_or(0);
    r.finalize(&info.policy);
    r
}

/// One rehearsal per schema shape; the shard counts of the parts added up.
fn merged_rehearsals(parts: &[&Checked<'_>]) -> Vec<crate::Rehearsal> {
    let mut out: Vec<crate::Rehearsal> = Vec::new();
    for c in parts {
        for reh in &c.part.report.rehearsals {
            match out
                .iter_mut()
                .find(|x| x.schema_fingerprint == reh.schema_fingerprint)
            {
                Some(x) => x.shard_count += reh.shard_count,
                None => out.push(reh.clone()),
            }
        }
    }
    out
}

/// The first part's rollback, tested only when every part's was, with every part's
/// mismatches and one proof per schema shape (its shards from every part; a proof that did not
/// hold in some part wins over one that did).
fn merged_rollback(parts: &[&Checked<'_>]) -> crate::RollbackInfo {
    let mut rb = parts[0].part.report.rollback.clone();
    rb.proofs.clear();
    let mut mismatches: BTreeSet<String> = BTreeSet::new();
    for c in parts {
        let other = &c.part.report.rollback;
        rb.tested &= other.tested;
        mismatches.extend(other.mismatches.iter().cloned());
        for p in &other.proofs {
            match rb
                .proofs
                .iter_mut()
                .find(|x| x.schema_fingerprint == p.schema_fingerprint)
            {
                Some(x) => {
                    let shards = std::mem::take(&mut x.shards);
                    if x.proven() && !p.proven() {
                        *x = p.clone();
                    }
                    x.shards = shards.into_iter().chain(p.shards.iter().cloned()).collect();
                    x.shards.sort();
                    x.shards.dedup();
                }
                None => rb.proofs.push(p.clone()),
            }
        }
    }
    rb.mismatches = mismatches.into_iter().collect();
    rb
}

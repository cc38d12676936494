//! What the Markdown and HTML renderings show of a large fleet: the green shards aggregated (a
//! count per instance and per schema shape, and their names for a collapsed list) and the
//! non-green shards worst first, the first ones in full and the rest as compact rows.

use std::collections::BTreeMap;

use gates::{Gate, Severity};

use crate::model::{ShardReport, ValidationReport};

/// The green shards of a report, aggregated.
#[derive(Debug)]
pub(crate) struct GreenSummary<'a> {
    /// Green shards in all.
    pub total: usize,
    /// Green shards per instance, instances in report order.
    pub by_instance: Vec<(&'a str, usize)>,
    /// Green shards per schema shape (fingerprint; empty when unknown), largest first.
    pub by_shape: Vec<(&'a str, usize)>,
    /// Their names, in report order.
    pub names: Vec<&'a str>,
}

/// Aggregate the green shards of `report`.
pub(crate) fn green_summary(report: &ValidationReport) -> GreenSummary<'_> {
    let mut by_instance: Vec<(&str, usize)> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_shape: BTreeMap<&str, usize> = BTreeMap::new();
    let mut names = Vec::new();
    for s in report.shards.iter().filter(|s| s.gate == Gate::Green) {
        let i = *index.entry(s.instance.as_str()).or_insert_with(|| {
            by_instance.push((s.instance.as_str(), 0));
            by_instance.len() - 1
        });
        if let Some(e) = by_instance.get_mut(i) {
            e.1 += 1;
        }
        *by_shape.entry(s.schema_fingerprint.as_str()).or_default() += 1;
        names.push(s.shard.as_str());
    }
    let mut by_shape: Vec<(&str, usize)> = by_shape.into_iter().collect();
    by_shape.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    GreenSummary {
        total: names.len(),
        by_instance,
        by_shape,
        names,
    }
}

/// The non-green shards, worst first (gate, then estimated lock, then report order).
pub(crate) fn non_green(report: &ValidationReport) -> Vec<&ShardReport> {
    report
        .worst_shards()
        .into_iter()
        .filter(|s| s.gate != Gate::Green)
        .collect()
}

/// The distinct rules of a shard's yellow and red findings, worst first: its compact row.
pub(crate) fn rules_of(shard: &ShardReport) -> Vec<&str> {
    let mut fs: Vec<_> = shard
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Yellow)
        .collect();
    fs.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut out: Vec<&str> = Vec::new();
    for f in fs {
        if !out.contains(&f.rule.as_str()) {
            out.push(&f.rule);
        }
    }
    out
}

/// What part of the fleet the report covers, for the summary line: ` (partition 2/8 of a
/// 100-shard fleet)` for a partial report, ` (merged from 8 partial reports)` for a merged one,
/// nothing for a whole fleet.
pub(crate) fn scope_note(report: &ValidationReport) -> String {
    if let Some(p) = &report.fleet.partition {
        format!(
            " (partition {}/{} of a {}-shard fleet)",
            p.index, p.count, p.shards_in_fleet
        )
    } else if !report.fleet.merged_from.is_empty() {
        format!(
            " (merged from {} partial reports)",
            report.fleet.merged_from.len()
        )
    } else {
        String::new()
    }
}

//! Markdown for a pull-request comment (GitHub flavour).

use std::fmt::Write;

use gates::{Gate, Severity};

use super::aggregate;
use super::text::{
    human_ms, human_secs, md_code, md_escape, md_fence, plural, proof_label, reason_groups,
    short_hash, shorten,
};
use crate::ProofStatus;
use crate::model::ValidationReport;

/// Options for [`markdown`].
#[derive(Debug, Clone)]
pub struct MarkdownOptions {
    /// Shards named per reason group before "and N more" (default 10).
    pub shards_per_group: usize,
    /// Shards listed in full in the collapsed per-shard section (default 100); the next ones
    /// get one compact row each.
    pub max_detail_shards: usize,
    /// Compact rows (shard, instance, gate, lock, rules) after the full ones (default 300).
    pub max_compact_shards: usize,
    /// From this many shards on (default 200), the green shards get a section of their own:
    /// a count per instance and per schema shape and a collapsed list of names.
    pub aggregate_green_from: usize,
    /// Green shard names in that collapsed list (default 200).
    pub max_green_names: usize,
    /// The per-shard section stops adding shards when the comment reaches this many bytes
    /// (default 60 000: GitHub refuses comments over 65 536 characters).
    pub max_bytes: usize,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        MarkdownOptions {
            shards_per_group: 10,
            max_detail_shards: 100,
            max_compact_shards: 300,
            aggregate_green_from: 200,
            max_green_names: 200,
            max_bytes: 60_000,
        }
    }
}

fn gate_icon(g: Gate) -> &'static str {
    match g {
        Gate::Green => "🟢",
        Gate::Yellow => "🟡",
        Gate::Red => "🔴",
    }
}

fn sev_icon(s: Severity) -> &'static str {
    match s {
        Severity::Info => "ℹ️",
        Severity::Yellow => "🟡",
        Severity::Red => "🔴",
    }
}

fn verdict(report: &ValidationReport) -> &'static str {
    match report.gate {
        Gate::Green => "safe to ship",
        Gate::Yellow if report.safety_gates.migration_approved => "approved with warnings",
        Gate::Yellow => "needs approval",
        Gate::Red => "blocked",
    }
}

/// Render the report as a pull-request comment: summary, gate table per instance, red and
/// yellow shards grouped by reason, rollback, static findings, and the findings per shard in a
/// collapsed `<details>` block. All report text is escaped.
pub fn markdown(report: &ValidationReport, opts: &MarkdownOptions) -> String {
    let mut o = String::new();
    let c = report.counts();
    let sg = &report.safety_gates;
    let _ = writeln!(
        o,
        "## {} deployclaw: {} — {}\n",
        gate_icon(report.gate),
        report.gate,
        verdict(report)
    );
    let _ = writeln!(
        o,
        "{} · sha256 `{}` · {} · {} on {}{}\n",
        md_code(&report.migration.file),
        short_hash(&report.migration.sha256),
        plural(report.migration.statements, "statement"),
        plural(report.shards.len(), "shard"),
        plural(report.instances().len(), "instance"),
        aggregate::scope_note(report),
    );
    let approval = match &sg.approval_required {
        Some(role) => format!("approval required: **{}**", md_escape(role)),
        None => "no approval required".to_owned(),
    };
    let _ = writeln!(
        o,
        "**{}:** 🟢 {} green · 🟡 {} yellow · 🔴 {} red · risk **{}** · {} · estimated downtime {} · {}\n",
        plural(c.total(), "shard"),
        c.green,
        c.yellow,
        c.red,
        sg.risk_level,
        approval,
        human_secs(sg.estimated_downtime_sec),
        rollback_short(report),
    );

    instance_table(&mut o, report);
    reason_groups_section(&mut o, report, opts);
    green_section(&mut o, report, opts);
    rollback_section(&mut o, report);
    static_findings(&mut o, report);
    shard_findings(&mut o, report, opts);
    super::live::markdown(&mut o, report, opts.max_detail_shards);
    footer(&mut o, report);
    o
}

/// The gate table by instance.
fn instance_table(o: &mut String, report: &ValidationReport) {
    let instances = report.instances();
    if !instances.is_empty() {
        o.push_str("| Instance | Gate | Shards | 🟢 | 🟡 | 🔴 | Longest lock |\n");
        o.push_str("|---|---|--:|--:|--:|--:|--:|\n");
        for i in &instances {
            let _ = writeln!(
                o,
                "| {} | {} {} | {} | {} | {} | {} | {} |",
                md_escape(i.instance),
                gate_icon(i.gate),
                i.gate,
                i.counts.total(),
                i.counts.green,
                i.counts.yellow,
                i.counts.red,
                human_ms(i.max_lock_ms)
            );
        }
        o.push('\n');
    }
}

/// The red and yellow shards, grouped by reason.
fn reason_groups_section(o: &mut String, report: &ValidationReport, opts: &MarkdownOptions) {
    let c = report.counts();
    let groups = reason_groups(report);
    for (sev, title, count) in [
        (Severity::Red, "🔴 Red shards", c.red),
        (Severity::Yellow, "🟡 Yellow shards", c.yellow),
    ] {
        let gs: Vec<_> = groups.iter().filter(|g| g.severity == sev).collect();
        if gs.is_empty() {
            continue;
        }
        let _ = writeln!(o, "### {title} ({count})\n");
        for g in gs {
            let subject = match g.subject {
                Some((line, stmt)) if !stmt.is_empty() => {
                    format!(" at line {line}: {}", md_code(&shorten(stmt, 90)))
                }
                Some((line, _)) => format!(" at line {line}"),
                None => String::new(),
            };
            let _ = writeln!(
                o,
                "- **{}**: `{}` ({}){}",
                plural(g.shards.len(), "shard"),
                g.rule,
                md_escape(g.code),
                subject
            );
            let first = g.shards.first();
            if let Some(s) = first {
                let _ = writeln!(
                    o,
                    "  - e.g. {}: {}",
                    md_code(&s.shard),
                    md_escape(&shorten(&g.example.message, 240))
                );
            }
            let names: Vec<String> = g
                .shards
                .iter()
                .take(opts.shards_per_group)
                .map(|s| format!("{} ({})", md_code(&s.shard), md_escape(&s.instance)))
                .collect();
            let more = g.shards.len().saturating_sub(opts.shards_per_group);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let _ = writeln!(o, "  - shards: {}{}", names.join(", "), more);
            if let Some(help) = &g.example.help {
                let _ = writeln!(o, "  - fix: {}", md_escape(&shorten(help, 240)));
            }
        }
        o.push('\n');
    }
}

/// The rollback: state, irreversible steps, catalog differences, script.
fn rollback_section(o: &mut String, report: &ValidationReport) {
    let rb = &report.rollback;
    o.push_str("### Rollback\n\n");
    let _ = writeln!(o, "{}\n", rollback_long(report));
    if !rb.irreversible.is_empty() {
        o.push_str("Irreversible (data cannot be restored by the rollback):\n\n");
        for i in &rb.irreversible {
            let _ = writeln!(o, "- ⚠️ {}", md_escape(i));
        }
        o.push('\n');
    }
    if !rb.mismatches.is_empty() {
        o.push_str("Catalog differences after forward + rollback:\n\n");
        for m in &rb.mismatches {
            let _ = writeln!(o, "- ❌ {}", md_escape(m));
        }
        o.push('\n');
    }
    proofs_table(o, report);
    if let Some(script) = &rb.script {
        o.push_str("<details><summary>Rollback script</summary>\n\n");
        o.push_str(&md_fence("sql", script));
        o.push_str("\n</details>\n\n");
    }
}

/// One row per schema shape proven: outcome, shards, recovery time; then the reasons and
/// differences of the shapes not proven.
fn proofs_table(o: &mut String, report: &ValidationReport) {
    let proofs = &report.rollback.proofs;
    if proofs.is_empty() {
        return;
    }
    o.push_str("Proof per schema shape (forward → rollback on the shadow):\n\n");
    o.push_str("| shape | proven on | shards | outcome | recovery time |\n|---|---|--:|---|--:|\n");
    for p in proofs {
        let icon = match p.outcome {
            ProofStatus::Proven => "✅",
            ProofStatus::Mismatch => "❌",
            _ => "⚠️",
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {icon} {} | {} |",
            md_code(short_hash(&p.schema_fingerprint)),
            md_escape(&p.representative_shard),
            p.shards.len(),
            md_escape(&shorten(&proof_label(p), 200)).replace('|', "\\|"),
            human_ms(p.duration_ms)
        );
    }
    o.push('\n');
    for p in proofs.iter().filter(|p| !p.differences.is_empty()) {
        let _ = writeln!(
            o,
            "Differences on shape {} after forward + rollback:\n",
            md_code(short_hash(&p.schema_fingerprint))
        );
        for d in &p.differences {
            let _ = writeln!(o, "- ❌ {}", md_escape(d));
        }
        o.push('\n');
    }
}

/// The static findings.
fn static_findings(o: &mut String, report: &ValidationReport) {
    if !report.static_findings.is_empty() {
        let _ = writeln!(
            o,
            "### Static findings ({})\n",
            report.static_findings.len()
        );
        o.push_str("| Line | Severity | Rule | Message |\n|--:|---|---|---|\n");
        let mut fs: Vec<_> = report.static_findings.iter().collect();
        fs.sort_by(|a, b| {
            let la = a.location.as_ref().map(|l| (l.line, l.column));
            let lb = b.location.as_ref().map(|l| (l.line, l.column));
            la.cmp(&lb).then(b.severity.cmp(&a.severity))
        });
        for f in fs {
            let line = f
                .location
                .as_ref()
                .map(|l| format!("{}:{}", l.line, l.column))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "| {} | {} {} | `{}` ({}) | {} |",
                line,
                sev_icon(f.severity),
                f.severity,
                f.rule,
                md_escape(&f.code),
                md_escape(&shorten(&f.message, 300))
            );
        }
        o.push('\n');
    }
}

/// A large fleet's green shards: a count per instance and per schema shape, and a collapsed
/// list of their names (cut at [`MarkdownOptions::max_green_names`]).
fn green_section(o: &mut String, report: &ValidationReport, opts: &MarkdownOptions) {
    if report.shards.len() < opts.aggregate_green_from.max(1) {
        return;
    }
    let g = aggregate::green_summary(report);
    if g.total == 0 {
        return;
    }
    let _ = writeln!(
        o,
        "### 🟢 Green shards ({})
",
        g.total
    );
    let per = |v: &[(&str, usize)], code: bool| {
        v.iter()
            .map(|(k, n)| {
                let k = if code {
                    md_code(if k.is_empty() {
                        "unknown"
                    } else {
                        short_hash(k)
                    })
                } else {
                    md_escape(k)
                };
                format!("{k} {n}")
            })
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let _ = writeln!(o, "- per instance: {}", per(&g.by_instance, false));
    let _ = writeln!(
        o,
        "- per schema shape: {}
",
        per(&g.by_shape, true)
    );
    let names: Vec<String> = g
        .names
        .iter()
        .take(opts.max_green_names)
        .map(|n| md_code(n))
        .collect();
    let more = g.total.saturating_sub(opts.max_green_names);
    let _ = writeln!(
        o,
        "<details><summary>Green shards ({})</summary>\n\n{}{}\n\n</details>\n",
        g.total,
        names.join(", "),
        if more > 0 {
            format!(" and {more} more (see the JSON report)")
        } else {
            String::new()
        }
    );
}

/// The findings of every shard that has any, worst first, in a collapsed block: the first
/// ones in full, the next as compact rows, within [`MarkdownOptions::max_bytes`].
fn shard_findings(o: &mut String, report: &ValidationReport, opts: &MarkdownOptions) {
    let with_findings: Vec<_> = report
        .worst_shards()
        .into_iter()
        .filter(|s| s.findings.iter().any(|f| f.severity >= Severity::Yellow))
        .collect();
    if with_findings.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "<details><summary>Findings per shard ({})</summary>\n",
        plural(with_findings.len(), "shard")
    );
    let mut shown = 0;
    for s in with_findings.iter().take(opts.max_detail_shards) {
        if o.len() > opts.max_bytes / 4 * 3 {
            break;
        }
        shard_detail(o, s);
        shown += 1;
    }
    let compact_end = (shown + opts.max_compact_shards).min(with_findings.len());
    if shown < compact_end {
        o.push_str("| Shard | Instance | Gate | Estimated lock | Rules |\n|---|---|---|--:|---|\n");
        for s in &with_findings[shown..compact_end] {
            if o.len() > opts.max_bytes.saturating_sub(2_000) {
                break;
            }
            let _ = writeln!(
                o,
                "| {} | {} | {} {} | {} | {} |",
                md_code(&s.shard),
                md_escape(&s.instance),
                gate_icon(s.gate),
                s.gate,
                human_ms(s.estimated_lock_ms),
                aggregate::rules_of(s).join(", ")
            );
            shown += 1;
        }
        o.push('\n');
    }
    let cut = with_findings.len().saturating_sub(shown);
    if cut > 0 {
        let _ = writeln!(
            o,
            "…and {cut} more {}; see the HTML or JSON report.\n",
            if cut == 1 { "shard" } else { "shards" }
        );
    }
    o.push_str("</details>\n\n");
}

/// One shard in full: gate, lock, rollback, every finding.
fn shard_detail(o: &mut String, s: &crate::model::ShardReport) {
    let rollback = s
        .rollback
        .as_ref()
        .map(|r| {
            format!(
                ", rollback {} (recovery time {})",
                r.outcome.as_str(),
                human_ms(r.recovery_time_ms)
            )
        })
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "#### {} {} / {} — {}, estimated lock {}{rollback}\n",
        gate_icon(s.gate),
        md_escape(&s.instance),
        md_escape(&s.shard),
        s.gate,
        human_ms(s.estimated_lock_ms)
    );
    let mut fs: Vec<_> = s.findings.iter().collect();
    fs.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for f in fs {
        let at = f
            .location
            .as_ref()
            .map(|l| format!(" line {}", l.line))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "- {} `{}` ({}){}: {}",
            sev_icon(f.severity),
            f.rule,
            md_escape(&f.code),
            at,
            md_escape(&shorten(&f.message, 400))
        );
    }
    o.push('\n');
}

/// The footer: version, execution id, time, duration, signature.
fn footer(o: &mut String, report: &ValidationReport) {
    let signed = match &report.signature {
        Some(s) => format!(
            "signed (ed25519 key {})",
            md_code(short_hash(&s.public_key))
        ),
        None => "unsigned".to_owned(),
    };
    let _ = writeln!(
        o,
        "<sub>deployclaw {} · execution {} · {} · took {} · {}</sub>",
        md_escape(&report.tool_version),
        md_code(&report.execution_id),
        report.timestamp.format("%Y-%m-%d %H:%M:%S UTC"),
        human_ms(report.total_duration_ms),
        signed
    );
}

fn rollback_short(report: &ValidationReport) -> String {
    let rb = &report.rollback;
    let status = if rb.script.is_none() {
        "no rollback".to_owned()
    } else if rb.proven() {
        "rollback ✅ tested".to_owned()
    } else if rb.proofs.iter().any(|p| p.outcome == ProofStatus::Mismatch)
        || (rb.proofs.is_empty() && rb.tested)
    {
        "rollback ❌ mismatch".to_owned()
    } else if !rb.proofs.is_empty() {
        "rollback ⚠️ not proven".to_owned()
    } else {
        "rollback not tested".to_owned()
    };
    if rb.irreversible.is_empty() {
        status
    } else {
        format!("{status} ({} irreversible)", rb.irreversible.len())
    }
}

fn rollback_long(report: &ValidationReport) -> String {
    let rb = &report.rollback;
    let source = match rb.source.as_str() {
        "" => String::new(),
        s => format!(" ({} rollback)", md_escape(s)),
    };
    if rb.script.is_none() {
        "❌ No rollback script.".to_owned()
    } else if rb.proven() {
        format!("✅ Tested{source}: forward + rollback on the shadow restored the catalog exactly.")
    } else if !rb.proofs.is_empty() {
        let proven = rb.proofs.iter().filter(|p| p.proven()).count();
        format!(
            "⚠️ Not proven{source}: proven on {proven} of {} (see below).",
            plural(rb.proofs.len(), "schema shape")
        )
    } else if rb.tested {
        format!(
            "❌ Tested{source}, but the catalog differs after forward + rollback ({}).",
            plural(rb.mismatches.len(), "difference")
        )
    } else {
        format!("⚠️ Not tested{source}.")
    }
}

//! A compact plain-text summary for the terminal, optionally coloured with ANSI escapes.

use std::fmt::Write;

use gates::{Gate, Severity};

use super::text::{human_ms, human_secs, plural, short_hash, shorten};
use crate::model::{GateCounts, ValidationReport};

/// Options for [`terminal`].
#[derive(Debug, Clone)]
pub struct TerminalOptions {
    /// Use ANSI colours (the CLI sets this when stdout is a terminal and `NO_COLOR` is unset).
    pub color: bool,
    /// Non-green shards listed, worst first (default 10).
    pub max_shards: usize,
    /// Width of the per-instance bar in cells (default 24).
    pub bar_width: usize,
}

impl Default for TerminalOptions {
    fn default() -> Self {
        TerminalOptions {
            color: false,
            max_shards: 10,
            bar_width: 24,
        }
    }
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
    fn gate(&self, g: Gate, s: &str) -> String {
        self.wrap(
            match g {
                Gate::Green => "32",
                Gate::Yellow => "33",
                Gate::Red => "31",
            },
            s,
        )
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
}

/// Strip control characters (ANSI escapes in shard names must not reach the terminal).
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        s.to_owned()
    } else {
        format!("{s}{}", " ".repeat(width - n))
    }
}

/// The bar: red `█`, yellow `▓`, green `░`, each non-empty class at least one cell.
fn bar(c: &GateCounts, width: usize, p: &Paint) -> String {
    let total = c.total();
    if total == 0 || width == 0 {
        return " ".repeat(width);
    }
    let parts = [
        (Gate::Red, c.red, '█'),
        (Gate::Yellow, c.yellow, '▓'),
        (Gate::Green, c.green, '░'),
    ];
    let mut cells: Vec<usize> = parts
        .iter()
        .map(|(_, n, _)| {
            if *n == 0 {
                0
            } else {
                (n * width / total).max(1)
            }
        })
        .collect();
    // Fix rounding so the cells add up to `width`, taking from / giving to the largest class.
    loop {
        let sum: usize = cells.iter().sum();
        if sum == width {
            break;
        }
        let Some(i) = (0..3).max_by_key(|&i| cells[i]) else {
            break;
        };
        if sum > width {
            if cells[i] <= 1 {
                break;
            }
            cells[i] -= 1;
        } else {
            cells[i] += 1;
        }
    }
    parts
        .iter()
        .zip(cells)
        .map(|((g, _, ch), n)| p.gate(*g, &ch.to_string().repeat(n)))
        .collect()
}

/// Render the terminal summary: verdict line, counts and safety gates, one bar per instance,
/// the worst shards first, static findings, signature.
pub fn terminal(report: &ValidationReport, opts: &TerminalOptions) -> String {
    let p = Paint(opts.color);
    let mut o = String::new();
    let c = report.counts();
    let sg = &report.safety_gates;
    let _ = writeln!(
        o,
        "{}  {}  {} (sha256 {}, {})",
        p.bold("deployclaw"),
        p.bold(&p.gate(report.gate, &report.gate.to_string())),
        clean(&report.migration.file),
        short_hash(&report.migration.sha256),
        plural(report.migration.statements, "statement")
    );
    let instances = report.instances();
    let _ = writeln!(
        o,
        "{} on {}{}: {} green, {} yellow, {} red",
        plural(c.total(), "shard"),
        plural(instances.len(), "instance"),
        super::aggregate::scope_note(report),
        p.gate(Gate::Green, &c.green.to_string()),
        p.gate(Gate::Yellow, &c.yellow.to_string()),
        p.gate(Gate::Red, &c.red.to_string()),
    );
    let approval = match &sg.approval_required {
        Some(r) => format!("approval required: {}", clean(r)),
        None => "no approval required".to_owned(),
    };
    let rb = &report.rollback;
    let rollback = if rb.script.is_none() {
        "no rollback".to_owned()
    } else if rb.proven() {
        "rollback tested".to_owned()
    } else if !rb.proofs.is_empty() {
        format!(
            "rollback NOT PROVEN (proven on {} of {})",
            rb.proofs.iter().filter(|p| p.proven()).count(),
            plural(rb.proofs.len(), "schema shape")
        )
    } else if rb.tested {
        format!(
            "rollback MISMATCH ({})",
            plural(rb.mismatches.len(), "difference")
        )
    } else {
        "rollback not tested".to_owned()
    };
    let irreversible = if rb.irreversible.is_empty() {
        String::new()
    } else {
        format!(", {} irreversible", plural(rb.irreversible.len(), "step"))
    };
    let _ = writeln!(
        o,
        "risk {} · {} · {} · est. downtime {} · {}{}",
        p.bold(sg.risk_level.as_str()),
        approval,
        if sg.migration_approved {
            "approved"
        } else {
            "not approved"
        },
        human_secs(sg.estimated_downtime_sec),
        rollback,
        irreversible
    );

    instance_lines(&mut o, report, opts);
    if let Some(line) = super::live::terminal_line(report) {
        let _ = writeln!(o, "\n{}", clean(&line));
    }
    worst_shards(&mut o, report, opts);
    static_findings(&mut o, report, opts);
    signature_line(&mut o, report);
    o
}

/// One line per instance: gate, bar, counts, longest lock.
fn instance_lines(o: &mut String, report: &ValidationReport, opts: &TerminalOptions) {
    let p = Paint(opts.color);
    let instances = report.instances();
    if !instances.is_empty() {
        o.push('\n');
        let w = instances
            .iter()
            .map(|i| clean(i.instance).chars().count())
            .max()
            .unwrap_or(0)
            .min(32);
        for i in &instances {
            let _ = writeln!(
                o,
                "  {}  {}  {}  {:>4} shards  {:>4} green {:>4} yellow {:>4} red  longest lock {}",
                pad(&shorten(&clean(i.instance), 32), w),
                p.gate(i.gate, &pad(&i.gate.to_string(), 6)),
                bar(&i.counts, opts.bar_width, &p),
                i.counts.total(),
                i.counts.green,
                i.counts.yellow,
                i.counts.red,
                human_ms(i.max_lock_ms)
            );
        }
    }
}

/// The worst non-green shards with their first reason.
fn worst_shards(o: &mut String, report: &ValidationReport, opts: &TerminalOptions) {
    let p = Paint(opts.color);
    let bad: Vec<_> = report
        .worst_shards()
        .into_iter()
        .filter(|s| s.gate != Gate::Green)
        .collect();
    if !bad.is_empty() {
        let _ = writeln!(o, "\nworst shards");
        let names: Vec<String> = bad
            .iter()
            .take(opts.max_shards)
            .map(|s| {
                // Shard ids usually start with their instance (`pg-1/app/tenant_0007`); do not
                // print it twice.
                let name = if s.shard.starts_with(&format!("{}/", s.instance)) {
                    clean(&s.shard)
                } else {
                    format!("{}/{}", clean(&s.instance), clean(&s.shard))
                };
                shard_label(&name, 40)
            })
            .collect();
        let w = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        for (s, name) in bad.iter().zip(&names) {
            let reasons = crate::model::reasons(&s.findings);
            let first = reasons.first().map(String::as_str).unwrap_or("");
            let more = if reasons.len() > 1 {
                p.dim(&format!(" (+{} more)", reasons.len() - 1))
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "  {}  {}  {}{}",
                p.gate(s.gate, &pad(&s.gate.to_string(), 6)),
                pad(name, w),
                shorten(&clean(first), 100),
                more
            );
        }
        if bad.len() > opts.max_shards {
            let _ = writeln!(
                o,
                "  {}",
                p.dim(&format!(
                    "… {} more non-green",
                    plural(bad.len() - opts.max_shards, "shard")
                ))
            );
        }
    }
}

/// The static findings, worst first.
fn static_findings(o: &mut String, report: &ValidationReport, opts: &TerminalOptions) {
    let p = Paint(opts.color);
    if !report.static_findings.is_empty() {
        let sc = |s: Severity| {
            report
                .static_findings
                .iter()
                .filter(|f| f.severity == s)
                .count()
        };
        let _ = writeln!(
            o,
            "\nstatic findings: {} red, {} yellow, {} info",
            sc(Severity::Red),
            sc(Severity::Yellow),
            sc(Severity::Info)
        );
        let mut fs: Vec<_> = report.static_findings.iter().collect();
        fs.sort_by_key(|f| {
            (
                std::cmp::Reverse(f.severity),
                f.location.as_ref().map(|l| (l.line, l.column)),
            )
        });
        let rw = fs
            .iter()
            .take(opts.max_shards)
            .map(|f| f.rule.chars().count())
            .max()
            .unwrap_or(0);
        for f in fs.iter().take(opts.max_shards) {
            let at = f
                .location
                .as_ref()
                .map(|l| format!("{}:{}", l.line, l.column))
                .unwrap_or_default();
            let sev = match f.severity {
                Severity::Red => p.gate(Gate::Red, "red   "),
                Severity::Yellow => p.gate(Gate::Yellow, "yellow"),
                Severity::Info => p.dim("info  "),
            };
            let _ = writeln!(
                o,
                "  {:>6}  {}  {}  {}",
                at,
                sev,
                pad(&f.rule, rw),
                shorten(&clean(&f.message), 100)
            );
        }
    }
}

/// The last line: signed or not.
fn signature_line(o: &mut String, report: &ValidationReport) {
    let _ = writeln!(
        o,
        "\n{}",
        match &report.signature {
            Some(s) => format!("signed (ed25519, key {})", short_hash(&s.public_key)),
            None => "unsigned".to_owned(),
        }
    );
}

/// A shard id on at most `max` characters (when it can be): leading segments (the instance,
/// then the database) give way to `…/` first; the last segment (the tenant) is never cut.
fn shard_label(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        return name.to_string();
    }
    let parts: Vec<&str> = name.split('/').collect();
    for skip in 1..parts.len() {
        let cut = format!("…/{}", parts[skip..].join("/"));
        if cut.chars().count() <= max || skip == parts.len() - 1 {
            return cut;
        }
    }
    name.to_string()
}

#[cfg(test)]
mod shard_label_tests {
    use super::shard_label;

    #[test]
    fn short_ids_are_unchanged() {
        assert_eq!(
            shard_label("pg-1/app/tenant_0007", 40),
            "pg-1/app/tenant_0007"
        );
    }

    #[test]
    fn the_instance_prefix_gives_way_first() {
        let id = "very-long-instance-name.eu-west-1.rds.amazonaws.com/app/tenant_acme_corp";
        assert_eq!(shard_label(id, 40), "…/app/tenant_acme_corp");
    }

    #[test]
    fn the_tenant_name_is_never_cut() {
        let tenant = "tenant_with_a_very_long_name_that_exceeds_forty_characters";
        let id = format!("pg-1/app/{tenant}");
        assert_eq!(shard_label(&id, 40), format!("…/{tenant}"));
        assert_eq!(shard_label(tenant, 40), tenant);
    }
}

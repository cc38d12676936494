//! JUnit XML: one test suite per instance, one test case per shard.

use std::fmt::Write;

use gates::Gate;

use super::text::{xml_escape, xml_text};
use crate::model::{ShardReport, ValidationReport};

/// How a YELLOW shard appears in JUnit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YellowAs {
    /// `<failure type="yellow">`: CI fails, like the exit code 1 without `--allow-yellow`
    /// (the default).
    #[default]
    Failure,
    /// `<skipped message="YELLOW: …">`: visible but not failing.
    Skipped,
    /// A passing test case; the findings go to `<system-out>` (like `--allow-yellow`).
    Pass,
}

impl YellowAs {
    /// The mapping that matches the CLI's exit code: `Pass` with `--allow-yellow`, else
    /// `Failure`.
    pub fn from_allow_yellow(allow_yellow: bool) -> YellowAs {
        if allow_yellow {
            YellowAs::Pass
        } else {
            YellowAs::Failure
        }
    }
}

/// Options for [`junit`].
#[derive(Debug, Clone, Default)]
pub struct JunitOptions {
    /// YELLOW shards (default: failure). RED shards are always failures, GREEN always pass.
    pub yellow: YellowAs,
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn property(o: &mut String, indent: &str, name: &str, value: &str) {
    let _ = writeln!(
        o,
        "{indent}<property name=\"{}\" value=\"{}\"/>",
        xml_escape(name),
        xml_escape(value)
    );
}

fn findings_text(s: &ShardReport) -> String {
    let mut fs: Vec<_> = s.findings.iter().collect();
    fs.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut t = String::new();
    for f in fs {
        let at = f
            .location
            .as_ref()
            .map(|l| format!(" (line {}, column {})", l.line, l.column))
            .unwrap_or_default();
        let _ = writeln!(
            t,
            "[{}] {} {}{}: {}",
            f.severity, f.rule, f.code, at, f.message
        );
        if let Some(h) = &f.help {
            let _ = writeln!(t, "    fix: {h}");
        }
    }
    t
}

/// Render JUnit XML: `<testsuites>` for the fleet, a `<testsuite>` per instance, a
/// `<testcase classname="deployclaw.<instance>" name="<shard>">` per shard with properties
/// (gate, estimated lock, findings count, schema fingerprint). RED → `<failure type="red">`;
/// YELLOW → per [`JunitOptions::yellow`]; findings in the failure body.
pub fn junit(report: &ValidationReport, opts: &JunitOptions) -> String {
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let is_failure =
        |g: Gate| g == Gate::Red || (g == Gate::Yellow && opts.yellow == YellowAs::Failure);
    let is_skipped = |g: Gate| g == Gate::Yellow && opts.yellow == YellowAs::Skipped;
    let total_fail = report.shards.iter().filter(|s| is_failure(s.gate)).count();
    let total_skip = report.shards.iter().filter(|s| is_skipped(s.gate)).count();
    let _ = writeln!(
        o,
        "<testsuites name=\"deployclaw: {}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
        xml_escape(&report.migration.file),
        report.shards.len(),
        total_fail,
        total_skip,
        secs(report.total_duration_ms),
        report.timestamp.format("%Y-%m-%dT%H:%M:%S")
    );
    for inst in report.instances() {
        let fails = inst.shards.iter().filter(|s| is_failure(s.gate)).count();
        let skips = inst.shards.iter().filter(|s| is_skipped(s.gate)).count();
        let time: u64 = inst.shards.iter().map(|s| s.duration_ms).sum();
        let _ = writeln!(
            o,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
            xml_escape(inst.instance),
            inst.shards.len(),
            fails,
            skips,
            secs(time),
            report.timestamp.format("%Y-%m-%dT%H:%M:%S")
        );
        o.push_str("    <properties>\n");
        let ind = "      ";
        property(&mut o, ind, "execution_id", &report.execution_id);
        property(&mut o, ind, "migration.file", &report.migration.file);
        property(&mut o, ind, "migration.sha256", &report.migration.sha256);
        property(&mut o, ind, "fleet.gate", &report.gate.to_string());
        property(&mut o, ind, "instance.gate", &inst.gate.to_string());
        property(
            &mut o,
            ind,
            "risk_level",
            report.safety_gates.risk_level.as_str(),
        );
        o.push_str("    </properties>\n");
        for s in &inst.shards {
            let _ = writeln!(
                o,
                "    <testcase classname=\"deployclaw.{}\" name=\"{}\" time=\"{}\">",
                xml_escape(&s.instance),
                xml_escape(&s.shard),
                secs(s.duration_ms)
            );
            o.push_str("      <properties>\n");
            let ind = "        ";
            property(&mut o, ind, "gate", &s.gate.to_string());
            property(
                &mut o,
                ind,
                "estimated_lock_ms",
                &s.estimated_lock_ms.to_string(),
            );
            property(&mut o, ind, "findings", &s.findings.len().to_string());
            if !s.schema_fingerprint.is_empty() {
                property(&mut o, ind, "schema_fingerprint", &s.schema_fingerprint);
            }
            o.push_str("      </properties>\n");
            let reasons = crate::model::reasons(&s.findings);
            let message = reasons
                .first()
                .cloned()
                .unwrap_or_else(|| s.gate.to_string());
            let extra = reasons.len().saturating_sub(1);
            let message = if extra > 0 {
                format!("{message} (+{extra} more)")
            } else {
                message
            };
            if is_failure(s.gate) {
                let _ = writeln!(
                    o,
                    "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                    super::text::gate_lower(s.gate),
                    xml_escape(&message),
                    xml_text(&findings_text(s))
                );
            } else if is_skipped(s.gate) {
                let _ = writeln!(
                    o,
                    "      <skipped message=\"{}\"/>",
                    xml_escape(&format!("YELLOW: {message}"))
                );
            }
            if !is_failure(s.gate) && !s.findings.is_empty() {
                let _ = writeln!(
                    o,
                    "      <system-out>{}</system-out>",
                    xml_text(&findings_text(s))
                );
            }
            o.push_str("    </testcase>\n");
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}

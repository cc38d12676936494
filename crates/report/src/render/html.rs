//! One self-contained HTML file: no external assets, inline CSS and JS, works offline.
//!
//! Static parts (summary, grouped exceptions, lock timeline, static findings, rollback, steps)
//! are rendered here with every report string HTML-escaped. The shard heat-map, its filters,
//! tooltip and side panel are built by the inline script from the report JSON embedded in a
//! `<script type="application/json">` element (with `<`, `>`, `&`, U+2028 and U+2029 escaped
//! as `\uXXXX`, so no report text can close the element); the script only ever assigns report
//! text through `textContent`. When it has rendered the heat-map, the script sets
//! `document.title` to `deployclaw report: ready` (or `deployclaw report: error: …` on a
//! script error) — the browser test checks this.

use std::fmt::Write;

use gates::{Gate, Severity};
use migration_parser::LockMode;

pub use super::html_large::HtmlOptions;
use super::text::{
    gate_lower, html_escape as esc, human_ms, human_secs, plural, proof_label, reason_groups,
    short_hash, shorten,
};
use crate::ProofStatus;
use crate::model::{Rehearsal, ValidationReport};

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// Render the HTML report with the default [`HtmlOptions`] (aggregated above 2,000 shards).
pub fn html(report: &ValidationReport) -> String {
    html_with(report, &HtmlOptions::default())
}

/// Render the HTML report; a fleet larger than [`HtmlOptions::full_heatmap_max`] is aggregated
/// (green shards counted, the worst non-green drawn, the rest as compact rows).
pub fn html_with(report: &ValidationReport, opts: &HtmlOptions) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>deployclaw report</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n"
    );
    header(&mut o, report);
    cards(&mut o, report);
    shards(&mut o, report);
    super::live::html(&mut o, report);
    if opts.aggregates(report) {
        super::html_large::sections(&mut o, report, opts);
    }
    lock_timeline(&mut o, report);
    static_findings(&mut o, report);
    rollback_section(&mut o, report);
    steps(&mut o, report);
    footer(&mut o, report);
    data_and_script(&mut o, report, opts);
    o
}

/// The header: gate, verdict, file, sha256, counts, time, execution id.
fn header(o: &mut String, report: &ValidationReport) {
    let sg = &report.safety_gates;
    let g = gate_lower(report.gate);
    let verdict = match report.gate {
        Gate::Green => "safe to ship",
        Gate::Yellow if sg.migration_approved => "approved with warnings",
        Gate::Yellow => "needs approval",
        Gate::Red => "blocked",
    };
    let _ = write!(
        o,
        "<header class=\"top\">\n<div class=\"brand\">deployclaw</div>\n\
         <div class=\"verdict\"><span class=\"badge big {g}\">{}</span> <span>migration {verdict}</span></div>\n\
         <div class=\"meta\"><code>{}</code> · sha256 <code title=\"{}\">{}</code> · {} · {} on {} · {} · <span title=\"execution id\">{}</span></div>\n</header>\n",
        report.gate,
        esc(&report.migration.file),
        esc(&report.migration.sha256),
        esc(short_hash(&report.migration.sha256)),
        plural(report.migration.statements, "statement"),
        plural(report.shards.len(), "shard"),
        plural(report.instances().len(), "instance"),
        report.timestamp.format("%Y-%m-%d %H:%M:%S UTC"),
        esc(&report.execution_id),
    );
    o.push_str("<div id=\"js-error\" class=\"js-error\" hidden></div>\n<main>\n");
}

/// The summary cards: gate counts, risk, approval, downtime, rollback, irreversible steps.
fn cards(o: &mut String, report: &ValidationReport) {
    let c = report.counts();
    let sg = &report.safety_gates;
    let rollback = rollback_badge(report);
    let approval = sg.approval_required.as_deref().unwrap_or("none");
    let risk_class = match sg.risk_level {
        crate::RiskLevel::Low => "green",
        crate::RiskLevel::Medium | crate::RiskLevel::High => "yellow",
        crate::RiskLevel::Critical => "red",
    };
    o.push_str("<section class=\"cards\">\n");
    for (label, value, class) in [
        ("Green", c.green.to_string(), "green"),
        ("Yellow", c.yellow.to_string(), "yellow"),
        ("Red", c.red.to_string(), "red"),
        ("Risk", sg.risk_level.to_string(), risk_class),
        (
            "Approval",
            approval.to_owned(),
            if sg.migration_approved {
                "green"
            } else {
                "yellow"
            },
        ),
        (
            "Est. downtime",
            human_secs(sg.estimated_downtime_sec),
            "plain",
        ),
        ("Rollback", rollback.0.to_owned(), rollback.1),
        (
            "Irreversible",
            report.rollback.irreversible.len().to_string(),
            if report.rollback.irreversible.is_empty() {
                "green"
            } else {
                "yellow"
            },
        ),
    ] {
        let _ = writeln!(
            o,
            "<div class=\"card {class}\"><div class=\"label\">{label}</div><div class=\"value\">{}</div></div>",
            esc(&value)
        );
    }
    o.push_str("</section>\n");
}

/// The heat-map (filled by the script), the exceptions grouped by reason beneath it and the
/// side panel beside it.
fn shards(o: &mut String, report: &ValidationReport) {
    let c = report.counts();
    let _ = write!(
        o,
        "<section id=\"shards\">\n<h2>Shards <span class=\"sub\">hover for a summary, click for findings</span></h2>\n\
         <div class=\"toolbar\" role=\"toolbar\">\
         <button class=\"filter active\" data-filter=\"all\">All <b>{}</b></button>\
         <button class=\"filter red\" data-filter=\"RED\">Red <b>{}</b></button>\
         <button class=\"filter yellow\" data-filter=\"YELLOW\">Yellow <b>{}</b></button>\
         <button class=\"filter green\" data-filter=\"GREEN\">Green <b>{}</b></button>\
         <input id=\"search\" type=\"search\" placeholder=\"Filter shards by name or rule\" aria-label=\"Filter shards\">\
         </div>\n<div class=\"heat-layout\">\n<div class=\"heat-left\">\n<div id=\"heatmap\" aria-label=\"shard heat-map\"></div>\n\
         <div class=\"legend\"><span><i class=\"sw g-GREEN\"></i>GREEN: safe to ship</span>\
         <span><i class=\"sw g-YELLOW\"></i>YELLOW: succeeds, needs approval</span>\
         <span><i class=\"sw g-RED\"></i>RED: would fail or lose data</span></div>\n\
         <noscript><p>The heat-map needs JavaScript; the sections below do not.</p></noscript>\n",
        c.total(),
        c.red,
        c.yellow,
        c.green
    );
    let groups = reason_groups(report);
    if !groups.is_empty() {
        o.push_str("<h3>Why shards are not green</h3>\n<div class=\"groups\">\n");
        for gr in &groups {
            let sev = match gr.severity {
                Severity::Red => "red",
                Severity::Yellow => "yellow",
                Severity::Info => "green",
            };
            let subject = match gr.subject {
                Some((line, st)) => format!(
                    " <span class=\"muted\">at line {line}</span> <code>{}</code>",
                    esc(&shorten(st, 90))
                ),
                None => String::new(),
            };
            let names: Vec<String> = gr
                .shards
                .iter()
                .take(12)
                .map(|s| format!("<code>{}</code>", esc(&s.shard)))
                .collect();
            let more = gr.shards.len().saturating_sub(12);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "<div class=\"group {sev}\"><div><span class=\"badge {sev}\">{}</span> <b>{}</b>: <b>{}</b> ({}){}</div>\
                 <div class=\"msg\">e.g. {}</div><div class=\"muted\">{}{}</div></div>",
                gr.severity.to_string().to_uppercase(),
                plural(gr.shards.len(), "shard"),
                esc(gr.rule),
                esc(gr.code),
                subject,
                esc(&shorten(&gr.example.message, 300)),
                names.join(", "),
                more
            );
        }
        o.push_str("</div>\n");
    }
    o.push_str(
        "</div>\n<aside id=\"panel\"><p class=\"muted\">Click a shard to see its findings.</p></aside>\n</div>\n</section>\n",
    );
}

/// The lock timeline of every rehearsal.
fn lock_timeline(o: &mut String, report: &ValidationReport) {
    if !report.rehearsals.is_empty() {
        o.push_str("<section>\n<h2>Lock timeline <span class=\"sub\">per statement of the rehearsal: bar length = estimated blocking time (measured time when no estimate), colour = strongest lock</span></h2>\n");
        o.push_str(&legend());
        for r in &report.rehearsals {
            timeline(o, r);
        }
        o.push_str("</section>\n");
    }
}

/// The static findings, by location.
fn static_findings(o: &mut String, report: &ValidationReport) {
    if !report.static_findings.is_empty() {
        let _ = write!(
            o,
            "<section>\n<h2>Static findings <span class=\"sub\">{}</span></h2>\n<table class=\"findings\">\n\
             <colgroup><col style=\"width:64px\"><col style=\"width:92px\"><col style=\"width:230px\"><col style=\"width:28%\"><col></colgroup>\n<thead><tr><th>Line</th><th>Severity</th><th>Rule</th><th>Statement</th><th>Message</th></tr></thead>\n<tbody>\n",
            plural(report.static_findings.len(), "finding")
        );
        let mut fs: Vec<_> = report.static_findings.iter().collect();
        fs.sort_by_key(|f| f.location.as_ref().map(|l| (l.line, l.column)));
        for f in fs {
            let sev = match f.severity {
                Severity::Red => "red",
                Severity::Yellow => "yellow",
                Severity::Info => "info",
            };
            let at = f
                .location
                .as_ref()
                .map(|l| format!("{}:{}", l.line, l.column))
                .unwrap_or_default();
            let help = f
                .help
                .as_ref()
                .map(|h| format!("<div class=\"help\">{}</div>", esc(h)))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "<tr><td class=\"num\">{at}</td><td><span class=\"badge {sev}\">{}</span></td><td><code>{}</code><div class=\"muted\">{}</div></td><td><code>{}</code></td><td>{}{help}</td></tr>",
                f.severity.to_string().to_uppercase(),
                esc(&f.rule),
                esc(&f.code),
                esc(&shorten(f.statement.as_deref().unwrap_or(""), 80)),
                esc(&f.message)
            );
        }
        o.push_str("</tbody>\n</table>\n</section>\n");
    }
}

/// The rollback: state, irreversible steps, catalog differences, script.
fn rollback_section(o: &mut String, report: &ValidationReport) {
    let rollback = rollback_badge(report);
    let rb = &report.rollback;
    let status = if rb.script.is_none() {
        "No rollback script.".to_owned()
    } else if rb.proven() {
        "Tested: forward + rollback on the shadow restored the catalog exactly.".to_owned()
    } else if !rb.proofs.is_empty() {
        format!(
            "Not proven: proven on {} of {}.",
            rb.proofs.iter().filter(|p| p.proven()).count(),
            plural(rb.proofs.len(), "schema shape")
        )
    } else if rb.tested {
        format!(
            "Tested, but the catalog differs after forward + rollback ({}).",
            plural(rb.mismatches.len(), "difference")
        )
    } else {
        "Not tested.".to_owned()
    };
    let source = if rb.source.is_empty() {
        String::new()
    } else {
        format!(
            " <span class=\"muted\">({} rollback)</span>",
            esc(&rb.source)
        )
    };
    let _ = write!(
        o,
        "<section>\n<h2>Rollback</h2>\n<p><span class=\"badge {}\">{}</span> {}{}</p>\n",
        rollback.1,
        esc(&rollback.0.to_uppercase()),
        esc(&status),
        source
    );
    if !rb.irreversible.is_empty() {
        o.push_str("<p><b>Irreversible</b> (data cannot be restored by the rollback):</p>\n<ul class=\"irreversible\">\n");
        for i in &rb.irreversible {
            let _ = writeln!(o, "<li>{}</li>", esc(i));
        }
        o.push_str("</ul>\n");
    }
    if !rb.mismatches.is_empty() {
        o.push_str("<p><b>Catalog differences after forward + rollback:</b></p>\n<ul class=\"mismatches\">\n");
        for m in &rb.mismatches {
            let _ = writeln!(o, "<li>{}</li>", esc(m));
        }
        o.push_str("</ul>\n");
    }
    proofs_table(o, report);
    if let Some(script) = &rb.script {
        let _ = writeln!(
            o,
            "<pre class=\"sql\"><code>{}</code></pre>",
            esc(script.trim_end())
        );
    }
    o.push_str("</section>\n");
}

/// The proof per schema shape (outcome, shards, recovery time, differences), and the
/// recovery time of every shard.
fn proofs_table(o: &mut String, report: &ValidationReport) {
    let proofs = &report.rollback.proofs;
    if proofs.is_empty() {
        return;
    }
    o.push_str("<p><b>Proof per schema shape</b> (forward → rollback on the shadow):</p>\n<table class=\"proofs\">\n<thead><tr><th>Shape</th><th>Proven on</th><th>Shards</th><th>Outcome</th><th>Recovery time</th></tr></thead>\n<tbody>\n");
    for p in proofs {
        let class = match p.outcome {
            ProofStatus::Proven => "green",
            ProofStatus::Mismatch => "red",
            _ => "yellow",
        };
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td><span class=\"badge {class}\">{}</span> {}</td><td>{}</td></tr>",
            esc(short_hash(&p.schema_fingerprint)),
            esc(&p.representative_shard),
            p.shards.len(),
            esc(&p.outcome.as_str().to_uppercase()),
            esc(&proof_label(p)),
            esc(&human_ms(p.duration_ms))
        );
        if !p.differences.is_empty() {
            o.push_str("<tr><td colspan=\"5\"><ul class=\"mismatches\">");
            for d in &p.differences {
                let _ = write!(o, "<li>{}</li>", esc(d));
            }
            o.push_str("</ul></td></tr>\n");
        }
    }
    o.push_str("</tbody>\n</table>\n<details><summary>Recovery time per shard</summary>\n<table class=\"proofs\">\n<thead><tr><th>Shard</th><th>Instance</th><th>Outcome</th><th>Recovery time</th></tr></thead>\n<tbody>\n");
    for s in &report.shards {
        let Some(r) = &s.rollback else { continue };
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.shard),
            esc(&s.instance),
            esc(r.outcome.as_str()),
            esc(&human_ms(r.recovery_time_ms))
        );
    }
    o.push_str("</tbody>\n</table>\n</details>\n");
}

/// The execution log.
fn steps(o: &mut String, report: &ValidationReport) {
    if !report.steps.is_empty() {
        o.push_str("<section>\n<h2>Steps</h2>\n<table class=\"steps\">\n<thead><tr><th>#</th><th>Action</th><th>Details</th><th>Duration</th></tr></thead>\n<tbody>\n");
        for s in &report.steps {
            let _ = writeln!(
                o,
                "<tr><td class=\"num\">{}</td><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td></tr>",
                s.step,
                esc(&s.action),
                esc(&s.details),
                human_ms(s.duration_ms)
            );
        }
        let _ = writeln!(
            o,
            "<tr class=\"total\"><td></td><td>total</td><td></td><td class=\"num\">{}</td></tr>",
            human_ms(report.total_duration_ms)
        );
        o.push_str("</tbody>\n</table>\n</section>\n");
    }
}

/// The footer: version, fleet fingerprint, signature, approval token.
fn footer(o: &mut String, report: &ValidationReport) {
    let signed = match &report.signature {
        Some(s) => format!(
            "Signed (ed25519, public key <code>{}</code>). Check with <code>deployclaw verify</code>.",
            esc(&s.public_key)
        ),
        None => "Unsigned.".to_owned(),
    };
    let token = match &report.approval_token {
        Some(t) => format!(
            " Approval token valid until {}.",
            esc(&t.claims.expires_at.format("%Y-%m-%d %H:%M UTC").to_string())
        ),
        None => String::new(),
    };
    let _ = write!(
        o,
        "<footer>deployclaw {} · fleet fingerprint <code>{}</code> · {signed}{token}</footer>\n</main>\n\
         <div id=\"tooltip\" role=\"tooltip\" hidden></div>\n",
        esc(&report.tool_version),
        esc(short_hash(&report.fleet.fingerprint)),
    );
}

/// The report JSON (script-safe) and the inline script.
fn data_and_script(o: &mut String, report: &ValidationReport, opts: &HtmlOptions) {
    let data = if opts.aggregates(report) {
        super::html_large::embedded_json(report, opts)
    } else {
        serde_json::to_string(report).unwrap_or_else(|_| "{}".to_owned())
    };
    let _ = write!(
        o,
        "<script type=\"application/json\" id=\"report-data\">{}</script>\n<script>\n{JS}</script>\n</body>\n</html>\n",
        script_safe_json(&data)
    );
}

/// Escape JSON text for embedding in a `<script>` element.
fn script_safe_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for ch in json.chars() {
        match ch {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(ch),
        }
    }
    out
}

fn lock_class(m: Option<LockMode>) -> &'static str {
    match m {
        Some(LockMode::AccessExclusive) => "lk-ae",
        Some(LockMode::Exclusive | LockMode::ShareRowExclusive | LockMode::Share) => "lk-sh",
        Some(LockMode::ShareUpdateExclusive) => "lk-sue",
        Some(LockMode::RowExclusive | LockMode::RowShare | LockMode::AccessShare) => "lk-row",
        None => "lk-none",
    }
}

fn legend() -> String {
    let items = [
        ("lk-ae", "ACCESS EXCLUSIVE: blocks reads and writes"),
        (
            "lk-sh",
            "SHARE / SHARE ROW EXCLUSIVE / EXCLUSIVE: blocks writes",
        ),
        ("lk-sue", "SHARE UPDATE EXCLUSIVE: blocks schema changes"),
        ("lk-row", "row-level modes: blocks little"),
        ("lk-err", "statement failed"),
    ];
    let mut o = String::from("<div class=\"legend\">");
    for (c, t) in items {
        let _ = write!(o, "<span><i class=\"sw {c}\"></i>{t}</span>");
    }
    o.push_str("</div>\n");
    o
}

fn timeline(o: &mut String, r: &Rehearsal) {
    let basis = |s: &crate::model::StatementTrace| s.estimated_lock_ms.unwrap_or(s.duration_ms);
    let total: u64 = r.statements.iter().map(basis).sum::<u64>().max(1);
    let _ = writeln!(
        o,
        "<div class=\"timeline\">\n<div class=\"tl-head\">Schema shape <code>{}</code> · rehearsed on a copy of <code>{}</code> · {} with this shape · {} blocking in total</div>",
        esc(short_hash(&r.schema_fingerprint)),
        esc(&r.representative_shard),
        plural(r.shard_count, "shard"),
        human_ms(r.statements.iter().map(basis).sum())
    );
    let mut start: u64 = 0;
    for s in &r.statements {
        let ms = basis(s);
        let left = start as f64 * 100.0 / total as f64;
        let width = ms as f64 * 100.0 / total as f64;
        start += ms;
        let strongest = s.strongest_lock();
        let class = if s.error.is_some() {
            "lk-err"
        } else {
            lock_class(strongest)
        };
        let mut locks: Vec<String> = Vec::new();
        for m in LockMode::ALL.iter().rev() {
            let rels: Vec<&str> = s
                .locks
                .iter()
                .filter(|l| l.mode == *m)
                .map(|l| l.relation.as_str())
                .collect();
            if !rels.is_empty() {
                locks.push(format!("{} on {}", m.sql_name(), rels.join(", ")));
            }
        }
        let mut detail = if locks.is_empty() {
            "no table locks".to_owned()
        } else {
            locks.join("; ")
        };
        if !s.rewrites.is_empty() {
            detail.push_str(&format!(" · rewrites {}", s.rewrites.join(", ")));
        }
        let timing = match s.estimated_lock_ms {
            Some(e) => format!(
                "{} est. · {} measured",
                human_ms(e),
                human_ms(s.duration_ms)
            ),
            None => format!("{} measured", human_ms(s.duration_ms)),
        };
        let error = match &s.error {
            Some(e) => format!(
                "<div class=\"tl-error\">ERROR {}: {}</div>",
                esc(&e.sqlstate),
                esc(&e.message)
            ),
            None => String::new(),
        };
        let _ = writeln!(
            o,
            "<div class=\"tl-row\"><div class=\"tl-label\"><span class=\"muted\">#{} · line {}</span> <code title=\"{}\">{}</code></div>\
             <div class=\"tl-track\"><div class=\"tl-bar {class}\" style=\"left:{left:.2}%;width:{width:.2}%\" title=\"{}\"></div></div>\
             <div class=\"tl-info\"><b>{}</b> · {}{}</div></div>",
            s.index + 1,
            s.line,
            esc(&s.sql),
            esc(&shorten(&s.sql, 70)),
            esc(&format!("{detail} · {timing}")),
            esc(&timing),
            esc(&detail),
            error
        );
    }
    o.push_str("</div>\n");
}

/// The rollback's state in a word, and the class of its badge.
fn rollback_badge(report: &ValidationReport) -> (&'static str, &'static str) {
    if report.rollback.script.is_none() {
        ("none", "red")
    } else if report.rollback.proven() {
        ("tested", "green")
    } else if report
        .rollback
        .proofs
        .iter()
        .any(|p| p.outcome == ProofStatus::Mismatch)
        || (report.rollback.proofs.is_empty() && report.rollback.tested)
    {
        ("mismatch", "red")
    } else if !report.rollback.proofs.is_empty() {
        ("not proven", "yellow")
    } else {
        ("not tested", "yellow")
    }
}

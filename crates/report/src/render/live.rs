//! The per-shard "Live workload" section of the Markdown, HTML and terminal reports: every
//! field of a shard's [`LiveEvidence`] rendered generically — lock holders, traffic on the
//! locked relations, application queries that use what the migration changes, the replica the
//! probes ran on — and every live read that could not run, with its reason. A shard whose
//! reads all ran and found nothing is not listed (its JSON still says `read`).
//!
//! Each item is one line of plain text ([`items`]); the renderings only escape and arrange
//! them, so the three formats say the same thing. Query texts arrive normalised (no literals).

use std::fmt::Write;

use gates::Severity;
use gates::evidence::{LiveEvidence, LiveStatus, LockHolder, QueryUse, ReplicaRead, TableTraffic};

use super::text::{html_escape as esc, human_ms, md_code, md_escape, plural, shorten};
use crate::model::{ShardReport, ValidationReport};

/// The rule whose findings colour the HTML heat-map's queue-risk view.
pub(crate) const QUEUE_RULE: &str = "lock-queue-risk";

/// Query characters shown per item.
const QUERY_CHARS: usize = 160;

/// One line per thing worth showing of a shard's live evidence, in field order.
pub(crate) fn items(live: &LiveEvidence) -> Vec<String> {
    let mut out = Vec::new();
    for (what, status) in [
        ("lock read", &live.locks),
        ("traffic read", &live.traffic),
        ("application-query read", &live.statements),
    ] {
        if let LiveStatus::Unavailable { reason } = status {
            out.push(format!("{what} unavailable: {reason}"));
        }
    }
    out.extend(live.lock_holders.iter().map(holder));
    out.extend(live.table_traffic.iter().map(traffic));
    out.extend(live.query_uses.iter().map(query_use));
    out.extend(live.replica.iter().map(replica));
    out
}

fn holder(h: &LockHolder) -> String {
    let app = if h.application_name.is_empty() {
        String::new()
    } else {
        format!(" ({})", h.application_name)
    };
    let state = match (h.state.as_str(), h.state_age_ms) {
        ("", _) => String::new(),
        (s, Some(a)) => format!(", {s} for {}", human_ms(a)),
        (s, None) => format!(", {s}"),
    };
    let xact = h
        .xact_age_ms
        .map(|a| format!(", transaction {} old", human_ms(a)))
        .unwrap_or_default();
    let query = h
        .query
        .as_deref()
        .map(|q| format!("; query: {}", shorten(q, QUERY_CHARS)))
        .unwrap_or_default();
    format!(
        "lock holder: pid {}{app}{state}{xact} {} {} on {} — blocks the {} of statement #{}{query}",
        h.pid,
        if h.granted { "holds" } else { "waits for" },
        h.mode,
        h.relation,
        h.blocks_mode,
        h.blocks_statement + 1,
    )
}

fn traffic(t: &TableTraffic) -> String {
    format!(
        "traffic: {} — {:.1} writes/s, {:.1} reads/s ({}, {} window)",
        t.relation,
        t.writes_per_s,
        t.reads_per_s,
        t.source,
        human_ms(t.window_ms)
    )
}

fn query_use(q: &QueryUse) -> String {
    let since = q
        .stats_since
        .as_deref()
        .map(|s| format!(" since {s}"))
        .unwrap_or_default();
    format!(
        "application query {}: {} — {} call(s){since}; uses {}, which statement #{} {}",
        q.queryid,
        shorten(&q.query, QUERY_CHARS),
        q.calls,
        q.uses,
        q.statement + 1,
        q.change
    )
}

fn replica(r: &ReplicaRead) -> String {
    let lag = r
        .lag_ms
        .map(|l| format!(", replay lag {}", human_ms(l)))
        .unwrap_or_default();
    match &r.refused {
        Some(why) => format!(
            "replica {} refused{lag}: {why}; the data probes ran on the writer",
            r.instance
        ),
        None => format!("data probes ran on replica {}{lag}", r.instance),
    }
}

/// The shards with something to show, worst gate first, with their items.
fn listed(report: &ValidationReport) -> Vec<(&ShardReport, Vec<String>)> {
    report
        .worst_shards()
        .into_iter()
        .map(|s| (s, items(&s.live)))
        .filter(|(_, i)| !i.is_empty())
        .collect()
}

/// The lock-queue risk of a shard: the worst `lock-queue-risk` finding that is not info;
/// `None` when none (whether the read ran is in `live.locks`).
pub(crate) fn queue_risk(s: &ShardReport) -> Option<Severity> {
    s.findings
        .iter()
        .filter(|f| f.rule == QUEUE_RULE && f.severity > Severity::Info)
        .map(|f| f.severity)
        .max()
}

/// The Markdown section, in a collapsed block; at most `max_shards` shards.
pub(crate) fn markdown(o: &mut String, report: &ValidationReport, max_shards: usize) {
    let listed = listed(report);
    if listed.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "<details><summary>Live workload ({})</summary>\n",
        plural(listed.len(), "shard")
    );
    for (s, items) in listed.iter().take(max_shards) {
        let _ = writeln!(
            o,
            "#### {} / {}\n",
            md_escape(&s.instance),
            md_escape(&s.shard)
        );
        for i in items {
            let _ = writeln!(o, "- {}", md_item(i));
        }
        o.push('\n');
    }
    let cut = listed.len().saturating_sub(max_shards);
    if cut > 0 {
        let _ = writeln!(
            o,
            "…and {} more; see the HTML or JSON report.\n",
            plural(cut, "shard")
        );
    }
    o.push_str("</details>\n\n");
}

/// An item in Markdown: the query part as code, the rest escaped.
fn md_item(i: &str) -> String {
    match i.split_once("; query: ") {
        Some((head, q)) => format!("{}; query: {}", md_escape(head), md_code(q)),
        None => md_escape(i),
    }
}

/// Shards listed in the HTML section before "and N more" (the JSON has all of them).
const HTML_MAX_SHARDS: usize = 200;

/// The HTML section: one row per listed shard.
pub(crate) fn html(o: &mut String, report: &ValidationReport) {
    let listed = listed(report);
    if listed.is_empty() {
        return;
    }
    let _ = write!(
        o,
        "<section id=\"live\">\n<h2>Live workload <span class=\"sub\">{} with sessions, traffic, queries or a replica the migration meets now</span></h2>\n\
         <table class=\"live\">\n<thead><tr><th>Shard</th><th>Queue risk</th><th>What the gate saw</th></tr></thead>\n<tbody>\n",
        plural(listed.len(), "shard")
    );
    for (s, items) in listed.iter().take(HTML_MAX_SHARDS) {
        let (class, label) = match (queue_risk(s), &s.live.locks) {
            (Some(Severity::Red), _) => ("red", "RED"),
            (Some(_), _) => ("yellow", "YELLOW"),
            (None, LiveStatus::Read) => ("green", "NONE"),
            (None, LiveStatus::Unavailable { .. }) => ("info", "UNKNOWN"),
            (None, LiveStatus::NotRun) => ("info", "NOT READ"),
        };
        let _ = write!(
            o,
            "<tr><td><code>{}</code><div class=\"muted\">{}</div></td><td><span class=\"badge {class}\">{label}</span></td><td><ul>",
            esc(&s.shard),
            esc(&s.instance)
        );
        for i in items {
            let _ = write!(o, "<li>{}</li>", esc(i));
        }
        o.push_str("</ul></td></tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
    let cut = listed.len().saturating_sub(HTML_MAX_SHARDS);
    if cut > 0 {
        let _ = writeln!(
            o,
            "<p class=\"muted\">…and {} more in the JSON report.</p>",
            plural(cut, "shard")
        );
    }
    o.push_str("</section>\n");
}

/// The terminal line: sessions the migration would queue behind, and live reads that could not
/// run; `None` when there is nothing to say.
pub(crate) fn terminal_line(report: &ValidationReport) -> Option<String> {
    let with_holders: Vec<&ShardReport> = report
        .shards
        .iter()
        .filter(|s| !s.live.lock_holders.is_empty())
        .collect();
    let sessions: usize = with_holders.iter().map(|s| s.live.lock_holders.len()).sum();
    let unavailable = report
        .shards
        .iter()
        .filter(|s| matches!(s.live.locks, LiveStatus::Unavailable { .. }))
        .count();
    let mut parts = Vec::new();
    if sessions > 0 {
        let first = with_holders
            .iter()
            .copied()
            .max_by_key(|s| queue_risk(s))
            .and_then(|s| s.live.lock_holders.first().map(|h| (s, h)))
            .map(|(s, h)| {
                format!(
                    " (e.g. {}: pid {} {} on {})",
                    s.shard,
                    h.pid,
                    if h.state.is_empty() { "?" } else { &h.state },
                    h.relation
                )
            })
            .unwrap_or_default();
        parts.push(format!(
            "{} the migration would queue behind on {}{first}",
            plural(sessions, "session"),
            plural(with_holders.len(), "shard")
        ));
    }
    if unavailable > 0 {
        parts.push(format!(
            "lock read unavailable on {}",
            plural(unavailable, "shard")
        ));
    }
    (!parts.is_empty()).then(|| format!("live: {}", parts.join("; ")))
}

//! The HTML report of a large fleet (more shards than [`HtmlOptions::full_heatmap_max`]): the
//! heat-map draws only the worst non-green shards ([`HtmlOptions::detail_shards`], with every
//! finding in the side panel), each instance's row says how many shards are not drawn; the
//! green shards are aggregated (a count per instance and per schema shape, their names in a
//! collapsed list) and the other non-green shards are compact table rows (up to
//! [`HtmlOptions::compact_shards`]). The JSON report stays complete; the page embeds only what
//! it draws.

use std::fmt::Write;

use serde::Serialize;

use super::aggregate::{green_summary, non_green, rules_of};
use super::text::{gate_lower, html_escape as esc, human_ms, plural, short_hash};
use crate::model::{Rehearsal, ShardReport, ValidationReport};

/// Options of [`crate::render::html_with`].
#[derive(Debug, Clone)]
pub struct HtmlOptions {
    /// Up to this many shards (default 2,000) the heat-map draws every shard and the page
    /// embeds the whole report; above it the page is aggregated (see the module doc).
    pub full_heatmap_max: usize,
    /// Non-green shards drawn, worst first, with their findings (default 500).
    pub detail_shards: usize,
    /// Further non-green shards listed as compact rows (default 5,000); the rest are counted.
    pub compact_shards: usize,
}

impl Default for HtmlOptions {
    fn default() -> Self {
        HtmlOptions {
            full_heatmap_max: 2_000,
            detail_shards: 500,
            compact_shards: 5_000,
        }
    }
}

impl HtmlOptions {
    /// Whether `report` is rendered aggregated.
    pub(crate) fn aggregates(&self, report: &ValidationReport) -> bool {
        report.shards.len() > self.full_heatmap_max
    }
}

/// Per instance, what the heat-map row says of shards it does not draw.
#[derive(Serialize)]
struct InstanceCounts<'a> {
    instance: &'a str,
    green: usize,
    yellow: usize,
    red: usize,
    not_drawn: usize,
}

#[derive(Serialize)]
struct Aggregated<'a> {
    instances: Vec<InstanceCounts<'a>>,
}

/// What the page embeds for its script when aggregated.
#[derive(Serialize)]
struct Embedded<'a> {
    shards: Vec<&'a ShardReport>,
    rehearsals: &'a [Rehearsal],
    aggregated: Aggregated<'a>,
}

/// The JSON the script reads: the drawn shards (report order), the rehearsals, and the counts
/// per instance.
pub(crate) fn embedded_json(report: &ValidationReport, opts: &HtmlOptions) -> String {
    let drawn: std::collections::HashSet<*const ShardReport> = non_green(report)
        .into_iter()
        .take(opts.detail_shards)
        .map(|s| s as *const ShardReport)
        .collect();
    let shards: Vec<&ShardReport> = report
        .shards
        .iter()
        .filter(|s| drawn.contains(&(*s as *const ShardReport)))
        .collect();
    let instances = report
        .instances()
        .into_iter()
        .map(|v| {
            let shown = shards.iter().filter(|s| s.instance == v.instance).count();
            InstanceCounts {
                instance: v.instance,
                green: v.counts.green,
                yellow: v.counts.yellow,
                red: v.counts.red,
                not_drawn: v.counts.total() - shown,
            }
        })
        .collect();
    let e = Embedded {
        shards,
        rehearsals: &report.rehearsals,
        aggregated: Aggregated { instances },
    };
    serde_json::to_string(&e).unwrap_or_else(|_| "{}".to_owned())
}

/// The green shards aggregated, then the non-green shards the heat-map does not draw.
pub(crate) fn sections(o: &mut String, report: &ValidationReport, opts: &HtmlOptions) {
    let g = green_summary(report);
    let _ = write!(
        o,
        "<section id=\"green-shards\">\n<h2>Green shards <span class=\"sub\">{} of {}, not drawn in the heat-map</span></h2>\n\
         <table class=\"steps\">\n<thead><tr><th>Instance</th><th>Green shards</th></tr></thead>\n<tbody>\n",
        g.total,
        plural(report.shards.len(), "shard")
    );
    for (inst, n) in &g.by_instance {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{n}</td></tr>",
            esc(inst)
        );
    }
    o.push_str("</tbody>\n</table>\n<table class=\"steps\">\n<thead><tr><th>Schema shape</th><th>Green shards</th></tr></thead>\n<tbody>\n");
    for (shape, n) in &g.by_shape {
        let shape = if shape.is_empty() {
            "unknown"
        } else {
            short_hash(shape)
        };
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code></td><td class=\"num\">{n}</td></tr>",
            esc(shape)
        );
    }
    let _ = write!(
        o,
        "</tbody>\n</table>\n<details><summary>All {} green shards</summary>\n<p class=\"names\">{}</p>\n</details>\n</section>\n",
        g.total,
        esc(&g.names.join(", "))
    );
    compact_table(o, report, opts);
}

/// The non-green shards after the drawn ones: one row each, then a count of the rest.
fn compact_table(o: &mut String, report: &ValidationReport, opts: &HtmlOptions) {
    let rest: Vec<&ShardReport> = non_green(report)
        .into_iter()
        .skip(opts.detail_shards)
        .collect();
    if rest.is_empty() {
        return;
    }
    let _ = write!(
        o,
        "<section id=\"more-shards\">\n<h2>More shards that are not green <span class=\"sub\">{} not drawn in the heat-map, worst first</span></h2>\n\
         <table class=\"steps\">\n<thead><tr><th>Shard</th><th>Instance</th><th>Gate</th><th>Estimated lock</th><th>Rules</th></tr></thead>\n<tbody>\n",
        rest.len()
    );
    for s in rest.iter().take(opts.compact_shards) {
        let g = gate_lower(s.gate);
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code></td><td>{}</td><td><span class=\"badge {g}\">{}</span></td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&s.shard),
            esc(&s.instance),
            s.gate,
            human_ms(s.estimated_lock_ms),
            esc(&rules_of(s).join(", "))
        );
    }
    o.push_str("</tbody>\n</table>\n");
    let cut = rest.len().saturating_sub(opts.compact_shards);
    if cut > 0 {
        let _ = writeln!(
            o,
            "<p class=\"muted\">…and {cut} more {}: see the JSON report.</p>",
            if cut == 1 { "shard" } else { "shards" }
        );
    }
    o.push_str("</section>\n");
}

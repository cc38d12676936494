//! Reports that stay usable at 100,000 shards: the HTML page aggregates the green shards and
//! draws only the worst, the Markdown comment stays under GitHub's limit, the JSON stays
//! complete; and the aggregated rendering of a small fixture, snapshotted.

mod common;

use common::{fixture, large_fleet};
use report::render::{self, HtmlOptions, MarkdownOptions};

/// The text between `from` and the first `to` after it.
fn between<'a>(s: &'a str, from: &str, to: &str) -> &'a str {
    let start = s.find(from).unwrap_or_else(|| panic!("no `{from}`"));
    let end = s[start..]
        .find(to)
        .map_or(s.len(), |e| start + e + to.len());
    &s[start..end]
}

/// The JSON the page's script reads.
fn embedded(html: &str) -> serde_json::Value {
    let data = between(
        html,
        "<script type=\"application/json\" id=\"report-data\">",
        "</script>",
    );
    let data = data
        .trim_start_matches("<script type=\"application/json\" id=\"report-data\">")
        .trim_end_matches("</script>");
    serde_json::from_str(data).expect("embedded JSON")
}

#[test]
fn a_100k_shard_report_renders_usably() {
    let r = large_fleet(100_000, 10);
    let c = r.counts();
    assert_eq!((c.green, c.yellow, c.red), (97_500, 2_000, 500));

    // JSON: complete.
    let json = render::json(&r).unwrap();
    let back: report::ValidationReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back.shards.len(), 100_000);

    // HTML: the 500 worst drawn, the green counted per instance, the rest compact rows.
    let html = render::html(&r);
    let data = embedded(&html);
    let drawn = data["shards"].as_array().unwrap();
    assert_eq!(drawn.len(), 500);
    assert!(drawn.iter().all(|s| s["gate"] == "RED"), "the worst first");
    let inst = data["aggregated"]["instances"].as_array().unwrap();
    assert_eq!(inst.len(), 10);
    let sum = |k: &str| inst.iter().map(|i| i[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(
        (sum("green"), sum("yellow"), sum("red")),
        (97_500, 2_000, 500)
    );
    assert_eq!(sum("not_drawn"), 99_500);
    let more = between(&html, "<section id=\"more-shards\">", "</section>");
    assert_eq!(more.matches("<tr><td><code>").count(), 2_000);
    assert!(html.contains("<details><summary>All 97500 green shards</summary>"));
    assert!(html.len() < 16 << 20, "HTML of {} bytes", html.len());
    assert!(
        html.len() < json.len() / 4,
        "{} vs {}",
        html.len(),
        json.len()
    );

    // Markdown: under GitHub's 65,536-character comment limit, green aggregated.
    let md = render::markdown(&r, &MarkdownOptions::default());
    assert!(md.chars().count() < 65_536, "{} chars", md.chars().count());
    assert!(md.contains("### 🟢 Green shards (97500)"), "{md}");
    assert!(md.contains("…and "), "the rest is counted");
    eprintln!(
        "100,000 shards: JSON {} bytes, HTML {} bytes, Markdown {} bytes",
        json.len(),
        html.len(),
        md.len()
    );
}

#[test]
fn the_aggregated_rendering_of_a_small_fixture() {
    let r = fixture();
    let opts = HtmlOptions {
        full_heatmap_max: 0,
        detail_shards: 2,
        compact_shards: 2,
    };
    let html = render::html_with(&r, &opts);
    let sections = format!(
        "{}\n{}",
        between(&html, "<section id=\"green-shards\">", "</section>"),
        between(&html, "<section id=\"more-shards\">", "</section>")
    );
    insta::assert_snapshot!("aggregated_html_sections", sections);
    let data = embedded(&html);
    assert_eq!(data["shards"].as_array().unwrap().len(), 2);
    assert_eq!(data["aggregated"]["instances"].as_array().unwrap().len(), 3);
    // Below the threshold nothing changes: the whole report is embedded.
    let full = render::html(&r);
    assert!(!full.contains("id=\"green-shards\""));
    assert_eq!(
        embedded(&full)["shards"].as_array().unwrap().len(),
        r.shards.len()
    );

    let md = render::markdown(
        &r,
        &MarkdownOptions {
            aggregate_green_from: 1,
            max_green_names: 3,
            max_detail_shards: 1,
            max_compact_shards: 2,
            ..MarkdownOptions::default()
        },
    );
    insta::assert_snapshot!("aggregated_markdown", md);
}

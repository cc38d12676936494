//! The per-shard "Live workload" section (issue 16) in Markdown, HTML and the terminal: every
//! field of `LiveEvidence` rendered, unavailable reads said with their reason, shards with
//! nothing live not listed, the JSON section omitted when nothing was read, and the HTML
//! heat-map's queue-risk colouring present on the cells.

mod common;

use common::*;
use report::render;

/// The text between `start` (included) and the first `end` after it (included).
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let a = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in:\n{text}"));
    let b = a + text[a..].find(end).expect("section end") + end.len();
    &text[a..b]
}

#[test]
fn markdown_lists_every_live_field_of_the_shards_that_have_one() {
    let md = render::markdown(&live_fixture(), &Default::default());
    let section = between(&md, "<details><summary>Live workload", "</details>");
    insta::assert_snapshot!("live_md", section);
    assert!(
        !section.contains("tenant_0001"),
        "a shard with nothing live is not listed"
    );
}

#[test]
fn html_has_the_live_section_and_queue_risk_badges() {
    let html = render::html(&live_fixture());
    let section = between(&html, "<section id=\"live\">", "</section>");
    insta::assert_snapshot!("live_html", section);
    assert!(section.contains("<span class=\"badge red\">RED</span>"));
    assert!(section.contains("<span class=\"badge info\">UNKNOWN</span>"));
}

#[test]
fn terminal_says_how_many_sessions_the_migration_would_queue_behind() {
    let text = render::terminal(&live_fixture(), &Default::default());
    let line = text
        .lines()
        .find(|l| l.starts_with("live: "))
        .expect("a live line");
    insta::assert_snapshot!("live_terminal", line);
}

#[test]
fn nothing_live_renders_nothing_and_the_json_omits_the_section() {
    let r = fixture();
    assert!(!render::markdown(&r, &Default::default()).contains("Live workload"));
    assert!(!render::html(&r).contains("id=\"live\""));
    assert!(!render::terminal(&r, &Default::default()).contains("live: "));
    let json = serde_json::to_value(&r).unwrap();
    assert!(
        json["shards"][0].get("live").is_none(),
        "{}",
        json["shards"][0]
    );
    let json = serde_json::to_value(live_fixture()).unwrap();
    assert_eq!(json["shards"][1]["live"]["lock_holders"][0]["pid"], 4242);
    assert_eq!(json["shards"][0]["live"]["locks"]["status"], "read");
}

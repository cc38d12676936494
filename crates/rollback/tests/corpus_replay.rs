//! Real migration histories from ../shared/corpus, replayed on an ephemeral PostgreSQL (one
//! database per project; the four projects run as parallel tests).
//!
//! For every migration: catalog C0 → up → (a) on a copy, the project's own down script →
//! catalog compared with C0; (b) on another copy, the rollback generated from the parsed up and
//! C0 → catalog compared with C0. The history continues from the state after the up.
//!
//! Snapshots: the down scripts that do not restore the catalog (with the reason), and the
//! reversible migrations (correct upstream down) whose generated rollback does not.

use std::path::PathBuf;
use std::time::Instant;

use rollback::{
    HistoryEntry, HistoryOptions, HistoryReport, MigrationPair, Shadow, discover, prove_history,
};

/// The shared corpus beside the checkout (`<checkout>/../shared/corpus`), or, for a git worktree
/// one level deeper (`/work/wt/<name>`), `<checkout>/../../shared/corpus`.
fn corpus() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let near = here.join("../../../shared/corpus");
    if near.is_dir() {
        near
    } else {
        here.join("../../../../shared/corpus")
    }
}

fn order(project: &str) -> Vec<String> {
    let text = std::fs::read_to_string(corpus().join(project).join("ORDER.txt"))
        .expect("ORDER.txt is readable");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.trim_end_matches(".up.sql")
                .trim_end_matches("_up.sql")
                .to_string()
        })
        .collect()
}

fn short(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

/// Why the project's own down script does not restore the catalog, or `None` when it does.
fn upstream_problem(e: &HistoryEntry) -> Option<String> {
    let Some(p) = &e.upstream else {
        return Some("no down script".into());
    };
    if let Some(f) = &p.rollback_error {
        return Some(format!(
            "down fails [{}]: {}",
            f.sqlstate.as_deref().unwrap_or("-----"),
            short(&f.message)
        ));
    }
    if !p.restored {
        let what = if e.upstream_empty {
            "down is empty or comments only; "
        } else {
            ""
        };
        let real: Vec<_> = p
            .mismatches
            .iter()
            .filter(|m| !m.column_order_only)
            .collect();
        return Some(format!(
            "{what}catalog differs after down ({} difference(s)), first: {}",
            real.len(),
            real.first()
                .map(|m| short(&m.to_string()))
                .unwrap_or_default()
        ));
    }
    None
}

/// Why the generated rollback does not restore the catalog, or `None` when it does.
fn generated_problem(e: &HistoryEntry) -> Option<String> {
    let p = e.generated.as_ref()?;
    let irreversible = p
        .rollback
        .as_ref()
        .map(|r| {
            r.irreversible
                .iter()
                .map(|i| short(&i.reason))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut reason = if let Some(f) = &p.rollback_error {
        format!(
            "rollback fails [{}]: {} -- {}",
            f.sqlstate.as_deref().unwrap_or("-----"),
            short(&f.message),
            short(&f.sql)
        )
    } else if !p.restored {
        let real: Vec<_> = p
            .mismatches
            .iter()
            .filter(|m| !m.column_order_only)
            .collect();
        format!(
            "{} difference(s), first: {}",
            real.len(),
            real.first()
                .map(|m| short(&m.to_string()))
                .unwrap_or_default()
        )
    } else {
        return None;
    };
    if !irreversible.is_empty() {
        reason.push_str(&format!(
            " | flagged irreversible: {}",
            irreversible.join("; ")
        ));
    }
    Some(reason)
}

/// Round trips that restore everything but the column order (a dropped column re-added last).
fn column_order(e: &HistoryEntry) -> Vec<String> {
    let mut out = Vec::new();
    for (who, p) in [
        ("upstream down", &e.upstream),
        ("generated rollback", &e.generated),
    ] {
        if let Some(p) = p.as_ref().filter(|p| p.restored) {
            for m in p.mismatches.iter().filter(|m| m.column_order_only) {
                out.push(format!("{} ({who}): {}", e.name, m.object));
            }
        }
    }
    out
}

struct Summary {
    column_order: Vec<String>,
    upstream_broken: Vec<(String, String)>,
    generated_failures: Vec<(String, String)>,
    reversible: usize,
    restored: usize,
    /// Migrations whose upstream down is missing or broken, but whose generated rollback
    /// restores the catalog.
    generated_where_upstream_fails: usize,
}

fn summarise(report: &HistoryReport) -> Summary {
    let mut s = Summary {
        column_order: Vec::new(),
        upstream_broken: Vec::new(),
        generated_failures: Vec::new(),
        reversible: 0,
        restored: 0,
        generated_where_upstream_fails: 0,
    };
    for e in &report.entries {
        s.column_order.extend(column_order(e));
        assert!(
            e.up_error.is_none(),
            "{}: up failed: {:?}",
            e.name,
            e.up_error
        );
        match upstream_problem(e) {
            Some(why) => {
                s.upstream_broken.push((e.name.clone(), why));
                if generated_problem(e).is_none() {
                    s.generated_where_upstream_fails += 1;
                }
            }
            None => {
                s.reversible += 1;
                match generated_problem(e) {
                    None => s.restored += 1,
                    Some(why) => s.generated_failures.push((e.name.clone(), why)),
                }
            }
        }
    }
    s
}

async fn replay(project: &str, setup: &str) -> (Vec<MigrationPair>, HistoryReport, f64) {
    let pairs = discover(&corpus().join(project).join("migrations")).expect("layout detected");
    let names: Vec<String> = pairs.iter().map(|p| p.name.clone()).collect();
    assert_eq!(
        names,
        order(project),
        "{project}: discovered order differs from ORDER.txt"
    );
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let options = HistoryOptions {
        setup_sql: setup.to_string(),
        ..Default::default()
    };
    let started = Instant::now();
    let report = prove_history(&shadow, &pairs, &options, |_| {})
        .await
        .expect("history replays");
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(
        report.entries.len(),
        pairs.len(),
        "{project}: every migration was replayed"
    );
    (pairs, report, secs)
}

fn check(
    project: &str,
    report: &HistoryReport,
    secs: f64,
    must_catch: &[&str],
    min_share: f64,
) -> Summary {
    let s = summarise(report);
    let caught: Vec<&str> = s.upstream_broken.iter().map(|(n, _)| n.as_str()).collect();
    for m in must_catch {
        assert!(
            caught.contains(m),
            "{project}: the known-broken down of {m} was not caught; caught: {caught:?}"
        );
    }
    let share = s.restored as f64 / s.reversible.max(1) as f64;
    eprintln!(
        "{project}: {} migrations in {secs:.1}s; upstream downs not restoring: {}; reversible: {}; generated rollback restores the exact catalog: {}/{} = {:.1}%",
        report.entries.len(),
        s.upstream_broken.len(),
        s.reversible,
        s.restored,
        s.reversible,
        share * 100.0
    );
    eprintln!(
        "{project}: of the {} migrations without a working down, the generated rollback restores {}",
        s.upstream_broken.len(),
        s.generated_where_upstream_fails
    );
    insta::assert_yaml_snapshot!(
        format!("{project}_upstream_downs_not_restoring"),
        s.upstream_broken
    );
    insta::assert_yaml_snapshot!(
        format!("{project}_generated_not_restoring"),
        s.generated_failures
    );
    insta::assert_yaml_snapshot!(format!("{project}_column_order_only"), s.column_order);
    assert!(
        share >= min_share,
        "{project}: share {share:.3} below {min_share}"
    );
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_docs_rs() {
    let (_, report, secs) = replay("docs.rs", "").await;
    check("docs.rs", &report, secs, &[], 0.9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_chirpstack() {
    let (_, report, secs) = replay(
        "chirpstack-application-server",
        "CREATE EXTENSION pg_trgm; CREATE EXTENSION hstore;",
    )
    .await;
    check("chirpstack", &report, secs, &[], 0.9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_harness() {
    let (_, report, secs) = replay(
        "harness",
        "CREATE TABLE migrations (version text NOT NULL); INSERT INTO migrations VALUES ('');",
    )
    .await;
    check(
        "harness",
        &report,
        secs,
        &[
            "0027_create_ci_tables",
            "0029_create_index_job_job_group_id",
            "0045_alter_table_repo_add_deletetimestamp",
            "0046_alter_table_spaces_add_deletetimestamp",
            "0069_create_table_usergroup_reviewers",
            "0013_create_table_pullreq_reviewers",
            "0097_update_ar_generic_artifact_tables",
        ],
        0.9,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_crates_io() {
    let (_, report, secs) = replay("crates.io", "").await;
    check(
        "crates.io",
        &report,
        secs,
        &[
            "2024-10-25-112826_make-unique-version-unique",
            "2024-04-12-144536_remove-downloads-column",
            "20170318181441_downloads_need_no_id",
            "2019-11-11-162609_drop_email_from_user",
        ],
        0.9,
    );
}

/// The class of a failure reason: the SQLSTATE and the message's leading words of a failing
/// rollback, or the kind of the first object that differs.
fn failure_class(why: &str) -> String {
    if let Some(rest) = why.strip_prefix("rollback fails ") {
        let head = rest.split(" -- ").next().unwrap_or(rest);
        return head
            .split_whitespace()
            .take(6)
            .collect::<Vec<_>>()
            .join(" ");
    }
    if let Some(rest) = why.strip_prefix("down fails ") {
        return format!(
            "down fails {}",
            rest.split_whitespace()
                .take(5)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    match why.split_once("first: ") {
        Some((_, first)) => {
            let object = first.split(':').next().unwrap_or(first);
            let kind = object.split_whitespace().next().unwrap_or(object);
            let what = first.split(':').nth(1).unwrap_or("").trim();
            let what = what.split(" (").next().unwrap_or(what);
            format!("differs: {kind} {what}")
        }
        None => why.split_whitespace().take(6).collect::<Vec<_>>().join(" "),
    }
}

/// Any history of up/down pairs (`DEPLOYCLAW_HISTORY=<migrations dir>`, optional
/// `DEPLOYCLAW_HISTORY_SETUP=<sql>`), measured the same way as the corpus: the figures of
/// BENCHMARKS.md for histories outside the corpus (Lemmy, …). Ignored unless asked for:
/// `DEPLOYCLAW_HISTORY=/tmp/lemmy/migrations cargo test -p rollback --all-features --test
/// corpus_replay -- --ignored --nocapture measure_history_from_env`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement over a history named by DEPLOYCLAW_HISTORY"]
async fn measure_history_from_env() {
    let Ok(dir) = std::env::var("DEPLOYCLAW_HISTORY") else {
        eprintln!("DEPLOYCLAW_HISTORY not set");
        return;
    };
    let setup = std::env::var("DEPLOYCLAW_HISTORY_SETUP").unwrap_or_default();
    let pairs = discover(std::path::Path::new(&dir)).expect("layout detected");
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let options = HistoryOptions {
        setup_sql: setup,
        ..Default::default()
    };
    let started = Instant::now();
    let report = prove_history(&shadow, &pairs, &options, |_| {})
        .await
        .expect("history replays");
    let secs = started.elapsed().as_secs_f64();
    let replayed: Vec<&HistoryEntry> = report
        .entries
        .iter()
        .filter(|e| e.up_error.is_none())
        .collect();
    if let Some(e) = report.entries.iter().find(|e| e.up_error.is_some()) {
        eprintln!("history stops at {}: {:?}", e.name, e.up_error);
    }
    let mut generated_ok = 0;
    let mut downs = 0;
    let (mut proven, mut refuted, mut undecided) = (0, 0, 0);
    let mut classes: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for e in &replayed {
        match generated_problem(e) {
            None => generated_ok += 1,
            Some(why) => {
                eprintln!("GENERATED {}: {why}", e.name);
                classes
                    .entry(failure_class(&why))
                    .or_default()
                    .push(e.name.clone());
            }
        }
        if let Some(p) = e.upstream.as_ref().filter(|_| !e.upstream_empty) {
            downs += 1;
            if p.restored {
                proven += 1;
            } else if p.tested || p.rollback_error.is_some() {
                refuted += 1;
                eprintln!(
                    "DOWN {}: {}",
                    e.name,
                    upstream_problem(e).unwrap_or_default()
                );
            } else {
                undecided += 1;
                eprintln!("DOWN NOT DECIDED {}: {:?}", e.name, p.forward_error);
            }
        }
    }
    eprintln!(
        "{dir}: {} of {} migrations replayed in {secs:.1}s; generated rollback restores the exact catalog: {generated_ok}/{} = {:.1}%",
        replayed.len(),
        pairs.len(),
        replayed.len(),
        100.0 * generated_ok as f64 / replayed.len().max(1) as f64
    );
    eprintln!(
        "down scripts (not empty): {downs}; proven {proven}, refuted {refuted}, not decided {undecided}: decided {:.1}%",
        100.0 * (proven + refuted) as f64 / downs.max(1) as f64
    );
    let mut by_size: Vec<(String, Vec<String>)> = classes.into_iter().collect();
    by_size.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    for (class, names) in by_size {
        eprintln!("CLASS {:>3} {class}: {}", names.len(), names.join(", "));
    }
    assert!(!replayed.is_empty(), "no migration of {dir} replayed");
}

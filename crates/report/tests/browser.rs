//! The HTML report in a real browser: headless Chromium renders it to a screenshot, and its
//! serialized DOM proves the page's script ran without error, drew one heat-map cell per shard,
//! and that a shard named `<script>alert(1)</script>` stayed text.
//!
//! Needs Chromium (Debian: `apt-get install -y chromium`); without it the test fails, it does
//! not skip. `CHROMIUM=/path/to/chrome` picks another binary. The rendered pages and the
//! screenshot are kept under the target directory (`report-browser/`) for a human to look at.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use report::render;

const EVIL: &str = "<script>alert(1)</script>";

fn chromium() -> PathBuf {
    if let Ok(p) = std::env::var("CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        if let Some(dir) = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .find(|d| d.join(name).is_file())
        {
            return dir.join(name);
        }
    }
    panic!(
        "headless Chromium is needed for the HTML report test and was not found on PATH.\n\
         Install it with: apt-get update && apt-get install -y chromium\n\
         (or set CHROMIUM=/path/to/chromium)"
    );
}

/// Run Chromium headless with `extra` args on `page`; returns stdout. Killed after 90 s.
fn run_chromium(page: &Path, extra: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let child = cmd.spawn().expect("start chromium");
    let id = child.id();
    // Watchdog: a hung browser must not hang the test suite.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(90) {
            if rx.recv_timeout(Duration::from_millis(200)).is_ok() {
                return false;
            }
        }
        // Kill only the process this test started, by its id.
        let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
        true
    });
    let out = child.wait_with_output().expect("wait for chromium");
    let _ = tx.send(());
    let killed = watchdog.join().unwrap_or(false);
    assert!(!killed, "chromium did not finish within 90 s");
    assert!(
        out.status.success(),
        "chromium failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn out_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn attr<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let start = dom.find(&key)? + key.len();
    let end = start + dom[start..].find('"')?;
    Some(&dom[start..end])
}

/// PNG width and height from the IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24, "PNG too short");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    (w, h)
}

#[test]
fn html_report_renders_in_chromium() {
    let dir = out_dir();
    let page = dir.join("report.html");
    std::fs::write(&page, render::html(&fixture())).unwrap();

    // The script ran, drew the heat-map, and raised no error.
    let dom = run_chromium(&page, &["--dump-dom".to_owned()]);
    assert!(
        dom.contains("<title>deployclaw report: ready</title>"),
        "the page's script did not finish: {}",
        dom.lines()
            .find(|l| l.contains("<title>"))
            .unwrap_or("no <title>")
    );
    assert_eq!(attr(&dom, "data-ready"), Some("true"));
    assert_eq!(attr(&dom, "data-cells"), Some("12"));
    assert_eq!(dom.matches("class=\"cell g-RED").count(), 2);
    assert_eq!(dom.matches("class=\"cell g-YELLOW").count(), 3);
    assert_eq!(dom.matches("class=\"cell g-GREEN").count(), 7);
    // The side panel opened on the worst shard (red, longest lock among reds).
    assert!(
        dom.contains("<h3>tenant_0003</h3>"),
        "side panel did not open"
    );
    assert!(dom.contains("ERROR 23503: insert or update on table"));
    assert!(
        dom.contains("hidden=\"\" class=\"js-error\"") || dom.contains("class=\"js-error\" hidden")
    );

    // Click, hover and filter work (the page's `#selftest` drives them in the real browser).
    let selftest = PathBuf::from(format!("{}#selftest", page.display()));
    let dom = run_chromium(&selftest, &["--dump-dom".to_owned()]);
    assert_eq!(attr(&dom, "data-selftest"), Some("ok"));

    // The screenshot: the right size and not blank.
    let png = dir.join("report.png");
    let _ = std::fs::remove_file(&png);
    run_chromium(
        &page,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1400,1000".to_owned(),
        ],
    );
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert_eq!(png_size(&bytes), (1400, 1000));
    assert!(
        bytes.len() > 40_000,
        "screenshot suspiciously small ({} bytes): blank page?",
        bytes.len()
    );
}

#[test]
fn hostile_shard_names_stay_text_in_the_browser() {
    let dir = out_dir();
    let page = dir.join("hostile.html");
    let r = fixture_with(|s| {
        s[2].shard = EVIL.to_owned();
        s[2].instance = "db-east-1\"><img src=x onerror=alert(2)>".to_owned();
    });
    std::fs::write(&page, render::html(&r)).unwrap();
    let dom = run_chromium(&page, &["--dump-dom".to_owned()]);
    assert!(
        dom.contains("<title>deployclaw report: ready</title>"),
        "script failed"
    );
    // Only the page's own two script elements exist, and no injected image.
    assert_eq!(attr(&dom, "data-scripts"), Some("2"));
    assert!(!dom.contains("<img"), "an <img> was injected");
    // The hostile name is shown as text in the side panel (the worst shard).
    assert!(
        dom.contains("<h3>&lt;script&gt;alert(1)&lt;/script&gt;</h3>"),
        "hostile shard name not shown as text"
    );
    assert_eq!(attr(&dom, "data-cells"), Some("12"));
}

/// Issue 16: the heat-map can be coloured by lock-queue risk — red where a session idle in
/// transaction holds a conflicting lock, yellow where sessions would make the migration queue,
/// grey where the lock read did not run — and the toggle works in the real browser.
#[test]
fn the_heat_map_colours_shards_by_lock_queue_risk() {
    let dir = out_dir();
    let page = dir.join("live.html");
    std::fs::write(&page, render::html(&live_fixture())).unwrap();
    let dom = run_chromium(&page, &["--dump-dom".to_owned()]);
    assert!(
        dom.contains("<title>deployclaw report: ready</title>"),
        "script failed"
    );
    assert_eq!(attr(&dom, "data-queue-risk"), Some("2"));
    assert_eq!(
        dom.matches("data-queue=\"RED\"").count(),
        1,
        "tenant_0002 is red"
    );
    assert_eq!(
        dom.matches("data-queue=\"YELLOW\"").count(),
        1,
        "tenant_0006 is yellow"
    );
    assert_eq!(
        dom.matches("data-queue=\"NONE\"").count(),
        1,
        "tenant_0004 was not read"
    );
    assert_eq!(dom.matches("data-queue=\"GREEN\"").count(), 9);
    assert!(
        dom.contains("data-colour=\"queue\""),
        "the colour toggle is there"
    );
    let selftest = PathBuf::from(format!("{}#selftest", page.display()));
    let dom = run_chromium(&selftest, &["--dump-dom".to_owned()]);
    assert_eq!(attr(&dom, "data-selftest"), Some("ok"));
}

#[test]
fn a_100k_shard_page_renders_in_chromium() {
    let dir = out_dir();
    let page = dir.join("report-100k.html");
    std::fs::write(&page, render::html(&large_fleet(100_000, 10))).unwrap();
    let dom = run_chromium(&page, &["--dump-dom".to_owned()]);
    assert!(
        dom.contains("<title>deployclaw report: ready</title>"),
        "the page's script did not finish: {}",
        dom.lines()
            .find(|l| l.contains("<title>"))
            .unwrap_or("no <title>")
    );
    // The 500 worst shards are drawn; every instance row says what it does not draw.
    assert_eq!(attr(&dom, "data-cells"), Some("500"));
    assert_eq!(dom.matches("class=\"agg\"").count(), 10);
    // Each row counts all of its instance's shards, drawn or not.
    assert_eq!(
        dom.matches(">10000 shards · ").count(),
        10,
        "instance counts"
    );
    let selftest = PathBuf::from(format!("{}#selftest", page.display()));
    let dom = run_chromium(&selftest, &["--dump-dom".to_owned()]);
    assert_eq!(attr(&dom, "data-selftest"), Some("ok"));
}

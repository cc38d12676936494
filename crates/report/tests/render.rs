//! Renderings of the fixture report: snapshots a user reads, schema validity, escaping, and the
//! safety-gate computation.

mod common;

use common::*;
use report::render::{
    self, JunitOptions, MarkdownOptions, SarifOptions, TerminalOptions, YellowAs,
};
use report::*;

#[test]
fn json_snapshot_has_the_contract_fields() {
    let r = fixture();
    let text = render::json(&r).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for ptr in [
        "/execution_id",
        "/timestamp",
        "/migration/file",
        "/migration/sha256",
        "/steps/0/step",
        "/steps/0/action",
        "/steps/0/details",
        "/steps/0/duration_ms",
        "/shards/0/shard",
        "/shards/0/instance",
        "/shards/0/gate",
        "/shards/0/findings",
        "/shards/0/estimated_lock_ms",
        "/rollback/script",
        "/rollback/tested",
        "/rollback/irreversible",
        "/safety_gates/migration_approved",
        "/safety_gates/risk_level",
        "/safety_gates/approval_required",
        "/safety_gates/estimated_downtime_sec",
        "/safety_gates/rollback_tested",
        "/safety_gates/shard_exceptions",
        "/total_duration_ms",
        "/signature",
    ] {
        assert!(v.pointer(ptr).is_some(), "missing {ptr}");
    }
    assert_eq!(v["timestamp"], "2026-11-24T18:30:00Z");
    assert_eq!(v["gate"], "RED");
    // Round trip.
    let back: ValidationReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
    insta::assert_snapshot!("report_json", text);
}

#[test]
fn safety_gates_of_the_fixture() {
    let r = fixture();
    let sg = &r.safety_gates;
    assert_eq!(r.gate, Gate::Red);
    assert_eq!(sg.risk_level, RiskLevel::Critical);
    assert_eq!(sg.approval_required.as_deref(), Some("DBA"));
    assert!(!sg.migration_approved);
    assert!(sg.rollback_tested);
    assert_eq!(sg.estimated_downtime_sec, 9); // 8 200 ms rounded up
    let ex: Vec<(&str, Gate)> = sg
        .shard_exceptions
        .iter()
        .map(|e| (e.shard.as_str(), e.gate))
        .collect();
    assert_eq!(
        ex,
        [
            ("tenant_0003", Gate::Red),
            ("tenant_0007", Gate::Red),
            ("tenant_0005", Gate::Yellow),
            ("tenant_0008", Gate::Yellow),
            ("tenant_0010", Gate::Yellow),
        ]
    );
    assert!(
        sg.shard_exceptions[0].reasons[0].starts_with("fk-orphans: 3 rows in tenant_0003.orders")
    );
    assert_eq!((r.fleet.instances, r.fleet.shards), (3, 12));
}

fn only_yellow() -> ValidationReport {
    fixture_with(|shards| {
        for s in shards.iter_mut() {
            s.findings.retain(|f| f.severity != Severity::Red);
            s.gate = Gate::from_findings(&s.findings);
        }
    })
}

#[test]
fn risk_levels_and_approval() {
    // Yellow with an 8.2 s lock (over the 5 s high-risk threshold) → HIGH → DATA_OWNER.
    let mut r = only_yellow();
    assert_eq!(r.gate, Gate::Yellow);
    assert_eq!(r.safety_gates.risk_level, RiskLevel::High);
    assert_eq!(
        r.safety_gates.approval_required.as_deref(),
        Some("DATA_OWNER")
    );
    assert!(!r.safety_gates.migration_approved);
    // Short locks and no irreversible step → MEDIUM → TECH_LEAD; allow_yellow approves.
    for s in r.shards.iter_mut() {
        s.estimated_lock_ms = s.estimated_lock_ms.min(2_500);
    }
    r.rollback.irreversible.clear();
    r.finalize(&GatePolicy::default());
    assert_eq!(r.safety_gates.risk_level, RiskLevel::Medium);
    assert_eq!(
        r.safety_gates.approval_required.as_deref(),
        Some("TECH_LEAD")
    );
    r.finalize(&GatePolicy {
        allow_yellow: true,
        ..GatePolicy::default()
    });
    assert!(r.safety_gates.migration_approved);
    // Ten yellow shards → HIGH.
    r.finalize(&GatePolicy {
        high_risk_yellow_shards: 3,
        ..GatePolicy::default()
    });
    assert_eq!(r.safety_gates.risk_level, RiskLevel::High);
    // All green → LOW, no approval, approved.
    let mut g = fixture_with(|shards| {
        for s in shards.iter_mut() {
            s.findings.retain(|f| f.severity == Severity::Info);
            s.gate = Gate::Green;
        }
    });
    g.finalize(&GatePolicy::default());
    assert_eq!(
        (g.gate, g.safety_gates.risk_level),
        (Gate::Green, RiskLevel::Low)
    );
    assert_eq!(g.safety_gates.approval_required, None);
    assert!(g.safety_gates.migration_approved);
    assert!(g.safety_gates.shard_exceptions.is_empty());
    // A custom policy.
    let policy = GatePolicy {
        approval: ApprovalPolicy {
            low: Some("ANYONE".into()),
            ..ApprovalPolicy::default()
        },
        ..GatePolicy::default()
    };
    g.finalize(&policy);
    assert_eq!(g.safety_gates.approval_required.as_deref(), Some("ANYONE"));
}

#[test]
fn markdown_snapshot_groups_reasons() {
    let md = render::markdown(&fixture(), &MarkdownOptions::default());
    assert!(md.starts_with("## 🔴 deployclaw: RED — blocked"));
    assert!(
        md.contains("- **2 shards**: `fk-orphans` (DC201) at line 5"),
        "{md}"
    );
    assert!(
        md.contains("- **3 shards**: `lock-time-budget` (DC207) at line 7"),
        "{md}"
    );
    assert!(md.contains("<details><summary>Findings per shard (5 shards)</summary>"));
    insta::assert_snapshot!("report_md", md);
}

#[test]
fn markdown_groups_many_shards_and_cuts_lists() {
    let r = fixture_with(|shards| {
        let template = shards[6].clone();
        for i in 0..37 {
            let mut s = template.clone();
            s.shard = format!("tenant_1{i:03}");
            shards.push(s);
        }
    });
    let md = render::markdown(
        &r,
        &MarkdownOptions {
            shards_per_group: 5,
            max_detail_shards: 3,
            max_compact_shards: 10,
            ..MarkdownOptions::default()
        },
    );
    assert!(md.contains("- **39 shards**: `fk-orphans` (DC201)"), "{md}");
    assert!(md.contains(" and 34 more\n"), "{md}");
    assert!(
        md.contains("| Shard | Instance | Gate | Estimated lock | Rules |"),
        "{md}"
    );
    assert!(
        md.contains("…and 29 more shards; see the HTML or JSON report."),
        "{md}"
    );
}

#[test]
fn junit_snapshot_and_yellow_modes() {
    let r = fixture();
    let xml = render::junit(&r, &JunitOptions::default());
    assert_eq!(xml.matches("<testcase ").count(), 12);
    assert_eq!(xml.matches("<failure type=\"red\"").count(), 2);
    assert_eq!(xml.matches("<failure type=\"yellow\"").count(), 3);
    assert!(xml.contains(
        "<testsuites name=\"deployclaw: migrations/schema_v42.sql\" tests=\"12\" failures=\"5\""
    ));
    insta::assert_snapshot!("report_junit", xml);

    let skipped = render::junit(
        &r,
        &JunitOptions {
            yellow: YellowAs::Skipped,
        },
    );
    assert_eq!(skipped.matches("<failure ").count(), 2);
    assert_eq!(
        skipped
            .matches("<skipped message=\"YELLOW: lock-time-budget")
            .count(),
        3
    );
    let pass = render::junit(
        &r,
        &JunitOptions {
            yellow: YellowAs::from_allow_yellow(true),
        },
    );
    assert_eq!(pass.matches("<failure ").count(), 2);
    assert_eq!(pass.matches("<skipped").count(), 0);
    assert!(pass.contains("<system-out>[yellow] lock-time-budget DC207"));
}

#[test]
fn terminal_snapshot_plain_and_colour() {
    let r = fixture();
    let plain = render::terminal(&r, &TerminalOptions::default());
    assert!(!plain.contains('\x1b'));
    // Worst first: the two reds, then the yellows by lock time.
    let pos = |s: &str| {
        plain
            .find(s)
            .unwrap_or_else(|| panic!("{s} missing:\n{plain}"))
    };
    assert!(pos("db-east-1/tenant_0003") < pos("db-east-2/tenant_0007"));
    assert!(pos("db-east-2/tenant_0007") < pos("db-east-1/tenant_0005"));
    assert!(pos("db-east-1/tenant_0005") < pos("db-east-2/tenant_0008"));
    insta::assert_snapshot!("report_terminal", plain);
    let colour = render::terminal(
        &r,
        &TerminalOptions {
            color: true,
            ..TerminalOptions::default()
        },
    );
    assert!(colour.contains("\x1b[31m"));
}

#[test]
fn terminal_strips_escape_sequences_from_names() {
    let r = fixture_with(|s| s[2].shard = "evil\x1b]0;pwned\x07".to_owned());
    let t = render::terminal(&r, &TerminalOptions::default());
    assert!(!t.contains('\x1b') && !t.contains('\x07'));
    assert!(t.contains("evil]0;pwned"));
}

fn sarif_validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(include_str!("data/sarif-schema-2.1.0.json") /* vendored by the lint helper, see data/sarif-schema-2.1.0.SOURCE.md */).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the vendored SARIF schema compiles")
}

#[test]
fn sarif_snapshot_is_valid_sarif_2_1_0() {
    let r = fixture();
    let text = render::sarif(&r, &SarifOptions::default()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = sarif_validator();
    let errors: Vec<String> = validator
        .iter_errors(&v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "SARIF schema errors: {errors:#?}");
    // The validator does reject a broken log (so the check above means something).
    let mut broken = v.clone();
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(!validator.is_valid(&broken));
    let results = v["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    let levels: Vec<&str> = results
        .iter()
        .map(|r| r["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["note", "warning", "warning", "warning"]);
    assert_eq!(
        v.pointer("/runs/0/results/1/locations/0/physicalLocation/region/startLine"),
        Some(&serde_json::json!(5))
    );
    insta::assert_snapshot!("report_sarif", text);
}

#[test]
fn sarif_for_lint_findings_without_locations_is_valid() {
    let mut f = fixture().static_findings;
    f[0].location = None;
    f[1].location.as_mut().unwrap().file = "dir with space/ü#1.sql".to_owned();
    let text = render::sarif_for_findings(&f, "0.1.0", &SarifOptions::default()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let errors: Vec<String> = sarif_validator()
        .iter_errors(&v)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let results = v["runs"][0]["results"].as_array().unwrap();
    // Sorted by file and line; the finding without a location comes last.
    assert_eq!(
        results[0].pointer("/locations/0/physicalLocation/artifactLocation/uri"),
        Some(&serde_json::json!("dir%20with%20space/%C3%BC%231.sql"))
    );
    assert_eq!(results[3]["ruleId"], "constraint-missing-not-valid");
    assert!(results[3].get("locations").is_none());
}

const EVIL: &str = "<script>alert(1)</script>";

#[test]
fn html_escapes_every_report_string() {
    let mut r = fixture_with(|s| {
        s[2].shard = EVIL.to_owned();
        s[2].instance = "db-\"east\"-1 & <b>".to_owned();
        s[2].findings[0].message =
            format!("orphans in {EVIL}</script><img src=x onerror=alert(2)>");
    });
    r.migration.file = format!("{EVIL}.sql");
    r.rollback.script = Some(format!("-- {EVIL}\nSELECT '</pre>';"));
    r.steps[0].details = EVIL.to_owned();
    r.static_findings[0].message = EVIL.to_owned();
    r.rehearsals[0].statements[1].sql = EVIL.to_owned();
    let html = render::html(&r);
    assert!(
        !html.contains("<script>alert"),
        "raw script from the report in HTML"
    );
    assert!(!html.contains("<img"), "raw tag from the report in HTML");
    assert!(!html.contains("& <b>"), "raw tag from the report in HTML");
    assert!(html.contains(r#"db-\"east\"-1 \u0026 \u003cb\u003e"#));
    // Exactly our two script elements.
    assert_eq!(html.matches("<script").count(), 2);
    assert_eq!(html.matches("</script>").count(), 2);
    // The text is there, escaped.
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;.sql"));
    assert!(html.contains("\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"));
    // The embedded JSON still parses back to the report.
    let start = html.find("id=\"report-data\">").unwrap() + "id=\"report-data\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    let back: ValidationReport = serde_json::from_str(&html[start..end]).unwrap();
    assert_eq!(back, r);
}

#[test]
fn html_is_self_contained() {
    let html = render::html(&fixture());
    for needle in ["<link", "src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(needle), "external asset: {needle}");
    }
    assert!(html.contains("id=\"heatmap\""));
    assert!(html.contains("ERROR 23503: insert or update on table &quot;orders&quot;"));
    assert!(html.contains("ALTER TABLE customers ADD COLUMN legacy_code text;"));
}

/// The Markdown text with inline code spans removed.
fn outside_code_spans(md: &str) -> String {
    let chars: Vec<char> = md.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            // A backslash escape: keep both characters, they are not markup.
            out.extend(chars.get(i..i + 2).unwrap_or(&chars[i..]));
            i += 2;
        } else if chars[i] == '`' {
            let mut n = 0;
            while i + n < chars.len() && chars[i + n] == '`' {
                n += 1;
            }
            // Find the closing run of exactly n backticks.
            let mut j = i + n;
            let mut closed = None;
            while j < chars.len() {
                if chars[j] == '`' {
                    let mut m = 0;
                    while j + m < chars.len() && chars[j + m] == '`' {
                        m += 1;
                    }
                    if m == n {
                        closed = Some(j + m);
                        break;
                    }
                    j += m;
                } else {
                    j += 1;
                }
            }
            match closed {
                Some(end) => i = end,
                None => {
                    out.extend(&chars[i..i + n]);
                    i += n;
                }
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn markdown_escapes_shard_names() {
    let r = fixture_with(|s| s[2].shard = format!("{EVIL}|`x`"));
    let md = render::markdown(&r, &MarkdownOptions::default());
    // Inside code spans the text is literal (GitHub escapes it); outside it is escaped.
    let outside = outside_code_spans(&md);
    assert!(!outside.replace("\\<", "").contains("<script"), "{outside}");
    assert!(md.contains("`` <script>alert(1)</script>\\|`x` ``"), "{md}");
    assert!(md.contains("\\<script\\>alert(1)\\</script\\>"), "{md}");
}

#[test]
fn junit_escapes_and_drops_control_characters() {
    let r = fixture_with(|s| s[2].shard = format!("{EVIL}\u{1}&\"'"));
    let xml = render::junit(&r, &JunitOptions::default());
    assert!(
        xml.contains("name=\"&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&apos;\""),
        "{xml}"
    );
    assert!(!xml.contains('\u{1}'));
}

#[test]
fn write_all_writes_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let files = render::write_all(&fixture(), dir.path()).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "report.json",
            "report.md",
            "report.html",
            "report.sarif",
            "report.junit.xml",
            "report.txt",
            "rollback.sql"
        ]
    );
    let rollback = std::fs::read_to_string(dir.path().join("rollback.sql")).unwrap();
    assert_eq!(Some(rollback), fixture().rollback.script);
    for f in files.iter().filter(|f| !f.ends_with("rollback.sql")) {
        assert!(std::fs::metadata(f).unwrap().len() > 500, "{f:?} too small");
    }
}

/// A symlink planted in the report directory (by another user, or left behind) is replaced,
/// never followed: writing the report cannot overwrite or create a file elsewhere.
#[test]
fn write_all_never_follows_a_planted_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("report.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("created"), dir.path().join("report.md"))
        .unwrap();
    render::write_all(&fixture(), dir.path()).unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!outside.path().join("created").exists());
    let txt = std::fs::symlink_metadata(dir.path().join("report.txt")).unwrap();
    assert!(txt.is_file(), "the report replaced the symlink");
    assert!(
        std::fs::read_to_string(dir.path().join("report.md"))
            .unwrap()
            .len()
            > 500
    );
}

/// A report directory that belongs to another user is refused before anything is written:
/// its owner could swap the files or plant links in it at any time.
#[test]
fn write_all_refuses_a_directory_of_another_user() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempfile::tempdir().unwrap();
    let me = std::fs::metadata("/proc/self").unwrap().uid();
    if me != 0 {
        // Only root can give a directory away; the check itself is the same for everyone.
        return;
    }
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::os::unix::fs::chown(&shared, Some(65534), Some(65534)).unwrap();
    let err = render::write_all(&fixture(), &shared).unwrap_err();
    assert!(err.to_string().contains("belongs to another user"), "{err}");
    assert!(std::fs::read_dir(&shared).unwrap().next().is_none());
    // World-writable without the sticky bit: anyone can replace the files.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let err = render::write_all(&fixture(), &open).unwrap_err();
    assert!(err.to_string().contains("writable by every user"), "{err}");
}

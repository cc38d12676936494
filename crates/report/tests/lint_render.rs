//! Snapshots of every `deployclaw lint` rendering on a realistic multi-finding migration, and
//! checks of the contracts each format promises (DESIGN.md JSON keys, SARIF 2.1.0 schema,
//! GitHub workflow command escaping).

use gates::{Finding, Location, Severity};
use report::lint::{
    LintedFile, RuleInfo, Summary, TextOptions, ToolInfo, render_github, render_json, render_sarif,
    render_text,
};

const FILE: &str = "migrations/0042_orders_customer.sql";

const SOURCE: &str = "\
-- 0042: track which customer placed an order
SET lock_timeout = '2s';

ALTER TABLE orders ADD COLUMN customer_id bigint;

CREATE INDEX idx_orders_customer ON orders (customer_id);

ALTER TABLE orders
    ADD CONSTRAINT orders_customer_fk
    FOREIGN KEY (customer_id) REFERENCES customers (id);

ALTER TABLE orders ALTER COLUMN total TYPE numeric(12, 2);

UPDATE orders SET status = 'open' WHERE status IS NULL;
";

/// The location of `needle` (a whole statement, `;` included) in `source`, 1-based, columns in
/// characters, end inclusive — as the parser reports statement spans.
fn loc(file: &str, source: &str, statement: usize, needle: &str) -> Location {
    let start = source
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in source"));
    let end = start + needle.len() - 1; // byte of the last character (ASCII in these tests)
    let pos = |byte: usize| {
        let before = &source[..byte];
        let line = before.matches('\n').count() as u32 + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
        (line, col)
    };
    let (line, column) = pos(start);
    let (end_line, end_column) = pos(end);
    Location {
        file: file.to_string(),
        statement,
        line,
        column,
        end_line,
        end_column,
    }
}

#[allow(clippy::too_many_arguments)]
fn finding(
    rule: &str,
    code: &str,
    severity: Severity,
    location: Option<Location>,
    statement: Option<&str>,
    message: &str,
    help: Option<&str>,
) -> Finding {
    Finding {
        rule: rule.into(),
        code: code.into(),
        severity,
        location,
        statement: statement.map(Into::into),
        message: message.into(),
        help: help.map(Into::into),
        evidence: None,
    }
}

fn findings() -> Vec<Finding> {
    let idx = "CREATE INDEX idx_orders_customer ON orders (customer_id);";
    let fk = "ALTER TABLE orders\n    ADD CONSTRAINT orders_customer_fk\n    FOREIGN KEY (customer_id) REFERENCES customers (id);";
    let ty = "ALTER TABLE orders ALTER COLUMN total TYPE numeric(12, 2);";
    let upd = "UPDATE orders SET status = 'open' WHERE status IS NULL;";
    vec![
        finding(
            "require-concurrent-index",
            "DC101",
            Severity::Red,
            Some(loc(FILE, SOURCE, 2, idx)),
            Some("CREATE INDEX idx_orders_customer ON orders (customer_id)"),
            "CREATE INDEX without CONCURRENTLY takes a SHARE lock on \"orders\": writes (INSERT, UPDATE, DELETE) block until the index is built",
            Some(
                "CREATE INDEX CONCURRENTLY idx_orders_customer ON orders (customer_id);\n(run it outside a transaction block)",
            ),
        ),
        finding(
            "constraint-missing-not-valid",
            "DC103",
            Severity::Red,
            Some(loc(FILE, SOURCE, 3, fk)),
            Some("ALTER TABLE orders"),
            "ADD CONSTRAINT orders_customer_fk validates every existing row while holding a SHARE ROW EXCLUSIVE lock on \"orders\" and \"customers\"",
            Some(
                "add it NOT VALID, then VALIDATE CONSTRAINT orders_customer_fk in a separate transaction",
            ),
        ),
        finding(
            "changing-column-type",
            "DC108",
            Severity::Red,
            Some(loc(FILE, SOURCE, 4, ty)),
            Some("ALTER TABLE orders ALTER COLUMN total TYPE numeric(12, 2)"),
            "changing \"orders\".\"total\" to numeric(12, 2) rewrites the table under an ACCESS EXCLUSIVE lock: reads and writes block",
            Some("add a new column, backfill it in batches, then swap the columns"),
        ),
        finding(
            "unbatched-data-change",
            "DC120",
            Severity::Yellow,
            Some(loc(FILE, SOURCE, 5, upd)),
            Some("UPDATE orders SET status = 'open' WHERE status IS NULL"),
            "UPDATE of \"orders\" in one statement locks every matching row until the migration commits",
            Some("update in batches of a few thousand rows, outside the schema migration"),
        ),
        finding(
            "missing-lock-timeout",
            "DC121",
            Severity::Info,
            None,
            None,
            "statement_timeout is not set: a slow statement runs unbounded",
            None,
        ),
    ]
}

fn rules() -> Vec<RuleInfo> {
    let r = |code: &str, name: &str, sev: Severity, summary: &str| RuleInfo {
        code: code.into(),
        name: name.into(),
        default_severity: sev,
        summary: summary.into(),
        docs: format!("# {name}\n\n{summary}.\n\nSee `deployclaw explain {name}`."),
    };
    vec![
        r(
            "DC101",
            "require-concurrent-index",
            Severity::Red,
            "CREATE INDEX without CONCURRENTLY blocks writes",
        ),
        r(
            "DC103",
            "constraint-missing-not-valid",
            Severity::Red,
            "Adding a FOREIGN KEY or CHECK without NOT VALID scans the table under lock",
        ),
        r(
            "DC108",
            "changing-column-type",
            Severity::Red,
            "Changing a column's type usually rewrites the table",
        ),
        r(
            "DC120",
            "unbatched-data-change",
            Severity::Yellow,
            "Large UPDATE/DELETE in one statement",
        ),
        // DC121 is deliberately missing: the renderer must append a descriptor for it.
    ]
}

fn tool() -> ToolInfo {
    ToolInfo {
        name: "deployclaw".into(),
        version: "0.1.0".into(),
        information_uri: Some("https://example.invalid/deployclaw".into()),
    }
}

fn with_clean_file<R>(f: impl FnOnce(&[LintedFile<'_>]) -> R) -> R {
    let fs = findings();
    let files = [
        LintedFile {
            file: FILE,
            source: SOURCE,
            findings: &fs,
        },
        LintedFile {
            file: "migrations/0043_clean.sql",
            source: "SELECT 1;\n",
            findings: &[],
        },
    ];
    f(&files)
}

#[test]
fn text_rendering() {
    let out = with_clean_file(|files| render_text(files, &TextOptions { color: false }));
    assert!(!out.contains('\x1b'), "no colour unless asked");
    insta::assert_snapshot!(out);
}

#[test]
fn text_rendering_in_colour() {
    let out = with_clean_file(|files| render_text(files, &TextOptions { color: true }));
    assert!(out.contains("\x1b[1;31mred[DC101 require-concurrent-index]\x1b[0m"));
    // Make the escapes readable in the snapshot.
    insta::assert_snapshot!(out.replace('\x1b', "␛"));
}

#[test]
fn json_rendering() {
    let out = with_clean_file(render_json);
    insta::assert_snapshot!(out);
}

#[test]
fn json_has_the_design_contract_keys() {
    let out = with_clean_file(render_json);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let list = doc["findings"].as_array().expect("findings array");
    assert_eq!(list.len(), 5);
    for f in list {
        for key in [
            "rule",
            "severity",
            "line",
            "column",
            "statement",
            "message",
            "help",
        ] {
            assert!(f.get(key).is_some(), "key {key} missing in {f}");
        }
        let sev = f["severity"].as_str().expect("severity string");
        assert!(["red", "yellow", "info"].contains(&sev), "{sev}");
    }
    assert_eq!(list[0]["rule"], "require-concurrent-index");
    assert_eq!(list[0]["line"], 6);
    assert_eq!(list[0]["column"], 1);
    assert_eq!(list[1]["end_line"], 10);
    assert!(list[4]["line"].is_null(), "file-level finding has no line");
}

#[test]
fn sarif_rendering() {
    let out = with_clean_file(|files| render_sarif(files, &rules(), &tool()));
    insta::assert_snapshot!(out);
}

#[test]
fn sarif_maps_levels_indexes_and_exclusive_end_columns() {
    let out = with_clean_file(|files| render_sarif(files, &rules(), &tool()));
    let doc: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let run = &doc["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 5, "the unknown DC121 gets a descriptor");
    let results = run["results"].as_array().expect("results");
    let levels: Vec<&str> = results
        .iter()
        .map(|r| r["level"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(levels, ["error", "error", "error", "warning", "note"]);
    for r in results {
        let i = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
    }
    // `CREATE INDEX ...;` is 57 characters on line 6: SARIF's endColumn is one past the end.
    let region = &results[0]["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startColumn"], 1);
    assert_eq!(region["endColumn"], 58);
}

#[test]
fn sarif_validates_against_the_official_schema() {
    let schema_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sarif-schema-2.1.0.json"
    );
    let schema_text = std::fs::read_to_string(schema_path).expect("vendored SARIF schema");
    let schema: serde_json::Value = serde_json::from_str(&schema_text).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");

    let out = with_clean_file(|files| render_sarif(files, &rules(), &tool()));
    let log: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let errors: Vec<String> = validator
        .iter_errors(&log)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "SARIF output violates the schema:\n{}",
        errors.join("\n")
    );

    // The schema is strict enough to catch a broken log: prove the validator is really checking.
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["level"] = "red".into();
    assert!(
        !validator.is_valid(&broken),
        "a SARIF level of `red` must be rejected"
    );

    // An empty run (no findings) is valid too.
    let empty = render_sarif(
        &[LintedFile {
            file: "x.sql",
            source: "",
            findings: &[],
        }],
        &rules(),
        &tool(),
    );
    let empty: serde_json::Value = serde_json::from_str(&empty).expect("valid JSON");
    assert!(validator.is_valid(&empty));
}

#[test]
fn github_rendering() {
    let out = with_clean_file(render_github);
    insta::assert_snapshot!(out);
}

#[test]
fn github_lines_escape_properties_and_message() {
    let f = [finding(
        "renaming-column",
        "DC109",
        Severity::Yellow,
        Some(Location {
            file: "a,b:c.sql".into(),
            statement: 0,
            line: 1,
            column: 1,
            end_line: 2,
            end_column: 3,
        }),
        None,
        "100% sure\nsecond line",
        Some("fix: it"),
    )];
    let out = render_github(&[LintedFile {
        file: "dir/a,b:c.sql",
        source: "",
        findings: &f,
    }]);
    assert_eq!(
        out,
        "::warning file=dir/a%2Cb%3Ac.sql,line=1,col=1,endLine=2,endColumn=3,title=DC109 renaming-column::100%25 sure%0Asecond line%0Ahelp: fix: it\n"
    );
}

#[test]
fn summary_counts_and_wording() {
    let s = with_clean_file(Summary::of);
    assert_eq!(
        (s.red, s.yellow, s.info, s.files, s.files_with_findings),
        (3, 1, 1, 2, 1)
    );
    assert_eq!(
        s.to_string(),
        "3 red, 1 yellow, 1 info in 1 file (2 files checked)"
    );
    assert_eq!(
        Summary {
            files: 3,
            ..Summary::default()
        }
        .to_string(),
        "no findings in 3 files"
    );
}

#[test]
fn long_statements_tabs_and_unicode_render_with_aligned_carets() {
    let source = "CREATE TABLE \"bıgınt\" (\n\tid serial PRIMARY KEY,\n    a int,\n    b int,\n    c int,\n    d int,\n    e int,\n    f int,\n    g int,\n    h text\n);\nDROP  TABLE \"café\";\t-- gone\n";
    let table = loc(
        "t.sql",
        source,
        0,
        &source[..source.find(";\nDROP").map_or(0, |i| i + 1)],
    );
    let drop = {
        // `DROP  TABLE "café";` on line 12: columns count characters, not bytes.
        Location {
            file: "t.sql".into(),
            statement: 1,
            line: 12,
            column: 1,
            end_line: 12,
            end_column: 19,
        }
    };
    let fs = vec![
        finding(
            "adding-serial-primary-key",
            "DC113",
            Severity::Yellow,
            Some(table),
            None,
            "serial primary key",
            None,
        ),
        finding(
            "dropping-table",
            "DC112",
            Severity::Red,
            Some(drop),
            None,
            "DROP TABLE \"café\" loses its data",
            Some("keep it until no code reads it"),
        ),
    ];
    let out = render_text(
        &[LintedFile {
            file: "t.sql",
            source,
            findings: &fs,
        }],
        &TextOptions::default(),
    );
    insta::assert_snapshot!(out);
}

#[test]
fn locations_past_the_end_of_the_source_do_not_panic() {
    let f = [finding(
        "ban-truncate",
        "DC114",
        Severity::Red,
        Some(Location {
            file: "x".into(),
            statement: 9,
            line: 40,
            column: 200,
            end_line: 39,
            end_column: 0,
        }),
        None,
        "m",
        Some("h"),
    )];
    let out = render_text(
        &[LintedFile {
            file: "x.sql",
            source: "SELECT 1;",
            findings: &f,
        }],
        &TextOptions::default(),
    );
    assert!(out.starts_with("red[DC114 ban-truncate]: m\n"), "{out}");
    assert!(out.contains("--> x.sql:40:200"), "{out}");
    let f2 = [finding(
        "ban-truncate",
        "DC114",
        Severity::Red,
        Some(Location {
            file: "x".into(),
            statement: 0,
            line: 1,
            column: 50,
            end_line: 1,
            end_column: 3,
        }),
        None,
        "m",
        None,
    )];
    let out = render_text(
        &[LintedFile {
            file: "x.sql",
            source: "SELECT 1;",
            findings: &f2,
        }],
        &TextOptions::default(),
    );
    assert!(out.contains("1 | SELECT 1;"), "{out}");
}

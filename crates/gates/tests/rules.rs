//! Every built-in rule against its fixture, through the full `Registry::lint`: exact expected
//! findings (`-- expect: rule` comments), a rendered snapshot, documentation completeness, and
//! the safe-idioms file that must produce nothing.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gates::migration_parser::{Migration, parse};
use gates::{Config, Finding, Registry};

/// The catalog from DESIGN.md with the codes assigned to each rule.
const CATALOG: &[(&str, &str)] = &[
    ("DC101", "require-concurrent-index"),
    ("DC102", "require-concurrent-index-drop"),
    ("DC103", "constraint-missing-not-valid"),
    ("DC104", "adding-unique-constraint"),
    ("DC105", "setting-not-null"),
    ("DC106", "adding-exclusion-constraint"),
    ("DC107", "refresh-matview-blocking"),
    ("DC108", "multiple-exclusive-locks"),
    ("DC201", "adding-required-field"),
    ("DC202", "adding-volatile-default"),
    ("DC203", "changing-column-type"),
    ("DC204", "adding-serial-primary-key"),
    ("DC205", "unbatched-data-change"),
    ("DC206", "changing-collation"),
    ("DC207", "table-rewrite-maintenance"),
    ("DC301", "dropping-column"),
    ("DC302", "dropping-table"),
    ("DC303", "renaming-column"),
    ("DC304", "renaming-table"),
    ("DC305", "ban-truncate"),
    ("DC306", "ban-drop-database"),
    ("DC307", "ban-drop-schema"),
    ("DC308", "adding-foreign-key-cascade"),
    ("DC401", "hardcoded-tenant-schema"),
    ("DC501", "missing-lock-timeout"),
    ("DC502", "concurrent-in-transaction"),
    ("DC503", "enum-value-in-transaction"),
    ("DC901", "unparsed-statement"),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Parse a fixture with the configuration in its leading `-- config: <toml>` lines and lint it
/// with the built-in registry.
fn lint_fixture(name: &str) -> (Migration, Vec<Finding>) {
    let file = format!("{name}.sql");
    let src = std::fs::read_to_string(fixtures().join(&file)).expect("fixture exists");
    let toml: String = src
        .lines()
        .map_while(|l| l.strip_prefix("-- config: "))
        .map(|l| format!("{l}\n"))
        .collect();
    let config = Config::from_toml_str(&file, &toml).expect("fixture config parses");
    let migration = parse(&file, &src, &config.parse_options()).expect("fixture parses");
    let findings = Registry::builtin().lint(&migration, &config);
    (migration, findings)
}

/// `(statement index, rule)` pairs declared by `-- expect: a, b` comment lines directly above
/// a statement.
fn expectations(m: &Migration) -> BTreeSet<(usize, String)> {
    let lines: Vec<&str> = m.source.lines().collect();
    let mut out = BTreeSet::new();
    for stmt in &m.statements {
        let mut l = stmt.span.line as usize - 1; // 0-based index of the statement's first line
        while l > 0 {
            l -= 1;
            let Some(comment) = lines[l].trim().strip_prefix("--") else {
                break;
            };
            if let Some(rules) = comment.trim().strip_prefix("expect:") {
                for r in rules.split(',') {
                    out.insert((stmt.index, r.trim().to_string()));
                }
            }
        }
    }
    out
}

/// `file:line:col: severity[CODE rule] message`, help and statement, one block per finding.
fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let loc = f
            .location
            .as_ref()
            .expect("static findings have a location");
        writeln!(
            out,
            "{}:{}:{}: {}[{} {}] {}",
            loc.file, loc.line, loc.column, f.severity, f.code, f.rule, f.message
        )
        .unwrap();
        if let Some(help) = &f.help {
            writeln!(out, "  help: {help}").unwrap();
        }
        if let Some(stmt) = &f.statement {
            writeln!(out, "  | {stmt}").unwrap();
        }
    }
    if out.is_empty() {
        out.push_str("(no findings)\n");
    }
    out
}

fn actual(findings: &[Finding]) -> BTreeSet<(usize, String)> {
    findings
        .iter()
        .map(|f| {
            (
                f.location.as_ref().map_or(usize::MAX, |l| l.statement),
                f.rule.clone(),
            )
        })
        .collect()
}

#[test]
fn every_rule_fires_on_its_fixture_and_only_where_expected() {
    let registry = Registry::builtin();
    for rule in registry.iter() {
        let name = rule.meta().name;
        let (migration, findings) = lint_fixture(name);
        let expected = expectations(&migration);
        assert!(
            expected.iter().any(|(_, r)| r == name),
            "fixture {name}.sql must expect at least one `{name}` finding"
        );
        assert_eq!(
            actual(&findings),
            expected,
            "findings of {name}.sql:\n{}",
            render(&findings)
        );
        insta::assert_snapshot!(name, render(&findings));
    }
}

#[test]
fn safe_idioms_produce_no_findings() {
    let (migration, findings) = lint_fixture("safe-idioms");
    assert!(
        migration.statements.len() > 40,
        "the safe-idioms file is parsed whole"
    );
    assert_eq!(
        actual(&findings),
        expectations(&migration),
        "{}",
        render(&findings)
    );
    assert!(findings.is_empty(), "{}", render(&findings));
}

#[test]
fn registry_matches_the_catalog() {
    let registry = Registry::builtin();
    let got: Vec<(String, String)> = registry
        .iter()
        .map(|r| (r.meta().code.to_string(), r.meta().name.to_string()))
        .collect();
    let want: Vec<(String, String)> = CATALOG
        .iter()
        .map(|(c, n)| (c.to_string(), n.to_string()))
        .collect();
    assert_eq!(got, want);
    let codes: BTreeSet<_> = got.iter().map(|(c, _)| c).collect();
    let names: BTreeSet<_> = got.iter().map(|(_, n)| n).collect();
    assert_eq!(codes.len(), got.len(), "codes are unique");
    assert_eq!(names.len(), got.len(), "names are unique");
    for (code, name) in CATALOG {
        assert_eq!(registry.get(code).map(|r| r.meta().name), Some(*name));
        assert_eq!(
            registry.get(&name.to_uppercase()).map(|r| r.meta().code),
            Some(*code)
        );
    }
}

#[test]
fn every_rule_has_docs_fixture_and_snapshot() {
    let snapshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    for rule in Registry::builtin().iter() {
        let meta = rule.meta();
        for section in ["What it does", "Why is this bad?", "Safe alternative"] {
            let body = meta.section(section).unwrap_or_default();
            assert!(
                body.len() > 20,
                "{}: section `## {section}` is missing or empty",
                meta.name
            );
        }
        let why = meta.section("Why is this bad?").unwrap_or_default();
        let sev = format!("Severity **{}**", meta.severity);
        assert!(
            why.contains(&sev),
            "{}: `Why is this bad?` justifies the severity with `{sev}`",
            meta.name
        );
        let safe = meta.section("Safe alternative").unwrap_or_default();
        assert!(
            safe.contains("```sql"),
            "{}: the safe alternative shows SQL",
            meta.name
        );
        assert!(
            meta.explain()
                .starts_with(&format!("# {} ({})", meta.name, meta.code))
        );
        assert!(
            fixtures().join(format!("{}.sql", meta.name)).is_file(),
            "{}: fixture missing",
            meta.name
        );
        assert!(
            snapshots
                .join(format!("rules__{}.snap", meta.name))
                .is_file(),
            "{}: snapshot missing",
            meta.name
        );
    }
}

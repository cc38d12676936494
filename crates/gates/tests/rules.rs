//! Every built-in rule against its fixture, through the full `Registry::lint`: exact expected
//! findings (`-- expect: rule` comments), a rendered snapshot, documentation completeness, and
//! the safe-idioms file that must produce nothing.
//!
//! Per-shard rules have two fixture files: `<rule>.sql` (the migration, with `-- expect:` lines
//! as for static rules) and `<rule>.json` (the shard's evidence, see [`ShardFixture`]); their
//! findings come from the per-shard rules only (`Registry::lint_scoped`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gates::evidence::{
    FkAction, FkEdge, FkGraph, LiveEvidence, RehearsalResult, ShardEvidence, TableName,
};
use gates::migration_parser::{Migration, parse};
use gates::{
    Config, CustomProbeOutcome, DriftItem, Finding, Registry, RollbackEvidence, RuleContext,
    RuleScope,
};
use serde::Deserialize;
use serde_json::{Value, json};

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
    ("DC109", "observed-lock"),
    ("DC110", "lock-time-budget"),
    ("DC111", "lock-queue-risk"),
    ("DC201", "adding-required-field"),
    ("DC202", "adding-volatile-default"),
    ("DC203", "changing-column-type"),
    ("DC204", "adding-serial-primary-key"),
    ("DC205", "unbatched-data-change"),
    ("DC206", "changing-collation"),
    ("DC207", "table-rewrite-maintenance"),
    ("DC208", "observed-rewrite"),
    ("DC301", "dropping-column"),
    ("DC302", "dropping-table"),
    ("DC303", "renaming-column"),
    ("DC304", "renaming-table"),
    ("DC305", "ban-truncate"),
    ("DC306", "ban-drop-database"),
    ("DC307", "ban-drop-schema"),
    ("DC308", "adding-foreign-key-cascade"),
    ("DC311", "fk-orphans"),
    ("DC312", "not-null-violations"),
    ("DC313", "unique-violations"),
    ("DC314", "check-violations"),
    ("DC315", "cast-failures"),
    ("DC316", "statement-fails"),
    ("DC317", "rollback-irreversible"),
    ("DC318", "rollback-mismatch"),
    ("DC319", "rollback-unproven"),
    ("DC320", "breaking-change-in-use"),
    ("DC401", "hardcoded-tenant-schema"),
    ("DC402", "schema-drift"),
    ("DC403", "cascade-reach"),
    ("DC404", "shard-unreachable"),
    ("DC405", "non-tenant-object"),
    ("DC406", "second-tenant-fails"),
    ("DC407", "replica-not-used"),
    ("DC501", "missing-lock-timeout"),
    ("DC502", "concurrent-in-transaction"),
    ("DC503", "enum-value-in-transaction"),
    ("DC504", "uncommitted-transaction"),
    ("DC505", "in-place-refused"),
    ("DC901", "unparsed-statement"),
    ("DC902", "query-stats-unavailable"),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Parse a fixture with the configuration in its leading `-- config: <toml>` lines.
fn load_fixture(name: &str) -> (Migration, Config) {
    let file = format!("{name}.sql");
    let src = std::fs::read_to_string(fixtures().join(&file)).expect("fixture exists");
    let toml: String = src
        .lines()
        .map_while(|l| l.strip_prefix("-- config: "))
        .map(|l| format!("{l}\n"))
        .collect();
    let config = Config::from_toml_str(&file, &toml).expect("fixture config parses");
    let migration = parse(&file, &src, &config.parse_options()).expect("fixture parses");
    (migration, config)
}

/// Parse a fixture and lint it with the built-in registry.
fn lint_fixture(name: &str) -> (Migration, Vec<Finding>) {
    let (migration, config) = load_fixture(name);
    let findings = Registry::builtin().lint(&migration, &config);
    (migration, findings)
}

/// The evidence file of a per-shard rule (`tests/fixtures/<rule>.json`). `shard` and
/// `rehearsal` are partial JSON merged over a base [`ShardEvidence`] / [`RehearsalResult`] and
/// deserialized into the simulator's real types.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ShardFixture {
    #[serde(default)]
    shard: Value,
    rehearsal: Option<Value>,
    #[serde(default)]
    drift: Vec<DriftItem>,
    drift_reference: Option<String>,
    /// Foreign keys of the shard's schema: `[from, to, on_delete]`.
    #[serde(default)]
    fks: Vec<(String, String, String)>,
    rollback: Option<RollbackEvidence>,
    #[serde(default)]
    custom_probes: BTreeMap<String, CustomProbeOutcome>,
    lock_budget_ms: Option<u64>,
    /// Rules expected to report about the shard as a whole (no statement).
    #[serde(default)]
    expect_unlocated: Vec<String>,
}

const SCHEMA: &str = "tenant_0042";

fn merge(base: Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(mut b), Value::Object(o)) => {
            for (k, v) in o {
                b.insert(k.clone(), v.clone());
            }
            Value::Object(b)
        }
        (b, Value::Null) => b,
        (_, o) => o.clone(),
    }
}

fn base_shard() -> Value {
    json!({
        "shard": SCHEMA, "instance": "db-1", "database": "app", "schema": SCHEMA,
        "fingerprint": "fp-a", "catalog": null, "server_version": 16, "probes": [],
        "tables": [], "rehearsal": "fp-a", "estimate": null, "estimated_lock_ms": 0,
        "unreachable": null, "incomplete": null, "duration_ms": 40
    })
}

fn base_rehearsal() -> Value {
    json!({
        "fingerprint": "fp-a", "shard": "tenant_0001", "schema": "tenant_0001", "mode": "shadow",
        "target": "ephemeral", "server_version": 16, "setup_error": null, "clone_errors": [],
        "statements": [], "duration_ms": 120
    })
}

/// The foreign-key graph of `SCHEMA` with one table per name in `fks` and the foreign keys
/// (`(from, to, on_delete)`, the action in snake_case as serialized).
fn fk_graph(fks: &[(String, String, String)]) -> FkGraph {
    let q = |t: &str| TableName::new(SCHEMA, t);
    let mut g = FkGraph::new();
    for (from, to, action) in fks {
        let action: FkAction =
            serde_json::from_value(json!(action)).expect("an ON DELETE action in snake_case");
        let mut edge = FkEdge::new(format!("{from}_{to}_fk"), action);
        edge.columns = vec![format!("{to}_id")];
        edge.referenced_columns = vec!["id".into()];
        g.add_foreign_key(q(from), q(to), edge);
    }
    g
}

/// Run the per-shard rules of the built-in registry on a per-shard fixture.
fn shard_fixture(name: &str) -> (Migration, Vec<Finding>, Vec<String>) {
    let (migration, config) = load_fixture(name);
    let text = std::fs::read_to_string(fixtures().join(format!("{name}.json")))
        .expect("evidence fixture exists");
    let fx: ShardFixture = serde_json::from_str(&text).expect("evidence fixture is valid");
    let evidence: ShardEvidence =
        serde_json::from_value(merge(base_shard(), &fx.shard)).expect("ShardEvidence JSON");
    let rehearsal: Option<RehearsalResult> = fx
        .rehearsal
        .as_ref()
        .map(|r| serde_json::from_value(merge(base_rehearsal(), r)).expect("RehearsalResult JSON"));
    let graph = (!fx.fks.is_empty()).then(|| fk_graph(&fx.fks));
    let mut ctx = RuleContext::new(&migration, &config).with_shard(&evidence);
    if let Some(r) = &rehearsal {
        ctx = ctx.with_rehearsal(r);
    }
    if !fx.drift.is_empty() {
        ctx = ctx.with_drift_items(fx.drift.clone());
    }
    if let Some(r) = &fx.drift_reference {
        ctx = ctx.with_drift_reference(r.clone());
    }
    if let Some(g) = &graph {
        ctx = ctx.with_fk_graph(g);
    }
    if let Some(r) = &fx.rollback {
        ctx = ctx.with_rollback(r);
    }
    for (k, v) in &fx.custom_probes {
        ctx = ctx.with_custom_probe(k.clone(), v.clone());
    }
    if let Some(b) = fx.lock_budget_ms {
        ctx = ctx.with_lock_budget_ms(b);
    }
    let findings = Registry::builtin().lint_scoped(&ctx, Some(RuleScope::Shard));
    (migration, findings, fx.expect_unlocated)
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
        match f.location.as_ref() {
            Some(loc) => write!(out, "{}:{}:{}: ", loc.file, loc.line, loc.column).unwrap(),
            None => write!(out, "(shard): ").unwrap(),
        }
        writeln!(out, "{}[{} {}] {}", f.severity, f.code, f.rule, f.message).unwrap();
        if let Some(help) = &f.help {
            writeln!(out, "  help: {help}").unwrap();
        }
        if let Some(stmt) = &f.statement {
            writeln!(out, "  | {stmt}").unwrap();
        }
        if let Some(ev) = &f.evidence {
            writeln!(out, "  evidence: {ev}").unwrap();
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
    for rule in registry
        .iter()
        .filter(|r| r.meta().scope == RuleScope::Static)
    {
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
fn every_shard_rule_fires_on_its_evidence_fixture_and_only_where_expected() {
    let registry = Registry::builtin();
    let shard_rules: Vec<&str> = registry
        .iter()
        .filter(|r| r.meta().scope == RuleScope::Shard)
        .map(|r| r.meta().name)
        .collect();
    assert_eq!(shard_rules.len(), 20, "{shard_rules:?}");
    for name in shard_rules {
        let (migration, findings, unlocated) = shard_fixture(name);
        let mut expected = expectations(&migration);
        for r in unlocated {
            expected.insert((usize::MAX, r));
        }
        assert!(
            expected.iter().any(|(_, r)| r == name),
            "fixture {name}.sql/.json must expect at least one `{name}` finding"
        );
        assert_eq!(
            actual(&findings),
            expected,
            "findings of {name}:\n{}",
            render(&findings)
        );
        for f in &findings {
            assert!(
                f.evidence.is_some(),
                "{name}: every finding carries evidence: {f:?}"
            );
        }
        insta::assert_snapshot!(name, render(&findings));
    }
}

/// A cast to a domain the migration creates: the shard's rows that break the domain's CHECK
/// or NOT NULL are findings of those rules, naming the domain (the probes read them on the
/// shard; the rehearsal's tables are empty and would pass).
#[test]
fn data_findings_of_a_created_domain_name_it() {
    let (migration, findings, _) = shard_fixture("domain-cast");
    assert_eq!(
        actual(&findings),
        expectations(&migration),
        "{}",
        render(&findings)
    );
    let text = render(&findings);
    assert_eq!(
        text.matches("domain `positive_amount`").count(),
        2,
        "{text}"
    );
    insta::assert_snapshot!("domain-cast", text);
}

/// The same failed proof is red for a rollback the user supplied and yellow ("no proven
/// rollback") for one deployclaw generated: a wrong generated rollback is never the
/// migration's fault (issue 13).
#[test]
fn a_generated_rollback_that_does_not_restore_the_catalog_is_never_red() {
    let (_, generated, _) = shard_fixture("rollback-unproven");
    assert!(
        generated.iter().all(|f| f.severity != gates::Severity::Red),
        "{}",
        render(&generated)
    );
    assert!(generated.iter().any(|f| f.rule == "rollback-unproven"));
    let (_, supplied, _) = shard_fixture("rollback-mismatch");
    assert!(
        supplied
            .iter()
            .any(|f| f.rule == "rollback-mismatch" && f.severity == gates::Severity::Red)
    );
    assert!(supplied.iter().all(|f| f.rule != "rollback-unproven"));
}

#[test]
fn shard_rules_are_silent_without_shard_evidence() {
    for rule in Registry::builtin()
        .iter()
        .filter(|r| r.meta().scope != RuleScope::Static)
    {
        let name = rule.meta().name;
        let (migration, config) = load_fixture(name);
        let ctx = RuleContext::new(&migration, &config);
        assert!(rule.check(&ctx).is_empty(), "{name} fired without evidence");
    }
}

/// The evidence file of a fleet rule (`tests/fixtures/<rule>.json`): the run's live evidence
/// by shard id.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFixture {
    live: BTreeMap<String, LiveEvidence>,
    expect_unlocated: Vec<String>,
}

#[test]
fn every_fleet_rule_fires_once_on_its_evidence_fixture() {
    let registry = Registry::builtin();
    let fleet_rules: Vec<&str> = registry
        .iter()
        .filter(|r| r.meta().scope == RuleScope::Fleet)
        .map(|r| r.meta().name)
        .collect();
    assert_eq!(fleet_rules, ["query-stats-unavailable"]);
    for name in fleet_rules {
        let (migration, config) = load_fixture(name);
        let text = std::fs::read_to_string(fixtures().join(format!("{name}.json")))
            .expect("evidence fixture exists");
        let fx: FleetFixture = serde_json::from_str(&text).expect("evidence fixture is valid");
        let ctx = RuleContext::new(&migration, &config).with_fleet_live(&fx.live);
        let findings = registry.lint_scoped(&ctx, Some(RuleScope::Fleet));
        let mut expected = expectations(&migration);
        expected.extend(fx.expect_unlocated.into_iter().map(|r| (usize::MAX, r)));
        assert_eq!(actual(&findings), expected, "{}", render(&findings));
        assert_eq!(findings.len(), 1, "once per run: {}", render(&findings));
        // Neither static linting nor a shard's evaluation runs a fleet rule.
        assert!(
            registry
                .lint(&migration, &config)
                .iter()
                .all(|f| f.rule != name)
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
        if meta.scope != RuleScope::Static {
            assert!(
                fixtures().join(format!("{}.json", meta.name)).is_file(),
                "{}: evidence fixture (.json) missing",
                meta.name
            );
        }
        assert!(
            snapshots
                .join(format!("rules__{}.snap", meta.name))
                .is_file(),
            "{}: snapshot missing",
            meta.name
        );
    }
}

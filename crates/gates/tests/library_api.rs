//! The library API for embedders and rule authors: directory linting (`gates::lint`), the test
//! helpers (`gates::testing`), evidence built by hand (`gates::evidence` builders) and the
//! duration flag of `RuleMeta` that drives the per-shard demotion within the lock budget.

use gates::evidence::{
    LockEstimate, ProbeKind, ProbeResult, ShardEvidence, StatementEstimate, TableStats,
};
use gates::lint::{LintInput, lint_dir, lint_inputs};
use gates::migration_parser::{ParseOptions, parse};
use gates::testing::{assert_findings, lint_sql};
use gates::{Config, GatesError, Registry, RuleContext, Severity, evaluate_shard};

#[test]
fn lint_dir_walks_in_natural_order_and_reports_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("nested");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(
        dir.path().join("10_index.sql"),
        "CREATE INDEX i ON t (c);\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("2_empty.sql"), "-- nothing yet\n").unwrap();
    std::fs::write(sub.join("1_bad.sql"), "SELECT 'unterminated;\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "DROP TABLE t;").unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::write(dir.path().join(".git").join("x.sql"), "DROP TABLE t;").unwrap();

    let results = lint_dir(&Registry::builtin(), &Config::default(), dir.path()).unwrap();
    let names: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(f) => f.name.rsplit('/').next().unwrap().to_string(),
            Err(e) => format!("error: {e}"),
        })
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "2_empty.sql");
    assert_eq!(names[1], "10_index.sql");
    // An empty file found in a directory lints cleanly.
    assert!(results[0].as_ref().unwrap().findings.is_empty());
    assert_findings(
        &results[1].as_ref().unwrap().findings,
        &[("require-concurrent-index", 1), ("missing-lock-timeout", 1)],
    );
    // A file that is not SQL text is that file's error, with its position.
    match &results[2] {
        Err(GatesError::Parse { file, line, .. }) => {
            assert!(file.ends_with("nested/1_bad.sql"), "{file}");
            assert_eq!(*line, 1);
        }
        other => panic!("expected a parse error: {other:?}"),
    }
    let missing = lint_dir(
        &Registry::builtin(),
        &Config::default(),
        &dir.path().join("nope"),
    );
    assert!(
        matches!(missing, Err(GatesError::Read { .. })),
        "{missing:?}"
    );
}

#[test]
fn lint_inputs_keeps_the_input_order_and_refuses_empty_named_inputs() {
    let inputs: Vec<LintInput> = (0..40)
        .map(|i| LintInput::new(format!("m{i}.sql"), format!("CREATE INDEX i{i} ON t (c);")))
        .chain([LintInput::new("empty.sql", "")])
        .collect();
    let out = lint_inputs(
        &Registry::builtin(),
        &Config::default(),
        &inputs,
        &ParseOptions::default(),
    );
    for (i, r) in out.iter().take(40).enumerate() {
        let f = r.as_ref().unwrap();
        assert_eq!(f.name, format!("m{i}.sql"));
        assert!(f.source.contains(&format!("i{i}")));
    }
    assert!(matches!(&out[40], Err(GatesError::NoStatements { file }) if file == "empty.sql"));
}

#[test]
fn lint_sql_and_assert_findings_for_rule_authors() {
    let findings = lint_sql(
        &Registry::builtin(),
        "SET lock_timeout = '1s';\nALTER TABLE orders RENAME COLUMN a TO b;\n",
    );
    assert_findings(&findings, &[("DC303", 2)]);
    let wrong = std::panic::catch_unwind(|| assert_findings(&findings, &[("ban-truncate", 2)]));
    let msg = *wrong.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("findings differ"), "{msg}");
    assert!(msg.contains("renaming-column"), "{msg}");
}

#[test]
fn duration_rules_are_flagged_in_their_metadata() {
    let registry = Registry::builtin();
    let flagged: Vec<&str> = registry
        .iter()
        .filter(|r| r.meta().duration)
        .map(|r| r.meta().name)
        .collect();
    assert_eq!(
        flagged,
        [
            "require-concurrent-index",
            "constraint-missing-not-valid",
            "adding-unique-constraint",
            "setting-not-null",
            "adding-exclusion-constraint",
            "refresh-matview-blocking",
            "adding-volatile-default",
            "changing-column-type",
            "adding-serial-primary-key",
            "changing-collation",
            "table-rewrite-maintenance",
        ]
    );
}

#[test]
fn duration_findings_within_the_budget_are_demoted_on_a_shard() {
    let config = Config::default();
    let sql = "SET lock_timeout = '1s';\nCREATE INDEX i ON orders (c);\nALTER TABLE orders RENAME COLUMN a TO b;\n";
    let m = parse("m.sql", sql, &config.parse_options()).unwrap();
    let registry = Registry::builtin();
    let shard = ShardEvidence::new("tenant_1", "tenant_1")
        .with_table(TableStats::new("tenant_1", "orders").with_bytes(10_000, 8_000))
        .with_estimate(LockEstimate::of(vec![
            StatementEstimate::new(1, 20.0),
            StatementEstimate::new(2, 5.0),
        ]));
    let verdict = evaluate_shard(&registry, &RuleContext::new(&m, &config).with_shard(&shard));
    let mut findings = verdict.findings;
    registry.demote_within_budget(&mut findings, shard.estimate.as_ref(), 2_000);
    let sev = |rule: &str| findings.iter().find(|f| f.rule == rule).map(|f| f.severity);
    // CREATE INDEX: a duration rule, 20 ms within 2 s → informational on this shard.
    assert_eq!(sev("require-concurrent-index"), Some(Severity::Info));
    // A rename breaks running code however fast it is: never demoted.
    assert_eq!(sev("renaming-column"), Some(Severity::Yellow));
    // Over the budget: stays yellow.
    let mut again =
        evaluate_shard(&registry, &RuleContext::new(&m, &config).with_shard(&shard)).findings;
    registry.demote_within_budget(&mut again, shard.estimate.as_ref(), 10);
    assert_eq!(
        again
            .iter()
            .find(|f| f.rule == "require-concurrent-index")
            .map(|f| f.severity),
        Some(Severity::Yellow)
    );
}

#[test]
fn evidence_builders_feed_per_shard_rules() {
    let config = Config::default();
    let m = parse(
        "m.sql",
        "SET lock_timeout = '1s';\nALTER TABLE orders ALTER COLUMN note SET NOT NULL;\n",
        &config.parse_options(),
    )
    .unwrap();
    let shard = ShardEvidence::new("tenant_9", "tenant_9").with_probe(
        ProbeResult::new(
            "tenant_9",
            ProbeKind::NotNullViolations,
            "tenant_9",
            "orders",
        )
        .for_statement(1)
        .on_column("note")
        .with_count(4, true),
    );
    let v = evaluate_shard(
        &Registry::builtin(),
        &RuleContext::new(&m, &config).with_shard(&shard),
    );
    assert!(
        v.findings
            .iter()
            .any(|f| f.rule == "not-null-violations" && f.severity == Severity::Red),
        "{:#?}",
        v.findings
    );
}

//! Lint every up and down script of the real migration corpus (../shared/corpus) through the
//! library API — the same parse + `Registry::lint` the `lint` command runs — and snapshot how
//! often each rule fires, per project and in total, so any change in behaviour shows up in review.
//!
//! Each file is parsed with the transaction mode its migration tool uses: Diesel, sqlx,
//! golang-migrate and harness's migrator run a file as one transaction (`wrap-file`), except the
//! crates.io migrations whose `metadata.toml` says `run_in_transaction = false` (`autocommit`).
//!
//! Set `DEPLOYCLAW_CORPUS_DUMP=FILE` to also write every finding as a text diagnostic to FILE,
//! for reading them by hand.

use gates::{Config, Registry};
use migration_parser::{ParseOptions, StatementKind, TransactionMode};
use report::lint::{LintedFile, TextOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

/// One file of the corpus with the transaction mode its tool runs it in.
struct Input {
    path: PathBuf,
    mode: TransactionMode,
}

fn order(project: &str) -> Vec<String> {
    let p = Path::new(CORPUS).join(project).join("ORDER.txt");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn existing(path: PathBuf, mode: TransactionMode, out: &mut Vec<Input>) {
    assert!(path.is_file(), "corpus file missing: {}", path.display());
    out.push(Input { path, mode });
}

/// Up scripts in ORDER.txt order, then down scripts in the order the tool reverts them.
fn inputs(project: &str) -> Vec<Input> {
    let dir = Path::new(CORPUS).join(project).join("migrations");
    let wrap = TransactionMode::WrapFile;
    let mut out = Vec::new();
    match project {
        "crates.io" => {
            let names = order(project);
            let mode_of = |name: &str| {
                let meta = std::fs::read_to_string(dir.join(name).join("metadata.toml"))
                    .unwrap_or_default();
                let no_tx = meta.lines().any(|l| {
                    let l: String = l.chars().filter(|c| !c.is_whitespace()).collect();
                    l == "run_in_transaction=false"
                });
                if no_tx {
                    TransactionMode::Autocommit
                } else {
                    wrap
                }
            };
            for n in &names {
                existing(dir.join(n).join("up.sql"), mode_of(n), &mut out);
            }
            for n in names.iter().rev() {
                existing(dir.join(n).join("down.sql"), mode_of(n), &mut out);
            }
        }
        "docs.rs" | "chirpstack-application-server" => {
            let names = order(project);
            for n in &names {
                existing(dir.join(format!("{n}.up.sql")), wrap, &mut out);
            }
            for n in names.iter().rev() {
                existing(dir.join(format!("{n}.down.sql")), wrap, &mut out);
            }
        }
        "harness" => {
            for n in order(project) {
                existing(dir.join(n), wrap, &mut out);
            }
            // The migrator runs every down file in reverse file-name order (it does not pair them).
            let mut downs: Vec<PathBuf> = std::fs::read_dir(&dir)
                .expect("harness migrations dir")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    n.ends_with(".down.sql") || n.ends_with("_down.sql")
                })
                .collect();
            downs.sort();
            downs.reverse();
            for p in downs {
                out.push(Input {
                    path: p,
                    mode: wrap,
                });
            }
        }
        other => panic!("unknown project {other}"),
    }
    out
}

const PROJECTS: [&str; 4] = [
    "crates.io",
    "docs.rs",
    "harness",
    "chirpstack-application-server",
];

#[derive(Default, serde::Serialize)]
struct ProjectCounts {
    files: usize,
    statements: usize,
    unparsed_statements: usize,
    findings: BTreeMap<String, usize>,
}

#[test]
fn corpus_lints_without_errors_and_rule_counts_are_stable() {
    let registry = Registry::builtin();
    let config = Config::default();
    let mut per_project: BTreeMap<String, ProjectCounts> = BTreeMap::new();
    let mut total = ProjectCounts::default();
    let mut errors = Vec::new();
    let mut dump = String::new();
    let dumping = std::env::var_os("DEPLOYCLAW_CORPUS_DUMP");

    for project in PROJECTS {
        let files = inputs(project);
        let counts = per_project.entry(project.to_string()).or_default();
        for input in files {
            let name = input
                .path
                .strip_prefix(CORPUS)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| input.path.display().to_string());
            let bytes = std::fs::read(&input.path).unwrap_or_else(|e| panic!("{name}: {e}"));
            let options = ParseOptions {
                transaction_mode: input.mode,
                ..ParseOptions::default()
            };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let m = migration_parser::parse_bytes(&name, &bytes, &options)?;
                let findings = registry.lint(&m, &config);
                Ok::<_, migration_parser::ParseError>((m, findings))
            }));
            let (migration, findings) = match result {
                Ok(Ok(x)) => x,
                Ok(Err(e)) => {
                    errors.push(format!("{name}: parse error: {e}"));
                    continue;
                }
                Err(_) => {
                    errors.push(format!("{name}: PANIC"));
                    continue;
                }
            };
            counts.files += 1;
            counts.statements += migration.statements.len();
            counts.unparsed_statements += migration
                .statements
                .iter()
                .filter(|s| matches!(s.kind, StatementKind::Unparsed { .. }))
                .count();
            for f in &findings {
                *counts
                    .findings
                    .entry(format!("{} {} ({})", f.code, f.rule, f.severity))
                    .or_default() += 1;
            }
            if dumping.is_some() && !findings.is_empty() {
                let file = LintedFile {
                    file: &name,
                    source: &migration.source,
                    findings: &findings,
                };
                for f in &findings {
                    dump.push_str(&report::lint::render_diagnostic(
                        file.file,
                        file.source,
                        f,
                        &TextOptions::default(),
                    ));
                    dump.push('\n');
                }
            }
        }
        total.files += counts.files;
        total.statements += counts.statements;
        total.unparsed_statements += counts.unparsed_statements;
        for (k, v) in &counts.findings {
            *total.findings.entry(k.clone()).or_default() += v;
        }
    }
    if let Some(path) = dumping {
        std::fs::write(&path, dump).expect("write the finding dump");
    }

    assert!(
        errors.is_empty(),
        "corpus files failed:\n{}",
        errors.join("\n")
    );
    // 587 up + 558 down scripts, as the corpus README counts them.
    assert_eq!(total.files, 587 + 558);

    insta::assert_yaml_snapshot!("corpus_rule_counts_total", total);
    insta::assert_yaml_snapshot!("corpus_rule_counts_per_project", per_project);
}

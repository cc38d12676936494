//! The built-in rules over real migration histories (../shared/corpus): every up script of
//! every project is linted the way its tool runs it. Asserts nothing panics and every finding is
//! well-formed, and snapshots the count of findings per rule per project, so a change in what the
//! rules report on real SQL shows up in review.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gates::migration_parser::{TransactionMode, parse};
use gates::{Config, Registry};

/// The shared corpus beside the checkout, or one level further up for a git worktree
/// (`/work/wt/<name>`).
fn corpus() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let near = here.join("../../../shared/corpus");
    if near.is_dir() {
        near
    } else {
        here.join("../../../../shared/corpus")
    }
}

/// (display name, path of the up script, runs in a transaction) in the project's own order.
fn up_scripts(project: &str) -> Vec<(String, PathBuf, bool)> {
    let dir = corpus().join(project);
    let order = std::fs::read_to_string(dir.join("ORDER.txt")).expect("ORDER.txt");
    let migrations = dir.join("migrations");
    order
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|name| {
            let name = name.trim();
            let diesel = migrations.join(name).join("up.sql");
            if diesel.is_file() {
                let meta = std::fs::read_to_string(migrations.join(name).join("metadata.toml"))
                    .unwrap_or_default();
                let in_tx = !meta.contains("run_in_transaction = false");
                return Some((name.to_string(), diesel, in_tx));
            }
            let candidates = [
                migrations.join(name),
                migrations.join(format!("{name}.up.sql")),
            ];
            candidates
                .into_iter()
                .find(|p| p.is_file())
                .map(|p| (name.to_string(), p, true))
        })
        .collect()
}

#[test]
fn real_histories_lint_cleanly_and_stably() {
    let root = corpus();
    if !Path::new(&root).is_dir() {
        panic!("corpus not found at {}", root.display());
    }
    let registry = Registry::builtin();
    let mut summary = String::new();
    for project in [
        "crates.io",
        "docs.rs",
        "harness",
        "chirpstack-application-server",
    ] {
        let scripts = up_scripts(project);
        assert!(
            scripts.len() > 30,
            "{project}: found {} up scripts",
            scripts.len()
        );
        let mut per_rule: BTreeMap<String, usize> = BTreeMap::new();
        for (name, path, in_tx) in &scripts {
            let src = std::fs::read_to_string(path).expect("readable");
            let mut config = Config::default();
            config.transaction_mode = Some(if *in_tx {
                TransactionMode::WrapFile
            } else {
                TransactionMode::Autocommit
            });
            let migration =
                parse(name, &src, &config.parse_options()).expect("corpus file tokenizes");
            for f in registry.lint(&migration, &config) {
                let loc = f
                    .location
                    .as_ref()
                    .expect("static findings have a location");
                assert!(loc.statement < migration.statements.len(), "{name}: {f:?}");
                assert!(loc.line >= 1 && loc.column >= 1, "{name}: {f:?}");
                assert!(!f.message.is_empty() && f.help.is_some(), "{name}: {f:?}");
                *per_rule.entry(f.rule).or_default() += 1;
            }
        }
        writeln!(summary, "{project} ({} up scripts)", scripts.len()).unwrap();
        for (rule, n) in per_rule {
            writeln!(summary, "  {rule}: {n}").unwrap();
        }
    }
    insta::assert_snapshot!(summary);
}

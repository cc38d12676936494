//! Parse every up and down script of the shared corpus (the four migration projects) in the
//! order each project applies them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use migration_parser::{ParseOptions, StatementKind, TransactionMode, parse_bytes};

/// The shared corpus beside the checkout (`<checkout>/../shared/corpus`), or, for a git worktree
/// one level deeper (`/work/wt/<name>`), `<checkout>/../../shared/corpus`.
fn corpus_dir() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let near = here.join("../../../shared/corpus");
    if near.is_dir() {
        near
    } else {
        here.join("../../../../shared/corpus")
    }
}

/// The up and down files of a project, in ORDER.txt order (each up followed by its down).
fn project_files(project: &str) -> Vec<PathBuf> {
    let root = corpus_dir().join(project);
    let order = std::fs::read_to_string(root.join("ORDER.txt")).expect("ORDER.txt");
    let dir = root.join("migrations");
    let mut files = Vec::new();
    for entry in order.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let candidates: Vec<PathBuf> = if dir.join(entry).is_dir() {
            // Diesel: one directory per migration.
            vec![
                dir.join(entry).join("up.sql"),
                dir.join(entry).join("down.sql"),
            ]
        } else if let Some(base) = entry.strip_suffix(".up.sql") {
            vec![dir.join(entry), dir.join(format!("{base}.down.sql"))]
        } else if let Some(base) = entry.strip_suffix("_up.sql") {
            vec![dir.join(entry), dir.join(format!("{base}_down.sql"))]
        } else {
            vec![
                dir.join(format!("{entry}.up.sql")),
                dir.join(format!("{entry}.down.sql")),
            ]
        };
        files.extend(candidates.into_iter().filter(|p| p.is_file()));
    }
    files
}

fn all_sql_files(dir: &Path, out: &mut BTreeSet<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            all_sql_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "sql") {
            out.insert(p);
        }
    }
}

#[test]
fn corpus_parses() {
    let projects = [
        "crates.io",
        "docs.rs",
        "harness",
        "chirpstack-application-server",
    ];
    let mut total = 0usize;
    let mut files_n = 0usize;
    let mut unparsed = Vec::new();
    let mut per_project = Vec::new();
    let mut orphans = Vec::new();
    for project in projects {
        let mut files = project_files(project);
        // Every SQL file of the project is parsed: files ORDER.txt does not reach (harness has
        // one orphan down script, see its SOURCE.md) are appended and listed in the summary.
        let mut on_disk = BTreeSet::new();
        all_sql_files(&corpus_dir().join(project).join("migrations"), &mut on_disk);
        let listed: BTreeSet<PathBuf> = files.iter().cloned().collect();
        for extra in on_disk.difference(&listed) {
            let rel = extra
                .strip_prefix(corpus_dir())
                .unwrap_or(extra)
                .display()
                .to_string();
            orphans.push(rel);
            files.push(extra.clone());
        }
        let mut n = 0usize;
        for f in &files {
            let bytes = std::fs::read(f).expect("read");
            let rel = f
                .strip_prefix(corpus_dir())
                .unwrap_or(f)
                .display()
                .to_string();
            let options = ParseOptions {
                transaction_mode: TransactionMode::WrapFile,
                ..Default::default()
            };
            let m = parse_bytes(&rel, &bytes, &options).unwrap_or_else(|e| panic!("{rel}: {e}"));
            files_n += 1;
            for s in &m.statements {
                n += 1;
                assert!(
                    s.span.line >= 1 && s.span.column >= 1,
                    "{rel}: statement without a location"
                );
                assert_eq!(&m.source[s.span.start..s.span.start + s.sql.len()], s.sql);
                if let StatementKind::Unparsed { line, column, .. } = &s.kind {
                    assert!(
                        *line >= 1 && *column >= 1,
                        "{rel}: unparsed statement without a location"
                    );
                    let head: String = s
                        .sql
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                        .chars()
                        .take(60)
                        .collect();
                    unparsed.push(format!("{rel}:{line}:{column}: {head}"));
                }
                if s.kind == StatementKind::Parsed {
                    assert!(
                        !s.operations.is_empty(),
                        "{rel}:{}: parsed statement without operations",
                        s.span.line
                    );
                }
            }
        }
        per_project.push(format!("{project}: {} files, {n} statements", files.len()));
        total += n;
    }
    let share = unparsed.len() as f64 / total as f64;
    let summary = format!(
        "{}\nnot in ORDER.txt: {}\ntotal: {files_n} files, {total} statements, {} unparsed ({:.2} %)",
        per_project.join("\n"),
        orphans.join(", "),
        unparsed.len(),
        share * 100.0
    );
    println!("{summary}");
    assert!(
        share <= 0.01,
        "unparsed share {share} > 1 %:\n{}",
        unparsed.join("\n")
    );
    insta::assert_snapshot!("corpus_summary", summary);
    insta::assert_snapshot!("corpus_unparsed", unparsed.join("\n"));
}

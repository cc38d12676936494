//! The parser reads a file statement by statement (boundaries found by a small lexer, each
//! statement tokenized alone) so that memory follows the largest statement, not the file; the
//! whole-file tokenization is the reference it must agree with. Every SQL file of the shared
//! corpus and of the parser's fixtures, plus tricky hand-written cases, must give exactly the
//! same `Migration` both ways — and the statement-by-statement path must vouch for itself
//! (no silent fallback) on all of them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use migration_parser::reference::{parse_statement_by_statement, parse_whole_file};
use migration_parser::{ParseOptions, TransactionMode, parse};

/// The shared corpus beside the checkout, or two levels up from a git worktree (`/work/wt/<name>`).
fn corpus_dir() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let near = here.join("../../../shared/corpus");
    if near.is_dir() {
        near
    } else {
        here.join("../../../../shared/corpus")
    }
}
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn sql_files(dir: &Path, out: &mut BTreeSet<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            sql_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "sql") {
            out.insert(p);
        }
    }
}

fn same_both_ways(name: &str, text: &str) -> bool {
    let opts = ParseOptions {
        transaction_mode: TransactionMode::Autocommit,
        ..ParseOptions::default()
    };
    let whole = parse_whole_file(name, text, &opts);
    let sliced = parse_statement_by_statement(name, text, &opts);
    match (whole, sliced) {
        (Ok(w), Ok(Some(s))) => {
            assert_eq!(
                w, s,
                "{name}: statement by statement differs from the whole file"
            );
            true
        }
        (Ok(w), Ok(None)) => {
            // Not vouched for: `parse` must then give the reference result.
            assert_eq!(parse(name, text, &opts).unwrap(), w, "{name}");
            false
        }
        (Err(w), Err(s)) => {
            assert_eq!(w.to_string(), s.to_string(), "{name}: errors differ");
            true
        }
        (Err(w), Ok(None)) => {
            assert_eq!(
                parse(name, text, &opts).unwrap_err().to_string(),
                w.to_string()
            );
            false
        }
        (w, s) => panic!("{name}: whole {w:?}\nvs statement by statement {s:?}"),
    }
}

#[test]
fn corpus_and_fixtures_read_the_same_statement_by_statement() {
    let mut files = BTreeSet::new();
    sql_files(&corpus_dir(), &mut files);
    sql_files(Path::new(FIXTURES), &mut files);
    assert!(
        files.len() > 1000,
        "corpus not found: {} files",
        files.len()
    );
    let mut fell_back = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("utf-8 corpus file");
        if !same_both_ways(&f.display().to_string(), &text) {
            fell_back.push(f.display().to_string());
        }
    }
    assert!(
        fell_back.is_empty(),
        "the statement-by-statement path fell back on: {fell_back:#?}"
    );
}

#[test]
fn tricky_boundaries_agree() {
    let cases = [
        "SELECT 1; SELECT 'a;b'; SELECT \"x;\" FROM t",
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; DO $x$ BEGIN NULL; END $x$;",
        "SELECT E'it\\'s; fine'; SELECT 'back\\'; SELECT U&'d\\0061t;a';",
        "SELECT a$$b, $1, 1$$ c; $$ FROM t; SELECT $tag$;$tag$;",
        "\\set ON_ERROR_STOP 1\nSELECT 1;\n\\echo done -- c\nSELECT 2",
        ";;; ;SELECT 1;;",
        "/* outer /* inner; */ still; */ SELECT 1; -- tail; comment\n",
        "COPY t (a, b) FROM stdin;\n1\t'x;\n2\t\"y\n\\.\nSELECT 1;\n",
        "COPY t FROM STDIN; -- same line\n1\n\\.\n",
        "SELECT (1; 2); SELECT ((3)); ",
        "\u{feff}-- deployclaw:ignore dropping-table\nDROP TABLE t; DROP TABLE u; -- deployclaw:ignore dropping-table\n",
        "SELECT 1e'x;'; SELECT x'4;1'; SELECT b'1;0';",
        "ALTER TABLE \"a\"\"b\" ADD COLUMN c int; SELECT 'unterminated",
        "SELECT 1; $$ never closed",
        "SELECT 1; /* never closed",
        "CREATE TABLE t (a int);\r\nCREATE TABLE u (b int);\r\n",
        "SELECT 'Ω;'; SELECT \"Ω\"; SELECT $Ω$;$Ω$; SELECT $€$;",
    ];
    for (i, c) in cases.iter().enumerate() {
        assert!(
            same_both_ways(&format!("case {i}"), c),
            "case {i} fell back: {c:?}"
        );
    }
}

/// A statement far beyond what is analysed is reported, located and bounded; the statements
/// around it are parsed as usual.
#[test]
fn an_oversized_statement_is_reported_not_parsed() {
    let mut text = String::from("-- deployclaw:ignore unparsed-statement\nSELEC ");
    while text.len() < 3 * 1024 * 1024 {
        text.push_str("x+ ");
    }
    text.push_str(";\nDROP TABLE t;\n");
    let m = parse("big.sql", &text, &ParseOptions::default()).expect("parses");
    assert_eq!(m.statements.len(), 2);
    let big = &m.statements[0];
    match &big.kind {
        migration_parser::StatementKind::Unparsed {
            error,
            line,
            column,
        } => {
            assert!(error.contains("too large to analyse"), "{error}");
            assert_eq!((*line, *column), (2, 1));
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(big.ignored_rules, vec!["unparsed-statement".to_string()]);
    assert!(big.sql.starts_with("SELEC x+"));
    assert_eq!(big.span.end_line, 2);
    assert_eq!(m.statements[1].span.line, 3);
    assert_eq!(m.statements[1].sql, "DROP TABLE t");
}

/// Where the lexer's guess is wrong, the tokenizer's check catches it and the whole-file path
/// gives the reference result.
#[test]
fn a_wrong_guess_falls_back_to_the_whole_file() {
    // A meta-command whose block comment runs onto the next line: the lexer keeps the next
    // line in the meta-command, sqlparser's split does not.
    let text = "\\echo a /* x\n */ y;\nSELECT 1;\n";
    assert!(!same_both_ways("meta", text), "expected a fallback");
    let opts = ParseOptions::default();
    assert_eq!(
        parse("meta", text, &opts).unwrap(),
        parse_whole_file("meta", text, &opts).unwrap()
    );
}

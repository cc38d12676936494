//! `parse_limited`: a file over the statement limit fails with `TooManyStatements` at the first
//! statement over it, on both reading paths; at or under the limit it parses as `parse` does.

use migration_parser::{ParseError, ParseOptions, parse, parse_bytes_limited, parse_limited};

fn statements(n: usize) -> String {
    (0..n)
        .map(|i| format!("-- step {i}\nINSERT INTO t VALUES ({i});\n"))
        .collect()
}

#[test]
fn at_the_limit_it_parses_like_parse() {
    let sql = statements(50);
    let o = ParseOptions::default();
    assert_eq!(
        parse_limited("m.sql", &sql, &o, 50).unwrap(),
        parse("m.sql", &sql, &o).unwrap()
    );
}

#[test]
fn over_the_limit_names_the_first_statement_over_it_and_the_total() {
    let sql = statements(1000);
    let err = parse_limited("m.sql", &sql, &ParseOptions::default(), 100).unwrap_err();
    match &err {
        ParseError::TooManyStatements {
            file,
            line,
            column,
            limit,
            total,
            exact,
        } => {
            // Statement 101 is on line 202 (each has a comment line above it).
            assert_eq!((file.as_str(), *line, *column), ("m.sql", 202, 1));
            assert_eq!(*limit, 100);
            assert_eq!(*total, 1000);
            assert!(!exact);
        }
        other => panic!("unexpected {other:?}"),
    }
    insta::assert_snapshot!(err.to_string(), @"m.sql:202:1: too many statements: about 1,000 in the file, over the limit of 100 (statement 101 starts here)");
}

#[test]
fn the_last_statement_over_the_limit_counts_exactly() {
    // No trailing newline: the last statement is the one over the limit.
    let sql = "SELECT 1; SELECT 2; SELECT 3";
    let err = parse_limited("m.sql", sql, &ParseOptions::default(), 2).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"m.sql:1:21: too many statements: 3 in the file, over the limit of 2 (statement 3 starts here)");
}

#[test]
fn a_semicolon_inside_an_escape_string_is_not_a_statement_boundary() {
    // `E'a\';b'` is one string: the statement over the limit of 5 is the sixth real one.
    let mut sql = String::from("SELECT E'a\\';b';\n");
    sql.push_str(&statements(20));
    let err =
        parse_bytes_limited("m.sql", sql.as_bytes(), &ParseOptions::default(), 5).unwrap_err();
    assert!(
        matches!(
            err,
            ParseError::TooManyStatements {
                limit: 5,
                line: 11,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn bad_bytes_are_still_reported_first() {
    let err =
        parse_bytes_limited("m.sql", b"SELECT 1;\0", &ParseOptions::default(), 1).unwrap_err();
    assert!(matches!(err, ParseError::Binary { .. }), "{err:?}");
}

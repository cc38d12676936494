//! Invariants the fuzz targets check on every parse result. A violated invariant panics, which
//! libFuzzer reports as a crash with the input saved under `fuzz/artifacts/<target>/`.

use migration_parser::{Migration, ParseError, StatementKind};

/// 1-based (line, column) of byte `pos` of `src`, counted the way the parser documents spans:
/// a new line starts after each `\n`, columns count `char`s (`\r` and a BOM are characters).
pub fn location(src: &str, pos: usize) -> (u32, u32) {
    let before = &src[..pos];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line as u32, column as u32)
}

/// Number of lines of `src` as the parser counts them (`\n` separated, at least 1).
pub fn line_count(src: &str) -> u32 {
    src.matches('\n').count() as u32 + 1
}

/// Check a successful parse of `src`.
pub fn check_migration(src: &str, m: &Migration) {
    assert_eq!(m.source, src, "Migration::source differs from the input");
    let mut prev_end = 0usize;
    for (i, st) in m.statements.iter().enumerate() {
        let s = &st.span;
        assert_eq!(st.index, i, "statement index out of order");
        assert!(s.start < s.end, "statement {i}: empty or reversed span {s:?}");
        assert!(s.end <= src.len(), "statement {i}: span {s:?} ends past the source ({} bytes)", src.len());
        assert!(
            src.is_char_boundary(s.start) && src.is_char_boundary(s.end),
            "statement {i}: span {s:?} splits a UTF-8 character"
        );
        assert!(s.start >= prev_end, "statement {i}: span {s:?} overlaps the previous one (ended at {prev_end})");
        prev_end = s.end;

        // Line/column agree with the byte offsets.
        assert_eq!(location(src, s.start), (s.line, s.column), "statement {i}: start line/column vs byte offset, span {s:?}");
        let last_char = src[..s.end].char_indices().next_back().map_or(0, |(p, _)| p);
        assert_eq!(
            location(src, last_char),
            (s.end_line, s.end_column),
            "statement {i}: end line/column vs byte offset, span {s:?}"
        );

        // The text is the start of the span, trimmed of whitespace/comments.
        assert!(!st.sql.is_empty(), "statement {i}: empty sql, span {s:?}");
        assert!(
            src[s.start..s.end].starts_with(st.sql.as_str()),
            "statement {i}: sql is not the start of its span {s:?}"
        );
        assert!(
            !st.sql.starts_with(char::is_whitespace) && !st.sql.ends_with(char::is_whitespace),
            "statement {i}: sql has surrounding whitespace: {:?}",
            st.sql
        );

        match &st.kind {
            StatementKind::Parsed => {
                assert!(!st.operations.is_empty(), "statement {i}: Parsed with no operations: {:?}", st.sql);
            }
            StatementKind::Unparsed { line, column, .. } => {
                assert!(st.operations.is_empty(), "statement {i}: Unparsed with operations");
                assert!(
                    *line >= 1 && *line <= line_count(src) && *column >= 1,
                    "statement {i}: Unparsed error location {line}:{column} outside the file"
                );
            }
        }
    }
}

/// Check a failed parse: the location must exist in the input.
pub fn check_error(bytes: &[u8], e: &ParseError) {
    let lines = bytes.iter().filter(|b| **b == b'\n').count() as u32 + 1;
    let (line, column) = match e {
        ParseError::NotUtf8 { line, column, .. }
        | ParseError::Binary { line, column, .. }
        | ParseError::Tokenize { line, column, .. } => (*line, *column),
        _ => return,
    };
    assert!(line >= 1 && line <= lines && column >= 1, "error location {line}:{column} outside the input: {e}");
    match e {
        ParseError::Binary { .. } => {
            let nul = bytes.iter().position(|b| *b == 0).expect("Binary error without a NUL byte");
            let lossy = String::from_utf8_lossy(&bytes[..nul]);
            assert_eq!(location(&lossy, lossy.len()), (line, column), "Binary: wrong NUL location");
        }
        ParseError::NotUtf8 { .. } => {
            let Err(u) = std::str::from_utf8(bytes) else {
                panic!("NotUtf8 error for valid UTF-8");
            };
            let valid = std::str::from_utf8(&bytes[..u.valid_up_to()]).expect("valid prefix");
            assert_eq!(location(valid, valid.len()), (line, column), "NotUtf8: wrong location");
        }
        _ => {}
    }
}

//! Statement boundaries without tokens: a small lexer that finds where each statement ends, so
//! that the file can be tokenized and parsed one statement at a time and memory stays
//! proportional to the largest statement, not to the file (a 20 MB migration once needed
//! 1.5 GB of tokens, a 20 MB single garbage statement 4.3 GB).
//!
//! It mirrors what [`crate::split`] does on sqlparser's tokens — a `;` outside parentheses
//! ends a statement; strings (`'…'` with `''`, `E'…'` and `X'…'` with backslash escapes,
//! `U&'…'`), quoted identifiers, dollar quotes (`$$…$$`, `$tag$…$tag$`, as sqlparser reads
//! them), `--` and nested `/* */` comments are opaque; a psql meta-command runs to the end of
//! its line; `COPY … FROM STDIN;` is followed by its data up to a `\.` line — but it is only a
//! guess: the caller tokenizes each slice with sqlparser and checks that the guess holds
//! ([`crate::parse`]), falling back to whole-file tokenization if it does not. Where this lexer
//! and sqlparser might disagree (odd prefixes, numbers glued to dollar quotes) the check, not
//! this code, decides.

/// How a slice ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SliceEnd {
    /// After the `;` that ends a statement (and, for `COPY … FROM STDIN`, its data).
    Semicolon,
    /// Before the line end that ends a psql meta-command.
    MetaLine,
    /// The end of the file.
    Eof,
}

/// One slice of the file: bytes `start..end`, holding at most one statement and the trivia
/// (whitespace, comments, stray `;`) before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slice {
    pub start: usize,
    pub end: usize,
    pub ends: SliceEnd,
    /// Bytes of the slice up to and including its `;` — less than the slice for
    /// `COPY … FROM STDIN`, whose data follows.
    pub sql_len: usize,
    /// About how many tokens sqlparser makes of the SQL part (every whitespace character,
    /// word, number, quoted token and operator character counts one): what parsing it costs.
    pub tokens: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_ident_part(c: char) -> bool {
    c.is_alphabetic() || c.is_ascii_digit() || c == '$' || c == '_' || !c.is_ascii()
}

/// What the lexer is in the middle of, outside opaque tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    None,
    /// An identifier or keyword that started at this byte.
    Ident(usize),
    Number,
}

/// Tracks `COPY … FROM STDIN` as sqlparser's tokenizer does (first word `COPY`, then `FROM`
/// directly followed by `STDIN` outside parentheses).
#[derive(Debug, Default)]
struct Copy {
    first_seen: bool,
    starts_with_copy: bool,
    prev_was_from: bool,
    from_stdin: bool,
}

impl Copy {
    fn word(&mut self, w: &str, depth: i32) {
        if !self.first_seen {
            self.first_seen = true;
            self.starts_with_copy = w.eq_ignore_ascii_case("copy");
        }
        if self.prev_was_from && depth == 0 && w.eq_ignore_ascii_case("stdin") {
            self.from_stdin = true;
        }
        self.prev_was_from = w.eq_ignore_ascii_case("from");
    }
    fn other(&mut self) {
        self.first_seen = true;
        self.prev_was_from = false;
    }
}

struct Lexer<'a> {
    src: &'a str,
    i: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.i..].chars().next()
    }
    fn peek2(&self) -> Option<char> {
        let mut it = self.src[self.i..].chars();
        it.next();
        it.next()
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        Some(c)
    }
    fn at_end(&self) -> bool {
        self.i >= self.src.len()
    }
    /// Skip to the next `\n` or `\r` (not consumed).
    fn line_comment(&mut self) {
        match self.src[self.i..].find(['\n', '\r']) {
            Some(k) => self.i += k,
            None => self.i = self.src.len(),
        }
    }
    /// After `/*`: to the matching `*/` (nested), or the end.
    fn block_comment(&mut self) {
        let b = self.src.as_bytes();
        let mut depth = 1;
        while self.i < b.len() {
            if b[self.i] == b'/' && b.get(self.i + 1) == Some(&b'*') {
                depth += 1;
                self.i += 2;
            } else if b[self.i] == b'*' && b.get(self.i + 1) == Some(&b'/') {
                depth -= 1;
                self.i += 2;
                if depth == 0 {
                    return;
                }
            } else {
                self.i += 1;
            }
        }
    }
    /// After the opening quote `q`: to the closing one (`qq` is an escaped quote; with
    /// `backslash`, `\x` escapes any character).
    fn quoted(&mut self, q: u8, backslash: bool) {
        let b = self.src.as_bytes();
        while self.i < b.len() {
            let c = b[self.i];
            if backslash && c == b'\\' {
                self.i = (self.i + 2).min(b.len());
                // Never stop inside a multi-byte character.
                while self.i < b.len() && !self.src.is_char_boundary(self.i) {
                    self.i += 1;
                }
                continue;
            }
            self.i += 1;
            if c == q {
                if b.get(self.i) == Some(&q) {
                    self.i += 1;
                } else {
                    return;
                }
            }
        }
    }
    /// At `$` that starts a token: a dollar-quoted string (skipped whole) or a placeholder.
    fn dollar(&mut self) {
        self.i += 1;
        if self.peek() == Some('$') {
            self.i += 1;
            match self.src[self.i..].find("$$") {
                Some(k) => self.i += k + 2,
                None => self.i = self.src.len(),
            }
            return;
        }
        let tag_start = self.i;
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                self.i += c.len_utf8();
            } else {
                break;
            }
        }
        let tag = &self.src[tag_start..self.i];
        if self.peek() == Some('$') {
            self.i += 1;
            let close = format!("${tag}$");
            match self.src[self.i..].find(&close) {
                Some(k) => self.i += k + close.len(),
                None => self.i = self.src.len(),
            }
        }
    }
    /// After the `;` of `COPY … FROM STDIN`: the rest of the line as SQL, then data lines up to
    /// and including a line that is exactly `\.`.
    fn copy_data(&mut self) {
        // Rest of the line: opaque tokens may span lines, as in sqlparser.
        loop {
            let Some(c) = self.peek() else { return };
            match c {
                '\n' => {
                    self.i += 1;
                    break;
                }
                '\r' => {
                    self.i += 1;
                    if self.peek() == Some('\n') {
                        self.i += 1;
                    }
                    break;
                }
                '-' if self.peek2() == Some('-') => self.line_comment(),
                '/' if self.peek2() == Some('*') => {
                    self.i += 2;
                    self.block_comment();
                }
                '\'' => {
                    self.i += 1;
                    self.quoted(b'\'', false);
                }
                '"' => {
                    self.i += 1;
                    self.quoted(b'"', false);
                }
                _ => {
                    self.bump();
                }
            }
        }
        // Data lines.
        while !self.at_end() {
            let rest = &self.src[self.i..];
            let line_len = rest.find(['\n', '\r']).unwrap_or(rest.len());
            let line = &rest[..line_len];
            self.i += line_len;
            if self.src[self.i..].starts_with("\r\n") {
                self.i += 2;
            } else if self.src[self.i..].starts_with('\r') || self.src[self.i..].starts_with('\n') {
                self.i += 1;
            }
            if line == "\\." {
                return;
            }
        }
    }
}

/// Cut `src` into slices (see [`Slice`]); the last one ends at the end of the file.
pub(crate) fn slices(src: &str) -> Vec<Slice> {
    let mut out = Vec::new();
    let mut lx = Lexer { src, i: 0 };
    let mut start = 0usize;
    let mut started = false;
    let mut meta = false;
    let mut depth = 0i32;
    let mut word = Word::None;
    let mut copy = Copy::default();
    let mut tokens = 0usize;
    // Finishes the identifier or number in progress before the character at `at`.
    let finish = |word: &mut Word, copy: &mut Copy, depth: i32, at: usize| {
        if let Word::Ident(s) = *word {
            copy.word(&src[s..at], depth);
        }
        *word = Word::None;
    };
    while let Some(c) = lx.peek() {
        let at = lx.i;
        // Inside an identifier or number.
        match word {
            Word::Ident(_) if is_ident_part(c) => {
                lx.bump();
                continue;
            }
            Word::Number if c.is_ascii_digit() || c == '_' || c == '.' => {
                lx.bump();
                continue;
            }
            _ => {}
        }
        let prefix = match word {
            Word::Ident(s) if at - s == 1 => src[s..at].chars().next(),
            _ => None,
        };
        finish(&mut word, &mut copy, depth, at);
        tokens += 1;
        match c {
            '\n' | '\r' if meta => {
                out.push(Slice {
                    start,
                    end: at,
                    ends: SliceEnd::MetaLine,
                    sql_len: at - start,
                    tokens,
                });
                tokens = 0;
                start = at;
                started = false;
                meta = false;
                copy = Copy::default();
                lx.bump();
            }
            ' ' | '\t' | '\n' | '\r' => {
                lx.bump();
            }
            '-' if lx.peek2() == Some('-') => lx.line_comment(),
            '/' if lx.peek2() == Some('*') => {
                lx.i += 2;
                lx.block_comment();
            }
            '\'' => {
                lx.bump();
                let backslash = matches!(prefix, Some('e' | 'E' | 'x' | 'X'));
                lx.quoted(b'\'', backslash);
                started = true;
                copy.other();
            }
            '&' if matches!(prefix, Some('u' | 'U')) && lx.peek2() == Some('\'') => {
                // U&'...': `''` escapes a quote; a backslash escape never swallows the quote
                // (it is followed by hex digits or a backslash).
                lx.i += 2;
                lx.quoted(b'\'', false);
                started = true;
                copy.other();
            }
            '"' => {
                lx.bump();
                lx.quoted(b'"', false);
                started = true;
                copy.other();
            }
            '$' => {
                lx.dollar();
                started = true;
                copy.other();
            }
            '(' => {
                lx.bump();
                depth += 1;
                started = true;
                copy.other();
            }
            ')' => {
                lx.bump();
                depth = (depth - 1).max(0);
                started = true;
                copy.other();
            }
            ';' => {
                lx.bump();
                if started && depth <= 0 && !meta {
                    let sql_len = lx.i - start;
                    if copy.starts_with_copy && copy.from_stdin {
                        lx.copy_data();
                    }
                    out.push(Slice {
                        start,
                        end: lx.i,
                        ends: SliceEnd::Semicolon,
                        sql_len,
                        tokens,
                    });
                    tokens = 0;
                    start = lx.i;
                    started = false;
                    depth = 0;
                }
                copy = Copy::default();
            }
            '\\' if !started => {
                lx.bump();
                started = true;
                meta = true;
            }
            c if is_ident_start(c) => {
                lx.bump();
                word = Word::Ident(at);
                started = true;
            }
            c if c.is_ascii_digit() => {
                lx.bump();
                word = Word::Number;
                started = true;
                copy.other();
            }
            _ => {
                lx.bump();
                started = true;
                copy.other();
            }
        }
    }
    out.push(Slice {
        start,
        end: src.len(),
        ends: SliceEnd::Eof,
        sql_len: src.len() - start,
        tokens,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(src: &str) -> Vec<&str> {
        slices(src).iter().map(|s| &src[s.start..s.end]).collect()
    }

    #[test]
    fn cuts_after_top_level_semicolons_only() {
        assert_eq!(
            cut("SELECT 1; SELECT 'a;b'; SELECT \"x;\" FROM t;"),
            vec!["SELECT 1;", " SELECT 'a;b';", " SELECT \"x;\" FROM t;", ""]
        );
        assert_eq!(
            cut(
                "CREATE FUNCTION f() AS $$ a; b $$; DO $x$ c; $x$;\n-- d; e\n/* f; /* g; */ h; */ SELECT (1;2);"
            ),
            vec![
                "CREATE FUNCTION f() AS $$ a; b $$;",
                " DO $x$ c; $x$;",
                "\n-- d; e\n/* f; /* g; */ h; */ SELECT (1;2);",
                ""
            ]
        );
        assert_eq!(
            cut("SELECT E'a\\';b'; SELECT 'a\\'; SELECT U&'x'';y';"),
            vec![
                "SELECT E'a\\';b';",
                " SELECT 'a\\';",
                " SELECT U&'x'';y';",
                ""
            ]
        );
        // `$` inside an identifier is not a dollar quote; `$1` is a placeholder.
        assert_eq!(
            cut("SELECT a$$b; SELECT $1; SELECT 2;"),
            vec!["SELECT a$$b;", " SELECT $1;", " SELECT 2;", ""]
        );
    }

    #[test]
    fn meta_commands_empty_statements_copy_data_and_the_tail() {
        assert_eq!(
            cut(";;\\set x 1\nSELECT 1;  -- trailing\n"),
            vec![";;\\set x 1", "\nSELECT 1;", "  -- trailing\n"]
        );
        assert_eq!(
            cut("COPY t (a) FROM stdin;\n1\t'x;\n\\.\nSELECT 1;"),
            vec!["COPY t (a) FROM stdin;\n1\t'x;\n\\.\n", "SELECT 1;", ""]
        );
        assert_eq!(
            cut("SELECT 'unterminated; x"),
            vec!["SELECT 'unterminated; x"]
        );
    }
}

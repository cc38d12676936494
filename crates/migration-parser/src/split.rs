//! Tokenizing the whole file once and splitting it into statements.
//!
//! The file is tokenized once with sqlparser's PostgreSQL tokenizer. Strings, quoted identifiers,
//! dollar-quoted bodies and comments are single tokens, so a `;` token outside parentheses ends a
//! statement exactly where psql would end it. psql meta-commands (`\set`, `\i`, ...) end at the end
//! of their line, as in psql.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::ParseError;

/// The tokenized file with the byte offset of every token.
pub(crate) struct Tokens {
    /// All tokens, whitespace and comments included.
    pub tokens: Vec<TokenWithSpan>,
    /// Byte offset of each token's first character; one extra entry = source length.
    pub starts: Vec<usize>,
}

/// One statement's place in the token stream.
pub(crate) struct RawStatement {
    /// Index of the first significant token.
    pub first: usize,
    /// Index of the last significant token (inclusive), before any `;`.
    pub last: usize,
    /// Index of the terminating `;` token, if any.
    pub semicolon: Option<usize>,
    /// A psql meta-command (`\...`), which ends at the end of its line.
    pub meta: bool,
}

/// Whether a token is whitespace or a comment.
pub(crate) fn is_trivia(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_))
}

/// Tokenize `source` and compute byte offsets.
///
/// A leading UTF-8 byte order mark is treated as whitespace (editors on Windows write it; most
/// migration runners strip it): the tokenizer sees the text after it and line-1 columns are
/// shifted by one so that locations and byte offsets still refer to the original source.
pub(crate) fn tokenize(file: &str, source: &str) -> Result<Tokens, ParseError> {
    let (text, base) = after_bom(source);
    tokenize_at(file, text, base)
}

/// Where the text after a leading byte order mark starts: the text, and its [`Base`].
pub(crate) fn after_bom(source: &str) -> (&str, Base) {
    match source.strip_prefix('\u{feff}') {
        Some(rest) => (
            rest,
            Base {
                byte: source.len() - rest.len(),
                line: 1,
                column: 2,
            },
        ),
        None => (
            source,
            Base {
                byte: 0,
                line: 1,
                column: 1,
            },
        ),
    }
}

/// Where a piece of the file starts: byte offset, 1-based line and column (in `char`s, as
/// sqlparser counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Base {
    pub byte: usize,
    pub line: u64,
    pub column: u64,
}

impl Base {
    /// A location relative to this piece (1:1 = its first character) in file coordinates.
    fn shift(&self, line: u64, column: u64) -> (u64, u64) {
        if line <= 1 {
            (self.line, column + self.column - 1)
        } else {
            (line + self.line - 1, column)
        }
    }

    /// The base of the text that follows `piece` (which starts at this base).
    pub(crate) fn after(&self, piece: &str) -> Base {
        let byte = self.byte + piece.len();
        match piece.rfind('\n') {
            Some(k) => Base {
                byte,
                line: self.line + piece.matches('\n').count() as u64,
                column: piece[k + 1..].chars().count() as u64 + 1,
            },
            None => Base {
                byte,
                line: self.line,
                column: self.column + piece.chars().count() as u64,
            },
        }
    }
}

/// Tokenize `text`, a piece of the file starting at `base`: token locations and byte offsets
/// refer to the whole file.
pub(crate) fn tokenize_at(file: &str, text: &str, base: Base) -> Result<Tokens, ParseError> {
    let dialect = PostgreSqlDialect {};
    let mut tokens = Vec::new();
    if let Err(mut e) = Tokenizer::new(&dialect, text).tokenize_with_location_into_buf(&mut tokens)
    {
        // sqlparser reports an unterminated dollar quote or block comment at the end of the
        // input; point at its opening delimiter instead, which is what the user must fix. The
        // failing token starts where the last complete token ended (O(n): the tokens read so
        // far stay in the buffer).
        if e.message.starts_with("Unterminated dollar-quoted")
            || e.message
                .starts_with("Unexpected EOF while in a multi-line comment")
        {
            e.location = tokens.last().map_or(
                sqlparser::tokenizer::Location { line: 1, column: 1 },
                |t: &TokenWithSpan| t.span.end,
            );
        }
        let (line, column) = base.shift(e.location.line, e.location.column);
        return Err(ParseError::Tokenize {
            file: file.to_string(),
            line: clamp_u32(line),
            column: clamp_u32(column),
            message: e.message,
        });
    }
    let mut starts = byte_offsets(text, &tokens);
    for s in starts.iter_mut() {
        *s += base.byte;
    }
    if base.line != 1 || base.column != 1 {
        for t in tokens.iter_mut() {
            let (l, c) = base.shift(t.span.start.line, t.span.start.column);
            t.span.start.line = l;
            t.span.start.column = c;
            let (l, c) = base.shift(t.span.end.line, t.span.end.column);
            t.span.end.line = l;
            t.span.end.column = c;
        }
    }
    Ok(Tokens { tokens, starts })
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// sqlparser's locations are 1-based lines and 1-based columns counted in `char`s (a new line
/// starts after each `\n`; `\r` counts as a character). Walk the source once, in token order, to
/// turn each token's start location into a byte offset.
fn byte_offsets(source: &str, tokens: &[TokenWithSpan]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(tokens.len() + 1);
    let mut chars = source.char_indices().peekable();
    let (mut line, mut col) = (1u64, 1u64);
    let mut byte = 0usize;
    for t in tokens {
        let target = (t.span.start.line, t.span.start.column);
        while (line, col) < target {
            match chars.next() {
                Some((_, c)) => {
                    byte += c.len_utf8();
                    if c == '\n' {
                        line += 1;
                        col = 1;
                    } else {
                        col += 1;
                    }
                }
                None => break,
            }
        }
        starts.push(byte);
    }
    starts.push(source.len());
    starts
}

/// Split the token stream into statements. Empty statements are dropped.
pub(crate) fn split(toks: &Tokens) -> Vec<RawStatement> {
    let tokens = &toks.tokens;
    let mut out = Vec::new();
    let mut first: Option<usize> = None;
    let mut last = 0usize;
    let mut depth = 0i32;
    let mut atomic = Atomic::default();
    let mut i = 0usize;
    while i < tokens.len() {
        let t = &tokens[i].token;
        if is_trivia(t) {
            i += 1;
            continue;
        }
        match first {
            None => {
                if matches!(t, Token::SemiColon) {
                    i += 1;
                    continue;
                }
                if matches!(t, Token::Backslash) {
                    // psql meta-command: runs to the end of the line.
                    let line = tokens[i].span.start.line;
                    let mut j = i;
                    let mut end = i;
                    while j < tokens.len() {
                        let tj = &tokens[j];
                        if tj.span.start.line != line
                            || matches!(tj.token, Token::Whitespace(Whitespace::Newline))
                        {
                            break;
                        }
                        if !is_trivia(&tj.token) {
                            end = j;
                        }
                        j += 1;
                    }
                    out.push(RawStatement {
                        first: i,
                        last: end,
                        semicolon: None,
                        meta: true,
                    });
                    i = j;
                    continue;
                }
                first = Some(i);
                last = i;
                depth = 0;
                atomic = Atomic::default();
                atomic.see(t, depth);
                adjust_depth(t, &mut depth);
            }
            Some(f) => {
                if matches!(t, Token::SemiColon) && depth <= 0 && atomic.begin_depth == 0 {
                    out.push(RawStatement {
                        first: f,
                        last,
                        semicolon: Some(i),
                        meta: false,
                    });
                    first = None;
                } else {
                    last = i;
                    atomic.see(t, depth);
                    adjust_depth(t, &mut depth);
                }
            }
        }
        i += 1;
    }
    if let Some(f) = first {
        out.push(RawStatement {
            first: f,
            last,
            semicolon: None,
            meta: false,
        });
    }
    out
}

/// `BEGIN ATOMIC … END` bodies of `CREATE [OR REPLACE] FUNCTION|PROCEDURE` (PostgreSQL 14+)
/// hold semicolons that do not end the statement. The rule psql applies: in a statement that
/// starts with those words, outside parentheses, an unquoted `BEGIN` opens a block, `CASE`
/// opens one inside a block, `END` closes one.
#[derive(Default)]
struct Atomic {
    /// The first (up to four) unquoted words of the statement, lower case.
    words: Vec<String>,
    /// Open `BEGIN`/`CASE` blocks.
    begin_depth: u32,
}

impl Atomic {
    fn see(&mut self, t: &Token, paren_depth: i32) {
        let Token::Word(w) = t else { return };
        if w.quote_style.is_some() {
            return;
        }
        let word = w.value.to_ascii_lowercase();
        if self.words.len() < 4 {
            self.words.push(word.clone());
        }
        let w: Vec<&str> = self.words.iter().map(String::as_str).collect();
        let routine = matches!(
            w.as_slice(),
            ["create", "function" | "procedure", ..]
                | ["create", "or", "replace", "function" | "procedure", ..]
        );
        if !routine || paren_depth > 0 {
            return;
        }
        match word.as_str() {
            "begin" => self.begin_depth += 1,
            "case" if self.begin_depth > 0 => self.begin_depth += 1,
            "end" => self.begin_depth = self.begin_depth.saturating_sub(1),
            _ => {}
        }
    }
}

fn adjust_depth(t: &Token, depth: &mut i32) {
    match t {
        Token::LParen => *depth += 1,
        Token::RParen => *depth = (*depth - 1).max(0),
        _ => {}
    }
}

/// Line/column (1-based, columns in chars) of the last character of token `k`.
pub(crate) fn token_end_location(source: &str, toks: &Tokens, k: usize) -> (u32, u32) {
    let t = &toks.tokens[k];
    let (mut line, mut col) = (t.span.start.line, t.span.start.column);
    let text = source
        .get(toks.starts[k]..toks.starts[k + 1])
        .unwrap_or_default();
    let n = text.chars().count();
    for c in text.chars().take(n.saturating_sub(1)) {
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (clamp_u32(line), clamp_u32(col))
}

/// Line/column (1-based, columns in chars) of byte offset `pos` (linear in `pos`: for errors only).
pub(crate) fn location_of_bytes(bytes: &[u8], pos: usize) -> (u32, u32) {
    let pos = pos.min(bytes.len());
    let before = &bytes[..pos];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

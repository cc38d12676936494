//! The parse pipeline: tokenize once, split, parse each statement, convert, then the
//! transaction/settings pass and inline ignores.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::ParserError;
use sqlparser::tokenizer::{Token, TokenWithSpan, Whitespace};

use crate::grammar::{describe, parse_tokens};
use crate::model::{Migration, Operation, ParseOptions, Span, Statement, StatementKind, TxContext};
use crate::slices::SliceEnd;
use crate::split::{self, RawStatement, Tokens, is_trivia};
use crate::{ParseError, convert, session, tokens};

/// `(message, line, column)` of a sqlparser error; the location is taken from the message's
/// trailing ` at Line: L, Column: C` (tokens carry file positions, so it is file-relative).
fn error_parts(e: &ParserError) -> (String, Option<(u32, u32)>) {
    let msg = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m.clone(),
        ParserError::RecursionLimitExceeded => "recursion limit exceeded".to_string(),
    };
    if let Some(pos) = msg.rfind(" at Line: ") {
        let rest = &msg[pos + " at Line: ".len()..];
        let mut it = rest.splitn(2, ", Column: ");
        let line = it.next().and_then(|l| l.trim().parse::<u32>().ok());
        let col = it.next().and_then(|c| c.trim().parse::<u32>().ok());
        if let (Some(l), Some(c)) = (line, col)
            && l > 0
        {
            return (msg[..pos].to_string(), Some((l, c)));
        }
    }
    (msg, None)
}

/// Analyse one statement: token-level recognition for forms sqlparser mis-parses or rejects,
/// otherwise sqlparser and AST conversion.
fn analyze(all: &[TokenWithSpan], stmt_start: (u32, u32)) -> (StatementKind, Vec<Operation>) {
    let sig: Vec<&TokenWithSpan> = all.iter().filter(|t| !is_trivia(&t.token)).collect();
    if let Some(ops) = tokens::recognize_before(&sig) {
        return (StatementKind::Parsed, ops);
    }
    let mut ops = Vec::new();
    match parse_tokens(all) {
        Ok(stmts) => {
            for s in &stmts {
                convert::operations(s, &|| describe(&sig), &mut ops);
            }
            tokens::set_config_calls(&sig, &mut ops);
            (StatementKind::Parsed, ops)
        }
        Err(e) => {
            if let Some(ops) = tokens::recognize_after(all, &sig) {
                return (StatementKind::Parsed, ops);
            }
            let (error, loc) = error_parts(&e);
            let (line, column) = loc.unwrap_or(stmt_start);
            (
                StatementKind::Unparsed {
                    error,
                    line,
                    column,
                },
                Vec::new(),
            )
        }
    }
}

/// One `deployclaw:ignore` directive.
struct Directive {
    line: u64,
    byte: usize,
    rules: Vec<String>,
}

/// The rules named after `deployclaw:ignore` (comma or space separated, up to a ` -- reason`);
/// none named means all rules (`all`), as in eugene's `-- eugene: ignore`.
fn directive_rules(text: &str) -> Vec<String> {
    let text = text.split(" --").next().unwrap_or_default();
    let text = text.trim_end().trim_end_matches("*/");
    let rules: Vec<String> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if rules.is_empty() {
        vec!["all".to_string()]
    } else {
        rules
    }
}

/// Ignore directives: per-statement ones with their positions, and file-wide rules.
/// Also returns, per line, whether it holds a comment and whether it holds code.
struct Ignores {
    directives: Vec<Directive>,
    file_rules: Vec<String>,
    comment_line: Vec<bool>,
    code_line: Vec<bool>,
}

impl Ignores {
    fn new() -> Ignores {
        Ignores {
            directives: Vec::new(),
            file_rules: Vec::new(),
            comment_line: Vec::new(),
            code_line: Vec::new(),
        }
    }

    fn mark(v: &mut Vec<bool>, line: u64) {
        let Ok(i) = usize::try_from(line) else {
            return;
        };
        if v.len() <= i {
            v.resize(i + 1, false);
        }
        v[i] = true;
    }

    /// Add what the tokens of one piece of the file say (comment lines, code lines, directives).
    fn collect(&mut self, toks: &Tokens) {
        for (i, t) in toks.tokens.iter().enumerate() {
            let line = t.span.start.line;
            let text = match &t.token {
                Token::Whitespace(Whitespace::SingleLineComment { comment, .. }) => {
                    comment.as_str()
                }
                Token::Whitespace(Whitespace::MultiLineComment(c)) => {
                    let n = c.matches('\n').count();
                    for l in line..=line + n as u64 {
                        Ignores::mark(&mut self.comment_line, l);
                    }
                    c.as_str()
                }
                Token::Whitespace(_) => continue,
                _ => {
                    // Multi-line tokens (strings, dollar bodies) mark all their lines as code.
                    let end = t.span.end.line.max(line);
                    for l in line..=end {
                        Ignores::mark(&mut self.code_line, l);
                    }
                    continue;
                }
            };
            Ignores::mark(&mut self.comment_line, line);
            let trimmed = text.trim_start();
            if let Some(rest) = trimmed.strip_prefix("deployclaw:ignore-file") {
                self.file_rules.extend(directive_rules(rest));
            } else if let Some(rest) = trimmed.strip_prefix("deployclaw:ignore") {
                self.directives.push(Directive {
                    line,
                    byte: toks.starts[i],
                    rules: directive_rules(rest),
                });
            }
        }
    }
}

fn ignored_for(ig: &Ignores, line: u64, start: usize) -> Vec<String> {
    let mut rules: Vec<String> = Vec::new();
    let mut add = |d: &Directive| {
        for r in &d.rules {
            if !rules.contains(r) {
                rules.push(r.clone());
            }
        }
    };
    // Comment lines directly above (no blank line, no code in between).
    let mut l = line.saturating_sub(1);
    while l >= 1 {
        let li = l as usize;
        let comment = ig.comment_line.get(li).copied().unwrap_or(false);
        let code = ig.code_line.get(li).copied().unwrap_or(false);
        if !comment || code {
            break;
        }
        for d in ig.directives.iter().filter(|d| d.line == l) {
            add(d);
        }
        l -= 1;
    }
    // Trailing comment on the statement's first line.
    for d in ig
        .directives
        .iter()
        .filter(|d| d.line == line && d.byte > start)
    {
        add(d);
    }
    rules
}

/// Statements of more (estimated) tokens than this are not tokenized whole nor parsed: only
/// their first [`PREFIX_BYTES`] are read for the leading keywords, and the statement is
/// reported [`StatementKind::Unparsed`] ("too large to analyse"). A token takes ~100 bytes and
/// parsing copies them once more, so this bounds the parser's memory to some 100 MB per
/// statement; a real migration statement has a few hundred tokens, a 5 MB seed `INSERT` about
/// a million.
pub(crate) const MAX_ANALYSED_TOKENS: usize = 500_000;
const PREFIX_BYTES: usize = 64 * 1024;

/// Which way [`parse_with`] reads the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Statement by statement, falling back to the whole file (what [`crate::parse`] does).
    Auto,
    /// Statement by statement only: `Ok(None)` when the slices cannot be vouched for.
    SlicedOnly,
    /// The whole file tokenized at once (the reference).
    Whole,
}

/// See [`crate::parse`].
pub(crate) fn parse(
    file: &str,
    source: &str,
    options: &ParseOptions,
) -> Result<Migration, ParseError> {
    parse_with(file, source, options, Strategy::Auto, None).map(|m| m.expect("auto always parses"))
}

/// See [`crate::parse_limited`].
pub(crate) fn parse_limited(
    file: &str,
    source: &str,
    options: &ParseOptions,
    max_statements: usize,
) -> Result<Migration, ParseError> {
    parse_with(file, source, options, Strategy::Auto, Some(max_statements))
        .map(|m| m.expect("auto always parses"))
}

pub(crate) fn parse_with(
    file: &str,
    source: &str,
    options: &ParseOptions,
    strategy: Strategy,
    limit: Option<usize>,
) -> Result<Option<Migration>, ParseError> {
    let sliced = match strategy {
        Strategy::Whole => None,
        _ => parse_sliced(file, source, limit)?,
    };
    let (mut statements, ignores) = match (sliced, strategy) {
        (Some(done), _) => done,
        (None, Strategy::SlicedOnly) => return Ok(None),
        (None, _) => parse_whole(file, source, limit)?,
    };
    for st in statements.iter_mut() {
        st.ignored_rules = ignored_for(&ignores, u64::from(st.span.line), st.span.start);
    }
    session::apply(&mut statements, options.transaction_mode);
    Ok(Some(Migration {
        file: file.to_string(),
        source: source.to_string(),
        statements,
        options: options.clone(),
        file_ignored_rules: ignores.file_rules,
    }))
}

/// The whole file tokenized at once, then split: the reference behaviour, used when the
/// statement-by-statement path cannot vouch for its boundaries.
fn parse_whole(
    file: &str,
    source: &str,
    limit: Option<usize>,
) -> Result<(Vec<Statement>, Ignores), ParseError> {
    let toks = split::tokenize(file, source)?;
    let raws = split::split(&toks);
    if let Some(limit) = limit
        && let Some(over) = raws.get(limit)
    {
        let t = &toks.tokens[over.first];
        let (line, column) = (t.span.start.line, t.span.start.column);
        return Err(too_many(file, limit, (raws.len(), true), line, column));
    }
    let mut ignores = Ignores::new();
    ignores.collect(&toks);
    let statements = raws
        .iter()
        .enumerate()
        .map(|(index, raw)| statement(source, &toks, raw, index))
        .collect();
    Ok((statements, ignores))
}

/// Statement by statement: [`crate::slices`] guesses the boundaries, each slice is tokenized
/// alone, and [`split::split`] on its tokens must find exactly the one statement the guess
/// promised. `Ok(None)` when any slice disagrees (the caller then tokenizes the whole file);
/// `Err` only for a tokenizer error in the last slice, which is the first error of the file.
fn parse_sliced(
    file: &str,
    source: &str,
    limit: Option<usize>,
) -> Result<Option<(Vec<Statement>, Ignores)>, ParseError> {
    let (text, mut base) = split::after_bom(source);
    let mut ignores = Ignores::new();
    let all = crate::slices::slices(text);
    // A slice holds at most one statement: no reallocation (and no doubled peak) while reading.
    let mut statements: Vec<Statement> = Vec::with_capacity(
        limit
            .map_or(all.len(), |n| n.min(all.len()))
            .saturating_add(1),
    );
    for (k, sl) in all.iter().copied().enumerate() {
        if let Some(limit) = limit
            && let Some(over) = statements.get(limit)
        {
            // Stop here: memory holds `limit` statements, not the file's. The total is the
            // statements read plus one per slice left (a slice holds at most one statement).
            let (line, column) = (u64::from(over.span.line), u64::from(over.span.column));
            // A whitespace-only end of the file is a slice without a statement.
            let blank_end = all
                .last()
                .is_some_and(|l| l.ends == SliceEnd::Eof && text[l.start..l.end].trim().is_empty());
            let about = statements.len() + (all.len() - k) - usize::from(blank_end);
            return Err(too_many(file, limit, (about, false), line, column));
        }
        let piece = &text[sl.start..sl.end];
        if sl.ends != SliceEnd::Eof && sl.tokens > MAX_ANALYSED_TOKENS {
            match too_large(
                file,
                source,
                &piece[..sl.sql_len],
                sl.tokens,
                base,
                statements.len(),
            ) {
                Some((st, toks)) => {
                    ignores.collect(&toks);
                    statements.push(st);
                }
                None => return Ok(None),
            }
            base = base.after(piece);
            continue;
        }
        let toks = match split::tokenize_at(file, piece, base) {
            Ok(t) => t,
            Err(e) if sl.ends == SliceEnd::Eof => return Err(e),
            Err(_) => return Ok(None),
        };
        let raws = split::split(&toks);
        let vouched = match sl.ends {
            SliceEnd::Semicolon => {
                raws.len() == 1 && raws[0].semicolon.is_some_and(|k| trivia_after(&toks, k))
            }
            SliceEnd::MetaLine => {
                raws.len() == 1 && raws[0].meta && trivia_after(&toks, raws[0].last)
            }
            SliceEnd::Eof => raws.len() <= 1 && raws.iter().all(|r| r.semicolon.is_none()),
        };
        if !vouched {
            return Ok(None);
        }
        ignores.collect(&toks);
        for raw in &raws {
            let index = statements.len();
            statements.push(statement(source, &toks, raw, index));
        }
        base = base.after(piece);
    }
    if let Some(limit) = limit
        && let Some(over) = statements.get(limit)
    {
        let (line, column) = (u64::from(over.span.line), u64::from(over.span.column));
        return Err(too_many(
            file,
            limit,
            (statements.len(), true),
            line,
            column,
        ));
    }
    Ok(Some((statements, ignores)))
}

/// [`ParseError::TooManyStatements`]: the statement at `line`:`column` is number `limit + 1`;
/// `total` is the file's statement count and whether it is exact (else an upper bound: reading
/// stopped early).
fn too_many(
    file: &str,
    limit: usize,
    (total, exact): (usize, bool),
    line: u64,
    column: u64,
) -> ParseError {
    ParseError::TooManyStatements {
        file: file.to_string(),
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
        limit,
        total: total.max(limit + 1),
        exact,
    }
}

/// Whether every token after `k` is whitespace or a comment.
fn trivia_after(toks: &Tokens, k: usize) -> bool {
    toks.tokens
        .get(k + 1..)
        .is_none_or(|rest| rest.iter().all(|t| is_trivia(&t.token)))
}

/// A statement too large to analyse (see [`MAX_ANALYSED_TOKENS`]): located from the
/// tokens of its first bytes, reported unparsed. Also returns those tokens (for the ignore
/// directives in the comments before it). `None` if not even its start can be read.
fn too_large(
    file: &str,
    source: &str,
    piece: &str,
    tokens: usize,
    base: split::Base,
    index: usize,
) -> Option<(Statement, Tokens)> {
    let mut cut = PREFIX_BYTES.min(piece.len());
    while !piece.is_char_boundary(cut) {
        cut -= 1;
    }
    // The prefix may end inside a string: keep the tokens read before that.
    let prefix = &piece[..cut];
    let toks = match split::tokenize_at(file, prefix, base) {
        Ok(t) => t,
        Err(_) => {
            let mut tokens = Vec::new();
            let _ = sqlparser::tokenizer::Tokenizer::new(&PostgreSqlDialect {}, prefix)
                .tokenize_with_location_into_buf(&mut tokens);
            let keep = prefix_tokens_text(prefix, &tokens);
            split::tokenize_at(file, &prefix[..keep], base).ok()?
        }
    };
    let first = toks.tokens.iter().position(|t| !is_trivia(&t.token))?;
    let t = &toks.tokens[first];
    let line = u32::try_from(t.span.start.line).unwrap_or(u32::MAX);
    let column = u32::try_from(t.span.start.column).unwrap_or(u32::MAX);
    let start = toks.starts[first];
    let end = base.byte + piece.len();
    // The statement's text ends before its `;` (the last byte of the piece), if it has one.
    let sql_end = if piece.ends_with(';') { end - 1 } else { end };
    let sql = source
        .get(start..sql_end)
        .unwrap_or_default()
        .trim_end()
        .to_string();
    let (end_line, end_column) = split::location_of_bytes(source.as_bytes(), end - 1);
    let sig: Vec<&TokenWithSpan> = toks.tokens[first..]
        .iter()
        .filter(|t| !is_trivia(&t.token))
        .collect();
    let st = Statement {
        index,
        span: Span {
            line,
            column,
            end_line,
            end_column,
            start,
            end,
        },
        kind: StatementKind::Unparsed {
            error: format!(
                "{}: this {} statement is {:.1} MiB, about {:.1} million tokens, over the {:.1} million the parser analyses",
                StatementKind::TOO_LARGE,
                describe(&sig),
                (end - start) as f64 / (1024.0 * 1024.0),
                tokens as f64 / 1e6,
                MAX_ANALYSED_TOKENS as f64 / 1e6
            ),
            line,
            column,
        },
        sql,
        operations: Vec::new(),
        tx: TxContext {
            transaction: 0,
            in_block: false,
        },
        settings: Default::default(),
        ignored_rules: Vec::new(),
    };
    Some((st, toks))
}

/// Length of the text covered by complete `tokens` of `text` (those before a tokenizer error).
fn prefix_tokens_text(text: &str, tokens: &[TokenWithSpan]) -> usize {
    // Drop the last token (it may be cut) and measure up to where it starts.
    let Some(last) = tokens.len().checked_sub(1) else {
        return 0;
    };
    let loc = tokens[last].span.start;
    let mut line = 1u64;
    let mut col = 1u64;
    for (i, c) in text.char_indices() {
        if (line, col) >= (loc.line, loc.column) {
            return i;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    text.len()
}

fn statement(source: &str, toks: &Tokens, raw: &RawStatement, index: usize) -> Statement {
    let first = &toks.tokens[raw.first];
    let start = toks.starts[raw.first];
    let sql_end = toks.starts[raw.last + 1];
    let end_tok = raw.semicolon.unwrap_or(raw.last);
    let end = toks.starts[end_tok + 1];
    let (end_line, end_column) = split::token_end_location(source, toks, end_tok);
    let line = u32::try_from(first.span.start.line).unwrap_or(u32::MAX);
    let column = u32::try_from(first.span.start.column).unwrap_or(u32::MAX);
    let span = Span {
        line,
        column,
        end_line,
        end_column,
        start,
        end,
    };
    let sql = source.get(start..sql_end).unwrap_or_default().to_string();
    let (kind, operations) = if raw.meta {
        (
            StatementKind::Unparsed {
                error:
                    "psql meta-command: only psql understands it, it is not SQL sent to the server"
                        .to_string(),
                line,
                column,
            },
            Vec::new(),
        )
    } else {
        analyze(&toks.tokens[raw.first..=raw.last], (line, column))
    };
    // A `Vec` grows to 4 elements on its first push: 1.2 KB for the usual single operation,
    // the largest part of a small statement's memory in a file of hundreds of thousands.
    let mut operations = operations;
    operations.shrink_to_fit();
    Statement {
        index,
        span,
        sql,
        kind,
        operations,
        tx: TxContext {
            transaction: 0,
            in_block: false,
        },
        settings: Default::default(),
        // Filled in by `parse` once every comment of the file is known.
        ignored_rules: Vec::new(),
    }
}

//! The parse pipeline: tokenize once, split, parse each statement, convert, then the
//! transaction/settings pass and inline ignores.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Span as TokSpan, Token, TokenWithSpan, Whitespace};

use crate::model::{Migration, Operation, ParseOptions, Span, Statement, StatementKind, TxContext};
use crate::split::{self, RawStatement, Tokens, is_trivia};
use crate::{ParseError, convert, session, tokens};

/// Parse a statement's tokens (whitespace included, no trailing `;`) with sqlparser.
pub(crate) fn parse_tokens(
    toks: &[TokenWithSpan],
) -> Result<Vec<sqlparser::ast::Statement>, ParserError> {
    let dialect = PostgreSqlDialect {};
    let mut v = Vec::with_capacity(toks.len() + 1);
    v.extend_from_slice(toks);
    v.push(TokenWithSpan {
        token: Token::EOF,
        span: TokSpan::empty(),
    });
    Parser::new(&dialect)
        .with_tokens_with_locations(v)
        .parse_statements()
}

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

/// Leading keywords of a statement, upper-cased, for [`Operation::Other`]: `GRANT`,
/// `CREATE POLICY`, `DROP SEQUENCE`, `ALTER DOMAIN`, ...
pub(crate) fn describe(sig: &[&TokenWithSpan]) -> String {
    let words: Vec<String> = sig
        .iter()
        .map_while(|t| match &t.token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_uppercase()),
            _ => None,
        })
        .filter(|w| {
            !matches!(
                w.as_str(),
                "OR" | "REPLACE"
                    | "UNIQUE"
                    | "TEMP"
                    | "TEMPORARY"
                    | "UNLOGGED"
                    | "TRUSTED"
                    | "PROCEDURAL"
            )
        })
        .take(3)
        .collect();
    let n = match words.first().map(String::as_str) {
        Some("CREATE" | "DROP" | "ALTER") => match words.get(1).map(String::as_str) {
            Some(
                "MATERIALIZED" | "EVENT" | "FOREIGN" | "TEXT" | "ACCESS" | "DEFAULT" | "OPERATOR"
                | "USER",
            ) => 3,
            _ => 2,
        },
        _ => 1,
    };
    words.into_iter().take(n).collect::<Vec<_>>().join(" ")
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

fn collect_ignores(toks: &Tokens) -> Ignores {
    let lines = toks
        .tokens
        .last()
        .map_or(1, |t| t.span.end.line.max(t.span.start.line) as usize + 2);
    let mut ig = Ignores {
        directives: Vec::new(),
        file_rules: Vec::new(),
        comment_line: vec![false; lines],
        code_line: vec![false; lines],
    };
    for (i, t) in toks.tokens.iter().enumerate() {
        let line = t.span.start.line;
        let text = match &t.token {
            Token::Whitespace(Whitespace::SingleLineComment { comment, .. }) => comment.as_str(),
            Token::Whitespace(Whitespace::MultiLineComment(c)) => {
                let n = c.matches('\n').count();
                for l in line..=line + n as u64 {
                    if let Some(x) = ig.comment_line.get_mut(l as usize) {
                        *x = true;
                    }
                }
                c.as_str()
            }
            Token::Whitespace(_) => continue,
            _ => {
                // Multi-line tokens (strings, dollar bodies) mark all their lines as code.
                let end = t.span.end.line.max(line);
                for l in line..=end {
                    if let Some(x) = ig.code_line.get_mut(l as usize) {
                        *x = true;
                    }
                }
                continue;
            }
        };
        if let Some(x) = ig.comment_line.get_mut(line as usize) {
            *x = true;
        }
        let trimmed = text.trim_start();
        if let Some(rest) = trimmed.strip_prefix("deployclaw:ignore-file") {
            ig.file_rules.extend(directive_rules(rest));
        } else if let Some(rest) = trimmed.strip_prefix("deployclaw:ignore") {
            ig.directives.push(Directive {
                line,
                byte: toks.starts[i],
                rules: directive_rules(rest),
            });
        }
    }
    ig
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

/// See [`crate::parse`].
pub(crate) fn parse(
    file: &str,
    source: &str,
    options: &ParseOptions,
) -> Result<Migration, ParseError> {
    let toks = split::tokenize(file, source)?;
    let raws = split::split(&toks);
    let ignores = collect_ignores(&toks);
    let mut statements = Vec::with_capacity(raws.len());
    for (index, raw) in raws.iter().enumerate() {
        statements.push(statement(source, &toks, raw, index, &ignores));
    }
    session::apply(&mut statements, options.transaction_mode);
    Ok(Migration {
        file: file.to_string(),
        source: source.to_string(),
        statements,
        options: options.clone(),
        file_ignored_rules: ignores.file_rules,
    })
}

fn statement(
    source: &str,
    toks: &Tokens,
    raw: &RawStatement,
    index: usize,
    ig: &Ignores,
) -> Statement {
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
        ignored_rules: ignored_for(ig, first.span.start.line, start),
    }
}

//! sqlparser's side of reading one statement: parsing its tokens and naming it by its leading
//! keywords. Both the parse pipeline (`parse.rs`) and the token-level recognisers (`tokens.rs`)
//! use it, so it sits below both.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Span as TokSpan, Token, TokenWithSpan};

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

/// Leading keywords of a statement, upper-cased, for [`crate::Operation::Other`]: `GRANT`,
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

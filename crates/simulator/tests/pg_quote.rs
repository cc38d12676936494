//! The one quoting module (`migration_parser::pg_quote`) against PostgreSQL itself: on hundreds of
//! generated hostile strings, `quote_ident_minimal` agrees with the server's `quote_ident`, an
//! always-quoted identifier names exactly the string it quoted, and a quoted literal reads back as
//! the same text with `standard_conforming_strings` on and off.

mod common;

use std::collections::BTreeSet;

use common::*;
use migration_parser::pg_quote::{quote_ident, quote_ident_minimal, quote_literal};
use sqlx::{AssertSqlSafe, Row};

/// Deterministic strings over an alphabet chosen to break quoting: quotes, backslashes,
/// semicolons, comment openers, `$`, upper case, digits, spaces, non-ASCII, and keywords.
fn hostile_strings() -> Vec<String> {
    const PIECES: &[&str] = &[
        "a", "Z", "_", "$", "1", " ", "\"", "'", "\\", ";", "--", "/*", "*/", "$$", "é", "Ж", "🦀",
        "select", "user", "table", "drop", "x", "\t", "\n", "e'", "U&",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out: BTreeSet<String> = ["", "users", "user", "select", "Users", "a$b", "_x1", "1x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    while out.len() < 600 {
        let n = 1 + (next() % 6) as usize;
        let s: String = (0..n)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        // PostgreSQL truncates identifiers to 63 bytes; keep them shorter.
        if s.len() <= 60 {
            out.insert(s);
        }
    }
    out.into_iter().collect()
}

#[tokio::test]
async fn quoting_agrees_with_postgresql() {
    let pg = start().await;
    let mut c = conn(&pg, "postgres").await;
    let server_keywords: Vec<String> =
        sqlx::query_scalar("SELECT word::text FROM pg_get_keywords() WHERE catcode <> 'U'")
            .fetch_all(&mut c)
            .await
            .unwrap();
    for kw in &server_keywords {
        assert_eq!(
            quote_ident_minimal(kw),
            quote_ident(kw),
            "keyword {kw} must be quoted"
        );
    }
    for s in hostile_strings() {
        let theirs: String = sqlx::query_scalar("SELECT quote_ident($1)")
            .bind(&s)
            .fetch_one(&mut c)
            .await
            .unwrap();
        let ours = quote_ident_minimal(&s);
        // Our keyword list is the union over PostgreSQL 11–17, so a word that is a keyword only
        // in a newer release than this server may be quoted by us and not by it.
        let newer_keyword = ours != theirs && theirs == s && ours == quote_ident(&s);
        assert!(
            ours == theirs || newer_keyword,
            "{s:?}: ours {ours} vs {theirs}"
        );

        if s.is_empty() {
            // `""` is not an identifier in PostgreSQL ("zero-length delimited identifier").
            continue;
        }
        let named: String = sqlx::query(AssertSqlSafe(format!("SELECT 1 AS {}", quote_ident(&s))))
            .fetch_one(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{s:?}: {e}"))
            .columns()
            .first()
            .map(|col| sqlx::Column::name(col).to_string())
            .unwrap();
        assert_eq!(named, s, "always-quoted identifier");

        assert_literal_round_trips(&mut c, &s).await;
    }
}

async fn assert_literal_round_trips(c: &mut sqlx::PgConnection, s: &str) {
    for scs in ["on", "off"] {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "SET standard_conforming_strings = {scs}"
        )))
        .execute(&mut *c)
        .await
        .unwrap();
        let back: String = sqlx::query(AssertSqlSafe(format!("SELECT {}::text", quote_literal(s))))
            .fetch_one(&mut *c)
            .await
            .unwrap_or_else(|e| panic!("{s:?} scs={scs}: {e}"))
            .get(0);
        assert_eq!(back, s, "literal with standard_conforming_strings = {scs}");
    }
}

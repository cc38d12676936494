//! Token-level recognition of PostgreSQL statements sqlparser 0.64 rejects or mis-parses.
//!
//! Two hooks:
//! * [`recognize_before`] runs before sqlparser, for statements sqlparser gets *wrong* or always
//!   rejects (`DROP INDEX [CONCURRENTLY]`, `DO`, `REINDEX`, `VACUUM`, `CLUSTER`, `ALTER SYSTEM`,
//!   `ALTER INDEX ... ATTACH PARTITION`).
//! * [`recognize_after`] runs when sqlparser failed: it rewrites the tokens into a form sqlparser
//!   accepts (drops `ONLY` in `CREATE INDEX ... ON ONLY`, `COLLATE` after `ALTER COLUMN ... TYPE`,
//!   `INCLUDING ...` in `CREATE TABLE (LIKE ...)`, `WITH [NO] DATA` after a materialized view) or
//!   splits a multi-action `ALTER TABLE` and handles `SET SCHEMA` / `SET TABLESPACE` itself.
//!
//! Statements recognised here are reported as [`crate::StatementKind::Parsed`]: the file is valid
//! SQL and the operations are complete. Only statements nothing understood stay `Unparsed`.

use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::actions::{AlterTableAction, MaintenanceCommand, ReindexTarget, SequenceOwnedBy};
use crate::convert;
use crate::grammar::{describe, parse_tokens};
use crate::model::{Operation, QualifiedName};

/// A cursor over significant tokens.
struct Cur<'a> {
    t: &'a [&'a TokenWithSpan],
    i: usize,
}

impl<'a> Cur<'a> {
    fn new(t: &'a [&'a TokenWithSpan]) -> Self {
        Cur { t, i: 0 }
    }
    fn peek(&self) -> Option<&'a Token> {
        self.t.get(self.i).map(|t| &t.token)
    }
    fn is_kw(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k))
    }
    fn eat(&mut self, k: &str) -> bool {
        if self.is_kw(k) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat_all(&mut self, ks: &[&str]) -> bool {
        let save = self.i;
        for k in ks {
            if !self.eat(k) {
                self.i = save;
                return false;
            }
        }
        true
    }
    fn eat_token(&mut self, t: &Token) -> bool {
        if self.peek() == Some(t) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn done(&self) -> bool {
        self.i >= self.t.len()
    }
    /// An identifier (quoted or not), normalised.
    fn ident(&mut self) -> Option<String> {
        match self.peek() {
            Some(Token::Word(w)) => {
                self.i += 1;
                Some(if w.quote_style.is_some() {
                    w.value.clone()
                } else {
                    w.value.to_lowercase()
                })
            }
            _ => None,
        }
    }
    /// The parts of a dotted name (`a`, `s.a`, `db.s.a`), normalised.
    fn name_parts(&mut self) -> Option<Vec<String>> {
        let mut parts = vec![self.ident()?];
        while self.eat_token(&Token::Period) {
            parts.push(self.ident()?);
        }
        Some(parts)
    }
    /// `a`, `s.a`, `db.s.a` (a database qualifier is dropped).
    fn name(&mut self) -> Option<QualifiedName> {
        qualified(self.name_parts()?)
    }
    /// Skip a balanced parenthesised group if one starts here.
    fn skip_parens(&mut self) -> Option<Vec<&'a Token>> {
        if self.peek() != Some(&Token::LParen) {
            return None;
        }
        let mut depth = 0;
        let mut inner = Vec::new();
        while let Some(t) = self.peek() {
            self.i += 1;
            match t {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(inner);
                    }
                }
                _ => {}
            }
            inner.push(t);
        }
        Some(inner)
    }
}

/// The last part of `parts` as the name, the one before as its schema.
fn qualified(mut parts: Vec<String>) -> Option<QualifiedName> {
    let name = parts.pop()?;
    Some(match parts.pop() {
        Some(schema) => QualifiedName::qualified(schema, name),
        None => QualifiedName::new(name),
    })
}

fn word_is(t: &Token, k: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k))
}

/// Statements handled from tokens before sqlparser sees them.
pub(crate) fn recognize_before(sig: &[&TokenWithSpan]) -> Option<Vec<Operation>> {
    let mut c = Cur::new(sig);
    if c.eat_all(&["DROP", "INDEX"]) {
        return drop_index(&mut c);
    }
    if c.eat("DO") {
        return do_block(&mut c);
    }
    if c.eat("REINDEX") {
        return reindex(&mut c);
    }
    if c.eat("VACUUM") {
        return vacuum(&mut c);
    }
    if c.eat("CLUSTER") {
        return cluster(&mut c);
    }
    if c.eat_all(&["ALTER", "SYSTEM"]) {
        c.eat("SET");
        c.eat("RESET");
        let name = c.ident().unwrap_or_default();
        return Some(vec![Operation::AlterSystem { name }]);
    }
    if c.eat_all(&["ALTER", "INDEX"]) {
        c.eat_all(&["IF", "EXISTS"]);
        let index = c.name()?;
        if c.eat_all(&["ATTACH", "PARTITION"]) {
            let partition = c.name()?;
            return c
                .done()
                .then_some(vec![Operation::AttachIndexPartition { index, partition }]);
        }
        if c.eat_all(&["RENAME", "TO"]) {
            let new_name = c.ident()?;
            return c.done().then_some(vec![Operation::RenameIndex {
                name: index,
                new_name,
            }]);
        }
        return None;
    }
    None
}

fn drop_index(c: &mut Cur<'_>) -> Option<Vec<Operation>> {
    let concurrently = c.eat("CONCURRENTLY");
    let if_exists = c.eat_all(&["IF", "EXISTS"]);
    let mut names = vec![c.name()?];
    while c.eat_token(&Token::Comma) {
        names.push(c.name()?);
    }
    let cascade = c.eat("CASCADE");
    if !cascade {
        c.eat("RESTRICT");
    }
    if !c.done() {
        return None;
    }
    Some(
        names
            .into_iter()
            .map(|name| Operation::DropIndex {
                name,
                concurrently,
                if_exists,
                cascade,
            })
            .collect(),
    )
}

fn do_block(c: &mut Cur<'_>) -> Option<Vec<Operation>> {
    let mut body = None;
    while let Some(t) = c.peek() {
        c.i += 1;
        match t {
            Token::DollarQuotedString(d) => body = Some(d.value.clone()),
            Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) => body = Some(s.clone()),
            _ => {}
        }
    }
    body.map(|body| vec![Operation::Do { body }])
}

fn reindex(c: &mut Cur<'_>) -> Option<Vec<Operation>> {
    let mut concurrently = false;
    if let Some(inner) = c.skip_parens() {
        // REINDEX (VERBOSE, CONCURRENTLY [true]) is PG 14+ syntax.
        concurrently = inner.iter().any(|t| word_is(t, "CONCURRENTLY"));
    }
    let kind = ReindexTarget::ALL
        .into_iter()
        .find(|k| c.eat(k.keyword()))?;
    concurrently |= c.eat("CONCURRENTLY");
    let name = if c.done() {
        QualifiedName::new("")
    } else {
        c.name()?
    };
    c.done().then_some(vec![Operation::Reindex {
        target_kind: kind,
        name,
        concurrently,
    }])
}

fn table_list(c: &mut Cur<'_>) -> Option<Vec<QualifiedName>> {
    let mut tables = Vec::new();
    while !c.done() {
        c.eat("ONLY");
        tables.push(c.name()?);
        c.skip_parens();
        if !c.eat_token(&Token::Comma) {
            break;
        }
    }
    c.done().then_some(tables)
}

fn vacuum(c: &mut Cur<'_>) -> Option<Vec<Operation>> {
    let mut full = false;
    let mut analyze = false;
    if let Some(inner) = c.skip_parens() {
        // `FULL [true|false|on|off|1|0]`
        for (k, t) in inner.iter().enumerate() {
            if word_is(t, "FULL") {
                full = !inner.get(k + 1).is_some_and(|n| {
                    word_is(n, "false")
                        || word_is(n, "off")
                        || matches!(n, Token::Number(x, _) if x == "0")
                });
            }
            if word_is(t, "ANALYZE") {
                analyze = true;
            }
        }
    } else {
        loop {
            if c.eat("FULL") {
                full = true;
            } else if c.eat("ANALYZE") || c.eat("ANALYSE") {
                analyze = true;
            } else if !(c.eat("FREEZE") || c.eat("VERBOSE")) {
                break;
            }
        }
    }
    let tables = table_list(c)?;
    let command = match (full, analyze) {
        (true, _) => MaintenanceCommand::VacuumFull,
        (false, true) => MaintenanceCommand::VacuumAnalyze,
        (false, false) => MaintenanceCommand::Vacuum,
    };
    Some(vec![Operation::Maintenance { command, tables }])
}

fn cluster(c: &mut Cur<'_>) -> Option<Vec<Operation>> {
    c.skip_parens();
    c.eat("VERBOSE");
    let mut tables = Vec::new();
    if !c.done() {
        let first = c.name()?;
        if c.eat("ON") {
            // Pre-8.3 form `CLUSTER index ON table`.
            tables.push(c.name()?);
        } else {
            tables.push(first);
            if c.eat("USING") {
                c.name()?;
            }
        }
    }
    c.done().then_some(vec![Operation::Maintenance {
        command: MaintenanceCommand::Cluster,
        tables,
    }])
}

/// Index in `all` of the `n`-th significant token.
fn all_index(all: &[TokenWithSpan], sig_index: usize) -> Option<usize> {
    all.iter()
        .enumerate()
        .filter(|(_, t)| !crate::split::is_trivia(&t.token))
        .nth(sig_index)
        .map(|(i, _)| i)
}

/// `DROP DATABASE [IF EXISTS] name [[WITH] (FORCE)]` (sqlparser rejects the option list).
fn drop_database(c: &mut Cur<'_>) -> Option<Vec<Operation>> {
    c.eat_all(&["IF", "EXISTS"]);
    let name = c.name_parts()?.join(".");
    c.eat("WITH");
    let options = c.skip_parens()?;
    let force = options.iter().any(|t| word_is(t, "FORCE"));
    c.done()
        .then_some(vec![Operation::DropDatabase { name, force }])
}

/// A `CREATE FUNCTION|PROCEDURE` with the options sqlparser 0.64 does not know blanked out:
/// `[NOT] LEAKPROOF`, `COST n`, `ROWS n`, `SUPPORT name`, `WINDOW`, `EXTERNAL` (before
/// `SECURITY`) and `TRANSFORM FOR TYPE t [, ...]` — every one `pg_dump` may emit. None of them
/// changes what the statement creates. Only top-level tokens before a `RETURN` / `BEGIN ATOMIC`
/// body are looked at, so the body's own words are left alone.
fn without_routine_options(all: &[TokenWithSpan]) -> Vec<TokenWithSpan> {
    let blank = Token::Whitespace(sqlparser::tokenizer::Whitespace::Space);
    let mut v = all.to_vec();
    let sig: Vec<usize> = (0..v.len())
        .filter(|&i| !crate::split::is_trivia(&v[i].token))
        .collect();
    let word = |v: &[TokenWithSpan], k: usize, w: &str| {
        sig.get(k).is_some_and(|&i| word_is(&v[i].token, w))
    };
    let (mut depth, mut k) = (0i32, 0usize);
    while k < sig.len() {
        let t = v[sig[k]].token.clone();
        let drop = match t {
            Token::LParen => {
                depth += 1;
                0
            }
            Token::RParen => {
                depth -= 1;
                0
            }
            _ if depth != 0 => 0,
            _ if word(&v, k, "RETURN") || word(&v, k, "BEGIN") => break,
            _ if word(&v, k, "LEAKPROOF") || word(&v, k, "WINDOW") => 1,
            _ if word(&v, k, "NOT") && word(&v, k + 1, "LEAKPROOF") => 2,
            _ if word(&v, k, "EXTERNAL") && word(&v, k + 1, "SECURITY") => 1,
            _ if (word(&v, k, "COST") || word(&v, k, "ROWS"))
                && matches!(
                    sig.get(k + 1).map(|&i| &v[i].token),
                    Some(Token::Number(..))
                ) =>
            {
                2
            }
            _ if word(&v, k, "SUPPORT") => {
                let mut n = 2;
                while sig.get(k + n).is_some_and(|&i| v[i].token == Token::Period) {
                    n += 2;
                }
                n
            }
            _ if word(&v, k, "TRANSFORM") => {
                // TRANSFORM FOR TYPE t [, FOR TYPE t ...]: up to the next option keyword.
                let mut n = 1;
                while sig
                    .get(k + n)
                    .is_some_and(|&i| !starts_routine_option(&v[i].token))
                {
                    n += 1;
                }
                n
            }
            _ => 0,
        };
        for j in k..(k + drop).min(sig.len()) {
            v[sig[j]].token = blank.clone();
        }
        k += drop.max(1);
    }
    v
}

/// A SQL-standard body (`BEGIN ATOMIC … END`, PostgreSQL 14+; sqlparser 0.64 does not parse
/// it) replaced by an empty string body (`AS ''`): what the statement creates — name,
/// arguments, result, options — stays; the body is never run by the migration. `None` without
/// such a body.
fn atomic_body_as_string(all: &[TokenWithSpan]) -> Option<Vec<TokenWithSpan>> {
    let blank = Token::Whitespace(sqlparser::tokenizer::Whitespace::Space);
    let sig: Vec<usize> = (0..all.len())
        .filter(|&i| !crate::split::is_trivia(&all[i].token))
        .collect();
    let mut depth = 0i32;
    let mut begin = None;
    for (k, &i) in sig.iter().enumerate() {
        match &all[i].token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            t if depth == 0
                && word_is(t, "BEGIN")
                && sig
                    .get(k + 1)
                    .is_some_and(|&j| word_is(&all[j].token, "ATOMIC")) =>
            {
                begin = Some(k);
                break;
            }
            _ => {}
        }
    }
    let begin = begin?;
    let mut last = sig.len().checked_sub(1)?;
    if all[sig[last]].token == Token::SemiColon {
        last = last.checked_sub(1)?;
    }
    if !word_is(&all[sig[last]].token, "END") || last <= begin {
        return None;
    }
    let mut v = all.to_vec();
    for &i in &sig[begin..=last] {
        v[i].token = blank.clone();
    }
    v[sig[begin]].token = Token::make_keyword("AS");
    v[sig[begin + 1]].token = Token::SingleQuotedString(String::new());
    Some(v)
}

/// Whether a token starts a `CREATE FUNCTION` option (or its body).
fn starts_routine_option(t: &Token) -> bool {
    const OPTIONS: &[&str] = &[
        "LANGUAGE",
        "AS",
        "RETURN",
        "BEGIN",
        "IMMUTABLE",
        "STABLE",
        "VOLATILE",
        "STRICT",
        "CALLED",
        "RETURNS",
        "SECURITY",
        "PARALLEL",
        "SET",
        "COST",
        "ROWS",
        "SUPPORT",
        "LEAKPROOF",
        "WINDOW",
        "EXTERNAL",
        "NOT",
    ];
    OPTIONS.iter().any(|k| word_is(t, k))
}

/// Convert tokens that sqlparser accepted after a rewrite.
fn reparse(tokens: &[TokenWithSpan], sig: &[&TokenWithSpan]) -> Option<Vec<Operation>> {
    let stmts = parse_tokens(tokens).ok()?;
    let mut ops = Vec::new();
    for s in &stmts {
        convert::operations(s, &|| describe(sig), &mut ops);
    }
    Some(ops)
}

/// Statements handled from tokens after sqlparser rejected them.
pub(crate) fn recognize_after(
    all: &[TokenWithSpan],
    sig: &[&TokenWithSpan],
) -> Option<Vec<Operation>> {
    let mut c = Cur::new(sig);
    if c.eat("CREATE") {
        if c.eat("DOMAIN") {
            return create_domain(all, sig, c.i);
        }
        let save = c.i;
        c.eat_all(&["OR", "REPLACE"]);
        if c.eat("PROCEDURE") {
            return procedure_as_function(all, sig, c.i - 1);
        }
        if c.eat("FUNCTION") {
            let plain = without_routine_options(all);
            return reparse(&plain, sig).or_else(|| reparse(&atomic_body_as_string(&plain)?, sig));
        }
        c.i = save;
        c.eat("UNIQUE");
        if c.eat("INDEX") {
            return create_index_on_only(all, sig);
        }
        c.eat("GLOBAL");
        c.eat("LOCAL");
        c.eat("TEMPORARY");
        c.eat("TEMP");
        c.eat("UNLOGGED");
        if c.eat("TABLE") {
            return create_table_like(all, sig);
        }
        if c.eat_all(&["MATERIALIZED", "VIEW"]) {
            return matview_with_data(all, sig);
        }
        return None;
    }
    if c.eat_all(&["ALTER", "TABLE"]) {
        return alter_table(all, sig, c.i);
    }
    if c.eat_all(&["DROP", "DATABASE"]) {
        return drop_database(&mut c);
    }
    if c.eat_all(&["COMMENT", "ON"]) {
        return comment_on(&mut c);
    }
    if c.eat_all(&["ALTER", "SEQUENCE"]) {
        return alter_sequence(&mut c);
    }
    // Statements whose details no rule needs; the leading keywords identify them.
    for head in [
        &["ALTER", "INDEX"][..],
        &["ALTER", "FUNCTION"],
        &["ALTER", "DOMAIN"],
        &["ALTER", "VIEW"],
        &["ALTER", "MATERIALIZED", "VIEW"],
    ] {
        let mut c = Cur::new(sig);
        if c.eat_all(head) {
            return Some(vec![Operation::Other {
                description: head.join(" "),
            }]);
        }
    }
    None
}

/// `ALTER SEQUENCE [IF EXISTS] name [options]`: the options are skipped, `OWNED BY t.c | NONE`
/// is kept.
fn alter_sequence(c: &mut Cur<'_>) -> Option<Vec<Operation>> {
    c.eat_all(&["IF", "EXISTS"]);
    let name = c.name()?;
    if c.eat_all(&["RENAME", "TO"]) {
        let new_name = c.name_parts()?.pop()?;
        return c
            .done()
            .then(|| vec![Operation::RenameSequence { name, new_name }]);
    }
    let mut owned_by = SequenceOwnedBy::Unchanged;
    while !c.done() {
        if c.eat_all(&["OWNED", "BY"]) {
            if c.eat("NONE") {
                owned_by = SequenceOwnedBy::Nobody;
                continue;
            }
            let mut parts = c.name_parts()?;
            let column = parts.pop()?;
            let table = qualified(parts)?;
            owned_by = SequenceOwnedBy::Column { table, column };
        } else {
            c.i += 1;
        }
    }
    Some(vec![Operation::AlterSequence { name, owned_by }])
}

/// `COMMENT ON kind object IS 'text' | NULL` for object kinds sqlparser does not know
/// (`CONSTRAINT c ON t`, `FUNCTION f(args)`, `TRIGGER t ON tab`, ...).
fn comment_on(c: &mut Cur<'_>) -> Option<Vec<Operation>> {
    let mut kind = c.ident()?;
    if matches!(
        kind.as_str(),
        "materialized" | "foreign" | "event" | "access" | "operator" | "text"
    ) {
        kind = format!("{kind} {}", c.ident()?);
    }
    let is_at = c.t.iter().rposition(|t| word_is(&t.token, "IS"))?;
    if is_at <= c.i || is_at + 2 != c.t.len() {
        return None;
    }
    let object = c.t[c.i..is_at]
        .iter()
        .map(|t| match &t.token {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_lowercase(),
            Token::Word(w) => w.value.clone(),
            other => other.to_string(),
        })
        .fold(String::new(), |mut acc, p| {
            let glue = !(acc.is_empty()
                || acc.ends_with(['.', '('])
                || p.starts_with(['.', '(', ')', ',']));
            if glue {
                acc.push(' ');
            }
            acc.push_str(&p);
            acc
        });
    let text = match &c.t[is_at + 1].token {
        Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) => Some(s.clone()),
        Token::DollarQuotedString(d) => Some(d.value.clone()),
        t if word_is(t, "NULL") => None,
        _ => return None,
    };
    Some(vec![Operation::Comment {
        object_kind: kind,
        object,
        text,
    }])
}

/// `CREATE DOMAIN name [AS] type ... [NOT NULL | NULL] ...`: sqlparser wants `AS` and knows no
/// `NOT NULL` / `NULL` constraint. Both are mended in the tokens and the statement reparsed.
fn create_domain(
    all: &[TokenWithSpan],
    sig: &[&TokenWithSpan],
    after_kw: usize,
) -> Option<Vec<Operation>> {
    let mut c = Cur::new(sig);
    c.i = after_kw;
    c.name()?;
    let name_end = c.i;
    let has_as = c.is_kw("AS");
    let mut drop = Vec::new();
    let mut not_null = false;
    let mut depth = 0;
    for k in name_end..sig.len() {
        let t = &sig[k].token;
        match t {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth > 0 => {}
            _ if word_is(t, "NOT") && sig.get(k + 1).is_some_and(|n| word_is(&n.token, "NULL")) => {
                not_null = true;
                drop.extend([all_index(all, k)?, all_index(all, k + 1)?]);
            }
            _ if word_is(t, "NULL")
                && !word_is(&sig[k - 1].token, "NOT")
                && !word_is(&sig[k - 1].token, "DEFAULT") =>
            {
                drop.push(all_index(all, k)?);
            }
            _ => {}
        }
    }
    if has_as && drop.is_empty() {
        return None;
    }
    let as_at = all_index(all, name_end)?;
    let mut v: Vec<TokenWithSpan> = Vec::with_capacity(all.len() + 2);
    for (i, t) in all.iter().enumerate() {
        if i == as_at && !has_as {
            for token in [
                Token::make_keyword("AS"),
                Token::Whitespace(sqlparser::tokenizer::Whitespace::Space),
            ] {
                v.push(TokenWithSpan {
                    token,
                    span: sqlparser::tokenizer::Span::empty(),
                });
            }
        }
        if !drop.contains(&i) {
            v.push(t.clone());
        }
    }
    let mut ops = reparse(&v, sig)?;
    for op in &mut ops {
        if let Operation::CreateDomain { not_null: n, .. } = op {
            *n |= not_null;
        }
    }
    Some(ops)
}

/// `CREATE [OR REPLACE] PROCEDURE` in PostgreSQL's form (sqlparser knows only other dialects'):
/// read as the function it is written like, and marked a procedure.
fn procedure_as_function(
    all: &[TokenWithSpan],
    sig: &[&TokenWithSpan],
    keyword: usize,
) -> Option<Vec<Operation>> {
    let at = all_index(all, keyword)?;
    let mut v = all.to_vec();
    v[at].token = Token::make_keyword("FUNCTION");
    let mut ops = reparse(&without_routine_options(&v), sig)?;
    for op in &mut ops {
        if let Operation::CreateFunction { procedure, .. } = op {
            *procedure = true;
        }
    }
    Some(ops)
}

fn create_index_on_only(all: &[TokenWithSpan], sig: &[&TokenWithSpan]) -> Option<Vec<Operation>> {
    let on = sig.iter().position(|t| word_is(&t.token, "ON"))?;
    if !sig.get(on + 1).is_some_and(|t| word_is(&t.token, "ONLY")) {
        return None;
    }
    let only_at = all_index(all, on + 1)?;
    let mut v = all.to_vec();
    v.remove(only_at);
    let mut ops = reparse(&v, sig)?;
    for op in &mut ops {
        if let Operation::CreateIndex { only, .. } = op {
            *only = true;
        }
    }
    Some(ops)
}

fn create_table_like(all: &[TokenWithSpan], sig: &[&TokenWithSpan]) -> Option<Vec<Operation>> {
    // Drop `INCLUDING x` / `EXCLUDING x` pairs: sqlparser accepts `(LIKE t)` without them.
    let mut drop = Vec::new();
    for (k, t) in sig.iter().enumerate() {
        if word_is(&t.token, "INCLUDING") || word_is(&t.token, "EXCLUDING") {
            drop.push(all_index(all, k)?);
            drop.push(all_index(all, k + 1)?);
        }
    }
    if drop.is_empty() {
        return None;
    }
    let v: Vec<TokenWithSpan> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, t)| t.clone())
        .collect();
    reparse(&v, sig)
}

fn matview_with_data(all: &[TokenWithSpan], sig: &[&TokenWithSpan]) -> Option<Vec<Operation>> {
    let n = sig.len();
    let cut = if n >= 3
        && word_is(&sig[n - 3].token, "WITH")
        && word_is(&sig[n - 2].token, "NO")
        && word_is(&sig[n - 1].token, "DATA")
    {
        n - 3
    } else if n >= 2 && word_is(&sig[n - 2].token, "WITH") && word_is(&sig[n - 1].token, "DATA") {
        n - 2
    } else {
        return None;
    };
    let end = all_index(all, cut)?;
    reparse(&all[..end], sig)
}

/// Split `ALTER TABLE name` actions at top-level commas and handle each on its own.
fn alter_table(
    all: &[TokenWithSpan],
    sig: &[&TokenWithSpan],
    after_table_kw: usize,
) -> Option<Vec<Operation>> {
    let mut c = Cur::new(sig);
    c.i = after_table_kw;
    c.eat_all(&["IF", "EXISTS"]);
    c.eat("ONLY");
    let table = c.name()?;
    c.eat_token(&Token::Mul);
    let prefix_end = all_index(all, c.i)?;
    let prefix = &all[..prefix_end];
    // Action boundaries (indices into `sig`).
    let mut actions: Vec<(usize, usize)> = Vec::new();
    let mut depth = 0;
    let mut start = c.i;
    for (k, tok) in sig.iter().enumerate().skip(c.i) {
        match &tok.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                actions.push((start, k));
                start = k + 1;
            }
            _ => {}
        }
    }
    actions.push((start, sig.len()));
    let mut ops = Vec::new();
    for (a, b) in actions {
        if a >= b {
            return None;
        }
        let act = &sig[a..b];
        ops.extend(alter_action(all, sig, prefix, &table, act, a)?);
    }
    Some(ops)
}

/// The `ALTER TABLE` actions sqlparser does not know, from their leading keywords.
fn table_action_from_tokens(c: &mut Cur<'_>) -> Option<AlterTableAction> {
    use AlterTableAction as A;
    if c.eat_all(&["SET", "SCHEMA"]) {
        return Some(A::SetSchema {
            schema: c.ident().unwrap_or_default(),
        });
    }
    if c.eat_all(&["SET", "TABLESPACE"]) {
        return Some(A::SetTablespace {
            tablespace: c.ident().unwrap_or_default(),
        });
    }
    if c.eat_all(&["SET", "WITHOUT", "CLUSTER"]) {
        return Some(A::SetWithoutCluster);
    }
    if c.eat_all(&["SET", "WITHOUT", "OIDS"]) {
        return Some(A::SetWithoutOids);
    }
    if c.eat_all(&["SET", "ACCESS", "METHOD"]) {
        return Some(A::SetAccessMethod);
    }
    if c.eat_all(&["CLUSTER", "ON"]) {
        return Some(A::ClusterOn {
            index: c.ident().unwrap_or_default(),
        });
    }
    if c.eat("OF") {
        return Some(A::OfType);
    }
    if c.eat_all(&["NOT", "OF"]) {
        return Some(A::NotOfType);
    }
    None
}

fn alter_action(
    all: &[TokenWithSpan],
    sig: &[&TokenWithSpan],
    prefix: &[TokenWithSpan],
    table: &QualifiedName,
    act: &[&TokenWithSpan],
    act_start: usize,
) -> Option<Vec<Operation>> {
    let mut c = Cur::new(act);
    let other = |action: AlterTableAction| {
        Some(vec![Operation::AlterTableOther {
            table: table.clone(),
            action,
        }])
    };
    if let Some(action) = table_action_from_tokens(&mut c) {
        return other(action);
    }
    // The action's own tokens (with whitespace) as a single-action ALTER TABLE.
    let a = all_index(all, act_start)?;
    let b = all_index(all, act_start + act.len() - 1)? + 1;
    let mut toks: Vec<TokenWithSpan> = prefix.to_vec();
    toks.push(TokenWithSpan {
        token: Token::Whitespace(sqlparser::tokenizer::Whitespace::Space),
        span: sqlparser::tokenizer::Span::empty(),
    });
    toks.extend_from_slice(&all[a..b]);
    if let Some(ops) = reparse(&toks, sig) {
        return Some(ops);
    }
    // ALTER [COLUMN] c [SET DATA] TYPE t COLLATE x [USING e]
    if c.eat("ALTER") {
        c.eat("COLUMN");
        let column = c.ident()?;
        if c.eat_all(&["SET", "STATISTICS"]) {
            return other(AlterTableAction::SetStatistics { column });
        }
        if c.eat_all(&["SET", "STORAGE"]) {
            return other(AlterTableAction::SetStorage { column });
        }
        if c.eat_all(&["SET", "COMPRESSION"]) {
            return other(AlterTableAction::SetCompression { column });
        }
        let sets_options =
            c.is_kw("SET") && act.get(c.i + 1).is_some_and(|t| t.token == Token::LParen);
        if sets_options || c.is_kw("RESET") {
            return other(AlterTableAction::SetAttributeOptions { column });
        }
        let collate = act.iter().position(|t| word_is(&t.token, "COLLATE"))?;
        let coll_name = match act.get(collate + 1).map(|t| &t.token) {
            Some(Token::Word(w)) => {
                if w.quote_style.is_some() {
                    w.value.clone()
                } else {
                    w.value.to_lowercase()
                }
            }
            _ => return None,
        };
        let mut name_end = collate + 2;
        while act.get(name_end).is_some_and(|t| t.token == Token::Period) {
            name_end += 2;
        }
        let ca = all_index(all, act_start + collate)?;
        let cb = all_index(all, act_start + name_end - 1)? + 1;
        let off = prefix.len() + 1;
        let (fa, fb) = (off + (ca - a), off + (cb - a));
        let filtered: Vec<TokenWithSpan> = toks
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < fa || *i >= fb)
            .map(|(_, t)| t.clone())
            .collect();
        let mut ops = reparse(&filtered, sig)?;
        for op in &mut ops {
            if let Operation::AlterColumnType { collation, .. } = op {
                *collation = Some(coll_name.clone());
            }
        }
        return Some(ops);
    }
    None
}

/// `SELECT set_config('lock_timeout', '2s', false)` (also inside other queries): emit the
/// equivalent [`Operation::Set`] so the settings pass sees it.
pub(crate) fn set_config_calls(sig: &[&TokenWithSpan], ops: &mut Vec<Operation>) {
    if !sig.first().is_some_and(|t| word_is(&t.token, "SELECT")) {
        return;
    }
    for k in 0..sig.len() {
        if !word_is(&sig[k].token, "set_config") {
            continue;
        }
        let args: Vec<&Token> = sig[k + 1..].iter().take(7).map(|t| &t.token).collect();
        if let [
            Token::LParen,
            Token::SingleQuotedString(name),
            Token::Comma,
            Token::SingleQuotedString(value),
            Token::Comma,
            local,
            Token::RParen,
        ] = args.as_slice()
        {
            let local = word_is(local, "true")
                || matches!(local, Token::SingleQuotedString(s) if s == "t" || s == "true" || s == "on");
            ops.push(Operation::Set {
                name: name.to_lowercase(),
                value: value.clone(),
                local,
            });
        }
    }
}

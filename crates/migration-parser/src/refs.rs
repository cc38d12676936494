//! What a statement calls and reads: every function call and relation reference in its AST, and
//! the check that a query is one side-effect-free `SELECT`.
//!
//! This is the parse half of deployclaw's "nothing runs on a target unless it is proven free of
//! side effects" promise (SECURITY.md). The other half — which function a name resolves to on a
//! shard, and whether that function is `VOLATILE` — needs the shard's `pg_proc` and lives in the
//! simulator (`simulator::safety`); the policy both halves apply is [`crate::side_effects`].
//!
//! Function calls are found with sqlparser's visitor, so no expression form is missed: scalar
//! calls anywhere (select list, `WHERE`, `DEFAULT`, `USING`, `CHECK`, subqueries, CTEs, `ORDER
//! BY`, window and aggregate calls) and table functions in `FROM` (`FROM pg_ls_dir('.')`,
//! `ROWS FROM (...)`, `LATERAL f(...)`). Calls PostgreSQL makes that the text does not show —
//! operators, casts, triggers, defaults of the target table, functions inside views — are not
//! seen; [`crate::side_effects`] and the in-place rules say how each is covered.

use std::ops::ControlFlow;

use sqlparser::ast::{
    self, Expr, ObjectName, Query, Select, SetExpr, Statement as AstStatement, TableFactor, Visit,
    Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::model::QualifiedName;
use crate::names::{ident, qname};
use crate::side_effects::{CallContext, credential_relation, denied_function};

/// A function call as written in the SQL text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FunctionCall {
    /// The name as written, folded as PostgreSQL folds it (unquoted → lower case).
    pub name: QualifiedName,
    /// 1-based line of the name within the text handed in (0 when unknown).
    pub line: u32,
    /// 1-based column of the name within the text handed in (0 when unknown).
    pub column: u32,
}

/// Every function call and relation reference of one or more statements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqlRefs {
    /// Function calls (scalar, aggregate, window and table functions), in text order.
    pub functions: Vec<FunctionCall>,
    /// Relations read or written (tables, views, `TABLE x`), folded, in text order.
    pub relations: Vec<QualifiedName>,
    /// 1-based `(line, column)` of each of [`SqlRefs::relations`] in the text (same order;
    /// `(0, 0)` when unknown).
    pub relation_places: Vec<(u32, u32)>,
    /// Statements nested in the query that write (`WITH x AS (DELETE ...)`), as their keyword.
    pub data_modifying: Vec<&'static str>,
    /// A `FOR UPDATE` / `FOR SHARE` (row locks) appears somewhere.
    pub row_locks: bool,
    /// A `SELECT ... INTO` (creates a table) appears somewhere.
    pub select_into: bool,
    /// Qualified column references and field selections (`a.b`, `(e).b`), as written: in
    /// PostgreSQL `a.b` is also the call `b(a)` when `a` is a row with no column `b`
    /// ("attribute notation"), so each may be a function call the name does not show.
    pub qualified: Vec<String>,
}

/// Why a text is not one side-effect-free query, with the place in the text (1-based; 0 when
/// the problem is the text as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryProblem {
    /// What is wrong, naming the offending function, relation or clause.
    pub message: String,
    /// 1-based line within the text, 0 when unknown.
    pub line: u32,
    /// 1-based column within the text, 0 when unknown.
    pub column: u32,
}

impl std::fmt::Display for QueryProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Parse `sql` (one or more statements) and collect what it calls and reads.
///
/// `Err` carries sqlparser's message when the text does not parse; a caller that must prove
/// something about the text treats that as "not proven".
///
/// ```
/// let r = migration_parser::statement_refs(
///     "ALTER TABLE t ADD COLUMN c int DEFAULT nextval('s')",
/// ).unwrap();
/// assert_eq!(r.functions[0].name.name, "nextval");
/// ```
pub fn statement_refs(sql: &str) -> Result<SqlRefs, String> {
    let statements = parse(sql)?;
    let mut v = Collector::default();
    for st in &statements {
        let _ = st.visit(&mut v);
    }
    Ok(v.refs)
}

/// The existing tables a `CREATE TABLE` copies column defaults, identities or triggers from:
/// `LIKE src`, `INHERITS (src, ...)`, `PARTITION OF parent`, `CLONE src`. Empty for any other
/// statement, or when `sql` does not parse.
///
/// ```
/// let t = migration_parser::table_sources("CREATE TABLE kid () INHERITS (app.items)");
/// assert_eq!(t[0].to_string(), "app.items");
/// ```
pub fn table_sources(sql: &str) -> Vec<QualifiedName> {
    let Ok(statements) = parse(sql) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for st in &statements {
        if let AstStatement::CreateTable(ct) = st {
            if let Some(
                ast::CreateTableLikeKind::Parenthesized(l) | ast::CreateTableLikeKind::Plain(l),
            ) = &ct.like
            {
                out.push(qname(&l.name));
            }
            out.extend(ct.clone.iter().chain(&ct.partition_of).map(qname));
            out.extend(ct.inherits.iter().flatten().map(qname));
        }
    }
    out
}

/// The relations a query reads (tables, views, sequences; the names of its own CTEs left
/// out), in order of first mention, each once: what a `CREATE VIEW` depends on.
pub(crate) fn query_relations(q: &Query) -> Vec<QualifiedName> {
    let mut v = Collector::default();
    let _ = q.visit(&mut v);
    let mut ctes = CteNames::default();
    let _ = q.visit(&mut ctes);
    let mut out: Vec<QualifiedName> = Vec::new();
    for r in v.refs.relations {
        let is_cte = r.schema.is_none() && ctes.0.contains(&r.name);
        if !is_cte && !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// The names a query's `WITH` clauses (at any depth) define.
#[derive(Default)]
struct CteNames(Vec<String>);

impl Visitor for CteNames {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if let Some(w) = &q.with {
            self.0
                .extend(w.cte_tables.iter().map(|c| ident(&c.alias.name)));
        }
        ControlFlow::Continue(())
    }
}

/// Check that `sql` is exactly one read-only query fit to run on a production shard inside a
/// `READ ONLY` transaction: a `SELECT` / `WITH` / `VALUES` / `TABLE`, with no data-modifying
/// CTE, no `FOR UPDATE`/`FOR SHARE`, no `SELECT INTO`, no call of a function
/// [`crate::side_effects::denied_function`] names for [`CallContext::ReadOnlyProbe`], and no
/// read of a credential catalog ([`crate::side_effects::credential_relation`]).
///
/// On success returns what the query calls, so that the caller can resolve each function on the
/// shard and refuse `VOLATILE` ones. `{schema}` placeholders must already be replaced (any
/// quoted identifier will do for a static check).
///
/// ```
/// assert!(migration_parser::read_only_query("SELECT count(*) FROM t WHERE a IS NULL").is_ok());
/// let p = migration_parser::read_only_query("SELECT pg_terminate_backend(42)").unwrap_err();
/// assert!(p.message.contains("pg_terminate_backend"), "{}", p.message);
/// assert_eq!((p.line, p.column), (1, 8));
/// ```
pub fn read_only_query(sql: &str) -> Result<SqlRefs, QueryProblem> {
    let statements = parse(sql).map_err(|m| {
        let (line, column) = location_in_message(&m);
        QueryProblem {
            message: format!("the query does not parse: {m}"),
            line,
            column,
        }
    })?;
    let whole = |message: String| QueryProblem {
        message,
        line: 0,
        column: 0,
    };
    let [st] = statements.as_slice() else {
        return Err(whole(format!(
            "the query must be exactly one statement (found {})",
            statements.len()
        )));
    };
    if !matches!(st, AstStatement::Query(_)) {
        return Err(whole(format!(
            "the query must be one read-only SELECT, WITH, VALUES or TABLE statement (found `{}`)",
            first_word(&st.to_string())
        )));
    }
    let mut v = Collector::default();
    let _ = st.visit(&mut v);
    let at = |place: Option<(u32, u32)>, message: String| {
        let (line, column) = place.unwrap_or((0, 0));
        QueryProblem {
            message,
            line,
            column,
        }
    };
    if let Some(kw) = v.refs.data_modifying.first() {
        return Err(at(
            v.data_modifying_at,
            format!("the query contains a data-modifying `{kw}`; probes must only read"),
        ));
    }
    if v.refs.row_locks {
        return Err(at(
            row_lock_place(sql),
            "the query takes row locks (`FOR UPDATE`/`FOR SHARE`); probes must not block the application"
                .into(),
        ));
    }
    if v.refs.select_into {
        return Err(at(
            v.select_into_at,
            "`SELECT ... INTO` creates a table; probes must only read".into(),
        ));
    }
    let refs = v.refs;
    for f in &refs.functions {
        if let Some(why) = denied_function(&f.name.name, CallContext::ReadOnlyProbe) {
            return Err(QueryProblem {
                message: format!("the query calls `{}`, {why}", f.name),
                line: f.line,
                column: f.column,
            });
        }
    }
    for (i, r) in refs.relations.iter().enumerate() {
        if credential_relation(r) {
            let (line, column) = refs.relation_places.get(i).copied().unwrap_or((0, 0));
            return Err(QueryProblem {
                message: format!(
                    "the query reads `{r}`, a catalog that holds credentials; probes may not read it"
                ),
                line,
                column,
            });
        }
    }
    Ok(refs)
}

/// Where the first `FOR UPDATE` / `FOR NO KEY UPDATE` / `FOR SHARE` / `FOR KEY SHARE` of `sql`
/// starts (the `FOR`), from its tokens.
fn row_lock_place(sql: &str) -> Option<(u32, u32)> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .ok()?;
    let words: Vec<_> = tokens
        .iter()
        .filter_map(|t| match &t.token {
            Token::Word(w) if w.quote_style.is_none() => {
                Some((w.value.to_ascii_uppercase(), t.span.start))
            }
            Token::Whitespace(_) => None,
            _ => Some((String::new(), t.span.start)),
        })
        .collect();
    words.windows(2).find_map(|w| {
        (w[0].0 == "FOR" && matches!(w[1].0.as_str(), "UPDATE" | "SHARE" | "NO" | "KEY"))
            .then(|| (w[0].1.line as u32, w[0].1.column as u32))
    })
}

fn parse(sql: &str) -> Result<Vec<AstStatement>, String> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| e.to_string())
}

fn first_word(s: &str) -> String {
    s.split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// `(line, column)` from sqlparser's trailing ` at Line: L, Column: C`, else `(0, 0)`.
fn location_in_message(msg: &str) -> (u32, u32) {
    let Some(pos) = msg.rfind(" at Line: ") else {
        return (0, 0);
    };
    let rest = &msg[pos + " at Line: ".len()..];
    let mut it = rest.splitn(2, ", Column: ");
    let line = it.next().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    let column = it.next().and_then(|c| c.trim().parse().ok()).unwrap_or(0);
    (line, column)
}

#[derive(Default)]
struct Collector {
    refs: SqlRefs,
    depth: usize,
    /// Where the first data-modifying CTE is named, when known.
    data_modifying_at: Option<(u32, u32)>,
    /// Where the first `SELECT ... INTO` target is, when known.
    select_into_at: Option<(u32, u32)>,
}

/// Where an object name starts in the text (its first part), `(0, 0)` when unknown.
fn place(name: &ObjectName) -> (u32, u32) {
    name.0
        .first()
        .and_then(|p| p.as_ident())
        .map(ident_place)
        .unwrap_or((0, 0))
}

fn ident_place(i: &ast::Ident) -> (u32, u32) {
    (i.span.start.line as u32, i.span.start.column as u32)
}

impl Collector {
    fn relation(&mut self, name: QualifiedName, place: (u32, u32)) {
        self.refs.relations.push(name);
        self.refs.relation_places.push(place);
    }

    fn call(&mut self, name: &ObjectName) {
        let (line, column) = place(name);
        self.refs.functions.push(FunctionCall {
            name: qname(name),
            line,
            column,
        });
    }

    fn table_command(&mut self, body: &SetExpr) {
        match body {
            SetExpr::Table(t) => {
                if let Some(name) = &t.table_name {
                    let n = ident(name);
                    let at = ident_place(t.schema_name.as_ref().unwrap_or(name));
                    let q = match &t.schema_name {
                        Some(s) => QualifiedName::qualified(ident(s), n),
                        None => QualifiedName::new(n),
                    };
                    self.relation(q, at);
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                self.table_command(left);
                self.table_command(right);
            }
            _ => {}
        }
    }
}

impl Visitor for Collector {
    type Break = ();

    fn pre_visit_statement(&mut self, st: &AstStatement) -> ControlFlow<()> {
        if self.depth > 0 {
            let kw = match st {
                AstStatement::Insert(_) => Some("INSERT"),
                AstStatement::Update(_) => Some("UPDATE"),
                AstStatement::Delete(_) => Some("DELETE"),
                AstStatement::Merge(_) => Some("MERGE"),
                _ => None,
            };
            if let Some(kw) = kw {
                self.refs.data_modifying.push(kw);
            }
        }
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, _st: &AstStatement) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if !q.locks.is_empty() {
            self.refs.row_locks = true;
        }
        if let Some(w) = &q.with {
            for cte in &w.cte_tables {
                let kw = match cte.query.body.as_ref() {
                    SetExpr::Insert(_) => Some("INSERT"),
                    SetExpr::Update(_) => Some("UPDATE"),
                    SetExpr::Delete(_) => Some("DELETE"),
                    SetExpr::Merge(_) => Some("MERGE"),
                    _ => None,
                };
                if let Some(kw) = kw {
                    self.refs.data_modifying.push(kw);
                    self.data_modifying_at
                        .get_or_insert_with(|| ident_place(&cte.alias.name));
                }
            }
        }
        self.table_command(&q.body);
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<()> {
        if let Some(into) = &s.into {
            self.refs.select_into = true;
            if let Some(t) = into.targets.first() {
                let at = ast::Spanned::span(t).start;
                self.select_into_at
                    .get_or_insert((at.line as u32, at.column as u32));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, r: &ObjectName) -> ControlFlow<()> {
        self.relation(qname(r), place(r));
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
        match t {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => self.call(name),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::Function(ast::Function { name, .. }) => self.call(name),
            Expr::CompoundIdentifier(_) => {
                self.refs.qualified.push(e.to_string());
            }
            Expr::CompoundFieldAccess { access_chain, .. }
                if access_chain
                    .iter()
                    .any(|a| matches!(a, ast::AccessExpr::Dot(_))) =>
            {
                self.refs.qualified.push(e.to_string());
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<String> {
        statement_refs(sql)
            .unwrap()
            .functions
            .iter()
            .map(|f| f.name.to_string())
            .collect()
    }

    /// `x.f` and `(x).f` may be the call `f(x)` (attribute notation): they are listed.
    #[test]
    fn qualified_names_are_listed_as_possible_calls() {
        let r =
            read_only_query("SELECT (VALUE > x.evil OR (deployclaw_domain).evil2 > 0)").unwrap();
        assert_eq!(r.qualified.len(), 2, "{r:?}");
        assert!(
            r.qualified[0].contains("evil") && r.qualified[1].contains("evil2"),
            "{r:?}"
        );
        assert!(
            read_only_query("SELECT (VALUE > 0 AND lower(v) <> '')")
                .unwrap()
                .qualified
                .is_empty()
        );
    }

    #[test]
    fn calls_are_found_everywhere() {
        assert_eq!(
            names("SELECT a FROM t WHERE b = (SELECT max(x) FROM u) ORDER BY lower(c)"),
            ["max", "lower"]
        );
        let mut n = names("WITH w AS (SELECT pg_sleep(1)) SELECT * FROM pg_ls_dir('.'), w");
        n.sort();
        assert_eq!(n, ["pg_ls_dir", "pg_sleep"]);
        assert_eq!(
            names("ALTER TABLE t ADD COLUMN c int DEFAULT nextval('s')"),
            ["nextval"]
        );
        assert_eq!(
            names("UPDATE t SET a = pg_catalog.setval('s', 1) WHERE id = 1"),
            ["pg_catalog.setval"]
        );
        assert_eq!(
            names("INSERT INTO t SELECT \"Random\"() FROM generate_series(1, 3)"),
            ["Random", "generate_series"]
        );
        assert_eq!(
            names("ALTER TABLE t ALTER COLUMN a TYPE int USING f(a)"),
            ["f"]
        );
    }

    #[test]
    fn read_only_query_refuses_what_writes_or_locks() {
        for (sql, needle) in [
            (
                "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
                "DELETE",
            ),
            ("SELECT * FROM t FOR UPDATE", "row locks"),
            ("SELECT * INTO new_t FROM t", "INTO"),
            ("DELETE FROM t", "DELETE"),
            ("SELECT 1; SELECT 2", "exactly one"),
            ("SELECT pg_catalog.pg_stat_reset()", "pg_stat_reset"),
            ("SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
            ("SELECT * FROM pg_authid", "pg_authid"),
            ("SELECT 1 FROM t,\n  pg_stat_activity", "pg_stat_activity"),
            (
                "SELECT * FROM public.pg_stat_statements",
                "pg_stat_statements",
            ),
            (
                "SELECT table_to_xml('pg_authid', true, false, '')",
                "table_to_xml",
            ),
            ("SELECT * FROM (TABLE pg_catalog.pg_shadow) s", "pg_shadow"),
            ("SELECT * FROM pg_catalog.pg_shadow", "pg_shadow"),
            ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
            ("SELECT lo_get(1)", "lo_get"),
            ("SELECT FROM", "does not parse"),
        ] {
            let p = read_only_query(sql).unwrap_err();
            assert!(p.message.contains(needle), "{sql}: {}", p.message);
        }
        let ok = read_only_query(
            "SELECT count(*) FROM {s}.t WHERE a IS NULL"
                .replace("{s}", "\"x\"")
                .as_str(),
        )
        .unwrap();
        assert_eq!(ok.functions[0].name.name, "count");
        assert_eq!(ok.relations, [QualifiedName::qualified("x", "t")]);
        assert_eq!(ok.relation_places, [(1, 22)]);
        let p = read_only_query("SELECT 1 FROM t,\n  pg_catalog.pg_authid a").unwrap_err();
        assert_eq!((p.line, p.column), (2, 3), "{}", p.message);
        let p = read_only_query(
            "WITH a AS (SELECT 1),\n gone AS (DELETE FROM t RETURNING *) TABLE gone",
        )
        .unwrap_err();
        assert_eq!((p.line, p.column), (2, 2), "{}", p.message);
        let p = read_only_query("SELECT 'for update' FROM t\n FOR  SHARE").unwrap_err();
        assert_eq!((p.line, p.column), (2, 2), "{}", p.message);
        let p = read_only_query("SELECT *\n  INTO stolen FROM t").unwrap_err();
        assert_eq!((p.line, p.column), (2, 8), "{}", p.message);
        let p = read_only_query("SELECT 1 FROM (TABLE pg_shadow) s").unwrap_err();
        assert_eq!((p.line, p.column), (1, 22), "{}", p.message);
    }
}

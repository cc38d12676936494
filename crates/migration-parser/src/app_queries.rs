//! The application's own queries against what a migration changes (issue 16): which shard
//! tables and columns the migration drops, renames or converts ([`breaking_changes`], read
//! from the one [`MigrationState`]), and which of them a normalised application query
//! (`pg_stat_statements.query`, parameters as `$n`) names ([`query_uses`]).
//!
//! Name resolution without a catalog:
//!
//! * a table name in the query is resolved like PostgreSQL does with the shard's search path:
//!   qualified names as written, unqualified ones in the first schema of the search path — the
//!   same schema the migration's own unqualified names resolve to (the migration runs with the
//!   shard's search path too), so both sides agree on which table an unqualified name denotes;
//! * a qualified column (`o.a`, `orders.a`, `s.orders.a`) belongs to the table its qualifier
//!   names (an alias, or the table's name);
//! * an unqualified column belongs to *every* table the query reads. That is sound for the
//!   common single-scope query: if two of its tables had the column, PostgreSQL would reject the
//!   unqualified reference as ambiguous, so a query that runs names the only table that has it.
//!   (Nested scopes make it an over-approximation: a subquery's column may be charged to an
//!   outer table of the same column name.)
//! * `SELECT *` and `t.*` name no column: PostgreSQL expands the star when the query is
//!   planned, so after a column is dropped the same text still runs and returns one column
//!   fewer — the query does not break (code reading that column by name does, and it shows up
//!   as a query naming the column wherever it filters, sorts or writes it).
//!
//! Only data statements (`SELECT`/`WITH`/`VALUES`, `INSERT`, `UPDATE`, `DELETE`, `MERGE`) are
//! considered; other statements are [`QueryScan::NotData`]. A text sqlparser cannot parse is
//! [`QueryScan::Unparseable`]: skipped and counted by the caller, never guessed.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    AssignmentTarget, ConflictTarget, Expr, ObjectName, OnConflictAction, OnInsert, Query,
    SelectItem, Statement as AstStatement, TableFactor, TableObject, Visit, Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::model::{Migration, Operation, PgVersion, QualifiedName};
use crate::names::{ident, qname};
use crate::state::{ColumnResolved, MigrationState, Resolved, Step};
use crate::type_changes::{TypeChangeOutcome, canonical_type, type_change_outcome};

/// What a migration does to a table or column of the shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `DROP TABLE`, `DROP VIEW`, `DROP COLUMN`.
    Drop,
    /// `RENAME TO`, `RENAME COLUMN … TO`.
    Rename {
        /// The new name.
        to: String,
    },
    /// `ALTER COLUMN … TYPE`.
    TypeChange {
        /// The new type, lower-cased SQL.
        new_type: String,
    },
}

impl Change {
    /// What the migration does to it, as a verb phrase: `drops`, `renames`, `changes the type of`.
    pub fn verb(&self) -> &'static str {
        match self {
            Change::Drop => "drops",
            Change::Rename { .. } => "renames",
            Change::TypeChange { .. } => "changes the type of",
        }
    }
}

/// A shard table (or one of its columns) the migration drops, renames or converts: what an
/// application query may still use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakingChange {
    /// The table's name on the shard before the migration (schema as the migration wrote it;
    /// `None` = the shard's search path).
    pub table: QualifiedName,
    /// The column's name on the shard; `None` when the table itself is dropped or renamed.
    pub column: Option<String>,
    /// What the migration does.
    pub change: Change,
    /// 0-based index of the statement that does it.
    pub statement: usize,
}

impl BreakingChange {
    /// `schema.table` or `schema.table.column`, the unqualified parts in `default_schema`.
    pub fn target(&self, default_schema: &str) -> String {
        let schema = self.table.schema.as_deref().unwrap_or(default_schema);
        match &self.column {
            Some(c) => format!("{schema}.{}.{c}", self.table.name),
            None => format!("{schema}.{}", self.table.name),
        }
    }
}

/// The shard tables and columns `migration` drops, renames or converts, from the one
/// [`MigrationState`]: names are the shard's names before the migration (a column renamed and
/// then dropped is one change, under its shard name), and objects the migration creates itself
/// are left out (no running application uses them). One entry per table or column: the first
/// thing the migration does to it.
pub fn breaking_changes(migration: &Migration) -> Vec<BreakingChange> {
    let state = MigrationState::new(migration);
    let mut out: Vec<BreakingChange> = Vec::new();
    for st in &migration.statements {
        for (k, op) in st.operations.iter().enumerate() {
            let at = Step {
                statement: st.index,
                op: k,
            };
            let found = match op {
                Operation::DropTable { table, .. } => {
                    on_shard(&state, table, at, None, Change::Drop)
                }
                Operation::DropView { name, .. } => on_shard(&state, name, at, None, Change::Drop),
                Operation::RenameTable { table, new_name } => on_shard(
                    &state,
                    table,
                    at,
                    None,
                    Change::Rename {
                        to: new_name.clone(),
                    },
                ),
                Operation::DropColumn { table, column, .. } => {
                    on_shard(&state, table, at, Some(column), Change::Drop)
                }
                Operation::RenameColumn {
                    table,
                    column,
                    new_name,
                } => on_shard(
                    &state,
                    table,
                    at,
                    Some(column),
                    Change::Rename {
                        to: new_name.clone(),
                    },
                ),
                Operation::AlterColumnType {
                    table,
                    column,
                    new_type,
                    ..
                } => on_shard(
                    &state,
                    table,
                    at,
                    Some(column),
                    Change::TypeChange {
                        new_type: new_type.clone(),
                    },
                ),
                _ => None,
            };
            if let Some((table, column, change)) = found
                && !out.iter().any(|b| b.table == table && b.column == column)
            {
                out.push(BreakingChange {
                    table,
                    column,
                    change,
                    statement: st.index,
                });
            }
        }
    }
    out
}

/// The shard names (table, column) of what `table`/`column` denote at `at`; `None` for
/// objects the migration created.
fn on_shard(
    state: &MigrationState,
    table: &QualifiedName,
    at: Step,
    column: Option<&String>,
    change: Change,
) -> Option<(QualifiedName, Option<String>, Change)> {
    let shard_table = match state.relation(table, at) {
        Resolved::Tracked(_, rec) => rec.shard_name()?.clone(),
        Resolved::Shard(n) => n,
        Resolved::Free { .. } | Resolved::MaybeDropped { .. } => return None,
    };
    let Some(column) = column else {
        return Some((shard_table, None, change));
    };
    let shard_column = match state.column(table, column, at) {
        ColumnResolved::Tracked(c) => c.shard_name()?.to_string(),
        ColumnResolved::Shard { column, .. } => column,
        _ => return None,
    };
    Some((shard_table, Some(shard_column), change))
}

/// Whether code written for a column of `old_type` keeps working with `new_type`: the same
/// type, a binary-coercible change ([`type_change_outcome`]: `varchar` → `text`, a longer
/// `varchar`), or a widening within one family that PostgreSQL casts implicitly (`int2` →
/// `int4` → `int8` → `numeric`, `float4` → `float8`, `bpchar` → `text`). Anything else
/// (`int` → `text`, `text` → `jsonb`, an unknown pair) changes what parameters and results
/// the application sends and reads.
pub fn client_compatible(old_type: &str, new_type: &str) -> bool {
    match type_change_outcome(old_type, new_type, PgVersion::DEFAULT, false) {
        TypeChangeOutcome::NoOp | TypeChangeOutcome::CatalogOnly => return true,
        TypeChangeOutcome::Rewrite { .. } | TypeChangeOutcome::Unknown => {}
    }
    let (old, _) = canonical_type(old_type);
    let (new, _) = canonical_type(new_type);
    const WIDENING: &[(&str, &[&str])] = &[
        ("int2", &["int4", "int8", "numeric"]),
        ("int4", &["int8", "numeric"]),
        ("int8", &["numeric"]),
        ("float4", &["float8"]),
        ("bpchar", &["text", "varchar"]),
        ("varchar", &["text"]),
    ];
    WIDENING
        .iter()
        .any(|(from, to)| *from == old && to.contains(&new.as_str()))
}

/// What [`scan_query`] made of one query text.
#[derive(Debug, Clone)]
pub enum QueryScan {
    /// A data statement and the names it mentions: ask [`QueryNames::uses`].
    Data(QueryNames),
    /// Not a data statement (utility, transaction control, `SET`, …): not an application read
    /// or write of a table.
    NotData,
    /// sqlparser could not parse it (with why): skipped, never guessed.
    Unparseable(String),
}

/// Parse a normalised query text once ([`QueryScan`]); resolve it per shard with
/// [`QueryNames::uses`].
pub fn scan_query(query: &str) -> QueryScan {
    let statements = match Parser::new(&PostgreSqlDialect {})
        .try_with_sql(query)
        .and_then(|mut p| p.parse_statements())
    {
        Ok(s) => s,
        Err(e) => return QueryScan::Unparseable(e.to_string()),
    };
    let mut names = Names::default();
    for st in &statements {
        match st {
            AstStatement::Query(_)
            | AstStatement::Insert(_)
            | AstStatement::Update(_)
            | AstStatement::Delete(_)
            | AstStatement::Merge(_) => {}
            _ => return QueryScan::NotData,
        }
        names.statement_targets(st);
        let _ = st.visit(&mut names);
    }
    if statements.is_empty() {
        return QueryScan::NotData;
    }
    QueryScan::Data(QueryNames(names))
}

/// Whether `query` may mention any of `changes` at all (a table name appears in its text,
/// case-insensitively): the cheap test before [`scan_query`].
pub fn may_mention(query: &str, changes: &[BreakingChange]) -> bool {
    let lower = query.to_lowercase();
    changes
        .iter()
        .any(|c| lower.contains(&c.table.name.to_lowercase()))
}

/// The tables and columns one parsed data statement names (see [`scan_query`]).
#[derive(Debug, Clone, Default)]
pub struct QueryNames(Names);

impl QueryNames {
    /// Indexes into `changes` of those the query uses, resolving unqualified names in
    /// `default_schema` (the first schema of the shard's search path; see the
    /// [module documentation](self)).
    pub fn uses(&self, changes: &[BreakingChange], default_schema: &str) -> Vec<usize> {
        let names = &self.0;
        let resolve = |n: &QualifiedName| {
            (
                n.schema
                    .clone()
                    .unwrap_or_else(|| default_schema.to_string()),
                n.name.clone(),
            )
        };
        let tables: BTreeSet<(String, String)> = names
            .relations
            .iter()
            .filter(|r| !(r.schema.is_none() && names.ctes.contains(&r.name)))
            .map(resolve)
            .collect();
        let mut uses = Vec::new();
        for (i, c) in changes.iter().enumerate() {
            let table = resolve(&c.table);
            if !tables.contains(&table) {
                continue;
            }
            let used = match &c.column {
                None => true,
                Some(col) => names.columns.iter().any(|(qualifier, name)| {
                    name == col
                        && match qualifier {
                            None => !names.output_aliases.contains(name),
                            Some(q) => {
                                names.qualified_table(q).map(|t| resolve(&t)).as_ref()
                                    == Some(&table)
                            }
                        }
                }),
            };
            if used {
                uses.push(i);
            }
        }
        uses
    }
}

/// [`scan_query`] then [`QueryNames::uses`]: the indexes of `changes` that `query` uses
/// (empty for a statement that is not a data statement or does not parse).
pub fn query_uses(query: &str, changes: &[BreakingChange], default_schema: &str) -> Vec<usize> {
    match scan_query(query) {
        QueryScan::Data(n) => n.uses(changes, default_schema),
        QueryScan::NotData | QueryScan::Unparseable(_) => Vec::new(),
    }
}

/// Names a query mentions: relations read or written (with their aliases), column references
/// (with the qualifier as written), CTE names and output aliases.
#[derive(Debug, Clone, Default)]
struct Names {
    relations: Vec<QualifiedName>,
    /// alias → the relation it stands for (`None`: a derived table or function).
    aliases: BTreeMap<String, Option<QualifiedName>>,
    /// (qualifier parts as written, column).
    columns: Vec<(Option<Vec<String>>, String)>,
    ctes: BTreeSet<String>,
    output_aliases: BTreeSet<String>,
}

impl Names {
    /// The table a column qualifier denotes: an alias, else a relation of the query named so.
    fn qualified_table(&self, q: &[String]) -> Option<QualifiedName> {
        match q {
            [t] => match self.aliases.get(t) {
                Some(r) => r.clone(),
                None => self
                    .relations
                    .iter()
                    .find(|r| r.name == *t)
                    .cloned()
                    .or_else(|| Some(QualifiedName::new(t.clone()))),
            },
            [.., s, t] => Some(QualifiedName::qualified(s.clone(), t.clone())),
            [] => None,
        }
    }

    /// The columns an `INSERT` or `UPDATE` writes (not expressions, so the visitor misses
    /// them): `INSERT INTO t (a, b)`, `ON CONFLICT (a) DO UPDATE SET b = …`, `UPDATE t SET a = …`.
    fn statement_targets(&mut self, st: &AstStatement) {
        match st {
            AstStatement::Insert(ins) => {
                let TableObject::TableName(name) = &ins.table else {
                    return;
                };
                let target = qname(name);
                if let Some(a) = &ins.table_alias {
                    self.aliases.insert(ident(&a.alias), Some(target.clone()));
                }
                let mut cols: Vec<String> = ins.columns.iter().map(last_part).collect();
                if let Some(OnInsert::OnConflict(oc)) = &ins.on {
                    if let Some(ConflictTarget::Columns { columns, .. }) = &oc.conflict_target {
                        cols.extend(columns.iter().map(ident));
                    }
                    if let OnConflictAction::DoUpdate(du) = &oc.action {
                        cols.extend(du.assignments.iter().flat_map(|a| targets(&a.target)));
                    }
                }
                self.written(&target, cols);
            }
            AstStatement::Update(up) => {
                let TableFactor::Table { name, .. } = &up.table.relation else {
                    return;
                };
                let cols = up
                    .assignments
                    .iter()
                    .flat_map(|a| targets(&a.target))
                    .collect();
                self.written(&qname(name), cols);
            }
            _ => {}
        }
    }

    fn written(&mut self, table: &QualifiedName, cols: Vec<String>) {
        let q = match &table.schema {
            Some(s) => vec![s.clone(), table.name.clone()],
            None => vec![table.name.clone()],
        };
        self.columns
            .extend(cols.into_iter().map(|c| (Some(q.clone()), c)));
    }
}

fn last_part(n: &ObjectName) -> String {
    crate::names::last_name(n)
}

fn targets(t: &AssignmentTarget) -> Vec<String> {
    match t {
        AssignmentTarget::ColumnName(n) => vec![last_part(n)],
        AssignmentTarget::Tuple(ns) => ns.iter().map(last_part).collect(),
    }
}

impl Visitor for Names {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if let Some(w) = &q.with {
            self.ctes
                .extend(w.cte_tables.iter().map(|c| ident(&c.alias.name)));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &sqlparser::ast::Select) -> ControlFlow<()> {
        for item in &s.projection {
            if let SelectItem::ExprWithAlias { alias, .. } = item {
                self.output_aliases.insert(ident(alias));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, r: &ObjectName) -> ControlFlow<()> {
        self.relations.push(qname(r));
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
        match t {
            TableFactor::Table {
                name,
                alias: Some(a),
                ..
            } => {
                self.aliases.insert(ident(&a.name), Some(qname(name)));
            }
            TableFactor::Derived { alias: Some(a), .. }
            | TableFactor::Function { alias: Some(a), .. }
            | TableFactor::UNNEST { alias: Some(a), .. } => {
                self.aliases.insert(ident(&a.name), None);
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::Identifier(i) => self.columns.push((None, ident(i))),
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let names: Vec<String> = parts.iter().map(ident).collect();
                let (col, q) = names.split_last().expect("two parts or more");
                self.columns.push((Some(q.to_vec()), col.clone()));
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// A query text fit to show a user: every literal left in it (normalisation replaces most with
/// `$n`, not all) replaced by `?`, whitespace collapsed, at most `max` characters (then `…`).
/// Never a value of the application's data.
pub fn display_query(query: &str, max: usize) -> String {
    let masked = match Tokenizer::new(&PostgreSqlDialect {}, query).tokenize() {
        Ok(tokens) => tokens
            .iter()
            .map(|t| match t {
                Token::Whitespace(_) => " ".to_string(),
                Token::Number(..)
                | Token::SingleQuotedString(_)
                | Token::DollarQuotedString(_)
                | Token::NationalStringLiteral(_)
                | Token::EscapedStringLiteral(_)
                | Token::UnicodeStringLiteral(_)
                | Token::HexStringLiteral(_)
                | Token::SingleQuotedByteStringLiteral(_) => "?".to_string(),
                other => other.to_string(),
            })
            .collect::<String>(),
        // Unlexable text is never shown.
        Err(_) => return "(query text not shown: it does not tokenize)".to_string(),
    };
    let one_line = masked.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{}…", cut.trim_end())
    }
}

#[cfg(test)]
mod tests;

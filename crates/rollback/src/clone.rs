//! Loading a catalog (the generator's [`CatalogSnapshot`] of it) into an empty database: the
//! shard's structure on a shadow when only its catalog is known.

use sqlx::AssertSqlSafe;
use sqlx::postgres::PgConnection;

use crate::catalog::{CatalogSnapshot, TypeSnap};
use crate::exec::SqlFailure;
use crate::generate::{column_sql, sequence_sql};
use crate::names::{quote_ident, quote_literal};

async fn run(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

fn fail(i: usize, sql: &str, e: &sqlx::Error) -> SqlFailure {
    let (sqlstate, message) = match e {
        sqlx::Error::Database(d) => (d.code().map(|c| c.into_owned()), d.message().to_string()),
        other => (None, other.to_string()),
    };
    SqlFailure {
        statement: i,
        line: 0,
        sql: sql.lines().next().unwrap_or("").chars().take(120).collect(),
        sqlstate,
        message,
    }
}

/// Run `stmts` until none is left or a whole round makes no progress (objects that depend on
/// each other in an order the catalog does not tell, such as views on views). Returns what is
/// left with its last failures.
async fn run_with_retries(
    conn: &mut PgConnection,
    stmts: Vec<String>,
) -> (Vec<String>, Vec<SqlFailure>) {
    let mut pending = stmts;
    loop {
        let mut next = Vec::new();
        let mut last: Vec<SqlFailure> = Vec::new();
        let before = pending.len();
        for (i, s) in pending.into_iter().enumerate() {
            if let Err(e) = run(conn, &s).await {
                last.push(fail(i, &s, &e));
                next.push(s);
            }
        }
        if next.is_empty() || next.len() == before {
            return (next, last);
        }
        pending = next;
    }
}

impl CatalogSnapshot {
    /// Create this schema's structure on `conn` (an empty database): extensions, the schema,
    /// types, sequences, functions, tables with their columns, constraints, indexes, triggers,
    /// views and comments. Statements that fail (e.g. an extension not installed on the shadow)
    /// are returned; everything else is created.
    pub async fn load_into(&self, conn: &mut PgConnection) -> Vec<SqlFailure> {
        let mut failures = Vec::new();
        let q = |n: &str| quote_ident(n);
        let mut first: Vec<String> = vec!["SET check_function_bodies = off".into()];
        for s in self.schemas.iter().filter(|s| *s == &self.schema) {
            first.push(format!("CREATE SCHEMA IF NOT EXISTS {}", q(s)));
        }
        first.push(format!(
            "SELECT set_config('search_path', {}, false)",
            quote_literal(&q(&self.schema))
        ));
        for (e, s) in &self.extensions {
            first.push(format!("CREATE SCHEMA IF NOT EXISTS {}", q(s)));
            first.push(format!(
                "CREATE EXTENSION IF NOT EXISTS {} SCHEMA {}",
                q(e),
                q(s)
            ));
        }
        for s in first {
            if let Err(e) = run(conn, &s).await {
                failures.push(fail(0, &s, &e));
            }
        }
        let mut types = Vec::new();
        for (n, t) in &self.types {
            types.push(match t {
                TypeSnap::Enum { labels, .. } => format!(
                    "CREATE TYPE {} AS ENUM ({})",
                    q(n),
                    labels
                        .iter()
                        .map(|l| quote_literal(l))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                TypeSnap::Domain { definition, .. } => {
                    format!("CREATE DOMAIN {} {definition}", q(n))
                }
                TypeSnap::Composite { definition, .. } => {
                    format!("CREATE TYPE {} AS {definition}", q(n))
                }
            });
        }
        // What fails early (a function returning a table's row type) is retried after the tables.
        let mut carried = run_with_retries(conn, types).await.0;
        let seqs: Vec<String> = self
            .sequences
            .iter()
            .map(|(n, s)| sequence_sql(&q(n), s))
            .collect();
        carried.extend(run_with_retries(conn, seqs).await.0);
        let funcs: Vec<String> = self
            .functions
            .values()
            .map(|f| f.definition.clone())
            .collect();
        carried.extend(run_with_retries(conn, funcs).await.0);
        // Tables: parents before partitions; columns and non-FK constraints inline.
        let (tables, mut later) = self.table_statements();
        let (left, _) = run_with_retries(conn, tables).await;
        carried.extend(left);
        self.late_statements(&mut later);
        carried.extend(later);
        let (_, last) = run_with_retries(conn, carried).await;
        failures.extend(last);
        failures
    }

    /// `CREATE TABLE` statements (parents before partitions; columns and non-FK constraints
    /// inline), and what must follow every table: foreign keys, `NOT VALID` constraints,
    /// partition defaults, indexes, triggers, row security and comments.
    fn table_statements(&self) -> (Vec<String>, Vec<String>) {
        let q = |n: &str| quote_ident(n);
        let mut tables = Vec::new();
        let mut later = Vec::new();
        for (n, t) in &self.tables {
            let mut items: Vec<String> = Vec::new();
            if t.partition_of.is_none() {
                items.extend(t.columns.iter().map(|c| column_sql(c, true)));
            }
            for (cn, c) in &t.constraints {
                if c.inherited {
                    continue;
                }
                let add = format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} {}",
                    q(n),
                    q(cn),
                    c.definition
                );
                if c.kind == "f" || !c.validated {
                    later.push(add);
                } else {
                    items.push(format!("CONSTRAINT {} {}", q(cn), c.definition));
                }
            }
            let head = if t.unlogged {
                "CREATE UNLOGGED TABLE"
            } else {
                "CREATE TABLE"
            };
            let mut sql = match &t.partition_of {
                Some((parent, bound)) if items.is_empty() => {
                    format!("{head} {} PARTITION OF {parent} {bound}", q(n))
                }
                Some((parent, bound)) => {
                    format!(
                        "{head} {} PARTITION OF {parent} (\n    {}\n) {bound}",
                        q(n),
                        items.join(",\n    ")
                    )
                }
                None => format!("{head} {} (\n    {}\n)", q(n), items.join(",\n    ")),
            };
            if let Some(pk) = &t.partition_key {
                sql.push_str(&format!(" PARTITION BY {pk}"));
            }
            if let Some(o) = &t.options {
                sql.push_str(&format!(" WITH ({o})"));
            }
            tables.push(sql);
            for c in &t.columns {
                // A partition inherits its columns; NOT NULL and defaults may differ locally.
                if let (Some(_), Some(d)) = (&t.partition_of, &c.default) {
                    later.push(format!(
                        "ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {d}",
                        q(n),
                        q(&c.name)
                    ));
                }
                if let Some(cm) = &c.comment {
                    later.push(format!(
                        "COMMENT ON COLUMN {}.{} IS {}",
                        q(n),
                        q(&c.name),
                        quote_literal(cm)
                    ));
                }
            }
            for (iname, i) in &t.indexes {
                if !i.constraint {
                    later.push(i.definition.replacen(" INDEX ", " INDEX IF NOT EXISTS ", 1));
                }
                if let Some(cm) = &i.comment {
                    later.push(format!(
                        "COMMENT ON INDEX {} IS {}",
                        q(iname),
                        quote_literal(cm)
                    ));
                }
            }
            for def in t.triggers.values() {
                later.push(def.clone());
            }
            if t.row_security {
                later.push(format!("ALTER TABLE {} ENABLE ROW LEVEL SECURITY", q(n)));
            }
            if let Some(cm) = &t.comment {
                later.push(format!(
                    "COMMENT ON TABLE {} IS {}",
                    q(n),
                    quote_literal(cm)
                ));
            }
            for (cn, c) in &t.constraints {
                if let Some(cm) = &c.comment {
                    later.push(format!(
                        "COMMENT ON CONSTRAINT {} ON {} IS {}",
                        q(cn),
                        q(n),
                        quote_literal(cm)
                    ));
                }
            }
        }
        (tables, later)
    }

    /// Sequence ownership and comments, views, and the comments of types and functions.
    fn late_statements(&self, later: &mut Vec<String>) {
        let q = |n: &str| quote_ident(n);
        for (n, s) in &self.sequences {
            if let Some((t, c)) = &s.owned_by {
                later.push(format!(
                    "ALTER SEQUENCE {} OWNED BY {}.{}",
                    q(n),
                    q(t),
                    q(c)
                ));
            }
            if let Some(cm) = &s.comment {
                later.push(format!(
                    "COMMENT ON SEQUENCE {} IS {}",
                    q(n),
                    quote_literal(cm)
                ));
            }
        }
        for (n, v) in &self.views {
            let kw = if v.materialized {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            };
            // A materialized view is left empty: populating it runs its query (the tenant's
            // functions) as its owner, and this loads as a superuser. `Shadow::owner_session`
            // refreshes it once the owner is demoted.
            later.push(format!(
                "CREATE {kw} {} AS {}{}",
                q(n),
                v.definition.trim().trim_end_matches(';'),
                if v.materialized { " WITH NO DATA" } else { "" }
            ));
            for i in v.indexes.values() {
                later.push(i.definition.clone());
            }
            if let Some(cm) = &v.comment {
                later.push(format!("COMMENT ON {kw} {} IS {}", q(n), quote_literal(cm)));
            }
        }
        for (n, t) in &self.types {
            let c = match t {
                TypeSnap::Enum { comment, .. }
                | TypeSnap::Domain { comment, .. }
                | TypeSnap::Composite { comment, .. } => comment,
            };
            if let Some(cm) = c {
                later.push(format!("COMMENT ON TYPE {} IS {}", q(n), quote_literal(cm)));
            }
        }
        for f in self.functions.values() {
            if let Some(cm) = &f.comment {
                later.push(format!(
                    "COMMENT ON FUNCTION {} IS {}",
                    f.object_sql(),
                    quote_literal(cm)
                ));
            }
        }
    }
}

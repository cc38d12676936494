//! Loading the pre-migration structure on a scratch database so that it behaves as the shard
//! does: the shard's extensions created when the shadow server has them (the missing ones
//! named), the schemas every database has (`public`) taken as they are, materialized views
//! populated.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::AssertSqlSafe;
use sqlx::postgres::PgConnection;
use topology::catalog::Catalog;

use super::model::Setup;
use crate::RollbackError;
use crate::catalog::CatalogSnapshot;
use crate::names::quote_ident;

/// What loading a setup did.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// Extensions the shard uses that the shadow server does not have
    /// (`pg_available_extensions`), sorted.
    pub missing_extensions: Vec<String>,
    /// The setup failed ([`RollbackError::Setup`]).
    pub error: Option<RollbackError>,
}

/// Load `setup` on `conn` (an empty scratch database): first the shard's `extensions` (name →
/// schema) and those the setup creates, when the server has them, then the setup itself.
pub(crate) async fn load_setup(
    conn: &mut PgConnection,
    setup: Setup<'_>,
    extensions: &BTreeMap<String, String>,
) -> Loaded {
    let mut used: BTreeSet<String> = extensions.keys().cloned().collect();
    match setup {
        Setup::Sql(sql) => used.extend(created_extensions(sql)),
        Setup::Catalog(c) => used.extend(c.extensions.keys().cloned()),
    }
    let available: BTreeSet<String> =
        sqlx::query_scalar::<_, String>("SELECT name::text FROM pg_available_extensions")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default()
            .into_iter()
            .collect();
    let missing_extensions: Vec<String> = used.difference(&available).cloned().collect();
    for (e, s) in extensions.iter().filter(|(e, _)| available.contains(*e)) {
        // Best effort: a failure shows where the setup uses the extension.
        let sql = format!(
            "CREATE SCHEMA IF NOT EXISTS {s}; CREATE EXTENSION IF NOT EXISTS {} SCHEMA {s}",
            quote_ident(e),
            s = quote_ident(s)
        );
        let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await;
    }
    let error = match setup {
        Setup::Sql(sql) => run_setup(conn, sql).await.err(),
        Setup::Catalog(c) => CatalogSnapshot::from_topology(c)
            .load_into(conn)
            .await
            .into_iter()
            .next()
            .map(|f| RollbackError::Setup {
                sqlstate: f.sqlstate.unwrap_or_else(|| "-----".into()),
                message: format!("{} -- {}", f.message, f.sql),
            }),
    };
    Loaded {
        missing_extensions,
        error,
    }
}

/// Run setup SQL as one multi-statement string. A `CREATE SCHEMA s;` line of a schema the
/// scratch database already has (`pg_dump --schema=public` writes `CREATE SCHEMA public;`, and
/// every database has `public`) becomes `CREATE SCHEMA IF NOT EXISTS s;`: the schema stays as
/// on the target (owned by `pg_database_owner`), not recreated by the loading role.
pub(crate) async fn run_setup(
    conn: &mut PgConnection,
    setup_sql: &str,
) -> Result<(), RollbackError> {
    if setup_sql.trim().is_empty() {
        return Ok(());
    }
    let existing: BTreeSet<String> = sqlx::query_scalar::<_, String>(
        "SELECT nspname::text FROM pg_namespace WHERE nspname !~ '^pg_' \
         AND nspname <> 'information_schema'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default()
    .into_iter()
    .collect();
    let sql = keep_existing_schemas(setup_sql, &existing);
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| {
            let (sqlstate, message) = match &e {
                sqlx::Error::Database(d) => (
                    d.code().map(|c| c.into_owned()).unwrap_or_default(),
                    d.message().to_string(),
                ),
                other => ("-----".to_string(), other.to_string()),
            };
            RollbackError::Setup { sqlstate, message }
        })
}

/// `sql` with every line `CREATE SCHEMA <name>;` of a schema in `existing` made
/// `CREATE SCHEMA IF NOT EXISTS <name>;`.
pub(crate) fn keep_existing_schemas(sql: &str, existing: &BTreeSet<String>) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    for line in sql.split_inclusive('\n') {
        let t = line.trim();
        let name = t
            .get(..14)
            .filter(|h| h.eq_ignore_ascii_case("CREATE SCHEMA "))
            .and_then(|_| t[14..].strip_suffix(';'))
            .map(str::trim)
            .map(unquote);
        match name {
            Some(n) if existing.contains(&n) => {
                out.push_str(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {};\n",
                    quote_ident(&n)
                ));
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// An identifier as PostgreSQL reads it: `"Quoted"` kept as written, bare folded to lower case.
fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(q) => q.replace("\"\"", "\""),
        None => s.to_ascii_lowercase(),
    }
}

/// The extensions `CREATE EXTENSION [IF NOT EXISTS] name` statements of `sql` create.
pub(crate) fn created_extensions(sql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let words: Vec<&str> = sql.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if !w.eq_ignore_ascii_case("extension")
            || i == 0
            || !words[i - 1].eq_ignore_ascii_case("create")
        {
            continue;
        }
        let mut j = i + 1;
        if words.get(j).is_some_and(|w| w.eq_ignore_ascii_case("if"))
            && words
                .get(j + 2)
                .is_some_and(|w| w.eq_ignore_ascii_case("exists"))
        {
            j += 3;
        }
        if let Some(name) = words.get(j) {
            let name = unquote(name.trim_end_matches(';'));
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Populate every materialized view of the scratch database (`pg_dump --schema-only` and a
/// [`Setup::Catalog`] leave them `WITH NO DATA`; after seeding they must show the rows), so
/// that `REFRESH … CONCURRENTLY` and migrations reading them behave as on the target. Run on
/// `conn` of the demoted owner: `REFRESH` runs each view's query — the tenant's functions — as
/// the view's owner, never as a superuser. Best effort, in creation order, passing again over
/// those that failed (one may read another: dependency order) until no pass makes progress; a
/// view left empty fails where it is read.
pub(crate) async fn populate_matviews(conn: &mut PgConnection) {
    let mut todo: Vec<String> = sqlx::query_scalar::<_, String>(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'm' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' \
         ORDER BY c.oid",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    loop {
        let mut left = Vec::new();
        for mv in &todo {
            let sql = format!("REFRESH MATERIALIZED VIEW {mv}");
            if sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await
                .is_err()
            {
                left.push(mv.clone());
            }
        }
        if left.is_empty() || left.len() == todo.len() {
            return;
        }
        todo = left;
    }
}

/// The exact catalog of `schema` on `conn` (topology's one introspection).
pub(crate) async fn introspect(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<Catalog, RollbackError> {
    topology::catalog::introspect_schema_conn(conn, schema)
        .await
        .map_err(RollbackError::Catalog)
}

/// Why a setup that did not load cannot be proven, naming the missing extensions first.
pub(crate) fn not_loaded_reason(error: &str, missing_extensions: &[String]) -> String {
    match missing_extensions {
        [] => format!("the shard's structure could not be loaded on the shadow: {error}"),
        [one] => format!(
            "extension {one} is not installed on the shadow server (the shard's structure could \
             not be loaded: {error})"
        ),
        many => format!(
            "extensions {} are not installed on the shadow server (the shard's structure could \
             not be loaded: {error})",
            many.join(", ")
        ),
    }
}

/// `SET search_path` for `schema` (then `public`) and `statement_timeout` on `conn`.
pub(crate) async fn session(
    conn: &mut PgConnection,
    schema: &str,
    timeout: &str,
) -> Result<(), RollbackError> {
    let path = if schema == "public" {
        "public".to_string()
    } else {
        format!("{}, public", quote_ident(schema))
    };
    sqlx::query(
        "SELECT set_config('search_path', $1, false), set_config('statement_timeout', $2, false)",
    )
    .bind(path)
    .bind(timeout)
    .execute(&mut *conn)
    .await
    .map(|_| ())
    .map_err(|source| RollbackError::Database {
        action: "set search_path and statement_timeout".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_schema_of_an_existing_schema_is_kept() {
        let existing: BTreeSet<String> = ["public".to_string()].into();
        let sql =
            "CREATE SCHEMA public;\nCREATE SCHEMA tenant_1;\nCOMMENT ON SCHEMA public IS 'x';\n";
        assert_eq!(
            keep_existing_schemas(sql, &existing),
            "CREATE SCHEMA IF NOT EXISTS public;\nCREATE SCHEMA tenant_1;\n\
             COMMENT ON SCHEMA public IS 'x';\n"
        );
    }

    #[test]
    fn extensions_created_by_a_dump() {
        let sql = "CREATE EXTENSION IF NOT EXISTS ltree WITH SCHEMA public;\n\
                   create extension \"uuid-ossp\";\nCOMMENT ON EXTENSION ltree IS 'x';";
        assert_eq!(
            created_extensions(sql).into_iter().collect::<Vec<_>>(),
            ["ltree", "uuid-ossp"]
        );
    }

    #[test]
    fn missing_extensions_are_named() {
        let r = not_loaded_reason("type \"ltree\" does not exist", &["ltree".into()]);
        assert!(
            r.starts_with("extension ltree is not installed on the shadow server"),
            "{r}"
        );
    }
}

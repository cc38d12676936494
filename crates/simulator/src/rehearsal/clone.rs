//! Cloning a shard's structure into a shadow database: its extensions (best effort), then
//! `pg_dump --schema-only` of the schemas to clone piped through `psql`.

use std::path::Path;
use std::process::Stdio;

use sqlx::{AssertSqlSafe, PgConnection, Row};
use tokio::io::AsyncWriteExt;
use topology::ConnectionSpec;

use crate::SimError;
use crate::dump::{DumpCache, client_command, dump_schemas};
use crate::ident::{quote_ident, quote_literal, quote_qualified};

/// Extensions of the source database (except plpgsql), with their schema.
async fn extensions(conn: &mut PgConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT e.extname::text, n.nspname::text FROM pg_extension e
           JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
        .collect())
}

/// Materialized views of `schemas` that are populated on the source, in creation order
/// (`schema.name`, quoted). `pg_dump --schema-only` restores every materialized view `WITH NO
/// DATA`: left so, `REFRESH MATERIALIZED VIEW CONCURRENTLY` fails on the shadow (0A000) where it
/// succeeds on the shard, and a query on it fails (55000).
async fn populated_matviews(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'm' AND c.relispopulated AND n.nspname = ANY ($1::text[])
          ORDER BY c.oid",
    )
    .bind(schemas)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let schema: String = r.try_get(0).ok()?;
            let name: String = r.try_get(1).ok()?;
            Some(quote_qualified(&schema, &name))
        })
        .collect())
}

/// A `DO` block that refreshes `matviews` (quoted names) on the shadow, each in its own
/// sub-transaction, passing again over those that failed (one may read another restored after
/// it) until no pass makes progress. The names reach the block only as literals; the search
/// path is empty for the block (like in the restored dump), so a name resolves as quoted.
fn refresh_script(matviews: &[String]) -> String {
    let list: Vec<String> = matviews.iter().map(|m| quote_literal(m)).collect();
    let body = format!(
        "DECLARE todo text[] := ARRAY[{}]::text[]; left_over text[]; n text;
BEGIN
  PERFORM pg_catalog.set_config('search_path', '', true);
  LOOP
    left_over := '{{}}';
    FOREACH n IN ARRAY todo LOOP
      BEGIN
        EXECUTE 'REFRESH MATERIALIZED VIEW ' || n;
      EXCEPTION WHEN others THEN
        left_over := left_over || n;
      END;
    END LOOP;
    EXIT WHEN cardinality(left_over) = 0 OR cardinality(left_over) = cardinality(todo);
    todo := left_over;
  END LOOP;
END",
        list.join(", ")
    );
    format!("DO {}", quote_literal(&body))
}

/// Populate the materialized views the clone restored `WITH NO DATA` (`matviews`, from
/// [`clone_schemas`]). `REFRESH` runs each view's query — and every function of the tenant it
/// calls — as the view's owner: call this only on `conn` of the *demoted* owner (after
/// `ShadowDb::demote`), never during the clone, when the owner is still a superuser (a tenant
/// function would run as a superuser on the machine's shadow cluster). The session's
/// `statement_timeout` bounds it. Best effort: returns the error, if the block failed as a
/// whole, else one per view left unpopulated (its own refresh failed: the block passes over
/// it), by name only. With `real_rows` (the views were computed from sampled real rows) a
/// block's error names its SQLSTATE only: the server's message may quote a value, and these
/// errors reach the report.
pub(crate) async fn refresh_matviews(
    conn: &mut PgConnection,
    matviews: &[String],
    real_rows: bool,
) -> Vec<String> {
    if matviews.is_empty() {
        return Vec::new();
    }
    let block = sqlx::raw_sql(AssertSqlSafe(refresh_script(matviews)))
        .execute(&mut *conn)
        .await;
    if block.is_ok() {
        // Which views are still unpopulated, by position: the names come from our own list,
        // never from the server. Everything is qualified, the operator too: the session's
        // search path is the tenant's, whose functions (an `unnest(text[])` of its own would
        // win over pg_catalog's `anyarray` one) may read the sampled rows.
        return sqlx::query_scalar::<_, i64>(
            "SELECT u.o FROM pg_catalog.unnest($1::text[]) WITH ORDINALITY AS u(n, o) \
              WHERE NOT (SELECT c.relispopulated FROM pg_catalog.pg_class c \
                          WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(u.n))",
        )
        .bind(matviews)
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| matviews.get(usize::try_from(o).ok()?.checked_sub(1)?))
        .map(|n| {
            format!(
                "ERROR: materialized view {n} could not be refreshed on the shadow (left unpopulated)"
            )
        })
        .collect();
    }
    block
        .err()
        .into_iter()
        .map(|e| {
            if real_rows {
                let code = e
                    .as_database_error()
                    .and_then(|d| d.code().map(|c| c.into_owned()))
                    .unwrap_or_else(|| "unknown".into());
                format!(
                    "ERROR: refresh of the materialized views failed with SQLSTATE {code} (message \
                     withheld: the views were computed from sampled real rows)"
                )
            } else {
                format!("ERROR: refresh of the materialized views: {e}")
            }
        })
        .collect()
}

/// Whether psql's stderr line is exactly the error of `CREATE SCHEMA public` (a dump whose
/// `public` was recreated meets the shadow's own `public`: nothing is missing, so it is no
/// error of the copy) — the whole line, so that no other error quoting that text is dropped.
fn public_exists(line: &str) -> bool {
    line.strip_prefix("psql:<stdin>:")
        .and_then(|r| r.split_once(':'))
        .is_some_and(|(n, rest)| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && rest == r#" ERROR:  schema "public" already exists"#
        })
}

/// What [`clone_schemas`] left on the shadow.
pub(crate) struct Cloned {
    /// psql's error lines.
    pub errors: Vec<String>,
    /// Materialized views populated on the source and restored empty (quoted names), for
    /// [`refresh_matviews`] once the owner is demoted.
    pub matviews: Vec<String>,
}

/// Clone `schemas` of the source database into the shadow database. Runs nothing of the
/// source's code: the materialized views are left for [`refresh_matviews`].
#[allow(clippy::too_many_arguments)]
pub(crate) async fn clone_schemas(
    bin_dir: &Path,
    source: &ConnectionSpec,
    source_db: &str,
    source_conn: &mut PgConnection,
    schemas: &[String],
    shadow: &ConnectionSpec,
    shadow_db: &str,
    cache: Option<&DumpCache>,
) -> Result<Cloned, SimError> {
    // Extensions first (best effort).
    let mut pre = String::new();
    if let Ok(exts) = extensions(source_conn).await {
        for (ext, sch) in exts {
            pre.push_str(&format!(
                "CREATE SCHEMA IF NOT EXISTS {s};\nCREATE EXTENSION IF NOT EXISTS {e} SCHEMA {s};\n",
                s = quote_ident(&sch),
                e = quote_ident(&ext)
            ));
        }
    }
    let dump = match cache {
        Some(c) => c.dump(bin_dir, source, source_db, schemas).await?,
        None => std::sync::Arc::new(dump_schemas(bin_dir, source, source_db, schemas).await?),
    };
    let matviews = populated_matviews(source_conn, schemas)
        .await
        .unwrap_or_default();
    let mut script = pre.into_bytes();
    script.extend_from_slice(&dump);

    let (mut psql, _env) =
        client_command(&bin_dir.join("psql"), shadow, shadow_db).map_err(|e| SimError::PgTool {
            program: "psql".into(),
            message: format!("cannot prepare its environment: {e}"),
        })?;
    psql.arg("-X")
        .arg("-q")
        .arg("-v")
        .arg("ON_ERROR_STOP=0")
        .arg("-f")
        .arg("-");
    psql.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = psql.spawn().map_err(|e| SimError::PgTool {
        program: "psql".into(),
        message: format!("cannot run {}: {e}", bin_dir.join("psql").display()),
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&script).await;
        let _ = stdin.shutdown().await;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| SimError::PgTool {
            program: "psql".into(),
            message: e.to_string(),
        })?;
    let errors: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("ERROR:") && !public_exists(l))
        .map(|l| l.trim().to_string())
        .collect();
    if !out.status.success() && errors.is_empty() {
        return Err(SimError::PgTool {
            program: "psql".into(),
            message: tail(&String::from_utf8_lossy(&out.stderr)),
        });
    }
    Ok(Cloned { errors, matviews })
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let start = lines.len().saturating_sub(5);
    lines[start..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::public_exists;

    #[test]
    fn only_the_exact_public_schema_error_is_benign() {
        assert!(public_exists(
            r#"psql:<stdin>:25: ERROR:  schema "public" already exists"#
        ));
        for other in [
            r#"psql:<stdin>:25: ERROR:  relation "x schema "public" already exists" does not exist"#,
            r#"psql:<stdin>:: ERROR:  schema "public" already exists"#,
            r#"psql:<stdin>:2a: ERROR:  schema "public" already exists"#,
            r#"ERROR:  schema "public" already exists"#,
            r#"psql:<stdin>:25: ERROR:  schema "public" already exists; and more"#,
        ] {
            assert!(!public_exists(other), "{other}");
        }
    }
}

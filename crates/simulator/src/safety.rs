//! Resolving the functions a statement or probe calls on a shard, and judging them with the
//! one side-effect policy ([`migration_parser::judge_call`]). Used by the custom SQL probes and
//! by the in-place rehearsal: nothing runs on a target unless every function it names is proven
//! free of lasting effects *as that name resolves on that shard*.
//!
//! Resolution is deliberately wider than PostgreSQL's: for an unqualified name every function of
//! that name in every schema of the session's search path (`current_schemas(true)`, so
//! `pg_catalog` and the shard's schema included) is a candidate, whatever the argument types;
//! all candidates must pass. One catalog query per call site list, by name, never a scan of
//! `pg_proc` per function.

use std::collections::{BTreeMap, BTreeSet};

use migration_parser::{CallContext, FunctionCall, ProcCandidate, QualifiedName, judge_call};
use sqlx::{PgConnection, Row};

/// A call that may not run on the shard, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRefusal {
    /// The call as written (with its place in the text).
    pub call: FunctionCall,
    /// Why it was refused ([`migration_parser::judge_call`]'s reason).
    pub reason: String,
}

/// Every `pg_proc` row each distinct name in `names` could resolve to in the session of `conn`
/// (its current search path), keyed by the name as written.
pub async fn resolve_functions(
    conn: &mut PgConnection,
    names: &[QualifiedName],
) -> Result<BTreeMap<QualifiedName, Vec<ProcCandidate>>, sqlx::Error> {
    let mut out: BTreeMap<QualifiedName, Vec<ProcCandidate>> =
        names.iter().map(|n| (n.clone(), Vec::new())).collect();
    if out.is_empty() {
        return Ok(out);
    }
    let keys: Vec<QualifiedName> = out.keys().cloned().collect();
    let schemas: Vec<Option<String>> = keys.iter().map(|k| k.schema.clone()).collect();
    let fns: Vec<String> = keys.iter().map(|k| k.name.clone()).collect();
    let rows = sqlx::query(
        "SELECT w.i::int8 AS i, n.nspname::text AS schema, p.proname::text AS name,
                p.provolatile::text AS volatility, p.prokind::text AS kind
           FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(sch, fn, i)
           JOIN pg_catalog.pg_proc p ON p.proname = w.fn
           JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          WHERE CASE WHEN w.sch IS NULL
                     THEN n.nspname = ANY (pg_catalog.current_schemas(true))
                     ELSE n.nspname = w.sch END
          ORDER BY 1, 2, 3",
    )
    .bind(&schemas)
    .bind(&fns)
    .fetch_all(&mut *conn)
    .await?;
    for r in rows {
        let i: i64 = r.try_get("i")?;
        let Some(key) = usize::try_from(i - 1).ok().and_then(|i| keys.get(i)) else {
            continue;
        };
        let cand = candidate(&r)?;
        if let Some(v) = out.get_mut(key) {
            v.push(cand);
        }
    }
    Ok(out)
}

/// The calls of `calls` that may not run in `ctx` on the shard of `conn` (empty: all proven).
pub async fn refused_calls(
    conn: &mut PgConnection,
    calls: &[FunctionCall],
    ctx: CallContext,
) -> Result<Vec<CallRefusal>, sqlx::Error> {
    let names: Vec<QualifiedName> = calls.iter().map(|c| c.name.clone()).collect();
    let resolved = resolve_functions(conn, &names).await?;
    Ok(judge_calls(calls, ctx, |n| {
        resolved.get(n).cloned().unwrap_or_default()
    }))
}

/// The schema after the shard's own on its search path: where an unqualified name the shard's
/// schema lacks resolves.
pub(crate) const SHARED_SCHEMA: &str = "public";

/// The search path (besides `pg_catalog`, always searched first) that the simulator's probe
/// transaction sets for a shard whose schema is `schema`: the schema, then `public`.
pub fn probe_search_path(schema: &str) -> Vec<String> {
    vec![schema.to_string(), SHARED_SCHEMA.to_string()]
}

/// [`refused_calls`] for many search paths at once, with one catalog query: for each
/// `(search path, calls)` of `requests`, the calls that may not run in `ctx` when an
/// unqualified name may resolve to a function of that name in `pg_catalog` or in any schema of
/// the path (as `SET search_path` gives it; `pg_temp` is never searched for functions), and a
/// qualified name to the functions of that name in its schema. Used by the custom-probe
/// pre-flight: one query per (instance, database) for all its shards.
pub async fn refused_calls_on_paths(
    conn: &mut PgConnection,
    requests: &[(Vec<String>, Vec<FunctionCall>)],
    ctx: CallContext,
) -> Result<Vec<Vec<CallRefusal>>, sqlx::Error> {
    let mut names = BTreeSet::new();
    let mut schemas = BTreeSet::from(["pg_catalog".to_string()]);
    for (path, calls) in requests {
        schemas.extend(path.iter().cloned());
        for c in calls {
            names.insert(c.name.name.clone());
            schemas.extend(c.name.schema.clone());
        }
    }
    let mut by_name: BTreeMap<(String, String), Vec<ProcCandidate>> = BTreeMap::new();
    if !names.is_empty() {
        let rows = sqlx::query(
            "SELECT n.nspname::text AS schema, p.proname::text AS name,
                    p.provolatile::text AS volatility, p.prokind::text AS kind
               FROM pg_catalog.pg_proc p
               JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
              WHERE p.proname = ANY ($1::text[]::name[]) AND n.nspname = ANY ($2::text[]::name[])
              ORDER BY 1, 2",
        )
        .bind(names.into_iter().collect::<Vec<_>>())
        .bind(schemas.into_iter().collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            let cand = candidate(&r)?;
            by_name
                .entry((cand.schema.clone(), cand.name.clone()))
                .or_default()
                .push(cand);
        }
    }
    Ok(requests
        .iter()
        .map(|(path, calls)| {
            judge_calls(calls, ctx, |n| {
                let searched: Vec<&str> = match &n.schema {
                    Some(s) => vec![s.as_str()],
                    None => std::iter::once("pg_catalog")
                        .chain(
                            path.iter()
                                .map(String::as_str)
                                .filter(|s| *s != "pg_catalog"),
                        )
                        .collect(),
                };
                searched
                    .into_iter()
                    .flat_map(|s| {
                        by_name
                            .get(&(s.to_string(), n.name.clone()))
                            .cloned()
                            .unwrap_or_default()
                    })
                    .collect()
            })
        })
        .collect())
}

/// A relation a query reads that hides a refused call or a credential catalog, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationRefusal {
    /// The relation as written.
    pub relation: QualifiedName,
    /// Why it was refused.
    pub reason: String,
}

/// Views read the functions and relations of their definitions, which the query's text does not
/// show: for each `(search path, relations read)` of `requests`, the relations that may not be
/// read in `ctx` because a view they may resolve to (on the path, as for functions) calls, through
/// any depth of views, a function [`migration_parser::judge_call`] refuses (operators count as
/// their function) or reads a credential catalog ([`migration_parser::credential_relation`]).
/// One catalog query (the views' stored rewrite rules) for all requests.
pub async fn refused_relations_on_paths(
    conn: &mut PgConnection,
    requests: &[(Vec<String>, Vec<QualifiedName>)],
    ctx: CallContext,
) -> Result<Vec<Vec<RelationRefusal>>, sqlx::Error> {
    let mut names = BTreeSet::new();
    let mut schemas = BTreeSet::from(["pg_catalog".to_string()]);
    for (path, rels) in requests {
        schemas.extend(path.iter().cloned());
        for r in rels {
            names.insert(r.name.clone());
            schemas.extend(r.schema.clone());
        }
    }
    // (view schema, view name) -> what its definition reaches: ('f', function) or ('r', relation).
    let mut reached: BTreeMap<(String, String), Vec<(char, ProcCandidate)>> = BTreeMap::new();
    if !names.is_empty() {
        let rows = sqlx::query(VIEW_REACH_SQL)
            .bind(names.into_iter().collect::<Vec<_>>())
            .bind(schemas.into_iter().collect::<Vec<_>>())
            .fetch_all(&mut *conn)
            .await?;
        for r in rows {
            let view: (String, String) = (r.try_get("view_schema")?, r.try_get("view_name")?);
            let what: String = r.try_get("what")?;
            let cand = candidate(&r)?;
            reached
                .entry(view)
                .or_default()
                .push((what.chars().next().unwrap_or('r'), cand));
        }
    }
    Ok(requests
        .iter()
        .map(|(path, rels)| {
            rels.iter()
                .filter_map(|rel| {
                    let searched: Vec<&str> = match &rel.schema {
                        Some(s) => vec![s.as_str()],
                        None => std::iter::once("pg_catalog")
                            .chain(path.iter().map(String::as_str))
                            .collect(),
                    };
                    searched.into_iter().find_map(|s| {
                        let deps = reached.get(&(s.to_string(), rel.name.clone()))?;
                        deps.iter().find_map(|(what, c)| {
                            let name = QualifiedName::qualified(c.schema.clone(), c.name.clone());
                            let why = if *what == 'f' {
                                judge_call(&name, std::slice::from_ref(c), ctx).err()?
                            } else if c.kind == 'f' {
                                return Some(RelationRefusal {
                                    relation: rel.clone(),
                                    reason: format!(
                                        "reads foreign table `{name}`, which reaches another server or runs a program (file_fdw)"
                                    ),
                                });
                            } else if migration_parser::credential_relation(&name) {
                                format!("reads `{name}`, a catalog that holds credentials")
                            } else {
                                return None;
                            };
                            Some(RelationRefusal {
                                relation: rel.clone(),
                                reason: format!("reads the view `{s}.{}`, which {why}", rel.name),
                            })
                        })
                    })
                })
                .collect()
        })
        .collect())
}

/// Every function (`what = 'f'`) and relation (`'r'`) the views named `$1` in the schemas `$2`
/// reach, views of views included; and the foreign tables (`'r'` with `kind = 'f'`) among the
/// relations named `$1`, the relations those views reach, and their partitions and inheritance
/// children (file_fdw's `program` runs a command when the table is read). Read from the rewrite rules' stored query trees
/// (`pg_rewrite.ev_action`: `:funcid`, `:aggfnoid`, `:winfnoid`, `:opfuncid` and `:opno`
/// through `pg_operator.oprcode`, `:relid`), not from `pg_depend`, which records no dependency
/// on built-in (pinned) objects such as `pg_advisory_lock` or `pg_authid`. System views
/// (`pg_catalog`, `information_schema`) are reached but not opened: they are judged by name
/// ([`migration_parser::credential_relation`]; `pg_roles` masks the password, `pg_shadow` is
/// refused).
const VIEW_REACH_SQL: &str = r"
WITH RECURSIVE reach(view_schema, view_name, oid) AS (
    SELECT n.nspname::text, c.relname::text, c.oid
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'v' AND c.relname = ANY ($1::text[]::name[])
       AND n.nspname = ANY ($2::text[]::name[])
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    UNION
    SELECT reach.view_schema, reach.view_name, m[1]::oid
      FROM reach
      JOIN pg_catalog.pg_class rc ON rc.oid = reach.oid
       AND rc.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
      JOIN pg_catalog.pg_rewrite rw ON rw.ev_class = reach.oid
     CROSS JOIN LATERAL regexp_matches(rw.ev_action::text, ':relid (\d+)', 'g') AS m
), tokens AS (
    SELECT reach.view_schema, reach.view_name, m[1] AS kind, m[2]::oid AS oid
      FROM reach
      JOIN pg_catalog.pg_class rc ON rc.oid = reach.oid
       AND rc.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
      JOIN pg_catalog.pg_rewrite rw ON rw.ev_class = reach.oid
     CROSS JOIN LATERAL regexp_matches(rw.ev_action::text,
                ':(funcid|aggfnoid|winfnoid|opfuncid|opno) (\d+)', 'g') AS m
), down(view_schema, view_name, oid) AS (
    SELECT n.nspname::text, c.relname::text, c.oid
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relname = ANY ($1::text[]::name[]) AND n.nspname = ANY ($2::text[]::name[])
    UNION
    SELECT view_schema, view_name, oid FROM reach
    UNION
    SELECT d.view_schema, d.view_name, i.inhrelid
      FROM down d JOIN pg_catalog.pg_inherits i ON i.inhparent = d.oid
), fns AS (
    SELECT view_schema, view_name, oid FROM tokens WHERE kind <> 'opno'
    UNION
    SELECT t.view_schema, t.view_name, o.oprcode::oid
      FROM tokens t JOIN pg_catalog.pg_operator o ON o.oid = t.oid
     WHERE t.kind = 'opno'
)
SELECT fns.view_schema, fns.view_name, 'f' AS what, n.nspname::text AS schema,
       p.proname::text AS name, p.provolatile::text AS volatility, p.prokind::text AS kind
  FROM fns
  JOIN pg_catalog.pg_proc p ON p.oid = fns.oid
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
UNION
SELECT reach.view_schema, reach.view_name, 'r', n.nspname::text, c.relname::text, 's', 'r'
  FROM reach
  JOIN pg_catalog.pg_class c ON c.oid = reach.oid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
UNION
SELECT d.view_schema, d.view_name, 'r', n.nspname::text, c.relname::text, 's', 'f'
  FROM down d
  JOIN pg_catalog.pg_class c ON c.oid = d.oid AND c.relkind = 'f'
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 ORDER BY 1, 2, 3, 4, 5";

/// One `pg_proc` row (columns `schema`, `name`, `volatility`, `kind`) as a candidate.
fn candidate(r: &sqlx::postgres::PgRow) -> Result<ProcCandidate, sqlx::Error> {
    let ch = |col: &str| -> Result<char, sqlx::Error> {
        Ok(r.try_get::<String, _>(col)?.chars().next().unwrap_or('v'))
    };
    Ok(ProcCandidate {
        schema: r.try_get("schema")?,
        name: r.try_get("name")?,
        volatility: ch("volatility")?,
        kind: ch("kind")?,
    })
}

/// Judge every call of `calls` with the candidates `lookup` gives for its name.
fn judge_calls(
    calls: &[FunctionCall],
    ctx: CallContext,
    lookup: impl Fn(&QualifiedName) -> Vec<ProcCandidate>,
) -> Vec<CallRefusal> {
    calls
        .iter()
        .filter_map(|c| {
            judge_call(&c.name, &lookup(&c.name), ctx)
                .err()
                .map(|reason| CallRefusal {
                    call: c.clone(),
                    reason,
                })
        })
        .collect()
}

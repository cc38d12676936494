//! The rollback crate's view of one schema: everything a rollback must restore, read with
//! PostgreSQL's pretty printers under `search_path = <schema>` so definitions of objects in the
//! tenant schema come out unqualified (and a generated rollback fans out to every tenant).
//!
//! It covers what a catalog-exact round trip needs beyond [`topology::catalog::Catalog`]:
//! functions, triggers, views, domains, extensions and comments on indexes and constraints.
//! [`CatalogSnapshot::from_topology`] converts a topology catalog when no database is at hand.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Row};

use crate::RollbackError;
use crate::names::quote_ident;

/// One schema's structure, as a rollback must restore it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CatalogSnapshot {
    /// The schema (unqualified names in a migration resolve to it).
    pub schema: String,
    /// Tables and partitioned tables by name.
    pub tables: BTreeMap<String, TableSnap>,
    /// Sequences that are not identity sequences, by name.
    pub sequences: BTreeMap<String, SequenceSnap>,
    /// Views and materialized views by name.
    pub views: BTreeMap<String, ViewSnap>,
    /// Enum, domain and composite types by name.
    pub types: BTreeMap<String, TypeSnap>,
    /// Functions, procedures and (plain) aggregates by `name(identity arguments)`.
    pub functions: BTreeMap<String, FunctionSnap>,
    /// Extensions of the database (name → schema).
    pub extensions: BTreeMap<String, String>,
    /// Non-system schemas of the database.
    pub schemas: BTreeSet<String>,
}

/// A table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TableSnap {
    /// `r` ordinary or `p` partitioned.
    pub kind: String,
    /// `UNLOGGED`.
    pub unlogged: bool,
    /// Columns in `attnum` order.
    pub columns: Vec<ColumnSnap>,
    /// Constraints by name.
    pub constraints: BTreeMap<String, ConstraintSnap>,
    /// Indexes by name (including those backing constraints).
    pub indexes: BTreeMap<String, IndexSnap>,
    /// Triggers (not internal) by name.
    pub triggers: BTreeMap<String, String>,
    /// `COMMENT ON TABLE`.
    pub comment: Option<String>,
    /// `PARTITION BY` key of a partitioned table.
    pub partition_key: Option<String>,
    /// Parent and bound of a partition.
    pub partition_of: Option<(String, String)>,
    /// Row-level security enabled.
    pub row_security: bool,
    /// Storage parameters (`reloptions`), comma-separated.
    pub options: Option<String>,
    /// Name of this table in the pre-migration catalog (working state only).
    #[serde(skip)]
    pub(crate) origin: Option<String>,
}

impl TableSnap {
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnSnap> {
        self.columns.iter().find(|c| c.name == name)
    }
    pub(crate) fn column_mut(&mut self, name: &str) -> Option<&mut ColumnSnap> {
        self.columns.iter_mut().find(|c| c.name == name)
    }
}

/// A column.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ColumnSnap {
    /// Name.
    pub name: String,
    /// `format_type` of the column.
    pub data_type: String,
    /// `NOT NULL`.
    pub not_null: bool,
    /// Default expression.
    pub default: Option<String>,
    /// Collation when it differs from the type's.
    pub collation: Option<String>,
    /// `ALWAYS` or `BY DEFAULT` for identity columns.
    pub identity: Option<String>,
    /// Generation expression of a stored generated column.
    pub generated: Option<String>,
    /// `COMMENT ON COLUMN`.
    pub comment: Option<String>,
}

/// A constraint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConstraintSnap {
    /// `p`, `u`, `f`, `c` or `x`.
    pub kind: String,
    /// `pg_get_constraintdef(oid, true)`.
    pub definition: String,
    /// `convalidated`.
    pub validated: bool,
    /// Constrained columns.
    pub columns: Vec<String>,
    /// Referenced table of a foreign key (unqualified when in the schema).
    pub ref_table: Option<String>,
    /// Index a foreign key depends on (the referenced unique index) or that backs the constraint.
    pub index: Option<String>,
    /// `COMMENT ON CONSTRAINT`.
    pub comment: Option<String>,
    /// Inherited from a parent (partition), not defined locally.
    pub inherited: bool,
    /// Name in the pre-migration catalog (working state only).
    #[serde(skip)]
    pub(crate) origin: Option<String>,
}

/// An index.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IndexSnap {
    /// `pg_get_indexdef(oid, 0, true)`.
    pub definition: String,
    /// Backs a primary key, unique or exclusion constraint.
    pub constraint: bool,
    /// `indisvalid`.
    pub valid: bool,
    /// Columns the index depends on (keys, expressions, predicate).
    pub columns: Vec<String>,
    /// `COMMENT ON INDEX`.
    pub comment: Option<String>,
    /// Existed before the migration (working state only).
    #[serde(skip)]
    pub(crate) origin: Option<String>,
}

/// A sequence.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SequenceSnap {
    /// `AS type`.
    pub data_type: String,
    /// `START`.
    pub start: i64,
    /// `INCREMENT`.
    pub increment: i64,
    /// `MINVALUE`.
    pub min: i64,
    /// `MAXVALUE`.
    pub max: i64,
    /// `CACHE`.
    pub cache: i64,
    /// `CYCLE`.
    pub cycle: bool,
    /// `OWNED BY table.column`.
    pub owned_by: Option<(String, String)>,
    /// `COMMENT ON SEQUENCE`.
    pub comment: Option<String>,
}

/// A view.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ViewSnap {
    /// Materialized view.
    pub materialized: bool,
    /// `pg_get_viewdef(oid, true)`.
    pub definition: String,
    /// Indexes of a materialized view by name.
    pub indexes: BTreeMap<String, IndexSnap>,
    /// `COMMENT ON VIEW`.
    pub comment: Option<String>,
}

/// A user-defined type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TypeSnap {
    /// An enum with its labels in order.
    Enum {
        /// Labels.
        labels: Vec<String>,
        /// Comment.
        comment: Option<String>,
    },
    /// A domain: `AS base [DEFAULT] [NOT NULL] [constraints]`, as one clause text.
    Domain {
        /// The clause after `CREATE DOMAIN name`.
        definition: String,
        /// Comment.
        comment: Option<String>,
    },
    /// A composite type: `(attr type, ...)`.
    Composite {
        /// The attribute list.
        definition: String,
        /// Comment.
        comment: Option<String>,
    },
}

/// A function or procedure.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FunctionSnap {
    /// `pg_get_functiondef` (a `CREATE OR REPLACE ...` statement).
    pub definition: String,
    /// `COMMENT ON FUNCTION`.
    pub comment: Option<String>,
}

/// A difference between two snapshots (a `rollback-mismatch` item).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Mismatch {
    /// The object, e.g. `table users`, `index users_email_idx`, `function f(integer)`.
    pub object: String,
    /// What differs, e.g. `missing after`, `column email: type`.
    pub what: String,
    /// The value before (pre-migration), if any.
    pub before: Option<String>,
    /// The value after the round trip, if any.
    pub after: Option<String>,
    /// Only the order of columns differs (a dropped column re-added lands at the end; PostgreSQL
    /// cannot reorder columns). Reported, but not counted against a restored catalog.
    pub column_order_only: bool,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.what)?;
        match (&self.before, &self.after) {
            (Some(b), Some(a)) => write!(f, " (before: {b}; after: {a})"),
            (Some(b), None) => write!(f, " (before: {b})"),
            (None, Some(a)) => write!(f, " (after: {a})"),
            (None, None) => Ok(()),
        }
    }
}

/// Receives one difference: object, what, before, after.
type Push<'a> = dyn FnMut(String, &str, Option<String>, Option<String>) + 'a;

fn is_ext_member(classid: &str, alias: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = '{classid}'::regclass \
         AND dep.objid = {alias}.oid AND dep.deptype = 'e')"
    )
}

fn db_err(action: &str, source: sqlx::Error) -> RollbackError {
    RollbackError::Database {
        action: action.to_string(),
        source,
    }
}

impl CatalogSnapshot {
    /// Introspect `schema` on `conn`. The session's `search_path` is set to the schema for the
    /// duration (so definitions print unqualified names for it) and restored afterwards.
    pub async fn introspect(
        conn: &mut PgConnection,
        schema: &str,
    ) -> Result<CatalogSnapshot, RollbackError> {
        let old: String = sqlx::query_scalar("SELECT current_setting('search_path')")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| db_err("read search_path", e))?;
        sqlx::query("SELECT set_config('search_path', quote_ident($1), false)")
            .bind(schema)
            .execute(&mut *conn)
            .await
            .map_err(|e| db_err("set search_path", e))?;
        let result = Self::introspect_inner(conn, schema).await;
        sqlx::query("SELECT set_config('search_path', $1, false)")
            .bind(&old)
            .execute(&mut *conn)
            .await
            .map_err(|e| db_err("restore search_path", e))?;
        result
    }

    async fn introspect_inner(
        conn: &mut PgConnection,
        schema: &str,
    ) -> Result<CatalogSnapshot, RollbackError> {
        let mut snap = CatalogSnapshot {
            schema: schema.to_string(),
            ..Default::default()
        };
        let rel_ext = is_ext_member("pg_class", "c");

        // Tables.
        let q = format!(
            "SELECT c.relname::text, c.relkind::text, c.relpersistence::text, obj_description(c.oid, 'pg_class'),
                    CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                    (SELECT inh.inhparent::regclass::text FROM pg_inherits inh WHERE inh.inhrelid = c.oid LIMIT 1),
                    pg_get_expr(c.relpartbound, c.oid, true), c.relrowsecurity,
                    array_to_string(c.reloptions, ',')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND {rel_ext}"
        );
        for r in sqlx::query(AssertSqlSafe(q))
            .bind(schema)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| db_err("read tables", e))?
        {
            let name: String = r.get(0);
            let parent: Option<String> = r.get(5);
            let bound: Option<String> = r.get(6);
            snap.tables.insert(
                name.clone(),
                TableSnap {
                    kind: r.get(1),
                    unlogged: r.get::<String, _>(2) == "u",
                    comment: r.get(3),
                    partition_key: r.get(4),
                    partition_of: match (parent, bound) {
                        (Some(p), Some(b)) => Some((p, b)),
                        _ => None,
                    },
                    row_security: r.get(7),
                    options: r.get(8),
                    origin: Some(name),
                    ..Default::default()
                },
            );
        }

        // Columns.
        let rows = sqlx::query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    pg_get_expr(d.adbin, d.adrelid, true),
                    CASE WHEN a.attcollation <> t.typcollation
                         THEN (SELECT quote_ident(co.collname) FROM pg_collation co WHERE co.oid = a.attcollation) END,
                    a.attidentity::text, a.attgenerated::text, col_description(a.attrelid, a.attnum)
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY c.relname, a.attnum",
        )
        .bind(schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db_err("read columns", e))?;
        for r in rows {
            let table: String = r.get(0);
            let expr: Option<String> = r.get(4);
            let identity: String = r.get(6);
            let generated: String = r.get(7);
            let col = ColumnSnap {
                name: r.get(1),
                data_type: r.get(2),
                not_null: r.get(3),
                default: if generated.is_empty() {
                    expr.clone()
                } else {
                    None
                },
                collation: r.get(5),
                identity: match identity.as_str() {
                    "a" => Some("ALWAYS".into()),
                    "d" => Some("BY DEFAULT".into()),
                    _ => None,
                },
                generated: if generated.is_empty() { None } else { expr },
                comment: r.get(8),
            };
            if let Some(t) = snap.tables.get_mut(&table) {
                t.columns.push(col);
            }
        }

        // Constraints.
        let rows = sqlx::query(
            "SELECT c.relname::text, con.conname::text, con.contype::text, pg_get_constraintdef(con.oid, true),
                    con.convalidated,
                    COALESCE((SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(n, ord)
                              JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n), '{}'),
                    CASE WHEN con.contype = 'f' THEN con.confrelid::regclass::text END,
                    (SELECT ic.relname::text FROM pg_class ic WHERE ic.oid = con.conindid),
                    obj_description(con.oid, 'pg_constraint'), NOT con.conislocal OR con.conparentid <> 0
             FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND con.contype IN ('p', 'u', 'f', 'c', 'x')",
        )
        .bind(schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db_err("read constraints", e))?;
        for r in rows {
            let table: String = r.get(0);
            let name: String = r.get(1);
            if let Some(t) = snap.tables.get_mut(&table) {
                t.constraints.insert(
                    name.clone(),
                    ConstraintSnap {
                        kind: r.get(2),
                        definition: r.get(3),
                        validated: r.get(4),
                        columns: r.get(5),
                        ref_table: r.get(6),
                        index: r.get(7),
                        comment: r.get(8),
                        inherited: r.get(9),
                        origin: Some(name),
                    },
                );
            }
        }

        // Indexes (of tables and materialized views).
        let rows = sqlx::query(
            "SELECT c.relname::text, c.relkind::text, ic.relname::text, pg_get_indexdef(i.indexrelid, 0, true),
                    EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid
                            AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')),
                    i.indisvalid,
                    COALESCE((SELECT array_agg(DISTINCT a.attname::text) FROM pg_depend d
                              JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                              WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                                AND d.refobjid = i.indrelid AND d.refobjsubid > 0), '{}'),
                    obj_description(i.indexrelid, 'pg_class')
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'm')",
        )
        .bind(schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db_err("read indexes", e))?;
        let mut matview_indexes: Vec<(String, String, IndexSnap)> = Vec::new();
        for r in rows {
            let table: String = r.get(0);
            let kind: String = r.get(1);
            let name: String = r.get(2);
            let idx = IndexSnap {
                definition: r.get(3),
                constraint: r.get(4),
                valid: r.get(5),
                columns: r.get(6),
                comment: r.get(7),
                origin: Some(name.clone()),
            };
            if kind == "m" {
                matview_indexes.push((table, name, idx));
            } else if let Some(t) = snap.tables.get_mut(&table) {
                t.indexes.insert(name, idx);
            }
        }

        // Triggers.
        let rows = sqlx::query(
            "SELECT c.relname::text, t.tgname::text, pg_get_triggerdef(t.oid, true)
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND NOT t.tgisinternal AND c.relkind IN ('r', 'p')",
        )
        .bind(schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db_err("read triggers", e))?;
        for r in rows {
            let table: String = r.get(0);
            if let Some(t) = snap.tables.get_mut(&table) {
                t.triggers.insert(r.get(1), r.get(2));
            }
        }

        // Sequences (identity sequences belong to their column).
        let q = format!(
            "SELECT c.relname::text, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
                    s.seqcache, s.seqcycle,
                    (SELECT tc.relname::text FROM pg_depend d JOIN pg_class tc ON tc.oid = d.refobjid
                     WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a'
                       AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 LIMIT 1),
                    (SELECT a.attname::text FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                     WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a'
                       AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 LIMIT 1),
                    obj_description(c.oid, 'pg_class')
             FROM pg_class c JOIN pg_sequence s ON s.seqrelid = c.oid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind = 'S' AND {rel_ext}
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                               AND d.objid = c.oid AND d.deptype = 'i')"
        );
        for r in sqlx::query(AssertSqlSafe(q))
            .bind(schema)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| db_err("read sequences", e))?
        {
            let t: Option<String> = r.get(8);
            let col: Option<String> = r.get(9);
            snap.sequences.insert(
                r.get(0),
                SequenceSnap {
                    data_type: r.get(1),
                    start: r.get(2),
                    increment: r.get(3),
                    min: r.get(4),
                    max: r.get(5),
                    cache: r.get(6),
                    cycle: r.get(7),
                    owned_by: t.zip(col),
                    comment: r.get(10),
                },
            );
        }

        // Views.
        let q = format!(
            "SELECT c.relname::text, c.relkind = 'm', pg_get_viewdef(c.oid, true), obj_description(c.oid, 'pg_class')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('v', 'm') AND {rel_ext}"
        );
        for r in sqlx::query(AssertSqlSafe(q))
            .bind(schema)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| db_err("read views", e))?
        {
            snap.views.insert(
                r.get(0),
                ViewSnap {
                    materialized: r.get(1),
                    definition: r.get(2),
                    indexes: BTreeMap::new(),
                    comment: r.get(3),
                },
            );
        }
        for (view, name, idx) in matview_indexes {
            if let Some(v) = snap.views.get_mut(&view) {
                v.indexes.insert(name, idx);
            }
        }

        // Types: enums, domains, composites.
        let type_ext = is_ext_member("pg_type", "t");
        let q = format!(
            "SELECT t.typname::text, t.typtype::text,
                    (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid),
                    CASE WHEN t.typtype = 'd' THEN
                      'AS ' || format_type(t.typbasetype, t.typtypmod)
                      || COALESCE(' COLLATE ' || (SELECT quote_ident(co.collname) FROM pg_collation co
                                                  WHERE co.oid = t.typcollation AND t.typcollation <> bt.typcollation), '')
                      || COALESCE(' DEFAULT ' || t.typdefault, '')
                      || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
                      || COALESCE((SELECT string_agg(' CONSTRAINT ' || quote_ident(con.conname) || ' ' || pg_get_constraintdef(con.oid, true), '' ORDER BY con.conname)
                                   FROM pg_constraint con WHERE con.contypid = t.oid), '')
                    WHEN t.typtype = 'c' THEN
                      '(' || (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                              FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) || ')'
                    END,
                    obj_description(t.oid, 'pg_type')
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
             WHERE n.nspname = $1 AND (t.typtype IN ('e', 'd')
                   OR (t.typtype = 'c' AND (SELECT rc.relkind FROM pg_class rc WHERE rc.oid = t.typrelid) = 'c'))
               AND {type_ext}"
        );
        for r in sqlx::query(AssertSqlSafe(q))
            .bind(schema)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| db_err("read types", e))?
        {
            let kind: String = r.get(1);
            let comment: Option<String> = r.get(4);
            let ty = match kind.as_str() {
                "e" => TypeSnap::Enum {
                    labels: r.get::<Option<Vec<String>>, _>(2).unwrap_or_default(),
                    comment,
                },
                "d" => TypeSnap::Domain {
                    definition: r.get::<Option<String>, _>(3).unwrap_or_default(),
                    comment,
                },
                _ => TypeSnap::Composite {
                    definition: r.get::<Option<String>, _>(3).unwrap_or_default(),
                    comment,
                },
            };
            snap.types.insert(r.get(0), ty);
        }

        // Functions and procedures.
        let proc_ext = is_ext_member("pg_proc", "p");
        let q = format!(
            "SELECT p.proname::text || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                    CASE WHEN p.prokind = 'a' THEN
                      'CREATE AGGREGATE ' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid)
                      || ') (SFUNC = ' || a.aggtransfn::regproc::text || ', STYPE = ' || format_type(a.aggtranstype, NULL)
                      || CASE WHEN a.aggfinalfn <> 0 THEN ', FINALFUNC = ' || a.aggfinalfn::regproc::text ELSE '' END
                      || CASE WHEN a.aggcombinefn <> 0 THEN ', COMBINEFUNC = ' || a.aggcombinefn::regproc::text ELSE '' END
                      || COALESCE(', INITCOND = ' || quote_literal(a.agginitval), '')
                      || CASE WHEN a.aggsortop <> 0 THEN ', SORTOP = OPERATOR(' || a.aggsortop::regoperator::text || ')' ELSE '' END
                      || ')'
                    ELSE pg_get_functiondef(p.oid) END,
                    obj_description(p.oid, 'pg_proc')
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             LEFT JOIN pg_aggregate a ON a.aggfnoid = p.oid
             WHERE n.nspname = $1 AND (p.prokind IN ('f', 'p') OR (p.prokind = 'a' AND a.aggkind = 'n')) AND {proc_ext}"
        );
        for r in sqlx::query(AssertSqlSafe(q))
            .bind(schema)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| db_err("read functions", e))?
        {
            snap.functions.insert(
                r.get(0),
                FunctionSnap {
                    definition: r.get(1),
                    comment: r.get(2),
                },
            );
        }

        // Extensions and schemas.
        for r in sqlx::query(
            "SELECT e.extname::text, n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
             WHERE e.extname <> 'plpgsql'",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db_err("read extensions", e))?
        {
            snap.extensions.insert(r.get(0), r.get(1));
        }
        for r in sqlx::query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db_err("read schemas", e))?
        {
            snap.schemas.insert(r.get(0));
        }
        Ok(snap)
    }

    /// Convert a [`topology::catalog::Catalog`] (definitions printed with an empty `search_path`)
    /// into a snapshot: the catalog's own schema qualifier is stripped from definitions so the
    /// rollback stays unqualified. Functions, triggers, domains and comments on indexes are not
    /// in a topology catalog, so a rollback generated from it cannot restore those.
    pub fn from_topology(cat: &topology::catalog::Catalog) -> CatalogSnapshot {
        use topology::catalog::{ConstraintKind as K, Identity, TableKind};
        let prefix = format!("{}.", quote_ident(&cat.schema));
        let strip = |s: &str| s.replace(&prefix, "");
        let mut snap = CatalogSnapshot {
            schema: cat.schema.clone(),
            ..Default::default()
        };
        snap.schemas.insert(cat.schema.clone());
        for (name, t) in &cat.tables {
            match t.kind {
                TableKind::View | TableKind::MaterializedView => {
                    snap.views.insert(
                        name.clone(),
                        ViewSnap {
                            materialized: t.kind == TableKind::MaterializedView,
                            definition: t.view_definition.clone().unwrap_or_default(),
                            indexes: BTreeMap::new(),
                            comment: t.comment.clone(),
                        },
                    );
                    continue;
                }
                TableKind::Foreign => continue,
                TableKind::Ordinary | TableKind::Partitioned => {}
            }
            let mut ts = TableSnap {
                kind: if t.kind == TableKind::Partitioned {
                    "p".into()
                } else {
                    "r".into()
                },
                unlogged: t.persistence == topology::catalog::Persistence::Unlogged,
                comment: t.comment.clone(),
                partition_key: t.partition_key.clone(),
                partition_of: match (&t.partition_of, &t.partition_bound) {
                    (Some(p), Some(b)) => Some((
                        if p.schema == cat.schema {
                            quote_ident(&p.name)
                        } else {
                            p.to_string()
                        },
                        b.clone(),
                    )),
                    _ => None,
                },
                origin: Some(name.clone()),
                ..Default::default()
            };
            for c in t.columns_in_order() {
                ts.columns.push(ColumnSnap {
                    name: c.name.clone(),
                    data_type: strip(&c.data_type),
                    not_null: c.not_null,
                    default: c.default.as_deref().map(strip),
                    collation: c.collation.clone(),
                    identity: c.identity.map(|i| match i {
                        Identity::Always => "ALWAYS".to_string(),
                        Identity::ByDefault => "BY DEFAULT".to_string(),
                    }),
                    generated: c.generated.as_deref().map(strip),
                    comment: c.comment.clone(),
                });
            }
            for (cn, c) in &t.constraints {
                let kind = match c.kind {
                    K::PrimaryKey => "p",
                    K::Unique => "u",
                    K::ForeignKey => "f",
                    K::Check => "c",
                    K::Exclusion => "x",
                    K::Trigger => continue,
                };
                ts.constraints.insert(
                    cn.clone(),
                    ConstraintSnap {
                        kind: kind.into(),
                        definition: strip(&c.definition),
                        validated: c.validated,
                        columns: c.columns.clone(),
                        ref_table: c.foreign_key.as_ref().map(|fk| {
                            if fk.references.schema == cat.schema {
                                quote_ident(&fk.references.name)
                            } else {
                                fk.references.to_string()
                            }
                        }),
                        index: c.index.clone(),
                        comment: c.comment.clone(),
                        inherited: false,
                        origin: Some(cn.clone()),
                    },
                );
            }
            for (iname, i) in &t.indexes {
                let cols = i
                    .columns
                    .iter()
                    .filter(|c| !c.starts_with('('))
                    .cloned()
                    .collect();
                ts.indexes.insert(
                    iname.clone(),
                    IndexSnap {
                        definition: strip(&i.definition),
                        constraint: i.constraint.is_some(),
                        valid: i.valid,
                        columns: cols,
                        comment: None,
                        origin: Some(iname.clone()),
                    },
                );
            }
            snap.tables.insert(name.clone(), ts);
        }
        for (name, s) in &cat.sequences {
            if s.identity {
                continue;
            }
            snap.sequences.insert(
                name.clone(),
                SequenceSnap {
                    data_type: s.data_type.clone(),
                    start: s.start,
                    increment: s.increment,
                    min: s.min,
                    max: s.max,
                    cache: s.cache,
                    cycle: s.cycle,
                    owned_by: s.owned_by.clone(),
                    comment: None,
                },
            );
        }
        for (name, e) in &cat.enums {
            snap.types.insert(
                name.clone(),
                TypeSnap::Enum {
                    labels: e.labels.clone(),
                    comment: None,
                },
            );
        }
        snap
    }

    /// Every difference between `self` (before) and `after`. Empty means the two schemas are
    /// structurally identical for everything the snapshot covers.
    pub fn diff(&self, after: &CatalogSnapshot) -> Vec<Mismatch> {
        let mut out = Vec::new();
        let mut push = |object: String, what: &str, b: Option<String>, a: Option<String>| {
            let column_order_only = what == "column order";
            out.push(Mismatch {
                object,
                what: what.to_string(),
                before: b,
                after: a,
                column_order_only,
            });
        };
        fn cmp_opt<T: PartialEq + std::fmt::Debug>(
            push: &mut Push<'_>,
            object: &str,
            what: &str,
            b: &T,
            a: &T,
            show: impl Fn(&T) -> Option<String>,
        ) {
            if b != a {
                push(object.to_string(), what, show(b), show(a));
            }
        }
        let s = |o: &Option<String>| o.clone();
        for (name, bt) in &self.tables {
            let obj = format!("table {name}");
            let Some(at) = after.tables.get(name) else {
                push(
                    obj,
                    "missing after the round trip",
                    Some("exists".into()),
                    None,
                );
                continue;
            };
            cmp_opt(&mut push, &obj, "kind", &bt.kind, &at.kind, |v| {
                Some(v.clone())
            });
            cmp_opt(
                &mut push,
                &obj,
                "unlogged",
                &bt.unlogged,
                &at.unlogged,
                |v| Some(v.to_string()),
            );
            cmp_opt(&mut push, &obj, "comment", &bt.comment, &at.comment, s);
            cmp_opt(
                &mut push,
                &obj,
                "partition key",
                &bt.partition_key,
                &at.partition_key,
                s,
            );
            cmp_opt(
                &mut push,
                &obj,
                "partition of",
                &bt.partition_of,
                &at.partition_of,
                |v| v.as_ref().map(|(p, b)| format!("{p} {b}")),
            );
            cmp_opt(
                &mut push,
                &obj,
                "row level security",
                &bt.row_security,
                &at.row_security,
                |v| Some(v.to_string()),
            );
            cmp_opt(
                &mut push,
                &obj,
                "storage parameters",
                &bt.options,
                &at.options,
                s,
            );
            for bc in &bt.columns {
                let cobj = format!("column {name}.{}", bc.name);
                let Some(ac) = at.column(&bc.name) else {
                    push(
                        cobj,
                        "missing after the round trip",
                        Some(bc.data_type.clone()),
                        None,
                    );
                    continue;
                };
                cmp_opt(
                    &mut push,
                    &cobj,
                    "type",
                    &bc.data_type,
                    &ac.data_type,
                    |v| Some(v.clone()),
                );
                cmp_opt(
                    &mut push,
                    &cobj,
                    "not null",
                    &bc.not_null,
                    &ac.not_null,
                    |v| Some(v.to_string()),
                );
                cmp_opt(&mut push, &cobj, "default", &bc.default, &ac.default, s);
                cmp_opt(
                    &mut push,
                    &cobj,
                    "collation",
                    &bc.collation,
                    &ac.collation,
                    s,
                );
                cmp_opt(&mut push, &cobj, "identity", &bc.identity, &ac.identity, s);
                cmp_opt(
                    &mut push,
                    &cobj,
                    "generated",
                    &bc.generated,
                    &ac.generated,
                    s,
                );
                cmp_opt(&mut push, &cobj, "comment", &bc.comment, &ac.comment, s);
            }
            for ac in &at.columns {
                if bt.column(&ac.name).is_none() {
                    push(
                        format!("column {name}.{}", ac.name),
                        "extra after the round trip",
                        None,
                        Some(ac.data_type.clone()),
                    );
                }
            }
            let order = |t: &TableSnap, other: &TableSnap| -> Vec<String> {
                t.columns
                    .iter()
                    .filter(|c| other.column(&c.name).is_some())
                    .map(|c| c.name.clone())
                    .collect()
            };
            let (bo, ao) = (order(bt, at), order(at, bt));
            if bo != ao {
                push(
                    obj.clone(),
                    "column order",
                    Some(bo.join(", ")),
                    Some(ao.join(", ")),
                );
            }
            for (cn, bc) in &bt.constraints {
                let cobj = format!("constraint {cn} on {name}");
                let Some(ac) = at.constraints.get(cn) else {
                    push(
                        cobj,
                        "missing after the round trip",
                        Some(bc.definition.clone()),
                        None,
                    );
                    continue;
                };
                cmp_opt(
                    &mut push,
                    &cobj,
                    "definition",
                    &bc.definition,
                    &ac.definition,
                    |v| Some(v.clone()),
                );
                cmp_opt(
                    &mut push,
                    &cobj,
                    "validated",
                    &bc.validated,
                    &ac.validated,
                    |v| Some(v.to_string()),
                );
                cmp_opt(&mut push, &cobj, "comment", &bc.comment, &ac.comment, s);
            }
            for (cn, ac) in &at.constraints {
                if !bt.constraints.contains_key(cn) {
                    push(
                        format!("constraint {cn} on {name}"),
                        "extra after the round trip",
                        None,
                        Some(ac.definition.clone()),
                    );
                }
            }
            diff_indexes(&mut push, &bt.indexes, &at.indexes);
            for (tn, bd) in &bt.triggers {
                match at.triggers.get(tn) {
                    None => push(
                        format!("trigger {tn} on {name}"),
                        "missing after the round trip",
                        Some(bd.clone()),
                        None,
                    ),
                    Some(ad) if ad != bd => push(
                        format!("trigger {tn} on {name}"),
                        "definition",
                        Some(bd.clone()),
                        Some(ad.clone()),
                    ),
                    _ => {}
                }
            }
            for (tn, ad) in &at.triggers {
                if !bt.triggers.contains_key(tn) {
                    push(
                        format!("trigger {tn} on {name}"),
                        "extra after the round trip",
                        None,
                        Some(ad.clone()),
                    );
                }
            }
        }
        for name in after.tables.keys() {
            if !self.tables.contains_key(name) {
                push(
                    format!("table {name}"),
                    "extra after the round trip",
                    None,
                    Some("exists".into()),
                );
            }
        }
        diff_map(
            &mut push,
            "sequence",
            &self.sequences,
            &after.sequences,
            |v| {
                format!(
                    "AS {} INCREMENT {} MINVALUE {} MAXVALUE {} START {} CACHE {}{}{}",
                    v.data_type,
                    v.increment,
                    v.min,
                    v.max,
                    v.start,
                    v.cache,
                    if v.cycle { " CYCLE" } else { "" },
                    v.owned_by
                        .as_ref()
                        .map(|(t, c)| format!(" OWNED BY {t}.{c}"))
                        .unwrap_or_default()
                )
            },
        );
        for (name, bv) in &self.views {
            if let Some(av) = after.views.get(name) {
                diff_indexes(&mut push, &bv.indexes, &av.indexes);
            }
        }
        diff_map(&mut push, "view", &self.views, &after.views, |v| {
            format!(
                "{}{}{}",
                if v.materialized { "materialized: " } else { "" },
                v.definition,
                v.comment
                    .as_deref()
                    .map(|c| format!(" -- {c}"))
                    .unwrap_or_default()
            )
        });
        diff_map(&mut push, "type", &self.types, &after.types, |v| match v {
            TypeSnap::Enum { labels, comment } => format!(
                "ENUM ({}){}",
                labels
                    .iter()
                    .map(|l| crate::names::quote_literal(l))
                    .collect::<Vec<_>>()
                    .join(", "),
                comment
                    .as_deref()
                    .map(|c| format!(" -- {c}"))
                    .unwrap_or_default()
            ),
            TypeSnap::Domain {
                definition,
                comment,
            }
            | TypeSnap::Composite {
                definition,
                comment,
            } => {
                format!(
                    "{definition}{}",
                    comment
                        .as_deref()
                        .map(|c| format!(" -- {c}"))
                        .unwrap_or_default()
                )
            }
        });
        diff_map(
            &mut push,
            "function",
            &self.functions,
            &after.functions,
            |v| {
                format!(
                    "{}{}",
                    v.definition,
                    v.comment
                        .as_deref()
                        .map(|c| format!(" -- {c}"))
                        .unwrap_or_default()
                )
            },
        );
        diff_map(
            &mut push,
            "extension",
            &self.extensions,
            &after.extensions,
            |v| v.clone(),
        );
        let bs: BTreeMap<String, ()> = self.schemas.iter().map(|s| (s.clone(), ())).collect();
        let as_: BTreeMap<String, ()> = after.schemas.iter().map(|s| (s.clone(), ())).collect();
        diff_map(&mut push, "schema", &bs, &as_, |_| "exists".into());
        out.sort();
        out
    }
}

fn diff_indexes(
    push: &mut Push<'_>,
    before: &BTreeMap<String, IndexSnap>,
    after: &BTreeMap<String, IndexSnap>,
) {
    for (name, b) in before {
        let obj = format!("index {name}");
        match after.get(name) {
            None => push(
                obj,
                "missing after the round trip",
                Some(b.definition.clone()),
                None,
            ),
            Some(a) => {
                if a.definition != b.definition {
                    push(
                        obj.clone(),
                        "definition",
                        Some(b.definition.clone()),
                        Some(a.definition.clone()),
                    );
                }
                if a.valid != b.valid {
                    push(
                        obj.clone(),
                        "valid",
                        Some(b.valid.to_string()),
                        Some(a.valid.to_string()),
                    );
                }
                if a.comment != b.comment {
                    push(obj, "comment", b.comment.clone(), a.comment.clone());
                }
            }
        }
    }
    for (name, a) in after {
        if !before.contains_key(name) {
            push(
                format!("index {name}"),
                "extra after the round trip",
                None,
                Some(a.definition.clone()),
            );
        }
    }
}

fn diff_map<T: PartialEq>(
    push: &mut Push<'_>,
    kind: &str,
    before: &BTreeMap<String, T>,
    after: &BTreeMap<String, T>,
    show: impl Fn(&T) -> String,
) {
    for (name, b) in before {
        match after.get(name) {
            None => push(
                format!("{kind} {name}"),
                "missing after the round trip",
                Some(show(b)),
                None,
            ),
            Some(a) if a != b => push(
                format!("{kind} {name}"),
                "definition",
                Some(show(b)),
                Some(show(a)),
            ),
            _ => {}
        }
    }
    for (name, a) in after {
        if !before.contains_key(name) {
            push(
                format!("{kind} {name}"),
                "extra after the round trip",
                None,
                Some(show(a)),
            );
        }
    }
}

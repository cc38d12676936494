//! The set-based pg_catalog queries behind [`introspect_schemas`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::postgres::PgRow;
use sqlx::{Connection as _, PgConnection, PgPool, Row as _};

use super::{
    Catalog, Column, Constraint, ConstraintKind, EnumType, FkAction, ForeignKey, Identity, Index,
    Persistence, QualifiedName, Sequence, Table, TableKind,
};
use crate::TopologyError;

const SCHEMAS_SQL: &str =
    "SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname = ANY($1)";

const TABLES_SQL: &str = r#"
SELECT n.nspname::text AS schema, c.relname::text AS name, c.oid::int8 AS oid,
       c.relfilenode::int8 AS relfilenode, c.relkind::text AS relkind,
       c.relpersistence::text AS persistence, c.reltuples::float8 AS reltuples,
       CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partkey,
       CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END AS partbound,
       pn.nspname::text AS parent_schema, pc.relname::text AS parent_name,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END AS viewdef,
       CASE WHEN c.relkind IN ('r', 'm') THEN c.relpages::int8 * pg_catalog.current_setting('block_size')::int8 ELSE 0 END AS table_bytes,
       COALESCE(toast.relpages::int8, 0) * pg_catalog.current_setting('block_size')::int8 AS toast_bytes,
       d.description AS comment
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class toast ON toast.oid = c.reltoastrelid
LEFT JOIN pg_catalog.pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
LEFT JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
LEFT JOIN pg_catalog.pg_description d
       ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0
WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
"#;

const COLUMNS_SQL: &str = r#"
SELECT n.nspname::text AS schema, c.relname::text AS tbl, a.attname::text AS name,
       c.oid::int8 AS tbl_oid, a.attnum::int4 AS attnum,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS data_type,
       a.attnotnull AS not_null,
       pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) AS default_expr,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN
            CASE WHEN cn.nspname = 'pg_catalog' THEN pg_catalog.quote_ident(co.collname)
                 ELSE pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END
       END AS collation,
       a.attidentity::text AS identity, a.attgenerated::text AS generated,
       d.description AS comment
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
LEFT JOIN pg_catalog.pg_description d
       ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = a.attnum
WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
  AND a.attnum > 0 AND NOT a.attisdropped
"#;

const CONSTRAINTS_SQL: &str = r#"
SELECT n.nspname::text AS schema, c.relname::text AS tbl, con.conname::text AS name,
       con.contype::text AS contype, pg_catalog.pg_get_constraintdef(con.oid) AS definition,
       con.convalidated AS validated, con.condeferrable AS deferrable, con.condeferred AS deferred,
       c.oid::int8 AS tbl_oid, con.conkey::int4[] AS conkey,
       rn.nspname::text AS ref_schema, rc.relname::text AS ref_table,
       con.confrelid::int8 AS ref_oid, con.confkey::int4[] AS confkey,
       con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update,
       CASE WHEN con.contype IN ('p', 'u', 'x') THEN ic.relname::text END AS index_name,
       d.description AS comment
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
LEFT JOIN pg_catalog.pg_class ic ON ic.oid = con.conindid
LEFT JOIN pg_catalog.pg_description d
       ON d.objoid = con.oid AND d.classoid = 'pg_catalog.pg_constraint'::regclass AND d.objsubid = 0
WHERE n.nspname = ANY($1) AND con.contype IN ('p', 'u', 'f', 'c', 'x', 't')
"#;

const INDEXES_SQL: &str = r#"
SELECT n.nspname::text AS schema, c.relname::text AS tbl, ic.relname::text AS name,
       ic.oid::int8 AS oid, ic.relfilenode::int8 AS relfilenode,
       pg_catalog.pg_get_indexdef(i.indexrelid) AS definition,
       i.indisunique AS is_unique, i.indisprimary AS is_primary, i.indisvalid AS is_valid,
       c.oid::int8 AS tbl_oid, string_to_array(i.indkey::text, ' ')::int4[] AS indkey, i.indnkeyatts::int4 AS nkeyatts,
       con.conname::text AS constraint_name,
       ic.relpages::int8 * pg_catalog.current_setting('block_size')::int8 AS bytes
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_constraint con
       ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'm')
"#;

const ATTNAMES_SQL: &str = "SELECT attrelid::int8, attnum::int4, attname::text FROM pg_catalog.pg_attribute \
     WHERE attrelid = ANY($1::int8[]::oid[]) AND attnum > 0 AND NOT attisdropped";

const SEQUENCES_SQL: &str = r#"
SELECT n.nspname::text AS schema, c.relname::text AS name,
       pg_catalog.format_type(s.seqtypid, NULL) AS data_type,
       s.seqstart AS start, s.seqincrement AS increment, s.seqmin AS min, s.seqmax AS max,
       s.seqcache AS cache, s.seqcycle AS cycle,
       dc.relname::text AS owner_table, da.attname::text AS owner_column, dep.deptype::text AS deptype
FROM pg_catalog.pg_sequence s
JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_depend dep
       ON dep.classid = 'pg_catalog.pg_class'::regclass AND dep.objid = c.oid
      AND dep.refclassid = 'pg_catalog.pg_class'::regclass AND dep.deptype IN ('a', 'i')
LEFT JOIN pg_catalog.pg_class dc ON dc.oid = dep.refobjid
LEFT JOIN pg_catalog.pg_attribute da ON da.attrelid = dep.refobjid AND da.attnum = dep.refobjsubid
WHERE n.nspname = ANY($1)
"#;

const ENUMS_SQL: &str = r#"
SELECT n.nspname::text AS schema, t.typname::text AS name,
       array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid
WHERE n.nspname = ANY($1)
GROUP BY n.nspname, t.typname
"#;

/// Introspect every schema in `schemas` (one database) over `pool`. See
/// [`introspect_schemas_conn`] for what is read.
///
/// When the pool allows several connections and there are many schemas (≥ 200), the schemas
/// are split into up to `min(max_connections, 8)` contiguous chunks introspected concurrently,
/// one connection each (each chunk is one consistent snapshot). A fresh server backend spends
/// most of the time loading the catalog entries of the schemas it reads, so splitting by
/// schema (rather than by query) divides that work.
pub async fn introspect_schemas(
    pool: &PgPool,
    schemas: &[String],
) -> Result<BTreeMap<String, Catalog>, TopologyError> {
    const MIN_CHUNK: usize = 100;
    let par = (pool.options().get_max_connections() as usize)
        .min(8)
        .min(schemas.len() / MIN_CHUNK)
        .max(1);
    let chunk = schemas.len().div_ceil(par).max(1);
    let parts = futures::future::try_join_all(schemas.chunks(chunk).map(|part| async move {
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| TopologyError::query(target(part), "acquire connection", e))?;
        introspect_schemas_conn(&mut conn, part).await
    }))
    .await?;
    let mut out = BTreeMap::new();
    for p in parts {
        out.extend(p);
    }
    Ok(out)
}

/// Introspect one schema.
pub async fn introspect_schema(pool: &PgPool, schema: &str) -> Result<Catalog, TopologyError> {
    let schemas = [schema.to_string()];
    let mut all = introspect_schemas(pool, &schemas).await?;
    all.remove(schema)
        .ok_or_else(|| TopologyError::SchemaNotFound {
            target: target(&schemas),
            schema: schema.to_string(),
        })
}

fn target(schemas: &[String]) -> String {
    match schemas {
        [] => "no schemas".to_string(),
        [one] => format!("schema {one}"),
        [first, ..] => format!("{} schemas ({first}, ...)", schemas.len()),
    }
}

fn get<'r, T>(row: &'r PgRow, col: &str, tgt: &str) -> Result<T, TopologyError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(col)
        .map_err(|e| TopologyError::query(tgt.to_string(), format!("decode column {col}"), e))
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// Introspect every schema in `schemas` of the connected database in seven set-based queries
/// (eight when foreign keys reference tables outside `schemas`, whose column names are then
/// fetched once), inside one `REPEATABLE READ READ ONLY` transaction with an empty `search_path` (so
/// definitions are schema-qualified). Returns one [`Catalog`] per schema; a requested schema
/// that does not exist is a [`TopologyError::SchemaNotFound`].
pub async fn introspect_schemas_conn(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<BTreeMap<String, Catalog>, TopologyError> {
    let tgt = target(schemas);
    let q = |what: &'static str| {
        let tgt = tgt.clone();
        move |e: sqlx::Error| TopologyError::query(tgt, what, e)
    };
    let mut tx = conn.begin().await.map_err(q("begin"))?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(q("set transaction"))?;
    // Only pg_catalog is read and no size function is called, so a tenant table locked by
    // another session (ACCESS EXCLUSIVE) never blocks the fleet scan; the timeouts are a
    // safety net against a stuck catalog.
    sqlx::query(
        "SELECT pg_catalog.set_config('search_path', '', true), \
                pg_catalog.set_config('lock_timeout', '10s', true), \
                pg_catalog.set_config('statement_timeout', '300s', true)",
    )
    .execute(&mut *tx)
    .await
    .map_err(q("set search_path"))?;

    let found: Vec<String> = sqlx::query_scalar(SCHEMAS_SQL)
        .bind(schemas)
        .fetch_all(&mut *tx)
        .await
        .map_err(q("schemas"))?;
    let mut out: BTreeMap<String, Catalog> = BTreeMap::new();
    for s in schemas {
        if !found.contains(s) {
            return Err(TopologyError::SchemaNotFound {
                target: tgt.clone(),
                schema: s.clone(),
            });
        }
        out.insert(
            s.clone(),
            Catalog {
                schema: s.clone(),
                ..Default::default()
            },
        );
    }

    // Tables.
    let rows = sqlx::query(TABLES_SQL)
        .bind(schemas)
        .fetch_all(&mut *tx)
        .await
        .map_err(q("tables"))?;
    for r in &rows {
        let schema: String = get(r, "schema", &tgt)?;
        let name: String = get(r, "name", &tgt)?;
        let reltuples: f64 = get(r, "reltuples", &tgt)?;
        let parent_schema: Option<String> = get(r, "parent_schema", &tgt)?;
        let parent_name: Option<String> = get(r, "parent_name", &tgt)?;
        let persistence: String = get(r, "persistence", &tgt)?;
        let relkind: String = get(r, "relkind", &tgt)?;
        let t = Table {
            name: name.clone(),
            oid: to_u32(get(r, "oid", &tgt)?),
            relfilenode: to_u32(get(r, "relfilenode", &tgt)?),
            kind: TableKind::from_relkind(&relkind),
            persistence: match persistence.as_str() {
                "u" => Persistence::Unlogged,
                "t" => Persistence::Temporary,
                _ => Persistence::Permanent,
            },
            partition_key: get(r, "partkey", &tgt)?,
            partition_of: match (parent_schema, parent_name) {
                (Some(s), Some(n)) => Some(QualifiedName::new(s, n)),
                _ => None,
            },
            partition_bound: get(r, "partbound", &tgt)?,
            view_definition: get::<Option<String>>(r, "viewdef", &tgt)?
                .map(|v| v.trim().to_string()),
            columns: BTreeMap::new(),
            constraints: BTreeMap::new(),
            indexes: BTreeMap::new(),
            // Completed below: + index sizes.
            total_bytes: get::<i64>(r, "table_bytes", &tgt)? + get::<i64>(r, "toast_bytes", &tgt)?,
            table_bytes: get(r, "table_bytes", &tgt)?,
            row_estimate: if reltuples < 0.0 {
                None
            } else {
                Some(reltuples.round() as i64)
            },
            comment: get(r, "comment", &tgt)?,
        };
        if let Some(cat) = out.get_mut(&schema) {
            cat.tables.insert(name, t);
        }
    }

    // Columns. `attnames` maps (table oid, attnum) to the column name, to resolve key arrays.
    let mut attnames: HashMap<(i64, i32), String> = HashMap::new();
    let rows = sqlx::query(COLUMNS_SQL)
        .bind(schemas)
        .fetch_all(&mut *tx)
        .await
        .map_err(q("columns"))?;
    for r in &rows {
        let schema: String = get(r, "schema", &tgt)?;
        let tbl: String = get(r, "tbl", &tgt)?;
        let name: String = get(r, "name", &tgt)?;
        let identity: String = get(r, "identity", &tgt)?;
        let generated: String = get(r, "generated", &tgt)?;
        let expr: Option<String> = get(r, "default_expr", &tgt)?;
        let is_generated = generated == "s" || generated == "v";
        let tbl_oid: i64 = get(r, "tbl_oid", &tgt)?;
        let attnum: i32 = get(r, "attnum", &tgt)?;
        let col = Column {
            name: name.clone(),
            // Attribute number for now; made 1-based and dense below.
            position: attnum,
            data_type: get(r, "data_type", &tgt)?,
            not_null: get(r, "not_null", &tgt)?,
            default: if is_generated { None } else { expr.clone() },
            collation: get(r, "collation", &tgt)?,
            identity: match identity.as_str() {
                "a" => Some(Identity::Always),
                "d" => Some(Identity::ByDefault),
                _ => None,
            },
            generated: if is_generated { expr } else { None },
            comment: get(r, "comment", &tgt)?,
        };
        attnames.insert((tbl_oid, attnum), name.clone());
        if let Some(t) = out.get_mut(&schema).and_then(|c| c.tables.get_mut(&tbl)) {
            t.columns.insert(name, col);
        }
    }

    for cat in out.values_mut() {
        for t in cat.tables.values_mut() {
            let mut nums: Vec<i32> = t.columns.values().map(|c| c.position).collect();
            nums.sort_unstable();
            for c in t.columns.values_mut() {
                c.position = nums
                    .binary_search(&c.position)
                    .map(|i| i as i32 + 1)
                    .unwrap_or(0);
            }
        }
    }

    // Constraints.
    let rows = sqlx::query(CONSTRAINTS_SQL)
        .bind(schemas)
        .fetch_all(&mut *tx)
        .await
        .map_err(q("constraints"))?;
    // Referenced tables outside the introspected schemas (e.g. `shared.plans`): one more query
    // for their column names.
    let mut foreign_oids: BTreeSet<i64> = BTreeSet::new();
    for r in &rows {
        let ref_oid: i64 = get(r, "ref_oid", &tgt)?;
        let confkey: Option<Vec<i32>> = get(r, "confkey", &tgt)?;
        if ref_oid != 0
            && confkey
                .unwrap_or_default()
                .iter()
                .any(|k| !attnames.contains_key(&(ref_oid, *k)))
        {
            foreign_oids.insert(ref_oid);
        }
    }
    if !foreign_oids.is_empty() {
        let oids: Vec<i64> = foreign_oids.into_iter().collect();
        let extra: Vec<(i64, i32, String)> = sqlx::query_as(ATTNAMES_SQL)
            .bind(&oids)
            .fetch_all(&mut *tx)
            .await
            .map_err(q("referenced columns"))?;
        for (oid, num, name) in extra {
            attnames.insert((oid, num), name);
        }
    }
    let names_of = |oid: i64, keys: &[i32]| -> Vec<String> {
        keys.iter()
            .map(|k| {
                attnames
                    .get(&(oid, *k))
                    .cloned()
                    .unwrap_or_else(|| format!("#{k}"))
            })
            .collect()
    };
    for r in &rows {
        let schema: String = get(r, "schema", &tgt)?;
        let tbl: String = get(r, "tbl", &tgt)?;
        let name: String = get(r, "name", &tgt)?;
        let contype: String = get(r, "contype", &tgt)?;
        let Some(kind) = ConstraintKind::from_contype(&contype) else {
            continue;
        };
        let tbl_oid: i64 = get(r, "tbl_oid", &tgt)?;
        let conkey: Option<Vec<i32>> = get(r, "conkey", &tgt)?;
        let ref_oid: i64 = get(r, "ref_oid", &tgt)?;
        let confkey: Option<Vec<i32>> = get(r, "confkey", &tgt)?;
        let ref_schema: Option<String> = get(r, "ref_schema", &tgt)?;
        let ref_table: Option<String> = get(r, "ref_table", &tgt)?;
        let on_delete: String = get(r, "on_delete", &tgt)?;
        let on_update: String = get(r, "on_update", &tgt)?;
        let foreign_key = match (kind, ref_schema, ref_table) {
            (ConstraintKind::ForeignKey, Some(s), Some(t)) => Some(ForeignKey {
                references: QualifiedName::new(s, t),
                referenced_columns: names_of(ref_oid, &confkey.unwrap_or_default()),
                on_delete: FkAction::from_code(&on_delete),
                on_update: FkAction::from_code(&on_update),
            }),
            _ => None,
        };
        let c = Constraint {
            name: name.clone(),
            kind,
            definition: get(r, "definition", &tgt)?,
            validated: get(r, "validated", &tgt)?,
            deferrable: get(r, "deferrable", &tgt)?,
            deferred: get(r, "deferred", &tgt)?,
            columns: names_of(tbl_oid, &conkey.unwrap_or_default()),
            foreign_key,
            index: get(r, "index_name", &tgt)?,
            comment: get(r, "comment", &tgt)?,
        };
        if let Some(t) = out.get_mut(&schema).and_then(|c| c.tables.get_mut(&tbl)) {
            t.constraints.insert(name, c);
        }
    }

    // Indexes.
    let rows = sqlx::query(INDEXES_SQL)
        .bind(schemas)
        .fetch_all(&mut *tx)
        .await
        .map_err(q("indexes"))?;
    for r in &rows {
        let schema: String = get(r, "schema", &tgt)?;
        let tbl: String = get(r, "tbl", &tgt)?;
        let name: String = get(r, "name", &tgt)?;
        let ix = Index {
            name: name.clone(),
            oid: to_u32(get(r, "oid", &tgt)?),
            relfilenode: to_u32(get(r, "relfilenode", &tgt)?),
            definition: get(r, "definition", &tgt)?,
            unique: get(r, "is_unique", &tgt)?,
            primary: get(r, "is_primary", &tgt)?,
            valid: get(r, "is_valid", &tgt)?,
            columns: {
                let tbl_oid: i64 = get(r, "tbl_oid", &tgt)?;
                let indkey: Vec<i32> = get(r, "indkey", &tgt)?;
                let nkey: i32 = get(r, "nkeyatts", &tgt)?;
                indkey
                    .iter()
                    .take(usize::try_from(nkey).unwrap_or(0))
                    .map(|k| {
                        if *k == 0 {
                            "(expression)".to_string()
                        } else {
                            attnames
                                .get(&(tbl_oid, *k))
                                .cloned()
                                .unwrap_or_else(|| format!("#{k}"))
                        }
                    })
                    .collect()
            },
            constraint: get(r, "constraint_name", &tgt)?,
            bytes: get(r, "bytes", &tgt)?,
        };
        if let Some(t) = out.get_mut(&schema).and_then(|c| c.tables.get_mut(&tbl)) {
            t.total_bytes += ix.bytes;
            t.indexes.insert(name, ix);
        }
    }

    // Sequences.
    let rows = sqlx::query(SEQUENCES_SQL)
        .bind(schemas)
        .fetch_all(&mut *tx)
        .await
        .map_err(q("sequences"))?;
    for r in &rows {
        let schema: String = get(r, "schema", &tgt)?;
        let name: String = get(r, "name", &tgt)?;
        let owner_table: Option<String> = get(r, "owner_table", &tgt)?;
        let owner_column: Option<String> = get(r, "owner_column", &tgt)?;
        let deptype: Option<String> = get(r, "deptype", &tgt)?;
        let s = Sequence {
            name: name.clone(),
            data_type: get(r, "data_type", &tgt)?,
            start: get(r, "start", &tgt)?,
            increment: get(r, "increment", &tgt)?,
            min: get(r, "min", &tgt)?,
            max: get(r, "max", &tgt)?,
            cache: get(r, "cache", &tgt)?,
            cycle: get(r, "cycle", &tgt)?,
            owned_by: owner_table.zip(owner_column),
            identity: deptype.as_deref() == Some("i"),
        };
        if let Some(cat) = out.get_mut(&schema) {
            cat.sequences.insert(name, s);
        }
    }

    // Enums.
    let rows = sqlx::query(ENUMS_SQL)
        .bind(schemas)
        .fetch_all(&mut *tx)
        .await
        .map_err(q("enums"))?;
    for r in &rows {
        let schema: String = get(r, "schema", &tgt)?;
        let name: String = get(r, "name", &tgt)?;
        let e = EnumType {
            name: name.clone(),
            labels: get(r, "labels", &tgt)?,
        };
        if let Some(cat) = out.get_mut(&schema) {
            cat.enums.insert(name, e);
        }
    }

    tx.rollback().await.map_err(q("end transaction"))?;
    Ok(out)
}

//! The set-based pg_catalog queries behind [`introspect_schemas`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::postgres::PgRow;
use sqlx::{Connection as _, PgConnection, PgPool, Row as _};

use super::sql;
use super::{
    Catalog, Column, CompositeType, Constraint, ConstraintType, Domain, EnumType, ForeignKey,
    Function, FunctionKind, Identity, Index, Persistence, Sequence, Table, TableKind, TableName,
    Trigger,
};
use crate::TopologyError;

/// Attribute names by (table oid, attnum), to resolve key arrays.
type AttNames = HashMap<(i64, i32), String>;

/// What every reader needs: the open transaction, the schemas, the error target and the
/// catalogs being filled.
struct Reader<'c> {
    conn: &'c mut PgConnection,
    schemas: &'c [String],
    tgt: String,
    out: BTreeMap<String, Catalog>,
}

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

/// Introspect every schema in `schemas` of the connected database, one set-based query per
/// object class (see the module documentation; one more when foreign keys reference tables
/// outside `schemas`, whose column names are then fetched once), inside one `REPEATABLE READ
/// READ ONLY` transaction with an empty `search_path` (so definitions are schema-qualified).
/// Returns one [`Catalog`] per schema (without [`Catalog::schemas`]); a requested schema that
/// does not exist is a [`TopologyError::SchemaNotFound`].
pub async fn introspect_schemas_conn(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<BTreeMap<String, Catalog>, TopologyError> {
    introspect_in_snapshot(conn, schemas, false).await
}

/// Introspect one schema with everything an exact round trip compares, including the
/// database's non-system schemas ([`Catalog::schemas`]): the catalog the rollback proof takes
/// before and after.
pub async fn introspect_schema_conn(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<Catalog, TopologyError> {
    let schemas = [schema.to_string()];
    one(introspect_in_snapshot(conn, &schemas, true).await?, schema)
}

/// [`introspect_schema_conn`] inside a transaction block the caller has opened on `conn` (it
/// must be open: the empty `search_path` is set transaction-locally; and it may have changed the
/// schema: the rollback proof reads the catalog after running a migration
/// it then rolls back). The transaction's `search_path` is emptied for the reads and restored
/// afterwards; nothing else of the transaction changes.
pub async fn introspect_schema_in_transaction(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<Catalog, TopologyError> {
    let schemas = [schema.to_string()];
    let tgt = target(&schemas);
    let q = |what: &'static str| {
        let tgt = tgt.clone();
        move |e: sqlx::Error| TopologyError::query(tgt, what, e)
    };
    let old: String = sqlx::query_scalar(
        "SELECT pg_catalog.current_setting('search_path'), pg_catalog.set_config('search_path', '', true)",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(q("set search_path"))?;
    let result = read_catalogs(conn, &schemas, true).await;
    sqlx::query("SELECT pg_catalog.set_config('search_path', $1, true)")
        .bind(&old)
        .execute(&mut *conn)
        .await
        .map_err(q("restore search_path"))?;
    one(result?, schema)
}

fn one(mut all: BTreeMap<String, Catalog>, schema: &str) -> Result<Catalog, TopologyError> {
    all.remove(schema)
        .ok_or_else(|| TopologyError::SchemaNotFound {
            target: target(&[schema.to_string()]),
            schema: schema.to_string(),
        })
}

async fn introspect_in_snapshot(
    conn: &mut PgConnection,
    schemas: &[String],
    with_schema_list: bool,
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
    // safety net against a stuck catalog. JIT is off: over hundreds of schemas the catalog
    // tables' estimates pass `jit_above_cost`, and compiling the query costs more than running
    // it (columns of 1,000 schemas: 390 ms with JIT, 155 ms without; BENCHMARKS.md).
    sqlx::query(
        "SELECT pg_catalog.set_config('search_path', '', true), \
                pg_catalog.set_config('lock_timeout', '10s', true), \
                pg_catalog.set_config('statement_timeout', '300s', true), \
                pg_catalog.set_config('jit', 'off', true)",
    )
    .execute(&mut *tx)
    .await
    .map_err(q("set search_path"))?;
    let out = read_catalogs(&mut tx, schemas, with_schema_list).await?;
    tx.rollback().await.map_err(q("end transaction"))?;
    Ok(out)
}

/// Every reader in turn, with the `search_path` already empty.
async fn read_catalogs(
    conn: &mut PgConnection,
    schemas: &[String],
    with_schema_list: bool,
) -> Result<BTreeMap<String, Catalog>, TopologyError> {
    let mut r = Reader {
        conn,
        schemas,
        tgt: target(schemas),
        out: BTreeMap::new(),
    };
    r.schemas_found().await?;
    r.tables().await?;
    let mut attnames = r.columns().await?;
    r.constraints(&mut attnames).await?;
    r.indexes(&attnames).await?;
    r.sequences().await?;
    r.types().await?;
    r.functions().await?;
    r.triggers().await?;
    r.database_objects(with_schema_list).await?;
    Ok(r.out)
}

impl Reader<'_> {
    fn err(&self, what: &'static str) -> impl FnOnce(sqlx::Error) -> TopologyError + use<> {
        let tgt = self.tgt.clone();
        move |e| TopologyError::query(tgt, what, e)
    }

    async fn rows(
        &mut self,
        sql: &'static str,
        what: &'static str,
    ) -> Result<Vec<PgRow>, TopologyError> {
        let err = self.err(what);
        sqlx::query(sql)
            .bind(self.schemas)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(err)
    }

    fn get<'r, T>(&self, row: &'r PgRow, col: &str) -> Result<T, TopologyError>
    where
        T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        get(row, col, &self.tgt)
    }

    fn table_mut(&mut self, schema: &str, table: &str) -> Option<&mut Table> {
        self.out
            .get_mut(schema)
            .and_then(|c| c.tables.get_mut(table))
    }

    async fn schemas_found(&mut self) -> Result<(), TopologyError> {
        let err = self.err("schemas");
        let found: Vec<String> = sqlx::query_scalar(sql::SCHEMAS)
            .bind(self.schemas)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(err)?;
        for s in self.schemas {
            if !found.contains(s) {
                return Err(TopologyError::SchemaNotFound {
                    target: self.tgt.clone(),
                    schema: s.clone(),
                });
            }
            self.out.insert(
                s.clone(),
                Catalog {
                    schema: s.clone(),
                    ..Default::default()
                },
            );
        }
        Ok(())
    }

    async fn tables(&mut self) -> Result<(), TopologyError> {
        for r in &self.rows(sql::TABLES, "tables").await? {
            let schema: String = self.get(r, "schema")?;
            let name: String = self.get(r, "name")?;
            let reltuples: f64 = self.get(r, "reltuples")?;
            let parent_schema: Option<String> = self.get(r, "parent_schema")?;
            let parent_name: Option<String> = self.get(r, "parent_name")?;
            let persistence: String = self.get(r, "persistence")?;
            let relkind: String = self.get(r, "relkind")?;
            let table_bytes: i64 = self.get(r, "table_bytes")?;
            let t = Table {
                name: name.clone(),
                oid: to_u32(self.get(r, "oid")?),
                relfilenode: to_u32(self.get(r, "relfilenode")?),
                kind: TableKind::from_relkind(&relkind),
                persistence: match persistence.as_str() {
                    "u" => Persistence::Unlogged,
                    "t" => Persistence::Temporary,
                    _ => Persistence::Permanent,
                },
                partition_key: self.get(r, "partkey")?,
                partition_of: match (parent_schema, parent_name) {
                    (Some(s), Some(n)) => Some(TableName::new(s, n)),
                    _ => None,
                },
                partition_bound: self.get(r, "partbound")?,
                view_definition: self
                    .get::<Option<String>>(r, "viewdef")?
                    .map(|v| v.trim().to_string()),
                columns: BTreeMap::new(),
                constraints: BTreeMap::new(),
                indexes: BTreeMap::new(),
                // Completed by `indexes`: + index sizes.
                total_bytes: table_bytes + self.get::<i64>(r, "toast_bytes")?,
                table_bytes,
                row_estimate: if reltuples < 0.0 {
                    None
                } else {
                    Some(reltuples.round() as i64)
                },
                comment: self.get(r, "comment")?,
                triggers: BTreeMap::new(),
                row_security: self.get(r, "row_security")?,
                options: self
                    .get::<Option<String>>(r, "options")?
                    .filter(|o| !o.is_empty()),
            };
            if let Some(cat) = self.out.get_mut(&schema) {
                cat.tables.insert(name, t);
            }
        }
        Ok(())
    }

    /// Columns; returns the attribute names by (table oid, attnum).
    async fn columns(&mut self) -> Result<AttNames, TopologyError> {
        let mut attnames = AttNames::new();
        for r in &self.rows(sql::COLUMNS, "columns").await? {
            let schema: String = self.get(r, "schema")?;
            let tbl: String = self.get(r, "tbl")?;
            let name: String = self.get(r, "name")?;
            let identity: String = self.get(r, "identity")?;
            let generated: String = self.get(r, "generated")?;
            let expr: Option<String> = self.get(r, "default_expr")?;
            let is_generated = generated == "s" || generated == "v";
            let tbl_oid: i64 = self.get(r, "tbl_oid")?;
            let attnum: i32 = self.get(r, "attnum")?;
            let col = Column {
                name: name.clone(),
                // Attribute number for now; made 1-based and dense below.
                position: attnum,
                data_type: self.get(r, "data_type")?,
                not_null: self.get(r, "not_null")?,
                default: if is_generated { None } else { expr.clone() },
                collation: self.get(r, "collation")?,
                identity: match identity.as_str() {
                    "a" => Some(Identity::Always),
                    "d" => Some(Identity::ByDefault),
                    _ => None,
                },
                generated: if is_generated { expr } else { None },
                comment: self.get(r, "comment")?,
            };
            attnames.insert((tbl_oid, attnum), name.clone());
            if let Some(t) = self.table_mut(&schema, &tbl) {
                t.columns.insert(name, Box::new(col));
            }
        }
        for t in self.out.values_mut().flat_map(|c| c.tables.values_mut()) {
            let mut nums: Vec<i32> = t.columns.values().map(|c| c.position).collect();
            nums.sort_unstable();
            for c in t.columns.values_mut() {
                c.position = nums
                    .binary_search(&c.position)
                    .map(|i| i as i32 + 1)
                    .unwrap_or(0);
            }
        }
        Ok(attnames)
    }

    /// Constraints; adds the column names of referenced tables outside the introspected schemas
    /// (e.g. `shared.plans`) to `attnames`, with one more query.
    async fn constraints(&mut self, attnames: &mut AttNames) -> Result<(), TopologyError> {
        let rows = self.rows(sql::CONSTRAINTS, "constraints").await?;
        let mut foreign_oids: BTreeSet<i64> = BTreeSet::new();
        for r in &rows {
            let ref_oid: i64 = self.get(r, "ref_oid")?;
            let confkey: Option<Vec<i32>> = self.get(r, "confkey")?;
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
            let err = self.err("referenced columns");
            let extra: Vec<(i64, i32, String)> = sqlx::query_as(sql::ATTNAMES)
                .bind(&oids)
                .fetch_all(&mut *self.conn)
                .await
                .map_err(err)?;
            for (oid, num, name) in extra {
                attnames.insert((oid, num), name);
            }
        }
        for r in &rows {
            let contype: String = self.get(r, "contype")?;
            let Some(kind) = super::constraint_type_from_contype(&contype) else {
                continue;
            };
            let schema: String = self.get(r, "schema")?;
            let tbl: String = self.get(r, "tbl")?;
            let name: String = self.get(r, "name")?;
            let tbl_oid: i64 = self.get(r, "tbl_oid")?;
            let conkey: Option<Vec<i32>> = self.get(r, "conkey")?;
            let ref_oid: i64 = self.get(r, "ref_oid")?;
            let confkey: Option<Vec<i32>> = self.get(r, "confkey")?;
            let ref_schema: Option<String> = self.get(r, "ref_schema")?;
            let ref_table: Option<String> = self.get(r, "ref_table")?;
            let on_delete: String = self.get(r, "on_delete")?;
            let on_update: String = self.get(r, "on_update")?;
            let foreign_key = match (kind, ref_schema, ref_table) {
                (ConstraintType::ForeignKey, Some(s), Some(t)) => Some(ForeignKey {
                    references: TableName::new(s, t),
                    referenced_columns: names_of(attnames, ref_oid, &confkey.unwrap_or_default()),
                    on_delete: super::FkAction::from_code(&on_delete),
                    on_update: super::FkAction::from_code(&on_update),
                    index: self.get(r, "ref_index")?,
                }),
                _ => None,
            };
            let c = Constraint {
                name: name.clone(),
                kind,
                definition: self.get(r, "definition")?,
                validated: self.get(r, "validated")?,
                deferrable: self.get(r, "deferrable")?,
                deferred: self.get(r, "deferred")?,
                columns: names_of(attnames, tbl_oid, &conkey.unwrap_or_default()),
                foreign_key,
                index: self.get(r, "index_name")?,
                comment: self.get(r, "comment")?,
                inherited: self.get(r, "inherited")?,
            };
            if let Some(t) = self.table_mut(&schema, &tbl) {
                t.constraints.insert(name, Box::new(c));
            }
        }
        Ok(())
    }

    async fn indexes(&mut self, attnames: &AttNames) -> Result<(), TopologyError> {
        for r in &self.rows(sql::INDEXES, "indexes").await? {
            let schema: String = self.get(r, "schema")?;
            let tbl: String = self.get(r, "tbl")?;
            let name: String = self.get(r, "name")?;
            let tbl_oid: i64 = self.get(r, "tbl_oid")?;
            let indkey: Vec<i32> = self.get(r, "indkey")?;
            let nkey: i32 = self.get(r, "nkeyatts")?;
            let expr_cols: Option<Vec<i32>> = self.get(r, "expr_cols")?;
            let columns = indkey
                .iter()
                .take(usize::try_from(nkey).unwrap_or(0))
                .map(|k| {
                    if *k == 0 {
                        "(expression)".to_string()
                    } else {
                        names_of(attnames, tbl_oid, &[*k]).remove(0)
                    }
                })
                .collect();
            let mut deps: Vec<i32> = indkey.iter().copied().filter(|k| *k > 0).collect();
            deps.extend(expr_cols.unwrap_or_default());
            let mut depends_on = names_of(attnames, tbl_oid, &deps);
            depends_on.sort();
            depends_on.dedup();
            let ix = Index {
                name: name.clone(),
                oid: to_u32(self.get(r, "oid")?),
                relfilenode: to_u32(self.get(r, "relfilenode")?),
                definition: self.get(r, "definition")?,
                unique: self.get(r, "is_unique")?,
                primary: self.get(r, "is_primary")?,
                valid: self.get(r, "is_valid")?,
                columns,
                constraint: self.get(r, "constraint_name")?,
                bytes: self.get(r, "bytes")?,
                depends_on,
                comment: self.get(r, "comment")?,
            };
            if let Some(t) = self.table_mut(&schema, &tbl) {
                t.total_bytes += ix.bytes;
                t.indexes.insert(name, Box::new(ix));
            }
        }
        Ok(())
    }

    async fn sequences(&mut self) -> Result<(), TopologyError> {
        for r in &self.rows(sql::SEQUENCES, "sequences").await? {
            let schema: String = self.get(r, "schema")?;
            let name: String = self.get(r, "name")?;
            let owner_table: Option<String> = self.get(r, "owner_table")?;
            let owner_column: Option<String> = self.get(r, "owner_column")?;
            let deptype: Option<String> = self.get(r, "deptype")?;
            let s = Sequence {
                name: name.clone(),
                data_type: self.get(r, "data_type")?,
                start: self.get(r, "start")?,
                increment: self.get(r, "increment")?,
                min: self.get(r, "min")?,
                max: self.get(r, "max")?,
                cache: self.get(r, "cache")?,
                cycle: self.get(r, "cycle")?,
                owned_by: owner_table.zip(owner_column),
                identity: deptype.as_deref() == Some("i"),
                comment: self.get(r, "comment")?,
            };
            if let Some(cat) = self.out.get_mut(&schema) {
                cat.sequences.insert(name, s);
            }
        }
        Ok(())
    }

    /// Enums, domains and composite types.
    async fn types(&mut self) -> Result<(), TopologyError> {
        for r in &self.rows(sql::TYPES, "types").await? {
            let schema: String = self.get(r, "schema")?;
            let name: String = self.get(r, "name")?;
            let typtype: String = self.get(r, "typtype")?;
            let comment: Option<String> = self.get(r, "comment")?;
            let definition = self.get::<Option<String>>(r, "definition")?;
            let labels = self.get::<Option<Vec<String>>>(r, "labels")?;
            let Some(cat) = self.out.get_mut(&schema) else {
                continue;
            };
            match typtype.as_str() {
                "e" => {
                    let labels = labels.unwrap_or_default();
                    cat.enums.insert(
                        name.clone(),
                        EnumType {
                            name,
                            labels,
                            comment,
                        },
                    );
                }
                "d" => {
                    let definition = definition.unwrap_or_default();
                    cat.domains.insert(
                        name.clone(),
                        Domain {
                            name,
                            definition,
                            comment,
                        },
                    );
                }
                _ => {
                    let definition = definition.unwrap_or_default();
                    let c = CompositeType {
                        name: name.clone(),
                        definition,
                        comment,
                    };
                    cat.composites.insert(name, c);
                }
            }
        }
        Ok(())
    }

    async fn functions(&mut self) -> Result<(), TopologyError> {
        for r in &self.rows(sql::FUNCTIONS, "functions").await? {
            let schema: String = self.get(r, "schema")?;
            let name: String = self.get(r, "name")?;
            let arguments: String = self.get(r, "args")?;
            let prokind: String = self.get(r, "prokind")?;
            let f = Function {
                name: name.clone(),
                kind: match prokind.as_str() {
                    "p" => FunctionKind::Procedure,
                    "a" => FunctionKind::Aggregate,
                    _ => FunctionKind::Function,
                },
                definition: self.get(r, "definition")?,
                comment: self.get(r, "comment")?,
                arguments,
            };
            if let Some(cat) = self.out.get_mut(&schema) {
                cat.functions.insert(f.signature(), f);
            }
        }
        Ok(())
    }

    async fn triggers(&mut self) -> Result<(), TopologyError> {
        for r in &self.rows(sql::TRIGGERS, "triggers").await? {
            let schema: String = self.get(r, "schema")?;
            let tbl: String = self.get(r, "tbl")?;
            let name: String = self.get(r, "name")?;
            let t = Trigger {
                name: name.clone(),
                definition: self.get(r, "definition")?,
                enabled: self.get(r, "enabled")?,
            };
            if let Some(table) = self.table_mut(&schema, &tbl) {
                table.triggers.insert(name, t);
            }
        }
        Ok(())
    }

    /// Extensions (every catalog) and, when asked, the database's non-system schemas.
    async fn database_objects(&mut self, with_schema_list: bool) -> Result<(), TopologyError> {
        let err = self.err("extensions");
        let extensions: BTreeMap<String, String> =
            sqlx::query_as::<_, (String, String)>(sql::EXTENSIONS)
                .fetch_all(&mut *self.conn)
                .await
                .map_err(err)?
                .into_iter()
                .collect();
        let schemas: BTreeSet<String> = if with_schema_list {
            let err = self.err("schema list");
            sqlx::query_scalar::<_, String>(sql::ALL_SCHEMAS)
                .fetch_all(&mut *self.conn)
                .await
                .map_err(err)?
                .into_iter()
                .collect()
        } else {
            BTreeSet::new()
        };
        for cat in self.out.values_mut() {
            cat.extensions.clone_from(&extensions);
            cat.schemas.clone_from(&schemas);
        }
        Ok(())
    }
}

fn names_of(attnames: &AttNames, oid: i64, keys: &[i32]) -> Vec<String> {
    keys.iter()
        .map(|k| {
            attnames
                .get(&(oid, *k))
                .cloned()
                .unwrap_or_else(|| format!("#{k}"))
        })
        .collect()
}

//! The set-based `pg_catalog` queries behind [`super::introspect_schemas`]: one per object class,
//! each over every requested schema at once (`$1` is the schema-name array). They run with an
//! empty `search_path`, so every definition is schema-qualified and every built-in is reached
//! through `pg_catalog` itself. Objects that belong to an extension (`pg_depend.deptype = 'e'`)
//! are left out: the extension is recorded instead.

/// `alias.oid` is not a member of an extension in catalog `class`: one hashed subplan over the
/// extensions' `pg_depend` entries (found through the index on the referenced object), not a
/// lookup per row.
macro_rules! not_ext_member {
    ($class:literal, $alias:literal) => {
        concat!(
            $alias,
            ".oid NOT IN (SELECT x.objid FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_depend x \
             ON x.refclassid = 'pg_catalog.pg_extension'::regclass AND x.refobjid = e.oid \
             WHERE x.deptype = 'e' AND x.classid = 'pg_catalog.",
            $class,
            "'::regclass)"
        )
    };
}

pub(super) const SCHEMAS: &str =
    "SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname = ANY($1)";

pub(super) const ALL_SCHEMAS: &str = "SELECT nspname::text FROM pg_catalog.pg_namespace \
     WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'";

pub(super) const EXTENSIONS: &str = "SELECT e.extname::text, n.nspname::text \
     FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace \
     WHERE e.extname <> 'plpgsql'";

pub(super) const TABLES: &str = concat!(
    r#"
SELECT n.nspname::text AS schema, c.relname::text AS name, c.oid::int8 AS oid,
       c.relfilenode::int8 AS relfilenode, c.relkind::text AS relkind,
       c.relpersistence::text AS persistence, c.reltuples::float8 AS reltuples,
       CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partkey,
       CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid, true) END AS partbound,
       pn.nspname::text AS parent_schema, pc.relname::text AS parent_name,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid, true) END AS viewdef,
       CASE WHEN c.relkind IN ('r', 'm') THEN c.relpages::int8 * pg_catalog.current_setting('block_size')::int8 ELSE 0 END AS table_bytes,
       COALESCE(toast.relpages::int8, 0) * pg_catalog.current_setting('block_size')::int8 AS toast_bytes,
       (SELECT d.description FROM pg_catalog.pg_description d
        WHERE d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0) AS comment,
       c.relrowsecurity AS row_security,
       pg_catalog.array_to_string(c.reloptions, ',') AS options
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class toast ON toast.oid = c.reltoastrelid
LEFT JOIN pg_catalog.pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
LEFT JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'f', 'v', 'm') AND "#,
    not_ext_member!("pg_class", "c")
);

pub(super) const COLUMNS: &str = r#"
SELECT n.nspname::text AS schema, c.relname::text AS tbl, a.attname::text AS name,
       c.oid::int8 AS tbl_oid, a.attnum::int4 AS attnum,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS data_type,
       a.attnotnull AS not_null,
       pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) AS default_expr,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN
            CASE WHEN cn.nspname = 'pg_catalog' THEN pg_catalog.quote_ident(co.collname)
                 ELSE pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END
       END AS collation,
       a.attidentity::text AS identity, a.attgenerated::text AS generated,
       (SELECT d.description FROM pg_catalog.pg_description d
        WHERE d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = a.attnum) AS comment
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
  AND a.attnum > 0 AND NOT a.attisdropped
"#;

pub(super) const CONSTRAINTS: &str = r#"
SELECT n.nspname::text AS schema, c.relname::text AS tbl, con.conname::text AS name,
       con.contype::text AS contype, pg_catalog.pg_get_constraintdef(con.oid, true) AS definition,
       con.convalidated AS validated, con.condeferrable AS deferrable, con.condeferred AS deferred,
       c.oid::int8 AS tbl_oid, con.conkey::int4[] AS conkey,
       rn.nspname::text AS ref_schema, rc.relname::text AS ref_table,
       con.confrelid::int8 AS ref_oid, con.confkey::int4[] AS confkey,
       con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update,
       CASE WHEN con.contype IN ('p', 'u', 'x') THEN ic.relname::text END AS index_name,
       CASE WHEN con.contype = 'f' THEN ic.relname::text END AS ref_index,
       (SELECT d.description FROM pg_catalog.pg_description d
        WHERE d.objoid = con.oid AND d.classoid = 'pg_catalog.pg_constraint'::regclass AND d.objsubid = 0) AS comment,
       (NOT con.conislocal OR con.conparentid <> 0) AS inherited
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
LEFT JOIN pg_catalog.pg_class ic ON ic.oid = con.conindid
WHERE n.nspname = ANY($1) AND con.contype IN ('p', 'u', 'f', 'c', 'x', 't')
"#;

/// `expr_cols`: the columns an expression or partial index reads (from `pg_depend`, only for
/// such indexes); the key and `INCLUDE` columns come from `indkey`.
pub(super) const INDEXES: &str = r#"
SELECT n.nspname::text AS schema, c.relname::text AS tbl, ic.relname::text AS name,
       ic.oid::int8 AS oid, ic.relfilenode::int8 AS relfilenode,
       pg_catalog.pg_get_indexdef(i.indexrelid, 0, true) AS definition,
       i.indisunique AS is_unique, i.indisprimary AS is_primary, i.indisvalid AS is_valid,
       c.oid::int8 AS tbl_oid, string_to_array(i.indkey::text, ' ')::int4[] AS indkey, i.indnkeyatts::int4 AS nkeyatts,
       con.conname::text AS constraint_name,
       ic.relpages::int8 * pg_catalog.current_setting('block_size')::int8 AS bytes,
       CASE WHEN i.indexprs IS NOT NULL OR i.indpred IS NOT NULL THEN
            ARRAY(SELECT DISTINCT dep.refobjsubid::int4 FROM pg_catalog.pg_depend dep
                  WHERE dep.classid = 'pg_catalog.pg_class'::regclass AND dep.objid = i.indexrelid
                    AND dep.refclassid = 'pg_catalog.pg_class'::regclass
                    AND dep.refobjid = i.indrelid AND dep.refobjsubid > 0)
       END AS expr_cols,
       (SELECT d.description FROM pg_catalog.pg_description d
        WHERE d.objoid = ic.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0) AS comment
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_constraint con
       ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'm')
"#;

pub(super) const ATTNAMES: &str = "SELECT attrelid::int8, attnum::int4, attname::text FROM pg_catalog.pg_attribute \
     WHERE attrelid = ANY($1::int8[]::oid[]) AND attnum > 0 AND NOT attisdropped";

pub(super) const SEQUENCES: &str = concat!(
    r#"
SELECT n.nspname::text AS schema, c.relname::text AS name,
       pg_catalog.format_type(s.seqtypid, NULL) AS data_type,
       s.seqstart AS start, s.seqincrement AS increment, s.seqmin AS min, s.seqmax AS max,
       s.seqcache AS cache, s.seqcycle AS cycle,
       dc.relname::text AS owner_table, da.attname::text AS owner_column, dep.deptype::text AS deptype,
       (SELECT d.description FROM pg_catalog.pg_description d
        WHERE d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0) AS comment
FROM pg_catalog.pg_sequence s
JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_depend dep
       ON dep.classid = 'pg_catalog.pg_class'::regclass AND dep.objid = c.oid
      AND dep.refclassid = 'pg_catalog.pg_class'::regclass AND dep.deptype IN ('a', 'i')
LEFT JOIN pg_catalog.pg_class dc ON dc.oid = dep.refobjid
LEFT JOIN pg_catalog.pg_attribute da ON da.attrelid = dep.refobjid AND da.attnum = dep.refobjsubid
WHERE n.nspname = ANY($1) AND "#,
    not_ext_member!("pg_class", "c")
);

/// Enums (labels in sort order), domains (the clause after `CREATE DOMAIN name`) and
/// stand-alone composite types (the attribute list).
pub(super) const TYPES: &str = concat!(
    r#"
SELECT n.nspname::text AS schema, t.typname::text AS name, t.typtype::text AS typtype,
       CASE WHEN t.typtype = 'e' THEN
            ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
                  WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
       END AS labels,
       CASE WHEN t.typtype = 'd' THEN
            'AS ' || pg_catalog.format_type(t.typbasetype, t.typtypmod)
            || COALESCE(' COLLATE ' || (SELECT pg_catalog.quote_ident(co.collname) FROM pg_catalog.pg_collation co
                                        WHERE co.oid = t.typcollation AND t.typcollation <> bt.typcollation), '')
            || COALESCE(' DEFAULT ' || t.typdefault, '')
            || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
            || COALESCE((SELECT pg_catalog.string_agg(' CONSTRAINT ' || pg_catalog.quote_ident(con.conname) || ' '
                                                      || pg_catalog.pg_get_constraintdef(con.oid, true), '' ORDER BY con.conname)
                         FROM pg_catalog.pg_constraint con WHERE con.contypid = t.oid), '')
            WHEN t.typtype = 'c' THEN
            '(' || (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname) || ' '
                                                 || pg_catalog.format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                    FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) || ')'
       END AS definition,
       (SELECT d.description FROM pg_catalog.pg_description d
        WHERE d.objoid = t.oid AND d.classoid = 'pg_catalog.pg_type'::regclass AND d.objsubid = 0) AS comment
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype
LEFT JOIN pg_catalog.pg_class rc ON rc.oid = t.typrelid
WHERE n.nspname = ANY($1) AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND rc.relkind = 'c'))
  AND "#,
    not_ext_member!("pg_type", "t")
);

/// Functions and procedures (`pg_get_functiondef`) and plain aggregates (a `CREATE AGGREGATE`
/// statement built from `pg_aggregate`).
pub(super) const FUNCTIONS: &str = concat!(
    r#"
SELECT n.nspname::text AS schema, p.proname::text AS name,
       pg_catalog.pg_get_function_identity_arguments(p.oid) AS args, p.prokind::text AS prokind,
       CASE WHEN p.prokind = 'a' THEN
            'CREATE AGGREGATE ' || pg_catalog.quote_ident(p.proname) || '('
            || pg_catalog.pg_get_function_identity_arguments(p.oid)
            || ') (SFUNC = ' || a.aggtransfn::regproc::text || ', STYPE = ' || pg_catalog.format_type(a.aggtranstype, NULL)
            || CASE WHEN a.aggfinalfn <> 0 THEN ', FINALFUNC = ' || a.aggfinalfn::regproc::text ELSE '' END
            || CASE WHEN a.aggcombinefn <> 0 THEN ', COMBINEFUNC = ' || a.aggcombinefn::regproc::text ELSE '' END
            || COALESCE(', INITCOND = ' || pg_catalog.quote_literal(a.agginitval), '')
            || CASE WHEN a.aggsortop <> 0 THEN ', SORTOP = OPERATOR(' || a.aggsortop::regoperator::text || ')' ELSE '' END
            || ')'
       ELSE pg_catalog.pg_get_functiondef(p.oid) END AS definition,
       (SELECT d.description FROM pg_catalog.pg_description d
        WHERE d.objoid = p.oid AND d.classoid = 'pg_catalog.pg_proc'::regclass AND d.objsubid = 0) AS comment
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN pg_catalog.pg_aggregate a ON a.aggfnoid = p.oid
WHERE n.nspname = ANY($1) AND (p.prokind IN ('f', 'p') OR (p.prokind = 'a' AND a.aggkind = 'n'))
  AND "#,
    not_ext_member!("pg_proc", "p")
);

pub(super) const TRIGGERS: &str = r#"
SELECT n.nspname::text AS schema, c.relname::text AS tbl, t.tgname::text AS name,
       pg_catalog.pg_get_triggerdef(t.oid, true) AS definition, t.tgenabled <> 'D' AS enabled
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1) AND NOT t.tgisinternal
"#;

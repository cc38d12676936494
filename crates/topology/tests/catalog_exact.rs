//! The one differ in `DiffMode::Exact` (the rollback proof) catches every kind of difference an
//! exact round trip must not leave, on real PostgreSQL; `DiffMode::Shape` (drift, fingerprints)
//! stays tenant-schema independent and blind to what only the exact mode compares.

use topology::catalog::{
    Catalog, CatalogDifference, DiffMode, ObjectKind, diff_catalogs, introspect_schema,
    introspect_schemas,
};
use topology::ephemeral::{EphemeralOptions, EphemeralPg};

const BASE: &str = r#"
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TYPE status AS ENUM ('active', 'disabled');
CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');
CREATE TABLE users (
    id serial PRIMARY KEY,
    email email NOT NULL,
    name text,
    state status NOT NULL DEFAULT 'active'
);
CREATE TABLE audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id int REFERENCES users (id), at timestamptz);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := lower(NEW.name); RETURN NEW; END $$;
CREATE FUNCTION active_count(s status) RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM users WHERE state = s $$;
CREATE TRIGGER users_touch BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW active_users AS SELECT id, email FROM users WHERE state = 'active';
CREATE INDEX users_name_idx ON users (lower(name)) WHERE name IS NOT NULL;
COMMENT ON INDEX users_name_idx IS 'search';
"#;

async fn cluster() -> (EphemeralPg, sqlx::PgPool) {
    let pg = EphemeralPg::start_async(EphemeralOptions::default())
        .await
        .expect("start pg");
    let pool = pg.pool("postgres", 2).await.expect("pool");
    (pg, pool)
}

/// A schema `name` with the base objects in it (created under its `search_path`).
async fn schema(pool: &sqlx::PgPool, name: &str) {
    let mut conn = pool.acquire().await.expect("connection");
    let sql = format!(
        "CREATE SCHEMA {name}; SET search_path = {name}, public; {BASE} RESET search_path;"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .expect("base schema");
}

/// The catalog of `name` before and after running `change` in it.
async fn before_after(pool: &sqlx::PgPool, name: &str, change: &str) -> (Catalog, Catalog) {
    schema(pool, name).await;
    let before = introspect_schema(pool, name)
        .await
        .expect("introspect before");
    let mut conn = pool.acquire().await.expect("connection");
    let sql = format!("SET search_path = {name}, public; {change} RESET search_path;");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .expect("change applies");
    drop(conn);
    let after = introspect_schema(pool, name)
        .await
        .expect("introspect after");
    (before, after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_diff_catches_each_kind_of_difference() {
    let (_pg, pool) = cluster().await;

    // A column reordered: dropped and re-added, it lands last. Shape mode does not see it.
    let (b, a) = before_after(
        &pool,
        "reorder",
        "ALTER TABLE users DROP COLUMN name CASCADE; ALTER TABLE users ADD COLUMN name text; \
         ALTER TABLE users ALTER COLUMN name SET DEFAULT NULL; ALTER TABLE users ALTER COLUMN name DROP DEFAULT; \
         CREATE INDEX users_name_idx ON users (lower(name)) WHERE name IS NOT NULL; \
         COMMENT ON INDEX users_name_idx IS 'search';",
    )
    .await;
    let d = diff_catalogs(&b, &a, DiffMode::Exact);
    assert_eq!(
        d,
        vec![CatalogDifference::ColumnOrderDiffers {
            table: "users".into(),
            expected: vec!["id".into(), "email".into(), "name".into(), "state".into()],
            actual: vec!["id".into(), "email".into(), "state".into(), "name".into()],
        }],
        "{d:#?}"
    );
    assert_eq!(diff_catalogs(&b, &a, DiffMode::Shape), vec![]);

    // A function body changed.
    let (b, a) = before_after(
        &pool,
        "body",
        "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$;",
    )
    .await;
    let d = diff_catalogs(&b, &a, DiffMode::Exact);
    assert!(
        matches!(&d[..], [CatalogDifference::ObjectDiffers { object, aspect, expected, actual }]
            if object.kind == ObjectKind::Function && object.name == "touch()" && aspect == "definition"
               && expected.contains("lower(NEW.name)") && actual.contains("upper(NEW.name)")),
        "{d:#?}"
    );
    assert_eq!(diff_catalogs(&b, &a, DiffMode::Shape), vec![]);

    // A trigger dropped.
    let (b, a) = before_after(&pool, "trig", "DROP TRIGGER users_touch ON users;").await;
    let d = diff_catalogs(&b, &a, DiffMode::Exact);
    assert!(
        matches!(&d[..], [CatalogDifference::MissingObject { object, definition }]
            if object.kind == ObjectKind::Trigger && object.name == "users_touch"
               && object.table.as_deref() == Some("users")
               && definition.starts_with("CREATE TRIGGER users_touch BEFORE INSERT OR UPDATE ON users ")),
        "{d:#?}"
    );
    assert_eq!(d[0].to_string().lines().count(), 1);

    // A view definition changed.
    let (b, a) = before_after(
        &pool,
        "view",
        "CREATE OR REPLACE VIEW active_users AS SELECT id, email FROM users WHERE state = 'disabled';",
    )
    .await;
    let d = diff_catalogs(&b, &a, DiffMode::Exact);
    assert!(
        matches!(&d[..], [CatalogDifference::TableDiffers { table, aspect, expected, actual }]
            if table == "active_users" && aspect == "view definition"
               && expected.contains("'active'::status") && actual.contains("'disabled'::status")),
        "{d:#?}"
    );

    // An extension missing (it is database-wide; the other schemas' catalogs see it too).
    let (b, a) = before_after(&pool, "ext", "DROP EXTENSION pg_trgm;").await;
    let d = diff_catalogs(&b, &a, DiffMode::Exact);
    assert!(
        matches!(&d[..], [CatalogDifference::MissingObject { object, .. }]
            if object.kind == ObjectKind::Extension && object.name == "pg_trgm"),
        "{d:#?}"
    );
    assert_eq!(diff_catalogs(&b, &a, DiffMode::Shape), vec![]);

    // A sequence's ownership lost.
    let (b, a) = before_after(&pool, "seq", "ALTER SEQUENCE users_id_seq OWNED BY NONE;").await;
    let d = diff_catalogs(&b, &a, DiffMode::Exact);
    assert!(
        matches!(&d[..], [CatalogDifference::SequenceDiffers { sequence, expected, actual }]
            if sequence == "users_id_seq" && expected.ends_with("owned by users.id")
               && !actual.contains("owned by")),
        "{d:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_tenants_are_equal_in_both_modes_and_the_catalog_is_deep() {
    let (_pg, pool) = cluster().await;
    schema(&pool, "tenant_a").await;
    schema(&pool, "tenant_b").await;
    let names = ["tenant_a".to_string(), "tenant_b".to_string()];
    let cats = introspect_schemas(&pool, &names).await.expect("introspect");
    let (a, b) = (&cats["tenant_a"], &cats["tenant_b"]);
    // Deep: functions (keyed with their qualified argument types), triggers, domains, enums,
    // the extension, identity and serial sequences, index dependencies and comments.
    assert!(
        a.functions.contains_key("active_count(s tenant_a.status)"),
        "{:?}",
        a.functions.keys()
    );
    assert!(
        a.functions["touch()"]
            .definition
            .contains("lower(NEW.name)")
    );
    assert!(a.tables["users"].triggers.contains_key("users_touch"));
    assert!(a.domains["email"].definition.starts_with("AS text"));
    assert_eq!(
        a.extensions.get("pg_trgm").map(String::as_str),
        Some("tenant_a")
    );
    let ix = &a.tables["users"].indexes["users_name_idx"];
    assert_eq!(ix.depends_on, vec!["name".to_string()]);
    assert_eq!(ix.comment.as_deref(), Some("search"));
    assert_eq!(
        a.sequences["users_id_seq"].owned_by,
        Some(("users".to_string(), "id".to_string()))
    );
    assert!(a.sequences["audit_id_seq"].identity);
    // Fleet catalogs do not repeat the database's schema list.
    assert!(a.schemas.is_empty());
    // Extension objects (pg_trgm's functions and types) are not the tenant's.
    assert!(!a.functions.keys().any(|k| k.starts_with("similarity(")));
    // Tenant-schema independent in both modes; the same fingerprint.
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(diff_catalogs(a, b, DiffMode::Shape), vec![]);
    assert_eq!(diff_catalogs(a, b, DiffMode::Exact), vec![]);
    // The unqualified copy names the own schema's objects bare and keeps function bodies.
    let u = a.unqualified();
    assert!(
        u.functions.contains_key("active_count(s status)"),
        "{:?}",
        u.functions.keys()
    );
    assert!(
        u.functions["touch()"]
            .definition
            .starts_with("CREATE OR REPLACE FUNCTION touch()")
    );
    assert!(
        !u.tables["users"].triggers["users_touch"]
            .definition
            .contains("tenant_a.")
    );
}

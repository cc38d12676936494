//! Snapshots of what users and rule authors read: a parsed realistic migration and the lock
//! table for common operations across PostgreSQL versions.

use migration_parser::{ParseOptions, PgVersion, TransactionMode, lock_facts, parse};

const MIGRATION: &str = r#"-- Migration v42: orders ↔ users, a realistic mix of safe and unsafe steps
-- deployclaw:ignore-file hardcoded-tenant-schema
SET lock_timeout = '2s';
SET statement_timeout TO '5min';

ALTER TABLE users ADD COLUMN metadata JSONB NOT NULL DEFAULT '{}';
CREATE INDEX idx_orders_user ON orders (user_id);
ALTER TABLE orders
  ADD CONSTRAINT fk_orders_user FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID,
  ADD COLUMN note text DEFAULT 'n/a';
ALTER TABLE orders VALIDATE CONSTRAINT fk_orders_user;

BEGIN;
SET LOCAL lock_timeout = '500ms';
-- deployclaw:ignore changing-column-type
ALTER TABLE orders ALTER COLUMN total TYPE bigint;
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
COMMIT;

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_email ON users (lower(email)); -- deployclaw:ignore DC101
DROP INDEX CONCURRENTLY IF EXISTS idx_users_old;
DO $$ BEGIN RAISE NOTICE 'done; really'; END $$;
UPDATE tenant_0042.users SET name = 'é' WHERE id = 1;
"#;

#[test]
fn realistic_migration_autocommit() {
    let m = parse("v42.sql", MIGRATION, &ParseOptions::default()).expect("parses");
    insta::assert_yaml_snapshot!("v42_autocommit", (&m.file_ignored_rules, &m.statements));
}

#[test]
fn realistic_migration_wrapped_transaction_structure() {
    let o = ParseOptions {
        transaction_mode: TransactionMode::WrapFile,
        pg_version: PgVersion(15),
    };
    let m = parse("v42.sql", MIGRATION, &o).expect("parses");
    let rows: Vec<String> = m
        .statements
        .iter()
        .map(|s| {
            format!(
                "{:>2}:{:<2} tx={} in_block={:<5} lock_timeout={:?} | {}",
                s.span.line,
                s.span.column,
                s.tx.transaction,
                s.tx.in_block,
                s.settings.lock_timeout_ms,
                s.sql.lines().next().unwrap_or_default()
            )
        })
        .collect();
    insta::assert_snapshot!("v42_wrapped", rows.join("\n"));
}

#[test]
fn lock_table_across_versions() {
    let sqls = [
        "ALTER TABLE t ADD COLUMN c int DEFAULT 0",
        "ALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid()",
        "ALTER TABLE t ALTER COLUMN c SET NOT NULL",
        "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES u (id)",
        "ALTER TABLE t VALIDATE CONSTRAINT fk",
        "CREATE INDEX CONCURRENTLY i ON t (c)",
        "ALTER INDEX i RENAME TO j",
        "REINDEX INDEX CONCURRENTLY i",
        "ALTER TABLE p ATTACH PARTITION c FOR VALUES IN (1)",
        "ALTER TABLE p DETACH PARTITION c CONCURRENTLY",
    ];
    let mut out = Vec::new();
    for sql in sqls {
        let m = parse("l.sql", sql, &ParseOptions::default()).expect("parses");
        let op = &m.statements[0].operations[0];
        for v in [11, 12, 14, 17] {
            let facts: Vec<String> = lock_facts(op, PgVersion(v))
                .iter()
                .map(|f| {
                    format!(
                        "{} {} rewrite={:?} scan={:?} <{}>",
                        f.relation, f.mode, f.rewrite, f.scan, f.doc
                    )
                })
                .collect();
            out.push(serde_json::json!({ "sql": sql, "pg": v, "facts": facts }));
        }
    }
    insta::assert_yaml_snapshot!("lock_table", out);
}

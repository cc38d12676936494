//! What a user reads when a rollback leaves the catalog different in a way only the exact mode of
//! topology's one differ sees: a trigger, a function body, a sequence's owner, an extension, a
//! view definition, a column order.

use migration_parser::{Migration, ParseOptions, TransactionMode, parse};
use rollback::{ProveOptions, RollbackSource, Setup, Shadow, prove};

const SETUP: &str = r#"
CREATE EXTENSION pg_trgm;
CREATE TABLE users (id serial PRIMARY KEY, name text, email text NOT NULL, active boolean NOT NULL DEFAULT true);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.email := lower(NEW.email); RETURN NEW; END $$;
CREATE TRIGGER users_touch BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW active_users AS SELECT id, email FROM users WHERE active;
"#;

fn wrapped(name: &str, sql: &str) -> Migration {
    let options = ParseOptions {
        transaction_mode: TransactionMode::WrapFile,
        ..Default::default()
    };
    parse(name, sql, &options).expect("test SQL parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_that_misses_exact_details_is_not_restored() {
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let forward = wrapped(
        "up.sql",
        "DROP TRIGGER users_touch ON users;\n\
         CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.email := upper(NEW.email); RETURN NEW; END $$;\n\
         ALTER SEQUENCE users_id_seq OWNED BY NONE;\n\
         DROP EXTENSION pg_trgm;\n\
         CREATE OR REPLACE VIEW active_users AS SELECT id, email FROM users WHERE NOT active;\n\
         ALTER TABLE users DROP COLUMN name;\n",
    );
    // Puts the column back (at the end) and nothing else.
    let down = wrapped("down.sql", "ALTER TABLE users ADD COLUMN name text;\n");
    let p = prove(
        &shadow,
        Setup::Sql(SETUP),
        &forward,
        RollbackSource::Script(&down),
        &ProveOptions::default(),
    )
    .await
    .expect("prover runs");
    assert!(p.tested && !p.restored, "{p:#?}");
    let lines: Vec<String> = p.mismatches.iter().map(ToString::to_string).collect();
    insta::assert_yaml_snapshot!("exact_mismatches", lines);
    assert_eq!(
        p.mismatches
            .iter()
            .filter(|m| m.column_order_only)
            .map(|m| m.object.as_str())
            .collect::<Vec<_>>(),
        vec!["table users"]
    );

    // The complete rollback restores every one of them.
    let complete = wrapped(
        "down.sql",
        "ALTER TABLE users ADD COLUMN name text;\n\
         CREATE OR REPLACE VIEW active_users AS SELECT id, email FROM users WHERE active;\n\
         CREATE EXTENSION pg_trgm;\n\
         ALTER SEQUENCE users_id_seq OWNED BY users.id;\n\
         CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.email := lower(NEW.email); RETURN NEW; END $$;\n\
         CREATE TRIGGER users_touch BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch();\n",
    );
    let p = prove(
        &shadow,
        Setup::Sql(SETUP),
        &forward,
        RollbackSource::Script(&complete),
        &ProveOptions::default(),
    )
    .await
    .expect("prover runs");
    assert!(p.tested && p.restored, "{p:#?}");
    // Only the column order is left (a re-added column lands last), and it does not count.
    assert!(p.mismatches.iter().all(|m| m.column_order_only), "{p:#?}");
}

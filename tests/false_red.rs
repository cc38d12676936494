//! False REDs of issue 13, against the truth: for each case under `tests/fixtures/false_red/`
//! (2–3 tenant schemas with a few rows), the migration is applied FOR REAL with `psql` on a
//! copy of the database per tenant (`CREATE DATABASE … TEMPLATE`), then the whole gate
//! (`pipeline::validate`, shadow rehearsal, generated rollback proven) runs on the same fleet.
//! Every shard's verdict must agree with PostgreSQL: a shard where the migration applied cleanly
//! is never RED by `schema-drift`, `cast-failures`, `statement-fails` or `rollback-mismatch`; a
//! shard where it fails is RED.
//!
//! One ephemeral cluster serves the whole file (each case gets its own database); the shadow
//! clusters the pipeline starts are copied from one `initdb` template kept in the test's target
//! directory.
//!
//! `replay_public_history` (ignored: it needs a checkout) does the same on a public migration
//! history, one migration after the other, and prints every disagreement.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use deployclaw::gates::{Gate, Severity};
use deployclaw::migration_parser::pg_quote::quote_ident;
use deployclaw::pipeline::validate;
use deployclaw::report::{ShardReport, ValidationReport};
use deployclaw::simulator::{CancelToken, NoProgress, RehearsalMode};
use deployclaw::topology::ephemeral::{EphemeralOptions, EphemeralPg};
use deployclaw::topology::{Fleet, Instance, Shard, ShardLocation};
use sqlx::{Connection, PgConnection};

/// The tenants of every case, in order.
const TENANTS: [&str; 3] = ["tenant_a", "tenant_b", "tenant_c"];

/// Rules that must never make a shard RED where the migration really applies.
const FALSE_RED_RULES: [&str; 4] = [
    "schema-drift",
    "cast-failures",
    "statement-fails",
    "rollback-mismatch",
];

/// What PostgreSQL said when the migration was applied for real: `Ok` or psql's error output.
type Truth = BTreeMap<String, Result<(), String>>;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/false_red")
}

/// The cluster every case of this file uses (started once; its watchdog removes it when the
/// test process exits).
fn cluster() -> &'static EphemeralPg {
    static PG: OnceLock<EphemeralPg> = OnceLock::new();
    PG.get_or_init(|| EphemeralPg::start(EphemeralOptions::default()).expect("start PostgreSQL"))
}

/// Where the pipeline keeps its shadow's `initdb` template between cases.
fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("false_red_cache")
}

async fn connect(db: &str) -> PgConnection {
    PgConnection::connect_with(&cluster().connect_options(db))
        .await
        .expect("connect")
}

async fn exec(c: &mut PgConnection, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
        .execute(c)
        .await
        .unwrap_or_else(|e| panic!("{e}: {sql}"));
}

/// Create database `db` (dropped first when it exists), from `template` when given.
async fn create_db(db: &str, template: Option<&str>) {
    let mut c = connect("postgres").await;
    exec(
        &mut c,
        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(db)),
    )
    .await;
    let from = template.map(|t| format!(" TEMPLATE {}", quote_ident(t)));
    exec(
        &mut c,
        format!(
            "CREATE DATABASE {}{}",
            quote_ident(db),
            from.unwrap_or_default()
        ),
    )
    .await;
    c.close().await.expect("close");
}

async fn drop_db(db: &str) {
    let mut c = connect("postgres").await;
    exec(
        &mut c,
        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(db)),
    )
    .await;
    c.close().await.expect("close");
}

/// Database `db` with one schema per tenant: `tenant.sql` in each, then `extra_<tenant>.sql`
/// where the case has one.
async fn build_case_db(case: &Path, db: &str) {
    create_db(db, None).await;
    let mut c = connect(db).await;
    let shape = std::fs::read_to_string(case.join("tenant.sql")).expect("tenant.sql");
    for t in TENANTS {
        exec(
            &mut c,
            format!(
                "CREATE SCHEMA {q}; SET search_path = {q}, public;",
                q = quote_ident(t)
            ),
        )
        .await;
        exec(&mut c, shape.clone()).await;
        if let Ok(extra) = std::fs::read_to_string(case.join(format!("extra_{t}.sql"))) {
            exec(&mut c, extra).await;
        }
    }
    c.close().await.expect("close");
}

/// Run `file` with `psql -v ON_ERROR_STOP=1` on database `db` with `search_path = <schema>,
/// public` (in one transaction with `single_tx`, as a migration runner that wraps each file).
async fn psql(db: &str, schema: &str, file: &Path, single_tx: bool) -> Result<(), String> {
    let pg = cluster();
    let spec = pg.connection_spec();
    let mut cmd = tokio::process::Command::new(pg.bin_dir().join("psql"));
    cmd.env_clear()
        .env("PGOPTIONS", format!("-c search_path={schema},public"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", &spec.host, "-U"])
        .arg(&spec.user)
        .args(["-p", &spec.port.to_string(), "-d", db, "-f"])
        .arg(file);
    if single_tx {
        cmd.arg("-1");
    }
    let out = cmd.output().await.expect("run psql");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The truth: `migration` applied for real on a copy of `db` per schema.
async fn truth(db: &str, schemas: &[&str], migration: &Path, single_tx: bool) -> Truth {
    let mut out = Truth::new();
    for s in schemas {
        let copy = format!("{db}_truth_{s}");
        create_db(&copy, Some(db)).await;
        out.insert(s.to_string(), psql(&copy, s, migration, single_tx).await);
        drop_db(&copy).await;
    }
    out
}

/// One instance (`pg-1`) holding `schemas` of database `db`.
fn fleet(db: &str, schemas: &[&str]) -> Fleet {
    let name = "pg-1";
    Fleet {
        instances: vec![Instance {
            name: name.into(),
            connection: cluster().connection_spec().with_database(db),
            labels: BTreeMap::new(),
            replica_of: None,
        }],
        shards: schemas
            .iter()
            .map(|s| {
                Shard::new(
                    name,
                    ShardLocation::Schema {
                        database: db.into(),
                        schema: s.to_string(),
                    },
                )
            })
            .collect(),
    }
}

/// The whole gate on `fleet`: shadow rehearsal, generated rollback proven.
async fn gate(migration: &Path, fleet: &Fleet) -> ValidationReport {
    let mut opts = common::options(migration, RehearsalMode::Shadow);
    opts.validate_rollback = true;
    opts.cache_dir = Some(cache_dir());
    validate(&opts, fleet, &NoProgress, &CancelToken::new())
        .await
        .expect("validation runs")
}

fn shard<'a>(report: &'a ValidationReport, schema: &str) -> Option<&'a ShardReport> {
    let tail = format!("/{schema}");
    report
        .shards
        .iter()
        .find(|s| s.shard == schema || s.shard.ends_with(&tail))
}

fn summary(s: &ShardReport) -> String {
    let lines: Vec<String> = s
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info)
        .map(|f| format!("    {} {}: {}", f.severity, f.rule, f.message))
        .collect();
    format!("{}\n{}", s.gate, lines.join("\n"))
}

/// Every disagreement between the verdicts and the truth, one paragraph each.
fn disagreements(truth: &Truth, report: &ValidationReport) -> Vec<String> {
    let mut wrong = Vec::new();
    for (schema, real) in truth {
        let Some(s) = shard(report, schema) else {
            wrong.push(format!("{schema}: no verdict in the report"));
            continue;
        };
        match real {
            Ok(()) => {
                let false_red: Vec<_> = s
                    .findings
                    .iter()
                    .filter(|f| f.severity == Severity::Red)
                    .filter(|f| FALSE_RED_RULES.contains(&f.rule.as_str()))
                    .collect();
                if !false_red.is_empty() {
                    wrong.push(format!(
                        "{schema}: PostgreSQL applied the migration, but the verdict is {}",
                        summary(s)
                    ));
                }
            }
            Err(e) => {
                if s.gate != Gate::Red {
                    wrong.push(format!(
                        "{schema}: PostgreSQL refused the migration ({e}), but the verdict is {}",
                        summary(s)
                    ));
                }
            }
        }
    }
    wrong
}

/// A case's truth and report.
struct Outcome {
    truth: Truth,
    report: ValidationReport,
}

/// Build case `name`'s fleet, apply its migration for real per tenant, run the gate, and check
/// that PostgreSQL refuses it on exactly `fails_on` (so the fixture tests what it says).
async fn run_case(name: &str, fails_on: &[&str]) -> Outcome {
    let case = fixtures().join(name);
    let migration = case.join("migration.sql");
    let db = format!("fr_{name}");
    build_case_db(&case, &db).await;
    let truth = truth(&db, &TENANTS, &migration, false).await;
    let failing: Vec<&str> = truth
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(s, _)| s.as_str())
        .collect();
    assert_eq!(failing, fails_on, "fixture {name}: the truth is {truth:#?}");
    let report = gate(&migration, &fleet(&db, &TENANTS)).await;
    drop_db(&db).await;
    Outcome { truth, report }
}

/// [`run_case`], then every shard's verdict must agree with the truth.
async fn check_case(name: &str, fails_on: &[&str]) -> Outcome {
    let out = run_case(name, fails_on).await;
    let wrong = disagreements(&out.truth, &out.report);
    assert!(
        wrong.is_empty(),
        "{name}: verdicts disagree with PostgreSQL:\n{}",
        wrong.join("\n")
    );
    out
}

// The harness's control (passes today): a migration that uses nothing it creates; tenant_c
// really fails (a duplicate under a new unique constraint) and must be RED, the others must not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_verdicts_agree_with_postgresql() {
    let out = check_case("control", &["tenant_c"]).await;
    let c = shard(&out.report, "tenant_c").expect("tenant_c");
    assert!(
        c.findings
            .iter()
            .any(|f| f.severity == Severity::Red && f.rule == "unique-violations"),
        "{}",
        summary(c)
    );
}

// Class 1: a column renamed, then a new column added under the old name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_renamed_then_added_under_the_old_name() {
    check_case("rename_then_add", &[]).await;
}

// Class 2: objects created earlier in the migration, then indexed / altered / used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn materialized_view_created_then_indexed() {
    check_case("matview_indexed", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_created_then_renamed_and_commented() {
    check_case("view_renamed", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_created_then_altered_indexed_and_renamed() {
    check_case("table_created_then_altered", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_created_then_cast_to_and_altered() {
    check_case("type_created_then_cast", &[]).await;
}

// Class 3: DROP VIEW … CASCADE, then the dependents recreated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_dropped_with_cascade_then_dependents_recreated() {
    check_case("drop_view_cascade", &[]).await;
}

// Class 4: an enum created earlier, used by ALTER COLUMN … TYPE … USING. tenant_b's table is
// empty; tenant_c holds a value that is not a label, so there the migration really fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enum_created_then_used_by_alter_column_type_using() {
    let out = check_case("enum_using", &["tenant_c"]).await;
    // RED for the right reason: the finding names the value that is not a label (a probe that
    // failed because the type does not exist yet proves nothing about the data).
    let c = shard(&out.report, "tenant_c").expect("tenant_c");
    assert!(
        c.findings.iter().any(|f| f.severity == Severity::Red
            && (f.rule == "cast-failures" || f.rule == "statement-fails")
            && (f.message.contains("archived")
                || f.evidence
                    .as_ref()
                    .is_some_and(|e| e.to_string().contains("archived")))),
        "tenant_c must be RED by cast-failures or statement-fails naming the value \"archived\": {}",
        summary(c)
    );
}

// Class 5: the generated rollback does not round-trip. That is deployclaw's failure, not the
// migration's: never RED (`rollback-mismatch` is for a rollback the user supplied), but YELLOW
// with "no proven rollback" — unless the generated rollback is in fact proven.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_generated_rollback_is_yellow_not_red() {
    let out = check_case("generated_rollback_wrong", &[]).await;
    let rb = &out.report.rollback;
    assert_eq!(rb.source, "generated", "{rb:?}");
    for t in TENANTS {
        let s = shard(&out.report, t).expect("shard");
        assert_ne!(s.gate, Gate::Red, "{t}: {}", summary(s));
        if rb.proven() {
            continue;
        }
        assert_eq!(s.gate, Gate::Yellow, "{t}: {}", summary(s));
        assert!(
            s.findings.iter().any(|f| f.severity == Severity::Yellow
                && f.message.to_lowercase().contains("no proven rollback")),
            "{t}: an unproven generated rollback must say \"no proven rollback\": {}\nrollback: {rb:#?}",
            summary(s)
        );
    }
}

// Patterns from a public migration history (LemmyNet/lemmy, 2020), in our own few lines: a
// column under a view and a materialized view widened by dropping and rebuilding both (and the
// matview's unique index, which went with it) ...
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_views_and_matview_dropped_and_rebuilt_with_their_index() {
    check_case("history_views_rebuilt", &[]).await;
}

// ... and duplicates removed before a unique index, then a populated materialized view
// refreshed CONCURRENTLY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_refresh_concurrently_of_a_populated_matview() {
    check_case("history_refresh_concurrently", &[]).await;
}

/// A public migration history, one migration after the other: `DEPLOYCLAW_REPLAY_DIR` holds one
/// directory per migration (sorted by name) with an `up.sql` (diesel's layout, e.g.
/// LemmyNet/lemmy's `migrations/`); `DEPLOYCLAW_REPLAY_FROM` (default 0) and
/// `DEPLOYCLAW_REPLAY_COUNT` (default 30) choose the window. Migrations before the window are
/// applied without validation; each one in it is validated on the `public` schema, compared with
/// the truth, then applied (each file in one transaction, as diesel does). Prints every
/// disagreement and fails when there is one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a checkout of a public migration history (DEPLOYCLAW_REPLAY_DIR)"]
async fn replay_public_history() {
    let dir = PathBuf::from(std::env::var("DEPLOYCLAW_REPLAY_DIR").expect("DEPLOYCLAW_REPLAY_DIR"));
    let env_num = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let from = env_num("DEPLOYCLAW_REPLAY_FROM", 0);
    let count = env_num("DEPLOYCLAW_REPLAY_COUNT", 30);
    let mut ups: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read DEPLOYCLAW_REPLAY_DIR")
        .filter_map(|e| Some(e.ok()?.path().join("up.sql")))
        .filter(|p| p.is_file())
        .collect();
    ups.sort();
    let db = "fr_replay";
    create_db(db, None).await;
    let mut wrong = Vec::new();
    for (i, up) in ups.iter().enumerate().take(from + count) {
        let name = up.parent().and_then(Path::file_name).unwrap_or_default();
        let name = name.to_string_lossy();
        if i >= from {
            let truth = truth(db, &["public"], up, true).await;
            let report = gate(up, &fleet(db, &["public"])).await;
            let d = disagreements(&truth, &report);
            let verdict = shard(&report, "public").map(|s| s.gate);
            println!(
                "{i:4} {name}: truth {:?}, verdict {verdict:?}",
                truth["public"]
            );
            for line in &d {
                println!("     {line}");
            }
            wrong.extend(d.into_iter().map(|l| format!("{name}: {l}")));
        }
        if let Err(e) = psql(db, "public", up, true).await {
            println!("{i:4} {name}: stops the history: {e}");
            break;
        }
    }
    drop_db(db).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

//! Measurement (ignored by default): every real down script of a migration history proven the
//! way the gate proves a user's rollback — the shard's schema dumped with
//! `pg_dump --schema-only --schema=public` (what the pipeline loads on the shadow), then
//! [`rollback::prove`] of the up and the down on that dump — and the outcomes counted by cause.
//!
//! ```text
//! DEPLOYCLAW_PROOF_HISTORY=/path/to/migrations [DEPLOYCLAW_PROOF_COUNT=n] \
//!   cargo test -p rollback --all-features --test down_script_proofs -- --ignored --nocapture
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use migration_parser::{Migration, ParseOptions, TransactionMode, parse};
use rollback::{ProofOutcome, ProveOptions, RollbackSource, Setup, Shadow, discover, prove};
use sqlx::{AssertSqlSafe, Connection};
use topology::ephemeral::{EphemeralOptions, EphemeralPg};

fn parse_pair(name: &str, sql: &str, in_tx: bool) -> Option<Migration> {
    let opts = ParseOptions {
        transaction_mode: if in_tx {
            TransactionMode::WrapFile
        } else {
            TransactionMode::Autocommit
        },
        ..Default::default()
    };
    parse(name, sql, &opts).ok()
}

/// `pg_dump --schema-only --schema=public` of `db`, filtered as the pipeline filters it.
fn dump(pg: &EphemeralPg, db: &str) -> String {
    let out = std::process::Command::new(pg.bin_dir().join("pg_dump"))
        .args([
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--schema=public",
        ])
        .arg("-h")
        .arg(pg.socket_dir())
        .arg("-p")
        .arg(pg.port().to_string())
        .args(["-U", "postgres", "-d", db])
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            !l.starts_with("SELECT pg_catalog.set_config('search_path'") && !l.starts_with('\\')
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn admin_history(pg: &EphemeralPg) -> sqlx::PgConnection {
    sqlx::PgConnection::connect_with(&pg.connect_options("history"))
        .await
        .expect("connects")
}

/// The cause of a "not proven", in a few words.
fn cause(reason: &str) -> String {
    let r = reason.to_lowercase();
    let phase = if r.starts_with("the forward migration failed on the shadow") {
        "forward fails on the empty structure: "
    } else if r.contains("failed on the sample rows") {
        "forward fails on the sample rows: "
    } else {
        ""
    };
    let known = [
        (
            "not installed on the shadow",
            "extension missing on the shadow",
        ),
        ("type \"ltree\"", "extension type missing (ltree)"),
        ("type \"citext\"", "extension type missing (citext)"),
        ("does not exist", "object does not exist"),
        ("not populated", "materialized view not populated"),
        ("schema \"public\" already exists", "CREATE SCHEMA public"),
        ("violates foreign key", "foreign key"),
        ("violates not-null", "not null"),
        ("violates unique", "unique"),
        ("could not create unique index", "unique"),
        ("violates check", "check"),
        ("invalid input syntax", "cast"),
        ("no sample rows were asked", "no sample rows asked"),
    ];
    known
        .iter()
        .find(|(k, _)| r.contains(k))
        .map(|(_, c)| format!("{phase}{c}"))
        .unwrap_or_else(|| {
            format!(
                "{phase}other: {}",
                reason.chars().take(140).collect::<String>()
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: set DEPLOYCLAW_PROOF_HISTORY"]
async fn measure_down_scripts() {
    let Ok(dir) = std::env::var("DEPLOYCLAW_PROOF_HISTORY") else {
        eprintln!("DEPLOYCLAW_PROOF_HISTORY is not set");
        return;
    };
    let count: usize = std::env::var("DEPLOYCLAW_PROOF_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(usize::MAX);
    let pairs = discover(&PathBuf::from(dir)).expect("layout detected");
    let pg = EphemeralPg::start_async(EphemeralOptions::shadow())
        .await
        .expect("ephemeral PostgreSQL starts");
    let mut admin = sqlx::PgConnection::connect_with(&pg.connect_options("postgres"))
        .await
        .expect("connects");
    sqlx::raw_sql("CREATE DATABASE history")
        .execute(&mut admin)
        .await
        .expect("creates the history database");
    let shadow = Shadow::from_ephemeral(&pg);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut downs = 0;
    let started = std::time::Instant::now();
    for pair in pairs.iter().take(count) {
        let setup = dump(&pg, "history");
        let up = parse_pair(&pair.name, &pair.up, pair.run_in_transaction);
        let down = pair
            .down
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .and_then(|d| parse_pair("down.sql", d, pair.run_in_transaction));
        if let (Some(up), Some(down)) = (&up, &down)
            && !down.statements.is_empty()
        {
            downs += 1;
            // As the pipeline passes them: the shard catalog's extensions (a schema-filtered
            // pg_dump leaves them out).
            let extensions: BTreeMap<String, String> = sqlx::query_as(
                "SELECT e.extname::text, n.nspname::text FROM pg_extension e \
                 JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'",
            )
            .fetch_all(&mut admin_history(&pg).await)
            .await
            .expect("extensions are listed")
            .into_iter()
            .collect();
            let options = ProveOptions {
                extensions,
                ..ProveOptions::default()
            };
            let key = match prove(
                &shadow,
                Setup::Sql(&setup),
                up,
                RollbackSource::Script(down),
                &options,
            )
            .await
            {
                Ok(p) => match p.outcome() {
                    ProofOutcome::Proven { data: true, .. } => "proven (structure and data)".into(),
                    ProofOutcome::Proven { data: false, note } => {
                        eprintln!("  note: {}", note.as_deref().unwrap_or(""));
                        format!(
                            "proven (structure only): {}",
                            cause(note.as_deref().unwrap_or(""))
                        )
                    }
                    ProofOutcome::Mismatch { differences } => {
                        eprintln!("  first difference: {}", differences[0]);
                        "mismatch (refuted)".into()
                    }
                    ProofOutcome::NotProven { reason } => {
                        eprintln!("  reason: {reason}");
                        format!("not proven: {}", cause(&reason))
                    }
                },
                Err(e) => format!("not proven: {}", cause(&e.to_string())),
            };
            eprintln!("{}: {key}", pair.name);
            *counts.entry(key).or_default() += 1;
        }
        let mut conn = sqlx::PgConnection::connect_with(&pg.connect_options("history"))
            .await
            .expect("connects");
        let sql = if pair.run_in_transaction {
            format!("BEGIN;\n{}\n;COMMIT;", pair.up)
        } else {
            pair.up.clone()
        };
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await {
            eprintln!("{}: up fails, history stops: {e}", pair.name);
            break;
        }
        let _ = conn.close().await;
    }
    eprintln!(
        "{downs} down scripts in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    for (k, n) in &counts {
        eprintln!("{n:5}  {k}");
    }
}

/// Measurement (ignored by default): what the data phase costs on pagila's schema — a proof
/// with structure only, a proof with both phases (the data phase on a `CREATE DATABASE …
/// TEMPLATE` copy), and loading the schema once (what reloading it for the data phase would
/// cost instead of copying).
///
/// ```text
/// cargo test -p rollback --all-features --test down_script_proofs measure_phase_costs \
///   -- --ignored --nocapture
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement"]
async fn measure_phase_costs() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let schema = ["../../../shared/corpus", "../../../../shared/corpus"]
        .iter()
        .map(|c| here.join(c).join("pagila/pagila-schema.sql"))
        .find(|p| p.is_file())
        .expect("the corpus is beside the checkout");
    // As the pipeline dumps it: --no-owner.
    let setup = std::fs::read_to_string(schema)
        .expect("pagila schema is readable")
        .lines()
        .filter(|l| !(l.starts_with("ALTER ") && l.contains(" OWNER TO ")))
        .collect::<Vec<_>>()
        .join("\n");
    let shadow = Shadow::ephemeral().await.expect("shadow starts");
    let up = parse_pair("up", "ALTER TABLE actor ADD COLUMN nickname text;", true).unwrap();
    let down = parse_pair("down", "ALTER TABLE actor DROP COLUMN nickname;", true).unwrap();
    for round in 0..3 {
        let t = std::time::Instant::now();
        shadow
            .catalog_of(Setup::Sql(&setup), "public")
            .await
            .expect("loads");
        let load = t.elapsed().as_millis();
        let mut ms = Vec::new();
        for rows in [0, 3] {
            let options = ProveOptions {
                sample_rows: rows,
                ..ProveOptions::default()
            };
            let p = prove(
                &shadow,
                Setup::Sql(&setup),
                &up,
                RollbackSource::Script(&down),
                &options,
            )
            .await
            .expect("proves");
            assert!(p.restored, "{:?}", p.outcome());
            ms.push(p.duration_ms);
        }
        eprintln!(
            "round {round}: load+introspect {load} ms; proof structure only {} ms; both phases {} ms",
            ms[0], ms[1]
        );
    }
}

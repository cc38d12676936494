//! `deployclaw rollback prove DIR`: replay a migrations directory (any layout the shared
//! detection knows) on a throw-away PostgreSQL and prove, for every migration, the project's
//! own down script and the generated rollback against the exact catalog before the migration.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use rollback::{HistoryEntry, HistoryOptions, HistoryReport, ProofOutcome, Shadow};
use serde::Serialize;

use crate::exit;

/// Output format of `rollback prove`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProveFormat {
    /// One line per migration and a summary.
    Text,
    /// The verdicts as JSON on standard output.
    Json,
}

/// Arguments of `deployclaw rollback prove`.
#[derive(Debug, Args)]
pub struct ProveArgs {
    /// The migrations directory (Diesel, sqlx, golang-migrate, dbmate, Flyway, Liquibase
    /// formatted SQL, Prisma, Drizzle or Atlas layout; detected).
    pub dir: PathBuf,
    /// Judge only this migration and the ones after it (name or version); the earlier ones
    /// are replayed to build the state, not judged.
    #[arg(long, value_name = "NAME")]
    pub since: Option<String>,
    /// SQL run once on the empty database before the first migration (extensions, roles the
    /// history assumes).
    #[arg(long, value_name = "FILE")]
    pub setup_sql: Option<PathBuf>,
    /// The schema the migrations run in.
    #[arg(long, default_value = "public")]
    pub schema: String,
    /// A scratch server to replay on instead of an ephemeral cluster: a URL or libpq
    /// key=value pairs (its role must be allowed to create databases).
    #[arg(long)]
    pub shadow: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ProveFormat::Text)]
    pub format: ProveFormat,
}

/// The verdict on one migration of the history.
#[derive(Debug, Serialize)]
struct EntryVerdict<'a> {
    name: &'a str,
    /// `proven`, `refuted`, `none` (no down script, or an empty one), `not_run` (the up failed).
    down: &'static str,
    /// `proven`, `not_proven`, `not_run`.
    generated: &'static str,
    /// Why, for anything but proven/none: the first differences or the failure.
    details: Vec<String>,
}

/// The whole output of `rollback prove --format json`.
#[derive(Debug, Serialize)]
struct ProveOutput<'a> {
    dir: String,
    layout: String,
    /// `green` (every judged down script proven, every generated rollback restores), `yellow`
    /// (some migration has no proven rollback: no down script and the generated one does not
    /// restore) or `red` (a down script is refuted, or an up script fails on a fresh database).
    gate: &'static str,
    migrations: Vec<EntryVerdict<'a>>,
}

/// Run `rollback prove`.
pub async fn prove(a: ProveArgs) -> i32 {
    let pairs = match rollback::discover(&a.dir) {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => {
            eprintln!("deployclaw: {}: no migrations found", a.dir.display());
            return exit::INPUT;
        }
        Err(e) => {
            eprintln!("deployclaw: {e}");
            return exit::INPUT;
        }
    };
    let first_judged = match &a.since {
        None => 0,
        Some(n) => match pairs.iter().position(|p| &p.name == n || &p.version == n) {
            Some(i) => i,
            None => {
                eprintln!(
                    "deployclaw: --since {n}: no migration of {} has that name or version (last: {})",
                    a.dir.display(),
                    pairs.last().map(|p| p.name.as_str()).unwrap_or("")
                );
                return exit::INPUT;
            }
        },
    };
    let setup_sql = match &a.setup_sql {
        None => String::new(),
        Some(f) => match read_text(f) {
            Ok(s) => s,
            Err(code) => return code,
        },
    };
    let shadow = match &a.shadow {
        Some(url) => {
            if super::connection_flag("--shadow", url).is_err() {
                return exit::INPUT;
            }
            Shadow::from_url(url)
        }
        None => Shadow::ephemeral().await,
    };
    let shadow = match shadow {
        Ok(s) => s,
        Err(e) => {
            eprintln!("deployclaw: the shadow could not be started: {e}");
            return exit::UNREACHABLE;
        }
    };
    let options = HistoryOptions {
        setup_sql,
        schema: a.schema.clone(),
        ..HistoryOptions::default()
    };
    let layout = pairs[0].layout;
    eprintln!(
        "deployclaw: {} migration(s) of {} ({layout:?} layout), replayed on a throw-away database",
        pairs.len(),
        a.dir.display()
    );
    let report = match rollback::prove_history(&shadow, &pairs, &options, |_| {}).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("deployclaw: {e}");
            return exit::INPUT;
        }
    };
    let out = output(&a, &format!("{layout:?}"), &report, first_judged);
    match a.format {
        ProveFormat::Json => match serde_json::to_string_pretty(&out) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("deployclaw: {e}");
                return exit::INPUT;
            }
        },
        ProveFormat::Text => print_text(&out, pairs.len() - report.entries.len()),
    }
    match out.gate {
        "red" => exit::RED,
        "yellow" => exit::YELLOW,
        _ => exit::GREEN,
    }
}

/// A UTF-8 input file, or the exit code after saying why not.
fn read_text(f: &std::path::Path) -> Result<String, i32> {
    super::check_input_file(f)?;
    let bytes = gates::input::read_capped(f).map_err(|e| {
        eprintln!("deployclaw: {}: {e}", f.display());
        exit::INPUT
    })?;
    String::from_utf8(bytes).map_err(|_| {
        eprintln!("deployclaw: {}: not valid UTF-8", f.display());
        exit::INPUT
    })
}

/// The verdicts of the judged entries and the gate.
fn output<'a>(
    a: &ProveArgs,
    layout: &str,
    report: &'a HistoryReport,
    first_judged: usize,
) -> ProveOutput<'a> {
    let migrations: Vec<EntryVerdict<'a>> = report
        .entries
        .iter()
        .enumerate()
        .filter(|(i, e)| *i >= first_judged || e.up_error.is_some())
        .map(|(_, e)| verdict(e))
        .collect();
    let gate = if migrations
        .iter()
        .any(|m| m.down == "refuted" || m.down == "not_run")
    {
        "red"
    } else if migrations
        .iter()
        .any(|m| m.down == "none" && m.generated != "proven")
    {
        "yellow"
    } else {
        "green"
    };
    ProveOutput {
        dir: a.dir.display().to_string(),
        layout: layout.to_string(),
        gate,
        migrations,
    }
}

/// One entry's verdict.
fn verdict(e: &HistoryEntry) -> EntryVerdict<'_> {
    let mut details = Vec::new();
    if let Some(f) = &e.up_error {
        details.push(format!(
            "the up script fails on a fresh database (the replay stops here; --setup-sql for what the history assumes): {f}"
        ));
        return EntryVerdict {
            name: &e.name,
            down: "not_run",
            generated: "not_run",
            details,
        };
    }
    let down = match &e.upstream {
        Some(_) if e.upstream_empty => "none",
        None => "none",
        Some(p) => match p.outcome() {
            ProofOutcome::Proven { .. } => "proven",
            ProofOutcome::Mismatch { differences } => {
                details.extend(
                    differences
                        .into_iter()
                        .take(5)
                        .map(|d| format!("down: {d}")),
                );
                "refuted"
            }
            ProofOutcome::NotProven { reason } => {
                details.push(format!("down: {reason}"));
                "refuted"
            }
        },
    };
    let generated = match e.generated.as_ref().map(|p| p.outcome()) {
        Some(ProofOutcome::Proven { .. }) => "proven",
        Some(ProofOutcome::Mismatch { differences }) => {
            details.extend(
                differences
                    .into_iter()
                    .take(3)
                    .map(|d| format!("generated: {d}")),
            );
            "not_proven"
        }
        Some(ProofOutcome::NotProven { reason }) => {
            details.push(format!("generated: {reason}"));
            "not_proven"
        }
        None => "not_run",
    };
    EntryVerdict {
        name: &e.name,
        down,
        generated,
        details,
    }
}

/// One line per judged migration, its details indented, then the summary.
fn print_text(out: &ProveOutput<'_>, not_replayed: usize) {
    let width = out
        .migrations
        .iter()
        .map(|m| m.name.chars().count())
        .max()
        .unwrap_or(0);
    for m in &out.migrations {
        println!(
            "{:<width$}  down: {:<8}  generated: {}",
            m.name, m.down, m.generated
        );
        for d in &m.details {
            println!("    {d}");
        }
    }
    let count =
        |f: &dyn Fn(&EntryVerdict<'_>) -> bool| out.migrations.iter().filter(|m| f(m)).count();
    println!(
        "{} migration(s) judged: {} down script(s) proven, {} refuted, {} without one; {} generated rollback(s) restore the catalog{}",
        out.migrations.len(),
        count(&|m| m.down == "proven"),
        count(&|m| m.down == "refuted"),
        count(&|m| m.down == "none"),
        count(&|m| m.generated == "proven"),
        if not_replayed > 0 {
            format!("; {not_replayed} migration(s) after a failing up were not replayed")
        } else {
            String::new()
        }
    );
    println!("gate: {}", out.gate.to_uppercase());
}

//! `deployclaw report merge`: partial reports of `validate-migration --partition K/N` into one
//! signed fleet report (the checks and the merge are `report::merge`).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::validate::{ReportFormat, finish};
use crate::exit;

/// `deployclaw report --help` examples.
pub const REPORT: &str = MERGE;

/// `deployclaw report merge --help` examples and exit codes.
pub const MERGE: &str = "Examples:
  deployclaw report merge part-1/report.json part-2/report.json part-3/report.json \\
      --public-key deployclaw-signing.pub --sign-key deployclaw-signing.pem --out merged.json
  deployclaw report merge parts/*/report.json --sign-key deployclaw-signing.pem \\
      --report-dir merged/ --format markdown

Each part must be signed (checked against --public-key when given, else against the key it
carries, the same for every part), be of the same migration, options and fleet, and the
parts must cover the fleet exactly once (partitions 1..N, each once, no shard twice).

Exit codes: 0 green (or yellow with --allow-yellow), 1 yellow, 2 red: the merged fleet gate;
3 the parts are refused (which file, which shard or partition is said) or unreadable.";

/// Report commands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge the partial reports of `validate-migration --partition K/N` into one fleet report.
    #[command(after_help = MERGE)]
    Merge(MergeArgs),
}

/// Arguments of `deployclaw report merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The partial reports (`report.json` of each partition's report dir), in any order.
    #[arg(required = true, value_name = "REPORT.json")]
    pub reports: Vec<PathBuf>,
    /// Write the merged JSON report here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write every rendering of the merged report (json, md, html, sarif, junit) here.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// What to print on standard output.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// The trusted public key (PEM or base64) every part must be signed with. Without it each
    /// part is only checked against the key it carries (a warning says so).
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// Ed25519 signing key for the merged report (see `deployclaw keygen`).
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Admit unsigned parts (refused by default).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// A YELLOW merged gate exits 0.
    #[arg(long)]
    pub allow_yellow: bool,
}

/// `deployclaw report …`.
pub fn run(c: ReportCommand) -> i32 {
    match c {
        ReportCommand::Merge(a) => merge(a),
    }
}

fn read_text(path: &Path) -> Result<String, i32> {
    super::check_input_file(path)?;
    deployclaw::input::read_capped_to_string(path).map_err(|e| {
        eprintln!("deployclaw: {}: cannot read: {e}", path.display());
        exit::INPUT
    })
}

/// `deployclaw report merge`.
fn merge(a: MergeArgs) -> i32 {
    match merge_inner(&a) {
        Ok(code) | Err(code) => code,
    }
}

fn merge_inner(a: &MergeArgs) -> Result<i32, i32> {
    let trusted = a
        .public_key
        .as_deref()
        .map(report::load_verifying_key)
        .transpose()
        .map_err(|e| {
            eprintln!("deployclaw: {e}");
            exit::INPUT
        })?;
    let sign_key = a
        .sign_key
        .as_deref()
        .map(report::load_signing_key)
        .transpose()
        .map_err(|e| {
            eprintln!("deployclaw: {e}");
            exit::INPUT
        })?;
    let opts = report::MergeOptions {
        trusted: trusted.as_ref(),
        allow_unsigned: a.allow_unsigned,
    };
    let mut parts = Vec::new();
    for path in &a.reports {
        let text = read_text(path)?;
        let part = report::read_part(&path.display().to_string(), &text, &opts).map_err(|e| {
            eprintln!("deployclaw: {e}");
            exit::INPUT
        })?;
        parts.push(part);
    }
    if trusted.is_none() {
        eprintln!(
            "deployclaw: WARNING: authenticity of the parts NOT proven: no --public-key given, so \
             each part was only checked against the key it carries itself"
        );
    }
    let mut merged = report::merge(&parts).map_err(|e| {
        eprintln!("deployclaw: {e}");
        exit::INPUT
    })?;
    eprintln!(
        "deployclaw: merged {} parts: {} shards, fleet gate {}",
        parts.len(),
        merged.shards.len(),
        merged.gate
    );
    if let Some(dir) = &a.report_dir {
        merged.set_output(Some(dir));
    }
    if let Some(out) = &a.out {
        merged.output.report_file = Some(out.display().to_string());
    }
    match &sign_key {
        Some(k) => report::sign(&mut merged, k).map_err(|e| {
            eprintln!("deployclaw: {e}");
            exit::INPUT
        })?,
        None => eprintln!("deployclaw: no --sign-key: the merged report is not signed"),
    }
    if let Some(out) = &a.out {
        write_json(&merged, out)?;
    }
    // The parts' policy (`--allow-yellow` when they were made) approved a YELLOW fleet.
    let allow_yellow = a.allow_yellow || merged.safety_gates.migration_approved;
    Ok(finish(
        &merged,
        a.report_dir.as_deref(),
        a.format,
        allow_yellow,
    ))
}

/// The merged JSON at `out`, written under a fresh name and renamed into place (a link
/// planted at `out` is replaced, never followed).
fn write_json(merged: &report::ValidationReport, out: &Path) -> Result<(), i32> {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("deployclaw: {}: {e}", out.display());
        exit::INPUT
    };
    let json = report::render::json(merged).map_err(|e| fail(&e))?;
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, json.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, out));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(&e));
    }
    eprintln!("deployclaw: wrote {}", out.display());
    Ok(())
}

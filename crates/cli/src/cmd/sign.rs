//! `deployclaw verify` and `deployclaw keygen`.

use std::path::PathBuf;

use clap::Args;
use report::ReportError;

use crate::exit;

/// Arguments of `deployclaw verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The JSON report (`report.json` in the report dir).
    pub report: PathBuf,
    /// The trusted public key (PEM or base64). Without it, the signature is only checked
    /// against the key embedded in the report — anyone can re-sign a changed report with their
    /// own key — so authenticity is NOT proven, and standard error says so.
    #[arg(long)]
    pub public_key: Option<PathBuf>,
    /// The migration file to check against the report's sha256 (default: the file the report
    /// names). A migration file that cannot be found or read is an input error (exit 3).
    #[arg(long)]
    pub migration: Option<PathBuf>,
}

/// Outcome of checking the migration file against the report.
enum MigrationCheck {
    Matches,
    Differs,
}

fn check_migration(
    v: &report::Verification,
    given: Option<&PathBuf>,
) -> Result<MigrationCheck, i32> {
    let path = given
        .cloned()
        .unwrap_or_else(|| PathBuf::from(&v.report.migration.file));
    if given.is_none() && !path.exists() {
        eprintln!(
            "deployclaw: {}: the migration file the report names is not here; pass --migration FILE \
             (sha256 in the report: {})",
            path.display(),
            v.report.migration.sha256
        );
        return Err(exit::INPUT);
    }
    super::check_input_file(&path)?;
    match report::verify_migration_file(&v.report, &path) {
        Ok(()) => {
            println!(
                "migration: {} matches sha256 {}",
                path.display(),
                v.report.migration.sha256
            );
            Ok(MigrationCheck::Matches)
        }
        Err(e @ ReportError::MigrationMismatch { .. }) => {
            println!("migration: MISMATCH: {e}");
            Ok(MigrationCheck::Differs)
        }
        Err(e) => {
            eprintln!("deployclaw: {}: cannot read: {e}", path.display());
            Err(exit::INPUT)
        }
    }
}

/// The approval part of the exit code: 0 approved, 1 not approved, 2 a token that does not
/// belong to this report.
fn approval_code(v: &report::Verification, key: Option<&report::VerifyingKey>) -> i32 {
    let gate_ok = v.report.safety_gates.migration_approved;
    if !gate_ok {
        println!(
            "approval: NOT approved (fleet gate {}{})",
            v.report.gate,
            v.report
                .safety_gates
                .approval_required
                .as_deref()
                .map(|r| format!(", needs approval by {r}"))
                .unwrap_or_default()
        );
    }
    let token_code = match (key, v.report.approval_token.as_ref()) {
        (_, None) => {
            println!("approval token: none issued");
            exit::GREEN
        }
        (None, Some(_)) => {
            println!("approval token: cannot check without a key");
            exit::YELLOW
        }
        (Some(k), Some(_)) => match v.token_status(k, chrono::Utc::now()) {
            Some(status) => {
                println!("approval token: {status}");
                use report::TokenStatus as T;
                match status {
                    T::Valid => exit::GREEN,
                    T::BadSignature | T::WrongMigration { .. } | T::WrongFleet { .. } => exit::RED,
                    T::UnsupportedVersion(_) => exit::INPUT,
                    _ => exit::YELLOW,
                }
            }
            None => exit::GREEN,
        },
    };
    match token_code {
        exit::GREEN if gate_ok => exit::GREEN,
        exit::GREEN => exit::YELLOW,
        c => c,
    }
}

/// `deployclaw verify REPORT`. Exit codes (one meaning each, printed by `--help`: `help::VERIFY`):
/// 0 authentic and approved; 1 authentic but not approved; 2 not authentic; 3 input error.
/// Without `--public-key` a loud warning says authenticity is unproven, and the code is 0/1
/// by the gate (2 when even the embedded key does not verify).
pub fn verify(a: VerifyArgs) -> i32 {
    if let Err(code) = super::check_input_file(&a.report) {
        return code;
    }
    let text = match deployclaw::input::read_capped_to_string(&a.report) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("deployclaw: {}: cannot read: {e}", a.report.display());
            return exit::INPUT;
        }
    };
    let trusted = match &a.public_key {
        Some(p) => match report::load_verifying_key(p) {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("deployclaw: {e}");
                return exit::INPUT;
            }
        },
        None => None,
    };
    let v = match report::verify(&text, trusted.as_ref()) {
        Ok(v) => v,
        Err(
            e @ (ReportError::BadSignature | ReportError::WrongKey { .. } | ReportError::Unsigned),
        ) => {
            println!("INVALID: {}: {e}", a.report.display());
            return exit::RED;
        }
        Err(e) => {
            eprintln!("deployclaw: {}: {e}", a.report.display());
            return exit::INPUT;
        }
    };
    if v.key_trusted {
        println!("signature: valid (ed25519, key {}, trusted)", v.public_key);
    } else {
        println!(
            "signature: consistent with the key embedded in the report ({}); authenticity NOT proven",
            v.public_key
        );
        eprintln!(
            "deployclaw: WARNING: authenticity NOT proven: no --public-key given, so the report \
             was only checked against the key it carries itself, which anyone who changes the \
             report can replace. Pass --public-key with your signer's public key."
        );
    }
    println!(
        "report: execution {} at {}, fleet gate {}, risk {}",
        v.report.execution_id, v.report.timestamp, v.report.gate, v.report.safety_gates.risk_level
    );
    match check_migration(&v, a.migration.as_ref()) {
        Ok(MigrationCheck::Matches) => {}
        Ok(MigrationCheck::Differs) => return exit::RED,
        Err(code) => return code,
    }
    let key = trusted.or_else(|| report::parse_verifying_key(&v.public_key, "report key").ok());
    approval_code(&v, key.as_ref())
}

/// Arguments of `deployclaw keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Signing key file to create (PKCS#8 PEM, mode 0600).
    #[arg(long, default_value = "deployclaw-signing.pem")]
    pub out: PathBuf,
    /// Public key file to create (default: `<out>.pub`).
    #[arg(long)]
    pub public_out: Option<PathBuf>,
}

/// `deployclaw keygen`.
pub fn keygen(a: KeygenArgs) -> i32 {
    let public = a.public_out.clone().unwrap_or_else(|| {
        let mut p = a.out.clone().into_os_string();
        p.push(".pub");
        PathBuf::from(p)
    });
    let key = report::generate_keypair();
    match report::write_keypair(&key, &a.out, &public) {
        Ok(()) => {
            println!("signing key: {} (keep it secret)", a.out.display());
            println!("public key:  {}", public.display());
            exit::GREEN
        }
        Err(e) => {
            eprintln!("deployclaw: {e}");
            exit::INPUT
        }
    }
}

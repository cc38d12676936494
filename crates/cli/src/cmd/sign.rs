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
    /// The trusted public key (PEM or base64). Without it, only integrity against the key
    /// embedded in the report is checked, and the output says so.
    #[arg(long)]
    pub public_key: Option<PathBuf>,
    /// The migration file to check against the report's sha256 (default: the file the report
    /// names, when it exists).
    #[arg(long)]
    pub migration: Option<PathBuf>,
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

/// `deployclaw verify REPORT`: exit 0 when the signature is valid, the migration file matches
/// and the approval token (if any) allows deploying; 1 when the report is intact but its token
/// does not allow deploying (expired, approval needed, RED fleet); 2 when the report was
/// changed, signed by another key or the migration file differs; 3 for unreadable input.
pub fn verify(a: VerifyArgs) -> i32 {
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
    println!(
        "signature: valid (ed25519, key {}{})",
        v.public_key,
        if v.key_trusted {
            ", trusted"
        } else {
            ", NOT checked against a trusted key: pass --public-key"
        }
    );
    println!(
        "report: execution {} at {}, fleet gate {}, risk {}",
        v.report.execution_id, v.report.timestamp, v.report.gate, v.report.safety_gates.risk_level
    );
    let migration = a.migration.clone().or_else(|| {
        let p = PathBuf::from(&v.report.migration.file);
        p.is_file().then_some(p)
    });
    let mut code = exit::GREEN;
    match migration {
        Some(p) => match report::verify_migration_file(&v.report, &p) {
            Ok(()) => println!(
                "migration: {} matches sha256 {}",
                p.display(),
                v.report.migration.sha256
            ),
            Err(e) => {
                println!("migration: MISMATCH: {e}");
                code = exit::RED;
            }
        },
        None => println!(
            "migration: {} not found here; sha256 in the report is {}",
            v.report.migration.file, v.report.migration.sha256
        ),
    }
    let key = trusted.or_else(|| report::parse_verifying_key(&v.public_key, "report key").ok());
    match (key, v.report.approval_token.as_ref()) {
        (Some(k), Some(_)) => {
            if let Some(status) = v.token_status(&k, chrono::Utc::now()) {
                println!("approval token: {status}");
                if !status.is_valid() {
                    code = code.max(exit::YELLOW);
                }
            }
        }
        (_, None) => println!("approval token: none issued"),
        (None, Some(_)) => println!("approval token: cannot check without a key"),
    }
    code
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

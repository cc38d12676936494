//! `deployclaw completions` and `deployclaw man`, generated from the clap command tree, and the
//! "Examples:" block every command's `--help` ends with.

use clap::{Args, ValueEnum};
use std::io::Write;

/// Shells `deployclaw completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Bash (`source <(deployclaw completions bash)`).
    Bash,
    /// Zsh (save as `_deployclaw` on `$fpath`).
    Zsh,
    /// Fish (save as `~/.config/fish/completions/deployclaw.fish`).
    Fish,
}

/// Arguments of `deployclaw completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    pub shell: Shell,
}

/// Arguments of `deployclaw man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command (`deployclaw.1`, `deployclaw-validate-migration.1`,
    /// `deployclaw-rollback-prove.1`, …: every flag of every command) into this directory
    /// instead of the overview page on standard output.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<std::path::PathBuf>,
}

/// `deployclaw completions SHELL`: the completion script on standard output.
pub fn completions(a: &CompletionsArgs, mut cmd: clap::Command) -> i32 {
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "deployclaw", &mut out);
    emit(&out)
}

/// `deployclaw man`: the roff overview page (the commands, the global options) on standard
/// output, or with `--out-dir` one page per command, each with all its flags.
pub fn man(a: &ManArgs, cmd: clap::Command) -> i32 {
    if let Some(dir) = &a.out_dir {
        if let Err(e) =
            std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(cmd, dir))
        {
            eprintln!(
                "deployclaw: {}: cannot write the manual pages: {e}",
                dir.display()
            );
            return crate::exit::INPUT;
        }
        return crate::exit::GREEN;
    }
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
        eprintln!("deployclaw: cannot render the manual page: {e}");
        return crate::exit::INPUT;
    }
    emit(&out)
}

/// Write generated output to standard output; a closed pipe (`| head`) is not an error.
fn emit(bytes: &[u8]) -> i32 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => crate::exit::GREEN,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => crate::exit::GREEN,
        Err(e) => {
            eprintln!("deployclaw: cannot write to standard output: {e}");
            crate::exit::INPUT
        }
    }
}

/// `deployclaw lint --help` examples.
pub const LINT: &str = "Examples:
  deployclaw lint migrations/
  deployclaw lint --changed-since origin/main migrations/
  python manage.py sqlmigrate app 0042 | deployclaw lint -
  deployclaw lint --format github --pg-version 16 db/migrate/";

/// `deployclaw explain --help` examples.
pub const EXPLAIN: &str = "Examples:
  deployclaw explain require-concurrent-index
  deployclaw explain DC101";

/// `deployclaw rules --help` examples.
pub const RULES: &str = "Examples:
  deployclaw rules
  deployclaw rules --format json --config deployclaw.toml";

/// `deployclaw validate-migration --help` examples.
pub const VALIDATE: &str = "Examples:
  deployclaw validate-migration --sql-file 0042.sql --target-db postgres://gate@db/app \\
      --tenant-schemas 'tenant_*'
  deployclaw validate-migration --sql-file 0042.sql --topology fleet.toml \\
      --validate-rollback --report-dir out/ --sign-key deployclaw-signing.pem
  deployclaw validate-migration --sql-file 0042.sql --target-db my-aurora-cluster --format json";

/// `deployclaw demo --help` examples.
pub const DEMO: &str = "Examples:
  deployclaw demo
  deployclaw demo --tenants 20 --instances 2 --report-dir /tmp/demo-report";

/// `deployclaw topology discover --help` examples.
pub const TOPOLOGY_DISCOVER: &str = "Examples:
  deployclaw topology discover --target-db postgres://gate@db/app --tenant-schemas 'tenant_*'
  deployclaw topology discover --topology fleet.toml --format json";

/// `deployclaw rollback generate --help` examples.
pub const ROLLBACK_GENERATE: &str = "Examples:
  deployclaw rollback generate --sql-file 0042.sql --schema-file schema.sql
  deployclaw rollback generate --sql-file 0042.sql --target-db postgres://gate@db/app";

/// `deployclaw rollback prove --help` examples and exit codes.
pub const ROLLBACK_PROVE: &str = "Examples:
  deployclaw rollback prove migrations/
  deployclaw rollback prove db/migration --since V42 --format json
  deployclaw rollback prove migrations/ --setup-sql setup.sql --shadow postgres://scratch@localhost/postgres

Exit codes:
  0  every judged down script is proven (or absent with a generated rollback that restores)
  1  a migration without a down script whose generated rollback does not restore the catalog
  2  a down script is refuted (it fails or does not restore the catalog), or an up script
     fails on a fresh database
  3  input error: no migrations directory, an unknown or ambiguous layout
  4  the shadow could not be started";

/// `deployclaw verify --help` examples and exit codes.
pub const VERIFY: &str = "Examples:
  deployclaw verify report/report.json --public-key deployclaw-signing.pub
  deployclaw verify report/report.json --public-key deployclaw-signing.pub --migration 0042.sql

Exit codes:
  0  authentic and approved: the signature verifies, the migration file matches, the fleet
     gate is approved (GREEN, or YELLOW with --allow-yellow) and the approval token, if any,
     is valid
  1  authentic but not approved: YELLOW or RED gate, or the approval token expired, is not
     yet valid or needs an approval
  2  not authentic: unsigned, tampered, signed by another key than --public-key, or the
     migration file differs from the one validated
  3  input error: the report or the migration file is missing or unreadable, a key does not
     parse

Without --public-key, authenticity is unproven (a warning on standard error): the exit code
is then 0 or 1 by the gate as above, or 2 when the report does not even match the key
embedded in it; it never means the report came from your signer.";

/// `deployclaw keygen --help` examples.
pub const KEYGEN: &str = "Examples:
  deployclaw keygen
  deployclaw keygen --out ci-signing.pem --public-out ci-signing.pub";

/// `deployclaw completions --help` examples.
pub const COMPLETIONS: &str = "Examples:
  source <(deployclaw completions bash)
  deployclaw completions zsh > ~/.zfunc/_deployclaw
  deployclaw completions fish > ~/.config/fish/completions/deployclaw.fish";

/// `deployclaw man --help` examples.
pub const MAN: &str = "Examples:
  deployclaw man > deployclaw.1 && man ./deployclaw.1
  deployclaw man --out-dir /usr/local/share/man/man1 && man deployclaw-validate-migration";

/// Examples of the command groups (`topology`, `rollback`).
pub const TOPOLOGY: &str = TOPOLOGY_DISCOVER;
/// Examples of `deployclaw rollback`.
pub const ROLLBACK: &str = "Examples:
  deployclaw rollback generate --sql-file 0042.sql --schema-file schema.sql
  deployclaw rollback prove migrations/";
/// Examples of `deployclaw` itself.
pub const ROOT: &str = "Examples:
  deployclaw demo
  deployclaw lint migrations/
  deployclaw validate-migration --sql-file 0042.sql --target-db postgres://gate@db/app \\
      --tenant-schemas 'tenant_*'";

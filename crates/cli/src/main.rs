//! The `deployclaw` binary: parses flags, composes the libraries, prints progress, sets the exit
//! code. Only this crate knows clap, exit codes, environment variables and anyhow.

mod cmd;
mod exit;

use clap::{Parser, Subcommand};

/// Gate schema migrations for multi-tenant PostgreSQL fleets before they ship.
#[derive(Debug, Parser)]
#[command(name = "deployclaw", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Static gates only, no database.
    Lint(cmd::lint::LintArgs),
    /// Print a rule's documentation.
    Explain(cmd::lint::ExplainArgs),
    /// List every rule with its code and default severity.
    Rules(cmd::lint::RulesArgs),
    /// The whole gate: probes and rehearsal on every shard, rollback, signed report.
    ValidateMigration(Box<cmd::validate::ValidateArgs>),
    /// Start an ephemeral fleet with planted problems, validate the example migration, write
    /// the report.
    Demo(cmd::validate::DemoArgs),
    /// Topology commands.
    #[command(subcommand)]
    Topology(cmd::topology::TopologyCommand),
    /// Rollback commands.
    #[command(subcommand)]
    Rollback(cmd::rollback::RollbackCommand),
    /// Check a report's signature, its migration file and its approval token.
    Verify(cmd::sign::VerifyArgs),
    /// Create an Ed25519 key pair for signing reports.
    Keygen(cmd::sign::KeygenArgs),
}

fn main() {
    // Usage errors exit 3 (DESIGN.md), not clap's default 2, which means RED here.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::INPUT
            } else {
                exit::GREEN
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match cli.command {
        Command::Lint(a) => cmd::lint::run(a),
        Command::Explain(a) => cmd::lint::explain(a),
        Command::Rules(a) => cmd::lint::rules(a),
        Command::ValidateMigration(a) => cmd::validate::run(*a),
        Command::Demo(a) => cmd::validate::demo(a),
        Command::Topology(c) => cmd::topology::run(c),
        Command::Rollback(c) => cmd::rollback::run(c),
        Command::Verify(a) => cmd::sign::verify(a),
        Command::Keygen(a) => cmd::sign::keygen(a),
    };
    // An ignored password file (group- or world-readable) is worth knowing about, especially
    // when the connection then failed for want of a password.
    for w in topology::pgpass::take_warnings() {
        eprintln!("deployclaw: warning: {w}");
    }
    std::process::exit(code);
}

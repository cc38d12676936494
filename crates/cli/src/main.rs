//! The `deployclaw` binary: parses flags, composes the libraries, prints progress, sets the exit
//! code. Only this crate knows clap, exit codes, environment variables and anyhow.

mod cmd;
mod exit;
mod progress;

use clap::{CommandFactory, Parser, Subcommand};
use cmd::help;

/// Gate schema migrations for multi-tenant PostgreSQL fleets before they ship.
#[derive(Debug, Parser)]
#[command(name = "deployclaw", version, about, long_about = None, after_help = help::ROOT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Static gates only, no database.
    #[command(after_help = help::LINT)]
    Lint(cmd::lint::LintArgs),
    /// Print a rule's documentation.
    #[command(after_help = help::EXPLAIN)]
    Explain(cmd::lint::ExplainArgs),
    /// List every rule with its code and default severity.
    #[command(after_help = help::RULES)]
    Rules(cmd::lint::RulesArgs),
    /// The whole gate: probes and rehearsal on every shard, rollback, signed report.
    #[command(after_help = help::VALIDATE)]
    ValidateMigration(Box<cmd::validate::ValidateArgs>),
    /// Start an ephemeral fleet with planted problems, validate the example migration, write
    /// the report.
    #[command(after_help = help::DEMO)]
    Demo(cmd::validate::DemoArgs),
    /// Topology commands.
    #[command(subcommand, after_help = help::TOPOLOGY)]
    Topology(cmd::topology::TopologyCommand),
    /// Rollback commands.
    #[command(subcommand, after_help = help::ROLLBACK)]
    Rollback(cmd::rollback::RollbackCommand),
    /// Report commands: merge the partial reports of `--partition K/N`.
    #[command(subcommand, after_help = cmd::report::REPORT)]
    Report(cmd::report::ReportCommand),
    /// Check a report's signature, its migration file and its approval token.
    #[command(after_help = help::VERIFY)]
    Verify(cmd::sign::VerifyArgs),
    /// Create an Ed25519 key pair for signing reports.
    #[command(after_help = help::KEYGEN)]
    Keygen(cmd::sign::KeygenArgs),
    /// Print a shell completion script (bash, zsh, fish).
    #[command(after_help = help::COMPLETIONS)]
    Completions(help::CompletionsArgs),
    /// Print the manual page (roff).
    #[command(after_help = help::MAN)]
    Man(help::ManArgs),
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
        Command::Report(c) => cmd::report::run(c),
        Command::Verify(a) => cmd::sign::verify(a),
        Command::Keygen(a) => cmd::sign::keygen(a),
        Command::Completions(a) => help::completions(&a, Cli::command()),
        Command::Man(a) => help::man(&a, Cli::command()),
    };
    // An ignored password file (group- or world-readable) is worth knowing about, especially
    // when the connection then failed for want of a password.
    for w in topology::pgpass::take_warnings() {
        eprintln!("deployclaw: warning: {w}");
    }
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command of the tree (`lint`, `topology discover`, ...), with its path.
    fn walk(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            let p = format!("{path} {}", sub.get_name());
            out.push((p.clone(), sub.clone()));
            walk(sub, p, out);
        }
    }

    #[test]
    fn every_command_help_has_examples() {
        Cli::command().debug_assert();
        let mut all = vec![("deployclaw".to_string(), Cli::command())];
        walk(&Cli::command(), "deployclaw".to_string(), &mut all);
        assert!(all.len() >= 13, "{}", all.len());
        let missing: Vec<&str> = all
            .iter()
            .filter(|(_, c)| {
                !c.get_after_help().is_some_and(|h| {
                    h.to_string().starts_with("Examples:\n  deployclaw")
                        || h.to_string().starts_with("Examples:\n  source")
                })
            })
            .map(|(p, _)| p.as_str())
            .collect();
        assert!(missing.is_empty(), "--help without examples: {missing:?}");
    }
}

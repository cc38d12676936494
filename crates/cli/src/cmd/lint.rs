//! `deployclaw lint`, `explain`, `rules`.
use clap::Args;

/// Arguments of `deployclaw lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files or directories to lint; `-` reads standard input.
    pub paths: Vec<std::path::PathBuf>,
}
/// Arguments of `deployclaw explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Rule name or code.
    pub rule: String,
}
/// Arguments of `deployclaw rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {}

pub fn run(_a: LintArgs) -> i32 {
    crate::exit::INPUT
}
pub fn explain(_a: ExplainArgs) -> i32 {
    crate::exit::INPUT
}
pub fn rules(_a: RulesArgs) -> i32 {
    crate::exit::INPUT
}

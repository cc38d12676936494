//! `deployclaw lint --changed-since REF`: the migration files changed since REF, by git.
//!
//! Changed = `git diff --name-only --diff-filter=ACMR REF...HEAD` (committed on this branch
//! since it left REF) plus what is not committed yet (staged, unstaged, untracked and not
//! ignored). Kept: existing `*.sql` files that the shared layout detection
//! ([`migration_parser::layout::file_role`]) calls migrations (rollback scripts are not), under
//! one of the paths given (all of the repository when none). git runs with a cleared
//! environment except `PATH`, `HOME` and `GIT_*`.

use migration_parser::layout::{FileRole, file_role};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The migration files changed since `base`, restricted to `paths` (files or directories;
/// empty: everything), in natural path order. `Err` is the message of an input error.
pub(crate) fn changed_migrations(base: &str, paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    if base.starts_with('-') || base.is_empty() {
        return Err(format!(
            "error: --changed-since {base:?}: not a git revision"
        ));
    }
    let top = git(&["rev-parse", "--show-toplevel"])
        .map_err(|e| format!("error: --changed-since needs a git repository: {e}"))?;
    let top = PathBuf::from(top.trim_end_matches(['\n', '\0']));
    git(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{base}^{{commit}}"),
    ])
    .map_err(|_| format!("error: --changed-since {base}: unknown revision"))?;
    let mut names = Vec::new();
    for args in [
        &[
            "diff",
            "-z",
            "--name-only",
            "--diff-filter=ACMR",
            &format!("{base}...HEAD"),
        ][..],
        &["diff", "-z", "--name-only", "--diff-filter=ACMR", "HEAD"][..],
        &[
            "ls-files",
            "-z",
            "--others",
            "--exclude-standard",
            "--full-name",
            ":/",
        ][..],
    ] {
        let out = git(args).map_err(|e| format!("error: --changed-since {base}: {e}"))?;
        names.extend(
            out.split('\0')
                .filter(|n| !n.is_empty())
                .map(|n| top.join(n)),
        );
    }
    let roots = paths
        .iter()
        .map(|p| {
            p.canonicalize().map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("{}: error: no such file or directory", p.display())
                }
                k => format!("{}: error: {k}", p.display()),
            })
        })
        .collect::<Result<Vec<PathBuf>, String>>()?;
    let mut files: Vec<PathBuf> = names
        .into_iter()
        .filter(|f| f.extension().is_some_and(|x| x.eq_ignore_ascii_case("sql")) && f.is_file())
        .filter(|f| file_role(f, Path::exists) == FileRole::Migration)
        .filter_map(|f| f.canonicalize().ok())
        .filter(|f| roots.is_empty() || roots.iter().any(|r| f.starts_with(r)))
        .collect();
    files.sort_by(|a, b| gates::lint::natural_path_cmp(a, b));
    files.dedup();
    // Shown relative to the current directory when under it, as `lint DIR` shows them.
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|d| d.canonicalize().ok());
    Ok(files
        .into_iter()
        .map(
            |f| match cwd.as_ref().and_then(|d| f.strip_prefix(d).ok()) {
                Some(rel) => rel.to_path_buf(),
                None => f,
            },
        )
        .collect())
}

/// Run `git ARGS` in the current directory with a cleared environment (`PATH`, `HOME`,
/// `GIT_*` kept); its standard output, or its first error line.
fn git(args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new("git");
    cmd.env_clear().args(args);
    for (k, v) in std::env::vars_os() {
        let k_str = k.to_string_lossy();
        if k_str == "PATH" || k_str == "HOME" || k_str.starts_with("GIT_") {
            cmd.env(&k, v);
        }
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("git failed");
        Err(first.trim_start_matches("fatal: ").to_string())
    }
}

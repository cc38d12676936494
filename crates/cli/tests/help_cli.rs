//! `deployclaw completions`, `deployclaw man` and the `--help` examples, as the real binary.

use std::process::{Command, Output};

const SUBCOMMANDS: &[&str] = &[
    "lint",
    "explain",
    "rules",
    "validate-migration",
    "demo",
    "topology",
    "rollback",
    "verify",
    "keygen",
    "completions",
    "man",
];

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deployclaw"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run deployclaw")
}

fn stdout_ok(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn completions_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_ok(&["completions", shell]);
        let missing: Vec<&&str> = SUBCOMMANDS
            .iter()
            .filter(|c| !script.contains(**c))
            .collect();
        assert!(missing.is_empty(), "{shell}: missing {missing:?}");
        // Nested commands and flags too.
        for word in ["discover", "generate", "changed-since", "sql-file"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    let fish = stdout_ok(&["completions", "fish"]);
    let lines: Vec<&str> = fish
        .lines()
        .filter(|l| l.contains("\"__fish_deployclaw_needs_command\"") && l.contains(" -a "))
        .collect();
    insta::assert_snapshot!("completions_fish_subcommands", lines.join("\n"));
}

#[test]
fn completions_of_an_unknown_shell_is_a_usage_error() {
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn man_renders_every_command() {
    let page = stdout_ok(&["man"]);
    assert!(page.contains(".TH deployclaw 1"), "{page}");
    // roff escapes hyphens (`validate\-migration`).
    let plain = page.replace("\\-", "-");
    for c in SUBCOMMANDS {
        assert!(plain.contains(c), "man page without {c}");
    }
    let head: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with(".TH") || l.starts_with(".SH"))
        .collect();
    insta::assert_snapshot!("man_sections", head.join("\n"));
}

#[test]
fn man_out_dir_writes_one_page_per_command_with_its_flags() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deployclaw"))
        .args(["man", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let page = |name: &str| {
        std::fs::read_to_string(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .replace("\\-", "-")
    };
    assert!(page("deployclaw.1").contains(".TH deployclaw 1"));
    let validate = page("deployclaw-validate-migration.1");
    for flag in [
        "--sql-file",
        "--migration",
        "--rollback-file",
        "--report-dir",
    ] {
        assert!(
            validate.contains(flag),
            "validate-migration page without {flag}"
        );
    }
    assert!(page("deployclaw-rollback-prove.1").contains("--since"));
    for c in SUBCOMMANDS {
        assert!(
            dir.path().join(format!("deployclaw-{c}.1")).is_file(),
            "no page for {c}"
        );
    }
}

#[test]
fn every_help_ends_with_examples() {
    let mut commands: Vec<Vec<&str>> = SUBCOMMANDS.iter().map(|c| vec![*c]).collect();
    commands.push(vec!["topology", "discover"]);
    commands.push(vec!["rollback", "generate"]);
    commands.push(vec!["rollback", "prove"]);
    commands.push(vec![]);
    for c in &commands {
        let mut args = c.clone();
        args.push("--help");
        let help = stdout_ok(&args);
        assert!(
            help.contains("\nExamples:\n  "),
            "{c:?} --help has no examples:\n{help}"
        );
    }
    insta::assert_snapshot!("lint_help", stdout_ok(&["lint", "--help"]));
}

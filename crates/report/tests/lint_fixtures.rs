//! The text diagnostic a user reads, for every rule fixture of the gates crate
//! (`crates/gates/tests/fixtures/*.sql`): parse with the fixture's `-- config:` header, lint with
//! the built-in registry, render as `deployclaw lint` does, snapshot one file per fixture.

use gates::{Config, Registry};
use report::lint::{LintedFile, TextOptions, render_text};
use std::path::Path;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../gates/tests/fixtures");

#[test]
fn every_rule_fixture_renders_as_text() {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .expect("gates fixtures directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 20,
        "expected a fixture per rule, found {names:?}"
    );

    for file in names {
        let src = std::fs::read_to_string(Path::new(FIXTURES).join(&file)).expect("read fixture");
        let toml: String = src
            .lines()
            .map_while(|l| l.strip_prefix("-- config: "))
            .map(|l| format!("{l}\n"))
            .collect();
        let config = Config::from_toml_str(&file, &toml).expect("fixture config parses");
        let shown = format!("fixtures/{file}");
        let migration =
            migration_parser::parse(&shown, &src, &config.parse_options()).expect("fixture parses");
        let findings = Registry::builtin().lint(&migration, &config);
        let out = render_text(
            &[LintedFile {
                file: &shown,
                source: &migration.source,
                findings: &findings,
            }],
            &TextOptions { color: false },
        );

        // Every finding is rendered with its header and its location line.
        for f in &findings {
            let header = format!("{}[{} {}]: ", f.severity, f.code, f.rule);
            assert!(
                out.contains(&header),
                "{file}: `{header}` missing in\n{out}"
            );
            if let Some(l) = &f.location {
                let arrow = format!("--> {shown}:{}:{}", l.line, l.column);
                assert!(out.contains(&arrow), "{file}: `{arrow}` missing in\n{out}");
            }
        }
        let name = file.trim_end_matches(".sql").to_string();
        insta::with_settings!({ snapshot_suffix => name.clone(), description => format!("deployclaw lint {shown}") }, {
            insta::assert_snapshot!("fixture", out);
        });
    }
}

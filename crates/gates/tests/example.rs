//! Runs the root package's `examples/custom_rule.rs` (custom Rust rules through the public API)
//! as a test, so a break shows up in `cargo test -p gates` as well as in `cargo run --example`.

#[allow(dead_code)]
#[path = "../../../examples/custom_rule.rs"]
mod example;

#[test]
fn the_custom_rule_example_runs_and_reports() {
    let lines = example::run();
    insta::assert_snapshot!(lines.join("\n"));
}

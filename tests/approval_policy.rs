//! `[approval]` in deployclaw.toml maps risk levels to the role that must approve.

use deployclaw::gates::Config;
use deployclaw::pipeline::{ValidateOptions, gate_policy};
use deployclaw::report::RiskLevel;

fn opts(toml: &str) -> ValidateOptions {
    let mut o = ValidateOptions::new("m.sql");
    o.config = Config::from_toml_str("deployclaw.toml", toml).expect("config");
    o
}

#[test]
fn approval_table_overrides_the_default_roles() {
    let p = gate_policy(&opts(
        "[approval]\nmedium = \"\"\nhigh = \"DATA_OWNER\"\ncritical = \"CTO\"\n",
    ))
    .expect("policy");
    assert_eq!(p.approval.role_for(RiskLevel::Medium), None);
    assert_eq!(p.approval.role_for(RiskLevel::High), Some("DATA_OWNER"));
    assert_eq!(p.approval.role_for(RiskLevel::Critical), Some("CTO"));
    assert_eq!(p.approval.role_for(RiskLevel::Low), None);
}

#[test]
fn defaults_without_an_approval_table() {
    let p = gate_policy(&opts("pg_version = 15\n")).expect("policy");
    assert_eq!(p.approval.role_for(RiskLevel::High), Some("DATA_OWNER"));
    assert_eq!(p.approval.role_for(RiskLevel::Medium), Some("TECH_LEAD"));
}

#[test]
fn unknown_keys_and_non_strings_are_errors() {
    let e = gate_policy(&opts("[approval]\nurgent = \"X\"\n")).expect_err("unknown key");
    assert!(e.to_string().contains("unknown key `urgent`"), "{e}");
    let e = gate_policy(&opts("[approval]\nhigh = 3\n")).expect_err("not a string");
    assert!(e.to_string().contains("expected a role name"), "{e}");
}

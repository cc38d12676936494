//! Embedding the whole gate in another Rust tool: start a small throwaway fleet (in real use,
//! resolve yours with `Fleet::from_url` / `Topology` / RDS), validate a migration, act on the
//! verdict. Run: `cargo run --example embed_gate`.

use deployclaw::gates::Gate;
use deployclaw::pipeline::{ValidateOptions, validate};
use deployclaw::simulator::{CancelToken, NoProgress};
use deployclaw::topology::fixture::{FixtureSpec, Plant, start_fleet};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = FixtureSpec {
        tenants: 4,
        rows: 40,
        ..FixtureSpec::default()
    }
    .plant(3, Plant::OrphanedCoupons { rows: 2 });
    let fleet = start_fleet(2, &spec).await?; // 2 instances, 4 tenant schemas
    let opts = ValidateOptions::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/migrations/schema_v42.sql"
    ));
    let report = validate(&opts, &fleet.fleet, &NoProgress, &CancelToken::new()).await?;
    for shard in &report.shards {
        let reasons: Vec<&str> = shard
            .findings
            .iter()
            .filter(|f| f.severity > deployclaw::gates::Severity::Info)
            .map(|f| f.rule.as_str())
            .collect();
        println!(
            "{:<28} {:<6} {}",
            shard.shard,
            shard.gate.to_string(),
            reasons.join(", ")
        );
    }
    println!(
        "fleet gate: {}, rollback tested: {}",
        report.gate, report.rollback.tested
    );
    assert_eq!(
        report.gate,
        Gate::Red,
        "tenant 3's orphaned coupons must block the migration"
    );
    Ok(())
}

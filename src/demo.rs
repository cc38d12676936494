//! `deployclaw demo`: the main job with nothing to configure. Starts three ephemeral
//! PostgreSQL instances, creates 100 tenant schemas with planted problems
//! ([`demo_plants`]), validates the example migration (`examples/migrations/schema_v42.sql`,
//! embedded) and writes the report.

use std::collections::BTreeMap;
use std::path::PathBuf;

use report::ValidationReport;
use simulator::{CancelToken, Progress};
use topology::fixture::{DriftKind, EphemeralFleet, FixtureSpec, Plant, start_fleet_with};

use crate::PipelineError;
use crate::pipeline::{ValidateOptions, validate};

/// The example migration validated by the demo.
pub const EXAMPLE_MIGRATION: &str = include_str!("../examples/migrations/schema_v42.sql");

/// What the demo builds.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Ephemeral instances (3).
    pub instances: usize,
    /// Tenant schemas over all instances (100).
    pub tenants: usize,
    /// Base row count per tenant (see [`topology::fixture`]).
    pub rows: u32,
    /// Rows added to the large tenant's `events` table.
    pub large_tenant_events: u32,
    /// Where the migration copy and the report files go.
    pub report_dir: PathBuf,
    /// Blocking-lock budget per shard (ms). 100 ms by default: the large tenant's `events`
    /// (~40 MB after the plant) is rewritten under ACCESS EXCLUSIVE for ~0.3 s at a typical
    /// local rewrite rate of ~150 MB/s, every other tenant for ~10 ms — the budget sits between
    /// them with room on both sides.
    pub lock_budget_ms: u64,
    /// Machine-local caches (see [`ValidateOptions::cache_dir`]): also used for the demo's own
    /// ephemeral instances (their `initdb` template).
    pub cache_dir: Option<PathBuf>,
    /// Calibrate the shadow again even if a recent calibration is cached.
    pub recalibrate: bool,
    /// Where the validation's ephemeral shadow goes (see
    /// [`ValidateOptions::shadow_base_dir`]).
    pub shadow_base_dir: Option<PathBuf>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            instances: 3,
            tenants: 100,
            rows: 200,
            large_tenant_events: 300_000,
            report_dir: PathBuf::from("deployclaw-demo-report"),
            lock_budget_ms: 100,
            cache_dir: None,
            recalibrate: false,
            shadow_base_dir: crate::pipeline::default_shadow_base_dir(),
        }
    }
}

/// The planted problems, by tenant number, for a fleet of `tenants` tenants. Tenant numbers
/// beyond the fleet are left out. Each plant makes exactly one statement of the example
/// migration fail (or exceed the lock budget) on that shard:
///
/// | tenant | plant | expected gate, rule |
/// |---|---|---|
/// | 7, 42, 77 | orphaned `orders.coupon_id` | RED `fk-orphans` |
/// | 13, 58 | NULL `orders.shipping_address` | RED `not-null-violations` |
/// | 21 | duplicate `users.email` | RED `unique-violations` |
/// | 34, 89 | `orders.legacy_amount = 'abc'` | RED `cast-failures` |
/// | 95 | negative `payments.amount_cents` | RED `check-violations` |
/// | 50 | index `orders_created_at_idx` missing | YELLOW `schema-drift` |
/// | 64 | 300,000 extra `events` rows | YELLOW `lock-time-budget` |
pub fn demo_plants(tenants: usize, large_events: u32) -> BTreeMap<usize, Vec<Plant>> {
    let mut p: BTreeMap<usize, Vec<Plant>> = BTreeMap::new();
    for t in [7, 42, 77] {
        p.entry(t)
            .or_default()
            .push(Plant::OrphanedCoupons { rows: 3 });
    }
    for t in [13, 58] {
        p.entry(t)
            .or_default()
            .push(Plant::NullShippingAddresses { rows: 2 });
    }
    p.entry(21)
        .or_default()
        .push(Plant::DuplicateEmails { rows: 2 });
    for t in [34, 89] {
        p.entry(t)
            .or_default()
            .push(Plant::UncastableAmounts { rows: 1 });
    }
    p.entry(95)
        .or_default()
        .push(Plant::NegativePayments { rows: 1 });
    p.entry(50).or_default().push(Plant::Drift {
        kind: DriftKind::MissingIndex,
    });
    p.entry(64)
        .or_default()
        .push(Plant::LargeEvents { rows: large_events });
    p.retain(|t, _| *t <= tenants);
    p
}

/// Start the demo fleet: `opts.instances` ephemeral clusters with `opts.tenants` tenants and
/// the [`demo_plants`]. Keep the returned value alive while the fleet is used; dropping it stops
/// and removes the clusters.
pub async fn start_demo_fleet(opts: &DemoOptions) -> Result<EphemeralFleet, PipelineError> {
    let spec = FixtureSpec {
        tenants: opts.tenants,
        rows: opts.rows,
        plants: demo_plants(opts.tenants, opts.large_tenant_events),
        ..FixtureSpec::default()
    };
    let ephemeral = topology::ephemeral::EphemeralOptions {
        template_cache: opts.cache_dir.clone(),
        ..Default::default()
    };
    Ok(start_fleet_with(opts.instances, &spec, &ephemeral).await?)
}

/// Run the demo: start the fleet, validate the example migration, write the report files into
/// `opts.report_dir`. Returns the report and the files written.
pub async fn run_demo(
    opts: &DemoOptions,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<(ValidationReport, Vec<PathBuf>), PipelineError> {
    std::fs::create_dir_all(&opts.report_dir).map_err(|source| PipelineError::Read {
        file: opts.report_dir.display().to_string(),
        source,
    })?;
    let sql_file = opts.report_dir.join("schema_v42.sql");
    std::fs::write(&sql_file, EXAMPLE_MIGRATION).map_err(|source| PipelineError::Read {
        file: sql_file.display().to_string(),
        source,
    })?;
    let fleet = start_demo_fleet(opts).await?;
    let mut vopts = ValidateOptions::new(&sql_file);
    vopts.lock_budget_ms = Some(opts.lock_budget_ms);
    vopts.cache_dir = opts.cache_dir.clone();
    vopts.recalibrate = opts.recalibrate;
    vopts.shadow_base_dir = opts.shadow_base_dir.clone();
    vopts.fleet_source = format!(
        "demo: {} ephemeral instances, {} tenant schemas",
        opts.instances, opts.tenants
    );
    let mut report = validate(&vopts, &fleet.fleet, progress, cancel).await?;
    // The `output` block names the files written below (the demo report is unsigned).
    report.set_output(Some(&opts.report_dir));
    let files = report::render::write_all(&report, &opts.report_dir)?;
    drop(fleet);
    Ok((report, files))
}

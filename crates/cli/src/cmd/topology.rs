//! `deployclaw topology ...`.
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use deployclaw::fleet_source::{FleetRequest, FleetTarget, resolve_fleet};
use serde::Serialize;
use topology::catalog::{DriftReport, detect_drift};
use topology::{DiscoverySpec, Fleet, ScanOptions, Topology, TopologyError, introspect_fleet};

/// Topology subcommands.
#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// Print the fleet, its schema shapes and drifted shards.
    #[command(after_help = super::help::TOPOLOGY_DISCOVER)]
    Discover(DiscoverArgs),
}

/// Output format of `topology discover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiscoverFormat {
    /// Human-readable text.
    Text,
    /// JSON on stdout.
    Json,
}

/// Arguments of `deployclaw topology discover`.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// A `postgres://` URL or libpq key=value pairs of one instance (password from it, else
    /// PGPASSWORD, else the password file PGPASSFILE / ~/.pgpass), a topology file, or an RDS
    /// cluster/instance identifier.
    #[arg(long, value_name = "URL|FILE|RDS-ID", conflicts_with = "topology")]
    pub target_db: Option<String>,
    /// RDS flags.
    #[command(flatten)]
    pub aws: super::aws::AwsArgs,
    /// A TOML topology file.
    #[arg(long, value_name = "FILE")]
    pub topology: Option<PathBuf>,
    /// Tenant schemas: glob (`tenant_*`) or SQL LIKE (`tenant\_%`). Default with --target-db: `tenant_*`.
    #[arg(long, value_name = "PATTERN", conflicts_with = "tenant_databases")]
    pub tenant_schemas: Option<String>,
    /// Tenant databases (database-per-tenant; objects in `public`).
    #[arg(long, value_name = "PATTERN")]
    pub tenant_databases: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiscoverFormat::Text)]
    pub format: DiscoverFormat,
    /// Instance/database groups introspected concurrently.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

/// Run a topology subcommand; returns the exit code.
pub fn run(c: TopologyCommand) -> i32 {
    match c {
        TopologyCommand::Discover(a) => discover(a),
    }
}

enum Failure {
    Input(anyhow::Error),
    Unreachable(anyhow::Error),
}

fn classify(e: TopologyError) -> Failure {
    if e.is_unreachable() {
        Failure::Unreachable(e.into())
    } else {
        Failure::Input(e.into())
    }
}

fn discover(a: DiscoverArgs) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deployclaw: cannot start the async runtime: {e}");
            return crate::exit::UNREACHABLE;
        }
    };
    match rt.block_on(discover_async(&a)) {
        Ok(code) => code,
        Err(Failure::Input(e)) => {
            eprintln!("deployclaw: {e}");
            crate::exit::INPUT
        }
        Err(Failure::Unreachable(e)) => {
            eprintln!("deployclaw: {e}");
            crate::exit::UNREACHABLE
        }
    }
}

fn cli_spec(a: &DiscoverArgs) -> Option<DiscoverySpec> {
    if let Some(p) = &a.tenant_databases {
        Some(DiscoverySpec::databases(p.clone()))
    } else {
        a.tenant_schemas
            .as_ref()
            .map(|p| DiscoverySpec::schemas(p.clone()))
    }
}

async fn load_fleet(a: &DiscoverArgs) -> Result<Fleet, Failure> {
    let spec = cli_spec(a);
    if let Some(file) = &a.topology {
        let mut t = Topology::from_toml_file(file).map_err(classify)?;
        if let Some(s) = &spec {
            t.override_discovery(s);
        }
        return t.resolve().await.map_err(classify);
    }
    let Some(target) = &a.target_db else {
        return Err(Failure::Input(anyhow::anyhow!(
            "give --target-db URL|FILE|RDS-ID or --topology FILE"
        )));
    };
    let mut target = FleetTarget::classify(target).map_err(pipeline_failure)?;
    a.aws.apply(&mut target).map_err(classify)?;
    let req = FleetRequest {
        target,
        discovery: spec,
        max_shards: None,
    };
    let (fleet, _) = resolve_fleet(&req).await.map_err(pipeline_failure)?;
    Ok(fleet)
}

fn pipeline_failure(e: deployclaw::PipelineError) -> Failure {
    match e {
        deployclaw::PipelineError::Topology(t) => classify(t),
        e => Failure::Input(e.into()),
    }
}

#[derive(Serialize)]
struct JsonInstance {
    name: String,
    url: String,
    shards: usize,
    /// The writer of a read replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    replica_of: Option<String>,
}

#[derive(Serialize)]
struct JsonShape {
    fingerprint: String,
    shards: usize,
    tables: usize,
    reference: bool,
    members: Vec<String>,
}

#[derive(Serialize)]
struct JsonDifference {
    #[serde(flatten)]
    difference: topology::catalog::CatalogDifference,
    message: String,
}

#[derive(Serialize)]
struct JsonDrifted {
    shard: String,
    fingerprint: String,
    differences: Vec<JsonDifference>,
}

#[derive(Serialize)]
struct JsonUnreadable {
    shards: Vec<String>,
    error: String,
}

#[derive(Serialize)]
struct JsonOut {
    instances: Vec<JsonInstance>,
    shards: usize,
    shapes: Vec<JsonShape>,
    drifted: Vec<JsonDrifted>,
    unreadable: Vec<JsonUnreadable>,
}

async fn discover_async(a: &DiscoverArgs) -> Result<i32, Failure> {
    let fleet = load_fleet(a).await?;
    let scan = introspect_fleet(
        &fleet,
        &ScanOptions {
            concurrency: a.concurrency.max(1),
            ..Default::default()
        },
    )
    .await;
    let drift: DriftReport = detect_drift(scan.catalogs.iter().map(|(k, v)| (k.as_str(), v)));
    let unreadable: Vec<JsonUnreadable> = scan
        .errors
        .iter()
        .map(|(ids, e)| JsonUnreadable {
            shards: ids.clone(),
            // TopologyError messages already include their cause.
            error: e.to_string(),
        })
        .collect();

    let instances: Vec<JsonInstance> = fleet
        .instances
        .iter()
        .map(|i| JsonInstance {
            name: i.name.clone(),
            url: i.connection.redacted_url(),
            shards: fleet.shards_on(&i.name).count(),
            replica_of: i.replica_of.clone(),
        })
        .collect();
    match a.format {
        DiscoverFormat::Json => {
            let out = JsonOut {
                instances,
                shards: fleet.shards.len(),
                shapes: drift
                    .groups
                    .iter()
                    .map(|g| JsonShape {
                        fingerprint: g.fingerprint.0.clone(),
                        shards: g.shards.len(),
                        tables: g.tables,
                        reference: Some(&g.fingerprint) == drift.reference.as_ref(),
                        members: g.shards.clone(),
                    })
                    .collect(),
                drifted: drift
                    .drifted
                    .iter()
                    .map(|d| JsonDrifted {
                        shard: d.shard.clone(),
                        fingerprint: d.fingerprint.0.clone(),
                        differences: d
                            .differences
                            .iter()
                            .map(|x| JsonDifference {
                                difference: x.clone(),
                                message: x.to_string(),
                            })
                            .collect(),
                    })
                    .collect(),
                unreadable,
            };
            let s = serde_json::to_string_pretty(&out)
                .context("cannot serialize JSON")
                .map_err(Failure::Input)?;
            println!("{s}");
        }
        DiscoverFormat::Text => {
            print_text(&fleet, &instances, &drift, &unreadable);
        }
    }
    if !scan.errors.is_empty() {
        return Ok(crate::exit::UNREACHABLE);
    }
    Ok(crate::exit::GREEN)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn print_text(
    fleet: &Fleet,
    instances: &[JsonInstance],
    drift: &DriftReport,
    unreadable: &[JsonUnreadable],
) {
    println!(
        "Fleet: {}, {}",
        plural(instances.len(), "instance", "instances"),
        plural(fleet.shards.len(), "shard", "shards")
    );
    let w = instances.iter().map(|i| i.name.len()).max().unwrap_or(0);
    for i in instances {
        println!(
            "  {:<w$}  {}  {}",
            i.name,
            i.url,
            plural(i.shards, "shard", "shards")
        );
    }
    println!();
    println!("Schema shapes: {}", drift.groups.len());
    for g in &drift.groups {
        let reference = if Some(&g.fingerprint) == drift.reference.as_ref() {
            "  (reference)"
        } else {
            ""
        };
        println!(
            "  {}  {:>12}  {}{reference}",
            g.fingerprint.short(),
            plural(g.shards.len(), "shard", "shards"),
            plural(g.tables, "table", "tables"),
        );
    }
    println!();
    if drift.drifted.is_empty() {
        println!("Drifted shards: none");
    } else {
        println!(
            "Drifted shards: {} (compared with {})",
            drift.drifted.len(),
            drift.reference_shard.as_deref().unwrap_or("?")
        );
        for d in &drift.drifted {
            println!("  {}  (shape {})", d.shard, d.fingerprint.short());
            for x in &d.differences {
                println!("    - {x}");
            }
        }
    }
    if !unreadable.is_empty() {
        println!();
        println!(
            "Unreadable shards: {}",
            unreadable.iter().map(|u| u.shards.len()).sum::<usize>()
        );
        for u in unreadable {
            println!("  {} shard(s): {}", u.shards.len(), u.error);
        }
    }
}

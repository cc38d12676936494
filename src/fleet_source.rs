//! Resolving `--target-db` / `--topology` and the tenant patterns into a [`Fleet`].

use std::path::{Path, PathBuf};

use topology::{DiscoverySpec, Fleet, Topology};

use crate::PipelineError;

/// Where the fleet comes from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FleetTarget {
    /// One instance by connection string (`postgres://user@host:port/db` or libpq
    /// `host=... dbname=...`).
    Url(String),
    /// A topology file (TOML; see [`topology::Topology`]).
    Topology(PathBuf),
    /// AWS RDS clusters/instances (feature `aws`).
    #[cfg(feature = "aws")]
    Rds(Box<topology::aws::RdsSource>),
}

impl FleetTarget {
    /// Classify a `--target-db` value (surrounding whitespace ignored): a connection string —
    /// anything with `://` or libpq `key=value` pairs, parsed by
    /// [`topology::ConnectionSpec::parse`] when the fleet is resolved — an existing file or
    /// `*.toml` path (topology), or, with the `aws` feature, an RDS cluster/instance identifier
    /// or ARN. The error shows the value only through [`topology::mask_connection_string`].
    pub fn classify(target: &str) -> Result<FleetTarget, PipelineError> {
        let t = target.trim();
        if t.contains("://") || topology::conninfo::looks_like_keyword_value(t) {
            return Ok(FleetTarget::Url(t.to_owned()));
        }
        let path = Path::new(t);
        if t.ends_with(".toml") || path.is_file() {
            return Ok(FleetTarget::Topology(path.to_path_buf()));
        }
        #[cfg(feature = "aws")]
        if topology::aws::is_rds_target(t) {
            return Ok(FleetTarget::Rds(Box::new(
                topology::aws::RdsSource::target(t),
            )));
        }
        Err(PipelineError::Usage(format!(
            "--target-db `{}` is neither a postgres:// URL, libpq key=value pairs, a topology \
             file, nor an RDS cluster/instance identifier",
            topology::mask_connection_string(t)
        )))
    }

    /// A description for the report, without secrets.
    pub fn describe(&self) -> String {
        match self {
            FleetTarget::Url(u) => topology::mask_connection_string(u),
            FleetTarget::Topology(p) => format!("topology {}", p.display()),
            #[cfg(feature = "aws")]
            FleetTarget::Rds(s) => {
                let ids: Vec<&str> = s.identifiers.iter().map(String::as_str).collect();
                format!("rds:{}", ids.join(","))
            }
        }
    }
}

/// What fleet to validate against.
#[derive(Debug, Clone)]
pub struct FleetRequest {
    /// The source.
    pub target: FleetTarget,
    /// How to find the tenants (`--tenant-schemas` / `--tenant-databases`); for a URL or RDS
    /// target `None` means schemas matching `tenant_*`; for a topology file `None` keeps what the
    /// file says.
    pub discovery: Option<DiscoverySpec>,
    /// `--tenant-shards N`: validate at most N shards, taken round-robin over the instances so
    /// every instance is represented.
    pub max_shards: Option<usize>,
}

/// Resolve the request into a fleet. Returns the fleet and a secret-free description of its
/// source.
pub async fn resolve_fleet(req: &FleetRequest) -> Result<(Fleet, String), PipelineError> {
    let default_spec = || DiscoverySpec::schemas(gates::DEFAULT_TENANT_SCHEMA_PATTERN);
    let mut fleet = match &req.target {
        FleetTarget::Url(url) => {
            let spec = req.discovery.clone().unwrap_or_else(default_spec);
            let spec_conn = topology::ConnectionSpec::parse(url)
                .map_err(|e| PipelineError::Usage(format!("--target-db: {e}")))?;
            Fleet::from_url(&instance_label(&spec_conn), url, &spec).await?
        }
        FleetTarget::Topology(path) => {
            let mut t = Topology::from_toml_file(path)?;
            if let Some(spec) = &req.discovery {
                t.override_discovery(spec);
            }
            t.resolve().await?
        }
        #[cfg(feature = "aws")]
        FleetTarget::Rds(source) => {
            let spec = req.discovery.clone().unwrap_or_else(default_spec);
            let mut instances = topology::aws::discover_rds(source).await?;
            topology::aws::resolve_iam_passwords(&mut instances, source).await?;
            for inst in &mut instances {
                inst.connection.resolve_password();
            }
            let mut fleet = Fleet {
                instances,
                shards: Vec::new(),
            };
            // A read replica has no shards of its own: its writer's are read there.
            for inst in fleet.instances.iter().filter(|i| !i.is_replica()) {
                let shards = topology::discover_on_instance(inst, &spec).await?;
                fleet.shards.extend(shards);
            }
            fleet
        }
    };
    if let Some(n) = req.max_shards {
        fleet.shards = sample_round_robin(&fleet, n);
    }
    if fleet.shards.is_empty() {
        return Err(PipelineError::Usage(format!(
            "no tenant shards found in {} (check --tenant-schemas / --tenant-databases)",
            req.target.describe()
        )));
    }
    Ok((fleet, req.target.describe()))
}

/// At most `n` shards, taken round-robin over the instances, each instance's shards in order;
/// the result keeps fleet order.
pub fn sample_round_robin(fleet: &Fleet, n: usize) -> Vec<topology::Shard> {
    if fleet.shards.len() <= n {
        return fleet.shards.clone();
    }
    let mut per: Vec<Vec<usize>> = fleet
        .instances
        .iter()
        .map(|i| {
            fleet
                .shards
                .iter()
                .enumerate()
                .filter(|(_, s)| s.instance == i.name)
                .map(|(k, _)| k)
                .rev()
                .collect()
        })
        .collect();
    let mut chosen = Vec::with_capacity(n);
    while chosen.len() < n {
        let mut any = false;
        for q in per.iter_mut() {
            if chosen.len() == n {
                break;
            }
            if let Some(k) = q.pop() {
                chosen.push(k);
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    chosen.sort_unstable();
    chosen
        .into_iter()
        .map(|k| fleet.shards[k].clone())
        .collect()
}

/// A readable instance name for a URL target: `host:port`, or `local:port` for a socket dir.
fn instance_label(c: &topology::ConnectionSpec) -> String {
    if c.host.starts_with('/') {
        format!("local:{}", c.port)
    } else {
        format!("{}:{}", c.host, c.port)
    }
}

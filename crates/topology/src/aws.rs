//! AWS RDS / Aurora fleet source (cargo feature `aws`).
//!
//! [`discover_rds`] lists the PostgreSQL clusters and instances of one AWS account and region
//! (`DescribeDBClusters` / `DescribeDBInstances`, paginated and filtered) and returns one
//! [`Instance`] per Aurora or Multi-AZ DB cluster (its writer endpoint) and per standalone DB
//! instance. [`resolve_iam_passwords`] fills in RDS IAM auth tokens at connect time.
//!
//! Nothing in this module's public API is an AWS SDK type: the configuration is
//! [`RdsSource`], the loaded AWS configuration is the opaque [`AwsSession`], and the results are
//! the crate's own [`Instance`] and [`Secret`].
//!
//! Credentials and region come from the usual AWS chain (environment, shared config and
//! credentials files with an optional named profile, SSO, web identity, ECS, EC2 instance
//! metadata). Resolution is bounded by a timeout and a missing region or missing credentials is
//! reported as [`TopologyError::AwsNoRegion`] / [`TopologyError::AwsNoCredentials`] instead of
//! hanging. Outside EC2, set `AWS_EC2_METADATA_DISABLED=true` to skip the metadata service.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config as AuthTokenConfig};
use aws_sdk_rds::config::{Credentials, ProvideCredentials};
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rds::types::{DbCluster, DbInstance, Filter, Tag};

use futures::{StreamExt, TryStreamExt};

use crate::{
    ConnectionSpec, DiscoverySpec, Fleet, Instance, Secret, TopologyError, discover_on_instance,
};

/// RDS engine name of RDS for PostgreSQL (standalone instances and Multi-AZ DB clusters).
pub const ENGINE_POSTGRES: &str = "postgres";
/// RDS engine name of Aurora PostgreSQL.
pub const ENGINE_AURORA_POSTGRESQL: &str = "aurora-postgresql";

/// Label: the RDS engine (`postgres`, `aurora-postgresql`).
pub const LABEL_ENGINE: &str = "rds:engine";
/// Label: the engine version (`15.4`).
pub const LABEL_ENGINE_VERSION: &str = "rds:engine_version";
/// Label: the cluster's or instance's ARN.
pub const LABEL_ARN: &str = "rds:arn";
/// Label: the cluster or instance identifier.
pub const LABEL_IDENTIFIER: &str = "rds:identifier";
/// Label: `cluster` or `instance`.
pub const LABEL_KIND: &str = "rds:kind";
/// Label: the RDS endpoint `address:port` as AWS reports it (before any endpoint mapping). IAM
/// auth tokens are signed for this address.
pub const LABEL_ENDPOINT: &str = "rds:endpoint";
/// Label: the AWS region.
pub const LABEL_REGION: &str = "rds:region";
/// Label: the RDS status (`available`, `stopped`, ...).
pub const LABEL_STATUS: &str = "rds:status";
/// Label: the cluster an instance belongs to (only on explicitly selected cluster members).
pub const LABEL_CLUSTER: &str = "rds:cluster";
/// Label: `true` when IAM database authentication is enabled on the cluster or instance.
pub const LABEL_IAM_ENABLED: &str = "rds:iam_auth_enabled";

/// How long resolving AWS credentials may take before giving up.
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(30);
/// Refresh cached credentials this long before they expire.
const CREDENTIALS_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Where and how to discover an RDS fleet. Plain data; build it with `Default` and set the fields.
///
/// Selection: when `identifiers`, `cluster_ids` and `instance_ids` are all empty, every
/// PostgreSQL cluster and standalone instance of the region is selected; otherwise only the named
/// ones are, and a name that matches nothing is an error. `tags` and `engines` narrow either way.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RdsSource {
    /// Named AWS profile (`--aws-profile`), from `~/.aws/config` / `~/.aws/credentials` (or
    /// `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE`). `None`: `AWS_PROFILE` or `default`.
    pub profile: Option<String>,
    /// AWS region (`--aws-region`). `None`: from the environment or the profile.
    pub region: Option<String>,
    /// Endpoint URL override for the RDS API (a VPC endpoint, or moto in tests).
    pub endpoint_url: Option<String>,
    /// Cluster **or** instance identifiers (`--target-db <id>`); each must match one of either.
    pub identifiers: Vec<String>,
    /// DB cluster identifiers (Aurora or Multi-AZ DB clusters).
    pub cluster_ids: Vec<String>,
    /// DB instance identifiers. A named Aurora cluster member is returned as its own instance
    /// endpoint unless its cluster is selected too.
    pub instance_ids: Vec<String>,
    /// Tag filters. Filters on the same key are alternatives (OR); different keys must all match.
    pub tags: Vec<TagFilter>,
    /// Engines to include: [`ENGINE_POSTGRES`], [`ENGINE_AURORA_POSTGRESQL`]. Empty: both.
    pub engines: Vec<String>,
    /// Connect with RDS IAM auth tokens instead of a password.
    pub iam_auth: bool,
    /// Database user. `None`: the cluster's or instance's master user name.
    pub user: Option<String>,
    /// Database to connect to. `None`: the initial database of the cluster or instance, else
    /// `postgres`.
    pub database: Option<String>,
    /// Map an RDS endpoint to a reachable address (an SSH tunnel, a proxy; a local PostgreSQL in
    /// tests). Keys, tried in order: `address:port`, `address`, the cluster or instance
    /// identifier.
    pub endpoint_map: HashMap<String, EndpointTarget>,
    /// `sslmode` for every discovered instance. `None`: `require`, or `prefer` when the endpoint
    /// is mapped to a loopback address or a Unix socket.
    pub sslmode: Option<String>,
    /// Page size of the describe calls (`MaxRecords`, 20..=100). `None`: 100.
    pub page_size: Option<i32>,
}

impl RdsSource {
    /// A source selecting one cluster or instance, as `--target-db` does: an identifier (either
    /// kind), or an ARN (`arn:aws:rds:<region>:<account>:cluster:<id>` or `...:db:<id>`), which
    /// also sets the region.
    pub fn target(target: impl Into<String>) -> Self {
        let target = target.into();
        match parse_rds_arn(&target) {
            Some(arn) => RdsSource {
                region: Some(arn.region.to_string()),
                cluster_ids: if arn.cluster {
                    vec![arn.id.to_string()]
                } else {
                    Vec::new()
                },
                instance_ids: if arn.cluster {
                    Vec::new()
                } else {
                    vec![arn.id.to_string()]
                },
                ..RdsSource::default()
            },
            None => RdsSource {
                identifiers: vec![target],
                ..RdsSource::default()
            },
        }
    }

    /// Add an endpoint mapping from its command-line form `FROM=HOST:PORT`, where `FROM` is an
    /// endpoint address, `address:port` or identifier.
    pub fn add_endpoint_mapping(&mut self, spec: &str) -> Result<(), TopologyError> {
        let (from, to) = spec
            .split_once('=')
            .ok_or_else(|| TopologyError::AwsInvalidSource {
                reason: format!("endpoint mapping `{spec}` is not of the form FROM=HOST:PORT"),
            })?;
        let from = from.trim();
        if from.is_empty() {
            return Err(TopologyError::AwsInvalidSource {
                reason: format!("endpoint mapping `{spec}` has an empty FROM"),
            });
        }
        self.endpoint_map
            .insert(from.to_string(), to.trim().parse()?);
        Ok(())
    }

    fn engines_or_default(&self) -> Vec<String> {
        if self.engines.is_empty() {
            vec![
                ENGINE_POSTGRES.to_string(),
                ENGINE_AURORA_POSTGRESQL.to_string(),
            ]
        } else {
            self.engines.clone()
        }
    }

    fn validate(&self) -> Result<(), TopologyError> {
        for engine in &self.engines {
            if engine != ENGINE_POSTGRES && engine != ENGINE_AURORA_POSTGRESQL {
                return Err(TopologyError::AwsInvalidSource {
                    reason: format!(
                        "unsupported engine `{engine}`: deployclaw supports `{ENGINE_POSTGRES}` and \
                         `{ENGINE_AURORA_POSTGRESQL}`"
                    ),
                });
            }
        }
        if let Some(size) = self.page_size
            && !(20..=100).contains(&size)
        {
            return Err(TopologyError::AwsInvalidSource {
                reason: format!(
                    "page size {size} is outside 20..=100 (the RDS API's MaxRecords range)"
                ),
            });
        }
        for tag in &self.tags {
            if tag.key.is_empty() {
                return Err(TopologyError::AwsInvalidSource {
                    reason: "tag filter with an empty key".to_string(),
                });
            }
        }
        for id in self
            .identifiers
            .iter()
            .chain(&self.cluster_ids)
            .chain(&self.instance_ids)
        {
            if id.trim().is_empty() {
                return Err(TopologyError::AwsInvalidSource {
                    reason: "empty RDS identifier".to_string(),
                });
            }
        }
        Ok(())
    }
}

/// True when `s` names an RDS cluster or instance: an identifier (1 to 63 ASCII letters, digits
/// or hyphens, starting with a letter, not ending with a hyphen, without two consecutive
/// hyphens) or an RDS cluster/instance ARN. Lets a CLI tell `--target-db prod-db` from a URL or
/// a file name.
pub fn is_rds_target(s: &str) -> bool {
    is_rds_identifier(s) || parse_rds_arn(s).is_some()
}

struct RdsArn<'a> {
    region: &'a str,
    cluster: bool,
    id: &'a str,
}

/// `arn:<partition>:rds:<region>:<account>:(cluster|db):<id>`.
fn parse_rds_arn(s: &str) -> Option<RdsArn<'_>> {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [
            "arn",
            _partition,
            "rds",
            region,
            _account,
            kind @ ("cluster" | "db"),
            id,
        ] if !region.is_empty() && is_rds_identifier(id) => Some(RdsArn {
            region,
            cluster: *kind == "cluster",
            id,
        }),
        _ => None,
    }
}

fn is_rds_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A tag filter: `key=value` (the tag has this value) or `key` (the tag is present).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagFilter {
    /// Tag key.
    pub key: String,
    /// Required value; `None` matches any value.
    pub value: Option<String>,
}

impl TagFilter {
    /// `key=value`.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        TagFilter {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    fn matches(&self, value: Option<&str>) -> bool {
        match (&self.value, value) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(want), Some(have)) => want == have,
        }
    }
}

impl FromStr for TagFilter {
    type Err = TopologyError;

    /// Parse `key=value` or `key`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().to_string())),
            None => (s.trim(), None),
        };
        if key.is_empty() {
            return Err(TopologyError::AwsInvalidSource {
                reason: format!("tag filter `{s}` has an empty key (expected key=value)"),
            });
        }
        Ok(TagFilter {
            key: key.to_string(),
            value,
        })
    }
}

impl fmt::Display for TagFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.key),
            None => f.write_str(&self.key),
        }
    }
}

/// A reachable address an RDS endpoint is mapped to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndpointTarget {
    /// Host name, IP address, or Unix socket directory (starts with `/`).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl EndpointTarget {
    /// A target `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        EndpointTarget {
            host: host.into(),
            port,
        }
    }

    /// True for `localhost`, loopback IP addresses and Unix socket directories.
    pub fn is_local(&self) -> bool {
        is_local_host(&self.host)
    }
}

impl FromStr for EndpointTarget {
    type Err = TopologyError;

    /// Parse `host:port` or `[v6addr]:port`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| TopologyError::AwsInvalidSource {
            reason: format!("endpoint target `{s}` {why} (expected HOST:PORT)"),
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("has no port"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(bad("has an empty host"));
        }
        let port: u16 = port.parse().map_err(|_| bad("has an invalid port"))?;
        Ok(EndpointTarget::new(host, port))
    }
}

impl fmt::Display for EndpointTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

fn is_local_host(host: &str) -> bool {
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Loaded AWS configuration (region, credentials, endpoint) for one [`RdsSource`]. Opaque: load it
/// once with [`AwsSession::load`] and reuse it for discovery and IAM tokens. Its `Debug` shows
/// the profile and region only.
pub struct AwsSession {
    sdk: SdkConfig,
    profile: Option<String>,
    region: String,
    endpoint_overridden: bool,
    credentials: tokio::sync::Mutex<Option<Credentials>>,
}

impl fmt::Debug for AwsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSession")
            .field("profile", &self.profile)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AwsSession {
    /// Load the AWS configuration for `source`: named profile, region, endpoint override. Fails
    /// with [`TopologyError::AwsNoRegion`] or [`TopologyError::AwsNoCredentials`] (within about
    /// 30 s at worst) when either cannot be found. Makes no RDS API call.
    pub async fn load(source: &RdsSource) -> Result<AwsSession, TopologyError> {
        source.validate()?;
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .operation_attempt_timeout(Duration::from_secs(60))
            .operation_timeout(Duration::from_secs(180))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
        if let Some(profile) = &source.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &source.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &source.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let sdk = tokio::time::timeout(CREDENTIALS_TIMEOUT, loader.load())
            .await
            .map_err(|_| TopologyError::AwsNoRegion {
                profile: source.profile.clone(),
            })?;
        let region = sdk
            .region()
            .map(|r| r.as_ref().to_string())
            .filter(|r| !r.is_empty());
        let session = AwsSession {
            sdk,
            profile: source.profile.clone(),
            region: region.clone().unwrap_or_default(),
            endpoint_overridden: source.endpoint_url.is_some(),
            credentials: tokio::sync::Mutex::new(None),
        };
        if region.is_none() && source.profile.is_none() {
            return Err(TopologyError::AwsNoRegion { profile: None });
        }
        // Resolve credentials now, so a missing key is reported before any API call. Without a
        // region, a named profile that does not exist is the likelier cause: report that first.
        let credentials = session.credentials().await;
        match (region, credentials) {
            (Some(_), Ok(_)) => Ok(session),
            (Some(_), Err(e)) => Err(e),
            (None, Err(e @ TopologyError::AwsNoCredentials { .. }))
                if source.profile.is_some() && e.to_string().contains("is not defined") =>
            {
                Err(e)
            }
            (None, _) => Err(TopologyError::AwsNoRegion {
                profile: source.profile.clone(),
            }),
        }
    }

    /// The region in use.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The named profile in use, if one was given.
    pub fn profile(&self) -> Option<&str> {
        self.profile.as_deref()
    }

    /// Current credentials, resolved once and refreshed shortly before they expire.
    async fn credentials(&self) -> Result<Credentials, TopologyError> {
        let mut cached = self.credentials.lock().await;
        if let Some(creds) = cached.as_ref() {
            let fresh = match creds.expiry() {
                None => true,
                Some(expiry) => expiry
                    .duration_since(SystemTime::now())
                    .is_ok_and(|left| left > CREDENTIALS_REFRESH_MARGIN),
            };
            if fresh {
                return Ok(creds.clone());
            }
        }
        let no_creds = |reason: String| TopologyError::AwsNoCredentials {
            profile: self.profile.clone(),
            reason,
        };
        let provider = self
            .sdk
            .credentials_provider()
            .ok_or_else(|| no_creds("no credentials provider is configured".to_string()))?;
        let creds = tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials())
            .await
            .map_err(|_| {
                no_creds(format!(
                    "resolving credentials timed out after {} s (outside EC2, set \
                     AWS_EC2_METADATA_DISABLED=true so the instance metadata service is not tried)",
                    CREDENTIALS_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| no_creds(credentials_reason(&e, self.profile.as_deref())))?;
        *cached = Some(creds.clone());
        Ok(creds)
    }

    fn client(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.sdk)
    }

    fn api_error<E>(&self, operation: &str, err: &SdkError<E>) -> TopologyError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let message = match err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().unwrap_or("error");
                let mut m = format!("{code}: {}", e.message().unwrap_or("(no message)"));
                let lower = code.to_ascii_lowercase();
                if lower.contains("accessdenied") || lower.contains("unauthorized") {
                    m.push_str(
                        "; the credentials need rds:DescribeDBClusters and rds:DescribeDBInstances \
                         (check --aws-profile)",
                    );
                } else if lower.contains("signature") || lower.contains("token") {
                    m.push_str("; check the credentials of --aws-profile (expired SSO session? run `aws sso login`)");
                }
                m
            }
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => format!(
                "{}; check network access to the RDS API endpoint{}",
                error_chain(err),
                if self.endpoint_overridden {
                    " (the endpoint URL override)"
                } else {
                    " and --aws-region"
                }
            ),
            _ => error_chain(err),
        };
        TopologyError::AwsApi {
            operation: operation.to_string(),
            region: self.region.clone(),
            message,
        }
    }
}

/// A short reason for a credential chain failure (the chain's own message lists every provider).
fn credentials_reason(err: &(dyn std::error::Error + 'static), profile: Option<&str>) -> String {
    let full = error_chain(err);
    if let Some(p) = profile
        && full.contains(&format!("profile `{p}` was not defined"))
    {
        return format!(
            "profile `{p}` is not defined in the AWS config or credentials file (~/.aws/config, \
             ~/.aws/credentials, or AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE)"
        );
    }
    if full.contains("no credentials found in chain") {
        let mut reason =
            "none found in the environment, the profile files, web identity, ECS or EC2 \
                          instance metadata"
                .to_string();
        if full.contains("IMDS disabled") {
            reason.push_str(" (instance metadata disabled by AWS_EC2_METADATA_DISABLED)");
        }
        return reason;
    }
    full
}

/// `outer: inner: innermost` from an error and its sources, without repeats, on one line.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Discover the RDS fleet selected by `source`: loads an [`AwsSession`] and calls
/// [`discover_rds_with`].
pub async fn discover_rds(source: &RdsSource) -> Result<Vec<Instance>, TopologyError> {
    let session = AwsSession::load(source).await?;
    discover_rds_with(&session, source).await
}

/// Discover the RDS fleet selected by `source` with an already loaded session.
///
/// Returns one [`Instance`] per PostgreSQL cluster (writer endpoint) and per standalone
/// PostgreSQL instance, sorted by name (the identifier). Aurora cluster members are not returned
/// separately unless named in `instance_ids`/`identifiers` while their cluster is not selected.
/// Labels: the resource's tags plus `rds:engine`, `rds:engine_version`, `rds:arn`,
/// `rds:identifier`, `rds:kind`, `rds:endpoint`, `rds:region`, `rds:status`,
/// `rds:iam_auth_enabled` (and `rds:cluster` on cluster members). Resources without an endpoint
/// yet (being created) are skipped unless named explicitly, which is an error.
pub async fn discover_rds_with(
    session: &AwsSession,
    source: &RdsSource,
) -> Result<Vec<Instance>, TopologyError> {
    source.validate()?;
    let engines = source.engines_or_default();
    let page_size = source.page_size.unwrap_or(100);
    let named_clusters: BTreeSet<&str> = source
        .identifiers
        .iter()
        .chain(&source.cluster_ids)
        .map(|s| s.trim())
        .collect();
    let named_instances: BTreeSet<&str> = source
        .identifiers
        .iter()
        .chain(&source.instance_ids)
        .map(|s| s.trim())
        .collect();
    let select_all = named_clusters.is_empty() && named_instances.is_empty();
    let client = session.client();

    let mut clusters: Vec<DbCluster> = Vec::new();
    if select_all || !named_clusters.is_empty() {
        let mut filters = vec![
            Filter::builder()
                .name("engine")
                .set_values(Some(engines.clone()))
                .build(),
        ];
        if !select_all {
            filters.push(
                Filter::builder()
                    .name("db-cluster-id")
                    .set_values(Some(named_clusters.iter().map(|s| s.to_string()).collect()))
                    .build(),
            );
        }
        let mut pages = client
            .describe_db_clusters()
            .set_filters(Some(filters))
            .max_records(page_size)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| session.api_error("DescribeDBClusters", &e))?;
            clusters.extend(page.db_clusters().iter().cloned());
        }
    }

    let mut instances: Vec<DbInstance> = Vec::new();
    if select_all || !named_instances.is_empty() {
        let mut filters = vec![
            Filter::builder()
                .name("engine")
                .set_values(Some(engines.clone()))
                .build(),
        ];
        if !select_all {
            filters.push(
                Filter::builder()
                    .name("db-instance-id")
                    .set_values(Some(
                        named_instances.iter().map(|s| s.to_string()).collect(),
                    ))
                    .build(),
            );
        }
        let mut pages = client
            .describe_db_instances()
            .set_filters(Some(filters))
            .max_records(page_size)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| session.api_error("DescribeDBInstances", &e))?;
            instances.extend(page.db_instances().iter().cloned());
        }
    }

    // Defensive: keep only what was asked for, whatever the server's filter support.
    let engine_ok = |e: Option<&str>| e.is_some_and(|e| engines.iter().any(|want| want == e));
    clusters.retain(|c| {
        engine_ok(c.engine())
            && (select_all
                || c.db_cluster_identifier()
                    .is_some_and(|id| named_clusters.contains(id)))
    });
    instances.retain(|i| {
        engine_ok(i.engine())
            && (select_all
                || i.db_instance_identifier()
                    .is_some_and(|id| named_instances.contains(id)))
    });

    // Named identifiers that matched nothing.
    let found_clusters: BTreeSet<&str> = clusters
        .iter()
        .filter_map(|c| c.db_cluster_identifier())
        .collect();
    let found_instances: BTreeSet<&str> = instances
        .iter()
        .filter_map(|i| i.db_instance_identifier())
        .collect();
    let mut missing: Vec<String> = Vec::new();
    for id in &source.identifiers {
        let id = id.trim();
        if !found_clusters.contains(id) && !found_instances.contains(id) {
            missing.push(id.to_string());
        }
    }
    for id in &source.cluster_ids {
        if !found_clusters.contains(id.trim()) {
            missing.push(id.trim().to_string());
        }
    }
    for id in &source.instance_ids {
        if !found_instances.contains(id.trim()) {
            missing.push(id.trim().to_string());
        }
    }
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Err(TopologyError::AwsNotFound {
            identifiers: missing,
            region: session.region.clone(),
            profile: session.profile.clone(),
        });
    }

    let tags_ok = |tags: &[Tag]| tags_match(&source.tags, tags);
    let mut out: Vec<Instance> = Vec::new();
    for cluster in &clusters {
        if !tags_ok(cluster.tag_list()) {
            continue;
        }
        let id = cluster.db_cluster_identifier().unwrap_or_default();
        let explicit = named_clusters.contains(id);
        let Some(address) = cluster.endpoint().filter(|a| !a.is_empty()) else {
            if explicit {
                return Err(no_endpoint(session, id, cluster.status()));
            }
            continue;
        };
        let port = port_of(cluster.port());
        let mut labels = tag_labels(cluster.tag_list());
        labels.insert(LABEL_KIND.to_string(), "cluster".to_string());
        insert_opt(&mut labels, LABEL_ARN, cluster.db_cluster_arn());
        insert_opt(&mut labels, LABEL_STATUS, cluster.status());
        insert_opt(
            &mut labels,
            LABEL_IAM_ENABLED,
            cluster
                .iam_database_authentication_enabled()
                .map(|b| b.to_string())
                .as_deref(),
        );
        out.push(build_instance(
            source,
            session,
            Resource {
                id,
                address,
                port,
                engine: cluster.engine(),
                engine_version: cluster.engine_version(),
                master_user: cluster.master_username(),
                database: cluster.database_name(),
            },
            labels,
        ));
    }
    for instance in &instances {
        if !tags_ok(instance.tag_list()) {
            continue;
        }
        let id = instance.db_instance_identifier().unwrap_or_default();
        let explicit = named_instances.contains(id);
        let member_of = instance.db_cluster_identifier().filter(|c| !c.is_empty());
        if let Some(cluster_id) = member_of
            && (!explicit || found_clusters.contains(cluster_id))
        {
            // Represented by its cluster's writer endpoint.
            continue;
        }
        let endpoint = instance.endpoint();
        let Some(address) = endpoint.and_then(|e| e.address()).filter(|a| !a.is_empty()) else {
            if explicit {
                return Err(no_endpoint(session, id, instance.db_instance_status()));
            }
            continue;
        };
        let port = port_of(
            endpoint
                .and_then(|e| e.port())
                .or(instance.db_instance_port()),
        );
        let mut labels = tag_labels(instance.tag_list());
        labels.insert(LABEL_KIND.to_string(), "instance".to_string());
        insert_opt(&mut labels, LABEL_ARN, instance.db_instance_arn());
        insert_opt(&mut labels, LABEL_STATUS, instance.db_instance_status());
        insert_opt(&mut labels, LABEL_CLUSTER, member_of);
        insert_opt(
            &mut labels,
            LABEL_IAM_ENABLED,
            instance
                .iam_database_authentication_enabled()
                .map(|b| b.to_string())
                .as_deref(),
        );
        out.push(build_instance(
            source,
            session,
            Resource {
                id,
                address,
                port,
                engine: instance.engine(),
                engine_version: instance.engine_version(),
                master_user: instance.master_username(),
                database: instance.db_name(),
            },
            labels,
        ));
    }

    out.sort_by(|a, b| a.name.cmp(&b.name));
    // Cluster and instance identifiers live in separate namespaces: keep names unique.
    for i in 1..out.len() {
        if out[i].name == out[i - 1].name {
            let kind = out[i].labels.get(LABEL_KIND).cloned().unwrap_or_default();
            out[i].name = format!("{}#{kind}", out[i].name);
        }
    }
    Ok(out)
}

fn no_endpoint(session: &AwsSession, id: &str, status: Option<&str>) -> TopologyError {
    TopologyError::AwsApi {
        operation: "Describe".to_string(),
        region: session.region.clone(),
        message: format!(
            "`{id}` has no endpoint yet (status `{}`); wait until it is available",
            status.unwrap_or("unknown")
        ),
    }
}

fn port_of(port: Option<i32>) -> u16 {
    port.and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(5432)
}

fn insert_opt(labels: &mut BTreeMap<String, String>, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        labels.insert(key.to_string(), v.to_string());
    }
}

fn tag_labels(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// OR within a key, AND across keys.
fn tags_match(filters: &[TagFilter], tags: &[Tag]) -> bool {
    let keys: BTreeSet<&str> = filters.iter().map(|f| f.key.as_str()).collect();
    keys.into_iter().all(|key| {
        let have = tags
            .iter()
            .find(|t| t.key() == Some(key))
            .map(|t| t.value().unwrap_or_default());
        filters
            .iter()
            .filter(|f| f.key == key)
            .any(|f| f.matches(have))
    })
}

struct Resource<'a> {
    id: &'a str,
    address: &'a str,
    port: u16,
    engine: Option<&'a str>,
    engine_version: Option<&'a str>,
    master_user: Option<&'a str>,
    database: Option<&'a str>,
}

fn build_instance(
    source: &RdsSource,
    session: &AwsSession,
    r: Resource<'_>,
    mut labels: BTreeMap<String, String>,
) -> Instance {
    labels.insert(LABEL_IDENTIFIER.to_string(), r.id.to_string());
    labels.insert(
        LABEL_ENDPOINT.to_string(),
        format!("{}:{}", r.address, r.port),
    );
    labels.insert(LABEL_REGION.to_string(), session.region.clone());
    insert_opt(&mut labels, LABEL_ENGINE, r.engine);
    insert_opt(&mut labels, LABEL_ENGINE_VERSION, r.engine_version);

    let mapped = source
        .endpoint_map
        .get(&format!("{}:{}", r.address, r.port))
        .or_else(|| source.endpoint_map.get(r.address))
        .or_else(|| source.endpoint_map.get(r.id));
    let (host, port) = match mapped {
        Some(t) => (t.host.clone(), t.port),
        None => (r.address.to_string(), r.port),
    };
    let sslmode = source.sslmode.clone().unwrap_or_else(|| {
        if is_local_host(&host) {
            "prefer"
        } else {
            "require"
        }
        .to_string()
    });
    Instance {
        name: r.id.to_string(),
        connection: ConnectionSpec {
            host,
            port,
            user: source
                .user
                .clone()
                .or_else(|| r.master_user.map(str::to_string))
                .unwrap_or_else(|| "postgres".to_string()),
            database: source
                .database
                .clone()
                .or_else(|| r.database.filter(|d| !d.is_empty()).map(str::to_string))
                .unwrap_or_else(|| "postgres".to_string()),
            password: None,
            sslmode: Some(sslmode),
            iam_auth: source.iam_auth,
        },
        labels,
    }
}

/// How many instances [`rds_fleet`] discovers shards on at once.
const SHARD_DISCOVERY_CONCURRENCY: usize = 8;

/// The whole RDS fleet: [`discover_rds`], then IAM auth tokens where `source.iam_auth` is set,
/// then the shards of every instance by `spec` ([`discover_on_instance`], a few instances at a
/// time). Fails on the first instance that cannot be reached. The tokens in the returned
/// fleet expire after 15 minutes: call [`resolve_iam_passwords`] again before opening new
/// connections later.
pub async fn rds_fleet(source: &RdsSource, spec: &DiscoverySpec) -> Result<Fleet, TopologyError> {
    let session = AwsSession::load(source).await?;
    let mut instances = discover_rds_with(&session, source).await?;
    resolve_iam_passwords_with(&session, &mut instances).await?;
    let shards: Vec<Vec<crate::Shard>> = futures::stream::iter(instances.iter())
        .map(|instance| discover_on_instance(instance, spec))
        .buffered(SHARD_DISCOVERY_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(Fleet {
        instances,
        shards: shards.into_iter().flatten().collect(),
    })
}

impl Fleet {
    /// [`rds_fleet`]: the fleet of RDS clusters and instances selected by `source`, with shards
    /// discovered by `spec`.
    pub async fn from_rds(
        source: &RdsSource,
        spec: &DiscoverySpec,
    ) -> Result<Fleet, TopologyError> {
        rds_fleet(source, spec).await
    }
}

/// Generate an RDS IAM auth token for `user` at the RDS endpoint `host:port` (the endpoint AWS
/// reports, not a tunnel). A local SigV4 presign with the session's credentials and region (no
/// network call); valid for 15 minutes for opening connections. The token is a [`Secret`]: never
/// log it.
pub async fn iam_auth_token(
    session: &AwsSession,
    host: &str,
    port: u16,
    user: &str,
) -> Result<Secret, TopologyError> {
    let fail = |reason: String| TopologyError::AwsIamToken {
        endpoint: format!("{host}:{port}"),
        user: user.to_string(),
        reason,
    };
    if host.is_empty() || user.is_empty() {
        return Err(fail("host and user must not be empty".to_string()));
    }
    let creds = session.credentials().await?;
    let config = AuthTokenConfig::builder()
        .hostname(host)
        .port(u64::from(port))
        .username(user)
        .region(Region::new(session.region.clone()))
        .credentials(creds)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let token = AuthTokenGenerator::new(config)
        .auth_token(&session.sdk)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(Secret::new(token.as_str()))
}

/// Fill [`ConnectionSpec::password`] with a fresh IAM auth token for every instance whose
/// connection has `iam_auth` set; call it right before connecting (tokens last 15 minutes).
/// Loads an [`AwsSession`] from `source` only when some instance needs a token. Returns the
/// number of tokens generated.
pub async fn resolve_iam_passwords(
    instances: &mut [Instance],
    source: &RdsSource,
) -> Result<usize, TopologyError> {
    if !instances.iter().any(|i| i.connection.iam_auth) {
        return Ok(0);
    }
    let session = AwsSession::load(source).await?;
    resolve_iam_passwords_with(&session, instances).await
}

/// [`resolve_iam_passwords`] with an already loaded session. The token is signed for the
/// instance's `rds:endpoint` label when present (so it stays valid through an endpoint mapping),
/// else for the connection's host and port.
pub async fn resolve_iam_passwords_with(
    session: &AwsSession,
    instances: &mut [Instance],
) -> Result<usize, TopologyError> {
    let mut n = 0;
    for instance in instances.iter_mut().filter(|i| i.connection.iam_auth) {
        let (host, port) = instance
            .labels
            .get(LABEL_ENDPOINT)
            .and_then(|e| {
                let (h, p) = e.rsplit_once(':')?;
                Some((h.to_string(), p.parse::<u16>().ok()?))
            })
            .unwrap_or_else(|| (instance.connection.host.clone(), instance.connection.port));
        let token = iam_auth_token(session, &host, port, &instance.connection.user).await?;
        instance.connection.password = Some(token);
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag::builder().key(k).value(v).build()
    }

    #[test]
    fn tag_filters_or_within_key_and_across_keys() {
        let tags = vec![tag("env", "prod"), tag("team", "core")];
        let f = |s: &[&str]| {
            s.iter()
                .map(|x| x.parse::<TagFilter>().unwrap())
                .collect::<Vec<_>>()
        };
        assert!(tags_match(&f(&[]), &tags));
        assert!(tags_match(&f(&["env=prod"]), &tags));
        assert!(tags_match(&f(&["env=staging", "env=prod"]), &tags));
        assert!(tags_match(&f(&["env=prod", "team"]), &tags));
        assert!(!tags_match(&f(&["env=prod", "team=payments"]), &tags));
        assert!(!tags_match(&f(&["owner"]), &tags));
        assert!("=x".parse::<TagFilter>().is_err());
    }

    #[test]
    fn rds_target_shape() {
        for ok in [
            "prod-db",
            "a",
            "Tenants01",
            "aurora-main-1",
            "arn:aws:rds:eu-west-1:123456789012:cluster:prod",
            "arn:aws-cn:rds:cn-north-1:123456789012:db:prod-1",
        ] {
            assert!(is_rds_target(ok), "{ok}");
        }
        for bad in ["arn:aws:rds:eu-west-1:1:snapshot:x", "arn:aws:s3:::bucket"] {
            assert!(!is_rds_target(bad), "{bad}");
        }
        let s = RdsSource::target("arn:aws:rds:eu-west-1:123456789012:cluster:prod");
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.cluster_ids, ["prod"]);
        assert!(s.identifiers.is_empty() && s.instance_ids.is_empty());
        let s = RdsSource::target("arn:aws:rds:us-east-1:123456789012:db:pg-a");
        assert_eq!(s.instance_ids, ["pg-a"]);
        assert_eq!(RdsSource::target("pg-a").identifiers, ["pg-a"]);
        for bad in [
            "",
            "1db",
            "db-",
            "a--b",
            "postgres://x@h/db",
            "fleet.toml",
            "db_1",
            &"a".repeat(64),
        ] {
            assert!(!is_rds_target(bad), "{bad}");
        }
    }

    #[test]
    fn endpoint_targets_parse() {
        assert_eq!(
            "127.0.0.1:6543".parse::<EndpointTarget>().unwrap(),
            EndpointTarget::new("127.0.0.1", 6543)
        );
        assert_eq!(
            "[::1]:5432".parse::<EndpointTarget>().unwrap(),
            EndpointTarget::new("::1", 5432)
        );
        assert!("[::1]:5432".parse::<EndpointTarget>().unwrap().is_local());
        assert!(
            !"db.example.com:5432"
                .parse::<EndpointTarget>()
                .unwrap()
                .is_local()
        );
        assert!("db.example.com".parse::<EndpointTarget>().is_err());
        assert!("db:99999".parse::<EndpointTarget>().is_err());
        let mut s = RdsSource::default();
        s.add_endpoint_mapping("prod-db=localhost:15432").unwrap();
        assert_eq!(
            s.endpoint_map["prod-db"],
            EndpointTarget::new("localhost", 15432)
        );
        assert!(s.add_endpoint_mapping("localhost:15432").is_err());
    }
}

//! Discovery: which RDS clusters and instances an [`RdsSource`] selects, as [`Instance`]s, and
//! the whole fleet with its shards ([`rds_fleet`]).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_rds::types::{DbCluster, DbInstance, Filter, Tag};
use futures::{StreamExt, TryStreamExt};

use super::session::{AwsSession, resolve_iam_passwords_with};
use super::source::{RdsSource, is_local_host, tags_match};
use super::{
    LABEL_ARN, LABEL_CLUSTER, LABEL_ENDPOINT, LABEL_ENGINE, LABEL_ENGINE_VERSION,
    LABEL_IAM_ENABLED, LABEL_IDENTIFIER, LABEL_KIND, LABEL_REGION, LABEL_STATUS,
};
use crate::{ConnectionSpec, DiscoverySpec, Fleet, Instance, TopologyError, discover_on_instance};

/// Discover the RDS fleet selected by `source`: loads an [`AwsSession`] and calls
/// [`discover_rds_with`].
pub async fn discover_rds(source: &RdsSource) -> Result<Vec<Instance>, TopologyError> {
    let session = AwsSession::load(source).await?;
    discover_rds_with(&session, source).await
}

/// Discover the RDS fleet selected by `source` with an already loaded session.
///
/// Returns one [`Instance`] per PostgreSQL cluster (writer endpoint) and per standalone
/// PostgreSQL instance, sorted by name (the identifier). Aurora writer members are not returned
/// separately unless named in `instance_ids`/`identifiers` while their cluster is not selected;
/// Aurora reader members (`IsClusterWriter = false`) of a returned cluster are returned as read
/// replicas of it ([`Instance::replica_of`] = the cluster's name), and so is an RDS read replica
/// (`ReadReplicaSourceDBInstanceIdentifier`) of its source instance.
/// Labels: the resource's tags plus `rds:engine`, `rds:engine_version`, `rds:arn`,
/// `rds:identifier`, `rds:kind`, `rds:endpoint`, `rds:region`, `rds:status`,
/// `rds:iam_auth_enabled` (and `rds:cluster` on cluster members). Resources without an endpoint
/// yet (being created) are skipped unless named explicitly, which is an error.
pub async fn discover_rds_with(
    session: &AwsSession,
    source: &RdsSource,
) -> Result<Vec<Instance>, TopologyError> {
    source.validate()?;
    let sel = Selection::of(source);
    let (clusters, instances) = describe(session, &sel).await?;
    let found_clusters: BTreeSet<&str> = clusters
        .iter()
        .filter_map(|c| c.db_cluster_identifier())
        .collect();
    let found_instances: BTreeSet<&str> = instances
        .iter()
        .filter_map(|i| i.db_instance_identifier())
        .collect();
    check_all_found(session, source, &found_clusters, &found_instances)?;

    let mut out: Vec<Instance> = Vec::new();
    let mut readers: BTreeMap<&str, &str> = BTreeMap::new();
    for cluster in clusters
        .iter()
        .filter(|c| tags_match(&source.tags, c.tag_list()))
    {
        if let Some(instance) = from_cluster(session, source, &sel, cluster)? {
            readers.extend(aurora_readers(cluster));
            out.push(instance);
        }
    }
    for instance in instances
        .iter()
        .filter(|i| tags_match(&source.tags, i.tag_list()))
    {
        out.extend(from_instance(
            session,
            source,
            &sel,
            &found_clusters,
            &readers,
            instance,
        )?);
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

/// What an [`RdsSource`] selects: named clusters and instances (all when none is named), of
/// these engines.
struct Selection<'a> {
    engines: Vec<String>,
    page_size: i32,
    named_clusters: BTreeSet<&'a str>,
    named_instances: BTreeSet<&'a str>,
    select_all: bool,
}

impl<'a> Selection<'a> {
    fn of(source: &'a RdsSource) -> Self {
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
        Selection {
            engines: source.engines_or_default(),
            page_size: source.page_size.unwrap_or(100),
            select_all: named_clusters.is_empty() && named_instances.is_empty(),
            named_clusters,
            named_instances,
        }
    }

    /// The API filters: the engines and, unless everything is selected, `names` by `id_filter`.
    fn filters(&self, id_filter: &str, names: &BTreeSet<&str>) -> Vec<Filter> {
        let mut filters = vec![
            Filter::builder()
                .name("engine")
                .set_values(Some(self.engines.clone()))
                .build(),
        ];
        if !self.select_all {
            filters.push(
                Filter::builder()
                    .name(id_filter)
                    .set_values(Some(names.iter().map(|s| s.to_string()).collect()))
                    .build(),
            );
        }
        filters
    }

    /// Whether a resource of `engine` named `id` is selected (from `names` unless all are).
    fn keeps(&self, engine: Option<&str>, id: Option<&str>, names: &BTreeSet<&str>) -> bool {
        engine.is_some_and(|e| self.engines.iter().any(|want| want == e))
            && (self.select_all || id.is_some_and(|id| names.contains(id)))
    }
}

/// `DescribeDBClusters` and `DescribeDBInstances` (paginated), keeping only what `sel` asks for
/// whatever the server's filter support.
async fn describe(
    session: &AwsSession,
    sel: &Selection<'_>,
) -> Result<(Vec<DbCluster>, Vec<DbInstance>), TopologyError> {
    let client = session.client();
    let mut clusters: Vec<DbCluster> = Vec::new();
    if sel.select_all || !sel.named_clusters.is_empty() {
        let mut pages = client
            .describe_db_clusters()
            .set_filters(Some(sel.filters("db-cluster-id", &sel.named_clusters)))
            .max_records(sel.page_size)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| session.api_error("DescribeDBClusters", &e))?;
            clusters.extend(page.db_clusters().iter().cloned());
        }
    }
    let mut instances: Vec<DbInstance> = Vec::new();
    if sel.select_all || !sel.named_instances.is_empty() {
        let mut pages = client
            .describe_db_instances()
            .set_filters(Some(sel.filters("db-instance-id", &sel.named_instances)))
            .max_records(sel.page_size)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| session.api_error("DescribeDBInstances", &e))?;
            instances.extend(page.db_instances().iter().cloned());
        }
    }
    clusters.retain(|c| sel.keeps(c.engine(), c.db_cluster_identifier(), &sel.named_clusters));
    instances.retain(|i| sel.keeps(i.engine(), i.db_instance_identifier(), &sel.named_instances));
    Ok((clusters, instances))
}

/// [`TopologyError::AwsNotFound`] for the named identifiers that matched nothing.
fn check_all_found(
    session: &AwsSession,
    source: &RdsSource,
    found_clusters: &BTreeSet<&str>,
    found_instances: &BTreeSet<&str>,
) -> Result<(), TopologyError> {
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
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort();
    missing.dedup();
    Err(TopologyError::AwsNotFound {
        identifiers: missing,
        region: session.region.clone(),
        profile: session.profile.clone(),
    })
}

/// The instance of a cluster (its writer endpoint); `None` while it has no endpoint, an error
/// then if it was named.
fn from_cluster(
    session: &AwsSession,
    source: &RdsSource,
    sel: &Selection<'_>,
    cluster: &DbCluster,
) -> Result<Option<Instance>, TopologyError> {
    let id = cluster.db_cluster_identifier().unwrap_or_default();
    let Some(address) = cluster.endpoint().filter(|a| !a.is_empty()) else {
        if sel.named_clusters.contains(id) {
            return Err(no_endpoint(session, id, cluster.status()));
        }
        return Ok(None);
    };
    let labels = resource_labels(
        cluster.tag_list(),
        "cluster",
        cluster.db_cluster_arn(),
        cluster.status(),
        cluster.iam_database_authentication_enabled(),
    );
    let resource = Resource {
        id,
        address,
        port: port_of(cluster.port()),
        engine: cluster.engine(),
        engine_version: cluster.engine_version(),
        master_user: cluster.master_username(),
        database: cluster.database_name(),
    };
    Ok(Some(build_instance(source, session, resource, labels)))
}

/// The instance of a standalone DB instance; `None` for a cluster member represented by its
/// cluster, or while it has no endpoint (an error then if it was named).
fn from_instance(
    session: &AwsSession,
    source: &RdsSource,
    sel: &Selection<'_>,
    found_clusters: &BTreeSet<&str>,
    readers: &BTreeMap<&str, &str>,
    instance: &DbInstance,
) -> Result<Option<Instance>, TopologyError> {
    let id = instance.db_instance_identifier().unwrap_or_default();
    let explicit = sel.named_instances.contains(id);
    let member_of = instance.db_cluster_identifier().filter(|c| !c.is_empty());
    let reader_of = readers.get(id).map(|c| c.to_string());
    if let Some(cluster_id) = member_of
        && reader_of.is_none()
        && (!explicit || found_clusters.contains(cluster_id))
    {
        // Represented by its cluster's writer endpoint.
        return Ok(None);
    }
    let endpoint = instance.endpoint();
    let Some(address) = endpoint.and_then(|e| e.address()).filter(|a| !a.is_empty()) else {
        if explicit {
            return Err(no_endpoint(session, id, instance.db_instance_status()));
        }
        return Ok(None);
    };
    let port = port_of(
        endpoint
            .and_then(|e| e.port())
            .or(instance.db_instance_port()),
    );
    let mut labels = resource_labels(
        instance.tag_list(),
        "instance",
        instance.db_instance_arn(),
        instance.db_instance_status(),
        instance.iam_database_authentication_enabled(),
    );
    insert_opt(&mut labels, LABEL_CLUSTER, member_of);
    let resource = Resource {
        id,
        address,
        port,
        engine: instance.engine(),
        engine_version: instance.engine_version(),
        master_user: instance.master_username(),
        database: instance.db_name(),
    };
    let mut built = build_instance(source, session, resource, labels);
    built.replica_of = reader_of.or_else(|| {
        instance
            .read_replica_source_db_instance_identifier()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    });
    Ok(Some(built))
}

/// The reader members of an Aurora cluster (`IsClusterWriter = false`), each with the
/// cluster's identifier.
fn aurora_readers(cluster: &DbCluster) -> Vec<(&str, &str)> {
    let id = cluster.db_cluster_identifier().unwrap_or_default();
    cluster
        .db_cluster_members()
        .iter()
        .filter(|m| m.is_cluster_writer() == Some(false))
        .filter_map(|m| m.db_instance_identifier())
        .map(|m| (m, id))
        .collect()
}

/// The labels of a cluster or instance: its tags, `rds:kind`, `rds:arn`, `rds:status`,
/// `rds:iam_auth_enabled`.
fn resource_labels(
    tags: &[Tag],
    kind: &str,
    arn: Option<&str>,
    status: Option<&str>,
    iam_auth_enabled: Option<bool>,
) -> BTreeMap<String, String> {
    let mut labels = tag_labels(tags);
    labels.insert(LABEL_KIND.to_string(), kind.to_string());
    insert_opt(&mut labels, LABEL_ARN, arn);
    insert_opt(&mut labels, LABEL_STATUS, status);
    let iam = iam_auth_enabled.map(|b| b.to_string());
    insert_opt(&mut labels, LABEL_IAM_ENABLED, iam.as_deref());
    labels
}

/// The error for a named resource without an endpoint yet.
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

/// The port AWS reports, 5432 when it reports none.
fn port_of(port: Option<i32>) -> u16 {
    port.and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(5432)
}

/// Insert `key` when there is a value.
fn insert_opt(labels: &mut BTreeMap<String, String>, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        labels.insert(key.to_string(), v.to_string());
    }
}

/// A resource's tags as labels.
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

/// What [`build_instance`] needs of a cluster or an instance.
struct Resource<'a> {
    id: &'a str,
    address: &'a str,
    port: u16,
    engine: Option<&'a str>,
    engine_version: Option<&'a str>,
    master_user: Option<&'a str>,
    database: Option<&'a str>,
}

/// The [`Instance`] of a resource: labels, endpoint mapping, user, database, `sslmode`.
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
        replica_of: None,
    }
}

/// How many instances [`rds_fleet`] discovers shards on at once.
const SHARD_DISCOVERY_CONCURRENCY: usize = 8;

/// The whole RDS fleet: [`discover_rds`], then IAM auth tokens where `source.iam_auth` is set,
/// then the shards of every instance by `spec` ([`discover_on_instance`], a few instances at a
/// time). Fails on the first instance that cannot be reached. The tokens in the returned
/// fleet expire after 15 minutes: call [`resolve_iam_passwords`](super::resolve_iam_passwords) again before opening new
/// connections later.
pub async fn rds_fleet(source: &RdsSource, spec: &DiscoverySpec) -> Result<Fleet, TopologyError> {
    let session = AwsSession::load(source).await?;
    let mut instances = discover_rds_with(&session, source).await?;
    resolve_iam_passwords_with(&session, &mut instances).await?;
    // A read replica has no shards of its own: its writer's are read there.
    let shards: Vec<Vec<crate::Shard>> =
        futures::stream::iter(instances.iter().filter(|i| !i.is_replica()))
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

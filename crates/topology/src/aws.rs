//! AWS RDS / Aurora fleet source (cargo feature `aws`).
//!
//! [`discover_rds`] lists the PostgreSQL clusters and instances of one AWS account and region
//! (`DescribeDBClusters` / `DescribeDBInstances`, paginated and filtered) and returns one
//! [`Instance`](crate::Instance) per Aurora or Multi-AZ DB cluster (its writer endpoint) and per standalone DB
//! instance. [`resolve_iam_passwords`] fills in RDS IAM auth tokens at connect time.
//!
//! Nothing in this module's public API is an AWS SDK type: the configuration is
//! [`RdsSource`], the loaded AWS configuration is the opaque [`AwsSession`], and the results are
//! the crate's own [`Instance`](crate::Instance) and [`Secret`](crate::Secret).
//!
//! Credentials and region come from the usual AWS chain (environment, shared config and
//! credentials files with an optional named profile, SSO, web identity, ECS, EC2 instance
//! metadata). Resolution is bounded by a timeout and a missing region or missing credentials is
//! reported as [`TopologyError::AwsNoRegion`](crate::TopologyError::AwsNoRegion) / [`TopologyError::AwsNoCredentials`](crate::TopologyError::AwsNoCredentials) instead of
//! hanging. Outside EC2, set `AWS_EC2_METADATA_DISABLED=true` to skip the metadata service.

//!
//! ## Files
//!
//! [`source`](self) holds what to discover ([`RdsSource`], [`TagFilter`], [`EndpointTarget`]),
//! `session` the loaded configuration and IAM tokens, `discover` the API calls and the mapping
//! of clusters and instances to [`Instance`](crate::Instance)s.

mod discover;
mod session;
mod source;

pub use discover::{discover_rds, discover_rds_with, rds_fleet};
pub use session::{AwsSession, iam_auth_token, resolve_iam_passwords, resolve_iam_passwords_with};
pub use source::{EndpointTarget, RdsSource, TagFilter, is_rds_target};

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

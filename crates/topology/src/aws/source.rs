//! What to discover: [`RdsSource`] (profile, region, identifiers, tags, endpoint mapping), its
//! tag filters and endpoint targets.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use aws_sdk_rds::types::Tag;

use super::{ENGINE_AURORA_POSTGRESQL, ENGINE_POSTGRES};
use crate::TopologyError;

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

    pub(super) fn engines_or_default(&self) -> Vec<String> {
        if self.engines.is_empty() {
            vec![
                ENGINE_POSTGRES.to_string(),
                ENGINE_AURORA_POSTGRESQL.to_string(),
            ]
        } else {
            self.engines.clone()
        }
    }

    pub(super) fn validate(&self) -> Result<(), TopologyError> {
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

/// A Unix socket directory, `localhost` or a loopback address.
pub(super) fn is_local_host(host: &str) -> bool {
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `tags` pass the filters: OR within a key, AND across keys.
pub(super) fn tags_match(filters: &[TagFilter], tags: &[Tag]) -> bool {
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

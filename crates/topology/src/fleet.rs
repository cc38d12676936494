//! The fleet model: instances and the tenant shards on them.

use serde::{Deserialize, Serialize};

/// A secret string (password, IAM token). Its `Debug` and `Display` never show the value, and it
/// is never serialized.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for handing to a driver. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How to reach a PostgreSQL instance. The password is a [`Secret`]; [`ConnectionSpec::redacted_url`]
/// is the only form that may be printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSpec {
    /// Host name, IP address, or a Unix socket directory (starts with `/`).
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Default database to connect to.
    pub database: String,
    /// Password or IAM token, if any (never serialized).
    #[serde(skip)]
    pub password: Option<Secret>,
    /// `sslmode` (`disable`, `prefer`, `require`, `verify-full`...).
    #[serde(default)]
    pub sslmode: Option<String>,
    /// Use an RDS IAM auth token as the password (generated at connect time).
    #[serde(default)]
    pub iam_auth: bool,
}

/// Where a tenant lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ShardLocation {
    /// Schema-per-tenant: `schema` inside `database`.
    Schema {
        /// Database holding the schema.
        database: String,
        /// The tenant's schema.
        schema: String,
    },
    /// Database-per-tenant: the tenant's objects live in `schema` (usually `public`) of `database`.
    Database {
        /// The tenant's database.
        database: String,
        /// Schema holding its objects.
        schema: String,
    },
}

impl ShardLocation {
    /// The database the shard lives in.
    pub fn database(&self) -> &str {
        match self {
            ShardLocation::Schema { database, .. } | ShardLocation::Database { database, .. } => {
                database
            }
        }
    }
    /// The schema holding the tenant's tables.
    pub fn schema(&self) -> &str {
        match self {
            ShardLocation::Schema { schema, .. } | ShardLocation::Database { schema, .. } => schema,
        }
    }
}

/// One tenant shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Stable shard identifier used in reports: `<instance>/<database>/<schema>` unless the
    /// topology names it.
    pub id: String,
    /// Name of the instance it lives on (key into [`Fleet::instances`]).
    pub instance: String,
    /// Where on the instance.
    pub location: ShardLocation,
}

impl Shard {
    /// A shard with the default id `<instance>/<database>/<schema>`.
    pub fn new(instance: &str, location: ShardLocation) -> Shard {
        Shard {
            id: format!("{instance}/{}/{}", location.database(), location.schema()),
            instance: instance.to_string(),
            location,
        }
    }
}

/// One PostgreSQL instance (an RDS instance, an Aurora writer, a self-hosted server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Name used in reports.
    pub name: String,
    /// How to connect.
    pub connection: ConnectionSpec,
    /// Free-form labels (RDS tags, topology labels).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The writer this instance is a read replica of (`replica_of` in the topology file, the
    /// source of an RDS read replica, the cluster of an Aurora reader); `None` for a writer.
    /// A replica carries no shards of its own: a shard lives on its writer, and its replicas
    /// are where its data can also be read (`--probe-on replica`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_of: Option<String>,
}

impl Instance {
    /// True when this instance is a read replica of another ([`Instance::replica_of`]).
    pub fn is_replica(&self) -> bool {
        self.replica_of.is_some()
    }
}

/// The whole fleet. Read replicas are instances with [`Instance::replica_of`] set; they have
/// no shards in [`Fleet::shards`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fleet {
    /// Instances by position.
    pub instances: Vec<Instance>,
    /// Shards, grouped by instance in instance order.
    pub shards: Vec<Shard>,
}

impl Fleet {
    /// The read replicas of instance `writer` ([`Instance::replica_of`]), in fleet order.
    pub fn replicas_of<'a>(&'a self, writer: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances
            .iter()
            .filter(move |i| i.replica_of.as_deref() == Some(writer))
    }

    /// How many instances of the fleet are read replicas.
    pub fn replica_count(&self) -> usize {
        self.instances.iter().filter(|i| i.is_replica()).count()
    }

    /// The fleet in one line, as the seed's log says it: `Found 100 tenant shards across 3
    /// reader replicas` when the fleet has replicas, else `Found 100 tenant shards on 3
    /// instance(s)`.
    pub fn summary_line(&self) -> String {
        let replicas = self.replica_count();
        if replicas > 0 {
            format!(
                "Found {} tenant shards across {replicas} reader replica{}",
                self.shards.len(),
                if replicas == 1 { "" } else { "s" }
            )
        } else {
            format!(
                "Found {} tenant shards on {} instance(s)",
                self.shards.len(),
                self.instances.len()
            )
        }
    }
}

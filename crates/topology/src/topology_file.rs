//! The TOML topology file.
//!
//! ```toml
//! # deployclaw topology: where the tenants are.
//!
//! # Optional defaults for every instance (any instance key except `name`).
//! [defaults]
//! user = "deployclaw"
//! database = "app"
//! sslmode = "require"
//! password_env = "DEPLOYCLAW_PG_PASSWORD"   # read at load time; never written anywhere
//! schemas = "tenant_*"                      # default shard discovery
//!
//! [[instance]]
//! name = "eu-1"                             # used in reports and shard ids
//! host = "db-eu-1.internal"                 # or a Unix socket directory (starts with /)
//! port = 5432                               # default 5432
//! labels = { region = "eu" }
//!
//! [[instance]]
//! name = "us-1"
//! url = "postgres://deployclaw@db-us-1.internal:5432/app?sslmode=verify-full"  # instead of host/port/user/database
//! password_env = "US1_PASSWORD"
//! databases = "tenant_%"                    # database-per-tenant (SQL LIKE because of the %)
//! tenant_schema = "public"                  # schema holding each tenant's objects (default public)
//!
//! [[instance]]
//! name = "legacy"
//! host = "10.0.0.9"
//! shards = ["tenant_acme", "tenant_globex"] # explicit schemas in `database`
//!
//! [[instance]]
//! name = "eu-1-ro"
//! host = "db-eu-1-ro.internal"
//! replica_of = "eu-1"                       # a read replica of eu-1: no shards of its own
//!
//! [[instance]]
//! name = "vip"
//! host = "10.0.0.10"
//! [[instance.shard]]                         # fully explicit shards
//! id = "vip/acme"                            # optional; default <instance>/<database>/<schema>
//! database = "acme"
//! schema = "public"
//! ```
//!
//! Keys of an instance: `name` (required, unique), `url` *or* `host`/`port`/`user`/`database`
//! (`user` defaults to `postgres`, `database` to `postgres`; URL values win over defaults,
//! explicit keys win over the URL), `sslmode`, `password_env` (name of an environment
//! variable holding the password; an error when unset), `password` (inline — **discouraged**:
//! the file then holds a secret; prefer `password_env` or `PGPASSWORD`), `iam_auth` (RDS IAM
//! token instead of a password), `labels`, `replica_of` (the name of the writer this instance is a
//! read replica of: it then has no shard source; `--probe-on replica` reads its writer's shards
//! there), and at most one shard source: `schemas` (pattern),
//! `databases` (pattern, with `tenant_schema`), `shards` (schema names) or `[[instance.shard]]`.
//! Without any, and without a default, the instance has no shards. With no password at all,
//! `PGPASSWORD`, else the libpq password file (`PGPASSFILE`, else `~/.pgpass`) applies
//! ([`ConnectionSpec::resolve_password`]). `url` may also be libpq `key=value` pairs.
//!
//! Patterns are globs, or SQL `LIKE` when they contain `%` (see [`crate::discover`]).
//! Errors carry the file, line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::discover::{DiscoverySpec, NamePattern, discover_on_instance};
use crate::{ConnectionSpec, Fleet, Instance, Secret, Shard, ShardLocation, TopologyError};

/// Where an instance's shards come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardSource {
    /// Listed in the file.
    Explicit(Vec<Shard>),
    /// Discovered live.
    Discover(DiscoverySpec),
}

/// An instance of a topology file with its shard source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyInstance {
    /// The instance.
    pub instance: Instance,
    /// Its shards.
    pub shards: ShardSource,
}

/// A parsed topology file: instances and how to find their shards. [`Topology::resolve`] turns
/// it into a [`Fleet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The file it came from (for messages).
    pub file: PathBuf,
    /// Instances in file order.
    pub instances: Vec<TopologyInstance>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    name: Option<String>,
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    database: Option<String>,
    sslmode: Option<String>,
    password_env: Option<String>,
    password: Option<String>,
    iam_auth: Option<bool>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    replica_of: Option<String>,
    schemas: Option<String>,
    databases: Option<String>,
    tenant_schema: Option<String>,
    shards: Option<Vec<String>>,
    shard: Option<Vec<RawShard>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawShard {
    id: Option<String>,
    database: Option<String>,
    schema: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    defaults: Option<RawInstance>,
    #[serde(default)]
    instance: Vec<Spanned<RawInstance>>,
}

impl RawInstance {
    /// The instance `name` (an `[[instance]]` table) with its connection: `defaults` < `url` <
    /// explicit keys; `ctx` makes the error of a bad value.
    fn instance(
        &self,
        defaults: &RawInstance,
        name: &str,
        file: &Path,
        ctx: &dyn Fn(String) -> TopologyError,
    ) -> Result<Instance, TopologyError> {
        let url_spec = match self.url.as_deref().or(defaults.url.as_deref()) {
            Some(u) => Some(ConnectionSpec::parse(u).map_err(|e| ctx(e.to_string()))?),
            None => None,
        };
        let host = self
            .host
            .clone()
            .or_else(|| url_spec.as_ref().map(|u| u.host.clone()))
            .or_else(|| defaults.host.clone())
            .ok_or_else(|| ctx("needs `host` or `url`".to_string()))?;
        let port = self
            .port
            .or_else(|| url_spec.as_ref().map(|u| u.port))
            .or(defaults.port)
            .unwrap_or(5432);
        let user = self
            .user
            .clone()
            .or_else(|| url_spec.as_ref().map(|u| u.user.clone()))
            .or_else(|| defaults.user.clone())
            .unwrap_or_else(|| "postgres".into());
        let database = self
            .database
            .clone()
            .or_else(|| url_spec.as_ref().map(|u| u.database.clone()))
            .or_else(|| defaults.database.clone())
            .unwrap_or_else(|| "postgres".into());
        let sslmode = self
            .sslmode
            .clone()
            .or_else(|| url_spec.as_ref().and_then(|u| u.sslmode.clone()))
            .or_else(|| defaults.sslmode.clone());
        if let Some(m) = &sslmode
            && m.parse::<sqlx::postgres::PgSslMode>().is_err()
        {
            return Err(ctx(
                "unknown sslmode (disable, allow, prefer, require, verify-ca, \
                            verify-full)"
                    .to_string(),
            ));
        }
        let password = if let Some(var) = self
            .password_env
            .as_ref()
            .or(defaults.password_env.as_ref())
        {
            match std::env::var(var) {
                Ok(v) => Some(Secret::new(v)),
                Err(_) => {
                    return Err(TopologyError::PasswordEnvMissing {
                        file: file.to_path_buf(),
                        instance: name.to_string(),
                        var: var.clone(),
                    });
                }
            }
        } else if let Some(p) = self.password.as_ref().or(defaults.password.as_ref()) {
            Some(Secret::new(p.clone()))
        } else {
            url_spec.as_ref().and_then(|u| u.password.clone())
        };
        Ok(Instance {
            name: name.to_string(),
            connection: ConnectionSpec {
                host,
                port,
                user,
                database: database.clone(),
                password,
                sslmode,
                iam_auth: self.iam_auth.or(defaults.iam_auth).unwrap_or(false),
            }
            .with_resolved_password(),
            labels: {
                let mut l = defaults.labels.clone();
                l.extend(self.labels.clone());
                l
            },
            replica_of: self.replica_of.clone(),
        })
    }

    /// Where the shards of instance `name` (on `database`) come from: an explicit list, or
    /// discovery by database or schema pattern.
    fn shard_source(
        &self,
        defaults: &RawInstance,
        name: &str,
        database: &str,
        ctx: &dyn Fn(String) -> TopologyError,
    ) -> Result<ShardSource, TopologyError> {
        let explicit_sources = [
            self.schemas.is_some(),
            self.databases.is_some(),
            self.shards.is_some(),
            self.shard.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if explicit_sources > 1 {
            return Err(ctx(
                "set only one of `schemas`, `databases`, `shards`, `[[instance.shard]]`"
                    .to_string(),
            ));
        }
        let tenant_schema = self
            .tenant_schema
            .clone()
            .or_else(|| defaults.tenant_schema.clone())
            .unwrap_or_else(|| "public".into());
        let shards = if let Some(list) = &self.shards {
            ShardSource::Explicit(
                list.iter()
                    .map(|s| {
                        Shard::new(
                            name,
                            ShardLocation::Schema {
                                database: database.to_string(),
                                schema: s.clone(),
                            },
                        )
                    })
                    .collect(),
            )
        } else if let Some(list) = &self.shard {
            ShardSource::Explicit(
                list.iter()
                    .map(|s| {
                        let db = s.database.clone().unwrap_or_else(|| database.to_string());
                        let loc = if db == *database {
                            ShardLocation::Schema {
                                database: db,
                                schema: s.schema.clone(),
                            }
                        } else {
                            ShardLocation::Database {
                                database: db,
                                schema: s.schema.clone(),
                            }
                        };
                        let mut shard = Shard::new(name, loc);
                        if let Some(id) = &s.id {
                            shard.id = id.clone();
                        }
                        shard
                    })
                    .collect(),
            )
        } else if let Some(p) = self.databases.as_ref().or(if self.schemas.is_none() {
            defaults.databases.as_ref()
        } else {
            None
        }) {
            NamePattern::new(p).map_err(|e| ctx(e.to_string()))?;
            ShardSource::Discover(DiscoverySpec::Databases {
                pattern: p.clone(),
                schema: tenant_schema,
            })
        } else if let Some(p) = self.schemas.as_ref().or(defaults.schemas.as_ref()) {
            NamePattern::new(p).map_err(|e| ctx(e.to_string()))?;
            ShardSource::Discover(DiscoverySpec::Schemas {
                pattern: p.clone(),
                database: None,
            })
        } else {
            ShardSource::Explicit(Vec::new())
        };
        Ok(shards)
    }
}

impl RawInstance {
    /// A replica (`replica_of`) may not name shards: they live on its writer.
    fn replica_has_no_shards(
        &self,
        ctx: &dyn Fn(String) -> TopologyError,
    ) -> Result<(), TopologyError> {
        if self.schemas.is_some()
            || self.databases.is_some()
            || self.shards.is_some()
            || self.shard.is_some()
        {
            return Err(ctx(
                "a read replica (`replica_of`) has no shards of its own: set `schemas`, \
                 `databases`, `shards` or `[[instance.shard]]` on its writer"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

/// Every `replica_of` names another instance of the file that is a writer (not itself a
/// replica); `spans[i]` is where instance `i` is written.
fn check_replicas(
    instances: &[TopologyInstance],
    spans: &[Option<usize>],
    invalid: &dyn Fn(Option<usize>, String) -> TopologyError,
) -> Result<(), TopologyError> {
    for (ti, at) in instances.iter().zip(spans) {
        let Some(writer) = &ti.instance.replica_of else {
            continue;
        };
        let name = &ti.instance.name;
        let found = instances.iter().find(|w| &w.instance.name == writer);
        let problem = match found {
            None => format!("no instance named `{writer}`"),
            Some(w) if &w.instance.name == name => "an instance cannot replicate itself".into(),
            Some(w) if w.instance.is_replica() => {
                format!("`{writer}` is itself a replica; name the writer")
            }
            Some(_) => continue,
        };
        return Err(invalid(
            *at,
            format!("instance `{name}`: replica_of = \"{writer}\": {problem}"),
        ));
    }
    Ok(())
}

/// A serde type error without the offending value (`password = 12345` must not print the
/// password): `invalid type: integer (value not shown), expected a string`.
fn hide_value(message: &str) -> String {
    for kind in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(kind) {
            let (what, expected) = match rest.split_once(", expected ") {
                Some((w, e)) => (w, format!(", expected {e}")),
                None => (rest, String::new()),
            };
            let what = what.split_whitespace().next().unwrap_or("value");
            return format!("{kind}{what} (value not shown){expected}");
        }
    }
    message.to_string()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

impl Topology {
    /// Read and parse a topology file (no network).
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Topology, TopologyError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| TopologyError::TopologyFileRead {
                file: path.to_path_buf(),
                source,
            })?;
        Topology::from_toml_str(&text, path)
    }

    /// Parse topology text; `file` is used in error messages.
    pub fn from_toml_str(text: &str, file: impl AsRef<Path>) -> Result<Topology, TopologyError> {
        let file = file.as_ref().to_path_buf();
        let invalid = |offset: Option<usize>, message: String| {
            let (line, column) = offset.map(|o| line_col(text, o)).unwrap_or((0, 0));
            TopologyError::TopologyFileInvalid {
                file: file.clone(),
                line,
                column,
                message,
            }
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            invalid(
                e.span().map(|s| s.start),
                hide_value(e.message().lines().next().unwrap_or("invalid TOML")),
            )
        })?;
        let defaults = raw.defaults.unwrap_or_default();
        if defaults.name.is_some()
            || defaults.shards.is_some()
            || defaults.shard.is_some()
            || defaults.replica_of.is_some()
        {
            return Err(invalid(
                None,
                "[defaults] may not set `name`, `shards`, `shard` or `replica_of`".to_string(),
            ));
        }
        if defaults.schemas.is_some() && defaults.databases.is_some() {
            return Err(invalid(
                None,
                "[defaults] may set `schemas` or `databases`, not both".to_string(),
            ));
        }
        let mut instances = Vec::new();
        let mut spans = Vec::new();
        let mut seen = BTreeMap::new();
        for sp in raw.instance {
            let at = Some(sp.span().start);
            let r = sp.into_inner();
            let name = r
                .name
                .clone()
                .ok_or_else(|| invalid(at, "instance without `name`".to_string()))?;
            if seen.insert(name.clone(), ()).is_some() {
                return Err(invalid(at, format!("duplicate instance name `{name}`")));
            }
            let ctx = |m: String| invalid(at, format!("instance `{name}`: {m}"));

            let instance = r.instance(&defaults, &name, &file, &ctx)?;
            let shards = if instance.is_replica() {
                r.replica_has_no_shards(&ctx)?;
                ShardSource::Explicit(Vec::new())
            } else {
                r.shard_source(&defaults, &name, &instance.connection.database, &ctx)?
            };
            instances.push(TopologyInstance { instance, shards });
            spans.push(at);
        }
        if instances.is_empty() {
            return Err(invalid(None, "no [[instance]] defined".to_string()));
        }
        check_replicas(&instances, &spans, &invalid)?;
        Ok(Topology { file, instances })
    }

    /// Replace every writer's shard source with discovery by `spec` (command-line patterns
    /// override the file); read replicas keep none.
    pub fn override_discovery(&mut self, spec: &DiscoverySpec) {
        for i in self
            .instances
            .iter_mut()
            .filter(|i| !i.instance.is_replica())
        {
            i.shards = ShardSource::Discover(spec.clone());
        }
    }

    /// Build the fleet: explicit shards as listed, discovered shards by connecting to each
    /// instance that needs it (concurrently).
    pub async fn resolve(&self) -> Result<Fleet, TopologyError> {
        let found = futures::future::try_join_all(self.instances.iter().map(|ti| async move {
            match &ti.shards {
                ShardSource::Explicit(s) => Ok(s.clone()),
                ShardSource::Discover(spec) => discover_on_instance(&ti.instance, spec).await,
            }
        }))
        .await?;
        Ok(Fleet {
            instances: self.instances.iter().map(|t| t.instance.clone()).collect(),
            shards: found.into_iter().flatten().collect(),
        })
    }
}

impl Fleet {
    /// Read a topology file and resolve it into a fleet (discovering shards live where the file
    /// says so). See [`Topology`] for the format.
    pub async fn from_toml_file(path: impl AsRef<Path>) -> Result<Fleet, TopologyError> {
        Topology::from_toml_file(path)?.resolve().await
    }

    /// A one-instance fleet from a connection string (URL or libpq keyword/value, see
    /// [`ConnectionSpec::parse`]), with shards discovered by `spec`. Without a password in
    /// it, `PGPASSWORD` or the password file applies ([`ConnectionSpec::resolve_password`]).
    pub async fn from_url(
        instance_name: &str,
        url: &str,
        spec: &DiscoverySpec,
    ) -> Result<Fleet, TopologyError> {
        let instance = Instance {
            name: instance_name.to_string(),
            connection: ConnectionSpec::parse(url)?.with_resolved_password(),
            labels: BTreeMap::new(),
            replica_of: None,
        };
        let shards = discover_on_instance(&instance, spec).await?;
        Ok(Fleet {
            instances: vec![instance],
            shards,
        })
    }

    /// The instance called `name`.
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// Shards on instance `name`.
    pub fn shards_on<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Shard> + 'a {
        self.shards.iter().filter(move |s| s.instance == name)
    }
}

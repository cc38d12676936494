//! Live discovery of tenant shards on an instance: schemas or databases whose names match a
//! pattern. This is the plumbing every fleet source (topology file, `--target-db`, AWS RDS)
//! calls once it knows the instances: [`discover_on_instance`].
//!
//! # Patterns
//!
//! A pattern is a glob (`tenant_*`, `tenant_00[0-4]?`, `{acme,globex}`; matched with `globset`,
//! case-sensitive, over the whole name) — unless it contains `%`, in which case it is an SQL
//! `LIKE` pattern (`%` any run, `_` any one character, `\` escapes). System schemas
//! (`pg_*`, `information_schema`) and template databases are never matched.

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

use crate::{Instance, Shard, ShardLocation, TopologyError};

/// A compiled name pattern (see the module doc).
#[derive(Debug, Clone)]
pub struct NamePattern {
    source: String,
    matcher: GlobMatcher,
}

impl NamePattern {
    /// Compile a glob, or an SQL `LIKE` pattern when it contains `%`.
    pub fn new(pattern: &str) -> Result<NamePattern, TopologyError> {
        let glob = if pattern.contains('%') {
            like_to_glob(pattern)
        } else {
            pattern.to_string()
        };
        let g = GlobBuilder::new(&glob)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| TopologyError::InvalidPattern {
                pattern: pattern.to_string(),
                reason: e.kind().to_string(),
            })?;
        Ok(NamePattern {
            source: pattern.to_string(),
            matcher: g.compile_matcher(),
        })
    }

    /// Does `name` match?
    pub fn is_match(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

fn like_to_glob(p: &str) -> String {
    let mut out = String::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '\\' => {
                if let Some(n) = chars.next() {
                    push_literal(&mut out, n);
                }
            }
            c => push_literal(&mut out, c),
        }
    }
    out
}

fn push_literal(out: &mut String, c: char) {
    if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\' | '!' | ',') {
        out.push('\\');
    }
    out.push(c);
}

/// How to find the shards on one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum DiscoverySpec {
    /// Schema-per-tenant: schemas matching `pattern` in `database` (the instance's default
    /// database when `None`).
    Schemas {
        /// Name pattern.
        pattern: String,
        /// Database to look in.
        database: Option<String>,
    },
    /// Database-per-tenant: databases matching `pattern`; the tenant's objects live in `schema`
    /// (usually `public`) of each.
    Databases {
        /// Name pattern.
        pattern: String,
        /// Schema holding each tenant's objects.
        schema: String,
    },
}

impl DiscoverySpec {
    /// Schemas matching `pattern` in the instance's default database.
    pub fn schemas(pattern: impl Into<String>) -> Self {
        DiscoverySpec::Schemas {
            pattern: pattern.into(),
            database: None,
        }
    }

    /// Databases matching `pattern`, tenant objects in `public`.
    pub fn databases(pattern: impl Into<String>) -> Self {
        DiscoverySpec::Databases {
            pattern: pattern.into(),
            schema: "public".into(),
        }
    }

    /// The pattern.
    pub fn pattern(&self) -> &str {
        match self {
            DiscoverySpec::Schemas { pattern, .. } | DiscoverySpec::Databases { pattern, .. } => {
                pattern
            }
        }
    }
}

/// Find the shards of `instance` described by `spec`, sorted by name. Connects once (to the
/// instance's default database, or the spec's database for schema discovery) and runs one
/// catalog query. Shard ids are `<instance>/<database>/<schema>`.
pub async fn discover_on_instance(
    instance: &Instance,
    spec: &DiscoverySpec,
) -> Result<Vec<Shard>, TopologyError> {
    let pattern = NamePattern::new(spec.pattern())?;
    match spec {
        DiscoverySpec::Schemas { database, .. } => {
            let conn = match database {
                Some(db) => instance.connection.with_database(db),
                None => instance.connection.clone(),
            };
            let pool = conn.connect_pool(&instance.name, 1).await?;
            let names: Result<Vec<String>, _> = sqlx::query_scalar(
                "SELECT nspname::text FROM pg_catalog.pg_namespace \
                 WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1",
            )
            .fetch_all(&pool)
            .await;
            pool.close().await;
            let names = names
                .map_err(|e| TopologyError::query(instance.name.clone(), "list schemas", e))?;
            Ok(names
                .into_iter()
                .filter(|n| pattern.is_match(n))
                .map(|schema| {
                    Shard::new(
                        &instance.name,
                        ShardLocation::Schema {
                            database: conn.database.clone(),
                            schema,
                        },
                    )
                })
                .collect())
        }
        DiscoverySpec::Databases { schema, .. } => {
            let pool = instance.connection.connect_pool(&instance.name, 1).await?;
            let names: Result<Vec<String>, _> = sqlx::query_scalar(
                "SELECT datname::text FROM pg_catalog.pg_database \
                 WHERE datallowconn AND NOT datistemplate ORDER BY 1",
            )
            .fetch_all(&pool)
            .await;
            pool.close().await;
            let names = names
                .map_err(|e| TopologyError::query(instance.name.clone(), "list databases", e))?;
            Ok(names
                .into_iter()
                .filter(|n| pattern.is_match(n))
                .map(|database| {
                    Shard::new(
                        &instance.name,
                        ShardLocation::Database {
                            database,
                            schema: schema.clone(),
                        },
                    )
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_and_like_patterns() {
        let g = NamePattern::new("tenant_*").unwrap();
        assert!(g.is_match("tenant_0001"));
        assert!(!g.is_match("tenantx"));
        assert!(!g.is_match("xtenant_1"));
        let l = NamePattern::new("tenant\\_%").unwrap();
        assert!(l.is_match("tenant_0001"));
        assert!(!l.is_match("tenantX0001"));
        let l2 = NamePattern::new("tenant_%").unwrap();
        assert!(l2.is_match("tenantX0001"), "LIKE `_` is any one character");
        assert!(NamePattern::new("tenant_[").is_err());
        let alt = NamePattern::new("{acme,globex}").unwrap();
        assert!(alt.is_match("globex") && !alt.is_match("initech"));
    }
}

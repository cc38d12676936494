//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong in `topology`. Context is carried as data (instance, shard,
/// file, line, column); no variant ever contains a password or token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// No PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`) were found.
    #[error(
        "no PostgreSQL server binaries found (looked in: {}); install the Debian package `postgresql` \
         (or set the binary directory explicitly)",
        searched.join(", ")
    )]
    PgBinariesNotFound {
        /// Where we looked, in order.
        searched: Vec<String>,
    },
    /// The process runs as root and no unprivileged OS user to run PostgreSQL as was found.
    #[error(
        "running as root, but the OS user `{user}` (to run initdb/pg_ctl as) does not exist in /etc/passwd"
    )]
    NoUnprivilegedUser {
        /// The user looked up.
        user: String,
    },
    /// A PostgreSQL server program failed.
    #[error("{program} failed ({status}) for ephemeral cluster in {dir}: {log_tail}")]
    PgCommandFailed {
        /// The program (`initdb`, `pg_ctl start`, ...).
        program: String,
        /// Exit status description.
        status: String,
        /// The cluster's directory.
        dir: PathBuf,
        /// Last lines of the program's output or the server log.
        log_tail: String,
    },
    /// Local IO (temp dirs, files, spawning programs).
    #[error("{action}: {source}")]
    Io {
        /// What was being done, with the path when there is one.
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A topology file could not be read.
    #[error("cannot read topology file {}: {source}", file.display())]
    TopologyFileRead {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A topology file is not valid TOML or does not match the format.
    #[error("{}:{line}:{column}: {message}", file.display())]
    TopologyFileInvalid {
        /// The file.
        file: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A topology file names an environment variable for a password that is not set.
    #[error("{}: instance `{instance}`: environment variable `{var}` (password_env) is not set", file.display())]
    PasswordEnvMissing {
        /// The file.
        file: PathBuf,
        /// The instance.
        instance: String,
        /// The variable.
        var: String,
    },
    /// A connection string (`postgres://` URL or libpq keyword/value pairs) could not be
    /// parsed. The string itself is not kept (it may hold a password); `reason` shows at most
    /// its masked form ([`crate::mask_connection_string`]).
    #[error("invalid PostgreSQL connection string: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// A discovery pattern is not a valid glob.
    #[error("invalid pattern `{pattern}`: {reason}")]
    InvalidPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Could not connect to an instance.
    #[error("cannot connect to instance `{instance}` ({url}): {source}")]
    Connect {
        /// Instance name.
        instance: String,
        /// Redacted URL.
        url: String,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
    /// A catalog or discovery query failed.
    #[error("query failed on {target} ({what}): {source}")]
    Query {
        /// Instance, database or shard the query ran on.
        target: String,
        /// What the query was for.
        what: String,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
    /// A schema that was asked for does not exist.
    #[error("schema `{schema}` not found in {target}")]
    SchemaNotFound {
        /// Where we looked.
        target: String,
        /// The schema.
        schema: String,
    },
    /// A fixture specification is inconsistent.
    #[error("invalid fixture spec: {reason}")]
    InvalidFixture {
        /// What is wrong.
        reason: String,
    },
    /// AWS (feature `aws`): no region could be determined.
    #[error(
        "no AWS region: pass --aws-region, set `region` in {}, or set AWS_REGION",
        aws_profile_phrase(profile.as_deref())
    )]
    AwsNoRegion {
        /// The named profile in use, if any.
        profile: Option<String>,
    },
    /// AWS (feature `aws`): no credentials could be loaded.
    #[error(
        "no AWS credentials for {}: {reason}; configure the profile in ~/.aws/credentials or \
         ~/.aws/config (or run `aws sso login`), pass --aws-profile, or set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY",
        aws_profile_phrase(profile.as_deref())
    )]
    AwsNoCredentials {
        /// The named profile in use, if any.
        profile: Option<String>,
        /// Why the credential chain gave up (never contains a key).
        reason: String,
    },
    /// AWS (feature `aws`): an RDS API call failed.
    #[error("AWS RDS {operation} failed in region {region}: {message}")]
    AwsApi {
        /// The API operation (`DescribeDBInstances`, ...).
        operation: String,
        /// The region called.
        region: String,
        /// The service or transport error, with a hint when one is known.
        message: String,
    },
    /// AWS (feature `aws`): named RDS clusters or instances were not found.
    #[error(
        "no RDS PostgreSQL cluster or instance named {} in region {region}{}; check the identifier, \
         --aws-region and --aws-profile",
        identifiers.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", "),
        profile.as_deref().map(|p| format!(" (profile `{p}`)")).unwrap_or_default()
    )]
    AwsNotFound {
        /// The identifiers that matched nothing.
        identifiers: Vec<String>,
        /// The region searched.
        region: String,
        /// The named profile in use, if any.
        profile: Option<String>,
    },
    /// AWS (feature `aws`): the RDS source configuration is invalid.
    #[error("invalid AWS RDS source: {reason}")]
    AwsInvalidSource {
        /// What is wrong.
        reason: String,
    },
    /// AWS (feature `aws`): an RDS IAM auth token could not be generated.
    #[error("cannot generate an RDS IAM auth token for user `{user}` at {endpoint}: {reason}")]
    AwsIamToken {
        /// `host:port` the token was for.
        endpoint: String,
        /// Database user.
        user: String,
        /// Why (never contains a key or token).
        reason: String,
    },
}

impl TopologyError {
    /// Wrap an IO error with what was being done.
    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        TopologyError::Io {
            action: action.into(),
            source,
        }
    }

    /// Wrap a query error.
    pub(crate) fn query(
        target: impl Into<String>,
        what: impl Into<String>,
        source: sqlx::Error,
    ) -> Self {
        TopologyError::Query {
            target: target.into(),
            what: what.into(),
            source,
        }
    }

    /// True when the error means the fleet (or a part of it) could not be reached or read, as
    /// opposed to bad input. The CLI maps this to exit code 4.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            TopologyError::Connect { .. }
                | TopologyError::Query { .. }
                | TopologyError::SchemaNotFound { .. }
                | TopologyError::AwsApi { .. }
        )
    }
}

/// "the default profile" or "profile `x`", for AWS error messages.
fn aws_profile_phrase(profile: Option<&str>) -> String {
    match profile {
        Some(p) => format!("profile `{p}`"),
        None => "the default profile".to_string(),
    }
}

//! The crate's single error type.

/// What can stop a simulation. A statement that fails in rehearsal, a probe that finds orphans or
/// an unreachable shard are *outcomes* recorded in the [`crate::SimulationResult`], not errors.
/// No variant ever carries a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The run was cancelled through its [`crate::CancelToken`]. Everything opened was closed:
    /// transactions rolled back, shadow databases dropped.
    #[error("simulation cancelled")]
    Cancelled,
    /// The options are inconsistent.
    #[error("invalid simulator options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },
    /// The ephemeral shadow cluster could not be started.
    #[error("cannot start the ephemeral shadow PostgreSQL: {source}")]
    ShadowStart {
        /// The underlying error.
        #[source]
        source: topology::TopologyError,
    },
    /// The shadow server (`--shadow URL` or the ephemeral one) could not be reached or used.
    #[error("shadow server {url}: {what}: {source}")]
    Shadow {
        /// Redacted URL of the shadow server.
        url: String,
        /// What was being done.
        what: String,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
    /// A query on a shard failed for a reason that is not an outcome (e.g. a catalog query).
    #[error("shard {shard}: {what}: {source}")]
    Query {
        /// The shard id.
        shard: String,
        /// The statement index in the migration, when the query belonged to one.
        statement_index: Option<usize>,
        /// What the query was for.
        what: String,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
    /// A PostgreSQL client program (`pg_dump`, `psql`) could not be run or failed.
    #[error("{program}: {message}")]
    PgTool {
        /// The program.
        program: String,
        /// What went wrong (stderr tail).
        message: String,
    },
    /// A shard named in the input is not in the fleet, or its instance is missing.
    #[error("shard {shard}: instance `{instance}` is not in the fleet")]
    UnknownInstance {
        /// The shard id.
        shard: String,
        /// The instance it names.
        instance: String,
    },
    /// A custom probe may not run: its SQL is not one read-only query, or a function it calls
    /// is (on `shard`, as the name resolves there) volatile or administrative, or it reads a
    /// credential catalog. Found before any custom probe ran on any shard; nothing ran.
    #[error("custom probe `{probe}` refused{}: {reason}", shard.as_deref().map(|s| format!(" on shard {s}")).unwrap_or_default())]
    UnsafeCustomProbe {
        /// The probe's name (for custom rules: the rule's name).
        probe: String,
        /// The shard whose catalog refused it; `None` for a static refusal (any shard).
        shard: Option<String>,
        /// 1-based line of the offending place within the probe's SQL template, 0 for the
        /// query as a whole.
        line: u32,
        /// 1-based column of the offending place within the template, 0 when unknown.
        column: u32,
        /// Why, naming the function, relation or clause.
        reason: String,
    },
}

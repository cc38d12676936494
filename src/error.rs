//! The composed pipeline's error: why the gate could not run at all.

/// Why [`crate::pipeline::validate`] (or the demo) could not produce a report. Findings —
/// orphans, failing statements, unreachable shards — are outcomes in the report, never this.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The migration (or rollback) file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The migration file is empty or holds only comments: there is nothing to gate, and a
    /// GREEN verdict would approve nothing.
    #[error("{file}: contains no SQL statements (the file is empty or holds only comments)")]
    NoStatements {
        /// The file.
        file: String,
    },
    /// The migration is not SQL text (binary, not UTF-8, unterminated quote).
    #[error(transparent)]
    Parse(#[from] migration_parser::ParseError),
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] gates::GatesError),
    /// The fleet could not be resolved or read.
    #[error(transparent)]
    Topology(#[from] topology::TopologyError),
    /// The simulation could not run (no shadow could be started, ...).
    #[error(transparent)]
    Simulator(#[from] simulator::SimError),
    /// The rollback could not be generated or proven at all.
    #[error(transparent)]
    Rollback(#[from] rollback::RollbackError),
    /// The report could not be written or signed.
    #[error(transparent)]
    Report(#[from] report::ReportError),
    /// A usage problem in the request (e.g. no shards matched).
    #[error("{0}")]
    Usage(String),
    /// The run was cancelled (Ctrl-C).
    #[error("cancelled")]
    Cancelled,
}

impl PipelineError {
    /// True when the error is about reaching or reading the fleet (exit code 4), rather than
    /// about the input (exit code 3).
    pub fn is_unreachable(&self) -> bool {
        match self {
            PipelineError::Topology(e) => e.is_unreachable(),
            _ => false,
        }
    }
}

//! # simulator
//!
//! (crate docs are written at the end)

mod conn;
mod control;
mod error;
pub mod estimate;
mod ident;
pub mod probe;
pub mod rehearsal;
mod run;

pub use conn::{APPLICATION_NAME, connect_options, is_connection_error, redacted};
pub use control::{CancelToken, NoProgress, Progress, ProgressEvent, Step};
pub use error::SimError;
pub use estimate::{LockEstimate, StatementEstimate, Throughput};
pub use ident::{quote_ident, quote_literal, quote_qualified};
pub use probe::{ProbeError, ProbeKind, ProbePlan, ProbeResult, TableStats};
pub use rehearsal::{
    LockSource, NotRunReason, ObservedLock, RehearsalMode, RehearsalResult, StatementOutcome, StatementRehearsal,
};
pub use run::{CatalogSummary, ShardEvidence, SimOptions, SimulationResult, Simulator, run};

//! Cancellation, progress events and the execution log.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// A cloneable cancellation flag. [`CancelToken::cancel`] makes every clone report cancelled and
/// wakes every task waiting in [`CancelToken::cancelled`]. The simulator checks it between
/// queries and races long queries against it; on cancel it rolls back, closes its connections,
/// drops its shadow databases and returns [`crate::SimError::Cancelled`].
#[derive(Debug, Clone)]
pub struct CancelToken {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Self {
            tx: Arc::new(tx),
            rx,
        }
    }

    /// Cancel: every clone sees it.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when the token is cancelled (immediately if it already is).
    pub async fn cancelled(&self) {
        let mut rx = self.rx.clone();
        // wait_for returns Err only if the sender is dropped; we hold it, so this cannot fail.
        let _ = rx.wait_for(|c| *c).await;
    }
}

/// A progress event. The CLI renders them (indicatif); library users may log them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// The run started: how many shards will be probed and how many schema shapes rehearsed.
    Started {
        /// Number of shards.
        shards: usize,
        /// Number of distinct fingerprints (rehearsals).
        rehearsals: usize,
    },
    /// Probing a shard started.
    ShardStarted {
        /// Shard id.
        shard: String,
    },
    /// Probing a shard finished.
    ShardFinished {
        /// Shard id.
        shard: String,
        /// Probes that found rows that would make the migration fail.
        failing_probes: usize,
        /// The shard could not be reached.
        unreachable: bool,
    },
    /// A rehearsal on the shadow started.
    RehearsalStarted {
        /// The schema shape.
        fingerprint: String,
        /// The shard whose structure is cloned.
        shard: String,
    },
    /// A rehearsal finished.
    RehearsalFinished {
        /// The schema shape.
        fingerprint: String,
        /// Every statement succeeded.
        ok: bool,
    },
    /// Throughput calibration on the shadow finished.
    Calibrated {
        /// Measured sequential scan MB/s.
        scan_mb_per_s: f64,
        /// Measured table rewrite MB/s.
        rewrite_mb_per_s: f64,
        /// Measured index build MB/s.
        index_mb_per_s: f64,
    },
}

/// Receives [`ProgressEvent`]s. Implemented for closures and for tokio mpsc senders.
pub trait Progress: Send + Sync {
    /// Called for every event, from any task. Must not block for long.
    fn event(&self, event: ProgressEvent);
}

/// Ignores all events.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _event: ProgressEvent) {}
}

impl<F: Fn(ProgressEvent) + Send + Sync> Progress for F {
    fn event(&self, event: ProgressEvent) {
        self(event)
    }
}

impl Progress for tokio::sync::mpsc::UnboundedSender<ProgressEvent> {
    fn event(&self, event: ProgressEvent) {
        let _ = self.send(event);
    }
}

pub use evidence::Step;

/// Thread-safe collector of [`Step`]s.
#[derive(Debug, Default, Clone)]
pub(crate) struct StepLog(Arc<std::sync::Mutex<Vec<Step>>>);

impl StepLog {
    pub(crate) fn push(
        &self,
        action: &str,
        details: impl Into<String>,
        duration: std::time::Duration,
    ) {
        if let Ok(mut v) = self.0.lock() {
            let step = v.len() as u32 + 1;
            v.push(Step {
                step,
                action: action.to_string(),
                details: details.into(),
                duration_ms: duration.as_millis() as u64,
            });
        }
    }

    pub(crate) fn take(&self) -> Vec<Step> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

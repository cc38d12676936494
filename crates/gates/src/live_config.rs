//! `[live]` of `deployclaw.toml`: how the live-workload findings judge what they saw.
//!
//! ```toml
//! [live]
//! idle_in_transaction_red_after = "30s"   # lock-queue-risk is red past this; default 30s
//! ```

use serde::Deserialize;
use toml::Spanned;

use crate::GatesError;

/// How long a session holding a conflicting lock may sit `idle in transaction` before
/// `lock-queue-risk` is red rather than yellow, ms, when `[live]` sets none (30 s).
///
/// Why 30 s: an application's own transactions go idle for milliseconds between statements,
/// and for a few seconds at most while the client waits on something else; a transaction left
/// idle for half a minute is almost always leaked (a forgotten `psql` session, a pool that lost
/// a `COMMIT`) and will not end by itself before the migration's `lock_timeout` (typically
/// 2–5 s) — the migration would fail or queue every query behind it. Shorter idle periods are
/// still reported, as yellow.
pub const DEFAULT_IDLE_IN_TRANSACTION_RED_AFTER_MS: u64 = 30_000;

/// `[live]`: thresholds of the live-workload rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveConfig {
    /// `idle_in_transaction_red_after`: a lock holder `idle in transaction` for longer than
    /// this makes `lock-queue-risk` red (default [`DEFAULT_IDLE_IN_TRANSACTION_RED_AFTER_MS`]).
    pub idle_in_transaction_red_after_ms: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            idle_in_transaction_red_after_ms: DEFAULT_IDLE_IN_TRANSACTION_RED_AFTER_MS,
        }
    }
}

/// The raw `[live]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLive {
    idle_in_transaction_red_after: Option<Spanned<String>>,
}

/// `[live]` into a [`LiveConfig`]; `at` gives the line and column of a byte offset.
pub(crate) fn live_section(
    file: &str,
    raw: RawLive,
    at: impl Fn(usize) -> (u32, u32),
) -> Result<LiveConfig, GatesError> {
    let mut live = LiveConfig::default();
    if let Some(v) = raw.idle_in_transaction_red_after {
        let ms = migration_parser::parse_duration_ms(v.get_ref()).ok_or_else(|| {
            let (line, column) = at(v.span().start);
            GatesError::InvalidConfigValue {
                file: file.to_string(),
                line,
                column,
                key: "live.idle_in_transaction_red_after".into(),
                message: format!(
                    "`{}` (expected a duration such as \"30s\", \"500ms\" or \"2min\")",
                    v.get_ref()
                ),
            }
        })?;
        live.idle_in_transaction_red_after_ms = ms;
    }
    Ok(live)
}

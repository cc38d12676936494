//! `[live]` of `deployclaw.toml`: the live workload reads beside the probes and how the
//! live-workload findings judge what they saw (issue 16).
//!
//! ```toml
//! [live]
//! idle_in_transaction_red_after = "30s"   # lock-queue-risk is red past this; default 30s
//! traffic_window_ms = 1000                # pg_stat_user_tables sampled twice at least this far apart; 0 = none
//! ```

use serde::Deserialize;
use toml::Spanned;

use super::{line_col, non_negative};
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

/// `[live]`: the live workload reads and the thresholds of the live-workload rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveConfig {
    /// `idle_in_transaction_red_after`: a lock holder `idle in transaction` for longer than
    /// this makes `lock-queue-risk` red (default [`DEFAULT_IDLE_IN_TRANSACTION_RED_AFTER_MS`]).
    pub idle_in_transaction_red_after_ms: u64,
    /// `traffic_window_ms`: how far apart the two `pg_stat_user_tables` samples of the traffic
    /// read are, in milliseconds (`0`: no sampling, no rate). `None`: the simulator's default.
    pub traffic_window_ms: Option<u64>,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            idle_in_transaction_red_after_ms: DEFAULT_IDLE_IN_TRANSACTION_RED_AFTER_MS,
            traffic_window_ms: None,
        }
    }
}

/// `[live]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLive {
    idle_in_transaction_red_after: Option<Spanned<String>>,
    traffic_window_ms: Option<Spanned<i64>>,
}

/// `[live]` of `file` (`text`), checked.
pub(super) fn live_section(file: &str, text: &str, raw: RawLive) -> Result<LiveConfig, GatesError> {
    let mut out = LiveConfig::default();
    if let Some(v) = raw.idle_in_transaction_red_after {
        let ms = migration_parser::parse_duration_ms(v.get_ref()).ok_or_else(|| {
            let (line, column) = line_col(text, v.span().start);
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
        out.idle_in_transaction_red_after_ms = ms;
    }
    if let Some(v) = raw.traffic_window_ms {
        let at = line_col(text, v.span().start);
        out.traffic_window_ms = Some(non_negative(
            file,
            at,
            &v,
            "live.traffic_window_ms",
            "milliseconds",
        )?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn the_traffic_window_is_read_and_checked_with_its_position() {
        let c = Config::from_toml_str("d.toml", "[live]\ntraffic_window_ms = 500\n").unwrap();
        assert_eq!(c.live.traffic_window_ms, Some(500));
        assert_eq!(Config::default().live.traffic_window_ms, None);
        let e = Config::from_toml_str("d.toml", "[live]\ntraffic_window_ms = -1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("d.toml:2:21") && e.contains("live.traffic_window_ms"),
            "{e}"
        );
        let e = Config::from_toml_str("d.toml", "[live]\nwindow = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("window"), "{e}");
    }
}

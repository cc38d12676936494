//! `[live]` of the configuration: the live workload reads beside the probes (issue 16).
//!
//! ```toml
//! [live]
//! traffic_window_ms = 1000   # pg_stat_user_tables sampled twice at least this far apart; 0 = none
//! ```

use serde::Deserialize;
use toml::Spanned;

use super::{line_col, non_negative};
use crate::GatesError;

/// `[live]`: the live workload reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveConfig {
    /// `traffic_window_ms`: how far apart the two `pg_stat_user_tables` samples of the traffic
    /// read are, in milliseconds (`0`: no sampling, no rate). `None`: the simulator's default.
    pub traffic_window_ms: Option<u64>,
}

/// `[live]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLive {
    traffic_window_ms: Option<Spanned<i64>>,
}

/// `[live]` of `file` (`text`), checked.
pub(super) fn live_section(file: &str, text: &str, raw: RawLive) -> Result<LiveConfig, GatesError> {
    let mut out = LiveConfig::default();
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

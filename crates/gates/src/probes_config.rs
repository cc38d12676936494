//! `[probes]` of `deployclaw.toml`: where the data probes run.
//!
//! ```toml
//! [probes]
//! probe_on = "replica"        # or "writer" (the default); `--probe-on` overrides it
//! max_replica_lag = "5s"      # a replica lagging more is refused (probes on the writer)
//! ```

use serde::Deserialize;
use toml::Spanned;

use crate::GatesError;

/// `[probes] probe_on`: where the data probes of a shard run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeTarget {
    /// On the shard's own instance (`"writer"`).
    Writer,
    /// On a read replica of it (`"replica"`); the writer then gets only catalog and activity
    /// reads.
    Replica,
}

/// `[probes]`: where the data probes run. Unset fields take the simulator's defaults (the
/// writer; a 5 s lag bound).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbesConfig {
    /// `probe_on`; `None`: not set (the writer).
    pub probe_on: Option<ProbeTarget>,
    /// `max_replica_lag` in ms; `None`: not set (5 s).
    pub max_replica_lag_ms: Option<u64>,
}

/// The raw `[probes]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbes {
    probe_on: Option<Spanned<String>>,
    max_replica_lag: Option<Spanned<String>>,
}

/// `[probes]` into a [`ProbesConfig`]; `at` gives the line and column of a byte offset.
pub(crate) fn probes_section(
    file: &str,
    raw: RawProbes,
    at: impl Fn(usize) -> (u32, u32),
) -> Result<ProbesConfig, GatesError> {
    let invalid = |start: usize, key: &str, message: String| {
        let (line, column) = at(start);
        GatesError::InvalidConfigValue {
            file: file.to_string(),
            line,
            column,
            key: format!("probes.{key}"),
            message,
        }
    };
    let mut out = ProbesConfig::default();
    if let Some(v) = raw.probe_on {
        out.probe_on = Some(match v.get_ref().as_str() {
            "writer" => ProbeTarget::Writer,
            "replica" => ProbeTarget::Replica,
            other => {
                return Err(invalid(
                    v.span().start,
                    "probe_on",
                    format!("`{other}` (expected \"writer\" or \"replica\")"),
                ));
            }
        });
    }
    if let Some(v) = raw.max_replica_lag {
        let ms = migration_parser::parse_duration_ms(v.get_ref()).ok_or_else(|| {
            invalid(
                v.span().start,
                "max_replica_lag",
                format!(
                    "`{}` (expected a duration such as \"5s\", \"500ms\" or \"1min\")",
                    v.get_ref()
                ),
            )
        })?;
        out.max_replica_lag_ms = Some(ms);
    }
    Ok(out)
}

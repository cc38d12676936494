//! Machine-local caches of the pipeline, under [`crate::pipeline::ValidateOptions::cache_dir`]:
//!
//! * `pg-template-<key>/`: the ephemeral shadow's pristine `initdb` output
//!   ([`topology::ephemeral::EphemeralOptions::template_cache`]), copied instead of running
//!   `initdb` for every run;
//! * `calibration.json`: the throughput measured on the ephemeral shadow (scan, rewrite and
//!   index-build rates of this machine's PostgreSQL), reused for [`CALIBRATION_TTL`] so that a
//!   run does not spend most of a second re-measuring the same machine. `--recalibrate`
//!   measures again.
//!
//! Both are caches in the strict sense: deleting them only costs time, a corrupt or foreign
//! file is ignored (and replaced), and nothing about a target is stored.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use simulator::Throughput;

/// How long a stored calibration is reused.
pub const CALIBRATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

const CALIBRATION_FILE: &str = "calibration.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct CalibrationFile {
    /// Key (the shadow server's identity) → measurement.
    entries: BTreeMap<String, CalibrationEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CalibrationEntry {
    /// Seconds since the Unix epoch.
    measured_at: u64,
    throughput: Throughput,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The key of an ephemeral shadow made from the server binaries in `bin_dir`, major `version`.
pub fn ephemeral_key(bin_dir: &Path, version: u32) -> String {
    format!("ephemeral pg{version} {}", bin_dir.display())
}

/// A stored calibration for `key` measured less than [`CALIBRATION_TTL`] ago, with its age.
pub fn load_calibration(dir: &Path, key: &str) -> Option<(Throughput, Duration)> {
    let text = std::fs::read_to_string(dir.join(CALIBRATION_FILE)).ok()?;
    let file: CalibrationFile = serde_json::from_str(&text).ok()?;
    let e = file.entries.get(key)?;
    let age = Duration::from_secs(now_secs().saturating_sub(e.measured_at));
    (e.throughput.calibrated && age < CALIBRATION_TTL).then_some((e.throughput, age))
}

/// Store a fresh calibration for `key` (best effort: written to a temporary file, then renamed).
pub fn store_calibration(dir: &Path, key: &str, throughput: &Throughput) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let path = dir.join(CALIBRATION_FILE);
    let mut file: CalibrationFile = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    file.entries.insert(
        key.to_owned(),
        CalibrationEntry {
            measured_at: now_secs(),
            throughput: *throughput,
        },
    );
    let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{CALIBRATION_FILE}.{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_ignores_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let key = ephemeral_key(Path::new("/usr/lib/postgresql/15/bin"), 15);
        assert!(load_calibration(dir.path(), &key).is_none());
        let tp = Throughput {
            scan_mb_per_s: 900.0,
            rewrite_mb_per_s: 150.0,
            index_mb_per_s: 160.0,
            catalog_ms: 0.7,
            calibrated: true,
            sample_mb: 20.5,
        };
        store_calibration(dir.path(), &key, &tp).unwrap();
        let (got, age) = load_calibration(dir.path(), &key).unwrap();
        assert_eq!(got, tp);
        assert!(age < Duration::from_secs(60));
        assert!(load_calibration(dir.path(), "ephemeral pg16 /other").is_none());
        // Not calibrated (defaults) is never served.
        let defaults = Throughput::default();
        store_calibration(dir.path(), "d", &defaults).unwrap();
        assert!(load_calibration(dir.path(), "d").is_none());
        // A corrupt file is ignored and replaced.
        std::fs::write(dir.path().join(CALIBRATION_FILE), b"\x00not json").unwrap();
        assert!(load_calibration(dir.path(), &key).is_none());
        store_calibration(dir.path(), &key, &tp).unwrap();
        assert_eq!(load_calibration(dir.path(), &key).unwrap().0, tp);
    }
}

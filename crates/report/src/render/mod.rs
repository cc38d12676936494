//! Renderings of a [`ValidationReport`]: JSON, Markdown, HTML, SARIF, JUnit XML and terminal text.

use std::path::{Path, PathBuf};

use crate::error::ReportError;
use crate::model::ValidationReport;

mod aggregate;
mod html;
mod html_large;
mod junit;
mod live;
mod markdown;
mod sarif;
mod terminal;
pub(crate) mod text;

pub use html::{HtmlOptions, html, html_with};
pub use junit::{JunitOptions, YellowAs, junit};
pub use markdown::{MarkdownOptions, markdown};
pub use sarif::{RuleDoc, SarifOptions, sarif, sarif_for_findings};
pub use terminal::{TerminalOptions, terminal};

/// The report as pretty JSON (two-space indent, fields in declaration order, trailing newline).
pub fn json(report: &ValidationReport) -> Result<String, ReportError> {
    let mut s = serde_json::to_string_pretty(report).map_err(|source| ReportError::Json {
        what: "report",
        source,
    })?;
    s.push('\n');
    Ok(s)
}

/// Write every rendering into `dir` (created if missing): `report.json`, `report.md`,
/// `report.html`, `report.sarif`, `report.junit.xml`, `report.txt`, and `rollback.sql` when the report has a rollback script. Returns the paths written.
///
/// `dir` must belong to this user and not be writable by everyone without the sticky bit
/// ([`ReportError::UnsafeReportDir`] otherwise, before anything is written): whoever controls
/// it could swap the files or plant links in it. Each file is written under a fresh name and
/// renamed into place, so a symlink planted at `report.json` is replaced, never followed.
pub fn write_all(report: &ValidationReport, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| ReportError::io("creating", dir, e))?;
    check_report_dir(dir)?;
    let files: [(&str, String); 6] = [
        ("report.json", json(report)?),
        ("report.md", markdown(report, &MarkdownOptions::default())),
        ("report.html", html(report)),
        ("report.sarif", sarif(report, &SarifOptions::default())?),
        ("report.junit.xml", junit(report, &JunitOptions::default())),
        ("report.txt", terminal(report, &TerminalOptions::default())),
    ];
    let mut written = Vec::new();
    for (name, body) in files {
        written.push(replace_file(dir, name, body.as_bytes())?);
    }
    if let Some(script) = &report.rollback.script {
        written.push(replace_file(dir, "rollback.sql", script.as_bytes())?);
    }
    Ok(written)
}

/// Refuse a report directory another user controls (see [`write_all`]).
fn check_report_dir(dir: &Path) -> Result<(), ReportError> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(dir).map_err(|e| ReportError::io("reading", dir, e))?;
    let me = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| ReportError::io("reading", "/proc/self", e))?;
    let reason = if !meta.is_dir() {
        Some("is not a directory".to_string())
    } else if meta.uid() != me {
        Some(format!(
            "belongs to another user (uid {}), who could replace the report files or redirect \
             them with links: use a directory of your own",
            meta.uid()
        ))
    } else if meta.mode() & 0o1002 == 0o002 {
        Some(
            "is writable by every user (and not sticky), so anyone could replace the report \
             files: use a directory of your own"
                .to_string(),
        )
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ReportError::UnsafeReportDir {
            dir: dir.to_path_buf(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Write `body` to `dir/name` through a fresh file renamed into place: an existing entry
/// (a file, or a planted symlink) is replaced, never written through.
fn replace_file(dir: &Path, name: &str, body: &[u8]) -> Result<PathBuf, ReportError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)
        .and_then(|mut f| f.write_all(body))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(ReportError::io("writing", &path, e));
    }
    Ok(path)
}

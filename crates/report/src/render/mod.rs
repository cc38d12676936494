//! Renderings of a [`ValidationReport`]: JSON, Markdown, HTML, SARIF, JUnit XML and terminal text.

use std::path::{Path, PathBuf};

use crate::error::ReportError;
use crate::model::ValidationReport;

mod html;
mod junit;
mod markdown;
mod sarif;
mod terminal;
pub(crate) mod text;

pub use html::html;
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
pub fn write_all(report: &ValidationReport, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| ReportError::io("creating", dir, e))?;
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
        let p = dir.join(name);
        std::fs::write(&p, body).map_err(|e| ReportError::io("writing", &p, e))?;
        written.push(p);
    }
    if let Some(script) = &report.rollback.script {
        let p = dir.join("rollback.sql");
        std::fs::write(&p, script).map_err(|e| ReportError::io("writing", &p, e))?;
        written.push(p);
    }
    Ok(written)
}

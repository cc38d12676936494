//! Findings, severities and gates: the outcome vocabulary shared by rules, verdicts and reports.

use serde::{Deserialize, Serialize};

/// How bad a finding is. Ordered: `Info < Yellow < Red`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; does not affect the gate.
    Info,
    /// Would succeed but needs a human's approval (long lock, irreversible step, cascade reach).
    Yellow,
    /// Would fail or lose data without approval.
    Red,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Yellow => "yellow",
            Severity::Red => "red",
        })
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "yellow" | "warning" | "warn" => Ok(Severity::Yellow),
            "red" | "error" => Ok(Severity::Red),
            other => Err(format!(
                "unknown severity `{other}` (expected red, yellow or info)"
            )),
        }
    }
}

/// A gate verdict. Ordered: `Green < Yellow < Red`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Gate {
    /// Safe to ship.
    Green,
    /// Would succeed but needs approval.
    Yellow,
    /// Must not ship as is.
    Red,
}

impl Gate {
    /// The gate a set of findings earns: the worst severity, with `Info` counting as green.
    pub fn from_findings<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Gate {
        findings
            .into_iter()
            .map(|f| Gate::from(f.severity))
            .max()
            .unwrap_or(Gate::Green)
    }
}

impl From<Severity> for Gate {
    fn from(s: Severity) -> Gate {
        match s {
            Severity::Info => Gate::Green,
            Severity::Yellow => Gate::Yellow,
            Severity::Red => Gate::Red,
        }
    }
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Gate::Green => "GREEN",
            Gate::Yellow => "YELLOW",
            Gate::Red => "RED",
        })
    }
}

/// Where a finding points in the migration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// The file.
    pub file: String,
    /// 0-based statement index.
    pub statement: usize,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// Last line of the statement.
    pub end_line: u32,
    /// Last column of the statement.
    pub end_column: u32,
}

/// One rule firing. A finding is an outcome, never an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule name, e.g. `require-concurrent-index`.
    pub rule: String,
    /// Rule code, e.g. `DC101`.
    pub code: String,
    /// Effective severity (after configuration).
    pub severity: Severity,
    /// Where in the migration, when the finding is about a statement.
    pub location: Option<Location>,
    /// The statement text (first line, trimmed) when about a statement.
    pub statement: Option<String>,
    /// What is wrong: names the lock, the table and what it blocks.
    pub message: String,
    /// How to fix it, with SQL where there is one.
    pub help: Option<String>,
    /// Supporting data (counts, sample keys, locks observed).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub evidence: Option<serde_json::Value>,
}

impl Finding {
    /// A finding with no location, statement, help or evidence. Rules usually start from
    /// [`RuleContext::finding`](crate::RuleContext::finding) instead, which fills those in.
    pub fn new(
        rule: impl Into<String>,
        code: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            rule: rule.into(),
            code: code.into(),
            severity,
            location: None,
            statement: None,
            message: message.into(),
            help: None,
            evidence: None,
        }
    }

    /// The same finding with `help` set.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Finding {
        self.help = Some(help.into());
        self
    }

    /// The same finding with another severity (e.g. a rule that is red on one PostgreSQL
    /// version and yellow on another).
    #[must_use]
    pub fn with_severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }

    /// The same finding with supporting data attached.
    #[must_use]
    pub fn with_evidence(mut self, evidence: serde_json::Value) -> Finding {
        self.evidence = Some(evidence);
        self
    }

    /// The same finding pointing at `location`.
    #[must_use]
    pub fn with_location(mut self, location: Location) -> Finding {
        self.location = Some(location);
        self
    }
}

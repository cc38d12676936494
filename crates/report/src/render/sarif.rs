//! SARIF 2.1.0 of the static findings (for GitHub code scanning and other SARIF viewers).

use std::collections::BTreeMap;

use gates::{Finding, Severity};
use serde_json::{Value, json};

use crate::error::ReportError;
use crate::model::ValidationReport;

/// Documentation of one rule for the SARIF `rules` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDoc {
    /// One line (SARIF `shortDescription`).
    pub short: String,
    /// A paragraph (SARIF `fullDescription`).
    pub full: String,
}

/// Options for [`sarif`].
#[derive(Debug, Clone, Default)]
pub struct SarifOptions {
    /// Rule documentation by rule name (the gates crate's registry can fill it). Rules not
    /// listed are described from their first finding.
    pub rule_docs: BTreeMap<String, RuleDoc>,
}

/// SARIF of the report's static findings, pretty-printed, with `automationDetails.id` set to
/// the execution id.
pub fn sarif(report: &ValidationReport, opts: &SarifOptions) -> Result<String, ReportError> {
    let mut v = sarif_value(&report.static_findings, &report.tool_version, opts);
    if let Some(run) = v.pointer_mut("/runs/0").and_then(Value::as_object_mut) {
        run.insert(
            "automationDetails".to_owned(),
            json!({ "id": format!("deployclaw/{}", report.execution_id) }),
        );
    }
    to_pretty(&v)
}

/// SARIF of any list of findings (e.g. `deployclaw lint`), pretty-printed.
pub fn sarif_for_findings(
    findings: &[Finding],
    tool_version: &str,
    opts: &SarifOptions,
) -> Result<String, ReportError> {
    to_pretty(&sarif_value(findings, tool_version, opts))
}

fn to_pretty(v: &Value) -> Result<String, ReportError> {
    let mut s = serde_json::to_string_pretty(v).map_err(|source| ReportError::Json {
        what: "SARIF log",
        source,
    })?;
    s.push('\n');
    Ok(s)
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Red => "error",
        Severity::Yellow => "warning",
        Severity::Info => "note",
    }
}

/// `require-concurrent-index` → `RequireConcurrentIndex`.
fn pascal(rule: &str) -> String {
    rule.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut cs = p.chars();
            match cs.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// Percent-encode what may not appear in a URI reference; turn `\` into `/`.
fn uri(path: &str) -> String {
    let mut out = String::new();
    for b in path.replace('\\', "/").bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'/'
            | b':'
            | b'@'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'=' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The SARIF log as a JSON value.
pub(crate) fn sarif_value(findings: &[Finding], tool_version: &str, opts: &SarifOptions) -> Value {
    // Results (and rules) in file order; findings without a location last.
    let mut ordered: Vec<&Finding> = findings.iter().collect();
    ordered.sort_by(|a, b| match (&a.location, &b.location) {
        (Some(x), Some(y)) => (&x.file, x.line, x.column).cmp(&(&y.file, y.line, y.column)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    // Rules in order of first appearance.
    let mut rule_index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rules: Vec<Value> = Vec::new();
    for f in ordered.iter().copied() {
        if rule_index.contains_key(f.rule.as_str()) {
            continue;
        }
        rule_index.insert(&f.rule, rules.len());
        let (short, full) = match opts.rule_docs.get(&f.rule) {
            Some(d) => (d.short.clone(), d.full.clone()),
            None => (
                format!("{} {}", f.code, f.rule),
                f.help.clone().unwrap_or_else(|| f.message.clone()),
            ),
        };
        let mut rule = json!({
            "id": f.rule,
            "name": pascal(&f.rule),
            "shortDescription": { "text": short },
            "fullDescription": { "text": full },
            "defaultConfiguration": { "level": level(f.severity) },
            "properties": { "code": f.code },
        });
        if let (Some(h), Some(obj)) = (&f.help, rule.as_object_mut()) {
            obj.insert("help".to_owned(), json!({ "text": h }));
        }
        rules.push(rule);
    }
    let results: Vec<Value> = ordered
        .into_iter()
        .map(|f| {
            let mut r = json!({
                "ruleId": f.rule,
                "ruleIndex": rule_index.get(f.rule.as_str()).copied().unwrap_or(0),
                "level": level(f.severity),
                "message": { "text": f.message },
            });
            if let (Some(loc), Some(obj)) = (&f.location, r.as_object_mut()) {
                let line = loc.line.max(1);
                let col = loc.column.max(1);
                let mut region = json!({ "startLine": line, "startColumn": col });
                if let Some(reg) = region.as_object_mut() {
                    if loc.end_line > line || (loc.end_line == line && loc.end_column >= col) {
                        reg.insert("endLine".to_owned(), json!(loc.end_line));
                        // SARIF end columns are exclusive; ours name the last column.
                        reg.insert("endColumn".to_owned(), json!(loc.end_column + 1));
                    }
                    if let Some(s) = &f.statement {
                        reg.insert("snippet".to_owned(), json!({ "text": s }));
                    }
                }
                obj.insert(
                    "locations".to_owned(),
                    json!([{
                        "physicalLocation": {
                            "artifactLocation": { "uri": uri(&loc.file) },
                            "region": region,
                        }
                    }]),
                );
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "deployclaw",
                    "version": tool_version,
                    "rules": rules,
                }
            },
            "results": results,
            "columnKind": "unicodeCodePoints",
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uris() {
        assert_eq!(pascal("require-concurrent-index"), "RequireConcurrentIndex");
        assert_eq!(uri("migrations\\v 42#.sql"), "migrations/v%2042%23.sql");
    }
}

//! Renderings of `deployclaw lint` results: compiler-style text diagnostics, the JSON contract of
//! DESIGN.md, SARIF 2.1.0 and GitHub Actions workflow commands.
//!
//! Every renderer takes the linted files as [`LintedFile`]s (file name, source text, findings) and
//! returns the whole output as a `String`; none does IO. Terminal detection (`--color auto`) is the
//! caller's job: [`TextOptions::color`] says whether to emit ANSI colours.

use gates::{Finding, Severity};
use serde::Serialize;
use std::fmt::Write as _;

/// One linted file: its name as shown to the user, its source text and the findings on it.
#[derive(Debug, Clone, Copy)]
pub struct LintedFile<'a> {
    /// The file name as given on the command line (`<stdin>` for standard input).
    pub file: &'a str,
    /// The full source text the findings' locations point into.
    pub source: &'a str,
    /// The findings, in the order to show them.
    pub findings: &'a [Finding],
}

/// What a rule is, for `deployclaw rules`, `deployclaw explain` and SARIF's rule table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    /// Stable code, e.g. `DC101`.
    pub code: String,
    /// Stable name, e.g. `require-concurrent-index`.
    pub name: String,
    /// The severity when configuration does not change it.
    pub default_severity: Severity,
    /// One line: what the rule catches.
    pub summary: String,
    /// The rule's documentation (Markdown): why it matters and how to fix it.
    pub docs: String,
}

/// The tool that produced the results, for SARIF's `tool.driver`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolInfo {
    /// Tool name, `deployclaw`.
    pub name: String,
    /// Tool version.
    pub version: String,
    /// Where to read about it, if anywhere.
    pub information_uri: Option<String>,
}

/// Options of the text rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TextOptions {
    /// Emit ANSI colour escapes.
    pub color: bool,
}

/// Counts over a lint run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    /// Red findings.
    pub red: usize,
    /// Yellow findings.
    pub yellow: usize,
    /// Info findings.
    pub info: usize,
    /// Files linted.
    pub files: usize,
    /// Files with at least one finding.
    pub files_with_findings: usize,
}

impl Summary {
    /// Count the findings of `files`.
    pub fn of(files: &[LintedFile<'_>]) -> Summary {
        let mut s = Summary {
            files: files.len(),
            ..Summary::default()
        };
        for f in files {
            if !f.findings.is_empty() {
                s.files_with_findings += 1;
            }
            for finding in f.findings {
                match finding.severity {
                    Severity::Red => s.red += 1,
                    Severity::Yellow => s.yellow += 1,
                    Severity::Info => s.info += 1,
                }
            }
        }
        s
    }

    /// The worst severity found, if any finding at all.
    pub fn worst(&self) -> Option<Severity> {
        if self.red > 0 {
            Some(Severity::Red)
        } else if self.yellow > 0 {
            Some(Severity::Yellow)
        } else if self.info > 0 {
            Some(Severity::Info)
        } else {
            None
        }
    }
}

impl std::fmt::Display for Summary {
    /// `3 red, 2 yellow, 1 info in 2 files (5 files checked)`, or `no findings in 5 files`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files = |n: usize| {
            if n == 1 {
                "1 file".to_string()
            } else {
                format!("{n} files")
            }
        };
        if self.red + self.yellow + self.info == 0 {
            return write!(f, "no findings in {}", files(self.files));
        }
        write!(
            f,
            "{} red, {} yellow, {} info in {}",
            self.red,
            self.yellow,
            self.info,
            files(self.files_with_findings)
        )?;
        if self.files != self.files_with_findings {
            write!(f, " ({} checked)", files(self.files))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

/// ANSI styles, empty strings when colour is off.
struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn severity_code(sev: Severity) -> &'static str {
        match sev {
            Severity::Red => "1;31",
            Severity::Yellow => "1;33",
            Severity::Info => "1;36",
        }
    }
    fn sev(&self, sev: Severity, s: &str) -> String {
        self.paint(Self::severity_code(sev), s)
    }
    fn gutter(&self, s: &str) -> String {
        self.paint("1;34", s)
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

/// Tab stops used when showing source lines.
const TAB_WIDTH: usize = 4;
/// Statements longer than this many lines are shown as head and tail.
const MAX_EXCERPT_LINES: usize = 8;
/// Columns of a source line shown in an excerpt; a longer line is cut (marked `…`) around the
/// place the finding points at, so one enormous line (a minified or generated statement) does
/// not flood the terminal.
const MAX_EXCERPT_COLS: usize = 160;

/// `line` (display columns = chars, see [`expand`]) cut to [`MAX_EXCERPT_COLS`] around the
/// marked range `from..to`, with the range moved to the cut line's columns.
fn clip(line: &str, from: usize, to: usize) -> (String, usize, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= MAX_EXCERPT_COLS {
        return (line.to_string(), from, to);
    }
    // Keep the start of the range visible, with some context before it.
    let first = if from + 20 > MAX_EXCERPT_COLS {
        from.saturating_sub(40)
    } else {
        0
    };
    let last = (first + MAX_EXCERPT_COLS).min(chars.len());
    let mut out = String::new();
    let lead = usize::from(first > 0);
    if first > 0 {
        out.push('…');
    }
    out.extend(&chars[first..last]);
    if last < chars.len() {
        out.push('…');
    }
    let f = from.saturating_sub(first) + lead;
    let t = (to.min(last).saturating_sub(first) + lead).max(f + 1);
    (out, f, t)
}

/// Lines shown at the start of a long statement.
const HEAD_LINES: usize = 4;
/// Lines shown at the end of a long statement.
const TAIL_LINES: usize = 2;

/// The source split into lines (without their line terminators), 1-based access.
struct Lines<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Lines<'a> {
    fn new(source: &'a str) -> Self {
        Lines {
            lines: source
                .split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .collect(),
        }
    }
    fn get(&self, line: u32) -> Option<&'a str> {
        (line as usize)
            .checked_sub(1)
            .and_then(|i| self.lines.get(i).copied())
    }
}

/// `line` with tabs expanded, and the display column of each character start (0-based),
/// plus one entry for the end of the line.
fn expand(line: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(line.len());
    let mut cols = Vec::with_capacity(line.len() + 1);
    let mut col = 0usize;
    for ch in line.chars() {
        cols.push(col);
        if ch == '\t' {
            let n = TAB_WIDTH - col % TAB_WIDTH;
            out.extend(std::iter::repeat_n(' ', n));
            col += n;
        } else if ch.is_control() {
            // Keep terminals sane: show control characters as a replacement glyph.
            out.push('\u{FFFD}');
            col += 1;
        } else {
            out.push(ch);
            col += 1;
        }
    }
    cols.push(col);
    (out, cols)
}

/// Display column (0-based) of 1-based character column `column` in `cols`, clamped to the line.
fn display_col(cols: &[usize], column: u32) -> usize {
    let i = (column.max(1) as usize - 1).min(cols.len().saturating_sub(1));
    cols.get(i).copied().unwrap_or(0)
}

/// Display column (0-based) just past 1-based character column `column` (inclusive end).
fn display_end(cols: &[usize], column: u32) -> usize {
    let i = (column.max(1) as usize).min(cols.len().saturating_sub(1));
    cols.get(i).copied().unwrap_or(0)
}

/// Render one finding as a compiler-style diagnostic (no trailing blank line).
pub fn render_diagnostic(
    file: &str,
    source: &str,
    finding: &Finding,
    opts: &TextOptions,
) -> String {
    render_diagnostic_with(
        file,
        &Lines::new(source),
        finding,
        &Style { on: opts.color },
    )
}

fn render_diagnostic_with(file: &str, lines: &Lines<'_>, finding: &Finding, st: &Style) -> String {
    let mut out = String::new();
    let sev = finding.severity;
    let label = format!("{}[{} {}]", sev, finding.code, finding.rule);
    let _ = writeln!(
        out,
        "{}{}",
        st.sev(sev, &label),
        st.bold(&format!(": {}", printable(&finding.message)))
    );

    let Some(loc) = &finding.location else {
        let _ = writeln!(out, "{} {}", st.gutter(" -->"), file);
        push_help(&mut out, finding, 1, st);
        return out;
    };

    let start = loc.line.max(1);
    let end = loc.end_line.max(start);
    // Which lines to show: all of a short statement, head and tail of a long one.
    let shown: Vec<Option<u32>> = if (end - start) as usize + 1 > MAX_EXCERPT_LINES {
        let mut v: Vec<Option<u32>> = (start..start + HEAD_LINES as u32).map(Some).collect();
        v.push(None);
        v.extend((end + 1 - TAIL_LINES as u32..=end).map(Some));
        v
    } else {
        (start..=end).map(Some).collect()
    };
    let width = end.to_string().len();
    let pad = " ".repeat(width);
    let _ = writeln!(
        out,
        "{}{} {}:{}:{}",
        pad,
        st.gutter("-->"),
        file,
        loc.line,
        loc.column
    );

    let have_source = lines.get(start).is_some();
    if have_source {
        let bar = st.gutter(&format!("{pad} |"));
        let _ = writeln!(out, "{bar}");
        let multi = end > start;
        for entry in &shown {
            let Some(n) = *entry else {
                let _ = writeln!(out, "{}", st.gutter(&format!("{:>width$}", "...")));
                continue;
            };
            let text = lines.get(n).unwrap_or("");
            let (expanded, cols) = expand(text);
            let num = st.gutter(&format!("{n:>width$} |"));
            if !multi {
                let from = display_col(&cols, loc.column);
                let to = display_end(&cols, loc.end_column).max(from + 1);
                let (shown, from, to) = clip(expanded.trim_end(), from, to);
                let _ = writeln!(out, "{num} {shown}");
                let carets = "^".repeat(to - from);
                let _ = writeln!(out, "{bar} {}{}", " ".repeat(from), st.sev(sev, &carets));
                continue;
            }
            let marker = if n == start { "/" } else { "|" };
            let (shown, _, _) = clip(expanded.trim_end(), 0, 1);
            let _ = writeln!(out, "{num} {} {shown}", st.sev(sev, marker));
            if n == end {
                let to = display_end(&cols, loc.end_column).clamp(1, MAX_EXCERPT_COLS + 1);
                let line = format!("|{}^", "_".repeat(to));
                let _ = writeln!(out, "{bar} {}", st.sev(sev, &line));
            }
        }
        if finding.help.is_some() {
            let _ = writeln!(out, "{bar}");
        }
    }
    push_help(&mut out, finding, width, st);
    out
}

/// `s` with control characters other than newlines and tabs shown as U+FFFD, so names taken
/// from the SQL (an identifier holding an ANSI escape sequence) cannot rewrite the terminal.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

fn push_help(out: &mut String, finding: &Finding, width: usize, st: &Style) {
    let Some(help) = finding
        .help
        .as_deref()
        .map(printable)
        .map(|h| h.trim_end().to_owned())
        .filter(|h| !h.is_empty())
    else {
        return;
    };
    let pad = " ".repeat(width);
    let mut lines = help.lines();
    if let Some(first) = lines.next() {
        let _ = writeln!(out, "{pad} {} {first}", st.bold("= help:"));
    }
    for l in lines {
        // Align continuation lines under the help text.
        let _ = writeln!(out, "{pad}         {l}");
    }
}

/// Render every finding of every file as text diagnostics, then the summary line.
///
/// Findings are shown in the order given; a blank line separates diagnostics.
pub fn render_text(files: &[LintedFile<'_>], opts: &TextOptions) -> String {
    let st = Style { on: opts.color };
    let mut out = String::new();
    for f in files {
        if f.findings.is_empty() {
            continue;
        }
        let lines = Lines::new(f.source);
        for finding in f.findings {
            out.push_str(&render_diagnostic_with(f.file, &lines, finding, &st));
            out.push('\n');
        }
    }
    let summary = Summary::of(files);
    let text = summary.to_string();
    let painted = match summary.worst() {
        Some(sev @ (Severity::Red | Severity::Yellow)) => st.sev(sev, &text),
        _ => st.bold(&text),
    };
    let _ = writeln!(out, "{painted}");
    out
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/// One finding in the `lint --format json` contract.
#[derive(Debug, Serialize)]
struct JsonFinding<'a> {
    file: &'a str,
    rule: &'a str,
    code: &'a str,
    severity: Severity,
    line: Option<u32>,
    column: Option<u32>,
    end_line: Option<u32>,
    end_column: Option<u32>,
    statement: Option<&'a str>,
    message: &'a str,
    help: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct JsonDoc<'a> {
    findings: Vec<JsonFinding<'a>>,
}

/// Serialise `value`; the values here are plain strings and numbers, so this cannot fail, and
/// if serde ever disagrees the output is still valid JSON naming the problem.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("could not serialise the lint result: {e}") })
            .to_string()
    })
}

/// Render the JSON contract of DESIGN.md:
/// `{"findings":[{"rule","severity","line","column","statement","message","help"}]}`, each finding
/// also carrying `file`, `code`, `end_line` and `end_column`. Ends with a newline.
pub fn render_json(files: &[LintedFile<'_>]) -> String {
    let findings = files
        .iter()
        .flat_map(|f| {
            f.findings.iter().map(move |x| JsonFinding {
                file: f.file,
                rule: &x.rule,
                code: &x.code,
                severity: x.severity,
                line: x.location.as_ref().map(|l| l.line),
                column: x.location.as_ref().map(|l| l.column),
                end_line: x.location.as_ref().map(|l| l.end_line),
                end_column: x.location.as_ref().map(|l| l.end_column),
                statement: x.statement.as_deref(),
                message: &x.message,
                help: x.help.as_deref(),
            })
        })
        .collect();
    let mut s = to_json(&JsonDoc { findings });
    s.push('\n');
    s
}

// ---------------------------------------------------------------------------------------------
// SARIF 2.1.0
// ---------------------------------------------------------------------------------------------

/// The `$schema` URI written into SARIF logs.
pub const SARIF_SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// SARIF `level` of a severity: red → `error`, yellow → `warning`, info → `note`.
pub fn sarif_level(sev: Severity) -> &'static str {
    match sev {
        Severity::Red => "error",
        Severity::Yellow => "warning",
        Severity::Info => "note",
    }
}

/// A file name as a SARIF `artifactLocation.uri`: a relative URI reference with `/` separators
/// for relative paths, a `file://` URI for absolute ones, with everything but unreserved
/// characters and `/` percent-encoded.
pub fn artifact_uri(file: &str) -> String {
    let path = file.replace('\\', "/");
    let (prefix, rest) = if path.starts_with('/') {
        ("file://", path.as_str())
    } else {
        ("", path.as_str())
    };
    let mut out = String::from(prefix);
    for b in rest.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[derive(Serialize)]
struct SarifText<'a> {
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRule<'a> {
    id: &'a str,
    name: &'a str,
    short_description: SarifText<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    full_description: Option<SarifText<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<SarifText<'a>>,
    default_configuration: SarifConfig,
}

#[derive(Serialize)]
struct SarifConfig {
    level: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRegion {
    start_line: u32,
    start_column: u32,
    end_line: u32,
    end_column: u32,
}

#[derive(Serialize)]
struct SarifArtifact {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifPhysical {
    artifact_location: SarifArtifact,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<SarifRegion>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation {
    physical_location: SarifPhysical,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    rule_index: usize,
    level: &'static str,
    message: SarifMessage,
    locations: Vec<SarifLocation>,
}

#[derive(Serialize)]
struct SarifMessage {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifDriver<'a> {
    name: &'a str,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    information_uri: Option<&'a str>,
    rules: Vec<SarifRule<'a>>,
}

#[derive(Serialize)]
struct SarifTool<'a> {
    driver: SarifDriver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRun<'a> {
    tool: SarifTool<'a>,
    results: Vec<SarifResult<'a>>,
    column_kind: &'static str,
}

#[derive(Serialize)]
struct SarifLog<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<SarifRun<'a>>,
}

/// Render a SARIF 2.1.0 log with one run. `rules` is the rule table (all known rules, so that
/// code-scanning tools can show rules that did not fire); a finding whose code is not in it gets
/// a minimal descriptor appended. Columns count Unicode code points; `endColumn` is exclusive as
/// SARIF wants. Ends with a newline.
pub fn render_sarif(files: &[LintedFile<'_>], rules: &[RuleInfo], tool: &ToolInfo) -> String {
    let mut descriptors: Vec<SarifRule<'_>> = rules
        .iter()
        .map(|r| SarifRule {
            id: &r.code,
            name: &r.name,
            short_description: SarifText { text: &r.summary },
            full_description: (!r.docs.is_empty()).then_some(SarifText { text: &r.docs }),
            help: (!r.docs.is_empty()).then_some(SarifText { text: &r.docs }),
            default_configuration: SarifConfig {
                level: sarif_level(r.default_severity),
            },
        })
        .collect();
    let mut results = Vec::new();
    for f in files {
        for x in f.findings {
            let index = match descriptors.iter().position(|d| d.id == x.code) {
                Some(i) => i,
                None => {
                    descriptors.push(SarifRule {
                        id: &x.code,
                        name: &x.rule,
                        short_description: SarifText { text: &x.rule },
                        full_description: None,
                        help: None,
                        default_configuration: SarifConfig {
                            level: sarif_level(x.severity),
                        },
                    });
                    descriptors.len() - 1
                }
            };
            let mut text = x.message.clone();
            if let Some(h) = x.help.as_deref().filter(|h| !h.trim().is_empty()) {
                text.push_str("\n\nhelp: ");
                text.push_str(h.trim_end());
            }
            let region = x.location.as_ref().map(|l| SarifRegion {
                start_line: l.line.max(1),
                start_column: l.column.max(1),
                end_line: l.end_line.max(l.line.max(1)),
                end_column: l.end_column.max(1) + 1,
            });
            results.push(SarifResult {
                rule_id: &x.code,
                rule_index: index,
                level: sarif_level(x.severity),
                message: SarifMessage { text },
                locations: vec![SarifLocation {
                    physical_location: SarifPhysical {
                        artifact_location: SarifArtifact {
                            uri: artifact_uri(f.file),
                        },
                        region,
                    },
                }],
            });
        }
    }
    let log = SarifLog {
        schema: SARIF_SCHEMA_URI,
        version: "2.1.0",
        runs: vec![SarifRun {
            tool: SarifTool {
                driver: SarifDriver {
                    name: &tool.name,
                    version: &tool.version,
                    information_uri: tool.information_uri.as_deref(),
                    rules: descriptors,
                },
            },
            results,
            column_kind: "unicodeCodePoints",
        }],
    };
    let mut s = to_json(&log);
    s.push('\n');
    s
}

// ---------------------------------------------------------------------------------------------
// GitHub Actions workflow commands
// ---------------------------------------------------------------------------------------------

/// GitHub workflow command of a severity: red → `error`, yellow → `warning`, info → `notice`.
pub fn github_command(sev: Severity) -> &'static str {
    match sev {
        Severity::Red => "error",
        Severity::Yellow => "warning",
        Severity::Info => "notice",
    }
}

/// Escape a workflow command's message: `%`, `\r`, `\n`.
pub fn github_escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a workflow command's property value: as data, plus `:` and `,`.
pub fn github_escape_property(s: &str) -> String {
    github_escape_data(s)
        .replace(':', "%3A")
        .replace(',', "%2C")
}

/// Render one `::error|warning|notice file=..,line=..::message` line per finding, the help
/// appended to the message on its own lines.
pub fn render_github(files: &[LintedFile<'_>]) -> String {
    let mut out = String::new();
    for f in files {
        for x in f.findings {
            let mut props = vec![format!("file={}", github_escape_property(f.file))];
            if let Some(l) = &x.location {
                props.push(format!("line={}", l.line));
                props.push(format!("col={}", l.column));
                props.push(format!("endLine={}", l.end_line));
                props.push(format!("endColumn={}", l.end_column));
            }
            props.push(format!(
                "title={}",
                github_escape_property(&format!("{} {}", x.code, x.rule))
            ));
            let mut msg = x.message.clone();
            if let Some(h) = x.help.as_deref().filter(|h| !h.trim().is_empty()) {
                msg.push_str("\nhelp: ");
                msg.push_str(h.trim_end());
            }
            let _ = writeln!(
                out,
                "::{} {}::{}",
                github_command(x.severity),
                props.join(","),
                github_escape_data(&msg)
            );
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Rules and explain
// ---------------------------------------------------------------------------------------------

/// `deployclaw rules` as a table: code, name, default severity, summary.
pub fn render_rules_text(rules: &[RuleInfo]) -> String {
    let name_w = rules.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let code_w = rules.iter().map(|r| r.code.len()).max().unwrap_or(4).max(4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<code_w$}  {:<name_w$}  {:<8}  SUMMARY",
        "CODE", "NAME", "SEVERITY"
    );
    for r in rules {
        let _ = writeln!(
            out,
            "{:<code_w$}  {:<name_w$}  {:<8}  {}",
            r.code,
            r.name,
            r.default_severity.to_string(),
            r.summary
        );
    }
    out
}

#[derive(Serialize)]
struct JsonRule<'a> {
    code: &'a str,
    name: &'a str,
    severity: Severity,
    summary: &'a str,
}

#[derive(Serialize)]
struct JsonRules<'a> {
    rules: Vec<JsonRule<'a>>,
}

/// `deployclaw rules --format json`: `{"rules":[{"code","name","severity","summary"}]}`.
pub fn render_rules_json(rules: &[RuleInfo]) -> String {
    let doc = JsonRules {
        rules: rules
            .iter()
            .map(|r| JsonRule {
                code: &r.code,
                name: &r.name,
                severity: r.default_severity,
                summary: &r.summary,
            })
            .collect(),
    };
    let mut s = to_json(&doc);
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_escapes_per_the_runner_rules() {
        assert_eq!(github_escape_data("50% a\r\nb"), "50%25 a%0D%0Ab");
        assert_eq!(github_escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }

    #[test]
    fn artifact_uri_encodes_spaces_and_absolute_paths() {
        assert_eq!(
            artifact_uri("m/2019_Add email/up.sql"),
            "m/2019_Add%20email/up.sql"
        );
        assert_eq!(artifact_uri("/abs/x y.sql"), "file:///abs/x%20y.sql");
        assert_eq!(artifact_uri("a\\b.sql"), "a/b.sql");
    }

    #[test]
    fn long_lines_are_cut_around_the_marked_range() {
        let line = "x".repeat(1000);
        let (s, f, t) = clip(&line, 0, 1000);
        assert_eq!(s.chars().count(), MAX_EXCERPT_COLS + 1);
        assert!(s.ends_with('…'));
        assert_eq!((f, t), (0, MAX_EXCERPT_COLS));
        let (s, f, t) = clip(&line, 500, 505);
        assert!(s.starts_with('…') && s.ends_with('…'));
        assert_eq!((f, t), (41, 46));
        let short = "SELECT 1";
        assert_eq!(clip(short, 2, 4), (short.to_string(), 2, 4));
    }

    #[test]
    fn expand_tabs_keeps_columns() {
        let (s, cols) = expand("\tab");
        assert_eq!(s, "    ab");
        assert_eq!(cols, vec![0, 4, 5, 6]);
    }
}

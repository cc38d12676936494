//! Shared text helpers for the renderings: escaping, shortening, durations, reason groups.

use gates::{Finding, Gate, Severity};

use crate::model::{ShardReport, ValidationReport};

/// Escape text for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escape text for XML content and attribute values; drops characters XML 1.0 cannot carry.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            _ => out.push(c),
        }
    }
    out
}

/// Escape text for XML element content where line breaks should stay line breaks.
pub fn xml_text(s: &str) -> String {
    s.split('\n').map(xml_escape).collect::<Vec<_>>().join("\n")
}

/// Escape inline Markdown text (GitHub flavour): one line, no markup, no HTML.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in one_line(s).chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '#' | '!' | '@' => {
                out.push('\\');
                out.push(c);
            }
            '&' => out.push_str("&amp;"),
            _ => out.push(c),
        }
    }
    out
}

/// An inline Markdown code span holding `s` (one line), safe in table cells.
pub fn md_code(s: &str) -> String {
    let s = one_line(s);
    let longest = longest_run(&s, '`');
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || longest > 0 {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{}{pad}{fence}", s.replace('|', "\\|"))
}

/// A fenced Markdown code block holding `s`, with a fence longer than any backtick run in it.
pub fn md_fence(lang: &str, s: &str) -> String {
    let fence = "`".repeat(longest_run(s, '`').max(2) + 1);
    let body = s.trim_end_matches('\n');
    format!("{fence}{lang}\n{body}\n{fence}\n")
}

fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for c in s.chars() {
        if c == ch {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// Collapse all whitespace runs (line breaks included) into single spaces and drop the other
/// control characters: names from a target (a schema called `tenant_\x1b[31m…`) must not carry
/// terminal escapes into a report someone `cat`s.
pub fn one_line(s: &str) -> String {
    s.split_whitespace()
        .map(|w| w.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `s` on one line, cut to at most `max` characters with an ellipsis.
pub fn shorten(s: &str, max: usize) -> String {
    let s = one_line(s);
    if s.chars().count() <= max {
        s
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// The first 12 hex digits of a digest.
pub fn short_hash(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}

/// A shape's rollback proof in words: `proven (structure and data)`, `proven (structure only:
/// why)`, `mismatch (2 differences)`, `not proven: why`.
pub fn proof_label(p: &crate::ShapeProof) -> String {
    use crate::ProofStatus;
    match p.outcome {
        ProofStatus::Proven if p.data => "proven (structure and data)".to_owned(),
        ProofStatus::Proven => match &p.reason {
            Some(r) => format!("proven (structure only: {r})"),
            None => "proven (structure only)".to_owned(),
        },
        ProofStatus::Mismatch => {
            format!("mismatch ({})", plural(p.differences.len(), "difference"))
        }
        _ => format!(
            "not proven: {}",
            p.reason.as_deref().unwrap_or("the proof did not run")
        ),
    }
}

/// A duration for humans: `850 ms`, `8.2 s`, `3 min 20 s`.
pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        let tenths = ms.div_ceil(100);
        format!("{}.{} s", tenths / 10, tenths % 10)
    } else {
        let s = ms.div_ceil(1000);
        if s.is_multiple_of(60) {
            format!("{} min", s / 60)
        } else {
            format!("{} min {} s", s / 60, s % 60)
        }
    }
}

/// Whole seconds for humans: `9 s`, `3 min 20 s`.
pub fn human_secs(s: u64) -> String {
    if s < 60 {
        format!("{s} s")
    } else if s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// `1 shard` / `3 shards`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Lower-case gate name for CSS classes and JUnit types.
pub fn gate_lower(g: Gate) -> &'static str {
    match g {
        Gate::Green => "green",
        Gate::Yellow => "yellow",
        Gate::Red => "red",
    }
}

/// Shards that failed for the same reason: same severity, rule and statement.
#[derive(Debug)]
pub struct ReasonGroup<'a> {
    /// Severity of the findings.
    pub severity: Severity,
    /// The rule.
    pub rule: &'a str,
    /// The rule's code.
    pub code: &'a str,
    /// `line N` and the statement, or the message when the finding is not about a statement.
    pub subject: Option<(u32, &'a str)>,
    /// The first finding, as an example.
    pub example: &'a Finding,
    /// The shards, in report order.
    pub shards: Vec<&'a ShardReport>,
}

/// Group the yellow and red findings of all shards by (severity, rule, statement); findings
/// without a statement group by (severity, rule, message). Worst and largest groups first.
pub fn reason_groups(report: &ValidationReport) -> Vec<ReasonGroup<'_>> {
    let mut groups: Vec<ReasonGroup<'_>> = Vec::new();
    // (severity, rule, line or message) → index in `groups`: linear at 100,000 shards.
    let mut index: std::collections::HashMap<(Severity, &str, Result<u32, &str>), usize> =
        std::collections::HashMap::new();
    for shard in &report.shards {
        for f in shard
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Yellow)
        {
            let subject = f
                .location
                .as_ref()
                .map(|l| (l.line, f.statement.as_deref().unwrap_or("")));
            let key = (
                f.severity,
                f.rule.as_str(),
                subject.map(|s| s.0).ok_or(f.message.as_str()),
            );
            match index.get(&key).and_then(|&i| groups.get_mut(i)) {
                Some(g) => {
                    // Shards are visited in order: a repeat is the last one pushed.
                    if !g.shards.last().is_some_and(|s| std::ptr::eq(*s, shard)) {
                        g.shards.push(shard);
                    }
                }
                None => {
                    index.insert(key, groups.len());
                    groups.push(ReasonGroup {
                        severity: f.severity,
                        rule: &f.rule,
                        code: &f.code,
                        subject,
                        example: f,
                        shards: vec![shard],
                    });
                }
            }
        }
    }
    groups.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.shards.len().cmp(&a.shards.len()))
    });
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            html_escape("<script>alert('x')&\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&amp;&quot;&lt;/script&gt;"
        );
        assert_eq!(xml_escape("a<b>&\u{1}\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(md_escape("<b>*x*|y"), "\\<b\\>\\*x\\*\\|y");
        assert_eq!(md_code("a`b|c"), "`` a`b\\|c ``");
        assert_eq!(md_fence("sql", "x ``` y"), "````sql\nx ``` y\n````\n");
        // Terminal escapes of a hostile name never reach report.md.
        assert_eq!(md_escape("t_\u{1b}[31mRED\u{7}"), "t\\_\\[31mRED");
        assert_eq!(md_code("t_\u{1b}[0m x"), "`t_[0m x`");
    }

    #[test]
    fn durations() {
        assert_eq!(human_ms(850), "850 ms");
        assert_eq!(human_ms(8_150), "8.2 s");
        assert_eq!(human_ms(200_000), "3 min 20 s");
        assert_eq!(human_ms(120_000), "2 min");
    }
}

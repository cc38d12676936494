//! The [`GateRule`] trait, rule metadata and the [`declare_rule!`](crate::declare_rule) macro.

use crate::{Finding, RuleContext, Severity};

/// What a rule is: its stable code and name, its default severity and its documentation.
///
/// `#[non_exhaustive]`: build it with [`RuleMeta::new`] (a `const fn`) so fields can be added
/// later without breaking rule crates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleMeta<'a> {
    /// Stable code, e.g. `DC101`. Built-in codes start with `DC`; pick another prefix for
    /// custom rules.
    pub code: &'a str,
    /// Stable kebab-case name, e.g. `require-concurrent-index`. Used in configuration,
    /// inline ignores and reports.
    pub name: &'a str,
    /// Severity when configuration does not override it.
    pub severity: Severity,
    /// Markdown documentation (`## What it does`, `## Why is this bad?`, `## Safe alternative`).
    /// May be empty for custom rules.
    pub docs: &'a str,
    /// What the rule looks at: the migration alone ([`RuleScope::Static`], the default) or a
    /// shard's evidence ([`RuleScope::Shard`]). Both kinds run in the same
    /// [`Registry`](crate::Registry); a per-shard rule reports nothing when the
    /// [`RuleContext`] carries no shard evidence.
    pub scope: RuleScope,
    /// The danger the rule reports is the *duration* of a blocking lock (a scan, a rewrite, an
    /// index build under a lock that blocks reads or writes). On a shard whose estimated
    /// blocking time for the statement is within the lock budget, its yellow findings are
    /// informational (`lock-time-budget` speaks for the shards where the same statement is too
    /// slow). Rules about correctness, compatibility or data loss never set it. Default false.
    pub duration: bool,
}

/// What a rule needs to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum RuleScope {
    /// The migration (and configuration) only: `deployclaw lint` runs it.
    #[default]
    Static,
    /// A shard's evidence (probes, rehearsal, lock estimate, drift, FK graph, rollback proof,
    /// custom probe rows), given to the [`RuleContext`] with its `with_*` builders.
    Shard,
    /// The whole run's live evidence at once ([`RuleContext::with_fleet_live`]): a finding
    /// about the run, reported once, not once per shard (e.g. a statistics extension missing
    /// on the fleet's databases). Reports nothing without that evidence.
    Fleet,
}

impl std::fmt::Display for RuleScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuleScope::Static => "static",
            RuleScope::Shard => "shard",
            RuleScope::Fleet => "fleet",
        })
    }
}

impl<'a> RuleMeta<'a> {
    /// Metadata with empty documentation.
    pub const fn new(code: &'a str, name: &'a str, severity: Severity) -> Self {
        RuleMeta {
            code,
            name,
            severity,
            docs: "",
            scope: RuleScope::Static,
            duration: false,
        }
    }

    /// The same metadata marked as a rule about the duration of a blocking lock
    /// ([`RuleMeta::duration`]).
    #[must_use]
    pub const fn with_duration(mut self, duration: bool) -> Self {
        self.duration = duration;
        self
    }

    /// The same metadata with another [`RuleScope`].
    #[must_use]
    pub const fn with_scope(mut self, scope: RuleScope) -> Self {
        self.scope = scope;
        self
    }

    /// The same metadata with `docs` as documentation.
    #[must_use]
    pub const fn with_docs(mut self, docs: &'a str) -> Self {
        self.docs = docs;
        self
    }

    /// The documentation as a user reads it (`deployclaw explain RULE`): a title line, then the
    /// doc text with the one-space indent of `///` comments removed.
    pub fn explain(&self) -> String {
        let mut out = format!(
            "# {} ({})\n\nDefault severity: {}\n\n",
            self.name, self.code, self.severity
        );
        out.push_str(&dedent(self.docs));
        out
    }

    /// The body of the `## heading` section of the docs (without the heading line), trimmed;
    /// `None` when the docs have no such section.
    pub fn section(&self, heading: &str) -> Option<String> {
        let text = dedent(self.docs);
        let mut lines = text.lines();
        let wanted = format!("## {heading}");
        lines.by_ref().find(|l| l.trim_end() == wanted)?;
        let body: Vec<&str> = lines.take_while(|l| !l.starts_with("## ")).collect();
        Some(body.join("\n").trim().to_string())
    }
}

/// Remove the single leading space `///` doc comments leave on every line.
fn dedent(docs: &str) -> String {
    let mut out = String::with_capacity(docs.len());
    for line in docs.lines() {
        out.push_str(line.strip_prefix(' ').unwrap_or(line));
        out.push('\n');
    }
    out
}

/// A gate rule: looks at a migration (and, for per-shard rules, at a shard's evidence) and
/// reports [`Finding`]s.
///
/// A rule has two parts: [`meta`](GateRule::meta) (code, name, default severity, docs) and
/// [`check`](GateRule::check). Rules do not apply configuration or inline ignores themselves:
/// [`Registry::lint`](crate::Registry::lint) disables rules, overrides severities and drops
/// ignored findings after `check` returns. A rule only reports; it never fails — a statement it
/// cannot judge is skipped.
///
/// # Example
///
/// A custom rule that forbids tables named `tmp_*`:
///
/// ```
/// use gates::{Config, Finding, GateRule, Registry, RuleContext, RuleMeta, Severity};
/// use gates::migration_parser::{Operation, ParseOptions};
///
/// struct NoTmpTables;
///
/// impl GateRule for NoTmpTables {
///     fn meta(&self) -> RuleMeta<'_> {
///         RuleMeta::new("ACME001", "no-tmp-tables", Severity::Yellow)
///     }
///     fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
///         ctx.operations()
///             .filter_map(|(stmt, op)| match op {
///                 Operation::CreateTable { table, .. } if table.name.starts_with("tmp_") => {
///                     Some(ctx.finding(self, stmt, format!("table `{table}` looks temporary")))
///                 }
///                 _ => None,
///             })
///             .collect()
///     }
/// }
///
/// let mut registry = Registry::builtin();
/// registry.register(Box::new(NoTmpTables)).unwrap();
/// let migration = gates::migration_parser::parse(
///     "m.sql",
///     "CREATE TABLE tmp_x (id int);",
///     &ParseOptions::default(),
/// )
/// .unwrap();
/// let findings = registry.lint(&migration, &Config::default());
/// assert_eq!(findings.len(), 1);
/// assert_eq!(findings[0].code, "ACME001");
/// ```
pub trait GateRule: Send + Sync {
    /// Code, name, default severity and documentation.
    fn meta(&self) -> RuleMeta<'_>;

    /// Report findings for the migration in `ctx`. Use [`RuleContext::finding`] to build a
    /// finding for a statement with location and statement text filled in.
    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding>;
}

/// Declare a rule struct whose documentation is written once, in its `///` doc comment, and is
/// also available at run time as `RuleType::META.docs` (what `deployclaw explain` prints).
///
/// The macro defines a unit struct and its `META` constant; implement [`GateRule`] with
/// `fn meta(&self) -> RuleMeta<'_> { Self::META }` and your `check`. An optional
/// `scope: Shard` after `severity` marks a per-shard rule ([`RuleScope`]); an optional
/// `duration: true` after that marks a rule about the duration of a blocking lock
/// ([`RuleMeta::duration`]).
///
/// ```
/// use gates::{declare_rule, Finding, GateRule, RuleContext, RuleMeta};
///
/// declare_rule! {
///     /// ## What it does
///     /// Nothing, ever.
///     /// ## Why is this bad?
///     /// It is not.
///     /// ## Safe alternative
///     /// ```sql
///     /// SELECT 1;
///     /// ```
///     pub struct NeverFires {
///         code: "ACME002",
///         name: "never-fires",
///         severity: Info,
///     }
/// }
///
/// impl GateRule for NeverFires {
///     fn meta(&self) -> RuleMeta<'_> {
///         Self::META
///     }
///     fn check(&self, _ctx: &RuleContext<'_>) -> Vec<Finding> {
///         Vec::new()
///     }
/// }
///
/// assert_eq!(NeverFires::META.name, "never-fires");
/// assert_eq!(NeverFires::META.section("What it does").as_deref(), Some("Nothing, ever."));
/// ```
#[macro_export]
macro_rules! declare_rule {
    (
        $(#[doc = $doc:literal])+
        $vis:vis struct $rule:ident {
            code: $code:literal,
            name: $name:literal,
            severity: $severity:ident
            $(, scope: $scope:ident)?
            $(, duration: $duration:literal)? $(,)?
        }
    ) => {
        $(#[doc = $doc])+
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        $vis struct $rule;

        impl $rule {
            /// This rule's code, name, default severity and documentation (its doc comment).
            pub const META: $crate::RuleMeta<'static> =
                $crate::RuleMeta::new($code, $name, $crate::Severity::$severity)
                    .with_docs(concat!($($doc, "\n"),+))
                    $(.with_scope($crate::RuleScope::$scope))?
                    $(.with_duration($duration))?;
        }
    };
}

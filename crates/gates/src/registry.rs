//! The [`Registry`] of rules and the lint driver.

use std::sync::Arc;

use migration_parser::{Migration, Statement};

use crate::config::names_rule;
use crate::{Config, Finding, GateRule, GatesError, RuleContext, RuleMeta, RuleScope};

/// A set of rules, looked up by name or code, run together by [`Registry::lint`].
///
/// Code ranges of the built-in rules:
///
/// | range | family |
/// |---|---|
/// | DC101–DC109 | blocking locks |
/// | DC110–DC111 | per shard: `lock-time-budget`, `lock-queue-risk` (live sessions the migration would queue behind) |
/// | DC201–DC209 | rewrites and long-running data changes |
/// | DC301–DC309 | destructive and breaking changes |
/// | DC320 | per shard: `breaking-change-in-use` (the application's own queries) |
/// | DC311–DC319 | per shard: `fk-orphans`, `not-null-violations`, `unique-violations`, `check-violations`, `cast-failures`, `statement-fails`, `rollback-irreversible`, `rollback-mismatch` (a supplied rollback), `rollback-unproven` (a generated one) |
/// | DC401 | multi-tenant hygiene |
/// | DC402–DC404 | per shard: `schema-drift`, `cascade-reach`, `shard-unreachable` |
/// | DC501–DC509 | transactions and timeouts |
/// | DC800–DC899 | free for declarative custom rules (`[[custom_rules]]`) |
/// | DC901 | meta: statements that could not be verified |
/// | DC902 | meta, once per run: the application's queries could not be checked (`query-stats-unavailable`) |
///
/// Static and per-shard rules live in the same registry: per-shard rules
/// ([`RuleScope::Shard`]) are skipped unless the [`RuleContext`] carries shard evidence.
///
/// Cloning is cheap: rules are shared, not copied.
#[derive(Clone)]
pub struct Registry {
    rules: Vec<Arc<dyn GateRule>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.rules.iter().map(|r| r.meta().name.to_string()))
            .finish()
    }
}

impl Default for Registry {
    /// The built-in rules ([`Registry::builtin`]).
    fn default() -> Self {
        Registry::builtin()
    }
}

impl Registry {
    /// A registry with no rules.
    pub fn empty() -> Registry {
        Registry { rules: Vec::new() }
    }

    /// The built-in rules: the static ones and the per-shard ones.
    pub fn builtin() -> Registry {
        Registry {
            rules: crate::rules::builtin().into_iter().map(Arc::from).collect(),
        }
    }

    /// The built-in rules plus the `[[custom_rules]]` of `config`
    /// ([`with_custom_rules`](Self::with_custom_rules)).
    pub fn for_config(config: &Config) -> Result<Registry, GatesError> {
        let mut r = Registry::builtin();
        r.with_custom_rules(config)?;
        Ok(r)
    }

    /// Register the declarative `[[custom_rules]]` of `config` (statement patterns and SQL
    /// probes). Fails if one clashes with a registered rule's name or code.
    pub fn with_custom_rules(&mut self, config: &Config) -> Result<(), GatesError> {
        for rule in config.custom_rule_set()? {
            self.register(rule)?;
        }
        Ok(())
    }

    /// Add a rule. Fails if a registered rule has the same name or code (case-insensitive).
    pub fn register(&mut self, rule: Box<dyn GateRule>) -> Result<(), GatesError> {
        self.register_shared(Arc::from(rule))
    }

    /// Add every rule of `other` (shared, not copied), in its order. Fails at the first one
    /// that clashes with a rule already here ([`register`](Self::register)).
    pub fn extend_from(&mut self, other: &Registry) -> Result<(), GatesError> {
        for rule in &other.rules {
            self.register_shared(Arc::clone(rule))?;
        }
        Ok(())
    }

    fn register_shared(&mut self, rule: Arc<dyn GateRule>) -> Result<(), GatesError> {
        let meta = rule.meta();
        for existing in &self.rules {
            let e = existing.meta();
            let clash = if e.name.eq_ignore_ascii_case(meta.name) {
                Some("name")
            } else if e.code.eq_ignore_ascii_case(meta.code) {
                Some("code")
            } else {
                None
            };
            if let Some(clash) = clash {
                return Err(GatesError::DuplicateRule {
                    code: meta.code.to_string(),
                    name: meta.name.to_string(),
                    clash,
                });
            }
        }
        self.rules.push(rule);
        Ok(())
    }

    /// The rule with this name or code (case-insensitive).
    pub fn get(&self, name_or_code: &str) -> Option<&dyn GateRule> {
        self.rules
            .iter()
            .find(|r| names_rule(name_or_code, &r.meta()))
            .map(|r| r.as_ref())
    }

    /// The documentation of the rule with this name or code, as `deployclaw explain` prints it
    /// ([`RuleMeta::explain`]).
    pub fn explain(&self, name_or_code: &str) -> Option<String> {
        self.get(name_or_code).map(|r| r.meta().explain())
    }

    /// The rules in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn GateRule> {
        self.rules.iter().map(|r| r.as_ref())
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Check that every rule `config` names in `[rules]` exists here. `lint` itself ignores
    /// unknown names; call this once after loading the configuration to report typos.
    pub fn check_config(&self, config: &Config) -> Result<(), GatesError> {
        for (file, key, rule, line, column) in config.rule_references() {
            if self.get(&rule).is_none() {
                return Err(GatesError::UnknownRule {
                    file,
                    line,
                    column,
                    key,
                    rule,
                });
            }
        }
        Ok(())
    }

    /// Run every enabled rule on `migration` under `config`.
    ///
    /// Applies `[rules] disable`, `[rules.severity]` overrides and inline ignores
    /// (`-- deployclaw:ignore RULE` before a statement, `-- deployclaw:ignore-file RULE`; by name
    /// or code, or `all`). Findings are sorted by location, then code. A rule reports at most
    /// [`MAX_FINDINGS_PER_RULE`] located findings; the rest are summed up in one finding (at
    /// the first one left out, with their count, lines and worst severity).
    pub fn lint(&self, migration: &Migration, config: &Config) -> Vec<Finding> {
        self.lint_with(&RuleContext::new(migration, config))
    }

    /// [`lint`](Self::lint) with a prepared context (another PostgreSQL version, a shard's
    /// evidence). Per-shard rules run only when the context carries shard evidence.
    pub fn lint_with(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        self.lint_scoped(ctx, None)
    }

    /// [`lint_with`](Self::lint_with) restricted to the rules of one [`RuleScope`] (`None`:
    /// all), e.g. only the per-shard rules when static findings are reported once per fleet.
    pub fn lint_scoped(&self, ctx: &RuleContext<'_>, scope: Option<RuleScope>) -> Vec<Finding> {
        let migration = ctx.migration();
        let config = ctx.config();
        let mut findings = Vec::new();
        for rule in &self.rules {
            let meta = rule.meta();
            if scope.is_some_and(|s| s != meta.scope)
                || (meta.scope == RuleScope::Shard && !ctx.is_shard_context())
                || (meta.scope == RuleScope::Fleet && !ctx.is_fleet_context())
            {
                continue;
            }
            if config.is_disabled(&meta) || ignored(&migration.file_ignored_rules, &meta) {
                continue;
            }
            let severity = config.severity_override(&meta);
            let mut kept = 0usize;
            let mut omitted: Option<Omitted> = None;
            for mut f in rule.check(ctx) {
                let stmt = f
                    .location
                    .as_ref()
                    .and_then(|l| migration.statements.get(l.statement));
                if stmt.is_some_and(|s: &Statement| ignored(&s.ignored_rules, &meta)) {
                    continue;
                }
                if let Some(s) = severity {
                    f.severity = s;
                }
                if kept < MAX_FINDINGS_PER_RULE || f.location.is_none() {
                    kept += 1;
                    findings.push(f);
                } else {
                    omitted.get_or_insert_with(|| Omitted::first(&f)).add(&f);
                }
            }
            findings.extend(omitted.map(|o| o.finding(&meta)));
        }
        findings.sort_by(|a, b| {
            let key = |f: &Finding| {
                f.location
                    .as_ref()
                    .map(|l| (l.line, l.column, l.statement))
                    .unwrap_or((u32::MAX, 0, 0))
            };
            key(a).cmp(&key(b)).then_with(|| a.code.cmp(&b.code))
        });
        findings
    }
}

impl Registry {
    /// Demote the yellow findings of duration rules ([`RuleMeta::duration`]) to `Info` on a
    /// shard where the statement's estimated blocking time (`estimate`, the simulator's lock
    /// estimate for the shard) is within `budget_ms`, saying so in the message. Findings of
    /// rules this registry does not hold are left alone.
    pub fn demote_within_budget(
        &self,
        findings: &mut [Finding],
        estimate: Option<&evidence::LockEstimate>,
        budget_ms: u64,
    ) {
        let Some(estimate) = estimate else {
            return;
        };
        let by_index: std::collections::HashMap<usize, f64> = estimate
            .statements
            .iter()
            .map(|s| (s.index, s.estimated_lock_ms))
            .collect();
        for f in findings.iter_mut() {
            if f.severity != crate::Severity::Yellow
                || !self.get(&f.rule).is_some_and(|r| r.meta().duration)
            {
                continue;
            }
            let Some(loc) = &f.location else {
                continue;
            };
            let Some(&estimated_lock_ms) = by_index.get(&loc.statement) else {
                continue;
            };
            if estimated_lock_ms <= budget_ms as f64 {
                f.severity = crate::Severity::Info;
                f.message = format!(
                    "{} On this shard the estimated blocking time is {:.0} ms, within the {} ms budget.",
                    f.message, estimated_lock_ms, budget_ms
                );
            }
        }
    }
}

/// The static rules whose finding predicts that a statement rewrites a table or rebuilds its
/// indexes. On a shard whose rehearsal ran the statement and saw no relation's `relfilenode`
/// change, their yellow findings are demoted to info
/// ([`Registry::demote_unobserved_rewrites`]).
pub const REWRITE_PREDICTING_RULES: &[&str] = &[
    "adding-volatile-default",
    "changing-column-type",
    "adding-serial-primary-key",
    "changing-collation",
    "table-rewrite-maintenance",
];

impl Registry {
    /// Evidence over prediction: demote to `Info` the yellow findings of the rewrite-predicting
    /// rules ([`REWRITE_PREDICTING_RULES`]) whose statement ran to completion in `rehearsal`
    /// without changing the `relfilenode` of any relation that existed before the migration,
    /// giving the reason in the message. The rehearsal ran on this shard's schema shape, and
    /// whether PostgreSQL rewrites depends on the structure, not the rows. Findings of rules
    /// this registry does not hold are left alone; nothing is promoted here (the rules
    /// `observed-rewrite` and `observed-lock` report what the rehearsal saw and nobody predicted).
    pub fn demote_unobserved_rewrites(
        &self,
        findings: &mut [Finding],
        rehearsal: Option<&evidence::RehearsalResult>,
    ) {
        let Some(r) = rehearsal else {
            return;
        };
        for f in findings.iter_mut() {
            if f.severity != crate::Severity::Yellow
                || !REWRITE_PREDICTING_RULES.contains(&f.rule.as_str())
                || self.get(&f.rule).is_none()
            {
                continue;
            }
            let Some(loc) = &f.location else {
                continue;
            };
            let Some(st) = crate::observed::succeeded(r, loc.statement) else {
                continue;
            };
            if !crate::observed::pre_existing_rewrites(r, st).is_empty() {
                continue;
            }
            f.severity = crate::Severity::Info;
            f.message = format!(
                "{} Demoted: the rehearsal on this shard's shape ran it with every relfilenode unchanged \
                 (no rewrite){}.",
                f.message,
                match r.mode {
                    evidence::RehearsalMode::InPlace => " in place".to_string(),
                    _ => format!(" on a shadow copy of `{}`", r.shard),
                }
            );
        }
    }
}

/// Located findings one rule reports for one migration (and shard) before the rest are
/// summed up in a single finding: a file of 700,000 `CREATE INDEX` statements would otherwise
/// carry 700,000 copies of the same finding per rule into memory, every rendering and every
/// shard of a report.
pub const MAX_FINDINGS_PER_RULE: usize = 1_000;

/// The findings of a rule past [`MAX_FINDINGS_PER_RULE`], summed up.
struct Omitted {
    first: Finding,
    count: usize,
    last_line: u32,
    severity: crate::Severity,
}

impl Omitted {
    fn first(f: &Finding) -> Omitted {
        Omitted {
            first: f.clone(),
            count: 0,
            last_line: 0,
            severity: f.severity,
        }
    }

    fn add(&mut self, f: &Finding) {
        self.count += 1;
        self.severity = self.severity.max(f.severity);
        if let Some(l) = &f.location {
            self.last_line = self.last_line.max(l.line);
        }
    }

    /// One finding at the first omitted one's place, with the worst omitted severity.
    fn finding(self, meta: &RuleMeta<'_>) -> Finding {
        let first_line = self.first.location.as_ref().map_or(0, |l| l.line);
        let mut f = self.first;
        f.severity = self.severity;
        f.evidence = None;
        f.help = Some(format!(
            "Fix the statements listed, then run the check again to see the next ones, or silence the rule for this file with `-- deployclaw:ignore-file {}`",
            meta.name
        ));
        f.message = format!(
            "{} more `{}` findings (lines {first_line} to {}) are not listed: only the first {MAX_FINDINGS_PER_RULE} of a rule are reported per file, so output and memory stay bounded; the first of them: {}",
            self.count, meta.name, self.last_line, f.message
        );
        f
    }
}

fn ignored(list: &[String], meta: &RuleMeta<'_>) -> bool {
    list.iter()
        .any(|r| r.trim().eq_ignore_ascii_case("all") || names_rule(r, meta))
}

//! Helpers shared by the per-shard rules: reading probe results, naming the operation a probe
//! is about, and formatting sizes, durations and samples.

use evidence::{ProbeKind, ProbeResult};
use migration_parser::{ConstraintKind, LockMode, Operation, QualifiedName, Statement};
use serde_json::json;

use super::{ident, lock_phrase, qname};
use crate::{Finding, GateRule, RuleContext, Severity};

/// The operation of `stmt` a probe on `table` is about: the first operation naming that table
/// (by its bare name), else the first operation.
pub(crate) fn op_for<'a>(stmt: &'a Statement, table: &str) -> Option<&'a Operation> {
    stmt.operations
        .iter()
        .find(|op| {
            crate::mentioned_names(op)
                .first()
                .is_some_and(|n| n.name == table)
        })
        .or_else(|| stmt.operations.first())
}

/// The table the operation acts on.
pub(crate) fn op_table(op: &Operation) -> Option<&QualifiedName> {
    crate::mentioned_names(op).into_iter().next()
}

/// A short description of an operation: `ADD FOREIGN KEY orders_customer_fk`.
pub(crate) fn op_phrase(op: &Operation) -> String {
    let named = |what: &str, name: &Option<String>| match name {
        Some(n) => format!("{what} `{n}`"),
        None => what.to_string(),
    };
    match op {
        Operation::AddConstraint { constraint, .. } => match &constraint.kind {
            ConstraintKind::ForeignKey { .. } => named("ADD FOREIGN KEY", &constraint.name),
            ConstraintKind::Check { .. } => named("ADD CHECK", &constraint.name),
            ConstraintKind::Unique { .. } => named("ADD UNIQUE", &constraint.name),
            ConstraintKind::PrimaryKey { .. } => named("ADD PRIMARY KEY", &constraint.name),
            ConstraintKind::Exclusion { .. } => named("ADD EXCLUDE", &constraint.name),
        },
        Operation::ValidateConstraint { name, .. } => format!("VALIDATE CONSTRAINT `{name}`"),
        Operation::SetNotNull { column, .. } => format!("SET NOT NULL on `{column}`"),
        Operation::AddColumn { column, .. } => format!("ADD COLUMN `{}`", column.name),
        Operation::AlterColumnType {
            column, new_type, ..
        } => format!("ALTER COLUMN `{column}` TYPE {new_type}"),
        Operation::CreateIndex { name, unique, .. } => {
            let what = if *unique {
                "CREATE UNIQUE INDEX"
            } else {
                "CREATE INDEX"
            };
            named(what, name)
        }
        _ => "this statement".to_string(),
    }
}

/// `12 rows` / `at least 12 rows`.
pub(crate) fn count_phrase(p: &ProbeResult, unit: &str) -> String {
    let plural = if p.count == 1 {
        unit.to_string()
    } else {
        format!("{unit}s")
    };
    if p.exact {
        format!("{} {plural}", p.count)
    } else {
        format!("at least {} {plural}", p.count)
    }
}

/// `plural` when `count` is not 1, else `singular` (verb agreement: `have` / `has`).
pub(crate) fn agree(count: u64, plural: &'static str, singular: &'static str) -> &'static str {
    if count == 1 { singular } else { plural }
}

/// `3.4M`, `800k`, `950`.
pub(crate) fn fmt_count(n: i64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.1}G", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.1}M", f / 1e6)
    } else if f >= 1e4 {
        format!("{:.0}k", f / 1e3)
    } else {
        n.to_string()
    }
}

/// ` (samples: 17, 42)` or nothing.
pub(crate) fn samples_phrase(samples: &[String], label: &str) -> String {
    if samples.is_empty() {
        String::new()
    } else {
        format!(" ({label}: {})", samples.join(", "))
    }
}

/// `1.2 GB`.
pub(crate) fn fmt_bytes(b: i64) -> String {
    let f = b as f64;
    if f >= 1e9 {
        format!("{:.1} GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.1} MB", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.0} kB", f / 1e3)
    } else {
        format!("{b} B")
    }
}

/// `31.2 s` / `850 ms`.
pub(crate) fn fmt_ms(ms: f64) -> String {
    if ms >= 60_000.0 {
        format!("{:.1} min", ms / 60_000.0)
    } else if ms >= 1_000.0 {
        format!("{:.1} s", ms / 1_000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

/// The evidence JSON every data-probe finding carries.
pub(crate) fn probe_evidence(p: &ProbeResult, sqlstate: &str) -> serde_json::Value {
    json!({
        "probe": p.kind.as_str(),
        "sqlstate": sqlstate,
        "table": format!("{}.{}", p.schema, p.table),
        "column": p.column,
        "constraint": p.constraint,
        "count": p.count,
        "exact": p.exact,
        "samples": p.samples,
        "would_fail": p.would_fail,
        "note": p.note,
        "sql": p.sql,
    })
}

/// What a data rule says about one probe result with violations.
pub(crate) struct DataFailure {
    /// What was found, e.g. `12 rows of tenant_1.orders have a customer_id with no match in customers`.
    pub found: String,
    /// How to fix it, with SQL.
    pub help: String,
}

/// Findings of the data rule `rule` from the shard's probes of `kind`: red for violations that
/// make the statement fail (`would_fail`), yellow for violations that do not (yet) make it fail
/// (`NOT VALID` constraint, a backfill earlier in the migration) and for probes that could not
/// run, info for a probe left to the rehearsal while the shard's rows exist
/// ([`rows_left_unchecked`]). `describe` words the violation and the fix.
pub(crate) fn data_probe_findings<R: GateRule>(
    rule: &R,
    ctx: &RuleContext<'_>,
    kind: ProbeKind,
    describe: impl Fn(&ProbeResult, Option<&Operation>) -> DataFailure,
) -> Vec<Finding> {
    let Some(ev) = ctx.shard_evidence() else {
        return Vec::new();
    };
    let (sqlstate, condition) = kind.sqlstate();
    let mut out = Vec::new();
    for p in ev.probes.iter().filter(|p| p.kind == kind) {
        if let Some(reason) = &p.skipped {
            if rows_left_unchecked(reason) {
                out.push(
                    ctx.shard_finding(
                        rule,
                        p.statement_index,
                        format!(
                            "the rows of `{}.{}` on this shard were not checked for {}: {reason}",
                            p.schema,
                            p.table,
                            rule.meta().name,
                        ),
                    )
                    .with_severity(Severity::Info)
                    .with_help(
                        "The rehearsal's tables are empty (real rows only with --shadow-data sample): \
                         check this shard's data by hand before approving, or write the step so the probe \
                         can follow it",
                    )
                    .with_evidence(json!({
                        "probe": p.kind.as_str(),
                        "table": format!("{}.{}", p.schema, p.table),
                        "skipped": reason,
                    })),
                );
            }
            continue;
        }
        let stmt = p.statement_index.and_then(|i| ctx.statement(i));
        let op = stmt.and_then(|s| op_for(s, &p.table));
        if let Some(e) = &p.error {
            out.push(
                ctx.shard_finding(
                    rule,
                    p.statement_index,
                    format!(
                        "could not check `{}.{}` for {} on this shard: the probe failed with SQLSTATE {}: {}",
                        p.schema,
                        p.table,
                        rule.meta().name,
                        e.sqlstate.as_deref().unwrap_or("unknown"),
                        e.message
                    ),
                )
                .with_severity(Severity::Yellow)
                .with_help(
                    "Re-run with a longer probe timeout (or off-peak), or check the data by hand before approving",
                )
                .with_evidence(json!({
                    "probe": p.kind.as_str(),
                    "table": format!("{}.{}", p.schema, p.table),
                    "error": { "sqlstate": e.sqlstate, "message": e.message },
                    "sql": p.sql,
                })),
            );
            continue;
        }
        if p.count == 0 {
            continue;
        }
        let DataFailure { found, help } = describe(p, op);
        let what = op.map(op_phrase).unwrap_or_else(|| "the statement".into());
        let lock = op
            .and_then(|o| {
                let t = op_table(o)?;
                let f = ctx.strongest_lock(o, Some(t))?;
                (f.mode > LockMode::ShareUpdateExclusive)
                    .then(|| format!("; until it fails it holds {}", lock_phrase(f.mode, t)))
            })
            .unwrap_or_default();
        let mut f = if p.would_fail {
            ctx.shard_finding(
                rule,
                p.statement_index,
                format!(
                    "{what} would fail on this shard with SQLSTATE {sqlstate} ({condition}): {found}{lock}"
                ),
            )
        } else {
            let why = p
                .note
                .clone()
                .unwrap_or_else(|| "the statement itself does not check existing rows".into());
            ctx.shard_finding(
                rule,
                p.statement_index,
                format!(
                    "{what} does not fail on this shard ({why}), but the data violates it: {found}"
                ),
            )
            .with_severity(Severity::Yellow)
        };
        f = f.with_help(help).with_evidence(probe_evidence(p, sqlstate));
        out.push(f);
    }
    out
}

/// Whether a probe skipped for `reason` leaves rows of the shard unchecked: it was left to the
/// rehearsal ("rehearsal decides") while the table's rows exist on the shard — not a table the
/// migration creates (no rows to check). The rehearsal runs on empty tables unless asked for a
/// sample, so what the probe would have read is then known to nobody: said, never silent.
pub(crate) fn rows_left_unchecked(reason: &str) -> bool {
    reason.contains("rehearsal decides") && !reason.contains("created by the migration")
}

/// `schema.table` as SQL for a probe result (quoted where needed).
pub(crate) fn probe_table_sql(p: &ProbeResult) -> String {
    format!("{}.{}", ident(&p.schema), ident(&p.table))
}

/// The migration's name for a table as SQL.
pub(crate) fn table_sql(op: Option<&Operation>, p: &ProbeResult) -> String {
    op.and_then(op_table)
        .map(qname)
        .unwrap_or_else(|| probe_table_sql(p))
}

#[cfg(test)]
mod tests {
    use evidence::ProbeKind;

    use crate::{Registry, RuleScope};

    /// Every probe kind that predicts a failure names a built-in per-shard rule that reports it.
    #[test]
    fn every_probe_kind_is_reported_by_a_shard_rule() {
        let registry = Registry::builtin();
        for kind in ProbeKind::ALL {
            let rule = kind.rule();
            if kind == ProbeKind::RowEstimate {
                // A measurement the static rule reads when it runs with shard evidence.
                assert!(registry.get(rule).is_some(), "{rule}");
                continue;
            }
            let r = registry
                .get(rule)
                .unwrap_or_else(|| panic!("{kind:?} names `{rule}`, which is not a rule"));
            assert_eq!(r.meta().scope, RuleScope::Shard, "{rule}");
        }
    }
}

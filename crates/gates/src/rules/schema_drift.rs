use evidence::ProbeKind;
use serde_json::json;

use crate::{Finding, GateRule, RuleContext, RuleMeta, Severity, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard: reports how the shard's catalog differs from the fleet's majority shape,
    /// object by object (missing or extra tables, columns, constraints, indexes; different
    /// types, defaults, nullability), as one yellow finding. When the simulator's existence
    /// probes show that a statement references an object missing on this shard — or creates
    /// one that already exists there — that statement gets a red finding of its own.
    ///
    /// ## Why is this bad?
    /// A migration is written and reviewed against one schema; a drifted shard runs it against
    /// another. A referenced object that is missing makes the statement fail with SQLSTATE
    /// `42P01` (`undefined_table`), `42703` (`undefined_column`) or `42704`
    /// (`undefined_object`); an object that already exists fails `CREATE` with `42P07`
    /// (`duplicate_table`), `42701` (`duplicate_column`) or `42710` (`duplicate_object`).
    /// Other drift (an extra index, a different default) lets the migration succeed but with a
    /// different effect, lock profile or rollback than on the rest of the fleet.
    ///
    /// Severity **yellow**: the shard differs from the shape the migration was reviewed
    /// against; red for a statement that references an object missing on this shard.
    ///
    /// ## Safe alternative
    /// Bring the shard back in line with the fleet first (apply the migration it missed, or
    /// remove the stray object), or make the statement tolerant where that is what you mean:
    /// ```sql
    /// ALTER TABLE orders ADD COLUMN IF NOT EXISTS note text;
    /// DROP INDEX CONCURRENTLY IF EXISTS orders_legacy_idx;
    /// ```
    pub struct SchemaDrift {
        code: "DC402",
        name: "schema-drift",
        severity: Yellow,
        scope: Shard,
    }
}

/// How many differences the message lists before "and N more" (the evidence has them all).
const LISTED: usize = 8;

impl GateRule for SchemaDrift {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        if let Some(ev) = ctx.shard_evidence() {
            for p in ev.probes.iter().filter(|p| {
                matches!(
                    p.kind,
                    ProbeKind::MissingObject | ProbeKind::ObjectAlreadyExists
                )
            }) {
                if let Some(e) = &p.error {
                    out.push(
                        ctx.shard_finding(
                            self,
                            p.statement_index,
                            format!(
                                "could not check on this shard whether the objects the migration references exist: \
                                 the existence probe failed with SQLSTATE {}: {}",
                                e.sqlstate.as_deref().unwrap_or("unknown"),
                                e.message
                            ),
                        )
                        .with_help("Re-run the gate; if it persists, compare the shard's catalog by hand")
                        .with_evidence(json!({ "error": { "sqlstate": e.sqlstate, "message": e.message } })),
                    );
                    continue;
                }
                if p.count == 0 || !p.would_fail {
                    continue;
                }
                let what = p
                    .samples
                    .first()
                    .cloned()
                    .unwrap_or_else(|| format!("{}.{}", p.schema, p.table));
                let code = p
                    .kind
                    .existence_sqlstate(what.split_whitespace().next().unwrap_or(""));
                let (msg, help) = if p.kind == ProbeKind::MissingObject {
                    (
                        format!(
                            "the statement references {what}, which does not exist on this shard: it would fail with \
                             SQLSTATE {code}"
                        ),
                        "Bring this shard in line with the fleet first (apply the migration it missed), or, if the \
                         object is legitimately absent here, write the statement with IF EXISTS",
                    )
                } else {
                    (
                        format!(
                            "the statement creates {what}, which already exists on this shard: it would fail with \
                             SQLSTATE {code}"
                        ),
                        "Find out why the object already exists on this shard (a half-applied earlier run?) and remove \
                         it, or write the statement with IF NOT EXISTS if that is what you mean",
                    )
                };
                out.push(
                    ctx.shard_finding(self, p.statement_index, msg)
                        .with_severity(Severity::Red)
                        .with_help(help)
                        .with_evidence(json!({
                            "probe": p.kind.as_str(),
                            "object": what,
                            "sqlstate": code,
                            "schema": p.schema,
                            "table": p.table,
                            "column": p.column,
                            "constraint": p.constraint,
                        })),
                );
            }
        }
        let drift = ctx.drift();
        if !drift.is_empty() {
            let listed: Vec<&str> = drift.iter().take(LISTED).map(|d| d.text.as_str()).collect();
            let more = drift.len().saturating_sub(LISTED);
            let reference = ctx
                .drift_reference()
                .map(|r| format!(" (reference shard `{r}`)"))
                .unwrap_or_default();
            let mut msg = format!(
                "this shard's catalog differs from the fleet's majority shape{reference} in {} place{}: {}",
                drift.len(),
                if drift.len() == 1 { "" } else { "s" },
                listed.join("; ")
            );
            if more > 0 {
                msg.push_str(&format!("; and {more} more"));
            }
            out.push(
                ctx.shard_finding(self, None, msg)
                    .with_help(
                        "Reconcile the shard with the majority shape before shipping, or confirm that the migration \
                         does what you expect on this shape (its rehearsal ran on this shard's own structure)",
                    )
                    .with_evidence(json!({
                        "reference_shard": ctx.drift_reference(),
                        "count": drift.len(),
                        "differences": drift,
                    })),
            );
        }
        out
    }
}

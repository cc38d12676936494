use evidence::StatementOutcome;
use serde_json::json;

use crate::{Finding, GateRule, RuleContext, RuleMeta, Severity, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard, the per-fleet proof of `non-tenant-object`: when several shards share a
    /// database, the simulator rehearses the migration for two of them in sequence on one
    /// shadow database holding both schemas, each run with its own `search_path`, as a
    /// per-tenant rollout runs it. A statement that fails in the second shard's run but not in
    /// its own rehearsal fails because of what the first run left in the database: an object
    /// outside the tenant's schema (`CREATE SCHEMA utils`, a function in `public`, an
    /// extension) that exists once per database. The finding names the statement, the
    /// SQLSTATE and PostgreSQL's message (which names the object), the shard and the shard
    /// that ran first.
    ///
    /// ## Why is this bad?
    /// The rollout succeeds on the first tenant of every database and stops at the second:
    /// the fleet is left on two schema versions, and a test on a single tenant never shows it.
    ///
    /// Severity **red**: proven on a copy of this database's schemas — the migration fails on
    /// this shard when the rollout reaches it. **Yellow** when the proof could not be set up:
    /// the check did not run (the report says why), and a gate that did not run its check is
    /// never green.
    ///
    /// ## Safe alternative
    /// Make the statement idempotent, or move it to a migration run once per database before
    /// the tenant fan-out:
    /// ```sql
    /// CREATE SCHEMA IF NOT EXISTS utils;
    /// CREATE OR REPLACE FUNCTION public.slugify(t text) RETURNS text
    ///     LANGUAGE sql IMMUTABLE AS $$ SELECT lower(t) $$;
    /// ```
    pub struct SecondTenantFails {
        code: "DC406",
        name: "second-tenant-fails",
        severity: Red,
        scope: Shard,
    }
}

impl GateRule for SecondTenantFails {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(rerun) = ctx.shard_evidence().and_then(|e| e.fleet_rerun.as_ref()) else {
            return Vec::new();
        };
        if let Some(err) = &rerun.setup_error {
            // Not a silent pass: the check did not run (as statement-fails says of a rehearsal
            // that could not be set up).
            return vec![
                ctx.shard_finding(
                    self,
                    None,
                    format!(
                        "the per-fleet proof (this shard's migration run after shard `{}` on one shadow database \
                         holding both schemas) could not be set up, so whether the rollout fails on the second \
                         tenant of database `{}` is unknown: {err}",
                        rerun.first_shard, rerun.database
                    ),
                )
                .with_severity(Severity::Yellow)
                .with_help(
                    "Check the shadow server (see the rehearsal's setup) and re-run; meanwhile review every statement \
                     that touches an object outside the tenant's schema (see non-tenant-object)",
                )
                .with_evidence(json!({
                    "setup_error": err,
                    "first_shard": rerun.first_shard,
                    "database": rerun.database,
                })),
            ];
        }
        let own_failure = |i: usize| {
            ctx.rehearsal().is_some_and(|r| {
                r.statements
                    .iter()
                    .any(|s| s.index == i && matches!(s.outcome, StatementOutcome::Failed { .. }))
            })
        };
        let mut out = Vec::new();
        for st in &rerun.statements {
            let StatementOutcome::Failed { sqlstate, message } = &st.outcome else {
                continue;
            };
            if own_failure(st.index) {
                continue;
            }
            let code = sqlstate.as_deref().unwrap_or("unknown");
            out.push(
                ctx.shard_finding(
                    self,
                    Some(st.index),
                    format!(
                        "run after shard `{}` in database `{}` (one shadow database holding both schemas, each run \
                         with its own search_path), this statement fails on this shard with SQLSTATE {code}: \
                         {message} — the first run already created this object outside the tenant's schema, so the \
                         rollout stops here",
                        rerun.first_shard, rerun.database
                    ),
                )
                .with_help(
                    "Make it idempotent (IF NOT EXISTS / OR REPLACE) or move it to a migration run once per database \
                     before the per-tenant runs (see non-tenant-object)",
                )
                .with_evidence(json!({
                    "statement": st.index,
                    "line": st.line,
                    "sqlstate": sqlstate,
                    "message": message,
                    "first_shard": rerun.first_shard,
                    "database": rerun.database,
                })),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use evidence::{FleetRerun, ShardEvidence};

    use super::*;
    use crate::{Config, Severity};

    /// A per-fleet proof that could not be set up is a yellow finding that says so, never a
    /// silent pass.
    #[test]
    fn a_per_fleet_proof_that_could_not_be_set_up_is_reported() {
        let config = Config::default();
        let m = migration_parser::parse(
            "m.sql",
            "ALTER TABLE public.settings ADD COLUMN flag bool;\n",
            &config.parse_options(),
        )
        .unwrap();
        let ev = ShardEvidence {
            fleet_rerun: Some(FleetRerun {
                database: "app".into(),
                first_shard: "pg-1/app/tenant_0001".into(),
                setup_error: Some("pg_dump 14 cannot dump a server of version 16".into()),
                statements: vec![],
            }),
            ..ShardEvidence::default()
        };
        let ctx = RuleContext::new(&m, &config).with_shard(&ev);
        let findings = SecondTenantFails.check(&ctx);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].severity, Severity::Yellow);
        insta::assert_snapshot!(findings[0].message);
    }
}

use globset::{Glob, GlobSet, GlobSetBuilder};
use migration_parser::Operation;

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule, mentioned_names};

declare_rule! {
    /// ## What it does
    /// Flags a statement that names a schema matching `tenant_schema_pattern` (default
    /// `tenant_*`): a schema-qualified table, view, index, type or function, `CREATE` / `DROP
    /// SCHEMA`, or `SET search_path`.
    ///
    /// ## Why is this bad?
    /// A tenant migration is applied to every tenant schema by fan-out, each run with the
    /// tenant's own `search_path`. A statement that names `tenant_0042` explicitly touches that
    /// one tenant from every run: it fails from the second shard on (`already exists`), or it
    /// changes one tenant's data a thousand times, while the other tenants miss the change.
    /// Independent of the PostgreSQL version.
    ///
    /// Severity **yellow**: almost always a mistake, but a one-off fix for a single tenant can
    /// be intentional and needs a human to confirm it.
    ///
    /// ## Safe alternative
    /// Leave objects unqualified so each tenant's `search_path` resolves them:
    /// ```sql
    /// ALTER TABLE users ADD COLUMN locale text;   -- not tenant_0042.users
    /// ```
    /// Put a fix for one tenant in a separate, approved script.
    pub struct HardcodedTenantSchema {
        code: "DC401",
        name: "hardcoded-tenant-schema",
        severity: Yellow,
    }
}

impl GateRule for HardcodedTenantSchema {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let patterns = ctx.config().tenant_schema_patterns();
        let mut builder = GlobSetBuilder::new();
        for p in &patterns {
            // Invalid globs are rejected when the configuration is parsed; a config built in
            // code with a bad glob simply does not match.
            if let Ok(g) = Glob::new(p) {
                builder.add(g);
            }
        }
        let set = builder.build().unwrap_or_else(|_| GlobSet::empty());
        let mut out = Vec::new();
        for stmt in ctx.statements() {
            let mut schemas: Vec<String> = Vec::new();
            for op in &stmt.operations {
                let mut named: Vec<String> = mentioned_names(op)
                    .into_iter()
                    .filter_map(|n| n.schema.clone())
                    .collect();
                match op {
                    Operation::CreateSchema { name, .. } | Operation::DropSchema { name, .. } => {
                        named.push(name.clone());
                    }
                    Operation::Set { name, value, .. } if name == "search_path" => {
                        named.extend(
                            value
                                .split(',')
                                .map(|s| s.trim().trim_matches('"').to_string()),
                        );
                    }
                    _ => {}
                }
                for s in named {
                    if set.is_match(&s) && !schemas.contains(&s) {
                        schemas.push(s);
                    }
                }
            }
            let Some(first) = schemas.first() else {
                continue;
            };
            let list: Vec<String> = schemas.iter().map(|s| format!("`{s}`")).collect();
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "This statement names the tenant schema {} (matches {}): the migration runs once per tenant, so every run \
                         would touch `{first}` instead of its own tenant",
                        list.join(", "),
                        patterns.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
                    ),
                )
                .with_help(
                    "Leave objects unqualified so each tenant's search_path resolves them; put a fix for a single \
                     tenant in a separate, approved script",
                ),
            );
        }
        out
    }
}

use globset::{Glob, GlobSet, GlobSetBuilder};
use migration_parser::{Operation, QualifiedName, Statement};

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags a statement of a per-tenant migration that creates an object outside the tenant's
    /// own schema without `IF NOT EXISTS` / `OR REPLACE`: `CREATE SCHEMA utils`, `CREATE
    /// EXTENSION`, or a table, function, view, type, domain, sequence or index qualified with a
    /// fixed schema (`public.f()`, `utils.lookup`). Schemas matching `tenant_schema_pattern` are
    /// `hardcoded-tenant-schema`'s; unqualified names resolve to each tenant's own schema and
    /// are fine; objects inside a schema the migration itself creates are covered by that
    /// schema's finding; a scratch object the migration drops again is gone before the next
    /// tenant's run.
    ///
    /// ## Why is this bad?
    /// The migration runs once per tenant. When tenants share a database (a schema per tenant),
    /// the first run creates the shared object and every later run fails on it (`42P06
    /// duplicate_schema`, `42710 duplicate_object`, `42P07 duplicate_table`, `42723
    /// duplicate_function`): the rollout stops after the first shard, with the fleet on two
    /// schema versions. With a database per tenant each run creates its own copy, which is why
    /// it passes on a single test database. Every PostgreSQL version.
    ///
    /// Severity **yellow**: it fails from the second tenant on in a schema-per-tenant fleet,
    /// and is harmless with a database per tenant, which the SQL alone cannot tell (the
    /// per-fleet rehearsal can).
    ///
    /// ## Safe alternative
    /// Make the statement idempotent, or move it to a migration run once per database before
    /// the tenant fan-out:
    /// ```sql
    /// CREATE SCHEMA IF NOT EXISTS utils;
    /// CREATE EXTENSION IF NOT EXISTS pg_trgm;
    /// CREATE OR REPLACE FUNCTION public.slugify(t text) RETURNS text
    ///     LANGUAGE sql IMMUTABLE AS $$ SELECT lower(t) $$;
    /// ```
    pub struct NonTenantObject {
        code: "DC405",
        name: "non-tenant-object",
        severity: Yellow,
    }
}

/// What a statement creates outside the tenant schema, when running it twice fails.
enum Shared<'a> {
    Schema(&'a str),
    Extension(&'a str),
    Object(&'static str, &'a QualifiedName),
}

/// Whether an operation after statement `after` drops what `what` creates: a scratch object
/// created and dropped by the same migration is gone before the next tenant's run.
fn dropped_later(ctx: &RuleContext<'_>, what: &Shared<'_>, after: usize) -> bool {
    ctx.operations()
        .filter(|(s, _)| s.index > after)
        .any(|(_, op)| match (what, op) {
            (Shared::Schema(n), Operation::DropSchema { name, .. })
            | (Shared::Extension(n), Operation::DropExtension { name, .. }) => name == n,
            (Shared::Object(_, n), Operation::DropTable { table: name, .. })
            | (Shared::Object(_, n), Operation::DropFunction { name, .. })
            | (Shared::Object(_, n), Operation::DropType { name, .. })
            | (Shared::Object(_, n), Operation::DropDomain { name, .. })
            | (Shared::Object(_, n), Operation::DropView { name, .. })
            | (Shared::Object(_, n), Operation::DropSequence { name, .. }) => name == *n,
            _ => false,
        })
}

/// The shared object `op` creates, if running it a second time fails.
fn shared<'a>(op: &'a Operation, stmt: &Statement) -> Option<Shared<'a>> {
    let if_not_exists = || stmt.sql.to_ascii_uppercase().contains("IF NOT EXISTS");
    let object =
        |kind, name: &'a QualifiedName| name.schema.is_some().then_some(Shared::Object(kind, name));
    match op {
        Operation::CreateSchema {
            name,
            if_not_exists: false,
        } => Some(Shared::Schema(name)),
        Operation::CreateExtension {
            name,
            if_not_exists: false,
        } => Some(Shared::Extension(name)),
        Operation::CreateTable {
            table,
            if_not_exists: false,
            ..
        } => object("table", table),
        Operation::CreateFunction {
            name,
            or_replace: false,
            procedure,
            ..
        } => object(if *procedure { "procedure" } else { "function" }, name),
        Operation::CreateView {
            name,
            or_replace: false,
            materialized,
            ..
        } if !(*materialized && if_not_exists()) => object("view", name),
        Operation::CreateType { name, .. } | Operation::CreateEnum { name, .. } => {
            object("type", name)
        }
        Operation::CreateDomain { name, .. } => object("domain", name),
        Operation::CreateSequence { name } if !if_not_exists() => object("sequence", name),
        Operation::CreateIndex {
            table,
            if_not_exists: false,
            name: Some(_),
            ..
        } => object("index on", table),
        _ => None,
    }
}

/// How to make creating a shared object of `kind` survive the next tenant's run.
fn object_fix(kind: &str) -> String {
    match kind {
        "function" | "procedure" | "view" => {
            format!(
                "Make it idempotent with `CREATE OR REPLACE {}`",
                kind.to_uppercase()
            )
        }
        "type" | "domain" => format!(
            "PostgreSQL has no `CREATE {} IF NOT EXISTS`: guard it with a DO block that checks the catalog",
            kind.to_uppercase()
        ),
        "index on" => "Make it idempotent with `CREATE INDEX IF NOT EXISTS`".to_string(),
        _ => format!(
            "Make it idempotent with `CREATE {} IF NOT EXISTS`",
            kind.to_uppercase()
        ),
    }
}

impl GateRule for NonTenantObject {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut tenant = GlobSetBuilder::new();
        for p in ctx.config().tenant_schema_patterns() {
            if let Ok(g) = Glob::new(p) {
                tenant.add(g);
            }
        }
        let tenant = tenant.build().unwrap_or_else(|_| GlobSet::empty());
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let Some(what) = shared(op, stmt).filter(|w| !dropped_later(ctx, w, stmt.index)) else {
                continue;
            };
            let (subject, fix) = match what {
                Shared::Schema(name) if !tenant.is_match(name) => (
                    format!(
                        "CREATE SCHEMA `{name}` creates a schema shared by every tenant of the database"
                    ),
                    format!("Make it idempotent with `CREATE SCHEMA IF NOT EXISTS {name}`"),
                ),
                Shared::Extension(name) => (
                    format!("CREATE EXTENSION `{name}` installs a database-wide extension"),
                    format!("Make it idempotent with `CREATE EXTENSION IF NOT EXISTS {name}`"),
                ),
                Shared::Object(kind, name) => {
                    let schema = name.schema.as_deref().unwrap_or_default();
                    if tenant.is_match(schema) || ctx.is_new_schema(schema, stmt.index) {
                        continue;
                    }
                    (
                        format!(
                            "This statement creates {kind} `{name}` in the fixed schema `{schema}`, shared by every tenant of the database"
                        ),
                        object_fix(kind),
                    )
                }
                Shared::Schema(_) => continue,
            };
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "{subject}: the migration runs once per tenant, so where tenants share a database the first run \
                         creates it and every later run fails (already exists), stopping the rollout after the first shard"
                    ),
                )
                .with_help(format!(
                    "{fix}; or move it to a migration run once per database, before the tenant fan-out"
                )),
            );
        }
        out
    }
}

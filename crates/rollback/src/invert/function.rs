//! Functions, procedures and triggers.

use super::sql::{identity_types, normalise_args, unqualify_function};
use super::{Inversion, Outcome, StmtExt, misrouted, qn, tx};
use crate::Reversibility;
use crate::catalog::FunctionSnap;
use crate::generator::Gen;
use crate::names::{quote_ident, quote_literal};
use migration_parser::state::Namespace;
use migration_parser::{Operation, QualifiedName, Statement};

/// The function family.
pub(crate) struct Functions;

impl Inversion for Functions {
    fn family(&self) -> &'static str {
        "function"
    }

    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::CreateFunction {
                name,
                args,
                procedure,
                ..
            } => create_function(g, name, args, *procedure),
            Operation::CreateTrigger { name, table } => {
                let create_sql = super::sql::statement_sql(&stmt.sql);
                let old = g.table(table).and_then(|t| t.triggers.get(name).cloned());
                if let Some(t) = g.table_mut(table) {
                    // Its own statement recreates it if the migration drops it again.
                    t.triggers.insert(name.clone(), create_sql.clone());
                }
                let mut v = vec![tx(format!(
                    "DROP TRIGGER {} ON {}",
                    quote_ident(name),
                    qn(table)
                ))];
                if let Some(def) = old.filter(|d| !d.is_empty()) {
                    v.push(tx(def));
                }
                Outcome::Inverse(v)
            }
            Operation::DropFunction {
                name,
                args,
                if_exists,
                procedure,
                cascade,
                ..
            } => {
                let lost = match g.key(name) {
                    Some(_) if *cascade => {
                        g.cascade_views(super::dependents::Target::Function(&name.name))
                    }
                    _ => Vec::new(),
                };
                match drop_function(g, name, args.as_deref(), *if_exists, *procedure) {
                    Outcome::Inverse(v) if !lost.is_empty() => Outcome::Partial(
                        v,
                        format!(
                            "DROP FUNCTION {name} CASCADE also dropped views created earlier in this migration ({}); \
                             they are not restored",
                            lost.join(", ")
                        ),
                    ),
                    other => other,
                }
            }
            Operation::DropTrigger {
                name,
                table,
                if_exists,
                ..
            } => {
                let def = table
                    .as_ref()
                    .and_then(|t| g.table_mut(t))
                    .and_then(|t| t.triggers.remove(name));
                match def {
                    Some(d) if !d.is_empty() => Outcome::Inverse(vec![tx(d)]),
                    Some(_) => {
                        Outcome::NoOp(format!("trigger {name} was created by this migration"))
                    }
                    None if *if_exists => {
                        Outcome::NoOp(format!("trigger {name} did not exist (IF EXISTS)"))
                    }
                    None => Outcome::Irreversible(format!(
                        "trigger {name} is not in the pre-migration catalog"
                    )),
                }
            }
            _ => misrouted(stmt),
        }
    }
}

/// `DROP FUNCTION|PROCEDURE name[(args)]`: the old definitions (every overload of the name when
/// no argument list picks one).
fn drop_function(
    g: &mut Gen<'_>,
    name: &QualifiedName,
    args: Option<&[String]>,
    if_exists: bool,
    procedure: bool,
) -> Outcome {
    let prefix = format!("{}(", name.name);
    let mut keys: Vec<String> = if g.key(name).is_some() {
        g.state
            .functions
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    // With an argument list, pick the overload whose identity arguments match.
    if let Some(a) = args
        && keys.len() > 1
    {
        let wanted = normalise_args(&format!("({})", a.join(",")));
        let types = identity_types(&a.join(","));
        keys.retain(|k| {
            normalise_args(&k[name.name.len()..]) == wanted
                || identity_types(&k[name.name.len()..]) == types
        });
    }
    if keys.is_empty() {
        return if if_exists {
            Outcome::NoOp(format!("function {name} did not exist (IF EXISTS)"))
        } else {
            Outcome::Irreversible(format!(
                "function {name} is not in the pre-migration catalog"
            ))
        };
    }
    let kw = if procedure { "PROCEDURE" } else { "FUNCTION" };
    let mut out = Vec::new();
    for k in keys {
        let Some(f) = g.state.functions.remove(&k) else {
            continue;
        };
        if f.definition.is_empty() {
            continue;
        }
        out.push(tx(unqualify_function(
            f.definition.trim_end(),
            &g.state.schema,
        )));
        if let Some(c) = &f.comment {
            out.push(tx(format!(
                "COMMENT ON {kw} {} IS {}",
                f.object_sql(),
                quote_literal(c)
            )));
        }
    }
    if out.is_empty() {
        // Created earlier in this migration: its own CREATE recreates it.
        match g.creating_sql(Namespace::Function, name) {
            Some(sql) => Outcome::Inverse(vec![tx(sql)]),
            None => Outcome::Irreversible(format!("the definition of function {name} is unknown")),
        }
    } else {
        Outcome::Inverse(out)
    }
}

/// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`: drop it, or restore the body it replaced.
fn create_function(
    g: &mut Gen<'_>,
    name: &QualifiedName,
    args: &[String],
    procedure: bool,
) -> Outcome {
    let prefix = format!("{}(", name.name);
    let wanted = normalise_args(&format!("({})", args.join(",")));
    let mut old: Vec<(String, String)> = if g.key(name).is_some() {
        g.state
            .functions
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, f)| (k.clone(), f.definition.clone()))
            .collect()
    } else {
        Vec::new()
    };
    // The overload with the same identity arguments; another overload stays as it is.
    let types = identity_types(&args.join(","));
    let same = |k: &str| {
        normalise_args(&k[name.name.len()..]) == wanted
            || identity_types(&k[name.name.len()..]) == types
    };
    old.retain(|(k, _)| same(k));
    if old.is_empty() {
        g.state.functions.insert(
            format!("{}({})", name.name, args.join(", ")),
            FunctionSnap::default(),
        );
        return Outcome::Inverse(vec![tx(format!(
            "DROP {} {}({})",
            if procedure { "PROCEDURE" } else { "FUNCTION" },
            qn(name),
            args.join(", ")
        ))]);
    }
    let schema = g.schema().to_string();
    Outcome::Inverse(
        old.iter()
            .filter(|(_, d)| !d.is_empty())
            .map(|(_, d)| {
                tx(unqualify_function(d.trim_end(), &schema)).rev(
                    Reversibility::MayFail,
                    "restores the previous body; a new overload with other arguments would stay",
                )
            })
            .collect(),
    )
}

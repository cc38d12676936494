//! Functions, procedures and triggers.

use super::sql::{strip_leading_comments, unqualify_function};
use super::{Inversion, Outcome, StmtExt, misrouted, qn, tx};
use crate::Reversibility;
use crate::generate::Gen;
use crate::names::quote_ident;
use migration_parser::{Operation, Statement};

/// The function family.
pub(crate) struct Functions;

impl Inversion for Functions {
    fn family(&self) -> &'static str {
        "function"
    }

    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::CreateFunction { name } => {
                let prefix = format!("{}(", name.name);
                let old: Vec<(String, String)> = if g.key(name).is_some() {
                    g.state
                        .functions
                        .iter()
                        .filter(|(k, _)| k.starts_with(&prefix))
                        .map(|(k, f)| (k.clone(), f.definition.clone()))
                        .collect()
                } else {
                    Vec::new()
                };
                let head: Vec<String> = strip_leading_comments(&stmt.sql)
                    .split_whitespace()
                    .take(4)
                    .map(|w| w.to_ascii_uppercase())
                    .collect();
                let procedure = head.iter().any(|w| w == "PROCEDURE");
                if old.is_empty() {
                    g.state.functions.insert(
                        format!("{}()", name.name),
                        crate::catalog::FunctionSnap::default(),
                    );
                    Outcome::Inverse(vec![tx(format!(
                        "DROP {} {}",
                        if procedure { "PROCEDURE" } else { "FUNCTION" },
                        qn(name)
                    ))])
                } else {
                    let schema = g.schema().to_string();
                    Outcome::Inverse(
                        old.iter()
                            .map(|(_, d)| {
                                tx(unqualify_function(d.trim_end(), &schema)).rev(
                                    Reversibility::MayFail,
                                    "restores the previous body; a new overload with other arguments would stay",
                                )
                            })
                            .collect(),
                    )
                }
            }
            Operation::CreateTrigger { name, table } => {
                let old = g.table(table).and_then(|t| t.triggers.get(name).cloned());
                if let Some(t) = g.table_mut(table) {
                    t.triggers.insert(name.clone(), String::new());
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
            _ => misrouted(stmt),
        }
    }
}

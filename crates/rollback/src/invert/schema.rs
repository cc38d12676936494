//! Schemas, databases and extensions.

use super::{Inversion, Outcome, misrouted, tx};
use crate::generator::Gen;
use crate::names::quote_ident;
use migration_parser::{Operation, Statement};

/// The schema family.
pub(crate) struct Schemas;

impl Inversion for Schemas {
    fn family(&self) -> &'static str {
        "schema"
    }

    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::CreateSchema {
                name,
                if_not_exists,
            } => {
                if *if_not_exists && g.state.schemas.contains(name) {
                    return Outcome::NoOp(format!("schema {name} already existed (IF NOT EXISTS)"));
                }
                g.state.schemas.insert(name.clone());
                Outcome::Inverse(vec![tx(format!("DROP SCHEMA {}", quote_ident(name)))])
            }
            Operation::DropSchema {
                name, if_exists, ..
            } => {
                if *if_exists && !g.state.schemas.contains(name) {
                    return Outcome::NoOp(format!("schema {name} did not exist (IF EXISTS)"));
                }
                Outcome::Irreversible(format!(
                    "DROP SCHEMA {name}: the objects in it (and their data) cannot be recreated from the tenant schema's catalog"
                ))
            }
            Operation::DropDatabase { name, .. } => {
                Outcome::Irreversible(format!("DROP DATABASE {name} destroys everything in it"))
            }
            Operation::CreateExtension { name, .. } => {
                if g.state.extensions.contains_key(name) {
                    return Outcome::NoOp(format!("extension {name} was already installed"));
                }
                g.state
                    .extensions
                    .insert(name.clone(), g.schema().to_string());
                Outcome::Inverse(vec![tx(format!("DROP EXTENSION {}", quote_ident(name)))])
            }
            Operation::CreateDatabase { name } => Outcome::Irreversible(format!(
                "CREATE DATABASE {name} is outside the tenant schema; it is not inverted"
            )),
            Operation::DropExtension {
                name, if_exists, ..
            } => match g.state.extensions.remove(name) {
                Some(s) => Outcome::Inverse(vec![tx(format!(
                    "CREATE EXTENSION {} SCHEMA {}",
                    quote_ident(name),
                    quote_ident(&s)
                ))]),
                None if *if_exists => {
                    Outcome::NoOp(format!("extension {name} did not exist (IF EXISTS)"))
                }
                None => Outcome::Irreversible(format!(
                    "extension {name} is not in the pre-migration catalog"
                )),
            },
            _ => misrouted(stmt),
        }
    }
}

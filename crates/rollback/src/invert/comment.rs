//! `COMMENT ON`: the previous comment from the catalog.

use super::sql::{normalise_args, split_dotted_plain};
use super::{Inversion, Outcome, misrouted, tx};
use crate::catalog::TypeSnap;
use crate::generator::Gen;
use crate::names::{quote_ident, quote_literal};
use migration_parser::{Operation, Statement};

/// The comment family.
pub(crate) struct Comments;

impl Inversion for Comments {
    fn family(&self) -> &'static str {
        "comment"
    }

    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::Comment {
                object_kind,
                object,
                text,
            } => g.comment(object_kind, object, text.as_deref()),
            _ => misrouted(stmt),
        }
    }
}

impl Gen<'_> {
    pub(crate) fn comment(&mut self, kind: &str, object: &str, _text: Option<&str>) -> Outcome {
        let parts = split_dotted_plain(object);
        let schema = self.schema().to_string();
        let in_schema = |p: &[String], n: usize| -> Option<Vec<String>> {
            // strip a leading schema qualifier equal to ours
            if p.len() == n + 1 && p[0] == schema {
                Some(p[1..].to_vec())
            } else if p.len() == n {
                Some(p.to_vec())
            } else {
                None
            }
        };
        let object_sql = parts
            .iter()
            .map(|p| quote_ident(p))
            .collect::<Vec<_>>()
            .join(".");
        let kind_up = kind.to_uppercase();
        let old: Option<Option<String>> = match kind {
            "table" => in_schema(&parts, 1).and_then(|p| {
                let t = self.state.tables.get_mut(&p[0])?;
                Some(std::mem::replace(&mut t.comment, _text.map(str::to_string)))
            }),
            "column" => in_schema(&parts, 2).and_then(|p| {
                let c = self.state.tables.get_mut(&p[0])?.column_mut(&p[1])?;
                Some(std::mem::replace(&mut c.comment, _text.map(str::to_string)))
            }),
            "view" | "materialized view" => in_schema(&parts, 1).and_then(|p| {
                let v = self.state.views.get_mut(&p[0])?;
                Some(std::mem::replace(&mut v.comment, _text.map(str::to_string)))
            }),
            "index" => in_schema(&parts, 1).and_then(|p| {
                let t = self
                    .state
                    .tables
                    .values_mut()
                    .find(|t| t.indexes.contains_key(&p[0]))?;
                let i = t.indexes.get_mut(&p[0])?;
                Some(std::mem::replace(&mut i.comment, _text.map(str::to_string)))
            }),
            "sequence" => in_schema(&parts, 1).and_then(|p| {
                let s = self.state.sequences.get_mut(&p[0])?;
                Some(std::mem::replace(&mut s.comment, _text.map(str::to_string)))
            }),
            "type" => in_schema(&parts, 1).and_then(|p| {
                let ty = self.state.types.get_mut(&p[0])?;
                let c = match ty {
                    TypeSnap::Enum { comment, .. }
                    | TypeSnap::Domain { comment, .. }
                    | TypeSnap::Composite { comment, .. } => comment,
                };
                Some(std::mem::replace(c, _text.map(str::to_string)))
            }),
            "function" | "procedure" => {
                let (name_part, args) = match object.find('(') {
                    Some(p) => (&object[..p], Some(&object[p..])),
                    None => (object, None),
                };
                let fparts = split_dotted_plain(name_part);
                in_schema(&fparts, 1).and_then(|p| {
                    let prefix = format!("{}(", p[0]);
                    let keys: Vec<String> = self
                        .state
                        .functions
                        .keys()
                        .filter(|k| k.starts_with(&prefix))
                        .cloned()
                        .collect();
                    let key = if keys.len() == 1 {
                        keys[0].clone()
                    } else {
                        let want = args.map(normalise_args)?;
                        keys.into_iter()
                            .find(|k| normalise_args(&k[p[0].len()..]) == want)?
                    };
                    let f = self.state.functions.get_mut(&key)?;
                    Some(std::mem::replace(&mut f.comment, _text.map(str::to_string)))
                })
            }
            _ => None,
        };
        let object_sql = if matches!(kind, "function" | "procedure") {
            let (name_part, args) = match object.find('(') {
                Some(p) => (&object[..p], &object[p..]),
                None => (object, ""),
            };
            format!(
                "{}{args}",
                split_dotted_plain(name_part)
                    .iter()
                    .map(|p| quote_ident(p))
                    .collect::<Vec<_>>()
                    .join(".")
            )
        } else {
            object_sql
        };
        match old {
            Some(old) => Outcome::Inverse(vec![tx(format!(
                "COMMENT ON {kind_up} {object_sql} IS {}",
                old.as_deref().map_or("NULL".to_string(), quote_literal)
            ))]),
            None => Outcome::Irreversible(format!(
                "the previous comment on {kind} {object} is unknown (object not in the pre-migration catalog)"
            )),
        }
    }
}

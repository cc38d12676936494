//! Views that depend on other objects, and their recreation at the end of the rollback.
//!
//! A `DROP … CASCADE` (of a view, table, column, function or type) also drops the views that
//! read the dropped object, and a rollback that must drop a view replaced by `CREATE OR REPLACE
//! VIEW` must drop the views that read it. The catalog records no view dependencies, so they are
//! read from the views' definitions (the relations and functions a query names, the columns and
//! types it mentions).
//!
//! A view of the shard (its pre-migration definition, under its pre-migration name) is
//! recreated at the very end of the rollback, when every column, table, function and type it
//! reads is back under its pre-migration name: a definition printed before the migration reads
//! `a`, and a column renamed to `b` by the migration is renamed back only by an earlier part of
//! the rollback. The deferred views are created in dependency order (a view after the views it
//! reads), each with its indexes and comment.

use migration_parser::{QualifiedName, statement_refs};

use super::sql::expr_idents;
use super::{qn, tx};
use crate::RollbackStatement;
use crate::catalog::ViewSnap;
use crate::generator::{Deferred, Gen};
use crate::names::quote_literal;

/// What a view may depend on.
#[derive(Clone, Copy)]
pub(crate) enum Target<'a> {
    /// A table, view or sequence of the working schema (unqualified name).
    Relation(&'a str),
    /// A column of a table.
    Column(&'a str, &'a str),
    /// A function or procedure (any overload).
    Function(&'a str),
    /// A type.
    Type(&'a str),
}

/// Does the query `definition` depend on `target`?
fn reads(definition: &str, target: Target<'_>, schema: &str) -> bool {
    let Ok(refs) = statement_refs(definition) else {
        // Not parsed: fall back to the mention of the name.
        let word = match target {
            Target::Relation(n) | Target::Function(n) | Target::Type(n) => n,
            Target::Column(_, c) => c,
        };
        return !expr_idents(definition, &[word.to_string()]).is_empty();
    };
    let here =
        |q: &QualifiedName, n: &str| q.name == n && q.schema.as_deref().is_none_or(|s| s == schema);
    match target {
        Target::Relation(n) => refs.relations.iter().any(|q| here(q, n)),
        Target::Column(t, c) => {
            refs.relations.iter().any(|q| here(q, t))
                && !expr_idents(definition, &[c.to_string()]).is_empty()
        }
        Target::Function(f) => refs.functions.iter().any(|call| here(&call.name, f)),
        Target::Type(ty) => !expr_idents(definition, &[ty.to_string()]).is_empty(),
    }
}

impl Gen<'_> {
    /// The views of the working catalog that depend on `target`, directly or through other
    /// views, readers before the views that read them.
    pub(crate) fn views_depending_on(&self, target: Target<'_>) -> Vec<String> {
        let schema = self.schema().to_string();
        let mut found: Vec<String> = Vec::new();
        let mut frontier: Vec<String> = self
            .state
            .views
            .iter()
            .filter(|(_, v)| !v.definition.is_empty() && reads(&v.definition, target, &schema))
            .map(|(n, _)| n.clone())
            .collect();
        while let Some(n) = frontier.pop() {
            if found.contains(&n) {
                continue;
            }
            found.push(n.clone());
            for (m, v) in &self.state.views {
                if !found.contains(m)
                    && !v.definition.is_empty()
                    && reads(&v.definition, Target::Relation(&n), &schema)
                {
                    frontier.push(m.clone());
                }
            }
        }
        found
    }

    /// The view `name` (working schema), removed from the working catalog, is a view of the
    /// shard under its own name: recreate it at the end of the rollback. `false` when it is not
    /// (created or renamed by the migration) and the caller must recreate it in place.
    pub(crate) fn defer_view(&mut self, name: &str, view: &ViewSnap) -> bool {
        if self.pre_views.get(name) != Some(view) {
            return false;
        }
        let statement = self.step.statement;
        match self.deferred.iter_mut().find(|d| d.name == name) {
            // Already coming back: the latest statement that drops it is the one it undoes
            // (an earlier one, e.g. an enum rebuilt around the view, has statements of its own).
            Some(d) => d.statement = statement,
            None => self.deferred.push(Deferred {
                name: name.to_string(),
                view: view.clone(),
                statement,
            }),
        }
        true
    }

    /// Run `statements` at the end of the rollback (before the deferred views), as the undo of
    /// the current operation.
    pub(crate) fn defer_statements(&mut self, statements: Vec<RollbackStatement>) {
        let statement = self.step.statement;
        self.deferred_statements
            .extend(statements.into_iter().map(|mut s| {
                s.source_statement = statement;
                s
            }));
    }

    /// `DROP … CASCADE` of `target` took the views that depend on it: remove them from the
    /// working catalog and recreate them at the end of the rollback. Returns the names of the
    /// views that cannot be recreated (created by the migration and not from the shard).
    pub(crate) fn cascade_views(&mut self, target: Target<'_>) -> Vec<String> {
        let mut lost = Vec::new();
        for n in self.views_depending_on(target) {
            if let Some(v) = self.state.views.remove(&n)
                && !self.defer_view(&n, &v)
            {
                lost.push(n);
            }
        }
        lost
    }
}

/// The deferred views' statements, in dependency order, each tagged with its statement.
pub(crate) fn deferred_sql(deferred: &[Deferred], schema: &str) -> Vec<RollbackStatement> {
    let mut left: Vec<&Deferred> = deferred.iter().collect();
    let mut out = Vec::new();
    while !left.is_empty() {
        // The first view that reads no other view still to be created (or the first, on a
        // cycle — which PostgreSQL does not allow between views anyway).
        let pick = left
            .iter()
            .position(|d| {
                !left.iter().any(|o| {
                    o.name != d.name && reads(&d.view.definition, Target::Relation(&o.name), schema)
                })
            })
            .unwrap_or(0);
        let d = left.remove(pick);
        for mut s in view_sql(&QualifiedName::new(d.name.clone()), &d.view) {
            s.source_statement = d.statement;
            s.note = Some("a view of the shard, recreated once what it reads is restored".into());
            out.push(s);
        }
    }
    out
}

/// `CREATE [MATERIALIZED] VIEW` from a definition of the catalog, with its indexes and comment.
pub(crate) fn view_sql(name: &QualifiedName, v: &ViewSnap) -> Vec<RollbackStatement> {
    let kw = if v.materialized {
        "MATERIALIZED VIEW"
    } else {
        "VIEW"
    };
    let mut out = vec![tx(format!(
        "CREATE {kw} {} AS {}",
        qn(name),
        v.definition.trim().trim_end_matches(';')
    ))];
    for (iname, i) in &v.indexes {
        out.push(tx(i.definition.clone()));
        if let Some(c) = &i.comment {
            out.push(tx(format!(
                "COMMENT ON INDEX {} IS {}",
                qn(&name.sibling(iname.clone())),
                quote_literal(c)
            )));
        }
    }
    if let Some(c) = &v.comment {
        out.push(tx(format!(
            "COMMENT ON {kw} {} IS {}",
            qn(name),
            quote_literal(c)
        )));
    }
    out
}

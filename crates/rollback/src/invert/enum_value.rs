//! The undo of `ALTER TYPE t ADD VALUE 'v'`. PostgreSQL cannot drop an enum value, so the type
//! is rebuilt without it: the old type renamed aside, a new one created with the previous
//! labels, every column of the schema that uses the type (or an array of it) converted through
//! `text`, and the old type dropped. The views that read those columns are dropped first and come
//! back at the end of the rollback. Fails, as it should, when rows hold the value.

use migration_parser::QualifiedName;
use migration_parser::state::Namespace;

use super::dependents::Target;
use super::{Outcome, StmtExt, qn, sibling, tx};
use crate::generator::Gen;
use crate::names::{choose_name, quote_ident, quote_literal};
use crate::{Reversibility, RollbackStatement};

/// The columns of the working catalog whose type is `ty` or an array of it: (table, column,
/// is array, default).
fn columns_of_type(g: &Gen<'_>, ty: &str) -> Vec<(String, String, bool, Option<String>)> {
    let mut out = Vec::new();
    for (tn, t) in &g.state.tables {
        for c in &t.columns {
            let base = c.data_type.trim_end_matches("[]");
            let base = base.rsplit('.').next().unwrap_or(base).trim_matches('"');
            if base == ty {
                let array = c.data_type.ends_with("[]");
                out.push((tn.clone(), c.name.clone(), array, c.default.clone()));
            }
        }
    }
    out
}

/// The rollback of adding `value` to the enum `name`, whose labels were `labels` before.
pub(crate) fn remove_enum_value(
    g: &mut Gen<'_>,
    name: &QualifiedName,
    value: &str,
    labels: &[String],
) -> Outcome {
    if g.names.resolve(Namespace::Type, name, g.step).is_created() {
        return Outcome::NoOp(format!(
            "enum {name} is created by this migration; the rollback drops it"
        ));
    }
    let Some(key) = g.key(name) else {
        return Outcome::Irreversible(format!(
            "enum {name} is in another schema than the tenant's; its columns are not known"
        ));
    };
    let aside = choose_name(&key, None, "deployclaw_old", |n| {
        g.state.types.contains_key(n)
    });
    let columns = columns_of_type(g, &key);
    let mut v: Vec<RollbackStatement> = Vec::new();
    // Views over the columns (or the type) block the conversion: drop them, recreate at the end.
    let mut views: Vec<String> = g.views_depending_on(Target::Type(&key));
    for (t, c, _, _) in &columns {
        for r in g.views_depending_on(Target::Column(t, c)) {
            if !views.contains(&r) {
                views.push(r);
            }
        }
    }
    let mut lost = Vec::new();
    for r in views.iter().rev() {
        let Some(view) = g.state.views.get(r).cloned() else {
            continue;
        };
        let kw = if view.materialized {
            "MATERIALIZED VIEW"
        } else {
            "VIEW"
        };
        v.push(tx(format!(
            "DROP {kw} IF EXISTS {} CASCADE",
            sibling(name, r)
        )));
        if !g.defer_view(r, &view) {
            lost.push(r.clone());
        }
    }
    v.push(tx(format!(
        "ALTER TYPE {} RENAME TO {}",
        qn(name),
        quote_ident(&aside)
    )));
    v.push(tx(format!(
        "CREATE TYPE {} AS ENUM ({})",
        qn(name),
        labels
            .iter()
            .map(|l| quote_literal(l))
            .collect::<Vec<_>>()
            .join(", ")
    )));
    let mut recreate = Vec::new();
    for (t, c, _, _) in &columns {
        if let Some(snap) = g.state.tables.get(t) {
            let (drop, create) =
                super::column::reparsed_dependents(&name.sibling(t.clone()), c, snap);
            v.extend(drop);
            recreate.extend(create);
        }
    }
    for (t, c, array, default) in &columns {
        let qt = sibling(name, t);
        let qc = quote_ident(c);
        if default.is_some() {
            v.push(tx(format!(
                "ALTER TABLE {qt} ALTER COLUMN {qc} DROP DEFAULT"
            )));
        }
        let (ty, via) = if *array {
            (format!("{}[]", qn(name)), "text[]")
        } else {
            (qn(name), "text")
        };
        v.push(
            tx(format!(
                "ALTER TABLE {qt} ALTER COLUMN {qc} TYPE {ty} USING {qc}::{via}::{ty}"
            ))
            .rev(
                Reversibility::MayFail,
                format!("fails while rows of {t}.{c} hold {}", quote_literal(value)),
            ),
        );
        if let Some(d) = default {
            v.push(tx(format!(
                "ALTER TABLE {qt} ALTER COLUMN {qc} SET DEFAULT {d}"
            )));
        }
    }
    v.push(tx(format!("DROP TYPE {}", sibling(name, &aside))));
    v.extend(recreate);
    if lost.is_empty() {
        Outcome::Inverse(v)
    } else {
        Outcome::Partial(
            v,
            format!(
                "views created by this migration over {name} ({}) are dropped and not recreated",
                lost.join(", ")
            ),
        )
    }
}

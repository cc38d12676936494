//! Columns: add, drop (re-added with what used it), rename, type, `NOT NULL`, default.

use super::sql::{column_sql, concurrent_index, sequence_sql};
use super::{Inversion, Outcome, StmtExt, misrouted, no_tx, qn, sibling, tx};
use crate::catalog::{ColumnSnap, SequenceSnap, TableSnap};
use crate::generator::Gen;
use crate::names::{make_object_name, quote_ident, quote_literal};
use crate::{Reversibility, RollbackStatement};
use migration_parser::{
    ColumnDef, ConstraintDef, ConstraintKind, Operation, QualifiedName, Statement,
};

/// The column family.
pub(crate) struct Columns;

impl Inversion for Columns {
    fn family(&self) -> &'static str {
        "column"
    }

    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::AddColumn {
                table,
                column,
                if_not_exists,
            } => {
                if *if_not_exists
                    && g.table(table)
                        .and_then(|t| t.column(&column.name))
                        .is_some()
                {
                    return Outcome::NoOp(format!(
                        "column {}.{} already existed (IF NOT EXISTS)",
                        table, column.name
                    ));
                }
                g.apply_add_column(table, column);
                Outcome::Inverse(vec![tx(format!(
                    "ALTER TABLE {} DROP COLUMN {}",
                    qn(table),
                    quote_ident(&column.name)
                ))])
            }
            Operation::DropColumn {
                table,
                column,
                if_exists,
                cascade,
            } => g.drop_column(table, column, *if_exists, *cascade),
            Operation::RenameColumn {
                table,
                column,
                new_name,
            } => {
                if let Some(t) = g.table_mut(table) {
                    rename_column_in(t, column, new_name);
                }
                let tname = table.name.clone();
                for s in g.state.sequences.values_mut() {
                    if let Some((t, c)) = &mut s.owned_by
                        && *t == tname
                        && c == column
                    {
                        *c = new_name.clone();
                    }
                }
                Outcome::Inverse(vec![tx(format!(
                    "ALTER TABLE {} RENAME COLUMN {} TO {}",
                    qn(table),
                    quote_ident(new_name),
                    quote_ident(column)
                ))])
            }
            Operation::AlterColumnType {
                table,
                column,
                new_type,
                collation,
                using,
            } => g.alter_type(
                table,
                column,
                new_type,
                collation.as_deref(),
                using.as_deref(),
            ),
            Operation::SetNotNull { table, column } => {
                let before = g
                    .table(table)
                    .and_then(|t| t.column(column))
                    .map(|c| c.not_null);
                if let Some(c) = g.table_mut(table).and_then(|t| t.column_mut(column)) {
                    c.not_null = true;
                }
                match before {
                    Some(true) => {
                        Outcome::NoOp(format!("{}.{} was already NOT NULL", table, column))
                    }
                    _ => Outcome::Inverse(vec![tx(format!(
                        "ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL",
                        qn(table),
                        quote_ident(column)
                    ))]),
                }
            }
            Operation::DropNotNull { table, column } => {
                let before = g
                    .table(table)
                    .and_then(|t| t.column(column))
                    .map(|c| c.not_null);
                if let Some(c) = g.table_mut(table).and_then(|t| t.column_mut(column)) {
                    c.not_null = false;
                }
                match before {
                    Some(false) => {
                        Outcome::NoOp(format!("{}.{} was already nullable", table, column))
                    }
                    _ => Outcome::Inverse(vec![
                        tx(format!(
                            "ALTER TABLE {} ALTER COLUMN {} SET NOT NULL",
                            qn(table),
                            quote_ident(column)
                        ))
                        .rev(
                            Reversibility::MayFail,
                            "fails if NULLs were written after the migration",
                        ),
                    ]),
                }
            }
            Operation::SetDefault {
                table,
                column,
                default,
            } => {
                let Some(c) = g.table_mut(table).and_then(|t| t.column_mut(column)) else {
                    return Outcome::Irreversible(format!(
                        "the previous default of {}.{} is unknown (column not in the pre-migration catalog)",
                        table, column
                    ));
                };
                let old = c.default.replace(default.sql.clone());
                Outcome::Inverse(vec![tx(restore_default(table, column, old.as_deref()))])
            }
            Operation::DropDefault { table, column } => {
                let Some(c) = g.table_mut(table).and_then(|t| t.column_mut(column)) else {
                    return Outcome::Irreversible(format!(
                        "the previous default of {}.{} is unknown (column not in the pre-migration catalog)",
                        table, column
                    ));
                };
                match c.default.take() {
                    Some(old) => {
                        Outcome::Inverse(vec![tx(restore_default(table, column, Some(&old)))])
                    }
                    None => Outcome::NoOp(format!("{}.{} had no default", table, column)),
                }
            }
            _ => misrouted(stmt),
        }
    }
}

impl Gen<'_> {
    pub(crate) fn apply_add_column(&mut self, table: &QualifiedName, c: &ColumnDef) {
        let Some(k) = self.key(table) else { return };
        let tname = k.clone();
        let col = ColumnSnap {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            not_null: c.not_null || c.primary_key,
            default: c.default.as_ref().map(|d| d.sql.clone()),
            collation: c.collation.clone(),
            identity: c.identity.then(|| "BY DEFAULT".to_string()),
            generated: None,
            comment: None,
        };
        if let Some(t) = self.state.tables.get_mut(&k) {
            t.columns.push(col);
        } else {
            return;
        }
        if c.serial {
            let seq = make_object_name(&tname, Some(&c.name), Some("seq"));
            self.state.sequences.insert(
                seq,
                SequenceSnap {
                    owned_by: Some((tname.clone(), c.name.clone())),
                    ..Default::default()
                },
            );
        }
        let cols = vec![c.name.clone()];
        if c.primary_key {
            self.register_constraint(
                table,
                &ConstraintDef {
                    name: None,
                    kind: ConstraintKind::PrimaryKey {
                        columns: cols.clone(),
                        using_index: None,
                    },
                    not_valid: false,
                },
            );
        }
        if c.unique {
            self.register_constraint(
                table,
                &ConstraintDef {
                    name: None,
                    kind: ConstraintKind::Unique {
                        columns: cols.clone(),
                        using_index: None,
                        nulls_not_distinct: false,
                    },
                    not_valid: false,
                },
            );
        }
        if let Some(ConstraintKind::ForeignKey {
            ref_table,
            ref_columns,
            on_delete,
            on_update,
            match_full,
            ..
        }) = &c.references
        {
            self.register_constraint(
                table,
                &ConstraintDef {
                    name: None,
                    kind: ConstraintKind::ForeignKey {
                        columns: cols.clone(),
                        ref_table: ref_table.clone(),
                        ref_columns: ref_columns.clone(),
                        on_delete: *on_delete,
                        on_update: *on_update,
                        match_full: *match_full,
                    },
                    not_valid: false,
                },
            );
        }
        if let Some(e) = &c.check {
            self.register_constraint(
                table,
                &ConstraintDef {
                    name: None,
                    kind: ConstraintKind::Check { expr: e.clone() },
                    not_valid: false,
                },
            );
        }
    }

    pub(crate) fn drop_column(
        &mut self,
        table: &QualifiedName,
        column: &str,
        if_exists: bool,
        cascade: bool,
    ) -> Outcome {
        let Some(t) = self.table(table).cloned() else {
            return Outcome::Irreversible(format!(
                "table {table} is not in the pre-migration catalog; cannot re-add {column}"
            ));
        };
        let Some(col) = t.column(column).cloned() else {
            return if if_exists {
                Outcome::NoOp(format!("column {table}.{column} did not exist (IF EXISTS)"))
            } else {
                Outcome::Irreversible(format!(
                    "column {table}.{column} is not in the pre-migration catalog"
                ))
            };
        };
        let k = table.name.clone();
        let q = qn(table);
        let loss = Reversibility::DataLoss;
        let mut v = Vec::new();
        let owned = self.owned_sequences(&k, Some(column));
        for (n, s) in &owned {
            if !s.data_type.is_empty() {
                v.push(
                    tx(sequence_sql(&sibling(table, n), s)).rev(loss, "sequence position restarts"),
                );
            }
        }
        let fills = col.default.is_some() || col.identity.is_some() || col.generated.is_some();
        v.push(
            tx(format!(
                "ALTER TABLE {q} ADD COLUMN {}",
                column_sql(&col, fills)
            ))
            .rev(
                loss,
                format!("re-adds {table}.{column}; its values are gone"),
            ),
        );
        if col.not_null && !fills {
            v.push(
                tx(format!(
                    "ALTER TABLE {q} ALTER COLUMN {} SET NOT NULL",
                    quote_ident(column)
                ))
                .rev(
                    Reversibility::MayFail,
                    "fails on a table with rows: the dropped values must be backfilled first",
                ),
            );
        }
        for (n, s) in &owned {
            if !s.data_type.is_empty() {
                v.push(tx(format!(
                    "ALTER SEQUENCE {} OWNED BY {q}.{}",
                    sibling(table, n),
                    quote_ident(column)
                )));
            }
        }
        if let Some(cm) = &col.comment {
            v.push(tx(format!(
                "COMMENT ON COLUMN {q}.{} IS {}",
                quote_ident(column),
                quote_literal(cm)
            )));
        }
        // Constraints and indexes that used the column went with it.
        let dropped_idx = self.readd_column_dependents(table, &t, column, &mut v);
        // Foreign keys of other tables that relied on a unique key over the column (CASCADE).
        if cascade {
            v.extend(self.readd_referencing_fks(table, |tn, f| {
                tn != k && f.index.as_ref().is_some_and(|i| dropped_idx.contains(i))
            }));
        }
        let mut notes = format!(
            "DROP COLUMN {table}.{column}: its values are lost; the rollback re-adds the column empty"
        );
        if col.default.is_some() {
            notes.push_str(" (filled with its default)");
        }
        if cascade {
            let lost = self.cascade_views(super::dependents::Target::Column(&k, column));
            if !lost.is_empty() {
                notes.push_str(&format!(
                    "; CASCADE also dropped views created earlier in this migration ({}), which are not restored",
                    lost.join(", ")
                ));
            }
        }
        // Apply.
        if let Some(tm) = self.table_mut(table) {
            tm.columns.retain(|c| c.name != column);
            tm.constraints
                .retain(|_, c| c.inherited || !c.columns.iter().any(|x| x == column));
            for i in &dropped_idx {
                tm.indexes.remove(i);
            }
        }
        for (n, _) in owned {
            self.state.sequences.remove(&n);
        }
        if t.origin.is_none() {
            return Outcome::Inverse(v);
        }
        Outcome::Partial(v, notes)
    }

    /// Re-add the constraints and indexes of `t` that use `column` (a `DROP COLUMN` took them
    /// along) to `v`; returns the names of the indexes that went.
    fn readd_column_dependents(
        &mut self,
        table: &QualifiedName,
        t: &TableSnap,
        column: &str,
        v: &mut Vec<RollbackStatement>,
    ) -> Vec<String> {
        let q = qn(table);
        let k = table.name.clone();
        let mut dropped_idx: Vec<String> = Vec::new();
        for (cn, c) in &t.constraints {
            if c.inherited || !c.columns.iter().any(|x| x == column) {
                continue;
            }
            if let Some(ix) = &c.index
                && matches!(c.kind.as_str(), "p" | "u" | "x")
            {
                dropped_idx.push(ix.clone());
            }
            let mut r = if matches!(c.kind.as_str(), "f" | "c") {
                self.readd_fk_or_check(&q, &k, cn, c)
            } else {
                vec![tx(format!(
                    "ALTER TABLE {q} ADD CONSTRAINT {} {}",
                    quote_ident(cn),
                    c.definition
                ))]
            };
            if let Some(cm) = &c.comment {
                r.push(tx(format!(
                    "COMMENT ON CONSTRAINT {} ON {q} IS {}",
                    quote_ident(cn),
                    quote_literal(cm)
                )));
            }
            // A foreign key or check of the shard under its own names: at the end of the
            // rollback, where the names its definition reads are the shard's again.
            let of_shard =
                t.origin.as_deref() == Some(k.as_str()) && c.origin.as_deref() == Some(cn);
            if matches!(c.kind.as_str(), "f" | "c") && of_shard {
                self.defer_statements(r);
            } else {
                v.append(&mut r);
            }
        }
        let mut idx_stmts = Vec::new();
        for (iname, i) in &t.indexes {
            if i.constraint || !i.columns.iter().any(|x| x == column) {
                continue;
            }
            dropped_idx.push(iname.clone());
            if i.definition.is_empty() {
                continue;
            }
            if self.opts.concurrently && t.kind != "p" {
                idx_stmts.push(no_tx(concurrent_index(&i.definition)));
            } else {
                idx_stmts.push(tx(i.definition.clone()));
            }
            if let Some(cm) = &i.comment {
                idx_stmts.push(tx(format!(
                    "COMMENT ON INDEX {} IS {}",
                    sibling(table, iname),
                    quote_literal(cm)
                )));
            }
        }
        v.extend(idx_stmts);
        dropped_idx
    }

    pub(crate) fn alter_type(
        &mut self,
        table: &QualifiedName,
        column: &str,
        new_type: &str,
        collation: Option<&str>,
        using: Option<&str>,
    ) -> Outcome {
        let Some(col) = self.table(table).and_then(|t| t.column(column)).cloned() else {
            return Outcome::Irreversible(format!(
                "the previous type of {table}.{column} is unknown (column not in the pre-migration catalog)"
            ));
        };
        if let Some(c) = self.table_mut(table).and_then(|t| t.column_mut(column)) {
            c.data_type = new_type.to_string();
            c.collation = collation.map(str::to_string);
        }
        let q = qn(table);
        let qc = quote_ident(column);
        let (mut rev, mut note) = narrowing(new_type, &col.data_type);
        let reverse = super::using::reverse_using(&super::using::TypeChange {
            column,
            old_type: &col.data_type,
            new_type,
            forward_using: using,
            old_labels: self.enum_labels(&col.data_type),
            new_is_enum: self.enum_labels(new_type).is_some(),
        });
        if let Some(u) = using {
            let plain = u.replace(['"', ' '], "").to_ascii_lowercase();
            let trivial = plain == column.to_ascii_lowercase()
                || plain.starts_with(&format!("{}::", column.to_ascii_lowercase()));
            if reverse.derived {
                (rev, note) = match &reverse.lossy {
                    None => (
                        Reversibility::Exact,
                        format!("the mapping of USING {u} turned around"),
                    ),
                    Some(why) => (Reversibility::MayLoseData, why.clone()),
                };
            } else if !trivial {
                if rev == Reversibility::Exact {
                    rev = Reversibility::MayFail;
                }
                note = format!(
                    "{note}; the migration converted with USING {u}, whose inverse is not derived automatically"
                );
            }
        }
        let mut s = format!("ALTER TABLE {q} ALTER COLUMN {qc} TYPE {}", col.data_type);
        if let Some(c) = &col.collation {
            s.push_str(&format!(" COLLATE {c}"));
        }
        s.push_str(&format!(" USING {}", reverse.sql));
        let (drop, create) = reparsed_dependents(
            table,
            column,
            &self.table(table).cloned().unwrap_or_default(),
        );
        let mut v = drop;
        if let Some(d) = &col.default {
            v.push(tx(format!(
                "ALTER TABLE {q} ALTER COLUMN {qc} DROP DEFAULT"
            )));
            v.push(tx(s).rev(rev, note));
            v.push(tx(format!(
                "ALTER TABLE {q} ALTER COLUMN {qc} SET DEFAULT {d}"
            )));
        } else {
            v.push(tx(s).rev(rev, note));
        }
        v.extend(create);
        Outcome::Inverse(v)
    }
}

/// The partial and expression indexes and the checks over `column` of `t`, dropped before a
/// type change of the column (first list) and recreated from their definitions after it (second
/// list): PostgreSQL rebuilds them from their text at each type change, so a predicate such as
/// `c <> 0` would come back as `c::double precision <> 0::double precision`, and a literal cast to
/// an enum renamed aside would no longer compare with the new enum.
pub(crate) fn reparsed_dependents(
    table: &QualifiedName,
    column: &str,
    t: &TableSnap,
) -> (Vec<RollbackStatement>, Vec<RollbackStatement>) {
    let q = qn(table);
    let (mut drop, mut create) = (Vec::new(), Vec::new());
    for (n, i) in &t.indexes {
        let on_column = i.columns.iter().any(|c| c == column);
        if on_column && !i.constraint && !i.definition.is_empty() && reparsed_index(&i.definition) {
            drop.push(tx(format!("DROP INDEX {}", sibling(table, n))));
            create.push(tx(i.definition.clone()));
        }
    }
    for (n, c) in &t.constraints {
        if c.kind == "c" && !c.inherited && c.columns.iter().any(|x| x == column) {
            drop.push(tx(format!(
                "ALTER TABLE {q} DROP CONSTRAINT {}",
                quote_ident(n)
            )));
            create.push(tx(format!(
                "ALTER TABLE {q} ADD CONSTRAINT {} {}",
                quote_ident(n),
                c.definition
            )));
        }
    }
    (drop, create)
}

/// An index definition with a predicate or an expression (whose text a type change rewrites).
fn reparsed_index(def: &str) -> bool {
    if def.contains(" WHERE ") {
        return true;
    }
    // `… USING method (keys)`: an expression key holds a parenthesis or a cast of its own.
    def.split_once(" USING ")
        .and_then(|(_, r)| r.split_once('('))
        .is_some_and(|(_, keys)| keys.contains('(') || keys.contains("::"))
}

fn restore_default(table: &QualifiedName, column: &str, old: Option<&str>) -> String {
    match old {
        Some(d) => format!(
            "ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {d}",
            qn(table),
            quote_ident(column)
        ),
        None => format!(
            "ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT",
            qn(table),
            quote_ident(column)
        ),
    }
}

fn rename_column_in(t: &mut TableSnap, old: &str, new: &str) {
    if let Some(c) = t.column_mut(old) {
        c.name = new.to_string();
    }
    for c in t.constraints.values_mut() {
        for x in &mut c.columns {
            if x == old {
                *x = new.to_string();
            }
        }
    }
    for i in t.indexes.values_mut() {
        for x in &mut i.columns {
            if x == old {
                *x = new.to_string();
            }
        }
    }
}

/// Is the cast from the type after the migration back to the old one lossy?
fn narrowing(new_type: &str, old_type: &str) -> (Reversibility, String) {
    let n = new_type.trim().to_ascii_lowercase();
    let o = old_type.trim().to_ascii_lowercase();
    let int_rank = |t: &str| -> Option<u8> {
        match t {
            "smallint" | "int2" => Some(1),
            "integer" | "int" | "int4" | "serial" => Some(2),
            "bigint" | "int8" | "bigserial" => Some(3),
            _ => None,
        }
    };
    let texty = |t: &str| {
        t == "text"
            || t.starts_with("character varying")
            || t.starts_with("varchar")
            || t.starts_with("char")
    };
    let len = |t: &str| -> Option<u32> {
        t.split_once('(')
            .and_then(|(_, r)| r.trim_end_matches(')').trim().parse().ok())
    };
    if n == o {
        return (Reversibility::Exact, "same type".into());
    }
    if let (Some(a), Some(b)) = (int_rank(&n), int_rank(&o)) {
        return if a <= b {
            (Reversibility::Exact, format!("{n} fits in {o}"))
        } else {
            (
                Reversibility::MayFail,
                format!(
                    "{n} values outside the {o} range make the cast back fail (integer out of range)"
                ),
            )
        };
    }
    if texty(&n) && texty(&o) {
        return match (len(&n), len(&o)) {
            (_, None) if o == "text" || o.starts_with("character varying") && len(&o).is_none() => {
                (Reversibility::Exact, format!("{o} holds every {n} value"))
            }
            (Some(a), Some(b)) if a <= b => (Reversibility::Exact, format!("{n} fits in {o}")),
            _ => (
                Reversibility::MayLoseData,
                format!(
                    "casting {n} back to {o} silently truncates values longer than {} characters",
                    len(&o).unwrap_or(0)
                ),
            ),
        };
    }
    if n.starts_with("numeric") || n.starts_with("double") || n == "real" {
        if int_rank(&o).is_some() {
            return (
                Reversibility::MayLoseData,
                format!("casting {n} back to {o} rounds fractions and may overflow"),
            );
        }
        if o.starts_with("numeric(") || o == "real" {
            return (
                Reversibility::MayLoseData,
                format!("casting {n} back to {o} may round or overflow"),
            );
        }
    }
    if n.starts_with("timestamp") && o.starts_with("timestamp") {
        return (
            Reversibility::MayLoseData,
            format!("casting {n} back to {o} converts through the session time zone"),
        );
    }
    if texty(&o) && o == "text" {
        return (Reversibility::Exact, "every value has a text form".into());
    }
    (
        Reversibility::MayFail,
        format!("the cast from {n} back to {o} may fail for values written after the migration"),
    )
}

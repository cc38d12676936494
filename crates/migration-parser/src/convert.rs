//! sqlparser AST → [`Operation`]s.

use sqlparser::ast::{
    self, AlterColumnOperation, AlterTableOperation, AlterTypeOperation, ColumnOption,
    ContextModifier, DetachPartitionMode, DropBehavior, FromTable, LockTableMode, ObjectName,
    ObjectType, ReferentialAction, RenameTableNameKind, SchemaName, SetExpr, TableConstraint,
    TableFactor, TableObject, UserDefinedTypeRepresentation,
};

use crate::actions::{AlterTableAction, MaintenanceCommand, TypeAttribute, TypeRepresentation};
use crate::locks::LockMode;
use crate::model::{
    ColumnDef, ConstraintDef, ConstraintKind, Expr, FkAction, Operation, QualifiedName, TxControl,
};
use crate::names::{dotted, ident, last_name, lower_sql, qname};
use crate::volatility::classify;

fn data_type(dt: &ast::DataType) -> String {
    lower_sql(&dt.to_string())
}

fn expr(e: &ast::Expr) -> Expr {
    Expr {
        sql: e.to_string(),
        volatility: classify(e),
    }
}

fn fk_action(a: Option<ReferentialAction>) -> FkAction {
    match a {
        None | Some(ReferentialAction::NoAction) => FkAction::NoAction,
        Some(ReferentialAction::Restrict) => FkAction::Restrict,
        Some(ReferentialAction::Cascade) => FkAction::Cascade,
        Some(ReferentialAction::SetNull) => FkAction::SetNull,
        Some(ReferentialAction::SetDefault) => FkAction::SetDefault,
    }
}

fn index_column(c: &ast::IndexColumn) -> String {
    match &c.column.expr {
        ast::Expr::Identifier(i) => ident(i),
        other => other.to_string(),
    }
}

fn fk_kind(fk: &ast::ForeignKeyConstraint) -> ConstraintKind {
    ConstraintKind::ForeignKey {
        columns: fk.columns.iter().map(ident).collect(),
        ref_table: qname(&fk.foreign_table),
        ref_columns: fk.referred_columns.iter().map(ident).collect(),
        on_delete: fk_action(fk.on_delete),
        on_update: fk_action(fk.on_update),
        match_full: matches!(fk.match_kind, Some(ast::ConstraintReferenceMatchKind::Full)),
    }
}

/// A table constraint; `None` for MySQL-only forms that PostgreSQL does not have.
pub(crate) fn constraint(c: &TableConstraint, not_valid: bool) -> Option<ConstraintDef> {
    let (name, kind) = match c {
        TableConstraint::Unique(u) => (
            u.name.as_ref(),
            ConstraintKind::Unique {
                columns: u.columns.iter().map(index_column).collect(),
                using_index: None,
                nulls_not_distinct: matches!(
                    u.nulls_distinct,
                    ast::NullsDistinctOption::NotDistinct
                ),
            },
        ),
        TableConstraint::PrimaryKey(p) => (
            p.name.as_ref(),
            ConstraintKind::PrimaryKey {
                columns: p.columns.iter().map(index_column).collect(),
                using_index: None,
            },
        ),
        TableConstraint::ForeignKey(fk) => (fk.name.as_ref(), fk_kind(fk)),
        TableConstraint::Check(ch) => (
            ch.name.as_ref(),
            ConstraintKind::Check {
                expr: ch.expr.to_string(),
            },
        ),
        TableConstraint::PrimaryKeyUsingIndex(u) => (
            u.name.as_ref(),
            ConstraintKind::PrimaryKey {
                columns: Vec::new(),
                using_index: Some(ident(&u.index_name)),
            },
        ),
        TableConstraint::UniqueUsingIndex(u) => (
            u.name.as_ref(),
            ConstraintKind::Unique {
                columns: Vec::new(),
                using_index: Some(ident(&u.index_name)),
                nulls_not_distinct: false,
            },
        ),
        TableConstraint::Exclude(x) => (
            x.name.as_ref(),
            ConstraintKind::Exclusion { sql: x.to_string() },
        ),
        TableConstraint::Index(_) | TableConstraint::FulltextOrSpatial(_) => return None,
    };
    Some(ConstraintDef {
        name: name.map(ident),
        kind,
        not_valid,
    })
}

const SERIAL_TYPES: [&str; 6] = [
    "serial",
    "bigserial",
    "smallserial",
    "serial4",
    "serial8",
    "serial2",
];

/// A column definition.
pub(crate) fn column(cd: &ast::ColumnDef) -> ColumnDef {
    let dt = data_type(&cd.data_type);
    let mut col = ColumnDef {
        name: ident(&cd.name),
        serial: SERIAL_TYPES.contains(&dt.as_str()),
        data_type: dt,
        not_null: false,
        default: None,
        primary_key: false,
        unique: false,
        references: None,
        check: None,
        identity: false,
        generated_stored: false,
        collation: None,
    };
    for o in &cd.options {
        match &o.option {
            ColumnOption::NotNull => col.not_null = true,
            ColumnOption::Null => col.not_null = false,
            ColumnOption::Default(e) => col.default = Some(expr(e)),
            ColumnOption::PrimaryKey(_) => {
                col.primary_key = true;
                col.not_null = true;
            }
            ColumnOption::Unique(_) => col.unique = true,
            ColumnOption::ForeignKey(fk) => col.references = Some(fk_kind(fk)),
            ColumnOption::Check(c) => col.check = Some(c.expr.to_string()),
            ColumnOption::Collation(n) => col.collation = Some(dotted(n)),
            ColumnOption::Generated {
                generation_expr, ..
            } => {
                if generation_expr.is_some() {
                    col.generated_stored = true;
                } else {
                    col.identity = true;
                    col.not_null = true;
                }
            }
            ColumnOption::Identity(_) => {
                col.identity = true;
                col.not_null = true;
            }
            _ => {}
        }
    }
    if col.serial {
        col.not_null = true;
    }
    col
}

fn cascade(b: &Option<DropBehavior>) -> bool {
    matches!(b, Some(DropBehavior::Cascade))
}

/// Short lower-cased description of an ALTER TABLE action we do not model in detail.
fn other_action(op: &AlterTableOperation) -> String {
    let s = lower_sql(&op.to_string());
    let words: Vec<&str> = s.split_whitespace().take(3).collect();
    words.join(" ")
}

/// An `ALTER TABLE` action without an operation of its own.
fn table_action(op: &AlterTableOperation) -> AlterTableAction {
    use AlterTableAction as A;
    use AlterTableOperation as O;
    match op {
        O::SetLogged => A::SetLogged,
        O::SetUnlogged => A::SetUnlogged,
        O::SetOptionsParens { .. } => A::SetStorageParameters,
        O::ResetOptions { .. } => A::ResetStorageParameters,
        O::ReplicaIdentity { .. } => A::ReplicaIdentity,
        O::EnableRowLevelSecurity => A::EnableRowLevelSecurity,
        O::DisableRowLevelSecurity => A::DisableRowLevelSecurity,
        O::ForceRowLevelSecurity => A::ForceRowLevelSecurity,
        O::NoForceRowLevelSecurity => A::NoForceRowLevelSecurity,
        O::EnableTrigger { name }
        | O::EnableAlwaysTrigger { name }
        | O::EnableReplicaTrigger { name } => A::EnableTrigger {
            trigger: ident(name),
        },
        O::DisableTrigger { name } => A::DisableTrigger {
            trigger: ident(name),
        },
        O::EnableRule { .. } | O::EnableAlwaysRule { .. } | O::EnableReplicaRule { .. } => {
            A::EnableRule
        }
        O::DisableRule { .. } => A::DisableRule,
        O::OwnerTo { .. } => A::OwnerTo,
        O::Inherit { parent } => A::Inherit {
            parent: qname(parent),
        },
        O::NoInherit { parent } => A::NoInherit {
            parent: qname(parent),
        },
        other => A::Other {
            description: other_action(other),
        },
    }
}

fn alter_table(at: &ast::AlterTable, out: &mut Vec<Operation>) {
    let table = qname(&at.name);
    for op in &at.operations {
        let t = table.clone();
        let o = match op {
            AlterTableOperation::AddConstraint {
                constraint: c,
                not_valid,
            } => match constraint(c, *not_valid) {
                Some(c) => Operation::AddConstraint {
                    table: t,
                    constraint: c,
                },
                None => Operation::AlterTableOther {
                    table: t,
                    action: AlterTableAction::Other {
                        description: other_action(op),
                    },
                },
            },
            AlterTableOperation::AddColumn {
                if_not_exists,
                column_def,
                ..
            } => Operation::AddColumn {
                table: t,
                column: column(column_def),
                if_not_exists: *if_not_exists,
            },
            AlterTableOperation::DropConstraint {
                if_exists,
                name,
                drop_behavior,
            } => Operation::DropConstraint {
                table: t,
                name: ident(name),
                if_exists: *if_exists,
                cascade: cascade(drop_behavior),
            },
            AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                drop_behavior,
                ..
            } => {
                for c in column_names {
                    out.push(Operation::DropColumn {
                        table: table.clone(),
                        column: ident(c),
                        if_exists: *if_exists,
                        cascade: cascade(drop_behavior),
                    });
                }
                continue;
            }
            AlterTableOperation::AttachPartitionOf { partition, .. } => {
                Operation::AttachPartition {
                    table: t,
                    partition: qname(partition),
                }
            }
            AlterTableOperation::DetachPartitionOf { partition, mode } => {
                Operation::DetachPartition {
                    table: t,
                    partition: qname(partition),
                    concurrently: matches!(mode, Some(DetachPartitionMode::Concurrently)),
                }
            }
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => Operation::RenameColumn {
                table: t,
                column: ident(old_column_name),
                new_name: ident(new_column_name),
            },
            AlterTableOperation::RenameTable { table_name } => {
                let n = match table_name {
                    RenameTableNameKind::As(n) | RenameTableNameKind::To(n) => n,
                };
                Operation::RenameTable {
                    table: t,
                    new_name: last_name(n),
                }
            }
            AlterTableOperation::RenameConstraint { old_name, new_name } => {
                Operation::RenameConstraint {
                    table: t,
                    name: ident(old_name),
                    new_name: ident(new_name),
                }
            }
            AlterTableOperation::ValidateConstraint { name } => Operation::ValidateConstraint {
                table: t,
                name: ident(name),
            },
            AlterTableOperation::AlterColumn {
                column_name,
                op: cop,
            } => {
                let column = ident(column_name);
                match cop {
                    AlterColumnOperation::SetNotNull => Operation::SetNotNull { table: t, column },
                    AlterColumnOperation::DropNotNull => {
                        Operation::DropNotNull { table: t, column }
                    }
                    AlterColumnOperation::SetDefault { value } => Operation::SetDefault {
                        table: t,
                        column,
                        default: expr(value),
                    },
                    AlterColumnOperation::DropDefault => {
                        Operation::DropDefault { table: t, column }
                    }
                    AlterColumnOperation::SetDataType {
                        data_type: dt,
                        using,
                        ..
                    } => Operation::AlterColumnType {
                        table: t,
                        column,
                        new_type: data_type(dt),
                        collation: None,
                        using: using.as_ref().map(|u| u.to_string()),
                    },
                    AlterColumnOperation::AddGenerated { .. } => Operation::AlterTableOther {
                        table: t,
                        action: AlterTableAction::AddIdentity { column },
                    },
                    AlterColumnOperation::GenericOptions { .. } => Operation::AlterTableOther {
                        table: t,
                        action: AlterTableAction::ColumnOptions { column },
                    },
                }
            }
            other => Operation::AlterTableOther {
                table: t,
                action: table_action(other),
            },
        };
        out.push(o);
    }
}

fn table_factor_name(tf: &TableFactor) -> Option<QualifiedName> {
    match tf {
        TableFactor::Table { name, .. } => Some(qname(name)),
        _ => None,
    }
}

fn lock_mode(m: Option<&LockTableMode>) -> LockMode {
    match m {
        Some(LockTableMode::AccessShare) => LockMode::AccessShare,
        Some(LockTableMode::RowShare) => LockMode::RowShare,
        Some(LockTableMode::RowExclusive) => LockMode::RowExclusive,
        Some(LockTableMode::ShareUpdateExclusive) => LockMode::ShareUpdateExclusive,
        Some(LockTableMode::Share) => LockMode::Share,
        Some(LockTableMode::ShareRowExclusive) => LockMode::ShareRowExclusive,
        Some(LockTableMode::Exclusive) => LockMode::Exclusive,
        Some(LockTableMode::AccessExclusive) | None => LockMode::AccessExclusive,
    }
}

/// The value of a SET as text: string quotes stripped, unquoted identifiers lower-cased.
fn set_value(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        ast::Expr::Identifier(i) => ident(i),
        other => other.to_string(),
    }
}

fn set_op(
    scope: Option<ContextModifier>,
    variable: &ObjectName,
    values: &[ast::Expr],
) -> Operation {
    let name = dotted(variable);
    let value = values.iter().map(set_value).collect::<Vec<_>>().join(", ");
    if value.eq_ignore_ascii_case("default") {
        return Operation::Reset { name };
    }
    Operation::Set {
        name,
        value,
        local: matches!(scope, Some(ContextModifier::Local)),
    }
}

/// Convert one parsed statement. `describe` gives the leading keywords of the statement for
/// [`Operation::Other`].
pub(crate) fn operations(
    stmt: &ast::Statement,
    describe: &dyn Fn() -> String,
    out: &mut Vec<Operation>,
) {
    use ast::Statement as S;
    match stmt {
        S::CreateTable(ct) => out.push(Operation::CreateTable {
            table: qname(&ct.name),
            columns: ct.columns.iter().map(column).collect(),
            constraints: ct
                .constraints
                .iter()
                .filter_map(|c| constraint(c, false))
                .collect(),
            partition_of: ct.partition_of.as_ref().map(qname),
            if_not_exists: ct.if_not_exists,
            as_select: ct.query.is_some(),
        }),
        S::AlterTable(at) => alter_table(at, out),
        S::CreateIndex(ci) => out.push(Operation::CreateIndex {
            name: ci.name.as_ref().map(last_name),
            table: qname(&ci.table_name),
            columns: ci.columns.iter().map(index_column).collect(),
            unique: ci.unique,
            concurrently: ci.concurrently,
            if_not_exists: ci.if_not_exists,
            method: ci.using.as_ref().map(|u| u.to_string().to_lowercase()),
            predicate: ci.predicate.as_ref().map(|p| p.to_string()),
            only: false,
            opclass: ci.columns.iter().any(|c| c.operator_class.is_some()),
        }),
        S::Truncate(t) => out.push(Operation::Truncate {
            tables: t.table_names.iter().map(|n| qname(&n.name)).collect(),
            cascade: matches!(t.cascade, Some(ast::CascadeOption::Cascade)),
        }),
        S::CreateSchema {
            schema_name,
            if_not_exists,
            ..
        } => {
            let name = match schema_name {
                SchemaName::Simple(n) | SchemaName::NamedAuthorization(n, _) => dotted(n),
                SchemaName::UnnamedAuthorization(i) => ident(i),
            };
            out.push(Operation::CreateSchema {
                name,
                if_not_exists: *if_not_exists,
            })
        }
        S::CreateDatabase { db_name, .. } => out.push(Operation::CreateDatabase {
            name: dotted(db_name),
        }),
        S::RefreshMaterializedView(r) => out.push(Operation::RefreshMaterializedView {
            name: qname(&r.name),
            concurrently: r.concurrently,
        }),
        S::Lock(l) => out.push(Operation::LockTable {
            tables: l.tables.iter().map(|t| qname(&t.name)).collect(),
            mode: lock_mode(l.lock_mode.as_ref()),
        }),
        S::Vacuum(v) => out.push(Operation::Maintenance {
            command: if v.full {
                MaintenanceCommand::VacuumFull
            } else {
                MaintenanceCommand::Vacuum
            },
            tables: v.table_name.iter().map(qname).collect(),
        }),
        S::Analyze(a) => out.push(Operation::Maintenance {
            command: MaintenanceCommand::Analyze,
            tables: a.table_name.iter().map(qname).collect(),
        }),
        S::Set(s) => match s {
            ast::Set::SingleAssignment {
                scope,
                variable,
                values,
                ..
            } => out.push(set_op(*scope, variable, values)),
            ast::Set::MultipleAssignments { assignments } => {
                for a in assignments {
                    out.push(set_op(a.scope, &a.name, std::slice::from_ref(&a.value)));
                }
            }
            ast::Set::SetTimeZone { local, value } => {
                let value = set_value(value);
                out.push(
                    if value.eq_ignore_ascii_case("default") || value.eq_ignore_ascii_case("local")
                    {
                        Operation::Reset {
                            name: "timezone".into(),
                        }
                    } else {
                        Operation::Set {
                            name: "timezone".into(),
                            value,
                            local: *local,
                        }
                    },
                )
            }
            _ => out.push(Operation::Other {
                description: describe(),
            }),
        },
        S::Reset(r) => out.push(Operation::Reset {
            name: match &r.reset {
                ast::Reset::ALL => "all".into(),
                ast::Reset::ConfigurationParameter(n) => dotted(n),
                ast::Reset::SessionAuthorization => "session authorization".into(),
            },
        }),
        S::StartTransaction { .. } => out.push(Operation::Transaction(TxControl::Begin)),
        S::Commit { .. } => out.push(Operation::Transaction(TxControl::Commit)),
        S::Rollback {
            savepoint: None, ..
        } => out.push(Operation::Transaction(TxControl::Rollback)),
        S::Rollback {
            savepoint: Some(_), ..
        }
        | S::Savepoint { .. }
        | S::ReleaseSavepoint { .. } => out.push(Operation::Transaction(TxControl::Savepoint)),
        S::Query(q) => {
            // Data-modifying statements under WITH (`WITH x AS (...) UPDATE ...`) and
            // data-modifying CTEs (`WITH d AS (DELETE ... RETURNING *) INSERT ...`).
            let before = out.len();
            query_dml(q, describe, out);
            if out.len() == before {
                out.push(Operation::Other {
                    description: describe(),
                });
            }
        }
        _ => {
            if !(objects(stmt, describe, out) || routines(stmt, out) || dml(stmt, describe, out)) {
                out.push(Operation::Other {
                    description: describe(),
                });
            }
        }
    }
}

/// Creation, change and removal of objects other than tables and their columns: indexes,
/// views, types, domains, routines, triggers, sequences, extensions, comments, `DROP` of any
/// kind. `false` when `stmt` is none of these.
fn objects(stmt: &ast::Statement, describe: &dyn Fn() -> String, out: &mut Vec<Operation>) -> bool {
    use ast::Statement as S;
    match stmt {
        S::Drop {
            object_type,
            if_exists,
            names,
            cascade,
            ..
        } => {
            for n in names {
                let (if_exists, cascade) = (*if_exists, *cascade);
                out.push(match object_type {
                    ObjectType::Table => Operation::DropTable {
                        table: qname(n),
                        if_exists,
                        cascade,
                    },
                    ObjectType::Index => Operation::DropIndex {
                        name: qname(n),
                        concurrently: false,
                        if_exists,
                        cascade,
                    },
                    ObjectType::View | ObjectType::MaterializedView => Operation::DropView {
                        name: qname(n),
                        materialized: *object_type == ObjectType::MaterializedView,
                        if_exists,
                        cascade,
                    },
                    ObjectType::Sequence => Operation::DropSequence {
                        name: qname(n),
                        if_exists,
                        cascade,
                    },
                    ObjectType::Schema => Operation::DropSchema {
                        name: dotted(n),
                        if_exists,
                        cascade,
                    },
                    ObjectType::Database => Operation::DropDatabase {
                        name: dotted(n),
                        force: false,
                    },
                    ObjectType::Type => Operation::DropType {
                        name: qname(n),
                        if_exists,
                        cascade,
                    },
                    _ => Operation::Other {
                        description: describe(),
                    },
                });
            }
        }
        S::AlterIndex { name, operation } => match operation {
            ast::AlterIndexOperation::RenameIndex { index_name } => {
                out.push(Operation::RenameIndex {
                    name: qname(name),
                    new_name: last_name(index_name),
                })
            }
        },
        S::CreateType {
            name,
            representation,
        } => out.push(create_type(qname(name), representation.as_ref())),
        S::AlterType(at) => out.push(match &at.operation {
            AlterTypeOperation::AddValue(v) => Operation::AddEnumValue {
                name: qname(&at.name),
                value: v.value.value.clone(),
                if_not_exists: v.if_not_exists,
            },
            AlterTypeOperation::RenameValue(v) => Operation::RenameEnumValue {
                name: qname(&at.name),
                value: v.from.value.clone(),
                new_value: v.to.value.clone(),
            },
            AlterTypeOperation::Rename(r) => Operation::RenameType {
                name: qname(&at.name),
                new_name: ident(&r.new_name),
            },
        }),
        S::CreateView(cv) => out.push(Operation::CreateView {
            name: qname(&cv.name),
            materialized: cv.materialized,
            or_replace: cv.or_replace,
            columns: cv.columns.iter().map(|c| ident(&c.name)).collect(),
            depends_on: crate::refs::query_relations(&cv.query),
        }),
        S::AlterView(av) => out.push(match &av.operation {
            ast::AlterViewOperation::RenameTo { new_name } => Operation::RenameView {
                name: qname(&av.name),
                new_name: last_name(new_name),
                materialized: av.materialized,
            },
            _ => Operation::Other {
                description: describe(),
            },
        }),
        S::CreateSequence { name, .. } => out.push(Operation::CreateSequence { name: qname(name) }),
        S::CreateExtension(e) => out.push(Operation::CreateExtension {
            name: ident(&e.name),
            if_not_exists: e.if_not_exists,
        }),
        S::Comment {
            object_type,
            object_name,
            comment,
            ..
        } => out.push(Operation::Comment {
            object_kind: object_type.to_string().to_lowercase(),
            object: dotted(object_name),
            text: comment.clone(),
        }),
        _ => return false,
    }
    true
}

/// Routines (`CREATE|DROP FUNCTION|PROCEDURE`), triggers, domains and `DROP EXTENSION`;
/// `false` for any other statement.
fn routines(stmt: &ast::Statement, out: &mut Vec<Operation>) -> bool {
    use ast::Statement as S;
    match stmt {
        S::CreateFunction(f) => out.push(Operation::CreateFunction {
            name: qname(&f.name),
            args: f
                .args
                .iter()
                .flatten()
                .filter(|a| !matches!(a.mode, Some(ast::ArgMode::Out)))
                .map(|a| data_type(&a.data_type))
                .collect(),
            or_replace: f.or_replace,
            procedure: false,
        }),
        S::CreateProcedure {
            name,
            params,
            or_alter,
            ..
        } => out.push(Operation::CreateFunction {
            name: qname(name),
            args: params
                .iter()
                .flatten()
                .filter(|a| !matches!(a.mode, Some(ast::ArgMode::Out)))
                .map(|a| data_type(&a.data_type))
                .collect(),
            or_replace: *or_alter,
            procedure: true,
        }),
        S::DropFunction(d) => {
            drop_functions(&d.func_desc, d.if_exists, &d.drop_behavior, false, out)
        }
        S::DropProcedure {
            if_exists,
            proc_desc,
            drop_behavior,
        } => drop_functions(proc_desc, *if_exists, drop_behavior, true, out),
        S::DropTrigger(d) => out.push(Operation::DropTrigger {
            name: last_name(&d.trigger_name),
            table: d.table_name.as_ref().map(qname),
            if_exists: d.if_exists,
            cascade: matches!(d.option, Some(ReferentialAction::Cascade)),
        }),
        S::CreateDomain(d) => out.push(create_domain(d)),
        S::DropDomain(d) => out.push(Operation::DropDomain {
            name: qname(&d.name),
            if_exists: d.if_exists,
            cascade: cascade(&d.drop_behavior),
        }),
        S::DropExtension(d) => {
            for n in &d.names {
                out.push(Operation::DropExtension {
                    name: ident(n),
                    if_exists: d.if_exists,
                    cascade: matches!(d.cascade_or_restrict, Some(ReferentialAction::Cascade)),
                });
            }
        }
        S::CreateTrigger(t) => out.push(Operation::CreateTrigger {
            name: last_name(&t.name),
            table: qname(&t.table_name),
        }),
        _ => return false,
    }
    true
}

/// `UPDATE`, `DELETE`, `INSERT`; `false` for any other statement.
fn dml(stmt: &ast::Statement, describe: &dyn Fn() -> String, out: &mut Vec<Operation>) -> bool {
    use ast::Statement as S;
    match stmt {
        S::Update(u) => match table_factor_name(&u.table.relation) {
            Some(table) => out.push(Operation::Update {
                table,
                has_where: u.selection.is_some(),
                filter: crate::row_filter::row_filter(
                    &u.table,
                    match &u.from {
                        Some(
                            sqlparser::ast::UpdateTableFromKind::BeforeSet(f)
                            | sqlparser::ast::UpdateTableFromKind::AfterSet(f),
                        ) => f,
                        None => &[],
                    },
                    u.selection.as_ref(),
                ),
                columns: u
                    .assignments
                    .iter()
                    .flat_map(|a| match &a.target {
                        ast::AssignmentTarget::ColumnName(n) => vec![last_name(n)],
                        ast::AssignmentTarget::Tuple(ns) => ns.iter().map(last_name).collect(),
                    })
                    .collect(),
            }),
            None => out.push(Operation::Other {
                description: describe(),
            }),
        },
        S::Delete(d) => {
            let tables = match &d.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
            };
            match tables.first().and_then(|t| table_factor_name(&t.relation)) {
                Some(table) => out.push(Operation::Delete {
                    table,
                    has_where: d.selection.is_some(),
                    filter: crate::row_filter::row_filter(
                        &tables[0],
                        d.using.as_deref().unwrap_or_default(),
                        d.selection.as_ref(),
                    ),
                }),
                None => out.push(Operation::Other {
                    description: describe(),
                }),
            }
        }
        S::Insert(i) => match &i.table {
            TableObject::TableName(n) => out.push(Operation::Insert {
                table: qname(n),
                from_select: i
                    .source
                    .as_ref()
                    .is_some_and(|q| !matches!(q.body.as_ref(), SetExpr::Values(_))),
            }),
            _ => out.push(Operation::Other {
                description: describe(),
            }),
        },
        _ => return false,
    }
    true
}

/// `CREATE TYPE`: an enum, or the other representations.
fn create_type(name: QualifiedName, rep: Option<&UserDefinedTypeRepresentation>) -> Operation {
    use UserDefinedTypeRepresentation as R;
    let representation = match rep {
        Some(R::Enum { labels }) => {
            return Operation::CreateEnum {
                name,
                values: labels.iter().map(|l| l.value.clone()).collect(),
            };
        }
        Some(R::Composite { attributes }) => TypeRepresentation::Composite {
            attributes: attributes
                .iter()
                .map(|a| TypeAttribute {
                    name: ident(&a.name),
                    data_type: data_type(&a.data_type),
                })
                .collect(),
        },
        Some(R::Range { options }) => TypeRepresentation::Range {
            subtype: options.iter().find_map(|o| match o {
                ast::UserDefinedTypeRangeOption::Subtype(dt) => Some(data_type(dt)),
                _ => None,
            }),
        },
        Some(R::SqlDefinition { .. }) => TypeRepresentation::Base,
        None => TypeRepresentation::Shell,
    };
    Operation::CreateType {
        name,
        representation,
    }
}

/// `CREATE DOMAIN`.
fn create_domain(d: &ast::CreateDomain) -> Operation {
    let checks = d
        .constraints
        .iter()
        .filter_map(|c| match c {
            TableConstraint::Check(ch) => Some(ch.expr.to_string()),
            _ => None,
        })
        .collect();
    // PostgreSQL's DEFAULT takes a `b_expr`, which has no `IS [NOT] NULL`: sqlparser reads
    // `DEFAULT x NOT NULL` as the default `x IS NOT NULL`, the server as `x` and a constraint.
    let (default, not_null) = match &d.default {
        Some(ast::Expr::IsNotNull(inner)) => (Some(expr(inner)), true),
        Some(ast::Expr::IsNull(inner)) => (Some(expr(inner)), false),
        other => (other.as_ref().map(expr), false),
    };
    Operation::CreateDomain {
        name: qname(&d.name),
        data_type: data_type(&d.data_type),
        default,
        not_null,
        checks,
    }
}

/// `DROP FUNCTION|PROCEDURE`: one operation per routine named.
fn drop_functions(
    descs: &[ast::FunctionDesc],
    if_exists: bool,
    behavior: &Option<DropBehavior>,
    procedure: bool,
    out: &mut Vec<Operation>,
) {
    for f in descs {
        out.push(Operation::DropFunction {
            name: qname(&f.name),
            args: f.args.as_ref().map(|args| {
                args.iter()
                    .filter(|a| !matches!(a.mode, Some(ast::ArgMode::Out)))
                    .map(|a| data_type(&a.data_type))
                    .collect()
            }),
            if_exists,
            cascade: cascade(behavior),
            procedure,
        });
    }
}

/// The INSERT/UPDATE/DELETE operations inside a query (its body and its CTEs).
fn query_dml(q: &ast::Query, describe: &dyn Fn() -> String, out: &mut Vec<Operation>) {
    if let Some(with) = &q.with {
        for cte in &with.cte_tables {
            query_dml(&cte.query, describe, out);
        }
    }
    match q.body.as_ref() {
        SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) => {
            operations(s, describe, out)
        }
        SetExpr::Query(inner) => query_dml(inner, describe, out),
        _ => {}
    }
}

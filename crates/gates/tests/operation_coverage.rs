//! Every operation the parser types is judged by some rule, or declared harmless with a reason.
//!
//! The table below is the rules' side of the one operation vocabulary: a new
//! `migration_parser::OperationKind` fails this test until someone decides which rules judge it.
//! Operations that lock a relation (`migration_parser::takes_relation_locks`) are always judged by
//! the lock rules (`missing-lock-timeout`, `multiple-exclusive-locks`, `lock-time-budget`, which
//! read `lock_facts`), and every operation by the per-shard rehearsal rules (`statement-fails`,
//! `schema-drift`); the table lists the rules written for the operation itself.

use gates::Registry;
use migration_parser::{OperationKind, takes_relation_locks};

/// (operation kind, rules written for it, why none is needed when the list is empty).
const COVERAGE: &[(&str, &[&str], &str)] = &[
    (
        "create_table",
        &[],
        "a new table nobody uses yet; a FOREIGN KEY locks its parent (lock rules)",
    ),
    (
        "drop_table",
        &["dropping-table", "cascade-reach", "breaking-change-in-use"],
        "",
    ),
    (
        "rename_table",
        &["renaming-table", "breaking-change-in-use"],
        "",
    ),
    (
        "add_column",
        &[
            "adding-required-field",
            "adding-volatile-default",
            "adding-serial-primary-key",
            "adding-unique-constraint",
            "adding-foreign-key-cascade",
            "not-null-violations",
            "fk-orphans",
            "check-violations",
        ],
        "",
    ),
    (
        "drop_column",
        &["dropping-column", "breaking-change-in-use"],
        "",
    ),
    (
        "rename_column",
        &["renaming-column", "breaking-change-in-use"],
        "",
    ),
    (
        "alter_column_type",
        &[
            "changing-column-type",
            "changing-collation",
            "cast-failures",
            "breaking-change-in-use",
        ],
        "",
    ),
    (
        "set_not_null",
        &["setting-not-null", "not-null-violations"],
        "",
    ),
    (
        "drop_not_null",
        &[],
        "catalog-only: relaxes a constraint, no scan",
    ),
    (
        "set_default",
        &[],
        "catalog-only: applies to new rows (lock rules)",
    ),
    (
        "drop_default",
        &[],
        "catalog-only, brief ACCESS EXCLUSIVE (lock rules)",
    ),
    (
        "add_constraint",
        &[
            "constraint-missing-not-valid",
            "adding-unique-constraint",
            "adding-exclusion-constraint",
            "adding-foreign-key-cascade",
            "fk-orphans",
            "unique-violations",
            "check-violations",
        ],
        "",
    ),
    ("validate_constraint", &["constraint-missing-not-valid"], ""),
    (
        "drop_constraint",
        &[],
        "catalog-only (lock rules); rollback rules judge the way back",
    ),
    ("rename_constraint", &[], "catalog-only (lock rules)"),
    (
        "create_index",
        &[
            "require-concurrent-index",
            "concurrent-in-transaction",
            "unique-violations",
        ],
        "",
    ),
    (
        "drop_index",
        &["require-concurrent-index-drop", "concurrent-in-transaction"],
        "",
    ),
    ("rename_index", &["multiple-exclusive-locks"], ""),
    (
        "reindex",
        &["table-rewrite-maintenance", "concurrent-in-transaction"],
        "",
    ),
    ("create_enum", &[], "a new type nobody uses yet"),
    (
        "add_enum_value",
        &["enum-value-in-transaction", "concurrent-in-transaction"],
        "",
    ),
    (
        "rename_enum_value",
        &[],
        "catalog-only; running code that names the label breaks, as for any rename of data",
    ),
    (
        "drop_type",
        &[],
        "fails if used unless CASCADE; the rehearsal proves it (statement-fails)",
    ),
    ("truncate", &["ban-truncate", "cascade-reach"], ""),
    ("create_schema", &["hardcoded-tenant-schema"], ""),
    (
        "drop_schema",
        &["ban-drop-schema", "hardcoded-tenant-schema"],
        "",
    ),
    (
        "drop_database",
        &["ban-drop-database", "concurrent-in-transaction"],
        "",
    ),
    ("update", &["unbatched-data-change"], ""),
    ("delete", &["unbatched-data-change", "cascade-reach"], ""),
    ("insert", &["unbatched-data-change"], ""),
    ("create_view", &[], "a new view nobody reads yet"),
    (
        "drop_view",
        &["breaking-change-in-use"],
        "ACCESS EXCLUSIVE on the view (lock rules); dependents fail in the rehearsal",
    ),
    (
        "refresh_materialized_view",
        &["refresh-matview-blocking"],
        "",
    ),
    (
        "lock_table",
        &[],
        "an explicit lock: judged by the lock rules only",
    ),
    (
        "maintenance",
        &["table-rewrite-maintenance", "concurrent-in-transaction"],
        "",
    ),
    ("alter_table_other", &["table-rewrite-maintenance"], ""),
    (
        "attach_partition",
        &[],
        "SHARE UPDATE EXCLUSIVE plus a scan (lock rules)",
    ),
    ("detach_partition", &["concurrent-in-transaction"], ""),
    ("set", &["hardcoded-tenant-schema"], ""),
    ("reset", &[], "session setting"),
    ("transaction", &["uncommitted-transaction"], ""),
    ("do", &["unparsed-statement"], ""),
    ("create_sequence", &[], "a new sequence nobody uses yet"),
    (
        "create_extension",
        &[],
        "database-level, no relation lock; what it does per tenant the rehearsal proves",
    ),
    (
        "create_function",
        &[],
        "code, not data: no lock on a relation",
    ),
    (
        "create_trigger",
        &[],
        "SHARE ROW EXCLUSIVE on the table (lock rules)",
    ),
    ("comment", &[], "catalog-only"),
    ("create_database", &["concurrent-in-transaction"], ""),
    ("attach_index_partition", &["multiple-exclusive-locks"], ""),
    ("alter_system", &["concurrent-in-transaction"], ""),
    (
        "drop_function",
        &[],
        "fails if used unless CASCADE; the rehearsal proves it",
    ),
    (
        "drop_trigger",
        &[],
        "ACCESS EXCLUSIVE on the table (lock rules)",
    ),
    ("create_type", &[], "a new type nobody uses yet"),
    ("rename_type", &[], "catalog-only"),
    ("create_domain", &[], "a new type nobody uses yet"),
    (
        "drop_domain",
        &[],
        "fails if used unless CASCADE; the rehearsal proves it",
    ),
    (
        "rename_view",
        &[],
        "ACCESS EXCLUSIVE on the view (lock rules)",
    ),
    (
        "drop_sequence",
        &[],
        "fails if a default uses it unless CASCADE; the rehearsal proves it",
    ),
    (
        "alter_sequence",
        &[],
        "SHARE ROW EXCLUSIVE on the sequence, blocks nextval (lock rules)",
    ),
    (
        "rename_sequence",
        &[],
        "ACCESS EXCLUSIVE on the sequence (lock rules); defaults follow it by OID",
    ),
    (
        "drop_extension",
        &[],
        "fails if used unless CASCADE; the rehearsal proves it",
    ),
    ("other", &["unparsed-statement"], ""),
];

#[test]
fn every_operation_kind_is_judged_or_declared_harmless() {
    let registry = Registry::builtin();
    let mut missing = Vec::new();
    for kind in OperationKind::ALL {
        let entries: Vec<_> = COVERAGE
            .iter()
            .filter(|(name, _, _)| *name == kind.as_str())
            .collect();
        match entries.as_slice() {
            [] => missing.push(kind.as_str()),
            [(_, rules, reason)] => {
                for r in *rules {
                    assert!(
                        registry.get(r).is_some(),
                        "{kind}: rule `{r}` is not a built-in rule"
                    );
                }
                assert!(
                    !rules.is_empty() || !reason.is_empty(),
                    "{kind}: no rule and no reason"
                );
                if rules.is_empty() && !takes_relation_locks(*kind) {
                    assert!(
                        !reason.contains("(lock rules)"),
                        "{kind}: takes no relation lock, so the lock rules do not judge it"
                    );
                }
            }
            _ => panic!("{kind} is listed twice"),
        }
    }
    assert!(
        missing.is_empty(),
        "operation kinds no rule judges and no reason covers: {missing:?}"
    );
    for (name, _, _) in COVERAGE {
        assert!(
            name.parse::<OperationKind>().is_ok(),
            "`{name}` is not an operation kind"
        );
    }
}

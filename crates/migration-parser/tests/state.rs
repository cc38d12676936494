//! `MigrationState`: the one walker. Each case is one of the false-RED classes of issue 13 (or a
//! neighbour), asserted at the model level; the real-PostgreSQL versions live in the root
//! crate's `tests/false_red.rs`.

use migration_parser::state::{ColumnResolved, ObjectKind, Origin};
use migration_parser::{MigrationState, ParseOptions, QualifiedName, Resolved, Step, parse};

fn state(sql: &str) -> MigrationState {
    let m = parse("m.sql", sql, &ParseOptions::default()).expect("parses");
    MigrationState::new(&m)
}

fn q(n: &str) -> QualifiedName {
    match n.split_once('.') {
        Some((s, n)) => QualifiedName::qualified(s, n),
        None => QualifiedName::new(n),
    }
}

#[test]
fn a_column_renamed_away_frees_its_name() {
    let s = state(
        "ALTER TABLE ev RENAME COLUMN ts TO ts_old;\n\
         ALTER TABLE ev ADD COLUMN ts timestamptz;\n\
         UPDATE ev SET ts = ts_old;\n\
         ALTER TABLE ev ALTER COLUMN ts SET NOT NULL;",
    );
    let ev = q("ev");
    match s.column(&ev, "ts", Step::before(0)) {
        ColumnResolved::Tracked(c) => assert_eq!(c.shard_name(), Some("ts")),
        other => panic!("before the rename ts is the shard's column: {other:?}"),
    }
    assert!(
        matches!(s.column(&ev, "other", Step::before(0)), ColumnResolved::Shard { ref column, .. } if column == "other")
    );
    assert_eq!(
        s.column(&ev, "ts", Step::before(1)),
        ColumnResolved::Free {
            by: Step::before(0)
        }
    );
    match s.column(&ev, "ts", Step::before(3)) {
        ColumnResolved::Tracked(c) => {
            assert!(c.created().is_some(), "the new ts is the added column");
            assert_eq!(c.assigned_before(Step::before(3)), Some(Step::before(2)));
            assert_eq!(c.type_at(Step::before(3)), Some("timestamptz"));
        }
        other => panic!("{other:?}"),
    }
    match s.column(&ev, "ts_old", Step::before(2)) {
        ColumnResolved::Tracked(c) => assert_eq!(c.shard_name(), Some("ts")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn objects_created_earlier_are_tracked_whatever_their_kind() {
    let s = state(
        "CREATE MATERIALIZED VIEW mv AS SELECT 1 AS a;\n\
         CREATE UNIQUE INDEX mv_a ON mv (a);\n\
         CREATE VIEW v AS SELECT 1 AS b;\n\
         ALTER VIEW v RENAME TO v2;\n\
         CREATE TYPE mood AS ENUM ('ok', 'sad');\n\
         ALTER TYPE mood ADD VALUE 'happy';\n\
         ALTER TABLE t ALTER COLUMN m TYPE mood USING m::mood;",
    );
    let mv = s.relation(&q("mv"), Step::before(1));
    assert!(mv.is_created());
    assert_eq!(mv.record().unwrap().kind, ObjectKind::MaterializedView);
    assert!(s.relation(&q("mv_a"), Step::before(2)).is_created());
    let mood = s.type_(&q("mood"), Step::before(6));
    assert!(mood.is_created());
    assert_eq!(mood.record().unwrap().labels(), ["ok", "sad", "happy"]);
    // Before its creation the type is the shard's business.
    assert_eq!(
        s.type_(&q("mood"), Step::before(4)),
        Resolved::Shard(q("mood"))
    );
}

#[test]
fn rename_of_a_created_view_keeps_identity() {
    let s = state(
        "CREATE VIEW v AS SELECT 1 AS b;\nALTER VIEW v RENAME TO v2;\nCOMMENT ON VIEW v2 IS 'x';",
    );
    // `ALTER VIEW ... RENAME` parses as a relation rename when the parser types it; whatever the
    // operation, v2 must not be taken for a shard object if the rename is understood.
    let v2 = s.relation(&q("v2"), Step::before(2));
    if let Resolved::Tracked(_, r) = v2 {
        assert!(r.is_created());
    }
}

#[test]
fn drop_cascade_makes_dependents_uncertain() {
    let s = state(
        "DROP VIEW base CASCADE;\nCREATE VIEW base AS SELECT 1;\nCREATE VIEW dependent AS SELECT * FROM base;",
    );
    assert!(matches!(
        s.relation(&q("base"), Step::before(1)),
        Resolved::Free { .. }
    ));
    // DROP VIEW has no cascade flag in every parser version; DROP TABLE does.
    let s = state("DROP TABLE base CASCADE;\nCREATE VIEW dependent AS SELECT 1;");
    assert!(matches!(
        s.relation(&q("dependent"), Step::before(1)),
        Resolved::MaybeDropped { .. }
    ));
}

#[test]
fn renamed_shard_table_resolves_to_its_shard_name() {
    let s = state(
        "ALTER TABLE orders RENAME TO orders_old;\n\
         CREATE TABLE orders (id bigint PRIMARY KEY);\n\
         ALTER TABLE orders_old ADD CONSTRAINT c CHECK (id > 0);\n\
         ALTER TABLE orders ADD COLUMN note text;",
    );
    let old = s.relation(&q("orders_old"), Step::before(2));
    assert_eq!(old.on_shard(), Some(&q("orders")));
    assert!(s.relation(&q("orders"), Step::before(3)).is_created());
    assert!(s.same_relation(
        &q("orders"),
        Step::before(0),
        &q("orders_old"),
        Step::before(2)
    ));
    assert!(!s.same_relation(&q("orders"), Step::before(0), &q("orders"), Step::before(3)));
    assert!(
        s.constraint(&q("orders_old"), "c", Step::before(3))
            .is_some()
    );
    assert!(matches!(
        s.column(&q("orders"), "nope", Step::before(3)),
        ColumnResolved::Missing
    ));
}

#[test]
fn not_null_proof_follows_validation_and_drops() {
    let s = state(
        "ALTER TABLE t ADD CONSTRAINT c_nn CHECK (c IS NOT NULL) NOT VALID;\n\
         ALTER TABLE t VALIDATE CONSTRAINT c_nn;\n\
         ALTER TABLE t ALTER COLUMN c SET NOT NULL;\n\
         ALTER TABLE t DROP CONSTRAINT c_nn;\n\
         SELECT 1;",
    );
    let t = q("t");
    assert!(!s.not_null_proven(&t, "c", Step::before(1)));
    assert!(s.not_null_proven(&t, "c", Step::before(2)));
    assert!(!s.not_null_proven(&t, "c", Step::before(4)));
    let c = s.constraint(&t, "c_nn", Step::before(2)).expect("tracked");
    assert_eq!(c.added, Some(Step::before(0)));
}

#[test]
fn steps_within_one_statement_see_earlier_actions() {
    let s = state("ALTER TABLE t ADD COLUMN a int, ADD CONSTRAINT a_pos CHECK (a > 0);");
    let at = Step {
        statement: 0,
        op: 1,
    };
    assert!(matches!(
        s.column(&q("t"), "a", at),
        ColumnResolved::Tracked(_)
    ));
    assert!(matches!(
        s.column(&q("t"), "a", Step::before(0)),
        ColumnResolved::Shard { .. }
    ));
}

#[test]
fn dropped_schema_frees_everything_in_it() {
    let s = state("DROP SCHEMA old CASCADE;\nCREATE TABLE old.t (id int);");
    assert!(matches!(
        s.relation(&q("old.t"), Step::before(1)),
        Resolved::Free { .. }
    ));
    let s = state("CREATE SCHEMA app;\nCREATE TABLE app.t (id int);");
    assert!(s.schema("app", Step::before(1)).is_created());
    let rec = s.relation(&q("app.t"), Step::after(1));
    assert!(matches!(
        rec.record().map(|r| &r.origin),
        Some(Origin::Created(_))
    ));
}

#[test]
fn create_if_not_exists_twice_is_one_object() {
    let s = state(
        "CREATE TABLE IF NOT EXISTS t (id int);\nCREATE TABLE IF NOT EXISTS t (id int);\nDROP TABLE t;\nCREATE TABLE t (x int);",
    );
    assert_eq!(s.objects().count(), 2);
    assert!(matches!(
        s.relation(&q("t"), Step::before(3)),
        Resolved::Free { .. }
    ));
}

#[test]
fn a_dropped_relation_takes_its_shard_indexes_along() {
    let s = state(
        "DROP MATERIALIZED VIEW post_mview;\n\
         CREATE MATERIALIZED VIEW post_mview AS SELECT 1 AS id;\n\
         CREATE UNIQUE INDEX idx_post_mview_id ON post_mview (id);\n\
         ALTER TABLE other.t DROP COLUMN c;",
    );
    // Before the drop, an index name on the shard may still be taken.
    assert_eq!(
        s.dependent_maybe_dropped(&q("idx_post_mview_id"), Step::before(0)),
        None
    );
    assert_eq!(
        s.dependent_maybe_dropped(&q("idx_post_mview_id"), Step::before(2)),
        Some(Step::before(0))
    );
    // The new matview is the migration's; its index name clash can only be with the old one's.
    assert!(s.relation(&q("post_mview"), Step::before(2)).is_created());
    // A column drop in another schema does not free names in this one.
    assert_eq!(
        s.dependent_maybe_dropped(&q("other.t_c_idx"), Step::after(3)),
        Some(Step::before(3))
    );
    // The unqualified matview drop may have been in any schema: it counts for public.x too.
    assert_eq!(
        s.dependent_maybe_dropped(&q("public.x"), Step::before(3)),
        Some(Step::before(0))
    );
    let s = state("ALTER TABLE other.t DROP COLUMN c;");
    assert_eq!(
        s.dependent_maybe_dropped(&q("public.x"), Step::after(0)),
        None
    );
}

/// `DROP VIEW ... CASCADE` and `DROP SEQUENCE ... CASCADE` cascade (the typed operations carry
/// the flag); `ALTER VIEW ... RENAME` renames like `ALTER TABLE ... RENAME`.
#[test]
fn typed_view_and_sequence_operations_reach_the_state() {
    let s = state("DROP VIEW base CASCADE;\nCREATE VIEW dependent AS SELECT 1;");
    assert!(matches!(
        s.relation(&q("dependent"), Step::before(1)),
        Resolved::MaybeDropped { ref cascade_from, .. } if *cascade_from == q("base")
    ));
    let s = state("DROP VIEW base;\nCREATE VIEW dependent AS SELECT 1;");
    assert!(matches!(
        s.relation(&q("dependent"), Step::before(1)),
        Resolved::Shard(_)
    ));
    let s = state("CREATE SEQUENCE q;\nDROP SEQUENCE q;\nCREATE SEQUENCE q;");
    assert!(matches!(
        s.relation(&q("q"), Step::before(2)),
        Resolved::Free { .. }
    ));
    let s = state("ALTER VIEW v RENAME TO w;\nCREATE VIEW v AS SELECT 1;");
    assert!(matches!(
        s.relation(&q("v"), Step::before(1)),
        Resolved::Free { .. }
    ));
    assert_eq!(
        s.relation(&q("w"), Step::before(1)).on_shard(),
        Some(&q("v"))
    );
}

/// Issue 15: `DELETE FROM t` (no `WHERE`) or `TRUNCATE t` leaves `t` empty until an `INSERT` or
/// opaque code; renames are followed.
#[test]
fn a_table_emptied_earlier_stays_empty_until_an_insert() {
    let s = state(
        "DELETE FROM a;\n\
         UPDATE a SET x = 1;\n\
         ALTER TABLE a RENAME TO b;\n\
         INSERT INTO b VALUES (1);\n\
         TRUNCATE c;\n\
         DO $$ BEGIN END $$;\n\
         DELETE FROM d WHERE x;\n\
         SELECT 1;",
    );
    assert_eq!(
        s.emptied_before(&q("a"), Step::before(1))
            .map(|x| x.statement),
        Some(0)
    );
    assert_eq!(
        s.emptied_before(&q("b"), Step::before(3))
            .map(|x| x.statement),
        Some(0)
    );
    assert_eq!(
        s.emptied_before(&q("b"), Step::before(4)),
        None,
        "an INSERT refills it"
    );
    assert_eq!(
        s.emptied_before(&q("c"), Step::before(5))
            .map(|x| x.statement),
        Some(4)
    );
    assert_eq!(
        s.emptied_before(&q("c"), Step::before(6)),
        None,
        "a DO block may refill it"
    );
    assert_eq!(
        s.emptied_before(&q("d"), Step::before(7)),
        None,
        "DELETE with WHERE"
    );
}

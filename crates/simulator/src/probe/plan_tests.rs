//! Unit tests of probe planning: what the plan holds for a migration (no database).

use migration_parser::{Migration, QualifiedName};

use super::plan;
use crate::probe::kind::ProbeKind;
use crate::probe::model::{Check, ObjKind, PlannedProbe, ProbePlan};

fn m(sql: &str) -> Migration {
    migration_parser::parse("t.sql", sql, &Default::default()).expect("parse")
}

fn p(sql: &str) -> ProbePlan {
    plan(&m(sql))
}

#[test]
fn plan_follows_renames_backfills_and_validate() {
    let p = p("ALTER TABLE a RENAME TO b;
ALTER TABLE b ADD CONSTRAINT fk FOREIGN KEY (x) REFERENCES p (id);
ALTER TABLE b RENAME COLUMN y TO z;
ALTER TABLE b ALTER COLUMN z SET NOT NULL;
ALTER TABLE c ADD CONSTRAINT ck CHECK (v > 0) NOT VALID;
ALTER TABLE c VALIDATE CONSTRAINT ck;
UPDATE d SET w = 1;
ALTER TABLE d ALTER COLUMN w SET NOT NULL;
ALTER TABLE e ADD CONSTRAINT e_fk FOREIGN KEY (q) REFERENCES p (id) NOT VALID;
");
    let fk = p
        .probes
        .iter()
        .find(|x| x.kind == ProbeKind::FkOrphans && x.statement_index == 1)
        .unwrap();
    assert_eq!(
        fk.table,
        QualifiedName::new("a"),
        "probed under the shard's name"
    );
    assert!(fk.would_fail);
    let nn = p.probes.iter().find(|x| x.statement_index == 3).unwrap();
    assert_eq!(
        (nn.table.name.as_str(), nn.column.as_deref()),
        ("a", Some("y"))
    );
    let ck = p
        .probes
        .iter()
        .find(|x| x.kind == ProbeKind::CheckViolations)
        .unwrap();
    assert_eq!(
        ck.statement_index, 5,
        "NOT VALID + VALIDATE: probed at the VALIDATE"
    );
    assert!(ck.would_fail);
    let bf = p.probes.iter().find(|x| x.statement_index == 7).unwrap();
    assert!(
        !bf.would_fail && bf.note.as_deref().unwrap_or("").contains("backfilled"),
        "{bf:?}"
    );
    let nv = p.probes.iter().find(|x| x.statement_index == 8).unwrap();
    assert!(!nv.would_fail, "NOT VALID without VALIDATE never fails");
    assert!(p.tables.contains(&QualifiedName::new("a")));
    assert!(!p.tables.contains(&QualifiedName::new("b")));
    assert!(
        p.refs
            .iter()
            .any(|r| r.kind == ObjKind::Relation && r.name == "b" && !r.must_exist)
    );
}

/// `kind name` of the references of statement `si` that expect the object to exist
/// (`must_exist`) or not to exist.
fn refs_of(p: &ProbePlan, si: usize, must_exist: bool) -> Vec<String> {
    p.refs
        .iter()
        .filter(|r| r.statement_index == si && r.must_exist == must_exist)
        .map(|r| format!("{} {}", r.kind.as_str(), r.name))
        .collect()
}

// Issue 13, false RED: "creates column ts, which already exists".
#[test]
fn a_column_renamed_away_can_be_added_again() {
    let p = p("ALTER TABLE ev RENAME COLUMN ts TO ts_old;
ALTER TABLE ev ADD COLUMN ts timestamptz;
ALTER TABLE ev ADD COLUMN other int;
ALTER TABLE ev ALTER COLUMN ts_old SET NOT NULL;");
    assert_eq!(
        refs_of(&p, 1, false),
        Vec::<String>::new(),
        "ts was renamed away: nothing on the shard can clash"
    );
    assert_eq!(
        refs_of(&p, 2, false),
        ["column other"],
        "a name never freed is checked"
    );
    let nn = p.probes.iter().find(|x| x.statement_index == 3).unwrap();
    assert_eq!(
        nn.column.as_deref(),
        Some("ts"),
        "ts_old is the shard's ts: probed under that name"
    );
    assert!(nn.skipped.is_none());
}

// Issue 13, false RED: "references ... which does not exist" for a materialized view, a view
// or a type created earlier in the migration.
#[test]
fn relations_created_earlier_are_not_looked_up_on_the_shard() {
    let p = p("CREATE MATERIALIZED VIEW mv AS SELECT 1 AS a;
CREATE UNIQUE INDEX mv_a ON mv (a);
CREATE VIEW v AS SELECT 1 AS b;
ALTER TABLE v RENAME TO v2;
ALTER TABLE v2 OWNER TO app;
CREATE TABLE t (id int);
ALTER TABLE t RENAME TO t2;
CREATE INDEX t2_id ON t2 (id);");
    for si in 1..8 {
        assert_eq!(
            refs_of(&p, si, true),
            Vec::<String>::new(),
            "statement {si} names only objects the migration created"
        );
    }
    for t in ["mv", "v", "v2", "t", "t2"] {
        assert!(
            !p.tables.contains(&QualifiedName::new(t)),
            "{t} is not on the shard: no size"
        );
    }
    let uq = p
        .probes
        .iter()
        .find(|x| x.kind == ProbeKind::UniqueViolations)
        .unwrap();
    assert!(
        uq.skipped.is_some(),
        "a new materialized view's rows are not on the shard: {uq:?}"
    );
}

// Issue 13, false RED: dropping with CASCADE, then recreating the dependents → "already exists".
#[test]
fn recreating_what_a_drop_took_along_is_not_already_existing() {
    let p = p("DROP TABLE base CASCADE;
CREATE TABLE base (x int);
CREATE MATERIALIZED VIEW dep AS SELECT x FROM base;
CREATE UNIQUE INDEX dep_x ON dep (x);
CREATE VIEW other AS SELECT 1 AS y;");
    for si in 1..5 {
        assert_eq!(
            refs_of(&p, si, false),
            Vec::<String>::new(),
            "statement {si}: the cascade may have dropped what had the name"
        );
    }
}

// A dropped relation's indexes go with it: recreating them is not "already exists"; other
// names are still checked.
#[test]
fn a_dropped_relations_indexes_can_be_recreated() {
    let p = p("DROP MATERIALIZED VIEW mv;
CREATE MATERIALIZED VIEW mv AS SELECT 1 AS id;
CREATE UNIQUE INDEX mv_id ON mv (id);
CREATE VIEW fresh AS SELECT 1 AS y;
CREATE TABLE t (a int);");
    for si in 1..3 {
        assert_eq!(
            refs_of(&p, si, false),
            Vec::<String>::new(),
            "statement {si}"
        );
    }
    assert_eq!(refs_of(&p, 3, false), ["relation fresh"]);
    assert_eq!(refs_of(&p, 4, false), ["relation t"]);
}

// Issue 13, false RED: `DROP VIEW ... CASCADE` takes its dependent views along.
#[test]
fn drop_view_cascade_frees_its_dependents_names() {
    let p = p("DROP VIEW base CASCADE;
CREATE VIEW base AS SELECT 1 AS x;
CREATE VIEW dep AS SELECT x FROM base;");
    assert_eq!(refs_of(&p, 2, false), Vec::<String>::new());
}

// Issue 13, false RED: the cast probe ran before the type existed (cast-failures RED on an
// empty table). An enum the migration creates has known labels: no cast on the shard.
#[test]
fn a_cast_to_an_enum_created_earlier_checks_its_labels() {
    let p = p("CREATE TYPE mood AS ENUM ('ok', 'sad');
ALTER TYPE mood ADD VALUE 'happy';
ALTER TABLE t ALTER COLUMN m TYPE mood USING m::mood;
ALTER TABLE t ALTER COLUMN n TYPE public.mood;
ALTER TABLE t ALTER COLUMN o TYPE mood USING CASE WHEN o = 'x' THEN 'ok' ELSE o END::mood;");
    let casts: Vec<_> = p
        .probes
        .iter()
        .filter(|x| x.kind == ProbeKind::CastFailures)
        .collect();
    assert_eq!(casts.len(), 3);
    for c in &casts[..2] {
        match &c.check {
            Check::Labels { labels, .. } => assert_eq!(labels, &["ok", "sad", "happy"]),
            other => panic!("statement {}: {other:?}", c.statement_index + 1),
        }
        assert!(c.skipped.is_none());
    }
    assert!(
        casts[2]
            .skipped
            .as_deref()
            .is_some_and(|s| s.contains("rehearsal decides")),
        "{:?}",
        casts[2]
    );
}

// An enum of the shard that the migration extends: the new label is valid input for the cast
// although the shard does not have it yet.
#[test]
fn a_cast_to_an_extended_shard_enum_accepts_the_new_labels() {
    let p = p("ALTER TYPE status ADD VALUE 'archived';
ALTER TABLE t ALTER COLUMN s TYPE status USING s::status;
ALTER TABLE t ALTER COLUMN u TYPE other_enum;");
    let casts: Vec<_> = p
        .probes
        .iter()
        .filter(|x| x.kind == ProbeKind::CastFailures)
        .collect();
    match &casts[0].check {
        Check::Labels {
            labels, shard_enum, ..
        } => {
            assert_eq!(labels, &["archived"]);
            assert_eq!(shard_enum.as_deref(), Some("\"status\""));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&casts[1].check, Check::Cast { new_type, .. } if new_type == "other_enum"),
        "a type the migration leaves alone is cast on the shard: {:?}",
        casts[1]
    );
}

// Dropping a column takes its constraints along: reusing a constraint name is not "already
// exists"; without such a drop it is checked.
#[test]
fn a_dropped_columns_constraint_names_can_be_reused() {
    let p = p("ALTER TABLE t DROP COLUMN a;
ALTER TABLE t ADD CONSTRAINT t_a_check CHECK (b > 0);");
    assert_eq!(refs_of(&p, 1, false), Vec::<String>::new());
    let p2 = self::p("ALTER TABLE t ADD CONSTRAINT t_a_check CHECK (b > 0);");
    assert_eq!(
        refs_of(&p2, 0, false),
        ["constraint t_a_check"],
        "{:?}",
        p2.refs
    );
}

// A constraint dropped and added again under its name: the name is free at the ADD.
#[test]
fn a_constraint_dropped_and_added_again_is_not_already_existing() {
    let p = p("ALTER TABLE t DROP CONSTRAINT t_b_check;
ALTER TABLE t ADD CONSTRAINT t_b_check CHECK (b > 1);");
    assert_eq!(refs_of(&p, 0, true), ["table ", "constraint t_b_check"]);
    assert_eq!(refs_of(&p, 1, false), Vec::<String>::new());
}

/// Issue 15: an added `NOT NULL` column without a default on a table emptied earlier (`DELETE`
/// without `WHERE`, nothing inserted since) would fail on no row; an `INSERT` in between, or a
/// `DELETE ... WHERE`, keeps the probe failing.
#[test]
fn required_column_after_emptying_delete_would_not_fail() {
    let p = p("BEGIN;
DELETE FROM flags;
ALTER TABLE flags ADD COLUMN scope text NOT NULL;
DELETE FROM s;
INSERT INTO s (id) VALUES (1);
ALTER TABLE s ADD COLUMN d text NOT NULL;
DELETE FROM t WHERE old;
ALTER TABLE t ADD COLUMN k text NOT NULL;
COMMIT;");
    let at = |i: usize| {
        p.probes
            .iter()
            .find(|x| x.kind == ProbeKind::NotNullViolations && x.statement_index == i)
            .unwrap_or_else(|| panic!("no probe at {i}: {:?}", p.probes))
    };
    assert!(!at(2).would_fail, "{:?}", at(2));
    assert!(
        at(2)
            .note
            .as_deref()
            .unwrap_or("")
            .contains("statement 2 empties the table")
    );
    assert!(at(5).would_fail);
    assert!(at(7).would_fail);
}

/// The real migrations of the corpus that add a column and set it `NOT NULL` later in the same
/// file all backfill it in between: none gets the every-row-is-NULL probe (which would be a
/// false red); each `SET NOT NULL` of an added column is left to the rehearsal.
#[test]
fn corpus_migrations_that_backfill_an_added_column_are_not_all_rows_null() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = [
        here.join("../../../shared/corpus"),
        here.join("../../../../shared/corpus"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
    .expect("the shared corpus beside the checkout");
    let files = [
        "crates.io/migrations/2017-10-08-193512_category_trees/up.sql",
        "chirpstack-application-server/migrations/0030_lorawan_11_keys.up.sql",
        "chirpstack-application-server/migrations/0011_node_description_and_is_abp.up.sql",
        "chirpstack-application-server/migrations/0059_multicast_group_application_id.up.sql",
        "chirpstack-application-server/migrations/0010_recreate_application_table.up.sql",
        "harness/migrations/0188.up.sql",
        "harness/migrations/0189.up.sql",
        "harness/migrations/0059_alter_table_gitspace_events_add_timestamp_rename_uid.up.sql",
    ];
    let mut set_not_null_of_added = 0;
    for f in files {
        let sql = std::fs::read_to_string(corpus.join(f)).expect(f);
        let migration = migration_parser::parse(f, &sql, &Default::default()).expect(f);
        let plan = plan(&migration);
        for probe in &plan.probes {
            if probe.kind != ProbeKind::NotNullViolations {
                continue;
            }
            assert!(
                !matches!(probe.check, Check::AllRowsNull { .. }),
                "{f}: statement {} {probe:#?}",
                probe.statement_index + 1
            );
            if probe
                .skipped
                .as_deref()
                .is_some_and(|s| s.contains("backfilled by statement"))
            {
                set_not_null_of_added += 1;
            }
        }
    }
    assert!(set_not_null_of_added >= 8, "{set_not_null_of_added}");
}

/// A cast to a domain the migration creates over a type of the shard is checked on the shard's
/// rows: the cast to the base type, the domain's CHECKs and its NOT NULL. A domain changed in
/// between by a statement the model does not follow (`ALTER DOMAIN`), or over a type the
/// migration creates, is left to the rehearsal, and says so.
#[test]
fn casts_to_a_created_domain_probe_its_base_type_and_constraints() {
    let plan1 = p(
        "CREATE DOMAIN pos AS integer NOT NULL CHECK (VALUE > 0) CHECK (VALUE < 1000);
ALTER TABLE t ALTER COLUMN v TYPE pos USING v::integer;
ALTER TABLE u ALTER COLUMN w TYPE pos;",
    );
    let at = |si: usize, kind: ProbeKind| {
        plan1
            .probes
            .iter()
            .find(|x| x.statement_index == si && x.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} at {si}: {:#?}", plan1.probes))
    };
    // With a USING expression: the cast to integer, and one query for the checks and NULLs.
    let cast = at(1, ProbeKind::CastFailures);
    assert!(cast.skipped.is_none(), "{cast:?}");
    assert!(
        matches!(&cast.check, Check::Cast { new_type, .. } if new_type == "integer"),
        "{cast:?}"
    );
    let checks = at(1, ProbeKind::CheckViolations);
    assert!(checks.skipped.is_none() && checks.would_fail, "{checks:?}");
    assert_eq!(checks.constraint.as_deref(), Some("pos"));
    match &checks.check {
        Check::DomainChecks {
            base,
            checks,
            null_breaks,
            ..
        } => {
            assert_eq!(base, "integer");
            assert_eq!(checks.len(), 2, "{checks:?}");
            assert!(
                null_breaks,
                "USING: NULL results are counted with the checks"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !plan1
            .probes
            .iter()
            .any(|x| x.statement_index == 1 && x.kind == ProbeKind::NotNullViolations)
    );
    // A plain cast: the column's NULLs are their own probe.
    let nulls = at(2, ProbeKind::NotNullViolations);
    assert!(
        matches!(&nulls.check, Check::Nulls { column } if column == "w"),
        "{nulls:?}"
    );
    assert!(matches!(
        &at(2, ProbeKind::CheckViolations).check,
        Check::DomainChecks {
            null_breaks: false,
            ..
        }
    ));

    let plan2 = p("CREATE DOMAIN pos AS integer CHECK (VALUE > 0);
ALTER DOMAIN pos ADD CONSTRAINT small CHECK (VALUE < 10);
ALTER TABLE t ALTER COLUMN v TYPE pos;
CREATE TYPE mood AS ENUM ('a');
CREATE DOMAIN m AS mood CHECK (VALUE <> 'a');
ALTER TABLE t ALTER COLUMN x TYPE m;");
    for si in [2, 5] {
        let cast = plan2
            .probes
            .iter()
            .find(|x| x.statement_index == si && x.kind == ProbeKind::CastFailures)
            .unwrap();
        assert!(
            cast.skipped
                .as_deref()
                .unwrap_or("")
                .contains("rehearsal decides"),
            "{cast:?}"
        );
        assert!(
            !plan2
                .probes
                .iter()
                .any(|x| x.statement_index == si && x.kind == ProbeKind::CheckViolations)
        );
    }
}

/// What the model cannot follow leaves a created domain to the rehearsal: a `DO` block or any
/// other unfollowed statement between its creation and the cast (it may `ALTER DOMAIN` under
/// any spelling), a `COLLATE` (its checks compare under it). A backfill in between makes the
/// domain's probes inconclusive, never red.
#[test]
fn a_created_domain_the_model_cannot_follow_is_left_to_the_rehearsal() {
    for sql in [
        "CREATE DOMAIN pos AS integer CHECK (VALUE > 0);
DO $$ BEGIN EXECUTE 'ALTER DOMAIN pos ADD CONSTRAINT small CHECK (VALUE < 10)'; END $$;
ALTER TABLE t ALTER COLUMN v TYPE pos;",
        "CREATE DOMAIN pos AS integer CHECK (VALUE > 0);
GRANT USAGE ON DOMAIN pos TO app;
ALTER TABLE t ALTER COLUMN v TYPE pos;",
        "CREATE DOMAIN code AS text COLLATE \"C\" CHECK (VALUE >= 'a');
SELECT 1;
ALTER TABLE t ALTER COLUMN v TYPE code;",
    ] {
        let plan = p(sql);
        let cast = plan
            .probes
            .iter()
            .find(|x| x.statement_index == 2 && x.kind == ProbeKind::CastFailures)
            .unwrap();
        assert!(
            cast.skipped
                .as_deref()
                .unwrap_or("")
                .contains("rehearsal decides"),
            "{sql}: {cast:?}"
        );
        assert!(
            !plan
                .probes
                .iter()
                .any(|x| x.kind == ProbeKind::CheckViolations),
            "{sql}"
        );
    }
    let plan = p("CREATE DOMAIN pos AS integer NOT NULL CHECK (VALUE > 0);
UPDATE t SET v = 1 WHERE v IS NULL OR v <= 0;
ALTER TABLE t ALTER COLUMN v TYPE pos;");
    for kind in [ProbeKind::CheckViolations, ProbeKind::NotNullViolations] {
        let x = plan
            .probes
            .iter()
            .find(|x| x.statement_index == 2 && x.kind == kind)
            .unwrap();
        assert!(
            x.skipped.is_none() && !x.would_fail && x.note.is_some(),
            "{x:?}"
        );
    }
}

/// The probe of `kind` planned for statement `si` of `sql`.
fn probe_at(sql: &str, si: usize, kind: ProbeKind) -> PlannedProbe {
    p(sql)
        .probes
        .into_iter()
        .find(|x| x.statement_index == si && x.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} at statement {si} of {sql}"))
}

/// Whether probe `x` was left to the rehearsal.
fn left_to_rehearsal(x: &PlannedProbe) -> bool {
    x.skipped
        .as_deref()
        .is_some_and(|s| s.contains("rehearsal decides"))
}

/// `(name, value)` of what a probe binds beside the row.
fn bound_of(x: &PlannedProbe) -> Vec<(String, String)> {
    match &x.check {
        Check::Duplicates { bound, .. } | Check::Expression { bound, .. } => bound
            .iter()
            .map(|b| (b.name.clone(), b.sql.clone()))
            .collect(),
        other => panic!("{other:?}"),
    }
}

/// The keys of a `Duplicates` probe.
fn keys_of(x: &PlannedProbe) -> &[String] {
    match &x.check {
        Check::Duplicates { keys, .. } => keys,
        other => panic!("{other:?}"),
    }
}

/// A shard domain an earlier statement the model does not follow changes (`ALTER DOMAIN ...
/// DROP NOT NULL`, also inside a `DO` block): the shard's domain is not what the cast will
/// meet, so the rehearsal decides (counting its NULLs would be a false RED, counting against
/// its old checks a false GREEN).
#[test]
fn a_shard_domain_changed_earlier_is_left_to_the_rehearsal() {
    for sql in [
        "ALTER DOMAIN nn DROP NOT NULL;
ALTER TABLE t ALTER COLUMN n TYPE nn;",
        "DO $$ BEGIN EXECUTE 'ALTER DOMAIN nn ADD CONSTRAINT pos CHECK (VALUE > 0)'; END $$;
ALTER TABLE t ALTER COLUMN n TYPE nn;",
    ] {
        let cast = probe_at(sql, 1, ProbeKind::CastFailures);
        assert!(left_to_rehearsal(&cast), "{sql}: {cast:?}");
    }
    // A statement that does not name it (a longer name holding it is another name), or only
    // names a built-in type, changes nothing for the cast.
    for sql in [
        "ALTER DOMAIN nn_other DROP NOT NULL;
ALTER TABLE t ALTER COLUMN n TYPE nn;",
        "DO $$ DECLARE i integer; BEGIN i := 1; END $$;
ALTER TABLE t ALTER COLUMN n TYPE integer;",
    ] {
        let cast = probe_at(sql, 1, ProbeKind::CastFailures);
        assert!(cast.skipped.is_none(), "{sql}: {cast:?}");
    }
}

/// A unique key over a column added earlier with a default evaluated once: every existing row
/// holds that value, so the key is the value (cast to the column's type) and the shard's rows
/// are probed; a backfill in between, a volatile default or a primary key leave it to the
/// rehearsal.
#[test]
fn a_unique_key_over_a_column_added_with_a_constant_default_is_probed() {
    let u = probe_at(
        "ALTER TABLE accounts ADD COLUMN slug text NOT NULL DEFAULT '';
ALTER TABLE accounts ADD CONSTRAINT accounts_slug_key UNIQUE (org_id, slug);",
        1,
        ProbeKind::UniqueViolations,
    );
    assert!(u.skipped.is_none(), "{u:?}");
    assert_eq!(keys_of(&u), ["\"org_id\"", "(('')::text)"]);
    let u = probe_at(
        "ALTER TABLE accounts ADD COLUMN n int;
ALTER TABLE accounts ADD CONSTRAINT accounts_n_key UNIQUE (n);",
        1,
        ProbeKind::UniqueViolations,
    );
    assert_eq!(keys_of(&u), ["((NULL)::int)"]);
    for sql in [
        "ALTER TABLE accounts ADD COLUMN slug text DEFAULT '';
ALTER TABLE accounts ADD CONSTRAINT k UNIQUE (slug);
SELECT 1;",
        "ALTER TABLE accounts ADD COLUMN u uuid DEFAULT gen_random_uuid();
ALTER TABLE accounts ADD CONSTRAINT k UNIQUE (u);",
        "ALTER TABLE accounts ADD COLUMN slug text DEFAULT '';
ALTER TABLE accounts ADD PRIMARY KEY (slug);",
    ] {
        let u = probe_at(sql, 1, ProbeKind::UniqueViolations);
        let expect_probed = sql.contains("SELECT 1");
        assert_eq!(u.skipped.is_none(), expect_probed, "{sql}: {u:?}");
    }
    let u = probe_at(
        "ALTER TABLE accounts ADD COLUMN slug text DEFAULT '';
UPDATE accounts SET slug = id::text;
ALTER TABLE accounts ADD CONSTRAINT k UNIQUE (slug);",
        2,
        ProbeKind::UniqueViolations,
    );
    assert!(u.skipped.is_some(), "{u:?}");
}

/// The same for a unique index: a plain key naming a column added earlier is its single value,
/// or left to the rehearsal; never a probe of a column the shard does not have (42703).
#[test]
fn a_unique_index_over_an_added_column_is_its_value_or_the_rehearsals() {
    let u = probe_at(
        "ALTER TABLE a ADD COLUMN s text DEFAULT '';
CREATE UNIQUE INDEX i ON a (org_id, s DESC);",
        1,
        ProbeKind::UniqueViolations,
    );
    assert!(u.skipped.is_none(), "{u:?}");
    assert_eq!(keys_of(&u), ["\"org_id\"", "(('')::text)"]);
    for sql in [
        "ALTER TABLE a ADD COLUMN s uuid DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX i ON a (s);",
        "ALTER TABLE a ADD COLUMN s uuid DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX i ON a (lower(s::text));",
        "ALTER TABLE a ADD COLUMN s text DEFAULT '';
UPDATE a SET s = id::text;
CREATE UNIQUE INDEX i ON a (lower(s));",
    ] {
        let si = sql.matches(';').count() - 1;
        let u = probe_at(sql, si, ProbeKind::UniqueViolations);
        assert!(left_to_rehearsal(&u), "{sql}: {u:?}");
    }
    // An expression over a column added earlier with a known value binds it.
    let u = probe_at(
        "ALTER TABLE a ADD COLUMN s text DEFAULT '';
CREATE UNIQUE INDEX i ON a (lower(s));",
        1,
        ProbeKind::UniqueViolations,
    );
    assert!(u.skipped.is_none(), "{u:?}");
    assert_eq!(bound_of(&u), [("s".into(), "(('')::text)".into())]);
    // A key naming a column renamed earlier reads it under its name on the shard (it probed
    // `username` where the shard has `email`: 42703, a false YELLOW, on chirpstack's 0052 down).
    let u = probe_at(
        "ALTER TABLE a RENAME COLUMN email TO username;
CREATE UNIQUE INDEX i ON a (username);",
        1,
        ProbeKind::UniqueViolations,
    );
    assert_eq!(keys_of(&u), ["\"email\""]);
    // An expression over columns of the shard only is probed.
    let u = probe_at(
        "ALTER TABLE a ADD COLUMN s text DEFAULT '';
CREATE UNIQUE INDEX i ON a (lower(email));",
        1,
        ProbeKind::UniqueViolations,
    );
    assert!(u.skipped.is_none(), "{u:?}");
}

/// A `CHECK`, a unique index's expression or its predicate reading a column added or renamed
/// earlier in the migration is probed on the shard's rows with that name bound beside the row
/// (it probed a column the shard does not have: 42703, a false YELLOW on the common `ADD
/// COLUMN status … DEFAULT 'new'` then `CHECK (status IN …)`); an added column whose value in
/// the existing rows is not known (volatile default, backfilled) leaves it to the rehearsal.
#[test]
fn expressions_over_added_or_renamed_columns_bind_them() {
    let c = probe_at(
        "ALTER TABLE a ADD COLUMN status text NOT NULL DEFAULT 'new';
ALTER TABLE a ADD CONSTRAINT c CHECK (status IN ('new', 'old') AND amount >= 0);",
        1,
        ProbeKind::CheckViolations,
    );
    assert!(c.skipped.is_none(), "{c:?}");
    assert_eq!(bound_of(&c), [("status".into(), "(('new')::text)".into())]);
    let c = probe_at(
        "ALTER TABLE a RENAME COLUMN v TO \"W\";
ALTER TABLE a ADD CONSTRAINT c CHECK (\"W\" > 0);",
        1,
        ProbeKind::CheckViolations,
    );
    assert_eq!(bound_of(&c), [("W".into(), "x.\"v\"".into())]);
    // A word inside a string literal is not a name.
    let c = probe_at(
        "ALTER TABLE a ADD COLUMN s text DEFAULT md5(random()::text);
ALTER TABLE a ADD CONSTRAINT c CHECK (kind <> 's');",
        1,
        ProbeKind::CheckViolations,
    );
    assert!(c.skipped.is_none() && bound_of(&c).is_empty(), "{c:?}");
    let c = probe_at(
        "ALTER TABLE a ADD COLUMN s text DEFAULT md5(random()::text);
ALTER TABLE a ADD CONSTRAINT c CHECK (s <> '');",
        1,
        ProbeKind::CheckViolations,
    );
    assert!(left_to_rehearsal(&c), "{c:?}");
    let u = probe_at(
        "ALTER TABLE a ADD COLUMN deleted_at timestamptz;
ALTER TABLE a RENAME COLUMN mail TO email;
CREATE UNIQUE INDEX i ON a (email) WHERE deleted_at IS NULL;",
        2,
        ProbeKind::UniqueViolations,
    );
    assert!(u.skipped.is_none(), "{u:?}");
    assert_eq!(keys_of(&u), ["\"mail\""]);
    assert_eq!(
        bound_of(&u),
        [("deleted_at".into(), "((NULL)::timestamptz)".into())]
    );
}

//! Unit tests of probe planning: what the plan holds for a migration (no database).

use migration_parser::{Migration, QualifiedName};

use super::plan;
use crate::probe::{ObjKind, ProbeKind, ProbePlan};

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

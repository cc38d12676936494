//! Probes find exactly the planted problems, on ordinary and hostile schema names.

mod common;

use common::*;
use simulator::{
    CancelToken, NoProgress, ProbeKind, ProbeResult, RehearsalMode, SimOptions, SimulationResult,
    Simulator,
};

const HOSTILE: &str = "te\"nant; DROP TABLE x; --";

fn schema_sql(schema: &str) -> String {
    let s = simulator::quote_ident(schema);
    format!(
        r#"
CREATE SCHEMA {s};
CREATE TABLE {s}.parent (id int PRIMARY KEY);
INSERT INTO {s}.parent SELECT g FROM generate_series(1, 10) g;
CREATE TABLE {s}.child (id int PRIMARY KEY, parent_id int);
INSERT INTO {s}.child VALUES (1, 1), (2, 2), (3, 100), (4, 101), (5, 102), (6, NULL), (7, 100);
CREATE TABLE {s}.users (id int PRIMARY KEY, email text, nick text);
INSERT INTO {s}.users VALUES (1, 'a@x', 'n1'), (2, 'a@x', 'n2'), (3, 'b@x', 'n3'), (4, 'b@x', 'n3'),
  (5, 'b@x', NULL), (6, NULL, NULL), (7, NULL, NULL), (8, 'c@x', 'n8');
CREATE TABLE {s}.items (id int PRIMARY KEY, price int);
INSERT INTO {s}.items VALUES (1, 10), (2, -1), (3, -5), (4, NULL), (5, 0);
CREATE TABLE {s}.amounts (id int PRIMARY KEY, v text);
INSERT INTO {s}.amounts VALUES (1, '1'), (2, ' 42 '), (3, 'abc'), (4, '99999999999'), (5, NULL), (6, '-7');
CREATE TABLE {s}.empty_t (id int PRIMARY KEY);
"#
    )
}

const MIGRATION: &str = r#"
ALTER TABLE child ADD CONSTRAINT child_parent_fk FOREIGN KEY (parent_id) REFERENCES parent (id);
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
CREATE UNIQUE INDEX users_email_key ON users (email);
ALTER TABLE users ADD CONSTRAINT users_nick_key UNIQUE NULLS NOT DISTINCT (nick);
ALTER TABLE items ADD CONSTRAINT price_positive CHECK (price >= 0);
ALTER TABLE amounts ALTER COLUMN v TYPE integer;
ALTER TABLE amounts ALTER COLUMN v TYPE bigint USING (v::numeric * 2)::bigint;
ALTER TABLE users ADD COLUMN tier int NOT NULL;
ALTER TABLE empty_t ADD COLUMN tier int NOT NULL;
ALTER TABLE no_such_table ADD COLUMN x int;
ALTER TABLE users ADD COLUMN nick text;
CREATE TABLE fresh (id int PRIMARY KEY, parent_id int);
ALTER TABLE fresh ADD CONSTRAINT fresh_fk FOREIGN KEY (parent_id) REFERENCES parent (id);
ALTER TABLE users ADD COLUMN flag boolean NOT NULL DEFAULT false;
ALTER TABLE users ALTER COLUMN flag SET NOT NULL;
"#;

/// The simulation of `m` on `fleet` with the probes alone (no rehearsal).
async fn probes_only(m: &migration_parser::Migration, fleet: &topology::Fleet) -> SimulationResult {
    Simulator::new(SimOptions {
        rehearsal: RehearsalMode::Skip,
        ..Default::default()
    })
    .run(m, fleet, None, &NoProgress, &CancelToken::new())
    .await
    .expect("run")
}

/// [`probes_only`], asserting that the probes left database `app` of `pg` as they found it
/// ([`target_state`]).
async fn probes_leaving_target(
    pg: &topology::ephemeral::EphemeralPg,
    m: &migration_parser::Migration,
    fleet: &topology::Fleet,
) -> SimulationResult {
    let before = target_state(pg).await;
    let res = probes_only(m, fleet).await;
    assert_eq!(target_state(pg).await, before, "the target changed");
    res
}

/// The SQLSTATE PostgreSQL fails `sql` (statements, each ending in `;`) with on schema
/// `tenant_a` of database `app`, run in a transaction that is rolled back; `None` when it
/// succeeds: what the migration really does on the rows the probes read.
async fn postgres_fails_with(pg: &topology::ephemeral::EphemeralPg, sql: &str) -> Option<String> {
    let mut c = conn(pg, "app").await;
    let run = format!("BEGIN; SET LOCAL search_path TO tenant_a, public; {sql} ROLLBACK");
    let r = sqlx::raw_sql(sqlx::AssertSqlSafe(run))
        .execute(&mut c)
        .await;
    if r.is_err() {
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut c)
            .await
            .expect("rollback");
    }
    let _ = sqlx::Connection::close(c).await;
    r.err().and_then(|e| {
        e.as_database_error()
            .and_then(|d| d.code().map(|c| c.into_owned()))
    })
}

/// What the probes must leave as they found it in database `app`: the catalog (every relation
/// with its file, every type), every row of the tenant schemas, the sequences, replication
/// slots, prepared transactions, other sessions and locks.
async fn target_state(pg: &topology::ephemeral::EphemeralPg) -> Vec<Option<String>> {
    let mut c = conn(pg, "app").await;
    // A closed session's backend exits shortly after its client left; autovacuum's workers
    // are no session of the probes (their locks are not counted below).
    for _ in 0..50 {
        let others: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut c)
        .await
        .expect("sessions");
        if others == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut out = Vec::new();
    for q in [
        "SELECT string_agg(c.oid || ':' || c.relname || ':' || c.relfilenode || ':' || c.relkind::text, ',' ORDER BY c.oid) FROM pg_class c",
        "SELECT string_agg(t.oid || ':' || t.typname, ',' ORDER BY t.oid) FROM pg_type t",
        "SELECT string_agg(format('%s.%s', n.nspname, c.relname), ',' ORDER BY 1) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'tenant%' AND c.relkind = 'r'",
        "SELECT string_agg(format('%s.%s=%s', schemaname, sequencename, last_value), ',' ORDER BY 1) FROM pg_sequences",
        "SELECT count(*)::text FROM pg_replication_slots",
        "SELECT count(*)::text FROM pg_prepared_xacts",
        "SELECT count(*)::text FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        "SELECT count(*)::text FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.backend_type = 'client backend' AND l.pid <> pg_backend_pid()",
    ] {
        out.push(sqlx::query_scalar(q).fetch_one(&mut c).await.expect(q));
    }
    // Every row of every tenant table.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'tenant%' AND c.relkind = 'r' ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .expect("tables");
    for t in tables {
        let q = format!(
            "SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM {t} x"
        );
        out.push(
            sqlx::query_scalar(sqlx::AssertSqlSafe(q))
                .fetch_one(&mut c)
                .await
                .expect("rows"),
        );
    }
    let _ = sqlx::Connection::close(c).await;
    out
}

fn find(probes: &[ProbeResult], kind: ProbeKind, stmt: usize) -> &ProbeResult {
    probes
        .iter()
        .find(|p| p.kind == kind && p.statement_index == Some(stmt))
        .unwrap_or_else(|| panic!("no {kind:?} probe for statement {stmt}: {probes:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_find_exactly_the_planted_problems() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", &schema_sql("tenant_a")).await;
    exec(&pg, "app", &schema_sql(HOSTILE)).await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a"), (0, "app", HOSTILE)]);
    let m = migration(MIGRATION);
    assert_eq!(m.statements.len(), 15, "{:#?}", m.statements);
    let res = probes_only(&m, &fleet).await;
    assert_eq!(res.shards.len(), 2);
    for ev in &res.shards {
        assert!(ev.unreachable.is_none(), "{ev:#?}");
        let p = &ev.probes;
        // orphans: 100 (twice), 101, 102; NULL parent_id is not an orphan.
        let o = find(p, ProbeKind::FkOrphans, 0);
        assert_eq!((o.count, o.would_fail), (4, true), "{o:#?}");
        let mut samples = o.samples.clone();
        samples.sort();
        assert_eq!(samples, vec!["100", "100", "101", "102"]);
        assert!(
            o.sql.contains(&simulator::quote_ident(&ev.schema)),
            "{}",
            o.sql
        );
        // NULL emails: ids 6, 7.
        let n = find(p, ProbeKind::NotNullViolations, 1);
        assert_eq!(n.count, 2);
        let mut s = n.samples.clone();
        s.sort();
        assert_eq!(s, vec!["6", "7"]);
        // duplicate groups: a@x (2), b@x (3); NULLs are distinct.
        let d = find(p, ProbeKind::UniqueViolations, 2);
        assert_eq!(d.count, 2, "{d:#?}");
        let mut s = d.samples.clone();
        s.sort();
        assert_eq!(s, vec!["a@x x2", "b@x x3"]);
        // NULLS NOT DISTINCT: n3 (2) and NULL (3) are duplicate groups.
        let d = find(p, ProbeKind::UniqueViolations, 3);
        assert_eq!(d.count, 2, "{d:#?}");
        // CHECK violations: -1, -5 (NULL passes).
        let c = find(p, ProbeKind::CheckViolations, 4);
        assert_eq!(c.count, 2, "{c:#?}");
        // cast text -> integer: 'abc' and 99999999999 fail; ' 42 ' and '-7' are fine. PG15: regex fallback, exact.
        let c = find(p, ProbeKind::CastFailures, 5);
        assert_eq!((c.count, c.exact), (2, true), "{c:#?}");
        let mut s = c.samples.clone();
        s.sort();
        assert_eq!(s, vec!["99999999999", "abc"]);
        // USING expression: at least one failure, with the server's message.
        let c = find(p, ProbeKind::CastFailures, 6);
        assert!(c.count >= 1 && c.would_fail && !c.exact, "{c:#?}");
        assert!(c.samples[0].contains("abc"), "{c:#?}");
        // ADD COLUMN NOT NULL without default: 8 rows would be NULL; empty table: fine.
        let a = find(p, ProbeKind::NotNullViolations, 7);
        assert_eq!((a.count, a.would_fail), (8, true));
        let a = find(p, ProbeKind::NotNullViolations, 8);
        assert_eq!((a.count, a.would_fail), (0, false));
        // drift: missing table, existing column.
        let m = find(p, ProbeKind::MissingObject, 9);
        assert_eq!(m.table, "no_such_table");
        let e = find(p, ProbeKind::ObjectAlreadyExists, 10);
        assert_eq!(e.column.as_deref(), Some("nick"));
        // FK on a table created by the migration: skipped, not an orphan.
        let f = find(p, ProbeKind::FkOrphans, 12);
        assert!(f.skipped.is_some() && !f.would_fail, "{f:#?}");
        // SET NOT NULL on a column just added with a default: skipped.
        let f = find(p, ProbeKind::NotNullViolations, 14);
        assert!(f.skipped.is_some() && !f.would_fail, "{f:#?}");
        // sizes
        let sizes: Vec<_> = p
            .iter()
            .filter(|r| r.kind == ProbeKind::TableSize)
            .collect();
        assert!(
            sizes
                .iter()
                .any(|r| r.table == "users" && r.bytes.unwrap_or(0) > 0),
            "{sizes:#?} {:#?}",
            ev.tables
        );
        assert!(
            ev.tables
                .iter()
                .any(|t| t.table == "no_such_table" && !t.exists)
        );
        // The sizes are PostgreSQL's own figures for the table (main fork), the table with its
        // indexes and TOAST, and its indexes.
        let users = ev.tables.iter().find(|t| t.table == "users").unwrap();
        let mut c = conn(&pg, "app").await;
        let (heap, total, idx): (i64, i64, i64) = sqlx::query_as(
            "SELECT pg_relation_size(o), pg_total_relation_size(o), pg_indexes_size(o) \
               FROM (SELECT format('%I.users', $1::text)::regclass AS o) r",
        )
        .bind(&ev.schema)
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert!(heap > 0 && idx > 0 && total > heap + idx, "{users:#?}");
        assert_eq!(
            (users.heap_bytes, users.total_bytes, users.index_bytes),
            (heap, total, idx)
        );
        // Nothing else reported as failing.
        let failing: Vec<_> = p
            .iter()
            .filter(|r| r.would_fail)
            .map(|r| (r.kind, r.statement_index))
            .collect();
        assert_eq!(failing.len(), 10, "{failing:?}");
        assert!(p.iter().all(|r| r.error.is_none()), "{p:#?}");
    }
    // The generated SQL is shown to users (reports): snapshot it for the hostile schema.
    let hostile = res.shards.iter().find(|s| s.schema == HOSTILE).unwrap();
    let sql: Vec<String> = hostile
        .probes
        .iter()
        .filter(|p| {
            !matches!(
                p.kind,
                ProbeKind::TableSize | ProbeKind::MissingObject | ProbeKind::ObjectAlreadyExists
            )
        })
        .map(|p| {
            format!(
                "-- statement {} {} count={} would_fail={}\n{}",
                p.statement_index.map(|i| i + 1).unwrap_or(0),
                p.kind.as_str(),
                p.count,
                p.would_fail,
                if p.sql.is_empty() {
                    "(skipped)"
                } else {
                    &p.sql
                }
            )
        })
        .collect();
    insta::assert_snapshot!("probe_sql_hostile_schema", sql.join("\n\n"));
    // The hostile schema name did not break anything: the tables are still there.
    let mut c = conn(&pg, "app").await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = $1")
        .bind(HOSTILE)
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 6);
    drop(c);
    assert!(
        leftover_sessions(&pg)
            .await
            .iter()
            .all(|s| !s.contains(simulator::APPLICATION_NAME))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_existing_constraints_and_own_fingerprints() {
    let pg = start().await;
    create_db(&pg, "app").await;
    for s in ["tenant_x", "tenant_y", "tenant_z"] {
        exec(&pg, "app", &schema_sql(s)).await;
        exec(
            &pg,
            "app",
            &format!(
                "ALTER TABLE {s}.child ADD CONSTRAINT child_fk_nv FOREIGN KEY (parent_id) REFERENCES {s}.parent (id) NOT VALID;
                 ALTER TABLE {s}.items ADD CONSTRAINT items_ck_nv CHECK (price > -2) NOT VALID;"
            ),
        )
        .await;
    }
    exec(
        &pg,
        "app",
        "ALTER TABLE tenant_z.items ADD COLUMN drift int",
    )
    .await;
    let fleet = fleet(
        &[&pg],
        &[
            (0, "app", "tenant_x"),
            (0, "app", "tenant_y"),
            (0, "app", "tenant_z"),
        ],
    );
    let m = migration(
        "ALTER TABLE child VALIDATE CONSTRAINT child_fk_nv;\nALTER TABLE items VALIDATE CONSTRAINT items_ck_nv;\nALTER TABLE items VALIDATE CONSTRAINT nope;",
    );
    let sim = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::Skip,
        ..Default::default()
    });
    // An empty catalog map: the simulator fingerprints the shards itself.
    let empty = std::collections::BTreeMap::new();
    let res = sim
        .run(&m, &fleet, Some(&empty), &NoProgress, &CancelToken::new())
        .await
        .expect("run");
    let fps: Vec<String> = res
        .shards
        .iter()
        .map(|s| s.fingerprint.clone().unwrap())
        .collect();
    assert!(fps.iter().all(|f| f.starts_with("sim:")), "{fps:?}");
    assert_eq!(fps[0], fps[1], "identical tenants share a shape");
    assert_ne!(fps[0], fps[2], "drifted tenant differs");
    for ev in &res.shards {
        let fk = find(&ev.probes, ProbeKind::FkOrphans, 0);
        assert_eq!((fk.count, fk.would_fail), (4, true), "{fk:#?}");
        let ck = find(&ev.probes, ProbeKind::CheckViolations, 1);
        assert_eq!((ck.count, ck.would_fail), (1, true), "{ck:#?}");
        let missing = find(&ev.probes, ProbeKind::MissingObject, 2);
        assert_eq!(missing.constraint.as_deref(), Some("nope"));
    }
}

/// A cast to a domain the migration creates is checked on the shard's rows (the rehearsal's
/// tables are empty and would pass it): the domain's CHECKs and NOT NULL on the converted
/// values; values that do not convert at all are the cast probe's, and the domain's probe then
/// says why it did not count. On an ordinary and a hostile schema name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn casts_to_a_created_domain_are_checked_on_the_shards_rows() {
    let pg = start().await;
    create_db(&pg, "app").await;
    for schema in ["tenant_a", HOSTILE] {
        let s = simulator::quote_ident(schema);
        exec(
            &pg,
            "app",
            &format!(
                "CREATE SCHEMA {s};
                 CREATE TABLE {s}.amounts (id int PRIMARY KEY, v int, w text);
                 INSERT INTO {s}.amounts VALUES (1, 5, '5'), (2, -3, '7'), (3, NULL, 'x'), (4, 2000, '8');
                 CREATE TABLE {s}.zeros (id int PRIMARY KEY, z int);
                 INSERT INTO {s}.zeros VALUES (1, 4), (2, 0);
                 CREATE FUNCTION {s}.evil({s}.zeros) RETURNS int VOLATILE LANGUAGE plpgsql
                   AS $f$ BEGIN RAISE EXCEPTION 'evil was called'; END $f$;"
            ),
        )
        .await;
    }
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a"), (0, "app", HOSTILE)]);
    let m = migration(
        "CREATE DOMAIN pos AS integer NOT NULL CHECK (VALUE > 0) CHECK (VALUE < 1000);
ALTER TABLE amounts ALTER COLUMN v TYPE pos;
ALTER TABLE amounts ALTER COLUMN w TYPE pos USING w::integer;
CREATE DOMAIN quotient AS integer CHECK (100 / VALUE > 1);
ALTER TABLE zeros ALTER COLUMN z TYPE quotient;
CREATE DOMAIN sneaky AS integer CHECK (VALUE > x.evil);
ALTER TABLE zeros ALTER COLUMN z TYPE sneaky;",
    );
    let res = probes_only(&m, &fleet).await;
    assert_eq!(res.shards.len(), 2);
    for ev in &res.shards {
        let p = &ev.probes;
        // Every value of v converts to integer; -3 and 2000 break a CHECK, id 3 is NULL.
        let cast = find(p, ProbeKind::CastFailures, 1);
        assert_eq!((cast.count, cast.error.is_none()), (0, true), "{cast:#?}");
        let checks = find(p, ProbeKind::CheckViolations, 1);
        assert_eq!((checks.count, checks.would_fail), (2, true), "{checks:#?}");
        let mut keys = checks.samples.clone();
        keys.sort();
        assert_eq!(keys, vec!["2", "4"], "{checks:#?}");
        assert_eq!(checks.constraint.as_deref(), Some("pos"));
        let nulls = find(p, ProbeKind::NotNullViolations, 1);
        assert_eq!(
            (nulls.count, nulls.samples.clone()),
            (1, vec!["3".to_string()]),
            "{nulls:#?}"
        );
        // 'x' does not convert: the cast probe finds it; the domain's checks were not counted.
        let cast = find(p, ProbeKind::CastFailures, 2);
        assert!(cast.count >= 1 && cast.would_fail, "{cast:#?}");
        let checks = find(p, ProbeKind::CheckViolations, 2);
        assert!(
            checks.count == 0
                && checks.error.is_none()
                && checks
                    .skipped
                    .as_deref()
                    .unwrap_or("")
                    .contains("cast_failures"),
            "{checks:#?}"
        );
        // A check that raises on a row (100 / 0 on the row with z = 0) is a failure: the ALTER
        // raises it too (SQLSTATE 22012), though every value converts to integer.
        let raised = find(p, ProbeKind::CheckViolations, 4);
        assert!(
            raised.count == 1 && raised.would_fail && !raised.exact && raised.error.is_none(),
            "{raised:#?}"
        );
        assert!(raised.samples[0].contains("22012"), "{raised:#?}");
        // A qualified name may call a tenant function by attribute notation: never run.
        let attr = find(p, ProbeKind::CheckViolations, 6);
        assert!(
            attr.error.is_none()
                && attr
                    .skipped
                    .as_deref()
                    .unwrap_or("")
                    .contains("attribute notation"),
            "{attr:#?}"
        );
    }
}

/// Shortening a `varchar` / `char`: the `ALTER` converts by assignment and fails on a longer
/// value (`22001`), an explicit cast would truncate it. The probe counts the values longer than
/// the new limit (trailing spaces are cut without an error), also through a `USING`; a cast to
/// a shard's domain with `NOT NULL` counts the NULL rows the `ALTER` rejects, and a shard's
/// domain over `varchar(n)` is shortening too. A `USING` that is the explicit cast itself is no
/// shortening (it cut the value); `char` is `char(1)`; `bit(n)` takes exactly n bits; an enum
/// converts through its output function, never the tenant's own cast to `text`; `numeric` →
/// `integer` rounds; arrays are checked element by element; the probe's own SQL never reaches a
/// tenant's `count` or `=` through the search path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shortened_strings_and_null_rejecting_domains_are_counted() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(
        &pg,
        "app",
        "CREATE SCHEMA tenant_a;
         CREATE DOMAIN tenant_a.nn AS integer NOT NULL;
         CREATE DOMAIN tenant_a.short AS varchar(3);
         CREATE DOMAIN tenant_a.short_checked AS tenant_a.short CHECK (VALUE <> 'zz');
         CREATE TYPE tenant_a.mood AS ENUM ('ok', 'sadder');
         CREATE FUNCTION tenant_a.mood_txt(tenant_a.mood) RETURNS text VOLATILE LANGUAGE plpgsql
           AS $f$ BEGIN RAISE EXCEPTION 'tenant code ran'; END $f$;
         CREATE CAST (tenant_a.mood AS text) WITH FUNCTION tenant_a.mood_txt(tenant_a.mood);
         CREATE TABLE tenant_a.more (id int PRIMARY KEY, e text, f text, g varbit, m tenant_a.mood, k numeric);
         INSERT INTO tenant_a.more VALUES (1, 'abcd', 'ab', B'1010', 'ok', 1.5), (2, 'a', 'a', B'101', 'sadder', 2.4);
         CREATE TYPE tenant_a.tbit AS (x text);
         CREATE FUNCTION tenant_a.tbit_bit(tenant_a.tbit) RETURNS bit LANGUAGE sql AS $f$ SELECT B'10'::bit(2) $f$;
         CREATE CAST (tenant_a.tbit AS bit) WITH FUNCTION tenant_a.tbit_bit(tenant_a.tbit) AS ASSIGNMENT;
         CREATE FUNCTION tenant_a.tbit_vb(tenant_a.tbit) RETURNS varbit LANGUAGE plpgsql
           AS $f$ BEGIN RAISE EXCEPTION 'tenant varbit cast ran'; END $f$;
         CREATE CAST (tenant_a.tbit AS varbit) WITH FUNCTION tenant_a.tbit_vb(tenant_a.tbit);
         CREATE FUNCTION tenant_a.count(varchar) RETURNS bigint LANGUAGE plpgsql
           AS $f$ BEGIN RAISE EXCEPTION 'tenant count ran'; END $f$;
         CREATE FUNCTION tenant_a.never(oid, regtype) RETURNS boolean LANGUAGE sql AS $f$ SELECT false $f$;
         CREATE OPERATOR tenant_a.= (LEFTARG = oid, RIGHTARG = regtype, FUNCTION = tenant_a.never);
         CREATE TABLE tenant_a.arr (id int PRIMARY KEY, a text[], b text, c tenant_a.tbit, d text[]);
         INSERT INTO tenant_a.arr VALUES (1, '{abc,abcd}', 'abcd', ROW('x'), '{ab,wxyz}'), (2, '{ab}', 'ab', ROW('y'), '{a}');
         CREATE TABLE tenant_a.names (id int PRIMARY KEY, a text, b varchar(10), c char(6), n int, d text);
         INSERT INTO tenant_a.names VALUES (1, 'abc', 'abc', 'abc', 1, 'a'), (2, 'abc   ', 'ab', 'ab', NULL, 'wxyz'),
                                          (3, 'abcd', 'abcd', 'abcd', 2, NULL), (4, NULL, NULL, NULL, 3, 'b');",
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a")]);
    let m = migration(
        "ALTER TABLE names ALTER COLUMN a TYPE varchar(3);
ALTER TABLE names ALTER COLUMN b TYPE character varying(3) USING b || 'x';
ALTER TABLE names ALTER COLUMN c TYPE char(4);
ALTER TABLE names ALTER COLUMN n TYPE nn;
ALTER TABLE names ALTER COLUMN d TYPE short_checked;
ALTER TABLE more ALTER COLUMN e TYPE varchar(3) USING e::varchar(3);
ALTER TABLE more ALTER COLUMN f TYPE char;
ALTER TABLE more ALTER COLUMN g TYPE bit(3);
ALTER TABLE more ALTER COLUMN m TYPE varchar(3);
ALTER TABLE more ALTER COLUMN k TYPE integer;
ALTER TABLE arr ALTER COLUMN a TYPE varchar(3)[];
ALTER TABLE arr ALTER COLUMN b TYPE nchar(3);
ALTER TABLE arr ALTER COLUMN c TYPE bit(2);
ALTER TABLE arr ALTER COLUMN d TYPE short[];",
    );
    let res = probes_leaving_target(&pg, &m, &fleet).await;
    let p = &res.shards[0].probes;
    let a = find(p, ProbeKind::CastFailures, 0);
    assert_eq!(
        (a.count, a.samples.clone()),
        (1, vec!["abcd".to_string()]),
        "{a:#?}"
    );
    assert!(a.would_fail && a.exact && a.error.is_none(), "{a:#?}");
    let b = find(p, ProbeKind::CastFailures, 1);
    let mut bs = b.samples.clone();
    bs.sort();
    assert_eq!(
        (b.count, bs),
        (2, vec!["abcdx".to_string(), "abcx".to_string()]),
        "{b:#?}"
    );
    let c = find(p, ProbeKind::CastFailures, 2);
    assert_eq!((c.count, c.error.is_none()), (0, true), "{c:#?}");
    let n = find(p, ProbeKind::CastFailures, 3);
    assert!(n.count >= 1 && n.would_fail && n.error.is_none(), "{n:#?}");
    // A domain over a domain over varchar(3): the limit is found on the shard.
    let d = find(p, ProbeKind::CastFailures, 4);
    assert_eq!(
        (d.count, d.samples.clone()),
        (1, vec!["wxyz".to_string()]),
        "{d:#?}"
    );
    // A USING that is the explicit cast itself cut the value already: the ALTER succeeds.
    let e = find(p, ProbeKind::CastFailures, 5);
    assert_eq!((e.count, e.error.is_none()), (0, true), "{e:#?}");
    // `char` is char(1).
    let f = find(p, ProbeKind::CastFailures, 6);
    assert_eq!(
        (f.count, f.samples.clone()),
        (1, vec!["ab".to_string()]),
        "{f:#?}"
    );
    // bit(3) takes exactly 3 bits: B'1010' fails, B'101' does not.
    let g = find(p, ProbeKind::CastFailures, 7);
    assert_eq!(
        (g.count, g.samples.clone()),
        (1, vec!["1010".to_string()]),
        "{g:#?}"
    );
    // The enum converts through its output function, as the ALTER does: the tenant's own
    // cast to text (which raises) is never run, and 'sadder' is longer than 3.
    let m = find(p, ProbeKind::CastFailures, 8);
    assert_eq!(
        (m.count, m.samples.clone(), m.error.is_none()),
        (1, vec!["sadder".to_string()], true),
        "{m:#?}"
    );
    // numeric 1.5 converts to integer by rounding, as the ALTER's cast function does (the
    // integer input function would reject the text '1.5').
    let k = find(p, ProbeKind::CastFailures, 9);
    assert_eq!((k.count, k.error.is_none()), (0, true), "{k:#?}");
    // An array converts element by element: '{abc,abcd}' fails varchar(3)[].
    let a = find(p, ProbeKind::CastFailures, 10);
    assert_eq!(
        (a.count, a.samples.clone()),
        (1, vec!["{abc,abcd}".to_string()]),
        "{a:#?}"
    );
    // nchar(3) is char(3).
    let b = find(p, ProbeKind::CastFailures, 11);
    assert_eq!(
        (b.count, b.samples.clone()),
        (1, vec!["abcd".to_string()]),
        "{b:#?}"
    );
    // bit(2) from a tenant type converts through its (assignment) cast to bit, as the ALTER
    // does: its cast to varbit, which raises, is never run; the tenant's count(varchar) and
    // its = (oid, regtype) are never used by the probe's own SQL.
    let c = find(p, ProbeKind::CastFailures, 12);
    assert_eq!((c.count, c.error.is_none()), (0, true), "{c:#?}");
    let all = format!("{p:?}");
    assert!(
        !all.contains("tenant count ran")
            && !all.contains("tenant varbit cast ran")
            && !all.contains("tenant code ran"),
        "{p:#?}"
    );
    // An array of a shard domain over varchar(3): each element is checked.
    let d = find(p, ProbeKind::CastFailures, 13);
    assert_eq!(
        (d.count, d.samples.clone()),
        (1, vec!["{ab,wxyz}".to_string()]),
        "{d:#?}"
    );
}

/// A unique key over a column the migration added with a constant default: every existing row
/// holds the default, so `UNIQUE (slug)` fails on a shard with two rows (23505) although the
/// rehearsal's empty tables pass it; with another key column only rows equal in it collide; a
/// column added without a default is NULL everywhere (distinct).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_key_over_a_column_added_with_a_default_is_counted() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(
        &pg,
        "app",
        "CREATE SCHEMA tenant_a;
         CREATE TABLE tenant_a.accounts (id int PRIMARY KEY, org_id int);
         INSERT INTO tenant_a.accounts VALUES (1, 1), (2, 1), (3, 2);",
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a")]);
    let m = migration(
        "ALTER TABLE accounts ADD COLUMN slug text NOT NULL DEFAULT '';
ALTER TABLE accounts ADD CONSTRAINT accounts_slug_key UNIQUE (slug);
ALTER TABLE accounts ADD CONSTRAINT accounts_org_slug_key UNIQUE (org_id, slug);
ALTER TABLE accounts ADD COLUMN n int;
ALTER TABLE accounts ADD CONSTRAINT accounts_n_key UNIQUE (n);",
    );
    let res = probes_leaving_target(&pg, &m, &fleet).await;
    let p = &res.shards[0].probes;
    let slug = find(p, ProbeKind::UniqueViolations, 1);
    assert_eq!(
        (slug.count, slug.would_fail, slug.samples.clone()),
        (1, true, vec![" x3".to_string()]),
        "{slug:#?}"
    );
    let org = find(p, ProbeKind::UniqueViolations, 2);
    assert_eq!(
        (org.count, org.samples.clone()),
        (1, vec!["(1,\"\") x2".to_string()]),
        "{org:#?}"
    );
    let n = find(p, ProbeKind::UniqueViolations, 4);
    assert_eq!(
        (n.count, n.error.is_none(), n.skipped.is_none()),
        (0, true, true),
        "{n:#?}"
    );
}

/// The probes' own SQL never reaches a tenant's function or operator through the search path
/// (it holds the tenant's schema): a tenant `||(text, bigint)` and `enum_range(mood)`, both
/// raising, are exact matches that would win over `pg_catalog`'s polymorphic ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probes_own_sql_never_calls_a_tenants_lookalike() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(
        &pg,
        "app",
        "CREATE SCHEMA tenant_a;
         CREATE FUNCTION tenant_a.cat(text, bigint) RETURNS text LANGUAGE plpgsql
           AS $f$ BEGIN RAISE EXCEPTION 'tenant operator ran'; END $f$;
         CREATE OPERATOR tenant_a.|| (LEFTARG = text, RIGHTARG = bigint, FUNCTION = tenant_a.cat);
         CREATE TYPE tenant_a.mood AS ENUM ('ok', 'sad');
         CREATE FUNCTION tenant_a.enum_range(tenant_a.mood) RETURNS tenant_a.mood[] LANGUAGE plpgsql
           AS $f$ BEGIN RAISE EXCEPTION 'tenant function ran'; END $f$;
         CREATE TABLE tenant_a.users (id int PRIMARY KEY, email text, m text);
         INSERT INTO tenant_a.users VALUES (1, 'a@x', 'ok'), (2, 'a@x', 'meh'), (3, 'b@x', 'sad');",
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a")]);
    let m = migration(
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
ALTER TYPE mood ADD VALUE 'happy';
ALTER TABLE users ALTER COLUMN m TYPE mood USING m::mood;",
    );
    let res = probes_leaving_target(&pg, &m, &fleet).await;
    let p = &res.shards[0].probes;
    let u = find(p, ProbeKind::UniqueViolations, 0);
    assert_eq!(
        (u.count, u.samples.clone(), u.error.is_none()),
        (1, vec!["a@x x2".to_string()], true),
        "{u:#?}"
    );
    let c = find(p, ProbeKind::CastFailures, 2);
    assert_eq!(
        (c.count, c.samples.clone(), c.error.is_none()),
        (1, vec!["meh".to_string()], true),
        "{c:#?}"
    );
}

/// The orphan probe reads a new or validated foreign key as PostgreSQL's own check does: the
/// equality operator of the referenced key's operator family, never a tenant's lookalike (a
/// raising tenant `=(varchar, varchar)` is an exact match that would win over `pg_catalog`'s
/// `text` one); `ONLY` the parent of an inheritance tree on both sides (a child's rows are
/// neither checked nor matched), a partitioned table with its partitions; cross-type keys and
/// enums. Each count is compared with what the `ALTER` really does on the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_counted_as_postgresql_checks_a_foreign_key() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(
        &pg,
        "app",
        "CREATE SCHEMA tenant_a;
         CREATE FUNCTION tenant_a.veq(varchar, varchar) RETURNS boolean LANGUAGE plpgsql
           AS $f$ BEGIN RAISE EXCEPTION 'tenant operator ran'; END $f$;
         CREATE OPERATOR tenant_a.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = tenant_a.veq);
         CREATE TABLE tenant_a.codes (code varchar(10) PRIMARY KEY);
         INSERT INTO tenant_a.codes VALUES ('a'), ('b');
         CREATE TABLE tenant_a.uses (id int PRIMARY KEY, code varchar(10));
         INSERT INTO tenant_a.uses VALUES (1, 'a'), (2, 'zz'), (3, NULL);
         CREATE TABLE tenant_a.parents (id bigint PRIMARY KEY);
         INSERT INTO tenant_a.parents VALUES (1);
         CREATE TABLE tenant_a.parents_old () INHERITS (tenant_a.parents);
         INSERT INTO tenant_a.parents_old VALUES (5);
         CREATE TABLE tenant_a.kids (id int PRIMARY KEY, parent_id int);
         INSERT INTO tenant_a.kids VALUES (1, 1);
         CREATE TABLE tenant_a.kids_2019 () INHERITS (tenant_a.kids);
         INSERT INTO tenant_a.kids_2019 VALUES (2, 99);
         CREATE TABLE tenant_a.grown (id int PRIMARY KEY, parent_id int);
         INSERT INTO tenant_a.grown VALUES (1, 1), (2, 5);
         CREATE TABLE tenant_a.events (id int, parent_id int) PARTITION BY RANGE (id);
         CREATE TABLE tenant_a.events_1 PARTITION OF tenant_a.events FOR VALUES FROM (0) TO (100);
         INSERT INTO tenant_a.events VALUES (1, 1), (2, 7);
         CREATE TYPE tenant_a.mood AS ENUM ('ok', 'sad', 'meh');
         CREATE TABLE tenant_a.moods (m tenant_a.mood PRIMARY KEY);
         INSERT INTO tenant_a.moods VALUES ('ok'), ('sad');
         CREATE TABLE tenant_a.feelings (id int PRIMARY KEY, m tenant_a.mood);
         INSERT INTO tenant_a.feelings VALUES (1, 'ok'), (2, 'meh');
         ALTER TABLE tenant_a.uses ADD CONSTRAINT uses_old_fk FOREIGN KEY (code) REFERENCES tenant_a.codes NOT VALID;",
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a")]);
    let statements = [
        "ALTER TABLE uses ADD CONSTRAINT uses_code_fk FOREIGN KEY (code) REFERENCES codes (code)",
        "ALTER TABLE kids ADD CONSTRAINT kids_parent_fk FOREIGN KEY (parent_id) REFERENCES parents (id)",
        "ALTER TABLE grown ADD CONSTRAINT grown_parent_fk FOREIGN KEY (parent_id) REFERENCES parents",
        "ALTER TABLE events ADD CONSTRAINT events_parent_fk FOREIGN KEY (parent_id) REFERENCES parents (id)",
        "ALTER TABLE feelings ADD CONSTRAINT feelings_m_fk FOREIGN KEY (m) REFERENCES moods (m)",
        "ALTER TABLE uses VALIDATE CONSTRAINT uses_old_fk",
    ];
    let m = migration(&statements.map(|s| format!("{s};")).join("\n"));
    let res = probes_leaving_target(&pg, &m, &fleet).await;
    let p = &res.shards[0].probes;
    let counts: Vec<(u64, Vec<String>)> = (0..statements.len())
        .map(|i| {
            let o = find(p, ProbeKind::FkOrphans, i);
            assert!(o.error.is_none() && o.skipped.is_none(), "{o:#?}");
            (o.count, o.samples.clone())
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            (1, vec!["zz".to_string()]),
            (0, vec![]),
            (1, vec!["5".to_string()]),
            (1, vec!["7".to_string()]),
            (1, vec!["meh".to_string()]),
            (1, vec!["zz".to_string()]),
        ],
        "{p:#?}"
    );
    // What PostgreSQL does with the same statements on the same rows (rolled back).
    for (i, s) in statements.iter().enumerate() {
        let code = postgres_fails_with(&pg, &format!("{s};")).await;
        let fails = code.as_deref() == Some("23503");
        assert_eq!(fails, counts[i].0 > 0, "{s}: PostgreSQL said {code:?}");
    }
}

/// A `CHECK`, or a unique index's expression or predicate, over a column the migration added
/// (with a known value) or renamed earlier is counted on the shard's rows with the name bound
/// beside the row — it probed a column the shard does not have (42703, a false YELLOW). Each
/// count is compared with what the migration really does on the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expressions_over_added_or_renamed_columns_are_counted() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(
        &pg,
        "app",
        "CREATE SCHEMA tenant_a;
         CREATE TABLE tenant_a.a (id int PRIMARY KEY, amount int, v int, mail text);
         INSERT INTO tenant_a.a VALUES (1, 5, 1, 'a@x'), (2, -1, 0, 'a@x'), (3, 2, 3, 'b@x');",
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a")]);
    let cases: [(&str, ProbeKind, u64); 8] = [
        (
            "ALTER TABLE a RENAME COLUMN v TO w;
ALTER TABLE a ALTER COLUMN mail TYPE integer USING (mail || w)::integer;",
            ProbeKind::CastFailures,
            1,
        ),
        (
            "ALTER TABLE a ADD COLUMN pad text DEFAULT '0';
ALTER TABLE a ALTER COLUMN v TYPE integer USING (v::text || pad)::integer;",
            ProbeKind::CastFailures,
            0,
        ),
        (
            "ALTER TABLE a ADD COLUMN status text NOT NULL DEFAULT 'new';
ALTER TABLE a ADD CONSTRAINT c1 CHECK (status IN ('new', 'old') AND amount >= 0);",
            ProbeKind::CheckViolations,
            1,
        ),
        (
            "ALTER TABLE a ADD COLUMN status text NOT NULL DEFAULT 'new';
ALTER TABLE a ADD CONSTRAINT c2 CHECK (status = 'old');",
            ProbeKind::CheckViolations,
            3,
        ),
        (
            "ALTER TABLE a RENAME COLUMN v TO \"W\";
ALTER TABLE a ADD CONSTRAINT c3 CHECK (\"W\" > 0);",
            ProbeKind::CheckViolations,
            1,
        ),
        (
            "ALTER TABLE a ADD COLUMN deleted_at timestamptz;
ALTER TABLE a RENAME COLUMN mail TO email;
CREATE UNIQUE INDEX i1 ON a (email) WHERE deleted_at IS NULL;",
            ProbeKind::UniqueViolations,
            1,
        ),
        (
            "ALTER TABLE a ADD COLUMN s text DEFAULT '';
CREATE UNIQUE INDEX i2 ON a (lower(s));",
            ProbeKind::UniqueViolations,
            1,
        ),
        (
            "ALTER TABLE a ADD COLUMN s text;
CREATE UNIQUE INDEX i3 ON a (lower(s));",
            ProbeKind::UniqueViolations,
            0,
        ),
    ];
    for (sql, kind, want) in cases {
        let res = probes_leaving_target(&pg, &migration(sql), &fleet).await;
        let last = sql.matches(';').count() - 1;
        let p = find(&res.shards[0].probes, kind, last);
        assert!(p.error.is_none() && p.skipped.is_none(), "{sql}: {p:#?}");
        assert_eq!(p.count, want, "{sql}: {p:#?}");
        // What PostgreSQL does with the same migration on the same rows (rolled back).
        let code = postgres_fails_with(&pg, sql).await;
        let fails = matches!(code.as_deref(), Some("23514" | "23505" | "22P02"));
        assert_eq!(fails, want > 0, "{sql}: PostgreSQL said {code:?}");
    }
}

/// What a probe of `sql`'s last statement should say.
#[derive(Debug)]
enum Expect {
    /// Counted, conclusive: `n` rows (PostgreSQL fails with 23503 iff `n > 0`).
    Count(u64),
    /// Counted, but an earlier statement changes the rows first: never a failure by itself.
    NotConclusive,
    /// Left to the rehearsal.
    Rehearsal,
}

/// Foreign keys as PostgreSQL checks them, found by an attack on the orphan probe: the unique
/// index with the lowest oid on named columns (not the primary key), the default operator
/// class of a key the migration makes unique first (`varchar` → `text_ops`, ranges), MATCH
/// FULL, a primary key added earlier, a tenant's cast to `text` and `unnest(smallint[])` never
/// run, rows written to the referenced table first, and an operator class or a key column's
/// type the migration changes (the rehearsal decides). Every conclusive count is compared with
/// what the migration really does on the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_keys_follow_postgresqls_choices_and_the_migration() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(
        &pg,
        "app",
        "CREATE SCHEMA tenant_a;
         SET search_path TO tenant_a;
         CREATE TYPE pair AS (n numeric);
         CREATE TABLE rpk (c pair NOT NULL);
         CREATE UNIQUE INDEX rpk_img ON rpk (c record_image_ops);
         ALTER TABLE rpk ADD PRIMARY KEY (c);
         INSERT INTO rpk VALUES (ROW(1.0));
         CREATE TABLE rfk (id int PRIMARY KEY, c pair);
         INSERT INTO rfk VALUES (1, ROW(1.00));
         CREATE TABLE vpk (code varchar(10));
         INSERT INTO vpk VALUES ('a');
         CREATE TABLE vfk (id int PRIMARY KEY, code varchar(10));
         INSERT INTO vfk VALUES (1, 'a ');
         CREATE TABLE rgpk (r int4range);
         INSERT INTO rgpk VALUES ('[1,2)');
         CREATE TABLE rgfk (id int PRIMARY KEY, r int4range);
         INSERT INTO rgfk VALUES (1, '[5,6)');
         CREATE TYPE mood AS ENUM ('ok', 'sad', 'meh');
         CREATE FUNCTION mood_text(mood) RETURNS text LANGUAGE plpgsql
           AS $f$ BEGIN RAISE EXCEPTION 'tenant cast ran'; END $f$;
         CREATE CAST (mood AS text) WITH FUNCTION mood_text(mood);
         CREATE FUNCTION unnest(smallint[]) RETURNS SETOF smallint LANGUAGE plpgsql
           AS $f$ BEGIN RAISE EXCEPTION 'tenant unnest ran'; END $f$;
         CREATE TABLE moods (m mood PRIMARY KEY);
         INSERT INTO moods VALUES ('ok');
         CREATE TABLE feel (m mood PRIMARY KEY);
         INSERT INTO feel VALUES ('meh');
         CREATE TABLE mpk (a int, b int, PRIMARY KEY (a, b));
         INSERT INTO mpk VALUES (1, 1);
         CREATE TABLE mfk (id int PRIMARY KEY, a int, b int);
         INSERT INTO mfk VALUES (2, 1, NULL);
         ALTER TABLE mfk ADD CONSTRAINT mfk_old FOREIGN KEY (a, b) REFERENCES mpk MATCH FULL NOT VALID;
         CREATE TABLE npk (id int NOT NULL);
         INSERT INTO npk VALUES (1);
         CREATE TABLE nfk (id int PRIMARY KEY, npk_id int);
         INSERT INTO nfk VALUES (1, 1), (2, 7);
         CREATE TABLE kinds (code text PRIMARY KEY);
         CREATE TABLE uses (id int PRIMARY KEY, code text);
         INSERT INTO uses VALUES (1, 'x'), (2, 'y');
         CREATE TABLE tpk (code char(3) PRIMARY KEY);
         INSERT INTO tpk VALUES ('a');
         CREATE TABLE tfk (id int PRIMARY KEY, code varchar);
         INSERT INTO tfk VALUES (1, 'a ');
         CREATE TABLE public.countries (code text PRIMARY KEY);
         INSERT INTO public.countries VALUES ('de');
         CREATE TABLE orders (id int PRIMARY KEY, country text);
         INSERT INTO orders VALUES (1, 'de'), (2, 'xx');",
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a")]);
    let cases: [(&str, Expect); 13] = [
        // An unqualified table the tenant's schema lacks is `public`'s (search path `tenant,
        // public`): it was "missing" on every shard (schema-drift, a false RED).
        (
            "ALTER TABLE orders ADD CONSTRAINT o_fk FOREIGN KEY (country) REFERENCES countries (code);",
            Expect::Count(1),
        ),
        (
            "ALTER TABLE orders ADD CONSTRAINT o_fk FOREIGN KEY (country) REFERENCES countries;",
            Expect::Count(1),
        ),
        (
            "ALTER TABLE rfk ADD CONSTRAINT rfk_fk FOREIGN KEY (c) REFERENCES rpk (c);",
            Expect::Count(1),
        ),
        (
            "ALTER TABLE rfk ADD CONSTRAINT rfk_fk FOREIGN KEY (c) REFERENCES rpk;",
            Expect::Count(0),
        ),
        (
            "ALTER TABLE vpk ADD CONSTRAINT vpk_u UNIQUE (code);
ALTER TABLE vfk ADD CONSTRAINT vfk_fk FOREIGN KEY (code) REFERENCES vpk (code);",
            Expect::Count(1),
        ),
        (
            "ALTER TABLE rgpk ADD CONSTRAINT rgpk_u UNIQUE (r);
ALTER TABLE rgfk ADD CONSTRAINT rgfk_fk FOREIGN KEY (r) REFERENCES rgpk (r);",
            Expect::Count(1),
        ),
        (
            "ALTER TABLE feel ADD CONSTRAINT feel_fk FOREIGN KEY (m) REFERENCES moods (m);",
            Expect::Count(1),
        ),
        (
            "ALTER TABLE mfk ADD CONSTRAINT mfk_fk FOREIGN KEY (a, b) REFERENCES mpk (a, b) MATCH FULL;",
            Expect::Count(1),
        ),
        (
            "ALTER TABLE mfk VALIDATE CONSTRAINT mfk_old;",
            Expect::Count(1),
        ),
        (
            "ALTER TABLE npk ADD PRIMARY KEY (id);
ALTER TABLE nfk ADD CONSTRAINT nfk_fk FOREIGN KEY (npk_id) REFERENCES npk;",
            Expect::Count(1),
        ),
        (
            "INSERT INTO kinds SELECT DISTINCT code FROM uses;
ALTER TABLE uses ADD CONSTRAINT uses_fk FOREIGN KEY (code) REFERENCES kinds (code);",
            Expect::NotConclusive,
        ),
        (
            "ALTER TABLE tpk ALTER COLUMN code TYPE text;
ALTER TABLE tfk ADD CONSTRAINT tfk_fk FOREIGN KEY (code) REFERENCES tpk (code);",
            Expect::Rehearsal,
        ),
        (
            "CREATE UNIQUE INDEX rgpk_img ON rgpk (r range_ops);
ALTER TABLE rgfk ADD CONSTRAINT rgfk_fk FOREIGN KEY (r) REFERENCES rgpk (r);",
            Expect::Rehearsal,
        ),
    ];
    for (sql, want) in cases {
        let res = probes_leaving_target(&pg, &migration(sql), &fleet).await;
        let last = sql.matches(';').count() - 1;
        let missing: Vec<_> = res.shards[0]
            .probes
            .iter()
            .filter(|p| p.kind == ProbeKind::MissingObject)
            .collect();
        assert!(missing.is_empty(), "{sql}: {missing:#?}");
        let p = find(&res.shards[0].probes, ProbeKind::FkOrphans, last);
        let n = match want {
            Expect::Count(n) => {
                assert!(p.error.is_none() && p.skipped.is_none(), "{sql}: {p:#?}");
                assert_eq!((p.count, p.would_fail), (n, n > 0), "{sql}: {p:#?}");
                n
            }
            Expect::NotConclusive => {
                assert!(p.error.is_none() && !p.would_fail, "{sql}: {p:#?}");
                continue;
            }
            Expect::Rehearsal => {
                let why = p.skipped.as_deref().unwrap_or_default();
                assert!(why.contains("rehearsal decides"), "{sql}: {p:#?}");
                continue;
            }
        };
        let code = postgres_fails_with(&pg, sql).await;
        assert_eq!(
            code.as_deref() == Some("23503"),
            n > 0,
            "{sql}: PostgreSQL said {code:?}"
        );
    }
}

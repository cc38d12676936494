//! A realistic report for the rendering, signing and browser tests: 12 shards on 3 instances,
//! two red (foreign-key orphans with sample keys; a rehearsal failing with SQLSTATE 23503), three
//! yellow (lock-time budget), a rollback with an irreversible step, static findings. Ids and
//! timestamps are fixed so snapshots are stable.

#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use report::*;
use serde_json::json;

pub const FILE: &str = "migrations/schema_v42.sql";

/// The migration the fixture validated (its sha256 is the fixture's `migration.sha256`).
pub const SQL: &str = "SET lock_timeout = '5s';

ALTER TABLE orders ADD COLUMN discount_cents integer NOT NULL DEFAULT 0;

ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);

CREATE INDEX orders_created_at_idx ON orders (created_at);

ALTER TABLE customers DROP COLUMN legacy_code;
";

pub const SHAPE_A: &str = "5f0c2a9d7e41b8c3a6d2e90f1b7c4a8e3d5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b";
pub const SHAPE_B: &str = "c81e728d9d4c2f636f067f89cc14862c3d4e5f60718293a4b5c6d7e8f9a0b1c2";

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 18, 30, 0)
        .single()
        .expect("valid date")
}

/// A fixed signing key (seed 7,7,…).
pub fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

pub fn other_key() -> SigningKey {
    SigningKey::from_bytes(&[9u8; 32])
}

fn loc(statement: usize, line: u32, end_column: u32) -> Location {
    Location {
        file: FILE.to_owned(),
        statement,
        line,
        column: 1,
        end_line: line,
        end_column,
    }
}

const FK_STMT: &str = "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);";
const INDEX_STMT: &str = "CREATE INDEX orders_created_at_idx ON orders (created_at);";
const ADD_COL_STMT: &str =
    "ALTER TABLE orders ADD COLUMN discount_cents integer NOT NULL DEFAULT 0;";
const DROP_STMT: &str = "ALTER TABLE customers DROP COLUMN legacy_code;";

pub fn fk_orphans(schema: &str, count: u64, keys: &[i64]) -> Finding {
    Finding {
        rule: "fk-orphans".into(),
        code: "DC201".into(),
        severity: Severity::Red,
        location: Some(loc(2, 5, 104)),
        statement: Some(FK_STMT.into()),
        message: format!(
            "{count} {} in {schema}.orders {} a customer_id with no row in {schema}.customers: \
             the new foreign key orders_customer_fk would fail",
            if count == 1 { "row" } else { "rows" },
            if count == 1 { "has" } else { "have" }
        ),
        help: Some(format!(
            "Fix or delete the orphans first: SELECT o.* FROM \"{schema}\".\"orders\" o LEFT JOIN \
             \"{schema}\".\"customers\" c ON c.id = o.customer_id WHERE o.customer_id IS NOT NULL AND c.id IS NULL;"
        )),
        evidence: Some(
            json!({ "orphans": count, "sample_keys": keys, "column": "orders.customer_id", "references": "customers.id" }),
        ),
    }
}

pub fn statement_fails() -> Finding {
    Finding {
        rule: "statement-fails".into(),
        code: "DC206".into(),
        severity: Severity::Red,
        location: Some(loc(2, 5, 104)),
        statement: Some(FK_STMT.into()),
        message: "the rehearsal failed: ERROR 23503: insert or update on table \"orders\" violates \
                  foreign key constraint \"orders_customer_fk\""
            .into(),
        help: Some("Fix the data the constraint rejects, or add the constraint NOT VALID and validate it later.".into()),
        evidence: Some(json!({ "sqlstate": "23503", "statement_index": 2 })),
    }
}

pub fn lock_budget(schema: &str, ms: u64, gb: f64) -> Finding {
    Finding {
        rule: "lock-time-budget".into(),
        code: "DC207".into(),
        severity: Severity::Yellow,
        location: Some(loc(3, 7, 58)),
        statement: Some(INDEX_STMT.into()),
        message: format!(
            "CREATE INDEX holds a SHARE lock on {schema}.orders ({gb} GB) for an estimated {:.1} s, \
             over the 2 s budget: writes to orders wait that long",
            ms as f64 / 1000.0
        ),
        help: Some("Use CREATE INDEX CONCURRENTLY outside a transaction.".into()),
        evidence: Some(
            json!({ "estimated_ms": ms, "budget_ms": 2000, "table_bytes": (gb * 1e9) as u64 }),
        ),
    }
}

pub fn info_rows(schema: &str, rows: u64) -> Finding {
    Finding {
        rule: "table-size".into(),
        code: "DC900".into(),
        severity: Severity::Info,
        location: None,
        statement: None,
        message: format!("{schema}.orders has about {rows} rows"),
        help: None,
        evidence: None,
    }
}

fn shard(
    name: &str,
    instance: &str,
    findings: Vec<Finding>,
    lock_ms: u64,
    shape: &str,
) -> ShardReport {
    ShardReport {
        shard: name.to_owned(),
        instance: instance.to_owned(),
        gate: Gate::from_findings(&findings),
        findings,
        estimated_lock_ms: lock_ms,
        schema_fingerprint: shape.to_owned(),
        duration_ms: 40 + lock_ms % 97,
        rollback: Some(ShardRollback {
            outcome: ProofStatus::Proven,
            schema_fingerprint: shape.to_owned(),
            recovery_time_ms: recovery_ms(shape),
        }),
        live: Default::default(),
    }
}

/// The fixture's recovery time of a shape's proof.
fn recovery_ms(shape: &str) -> u64 {
    if shape == SHAPE_A { 410 } else { 1_260 }
}

fn statement(
    index: usize,
    line: u32,
    sql: &str,
    locks: &[(&str, migration_parser::LockMode)],
    rewrites: &[&str],
    ms: u64,
    est: Option<u64>,
) -> StatementTrace {
    StatementTrace {
        index,
        line,
        sql: sql.to_owned(),
        locks: locks
            .iter()
            .map(|(r, m)| LockTrace {
                relation: (*r).to_owned(),
                mode: *m,
            })
            .collect(),
        rewrites: rewrites.iter().map(|s| (*s).to_owned()).collect(),
        duration_ms: ms,
        estimated_lock_ms: est,
        error: None,
    }
}

/// The unsigned, finalized fixture report.
pub fn fixture() -> ValidationReport {
    fixture_with(|_| {})
}

/// The fixture with `tweak` applied to its shards before finalizing.
pub fn fixture_with(tweak: impl FnOnce(&mut Vec<ShardReport>)) -> ValidationReport {
    use migration_parser::LockMode::*;
    let mut r = ValidationReport::new(
        MigrationInfo {
            file: FILE.to_owned(),
            sha256: sha256_hex(SQL.as_bytes()),
            statements: 5,
        },
        FleetInfo {
            source: "topology fleet.toml".to_owned(),
            instances: 0,
            shards: 0,
            fingerprint: String::new(),
            ..FleetInfo::default()
        },
    );
    r.execution_id = "0b5e7c1a-3f2d-4c8e-9a41-6d2f0e8b7c35".to_owned();
    r.timestamp = t0();
    r.tool_version = "0.1.0".to_owned();
    for (action, details, ms) in [
        ("parse", "5 statements, 1 transaction block", 4),
        (
            "discover",
            "3 instances, 12 tenant schemas (topology fleet.toml)",
            38,
        ),
        ("introspect", "12 catalogs, 2 schema shapes", 212),
        ("probe", "12 shards: fk orphans, table sizes", 1_480),
        ("rehearse", "2 shapes on an ephemeral PostgreSQL 15", 2_210),
        (
            "rollback",
            "generated, forward + rollback proven on shape 5f0c2a9d7e41",
            960,
        ),
        (
            "gates",
            "31 rules on 12 shards: 7 green, 3 yellow, 2 red",
            12,
        ),
    ] {
        r.push_step(action, details, ms);
    }
    let mut shards = vec![
        shard(
            "tenant_0001",
            "db-east-1",
            vec![info_rows("tenant_0001", 120_000)],
            180,
            SHAPE_A,
        ),
        shard("tenant_0002", "db-east-1", vec![], 95, SHAPE_A),
        shard(
            "tenant_0003",
            "db-east-1",
            vec![
                fk_orphans("tenant_0003", 3, &[17, 42, 99]),
                statement_fails(),
            ],
            640,
            SHAPE_B,
        ),
        shard("tenant_0004", "db-east-1", vec![], 210, SHAPE_A),
        shard(
            "tenant_0005",
            "db-east-1",
            vec![lock_budget("tenant_0005", 8_200, 41.5)],
            8_200,
            SHAPE_A,
        ),
        shard("tenant_0006", "db-east-2", vec![], 130, SHAPE_A),
        shard(
            "tenant_0007",
            "db-east-2",
            vec![fk_orphans("tenant_0007", 1, &[5012])],
            300,
            SHAPE_A,
        ),
        shard(
            "tenant_0008",
            "db-east-2",
            vec![lock_budget("tenant_0008", 3_100, 15.2)],
            3_100,
            SHAPE_A,
        ),
        shard("tenant_0009", "db-east-2", vec![], 75, SHAPE_A),
        shard(
            "tenant_0010",
            "db-west-1",
            vec![lock_budget("tenant_0010", 2_600, 12.9)],
            2_600,
            SHAPE_A,
        ),
        shard(
            "tenant_0011",
            "db-west-1",
            vec![info_rows("tenant_0011", 9_800)],
            60,
            SHAPE_A,
        ),
        shard("tenant_0012", "db-west-1", vec![], 110, SHAPE_A),
    ];
    tweak(&mut shards);
    r.shards = shards;
    r.fleet.fingerprint = fleet_fingerprint(r.shards.iter().map(|s| {
        (
            s.instance.as_str(),
            s.shard.as_str(),
            s.schema_fingerprint.as_str(),
        )
    }));
    r.rehearsals = vec![
        Rehearsal {
            schema_fingerprint: SHAPE_A.to_owned(),
            representative_shard: "tenant_0005".to_owned(),
            shard_count: 11,
            statements: vec![
                statement(0, 1, "SET lock_timeout = '5s';", &[], &[], 0, None),
                statement(1, 3, ADD_COL_STMT, &[("tenant_0005.orders", AccessExclusive)], &[], 3, Some(40)),
                statement(
                    2,
                    5,
                    FK_STMT,
                    &[("tenant_0005.orders", ShareRowExclusive), ("tenant_0005.customers", ShareRowExclusive)],
                    &[],
                    21,
                    Some(1_900),
                ),
                statement(3, 7, INDEX_STMT, &[("tenant_0005.orders", Share)], &[], 35, Some(8_200)),
                statement(4, 9, DROP_STMT, &[("tenant_0005.customers", AccessExclusive)], &[], 2, Some(15)),
            ],
        },
        Rehearsal {
            schema_fingerprint: SHAPE_B.to_owned(),
            representative_shard: "tenant_0003".to_owned(),
            shard_count: 1,
            statements: vec![
                statement(0, 1, "SET lock_timeout = '5s';", &[], &[], 0, None),
                statement(1, 3, ADD_COL_STMT, &[("tenant_0003.orders", AccessExclusive)], &[], 4, Some(60)),
                StatementTrace {
                    error: Some(StatementError {
                        sqlstate: "23503".to_owned(),
                        message: "insert or update on table \"orders\" violates foreign key constraint \"orders_customer_fk\"".to_owned(),
                    }),
                    ..statement(
                        2,
                        5,
                        FK_STMT,
                        &[("tenant_0003.orders", ShareRowExclusive), ("tenant_0003.customers", ShareRowExclusive)],
                        &[],
                        18,
                        Some(580),
                    )
                },
            ],
        },
    ];
    r.static_findings = vec![
        Finding {
            rule: "constraint-missing-not-valid".into(),
            code: "DC103".into(),
            severity: Severity::Yellow,
            location: Some(loc(2, 5, 104)),
            statement: Some(FK_STMT.into()),
            message: "ADD CONSTRAINT ... FOREIGN KEY validates every row of orders while holding a \
                      SHARE ROW EXCLUSIVE lock on orders and customers: writes to both wait"
                .into(),
            help: Some(
                "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID; \
                 then ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;"
                    .into(),
            ),
            evidence: None,
        },
        Finding {
            rule: "adding-required-field".into(),
            code: "DC106".into(),
            severity: Severity::Info,
            location: Some(loc(1, 3, 72)),
            statement: Some(ADD_COL_STMT.into()),
            message: "ADD COLUMN discount_cents NOT NULL with a constant DEFAULT is metadata-only on \
                      PostgreSQL 11 and later: no table rewrite"
                .into(),
            help: None,
            evidence: None,
        },
        Finding {
            rule: "require-concurrent-index".into(),
            code: "DC101".into(),
            severity: Severity::Yellow,
            location: Some(loc(3, 7, 58)),
            statement: Some(INDEX_STMT.into()),
            message: "CREATE INDEX without CONCURRENTLY holds a SHARE lock on orders for the whole build: \
                      INSERT, UPDATE and DELETE wait"
                .into(),
            help: Some("CREATE INDEX CONCURRENTLY orders_created_at_idx ON orders (created_at);".into()),
            evidence: None,
        },
        Finding {
            rule: "dropping-column".into(),
            code: "DC111".into(),
            severity: Severity::Yellow,
            location: Some(loc(4, 9, 46)),
            statement: Some(DROP_STMT.into()),
            message: "DROP COLUMN customers.legacy_code deletes its data; the rollback cannot restore it".into(),
            help: Some("Stop reading the column, ship, then drop it in a later migration after a backup.".into()),
            evidence: None,
        },
    ];
    r.rollback = RollbackInfo {
        source: "generated".to_owned(),
        script: Some(
            "-- deployclaw rollback for migrations/schema_v42.sql\n\
             ALTER TABLE customers ADD COLUMN legacy_code text; -- data NOT restored\n\
             DROP INDEX IF EXISTS orders_created_at_idx;\n\
             ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_customer_fk;\n\
             ALTER TABLE orders DROP COLUMN IF EXISTS discount_cents;\n"
                .to_owned(),
        ),
        tested: true,
        irreversible: vec![
            "ALTER TABLE customers DROP COLUMN legacy_code: the column's values are lost; the rollback re-adds it empty"
                .to_owned(),
        ],
        mismatches: vec![],
        proofs: Vec::new(),
    };
    // One proof per schema shape, each listing its shards.
    for (shape, representative, data) in [
        (SHAPE_A, "tenant_0001", true),
        (SHAPE_B, "tenant_0003", false),
    ] {
        let shards = r
            .shards
            .iter()
            .filter(|s| s.schema_fingerprint == shape)
            .map(|s| s.shard.clone())
            .collect();
        let mut p = ShapeProof::new(shape, representative, ProofStatus::Proven)
            .with_shards(shards)
            .with_data(data)
            .with_duration_ms(recovery_ms(shape));
        if !data {
            p = p.with_reason("no sample rows could be seeded");
        }
        r.rollback.proofs.push(p);
    }
    r.total_duration_ms = 4_936;
    r.finalize(&GatePolicy::default());
    r
}

/// A `lock-queue-risk` finding about `pid` on `schema.orders`.
pub fn queue_finding(schema: &str, pid: i32, severity: Severity) -> Finding {
    Finding {
        rule: "lock-queue-risk".into(),
        code: "DC111".into(),
        severity,
        location: Some(loc(1, 3, 72)),
        statement: Some(ADD_COL_STMT.into()),
        message: format!(
            "Session pid {pid} holds AccessShareLock on `{schema}.orders`; this statement's ACCESS EXCLUSIVE lock conflicts with it"
        ),
        help: Some("Wait for the session or end it; set lock_timeout and retry.".into()),
        evidence: Some(json!({ "pid": pid })),
    }
}

/// The fixture with live evidence (issue 16): every shard's lock read ran; tenant_0002 has a
/// session idle in transaction for 45 s on its `orders` (red `lock-queue-risk`), tenant_0004's
/// lock read was unavailable (info), tenant_0006 has a waiting writer (yellow), traffic, an
/// application query using a dropped column and the replica its probes ran on.
pub fn live_fixture() -> ValidationReport {
    use gates::evidence::{LiveStatus, LockHolder, QueryUse, ReplicaRead, TableTraffic};
    fixture_with(|s| {
        for sh in s.iter_mut() {
            sh.live.locks = LiveStatus::Read;
        }
        let holder = |schema: &str, pid: i32, state: &str, age: u64, granted: bool| LockHolder {
            pid,
            application_name: "billing-worker".into(),
            state: state.into(),
            xact_age_ms: Some(age + 2_000),
            state_age_ms: Some(age),
            relation: format!("{schema}.orders"),
            mode: if granted {
                "AccessShareLock"
            } else {
                "RowExclusiveLock"
            }
            .into(),
            granted,
            blocks_mode: "AccessExclusiveLock".into(),
            blocks_statement: 1,
            query: Some(format!("SELECT * FROM {schema}.orders WHERE id = $1")),
        };
        s[1].live.lock_holders = vec![holder(
            "tenant_0002",
            4242,
            "idle in transaction",
            45_000,
            true,
        )];
        s[1].findings
            .push(queue_finding("tenant_0002", 4242, Severity::Red));
        s[3].live.locks = LiveStatus::Unavailable {
            reason: "the role `gate_reader` cannot see other sessions' state, age and query".into(),
        };
        s[3].findings.push(Finding {
            severity: Severity::Info,
            location: None,
            statement: None,
            ..queue_finding("tenant_0004", 0, Severity::Info)
        });
        s[5].live.lock_holders = vec![holder("tenant_0006", 5150, "active", 900, false)];
        s[5].findings
            .push(queue_finding("tenant_0006", 5150, Severity::Yellow));
        s[5].live.traffic = LiveStatus::Read;
        s[5].live.table_traffic = vec![TableTraffic {
            relation: "tenant_0006.orders".into(),
            source: "pg_stat_user_tables over 2000 ms".into(),
            window_ms: 2_000,
            writes_per_s: 41.5,
            reads_per_s: 120.0,
        }];
        s[5].live.statements = LiveStatus::Read;
        s[5].live.query_uses = vec![QueryUse {
            queryid: -7_301_233,
            query: "SELECT legacy_code FROM customers WHERE id = $1".into(),
            calls: 9_120,
            uses: "tenant_0006.customers.legacy_code".into(),
            change: "drops".into(),
            statement: 4,
            stats_since: Some("2026-11-20T00:00:00Z".into()),
            detail: None,
            by_gate_role: false,
        }];
        s[5].live.replica = Some(ReplicaRead {
            instance: "db-east-2-replica".into(),
            lag_ms: Some(120),
            refused: None,
        });
        for sh in s.iter_mut() {
            sh.gate = Gate::from_findings(&sh.findings);
        }
    })
}

/// A synthetic report of `shards` shards over `instances` instances (no database): the
/// fixture's migration, rehearsals and rollback; per 1,000 shards 20 yellow (lock budget), 5 red
/// (orphans and the failed statement), the rest green with a table-size info finding; two
/// schema shapes. For the large-fleet rendering test and the report size benchmark.
pub fn large_fleet(shards: usize, instances: usize) -> ValidationReport {
    let mut r = fixture_with(|v| {
        v.clear();
        v.reserve(shards);
        for i in 0..shards {
            let name = format!("tenant_{i:06}");
            let instance = format!("db-{:02}", i % instances.max(1));
            let shape = if i % 10 == 3 { SHAPE_B } else { SHAPE_A };
            let (findings, lock_ms) = match i % 1000 {
                0..=4 => (
                    vec![
                        fk_orphans(&name, 2 + (i % 7) as u64, &[17, 42]),
                        statement_fails(),
                    ],
                    640,
                ),
                5..=24 => (
                    vec![lock_budget(&name, 2_500 + (i % 900) as u64, 12.5)],
                    2_500,
                ),
                _ => (
                    vec![info_rows(&name, 1_000 + i as u64)],
                    40 + (i % 300) as u64,
                ),
            };
            v.push(shard(&name, &instance, findings, lock_ms, shape));
        }
    });
    r.fleet.shards = shards;
    r.fleet.instances = instances;
    r
}

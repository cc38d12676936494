//! Every plant makes exactly its documented migration statement fail, with the documented
//! SQLSTATE, and an unplanted tenant accepts all of them.

use sqlx::Connection as _;
use topology::catalog::introspect_schemas;
use topology::ephemeral::{EphemeralOptions, EphemeralPg};
use topology::fixture::{FixtureSpec, Plant, create_tenants, start_fleet};

/// The statements of the plant docs, with the SQLSTATE the matching plant causes.
const MIGRATION: &[(&str, &str)] = &[
    (
        "ALTER TABLE {s}.orders ADD CONSTRAINT orders_coupon_id_fkey FOREIGN KEY (coupon_id) REFERENCES {s}.coupons (id)",
        "23503",
    ),
    (
        "ALTER TABLE {s}.orders ALTER COLUMN shipping_address SET NOT NULL",
        "23502",
    ),
    (
        "ALTER TABLE {s}.users ADD CONSTRAINT users_email_key UNIQUE (email)",
        "23505",
    ),
    (
        "ALTER TABLE {s}.orders ALTER COLUMN legacy_amount TYPE integer USING legacy_amount::integer",
        "22P02",
    ),
    (
        "ALTER TABLE {s}.payments ADD CONSTRAINT payments_amount_cents_check CHECK (amount_cents >= 0)",
        "23514",
    ),
];

async fn outcome(conn: &mut sqlx::PgConnection, schema: &str, stmt: &str) -> Option<String> {
    let mut tx = conn.begin().await.unwrap();
    let sql = stmt.replace("{s}", schema);
    let r = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut *tx)
        .await;
    tx.rollback().await.ok();
    match r {
        Ok(_) => None,
        Err(e) => Some(
            e.as_database_error()
                .and_then(|d| d.code())
                .map(|c| c.into_owned())
                .unwrap_or_default(),
        ),
    }
}

#[tokio::test]
async fn each_plant_trips_its_statement() {
    let pg = EphemeralPg::start_async(EphemeralOptions::default())
        .await
        .unwrap();
    let spec = FixtureSpec {
        tenants: 7,
        rows: 60,
        ..Default::default()
    }
    .plant(2, Plant::OrphanedCoupons { rows: 3 })
    .plant(3, Plant::NullShippingAddresses { rows: 4 })
    .plant(4, Plant::DuplicateEmails { rows: 2 })
    .plant(5, Plant::UncastableAmounts { rows: 5 })
    .plant(6, Plant::NegativePayments { rows: 6 })
    .plant(7, Plant::LargeEvents { rows: 20_000 });
    create_tenants(&pg.connection_spec(), &spec).await.unwrap();
    let mut conn = pg
        .connection_spec()
        .with_database("app")
        .connect("t")
        .await
        .unwrap();

    // Tenant 1 (clean) and 7 (only large) accept every statement.
    for t in [1, 7] {
        for (stmt, _) in MIGRATION {
            assert_eq!(
                outcome(&mut conn, &spec.tenant_name(t), stmt).await,
                None,
                "tenant {t}: {stmt}"
            );
        }
    }
    // Tenant 2..=6: exactly statement t-2 fails, with its SQLSTATE.
    for t in 2..=6 {
        for (i, (stmt, code)) in MIGRATION.iter().enumerate() {
            let got = outcome(&mut conn, &spec.tenant_name(t), stmt).await;
            if i == t - 2 {
                assert_eq!(got.as_deref(), Some(*code), "tenant {t}: {stmt}");
            } else {
                assert_eq!(got, None, "tenant {t}: {stmt}");
            }
        }
    }

    // Exact counts the probes will find.
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    assert_eq!(count("SELECT count(*) FROM tenant_0002.orders o WHERE coupon_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tenant_0002.coupons c WHERE c.id = o.coupon_id)").fetch_one(&mut conn).await.unwrap(), 3);
    assert_eq!(
        count("SELECT count(*) FROM tenant_0003.orders WHERE shipping_address IS NULL")
            .fetch_one(&mut conn)
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        count("SELECT count(*) - count(DISTINCT email) FROM tenant_0004.users")
            .fetch_one(&mut conn)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        count("SELECT count(*) FROM tenant_0005.orders WHERE legacy_amount !~ '^[0-9]+$'")
            .fetch_one(&mut conn)
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        count("SELECT count(*) FROM tenant_0006.payments WHERE amount_cents < 0")
            .fetch_one(&mut conn)
            .await
            .unwrap(),
        6
    );
    assert_eq!(
        count("SELECT count(*) FROM tenant_0007.events")
            .fetch_one(&mut conn)
            .await
            .unwrap(),
        20_060
    );

    // The large table is analyzed: its row estimate is known and big.
    let pool = pg.pool("app", 1).await.unwrap();
    let cats = introspect_schemas(&pool, &["tenant_0001".into(), "tenant_0007".into()])
        .await
        .unwrap();
    let big = cats["tenant_0007"].tables["events"]
        .row_estimate
        .unwrap_or(0);
    assert!(big > 15_000, "{big}");
    assert!(
        cats["tenant_0007"].tables["events"].total_bytes
            > 10 * cats["tenant_0001"].tables["events"].total_bytes
    );
    // Data plants leave the shape alone.
    assert_eq!(
        cats["tenant_0001"].fingerprint(),
        cats["tenant_0007"].fingerprint()
    );
}

#[tokio::test]
async fn fleet_layout_spreads_tenants_over_instances() {
    let spec = FixtureSpec {
        tenants: 7,
        rows: 5,
        ..Default::default()
    }
    .plant(6, Plant::NullShippingAddresses { rows: 1 });
    let fleet = start_fleet(3, &spec).await.unwrap();
    assert_eq!(fleet.clusters.len(), 3);
    assert_eq!(fleet.fleet.instances.len(), 3);
    let per: Vec<usize> = fleet
        .fleet
        .instances
        .iter()
        .map(|i| fleet.fleet.shards_on(&i.name).count())
        .collect();
    assert_eq!(per, vec![3, 2, 2]);
    assert_eq!(fleet.fleet.shards[5].id, "pg-3/app/tenant_0006");
    // The plant landed on the instance holding tenant 6.
    let pool = fleet.clusters[2].pool("app", 1).await.unwrap();
    let nulls: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tenant_0006.orders WHERE shipping_address IS NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(nulls, 1);
}

#[test]
fn tenant_sql_quotes_the_schema() {
    let sql = topology::fixture::tenant_sql("Tenant \"X\"", 10, &[], true);
    assert!(sql.contains("CREATE SCHEMA \"Tenant \"\"X\"\"\";"));
    assert!(!sql.contains("{s}"));
}

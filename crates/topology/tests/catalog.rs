//! Catalog introspection, fingerprints, diff, drift and the FK graph on a real fixture fleet.

use topology::catalog::{
    CascadeReach, ConstraintType, FkAction, TableName, detect_drift, diff, introspect_schema,
    introspect_schemas,
};
use topology::ephemeral::{EphemeralOptions, EphemeralPg};
use topology::fixture::{DriftKind, FixtureLayout, FixtureSpec, Plant, create_tenants};

async fn fixture(spec: &FixtureSpec) -> (EphemeralPg, sqlx::PgPool) {
    let pg = EphemeralPg::start_async(EphemeralOptions::default())
        .await
        .expect("start pg");
    create_tenants(&pg.connection_spec(), spec)
        .await
        .expect("fixture");
    let db = match &spec.layout {
        FixtureLayout::SchemaPerTenant { database } => database.clone(),
        FixtureLayout::DatabasePerTenant => "postgres".into(),
    };
    let pool = pg.pool(&db, 2).await.expect("pool");
    (pg, pool)
}

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("tenant_{i:04}")).collect()
}

#[tokio::test]
async fn introspects_fixture_schema_snapshot() {
    let spec = FixtureSpec {
        tenants: 1,
        rows: 50,
        analyze: true,
        ..Default::default()
    };
    let (_pg, pool) = fixture(&spec).await;
    let cat = introspect_schema(&pool, "tenant_0001")
        .await
        .expect("introspect");
    assert_eq!(cat.tables.len(), 7);
    let orders = cat.table("orders").expect("orders");
    assert_eq!(orders.row_estimate, Some(50));
    assert!(orders.total_bytes > orders.table_bytes && orders.table_bytes > 0);
    assert!(orders.oid > 0 && orders.relfilenode > 0);
    insta::assert_yaml_snapshot!("tenant_0001_catalog", cat, {
        ".tables.*.oid" => "[oid]",
        ".tables.*.relfilenode" => "[relfilenode]",
        ".tables.*.total_bytes" => "[bytes]",
        ".tables.*.table_bytes" => "[bytes]",
        ".tables.*.indexes.*.oid" => "[oid]",
        ".tables.*.indexes.*.relfilenode" => "[relfilenode]",
        ".tables.*.indexes.*.bytes" => "[bytes]",
    });
}

#[tokio::test]
async fn fingerprints_group_identical_tenants_and_diff_names_the_drift() {
    let spec = FixtureSpec {
        tenants: 5,
        rows: 20,
        ..Default::default()
    }
    .plant(
        3,
        Plant::Drift {
            kind: DriftKind::ExtraColumn,
        },
    )
    .plant(
        3,
        Plant::Drift {
            kind: DriftKind::MissingIndex,
        },
    )
    .plant(
        5,
        Plant::Drift {
            kind: DriftKind::ColumnType,
        },
    )
    .plant(
        5,
        Plant::Drift {
            kind: DriftKind::MissingColumn,
        },
    )
    // Data plants do not change the shape.
    .plant(2, Plant::OrphanedCoupons { rows: 3 })
    .plant(4, Plant::NullShippingAddresses { rows: 3 });
    let (_pg, pool) = fixture(&spec).await;
    let all = introspect_schemas(&pool, &names(5))
        .await
        .expect("introspect");
    assert_eq!(all.len(), 5);
    let fp = |n: &str| all[n].fingerprint();
    assert_eq!(fp("tenant_0001"), fp("tenant_0002"));
    assert_eq!(fp("tenant_0001"), fp("tenant_0004"));
    assert_ne!(fp("tenant_0001"), fp("tenant_0003"));
    assert_ne!(fp("tenant_0001"), fp("tenant_0005"));
    assert_ne!(fp("tenant_0003"), fp("tenant_0005"));
    assert!(diff(&all["tenant_0001"], &all["tenant_0002"]).is_empty());

    let d3: Vec<String> = diff(&all["tenant_0001"], &all["tenant_0003"])
        .iter()
        .map(|d| d.to_string())
        .collect();
    let d5: Vec<String> = diff(&all["tenant_0001"], &all["tenant_0005"])
        .iter()
        .map(|d| d.to_string())
        .collect();
    insta::assert_snapshot!(
        "diff_drifted_shards",
        format!(
            "tenant_0003:\n{}\n\ntenant_0005:\n{}\n",
            d3.join("\n"),
            d5.join("\n")
        )
    );

    let drift = detect_drift(all.iter().map(|(k, v)| (k.as_str(), v)));
    assert_eq!(drift.groups.len(), 3);
    assert_eq!(
        drift.groups[0].shards,
        vec!["tenant_0001", "tenant_0002", "tenant_0004"]
    );
    assert_eq!(drift.reference.as_ref(), Some(&fp("tenant_0001")));
    let drifted: Vec<&str> = drift.drifted.iter().map(|d| d.shard.as_str()).collect();
    assert_eq!(drifted, vec!["tenant_0003", "tenant_0005"]);
    assert_eq!(drift.drifted[0].differences.len(), 2);
}

#[tokio::test]
async fn diff_sees_not_valid_and_invalid_index_and_default() {
    let spec = FixtureSpec {
        tenants: 2,
        rows: 10,
        ..Default::default()
    };
    let (_pg, pool) = fixture(&spec).await;
    for s in ["tenant_0001", "tenant_0002"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {s}.orders ADD CONSTRAINT orders_coupon_id_fkey FOREIGN KEY (coupon_id) REFERENCES {s}.coupons (id) {}",
            if s == "tenant_0002" { "NOT VALID" } else { "" }
        )))
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::raw_sql(
        "ALTER TABLE tenant_0002.accounts ALTER COLUMN settings SET DEFAULT '{\"v\": 2}'::jsonb;
         UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'tenant_0002.orders_account_id_idx'::regclass;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let all = introspect_schemas(&pool, &names(2)).await.unwrap();
    let a = &all["tenant_0001"];
    let b = &all["tenant_0002"];
    let fk = &a.tables["orders"].constraints["orders_coupon_id_fkey"];
    assert_eq!(fk.kind, ConstraintType::ForeignKey);
    assert!(fk.validated);
    assert!(!b.tables["orders"].constraints["orders_coupon_id_fkey"].validated);
    let d: Vec<String> = diff(a, b).iter().map(|d| d.to_string()).collect();
    insta::assert_snapshot!("diff_not_valid_invalid_default", d.join("\n"));
    assert_ne!(a.fingerprint(), b.fingerprint());
}

#[tokio::test]
async fn fk_graph_and_cascade_reach() {
    let spec = FixtureSpec {
        tenants: 2,
        rows: 10,
        ..Default::default()
    };
    let (_pg, pool) = fixture(&spec).await;
    let mut schemas = names(2);
    schemas.push("shared".into());
    let all = introspect_schemas(&pool, &schemas).await.unwrap();
    let g = topology::catalog::fk_graph(all.values());
    // 7 tenant tables x 2 + 2 shared tables.
    assert_eq!(g.tables().len(), 16);

    let plans = TableName::new("shared", "plans");
    let refs: Vec<String> = g
        .referencing(&plans)
        .iter()
        .map(|r| format!("{} ({})", r.from, r.edge.constraint))
        .collect();
    assert_eq!(
        refs,
        vec![
            "tenant_0001.accounts (accounts_plan_id_fkey)",
            "tenant_0002.accounts (accounts_plan_id_fkey)"
        ]
    );
    assert!(g.cascade_reach(&plans).is_empty());

    let accounts = TableName::new("tenant_0001", "accounts");
    let reach = g.cascade_reach(&accounts);
    let show = |r: &CascadeReach| {
        format!(
            "{} via {}",
            r.table,
            r.path
                .iter()
                .map(|s| s.edge.constraint.as_str())
                .collect::<Vec<_>>()
                .join(" -> ")
        )
    };
    let lines: Vec<String> = reach.iter().map(show).collect();
    assert_eq!(
        lines,
        vec![
            "tenant_0001.events via events_account_id_fkey",
            "tenant_0001.orders via orders_account_id_fkey",
            "tenant_0001.users via users_account_id_fkey",
            "tenant_0001.order_items via orders_account_id_fkey -> order_items_order_id_fkey",
        ]
    );
    // payments is RESTRICT: referenced but not reached.
    let orders = TableName::new("tenant_0001", "orders");
    let into_orders = g.referencing(&orders);
    assert!(
        into_orders
            .iter()
            .any(|r| r.from.name == "payments" && r.edge.on_delete == FkAction::Restrict)
    );
    assert!(
        !g.cascade_reach(&orders)
            .iter()
            .any(|r| r.table.name == "payments")
    );
    // Outgoing: orders references accounts, users and shared.currencies.
    let out: Vec<String> = g
        .references(&orders)
        .iter()
        .map(|r| r.to.to_string())
        .collect();
    assert_eq!(
        out,
        vec![
            "shared.currencies",
            "tenant_0001.accounts",
            "tenant_0001.users"
        ]
    );
}

#[tokio::test]
async fn cascade_reach_is_cycle_safe() {
    let pg = EphemeralPg::start_async(EphemeralOptions::default())
        .await
        .unwrap();
    let pool = pg.pool("postgres", 1).await.unwrap();
    sqlx::raw_sql(
        "CREATE SCHEMA c;
         CREATE TABLE c.a (id int PRIMARY KEY, b_id int);
         CREATE TABLE c.b (id int PRIMARY KEY, a_id int REFERENCES c.a ON DELETE CASCADE);
         ALTER TABLE c.a ADD FOREIGN KEY (b_id) REFERENCES c.b ON DELETE CASCADE;
         CREATE TABLE c.selfref (id int PRIMARY KEY, parent int REFERENCES c.selfref ON DELETE CASCADE);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let cat = introspect_schema(&pool, "c").await.unwrap();
    let g = topology::catalog::fk_graph_of(&cat);
    let reach = g.cascade_reach(&TableName::new("c", "a"));
    assert_eq!(reach.len(), 1);
    assert_eq!(reach[0].table, TableName::new("c", "b"));
    assert!(g.cascade_reach(&TableName::new("c", "selfref")).is_empty());
}

#[tokio::test]
async fn missing_schema_is_an_error() {
    let pg = EphemeralPg::start_async(EphemeralOptions::default())
        .await
        .unwrap();
    let pool = pg.pool("postgres", 1).await.unwrap();
    let err = introspect_schemas(&pool, &["public".into(), "nope".into()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`nope`"), "{err}");
}

//! `UPDATE` / `DELETE` row filters: the SQL of the rows they touch and whether the `WHERE`
//! bounds them to a batch (`unbatched-data-change` reads it; the `row_estimate` probe counts it).

use migration_parser::{Operation, ParseOptions, RowFilter, parse};

fn filter(sql: &str) -> Option<RowFilter> {
    let m = parse("t.sql", sql, &ParseOptions::default()).expect("parses");
    match m.statements[0].operations.first() {
        Some(Operation::Update { filter, .. } | Operation::Delete { filter, .. }) => filter.clone(),
        other => panic!("{sql}: {other:?}"),
    }
}

#[test]
fn batches_are_told_from_backfills() {
    for (sql, batched) in [
        ("UPDATE users SET plan = 'free' WHERE plan IS NULL", false),
        (
            "DELETE FROM events WHERE created_at < now() - interval '90 days'",
            false,
        ),
        ("UPDATE orders SET s = 1 WHERE status = 'old'", false),
        (
            "UPDATE users SET plan = 'free' WHERE id IN (SELECT id FROM users WHERE plan IS NULL LIMIT 5000)",
            true,
        ),
        (
            "DELETE FROM events WHERE ctid = ANY (ARRAY(SELECT ctid FROM events WHERE old LIMIT 1000))",
            true,
        ),
        ("UPDATE t SET a = 1 WHERE id BETWEEN 1 AND 10000", true),
        (
            "UPDATE t SET a = 1 WHERE id >= 1 AND id < 10000 AND a IS NULL",
            true,
        ),
        ("UPDATE t SET a = 1 WHERE id >= 1 AND b < 10000", false),
        ("UPDATE settings SET v = 'x' WHERE id = 7", true),
        ("DELETE FROM t WHERE id IN (1, 2, 3)", true),
        ("UPDATE a SET x = b.x FROM b WHERE a.id = b.a_id", false),
    ] {
        let f = filter(sql).expect("has a WHERE");
        assert_eq!(f.batched, batched, "{sql}: {f:?}");
    }
}

#[test]
fn the_filter_selects_the_same_rows() {
    let f =
        filter("UPDATE orders o SET total = 0 FROM refunds r WHERE r.order_id = o.id AND r.full")
            .unwrap();
    assert_eq!(f.from_sql, "orders o, refunds r");
    assert_eq!(f.where_sql, "r.order_id = o.id AND r.full");
    let f = filter("DELETE FROM tenant_7.orders USING stale s WHERE s.id = orders.id").unwrap();
    assert_eq!(f.from_sql, "tenant_7.orders, stale s");
    assert!(filter("DELETE FROM t").is_none());
}

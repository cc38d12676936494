use super::*;
use crate::{ParseOptions, parse};

fn changes(sql: &str) -> Vec<BreakingChange> {
    let m = parse("m.sql", sql, &ParseOptions::default()).expect("parses");
    breaking_changes(&m)
}

fn uses(query: &str, changes: &[BreakingChange], schema: &str) -> Vec<String> {
    match scan_query(query) {
        QueryScan::Data(n) => n
            .uses(changes, schema)
            .iter()
            .map(|&i| changes[i].target(schema))
            .collect(),
        other => panic!("{query}: {other:?}"),
    }
}

#[test]
fn breaking_changes_use_shard_names_and_skip_created_objects() {
    let c = changes(
        "ALTER TABLE orders RENAME COLUMN a TO a_old;\n\
         ALTER TABLE orders DROP COLUMN a_old;\n\
         CREATE TABLE fresh (x int);\n\
         ALTER TABLE fresh DROP COLUMN x;\n\
         ALTER TABLE tenant_1.items ALTER COLUMN qty TYPE text;\n\
         DROP TABLE legacy;\n\
         ALTER TABLE customers RENAME TO clients;",
    );
    let got: Vec<(String, &str, usize)> = c
        .iter()
        .map(|b| (b.target("t"), b.change.verb(), b.statement))
        .collect();
    assert_eq!(
        got,
        vec![
            ("t.orders.a".to_string(), "renames", 0),
            ("tenant_1.items.qty".to_string(), "changes the type of", 4),
            ("t.legacy".to_string(), "drops", 5),
            ("t.customers".to_string(), "renames", 6),
        ]
    );
}

#[test]
fn columns_resolve_through_qualifiers_aliases_and_the_search_path() {
    let c = changes("ALTER TABLE orders DROP COLUMN a;");
    // Unqualified, in the shard's schema.
    assert_eq!(
        uses("SELECT a FROM orders WHERE id = $1", &c, "t1"),
        ["t1.orders.a"]
    );
    // Qualified with the shard's schema, with the alias.
    assert_eq!(
        uses("SELECT o.a FROM t1.orders o WHERE o.id = $1", &c, "t1"),
        ["t1.orders.a"]
    );
    // Another tenant's schema: not this shard's table.
    assert!(uses("SELECT o.a FROM t2.orders o", &c, "t1").is_empty());
    // WHERE, ORDER BY, join conditions.
    assert_eq!(
        uses("SELECT id FROM orders WHERE a > $1", &c, "t1").len(),
        1
    );
    assert_eq!(
        uses(
            "SELECT c.id FROM customers c JOIN orders o ON o.a = c.id",
            &c,
            "t1"
        )
        .len(),
        1
    );
    // The alias of another table with the same column name: not a use.
    assert!(
        uses(
            "SELECT c.a FROM customers c JOIN orders o ON o.id = c.id",
            &c,
            "t1"
        )
        .is_empty()
    );
    // Writes: INSERT column list, UPDATE SET, ON CONFLICT.
    assert_eq!(
        uses("INSERT INTO orders (id, a) VALUES ($1, $2)", &c, "t1").len(),
        1
    );
    assert_eq!(
        uses("UPDATE orders SET a = $1 WHERE id = $2", &c, "t1").len(),
        1
    );
    assert_eq!(
        uses(
            "INSERT INTO orders (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET a = $2",
            &c,
            "t1"
        )
        .len(),
        1
    );
    assert_eq!(uses("DELETE FROM orders WHERE a = $1", &c, "t1").len(), 1);
}

#[test]
fn select_star_and_unused_columns_do_not_break() {
    let c = changes("ALTER TABLE orders DROP COLUMN b;");
    // `*` is expanded when the query is planned: the text still runs after the drop.
    assert!(uses("SELECT * FROM orders WHERE id = $1", &c, "t1").is_empty());
    assert!(uses("SELECT o.* FROM orders o", &c, "t1").is_empty());
    assert!(uses("SELECT a FROM orders WHERE id = $1", &c, "t1").is_empty());
    // An output alias named like the column is not the column.
    assert!(uses("SELECT a + 1 AS b FROM orders ORDER BY b", &c, "t1").is_empty());
    // A CTE of the same name is not the table.
    let t = changes("DROP TABLE orders;");
    assert!(
        uses(
            "WITH orders AS (SELECT 1 AS x) SELECT x FROM orders",
            &t,
            "t1"
        )
        .is_empty()
    );
}

#[test]
fn table_drops_and_renames_match_any_reference() {
    let c = changes("ALTER TABLE orders RENAME TO purchases;");
    assert_eq!(uses("SELECT * FROM orders", &c, "t1"), ["t1.orders"]);
    assert_eq!(
        uses("SELECT count(*) FROM t1.orders", &c, "t1"),
        ["t1.orders"]
    );
    assert!(uses("SELECT * FROM public.orders", &c, "t1").is_empty());
}

#[test]
fn other_statements_are_not_data_and_garbage_is_unparseable() {
    let c = changes("ALTER TABLE orders DROP COLUMN a;");
    assert!(matches!(
        scan_query("SET search_path = t1"),
        QueryScan::NotData
    ));
    assert!(matches!(
        scan_query("ALTER ROLE app PASSWORD $1"),
        QueryScan::NotData
    ));
    assert!(matches!(
        scan_query("SELECT FROM WHERE (("),
        QueryScan::Unparseable(_)
    ));
    assert!(query_uses("SELECT FROM WHERE ((", &c, "t1").is_empty());
    assert!(may_mention("SELECT 1 FROM Orders", &c));
    assert!(!may_mention("SELECT 1 FROM customers", &c));
}

#[test]
fn client_compatibility_of_type_changes() {
    assert!(!client_compatible("integer", "text"));
    assert!(!client_compatible("text", "jsonb"));
    assert!(client_compatible("integer", "bigint"));
    assert!(client_compatible("varchar(20)", "varchar(40)"));
    assert!(client_compatible("varchar(20)", "text"));
    assert!(!client_compatible("bigint", "integer"));
}

#[test]
fn displayed_queries_hold_no_literals() {
    let q = display_query(
        "SELECT a FROM orders\n  WHERE note = 'secret value' AND n > 42 AND id = $1",
        200,
    );
    assert_eq!(
        q,
        "SELECT a FROM orders WHERE note = ? AND n > ? AND id = $1"
    );
    let long = display_query(&format!("SELECT {} FROM t", "a, ".repeat(100)), 40);
    assert_eq!(long.chars().count(), 40);
    assert!(long.ends_with('…'));
}

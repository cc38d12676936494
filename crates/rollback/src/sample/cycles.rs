//! Closing foreign-key cycles: a nullable foreign key whose parent had no row yet when its
//! table was seeded starts NULL; once every table is seeded its rows take the parents' keys
//! (row `k` the `k`-th key, round robin), under a savepoint (left NULL if that fails).

use topology::catalog::Catalog;

use super::sql::guarded;
use crate::names::quote_ident;

fn list(cols: &[String], prefix: &str) -> String {
    cols.iter()
        .map(|c| format!("{prefix}{}", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `UPDATE` filling foreign key `constraint` of `table`, if both are known.
fn fill_sql(cat: &Catalog, table: &str, constraint: &str) -> Option<String> {
    let k = cat.tables.get(table)?.constraints.get(constraint)?;
    let fk = k.foreign_key.as_ref()?;
    if fk.referenced_columns.len() != k.columns.len() || k.columns.is_empty() {
        return None;
    }
    let child = format!("{}.{}", quote_ident(&cat.schema), quote_ident(table));
    let parent = format!(
        "{}.{}",
        quote_ident(&fk.references.schema),
        quote_ident(&fk.references.name)
    );
    let refs = list(&fk.referenced_columns, "");
    let not_null: Vec<String> = fk
        .referenced_columns
        .iter()
        .map(|c| format!("{} IS NOT NULL", quote_ident(c)))
        .collect();
    let key_cols: Vec<String> = (0..k.columns.len()).map(|i| format!("k{i}")).collect();
    let aliased: Vec<String> = fk
        .referenced_columns
        .iter()
        .zip(&key_cols)
        .map(|(c, a)| format!("{} AS {a}", quote_ident(c)))
        .collect();
    Some(format!(
        "UPDATE {child} AS c SET ({}) = ROW({}) \
         FROM (SELECT ctid AS t, row_number() OVER () AS r FROM {child}) AS cr \
         JOIN (SELECT {}, row_number() OVER (ORDER BY {refs}) AS r, count(*) OVER () AS n \
               FROM (SELECT DISTINCT {refs} FROM {parent} WHERE {}) AS d) AS k \
           ON (cr.r - 1) % k.n + 1 = k.r \
         WHERE c.ctid = cr.t",
        list(&k.columns, ""),
        key_cols
            .iter()
            .map(|a| format!("k.{a}"))
            .collect::<Vec<_>>()
            .join(", "),
        aliased.join(", "),
        not_null.join(" AND ")
    ))
}

/// Fill every foreign key of `later` (`(table, constraint)`) from its parent's rows.
pub(super) async fn close(
    conn: &mut sqlx::postgres::PgConnection,
    cat: &Catalog,
    later: &[(String, String)],
) {
    for (table, constraint) in later {
        if let Some(sql) = fill_sql(cat, table, constraint) {
            let _ = guarded(conn, &sql).await;
        }
    }
}

//! What a statement does to the transaction it runs in: transaction control, statements that
//! cannot run in a transaction block, statements that change the session's timeouts.

use migration_parser::{Operation, Statement, TxControl};

/// Whether `sql` starts (after comments) with a command that ends or splits a transaction:
/// `COMMIT`, `END`, `ROLLBACK` (but not `ROLLBACK TO`), `ABORT`, `BEGIN`, `START TRANSACTION`,
/// `PREPARE TRANSACTION`, `COMMIT PREPARED`, `ROLLBACK PREPARED`. The in-place rehearsal never
/// sends these to the target, whatever the parser made of them.
pub fn ends_transaction(sql: &str) -> bool {
    let words = leading_words(sql, 2);
    let first = words.first().map(String::as_str).unwrap_or("");
    let second = words.get(1).map(String::as_str).unwrap_or("");
    match first {
        "COMMIT" | "END" | "ABORT" | "BEGIN" => true,
        "ROLLBACK" => second != "TO",
        "START" => second == "TRANSACTION",
        "PREPARE" => second == "TRANSACTION",
        _ => false,
    }
}

pub(crate) use migration_parser::leading_words;

/// Whether PostgreSQL refuses to run the statement inside a transaction block.
pub fn runs_outside_transaction(st: &Statement) -> bool {
    let by_op = st.operations.iter().any(|op| match op {
        Operation::CreateIndex { concurrently, .. }
        | Operation::DropIndex { concurrently, .. }
        | Operation::Reindex { concurrently, .. }
        | Operation::DetachPartition { concurrently, .. } => *concurrently,
        Operation::Maintenance { command, .. } => command.is_vacuum(),
        Operation::DropDatabase { .. } => true,
        _ => false,
    });
    if by_op {
        return true;
    }
    let up = st.sql.trim_start().to_ascii_uppercase();
    let words: Vec<&str> = up.split_whitespace().collect();
    let first2 = words.iter().take(2).copied().collect::<Vec<_>>().join(" ");
    (up.contains("CONCURRENTLY") && !up.starts_with("REFRESH"))
        || up.starts_with("VACUUM")
        || matches!(
            first2.as_str(),
            "CREATE DATABASE"
                | "DROP DATABASE"
                | "ALTER SYSTEM"
                | "CREATE TABLESPACE"
                | "DROP TABLESPACE"
        )
}

pub(crate) fn tx_control(st: &Statement) -> Option<TxControl> {
    st.operations.iter().find_map(|op| match op {
        Operation::Transaction(t) => Some(*t),
        _ => None,
    })
}

pub(crate) fn sets_timeouts(st: &Statement) -> bool {
    st.operations.iter().any(|op| match op {
        Operation::Set { name, .. } | Operation::Reset { name } => {
            matches!(name.as_str(), "lock_timeout" | "statement_timeout" | "all")
        }
        _ => false,
    }) || st.sql.to_ascii_lowercase().contains("_timeout")
}

#[cfg(test)]
mod tests {
    use super::ends_transaction;

    #[test]
    fn transaction_enders_are_recognised_behind_comments() {
        for sql in [
            "COMMIT",
            "end",
            "END TRANSACTION",
            "abort",
            "ROLLBACK",
            "rollback prepared 'x'",
            "COMMIT PREPARED 'x'",
            "PREPARE TRANSACTION 'x'",
            "BEGIN",
            "start transaction read write",
            "-- a comment\nCOMMIT",
            "/* block */ /* two */ END",
        ] {
            assert!(ends_transaction(sql), "{sql}");
        }
        for sql in [
            "ROLLBACK TO SAVEPOINT a",
            "ALTER TABLE t ADD COLUMN c int",
            "DO $$ BEGIN PERFORM 1; END $$",
            "PREPARE q AS SELECT 1",
            "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END",
            "-- COMMIT\nSELECT 1",
            "ENDPOINT",
        ] {
            assert!(!ends_transaction(sql), "{sql}");
        }
    }
}

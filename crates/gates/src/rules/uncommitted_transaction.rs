use migration_parser::{Operation, Statement, TxControl};

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags a `BEGIN` (or `START TRANSACTION`, or `COMMIT/ROLLBACK AND CHAIN`) whose
    /// transaction is still open at the end of the file: no `COMMIT`, `END`, `ROLLBACK`,
    /// `ABORT` or `PREPARE TRANSACTION` follows it. Files the runner wraps in one transaction
    /// (`transaction_mode = "wrap-file"`: `psql -1`, sqlx, Diesel, golang-migrate, Flyway) are
    /// not flagged: the runner's own `COMMIT` at the end closes the block.
    ///
    /// ## Why is this bad?
    /// `psql -f` ends the session at the end of the file, and PostgreSQL rolls back a
    /// transaction that is still open when its session ends: everything after the `BEGIN` is
    /// silently undone. psql reports success, the migration tool records the migration as
    /// applied, and the schema is not changed — the next migration then fails, or worse, code
    /// that expects the new schema ships.
    ///
    /// Severity **red**: nothing after the `BEGIN` would be applied.
    ///
    /// ## Safe alternative
    /// End every transaction the file opens:
    /// ```sql
    /// BEGIN;
    /// ALTER TABLE orders ADD COLUMN note text;
    /// COMMIT;
    /// ```
    pub struct UncommittedTransaction {
        code: "DC504",
        name: "uncommitted-transaction",
        severity: Red,
    }
}

/// What a statement does to the transaction block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Opens a block (`BEGIN`, `START TRANSACTION`).
    Open,
    /// Ends the block (`COMMIT`, `END`, `ROLLBACK`, `ABORT`, `PREPARE TRANSACTION`).
    Close,
    /// Ends the block and opens a new one at once (`COMMIT/ROLLBACK ... AND CHAIN`).
    Chain,
}

/// The statement's effect on the transaction block: from the parser's typed operations
/// (`END` is a `COMMIT`, `ABORT` a `ROLLBACK` there), and from its words for what the parser
/// does not type (`AND CHAIN`, `PREPARE TRANSACTION`, and statements it could not parse).
fn effect(stmt: &Statement) -> Option<Effect> {
    let w = migration_parser::leading_words(&stmt.sql, 8);
    let first = w.first().map(String::as_str).unwrap_or("");
    let second = w.get(1).map(String::as_str).unwrap_or("");
    let chained = w.windows(2).any(|p| p[0] == "AND" && p[1] == "CHAIN");
    let typed = stmt.operations.iter().find_map(|o| match o {
        Operation::Transaction(c) => Some(*c),
        _ => None,
    });
    let by_words = match first {
        "BEGIN" => Some(Effect::Open),
        "START" if second == "TRANSACTION" => Some(Effect::Open),
        "COMMIT" | "END" | "ROLLBACK" | "ABORT" if second == "PREPARED" || second == "TO" => None,
        "COMMIT" | "END" | "ROLLBACK" | "ABORT" if chained => Some(Effect::Chain),
        "COMMIT" | "END" | "ROLLBACK" | "ABORT" => Some(Effect::Close),
        "PREPARE" if second == "TRANSACTION" => Some(Effect::Close),
        _ => None,
    };
    match typed {
        Some(TxControl::Begin) => Some(Effect::Open),
        Some(TxControl::Commit | TxControl::Rollback) if chained => Some(Effect::Chain),
        Some(TxControl::Commit | TxControl::Rollback) => Some(Effect::Close),
        Some(TxControl::Savepoint) => None,
        None => by_words,
    }
}

impl GateRule for UncommittedTransaction {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let wrapped = ctx.file_is_wrapped();
        if wrapped {
            return Vec::new();
        }
        // The statement that opened the block still open, and how many statements follow it.
        let mut open: Option<&Statement> = None;
        let mut inside = 0usize;
        for stmt in ctx.statements() {
            match effect(stmt) {
                // A BEGIN inside a block is a warning-only no-op on the server.
                Some(Effect::Open) if open.is_some() => inside += 1,
                Some(Effect::Open) | Some(Effect::Chain) => {
                    open = Some(stmt);
                    inside = 0;
                }
                Some(Effect::Close) => open = None,
                None if open.is_some() => inside += 1,
                None => {}
            }
        }
        let Some(begin) = open else {
            return Vec::new();
        };
        let what = if inside == 0 {
            "nothing follows it".to_string()
        } else {
            format!(
                "the {inside} statement{} after it would be rolled back",
                if inside == 1 { "" } else { "s" }
            )
        };
        vec![
            ctx.finding(
                self,
                begin,
                format!(
                    "this transaction is never committed: at the end of the file psql ends the \
                     session and PostgreSQL rolls the open transaction back, so {what}, while \
                     psql reports success"
                ),
            )
            .with_help("Add COMMIT; at the end of the transaction"),
        ]
    }
}

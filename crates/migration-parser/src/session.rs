//! Transaction structure and session settings, as the server sees the file.
//!
//! # Transactions
//!
//! * [`TransactionMode::Autocommit`] (`psql -f`): a statement outside an explicit block runs in a
//!   transaction of its own (`in_block = false`, a fresh id). `BEGIN`/`START TRANSACTION` opens a
//!   block; every statement up to and including the `COMMIT`/`END`/`ROLLBACK` shares the block's id
//!   with `in_block = true`. A `BEGIN` inside a block is a no-op (server warning), a `COMMIT` outside
//!   one too (it gets its own id, `in_block = false`).
//! * [`TransactionMode::WrapFile`] (`psql -1`, Diesel, sqlx, golang-migrate, Flyway): the file starts
//!   inside an implicit block (id 0, `in_block = true`). A `BEGIN` inside it is a no-op. An explicit
//!   `COMMIT`/`ROLLBACK` does what the server does with it: it ends the wrapping transaction (the
//!   statement itself still has `in_block = true`), the statements after it autocommit until the next
//!   `BEGIN` (and the runner's own final `COMMIT` only warns). So
//!   `COMMIT; CREATE INDEX CONCURRENTLY ...; BEGIN;` in a wrapped file is correctly seen outside a
//!   block.
//! * Transaction ids are assigned in file order starting at 0 and are unique per transaction.
//!
//! # Settings
//!
//! `lock_timeout`, `statement_timeout` (milliseconds, `0` = unset → `None`), `search_path` and
//! `TimeZone` (`SET TIME ZONE` too) are
//! tracked through `SET [SESSION]`, `SET LOCAL`, `SET ... TO DEFAULT`, `RESET x`, `RESET ALL` and
//! `SELECT set_config('x', 'v', is_local)`. `SET LOCAL` lasts until the end of the current
//! transaction block; outside a block it has no effect (the server only warns). A session-level
//! `SET` inside a block that is rolled back is undone, as in PostgreSQL. Each statement's
//! `settings` are those in effect when it starts.

use crate::model::{Operation, SessionSettings, Statement, TransactionMode, TxContext, TxControl};

/// Parse a PostgreSQL time setting to milliseconds: `2000`, `'2s'`, `'5min'`, `'1.5s'`, `'100ms'`,
/// `'1h'`, `'1d'`, `'500us'`. No unit means milliseconds. `None` when unparseable.
pub fn parse_duration_ms(value: &str) -> Option<u64> {
    let v = value.trim().trim_matches('\'').trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.trim().parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    let ms = n * factor;
    if !ms.is_finite() || ms < 0.0 {
        return None;
    }
    Some(ms.round() as u64)
}

fn non_zero(v: Option<u64>) -> Option<u64> {
    v.filter(|x| *x > 0)
}

/// Split a `search_path` value (`a, "B", '$user'`) into schema names.
fn search_path(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            if let Some(q) = s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                q.to_string()
            } else {
                s.trim_matches('\'').to_string()
            }
        })
        .collect()
}

#[derive(Clone, Default)]
struct Local {
    lock_timeout: Option<Option<u64>>,
    statement_timeout: Option<Option<u64>>,
    search_path: Option<Option<Vec<String>>>,
    timezone: Option<Option<String>>,
}

fn set(
    session: &mut SessionSettings,
    local: &mut Local,
    name: &str,
    value: Option<&str>,
    is_local: bool,
    in_block: bool,
) {
    if is_local && !in_block {
        return;
    }
    match name {
        "lock_timeout" | "statement_timeout" => {
            let ms = value.and_then(parse_duration_ms);
            // An unparseable value is an error on the server: the setting does not change.
            if value.is_some() && ms.is_none() {
                return;
            }
            let ms = non_zero(ms);
            let lock = name == "lock_timeout";
            if is_local {
                if lock {
                    local.lock_timeout = Some(ms);
                } else {
                    local.statement_timeout = Some(ms);
                }
            } else if lock {
                session.lock_timeout_ms = ms;
                local.lock_timeout = None;
            } else {
                session.statement_timeout_ms = ms;
                local.statement_timeout = None;
            }
        }
        "timezone" => {
            let z = value.map(|v| v.trim().trim_matches('\'').to_string());
            if is_local {
                local.timezone = Some(z);
            } else {
                session.timezone = z;
                local.timezone = None;
            }
        }
        "search_path" => {
            let p = value.map(search_path);
            if is_local {
                local.search_path = Some(p);
            } else {
                session.search_path = p;
                local.search_path = None;
            }
        }
        _ => {}
    }
}

fn effective(session: &SessionSettings, local: &Local) -> SessionSettings {
    SessionSettings {
        lock_timeout_ms: local.lock_timeout.unwrap_or(session.lock_timeout_ms),
        statement_timeout_ms: local
            .statement_timeout
            .unwrap_or(session.statement_timeout_ms),
        search_path: local
            .search_path
            .clone()
            .unwrap_or_else(|| session.search_path.clone()),
        timezone: local
            .timezone
            .clone()
            .unwrap_or_else(|| session.timezone.clone()),
    }
}

/// Fill [`Statement::tx`] and [`Statement::settings`] for the whole file.
pub(crate) fn apply(statements: &mut [Statement], mode: TransactionMode) {
    let mut next_id = 0usize;
    let mut session = SessionSettings::default();
    let mut local = Local::default();
    let mut block: Option<usize> = None;
    let mut snapshot = SessionSettings::default();
    if mode == TransactionMode::WrapFile {
        block = Some(next_id);
        next_id += 1;
    }
    for st in statements.iter_mut() {
        st.settings = effective(&session, &local);
        let ctl = st.operations.iter().find_map(|o| match o {
            Operation::Transaction(c) => Some(*c),
            _ => None,
        });
        let mut fresh = || {
            let id = next_id;
            next_id += 1;
            id
        };
        match ctl {
            Some(TxControl::Begin) => {
                let id = match block {
                    Some(id) => id,
                    None => {
                        let id = fresh();
                        block = Some(id);
                        snapshot = session.clone();
                        id
                    }
                };
                st.tx = TxContext {
                    transaction: id,
                    in_block: true,
                };
            }
            Some(c @ (TxControl::Commit | TxControl::Rollback)) => match block.take() {
                Some(id) => {
                    st.tx = TxContext {
                        transaction: id,
                        in_block: true,
                    };
                    if c == TxControl::Rollback {
                        session = snapshot.clone();
                    }
                    local = Local::default();
                }
                None => {
                    st.tx = TxContext {
                        transaction: fresh(),
                        in_block: false,
                    }
                }
            },
            Some(TxControl::Savepoint) | None => {
                st.tx = match block {
                    Some(id) => TxContext {
                        transaction: id,
                        in_block: true,
                    },
                    None => TxContext {
                        transaction: fresh(),
                        in_block: false,
                    },
                };
            }
        }
        let in_block = block.is_some();
        for op in &st.operations {
            match op {
                Operation::Set {
                    name,
                    value,
                    local: is_local,
                } => set(
                    &mut session,
                    &mut local,
                    name,
                    Some(value),
                    *is_local,
                    in_block,
                ),
                Operation::Reset { name } if name == "all" => {
                    session = SessionSettings::default();
                    local = Local::default();
                }
                Operation::Reset { name } => {
                    set(&mut session, &mut local, name, None, false, in_block)
                }
                _ => {}
            }
        }
    }
}

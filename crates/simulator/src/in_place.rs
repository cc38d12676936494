//! Which migration statements `--rehearse in-place` may run on a target.
//!
//! The in-place rehearsal runs the migration inside one transaction on the target and rolls it
//! back. That is only safe for statements whose every effect is transactional: a sequence
//! advanced by an `INSERT`, a `setval`, a replication slot, a terminated session, an advisory
//! lock, a notification, a file written by `COPY … TO PROGRAM`, a statistics reset or a large
//! object survive the rollback. So before the transaction starts, every statement is classified
//! on the shard's own connection ([`classify`]), and a statement is allowed only when
//!
//! 1. it is a kind of statement known to be transactional (an allow-list of leading keywords:
//!    DDL other than databases, tablespaces, extensions, subscriptions, languages and event
//!    triggers; DML; `SELECT`; `SET`; `LOCK`; …) — never `DO`, `CALL`, `COPY`,
//!    `NOTIFY`/`LISTEN`/`UNLISTEN`, `LOAD`, `DISCARD`, `CHECKPOINT`, `ANALYZE`, `CLUSTER`,
//!    `REFRESH MATERIALIZED VIEW`, `EXPLAIN`, or anything unknown;
//! 2. sqlparser parsed it (a statement recognised only from tokens is allowed when it evaluates
//!    no expression: `DROP INDEX`, `REINDEX`, `CREATE INDEX … ON ONLY`, partition attach/detach),
//!    and every function it calls passes the one side-effect policy
//!    ([`migration_parser::judge_call`] with [`CallContext::InPlaceRehearsal`]) as the name
//!    resolves on the shard ([`crate::safety`]);
//! 3. a statement that writes rows (`INSERT`, `UPDATE`, `DELETE`, `MERGE`, `TRUNCATE`, a
//!    data-modifying CTE) writes only ordinary or partitioned tables that — with their
//!    partitions and the tables their `ON DELETE/UPDATE CASCADE | SET NULL | SET DEFAULT`
//!    foreign keys reach — have no enabled user trigger, no rule and no row-level security,
//!    and, where the statement may evaluate defaults, no identity column and no column default
//!    that fails the policy (`nextval` does); tables the migration itself created earlier are
//!    exempt (they vanish with the rollback), but not when the migration created or enabled a
//!    trigger or rule before the statement;
//! 4. a query (`SELECT`, DML, `CREATE TABLE … AS`, `CREATE MATERIALIZED VIEW`) reads no view
//!    (except `pg_catalog`'s and `information_schema`'s) and no foreign table, partitions and
//!    inheritance children included (their functions are not visible in the text);
//! 5. no enabled event trigger exists in the database, for DDL (it would run a function).
//! 6. nothing the migration defined earlier changes what the statement runs or reaches, since
//!    the shard's catalog does not show it yet: a call of a function the migration creates, any
//!    statement after it replaces an existing function, alters a routine or schema, creates an
//!    operator, cast or aggregate, or sets the search path with `set_config`; a query after it
//!    renames or moves a relation, creates a rule or a foreign table, attaches a partition or
//!    reads a view it created; a delete or update after it adds a foreign key with a
//!    referential action; a new table made `LIKE`/`INHERITS`/`PARTITION OF` an existing one is
//!    judged by that table's defaults and triggers;
//! 7. the server reads the text as the parser does: the transaction forces
//!    `standard_conforming_strings` on, and a `SET`/`RESET` of it, of the client encoding or of
//!    `ALL` is refused.
//!
//! The check is deliberately conservative: an `INSERT` into a table with a `serial` column is
//! refused even when it gives the column a value, and so is an `UPDATE` of it that says
//! `DEFAULT` anywhere (`SET id = DEFAULT`); a `DELETE`, `TRUNCATE` or other `UPDATE` does not
//! evaluate the target's defaults (those of the tables its cascading foreign keys reach count).
//! A refused statement is not run in place at all — and neither is the rest of the migration,
//! which depends on it: the caller rehearses that shape on the shadow and reports each
//! [`InPlaceRefusal`] (gates rule `in-place-refused`).
//!
//! Residual risk (SECURITY.md): functions declared `IMMUTABLE`/`STABLE` are believed;
//! operators, casts and domain defaults call functions the text does not name.

use migration_parser::{
    CallContext, FunctionCall, Migration, MigrationState, Operation, QualifiedName, SqlRefs,
    Statement, StatementKind, Step, TxControl, judge_call, same_relation, statement_refs,
};
use sqlx::{PgConnection, Row};

use crate::ident::{quote_ident, quote_qualified};
use crate::rehearsal::tx::{ends_transaction, leading_words, runs_outside_transaction, tx_control};
use crate::safety::resolve_functions;

pub use evidence::InPlaceRefusal;

/// Classify every statement of `migration` on the shard of `conn` (its `shard_schema` first on
/// the search path, as the in-place rehearsal sets it), inside a `READ ONLY` transaction that
/// is rolled back. Returns the refused statements (empty: all may run in place). Statements the
/// in-place rehearsal never sends (transaction control, `CONCURRENTLY`) are not classified.
pub async fn classify(
    conn: &mut PgConnection,
    migration: &Migration,
    shard_schema: &str,
) -> Result<Vec<InPlaceRefusal>, sqlx::Error> {
    sqlx::raw_sql("BEGIN READ ONLY").execute(&mut *conn).await?;
    let r = classify_in(conn, migration, shard_schema).await;
    let rb = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    let refused = r?;
    rb?;
    Ok(refused)
}

async fn classify_in(
    conn: &mut PgConnection,
    migration: &Migration,
    shard_schema: &str,
) -> Result<Vec<InPlaceRefusal>, sqlx::Error> {
    let default_path = format!("{}, public", quote_ident(shard_schema));
    let mut path = String::new();
    let event_triggers: Vec<String> = sqlx::query_scalar(
        "SELECT evtname::text FROM pg_catalog.pg_event_trigger WHERE evtenabled <> 'D' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let replaced = existing_functions(conn, migration).await?;
    let state = MigrationState::new(migration);
    let mut out = Vec::new();
    for st in &migration.statements {
        if !sent_in_place(st) {
            continue;
        }
        let want = st
            .settings
            .search_path
            .as_ref()
            .map(|p| {
                p.iter()
                    .map(|s| quote_ident(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|| default_path.clone());
        if want != path {
            sqlx::query("SELECT set_config('search_path', $1, true)")
                .bind(&want)
                .execute(&mut *conn)
                .await?;
            path = want;
        }
        let mut reasons = Vec::new();
        if let Some(why) = keyword_reason(st) {
            reasons.push(why);
        } else {
            if is_ddl(st) && !event_triggers.is_empty() {
                reasons.push(format!(
                    "the database has enabled event trigger(s) {}, which run functions on DDL that are not checked",
                    backticked(&event_triggers)
                ));
            }
            let code = defined_code(migration, st.index, &replaced);
            if let Some((line, what)) = &code.opaque {
                reasons.push(format!(
                    "the migration {what} at line {line}, which this statement may run without naming it"
                ));
            }
            match refs_of(st) {
                Err(why) => reasons.push(why),
                Ok(refs) => {
                    reasons.extend(code.calls_reasons(&refs));
                    reasons.extend(shard_reasons(conn, migration, &state, st, &refs).await?);
                }
            }
        }
        if !reasons.is_empty() {
            out.push(InPlaceRefusal {
                index: st.index,
                line: st.span.line,
                statement: first_words(&st.sql),
                reasons,
            });
        }
    }
    Ok(out)
}

/// Whether the in-place rehearsal would send `st` to the target at all.
fn sent_in_place(st: &Statement) -> bool {
    !matches!(
        tx_control(st),
        Some(TxControl::Begin | TxControl::Commit | TxControl::Rollback)
    ) && !ends_transaction(&st.sql)
        && !runs_outside_transaction(st)
}

/// The statement's first line, at most 60 characters.
fn first_words(sql: &str) -> String {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(60) {
        Some((i, _)) => format!("{} …", flat[..i].trim_end()),
        None => flat,
    }
}

fn backticked(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Leading keywords of statements that write rows.
const DML: &[&str] = &["INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE"];
/// Leading keywords of statements that evaluate a query.
const QUERY: &[&str] = &["SELECT", "WITH", "VALUES", "TABLE"];
/// Leading keywords of DDL (what event triggers fire on).
const DDL: &[&str] = &[
    "CREATE", "ALTER", "DROP", "COMMENT", "GRANT", "REVOKE", "REINDEX",
];
/// Other leading keywords known to be transactional.
const OTHER_ALLOWED: &[&str] = &["SET", "RESET", "LOCK", "SAVEPOINT", "RELEASE", "ROLLBACK"];

/// Why the kind of statement (its leading keywords) may not run in place, if it may not.
fn keyword_reason(st: &Statement) -> Option<String> {
    let words = leading_words(&st.sql, 6);
    let first = words.first().map(String::as_str).unwrap_or("");
    let fixed = match first {
        "SET" | "RESET" => return lexing_setting_reason(&words),
        f if DML.contains(&f) || QUERY.contains(&f) || OTHER_ALLOWED.contains(&f) => return None,
        "CREATE" | "ALTER" | "DROP" => return ddl_object_reason(&words),
        f if DDL.contains(&f) => return None,
        "DO" => "it is a DO block: procedural code whose effects cannot be checked",
        "CALL" => {
            "it calls a procedure: a procedure may commit, and what it does cannot be checked"
        }
        "COPY" => {
            "it is a COPY: it reads or writes server files, runs programs or streams data outside the transaction"
        }
        "NOTIFY" | "LISTEN" | "UNLISTEN" => {
            "it is a notification command: notifications reach other sessions"
        }
        "ANALYZE" | "ANALYSE" | "VACUUM" | "CLUSTER" => {
            "it is a maintenance command: it updates statistics in place, which a rollback does not undo"
        }
        "REFRESH" => {
            "it refreshes a materialized view: the view's stored query runs, and its function calls are not checked"
        }
        "LOAD" => "it loads a shared library into the server",
        "DISCARD" => "it discards session state",
        "CHECKPOINT" => "it forces a server-wide checkpoint",
        "EXPLAIN" => "it is an EXPLAIN: EXPLAIN ANALYZE executes a statement that is not checked",
        "" => "it has no keyword deployclaw recognises",
        other => {
            return Some(format!(
                "`{other}` is not a statement deployclaw knows to be transactional and free of side effects"
            ));
        }
    };
    Some(fixed.to_string())
}

/// Settings that change how the server reads the text of later statements: with
/// `standard_conforming_strings` off, `\'` inside a string is a quote, and a client encoding
/// such as SJIS reads a byte of a multibyte character together with a following `\`. Either
/// lets a statement call a function the parser (which reads the text as `UTF8` with
/// standard-conforming strings) did not see. `RESET ALL` returns to the session's defaults,
/// which may be non-conforming.
const LEXING_SETTINGS: &[&str] = &[
    "STANDARD_CONFORMING_STRINGS",
    "BACKSLASH_QUOTE",
    "CLIENT_ENCODING",
    "NAMES",
    "ALL",
];

/// Why a `SET`/`RESET` (its first words) may not run in place, if it may not.
fn lexing_setting_reason(words: &[String]) -> Option<String> {
    let name = words
        .iter()
        .skip(1)
        .map(String::as_str)
        .find(|w| !matches!(*w, "SESSION" | "LOCAL"))?;
    LEXING_SETTINGS.contains(&name).then(|| {
        format!(
            "it changes `{}`, which changes how the server reads later statements: a call the check cannot see could run",
            name.to_ascii_lowercase()
        )
    })
}

/// `CREATE`/`ALTER`/`DROP` of an object whose change is not confined to the transaction or
/// runs code that is not checked.
fn ddl_object_reason(words: &[String]) -> Option<String> {
    const MODIFIERS: &[&str] = &[
        "OR",
        "REPLACE",
        "UNIQUE",
        "TEMP",
        "TEMPORARY",
        "UNLOGGED",
        "GLOBAL",
        "LOCAL",
        "TRUSTED",
        "PROCEDURAL",
    ];
    let object = words
        .iter()
        .skip(1)
        .map(String::as_str)
        .find(|w| !MODIFIERS.contains(w))
        .unwrap_or("");
    let why = match object {
        "DATABASE" | "TABLESPACE" | "SYSTEM" => {
            "it changes a database, tablespace or server setting, which is not confined to the transaction"
        }
        "EXTENSION" => "it runs an extension's script, whose statements are not checked",
        "SUBSCRIPTION" => "it is a subscription: it connects to another server",
        "LANGUAGE" => "it creates or changes a procedural language (a handler library is loaded)",
        "EVENT" => "it is an event trigger: it runs a function on later DDL",
        _ => return None,
    };
    Some(why.to_string())
}

fn is_ddl(st: &Statement) -> bool {
    let words = leading_words(&st.sql, 1);
    words.first().is_some_and(|w| DDL.contains(&w.as_str()))
}

/// What the statement calls and reads, or why that cannot be known.
fn refs_of(st: &Statement) -> Result<SqlRefs, String> {
    const UNPARSED: &str =
        "sqlparser could not parse it, so the functions it calls cannot be checked";
    if matches!(st.kind, StatementKind::Unparsed { .. }) {
        return Err(UNPARSED.into());
    }
    match statement_refs(&st.sql) {
        Ok(r) => Ok(r),
        // Recognised from tokens: fine when the form evaluates no expression (index
        // expressions and predicates must be IMMUTABLE; PostgreSQL enforces it).
        Err(_) if !st.operations.is_empty() && st.operations.iter().all(evaluates_nothing) => {
            Ok(SqlRefs::default())
        }
        Err(_) => Err(UNPARSED.into()),
    }
}

fn evaluates_nothing(op: &Operation) -> bool {
    matches!(
        op,
        Operation::DropIndex { .. }
            | Operation::Reindex { .. }
            | Operation::CreateIndex { .. }
            | Operation::AttachIndexPartition { .. }
            | Operation::AttachPartition { .. }
            | Operation::DetachPartition { .. }
            | Operation::RenameIndex { .. }
    )
}

/// The reasons that need the shard's catalog: function calls, written and read relations.
async fn shard_reasons(
    conn: &mut PgConnection,
    migration: &Migration,
    state: &MigrationState,
    st: &Statement,
    refs: &SqlRefs,
) -> Result<Vec<String>, sqlx::Error> {
    let mut reasons = judged(conn, refs.functions.iter().map(|c| (None, c))).await?;
    let first = leading_words(&st.sql, 1).pop().unwrap_or_default();
    let writes = DML.contains(&first.as_str())
        || !refs.data_modifying.is_empty()
        || st.operations.iter().any(|op| !op_targets(op).is_empty());
    let evaluates_query = writes
        || QUERY.contains(&first.as_str())
        || st.operations.iter().any(|op| {
            matches!(
                op,
                Operation::CreateTable {
                    as_select: true,
                    ..
                } | Operation::CreateView {
                    materialized: true,
                    ..
                }
            )
        });
    if evaluates_query {
        if let Some(line) = relations_changed_before(migration, st.index, &refs.relations) {
            reasons.push(format!(
                "the migration renames or moves a relation, creates a rule, or creates a view this statement reads at line {line}: what it reads or writes is not what the shard's catalog shows"
            ));
        }
        reasons.extend(read_reasons(conn, &refs.relations).await?);
    }
    if writes {
        let mut targets: Vec<&QualifiedName> = st.operations.iter().flat_map(op_targets).collect();
        if first == "MERGE" || !refs.data_modifying.is_empty() {
            // The written table is not typed: every relation the statement names counts.
            targets.extend(refs.relations.iter());
        }
        // A new table copies the defaults, identities or triggers of the tables it is made
        // from (`LIKE`, `INHERITS`, `PARTITION OF`), and an attached partition fires its new
        // parent's triggers: those tables, which exist on the shard, are judged too.
        let copied = tables_copied_before(migration, st.index);
        let created_before =
            |t: &QualifiedName| state.relation(t, Step::before(st.index)).is_created();
        let sources: Vec<QualifiedName> = targets
            .iter()
            .flat_map(|t| {
                let direct: Vec<&QualifiedName> = copied
                    .iter()
                    .filter(|(new, _)| same_relation(new, t))
                    .map(|(_, src)| src)
                    .collect();
                // Renamed since: every table a new table was made from counts.
                if direct.is_empty() && created_before(t) {
                    copied.iter().map(|(_, src)| src).collect()
                } else {
                    direct
                }
            })
            .cloned()
            .collect();
        targets.retain(|t| !created_before(t));
        targets.extend(sources.iter());
        let cascades = matches!(first.as_str(), "DELETE" | "UPDATE" | "MERGE" | "TRUNCATE")
            || !refs.data_modifying.is_empty();
        let any_key = first == "TRUNCATE";
        if let Some(line) =
            foreign_key_added_before(migration, st.index, any_key).filter(|_| cascades)
        {
            reasons.push(format!(
                "the migration adds a foreign key at line {line}: the tables this statement reaches through it are not checked"
            ));
        }
        if let Some(line) = trigger_created_before(migration, st.index) {
            reasons.push(format!(
                "the migration creates or enables a trigger or rule at line {line}, which this statement could fire"
            ));
        }
        let write = TargetWrite {
            truncate: first == "TRUNCATE",
            defaults: first == "INSERT"
                || first == "MERGE"
                || !refs.data_modifying.is_empty()
                || (first == "UPDATE"
                    && leading_words(&st.sql, usize::MAX)
                        .iter()
                        .any(|w| w == "DEFAULT")),
        };
        reasons.extend(target_reasons(conn, &targets, write).await?);
    }
    reasons.dedup();
    Ok(reasons)
}

/// Tables an operation writes rows of.
fn op_targets(op: &Operation) -> Vec<&QualifiedName> {
    match op {
        Operation::Insert { table, .. }
        | Operation::Update { table, .. }
        | Operation::Delete { table, .. } => vec![table],
        Operation::Truncate { tables, .. } => tables.iter().collect(),
        _ => Vec::new(),
    }
}

/// `(table, source)`: the statements before `index` make `table` copy the defaults,
/// identities or triggers of `source` (a new table made `LIKE`, `INHERITS` or `PARTITION OF`
/// it; a partition attached to it).
fn tables_copied_before(
    migration: &Migration,
    index: usize,
) -> Vec<(QualifiedName, QualifiedName)> {
    let mut out = Vec::new();
    for s in &migration.statements[..index.min(migration.statements.len())] {
        for op in &s.operations {
            match op {
                Operation::CreateTable { table, .. } => out.extend(
                    migration_parser::table_sources(&s.sql)
                        .into_iter()
                        .map(|src| (table.clone(), src)),
                ),
                Operation::AttachPartition { table, partition } => {
                    out.push((partition.clone(), table.clone()));
                }
                _ => {}
            }
        }
    }
    out
}

/// Code the migration defines before a statement: the shard's catalog, which the statements
/// are classified on, does not show it yet.
#[derive(Debug, Default)]
struct DefinedCode {
    /// Functions and procedures the migration creates, by name, with the line.
    functions: Vec<(String, u32)>,
    /// The first change (line, what) to code a statement may run without naming it.
    opaque: Option<(u32, &'static str)>,
}

impl DefinedCode {
    /// Calls of functions the migration creates: their bodies are not checked, whatever
    /// volatility they declare (an overload in the shard's schema wins over `pg_catalog`'s).
    fn calls_reasons(&self, refs: &SqlRefs) -> Vec<String> {
        let mut out = Vec::new();
        for c in &refs.functions {
            if let Some((_, line)) = self.functions.iter().find(|(n, _)| *n == c.name.name) {
                out.push(format!(
                    "it calls `{}`, a function the migration creates at line {line}, whose body is not checked",
                    c.name
                ));
            }
        }
        out
    }
}

/// What the statements before `index` define. `replaced` names functions that exist on the
/// shard (a `CREATE OR REPLACE` of one changes what existing defaults, indexes, constraints and
/// triggers run).
fn defined_code(migration: &Migration, index: usize, replaced: &[String]) -> DefinedCode {
    let mut out = DefinedCode::default();
    for s in &migration.statements[..index.min(migration.statements.len())] {
        let w = leading_words(&s.sql, 4);
        let verb = w.first().map(String::as_str).unwrap_or("");
        let object = w
            .iter()
            .skip(1)
            .map(String::as_str)
            .find(|x| !matches!(*x, "OR" | "REPLACE"))
            .unwrap_or("");
        let created = s.operations.iter().find_map(|op| match op {
            Operation::CreateFunction { name, .. } => Some(name.name.clone()),
            _ => None,
        });
        let what = match (verb, object) {
            ("CREATE", "FUNCTION" | "PROCEDURE") => match created {
                Some(n) if !replaced.contains(&n) => {
                    out.functions.push((n, s.span.line));
                    None
                }
                Some(_) => Some("replaces an existing function"),
                None => Some("creates a function it could not parse"),
            },
            ("CREATE", "AGGREGATE" | "OPERATOR" | "CAST" | "CONVERSION" | "TRANSFORM") => {
                Some("creates an aggregate, operator, cast, conversion or transform")
            }
            (
                "ALTER",
                "FUNCTION" | "PROCEDURE" | "ROUTINE" | "AGGREGATE" | "OPERATOR" | "SCHEMA",
            ) => Some("changes a function, operator or schema"),
            _ => {
                let lower = s.sql.to_ascii_lowercase();
                (lower.contains("set_config") && lower.contains("search_path"))
                    .then_some("changes the search path with `set_config`")
            }
        };
        if let (None, Some(what)) = (out.opaque, what) {
            out.opaque = Some((s.span.line, what));
        }
    }
    out
}

/// The names of the functions the migration creates (`CREATE [OR REPLACE] FUNCTION`) that
/// already exist on the shard, in any schema.
async fn existing_functions(
    conn: &mut PgConnection,
    migration: &Migration,
) -> Result<Vec<String>, sqlx::Error> {
    let names: Vec<String> = migration
        .statements
        .iter()
        .flat_map(|s| &s.operations)
        .filter_map(|op| match op {
            Operation::CreateFunction { name, .. } => Some(name.name.clone()),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        return Ok(names);
    }
    sqlx::query_scalar(
        "SELECT DISTINCT proname::text FROM pg_catalog.pg_proc WHERE proname = ANY ($1::text[]::name[])",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await
}

/// Line of the last statement before `index` that makes a name in `relations` mean something
/// else than the shard's catalog says: `ALTER … RENAME TO`, `ALTER … SET SCHEMA`, `CREATE
/// RULE` (`_RETURN` turns a table into a view), `CREATE FOREIGN TABLE` (file_fdw's `program`
/// runs a command when read; a foreign partition is read with its parent), `ATTACH
/// PARTITION`/`INHERIT`, or a (non-materialized) view created under one of the names, whose
/// query would run unchecked.
fn relations_changed_before(
    migration: &Migration,
    index: usize,
    relations: &[QualifiedName],
) -> Option<u32> {
    migration.statements[..index.min(migration.statements.len())]
        .iter()
        .rev()
        .find(|s| {
            let w = leading_words(&s.sql, usize::MAX);
            let renames = w.first().is_some_and(|f| f == "ALTER")
                && w.windows(2).any(|p| {
                    (p[0] == "RENAME" && p[1] == "TO") || (p[0] == "SET" && p[1] == "SCHEMA")
                });
            let created = w.first().is_some_and(|f| f == "CREATE")
                && w.iter()
                    .skip(1)
                    .find(|x| !matches!(x.as_str(), "OR" | "REPLACE"))
                    .is_some_and(|x| x == "RULE" || x == "FOREIGN");
            // A partition or child is read with its parent (it may be a foreign table).
            let attaches = w.first().is_some_and(|f| f == "ALTER")
                && w.windows(2).any(|p| {
                    (p[0] == "ATTACH" && p[1] == "PARTITION") || (p[1] == "INHERIT" && p[0] != "NO")
                });
            let view = s.operations.iter().any(|op| {
                matches!(op, Operation::CreateView { name, materialized: false, .. }
                    if relations.iter().any(|r| same_relation(r, name)))
            });
            renames || created || attaches || view
        })
        .map(|s| s.span.line)
}

/// Line of the last statement before `index` that adds a foreign key (`REFERENCES`) with an
/// action that writes the referencing table (`CASCADE`, `SET NULL`, `SET DEFAULT`), or any
/// foreign key at all when `any_key` (`TRUNCATE … CASCADE` follows every one). The shard's
/// catalog, which the statements are classified on, does not have it yet.
fn foreign_key_added_before(migration: &Migration, index: usize, any_key: bool) -> Option<u32> {
    migration.statements[..index.min(migration.statements.len())]
        .iter()
        .rev()
        .find(|s| {
            let w = leading_words(&s.sql, usize::MAX);
            w.iter().any(|x| x == "REFERENCES")
                && (any_key
                    || w.iter().any(|x| x == "CASCADE")
                    || w.windows(2)
                        .any(|p| p[0] == "SET" && (p[1] == "NULL" || p[1] == "DEFAULT")))
        })
        .map(|s| s.span.line)
}

/// Line of the last statement before `index` that creates or enables a trigger or rule.
fn trigger_created_before(migration: &Migration, index: usize) -> Option<u32> {
    migration.statements[..index.min(migration.statements.len())]
        .iter()
        .rev()
        .find(|s| {
            let w = leading_words(&s.sql, 5);
            let creates = w.first().is_some_and(|f| f == "CREATE")
                && w.iter()
                    .skip(1)
                    .find(|x| !matches!(x.as_str(), "OR" | "REPLACE" | "CONSTRAINT"))
                    .is_some_and(|x| x == "TRIGGER" || x == "RULE");
            let enables = s.operations.iter().any(|op| {
                matches!(op, Operation::AlterTableOther { action, .. } if action.enables_code())
            });
            creates || enables
        })
        .map(|s| s.span.line)
}

/// The calls among `calls` (each with the object it belongs to, for the message) that fail
/// the policy as their names resolve on the shard.
async fn judged<'c>(
    conn: &mut PgConnection,
    calls: impl Iterator<Item = (Option<String>, &'c FunctionCall)>,
) -> Result<Vec<String>, sqlx::Error> {
    let calls: Vec<(Option<String>, &FunctionCall)> = calls.collect();
    let names: Vec<QualifiedName> = calls.iter().map(|(_, c)| c.name.clone()).collect();
    let resolved = resolve_functions(conn, &names).await?;
    let mut out = Vec::new();
    for (owner, c) in calls {
        let cands = resolved.get(&c.name).map(Vec::as_slice).unwrap_or(&[]);
        if let Err(why) = judge_call(&c.name, cands, CallContext::InPlaceRehearsal) {
            out.push(match owner {
                Some(o) => format!("{o}, which {why}"),
                None => format!("it {why}"),
            });
        }
    }
    Ok(out)
}

fn regclass_text(q: &QualifiedName) -> String {
    match &q.schema {
        Some(s) => quote_qualified(s, &q.name),
        None => quote_ident(&q.name),
    }
}

/// Views (other than the system catalogs' own) and foreign tables among the relations a
/// query reads, their partitions and inheritance children included.
async fn read_reasons(
    conn: &mut PgConnection,
    relations: &[QualifiedName],
) -> Result<Vec<String>, sqlx::Error> {
    if relations.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = relations.iter().map(regclass_text).collect();
    // Partitions and inheritance children are read with their parent.
    let rows = sqlx::query(
        "WITH RECURSIVE reach(oid) AS (
           SELECT pg_catalog.to_regclass(w.n) FROM unnest($1::text[]) AS w(n)
           UNION
           SELECT i.inhrelid FROM reach r JOIN pg_catalog.pg_inherits i ON i.inhparent = r.oid)
         SELECT DISTINCT format('%I.%I', n.nspname, c.relname) AS rel, c.relkind::text AS kind
           FROM reach
           JOIN pg_catalog.pg_class c ON c.oid = reach.oid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'f'
             OR (c.relkind = 'v' AND n.nspname NOT IN ('pg_catalog', 'information_schema'))
          ORDER BY 1",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let rel: String = r.try_get("rel")?;
        let kind: String = r.try_get("kind")?;
        out.push(if kind == "v" {
            format!("it reads view `{rel}`, whose query's function calls are not checked")
        } else {
            format!("it reads foreign table `{rel}`, which reaches another server")
        });
    }
    Ok(out)
}

/// How a statement writes its target tables.
#[derive(Debug, Clone, Copy)]
struct TargetWrite {
    /// `TRUNCATE` (every foreign key reaches: `TRUNCATE … CASCADE`).
    truncate: bool,
    /// The statement may evaluate the targets' column defaults and identities: `INSERT`,
    /// `MERGE`, a data-modifying CTE, an `UPDATE` that says `DEFAULT` anywhere. A `DELETE`,
    /// `TRUNCATE` or other `UPDATE` does not — but the tables its cascading foreign keys reach
    /// may (`ON DELETE SET DEFAULT`), so their defaults always count.
    defaults: bool,
}

/// What makes writing `targets` unsafe in place: the tables themselves, their partitions and
/// inheritance children, and the tables their cascading foreign keys reach (all foreign keys
/// for `TRUNCATE … CASCADE`).
async fn target_reasons(
    conn: &mut PgConnection,
    targets: &[&QualifiedName],
    write: TargetWrite,
) -> Result<Vec<String>, sqlx::Error> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = targets.iter().map(|t| regclass_text(t)).collect();
    let rows = sqlx::query(
        "WITH RECURSIVE
           edges(parent, child, fk) AS (
             SELECT inhparent, inhrelid, false FROM pg_catalog.pg_inherits
             UNION ALL
             SELECT confrelid, conrelid, true FROM pg_catalog.pg_constraint
              WHERE contype = 'f'
                AND ($2 OR confdeltype IN ('c', 'n', 'd') OR confupdtype IN ('c', 'n', 'd'))),
           reach(oid, via_fk) AS (
             SELECT pg_catalog.to_regclass(w.n), false FROM unnest($1::text[]) AS w(n)
             UNION
             SELECT e.child, r.via_fk OR e.fk FROM reach r JOIN edges e ON e.parent = r.oid)
         SELECT format('%I.%I', n.nspname, c.relname) AS rel, c.relkind::text AS kind,
                c.relrowsecurity AS rls, r.via_fk,
                ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                         AND a.attidentity <> '' ORDER BY a.attnum) AS identity,
                ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attrdef d
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                       WHERE d.adrelid = c.oid AND NOT a.attisdropped ORDER BY a.attnum) AS default_columns,
                ARRAY(SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                       WHERE d.adrelid = c.oid AND NOT a.attisdropped ORDER BY a.attnum) AS defaults,
                ARRAY(SELECT t.tgname::text FROM pg_catalog.pg_trigger t
                       WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgenabled <> 'D'
                       ORDER BY 1) AS triggers,
                ARRAY(SELECT w.rulename::text FROM pg_catalog.pg_rewrite w
                       WHERE w.ev_class = c.oid AND w.rulename <> '_RETURN' ORDER BY 1) AS rules
           FROM (SELECT oid, bool_or(via_fk) AS via_fk FROM reach WHERE oid IS NOT NULL
                  GROUP BY oid) r
           JOIN pg_catalog.pg_class c ON c.oid = r.oid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          ORDER BY 1",
    )
    .bind(&names)
    .bind(write.truncate)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    let mut defaults: Vec<(String, FunctionCall)> = Vec::new();
    for r in rows {
        let rel: String = r.try_get("rel")?;
        let kind: String = r.try_get("kind")?;
        match kind.as_str() {
            "r" | "p" => {}
            "f" => out.push(format!(
                "it writes foreign table `{rel}`, which reaches another server"
            )),
            "v" => out.push(format!(
                "it writes view `{rel}`, whose rules, triggers or base tables are not checked"
            )),
            _ => out.push(format!("it writes `{rel}`, which is not a table")),
        }
        let defaults_count = write.defaults || r.try_get::<bool, _>("via_fk")?;
        let identity: Vec<String> = r.try_get("identity")?;
        if defaults_count && !identity.is_empty() {
            out.push(format!(
                "it writes `{rel}`, whose identity column(s) {} take values from a sequence, which no rollback undoes",
                backticked(&identity)
            ));
        }
        let columns: Vec<String> = r.try_get("default_columns")?;
        let exprs: Vec<String> = r.try_get("defaults")?;
        for (col, expr) in columns.iter().zip(&exprs).filter(|_| defaults_count) {
            let owner = format!("it writes `{rel}`, whose column `{col}` defaults to `{expr}`");
            match statement_refs(&format!("SELECT {expr}")) {
                Ok(refs) => defaults.extend(refs.functions.into_iter().map(|f| (owner.clone(), f))),
                Err(_) => out.push(format!("{owner}, which cannot be checked")),
            }
        }
        let triggers: Vec<String> = r.try_get("triggers")?;
        if !triggers.is_empty() {
            out.push(format!(
                "it writes `{rel}`, whose enabled trigger(s) {} run functions that are not checked",
                backticked(&triggers)
            ));
        }
        let rules: Vec<String> = r.try_get("rules")?;
        if !rules.is_empty() {
            out.push(format!(
                "it writes `{rel}`, whose rule(s) {} rewrite the statement into commands that are not checked",
                backticked(&rules)
            ));
        }
        if r.try_get::<bool, _>("rls")? {
            out.push(format!(
                "it writes `{rel}`, which has row-level security: its policies' function calls are not checked"
            ));
        }
    }
    out.extend(judged(conn, defaults.iter().map(|(o, c)| (Some(o.clone()), c))).await?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(sql: &str) -> Statement {
        migration_parser::parse("t.sql", sql, &Default::default())
            .expect("parse")
            .statements
            .remove(0)
    }

    #[test]
    fn leading_keywords_decide_first() {
        for sql in [
            "DO $$ BEGIN PERFORM 1; END $$",
            "CALL p()",
            "COPY t TO PROGRAM 'touch /tmp/x'",
            "NOTIFY ch",
            "LISTEN ch",
            "ANALYZE t",
            "REFRESH MATERIALIZED VIEW v",
            "LOAD 'x'",
            "DISCARD TEMP",
            "CHECKPOINT",
            "EXPLAIN ANALYZE DELETE FROM t",
            "CREATE EXTENSION hstore",
            "CREATE OR REPLACE TRUSTED LANGUAGE x HANDLER h",
            "CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()",
            "IMPORT FOREIGN SCHEMA s FROM SERVER x INTO y",
            "-- note\nCOPY t FROM STDIN",
        ] {
            assert!(keyword_reason(&st(sql)).is_some(), "{sql}");
        }
        for sql in [
            "ALTER TABLE t ADD COLUMN c int",
            "CREATE UNIQUE INDEX i ON t (a)",
            "INSERT INTO t VALUES (1)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "SET lock_timeout = '1s'",
            "COMMENT ON TABLE t IS 'x'",
            "DROP TABLE t",
        ] {
            assert_eq!(keyword_reason(&st(sql)), None, "{sql}");
        }
    }

    #[test]
    fn token_recognised_forms_pass_only_when_they_evaluate_nothing() {
        assert!(refs_of(&st("DROP INDEX CONCURRENTLY i")).is_ok());
        assert!(refs_of(&st("REINDEX TABLE t")).is_ok());
        assert!(refs_of(&st("ALTER TABLE t ADD COLUMN c int DEFAULT nextval('s')")).is_ok());
    }

    #[test]
    fn triggers_created_earlier_are_found() {
        let m = migration_parser::parse(
            "t.sql",
            "CREATE TABLE t (a int);\nCREATE TRIGGER x BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();\nINSERT INTO t VALUES (1);\n",
            &Default::default(),
        )
        .unwrap();
        assert_eq!(trigger_created_before(&m, 2), Some(2));
        assert_eq!(trigger_created_before(&m, 1), None);
    }
}

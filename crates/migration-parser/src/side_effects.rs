//! Which function calls may run on a production shard: the one policy for read-only probes
//! (custom SQL probe rules) and for the in-place rehearsal.
//!
//! A function runs on the target only when it is proven free of effects that outlive the
//! transaction deployclaw rolls back:
//!
//! 1. Never a function this module denies by name ([`denied_function`]), whatever the catalog
//!    says of it: administrative functions (terminate or cancel sessions, reload the
//!    configuration, switch WAL), replication slots and origins, statistics resets, advisory locks
//!    (they outlive savepoints and block other sessions), sequences (`nextval`/`setval` are not
//!    transactional), server files, large objects, `dblink`, `pg_notify`, and sleeps.
//! 2. Otherwise, as resolved on the shard ([`judge_call`] over the `pg_proc` candidates the
//!    simulator found for the name): every candidate the name could resolve to must be
//!    `IMMUTABLE` or `STABLE` and not a procedure, or a `pg_catalog` function on the short list
//!    of volatile functions with no lasting effect ([`VOLATILE_WITHOUT_EFFECTS`]). A name that
//!    resolves to nothing is not proven.
//!
//! Residual risk (SECURITY.md): a user-defined function that is *declared* `STABLE` but calls an
//! administrative function internally is believed; operators, casts and triggers call functions
//! the text does not name (the in-place rules refuse DML on tables with triggers for this reason).

use crate::model::QualifiedName;

/// Where a call would run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallContext {
    /// A custom SQL probe inside the probe's `READ ONLY` transaction.
    ReadOnlyProbe,
    /// A migration statement in the in-place rehearsal (a transaction always rolled back).
    InPlaceRehearsal,
}

/// One `pg_proc` row a function name could resolve to on a shard.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcCandidate {
    /// Schema of the function.
    pub schema: String,
    /// Function name.
    pub name: String,
    /// `provolatile`: `i` immutable, `s` stable, `v` volatile.
    pub volatility: char,
    /// `prokind`: `f` function, `p` procedure, `a` aggregate, `w` window.
    pub kind: char,
}

/// `pg_catalog` functions that are `VOLATILE` but leave nothing behind once the transaction is
/// rolled back: random values, wall-clock time, and read-only size and status functions.
pub const VOLATILE_WITHOUT_EFFECTS: &[&str] = &[
    "random",
    "random_normal",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "pg_relation_size",
    "pg_total_relation_size",
    "pg_table_size",
    "pg_indexes_size",
    "pg_database_size",
    "pg_tablespace_size",
    "pg_is_in_recovery",
    "pg_last_xact_replay_timestamp",
    "pg_current_wal_lsn",
    "pg_last_wal_replay_lsn",
    "pg_last_wal_receive_lsn",
];

/// Names the SQL parser reports as function calls that PostgreSQL reads as expressions of its
/// own (keywords: `COALESCE(...)`, `CURRENT_DATE`, `ARRAY(...)`, `ROW(...)`), so no `pg_proc`
/// row exists for them; they have no side effects. Accepted only unqualified and only when the
/// name resolves to no function (a user function of that name is judged like any other).
pub const SQL_SPECIAL_FORMS: &[&str] = &[
    "coalesce",
    "greatest",
    "least",
    "nullif",
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "current_user",
    "current_role",
    "session_user",
    "system_user",
    "user",
    "current_catalog",
    "current_schema",
    "array",
    "row",
];

/// Denied by name, with the reason, matched on the function name (any schema).
const DENIED_EXACT: &[(&str, &str)] = &[
    (
        "pg_terminate_backend",
        "an administrative function (it ends other sessions)",
    ),
    (
        "pg_cancel_backend",
        "an administrative function (it cancels other sessions' queries)",
    ),
    (
        "pg_reload_conf",
        "an administrative function (it reloads the server configuration)",
    ),
    (
        "pg_rotate_logfile",
        "an administrative function (it rotates the server log)",
    ),
    (
        "pg_promote",
        "an administrative function (it promotes a standby)",
    ),
    (
        "pg_switch_wal",
        "an administrative function (it switches the WAL file)",
    ),
    (
        "pg_create_restore_point",
        "an administrative function (it writes a WAL restore point)",
    ),
    (
        "pg_backup_start",
        "an administrative function (it starts a backup)",
    ),
    (
        "pg_backup_stop",
        "an administrative function (it stops a backup)",
    ),
    (
        "pg_start_backup",
        "an administrative function (it starts a backup)",
    ),
    (
        "pg_stop_backup",
        "an administrative function (it stops a backup)",
    ),
    (
        "pg_wal_replay_pause",
        "an administrative function (it pauses WAL replay)",
    ),
    (
        "pg_wal_replay_resume",
        "an administrative function (it resumes WAL replay)",
    ),
    (
        "pg_log_backend_memory_contexts",
        "an administrative function (it writes to the server log)",
    ),
    (
        "pg_import_system_collations",
        "an administrative function (it creates collations)",
    ),
    ("pg_notify", "it sends a notification to listening sessions"),
    (
        "nextval",
        "it advances a sequence, which no rollback undoes",
    ),
    ("setval", "it sets a sequence, which no rollback undoes"),
    (
        "pg_sleep",
        "it holds the transaction (and its locks) open on purpose",
    ),
    (
        "pg_sleep_for",
        "it holds the transaction (and its locks) open on purpose",
    ),
    (
        "pg_sleep_until",
        "it holds the transaction (and its locks) open on purpose",
    ),
    ("pg_read_file", "it reads files of the database server"),
    (
        "pg_read_binary_file",
        "it reads files of the database server",
    ),
    ("pg_stat_file", "it reads files of the database server"),
    ("pg_file_write", "it writes files of the database server"),
    ("pg_file_rename", "it renames files of the database server"),
    ("pg_file_unlink", "it deletes files of the database server"),
    ("pg_file_sync", "it syncs files of the database server"),
    ("loread", "it reads large objects"),
    ("lowrite", "it writes large objects"),
    (
        "pg_stat_statements_reset",
        "it resets statistics the operators rely on",
    ),
    (
        "pg_stat_statements",
        "it shows other sessions' SQL text, which can hold passwords (`ALTER ROLE ... PASSWORD`)",
    ),
    (
        "pg_stat_get_activity",
        "it shows other sessions' SQL text, which can hold passwords (`ALTER ROLE ... PASSWORD`)",
    ),
    (
        "pg_stat_get_backend_activity",
        "it shows other sessions' SQL text, which can hold passwords (`ALTER ROLE ... PASSWORD`)",
    ),
    (
        "ts_stat",
        "it runs SQL text given as a string, which the check cannot see",
    ),
];

/// Denied by name prefix, with the reason.
const DENIED_PREFIX: &[(&str, &str)] = &[
    (
        "pg_advisory_",
        "it takes an advisory lock, which outlives savepoints and blocks other sessions",
    ),
    (
        "pg_try_advisory_",
        "it takes an advisory lock, which outlives savepoints and blocks other sessions",
    ),
    (
        "pg_create_",
        "it creates a replication slot or similar server-wide object",
    ),
    ("pg_drop_replication_slot", "it drops a replication slot"),
    ("pg_copy_", "it copies a replication slot"),
    ("pg_replication_slot_", "it moves a replication slot"),
    ("pg_replication_origin_", "it changes replication origins"),
    ("pg_logical_", "it reads or writes logical replication data"),
    (
        "pg_stat_reset",
        "it resets statistics the operators rely on",
    ),
    ("pg_ls_", "it lists files of the database server"),
    ("lo_", "it reads or writes large objects"),
    (
        "query_to_xml",
        "it runs SQL text given as a string, which the check cannot see",
    ),
    ("cursor_to_xml", "it reads a cursor the check cannot see"),
    (
        "table_to_xml",
        "it dumps a table named by a string (e.g. `pg_authid`), which the check cannot see",
    ),
    (
        "schema_to_xml",
        "it dumps whole schemas (`pg_catalog` holds password verifiers)",
    ),
    (
        "database_to_xml",
        "it dumps the whole database (`pg_catalog` holds password verifiers)",
    ),
    (
        "dblink",
        "it runs SQL on another server, outside the rolled-back transaction",
    ),
    (
        "crosstab",
        "it runs SQL text given as a string (`tablefunc`), which the check cannot see",
    ),
    (
        "connectby",
        "it reads a table named by a string (`tablefunc`, e.g. `pg_authid`), which the check cannot see",
    ),
    (
        "xpath_table",
        "it runs SQL built from strings (`xml2`), which the check cannot see",
    ),
];

/// Denied in probes only, with the reason: settings can hold application secrets
/// (`ALTER DATABASE ... SET app.jwt_secret = ...`), and a probe's rows end up in the report.
const DENIED_IN_PROBES: &[(&str, &str)] = &[
    (
        "set_config",
        "it changes server settings; probes must only read",
    ),
    (
        "current_setting",
        "it reads server settings, which can hold secrets (`app.jwt_secret`)",
    ),
    (
        "pg_show_all_settings",
        "it reads server settings, which can hold secrets (`app.jwt_secret`)",
    ),
];

/// Why `name` (a function name, folded) may never run on a target in `ctx`, if it may not.
/// `set_config` and `current_setting` are denied in probes (a probe has no business changing
/// settings, and settings can hold secrets) and judged by the catalog in the in-place rehearsal.
///
/// ```
/// use migration_parser::{CallContext, denied_function};
/// assert!(denied_function("pg_advisory_xact_lock", CallContext::ReadOnlyProbe).is_some());
/// assert!(denied_function("lower", CallContext::ReadOnlyProbe).is_none());
/// assert!(denied_function("set_config", CallContext::InPlaceRehearsal).is_none());
/// ```
pub fn denied_function(name: &str, ctx: CallContext) -> Option<&'static str> {
    if ctx == CallContext::ReadOnlyProbe
        && let Some((_, why)) = DENIED_IN_PROBES.iter().find(|(n, _)| *n == name)
    {
        return Some(why);
    }
    DENIED_EXACT
        .iter()
        .find(|(n, _)| *n == name)
        .or_else(|| DENIED_PREFIX.iter().find(|(p, _)| name.starts_with(p)))
        .map(|(_, why)| *why)
}

/// Catalogs that hold credentials (password verifiers, user-mapping options, subscription
/// connection strings, configuration-file lines such as `primary_conninfo`), other sessions' SQL
/// text (`ALTER ROLE ... PASSWORD '...'` shows there) or large-object data: a probe's rows end
/// up in the report, so probes may not read them.
const CREDENTIAL_RELATIONS: &[&str] = &[
    "pg_authid",
    "pg_shadow",
    "pg_user_mapping",
    "pg_user_mappings",
    "pg_largeobject",
    "pg_largeobject_metadata",
    "pg_subscription",
    "pg_file_settings",
    "pg_stat_activity",
    "pg_settings",
    "pg_db_role_setting",
];

/// `information_schema` views that show user mappings' options (`password` among them).
const INFORMATION_SCHEMA_CREDENTIAL_RELATIONS: &[&str] =
    &["user_mapping_options", "_pg_user_mappings"];

/// Views of extensions with other sessions' SQL text, refused in any schema (an extension
/// installs them where it is created).
const EXTENSION_CREDENTIAL_RELATIONS: &[&str] = &["pg_stat_statements"];

/// `r` names a credential catalog (unqualified, or qualified with `pg_catalog`; an
/// `information_schema` view of user mappings), or an extension view with other sessions' SQL
/// text (any schema).
///
/// ```
/// use migration_parser::{QualifiedName, credential_relation};
/// assert!(credential_relation(&QualifiedName::qualified("pg_catalog", "pg_authid")));
/// assert!(!credential_relation(&QualifiedName::qualified("tenant_1", "users")));
/// ```
pub fn credential_relation(r: &QualifiedName) -> bool {
    (r.schema.as_deref().is_none_or(|s| s == "pg_catalog")
        && CREDENTIAL_RELATIONS.contains(&r.name.as_str()))
        || (r
            .schema
            .as_deref()
            .is_none_or(|s| s == "information_schema")
            && INFORMATION_SCHEMA_CREDENTIAL_RELATIONS.contains(&r.name.as_str()))
        || EXTENSION_CREDENTIAL_RELATIONS.contains(&r.name.as_str())
}

/// Whether a call of `written` may run in `ctx`, given every `pg_proc` row the name could
/// resolve to on the shard (`candidates`; for an unqualified name: every function of that name
/// in the schemas of the search path, `pg_catalog` included). `Err` says why not.
///
/// ```
/// use migration_parser::{CallContext, ProcCandidate, QualifiedName, judge_call};
/// let lower = ProcCandidate { schema: "pg_catalog".into(), name: "lower".into(), volatility: 'i', kind: 'f' };
/// assert!(judge_call(&QualifiedName::new("lower"), &[lower], CallContext::ReadOnlyProbe).is_ok());
/// let f = ProcCandidate { schema: "app".into(), name: "touch".into(), volatility: 'v', kind: 'f' };
/// let why = judge_call(&QualifiedName::new("touch"), &[f], CallContext::ReadOnlyProbe).unwrap_err();
/// assert!(why.contains("VOLATILE"), "{why}");
/// ```
pub fn judge_call(
    written: &QualifiedName,
    candidates: &[ProcCandidate],
    ctx: CallContext,
) -> Result<(), String> {
    if let Some(why) = denied_function(&written.name, ctx) {
        return Err(format!("calls `{written}`, {why}"));
    }
    if candidates.is_empty()
        && written.schema.is_none()
        && SQL_SPECIAL_FORMS.contains(&written.name.as_str())
    {
        // PostgreSQL reads these as expressions, not calls; they have no effects.
        return Ok(());
    }
    if candidates.is_empty() {
        return Err(format!(
            "calls `{written}`, which does not exist on the shard (its side effects cannot be checked)"
        ));
    }
    for c in candidates {
        if let Some(why) = denied_function(&c.name, ctx) {
            return Err(format!("calls `{}.{}`, {why}", c.schema, c.name));
        }
        if c.kind == 'p' {
            return Err(format!(
                "calls `{}.{}`, a procedure (procedures may commit)",
                c.schema, c.name
            ));
        }
        let harmless_volatile =
            c.schema == "pg_catalog" && VOLATILE_WITHOUT_EFFECTS.contains(&c.name.as_str());
        if c.volatility != 'i' && c.volatility != 's' && !harmless_volatile {
            return Err(format!(
                "calls `{}.{}`, which is VOLATILE (it may change state that a rollback does not undo)",
                c.schema, c.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(schema: &str, name: &str, v: char, k: char) -> ProcCandidate {
        ProcCandidate {
            schema: schema.into(),
            name: name.into(),
            volatility: v,
            kind: k,
        }
    }

    #[test]
    fn every_overload_must_be_safe() {
        let n = QualifiedName::new("random");
        let ok = cand("pg_catalog", "random", 'v', 'f');
        assert!(judge_call(&n, std::slice::from_ref(&ok), CallContext::ReadOnlyProbe).is_ok());
        // A shard-schema function shadowing a harmless built-in is judged on its own.
        let shadow = cand("tenant_1", "random", 'v', 'f');
        assert!(judge_call(&n, &[ok, shadow], CallContext::ReadOnlyProbe).is_err());
        let proc = cand("app", "migrate", 's', 'p');
        assert!(
            judge_call(
                &QualifiedName::new("migrate"),
                &[proc],
                CallContext::InPlaceRehearsal
            )
            .unwrap_err()
            .contains("procedure")
        );
        assert!(
            judge_call(
                &QualifiedName::new("nope"),
                &[],
                CallContext::InPlaceRehearsal
            )
            .unwrap_err()
            .contains("does not exist")
        );
        // Keyword expressions have no pg_proc row; qualified, they are ordinary names.
        for ctx in [CallContext::ReadOnlyProbe, CallContext::InPlaceRehearsal] {
            assert!(judge_call(&QualifiedName::new("coalesce"), &[], ctx).is_ok());
            assert!(judge_call(&QualifiedName::new("current_date"), &[], ctx).is_ok());
            let q = QualifiedName::qualified("pg_catalog", "coalesce");
            assert!(judge_call(&q, &[], ctx).is_err());
        }
        let shadow = cand("public", "coalesce", 'v', 'f');
        assert!(
            judge_call(
                &QualifiedName::new("coalesce"),
                &[shadow],
                CallContext::ReadOnlyProbe
            )
            .is_err()
        );
    }

    #[test]
    fn denied_names_win_over_the_catalog() {
        // pg_advisory_xact_lock is VOLATILE anyway; pg_sleep too; but a denied name is refused
        // even if some extension declared it STABLE.
        let c = cand("pg_catalog", "pg_advisory_lock", 's', 'f');
        let why = judge_call(
            &QualifiedName::new("pg_advisory_lock"),
            &[c],
            CallContext::ReadOnlyProbe,
        )
        .unwrap_err();
        assert!(why.contains("advisory lock"), "{why}");
        assert!(denied_function("set_config", CallContext::ReadOnlyProbe).is_some());
    }
}

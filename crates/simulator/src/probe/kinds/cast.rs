//! `cast_failures`: values that `ALTER COLUMN ... TYPE` (with its `USING` expression) cannot
//! convert. The cast is evaluated over the whole table under a savepoint (success ⇒ none), on
//! every server version: it takes the conversion the `ALTER` takes (a cast function such as
//! `numeric` → `integer` rounding, a domain's constraints on NULL too), which
//! `pg_input_is_valid` on the value's text does not. On failure a regex fallback counts exactly
//! for integer/numeric/boolean/uuid targets. The `ALTER` converts
//! by assignment, an explicit cast cuts `varchar(n)` / `char(n)` / `bit(n)` to length: after a
//! successful attempt to such a type (or to a domain over one), the values of another length
//! are counted ([`Limit`]).

use std::time::Instant;

use migration_parser::state::ObjectKind;
use migration_parser::{Operation, QualifiedName};
use sqlx::PgConnection;

use crate::ident::{quote_ident, quote_literal, quote_qualified};
use crate::probe::cx::type_name;
use crate::probe::cx::{Col, PlanCx};
use crate::probe::kind::ProbeKind;
use crate::probe::model::{Bound, Check, PlannedProbe};
use crate::probe::result::{MAX_SAMPLES, ProbeError, ProbeResult};
use crate::probe::spec::ProbeSpec;
use crate::probe::sql::{Target, bound_sql, count_and_samples};
use crate::probe_tx::{ConnectionLost, savepoint};

/// The `cast_failures` kind.
pub(crate) struct CastFailures;

impl ProbeSpec for CastFailures {
    fn kind(&self) -> ProbeKind {
        ProbeKind::CastFailures
    }

    fn plan(&self, op: &Operation, cx: &mut PlanCx<'_>) {
        let Operation::AlterColumnType {
            table,
            column,
            new_type,
            using,
            ..
        } = op
        else {
            return;
        };
        let (t, mut skipped) = cx.probe_table(table);
        // A domain the migration creates: its constraints' probes, after the cast's.
        let mut domain = None;
        let c = cx.col_name(table, column);
        if let Col::Added(_) = cx.col(table, column) {
            skipped.get_or_insert_with(|| "column added earlier in the migration".into());
        }
        let plain = using
            .as_deref()
            .is_none_or(|u| is_plain_cast(u, column, new_type));
        // A `USING` that reads a column added or renamed earlier: the name bound beside the row.
        let bound = match using.as_deref().filter(|_| !plain) {
            Some(u) => cx.bindings(table, [u], &mut skipped),
            None => Vec::new(),
        };
        let check = match target_type(cx, new_type) {
            // An enum the migration creates or extends: its labels say what converts, no cast
            // to a type the shard does not have (yet) in that form.
            Some(TargetType::Enum { labels, on_shard }) if plain => Check::Labels {
                column: c.clone(),
                labels,
                shard_enum: on_shard,
            },
            // A domain the migration creates over a type of the shard: the cast to its base
            // type here, its constraints by the probes `domain_probes` adds.
            Some(TargetType::Domain {
                base,
                not_null,
                checks,
            }) => {
                let using = using
                    .clone()
                    .filter(|u| !is_plain_cast(u, column, new_type));
                let check = cast_check(&c, &base, &using, &bound);
                domain = Some((base, using, not_null, checks));
                check
            }
            Some(_) => {
                skipped.get_or_insert_with(|| {
                    format!(
                        "type {new_type} is created or changed by the migration: rehearsal decides"
                    )
                });
                cast_check(&c, new_type, using, &bound)
            }
            None => cast_check(&c, new_type, using, &bound),
        };
        let note = cx.data_note(table);
        cx.push_probe(PlannedProbe {
            statement_index: cx.si,
            kind: ProbeKind::CastFailures,
            table: t,
            column: Some(c.clone()),
            constraint: None,
            check,
            would_fail: true,
            skipped: skipped.clone(),
            note,
        });
        if let Some((base, using, not_null, checks)) = domain {
            domain_probes(
                cx,
                (table, &c, new_type),
                &base,
                (&using, &bound),
                not_null,
                checks,
                &skipped,
            );
        }
    }
}

fn cast_check(column: &str, new_type: &str, using: &Option<String>, bound: &[Bound]) -> Check {
    Check::Cast {
        column: column.to_string(),
        new_type: new_type.to_string(),
        using: using.clone(),
        bound: bound.to_vec(),
    }
}

/// A target type the migration created or changed before the statement.
enum TargetType {
    /// An enum: the labels the migration gave it (all of them for an enum it created; those
    /// it added for an enum of the shard, `on_shard`: its name there, quoted).
    Enum {
        labels: Vec<String>,
        on_shard: Option<String>,
    },
    /// A domain the migration created over a type of the shard, with what it checks (when the
    /// model follows it up to the cast: [`created_domain`]).
    Domain {
        base: String,
        not_null: bool,
        checks: Vec<String>,
    },
    /// Another type the migration created.
    Other,
}

/// What the migration did to the type `new_type` names before this statement, if anything.
fn target_type(cx: &PlanCx<'_>, new_type: &str) -> Option<TargetType> {
    let name = type_name(new_type)?;
    if cx.untyped_mentions(&name.name) {
        // e.g. `ADD VALUE E'…'`, which the parser does not type: the labels are not known.
        return Some(TargetType::Other);
    }
    let r = cx.state.type_(&name, cx.at);
    let rec = r.record()?;
    match (rec.kind, rec.is_created()) {
        (ObjectKind::Enum, created) if created || !rec.labels().is_empty() => {
            Some(TargetType::Enum {
                labels: rec.labels().to_vec(),
                on_shard: (!created).then(|| {
                    let n = rec.shard_name().unwrap_or(&name);
                    match &n.schema {
                        Some(schema) => quote_qualified(schema, &n.name),
                        None => quote_ident(&n.name),
                    }
                }),
            })
        }
        (_, true) => Some(created_domain(cx, rec.created()).unwrap_or(TargetType::Other)),
        _ => None,
    }
}

/// The domain created at `created` when that is a `CREATE DOMAIN` over a type the shard has
/// (not one the migration creates), without a `COLLATE`, and no statement the model does not
/// follow (no typed operation, [`Operation::Other`] such as `ALTER DOMAIN`, a `DO` block)
/// comes between its creation and the cast.
fn created_domain(cx: &PlanCx<'_>, created: Option<migration_parser::Step>) -> Option<TargetType> {
    let created = created?;
    let op = cx
        .migration
        .statements
        .get(created.statement)?
        .operations
        .get(created.op)?;
    let Operation::CreateDomain {
        data_type,
        not_null,
        checks,
        ..
    } = op
    else {
        return None;
    };
    if let Some(base) = type_name(data_type)
        && cx.state.type_(&base, cx.at).record().is_some()
    {
        // A base type the migration creates or changes: not on the shard in that form.
        return None;
    }
    let created_sql = cx
        .migration
        .statements
        .get(created.statement)?
        .sql
        .to_ascii_uppercase();
    if created_sql.contains("COLLATE") {
        // Its checks compare under its own collation, which the model does not carry.
        return None;
    }
    // Any statement in between that the model does not follow may change the domain (an
    // `ALTER DOMAIN`, also inside a `DO` block or a function it calls, or under a name
    // written with escapes), so none may come between.
    let touched = cx
        .migration
        .statements
        .iter()
        .filter(|st| st.index > created.statement && st.index < cx.si)
        .any(|st| {
            st.operations.is_empty()
                || st
                    .operations
                    .iter()
                    .any(|o| matches!(o, Operation::Other { .. } | Operation::Do { .. }))
        });
    (!touched).then(|| TargetType::Domain {
        base: data_type.clone(),
        not_null: *not_null,
        checks: checks.clone(),
    })
}

/// Values of `column` of `target` that are none of an enum's `labels` (a text → enum cast
/// accepts exactly its labels); for an enum of the shard (`shard_enum`, as written in the
/// migration's name for it, quoted), nor one of the labels it has there.
pub(crate) fn labels_sql(
    target: &Target<'_>,
    column: &str,
    labels: &[String],
    shard_enum: Option<&str>,
) -> String {
    let col = quote_ident(column);
    let mut conds = vec![format!("{col} IS NOT NULL")];
    if !labels.is_empty() {
        let list: Vec<String> = labels.iter().map(|l| quote_literal(l)).collect();
        conds.push(format!("{col}::text NOT IN ({})", list.join(", ")));
    }
    if let Some(ty) = shard_enum {
        conds.push(format!(
            "{col}::text <> ALL (pg_catalog.enum_range(NULL::{ty})::text[])"
        ));
    }
    format!(
        "SELECT count(*) OVER (), {col}::text FROM {} WHERE {} LIMIT {MAX_SAMPLES}",
        target.qt,
        conds.join(" AND ")
    )
}

/// Why a cast probe that failed with `e` says nothing about the data: the target type is not on
/// the shard (SQLSTATE 42704, e.g. a type the migration creates in a form the planner does not
/// follow). The rehearsal decides.
pub(crate) fn type_missing(e: &ProbeError) -> Option<String> {
    (e.sqlstate.as_deref() == Some("42704")).then(|| {
        format!(
            "the new type is not on this shard before the migration ({}): rehearsal decides",
            e.message
        )
    })
}

/// A length a string or bit-string type holds (or each element of an array of it) that an
/// explicit cast enforces by cutting or padding and the `ALTER`'s assignment by failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limit {
    kind: Len,
    n: u32,
    /// An array of such values: every element is converted by assignment.
    array: bool,
}

/// What a [`Limit`] bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Len {
    /// `varchar(n)` (`varchar`) or `char(n)` (`bpchar`): longer values fail, trailing spaces
    /// aside.
    Chars(&'static str),
    /// `bit(n)`: any other length fails.
    BitsExact,
    /// `varbit(n)`: longer values fail.
    BitsMax,
}

impl Limit {
    /// The limit's own base type without the length (`"bit"` quoted: unquoted it is `bit(1)`).
    fn base(&self) -> &'static str {
        match self.kind {
            Len::Chars(base) => base,
            Len::BitsExact => "\"bit\"",
            Len::BitsMax => "varbit",
        }
    }

    /// `src` converted to the base type without the length: the path the cast attempt already
    /// takes (never through `text`: a source type's own cast to `text` is not what the `ALTER`
    /// runs).
    fn converted(&self, src: &str) -> String {
        let arr = if self.array { "[]" } else { "" };
        format!("({src})::pg_catalog.{}{arr}", self.base())
    }

    /// The condition on one converted value `v` that the `ALTER` rejects. Operators are
    /// `pg_catalog`'s by name: the probe's search path holds the tenant's schema.
    fn element_breaks(&self, v: &str) -> String {
        let n = self.n;
        match self.kind {
            Len::Chars(_) => format!(
                "pg_catalog.char_length(pg_catalog.rtrim({v}::pg_catalog.text)) OPERATOR(pg_catalog.>) {n}"
            ),
            Len::BitsExact => format!("pg_catalog.length({v}) OPERATOR(pg_catalog.<>) {n}"),
            Len::BitsMax => format!("pg_catalog.length({v}) OPERATOR(pg_catalog.>) {n}"),
        }
    }

    /// The condition on `src` that the `ALTER` rejects (for an array: on any element).
    fn breaks(&self, src: &str) -> String {
        let c = self.converted(src);
        if self.array {
            format!(
                "EXISTS (SELECT 1 FROM pg_catalog.unnest({c}) AS deployclaw_e(v) WHERE {})",
                self.element_breaks("deployclaw_e.v")
            )
        } else {
            self.element_breaks(&c)
        }
    }

    /// The value as a sample: the converted one, without the length.
    fn sample(&self, src: &str) -> String {
        format!("{}::pg_catalog.text", self.converted(src))
    }
}

/// The [`Limit`] of a type as the parser writes it (`varchar(3)`, `character varying(3)`,
/// `"pg_catalog"."varchar"(3)`, `char` = `char(1)`, `nchar(3)`, `bit(4)`, `bit varying(4)`,
/// any of them as an array: `varchar(3)[]`, `varchar(3) ARRAY`); `None` for anything else (and
/// for `"char"`, the one-byte internal type, or a quoted `"bit"` without a length).
fn limit_of(ty: &str) -> Option<Limit> {
    let mut t = ty.trim().to_string();
    let mut array = false;
    loop {
        let trimmed = t.trim_end();
        if trimmed.ends_with(']') {
            let open = trimmed.rfind('[')?;
            t = trimmed[..open].to_string();
            array = true;
        } else if trimmed.len() > 6 && trimmed[trimmed.len() - 6..].eq_ignore_ascii_case(" array") {
            t = trimmed[..trimmed.len() - 6].to_string();
            array = true;
        } else {
            t = trimmed.to_string();
            break;
        }
    }
    let quoted_bit = t.contains("\"bit\"");
    for q in ["pg_catalog", "varchar", "bpchar", "bit", "varbit"] {
        t = t.replace(&format!("\"{q}\""), q);
    }
    if t.contains('"') {
        return None;
    }
    let t = t.to_ascii_lowercase();
    let t = t.strip_prefix("pg_catalog.").unwrap_or(&t).trim();
    let (name, n) = match t.split_once('(') {
        Some((name, rest)) => {
            let (n, tail) = rest.split_once(')')?;
            tail.trim().is_empty().then_some(())?;
            (name, Some(n.trim().parse::<u32>().ok()?))
        }
        None => (t, None),
    };
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let (kind, n) = match (name.as_str(), n) {
        ("varchar" | "character varying" | "char varying", Some(n)) => (Len::Chars("varchar"), n),
        ("char" | "character" | "nchar" | "bpchar", Some(n)) => (Len::Chars("bpchar"), n),
        ("char" | "character" | "nchar", None) => (Len::Chars("bpchar"), 1),
        ("bit", None) if quoted_bit => return None,
        ("bit", n) => (Len::BitsExact, n.unwrap_or(1)),
        ("varbit" | "bit varying", Some(n)) => (Len::BitsMax, n),
        _ => return None,
    };
    Some(Limit { kind, n, array })
}

/// The [`Limit`] of the type a domain named `ty` is over (on the shard, through domains over
/// domains; for `ty` an array of such a domain, per element); `None` for any other type or a
/// type that is not there. Every operator is `pg_catalog`'s by name: the probe's search path
/// holds the tenant's schema, where an operator on `(oid, regtype)` would win.
async fn domain_limit(conn: &mut PgConnection, ty: &str) -> Result<Option<Limit>, sqlx::Error> {
    let (element, array) = match ty.trim_end().strip_suffix("[]") {
        Some(e) => (e, true),
        None => (ty, false),
    };
    let base: Option<String> = sqlx::query_scalar(
        "WITH RECURSIVE d(base, mod, depth) AS ( \
           SELECT t.typbasetype, t.typtypmod, 0 FROM pg_catalog.pg_type t \
           WHERE t.oid OPERATOR(pg_catalog.=) pg_catalog.to_regtype($1)::pg_catalog.oid \
             AND t.typtype OPERATOR(pg_catalog.=) 'd'::pg_catalog.\"char\" \
           UNION ALL \
           SELECT t.typbasetype, t.typtypmod, d.depth OPERATOR(pg_catalog.+) 1 FROM d \
           JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) d.base \
             AND t.typtype OPERATOR(pg_catalog.=) 'd'::pg_catalog.\"char\" \
           WHERE d.depth OPERATOR(pg_catalog.<) 32) \
         SELECT pg_catalog.format_type(base, mod) FROM d ORDER BY depth DESC LIMIT 1",
    )
    .bind(element)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(base.as_deref().and_then(limit_of).map(|l| Limit {
        array: l.array || array,
        ..l
    }))
}

/// Integer range for the regex fallback of common casts.
fn int_range(ty: &str) -> Option<(&'static str, &'static str)> {
    match ty.trim() {
        "smallint" | "int2" => Some(("-32768", "32767")),
        "integer" | "int" | "int4" => Some(("-2147483648", "2147483647")),
        "bigint" | "int8" => Some(("-9223372036854775808", "9223372036854775807")),
        _ => None,
    }
}

/// A boolean SQL condition over text value `v` that is true when `v` is NOT valid input for
/// `ty`, for the types the fallback knows; `None` otherwise.
fn invalid_text_condition(ty: &str, v: &str) -> Option<String> {
    let ty = ty.trim();
    if let Some((lo, hi)) = int_range(ty) {
        return Some(format!(
            "(CASE WHEN btrim({v}) ~ '^[+-]?[0-9]+$' THEN btrim({v})::numeric NOT BETWEEN {lo} AND {hi} ELSE true END)"
        ));
    }
    if ty == "numeric"
        || ty == "decimal"
        || ty.starts_with("numeric(")
        || ty.starts_with("decimal(")
    {
        return Some(format!(
            "NOT (btrim({v}) ~* '^([+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)(e[+-]?[0-9]+)?|nan|[+-]?infinity)$')"
        ));
    }
    if ty == "boolean" || ty == "bool" {
        return Some(format!(
            "NOT (lower(btrim({v})) IN ('t','tr','tru','true','f','fa','fal','fals','false','y','ye','yes','n','no','on','of','off','1','0'))"
        ));
    }
    if ty == "uuid" {
        return Some(format!(
            "NOT (replace(btrim(btrim({v}), '{{}}'), '-', '') ~ '^[0-9a-fA-F]{{32}}$')"
        ));
    }
    None
}

/// Whether `using` is just `col::ty` / `CAST(col AS ty)` (any quoting, case, spacing).
fn is_plain_cast(using: &str, column: &str, ty: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '"' && *c != '(' && *c != ')')
            .collect::<String>()
            .to_lowercase()
    };
    let u = norm(using);
    let c = norm(column);
    let t = norm(ty);
    u == format!("{c}::{t}") || u == format!("cast{c}as{t}")
}

/// The probes of the constraints of a domain the migration creates, which a cast to it
/// checks on every row: its `CHECK`s (`check_violations`, SQLSTATE 23514), its `NOT NULL`
/// (`not_null_violations`, 23502: the column's NULLs, or with a `USING` expression NULL
/// results, counted with the checks).
fn domain_probes(
    cx: &mut PlanCx<'_>,
    (table, column, domain): (&QualifiedName, &str, &str),
    base: &str,
    (using, bound): (&Option<String>, &[Bound]),
    not_null: bool,
    checks: Vec<String>,
    skipped: &Option<String>,
) {
    let (t, _) = cx.probe_table(table);
    let note = cx.data_note(table);
    let mut push = |kind: ProbeKind, check: Check| {
        cx.push_probe(PlannedProbe {
            statement_index: cx.si,
            kind,
            table: t.clone(),
            column: Some(column.to_string()),
            // The domain whose constraint it is (the rules name it).
            constraint: Some(domain.to_string()),
            check,
            // An earlier statement changes the rows (a backfill): not conclusive.
            would_fail: note.is_none(),
            skipped: skipped.clone(),
            note: note.clone(),
        });
    };
    let null_breaks = not_null && using.is_some();
    if not_null && using.is_none() {
        push(
            ProbeKind::NotNullViolations,
            Check::Nulls {
                column: column.to_string(),
            },
        );
    }
    if !checks.is_empty() || null_breaks {
        push(
            ProbeKind::CheckViolations,
            Check::DomainChecks {
                column: column.to_string(),
                base: base.to_string(),
                using: using.clone(),
                checks,
                null_breaks,
                bound: bound.to_vec(),
            },
        );
    }
}

/// The query of a [`Check::DomainChecks`] probe: rows whose value converted to the base type
/// breaks a `CHECK` (false, not NULL) or, with `null_breaks`, is NULL. `VALUE` in a check names
/// the converted value, a column of the lateral subquery (a table with its own column `value`
/// makes the name ambiguous: the probe's error).
pub(crate) fn domain_checks_sql(target: &Target<'_>, check: &Check) -> Option<String> {
    let Check::DomainChecks {
        column,
        base,
        using,
        checks,
        null_breaks,
        bound,
    } = check
    else {
        return None;
    };
    let mut broken: Vec<String> = checks.iter().map(|c| format!("({c}) IS FALSE")).collect();
    if *null_breaks {
        broken.insert(0, "deployclaw_domain.value IS NULL".into());
    }
    let src = using.clone().unwrap_or_else(|| quote_ident(column));
    Some(format!(
        "SELECT count(*) OVER (), {} FROM {} AS x{} CROSS JOIN LATERAL (SELECT ({src})::{base} AS value) AS deployclaw_domain WHERE {} LIMIT {MAX_SAMPLES}",
        target.sample,
        target.qt,
        bound_sql(bound),
        broken.join(" OR ")
    ))
}

/// Whether a probe's error is one a row raised (a data exception, class 22, or an integrity
/// violation, class 23): evaluating the domain on the shard's rows failed as the `ALTER` would.
pub(crate) fn raised_by_a_row(e: &ProbeError) -> bool {
    e.sqlstate
        .as_deref()
        .is_some_and(|s| s.starts_with("22") || s.starts_with("23"))
}

/// Runs a [`Check::Cast`] probe: the cast attempt, then the length check or the regex
/// fallback; fills `r` (its `sql` says what ran).
pub(crate) async fn run(
    conn: &mut PgConnection,
    target: &Target<'_>,
    check: &Check,
    r: &mut ProbeResult,
    started: Instant,
) -> Result<(), ConnectionLost> {
    let Check::Cast {
        column,
        new_type,
        using,
        bound,
    } = check
    else {
        return Ok(());
    };
    let col = quote_ident(column);
    // The table as the `USING` reads it: the names it reads that the shard lacks bound beside.
    let from = format!("{} AS x{}", target.qt, bound_sql(bound));
    let qt = &target.qt;
    // Evaluate the cast over the whole table under a savepoint, through the conversion the
    // `ALTER` uses (not `pg_input_is_valid` on the value's text: `numeric` 1.5 converts to
    // `integer` by rounding, `int4in('1.5')` fails; a NULL never reaches an input function,
    // yet a domain's NOT NULL rejects it). Success ⇒ 0 failures (then the length check).
    // Failure ⇒ at least one; the regex fallback then counts exactly for
    // integer/numeric/boolean/uuid targets. `USING col::newtype` is the same as no USING: the
    // regex fallback applies.
    let plain_using = using
        .as_deref()
        .is_some_and(|u| is_plain_cast(u, column, new_type));
    let using = using.clone().filter(|_| !plain_using);
    let src = using.clone().unwrap_or_else(|| col.clone());
    let attempt = format!("SELECT pg_catalog.count(({src})::{new_type}) FROM {from}");
    r.sql = attempt.clone();
    let res = savepoint(conn, async |c| {
        sqlx::query(sqlx::AssertSqlSafe(attempt.clone()))
            .persistent(false)
            .fetch_one(&mut *c)
            .await
            .map(|_| ())
    })
    .await?;
    match res {
        Ok(()) => {
            r.count = 0;
            // An explicit cast to `varchar(n)`, `char(n)`, `bit(n)` cuts or pads; the `ALTER`
            // converts by assignment, which fails on another length. Not after a `USING` that
            // is itself the explicit cast to the new type: that one already cut the value.
            let limit = match limit_of(new_type) {
                _ if plain_using => None,
                Some(l) => Some(l),
                None => savepoint(conn, async |c| domain_limit(c, new_type).await)
                    .await?
                    .unwrap_or_else(|e| {
                        r.error = Some(e);
                        None
                    }),
            };
            if let Some(limit) = limit {
                let q = format!(
                    "SELECT count(*) OVER (), {} FROM {from} WHERE {} LIMIT {MAX_SAMPLES}",
                    limit.sample(&src),
                    limit.breaks(&src)
                );
                r.sql = format!("{attempt};\n{q}");
                match savepoint(conn, async |c| count_and_samples(c, &q).await).await? {
                    Ok((n, samples)) => {
                        r.count = n;
                        r.samples = samples;
                    }
                    Err(e) => r.error = Some(e),
                }
            }
        }
        Err(e) if matches!(e.sqlstate.as_deref(), Some("57014" | "55P03")) => r.error = Some(e),
        Err(e) if type_missing(&e).is_some() => r.skipped = type_missing(&e),
        Err(e) => {
            r.count = 1;
            r.exact = false;
            r.samples = vec![e.message.clone()];
            if using.is_none()
                && let Some(cond) = invalid_text_condition(new_type, &format!("{col}::text"))
            {
                let q = format!(
                    "SELECT count(*) OVER (), {col}::text FROM {qt} WHERE {col} IS NOT NULL AND {cond} LIMIT {MAX_SAMPLES}"
                );
                if let Ok((n, samples)) =
                    savepoint(conn, async |c| count_and_samples(c, &q).await).await?
                    && n > 0
                {
                    r.count = n;
                    r.exact = true;
                    r.samples = samples;
                    r.sql = format!("{attempt};\n{q}");
                }
            }
        }
    }
    r.duration_ms = started.elapsed().as_millis() as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_casts_are_recognised() {
        assert!(is_plain_cast(
            "legacy_amount::integer",
            "legacy_amount",
            "integer"
        ));
        assert!(is_plain_cast("CAST(\"v\" AS bigint)", "v", "bigint"));
        assert!(!is_plain_cast("(v::numeric * 2)::bigint", "v", "bigint"));
    }

    #[test]
    fn length_limited_types_are_recognised_in_every_spelling() {
        let l = |kind, n, array| Some(Limit { kind, n, array });
        let vc = Len::Chars("varchar");
        let bp = Len::Chars("bpchar");
        assert_eq!(limit_of("varchar(3)"), l(vc, 3, false));
        assert_eq!(limit_of("character  varying ( 40 )"), l(vc, 40, false));
        assert_eq!(limit_of("char varying(3)"), l(vc, 3, false));
        assert_eq!(limit_of("\"varchar\"(3)"), l(vc, 3, false));
        assert_eq!(limit_of("\"pg_catalog\".\"varchar\"(3)"), l(vc, 3, false));
        assert_eq!(limit_of("pg_catalog.bpchar(2)"), l(bp, 2, false));
        assert_eq!(limit_of("CHAR(1)"), l(bp, 1, false));
        assert_eq!(limit_of("char"), l(bp, 1, false));
        assert_eq!(limit_of("character"), l(bp, 1, false));
        assert_eq!(limit_of("NCHAR(3)"), l(bp, 3, false));
        assert_eq!(limit_of("nchar"), l(bp, 1, false));
        assert_eq!(limit_of("bit(3)"), l(Len::BitsExact, 3, false));
        assert_eq!(limit_of("BIT"), l(Len::BitsExact, 1, false));
        assert_eq!(limit_of("bit varying(3)"), l(Len::BitsMax, 3, false));
        assert_eq!(limit_of("varchar(3)[]"), l(vc, 3, true));
        assert_eq!(limit_of("VARCHAR(3) ARRAY"), l(vc, 3, true));
        assert_eq!(limit_of("character varying(3)[]"), l(vc, 3, true));
        assert_eq!(limit_of("bit(2)[][]"), l(Len::BitsExact, 2, true));
        for none in [
            "\"char\"",
            "\"bit\"",
            "varchar",
            "varchar[]",
            "bpchar",
            "text",
            "numeric(5,2)",
            "myschema.varchar(3)",
            "\"Varchar\"(3)",
        ] {
            assert_eq!(limit_of(none), None, "{none}");
        }
    }

    /// The length check's SQL: the base type without the length (`"bit"` quoted), every
    /// operator `pg_catalog`'s, an array's elements one by one.
    #[test]
    fn the_length_check_converts_to_the_base_type_and_qualifies_its_operators() {
        let bits = limit_of("bit(2)").unwrap();
        assert_eq!(
            bits.breaks("v"),
            "pg_catalog.length((v)::pg_catalog.\"bit\") OPERATOR(pg_catalog.<>) 2"
        );
        let arr = limit_of("varchar(3)[]").unwrap();
        assert_eq!(
            arr.breaks("v"),
            "EXISTS (SELECT 1 FROM pg_catalog.unnest((v)::pg_catalog.varchar[]) AS deployclaw_e(v) \
             WHERE pg_catalog.char_length(pg_catalog.rtrim(deployclaw_e.v::pg_catalog.text)) OPERATOR(pg_catalog.>) 3)"
        );
        assert_eq!(
            arr.sample("v"),
            "(v)::pg_catalog.varchar[]::pg_catalog.text"
        );
    }
}

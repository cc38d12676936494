//! Seeding one table: its columns grouped into slots (a foreign key's columns take a parent key
//! together; every other column alone), one row at a time under a SAVEPOINT; a failed insert
//! moves the slots of the constraint or column the server names to their next candidate.

use sqlx::postgres::{PgConnection, PgDatabaseError};
use sqlx::{AssertSqlSafe, Row};
use topology::catalog::{Catalog, Column, ConstraintType, ForeignKey, Table};

use super::column::{self, Candidates};
use super::cx::SeedCx;
use super::report::{ColumnFallback, SeedReport};
use super::sql::{release, savepoint};
use crate::names::quote_ident;

/// Attempts per row before the row is given up.
const MAX_ATTEMPTS: usize = 48;
/// Parent keys read per foreign key.
const MAX_KEYS: usize = 64;

enum Source<'a> {
    Plain(Candidates),
    Fk {
        fk: &'a ForeignKey,
        keys: Vec<Vec<Option<String>>>,
        self_ref: bool,
    },
}

struct Slot<'a> {
    columns: Vec<&'a Column>,
    source: Source<'a>,
    nullable: bool,
    attempt: usize,
}

/// A failed insert, as the server described it (never its message: it may carry values).
struct Blame {
    code: String,
    constraint: Option<String>,
    columns: Vec<String>,
}

impl Blame {
    fn describe(&self) -> String {
        match &self.constraint {
            Some(c) => format!("constraint {c} ({})", self.code),
            None => format!("SQLSTATE {}", self.code),
        }
    }
}

fn blame(err: &sqlx::Error, t: &Table) -> Blame {
    let Some(db) = err.as_database_error() else {
        return Blame {
            code: "connection".into(),
            constraint: None,
            columns: Vec::new(),
        };
    };
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let constraint = db.constraint().map(str::to_string);
    let mut columns = Vec::new();
    if let Some(c) = &constraint {
        if let Some(k) = t.constraints.get(c) {
            columns.clone_from(&k.columns);
        } else if let Some(i) = t.indexes.get(c) {
            columns.clone_from(&i.depends_on);
        }
    }
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>()
        && let Some(c) = pg.column()
    {
        columns.push(c.to_string());
    }
    Blame {
        code,
        constraint,
        columns,
    }
}

fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// Up to [`MAX_KEYS`] distinct non-NULL keys of the referenced columns, as text.
async fn parent_keys(conn: &mut PgConnection, fk: &ForeignKey) -> Vec<Vec<Option<String>>> {
    let cols: Vec<String> = fk
        .referenced_columns
        .iter()
        .map(|c| quote_ident(c))
        .collect();
    if cols.is_empty() {
        return Vec::new();
    }
    let sel: Vec<String> = cols.iter().map(|c| format!("{c}::text")).collect();
    let nn: Vec<String> = cols.iter().map(|c| format!("{c} IS NOT NULL")).collect();
    let order: Vec<String> = (1..=cols.len()).map(|i| i.to_string()).collect();
    let sql = format!(
        "SELECT DISTINCT {} FROM {} WHERE {} ORDER BY {} LIMIT {MAX_KEYS}",
        sel.join(", "),
        qualified(&fk.references.schema, &fk.references.name),
        nn.join(" AND "),
        order.join(", ")
    );
    savepoint(conn).await;
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *conn).await;
    release(conn, rows.is_ok()).await;
    rows.unwrap_or_default()
        .iter()
        .map(|r| {
            (0..cols.len())
                .map(|i| r.try_get(i).ok().flatten())
                .collect()
        })
        .collect()
}

/// The slots of `t`: foreign keys first (each column in at most one slot), then every column
/// without a default, identity or generation expression.
async fn slots<'a>(conn: &mut PgConnection, cx: &mut SeedCx<'_>, t: &'a Table) -> Vec<Slot<'a>> {
    let mut out: Vec<Slot<'a>> = Vec::new();
    let taken =
        |out: &Vec<Slot<'a>>, c: &str| out.iter().any(|s| s.columns.iter().any(|x| x.name == c));
    for k in t
        .constraints
        .values()
        .filter(|k| k.kind == ConstraintType::ForeignKey)
    {
        let Some(fk) = &k.foreign_key else { continue };
        let cols: Option<Vec<&Column>> = k.columns.iter().map(|c| t.column(c)).collect();
        let Some(cols) = cols else { continue };
        if cols
            .iter()
            .any(|c| taken(&out, &c.name) || c.generated.is_some())
        {
            continue;
        }
        let self_ref = fk.references.schema == cx.cat.schema && fk.references.name == t.name;
        let keys = if self_ref {
            Vec::new()
        } else {
            parent_keys(conn, fk).await
        };
        let nullable = cols.iter().all(|c| !c.not_null);
        if keys.is_empty() && !self_ref && nullable && fk.references.schema == cx.cat.schema {
            cx.later.push((t.name.clone(), k.name.clone()));
        }
        out.push(Slot {
            nullable,
            columns: cols,
            source: Source::Fk { fk, keys, self_ref },
            attempt: 0,
        });
    }
    for c in t.columns_in_order() {
        let defaulted = c.default.is_some() || c.identity.is_some() || c.generated.is_some();
        if !defaulted && !taken(&out, &c.name) {
            out.push(plain_slot(conn, cx, t, c).await);
        }
    }
    out
}

async fn plain_slot<'a>(
    conn: &mut PgConnection,
    cx: &mut SeedCx<'_>,
    t: &Table,
    c: &'a Column,
) -> Slot<'a> {
    let cands = column::candidates(conn, cx, t, c).await;
    if let Some(note) = &cands.note {
        fallback(cx.report, t, c, note);
    }
    Slot {
        columns: vec![c],
        nullable: cands.nullable,
        source: Source::Plain(cands),
        attempt: 0,
    }
}

fn fallback(report: &mut SeedReport, t: &Table, c: &Column, reason: &str) {
    let f = ColumnFallback {
        table: t.name.clone(),
        column: c.name.clone(),
        reason: reason.to_string(),
    };
    if !report.fallbacks.contains(&f) {
        report.fallbacks.push(f);
    }
}

/// The values of every slot for row `i`: `Err(why)` when a slot that may not be NULL has no
/// candidate left. A self-reference may also point at the row itself.
fn row_values(slots: &[Slot<'_>], i: usize) -> Result<Vec<Vec<Option<String>>>, String> {
    let mut out: Vec<Option<Vec<Option<String>>>> = vec![None; slots.len()];
    for (si, s) in slots.iter().enumerate() {
        if let Source::Plain(c) = &s.source {
            let cands: Vec<Vec<Option<String>>> =
                c.values.iter().map(|v| vec![Some(v.clone())]).collect();
            out[si] = pick(&cands, s, i);
        }
    }
    for (si, s) in slots.iter().enumerate() {
        if let Source::Fk { fk, keys, self_ref } = &s.source {
            let mut cands = keys.clone();
            if *self_ref && let Some(own) = own_key(slots, &out, fk) {
                cands.push(own);
            }
            out[si] = pick(&cands, s, i);
        }
    }
    slots
        .iter()
        .zip(out)
        .map(|(s, v)| v.ok_or_else(|| exhausted(s)))
        .collect()
}

fn exhausted(s: &Slot<'_>) -> String {
    let cols: Vec<&str> = s.columns.iter().map(|c| c.name.as_str()).collect();
    let what = match &s.source {
        Source::Plain(c) => c
            .note
            .clone()
            .unwrap_or_else(|| "no candidate value left".into()),
        Source::Fk { fk, .. } => format!(
            "no usable row in {}.{}",
            fk.references.schema, fk.references.name
        ),
    };
    format!("column {}: {what}", cols.join(", "))
}

/// The row's own values of the columns `fk` references, when plain slots set them all.
fn own_key(
    slots: &[Slot<'_>],
    values: &[Option<Vec<Option<String>>>],
    fk: &ForeignKey,
) -> Option<Vec<Option<String>>> {
    fk.referenced_columns
        .iter()
        .map(|rc| {
            slots.iter().zip(values).find_map(|(s, v)| {
                let i = s.columns.iter().position(|c| &c.name == rc)?;
                let v = v.as_ref()?.get(i)?.clone()?;
                matches!(s.source, Source::Plain(_)).then_some(Some(v))
            })
        })
        .collect()
}

/// Row `i`'s pick of `cands` at the slot's attempt; NULLs when exhausted and nullable.
fn pick(cands: &[Vec<Option<String>>], s: &Slot<'_>, i: usize) -> Option<Vec<Option<String>>> {
    if s.attempt < cands.len() {
        Some(cands[(i + s.attempt) % cands.len()].clone())
    } else if s.nullable {
        Some(vec![None; s.columns.len()])
    } else {
        None
    }
}

/// The `INSERT` of one row: values are bound parameters (never spliced into the SQL, which a
/// driver may log), each cast from text to its column's type.
fn insert_sql(cat: &Catalog, t: &Table, slots: &[Slot<'_>]) -> String {
    let mut cols = Vec::new();
    let mut vals = Vec::new();
    for s in slots {
        for c in &s.columns {
            cols.push(quote_ident(&c.name));
            vals.push(format!("${}::{}", vals.len() + 1, c.data_type));
        }
    }
    let qt = qualified(&cat.schema, &t.name);
    if cols.is_empty() {
        format!("INSERT INTO {qt} DEFAULT VALUES")
    } else {
        format!(
            "INSERT INTO {qt} ({}) VALUES ({})",
            cols.join(", "),
            vals.join(", ")
        )
    }
}

/// Move the slots `b` names to their next candidate; a blamed column left to its default
/// starts taking candidates. Nothing named: every slot moves. When a constraint names several
/// slots (`CHECK (a < b)`, `UNIQUE (a, b)`), one moves per failure, alternately the first by
/// one and the last by two, so that both orders between them are tried (`tries`: failures of
/// this row so far).
async fn advance<'a>(
    conn: &mut PgConnection,
    cx: &mut SeedCx<'_>,
    t: &'a Table,
    slots: &mut Vec<Slot<'a>>,
    b: &Blame,
    tries: usize,
) {
    let blamed: Vec<usize> = (0..slots.len())
        .filter(|i| {
            slots[*i]
                .columns
                .iter()
                .any(|c| b.columns.contains(&c.name))
        })
        .collect();
    let mut moved = !blamed.is_empty();
    match blamed.as_slice() {
        [] => {}
        [one] => slots[*one].attempt += 1,
        [first, ..] if tries.is_multiple_of(2) => slots[*first].attempt += 1,
        [.., last] => slots[*last].attempt += 2,
    }
    for name in &b.columns {
        let in_slot = slots
            .iter()
            .any(|s| s.columns.iter().any(|c| &c.name == name));
        if let Some(c) = t.columns.get(name)
            && !in_slot
            && c.identity.is_none()
            && c.generated.is_none()
        {
            slots.push(plain_slot(conn, cx, t, c).await);
            moved = true;
        }
    }
    if !moved {
        slots.iter_mut().for_each(|s| s.attempt += 1);
    }
}

/// Insert up to `cx.n` rows into `t`, recording the outcome in `cx.report`.
pub(super) async fn seed_table(conn: &mut PgConnection, cx: &mut SeedCx<'_>, t: &Table) {
    let mut slots = slots(conn, cx, t).await;
    let mut rows = 0;
    let mut why = None;
    for i in 0..cx.n {
        for s in slots.iter_mut() {
            s.attempt = 0;
            if let Source::Fk {
                fk,
                keys,
                self_ref: true,
            } = &mut s.source
            {
                *keys = parent_keys(conn, fk).await;
            }
        }
        match seed_row(conn, cx, t, &mut slots, i).await {
            Ok(()) => rows += 1,
            Err(w) => {
                why = Some(w);
                break;
            }
        }
    }
    if rows > 0 {
        cx.report.rows.insert(t.name.clone(), rows);
    }
    if let Some(w) = why {
        let into = if rows == 0 {
            &mut cx.report.skipped
        } else {
            &mut cx.report.short
        };
        into.insert(t.name.clone(), w);
    }
}

async fn seed_row<'a>(
    conn: &mut PgConnection,
    cx: &mut SeedCx<'_>,
    t: &'a Table,
    slots: &mut Vec<Slot<'a>>,
    i: usize,
) -> Result<(), String> {
    let mut last: Option<Blame> = None;
    for tries in 0..MAX_ATTEMPTS {
        let values = row_values(slots, i).map_err(|w| match &last {
            Some(b) => format!("{w} (last rejected by {})", b.describe()),
            None => w,
        })?;
        let sql = insert_sql(cx.cat, t, slots);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for v in values.iter().flatten() {
            q = q.bind(v.as_deref());
        }
        savepoint(conn).await;
        let r = q.execute(&mut *conn).await;
        release(conn, r.is_ok()).await;
        match r {
            Ok(_) => {
                note_used(cx.report, t, slots, &values, i);
                return Ok(());
            }
            Err(e) => {
                let b = blame(&e, t);
                advance(conn, cx, t, slots, &b, tries).await;
                last = Some(b);
            }
        }
    }
    Err(match last {
        Some(b) => format!(
            "every candidate row was rejected (last by {})",
            b.describe()
        ),
        None => "every candidate row was rejected".into(),
    })
}

/// Record hint use and NULL fallbacks of a row that went in.
fn note_used(
    report: &mut SeedReport,
    t: &Table,
    slots: &[Slot<'_>],
    values: &[Vec<Option<String>>],
    i: usize,
) {
    for (s, v) in slots.iter().zip(values) {
        if let Source::Plain(c) = &s.source {
            let idx = if c.values.is_empty() {
                usize::MAX
            } else {
                (i + s.attempt) % c.values.len()
            };
            let key = (t.name.clone(), s.columns[0].name.clone());
            if idx < c.hinted && s.attempt < c.values.len() && !report.hinted.contains(&key) {
                report.hinted.push(key);
            }
        }
        if v.iter().all(Option::is_none) && s.attempt > 0 {
            for c in &s.columns {
                fallback(report, t, c, "no candidate value was accepted; NULL");
            }
        }
    }
}

//! What a column's type accepts: the server's description of a type (domains unwrapped to
//! their base, enum labels, array elements, domain CHECKs) and synthetic candidate values, as
//! text, for it and for the constants a CHECK names.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::postgres::PgConnection;

/// A type as the sample rows need to know it.
#[derive(Debug, Clone, Default)]
pub(super) struct TypeInfo {
    /// `format_type` of the base type (a domain's base, recursively), lower-cased, with its
    /// modifier (`character varying(20)`).
    pub base: String,
    /// Labels of an enum (base), in order.
    pub labels: Vec<String>,
    /// The element type of an array.
    pub elem: Option<Box<TypeInfo>>,
    /// CHECK definitions of the domains on the way to the base.
    pub checks: Vec<String>,
    /// A domain on the way says `NOT NULL`.
    pub not_null: bool,
}

const DESCRIBE: &str = "SELECT ty.typtype::text, ty.typnotnull, \
     CASE WHEN ty.typtype = 'd' THEN format_type(ty.typbasetype, ty.typtypmod) END, \
     CASE WHEN ty.typcategory = 'A' AND ty.typelem <> 0 THEN format_type(ty.typelem, NULL) END, \
     ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = ty.oid \
           ORDER BY e.enumsortorder), \
     ARRAY(SELECT pg_catalog.pg_get_constraintdef(c.oid) FROM pg_catalog.pg_constraint c \
           WHERE c.contypid = ty.oid AND c.contype = 'c' ORDER BY c.conname) \
     FROM pg_catalog.pg_type ty WHERE ty.oid = pg_catalog.to_regtype($1)";

type Described = (
    String,
    bool,
    Option<String>,
    Option<String>,
    Vec<String>,
    Vec<String>,
);

async fn describe(conn: &mut PgConnection, ty: &str) -> Option<Described> {
    let row = sqlx::query(DESCRIBE)
        .bind(ty)
        .fetch_optional(&mut *conn)
        .await
        .ok()??;
    Some((
        row.try_get(0).ok()?,
        row.try_get(1).ok()?,
        row.try_get(2).ok()?,
        row.try_get(3).ok()?,
        row.try_get(4).ok()?,
        row.try_get(5).ok()?,
    ))
}

/// A scalar (or array) type with its domains unwrapped; arrays' elements one level deep.
async fn resolve_scalar(conn: &mut PgConnection, ty: &str) -> (TypeInfo, Option<String>) {
    let mut info = TypeInfo {
        base: ty.to_ascii_lowercase(),
        ..Default::default()
    };
    let mut current = ty.to_string();
    for _ in 0..8 {
        let Some((kind, not_null, domain_base, elem, labels, checks)) =
            describe(conn, &current).await
        else {
            return (info, None);
        };
        info.not_null |= not_null;
        info.checks.extend(checks);
        match domain_base {
            Some(b) if kind == "d" => {
                info.base = b.to_ascii_lowercase();
                current = b;
            }
            _ => {
                info.labels = labels;
                return (info, elem);
            }
        }
    }
    (info, None)
}

/// The description of `ty` (a `format_type` text or a type name), cached per text.
pub(super) async fn type_info(
    conn: &mut PgConnection,
    ty: &str,
    cache: &mut HashMap<String, TypeInfo>,
) -> TypeInfo {
    if let Some(t) = cache.get(ty) {
        return t.clone();
    }
    let (mut info, elem) = resolve_scalar(conn, ty).await;
    if let Some(e) = elem {
        let (mut elem_info, _) = resolve_scalar(conn, &e).await;
        elem_info.checks.clear();
        info.elem = Some(Box::new(elem_info));
    }
    cache.insert(ty.to_string(), info.clone());
    info
}

/// Distinct short lower-case words: `a`, `b`, …, `z`, `ba`, `bb`, ….
pub(super) fn letters(mut k: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (k % 26) as u8);
        k /= 26;
        if k == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

fn date(k: usize) -> String {
    format!(
        "{}-{:02}-{:02}",
        2000 + k / 336,
        1 + (k / 28) % 12,
        1 + k % 28
    )
}

/// Whether values of the base type `base` are numbers.
pub(super) fn is_numeric(base: &str) -> bool {
    matches!(
        base_name(base),
        "smallint" | "integer" | "bigint" | "numeric" | "real" | "double precision" | "money"
    )
}

/// Whether values of the base type `base` are character strings.
pub(super) fn is_textual(base: &str) -> bool {
    matches!(
        base_name(base),
        "text" | "character varying" | "character" | "citext" | "name" | "bpchar" | "\"char\""
    )
}

fn base_name(base: &str) -> &str {
    base.split('(').next().unwrap_or("").trim()
}

/// The `k`-th synthetic value of a type (distinct for distinct `k` where the type has enough
/// values), as text; `None` when there is no `k`-th value or the type is not known.
pub(super) fn synthetic(info: &TypeInfo, k: usize) -> Option<String> {
    if !info.labels.is_empty() {
        return info.labels.get(k).cloned();
    }
    if let Some(e) = &info.elem {
        return match synthetic(e, k) {
            Some(v) => Some(format!(
                "{{\"{}\"}}",
                v.replace('\\', "\\\\").replace('"', "\\\"")
            )),
            None if k == 0 => Some("{}".into()),
            None => None,
        };
    }
    let b = base_name(&info.base);
    if is_numeric(b) || b == "oid" {
        return Some((k + 1).to_string());
    }
    if is_textual(b) || b == "tsvector" || b == "tsquery" {
        return Some(letters(k));
    }
    Some(match b {
        "boolean" => return ["true", "false"].get(k).map(|s| s.to_string()),
        "uuid" => format!("00000000-0000-4000-8000-{:012x}", k + 1),
        "json" | "jsonb" => format!("{{\"k\": {k}}}"),
        "date" => date(k),
        "timestamp without time zone" | "timestamp with time zone" => {
            format!("{} 12:00:00", date(k))
        }
        "time without time zone" | "time with time zone" => {
            format!("{:02}:{:02}:00", (k / 60) % 24, k % 60)
        }
        "interval" => format!("{} minutes", k + 1),
        "bytea" => format!("\\x{k:04x}"),
        "inet" | "cidr" => format!("10.{}.{}.0/24", (k / 250) % 250, k % 250),
        "macaddr" => format!("08:00:2b:01:{:02x}:{:02x}", (k / 256) % 256, k % 256),
        "xml" => format!("<k>{k}</k>"),
        "int4range" | "int8range" | "numrange" => format!("[{k},{})", k + 1),
        "daterange" => format!("[{},{})", date(k), date(k + 1)),
        _ => return None,
    })
}

/// The constants a CHECK definition names: numbers and string literals.
pub(super) fn check_literals(def: &str) -> (Vec<f64>, Vec<String>) {
    let (mut nums, mut strs) = (Vec::new(), Vec::new());
    let b = def.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' {
            let mut s = Vec::new();
            i += 1;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        s.push(b'\'');
                        i += 2;
                        continue;
                    }
                    break;
                }
                s.push(b[i]);
                i += 1;
            }
            let s = String::from_utf8_lossy(&s).into_owned();
            match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => nums.push(n),
                _ => strs.push(s),
            }
        } else if c.is_ascii_digit() && (i == 0 || !is_word(b[i - 1])) {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            let neg = start >= 1 && b[start - 1] == b'-';
            if let Ok(n) = def[start..i].parse::<f64>() {
                nums.push(if neg { -n } else { n });
            }
            continue;
        }
        i += 1;
    }
    (nums, strs)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'"'
}

fn render_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Numbers worth trying against checks naming `lits`: points inside each interval between
/// consecutive constants first, then just above the largest, just below the smallest, and the
/// constants themselves.
pub(super) fn numbers_around(lits: &[f64]) -> Vec<String> {
    let mut l: Vec<f64> = lits.to_vec();
    l.sort_by(f64::total_cmp);
    l.dedup();
    let mut out = Vec::new();
    for w in l.windows(2) {
        let (a, b) = (w[0], w[1]);
        for j in 1..=4 {
            let mut x = a + (b - a) * f64::from(j) / 5.0;
            if b - a >= 2.0 {
                x = x.round();
            }
            if x > a && x < b {
                out.push(render_number(x));
            }
        }
    }
    if let (Some(lo), Some(hi)) = (l.first(), l.last()) {
        for j in 1..=3 {
            out.push(render_number(hi + f64::from(j)));
        }
        for j in 1..=3 {
            out.push(render_number(lo - f64::from(j)));
        }
    }
    out.extend(l.iter().map(|x| render_number(*x)));
    out
}

/// Strings of the lengths a check may want (`char_length(code) > 2`: the lengths of
/// [`numbers_around`] its constants, in that order), distinct per `j`.
pub(super) fn strings_of_length(lits: &[f64], count: usize) -> Vec<String> {
    let lengths: Vec<usize> = numbers_around(lits)
        .iter()
        .filter_map(|n| n.parse::<usize>().ok())
        .filter(|n| (1..=64).contains(n))
        .collect();
    let mut out = Vec::new();
    // Round robin over the lengths: each length is tried early.
    for j in 0..count {
        for n in &lengths {
            let mut s = letters(j);
            while s.len() < *n {
                s.push('x');
            }
            if s.len() == *n && !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// Which of `values` the server accepts as `ty` (the `pg_temp` helper of
/// [`install_try_cast`]); every value when the helper is missing.
pub(super) async fn accepted(conn: &mut PgConnection, values: &[String], ty: &str) -> Vec<bool> {
    super::sql::savepoint(conn).await;
    let r = sqlx::query_scalar::<_, bool>(
        "SELECT pg_temp.deployclaw_try_cast(v, $2) \
         FROM unnest($1::text[]) WITH ORDINALITY AS u(v, i) ORDER BY i",
    )
    .bind(values)
    .bind(ty)
    .fetch_all(&mut *conn)
    .await;
    super::sql::release(conn, r.is_ok()).await;
    match r {
        Ok(v) if v.len() == values.len() => v,
        _ => vec![true; values.len()],
    }
}

/// Create the session-local cast tester (`pg_temp`, gone with the session; in no schema a
/// catalog compares). `ty` is always a server-formatted type name.
pub(super) async fn install_try_cast(conn: &mut PgConnection) -> bool {
    super::sql::guarded(
        conn,
        "CREATE FUNCTION pg_temp.deployclaw_try_cast(v text, t text) RETURNS boolean \
         LANGUAGE plpgsql AS $f$ BEGIN EXECUTE format('SELECT %L::%s', v, t); RETURN true; \
         EXCEPTION WHEN others THEN RETURN false; END $f$",
    )
    .await
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_of_server_deparsed_checks() {
        let (n, s) = check_literals(
            "CHECK (((price > (0)::numeric) AND (price < (100)::numeric) AND (v2 > '-5'::integer)))",
        );
        assert_eq!(n, [0.0, 100.0, -5.0]);
        assert!(s.is_empty(), "{s:?}");
        let (n, s) = check_literals("CHECK ((status = ANY (ARRAY['it''s'::text, 'b'::text])))");
        assert!(n.is_empty());
        assert_eq!(s, ["it's", "b"]);
    }

    #[test]
    fn numbers_inside_the_intervals_come_first() {
        assert_eq!(
            numbers_around(&[0.0, 100.0]),
            [
                "20", "40", "60", "80", "101", "102", "103", "-1", "-2", "-3", "0", "100"
            ]
        );
        assert_eq!(numbers_around(&[0.0, 1.0])[0], "0.2");
    }

    #[test]
    fn synthetic_values_are_distinct() {
        let text = TypeInfo {
            base: "text".into(),
            ..Default::default()
        };
        let v: Vec<String> = (0..60).filter_map(|k| synthetic(&text, k)).collect();
        let mut d = v.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 60);
        assert_eq!(letters(26), "ba");
        assert_eq!(
            strings_of_length(&[3.0], 2),
            [
                "axxx", "axxxx", "axxxxx", "ax", "a", "axx", "bxxx", "bxxxx", "bxxxxx", "bx", "b",
                "bxx"
            ]
        );
    }
}

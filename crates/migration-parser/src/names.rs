//! Names as PostgreSQL folds them, from sqlparser's AST: the one place identifiers are
//! normalised (unquoted → lower case, quoted → verbatim), for the converter and for `refs`,
//! and [`QualifiedName`], the normalised form every crate uses.

use serde::{Deserialize, Serialize};
use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

/// A schema-qualified name, normalised (unquoted identifiers lower-cased).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QualifiedName {
    /// The schema if the SQL named one.
    pub schema: Option<String>,
    /// The object name.
    pub name: String,
}

impl QualifiedName {
    /// An unqualified name.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            schema: None,
            name: name.into(),
        }
    }
    /// A schema-qualified name.
    pub fn qualified(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            schema: Some(schema.into()),
            name: name.into(),
        }
    }
    /// `name` in the same schema as this one (qualified only if this one is): the new name of
    /// `ALTER … RENAME TO name`, an index named on a table.
    pub fn sibling(&self, name: impl Into<String>) -> Self {
        Self {
            schema: self.schema.clone(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

/// Normalise an identifier the way PostgreSQL folds it: unquoted → lower case, quoted → verbatim.
pub(crate) fn ident(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

pub(crate) fn part(p: &ObjectNamePart) -> String {
    match p {
        ObjectNamePart::Identifier(i) => ident(i),
        other => other.to_string(),
    }
}

/// An [`ObjectName`] as a [`QualifiedName`] (a database qualifier is dropped).
pub(crate) fn qname(n: &ObjectName) -> QualifiedName {
    let parts = &n.0;
    match parts.len() {
        0 => QualifiedName::new(""),
        1 => QualifiedName::new(part(&parts[0])),
        k => QualifiedName::qualified(part(&parts[k - 2]), part(&parts[k - 1])),
    }
}

/// The last part of an object name (an unqualified new name).
pub(crate) fn last_name(n: &ObjectName) -> String {
    n.0.last().map(part).unwrap_or_default()
}

/// The whole name as written, normalised, parts joined with `.`.
pub(crate) fn dotted(n: &ObjectName) -> String {
    n.0.iter().map(part).collect::<Vec<_>>().join(".")
}

/// SQL text lower-cased outside double-quoted identifiers and single-quoted strings.
pub(crate) fn lower_sql(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
                out.extend(c.to_lowercase());
            }
        }
    }
    out
}

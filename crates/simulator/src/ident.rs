//! Quoting: the simulator writes every identifier and literal of generated SQL through the one
//! quoting module, [`migration_parser::pg_quote`].

pub use migration_parser::pg_quote::{quote_ident, quote_literal, quote_qualified};

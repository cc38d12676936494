//! One module per subcommand family.
pub mod lint;
pub mod topology;
pub mod rollback;
pub mod sign;
pub mod validate;

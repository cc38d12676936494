//! One module per subcommand family.
pub mod lint;
pub mod rollback;
pub mod sign;
pub mod topology;
pub mod validate;

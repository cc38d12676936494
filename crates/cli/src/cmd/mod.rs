//! One module per subcommand family.
pub mod aws;
pub mod lint;
pub mod rollback;
pub mod sign;
pub mod topology;
pub mod validate;

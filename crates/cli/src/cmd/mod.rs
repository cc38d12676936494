//! One module per subcommand family.
pub mod lint;
pub mod topology;

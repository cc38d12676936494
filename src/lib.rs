//! deployclaw: gate schema migrations for multi-tenant PostgreSQL fleets.
pub use gates;
pub use migration_parser;
pub use report;
pub use rollback;
pub use simulator;
pub use topology;

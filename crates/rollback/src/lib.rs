//! deployclaw rollback crate (skeleton).

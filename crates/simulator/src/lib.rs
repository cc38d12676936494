//! deployclaw simulator crate (skeleton).

//! deployclaw report crate (skeleton).

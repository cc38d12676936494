//! The probe kinds and what each one predicts: plain data that the per-shard rules of `gates`
//! read too, so it is defined in the `evidence` crate ([`evidence::ProbeKind`]); a new kind is
//! one variant and one arm of [`ProbeKind::facts`] there plus its module under `probe/kinds/`.

pub use evidence::{ProbeFacts, ProbeKind};

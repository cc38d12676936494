//! Reading the files a user hands deployclaw with a size cap: [`gates::input`] (the library's
//! directory linting reads with the same cap), re-exported here under its old path.

pub use gates::input::{MAX_INPUT_BYTES, read_capped, read_capped_from, read_capped_to_string};

//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while rendering, signing or verifying a report.
///
/// A failed verification is an error (the caller must not trust the report); the status of an
/// approval token is not (see [`crate::TokenStatus`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Reading or writing a file failed.
    #[error("{action} `{path}`: {source}")]
    Io {
        /// What was being done (`reading`, `writing`, `creating`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The report directory is not private to this user (see [`crate::render::write_all`]).
    #[error("report directory `{}` {reason}", dir.display())]
    UnsafeReportDir {
        /// The directory.
        dir: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// A document is not valid JSON of the expected shape, or could not be serialized.
    #[error("{what}: not valid JSON of the expected shape: {source}")]
    Json {
        /// What was being parsed or written (`report`, `approval token`).
        what: &'static str,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A key file or key string could not be read as an Ed25519 key.
    #[error("{what} is not an Ed25519 key: {reason}")]
    KeyFormat {
        /// The file or a description of the input.
        what: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Refusing to overwrite an existing key file.
    #[error("key file `{path}` already exists; refusing to overwrite it")]
    KeyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The report carries no signature.
    #[error("the report is not signed")]
    Unsigned,
    /// The report names a signature algorithm this version does not know.
    #[error("unsupported signature algorithm `{0}` (expected `ed25519`)")]
    UnsupportedAlgorithm(String),
    /// The report was signed by a different key than the one it was checked against.
    #[error("the report was signed by key {found}, not by the expected key {expected}")]
    WrongKey {
        /// The trusted public key (base64).
        expected: String,
        /// The key named in the report (base64).
        found: String,
    },
    /// The signature does not match the report's content: it was changed after signing.
    #[error(
        "the signature does not match the report's content (the report was changed after signing)"
    )]
    BadSignature,
    /// The migration file's content differs from the one the report validated.
    #[error(
        "migration file `{path}` has sha256 {actual}, but the report validated {expected}: \
         it changed after validation"
    )]
    MigrationMismatch {
        /// The file checked.
        path: PathBuf,
        /// sha256 recorded in the report.
        expected: String,
        /// sha256 of the file now.
        actual: String,
    },
    /// A partial report given to `report merge` could not be read or verified.
    #[error("{file}: {source}")]
    MergePart {
        /// The part's file name.
        file: String,
        /// Why it was refused (changed after signing, wrong key, not a report).
        #[source]
        source: Box<ReportError>,
    },
    /// `report merge` refuses the parts: not of one run, or not covering the fleet exactly
    /// once. The reason names the files, the shard or the partition.
    #[error("cannot merge: {reason}")]
    MergeRefused {
        /// Which file, shard or partition, and why.
        reason: String,
    },
    /// An approval token string is not well formed.
    #[error("malformed approval token: {reason}")]
    MalformedToken {
        /// Why it was rejected.
        reason: String,
    },
}

impl ReportError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ReportError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

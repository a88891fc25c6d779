use std::io;

/// Every fallible Lore operation returns this error. Each variant names where the problem is,
/// and its message says what to do about it where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A named model is not installed locally.
    #[error("model '{name}' is not installed: run `lore models pull {name}`")]
    ModelMissing { name: String },
    /// A model file exists but cannot be used.
    #[error("model error: {0}")]
    Model(String),
    /// A remote endpoint could not be reached or answered something unusable.
    #[error("endpoint error: {0}")]
    Endpoint(String),
    /// A file could not be turned into a document.
    #[error("cannot parse {path}: {reason}")]
    Parse { path: String, reason: String },
    /// The collection on disk is missing, inconsistent, or built for another embedder.
    #[error("index error: {0}")]
    Index(String),
    /// The caller asked for something that cannot be done as asked.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

use std::io;
use std::path::{Path, PathBuf};

/// What kind of failure an [`Error`] is: what a caller decides on. The CLI picks its exit code
/// by it and an HTTP layer its status code, without reading messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A collection, document, model or file that was named does not exist.
    NotFound,
    /// Something to be created exists already.
    AlreadyExists,
    /// The request or a file cannot be used as given (a malformed filter, an unreadable
    /// document, a collection asked to take vectors of another embedder).
    InvalidInput,
    /// Asked of a collection, model or format that cannot do it (a newer format version, a
    /// model role that does not fit).
    Unsupported,
    /// Stored data is damaged or inconsistent: a collection's files, a model's weights.
    Corrupt,
    /// A resource is held by someone else; trying again later may succeed.
    Busy,
    /// A model cannot serve: a remote endpoint is down or misbehaving, or a local model failed.
    ModelUnavailable,
    /// The operating system refused a read or write.
    Io,
    /// The caller stopped the operation.
    Cancelled,
}

/// Another error kept as the cause of a Lore error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every fallible Lore operation returns this error. Each variant is one [`ErrorKind`] (see
/// [`Error::kind`]), names what it is about (a path, a collection, a model) and says what to do
/// where there is something to do; the error it came from, if any, is its `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// What was asked for does not exist; the message names it.
    #[error("{0}")]
    NotFound(String),
    /// What was to be created exists already; the message names it.
    #[error("{0}")]
    AlreadyExists(String),
    /// The caller asked for something that cannot be done as asked.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A file could not be turned into a document.
    #[error("cannot parse {path}: {reason}")]
    Parse {
        /// The file, as it was given.
        path: String,
        /// Why, in words.
        reason: String,
    },
    /// The operation is not available for this collection, model or format.
    #[error("{0}")]
    Unsupported(String),
    /// Stored data under `path` is damaged or inconsistent.
    #[error("{message}")]
    Corrupt {
        /// The damaged file or folder.
        path: PathBuf,
        /// What is wrong and what to do about it.
        message: String,
        /// The error that revealed the damage, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// Someone else holds what this needs; try again.
    #[error("{0}")]
    Busy(String),
    /// A named model is not installed locally.
    #[error("model '{name}' is not installed: run `lore models pull {name}`")]
    ModelMissing {
        /// The model's name in the registry.
        name: String,
    },
    /// A local model cannot be loaded or failed while running.
    #[error("model error: {0}")]
    Model(String),
    /// A remote model endpoint could not be reached or answered something unusable.
    #[error("endpoint error: {0}")]
    Endpoint(String),
    /// Reading or writing `path` failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The operation was stopped by its caller.
    #[error("cancelled")]
    Cancelled,
    /// An error that happened in the named collection.
    #[error("collection '{name}': {source}")]
    InCollection {
        /// The collection's name.
        name: String,
        /// What went wrong there.
        source: Box<Error>,
    },
}

impl Error {
    /// The kind of failure, whatever the variant and however deep in context it is wrapped.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) | Error::ModelMissing { .. } => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::InvalidInput(_) | Error::Parse { .. } => ErrorKind::InvalidInput,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Busy(_) => ErrorKind::Busy,
            Error::Model(_) | Error::Endpoint(_) => ErrorKind::ModelUnavailable,
            Error::Io { .. } => ErrorKind::Io,
            Error::Cancelled => ErrorKind::Cancelled,
            Error::InCollection { source, .. } => source.kind(),
        }
    }

    /// For `map_err`: an I/O error on `path`.
    ///
    /// ```
    /// use lore_core::{Error, ErrorKind};
    ///
    /// let missing = std::path::Path::new("/no/such/file");
    /// let error = std::fs::read(missing).map_err(Error::io(missing)).unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::Io);
    /// assert!(error.to_string().starts_with("/no/such/file: "));
    /// ```
    pub fn io(path: impl AsRef<Path>) -> impl FnOnce(io::Error) -> Error {
        let path = path.as_ref().to_path_buf();
        move |source| Error::Io { path, source }
    }

    /// Damage found in `path`, explained by `message`.
    pub fn corrupt(path: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::Corrupt { path: path.into(), message: message.into(), source: None }
    }

    /// This error, marked as having happened in collection `name` (once: an error already
    /// marked keeps its mark).
    pub fn in_collection(self, name: &str) -> Error {
        match self {
            marked @ Error::InCollection { .. } => marked,
            other => Error::InCollection { name: name.to_string(), source: Box::new(other) },
        }
    }
}

/// The result of every fallible Lore operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

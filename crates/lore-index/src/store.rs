//! The SQLite chunk store: schema, connection settings and error messages.

use std::io;
use std::path::Path;
use std::time::Duration;

use lore_core::{Error, Result};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, config::DbConfig, types::Type};
use serde::de::DeserializeOwned;

pub(crate) const STORE_FILE: &str = "store.sqlite";

/// `generation` counts the writes; the in-memory matrix is tagged with the generation it was
/// built from, so a process notices writes made by another one.
///
/// Chunk ids use AUTOINCREMENT so that an id is never reused: a chunk id cited in an answer or
/// in feedback never comes to mean another text after its document is replaced.
pub(crate) const SCHEMA: &str = "
CREATE TABLE manifest (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    format_version INTEGER NOT NULL,
    embedder TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    chunking TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    generation INTEGER NOT NULL
);
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    title TEXT,
    content_hash TEXT NOT NULL,
    metadata TEXT NOT NULL,
    ingested_at TEXT NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX chunks_by_document ON chunks(document_id, ordinal);
";

/// Tables added after the first format, made when a collection is opened if it lacks them.
///
/// `deleted_chunks` logs which chunks each write removed, so that an index that reflects an
/// older generation catches up without comparing every id: it drops the chunks logged after
/// its generation and adds the chunks above the largest id it has (ids only grow).
/// `search_settings` holds the collection's `SearchSettings` as JSON (defaults when absent).
/// `entities` and `links` are the entity graph, empty unless the settings turn it on; a link
/// of a chunk goes with the chunk, in the same transaction.
pub(crate) const LATER_TABLES: &str = "
CREATE TABLE IF NOT EXISTS deleted_chunks (
    generation INTEGER NOT NULL,
    chunk_id INTEGER NOT NULL,
    PRIMARY KEY (generation, chunk_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS search_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entities (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS links (
    entity_id INTEGER NOT NULL,
    chunk_id INTEGER NOT NULL,
    about INTEGER NOT NULL,
    PRIMARY KEY (entity_id, chunk_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS links_by_chunk ON links (chunk_id, entity_id);
";

/// The current time as RFC 3339 UTC, from SQLite so that no date code is needed here.
pub(crate) const NOW: &str = "SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now')";

/// How long a writer waits for another process's transaction before giving up. Each document
/// is its own short transaction, so a concurrent ingest never holds the lock for long.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings fixed when the store file is made. 16 KiB pages: a chunk row (its text plus a
/// 1.5 KiB vector at 384 dimensions) is about half a default 4 KiB page, so only one fitted per
/// page and the file was twice its data. WAL: readers never block the writer, nor it them.
pub(crate) const FILE_SETTINGS: &str = "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL;";

pub(crate) fn connect(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    // No mutex: a connection is used by one thread at a time (`Connection` is not `Sync`), and
    // SQLite's per-call locking was a visible part of a keyword search.
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // FULL: a committed document survives a power cut, not only a killed process. Memory-mapped
    // reads: a search reads its hits' rows without copying pages through read calls.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA mmap_size = 1073741824;")?;
    // A plan that never depends on the values bound: otherwise SQLite may mark a cached
    // statement to be compiled again whenever its parameters change, and reading a search's
    // hits one chunk id after another spent over half of a keyword search compiling SQL.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(conn)
}

pub(crate) fn read_generation(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT generation FROM manifest")?.query_row([], |row| row.get(0))
}

/// The stored search settings (defaults when none were stored).
pub(crate) fn read_settings(conn: &Connection) -> rusqlite::Result<lore_core::SearchSettings> {
    let stored = conn.query_row("SELECT settings FROM search_settings", [], |row| json_column(row, 0)).optional()?;
    Ok(stored.unwrap_or_default())
}

pub(crate) fn json_column<T: DeserializeOwned>(row: &Row, idx: usize) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

/// Turns SQLite errors into `lore_core::Error`s of the right kind that name the collection and
/// say what to do, with SQLite's error as their source.
pub(crate) trait AtCollection<T> {
    fn at(self, dir: &Path) -> Result<T>;
}

impl<T> AtCollection<T> for rusqlite::Result<T> {
    fn at(self, dir: &Path) -> Result<T> {
        self.map_err(|e| {
            let shown = dir.display();
            let store = dir.join(STORE_FILE);
            match e.sqlite_error_code() {
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Busy(format!(
                    "collection {shown} stayed locked by another process for {}s: \
                     try again when it has finished writing ({e})",
                    BUSY_TIMEOUT.as_secs()
                )),
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Error::Corrupt {
                    path: store,
                    message: format!("collection {shown} is damaged ({e}): delete the directory and ingest again"),
                    source: Some(Box::new(e)),
                },
                Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => Error::Io {
                    path: store,
                    source: io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("collection {shown} cannot be written ({e}): check its permissions"),
                    ),
                },
                Some(ErrorCode::DiskFull) => Error::Io {
                    path: store,
                    source: io::Error::new(
                        io::ErrorKind::StorageFull,
                        format!("collection {shown}: the disk is full ({e}): free space and retry"),
                    ),
                },
                Some(ErrorCode::SystemIoFailure) => Error::Io { path: store, source: io::Error::other(e) },
                // A row that does not decode is damage too: the store only holds what Lore wrote.
                _ if matches!(e, rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..)) => {
                    Error::Corrupt {
                        path: store,
                        message: format!("collection {shown} holds a row Lore cannot read ({e}): delete the directory and ingest again"),
                        source: Some(Box::new(e)),
                    }
                }
                _ => Error::Corrupt { path: store, message: format!("collection {shown}: {e}"), source: Some(Box::new(e)) },
            }
        })
    }
}

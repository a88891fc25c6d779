//! The catalog: which collections exist, where they live, and one shared handle per collection.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use lore_core::{ChunkConfig, Error, ErrorKind, Manifest, Result, Stats, Store};
use lore_index::Collection;
use lore_pg::PgCollection;
use serde::{Deserialize, Serialize};

use crate::Progress;

/// Where a collection's data lives.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreLocation {
    /// Files under `$LORE_HOME/collections/NAME` (SQLite, the HNSW graph, the BM25 index).
    #[default]
    Embedded,
    /// A PostgreSQL database with pgvector, which many Lore processes can share.
    Postgres {
        /// The primary: every write goes here.
        url: String,
        /// A read replica that searches go to, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<String>,
    },
}

impl StoreLocation {
    /// The location `store` names: `embedded`, or a `postgres://USER@HOST:PORT/DATABASE` URL
    /// with `replica` (another such URL) for searches.
    pub fn parse(store: &str, replica: Option<&str>) -> Result<StoreLocation> {
        let is_postgres = |url: &str| url.starts_with("postgres://") || url.starts_with("postgresql://");
        match (store, replica) {
            ("embedded", None) => Ok(StoreLocation::Embedded),
            (url, replica) if is_postgres(url) && replica.is_none_or(is_postgres) => {
                Ok(StoreLocation::Postgres { url: url.to_string(), replica: replica.map(str::to_string) })
            }
            (_, Some(_)) if !is_postgres(store) => Err(Error::InvalidInput(
                "a read replica needs a PostgreSQL store: --store postgres://… --read-store postgres://…".into(),
            )),
            _ => Err(Error::InvalidInput(format!(
                "{:?} is not a store: use `embedded` or postgres://USER@HOST:PORT/DATABASE (passwords from \
                 PGPASSWORD or ~/.pgpass)",
                lore_pg::redacted(if is_postgres(store) { replica.unwrap_or(store) } else { store })
            ))),
        }
    }

    /// The same location with passwords taken out: what is written to disk and shown.
    fn redacted(&self) -> StoreLocation {
        match self {
            StoreLocation::Embedded => StoreLocation::Embedded,
            StoreLocation::Postgres { url, replica } => StoreLocation::Postgres {
                url: lore_pg::redacted(url),
                replica: replica.as_deref().map(lore_pg::redacted),
            },
        }
    }
}

/// `embedded`, or the URLs without passwords.
impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.redacted() {
            StoreLocation::Embedded => f.write_str("embedded"),
            StoreLocation::Postgres { url, replica: None } => f.write_str(&url),
            StoreLocation::Postgres { url, replica: Some(replica) } => write!(f, "{url} (searches on {replica})"),
        }
    }
}

/// In the folder of a collection kept in PostgreSQL: where it is (URLs without passwords).
const POSTGRES_POINTER: &str = "postgres.json";

/// The collections under one folder (`$LORE_HOME/collections`), one subfolder each, and those
/// of the default store when it is a PostgreSQL database (which other Lore processes share).
/// A collection in PostgreSQL has a folder too, holding only where it lives.
///
/// A collection opened twice in one process is one handle: every thread and request shares
/// it, and with it the indexes it keeps in memory. Handles are dropped when nobody holds them.
pub struct Catalog {
    root: PathBuf,
    default_store: StoreLocation,
    open: Mutex<HashMap<String, Weak<dyn Store>>>,
}

/// A collection as `list` shows it: its manifest and sizes, or why it cannot be read.
#[derive(Clone, Debug, Serialize)]
pub struct CollectionSummary {
    /// The collection's name.
    pub name: String,
    /// What it was built with; absent when it cannot be opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
    /// Where it lives.
    pub store: String,
    /// Its sizes; absent when it cannot be opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    /// Why it cannot be opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Catalog {
    /// The collections under `root` (which need not exist yet), new ones made in `default_store`.
    pub fn new(root: PathBuf, default_store: StoreLocation) -> Catalog {
        Catalog { root, default_store, open: Mutex::default() }
    }

    /// Where new collections are made unless told otherwise.
    pub fn default_store(&self) -> &StoreLocation {
        &self.default_store
    }

    /// The folder of collection `name`; error if the name could reach outside the catalog.
    pub fn dir(&self, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        Ok(self.root.join(name))
    }

    /// Whether collection `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        // A handle in use answers without asking the database (servers ask on every request).
        let open =
            self.open.lock().unwrap_or_else(PoisonError::into_inner).get(name).is_some_and(|h| h.strong_count() > 0);
        open || self.location(name).is_ok_and(|location| location.is_some())
    }

    /// Where collection `name` lives; `None` if there is no such collection.
    pub fn location(&self, name: &str) -> Result<Option<StoreLocation>> {
        let dir = self.dir(name)?;
        let pointer = dir.join(POSTGRES_POINTER);
        if pointer.exists() {
            let text = fs::read_to_string(&pointer).map_err(Error::io(&pointer))?;
            let location: StoreLocation = serde_json::from_str(&text)
                .map_err(|e| Error::corrupt(&pointer, format!("not where a collection lives: {e}")))?;
            // The default store's URL may carry the password the written one leaves out.
            let location =
                if location == self.default_store.redacted() { self.default_store.clone() } else { location };
            return Ok(Some(location));
        }
        if dir.exists() {
            return Ok(Some(StoreLocation::Embedded));
        }
        match &self.default_store {
            StoreLocation::Postgres { url, .. } if PgCollection::names(url)?.iter().any(|n| n == name) => {
                Ok(Some(self.default_store.clone()))
            }
            _ => Ok(None),
        }
    }

    /// The collection `name`; [`Error::NotFound`] if there is none.
    pub fn open(&self, name: &str) -> Result<Arc<dyn Store>> {
        let dir = self.dir(name)?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = open.get(name).and_then(Weak::upgrade) {
            return Ok(store);
        }
        let store: Arc<dyn Store> = match self.location(name)? {
            None => {
                return Err(Error::NotFound(format!(
                    "no collection '{name}' in {}: create it with `lore ingest PATH -c {name}`",
                    self.place()
                )));
            }
            Some(StoreLocation::Embedded) => Arc::new(Collection::open(&dir).map_err(|e| e.in_collection(name))?),
            Some(StoreLocation::Postgres { url, replica }) => {
                Arc::new(PgCollection::open(&url, replica.as_deref(), name).map_err(|e| e.in_collection(name))?)
            }
        };
        open.insert(name.to_string(), Arc::downgrade(&store));
        Ok(store)
    }

    /// A new collection `name` in the default store for vectors of `embedder` with
    /// `dimension`, cutting documents with `chunking`; [`Error::AlreadyExists`] if there is one.
    pub fn create(
        &self,
        name: &str,
        embedder: &str,
        dimension: usize,
        chunking: ChunkConfig,
    ) -> Result<Arc<dyn Store>> {
        self.create_in(&self.default_store.clone(), name, embedder, dimension, chunking)
    }

    /// [`Catalog::create`] in `location`.
    pub fn create_in(
        &self,
        location: &StoreLocation,
        name: &str,
        embedder: &str,
        dimension: usize,
        chunking: ChunkConfig,
    ) -> Result<Arc<dyn Store>> {
        let dir = self.dir(name)?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if self.location(name)?.is_some() {
            return Err(Error::AlreadyExists(format!("collection '{name}' exists already in {}", self.place())));
        }
        let store: Arc<dyn Store> = match location {
            StoreLocation::Embedded => {
                Arc::new(Collection::create(&dir, embedder, dimension, chunking).map_err(|e| e.in_collection(name))?)
            }
            StoreLocation::Postgres { url, replica } => {
                let created = PgCollection::create(url, name, embedder, dimension, chunking)
                    .map_err(|e| e.in_collection(name))?
                    .with_replica(replica.as_deref());
                let json = serde_json::to_string_pretty(&location.redacted()).expect("locations serialize");
                let pointer = dir.join(POSTGRES_POINTER);
                fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
                fs::write(&pointer, json).map_err(Error::io(&pointer))?;
                Arc::new(created)
            }
        };
        open.insert(name.to_string(), Arc::downgrade(&store));
        Ok(store)
    }

    /// The names of the collections, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        let mut names = BTreeSet::new();
        if let StoreLocation::Postgres { url, .. } = &self.default_store {
            names.extend(PgCollection::names(url)?);
        }
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => Some(entries),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&self.root)(e)),
        };
        for entry in entries.into_iter().flatten() {
            let entry = entry.map_err(Error::io(&self.root))?;
            if entry.path().is_dir() {
                names.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Where collections are looked for, for messages.
    fn place(&self) -> String {
        match &self.default_store {
            StoreLocation::Embedded => self.root.display().to_string(),
            store => format!("{} or {store}", self.root.display()),
        }
    }

    /// Every collection with its manifest and sizes; one that cannot be opened is listed with
    /// the reason rather than failing the list.
    pub fn list(&self) -> Result<Vec<CollectionSummary>> {
        Ok(self.names()?.into_iter().map(|name| self.summary_or_error(name)).collect())
    }

    fn summary_or_error(&self, name: String) -> CollectionSummary {
        match self.summary(&name) {
            Ok(summary) => summary,
            Err(e) => {
                let store = self.location(&name).ok().flatten().unwrap_or_default().to_string();
                CollectionSummary { name, store, manifest: None, stats: None, error: Some(e.to_string()) }
            }
        }
    }

    /// One collection's manifest and sizes.
    pub fn summary(&self, name: &str) -> Result<CollectionSummary> {
        let store = self.open(name)?;
        let stats = store.stats().map_err(|e| e.in_collection(name))?;
        Ok(CollectionSummary {
            name: name.to_string(),
            store: self.location(name)?.unwrap_or_default().to_string(),
            manifest: Some(store.manifest()),
            stats: Some(stats),
            error: None,
        })
    }

    /// Copies collection `source` into a new collection `target` in `location`: the same
    /// documents, chunks, vectors and search settings, nothing embedded again. A copy that
    /// fails part way is removed, so it can be run again; `source` is only read.
    pub fn copy(&self, source: &str, target: &str, location: &StoreLocation, progress: &dyn Progress) -> Result<Stats> {
        let from = self.open(source)?;
        let manifest = from.manifest();
        let to = self.create_in(location, target, &manifest.embedder, manifest.dimension, manifest.chunking.clone())?;
        let copied = (|| {
            to.configure(manifest.search.clone())?;
            let documents = from.documents()?;
            progress.start(&format!("copying {source} to {target}"), documents.len());
            for (done, info) in documents.iter().enumerate() {
                // A document deleted since the listing is not copied.
                if let Some(stored) = from.stored_document(&info.source)? {
                    to.upsert(&stored.document, &stored.chunks, &stored.vectors)?;
                }
                progress.update(done + 1, "");
            }
            progress.finish();
            to.stats()
        })();
        if copied.is_err() {
            drop(to);
            let _ = self.delete(target);
        }
        copied.map_err(|e| e.in_collection(target))
    }

    /// Deletes collection `name` and everything in it; [`Error::NotFound`] if there is none.
    /// Handles still held elsewhere keep working on the files they have open until dropped.
    pub fn delete(&self, name: &str) -> Result<()> {
        let dir = self.dir(name)?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(location) = self.location(name)? else {
            return Err(Error::NotFound(format!(
                "no collection '{name}' in {}; `lore collections list` shows the ones there are",
                self.place()
            )));
        };
        open.remove(name);
        if let StoreLocation::Postgres { url, .. } = &location {
            // Gone already (another process deleted it): only the folder is left to remove.
            match PgCollection::delete(url, name) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.in_collection(name)),
                _ => {}
            }
        }
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&dir)(e)),
            _ => Ok(()),
        }
    }
}

/// A collection name is one plain folder name: no separators, not `.` or `..`, not hidden,
/// so that no name (typed, or sent to a server) reaches outside the catalog.
fn check_name(name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.chars().any(|c| c == '/' || c == '\\' || c.is_control())
        && Path::new(name).file_name().is_some_and(|n| n == name);
    if plain {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{name:?} is not a collection name: use letters, digits, '-', '_' and '.', not starting with '.'"
        )))
    }
}

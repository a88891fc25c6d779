//! The catalog: which collections exist, where they live, and one shared handle per collection.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use lore_core::{ChunkConfig, Error, Manifest, Result, Stats, Store};
use lore_index::Collection;
use serde::Serialize;

/// The collections under one folder (`$LORE_HOME/collections`), one subfolder each.
///
/// A collection opened twice in one process is one handle: every thread and request shares
/// it, and with it the indexes it keeps in memory. Handles are dropped when nobody holds them.
pub struct Catalog {
    root: PathBuf,
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
    /// Its sizes; absent when it cannot be opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    /// Why it cannot be opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Catalog {
    /// The collections under `root` (which need not exist yet).
    pub fn new(root: PathBuf) -> Catalog {
        Catalog { root, open: Mutex::default() }
    }

    /// The folder of collection `name`; error if the name could reach outside the catalog.
    pub fn dir(&self, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        Ok(self.root.join(name))
    }

    /// Whether collection `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.dir(name).is_ok_and(|dir| dir.exists())
    }

    /// The collection `name`; [`Error::NotFound`] if there is none.
    pub fn open(&self, name: &str) -> Result<Arc<dyn Store>> {
        let dir = self.dir(name)?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = open.get(name).and_then(Weak::upgrade) {
            return Ok(store);
        }
        if !dir.exists() {
            return Err(Error::NotFound(format!(
                "no collection '{name}' in {}: create it with `lore ingest PATH -c {name}`",
                self.root.display()
            )));
        }
        let store: Arc<dyn Store> = Arc::new(Collection::open(&dir).map_err(|e| e.in_collection(name))?);
        open.insert(name.to_string(), Arc::downgrade(&store));
        Ok(store)
    }

    /// A new collection `name` for vectors of `embedder` with `dimension`, cutting documents
    /// with `chunking`; [`Error::AlreadyExists`] if there is one.
    pub fn create(
        &self,
        name: &str,
        embedder: &str,
        dimension: usize,
        chunking: ChunkConfig,
    ) -> Result<Arc<dyn Store>> {
        let dir = self.dir(name)?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if dir.exists() {
            return Err(Error::AlreadyExists(format!("collection '{name}' exists already in {}", self.root.display())));
        }
        let store: Arc<dyn Store> =
            Arc::new(Collection::create(&dir, embedder, dimension, chunking).map_err(|e| e.in_collection(name))?);
        open.insert(name.to_string(), Arc::downgrade(&store));
        Ok(store)
    }

    /// The names of the collections, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.root)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::io(&self.root))?;
            if entry.path().is_dir() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Every collection with its manifest and sizes; one that cannot be opened is listed with
    /// the reason rather than failing the list.
    pub fn list(&self) -> Result<Vec<CollectionSummary>> {
        Ok(self.names()?.into_iter().map(|name| self.summary_or_error(name)).collect())
    }

    fn summary_or_error(&self, name: String) -> CollectionSummary {
        match self.summary(&name) {
            Ok(summary) => summary,
            Err(e) => CollectionSummary { name, manifest: None, stats: None, error: Some(e.to_string()) },
        }
    }

    /// One collection's manifest and sizes.
    pub fn summary(&self, name: &str) -> Result<CollectionSummary> {
        let store = self.open(name)?;
        let stats = store.stats().map_err(|e| e.in_collection(name))?;
        Ok(CollectionSummary {
            name: name.to_string(),
            manifest: Some(store.manifest()),
            stats: Some(stats),
            error: None,
        })
    }

    /// Deletes collection `name` and everything in it; [`Error::NotFound`] if there is none.
    /// Handles still held elsewhere keep working on the files they have open until dropped.
    pub fn delete(&self, name: &str) -> Result<()> {
        let dir = self.dir(name)?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if !dir.exists() {
            return Err(Error::NotFound(format!(
                "no collection '{name}' in {}; `lore collections list` shows the ones there are",
                self.root.display()
            )));
        }
        open.remove(name);
        fs::remove_dir_all(&dir).map_err(Error::io(&dir))
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

//! What every Lore front end shares, knowing nothing of terminals or HTTP: the [`Catalog`] of
//! collections, the [`ModelCache`], [`Settings`] resolved in one place, the filter language
//! ([`FilterSpec`]), ingesting and keeping folders in sync ([`sync`]), evaluation and arena
//! runs ([`eval`], [`arena`]), training on a collection's own data ([`tune`]) and benchmarks
//! ([`bench`]). An [`Engine`] is cheap to clone and safe to share between threads: the CLI
//! makes one per command, a server one per process.
//!
//! ```
//! use lore_engine::{Engine, Settings, SearchRequest};
//! use lore_core::{ChunkConfig, Document, ErrorKind, Section};
//!
//! let home = tempfile::tempdir()?;
//! let engine = Engine::new(Settings::at(home.path()))?;
//! assert!(engine.catalog().list()?.is_empty());
//!
//! // A collection is created for an embedder's vectors; asking for one that is not there
//! // is an error of kind NotFound, whatever its message says.
//! engine.catalog().create("notes", "toy", 3, ChunkConfig::Whole)?;
//! assert_eq!(engine.catalog().list()?[0].name, "notes");
//! let missing = engine.session(&SearchRequest { collection: Some("papers".into()), ..Default::default() }, false);
//! assert_eq!(missing.err().unwrap().kind(), ErrorKind::NotFound);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod answers;
pub mod arena;
pub mod bench;
mod catalog;
pub mod eval;
mod filter;
mod models;
mod progress;
mod session;
mod settings;
pub mod sync;
pub mod tune;

use std::path::Path;
use std::sync::Arc;

use lore_core::Result;

pub use catalog::{Catalog, CollectionSummary, StoreLocation};
pub use filter::{FilterSpec, parse_condition};
pub use models::{DEFAULT_INFERENCES_PER_MODEL, ModelCache};
pub use progress::{Progress, Quiet};
pub use session::{SearchRequest, Session};
pub use settings::{DEFAULT_COLLECTION, DEFAULT_EMBEDDER, DEFAULT_LLM, DEFAULT_PIPELINE, Settings};

/// The engine: settings, the catalog of collections and the model cache, shared by every
/// request. Clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    catalog: Catalog,
    models: ModelCache,
}

impl Engine {
    /// An engine over `settings.home`, each model running one inference at a time; error if
    /// the settings name no valid store.
    pub fn new(settings: Settings) -> Result<Engine> {
        Engine::with_inferences_per_model(settings, DEFAULT_INFERENCES_PER_MODEL)
    }

    /// An engine whose models each run at most `inferences` inferences at once.
    pub fn with_inferences_per_model(settings: Settings, inferences: usize) -> Result<Engine> {
        let catalog = Catalog::new(settings.collections_dir(), settings.store_location()?);
        let models = ModelCache::new(settings.home.clone(), inferences);
        Ok(Engine { inner: Arc::new(Inner { settings, catalog, models }) })
    }

    /// The settings it was made with.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Where models and collections live.
    pub fn home(&self) -> &Path {
        &self.inner.settings.home
    }

    /// The collections.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The loaded models.
    pub fn models(&self) -> &ModelCache {
        &self.inner.models
    }

    /// Deletes collection `name` with everything in it, and forgets its logged answers and
    /// their feedback.
    pub fn delete_collection(&self, name: &str) -> Result<()> {
        self.catalog().delete(name)?;
        answers::AnswerLog::in_home(self.home())?.forget(name)
    }
}

//! Ingesting into a collection and keeping it in step with folders: [`Engine::ingest_target`]
//! opens (or creates) the collection with its embedder, [`IngestTarget`] ingests files,
//! folders or parsed documents, removes the documents of vanished files and watches folders.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lore_core::{
    ChatModel, ChunkConfig, Embedder, Error, ErrorKind, GraphExtractor, Metadata, Result, SizeUnit, Store,
};
use lore_ingest::Discovered;
use lore_rag::{IngestReport, Source, ThemeReport};
use serde_json::{Value, json};

use crate::{Engine, Progress};

/// The chunkers a front end offers by name, each a preset of [`ChunkConfig`] sized by
/// [`ChunkSizes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunker {
    /// Lines concatenated up to a size (the classic RAG tutorial's chunker).
    Paragraph,
    /// Overlapping windows of embedder tokens.
    Tokens,
    /// One chunk per document.
    Whole,
    /// Paragraphs, then sentences, then clauses, up to a size.
    Recursive,
    /// Like recursive, never across a heading; the heading path is embedded with each chunk.
    Heading,
    /// Breaks where the meaning of neighbouring sentences changes.
    Semantic,
    /// One sentence per chunk, read with its neighbours.
    SentenceWindow,
    /// Small children searched, their parents read.
    ParentChild,
}

impl Chunker {
    /// Every chunker, in the order a front end lists them.
    pub const ALL: [Chunker; 8] = [
        Chunker::Paragraph,
        Chunker::Tokens,
        Chunker::Whole,
        Chunker::Recursive,
        Chunker::Heading,
        Chunker::Semantic,
        Chunker::SentenceWindow,
        Chunker::ParentChild,
    ];

    /// The name users give it.
    pub fn name(self) -> &'static str {
        match self {
            Chunker::Paragraph => "paragraph",
            Chunker::Tokens => "tokens",
            Chunker::Whole => "whole",
            Chunker::Recursive => "recursive",
            Chunker::Heading => "heading",
            Chunker::Semantic => "semantic",
            Chunker::SentenceWindow => "sentence-window",
            Chunker::ParentChild => "parent-child",
        }
    }

    /// One line for a user, naming the sizes it reads.
    pub fn description(self) -> &'static str {
        match self {
            Chunker::Paragraph => {
                "Lines concatenated until chunk-size characters (the classic RAG tutorial's chunker)."
            }
            Chunker::Tokens => "Windows of `window` embedder tokens overlapping by `overlap`.",
            Chunker::Whole => "One chunk per document.",
            Chunker::Recursive => {
                "Cut at paragraphs, then sentences (。！？ too), then clauses, until chunk-size characters."
            }
            Chunker::Heading => "Like recursive, never across a heading; the heading path is embedded with each chunk.",
            Chunker::Semantic => "Break where the meaning of neighbouring sentences changes (uses the embedder).",
            Chunker::SentenceWindow => {
                "One sentence per chunk; the generator reads it with 3 sentences on either side."
            }
            Chunker::ParentChild => "Children of chunk-size characters are searched; the generator reads their parent.",
        }
    }

    /// The chunker called `name`.
    pub fn named(name: &str) -> Result<Chunker> {
        Chunker::ALL.into_iter().find(|c| c.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Chunker::ALL.iter().map(|c| c.name()).collect();
            Error::InvalidInput(format!("no chunker '{name}': choose one of {}", names.join(", ")))
        })
    }

    /// The chunk settings of this chunker with `sizes`.
    pub fn config(self, sizes: &ChunkSizes) -> ChunkConfig {
        match self {
            Chunker::Paragraph => {
                ChunkConfig::ParagraphMerge { chunk_size: sizes.chunk_size, drop_remainder: sizes.drop_remainder }
            }
            Chunker::Tokens => ChunkConfig::TokenWindow { size: sizes.window, overlap: sizes.overlap },
            Chunker::Whole => ChunkConfig::Whole,
            Chunker::Recursive => {
                ChunkConfig::Recursive { chunk_size: sizes.chunk_size, overlap: 0, unit: SizeUnit::Chars }
            }
            Chunker::Heading => ChunkConfig::HeadingAware {
                chunk_size: sizes.chunk_size,
                overlap: 0,
                unit: SizeUnit::Chars,
                prefix_headings: true,
            },
            Chunker::Semantic => {
                serde_json::from_value(json!({"kind": "semantic"})).expect("the semantic chunker has defaults")
            }
            Chunker::SentenceWindow => ChunkConfig::SentenceWindow { window: 3 },
            Chunker::ParentChild => ChunkConfig::ParentChild {
                child_size: sizes.chunk_size,
                parent_size: sizes.parent_size,
                unit: SizeUnit::Chars,
            },
        }
    }
}

/// The sizes a [`Chunker`] reads (each only the ones it needs).
#[derive(Clone, Debug)]
pub struct ChunkSizes {
    /// Characters per chunk (paragraph, recursive, heading; child size for parent-child).
    pub chunk_size: usize,
    /// Parent-child: characters per parent.
    pub parent_size: usize,
    /// Paragraph: drop a trailing remainder shorter than `chunk_size`.
    pub drop_remainder: bool,
    /// Tokens: tokens per window.
    pub window: usize,
    /// Tokens: tokens shared by consecutive windows.
    pub overlap: usize,
}

impl Default for ChunkSizes {
    fn default() -> Self {
        ChunkSizes { chunk_size: 512, parent_size: 2000, drop_remainder: false, window: 256, overlap: 32 }
    }
}

/// Where to ingest; what is left out takes the engine's settings or defaults.
#[derive(Clone, Debug, Default)]
pub struct IngestRequest {
    /// The collection, created on first use.
    pub collection: Option<String>,
    /// The embedder of a new collection (an existing one must have been built with it).
    pub embedder: Option<String>,
    /// How a new collection cuts documents (an existing one must cut them so).
    pub chunking: Option<ChunkConfig>,
}

/// A collection opened for ingesting, with the embedder and chunking it was built with.
pub struct IngestTarget {
    /// The collection's name.
    pub name: String,
    /// The collection.
    pub store: Arc<dyn Store>,
    /// The embedder it was built with.
    pub embedder: Arc<dyn Embedder>,
    /// How it cuts documents.
    pub chunking: ChunkConfig,
    /// Set on every document ingested, over its parsed metadata: [`lore_core::GROUPS_FIELD`]
    /// to say who may read it, say. Empty unless the caller sets it.
    pub metadata: Metadata,
    /// The chat model that reads the entities of new chunks, for a collection whose graph
    /// extractor is `llm` (`graph.model`, else the default chat model); `None` otherwise.
    pub entity_model: Option<Arc<dyn ChatModel>>,
}

/// What one ingest (or one sync of watched folders) did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// What was added, replaced, left unchanged and why files failed.
    pub report: IngestReport,
    /// Files in formats Lore does not read.
    pub skipped: Vec<String>,
    /// Documents removed because their file is gone.
    pub removed: Vec<String>,
    /// How long it took.
    pub seconds: f64,
}

impl Summary {
    /// Files ingested or found unchanged.
    pub fn succeeded(&self) -> usize {
        self.report.added + self.report.replaced + self.report.unchanged
    }

    /// Chunks embedded per second.
    pub fn chunks_per_second(&self) -> f64 {
        self.report.chunks as f64 / self.seconds.max(1e-9)
    }

    /// The summary as the CLI's `--json` and the HTTP API give it.
    pub fn to_json(&self, collection: &str) -> Value {
        let report = &self.report;
        json!({
            "collection": collection,
            "files": {
                "succeeded": self.succeeded(),
                "skipped": self.skipped.len(),
                "failed": report.failed.len(),
                "removed": self.removed.len(),
            },
            "added": report.added,
            "replaced": report.replaced,
            "unchanged": report.unchanged,
            "chunks": report.chunks,
            "entities_read": report.entities_read,
            "failed": report.failed.iter().map(|(path, reason)| json!({"path": path, "reason": reason})).collect::<Vec<_>>(),
            "skipped": self.skipped,
            "removed": self.removed,
            "seconds": self.seconds,
            "chunks_per_second": self.chunks_per_second(),
        })
    }
}

/// One line of counts and rates, then a line per failed, skipped and removed file.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = &self.report;
        write!(
            f,
            "{} files ingested ({} added, {} replaced, {} unchanged), {} failed, {} skipped, {} removed; \
             {} chunks in {:.1} s ({:.1} chunks/s)",
            self.succeeded(),
            report.added,
            report.replaced,
            report.unchanged,
            report.failed.len(),
            self.skipped.len(),
            self.removed.len(),
            report.chunks,
            self.seconds,
            self.chunks_per_second()
        )?;
        if report.entities_read > 0 {
            write!(f, "; {} chunks read for the graph", report.entities_read)?;
        }
        for (path, reason) in &report.failed {
            write!(f, "\n  failed: {path}: {reason}")?;
        }
        for path in &self.skipped {
            write!(f, "\n  skipped (format not read): {path}")?;
        }
        for source in &self.removed {
            write!(f, "\n  removed (file gone): {source}")?;
        }
        Ok(())
    }
}

impl Engine {
    /// The collection `request` names, with its embedder: opened if it exists (error if it
    /// was built with another embedder or chunking than asked), else created. The embedder is
    /// loaded first, so a missing model leaves no empty collection behind.
    pub fn ingest_target(&self, request: &IngestRequest) -> Result<IngestTarget> {
        let name = self.settings().collection_or(request.collection.as_deref());
        let existing = match self.catalog().open(&name) {
            Ok(store) => Some(store),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let (store, embedder) = match existing {
            Some(store) => self.existing_target(&name, store, request)?,
            None => {
                let embedder_name = self.settings().embedder_or(request.embedder.as_deref());
                let embedder = self.models().embedder(&embedder_name)?;
                let chunking = request.chunking.clone().unwrap_or_default();
                match self.catalog().create(&name, &embedder_name, embedder.dimension(), chunking) {
                    Ok(store) => (store, embedder),
                    // Another process (an ingest beside this one, on a shared database) made it
                    // meanwhile: ingest into theirs if it is built as asked.
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        self.existing_target(&name, self.catalog().open(&name)?, request)?
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let chunking = store.manifest().chunking;
        let entity_model = self.entity_model(store.as_ref())?;
        Ok(IngestTarget { name, store, embedder, chunking, metadata: Metadata::new(), entity_model })
    }

    /// The chat model that reads entities for `store`'s graph, when its extractor is `llm`.
    fn entity_model(&self, store: &dyn Store) -> Result<Option<Arc<dyn ChatModel>>> {
        let graph = store.manifest().search.graph;
        if graph.extractor != GraphExtractor::Llm {
            return Ok(None);
        }
        Ok(Some(self.models().chat(&self.settings().llm_or(&[graph.model.as_deref()]))?))
    }

    /// Has the chat model read the entities and relations of every stored chunk of collection
    /// `name` that has none yet, for a graph whose extractor is `llm`: document by document,
    /// each rewritten as one unit with its vectors as they were. A stopped run loses at most
    /// the document it was reading; run it again to go on. Returns the chunks read.
    pub fn extract_graph(&self, name: &str, progress: &dyn Progress) -> Result<usize> {
        let store = self.catalog().open(name)?;
        let model = self.entity_model(store.as_ref())?.ok_or_else(|| {
            Error::InvalidInput(format!(
                "collection '{name}' does not read its graph with a chat model: `lore collections set {name} graph.extractor=llm`"
            ))
        })?;
        let documents = store.documents()?;
        progress.start(&format!("reading entities with {}", model.id()), documents.len());
        let started = Instant::now();
        let mut read = 0;
        for (done, info) in documents.iter().enumerate() {
            if let Some(stored) = store.stored_document(&info.source)? {
                let mut chunks = stored.chunks.clone();
                // The chunks read before carry what was read: only the others are read now.
                let newly = lore_rag::extract_entities(model.as_ref(), &stored.document, &mut chunks, &[])
                    .map_err(|e| e.in_collection(name))?;
                // An ingest beside this one may have replaced the document while the model
                // read it: what was read is then of an older version, and the newer one stays.
                let unchanged = store.document_hash(&info.source)?.as_deref() == Some(&stored.document.content_hash);
                if newly > 0 && unchanged {
                    store.upsert(&stored.document, &chunks, &stored.vectors)?;
                    read += newly;
                }
            }
            let rate = read as f64 / started.elapsed().as_secs_f64().max(1e-9);
            progress.update(done + 1, &format!("documents, {read} chunks read ({rate:.2}/s)"));
        }
        progress.finish();
        Ok(read)
    }

    /// Groups the chunks of collection `name` into themes and has the chat model `llm` (default:
    /// the default LLM) summarise each new or changed one into a `lore:theme/N` document, and
    /// many themes into themes of themes (see [`lore_rag::build_themes`]). Run again after
    /// ingesting: only the themes that gained or lost members are summarised again.
    pub fn build_themes(&self, name: &str, llm: Option<&str>, progress: &dyn Progress) -> Result<ThemeReport> {
        let store = self.catalog().open(name)?;
        let embedder = self.models().embedder(&store.manifest().embedder)?;
        let model = self.models().chat(&self.settings().llm_or(&[llm]))?;
        // One bar per level that has themes to summarise.
        let mut shown = None;
        let report =
            lore_rag::build_themes(store.as_ref(), embedder.as_ref(), model.as_ref(), &mut |level, done, total| {
                if total == 0 {
                    return;
                }
                if shown != Some(level) {
                    if shown.is_some() {
                        progress.finish();
                    }
                    progress.start(&format!("summarising level-{level} themes with {}", model.id()), total);
                    shown = Some(level);
                }
                progress.update(done, "themes");
            })
            .map_err(|e| e.in_collection(name))?;
        if shown.is_some() {
            progress.finish();
        }
        Ok(report)
    }

    /// An existing collection with its embedder; error if it was built with another embedder
    /// or chunking than `request` asks for.
    fn existing_target(
        &self,
        name: &str,
        store: Arc<dyn Store>,
        request: &IngestRequest,
    ) -> Result<(Arc<dyn Store>, Arc<dyn Embedder>)> {
        let requested = request.embedder.clone().or_else(|| self.settings().embedder.clone());
        let manifest = store.manifest();
        if let Some(chunking) = request.chunking.as_ref().filter(|c| **c != manifest.chunking) {
            return Err(Error::InvalidInput(format!(
                "collection '{name}' cuts documents with {:?}, not {chunking:?}; ingest into a new collection to change chunking",
                manifest.chunking
            )));
        }
        if let Some(requested) = requested.filter(|r| *r != manifest.embedder) {
            return Err(Error::InvalidInput(format!(
                "collection '{name}' was built with embedder {}, not {requested}: choose another collection name",
                manifest.embedder
            )));
        }
        let embedder = self.models().embedder(&manifest.embedder)?;
        Ok((store, embedder))
    }
}

impl IngestTarget {
    /// A target over a collection and embedder the caller holds (a temporary collection, say).
    pub fn new(name: &str, store: Arc<dyn Store>, embedder: Arc<dyn Embedder>) -> IngestTarget {
        let chunking = store.manifest().chunking;
        IngestTarget {
            name: name.to_string(),
            store,
            embedder,
            chunking,
            metadata: Metadata::new(),
            entity_model: None,
        }
    }

    /// Ingests `sources`; one that fails is reported and the others go on.
    pub fn ingest(&self, sources: Vec<Source>, progress: &dyn Progress) -> Result<IngestReport> {
        progress.start(&format!("ingesting into {}", self.name), sources.len());
        let started = Instant::now();
        let report = lore_rag::ingest(
            self.store.as_ref(),
            self.embedder.as_ref(),
            self.entity_model.as_deref(),
            &self.chunking,
            &self.metadata,
            sources,
            &mut |p| {
                let rate = p.chunks_embedded as f64 / started.elapsed().as_secs_f64().max(1e-9);
                progress.update(p.sources_done, &format!("files, {} chunks ({rate:.1}/s)", p.chunks_embedded));
            },
        );
        progress.finish();
        report.map_err(|e| e.in_collection(&self.name))
    }

    /// Ingests the files and folders `paths`; with `sync`, also removes the documents of files
    /// gone from them (documents from other paths stay).
    pub fn ingest_paths(&self, paths: &[PathBuf], sync: bool, progress: &dyn Progress) -> Result<Summary> {
        self.ingest_found(paths, lore_ingest::discover(paths), None, sync, progress)
    }

    /// Ingests each of `paths` as a BEIR `corpus.jsonl` (one document per record).
    pub fn ingest_beir(&self, paths: &[PathBuf], progress: &dyn Progress) -> Result<Summary> {
        let mut sources = Vec::new();
        for path in paths {
            sources.extend(lore_ingest::read_beir_corpus(path)?.into_iter().map(Source::Document));
        }
        let started = Instant::now();
        let report = self.ingest(sources, progress)?;
        Ok(Summary { report, seconds: started.elapsed().as_secs_f64(), ..Summary::default() })
    }

    /// Ingests the files `found` under `roots` (only those in `only`, when given), then, when
    /// `sync`, removes the documents of files gone from the roots. For a caller that has
    /// already looked at the folders (see `lore_ingest::discover`).
    pub fn ingest_found(
        &self,
        roots: &[PathBuf],
        found: Discovered,
        only: Option<&HashSet<PathBuf>>,
        sync: bool,
        progress: &dyn Progress,
    ) -> Result<Summary> {
        let started = Instant::now();
        let sources = found
            .files
            .iter()
            .filter(|path| only.is_none_or(|only| only.contains(*path)))
            .map(|path| Source::File(path.clone()))
            .collect();
        let mut report = self.ingest(sources, progress)?;
        let unreadable = found.errors.iter().map(|(path, e)| (path.display().to_string(), e.clone()));
        report.failed.splice(0..0, unreadable);
        let removed = if sync { lore_rag::remove_vanished(self.store.as_ref(), roots, &found)? } else { Vec::new() };
        let skipped = found.skipped.iter().map(|path| path.display().to_string()).collect();
        Ok(Summary { report, skipped, removed, seconds: started.elapsed().as_secs_f64() })
    }

    /// Syncs the folders `roots`, then looks at them every `interval` and syncs what changed,
    /// handing each sync's summary to `on_sync`; returns only with an error (one from
    /// `on_sync` too, which is how a caller stops it: [`Error::Cancelled`], say).
    /// A process that is killed instead loses nothing either (see below).
    ///
    /// Polling modification times and sizes rather than subscribing to file events (inotify):
    /// it works the same on network and FUSE mounts, where document folders often live and
    /// events are not delivered, needs no watch per folder (inotify's per-user limit), and a
    /// look at a folder of thousands of files costs milliseconds. A change is synced once two
    /// looks in a row agree, so a folder being copied is synced once, when the copy ends.
    ///
    /// Stopping is safe at any moment: each document is written as one unit, so the collection
    /// holds every document wholly old or wholly new, and the next sync finishes the rest.
    pub fn watch(
        &self,
        roots: &[PathBuf],
        interval: Duration,
        progress: &dyn Progress,
        on_sync: &mut dyn FnMut(&Summary) -> Result<()>,
    ) -> Result<Infallible> {
        if interval.is_zero() {
            return Err(Error::InvalidInput("the watch interval must be longer than zero".into()));
        }
        let found = lore_ingest::discover(roots);
        let mut seen = stamps(&found);
        on_sync(&self.ingest_found(roots, found, None, true, progress)?)?;
        loop {
            std::thread::sleep(interval);
            let mut found = lore_ingest::discover(roots);
            let mut now = stamps(&found);
            if now == seen {
                continue;
            }
            // Wait until the folders stop changing.
            loop {
                std::thread::sleep(interval);
                let again = lore_ingest::discover(roots);
                let later = stamps(&again);
                if later == now {
                    break;
                }
                (found, now) = (again, later);
            }
            let changed: HashSet<PathBuf> = now
                .iter()
                .filter(|(path, stamp)| seen.get(*path) != Some(*stamp))
                .map(|(path, _)| path.clone())
                .collect();
            on_sync(&self.ingest_found(roots, found, Some(&changed), true, progress)?)?;
            seen = now;
        }
    }
}

/// When and how large each file was at a look at the folders.
type Stamps = HashMap<PathBuf, (Option<SystemTime>, u64)>;

fn stamps(found: &Discovered) -> Stamps {
    found
        .files
        .iter()
        .map(|path| {
            let meta = fs::metadata(path).ok();
            (path.clone(), meta.as_ref().map_or((None, 0), |m| (m.modified().ok(), m.len())))
        })
        .collect()
}

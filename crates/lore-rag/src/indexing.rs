use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::thread;

use lore_core::{
    ChatModel, Chunk, ChunkConfig, Document, EmbedKind, Embedder, Error, Fnv1a, GraphExtractor, Metadata, Result,
    Store, UpsertOutcome,
};
use lore_graph::{ENTITIES_FIELD, Extraction, RELATIONS_FIELD};
use lore_ingest::Discovered;

/// How many chunks are embedded together: large enough to batch well, small enough that a
/// progress bar moves and an interruption loses little.
const EMBED_BATCH: usize = 64;

/// Something to ingest: a file to parse, or a document already in memory.
pub enum Source {
    /// A file, parsed by its format.
    File(PathBuf),
    /// A document already parsed (a dataset's record, an upload).
    Document(Document),
}

/// Progress of an ingest, reported after each source.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Sources stored, found unchanged or failed.
    pub sources_done: usize,
    /// Sources in this ingest.
    pub sources_total: usize,
    /// Chunks embedded and stored so far.
    pub chunks_embedded: usize,
}

/// What an ingest did, source by source.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct IngestReport {
    /// Documents new to the collection.
    pub added: usize,
    /// Documents that replaced an older version of themselves.
    pub replaced: usize,
    /// Documents whose content hash was already in the collection: nothing was embedded.
    pub unchanged: usize,
    /// Sources that could not be ingested, with the reason, by name; the others were ingested anyway.
    pub failed: Vec<(String, String)>,
    /// Chunks embedded and stored.
    pub chunks: usize,
    /// Chunks whose entities the chat model read for the collection's graph (`llm` extractor);
    /// chunks whose text was read before keep what was read then and are not counted.
    pub entities_read: usize,
}

/// A source after the parallel stage: chunked and ready to embed, unchanged, or failed.
enum Prepared {
    Chunked(Document, Vec<Chunk>),
    Unchanged,
    Failed(String, String),
}

/// Parses, chunks, embeds and stores `sources` into `collection`. One source failing is
/// recorded in the report and does not stop the others; each document is stored in its own
/// transaction, so an interruption leaves every document either fully old or fully new.
///
/// Parsing and chunking run on one thread per core while this thread embeds and stores, with
/// only a few documents per thread waiting at any time, so memory stays bounded however large
/// the folder. Documents therefore reach the collection in no fixed order. A document whose
/// content hash is already stored for its source is not chunked or embedded again.
///
/// `metadata` is set on every document over what its parser found (the groups that may read
/// it, say); it counts in the document's content hash, so ingesting an unchanged file with new
/// metadata replaces it.
///
/// `entity_model` reads the entities and relations of each new chunk when the collection's
/// graph extractor is `llm` ([`extract_entities`]); without one, such chunks are linked by
/// the names found without a model.
#[allow(clippy::too_many_arguments)]
pub fn ingest(
    collection: &dyn Store,
    embedder: &dyn Embedder,
    entity_model: Option<&dyn ChatModel>,
    chunking: &ChunkConfig,
    metadata: &Metadata,
    sources: Vec<Source>,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<IngestReport> {
    collection.check_embedder(embedder.id(), embedder.dimension())?;
    let stored: HashMap<String, String> =
        collection.documents()?.into_iter().map(|doc| (doc.source, doc.content_hash)).collect();
    let mut report = IngestReport::default();
    let mut progress = Progress { sources_total: sources.len(), ..Progress::default() };
    let workers = thread::available_parallelism().map_or(1, usize::from).min(sources.len()).max(1);
    let queue = Mutex::new(sources.into_iter());
    thread::scope(|scope| {
        // A bounded channel: workers wait when the embedder falls behind instead of parsing
        // the whole folder into memory.
        let (sender, receiver) = mpsc::sync_channel(workers);
        for _ in 0..workers {
            let (sender, queue, stored) = (sender.clone(), &queue, &stored);
            scope.spawn(move || {
                loop {
                    let Some(source) = queue.lock().expect("no worker panics holding the queue").next() else {
                        break;
                    };
                    // A closed channel means the storing side stopped on an error.
                    if sender.send(prepare(source, stored, chunking, metadata, embedder)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut pending: Vec<(Document, Vec<Chunk>)> = Vec::new();
        let mut pending_chunks = 0;
        let mut received = receiver.into_iter().peekable();
        while let Some(prepared) = received.next() {
            match prepared {
                Prepared::Chunked(doc, chunks) => {
                    pending_chunks += chunks.len();
                    pending.push((doc, chunks));
                }
                Prepared::Unchanged => {
                    report.unchanged += 1;
                    progress.sources_done += 1;
                }
                Prepared::Failed(name, reason) => {
                    report.failed.push((name, reason));
                    progress.sources_done += 1;
                }
            }
            // `peek` blocks until the next source is ready or every worker is done.
            if pending_chunks >= EMBED_BATCH || (!pending.is_empty() && received.peek().is_none()) {
                let mut docs = std::mem::take(&mut pending);
                pending_chunks = 0;
                if let Some(model) = entity_model.filter(|_| extracts_entities(collection)) {
                    // Reading entities takes seconds a chunk: the bar moves with each document.
                    for (doc, chunks) in &mut docs {
                        let stored = collection.stored_document(&doc.source)?;
                        let read_before = stored.as_ref().map_or(&[][..], |stored| &stored.chunks);
                        report.entities_read += extract_entities(model, doc, chunks, read_before)?;
                        progress.sources_done += 1;
                        on_progress(progress);
                    }
                } else {
                    progress.sources_done += docs.len();
                }
                store_batch(collection, embedder, docs, &mut report)?;
                progress.chunks_embedded = report.chunks;
            }
            on_progress(progress);
        }
        Ok::<_, Error>(())
    })?;
    report.failed.sort();
    Ok(report)
}

fn prepare(
    source: Source,
    stored: &HashMap<String, String>,
    chunking: &ChunkConfig,
    metadata: &Metadata,
    embedder: &dyn Embedder,
) -> Prepared {
    let (name, parsed) = match source {
        Source::File(path) => (path.display().to_string(), lore_ingest::parse(&path)),
        Source::Document(doc) => (doc.source.clone(), Ok(doc)),
    };
    let chunked = parsed.and_then(|mut doc| {
        if !metadata.is_empty() {
            let mut hash = Fnv1a::new();
            hash.write(doc.content_hash.as_bytes());
            hash.write(serde_json::to_string(metadata).unwrap_or_default().as_bytes());
            doc.content_hash = format!("{:016x}", hash.finish());
            doc.metadata.extend(metadata.clone());
        }
        if stored.get(&doc.source) == Some(&doc.content_hash) {
            return Ok(None);
        }
        let chunks = lore_ingest::chunk(&doc, chunking, Some(embedder))?;
        if chunks.is_empty() {
            // An empty result is almost always a problem (an empty file, a scan without
            // text): say so rather than store a document nobody can find.
            return Err(Error::Parse { path: doc.source, reason: "no text to index".into() });
        }
        Ok(Some((doc, chunks)))
    });
    match chunked {
        Ok(Some((doc, chunks))) => Prepared::Chunked(doc, chunks),
        Ok(None) => Prepared::Unchanged,
        // The report pairs the name with the reason: the error's own mention of the path would repeat it.
        Err(Error::Parse { path, reason }) if path == name => Prepared::Failed(name, reason),
        Err(e) => {
            let reason = e.to_string();
            let reason = reason.strip_prefix(&format!("{name}: ")).map_or(reason.clone(), str::to_string);
            Prepared::Failed(name, reason)
        }
    }
}

/// The collection's graph is read by a chat model, as this handle knows its settings.
fn extracts_entities(collection: &dyn Store) -> bool {
    collection.manifest().search.graph.extractor == GraphExtractor::Llm
}

/// Has `model` read the entities and relations of `chunks` (of `doc`) into their metadata, for
/// the collection's graph ([`lore_graph::extract_with_model`]). A chunk already read keeps what
/// it holds, and one whose text a chunk of `read_before` (the stored version of the document)
/// has, read, takes what was read then: changing one paragraph of a document costs the model
/// one chunk. Returns how many chunks the model read.
pub fn extract_entities(
    model: &dyn ChatModel,
    doc: &Document,
    chunks: &mut [Chunk],
    read_before: &[Chunk],
) -> Result<usize> {
    let known: HashMap<&str, &Metadata> = read_before
        .iter()
        .filter(|chunk| Extraction::is_in(&chunk.metadata))
        .map(|chunk| (chunk.text.as_str(), &chunk.metadata))
        .collect();
    let mut read = 0;
    for chunk in chunks.iter_mut().filter(|chunk| !Extraction::is_in(&chunk.metadata)) {
        match known.get(chunk.text.as_str()) {
            Some(metadata) => {
                for field in [ENTITIES_FIELD, RELATIONS_FIELD] {
                    if let Some(value) = metadata.get(field) {
                        chunk.metadata.insert(field.into(), value.clone());
                    }
                }
            }
            None => {
                lore_graph::extract_with_model(model, doc.title.as_deref(), &chunk.text)?.write_to(&mut chunk.metadata);
                read += 1;
            }
        }
    }
    Ok(read)
}

fn store_batch(
    collection: &dyn Store,
    embedder: &dyn Embedder,
    docs: Vec<(Document, Vec<Chunk>)>,
    report: &mut IngestReport,
) -> Result<()> {
    let texts: Vec<&str> = docs.iter().flat_map(|(_, chunks)| chunks.iter().map(|c| c.text.as_str())).collect();
    let vectors = if texts.is_empty() { Vec::new() } else { embedder.embed(&texts, EmbedKind::Passage)? };
    let mut offset = 0;
    for (doc, chunks) in &docs {
        let mine = &vectors[offset..offset + chunks.len()];
        offset += chunks.len();
        match collection.upsert(doc, chunks, mine)? {
            UpsertOutcome::Added => report.added += 1,
            UpsertOutcome::Replaced => report.replaced += 1,
        }
        report.chunks += chunks.len();
    }
    Ok(())
}

/// Deletes the documents of files that are gone from the folders (or files) in `roots`:
/// those whose source lies under a root but that `found` (the discovery of those roots) no
/// longer lists. Documents from elsewhere are never touched, and neither are documents under a
/// path that could not be read (a missing root, an unreadable folder): a folder that is
/// unmounted or mistyped must not empty the collection. Returns the deleted sources, sorted.
///
/// Sources are matched as written, so give the roots the way they were given when the files
/// were ingested (`docs` and `./docs` are different sources).
pub fn remove_vanished(collection: &dyn Store, roots: &[PathBuf], found: &Discovered) -> Result<Vec<String>> {
    let present: HashSet<&Path> = found.files.iter().map(PathBuf::as_path).collect();
    let unreadable: Vec<&Path> = found.errors.iter().map(|(path, _)| path.as_path()).collect();
    let mut removed = Vec::new();
    for doc in collection.documents()? {
        let path = Path::new(&doc.source);
        let vanished = roots.iter().any(|root| path.starts_with(root))
            && !present.contains(path)
            && !unreadable.iter().any(|bad| path.starts_with(bad));
        if vanished && collection.delete_document(&doc.source)? {
            removed.push(doc.source);
        }
    }
    Ok(removed)
}

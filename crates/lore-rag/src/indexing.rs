use std::path::PathBuf;

use lore_core::{Chunk, ChunkConfig, Document, EmbedKind, Embedder, Error, Result};
use lore_index::{Collection, UpsertOutcome};

/// How many chunks are embedded together: large enough to batch well, small enough that a
/// progress bar moves and an interruption loses little.
const EMBED_BATCH: usize = 64;

/// Something to ingest: a file to parse, or a document already in memory.
pub enum Source {
    File(PathBuf),
    Document(Document),
}

/// Progress of an ingest, reported after each batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub sources_done: usize,
    pub sources_total: usize,
    pub chunks_embedded: usize,
}

/// What an ingest did, source by source.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct IngestReport {
    pub added: usize,
    pub replaced: usize,
    /// Documents whose content hash was already in the collection: nothing was embedded.
    pub unchanged: usize,
    /// Sources that could not be ingested, with the reason; the others were ingested anyway.
    pub failed: Vec<(String, String)>,
    pub chunks: usize,
}

/// Parses, chunks, embeds and stores `sources` into `collection`. One source failing is
/// recorded in the report and does not stop the others; each document is stored in its own
/// transaction, so an interruption leaves every document either fully old or fully new.
pub fn ingest(
    collection: &mut Collection,
    embedder: &dyn Embedder,
    chunking: &ChunkConfig,
    sources: Vec<Source>,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<IngestReport> {
    collection.check_embedder(embedder.id(), embedder.dimension())?;
    let mut report = IngestReport::default();
    let mut progress = Progress { sources_total: sources.len(), ..Progress::default() };
    let mut pending: Vec<(Document, Vec<Chunk>)> = Vec::new();
    let mut pending_chunks = 0;
    let mut sources = sources.into_iter().peekable();
    while let Some(source) = sources.next() {
        let (name, parsed) = match source {
            Source::File(path) => (path.display().to_string(), lore_ingest::parse(&path)),
            Source::Document(doc) => (doc.source.clone(), Ok(doc)),
        };
        let prepared = parsed.and_then(|doc| {
            if collection.document_hash(&doc.source)?.as_deref() == Some(doc.content_hash.as_str()) {
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
        match prepared {
            Ok(Some((doc, chunks))) => {
                pending_chunks += chunks.len();
                pending.push((doc, chunks));
            }
            Ok(None) => {
                report.unchanged += 1;
                progress.sources_done += 1;
            }
            Err(e) => {
                report.failed.push((name, e.to_string()));
                progress.sources_done += 1;
            }
        }
        if pending_chunks >= EMBED_BATCH || sources.peek().is_none() {
            let docs = std::mem::take(&mut pending);
            pending_chunks = 0;
            progress.sources_done += docs.len();
            store_batch(collection, embedder, docs, &mut report)?;
            progress.chunks_embedded = report.chunks;
            on_progress(progress);
        }
    }
    Ok(report)
}

fn store_batch(
    collection: &mut Collection,
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

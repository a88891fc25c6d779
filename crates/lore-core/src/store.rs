//! What a collection must do, whatever keeps it: the [`Store`] trait and the records it returns.

use serde::{Deserialize, Serialize};

use crate::{Chunk, ChunkConfig, Document, Error, Filter, Hit, Metadata, Result, SearchSettings};

/// What a collection was built with. Its vectors are only comparable with vectors from the
/// same embedder, and its chunks were cut with `chunking`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The on-disk (or in-database) format the collection was written in.
    pub format_version: u32,
    /// The embedder's id ([`crate::Embedder::id`]).
    pub embedder: String,
    /// The length of every vector.
    pub dimension: usize,
    /// How documents are cut into chunks.
    pub chunking: ChunkConfig,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC: the last write seen by this handle.
    pub updated_at: String,
    /// How the keyword and dense indexes are built and searched (see [`Store::configure`]).
    #[serde(default)]
    pub search: SearchSettings,
}

/// What [`Store::upsert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpsertOutcome {
    /// The document is new.
    Added,
    /// A document with the same source was there; its chunks are gone.
    Replaced,
}

/// A stored document, without its chunks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocumentInfo {
    /// Where it came from; unique within the collection.
    pub source: String,
    /// Its title, when the parser found one.
    pub title: Option<String>,
    /// [`Document::content_hash`] of what was stored.
    pub content_hash: String,
    /// How many chunks it was cut into.
    pub chunks: usize,
    /// RFC 3339, UTC.
    pub ingested_at: String,
    /// The document's metadata.
    pub metadata: Metadata,
}

/// A document as a collection keeps it: what [`Store::upsert`] was given, sections aside
/// (the store keeps chunks, not sections). What moves a collection to another store without
/// embedding it again.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredDocument {
    /// The document: source, title, content hash and metadata; no sections.
    pub document: Document,
    /// Its chunks, by ordinal, with their own metadata.
    pub chunks: Vec<Chunk>,
    /// `vectors[i]` embeds `chunks[i]` (unit length).
    pub vectors: Vec<Vec<f32>>,
}

/// Sizes of a collection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Documents stored.
    pub documents: usize,
    /// Chunks stored, each with one vector.
    pub chunks: usize,
    /// The length of every vector.
    pub dimension: usize,
    /// What the collection takes in storage.
    pub bytes_on_disk: u64,
}

/// A collection: documents, their chunks with one vector each, searched by vector and by
/// keywords under metadata filters. The embedded SQLite collection (`lore-index`) is one
/// implementation; everything above storage (ingest, the pipeline, the retrievers, the front
/// ends) sees only this trait.
///
/// What every implementation guarantees:
/// - `Send + Sync`: one handle serves many threads; searches run side by side, writes one at a
///   time, and a search never sees half a document (each upsert or delete is one unit).
/// - Writes committed through another handle, in this process or another, are seen by the next
///   search without reopening.
/// - Filters apply inside each search, so `k` hits come back whenever `k` chunks match.
/// - Scores: cosine similarity for [`Store::search`], BM25 for [`Store::search_keyword`]; best
///   first, equal scores by ascending chunk id. `Hit::metadata` is the document's metadata
///   overlaid by the chunk's, plus `source`, `ordinal` and, when the document has one, `title`.
/// - Chunk ids are never reused: an id cited once never comes to mean another text.
pub trait Store: Send + Sync {
    /// What the collection was built with and how it is searched, as this handle knows it.
    fn manifest(&self) -> Manifest;

    /// The content hash stored for `source`, if that document is in the collection.
    fn document_hash(&self, source: &str) -> Result<Option<String>>;

    /// Every document, by source.
    fn documents(&self) -> Result<Vec<DocumentInfo>>;

    /// Counts and size.
    fn stats(&self) -> Result<Stats>;

    /// One chunk by id, as a hit with score 0 and the metadata a search hit would have.
    fn chunk(&self, chunk_id: i64) -> Result<Option<Hit>>;

    /// The stored (unit-length) vectors of chunks, in the order of `chunk_ids`; `None` for an id
    /// with no chunk. For comparing hits with each other (diversity) without embedding again.
    fn vectors(&self, chunk_ids: &[i64]) -> Result<Vec<Option<Vec<f32>>>>;

    /// The `k` chunks whose vectors are most similar (cosine) to `query`, only chunks passing
    /// `filter` when given.
    fn search(&self, query: &[f32], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>>;

    /// The `k` chunks that best match the words of `query` by BM25, only chunks passing `filter`
    /// when given. Any text is a valid query: operators and quotes are just text.
    fn search_keyword(&self, query: &str, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>>;

    /// Document `source` with its chunks and vectors as stored; `None` if it is not there.
    fn stored_document(&self, source: &str) -> Result<Option<StoredDocument>>;

    /// Inserts `doc` with its chunks and their vectors (`vectors[i]` embeds `chunks[i]`), or
    /// replaces the document with the same source, as one unit.
    fn upsert(&self, doc: &Document, chunks: &[Chunk], vectors: &[Vec<f32>]) -> Result<UpsertOutcome>;

    /// Removes a document and its chunks as one unit; false if there was no document from `source`.
    fn delete_document(&self, source: &str) -> Result<bool>;

    /// Changes how the collection is indexed and searched, and keeps the change.
    fn configure(&self, settings: SearchSettings) -> Result<()>;

    /// Error unless vectors from `embedder` with `dimension` are comparable with the stored ones.
    fn check_embedder(&self, embedder: &str, dimension: usize) -> Result<()> {
        let built = self.manifest();
        if built.embedder == embedder && built.dimension == dimension {
            return Ok(());
        }
        Err(Error::InvalidInput(format!(
            "the collection was built with embedder '{}' ({} dimensions), not '{embedder}' \
             ({dimension} dimensions): use '{}' with it, or ingest into a new collection",
            built.embedder, built.dimension, built.embedder
        )))
    }
}

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
    /// Entities in its graph (0 when it keeps none).
    #[serde(default)]
    pub entities: usize,
    /// Links between those entities and chunks.
    #[serde(default)]
    pub links: usize,
}

/// An entity of a collection's graph: a name some chunks mention or some document is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Its id in this collection; it lasts while some chunk links to it.
    pub id: i64,
    /// Its key: the name as `lore_graph::entity_key` writes it (lower case, aliases merged).
    pub name: String,
    /// How many chunks link to it: the rarer, the more a link through it says.
    pub chunks: usize,
}

/// A chunk's link to an entity of the graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The entity.
    pub entity: Entity,
    /// The chunk.
    pub chunk_id: i64,
    /// The chunk belongs to a document about the entity (titled by it), rather than naming it.
    pub about: bool,
}

/// Which links [`Store::links`] returns.
#[derive(Clone, Copy, Debug)]
pub enum LinkQuery<'a> {
    /// The links of these entities (by id) to every chunk.
    Entities(&'a [i64]),
    /// The links of these chunks (by id) to every entity.
    Chunks(&'a [i64]),
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

    /// Changes how the collection is indexed and searched, and keeps the change. Turning the
    /// graph on ([`crate::GraphSettings`]) extracts the entities of every stored chunk.
    fn configure(&self, settings: SearchSettings) -> Result<()>;

    /// The entities of the collection's graph whose keys are among `keys`. An error when the
    /// collection keeps no graph.
    fn entities(&self, keys: &[String]) -> Result<Vec<Entity>>;

    /// Links of the collection's graph, by entity or by chunk, each with its entity. An error
    /// when the collection keeps no graph.
    fn links(&self, query: LinkQuery<'_>) -> Result<Vec<Link>>;

    /// Error unless the collection keeps a graph of entities.
    fn check_graph(&self) -> Result<()> {
        if self.manifest().search.graph.extractor != crate::GraphExtractor::Off {
            return Ok(());
        }
        Err(Error::InvalidInput(
            "this collection keeps no entity graph, which graph retrieval walks: turn it on with \
             `lore collections set NAME graph.extractor=names` (extracts from every stored chunk)"
                .into(),
        ))
    }

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

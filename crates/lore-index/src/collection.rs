//! A collection: one directory holding the chunk store and the dense index of its vectors.

use std::cell::{RefCell, RefMut};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use lore_core::{Chunk, ChunkConfig, Document, Error, Filter, Hit, Metadata, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::dense::{DenseIndex, unit_vector};
use crate::filter::{ChunkSet, matching_chunks};
use crate::keyword::{KEYWORD_FOLDER, KeywordIndex};
use crate::settings::SearchSettings;
use crate::store::{
    AtCollection, FILE_SETTINGS, LATER_TABLES, NOW, SCHEMA, STORE_FILE, connect, json_column, read_generation,
};

/// The on-disk format this code reads and writes.
const FORMAT_VERSION: u32 = 1;

/// What a collection was built with. Its vectors are only comparable with vectors from the
/// same embedder, and its chunks were cut with `chunking`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub embedder: String,
    pub dimension: usize,
    pub chunking: ChunkConfig,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC: the last write by this process or before it opened the collection.
    pub updated_at: String,
    /// How the keyword and dense indexes are built and searched (see `Collection::configure`).
    #[serde(default)]
    pub search: SearchSettings,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpsertOutcome {
    Added,
    /// A document with the same source was there; its chunks are gone.
    Replaced,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocumentInfo {
    pub source: String,
    pub title: Option<String>,
    pub content_hash: String,
    pub chunks: usize,
    /// RFC 3339, UTC.
    pub ingested_at: String,
    pub metadata: Metadata,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub documents: usize,
    pub chunks: usize,
    pub dimension: usize,
    pub bytes_on_disk: u64,
}

/// A directory holding documents, their chunks and one vector per chunk, searched by vector
/// ([`Collection::search`]) or by keywords ([`Collection::search_keyword`], BM25).
///
/// SQLite (`store.sqlite`) is the only source of truth and each document is written in one
/// transaction, so a killed ingest leaves every document wholly old or wholly new. The search
/// indexes are derived from it: the vectors in memory (with an HNSW graph for large
/// collections, saved in `dense.hnsw`), the BM25 index in `keyword/`. Every write bumps the
/// store's generation counter; an index records the generation it reflects, and one that is
/// behind (a write by another process, a crash between the store's commit and the index's, a
/// deleted file) is brought in step by the difference in chunk ids before it is searched. That
/// is exact because chunk ids are never reused and a chunk never changes.
///
/// Vectors are scaled to unit length on the way in (queries too), so scores are cosine
/// similarities whatever the embedder returns; NaN, infinite or all-zero vectors are refused.
pub struct Collection {
    dir: PathBuf,
    conn: Connection,
    manifest: Manifest,
    dense: RefCell<Option<DenseIndex>>,
    keyword: RefCell<Option<KeywordIndex>>,
    /// The last filter's chunks, with the generation they were computed at.
    last_filter: RefCell<Option<(i64, Filter, Rc<ChunkSet>)>>,
}

impl Collection {
    /// Creates the directory and store; error if a collection already exists there.
    pub fn create(dir: &Path, embedder: &str, dimension: usize, chunking: ChunkConfig) -> Result<Collection> {
        if dimension == 0 {
            return Err(Error::InvalidInput(format!(
                "embedder '{embedder}' reports 0 dimensions: a collection needs at least 1"
            )));
        }
        let path = dir.join(STORE_FILE);
        if path.exists() {
            return Err(Error::Index(format!(
                "a collection already exists at {}: open it, or delete the directory to start over",
                dir.display()
            )));
        }
        fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create directory {}: {e}", dir.display())))?;
        let chunking_json = serde_json::to_string(&chunking)
            .map_err(|e| Error::InvalidInput(format!("chunk settings {chunking:?}: {e}")))?;
        let mut conn = connect(&path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE).at(dir)?;
        conn.execute_batch(FILE_SETTINGS).at(dir)?;
        let tx = conn.transaction().at(dir)?;
        tx.execute_batch(SCHEMA).at(dir)?;
        tx.execute_batch(LATER_TABLES).at(dir)?;
        let now: String = tx.query_row(NOW, [], |row| row.get(0)).at(dir)?;
        tx.execute(
            "INSERT INTO manifest (id, format_version, embedder, dimension, chunking,
                                   created_at, updated_at, generation)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?5, 0)",
            params![FORMAT_VERSION, embedder, dimension, chunking_json, now],
        )
        .at(dir)?;
        tx.commit().at(dir)?;
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            embedder: embedder.to_string(),
            dimension,
            chunking,
            created_at: now.clone(),
            updated_at: now,
            search: SearchSettings::default(),
        };
        Ok(Collection::with(dir, conn, manifest))
    }

    /// Opens an existing collection; error if there is none or its format is newer than this
    /// code understands.
    pub fn open(dir: &Path) -> Result<Collection> {
        let path = dir.join(STORE_FILE);
        if !path.is_file() {
            return Err(Error::Index(format!(
                "no collection at {}: create it with `lore ingest PATH -c NAME`",
                dir.display()
            )));
        }
        let conn = connect(&path, OpenFlags::SQLITE_OPEN_READ_WRITE).at(dir)?;
        let manifest = read_manifest(&conn, dir)?;
        conn.execute_batch(LATER_TABLES).at(dir)?;
        Ok(Collection::with(dir, conn, manifest))
    }

    fn with(dir: &Path, conn: Connection, manifest: Manifest) -> Collection {
        Collection {
            dir: dir.to_path_buf(),
            conn,
            manifest,
            dense: RefCell::new(None),
            keyword: RefCell::new(None),
            last_filter: RefCell::new(None),
        }
    }

    /// Changes how the collection is indexed and searched, and keeps the change. A new analyzer
    /// (or user dictionary) rebuilds the keyword index at its next use, new HNSW settings
    /// rebuild the graph; BM25's k1 and b and `ef_search` apply at once. Other open handles
    /// keep their settings until they are opened again.
    pub fn configure(&mut self, settings: SearchSettings) -> Result<()> {
        settings.check()?;
        // Opening reads the user dictionary, so a bad one is refused before anything changes.
        let keyword = KeywordIndex::open(&self.dir, &settings.keyword)?;
        let json = serde_json::to_string(&settings)
            .map_err(|e| Error::InvalidInput(format!("search settings {settings:?}: {e}")))?;
        let write = WriteTransaction::begin(&mut self.conn).at(&self.dir)?;
        write
            .tx
            .execute(
                "INSERT INTO search_settings (id, settings) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET settings = excluded.settings",
                [json],
            )
            .at(&self.dir)?;
        self.manifest.updated_at = write.commit().at(&self.dir)?;
        self.manifest.search = settings;
        // The generation moved, so both indexes catch up (and rebuild what the settings
        // change) before their next use.
        *self.keyword.get_mut() = Some(keyword);
        Ok(())
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Error unless vectors from `embedder` with `dimension` are comparable with the stored ones.
    pub fn check_embedder(&self, embedder: &str, dimension: usize) -> Result<()> {
        let built = &self.manifest;
        if built.embedder == embedder && built.dimension == dimension {
            return Ok(());
        }
        Err(Error::Index(format!(
            "collection {} was built with embedder '{}' ({} dimensions), not '{embedder}' \
             ({dimension} dimensions): use '{}' with it, or ingest into a new collection",
            self.dir.display(),
            built.embedder,
            built.dimension,
            built.embedder
        )))
    }

    /// The content hash stored for `source`, if that document is in the collection.
    pub fn document_hash(&self, source: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT content_hash FROM documents WHERE source = ?1", [source], |row| row.get(0))
            .optional()
            .at(&self.dir)
    }

    /// Inserts `doc` with its chunks and their vectors (`vectors[i]` embeds `chunks[i]`), or
    /// replaces the document with the same source, in one transaction.
    pub fn upsert(&mut self, doc: &Document, chunks: &[Chunk], vectors: &[Vec<f32>]) -> Result<UpsertOutcome> {
        let rows = PreparedDocument::new(doc, chunks, vectors, self.manifest.dimension)?;
        let write = WriteTransaction::begin(&mut self.conn).at(&self.dir)?;
        let replaced = delete_rows(&write.tx, &doc.source, write.generation()).at(&self.dir)?;
        rows.insert(&write.tx, &write.now).at(&self.dir)?;
        self.manifest.updated_at = write.commit().at(&self.dir)?;
        Ok(if replaced { UpsertOutcome::Replaced } else { UpsertOutcome::Added })
    }

    /// Removes a document and its chunks; false if there was no document from `source`.
    pub fn delete_document(&mut self, source: &str) -> Result<bool> {
        let write = WriteTransaction::begin(&mut self.conn).at(&self.dir)?;
        if !delete_rows(&write.tx, source, write.generation()).at(&self.dir)? {
            return Ok(false);
        }
        self.manifest.updated_at = write.commit().at(&self.dir)?;
        Ok(true)
    }

    /// Every document, by source.
    pub fn documents(&self) -> Result<Vec<DocumentInfo>> {
        let mut query = self
            .conn
            .prepare(
                "SELECT d.source, d.title, d.content_hash, d.metadata, d.ingested_at,
                        (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)
                 FROM documents d ORDER BY d.source",
            )
            .at(&self.dir)?;
        let rows = query
            .query_map([], |row| {
                Ok(DocumentInfo {
                    source: row.get(0)?,
                    title: row.get(1)?,
                    content_hash: row.get(2)?,
                    metadata: json_column(row, 3)?,
                    ingested_at: row.get(4)?,
                    chunks: row.get(5)?,
                })
            })
            .at(&self.dir)?;
        rows.collect::<rusqlite::Result<_>>().at(&self.dir)
    }

    pub fn stats(&self) -> Result<Stats> {
        let (documents, chunks) = self
            .conn
            .query_row("SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks)", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .at(&self.dir)?;
        let mut bytes_on_disk = 0;
        for folder in [self.dir.clone(), self.dir.join(KEYWORD_FOLDER)] {
            let Ok(entries) = fs::read_dir(&folder) else { continue };
            for entry in entries {
                let metadata = entry?.metadata()?;
                if metadata.is_file() {
                    bytes_on_disk += metadata.len();
                }
            }
        }
        Ok(Stats { documents, chunks, dimension: self.manifest.dimension, bytes_on_disk })
    }

    /// The `k` chunks whose vectors have the highest cosine similarity with `query`, best
    /// first, equal scores by ascending chunk id; only chunks that pass `filter`, when given.
    /// Exact (every vector is compared) unless the collection's HNSW graph is in use (see
    /// [`crate::AnnSettings`]).
    ///
    /// `Hit::metadata` is the document's metadata overlaid by the chunk's, plus `source`,
    /// `ordinal` and, when the document has one, `title`.
    pub fn search(&self, query: &[f32], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        let query = unit_vector(query, self.manifest.dimension, "the query vector")?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let ann = &self.manifest.search.ann;
        let mut dense = self.dense.borrow_mut();
        for rebuild in [false, true] {
            // One read transaction, so the generation, the scan and the chunk rows all see the
            // same state even while another process writes.
            let tx = self.conn.unchecked_transaction().at(&self.dir)?;
            let generation = read_generation(&tx).at(&self.dir)?;
            let index = match dense.take().filter(|_| !rebuild) {
                Some(mut index) => {
                    if index.generation != generation {
                        index.sync(&tx, &self.dir, ann)?;
                    }
                    dense.insert(index)
                }
                None => dense.insert(DenseIndex::load(&tx, &self.dir, self.manifest.dimension, ann, rebuild)?),
            };
            let allowed = filter.map(|filter| self.allowed(&tx, generation, filter)).transpose()?;
            let ranked = index.search(&query, k, allowed.as_deref(), ann.ef_search);
            if let Some(hits) = self.hits(&tx, ranked)? {
                return Ok(hits);
            }
        }
        Err(self.index_damaged("dense"))
    }

    /// The `k` chunks that best match the words of `query` by BM25 (see
    /// [`crate::KeywordSettings`]), best first, equal scores by ascending chunk id; only chunks
    /// that pass `filter`, when given. Any text is a valid query: it is cut into terms by the
    /// collection's analyzer and every term counts (quotes, `AND`, colons are just text).
    pub fn search_keyword(&self, query: &str, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut keyword = self.keyword()?;
        let mut rebuilt = false;
        for round in 0..3 {
            let tx = self.conn.unchecked_transaction().at(&self.dir)?;
            let generation = read_generation(&tx).at(&self.dir)?;
            if keyword.generation != Some(generation) {
                keyword.catch_up(&tx, &self.dir, false)?;
            }
            // The index now reflects this snapshot, unless another process took it further
            // meanwhile. Then a fresh snapshot may match; if writers keep racing, the index is
            // searched as it is and chunks the snapshot does not hold are left out.
            let in_step = keyword.generation == Some(generation);
            if !in_step && round < 2 {
                continue;
            }
            let allowed = filter.map(|filter| self.allowed(&tx, generation, filter)).transpose()?;
            let ranked = keyword.search(query, k, &self.manifest.search.keyword, allowed.as_deref())?;
            if !in_step {
                let hits = ranked.into_iter().map(|(id, score)| read_hit(&tx, id, score).at(&self.dir));
                return hits.filter_map(Result::transpose).collect();
            }
            match self.hits(&tx, ranked)? {
                Some(hits) => return Ok(hits),
                None if !rebuilt => {
                    keyword.catch_up(&tx, &self.dir, true)?;
                    rebuilt = true;
                }
                None => break,
            }
        }
        Err(self.index_damaged("keyword"))
    }

    fn index_damaged(&self, which: &str) -> Error {
        Error::Index(format!(
            "collection {}: its {which} index does not match its store even after a rebuild \
             (is another process writing without pause?): search again",
            self.dir.display()
        ))
    }

    /// One chunk by id, as a hit with score 0, with the same metadata as a search hit.
    pub fn chunk(&self, chunk_id: i64) -> Result<Option<Hit>> {
        read_hit(&self.conn, chunk_id, 0.0).at(&self.dir)
    }

    /// The stored (unit-length) vectors of chunks, in the order of `chunk_ids`; `None` for an id
    /// with no chunk. For comparing search hits with each other (diversity, deduplication)
    /// without embedding their texts again.
    pub fn vectors(&self, chunk_ids: &[i64]) -> Result<Vec<Option<Vec<f32>>>> {
        let mut query = self.conn.prepare_cached("SELECT vector FROM chunks WHERE id = ?1").at(&self.dir)?;
        chunk_ids
            .iter()
            .map(|id| {
                let bytes: Option<Vec<u8>> = query.query_row([id], |row| row.get(0)).optional().at(&self.dir)?;
                Ok(bytes
                    .map(|bytes| bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
            })
            .collect()
    }

    fn keyword(&self) -> Result<RefMut<'_, KeywordIndex>> {
        let mut slot = self.keyword.borrow_mut();
        if slot.is_none() {
            *slot = Some(KeywordIndex::open(&self.dir, &self.manifest.search.keyword)?);
        }
        RefMut::filter_map(slot, Option::as_mut).map_err(|_| Error::Index("the keyword index was not opened".into()))
    }

    /// The chunks that pass `filter`; the last filter's are kept until the next write.
    fn allowed(&self, conn: &Connection, generation: i64, filter: &Filter) -> Result<Rc<ChunkSet>> {
        let mut last = self.last_filter.borrow_mut();
        if let Some((at, last_filter, chunks)) = last.as_ref()
            && *at == generation
            && last_filter == filter
        {
            return Ok(chunks.clone());
        }
        let chunks = Rc::new(matching_chunks(conn, &self.dir, filter)?);
        *last = Some((generation, filter.clone(), chunks.clone()));
        Ok(chunks)
    }

    /// The hits for ranked chunk ids; `None` if a chunk has no row, which means the index that
    /// ranked it is out of step with the store (a writer that did not log its deletes).
    fn hits(&self, conn: &Connection, ranked: Vec<(i64, f32)>) -> Result<Option<Vec<Hit>>> {
        ranked.into_iter().map(|(chunk_id, score)| read_hit(conn, chunk_id, score).at(&self.dir)).collect()
    }
}

impl Drop for Collection {
    fn drop(&mut self) {
        // Best effort: a graph that cannot be saved is rebuilt from the store next time, and
        // drop has nobody to report to.
        if let Some(dense) = self.dense.get_mut() {
            let _ = dense.save(&self.dir);
        }
    }
}

/// A document checked and serialised before its write transaction begins.
struct PreparedDocument<'a> {
    doc: &'a Document,
    metadata: String,
    chunks: Vec<PreparedChunk<'a>>,
}

struct PreparedChunk<'a> {
    chunk: &'a Chunk,
    metadata: String,
    vector: Vec<f32>,
}

impl<'a> PreparedDocument<'a> {
    fn new(doc: &'a Document, chunks: &'a [Chunk], vectors: &[Vec<f32>], dimension: usize) -> Result<Self> {
        if chunks.len() != vectors.len() {
            return Err(Error::InvalidInput(format!(
                "'{}' has {} chunks but {} vectors: embed each chunk once",
                doc.source,
                chunks.len(),
                vectors.len()
            )));
        }
        let to_json = |metadata: &Metadata| {
            serde_json::to_string(metadata)
                .map_err(|e| Error::InvalidInput(format!("metadata of '{}' is not JSON: {e}", doc.source)))
        };
        let chunks = chunks
            .iter()
            .zip(vectors)
            .map(|(chunk, vector)| {
                let what = format!("the vector of chunk {} of '{}'", chunk.ordinal, doc.source);
                Ok(PreparedChunk {
                    chunk,
                    metadata: to_json(&chunk.metadata)?,
                    vector: unit_vector(vector, dimension, &what)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(PreparedDocument { doc, metadata: to_json(&doc.metadata)?, chunks })
    }

    /// Inserts the document and its chunks.
    fn insert(&self, tx: &Transaction, now: &str) -> rusqlite::Result<()> {
        let doc = self.doc;
        tx.execute(
            "INSERT INTO documents (source, title, content_hash, metadata, ingested_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![doc.source, doc.title, doc.content_hash, self.metadata, now],
        )?;
        let document_id = tx.last_insert_rowid();
        let mut insert = tx.prepare_cached(
            "INSERT INTO chunks (document_id, ordinal, text, metadata, vector)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for prepared in &self.chunks {
            let bytes: Vec<u8> = prepared.vector.iter().flat_map(|x| x.to_le_bytes()).collect();
            let chunk = prepared.chunk;
            insert.execute(params![document_id, chunk.ordinal, chunk.text, prepared.metadata, bytes])?;
        }
        Ok(())
    }
}

/// A write transaction that advances the collection's generation when it commits. Immediate,
/// so that concurrent writers queue on the busy timeout instead of failing on lock upgrade.
struct WriteTransaction<'c> {
    tx: Transaction<'c>,
    generation_before: i64,
    now: String,
}

impl<'c> WriteTransaction<'c> {
    fn begin(conn: &'c mut Connection) -> rusqlite::Result<Self> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let generation_before = read_generation(&tx)?;
        let now = tx.query_row(NOW, [], |row| row.get(0))?;
        Ok(WriteTransaction { tx, generation_before, now })
    }

    /// The generation this write makes.
    fn generation(&self) -> i64 {
        self.generation_before + 1
    }

    /// Commits; returns the time of the write.
    fn commit(self) -> rusqlite::Result<String> {
        self.tx
            .execute("UPDATE manifest SET generation = ?1, updated_at = ?2", params![self.generation(), self.now])?;
        self.tx.commit()?;
        Ok(self.now)
    }
}

/// Deletes the document from `source` and its chunks, logging them as deleted by the write
/// that makes `generation`; false if there was no such document.
fn delete_rows(tx: &Transaction, source: &str, generation: i64) -> rusqlite::Result<bool> {
    let Some(document_id): Option<i64> =
        tx.query_row("SELECT id FROM documents WHERE source = ?1", [source], |row| row.get(0)).optional()?
    else {
        return Ok(false);
    };
    tx.execute(
        "INSERT INTO deleted_chunks (generation, chunk_id)
         SELECT ?1, id FROM chunks WHERE document_id = ?2",
        [generation, document_id],
    )?;
    tx.execute("DELETE FROM chunks WHERE document_id = ?1", [document_id])?;
    tx.execute("DELETE FROM documents WHERE id = ?1", [document_id])?;
    Ok(true)
}

fn read_manifest(conn: &Connection, dir: &Path) -> Result<Manifest> {
    let has_manifest: bool = conn
        .query_row("SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'manifest'", [], |row| {
            row.get(0)
        })
        .at(dir)?;
    if !has_manifest {
        return Err(Error::Index(format!(
            "{} has a store but no manifest, so it is not a usable collection \
             (its creation was interrupted?): delete the directory and ingest again",
            dir.display()
        )));
    }
    let format_version: u32 = conn.query_row("SELECT format_version FROM manifest", [], |row| row.get(0)).at(dir)?;
    if format_version > FORMAT_VERSION {
        return Err(Error::Index(format!(
            "collection {} has format version {format_version}, but this lore reads only up to \
             {FORMAT_VERSION}: upgrade lore",
            dir.display()
        )));
    }
    let has_settings: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'search_settings'",
            [],
            |row| row.get(0),
        )
        .at(dir)?;
    let search: SearchSettings = if has_settings {
        conn.query_row("SELECT settings FROM search_settings", [], |row| json_column(row, 0))
            .optional()
            .at(dir)?
            .unwrap_or_default()
    } else {
        SearchSettings::default()
    };
    let manifest = conn
        .query_row("SELECT embedder, dimension, chunking, created_at, updated_at FROM manifest", [], |row| {
            Ok(Manifest {
                format_version,
                embedder: row.get(0)?,
                dimension: row.get(1)?,
                chunking: json_column(row, 2)?,
                created_at: row.get(3)?,
                updated_at: row.get(4)?,
                search: search.clone(),
            })
        })
        .at(dir)?;
    if manifest.dimension == 0 {
        return Err(Error::Index(format!(
            "collection {} records 0 dimensions: delete the directory and ingest again",
            dir.display()
        )));
    }
    Ok(manifest)
}

fn read_hit(conn: &Connection, chunk_id: i64, score: f32) -> rusqlite::Result<Option<Hit>> {
    conn.prepare_cached(
        "SELECT c.text, c.ordinal, c.metadata, d.source, d.title, d.metadata
         FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = ?1",
    )?
    .query_row([chunk_id], |row| {
        let source: String = row.get(3)?;
        let title: Option<String> = row.get(4)?;
        let mut metadata: Metadata = json_column(row, 5)?;
        metadata.extend(json_column::<Metadata>(row, 2)?);
        metadata.insert("source".into(), source.clone().into());
        metadata.insert("ordinal".into(), row.get::<_, i64>(1)?.into());
        if let Some(title) = title {
            metadata.insert("title".into(), title.into());
        }
        Ok(Hit { chunk_id, source, text: row.get(0)?, score, metadata })
    })
    .optional()
}

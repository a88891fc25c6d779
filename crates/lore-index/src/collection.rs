//! A collection: one directory holding the chunk store and the dense index of its vectors.

use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use lore_core::{
    Chunk, ChunkConfig, Document, DocumentInfo, Entity, Error, Filter, GROUPS_FIELD, GraphExtractor, Hit, Link,
    LinkQuery, Manifest, Metadata, Result, SearchSettings, Stats, Store, StoredDocument, UpsertOutcome,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::dense::DenseIndex;
use crate::filter::{ChunkSet, matching_chunks};
use crate::graph;
use crate::keyword::{KEYWORD_FOLDER, KeywordIndex};
use crate::store::{
    AtCollection, FILE_SETTINGS, LATER_TABLES, NOW, SCHEMA, STORE_FILE, connect, json_column, read_generation,
    read_settings,
};
use crate::vectors::unit_vector;

/// The on-disk format this code reads and writes.
const FORMAT_VERSION: u32 = 1;

/// How many snapshots a search takes at most (see `Collection::search_index`): enough to load
/// an index, search it, find it damaged, rebuild it and search again, with one to spare for a
/// write by another thread or process meanwhile.
const ROUNDS: usize = 5;

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
///
/// One handle serves many threads (`Collection` is `Send + Sync`): searches run side by side,
/// each in its own read transaction on a pooled connection, and writes queue for the one write
/// connection (and, across processes, for SQLite's write lock).
pub struct Collection {
    dir: PathBuf,
    writer: Mutex<Connection>,
    /// Read connections not in use; a search takes one, or opens one if none is free.
    readers: Mutex<Vec<Connection>>,
    manifest: RwLock<Manifest>,
    dense: RwLock<Option<DenseIndex>>,
    keyword: RwLock<Option<KeywordIndex>>,
    /// The last filter's chunks, with the generation they were computed at.
    last_filter: Mutex<Option<(i64, Filter, Arc<ChunkSet>)>>,
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
            return Err(Error::AlreadyExists(format!(
                "a collection already exists at {}: open it, or delete the directory to start over",
                dir.display()
            )));
        }
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
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

    /// Opens an existing collection; error if there is none ([`lore_core::ErrorKind::NotFound`]),
    /// its files are damaged (`Corrupt`) or its format is newer than this code understands
    /// (`Unsupported`).
    pub fn open(dir: &Path) -> Result<Collection> {
        let path = dir.join(STORE_FILE);
        if !path.is_file() {
            return Err(Error::NotFound(format!(
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
            writer: Mutex::new(conn),
            readers: Mutex::default(),
            manifest: RwLock::new(manifest),
            dense: RwLock::default(),
            keyword: RwLock::default(),
            last_filter: Mutex::default(),
        }
    }

    /// A read connection for the length of one call.
    fn reader(&self) -> Result<Reader<'_>> {
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => connect(&self.dir.join(STORE_FILE), OpenFlags::SQLITE_OPEN_READ_WRITE).at(&self.dir)?,
        };
        Ok(Reader { pool: &self.readers, conn: Some(conn) })
    }

    /// The hits of one of the search indexes for the store as one snapshot sees it.
    ///
    /// The index is brought in step with the snapshot first (under its write lock, which other
    /// searches then find done), and searched under its read lock, side by side with other
    /// searches, in the same snapshot that its hits are read in. So a search never sees half a
    /// document, even while another thread or process writes. An index that another thread
    /// has taken past this snapshot is searched from a fresher snapshot; if writers keep it
    /// moving for [`ROUNDS`] snapshots, it is searched as it is and the chunks the snapshot
    /// lacks are left out. An index found holding chunks the store lacks (a writer that did not
    /// log its deletes) is rebuilt once.
    fn search_index<I: SearchIndex>(
        &self,
        slot: &RwLock<Option<I>>,
        filter: Option<&Filter>,
        search: impl Fn(&I, Option<&ChunkSet>, &Connection) -> Result<Vec<(i64, f32)>>,
    ) -> Result<Vec<Hit>> {
        let conn = self.reader()?;
        let (mut rebuild, mut rebuilt) = (false, false);
        for round in 0..ROUNDS {
            let tx = conn.unchecked_transaction().at(&self.dir)?;
            let generation = read_generation(&tx).at(&self.dir)?;
            // The ranking and whether the index was in step with this snapshot, if it was
            // searched; the read lock is let go before the hits are read.
            let searched = match shared(slot).as_ref() {
                Some(index) if !rebuild => {
                    let in_step = index.generation() == Some(generation);
                    if in_step || round + 1 == ROUNDS {
                        let allowed = filter.map(|filter| self.allowed(&tx, generation, filter)).transpose()?;
                        Some((search(index, allowed.as_deref(), &tx)?, in_step))
                    } else {
                        None
                    }
                }
                _ => None,
            };
            match searched {
                Some((ranked, false)) => {
                    let hits = ranked.into_iter().map(|(id, score)| read_hit(&tx, id, score).at(&self.dir));
                    return hits.filter_map(Result::transpose).collect();
                }
                Some((ranked, true)) => match self.hits(&tx, ranked)? {
                    Some(hits) => return Ok(hits),
                    None if !rebuilt => rebuild = true,
                    None => break,
                },
                None => {}
            }
            let mut index = exclusive(slot);
            if rebuild || index.as_ref().is_none_or(|index| index.generation().is_none_or(|at| at < generation)) {
                I::catch_up(&mut index, self, &tx, rebuild)?;
                rebuilt |= rebuild;
                rebuild = false;
            }
        }
        Err(Error::corrupt(
            &self.dir,
            format!(
                "collection {}: its {} index does not match its store even after a rebuild \
                 (is another process writing without pause?): search again",
                self.dir.display(),
                I::NAME
            ),
        ))
    }

    /// The chunks that pass `filter`; the last filter's are kept until the next write.
    fn allowed(&self, conn: &Connection, generation: i64, filter: &Filter) -> Result<Arc<ChunkSet>> {
        if let Some((at, last_filter, chunks)) = lock(&self.last_filter).as_ref()
            && *at == generation
            && last_filter == filter
        {
            return Ok(chunks.clone());
        }
        let chunks = Arc::new(matching_chunks(conn, &self.dir, filter)?);
        *lock(&self.last_filter) = Some((generation, filter.clone(), chunks.clone()));
        Ok(chunks)
    }

    /// The hits for ranked chunk ids; `None` if a chunk has no row, which means the index that
    /// ranked it is out of step with the store (a writer that did not log its deletes).
    fn hits(&self, conn: &Connection, ranked: Vec<(i64, f32)>) -> Result<Option<Vec<Hit>>> {
        ranked.into_iter().map(|(chunk_id, score)| read_hit(conn, chunk_id, score).at(&self.dir)).collect()
    }
}

impl Store for Collection {
    fn manifest(&self) -> Manifest {
        shared(&self.manifest).clone()
    }

    /// A new analyzer (or user dictionary) rebuilds the keyword index at its next use, new
    /// HNSW settings rebuild the graph; BM25's k1 and b and `ef_search` apply at once. A new
    /// graph extractor re-extracts the entity graph from every chunk, in the same transaction.
    /// Other open handles keep their search settings until they are opened again; their writes
    /// follow the stored graph setting at once.
    fn configure(&self, settings: SearchSettings) -> Result<()> {
        settings.check()?;
        // Opening reads the user dictionary, so a bad one is refused before anything changes.
        let keyword = KeywordIndex::open(&self.dir, &settings.keyword)?;
        let json = serde_json::to_string(&settings)
            .map_err(|e| Error::InvalidInput(format!("search settings {settings:?}: {e}")))?;
        let mut conn = lock(&self.writer);
        let write = WriteTransaction::begin(&mut conn).at(&self.dir)?;
        let graph_before = read_settings(&write.tx).at(&self.dir)?.graph.extractor;
        write
            .tx
            .execute(
                "INSERT INTO search_settings (id, settings) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET settings = excluded.settings",
                [json],
            )
            .at(&self.dir)?;
        graph::reconfigure(&write.tx, graph_before, settings.graph.extractor).at(&self.dir)?;
        let now = write.commit().at(&self.dir)?;
        {
            let mut manifest = exclusive(&self.manifest);
            manifest.updated_at = now;
            manifest.search = settings;
        }
        // The generation moved, so both indexes catch up (and rebuild what the settings
        // change) before their next use.
        *exclusive(&self.keyword) = Some(keyword);
        Ok(())
    }

    fn document_hash(&self, source: &str) -> Result<Option<String>> {
        self.reader()?
            .query_row("SELECT content_hash FROM documents WHERE source = ?1", [source], |row| row.get(0))
            .optional()
            .at(&self.dir)
    }

    fn upsert(&self, doc: &Document, chunks: &[Chunk], vectors: &[Vec<f32>]) -> Result<UpsertOutcome> {
        let dimension = shared(&self.manifest).dimension;
        let rows = PreparedDocument::new(doc, chunks, vectors, dimension)?;
        let mut conn = lock(&self.writer);
        let write = WriteTransaction::begin(&mut conn).at(&self.dir)?;
        let replaced = delete_rows(&write.tx, &doc.source, write.generation()).at(&self.dir)?;
        rows.insert(&write.tx, &write.now).at(&self.dir)?;
        exclusive(&self.manifest).updated_at = write.commit().at(&self.dir)?;
        Ok(if replaced { UpsertOutcome::Replaced } else { UpsertOutcome::Added })
    }

    fn delete_document(&self, source: &str) -> Result<bool> {
        let mut conn = lock(&self.writer);
        let write = WriteTransaction::begin(&mut conn).at(&self.dir)?;
        if !delete_rows(&write.tx, source, write.generation()).at(&self.dir)? {
            return Ok(false);
        }
        exclusive(&self.manifest).updated_at = write.commit().at(&self.dir)?;
        Ok(true)
    }

    fn stored_document(&self, source: &str) -> Result<Option<StoredDocument>> {
        let conn = self.reader()?;
        // One snapshot for the document and its chunks, whatever a writer does meanwhile.
        let read = conn.unchecked_transaction().at(&self.dir)?;
        let document = read
            .query_row("SELECT id, title, content_hash, metadata FROM documents WHERE source = ?1", [source], |row| {
                let mut document = Document::new(source, Vec::new());
                document.title = row.get(1)?;
                document.content_hash = row.get(2)?;
                document.metadata = json_column(row, 3)?;
                Ok((row.get::<_, i64>(0)?, document))
            })
            .optional()
            .at(&self.dir)?;
        let Some((id, document)) = document else { return Ok(None) };
        let mut query = read
            .prepare_cached(
                "SELECT ordinal, text, metadata, vector FROM chunks WHERE document_id = ?1 ORDER BY ordinal",
            )
            .at(&self.dir)?;
        let rows = query
            .query_map([id], |row| {
                let chunk = Chunk { ordinal: row.get(0)?, text: row.get(1)?, metadata: json_column(row, 2)? };
                let bytes: Vec<u8> = row.get(3)?;
                Ok((chunk, vector_from_bytes(&bytes)))
            })
            .at(&self.dir)?;
        let (chunks, vectors) = rows.collect::<rusqlite::Result<Vec<_>>>().at(&self.dir)?.into_iter().unzip();
        Ok(Some(StoredDocument { document, chunks, vectors }))
    }

    fn documents(&self) -> Result<Vec<DocumentInfo>> {
        let conn = self.reader()?;
        let mut query = conn
            .prepare_cached(
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

    fn stats(&self) -> Result<Stats> {
        let (documents, chunks, entities, links) = self
            .reader()?
            .query_row(
                "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks),
                        (SELECT count(*) FROM entities), (SELECT count(*) FROM links)",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .at(&self.dir)?;
        let mut bytes_on_disk = 0;
        for folder in [self.dir.clone(), self.dir.join(KEYWORD_FOLDER)] {
            let Ok(entries) = fs::read_dir(&folder) else { continue };
            for entry in entries {
                let metadata = entry.and_then(|entry| entry.metadata()).map_err(Error::io(&folder))?;
                if metadata.is_file() {
                    bytes_on_disk += metadata.len();
                }
            }
        }
        let dimension = shared(&self.manifest).dimension;
        Ok(Stats { documents, chunks, dimension, bytes_on_disk, entities, links })
    }

    /// Exact (every vector is compared) unless the collection's HNSW graph is in use (see
    /// [`lore_core::AnnSettings`]).
    fn search(&self, query: &[f32], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        let (dimension, ef_search) = {
            let manifest = shared(&self.manifest);
            (manifest.dimension, manifest.search.ann.ef_search)
        };
        let query = unit_vector(query, dimension, "the query vector")?;
        if k == 0 {
            return Ok(Vec::new());
        }
        self.search_index(&self.dense, filter, |index: &DenseIndex, allowed, snapshot| {
            index.search(&query, k, allowed, ef_search, |ids| stored_vectors(snapshot, &self.dir, ids))
        })
    }

    /// The query is cut into terms by the collection's analyzer (see
    /// [`lore_core::KeywordSettings`]).
    fn search_keyword(&self, query: &str, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let settings = shared(&self.manifest).search.keyword.clone();
        self.search_index(&self.keyword, filter, |index: &KeywordIndex, allowed, _| {
            index.search(query, k, &settings, allowed)
        })
    }

    fn chunk(&self, chunk_id: i64) -> Result<Option<Hit>> {
        read_hit(&*self.reader()?, chunk_id, 0.0).at(&self.dir)
    }

    fn vectors(&self, chunk_ids: &[i64]) -> Result<Vec<Option<Vec<f32>>>> {
        stored_vectors(&*self.reader()?, &self.dir, chunk_ids)
    }

    fn entities(&self, keys: &[String]) -> Result<Vec<Entity>> {
        self.check_graph()?;
        graph::entities(&*self.reader()?, keys).at(&self.dir)
    }

    fn links(&self, query: LinkQuery<'_>) -> Result<Vec<Link>> {
        self.check_graph()?;
        graph::links(&*self.reader()?, query).at(&self.dir)
    }
}

/// The stored vectors of `chunk_ids`, in order (`None` for a chunk the store lacks).
fn stored_vectors(conn: &Connection, dir: &Path, chunk_ids: &[i64]) -> Result<Vec<Option<Vec<f32>>>> {
    let mut query = conn.prepare_cached("SELECT vector FROM chunks WHERE id = ?1").at(dir)?;
    chunk_ids
        .iter()
        .map(|id| {
            let bytes: Option<Vec<u8>> = query.query_row([id], |row| row.get(0)).optional().at(dir)?;
            Ok(bytes.map(|bytes| vector_from_bytes(&bytes)))
        })
        .collect()
}

/// A vector as the store keeps it: little-endian f32s.
fn vector_from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

impl Drop for Collection {
    fn drop(&mut self) {
        // Best effort: a graph that cannot be saved is rebuilt from the store next time, and
        // drop has nobody to report to.
        if let Some(dense) = self.dense.get_mut().unwrap_or_else(PoisonError::into_inner) {
            let _ = dense.save(&self.dir);
        }
    }
}

/// A pooled read connection, back in the pool when dropped.
struct Reader<'c> {
    pool: &'c Mutex<Vec<Connection>>,
    conn: Option<Connection>,
}

impl Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("a reader holds its connection until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            lock(self.pool).push(conn);
        }
    }
}

/// What the two search indexes share: each is derived from the store and knows the store
/// generation it reflects (see [`Collection`]).
trait SearchIndex {
    /// For messages.
    const NAME: &'static str;

    /// The generation the index reflects, if known.
    fn generation(&self) -> Option<i64>;

    /// Brings the index in `slot` (opened first if there is none) in step with the store as
    /// `snapshot` sees it; `rebuild` builds it from nothing.
    fn catch_up(slot: &mut Option<Self>, collection: &Collection, snapshot: &Connection, rebuild: bool) -> Result<()>
    where
        Self: Sized;
}

impl SearchIndex for DenseIndex {
    const NAME: &'static str = "dense";

    fn generation(&self) -> Option<i64> {
        (self.generation >= 0).then_some(self.generation)
    }

    fn catch_up(slot: &mut Option<Self>, collection: &Collection, snapshot: &Connection, rebuild: bool) -> Result<()> {
        let (dimension, ann) = {
            let manifest = shared(&collection.manifest);
            (manifest.dimension, manifest.search.ann.clone())
        };
        match slot {
            Some(index) if !rebuild => index.sync(snapshot, &collection.dir, &ann),
            _ => {
                *slot = Some(DenseIndex::load(snapshot, &collection.dir, dimension, &ann, rebuild)?);
                Ok(())
            }
        }
    }
}

impl SearchIndex for KeywordIndex {
    const NAME: &'static str = "keyword";

    fn generation(&self) -> Option<i64> {
        self.generation
    }

    fn catch_up(slot: &mut Option<Self>, collection: &Collection, snapshot: &Connection, rebuild: bool) -> Result<()> {
        let index = match slot {
            Some(index) => index,
            None => {
                let settings = shared(&collection.manifest).search.keyword.clone();
                slot.insert(KeywordIndex::open(&collection.dir, &settings)?)
            }
        };
        index.catch_up(snapshot, &collection.dir, rebuild)
    }
}

// A panic while a lock was held leaves nothing half-done that these locks guard (the store's
// transactions roll back; an index is brought in step again), so a poisoned lock is used on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn shared<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn exclusive<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
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

    /// Inserts the document and its chunks, linked to the entities they name when the
    /// collection keeps a graph.
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
        let mut ids = Vec::with_capacity(self.chunks.len());
        for prepared in &self.chunks {
            let bytes: Vec<u8> = prepared.vector.iter().flat_map(|x| x.to_le_bytes()).collect();
            let chunk = prepared.chunk;
            insert.execute(params![document_id, chunk.ordinal, chunk.text, prepared.metadata, bytes])?;
            ids.push(tx.last_insert_rowid());
        }
        // The stored setting, not this handle's: another process may have turned the graph on.
        let extractor = read_settings(tx)?.graph.extractor;
        if extractor != GraphExtractor::Off {
            let chunks: Vec<(i64, &str, &Metadata)> = ids
                .into_iter()
                .zip(&self.chunks)
                .map(|(id, c)| (id, c.chunk.text.as_str(), &c.chunk.metadata))
                .collect();
            graph::link_document(tx, extractor, doc.title.as_deref(), &chunks)?;
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

/// Deletes the document from `source`, its chunks and their links in the graph, logging them as deleted by the write
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
    graph::unlink_document(tx, document_id)?;
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
        return Err(Error::corrupt(
            dir.join(STORE_FILE),
            format!(
                "{} has a store but no manifest, so it is not a usable collection \
             (its creation was interrupted?): delete the directory and ingest again",
                dir.display()
            ),
        ));
    }
    let format_version: u32 = conn.query_row("SELECT format_version FROM manifest", [], |row| row.get(0)).at(dir)?;
    if format_version > FORMAT_VERSION {
        return Err(Error::Unsupported(format!(
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
    let search = if has_settings { read_settings(conn).at(dir)? } else { SearchSettings::default() };
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
        return Err(Error::corrupt(
            dir.join(STORE_FILE),
            format!("collection {} records 0 dimensions: delete the directory and ingest again", dir.display()),
        ));
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
        let mut chunk_metadata: Metadata = json_column(row, 2)?;
        // Who may read a chunk is its document's business alone.
        chunk_metadata.remove(GROUPS_FIELD);
        metadata.extend(chunk_metadata);
        metadata.insert("source".into(), source.clone().into());
        metadata.insert("ordinal".into(), row.get::<_, i64>(1)?.into());
        if let Some(title) = title {
            metadata.insert("title".into(), title.into());
        }
        Ok(Hit { chunk_id, source, text: row.get(0)?, score, metadata })
    })
    .optional()
}

//! A collection: one directory holding the chunk store and the dense index of its vectors.

use std::cell::RefCell;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use lore_core::{Chunk, ChunkConfig, Document, Error, Hit, Metadata, Result};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use serde::{Deserialize, Serialize};

use crate::dense::{DenseMatrix, unit_vector};
use crate::store::{AtCollection, FILE_SETTINGS, NOW, SCHEMA, STORE_FILE, connect, json_column};

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

/// A directory holding documents, their chunks and one vector per chunk.
///
/// SQLite (`store.sqlite`) is the only source of truth and each document is written in one
/// transaction, so a killed ingest leaves every document wholly old or wholly new. Searches
/// scan an in-memory matrix of all vectors, loaded on the first search and kept in step with
/// writes, including writes by another process (it is reloaded when the store's write
/// generation moved).
///
/// Vectors are scaled to unit length on the way in (queries too), so scores are cosine
/// similarities whatever the embedder returns; NaN, infinite or all-zero vectors are refused.
pub struct Collection {
    dir: PathBuf,
    conn: Connection,
    manifest: Manifest,
    dense: RefCell<Option<DenseMatrix>>,
}

impl Collection {
    /// Creates the directory and store; error if a collection already exists there.
    pub fn create(
        dir: &Path,
        embedder: &str,
        dimension: usize,
        chunking: ChunkConfig,
    ) -> Result<Collection> {
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
        fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create directory {}: {e}", dir.display()),
            )
        })?;
        let chunking_json = serde_json::to_string(&chunking)
            .map_err(|e| Error::InvalidInput(format!("chunk settings {chunking:?}: {e}")))?;
        let mut conn = connect(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .at(dir)?;
        conn.execute_batch(FILE_SETTINGS).at(dir)?;
        let tx = conn.transaction().at(dir)?;
        tx.execute_batch(SCHEMA).at(dir)?;
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
        };
        Ok(Collection {
            dir: dir.to_path_buf(),
            conn,
            manifest,
            dense: RefCell::new(None),
        })
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
        Ok(Collection {
            dir: dir.to_path_buf(),
            conn,
            manifest,
            dense: RefCell::new(None),
        })
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
            .query_row(
                "SELECT content_hash FROM documents WHERE source = ?1",
                [source],
                |row| row.get(0),
            )
            .optional()
            .at(&self.dir)
    }

    /// Inserts `doc` with its chunks and their vectors (`vectors[i]` embeds `chunks[i]`), or
    /// replaces the document with the same source, in one transaction.
    pub fn upsert(
        &mut self,
        doc: &Document,
        chunks: &[Chunk],
        vectors: &[Vec<f32>],
    ) -> Result<UpsertOutcome> {
        let rows = PreparedDocument::new(doc, chunks, vectors, self.manifest.dimension)?;
        let write = WriteTransaction::begin(&mut self.conn).at(&self.dir)?;
        let removed = delete_rows(&write.tx, &doc.source).at(&self.dir)?;
        let added = rows.insert(&write.tx, &write.now).at(&self.dir)?;
        let (generation_before, now) = write.commit().at(&self.dir)?;
        let vectors = rows.chunks.iter().map(|chunk| chunk.vector.as_slice());
        let removed_ids = removed.as_deref().unwrap_or_default();
        self.after_write(
            generation_before,
            now,
            removed_ids,
            added.into_iter().zip(vectors),
        );
        Ok(if removed.is_some() {
            UpsertOutcome::Replaced
        } else {
            UpsertOutcome::Added
        })
    }

    /// Removes a document and its chunks; false if there was no document from `source`.
    pub fn delete_document(&mut self, source: &str) -> Result<bool> {
        let write = WriteTransaction::begin(&mut self.conn).at(&self.dir)?;
        let Some(removed) = delete_rows(&write.tx, source).at(&self.dir)? else {
            return Ok(false);
        };
        let (generation_before, now) = write.commit().at(&self.dir)?;
        self.after_write(generation_before, now, &removed, std::iter::empty());
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
            .query_row(
                "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks)",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .at(&self.dir)?;
        let mut bytes_on_disk = 0;
        for entry in fs::read_dir(&self.dir)? {
            let metadata = entry?.metadata()?;
            if metadata.is_file() {
                bytes_on_disk += metadata.len();
            }
        }
        Ok(Stats {
            documents,
            chunks,
            dimension: self.manifest.dimension,
            bytes_on_disk,
        })
    }

    /// The `k` chunks whose vectors have the highest cosine similarity with `query`, best
    /// first, equal scores by ascending chunk id. Exact: every vector is compared.
    ///
    /// `Hit::metadata` is the document's metadata overlaid by the chunk's, plus `source`,
    /// `ordinal` and, when the document has one, `title`.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        let query = unit_vector(query, self.manifest.dimension, "the query vector")?;
        if k == 0 {
            return Ok(Vec::new());
        }
        // One read transaction, so the generation check, the scan and the chunk rows all see
        // the same state even while another process writes.
        let tx = self.conn.unchecked_transaction().at(&self.dir)?;
        let generation = read_generation(&tx).at(&self.dir)?;
        let mut dense = self.dense.borrow_mut();
        let matrix = match dense.take() {
            Some(matrix) if matrix.generation == generation => dense.insert(matrix),
            _ => dense.insert(load_dense(
                &tx,
                self.manifest.dimension,
                generation,
                &self.dir,
            )?),
        };
        matrix
            .top_k(&query, k)
            .into_iter()
            .map(|(chunk_id, score)| {
                read_hit(&tx, chunk_id, score)
                    .at(&self.dir)?
                    .ok_or_else(|| {
                        Error::Index(format!(
                            "collection {}: chunk {chunk_id} has a vector but no row",
                            self.dir.display()
                        ))
                    })
            })
            .collect()
    }

    /// One chunk by id, as a hit with score 0, with the same metadata as a search hit.
    pub fn chunk(&self, chunk_id: i64) -> Result<Option<Hit>> {
        read_hit(&self.conn, chunk_id, 0.0).at(&self.dir)
    }

    /// Brings the in-memory matrix up to date with a committed write of this process.
    fn after_write<'v>(
        &mut self,
        generation_before: i64,
        now: String,
        removed: &[i64],
        added: impl Iterator<Item = (i64, &'v [f32])>,
    ) {
        self.manifest.updated_at = now;
        let dense = self.dense.get_mut();
        match dense {
            Some(matrix) if matrix.generation == generation_before => {
                matrix.remove(removed);
                for (id, vector) in added {
                    matrix.push(id, vector);
                }
                matrix.generation = generation_before + 1;
            }
            // Another process wrote since the matrix was loaded: the next search reloads it.
            _ => *dense = None,
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
    fn new(
        doc: &'a Document,
        chunks: &'a [Chunk],
        vectors: &[Vec<f32>],
        dimension: usize,
    ) -> Result<Self> {
        if chunks.len() != vectors.len() {
            return Err(Error::InvalidInput(format!(
                "'{}' has {} chunks but {} vectors: embed each chunk once",
                doc.source,
                chunks.len(),
                vectors.len()
            )));
        }
        let to_json = |metadata: &Metadata| {
            serde_json::to_string(metadata).map_err(|e| {
                Error::InvalidInput(format!("metadata of '{}' is not JSON: {e}", doc.source))
            })
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
        Ok(PreparedDocument {
            doc,
            metadata: to_json(&doc.metadata)?,
            chunks,
        })
    }

    /// Inserts the document and its chunks; returns the chunk ids, in order.
    fn insert(&self, tx: &Transaction, now: &str) -> rusqlite::Result<Vec<i64>> {
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
        self.chunks
            .iter()
            .map(|prepared| {
                let bytes: Vec<u8> = prepared
                    .vector
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect();
                let chunk = prepared.chunk;
                insert.execute(params![
                    document_id,
                    chunk.ordinal,
                    chunk.text,
                    prepared.metadata,
                    bytes
                ])?;
                Ok(tx.last_insert_rowid())
            })
            .collect()
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
        Ok(WriteTransaction {
            tx,
            generation_before,
            now,
        })
    }

    /// Commits; returns the generation before the write and the time it was made.
    fn commit(self) -> rusqlite::Result<(i64, String)> {
        self.tx.execute(
            "UPDATE manifest SET generation = ?1, updated_at = ?2",
            params![self.generation_before + 1, self.now],
        )?;
        self.tx.commit()?;
        Ok((self.generation_before, self.now))
    }
}

fn read_generation(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT generation FROM manifest", [], |row| row.get(0))
}

/// Deletes the document from `source` and its chunks; returns the chunk ids, or None if there
/// was no such document.
fn delete_rows(tx: &Transaction, source: &str) -> rusqlite::Result<Option<Vec<i64>>> {
    let Some(document_id): Option<i64> = tx
        .query_row(
            "SELECT id FROM documents WHERE source = ?1",
            [source],
            |row| row.get(0),
        )
        .optional()?
    else {
        return Ok(None);
    };
    let chunk_ids = tx
        .prepare_cached("SELECT id FROM chunks WHERE document_id = ?1")?
        .query_map([document_id], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    tx.execute("DELETE FROM chunks WHERE document_id = ?1", [document_id])?;
    tx.execute("DELETE FROM documents WHERE id = ?1", [document_id])?;
    Ok(Some(chunk_ids))
}

fn read_manifest(conn: &Connection, dir: &Path) -> Result<Manifest> {
    let has_manifest: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'manifest'",
            [],
            |row| row.get(0),
        )
        .at(dir)?;
    if !has_manifest {
        return Err(Error::Index(format!(
            "{} has a store but no manifest, so it is not a usable collection \
             (its creation was interrupted?): delete the directory and ingest again",
            dir.display()
        )));
    }
    let format_version: u32 = conn
        .query_row("SELECT format_version FROM manifest", [], |row| row.get(0))
        .at(dir)?;
    if format_version > FORMAT_VERSION {
        return Err(Error::Index(format!(
            "collection {} has format version {format_version}, but this lore reads only up to \
             {FORMAT_VERSION}: upgrade lore",
            dir.display()
        )));
    }
    let manifest = conn
        .query_row(
            "SELECT embedder, dimension, chunking, created_at, updated_at FROM manifest",
            [],
            |row| {
                Ok(Manifest {
                    format_version,
                    embedder: row.get(0)?,
                    dimension: row.get(1)?,
                    chunking: json_column(row, 2)?,
                    created_at: row.get(3)?,
                    updated_at: row.get(4)?,
                })
            },
        )
        .at(dir)?;
    if manifest.dimension == 0 {
        return Err(Error::Index(format!(
            "collection {} records 0 dimensions: delete the directory and ingest again",
            dir.display()
        )));
    }
    Ok(manifest)
}

fn load_dense(
    conn: &Connection,
    dimension: usize,
    generation: i64,
    dir: &Path,
) -> Result<DenseMatrix> {
    let count: usize = conn
        .query_row("SELECT count(*) FROM chunks", [], |row| row.get(0))
        .at(dir)?;
    let mut matrix = DenseMatrix::with_capacity(dimension, count, generation);
    let mut query = conn.prepare("SELECT id, vector FROM chunks").at(dir)?;
    let mut rows = query.query([]).at(dir)?;
    while let Some(row) = rows.next().at(dir)? {
        let id: i64 = row.get(0).at(dir)?;
        let bytes = row
            .get_ref(1)
            .and_then(|value| Ok(value.as_blob()?))
            .at(dir)?;
        if !matrix.push_le_bytes(id, bytes) {
            return Err(Error::Index(format!(
                "collection {}: chunk {id} has a vector of {} bytes, not {dimension} f32s: \
                 delete the directory and ingest again",
                dir.display(),
                bytes.len()
            )));
        }
    }
    Ok(matrix)
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
        Ok(Hit {
            chunk_id,
            source,
            text: row.get(0)?,
            score,
            metadata,
        })
    })
    .optional()
}

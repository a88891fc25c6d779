//! The keyword index: BM25 over chunk texts, in a tantivy index in the collection's `keyword/`
//! folder, scored here so that k1 and b can be set (tantivy fixes them at 1.2 and 0.75) and the
//! filter is applied while the top k are collected.
//!
//! The index is derived data, brought up to date when it is searched rather than at every
//! write: a tantivy commit makes a segment and syncs several files, which made a one-chunk
//! write 40 times slower than the store's own commit, while catching up after many writes
//! costs one commit. Each commit records the store generation it reflects and the largest
//! chunk id it holds; catching up drops the chunks the store logged as deleted since that
//! generation and adds the chunks above that id. So a missing folder, a crash, a write by
//! another process or another analyzer only ever cost a catch-up or a rebuild.

mod analyzer;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use lore_core::{Error, Fnv1a, KeywordSettings, Result};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use tantivy::directory::error::LockError;
use tantivy::schema::{FAST, Field, INDEXED, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    Index, IndexMeta, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, TantivyError, Term,
};

pub use analyzer::{ENGLISH_STOP_WORDS, TermAnalyzer, bm25_length};
use analyzer::{terms, text_analyzer};

use crate::filter::ChunkSet;
use crate::store::{AtCollection, read_generation};
use crate::vectors::best_k;

pub(crate) const KEYWORD_FOLDER: &str = "keyword";
const TOKENIZER: &str = "lore";
const TEXT: &str = "text";
const CHUNK_ID: &str = "chunk_id";
/// tantivy's indexing buffer: filled, it becomes a segment. Large enough that a rebuild makes
/// few segments to merge; tantivy takes the memory as it fills, so a small catch-up uses little.
const WRITER_MEMORY: usize = 128_000_000;
/// How long a search waits for another process to finish updating the keyword index: a
/// rebuild of a million chunks takes minutes.
const WRITER_LOCK_WAIT: Duration = Duration::from_secs(600);

/// What a commit of the keyword index records: the store generation it reflects, the largest
/// chunk id it holds, and the analyzer that made its terms (another analyzer's are useless).
#[derive(Serialize, Deserialize, PartialEq)]
struct CommitRecord {
    generation: i64,
    last_chunk: i64,
    analyzer: String,
}

pub(crate) struct KeywordIndex {
    folder: PathBuf,
    index: Index,
    reader: IndexReader,
    text: Field,
    chunk_id: Field,
    analyzer: TextAnalyzer,
    /// The analyzer settings and user dictionary, as recorded in commits.
    analyzer_id: String,
    /// The store generation `snapshot` reflects, if known.
    pub generation: Option<i64>,
    snapshot: Snapshot,
    /// One per search running at the same time, kept for the next ones.
    scratch: Mutex<Vec<Scratch>>,
}

/// Per-query buffers, kept between queries: each query's allocations were a tenth of its time.
#[derive(Default)]
struct Scratch {
    /// BM25 score by document number of the segment being scored; zero but at `touched`.
    scores: Vec<f32>,
    /// The documents of that segment with a score.
    touched: Vec<u32>,
}

/// The index as last loaded, with each segment's chunk ids by document number (-1 for none),
/// read once here rather than decoded from the column at every query, and the number and
/// total length of the live chunks.
struct Snapshot {
    searcher: Searcher,
    chunk_ids: Vec<Vec<i64>>,
    live_chunks: u64,
    live_length: u64,
}

impl KeywordIndex {
    /// Opens the index in `dir/keyword`, making an empty one if there is none or it cannot be
    /// read (it is rebuilt from the store when it catches up).
    pub fn open(dir: &Path, settings: &KeywordSettings) -> Result<KeywordIndex> {
        let folder = dir.join(KEYWORD_FOLDER);
        let analyzer = text_analyzer(settings)?;
        let dictionary = match &settings.user_dictionary {
            Some(path) => fs::read_to_string(path).map_err(Error::io(path))?,
            None => String::new(),
        };
        let analyzer_id = format!(
            "{:?}/{}",
            settings.analyzer,
            // The same words give the same terms.
            Fnv1a::of(dictionary.as_bytes())
        );
        let index = open_or_create(&folder)?;
        let schema = index.schema();
        let (Ok(text), Ok(chunk_id)) = (schema.get_field(TEXT), schema.get_field(CHUNK_ID)) else {
            return Err(Error::corrupt(
                &folder,
                format!(
                    "{} is not a Lore keyword index: delete that folder, it is rebuilt from the store",
                    folder.display()
                ),
            ));
        };
        index.tokenizers().register(TOKENIZER, analyzer.clone());
        let reader =
            index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(|e| at(&folder, e))?;
        let snapshot = Snapshot { searcher: reader.searcher(), chunk_ids: Vec::new(), live_chunks: 0, live_length: 0 };
        let mut keyword = KeywordIndex {
            folder,
            index,
            reader,
            text,
            chunk_id,
            analyzer,
            analyzer_id,
            generation: None,
            snapshot,
            scratch: Mutex::default(),
        };
        keyword.refresh()?;
        Ok(keyword)
    }

    /// What the last commit records, if it was made with this analyzer.
    fn record(&self, metas: &IndexMeta) -> Option<CommitRecord> {
        let record = metas.payload.as_ref().and_then(|payload| serde_json::from_str::<CommitRecord>(payload).ok());
        record.filter(|r| r.analyzer == self.analyzer_id)
    }

    /// Brings the index up to the store as `snapshot` (a read transaction) sees it, so that
    /// the search that follows reads its hits in the same snapshot; `rebuild` starts from
    /// nothing (for an index found to hold chunks the store does not). If another process has
    /// already taken the index past this snapshot, it is left as it is (and `generation` says
    /// so): the caller searches again in a newer snapshot.
    pub fn catch_up(&mut self, snapshot: &Connection, dir: &Path, rebuild: bool) -> Result<()> {
        let writer = self.writer()?;
        let generation = read_generation(snapshot).at(dir)?;
        let metas = self.index.load_metas().map_err(|e| at(&self.folder, e))?;
        let record = self.record(&metas).filter(|_| !rebuild);
        if record.as_ref().is_some_and(|r| r.generation >= generation) {
            drop(writer);
            return self.refresh();
        }
        let mut last_chunk = match &record {
            Some(record) => {
                let mut deleted =
                    snapshot.prepare("SELECT chunk_id FROM deleted_chunks WHERE generation > ?1").at(dir)?;
                let mut rows = deleted.query([record.generation]).at(dir)?;
                while let Some(row) = rows.next().at(dir)? {
                    writer.delete_term(self.id_term(row.get(0).at(dir)?));
                }
                record.last_chunk
            }
            None => {
                writer.delete_all_documents().map_err(|e| at(&self.folder, e))?;
                0
            }
        };
        let mut added = snapshot.prepare("SELECT id, text FROM chunks WHERE id > ?1 ORDER BY id").at(dir)?;
        let mut rows = added.query([last_chunk]).at(dir)?;
        while let Some(row) = rows.next().at(dir)? {
            let id: i64 = row.get(0).at(dir)?;
            let text = row.get_ref(1).and_then(|v| Ok(v.as_str()?)).at(dir)?;
            writer.add_document(self.document(id, text)).map_err(|e| at(&self.folder, e))?;
            last_chunk = id;
        }
        self.commit(writer, CommitRecord { generation, last_chunk, analyzer: self.analyzer_id.clone() })
    }

    /// A writer, waiting while another process finishes its commit.
    fn writer(&self) -> Result<IndexWriter> {
        let started = Instant::now();
        loop {
            match self.index.writer_with_num_threads(1, WRITER_MEMORY) {
                Err(TantivyError::LockFailure(LockError::LockBusy, _)) => {
                    if started.elapsed() > WRITER_LOCK_WAIT {
                        return Err(Error::Busy(format!(
                            "keyword index {}: another process has been updating it for {} s: \
                             try again when it has finished",
                            self.folder.display(),
                            WRITER_LOCK_WAIT.as_secs()
                        )));
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                result => return result.map_err(|e| at(&self.folder, e)),
            }
        }
    }

    fn commit(&mut self, mut writer: IndexWriter, record: CommitRecord) -> Result<()> {
        let mut commit = writer.prepare_commit().map_err(|e| at(&self.folder, e))?;
        commit.set_payload(&serde_json::to_string(&record).map_err(|e| Error::corrupt(&self.folder, e.to_string()))?);
        commit.commit().map_err(|e| at(&self.folder, e))?;
        // Merges run in the background; a writer is dropped after one commit, so wait for them.
        writer.wait_merging_threads().map_err(|e| at(&self.folder, e))?;
        self.refresh()
    }

    fn document(&self, id: i64, text: &str) -> TantivyDocument {
        let mut document = TantivyDocument::new();
        document.add_u64(self.chunk_id, id as u64);
        document.add_text(self.text, text);
        document
    }

    fn id_term(&self, id: i64) -> Term {
        Term::from_field_u64(self.chunk_id, id as u64)
    }

    /// Reloads the reader to the last commit (another process's, say) and notes the store
    /// generation it reflects.
    pub fn refresh(&mut self) -> Result<()> {
        let metas = self.index.load_metas().map_err(|e| at(&self.folder, e))?;
        self.reader.reload().map_err(|e| at(&self.folder, e))?;
        let searcher = self.reader.searcher();
        // A commit between the two reads leaves the reader newer than `metas`: unknown then.
        let loaded = searcher.segment_readers().iter().map(|s| (s.segment_id(), s.delete_opstamp()));
        let recorded = metas.segments.iter().map(|s| (s.id(), s.delete_opstamp()));
        self.generation = if loaded.eq(recorded) { self.record(&metas).map(|r| r.generation) } else { None };
        let mut chunk_ids = Vec::with_capacity(searcher.segment_readers().len());
        let (mut live_chunks, mut live_length) = (0, 0);
        for segment in searcher.segment_readers() {
            let failed = |e| at(&self.folder, e);
            let column = segment.fast_fields().u64(CHUNK_ID).map_err(failed)?;
            chunk_ids.push((0..segment.max_doc()).map(|doc| column.first(doc).map_or(-1, |id| id as i64)).collect());
            let lengths = segment.get_fieldnorms_reader(self.text).map_err(failed)?;
            for doc in segment.doc_ids_alive() {
                live_chunks += 1;
                live_length += u64::from(lengths.fieldnorm(doc));
            }
        }
        self.snapshot = Snapshot { searcher, chunk_ids, live_chunks, live_length };
        Ok(())
    }

    /// The best `k` chunks for `query` by BM25, as (chunk id, score), best first, equal
    /// scores by ascending chunk id; only chunks in `allowed` when it is given.
    ///
    /// score(d) = Σ over query terms t (repeats count) of
    ///     idf(t) · tf(t,d) · (k1 + 1) / (tf(t,d) + k1 · (1 − b + b · |d| / avgdl)),
    /// idf(t) = ln(1 + (N − n(t) + 0.5) / (n(t) + 0.5)), as Lucene. |d| is tantivy's one-byte
    /// code of the length (exact up to 40 terms, then within about 10 %), and avgdl the mean of
    /// those codes. N, n(t) and avgdl count live chunks only (Lucene also counts deleted ones
    /// until a merge drops them), so a score does not depend on when segments were merged:
    /// an index rebuilt from the store scores exactly as the one it replaces.
    pub fn search(
        &self,
        query: &str,
        k: usize,
        settings: &KeywordSettings,
        allowed: Option<&ChunkSet>,
    ) -> Result<Vec<(i64, f32)>> {
        // Ordered, so that scores are summed in the same order on every run.
        let mut weights: BTreeMap<String, f32> = BTreeMap::new();
        // The analyzer keeps state while it cuts a text, so each search cuts with its own.
        for term in terms(&mut self.analyzer.clone(), query) {
            *weights.entry(term).or_default() += 1.0;
        }
        let segments = self.snapshot.searcher.segment_readers();
        let Snapshot { live_chunks: documents, live_length, .. } = self.snapshot;
        if k == 0 || weights.is_empty() || documents == 0 {
            return Ok(Vec::new());
        }
        let failed = |e| at(&self.folder, e);
        let io_failed = |source| Error::Io { path: self.folder.clone(), source };
        let mut postings = Vec::with_capacity(segments.len());
        let mut frequencies = vec![0u64; weights.len()];
        for segment in segments {
            let inverted = segment.inverted_index(self.text).map_err(failed)?;
            let mut infos = Vec::with_capacity(weights.len());
            for (t, term) in weights.keys().enumerate() {
                let info = inverted.get_term_info(&Term::from_field_text(self.text, term)).map_err(io_failed)?;
                frequencies[t] += match (&info, segment.alive_bitset()) {
                    (None, _) => 0,
                    (Some(info), None) => u64::from(info.doc_freq),
                    // Deleted chunks stay in the postings until a merge: count the live ones.
                    (Some(info), Some(alive)) => {
                        let mut block = inverted
                            .read_block_postings_from_terminfo(info, IndexRecordOption::Basic)
                            .map_err(io_failed)?;
                        let mut live = 0;
                        while !block.docs().is_empty() {
                            live += block.docs().iter().filter(|&&doc| alive.is_alive(doc)).count() as u64;
                            block.advance();
                        }
                        live
                    }
                };
                infos.push(info);
            }
            postings.push((inverted, infos));
        }
        let average_length = live_length as f32 / documents as f32;
        let (k1, b) = (settings.k1, settings.b);
        let term_weights: Vec<f32> = weights
            .values()
            .zip(&frequencies)
            .map(|(&repeats, &n)| {
                let idf = ((documents.saturating_sub(n) as f32 + 0.5) / (n as f32 + 0.5)).ln_1p();
                repeats * idf * (k1 + 1.0)
            })
            .collect();
        // k1 · (1 − b + b · |d| / avgdl) for each of the 256 length codes.
        let length_terms: Vec<f32> = (0..=255u8)
            .map(|code| {
                let length = tantivy::fieldnorm::FieldNormReader::id_to_fieldnorm(code) as f32;
                k1 * (1.0 - b + b * length / average_length.max(f32::MIN_POSITIVE))
            })
            .collect();

        let mut candidates = Vec::new();
        let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default();
        let Scratch { scores, touched } = &mut scratch;
        for ((segment, ids), (inverted, infos)) in segments.iter().zip(&self.snapshot.chunk_ids).zip(&postings) {
            let lengths = segment.get_fieldnorms_reader(self.text).map_err(failed)?;
            // Zero only what the last segment scored (even if it stopped on an error).
            for &doc in touched.iter() {
                scores[doc as usize] = 0.0;
            }
            touched.clear();
            if scores.len() < segment.max_doc() as usize {
                scores.resize(segment.max_doc() as usize, 0.0);
            }
            for (info, &weight) in infos.iter().zip(&term_weights) {
                let Some(info) = info else { continue };
                let mut block = inverted
                    .read_block_postings_from_terminfo(info, IndexRecordOption::WithFreqs)
                    .map_err(io_failed)?;
                while !block.docs().is_empty() {
                    for (&doc, &tf) in block.docs().iter().zip(block.freqs()) {
                        let tf = tf as f32;
                        let score = &mut scores[doc as usize];
                        if *score == 0.0 {
                            touched.push(doc);
                        }
                        *score += weight * tf / (tf + length_terms[usize::from(lengths.fieldnorm_id(doc))]);
                    }
                    block.advance();
                }
            }
            let alive = segment.alive_bitset();
            for &doc in touched.iter() {
                let id = ids[doc as usize];
                if id < 0 || alive.is_some_and(|alive| alive.is_deleted(doc)) {
                    continue;
                }
                if allowed.is_none_or(|allowed| allowed.contains(id)) {
                    candidates.push((id, scores[doc as usize]));
                }
            }
        }
        self.scratch.lock().unwrap_or_else(PoisonError::into_inner).push(scratch);
        Ok(best_k(candidates, k))
    }
}

/// The index in `folder`; a new one if there is none, or if the one there cannot be read (it is
/// moved aside and deleted). Other processes may be doing the same at the same time.
fn open_or_create(folder: &Path) -> Result<Index> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match open_index(folder) {
            Ok(index) => return Ok(index),
            Err(e) => e,
        };
        if attempts > 100 {
            return Err(at(folder, error));
        }
        if folder.join("meta.json").exists() {
            // Damaged. Renaming is atomic, so of several processes that found it so, one
            // moves it and the others find it gone.
            let aside = folder.with_extension(format!("damaged-{}-{attempts}", std::process::id()));
            if fs::rename(folder, &aside).is_ok() {
                fs::remove_dir_all(&aside).map_err(Error::io(&aside))?;
            }
            continue;
        }
        fs::create_dir_all(folder).map_err(Error::io(folder))?;
        match Index::create_in_dir(folder, schema()) {
            Ok(index) => return Ok(index),
            // Another process created it first: open that one.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn open_index(folder: &Path) -> tantivy::Result<Index> {
    let index = Index::open_in_dir(folder)?;
    if index.schema() != schema() {
        return Err(TantivyError::SchemaError("not a Lore keyword index".into()));
    }
    Ok(index)
}

fn schema() -> Schema {
    let mut schema = Schema::builder();
    // Frequencies but no positions: BM25 needs no phrases.
    let indexing = TextFieldIndexing::default().set_tokenizer(TOKENIZER).set_index_option(IndexRecordOption::WithFreqs);
    schema.add_text_field(TEXT, TextOptions::default().set_indexing_options(indexing));
    schema.add_u64_field(CHUNK_ID, INDEXED | FAST);
    schema.build()
}

/// A tantivy failure: damage (if it persists, the folder can go: it is rebuilt from the store),
/// or the operating system's refusal.
fn at(folder: &Path, e: TantivyError) -> Error {
    let message = format!(
        "keyword index {}: {e}: if this persists, delete that folder, it is rebuilt from the store",
        folder.display()
    );
    match e {
        TantivyError::IoError(source) => {
            Error::Io { path: folder.to_path_buf(), source: std::io::Error::new(source.kind(), message) }
        }
        e => Error::Corrupt { path: folder.to_path_buf(), message, source: Some(Box::new(e)) },
    }
}

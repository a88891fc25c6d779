//! Many readers and one writer on one shared collection, through the pipeline's retrievers,
//! on the embedded store and on PostgreSQL (`LORE_TEST_PG`, which `scripts/test` starts).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use lore_core::{
    ChunkConfig, Document, Fusion, Hit, Metadata, PipelineConfig, RetrievalConfig, RetrievalMode, Section, Store,
};
use lore_engine::{Engine, Settings};
use lore_rag::{Pipeline, Source, ingest};
use lore_testkit::WordHash;

const DOCUMENTS: usize = 200;
const CHUNKS_PER_DOCUMENT: usize = 3;

/// Document `i`: three paragraphs, each a chunk, each naming the document and the shared word
/// "ledger" so that every search can reach every chunk.
fn document(i: usize) -> Document {
    let text = (0..CHUNKS_PER_DOCUMENT)
        .map(|p| format!("ledger entry doc{i} part{p} about topic{} and detail{}", i % 7, (i + p) % 11))
        .collect::<Vec<_>>()
        .join("\n\n");
    Document::new(format!("doc{i}.txt"), vec![Section::new(vec![], text)])
}

fn chunking() -> ChunkConfig {
    ChunkConfig::ParagraphMerge { chunk_size: 10, drop_remainder: false }
}

fn pipeline_config(mode: RetrievalMode) -> PipelineConfig {
    let retrieval = RetrievalConfig {
        mode,
        fusion: Fusion::Rrf,
        dense_depth: 10_000,
        keyword_depth: 10_000,
        ..RetrievalConfig::default()
    };
    PipelineConfig { top_k: 10_000, min_score: -1.0, retrieval, ..PipelineConfig::default() }
}

/// Chunks per document among `hits`.
fn chunks_by_document(hits: &[Hit]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for hit in hits {
        *counts.entry(hit.source.clone()).or_default() += 1;
    }
    counts
}

#[test]
fn eight_readers_see_whole_documents_while_a_writer_ingests_two_hundred() {
    let home = tempfile::tempdir().unwrap();
    readers_see_whole_documents(&Engine::new(Settings::at(home.path())).unwrap());
}

#[test]
fn on_postgres_eight_readers_see_whole_documents_while_a_writer_ingests_two_hundred() {
    let home = tempfile::tempdir().unwrap();
    let url = std::env::var("LORE_TEST_PG")
        .expect("LORE_TEST_PG is the URL of a PostgreSQL with pgvector: run scripts/test, or scripts/pg start");
    let settings = Settings { store: Some(url), ..Settings::at(home.path()) };
    let engine = Engine::new(settings).unwrap();
    for name in ["shared", "sequential"] {
        let _ = engine.catalog().delete(name);
    }
    readers_see_whole_documents(&engine);
}

fn readers_see_whole_documents(engine: &Engine) {
    let store = engine.catalog().create("shared", "word-hash", 64, chunking()).unwrap();
    let done = AtomicBool::new(false);
    let queries = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for reader in 0..8 {
            let (store, done, queries) = (store.clone(), &done, &queries);
            scope.spawn(move || {
                let mode = [RetrievalMode::Dense, RetrievalMode::Keyword, RetrievalMode::Hybrid][reader % 3];
                let pipeline = Pipeline::new(store.as_ref(), &WordHash, pipeline_config(mode)).unwrap();
                let mut rounds = 0;
                // At least a few rounds each, and on until the writer is done.
                while rounds < 3 || !done.load(Ordering::SeqCst) {
                    let found = pipeline.retrieve("ledger entry").unwrap_or_else(|e| panic!("{mode:?}: {e}"));
                    for (source, chunks) in chunks_by_document(&found.hits) {
                        assert_eq!(chunks, CHUNKS_PER_DOCUMENT, "{mode:?} saw part of {source}");
                    }
                    rounds += 1;
                    queries.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let (store, done) = (store.clone(), &done);
        scope.spawn(move || {
            // One document per ingest call: 200 separate writes for the readers to race.
            for i in 0..DOCUMENTS {
                assert_eq!(ingest_one(store.as_ref(), i).added, 1);
            }
            done.store(true, Ordering::SeqCst);
        });
    });
    assert!(queries.load(Ordering::SeqCst) >= 24);

    // The same documents ingested one after another with nobody reading give the same
    // collection, down to the chunk ids (which break ties between equal scores).
    let sequential = engine.catalog().create("sequential", "word-hash", 64, chunking()).unwrap();
    for i in 0..DOCUMENTS {
        ingest_one(sequential.as_ref(), i);
    }
    let summary = |store: &dyn Store| {
        let mut docs: Vec<_> =
            store.documents().unwrap().into_iter().map(|d| (d.source, d.content_hash, d.chunks)).collect();
        docs.sort();
        docs
    };
    assert_eq!(summary(store.as_ref()), summary(sequential.as_ref()));
    assert_eq!(store.stats().unwrap().chunks, DOCUMENTS * CHUNKS_PER_DOCUMENT);
    for mode in [RetrievalMode::Dense, RetrievalMode::Keyword, RetrievalMode::Hybrid] {
        for query in ["ledger doc17 part1", "topic3 detail5", "doc199"] {
            let texts = |store: &dyn Store| {
                let config = PipelineConfig { top_k: 10, ..pipeline_config(mode) };
                let found = Pipeline::new(store, &WordHash, config).unwrap().retrieve(query).unwrap();
                found
                    .hits
                    .into_iter()
                    .map(|h| (h.chunk_id, h.source, h.text, (h.score * 1e4).round() as i64))
                    .collect::<Vec<_>>()
            };
            assert_eq!(texts(store.as_ref()), texts(sequential.as_ref()), "{mode:?} {query}");
        }
    }
}

/// Ingests document `i` alone: one write.
fn ingest_one(store: &dyn Store, i: usize) -> lore_rag::IngestReport {
    ingest(store, &WordHash, None, &chunking(), &Metadata::new(), vec![Source::Document(document(i))], &mut |_| {})
        .unwrap()
}

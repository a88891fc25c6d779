//! pgvector's HNSW beside Lore's own, in one run, on the same vectors: COPIES noisy copies
//! ([`lore_testkit::NoisyCopies`]) of a collection's real embeddings, every 17th original held
//! out (and jittered) as a query. For each: build time, size, and recall@10 against exact search
//! with p50/p95 latency of `Store::search` at several ef_search, one query at a time.
//!
//! ```text
//! scripts/pg start            # prints URL
//! cargo run --release -p lore-pg --example ann_bench -- URL COLLECTION_DIR [COPIES]
//! ```
//! COLLECTION_DIR is an embedded collection (e.g. the one `lore eval` built for SciFact);
//! COPIES defaults to 1,000,000. Both indexes use m = 16, ef_construction = 64. pgvector's
//! index is built after loading (CREATE INDEX, as its documentation advises for bulk loads) with
//! `maintenance_work_mem` large enough for the graph; Lore's is built on first search.

use std::path::Path;
use std::time::Instant;

use lore_core::{AnnMode, Chunk, ChunkConfig, Document, Metadata, SearchSettings, Section, Store};
use lore_index::Collection;
use lore_pg::PgCollection;

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

const NAME: &str = "ann-bench";
const EF_SEARCH: [usize; 5] = [16, 32, 64, 128, 256];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(url), Some(source)) = (args.first(), args.get(1)) else {
        return Err("usage: ann_bench POSTGRES_URL COLLECTION_DIR [COPIES]".into());
    };
    let copies = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let vectors = lore_testkit::all_vectors(&Collection::open(Path::new(source))?)?;
    let (queries, originals): (Vec<_>, Vec<_>) = vectors.into_iter().enumerate().partition(|(i, _)| i % 17 == 0);
    let originals: Vec<Vec<f32>> = originals.into_iter().map(|(_, v)| v).collect();
    let mut noise = lore_testkit::NoisyCopies::new(7);
    let indexed = noise.of(&originals, copies);
    let queries: Vec<Vec<f32>> = queries.iter().map(|(_, q)| noise.copy(q)).collect();
    println!("{copies} noisy copies of {} vectors from {source}; {} queries", originals.len(), queries.len());

    let started = Instant::now();
    let truth: Vec<Vec<usize>> = queries.iter().map(|q| exact_top10(&indexed, q)).collect();
    println!("exact top-10 by brute force: {:.1} s", started.elapsed().as_secs_f64());

    let settings = SearchSettings {
        ann: lore_core::AnnSettings { mode: AnnMode::On, ..Default::default() },
        ..Default::default()
    };
    println!("m = {}, ef_construction = {}", settings.ann.m, settings.ann.ef_construction);

    // Lore: the store first, then the graph on the first search (one thread).
    let dir = tempfile::tempdir()?;
    let lore = Collection::create(dir.path(), "copies", indexed[0].len(), ChunkConfig::Whole)?;
    lore.configure(settings.clone())?;
    let started = Instant::now();
    load(&lore, &indexed)?;
    let loaded = started.elapsed().as_secs_f64();
    let started = Instant::now();
    lore.search(&queries[0], 10, None)?;
    println!(
        "lore: load {loaded:.1} s, graph build {:.1} s; size {:.0} MB (store {:.0} MB, dense.hnsw {:.0} MB)",
        started.elapsed().as_secs_f64(),
        (dir_size(dir.path())) as f64 / 1e6,
        std::fs::metadata(dir.path().join("store.sqlite"))?.len() as f64 / 1e6,
        std::fs::metadata(dir.path().join("dense.hnsw")).map(|m| m.len()).unwrap_or(0) as f64 / 1e6,
    );
    measure("lore", &lore, &settings, &queries, &truth)?;
    drop(lore);

    // pgvector: rows first, then CREATE INDEX.
    let _ = PgCollection::delete(url, NAME);
    let pg = PgCollection::create(url, NAME, "copies", indexed[0].len(), ChunkConfig::Whole)?;
    pg.configure(settings.clone())?;
    let mut sql = postgres::Client::connect(url, postgres::NoTls)?;
    sql.batch_execute(&format!("DROP INDEX \"lore/{NAME}\".chunks_hnsw"))?;
    let started = Instant::now();
    load(&pg, &indexed)?;
    let loaded = started.elapsed().as_secs_f64();
    let started = Instant::now();
    sql.batch_execute(&format!(
        "SET maintenance_work_mem = '8GB'; SET max_parallel_maintenance_workers = 1;
         CREATE INDEX chunks_hnsw ON \"lore/{NAME}\".chunks USING hnsw (embedding vector_cosine_ops)
             WITH (m = {}, ef_construction = {})",
        settings.ann.m, settings.ann.ef_construction
    ))?;
    let built = started.elapsed().as_secs_f64();
    let mut size = |relation: &str| -> Result<f64> {
        let bytes: i64 =
            sql.query_one(&format!("SELECT pg_total_relation_size('\"lore/{NAME}\".{relation}')"), &[])?.get(0);
        Ok(bytes as f64 / 1e6)
    };
    let index_mb = size("chunks_hnsw")?;
    println!(
        "pgvector: load {loaded:.1} s, CREATE INDEX (leader + 1 worker) {built:.1} s; chunks table {:.0} MB \
         (index included), index {index_mb:.0} MB",
        size("chunks")?
    );
    measure("pgvector", &pg, &settings, &queries, &truth)?;
    drop(pg);
    PgCollection::delete(url, NAME)?;
    Ok(())
}

/// The vectors as chunks of documents of 1,000 (a million vectors are not a million transactions).
fn load(store: &dyn Store, vectors: &[Vec<f32>]) -> Result<()> {
    for (d, part) in vectors.chunks(1000).enumerate() {
        let chunks: Vec<Chunk> = (0..part.len())
            .map(|ordinal| Chunk { text: format!("{}", d * 1000 + ordinal), ordinal, metadata: Metadata::new() })
            .collect();
        let doc = Document::new(format!("d{d}"), vec![Section::new(vec![], format!("d{d}"))]);
        store.upsert(&doc, &chunks, part)?;
    }
    Ok(())
}

/// Positions of the 10 vectors most similar to `query` (all are unit length).
fn exact_top10(vectors: &[Vec<f32>], query: &[f32]) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> =
        vectors.iter().enumerate().map(|(i, v)| (v.iter().zip(query).map(|(a, b)| a * b).sum(), i)).collect();
    scored.select_nth_unstable_by(9, |a, b| b.0.total_cmp(&a.0));
    scored.truncate(10);
    scored.into_iter().map(|(_, i)| i).collect()
}

/// Recall@10 against `truth` and latency percentiles at each ef_search. Chunk texts are the
/// vectors' positions.
fn measure(
    name: &str,
    store: &dyn Store,
    settings: &SearchSettings,
    queries: &[Vec<f32>],
    truth: &[Vec<usize>],
) -> Result<()> {
    for ef in EF_SEARCH {
        let mut settings = settings.clone();
        settings.ann.ef_search = ef;
        store.configure(settings)?;
        let mut found = 0;
        let mut latencies = Vec::new();
        for _round in 0..2 {
            for (query, relevant) in queries.iter().zip(truth) {
                let started = Instant::now();
                let hits = store.search(query, 10, None)?;
                latencies.push(started.elapsed().as_secs_f64() * 1e3);
                found += hits.iter().filter(|h| relevant.contains(&h.text.parse().unwrap_or(usize::MAX))).count();
            }
        }
        latencies.sort_by(f64::total_cmp);
        let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
        println!(
            "{name} ef_search {ef}: recall@10 {:.4}, p50 {:.3} ms, p95 {:.3} ms",
            found as f64 / (20 * truth.len()) as f64,
            at(0.5),
            at(0.95)
        );
    }
    Ok(())
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

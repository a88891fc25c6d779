//! Measures a collection at scale: ingest, the first search (which loads every vector from
//! SQLite), later searches, and the first search after reopening.
//!
//! `cargo run --release -p lore-index --example scale -- [CHUNKS] [DIMENSION]` (default 50000 384)

use std::env;
use std::time::Instant;

use lore_core::{Chunk, ChunkConfig, Document, Metadata, Section};
use lore_index::{Collection, Store};

/// Any failure, the library's or the file system's.
type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

const CHUNKS_PER_DOCUMENT: usize = 50;

fn main() -> Result<()> {
    let mut args = env::args().skip(1).map(|arg| arg.parse::<usize>());
    let chunks = args.next().transpose().ok().flatten().unwrap_or(50_000);
    let dimension = args.next().transpose().ok().flatten().unwrap_or(384);
    let dir = tempfile::tempdir()?;
    let collection = Collection::create(dir.path(), "synthetic", dimension, ChunkConfig::default())?;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut random_vector = || -> Vec<f32> {
        (0..dimension)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    };
    // About the size of a 512-character chunk of prose.
    let filler = "lorem ipsum dolor sit amet ".repeat(19);

    let started = Instant::now();
    for d in 0..chunks.div_ceil(CHUNKS_PER_DOCUMENT) {
        let count = CHUNKS_PER_DOCUMENT.min(chunks - d * CHUNKS_PER_DOCUMENT);
        let parts: Vec<Chunk> = (0..count)
            .map(|ordinal| Chunk { text: format!("{d}/{ordinal} {filler}"), ordinal, metadata: Metadata::new() })
            .collect();
        let vectors: Vec<Vec<f32>> = (0..count).map(|_| random_vector()).collect();
        let doc = Document::new(format!("doc{d}"), vec![Section::new(vec![], format!("document {d}"))]);
        collection.upsert(&doc, &parts, &vectors)?;
    }
    println!("ingest {chunks} x {dimension}: {:.2} s", started.elapsed().as_secs_f64());
    println!("on disk: {:.1} MB", collection.stats()?.bytes_on_disk as f64 / 1e6);

    let queries: Vec<Vec<f32>> = (0..100).map(|_| random_vector()).collect();
    let started = Instant::now();
    collection.search(&queries[0], 10, None)?;
    println!("first search (loads the matrix): {:.3} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    for query in &queries {
        collection.search(query, 10, None)?;
    }
    println!("search top-10: {:.2} ms/query", started.elapsed().as_secs_f64() * 1e3 / queries.len() as f64);
    drop(collection);

    let started = Instant::now();
    let reopened = Collection::open(dir.path())?;
    reopened.search(&queries[0], 10, None)?;
    println!("reopen + first search: {:.3} s", started.elapsed().as_secs_f64());
    Ok(())
}

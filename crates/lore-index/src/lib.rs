//! Lore collections on disk: a directory holding documents, their chunks and one vector per
//! chunk, searched by cosine similarity (exact, or an HNSW graph for large collections) or by
//! BM25 over the chunk texts, both under metadata filters, updated document by document.
//!
//! ```
//! use lore_core::{Chunk, ChunkConfig, Document, Filter, Metadata, Section};
//! use lore_index::{Collection, Store, UpsertOutcome};
//!
//! let dir = tempfile::tempdir()?;
//! let collection = Collection::create(dir.path(), "toy-embedder", 3, ChunkConfig::default())?;
//!
//! let sections = vec![Section::new(vec![], "Rust is fast.\nSQLite is small.")];
//! let doc = Document::new("notes.md", sections);
//! let chunks = ["Rust is fast.", "SQLite is small."]
//!     .iter()
//!     .enumerate()
//!     .map(|(ordinal, text)| Chunk { text: text.to_string(), ordinal, metadata: Metadata::new() })
//!     .collect::<Vec<_>>();
//! // An embedder makes these; the collection scales them to unit length.
//! let vectors = [vec![1.0, 0.0, 0.0], vec![0.0, 2.0, 0.0]];
//! assert_eq!(collection.upsert(&doc, &chunks, &vectors)?, UpsertOutcome::Added);
//!
//! let hits = collection.search(&[0.1, 0.9, 0.0], 1, None)?;
//! assert_eq!(hits[0].text, "SQLite is small.");
//! assert_eq!(hits[0].metadata["ordinal"], 1);
//!
//! // The same chunks by their words (BM25), here only among the chunks of `notes.md`.
//! let only_notes = Filter::source("notes.md");
//! let hits = collection.search_keyword("small SQLite", 5, Some(&only_notes))?;
//! assert_eq!(hits[0].text, "SQLite is small.");
//!
//! // Everything is on disk: another process (or a later run) sees the same collection.
//! let reopened = Collection::open(dir.path())?;
//! assert_eq!(reopened.document_hash("notes.md")?, Some(doc.content_hash.clone()));
//! assert_eq!(reopened.search(&[0.1, 0.9, 0.0], 1, None)?[0].chunk_id, hits[0].chunk_id);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod collection;
mod dense;
mod filter;
mod graph;
mod hnsw;
mod keyword;
mod store;
mod vectors;

pub use collection::Collection;
pub use dense::VectorIndex;
pub use keyword::{ENGLISH_STOP_WORDS, TermAnalyzer, bm25_length};
/// The records and settings of the [`lore_core::Store`] trait, here too for callers of this crate alone.
pub use lore_core::{
    Analyzer, AnnMode, AnnSettings, DocumentInfo, KeywordSettings, Manifest, SearchSettings, Stats, Store,
    UpsertOutcome, VectorMemory,
};

#[cfg(test)]
mod tests {
    /// One handle is shared by every thread of a server.
    #[test]
    fn a_collection_is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<super::Collection>();
    }
}

//! The shared vocabulary of Lore: what flows between the crates, and the traits that let
//! retrieval and generation run on any model.
//!
//! A [`Document`] is what ingest makes of a file; chunkers cut it into [`Chunk`]s; an
//! [`Embedder`] turns chunk texts into vectors; a search returns [`Hit`]s; a [`ChatModel`]
//! turns a prompt into an [`Answer`] with [`Citation`]s; a [`Reranker`] reorders search hits by
//! reading each with the query. A [`Store`] keeps a collection's documents, chunks and
//! vectors and searches them; [`Retriever`]s are the ways of searching it that the pipeline fuses.
//! Every failure is an [`Error`] of one [`ErrorKind`].
//!
//! ```
//! use lore_core::{Document, Section, Metadata};
//!
//! let doc = Document::new("notes/lore.md", vec![
//!     Section::new(vec!["Lore".into()], "Lore is a RAG engine written in Rust."),
//! ]);
//! assert_eq!(doc.source, "notes/lore.md");
//! assert_eq!(doc.text(), "Lore is a RAG engine written in Rust.");
//! // The content hash identifies the text, so re-ingesting it can be skipped.
//! assert_eq!(doc.content_hash.len(), 16);
//! assert_eq!(Metadata::new().len(), 0);
//! ```

#![warn(missing_docs)]

mod chat;
mod config;
mod document;
mod embed;
mod error;
mod filter;
mod hash;
mod lang;
mod rerank;
mod retrieve;
mod settings;
mod store;

pub use chat::{ChatModel, FinishReason, Generation, GenerationOptions, Message, ReplyFormat, Role};
pub use config::{
    Answerability, ChunkConfig, Fusion, GateWeights, PipelineConfig, PromptStyle, RefusalCheck, RerankConfig,
    RerankKind, RetrievalConfig, RetrievalMode, RewriteConfig, RewriteKind, SizeUnit, ThemeUse, Verification,
};
pub use document::{Answer, AnswerChecks, CheckedSentence, Chunk, Citation, Document, Hit, Metadata, Section, Timings};
pub use embed::{EmbedKind, Embedder, Tokenize};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use filter::{Condition, Filter, GROUPS_FIELD};
pub use hash::Fnv1a;
pub use lang::{Language, detect_language, is_cjk};
pub use rerank::{Calibration, Reranker};
pub use retrieve::{Retriever, RetrieverQuery};
pub use settings::{
    Analyzer, AnnMode, AnnSettings, GraphExtractor, GraphSettings, KeywordSettings, SearchSettings, VectorMemory,
};
pub use store::{DocumentInfo, Entity, Link, LinkQuery, Manifest, Stats, Store, StoredDocument, UpsertOutcome};

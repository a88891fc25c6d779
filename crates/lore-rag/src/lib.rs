//! The Lore pipeline: documents in, grounded and cited answers out.
//!
//! [`ingest`] parses, chunks, embeds and stores sources in a collection; a [`Pipeline`]
//! retrieves the chunks closest to a question and has a chat model answer from them,
//! citing them as `[n]`, or refuse when they do not hold the answer. Both see the collection
//! only through [`lore_core::Store`], and the pipeline's retrievers through
//! [`lore_core::Retriever`], so any backend and any retriever fit.
//!
//! ```
//! use lore_core::{ChunkConfig, Document, EmbedKind, Embedder, Metadata, PipelineConfig, Result, Section, Tokenize};
//! use lore_index::Collection;
//! use lore_rag::{ingest, Pipeline, Source};
//!
//! /// A toy embedder for the example: counts of a few letters, normalised.
//! struct Letters;
//! impl Embedder for Letters {
//!     fn id(&self) -> &str { "letters" }
//!     fn dimension(&self) -> usize { 4 }
//!     fn max_tokens(&self) -> usize { 512 }
//!     fn tokenizer(&self) -> Option<&dyn Tokenize> { None }
//!     fn embed(&self, texts: &[&str], _: EmbedKind) -> Result<Vec<Vec<f32>>> {
//!         Ok(texts.iter().map(|t| {
//!             let v: Vec<f32> = ['r', 'u', 's', 'k'].iter().map(|c| t.matches(*c).count() as f32 + 0.1).collect();
//!             let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
//!             v.iter().map(|x| x / norm).collect()
//!         }).collect())
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let chunking = ChunkConfig::Whole;
//! let collection = Collection::create(dir.path(), "letters", 4, chunking.clone())?;
//! let docs = ["rust trusts us", "bake a cake"].map(|t| Source::Document(Document::new(t, vec![Section::new(vec![], t)])));
//! let report = ingest(&collection, &Letters, None, &chunking, &Metadata::new(), docs.into(), &mut |_| {})?;
//! assert_eq!(report.added, 2);
//!
//! let pipeline = Pipeline::new(&collection, &Letters, PipelineConfig { top_k: 1, ..Default::default() })?;
//! let found = pipeline.retrieve("rust")?;
//! assert_eq!(found.hits[0].text, "rust trusts us");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod evidence;
mod explain;
mod fusion;
mod indexing;
mod pipeline;
mod preset;
mod prompt;
mod rerank;
mod retrievers;
mod rewrite;
mod support;
mod themes;
mod verify;

pub use evidence::Evidence;
pub use explain::one_line;
pub use fusion::{WeightedList, fuse};
pub use indexing::{IngestReport, Progress, Source, extract_entities, ingest, remove_vanished};
pub use pipeline::{Explanation, Pipeline, Ranked, RerankExplanation, Retrieval, RetrieverHits, ThemeRoute};
pub use preset::{PRESETS, load_pipeline, parse_pipeline};
pub use prompt::{REFUSAL_EN, REFUSAL_ZH, cited_numbers, context_passages, grounded_prompt, is_refusal, refusal};
pub use rerank::{LlmReranker, mmr, truncate};
pub use retrievers::{DenseRetriever, KeywordRetriever};
pub use rewrite::{QueryRole, SearchQuery, follow_up, parse_rewrites, rewrite, standalone_question};
pub use support::lexical_support;
pub use themes::{THEME_PREFIX, ThemeReport, build_themes, is_theme_source};

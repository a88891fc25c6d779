//! Turns files into [`Document`](lore_core::Document)s and documents into
//! [`Chunk`](lore_core::Chunk)s.
//!
//! ```
//! use lore_core::{ChunkConfig, SizeUnit};
//! use lore_ingest::{chunk, parse};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("guide.md");
//! std::fs::write(&path, "# Guide\n\n## Install\n\nRun the installer.\n").unwrap();
//! // The format comes from the content or else the extension; text in memory goes through
//! // `parse_text`, bytes through `parse_bytes`.
//! let doc = parse(&path).unwrap();
//! assert_eq!(doc.title.as_deref(), Some("Guide"));
//! assert_eq!(doc.metadata["format"], "markdown");
//! let config = ChunkConfig::HeadingAware { chunk_size: 512, overlap: 0, unit: SizeUnit::Chars, prefix_headings: true };
//! // Only the semantic chunker and sizes in tokens need the embedder.
//! let chunks = chunk(&doc, &config, None).unwrap();
//! assert_eq!(chunks.len(), 1);
//! assert_eq!(chunks[0].metadata["heading_path"], serde_json::json!(["Guide", "Install"]));
//! // The headings are embedded with the text to help the search; the generator reads the context.
//! assert_eq!(chunks[0].text, "Guide > Install\nRun the installer.");
//! assert_eq!(chunks[0].metadata["context"], "Run the installer.");
//! ```

#![warn(missing_docs)]

mod beir;
mod chunk;
mod discover;
mod formats;
mod parse;

pub use beir::read_beir_corpus;
pub use chunk::chunk;
pub use discover::{Discovered, discover};
pub use parse::{Format, ParseLimits, parse, parse_bytes, parse_bytes_with_limits, parse_text, parse_with_limits};

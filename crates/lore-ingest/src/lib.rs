//! Turns files into [`Document`]s and documents into [`Chunk`]s.
//!
//! ```
//! use lore_core::ChunkConfig;
//! use lore_ingest::{chunk, parse_text, Format};
//!
//! let doc = parse_text("guide.md", "# Guide\n\n## Install\n\nRun the installer.\n", Format::Markdown);
//! assert_eq!(doc.title.as_deref(), Some("Guide"));
//! let config = ChunkConfig::ParagraphMerge { chunk_size: 512, drop_remainder: false };
//! let chunks = chunk(&doc, &config, None).unwrap();
//! assert_eq!(chunks.len(), 1);
//! assert_eq!(chunks[0].metadata["heading_path"], serde_json::json!(["Guide", "Install"]));
//! ```

mod beir;
mod chunk;
mod discover;
mod formats;
mod parse;

pub use beir::read_beir_corpus;
pub use chunk::chunk;
pub use discover::{Discovered, discover};
pub use parse::{Format, ParseLimits, parse, parse_bytes, parse_text, parse_with_limits};

//! Turns files into [`Document`]s and documents into [`Chunk`]s.
//!
//! ```
//! use lore_core::{ChunkConfig, SizeUnit};
//! use lore_ingest::{chunk, parse_text, Format};
//!
//! let doc = parse_text("guide.md", "# Guide\n\n## Install\n\nRun the installer.\n", Format::Markdown);
//! assert_eq!(doc.title.as_deref(), Some("Guide"));
//! let config = ChunkConfig::HeadingAware { chunk_size: 512, overlap: 0, unit: SizeUnit::Chars, prefix_headings: true };
//! // Only the semantic chunker and sizes in tokens need the embedder.
//! let chunks = chunk(&doc, &config, None).unwrap();
//! assert_eq!(chunks.len(), 1);
//! assert_eq!(chunks[0].metadata["heading_path"], serde_json::json!(["Guide", "Install"]));
//! // The headings are embedded with the text to help the search; the generator reads the context.
//! assert_eq!(chunks[0].text, "Guide > Install\nRun the installer.");
//! assert_eq!(chunks[0].metadata["context"], "Run the installer.");
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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Free-form metadata: source, page, heading path and anything a parser knows.
pub type Metadata = BTreeMap<String, serde_json::Value>;

/// A part of a document under one heading path (empty for text without headings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub heading_path: Vec<String>,
    pub text: String,
    /// Where the section sits in its file when headings do not say it: `page` (PDF, from 1),
    /// `slide` (from 1), `sheet` (its name), `record` (JSONL line, from 1), and a record's own fields.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

impl Section {
    pub fn new(heading_path: Vec<String>, text: impl Into<String>) -> Self {
        Section { heading_path, text: text.into(), metadata: Metadata::new() }
    }
}

/// A parsed file: its text in sections, with metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Where the document came from (a path or an id); unique within a collection.
    pub source: String,
    pub title: Option<String>,
    pub sections: Vec<Section>,
    pub metadata: Metadata,
    /// FNV-1a 64 of the section texts and headings, as 16 hex digits.
    pub content_hash: String,
}

impl Document {
    pub fn new(source: impl Into<String>, sections: Vec<Section>) -> Self {
        let content_hash = content_hash(&sections);
        Document { source: source.into(), title: None, sections, metadata: Metadata::new(), content_hash }
    }

    /// The whole text, sections separated by blank lines.
    pub fn text(&self) -> String {
        self.sections.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join("\n\n")
    }
}

fn content_hash(sections: &[Section]) -> String {
    // FNV-1a: stable across Rust versions and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for s in sections {
        for part in &s.heading_path {
            feed(part.as_bytes());
            feed(&[0x1f]);
        }
        feed(&[0x1e]);
        feed(s.text.as_bytes());
        feed(&[0x1d]);
    }
    format!("{h:016x}")
}

/// A piece of a document small enough to embed and to put in a prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub text: String,
    /// Position of the chunk within its document, from 0.
    pub ordinal: usize,
    pub metadata: Metadata,
}

/// A chunk found by a search, with its score (higher is better).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub chunk_id: i64,
    pub source: String,
    pub text: String,
    pub score: f32,
    pub metadata: Metadata,
}

/// A source the answer is grounded on, numbered as in the prompt (`[n]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    pub n: usize,
    pub chunk_id: i64,
    pub source: String,
    pub score: f32,
    /// Whether the answer text actually cites `[n]`.
    pub cited: bool,
}

/// Wall-clock milliseconds spent in each stage of answering.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Query rewriting by the chat model.
    #[serde(default)]
    pub rewrite_ms: f64,
    pub embed_ms: f64,
    /// Searches and fusion.
    pub search_ms: f64,
    #[serde(default)]
    pub rerank_ms: f64,
    pub generate_ms: f64,
    pub total_ms: f64,
}

/// A generated answer with the sources it was given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub question: String,
    pub text: String,
    /// The answer is the refusal sentence: the documents did not contain the answer.
    pub refused: bool,
    pub citations: Vec<Citation>,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub timings: Timings,
}

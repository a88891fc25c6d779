use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Fnv1a;

/// Free-form metadata: source, page, heading path and anything a parser knows.
pub type Metadata = BTreeMap<String, serde_json::Value>;

/// A part of a document under one heading path (empty for text without headings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// The headings above the section, outermost first.
    pub heading_path: Vec<String>,
    /// The section's text, without its headings.
    pub text: String,
    /// Where the section sits in its file when headings do not say it: `page` (PDF, from 1),
    /// `slide` (from 1), `sheet` (its name), `record` (JSONL line, from 1), and a record's own fields.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

impl Section {
    /// A section with no metadata.
    pub fn new(heading_path: Vec<String>, text: impl Into<String>) -> Self {
        Section { heading_path, text: text.into(), metadata: Metadata::new() }
    }
}

/// A parsed file: its text in sections, with metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Where the document came from (a path or an id); unique within a collection.
    pub source: String,
    /// The title the file gives (its metadata or first heading), else the file's name.
    pub title: Option<String>,
    /// The text, in reading order.
    pub sections: Vec<Section>,
    /// What the parser knows of the whole file: `source`, `format`, `language`, `modified_unix`.
    pub metadata: Metadata,
    /// FNV-1a 64 of the section texts and headings, as 16 hex digits.
    pub content_hash: String,
}

impl Document {
    /// A document of `sections` with no title or metadata, its content hash computed.
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
    let mut hash = Fnv1a::new();
    for s in sections {
        for part in &s.heading_path {
            hash.write(part.as_bytes());
            hash.write(&[0x1f]);
        }
        hash.write(&[0x1e]);
        hash.write(s.text.as_bytes());
        hash.write(&[0x1d]);
    }
    format!("{:016x}", hash.finish())
}

/// A piece of a document small enough to embed and to put in a prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// The text that is embedded and searched (with its headings prefixed, where the chunker
    /// was asked to).
    pub text: String,
    /// Position of the chunk within its document, from 0.
    pub ordinal: usize,
    /// The metadata of the section the chunk starts in (`page`, …), the document's `source`,
    /// `heading_path`, and `context` or `parent`: the text the generator reads instead of
    /// `text`, where it differs.
    pub metadata: Metadata,
}

/// A chunk found by a search, with its score (higher is better).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The chunk's id in its collection.
    pub chunk_id: i64,
    /// The [`Document::source`] the chunk comes from.
    pub source: String,
    /// The chunk's text.
    pub text: String,
    /// How well the chunk matches; comparable only within one search.
    pub score: f32,
    /// The chunk's metadata.
    pub metadata: Metadata,
}

/// A source the answer is grounded on, numbered as in the prompt (`[n]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    /// The number the prompt gave the source, from 1.
    pub n: usize,
    /// The cited chunk's id in its collection.
    pub chunk_id: i64,
    /// The document the chunk comes from.
    pub source: String,
    /// The chunk's score in the search that found it.
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
    /// Embedding the query.
    pub embed_ms: f64,
    /// Searches and fusion.
    pub search_ms: f64,
    /// Reranking the hits.
    #[serde(default)]
    pub rerank_ms: f64,
    /// Writing the answer.
    pub generate_ms: f64,
    /// Everything, from the question to the answer.
    pub total_ms: f64,
}

/// A generated answer with the sources it was given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The question as asked.
    pub question: String,
    /// The answer, with `[n]` citations.
    pub text: String,
    /// The answer is the refusal sentence: the documents did not contain the answer.
    pub refused: bool,
    /// The sources the prompt gave, numbered as there.
    pub citations: Vec<Citation>,
    /// Tokens of the prompt the chat model read.
    pub prompt_tokens: usize,
    /// Tokens of the answer.
    pub completion_tokens: usize,
    /// Where the time went.
    pub timings: Timings,
    /// How the answer was checked against its passages.
    #[serde(default)]
    pub checks: AnswerChecks,
}

/// What decided an answer: the evidence before generating, and each generated sentence's check
/// against the passages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnswerChecks {
    /// The evidence score, from 0 to 1, that the passages answer the question; `None` when the
    /// answerability gate is off.
    pub evidence: Option<f32>,
    /// Lore refused without generating: the evidence score was below the gate's threshold. The
    /// citations are then the nearest passages, none of them cited.
    pub gated: bool,
    /// The generator's text, when verification changed it or a quote replaced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated: Option<String>,
    /// The generator refused although the evidence was strong enough for a second look, and
    /// was asked again: its second reply, which is the answer (before verification) when it
    /// was no refusal and came from the passages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_look: Option<String>,
    /// The generator gave no answer the passages support although the evidence was strong
    /// ([`crate::RefusalCheck`]): the answer quotes the passage sentences that hold the most of
    /// the question's words, and cites that passage.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quoted: bool,
    /// Each sentence of the generated answer, with its check; empty when nothing was verified.
    pub sentences: Vec<CheckedSentence>,
    /// Passages (numbered as the citations) that held sentences giving the reader orders
    /// ("ignore the instructions above"); those sentences were withheld from the generator.
    pub withheld: Vec<usize>,
}

/// One sentence of a generated answer, checked against the passages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckedSentence {
    /// The sentence, without its citation marks.
    pub text: String,
    /// The passages the generator cited for it.
    pub cited: Vec<usize>,
    /// The passages credited after the check (the cited one when it supports the sentence,
    /// else the one that supports it best); empty when none does.
    pub supported_by: Vec<usize>,
    /// The share of the sentence's claim (its own words with the question's) that the best
    /// three consecutive sentences of the passage credited hold (or, when none is, of the best
    /// passage); 0 when the sentence was removed unchecked.
    pub support: f32,
    /// How the sentence was checked: `lexical`, or `nothing to check` (punctuation or a bare
    /// citation); or why it was removed unchecked: `adds nothing to the question` (the
    /// question's words given back to a question that asks for something), `repeats an earlier
    /// sentence`.
    pub method: String,
    /// The sentence stays in the answer.
    pub kept: bool,
}

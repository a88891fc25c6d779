use serde::{Deserialize, Serialize};

use crate::GenerationOptions;

/// How documents are cut into chunks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ChunkConfig {
    /// The classic tutorial chunker: split on newlines, drop empty lines, and concatenate lines
    /// until a chunk reaches `chunk_size` characters. A shorter trailing remainder is kept unless
    /// `drop_remainder` is set (the tutorial drops it).
    ParagraphMerge {
        chunk_size: usize,
        #[serde(default)]
        drop_remainder: bool,
    },
    /// Windows of `size` embedder tokens, each starting `size - overlap` tokens after the last.
    TokenWindow { size: usize, overlap: usize },
    /// Each document is one chunk (truncated by the embedder to its maximum length).
    Whole,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig::ParagraphMerge { chunk_size: 512, drop_remainder: false }
    }
}

/// Every knob of the question-answering pipeline. A leaderboard row is a named `PipelineConfig`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineConfig {
    /// How many chunks are retrieved and given to the generator.
    pub top_k: usize,
    /// Chunks scoring below this cosine similarity are not used as context.
    pub min_score: f32,
    pub generation: GenerationOptions,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig { top_k: 5, min_score: 0.0, generation: GenerationOptions::default() }
    }
}

//! Shared by the engine's tests: a deterministic embedder that needs no model.

use lore_core::{EmbedKind, Embedder, Result, Tokenize};

/// Each text as counts of its words hashed into 64 buckets, normalised: texts sharing words
/// are close. Deterministic, so two ingests of the same files store the same vectors.
pub struct WordHash;

impl Embedder for WordHash {
    fn id(&self) -> &str {
        "word-hash"
    }
    fn dimension(&self) -> usize {
        64
    }
    fn max_tokens(&self) -> usize {
        512
    }
    fn tokenizer(&self) -> Option<&dyn Tokenize> {
        None
    }
    fn embed(&self, texts: &[&str], _: EmbedKind) -> Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|text| {
                let mut v = vec![0.01f32; 64];
                for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
                    v[(lore_core::Fnv1a::of(word.to_lowercase().as_bytes()) % 64) as usize] += 1.0;
                }
                v
            })
            .collect())
    }
}

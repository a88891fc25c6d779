//! Stand-ins shared by Lore's tests, for testing what surrounds a model without loading one:
//! [`WordHash`], a deterministic embedder under which texts that share words are close.
//!
//! ```
//! use lore_core::{EmbedKind, Embedder};
//! use lore_testkit::WordHash;
//!
//! let vectors = WordHash.embed(&["green tea", "tea leaves", "a red car"], EmbedKind::Passage)?;
//! let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
//! assert!(cosine(&vectors[0], &vectors[1]) > cosine(&vectors[0], &vectors[2]));
//! # Ok::<(), lore_core::Error>(())
//! ```

#![warn(missing_docs)]

use lore_core::{EmbedKind, Embedder, Result, Tokenize};

/// Each text as the counts of its lower-cased words hashed into 64 buckets, L2-normalised:
/// texts sharing words are close. Deterministic across runs and platforms, so two ingests of
/// the same texts store the same vectors. Its id is `word-hash`.
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
            .map(|t| {
                let mut v = vec![0.01f32; 64];
                for word in t.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
                    let h =
                        word.to_lowercase().bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
                    v[(h % 64) as usize] += 1.0;
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}

//! Stand-ins shared by Lore's tests and benchmarks: [`WordHash`], a deterministic embedder under
//! which texts that share words are close, for testing what surrounds a model without loading
//! one; and [`NoisyCopies`] with [`all_vectors`], large vector sets with the geometry of real
//! embeddings for index benchmarks.
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

use lore_core::{EmbedKind, Embedder, Result, Store, Tokenize};

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

/// Every stored vector of `store`, by chunk id.
pub fn all_vectors(store: &dyn Store) -> Result<Vec<Vec<f32>>> {
    let total = store.stats()?.chunks;
    let mut vectors = Vec::with_capacity(total);
    // Chunk ids count up from 1 and are never reused; a collection rewritten many times has
    // gaps, so ids are read in blocks until every chunk's vector is found.
    let mut first = 1;
    while vectors.len() < total && first <= 1000 * total as i64 {
        let block: Vec<i64> = (first..first + 1000).collect();
        vectors.extend(store.vectors(&block)?.into_iter().flatten());
        first += 1000;
    }
    Ok(vectors)
}

/// Noisy copies of real embeddings: a corpus far larger than any shipped dataset with the
/// geometry of real ones (uniform random vectors, which no corpus resembles, make graphs look
/// worse and quantizers look better than they are). Each component gets N(0, 0.02²) noise: a
/// noise of norm ≈ 0.39 in 384 dimensions, so a copy keeps a cosine of about 0.93 with its
/// original — closer than most pairs of different passages (e5's cosines between unrelated
/// texts are 0.7–0.8), so the copies of one passage form a tight cluster, as near-duplicate
/// and same-topic passages do. Deterministic for a seed.
pub struct NoisyCopies(u64);

impl NoisyCopies {
    /// Copies drawn from `seed`.
    pub fn new(seed: u64) -> NoisyCopies {
        NoisyCopies(seed | 1)
    }

    /// `count` copies of `originals`, cycling through them, each unit length.
    pub fn of(&mut self, originals: &[Vec<f32>], count: usize) -> Vec<Vec<f32>> {
        (0..count).map(|i| self.copy(&originals[i % originals.len()])).collect()
    }

    /// One noisy copy of `vector`, unit length.
    pub fn copy(&mut self, vector: &[f32]) -> Vec<f32> {
        let noisy: Vec<f32> = vector.iter().map(|x| x + 0.02 * self.gaussian()).collect();
        let norm = noisy.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        noisy.into_iter().map(|x| x / norm).collect()
    }

    /// A standard normal number (xorshift64, Box–Muller).
    fn gaussian(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }

    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

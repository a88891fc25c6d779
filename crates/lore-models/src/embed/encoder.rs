use std::ops::Range;

use lore_core::Result;

use crate::encoder::{BertEncoder, Sequence};

/// How token vectors become one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pooling {
    /// The mean of the token vectors.
    Mean,
    /// The vector of the first token ([CLS]).
    Cls,
}

/// A batch holds at most this many tokens (a single longer sequence goes alone). Sequences are
/// packed without padding, so the batch's cost is its tokens; the widest activation of a batch
/// (MiniLM's feed-forward, 1,536 floats a token) stays at 24 MiB.
const BATCH_TOKENS: usize = 4096;

/// A BERT encoder that turns token sequences into L2-normalised sentence vectors.
pub(crate) struct SentenceEncoder {
    model: BertEncoder,
    pooling: Pooling,
}

impl SentenceEncoder {
    pub(crate) fn new(model: BertEncoder, pooling: Pooling) -> Self {
        SentenceEncoder { model, pooling }
    }

    /// One unit vector per sequence (special tokens included, already truncated), in order.
    pub(crate) fn embed(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let mut vectors = Vec::with_capacity(sequences.len());
        for batch in token_batches(sequences.len(), |i| sequences[i].len()) {
            let inputs: Vec<Sequence> = sequences[batch].iter().map(|ids| Sequence { ids, types: None }).collect();
            let hidden = self.model.forward(&inputs)?;
            vectors.extend((0..inputs.len()).map(|i| self.pool(hidden.tokens(i))));
        }
        Ok(vectors)
    }

    fn pool(&self, tokens: &[f32]) -> Vec<f32> {
        let width = self.model.hidden_size();
        let mut pooled = match self.pooling {
            Pooling::Cls => tokens[..width].to_vec(),
            Pooling::Mean => {
                let mut sum = vec![0f32; width];
                for row in tokens.chunks_exact(width) {
                    sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
                }
                let count = (tokens.len() / width).max(1) as f32;
                sum.iter_mut().for_each(|s| *s /= count);
                sum
            }
        };
        let norm = pooled.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        pooled.iter_mut().for_each(|v| *v /= norm);
        pooled
    }
}

/// Splits sequences `0..count` into consecutive batches of at most [`BATCH_TOKENS`] tokens.
pub(crate) fn token_batches(count: usize, length: impl Fn(usize) -> usize) -> Vec<Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut tokens) = (0, 0);
    for i in 0..count {
        if i > start && tokens + length(i) > BATCH_TOKENS {
            batches.push(start..i);
            (start, tokens) = (i, 0);
        }
        tokens += length(i);
    }
    if count > start {
        batches.push(start..count);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_a_bounded_number_of_tokens() {
        let sizes = |width: usize, count: usize| -> Vec<usize> {
            token_batches(count, |_| width).iter().map(ExactSizeIterator::len).collect()
        };
        assert_eq!(sizes(16, 300), [256, 44]);
        assert_eq!(sizes(128, 40), [32, 8]);
        assert_eq!(sizes(5000, 2), [1, 1], "a sequence longer than a batch goes alone");
        let widths = [10, 20, 4000, 400];
        assert_eq!(token_batches(4, |i| widths[i]), [0..3, 3..4]);
        assert!(token_batches(0, |_| 1).is_empty());
    }
}

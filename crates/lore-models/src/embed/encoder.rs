use candle_core::{D, DType, IndexOp, Tensor};
use candle_transformers::models::bert::BertModel;
use lore_core::{Error, Result};

/// How token vectors become one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pooling {
    /// The mean of the token vectors, padding excluded.
    Mean,
    /// The vector of the first token ([CLS]).
    Cls,
}

/// A batch holds at most this many tokens, padding included. Attention scores grow with the
/// square of the length, so long inputs go in small batches and short ones in large batches.
const BATCH_TOKENS: usize = 4096;
/// Beyond this many rows a batch gains no speed and only delays the first results.
const BATCH_ROWS: usize = 64;
/// At most this many attention scores per head in a batch (rows × width²): with 12 heads of f32
/// that is 24 MiB per score tensor, under glibc's 32 MiB ceiling for reusing freed heap memory.
/// Larger tensors are mapped afresh from the kernel on every allocation, and zero-filling their
/// pages took 40% of the CPU time when embedding 512-token abstracts 8 at a time.
const BATCH_SCORES: usize = 1 << 19;

/// A BERT encoder that turns token sequences into L2-normalised sentence vectors.
pub(crate) struct SentenceEncoder {
    model: BertModel,
    pooling: Pooling,
    pad_id: u32,
}

impl SentenceEncoder {
    pub(crate) fn new(model: BertModel, pooling: Pooling, pad_id: u32) -> Self {
        SentenceEncoder { model, pooling, pad_id }
    }

    /// One unit vector per sequence (special tokens included, already truncated), in order.
    pub(crate) fn embed(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        // Sorting by length keeps the padding in each batch small.
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        order.sort_by_key(|&i| sequences[i].len());
        let batches = length_batches(&order, |i| sequences[i].len());

        // One batch at a time: candle already spreads each operation over the cores, and
        // running batches concurrently made MiniLM a quarter slower on 2 cores (they contend
        // for candle's spin-waiting thread pool).
        let mut vectors = vec![Vec::new(); sequences.len()];
        for batch in &batches {
            let rows: Vec<&[u32]> = batch.iter().map(|&i| sequences[i].as_slice()).collect();
            for (&i, vector) in batch.iter().zip(self.embed_batch(&rows)?) {
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }

    fn embed_batch(&self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * width);
        let mut mask = Vec::with_capacity(rows.len() * width);
        for row in rows {
            ids.extend_from_slice(row);
            ids.extend(std::iter::repeat_n(self.pad_id, width - row.len()));
            mask.extend(std::iter::repeat_n(1u32, row.len()));
            mask.extend(std::iter::repeat_n(0u32, width - row.len()));
        }
        let device = &self.model.device;
        let shape = (rows.len(), width);
        let ids = Tensor::from_vec(ids, shape, device).map_err(inference_error)?;
        let mask = Tensor::from_vec(mask, shape, device).map_err(inference_error)?;
        let pooled = self.forward_pooled(&ids, &mask).map_err(inference_error)?;
        pooled.to_vec2::<f32>().map_err(inference_error)
    }

    fn forward_pooled(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let token_types = ids.zeros_like()?;
        let hidden = self.model.forward(ids, &token_types, Some(mask))?;
        let pooled = match self.pooling {
            Pooling::Cls => hidden.i((.., 0))?,
            Pooling::Mean => {
                let mask = mask.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?;
                let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
                summed.broadcast_div(&mask.sum(1)?)?
            }
        };
        let norms = pooled.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f32::MAX)?;
        pooled.broadcast_div(&norms)
    }
}

/// Splits `order` (sorted by ascending length) into consecutive batches under the size limits.
pub(crate) fn length_batches(order: &[usize], length: impl Fn(usize) -> usize) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for &i in order {
        let width = length(i).max(1);
        let rows = current.len() + 1;
        if !current.is_empty()
            && (rows * width > BATCH_TOKENS || rows * width * width > BATCH_SCORES || current.len() == BATCH_ROWS)
        {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

fn inference_error(e: candle_core::Error) -> Error {
    Error::Model(format!("embedding inference failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_shrink_as_attention_grows() {
        let sizes = |width: usize, count: usize| -> Vec<usize> {
            let order: Vec<usize> = (0..count).collect();
            length_batches(&order, |_| width).iter().map(Vec::len).collect()
        };
        assert_eq!(sizes(16, 100), [64, 36], "short texts: the row limit");
        assert_eq!(sizes(128, 40), [32, 8], "the token limit");
        assert_eq!(sizes(512, 5), [2, 2, 1], "long texts: the attention limit");
        let order: Vec<usize> = (0..4).collect();
        let widths = [10, 20, 300, 400];
        assert_eq!(length_batches(&order, |i| widths[i]), [vec![0, 1, 2], vec![3]]);
    }
}

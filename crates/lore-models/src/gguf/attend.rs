//! Attention on the key/value cache, shared among the quantized products' threads: one reply
//! token's ([`attend_one`]) and a prompt chunk's ([`attend_chunk`]).
//!
//! A reply token is one query row per head. Through candle, its scores and weighted sum were
//! two matrix products whose operand packing cost more than their arithmetic, run on the
//! calling thread while the products' other threads waited for the next quantized product:
//! SmolLM2 decoding a 1,000-token reply on two threads spent a quarter of the main thread's time
//! in those products and the second thread over half of its time waiting.
//!
//! A prompt chunk keeps matrix products (`gemm`, without threads of its own), one pair per query
//! head and block of tokens, the blocks split among the threads. Two other ways were measured
//! on SmolLM2 with two threads and were faster on a 430-token prompt but slower on a 1,500-token
//! one (RAG prompts are the long kind): a row at a time as for a reply token (351 against 295
//! tokens/s at 430, 207 against 235 at 1,500), and candle's products per key/value head and
//! 32-token block on rayon's threads (330 against 275 at 430, 178 against 232 at 1,500).

use candle_core::{Device, Layout, Result, Storage, Tensor, bail};

use super::grouped::{SharedOutput, share};
use crate::encoder::math::softmax;

/// Attention of one token: `q` is `(heads, 1, head_dim)`, rotated; `keys` and `values` are
/// `(kv_heads, positions, head_dim)` views of the cache, the token's own position last, and
/// query head `h` reads key/value head `h / (heads / kv_heads)`. Returns `(1, heads × head_dim)`,
/// the heads side by side.
pub(super) fn attend_one(q: &Tensor, keys: &Tensor, values: &Tensor) -> Result<Tensor> {
    let (heads, tokens, head_dim) = q.dims3()?;
    let (kv_heads, positions, _) = keys.dims3()?;
    if tokens != 1 || heads % kv_heads != 0 || values.dims3()? != keys.dims3()? || keys.dim(2)? != head_dim {
        bail!("attention of one token: query {:?}, keys {:?}, values {:?}", q.dims(), keys.dims(), values.dims());
    }
    let group = heads / kv_heads;
    let q = q.flatten_all()?.to_vec1::<f32>()?;
    let (key_storage, key_layout) = keys.storage_and_layout();
    let (value_storage, value_layout) = values.storage_and_layout();
    let (Storage::Cpu(key_storage), Storage::Cpu(value_storage)) = (&*key_storage, &*value_storage) else {
        bail!("the key/value cache is not in CPU memory")
    };
    let key_heads = head_rows(key_storage.as_slice::<f32>()?, key_layout, kv_heads, positions, head_dim)?;
    let value_heads = head_rows(value_storage.as_slice::<f32>()?, value_layout, kv_heads, positions, head_dim)?;

    let scale = 1.0 / (head_dim as f32).sqrt();
    // SAFETY: each head's outputs are written whole by the one call that computes the head.
    let out = unsafe {
        SharedOutput::fill(heads * head_dim, |out_at| {
            share(heads, 2 * heads * positions * head_dim, |range| {
                let mut scores = vec![0f32; positions];
                for head in range {
                    let query = &q[head * head_dim..(head + 1) * head_dim];
                    let (keys, values) = (key_heads[head / group], value_heads[head / group]);
                    attend_row(query, keys, values, scale, &mut scores, out_at.slice(head * head_dim, head_dim));
                }
            })
        })
    };
    Tensor::from_vec(out, (1, heads * head_dim), &Device::Cpu)
}

/// Query rows per task of a prompt chunk's attention: a block's scores (`QUERY_BLOCK ×
/// positions`) stay in the core's cache between the two products.
const QUERY_BLOCK: usize = 64;

/// Attention of a prompt chunk: `q` is `(heads, tokens, head_dim)`, rotated, token `i` at
/// position `start + i`; `keys` and `values` are `(kv_heads, start + tokens, head_dim)` views of
/// the cache. Returns `(tokens, heads × head_dim)`, the heads side by side.
///
/// Each query head's tokens are taken in blocks of [`QUERY_BLOCK`], the blocks shared among the
/// quantized products' threads: a block's scores against the positions it may see (none after
/// its last token: the masked triangle is never computed), its masked softmax, and the weighted
/// sum of values, the two products by `gemm` on the calling thread. Through candle these were
/// two products over every position and four passes over their `positions²` scores per head
/// (the scale, the mask, softmax's two with libm's scalar `exp`), on the main thread while the
/// others waited: on SmolLM2 with two threads, the second spent a quarter of a prompt waiting.
pub(super) fn attend_chunk(q: &Tensor, keys: &Tensor, values: &Tensor, start: usize) -> Result<Tensor> {
    let (heads, tokens, head_dim) = q.dims3()?;
    let (kv_heads, positions, _) = keys.dims3()?;
    if heads % kv_heads != 0
        || values.dims3()? != keys.dims3()?
        || keys.dim(2)? != head_dim
        || positions != start + tokens
    {
        bail!("attention of {tokens} tokens from position {start}: query {:?}, keys {:?}", q.dims(), keys.dims());
    }
    let group = heads / kv_heads;
    let q = q.contiguous()?;
    let (q_storage, q_layout) = q.storage_and_layout();
    let (key_storage, key_layout) = keys.storage_and_layout();
    let (value_storage, value_layout) = values.storage_and_layout();
    let (Storage::Cpu(q_storage), Storage::Cpu(key_storage), Storage::Cpu(value_storage)) =
        (&*q_storage, &*key_storage, &*value_storage)
    else {
        bail!("attention operands are not in CPU memory")
    };
    let Some((q_from, q_to)) = q_layout.contiguous_offsets() else { bail!("the query is not contiguous") };
    let q = &q_storage.as_slice::<f32>()?[q_from..q_to];
    let key_heads = head_rows(key_storage.as_slice::<f32>()?, key_layout, kv_heads, positions, head_dim)?;
    let value_heads = head_rows(value_storage.as_slice::<f32>()?, value_layout, kv_heads, positions, head_dim)?;

    let scale = 1.0 / (head_dim as f32).sqrt();
    let blocks = tokens.div_ceil(QUERY_BLOCK);
    let width = heads * head_dim;
    // SAFETY: the tasks cover every (head, block of tokens), and each writes its block's rows of
    // its head's columns whole.
    let out = unsafe {
        SharedOutput::<f32>::fill(tokens * width, |out_at| {
            share(heads * blocks, 2 * heads * tokens * positions * head_dim, |range| {
                let mut scores = Vec::new();
                for task in range {
                    let (head, first) = (task / blocks, task % blocks * QUERY_BLOCK);
                    let rows = QUERY_BLOCK.min(tokens - first);
                    let seen = start + first + rows;
                    let (keys, values) = (key_heads[head / group], value_heads[head / group]);
                    scores.clear();
                    scores.resize(rows * seen, 0f32);
                    let query = &q[(head * tokens + first) * head_dim..];
                    // SAFETY: the operands hold `rows × head_dim`, `seen × head_dim` and
                    // `rows × seen` values at the strides given.
                    gemm::gemm(
                        rows,
                        seen,
                        head_dim,
                        scores.as_mut_ptr(),
                        1,
                        seen as isize,
                        false,
                        query.as_ptr(),
                        1,
                        head_dim as isize,
                        keys.as_ptr(),
                        head_dim as isize,
                        1,
                        0.0,
                        scale,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                    for (row, weights) in scores.chunks_exact_mut(seen).enumerate() {
                        let (weights, unseen) = weights.split_at_mut(start + first + row + 1);
                        softmax(weights);
                        unseen.fill(0.0);
                    }
                    // SAFETY: as above; the output block is `rows` rows of `head_dim` columns
                    // at `width` apart, written by this task alone, and `out` outlives the
                    // pool's call.
                    gemm::gemm(
                        rows,
                        head_dim,
                        seen,
                        out_at.at(first * width + head * head_dim),
                        1,
                        width as isize,
                        false,
                        scores.as_ptr(),
                        1,
                        seen as isize,
                        values.as_ptr(),
                        1,
                        head_dim as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            })
        })
    };
    Tensor::from_vec(out, (tokens, width), &Device::Cpu)
}

/// Each head's `positions × head_dim` values, which the cache keeps as consecutive rows.
fn head_rows<'a>(
    data: &'a [f32],
    layout: &Layout,
    heads: usize,
    positions: usize,
    head_dim: usize,
) -> Result<Vec<&'a [f32]>> {
    let &[head_stride, row_stride, 1] = layout.stride() else { bail!("cache strides {:?}", layout.stride()) };
    if row_stride != head_dim {
        bail!("cache rows of {row_stride} values for heads of {head_dim}");
    }
    (0..heads)
        .map(|head| {
            let start = layout.start_offset() + head * head_stride;
            match data.get(start..start + positions * head_dim) {
                Some(rows) => Ok(rows),
                None => bail!("cache head {head} is out of its storage"),
            }
        })
        .collect()
}

/// Softmax-weighted sum of `values`' rows by the scaled products of `query` with `keys`' rows,
/// into `out`; `scores` holds one value per row.
fn attend_row(query: &[f32], keys: &[f32], values: &[f32], scale: f32, scores: &mut [f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: AVX2 and FMA were detected.
        return unsafe { attend_row_avx2(query, keys, values, scale, scores, out) };
    }
    attend_row_inline(query, keys, values, scale, scores, out, |a, b, c| a * b + c)
}

/// The same loops compiled for AVX2 and FMA, which the binary cannot assume.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn attend_row_avx2(query: &[f32], keys: &[f32], values: &[f32], scale: f32, scores: &mut [f32], out: &mut [f32]) {
    attend_row_inline(query, keys, values, scale, scores, out, f32::mul_add)
}

/// `multiply_add(a, b, c)` is `a × b + c`: fused where the CPU has FMA (without it `mul_add`
/// is a slow library call).
#[inline(always)]
fn attend_row_inline(
    query: &[f32],
    keys: &[f32],
    values: &[f32],
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
    multiply_add: impl Fn(f32, f32, f32) -> f32 + Copy,
) {
    let head_dim = query.len();
    for (score, key) in scores.iter_mut().zip(keys.chunks_exact(head_dim)) {
        *score = dot(query, key, multiply_add) * scale;
    }
    softmax(scores);
    out.fill(0.0);
    for (&weight, value) in scores.iter().zip(values.chunks_exact(head_dim)) {
        for (out, &value) in out.iter_mut().zip(value) {
            *out = multiply_add(weight, value, *out);
        }
    }
}

/// Eight running sums, so that the compiler can keep them in one vector register.
#[inline(always)]
fn dot(a: &[f32], b: &[f32], multiply_add: impl Fn(f32, f32, f32) -> f32) -> f32 {
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    let mut lanes = [0f32; 8];
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] = multiply_add(x[lane], y[lane], lanes[lane]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use candle_nn::ops::softmax_last_dim;

    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32 / 16_777_216.0 * 4.0 - 2.0)
            .collect()
    }

    /// The first `positions` of a key or value cache with room for more, as the model's are.
    fn cache(kv_heads: usize, positions: usize, head_dim: usize, seed: u32) -> Tensor {
        let capacity = 2 * positions;
        Tensor::from_vec(values(kv_heads * capacity * head_dim, seed), (kv_heads, capacity, head_dim), &Device::Cpu)
            .unwrap()
            .narrow(1, 0, positions)
            .unwrap()
    }

    #[test]
    fn one_token_attends_as_the_matrix_products_do() {
        let (heads, kv_heads, head_dim, positions) = (6, 2, 68, 29);
        let (keys, values_) = (cache(kv_heads, positions, head_dim, 1), cache(kv_heads, positions, head_dim, 2));
        let q = Tensor::from_vec(values(heads * head_dim, 3), (heads, 1, head_dim), &Device::Cpu).unwrap();

        let got = attend_one(&q, &keys, &values_).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();

        let grouped = q.reshape((kv_heads, heads / kv_heads, head_dim)).unwrap();
        let scores = (grouped.matmul(&keys.t().unwrap()).unwrap() / (head_dim as f64).sqrt()).unwrap();
        let expected = softmax_last_dim(&scores).unwrap().matmul(&values_.contiguous().unwrap()).unwrap();
        let expected = expected.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(got.len(), expected.len());
        for (got, expected) in got.iter().zip(&expected) {
            assert!((got - expected).abs() < 1e-5, "{got} against {expected}");
        }
    }

    #[test]
    fn a_prompt_chunk_attends_as_the_masked_matrix_products_do() {
        // More tokens than a block, after cached positions, heads sharing key/value heads.
        let (heads, kv_heads, head_dim, start, tokens) = (6, 2, 40, 9, QUERY_BLOCK + 7);
        let positions = start + tokens;
        let (keys, values_) = (cache(kv_heads, positions, head_dim, 5), cache(kv_heads, positions, head_dim, 6));
        let q =
            Tensor::from_vec(values(heads * tokens * head_dim, 7), (heads, tokens, head_dim), &Device::Cpu).unwrap();

        let got = attend_chunk(&q, &keys, &values_, start).unwrap();

        let group = heads / kv_heads;
        let grouped = q.reshape((kv_heads, group * tokens, head_dim)).unwrap();
        let scores = (grouped.matmul(&keys.t().unwrap()).unwrap() / (head_dim as f64).sqrt()).unwrap();
        let mask: Vec<f32> = (0..tokens)
            .flat_map(|i| (0..positions).map(move |j| if j > start + i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (tokens, positions), &Device::Cpu).unwrap();
        let masked = scores
            .reshape((kv_heads, group, tokens, positions))
            .unwrap()
            .broadcast_add(&mask)
            .unwrap()
            .reshape((kv_heads, group * tokens, positions))
            .unwrap();
        let expected = softmax_last_dim(&masked).unwrap().matmul(&values_.contiguous().unwrap()).unwrap();
        let expected = expected
            .reshape((heads, tokens, head_dim))
            .unwrap()
            .transpose(0, 1)
            .unwrap()
            .reshape((tokens, heads * head_dim))
            .unwrap();
        assert_eq!(got.dims(), expected.dims());
        let (got, expected) = (
            got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            expected.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        for (got, expected) in got.iter().zip(&expected) {
            assert!((got - expected).abs() < 1e-5, "{got} against {expected}");
        }
    }
}

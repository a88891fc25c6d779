//! Products with Q8_0 weights, the type that holds most of the bytes of Lore's chat models.
//!
//! A reply is decoded one token at a time, and each token reads every weight once, so decoding
//! is a race between the memory and the arithmetic per byte. candle's Q8_0 path scores one weight
//! row after another and spends about 13 instructions on each 34-byte block (loading and
//! converting its scale alone takes five), which held it to about 4.5 GB/s on the development
//! machine, where one core reads 11.5 GB/s.
//!
//! Here the weights are rearranged once, at load, in groups of eight rows (as llama.cpp's
//! repacked CPU kernels do): per block, the eight rows' scales side by side, then their values
//! interleaved eight bytes at a time. One vector instruction then multiplies eight bytes of the
//! token with eight bytes of four rows, the sums of a block land one row per lane, and a block's
//! eight scales are converted with one instruction: about seven instructions per block.
//!
//! The arithmetic is ggml's: the token is quantized per 32-value block to 8 bits with an f16
//! scale, a block's integer products are summed exactly, and each row accumulates
//! `block sum × weight scale × token scale` with one rounding per block. Only the order of the
//! float additions differs from candle's, by a few units in the last place of the f32 result.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Result, Tensor, bail};
use half::f16;

/// Values per block (ggml's QK8_0).
const BLOCK: usize = 32;
/// Bytes per block: an f16 scale, then 32 signed bytes.
const BLOCK_BYTES: usize = 2 + BLOCK;

/// Rows per group (one per lane of an AVX2 float vector).
const GROUP: usize = 8;
/// Bytes of one block of a group: eight f16 scales, then the rows' values.
const GROUP_BLOCK_BYTES: usize = GROUP * BLOCK_BYTES;
/// A block's values are interleaved in runs of this many bytes per row.
const RUN: usize = 8;
/// The order of the rows within each 32-byte vector of a group's block: after the products of
/// two such vectors are summed pairwise (`hadd`), lane `k` holds row `k`.
const VECTOR_ROWS: [[usize; 4]; 2] = [[0, 1, 4, 5], [2, 3, 6, 7]];

/// A Q8_0 weight matrix, `(outputs, inputs)`, rearranged in groups of eight rows.
pub(super) struct Q8Matrix {
    groups: Vec<u8>,
    outputs: usize,
    blocks_per_row: usize,
}

impl Q8Matrix {
    /// The matrix, when `tensor` is a two-dimensional Q8_0 tensor.
    pub(super) fn new(tensor: &QTensor) -> Result<Option<Q8Matrix>> {
        let &[outputs, inputs] = tensor.shape().dims() else { return Ok(None) };
        if tensor.dtype() != GgmlDType::Q8_0 || !inputs.is_multiple_of(BLOCK) {
            return Ok(None);
        }
        let blocks_per_row = inputs / BLOCK;
        let data = tensor.data()?;
        let row_bytes = blocks_per_row * BLOCK_BYTES;
        let group_bytes = blocks_per_row * GROUP_BLOCK_BYTES;
        // The last group is padded with rows of zeros, whose results are dropped.
        let mut groups = vec![0u8; outputs.div_ceil(GROUP) * group_bytes];
        for (row, source) in data.chunks_exact(row_bytes).enumerate() {
            let (group, member) = (row / GROUP, row % GROUP);
            let (vector, slot) = VECTOR_ROWS
                .iter()
                .enumerate()
                .find_map(|(v, rows)| rows.iter().position(|&r| r == member).map(|slot| (v, slot)))
                .expect("every member of a group has a place");
            for (b, block) in source.chunks_exact(BLOCK_BYTES).enumerate() {
                let target = group * group_bytes + b * GROUP_BLOCK_BYTES;
                groups[target + 2 * member..target + 2 * member + 2].copy_from_slice(&block[..2]);
                for (run, values) in block[2..].chunks_exact(RUN).enumerate() {
                    let at = target + 2 * GROUP + run * 2 * BLOCK + vector * BLOCK + slot * RUN;
                    for (to, &value) in groups[at..at + RUN].iter_mut().zip(values) {
                        // -128 never comes out of ggml's quantizer; the kernel negates values.
                        *to = (value as i8).max(-127) as u8;
                    }
                }
            }
        }
        Ok(Some(Q8Matrix { groups, outputs, blocks_per_row }))
    }

    /// `x` is `(tokens, inputs)`; the result `(tokens, outputs)`.
    ///
    /// Every weight is read from memory once, whatever the number of tokens: a group of rows
    /// stays in cache while it is scored against each token in turn.
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (tokens, inputs) = x.dims2()?;
        if inputs != self.blocks_per_row * BLOCK {
            bail!("a Q8_0 product of {inputs} inputs with weights of {} inputs", self.blocks_per_row * BLOCK);
        }
        let quantized = QuantizedTokens::new(&x.flatten_all()?.to_vec1::<f32>()?, self.blocks_per_row);
        let group_bytes = self.blocks_per_row * GROUP_BLOCK_BYTES;
        let mut out = vec![0f32; tokens * self.outputs];
        let out_at = SharedOutput(out.as_mut_ptr());
        let kernel = Kernel::detect();
        candle_core::utils::barrier_pool().execute_chunked(self.outputs.div_ceil(GROUP), |range| {
            for group in range {
                let weights = &self.groups[group * group_bytes..(group + 1) * group_bytes];
                let first = group * GROUP;
                let rows = GROUP.min(self.outputs - first);
                for token in 0..tokens {
                    let sums = kernel.dot_group(weights, &quantized, token);
                    for (row, &sum) in sums[..rows].iter().enumerate() {
                        // SAFETY: each (token, row) is written by the one group that holds the
                        // row, and `out` outlives the pool's call.
                        unsafe { out_at.write(token * self.outputs + first + row, sum) };
                    }
                }
            }
        });
        Tensor::from_vec(out, (tokens, self.outputs), &Device::Cpu)
    }
}

/// The output buffer, written by the pool's workers at disjoint indices.
#[derive(Clone, Copy)]
struct SharedOutput(*mut f32);

// SAFETY: the workers write disjoint elements (see `Q8Matrix::forward`).
unsafe impl Send for SharedOutput {}
unsafe impl Sync for SharedOutput {}

impl SharedOutput {
    /// # Safety
    /// `index` is in bounds and no other thread touches it during the call.
    unsafe fn write(self, index: usize, value: f32) {
        unsafe { *self.0.add(index) = value };
    }
}

/// Tokens quantized as ggml quantizes a Q8_0 product's input: per block, the scale is the
/// largest magnitude over 127 (stored as f16), the values `round(x / scale)`; with the values'
/// magnitudes, which the kernel multiplies by the weights carrying the values' signs.
struct QuantizedTokens {
    values: Vec<i8>,
    magnitudes: Vec<u8>,
    scales: Vec<f32>,
    blocks_per_token: usize,
}

impl QuantizedTokens {
    fn new(x: &[f32], blocks_per_token: usize) -> QuantizedTokens {
        let mut values = vec![0i8; x.len()];
        let scales = x
            .chunks_exact(BLOCK)
            .zip(values.chunks_exact_mut(BLOCK))
            .map(|(block, quantized)| {
                let largest = block.iter().fold(0f32, |m, v| m.max(v.abs()));
                let scale = largest / 127.0;
                let inverse = if scale != 0.0 { 1.0 / scale } else { 0.0 };
                for (q, &v) in quantized.iter_mut().zip(block) {
                    *q = (v * inverse).round() as i8;
                }
                f16::from_f32(scale).to_f32()
            })
            .collect();
        let magnitudes = values.iter().map(|v| v.unsigned_abs()).collect();
        QuantizedTokens { values, magnitudes, scales, blocks_per_token }
    }

    /// Token `token`'s values, magnitudes and block scales.
    fn token(&self, token: usize) -> (&[i8], &[u8], &[f32]) {
        let values = token * self.blocks_per_token * BLOCK..(token + 1) * self.blocks_per_token * BLOCK;
        (
            &self.values[values.clone()],
            &self.magnitudes[values],
            &self.scales[token * self.blocks_per_token..(token + 1) * self.blocks_per_token],
        )
    }
}

/// Which implementation runs, chosen from what the CPU reports (not from the flags the binary
/// was compiled with).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    Avx2,
    Portable,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c") {
            return Kernel::Avx2;
        }
        Kernel::Portable
    }

    /// The dot products of a group's eight rows (`weights`, rearranged) with token `token`.
    fn dot_group(self, weights: &[u8], tokens: &QuantizedTokens, token: usize) -> [f32; GROUP] {
        let (values, magnitudes, scales) = tokens.token(token);
        match self {
            // SAFETY: AVX2, FMA and F16C were detected; `weights` holds a group of
            // `scales.len()` blocks and the token as many blocks.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { avx2::dot_group(weights, values, magnitudes, scales) },
            _ => portable_dot_group(weights, values, scales),
        }
    }
}

/// The AVX2 kernel's arithmetic in plain Rust.
fn portable_dot_group(weights: &[u8], values: &[i8], scales: &[f32]) -> [f32; GROUP] {
    let mut sums = [0f32; GROUP];
    for ((block, token_values), &token_scale) in
        weights.chunks_exact(GROUP_BLOCK_BYTES).zip(values.chunks_exact(BLOCK)).zip(scales)
    {
        let mut integer = [0i32; GROUP];
        for (run, run_values) in token_values.chunks_exact(RUN).enumerate() {
            for (vector, rows) in VECTOR_ROWS.iter().enumerate() {
                for (slot, &row) in rows.iter().enumerate() {
                    let at = 2 * GROUP + run * 2 * BLOCK + vector * BLOCK + slot * RUN;
                    integer[row] += block[at..at + RUN]
                        .iter()
                        .zip(run_values)
                        .map(|(&w, &t)| i32::from(w as i8) * i32::from(t))
                        .sum::<i32>();
                }
            }
        }
        for (row, sum) in sums.iter_mut().enumerate() {
            let weight_scale = f16::from_bits(u16::from_le_bytes([block[2 * row], block[2 * row + 1]])).to_f32();
            *sum = (weight_scale * token_scale).mul_add(integer[row] as f32, *sum);
        }
    }
    sums
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, GROUP, GROUP_BLOCK_BYTES, RUN};

    /// How far ahead of the block being scored its memory is requested. The hardware
    /// prefetchers alone left the kernel at 8 GB/s on the development machine; requesting
    /// each block 2 KB ahead (about eight blocks) reached 11, its sequential read speed
    /// (1 and 4 KB were slower).
    const PREFETCH_AHEAD: usize = 2048;

    /// # Safety
    /// The CPU has AVX2, FMA and F16C; `weights` holds `scales.len()` rearranged blocks of a
    /// group, `values` and `magnitudes` as many blocks of one token.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_group(weights: &[u8], values: &[i8], magnitudes: &[u8], scales: &[f32]) -> [f32; GROUP] {
        let blocks = scales.len();
        assert!(weights.len() >= blocks * GROUP_BLOCK_BYTES && values.len() >= blocks * BLOCK);
        assert!(magnitudes.len() >= blocks * BLOCK);
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_ps();
        for (b, &token_scale) in scales.iter().enumerate() {
            // SAFETY: the offsets stay within the lengths asserted above.
            unsafe {
                let block = weights.as_ptr().add(b * GROUP_BLOCK_BYTES);
                for line in 0..GROUP_BLOCK_BYTES.div_ceil(64) {
                    _mm_prefetch::<_MM_HINT_T0>(block.wrapping_add(PREFETCH_AHEAD + line * 64).cast());
                }
                let weight_scales = _mm256_cvtph_ps(_mm_loadu_si128(block.cast()));
                let mut sums = [_mm256_setzero_si256(); 2];
                for run in 0..BLOCK / RUN {
                    let at = b * BLOCK + run * RUN;
                    let value = _mm256_set1_epi64x(values.as_ptr().add(at).cast::<i64>().read_unaligned());
                    let magnitude = _mm256_set1_epi64x(magnitudes.as_ptr().add(at).cast::<i64>().read_unaligned());
                    for (vector, sum) in sums.iter_mut().enumerate() {
                        let w = _mm256_loadu_si256(block.add(2 * GROUP + run * 2 * BLOCK + vector * BLOCK).cast());
                        // |t| × (w × sign t) = w × t; pairs of products fit in 16 bits.
                        let products = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(w, value));
                        *sum = _mm256_add_epi32(*sum, _mm256_madd_epi16(products, ones));
                    }
                }
                let per_row = _mm256_cvtepi32_ps(_mm256_hadd_epi32(sums[0], sums[1]));
                acc = _mm256_fmadd_ps(_mm256_mul_ps(weight_scales, _mm256_set1_ps(token_scale)), per_row, acc);
            }
        }
        let mut out = [0f32; GROUP];
        // SAFETY: `out` holds eight floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc) };
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use candle_core::Module;
    use candle_core::quantized::QMatMul;

    use super::*;

    /// Deterministic values in [-1, 1) with a few large ones, as activations have.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let v = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
                if i % 97 == 0 { v * 20.0 } else { v }
            })
            .collect()
    }

    fn weights(outputs: usize, inputs: usize) -> QTensor {
        let dense = Tensor::from_vec(values(outputs * inputs, 7), (outputs, inputs), &Device::Cpu).unwrap();
        QTensor::quantize(&dense, GgmlDType::Q8_0).unwrap()
    }

    #[test]
    fn products_equal_candles_but_for_the_order_of_float_additions() {
        // 13 outputs: a group of eight and a padded one.
        let weights = weights(13, 96);
        let ours = Q8Matrix::new(&weights).unwrap().unwrap();
        let candle = QMatMul::from_arc(Arc::new(weights)).unwrap();
        for tokens in [1, 3] {
            let x = Tensor::from_vec(values(tokens * 96, tokens as u64), (tokens, 96), &Device::Cpu).unwrap();
            let expected = candle.forward(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let got = ours.forward(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(got.len(), expected.len());
            for (got, expected) in got.iter().zip(&expected) {
                assert!((got - expected).abs() <= 1e-5 * expected.abs().max(1.0), "{got} against {expected}");
            }
        }
    }

    #[test]
    fn the_portable_kernel_computes_what_the_detected_one_does() {
        let matrix = Q8Matrix::new(&weights(16, 64)).unwrap().unwrap();
        let tokens = QuantizedTokens::new(&values(64, 3), 2);
        for group in matrix.groups.chunks_exact(2 * GROUP_BLOCK_BYTES) {
            assert_eq!(Kernel::detect().dot_group(group, &tokens, 0), Kernel::Portable.dot_group(group, &tokens, 0));
        }
    }

    #[test]
    fn only_two_dimensional_q8_0_tensors_are_taken() {
        let dense = Tensor::zeros((4, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(Q8Matrix::new(&QTensor::quantize(&dense, GgmlDType::Q4_0).unwrap()).unwrap().is_none());
        assert!(Q8Matrix::new(&weights(4, 64)).unwrap().is_some());
    }
}

//! Products with quantized weights rearranged in groups of eight rows: Lore's kernel for the
//! Q8_0 and Q4_K weights that hold most of the bytes of its chat models.
//!
//! A reply is decoded one token at a time, and each token reads every weight once, so decoding
//! is a race between the memory and the arithmetic per byte. candle's Q8_0 path scores one weight
//! row after another and spends about 13 instructions on each 34-byte block (loading and
//! converting its scale alone takes five), which held it to about 4.5 GB/s on the development
//! machine, where one core reads 11.5 GB/s; its Q4_K path for one token goes through tiles
//! expanded to 6 bits a value, at about 4 GB/s.
//!
//! Here the weights are rearranged once, at load, in groups of eight rows (as llama.cpp's
//! repacked CPU kernels do): per block, the eight rows' scales side by side, then their values
//! interleaved eight bytes at a time. One vector instruction then multiplies eight bytes of the
//! token with eight bytes of four rows, the sums of a block land one row per lane, and a block's
//! eight scales are converted with one instruction: about seven instructions per 32 values.
//!
//! The arithmetic is ggml's: the token is quantized per 32-value block to 8 bits with an f16
//! scale, a block's integer products are summed exactly, and each row accumulates
//! `block sum × weight scale × token scale` (Q4_K: minus `weight minimum × token sum`) with one
//! rounding per block. For Q8_0 only the order of the float additions differs from candle's, by
//! a few units in the last place of the f32 result; for Q4_K candle quantizes the token per 256
//! values instead of 32, which Lore's blocks keep closer. A Q4_K row keeps two sums, one for the
//! even sub-blocks and one for the odd, added at the end: AVX-512 then scales a pair of
//! sub-blocks' sums in one vector of sixteen lanes, where one sum a row took a vector of eight
//! for each sub-block.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Result, Storage, Tensor, bail};
use half::f16;

use crate::encoder::math::max_abs;

/// Values per block of a quantized token, and per Q8_0 block and Q4_K sub-block of weights.
const BLOCK: usize = 32;
/// Rows per group (one per lane of an AVX2 float vector).
const GROUP: usize = 8;
/// Tokens scored together against a group of rows in one call of the kernel: Q4_K's values are
/// unpacked from their nibbles once for all of them; Q8_0 shares nothing between tokens, but
/// one call per token cost SmolLM2's short rows a tenth of the prompt's time in calls and
/// returned results.
const TILE: usize = 4;
/// Tokens per call of the AVX-512 kernels, whose 32 registers hold the sums of eight (Q4_K's,
/// with two sums and an accumulator a token, gained nothing at eight until a pair of sub-blocks
/// was finished in one vector; then qwen-1.5b's prefill gained a tenth).
const WIDE_TILE: usize = 8;
/// A block's values are interleaved in runs of this many bytes per row.
const RUN: usize = 8;
/// The order of the rows within each 32-byte vector of a group's values: after the products of
/// two such vectors are summed pairwise (`hadd`), lane `k` holds row `k`.
const VECTOR_ROWS: [[usize; 4]; 2] = [[0, 1, 4, 5], [2, 3, 6, 7]];

/// ggml's Q8_0 block: an f16 scale, then 32 signed bytes.
const Q8_0_BYTES: usize = 2 + BLOCK;
/// A group's Q8_0 block: eight f16 scales, then the rows' values (eight runs of four rows).
const Q8_0_GROUP_BYTES: usize = GROUP * Q8_0_BYTES;

/// Values per Q4_K super-block: eight sub-blocks of 32.
const SUPER: usize = 256;
/// ggml's Q4_K block: f16 scale and minimum, twelve bytes of 6-bit sub-block scales and
/// minimums, then 128 bytes of 4-bit values (byte `32j + l` holds value `64j + l` in its low
/// nibble and `64j + 32 + l` in its high one).
const Q4K_BYTES: usize = 4 + 12 + SUPER / 2;
/// Offsets within a group's Q4_K super-block: eight f16 scales, eight f16 minimums, the 6-bit
/// sub-block scales and minimums as bytes (sub-block major), then the 4-bit values, which keep
/// ggml's pairing of sub-blocks `2j` and `2j + 1` in one byte.
const Q4K_MINS: usize = 2 * GROUP;
const Q4K_SUB_SCALES: usize = 4 * GROUP;
const Q4K_SUB_MINS: usize = Q4K_SUB_SCALES + 8 * GROUP;
const Q4K_VALUES: usize = Q4K_SUB_MINS + 8 * GROUP;
const Q4K_GROUP_BYTES: usize = Q4K_VALUES + GROUP * SUPER / 2;

/// The weight types the kernel multiplies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Q8_0,
    Q4K,
}

impl Format {
    /// Bytes of one group's weights over `inputs` inputs.
    fn group_bytes(self, inputs: usize) -> usize {
        match self {
            Format::Q8_0 => inputs / BLOCK * Q8_0_GROUP_BYTES,
            Format::Q4K => inputs / SUPER * Q4K_GROUP_BYTES,
        }
    }
}

/// A quantized weight matrix, `(outputs, inputs)`, rearranged in groups of eight rows.
pub(super) struct GroupedMatrix {
    format: Format,
    groups: Vec<u8>,
    outputs: usize,
    inputs: usize,
}

impl GroupedMatrix {
    /// The matrix, when `tensor` is a two-dimensional Q8_0 or Q4_K tensor.
    pub(super) fn new(tensor: &QTensor) -> Result<Option<GroupedMatrix>> {
        let &[outputs, inputs] = tensor.shape().dims() else { return Ok(None) };
        let format = match tensor.dtype() {
            GgmlDType::Q8_0 if inputs.is_multiple_of(BLOCK) => Format::Q8_0,
            GgmlDType::Q4K if inputs.is_multiple_of(SUPER) => Format::Q4K,
            _ => return Ok(None),
        };
        let data = tensor.data()?;
        let group_bytes = format.group_bytes(inputs);
        // The last group is padded with rows of zeros, whose results are dropped.
        let mut groups = vec![0u8; outputs.div_ceil(GROUP) * group_bytes];
        let row_bytes = data.len() / outputs;
        for (row, source) in data.chunks_exact(row_bytes).enumerate() {
            let group = &mut groups[row / GROUP * group_bytes..(row / GROUP + 1) * group_bytes];
            match format {
                Format::Q8_0 => place_q8_0_row(group, row % GROUP, source),
                Format::Q4K => place_q4k_row(group, row % GROUP, source),
            }
        }
        Ok(Some(GroupedMatrix { format, groups, outputs, inputs }))
    }

    /// `x` is `(tokens, inputs)`; the result `(tokens, outputs)`.
    ///
    /// Every weight is read from memory once, whatever the number of tokens: a group of rows
    /// stays in cache while it is scored against each token in turn.
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (tokens, inputs) = x.dims2()?;
        if inputs != self.inputs {
            bail!("a product of {inputs} inputs with weights of {} inputs", self.inputs);
        }
        // Read where it lies: a copy of a prompt chunk's input was a serial step per product.
        let x = x.contiguous()?;
        let (storage, layout) = x.storage_and_layout();
        let (Storage::Cpu(storage), Some((from, to))) = (&*storage, layout.contiguous_offsets()) else {
            bail!("a product's input is not contiguous in CPU memory")
        };
        let quantized = QuantizedTokens::new(&storage.as_slice::<f32>()?[from..to], inputs / BLOCK);
        let group_bytes = self.format.group_bytes(inputs);
        let kernel = Kernel::detect();
        // SAFETY: the groups cover every output row, and each is scored against every token.
        let out = unsafe {
            SharedOutput::fill(tokens * self.outputs, |out_at| {
                share(self.outputs.div_ceil(GROUP), tokens * self.outputs * inputs, |range| {
                    for group in range {
                        let weights = &self.groups[group * group_bytes..(group + 1) * group_bytes];
                        let mut first = 0;
                        while first < tokens {
                            let tile = Tile { weights, group, first, outputs: self.outputs, out: out_at };
                            first += match tokens - first {
                                1 => tile.score::<1>(kernel, self.format, &quantized),
                                2 => tile.score::<2>(kernel, self.format, &quantized),
                                3 => tile.score::<3>(kernel, self.format, &quantized),
                                WIDE_TILE.. if kernel == Kernel::Avx512Vnni => {
                                    tile.score::<WIDE_TILE>(kernel, self.format, &quantized)
                                }
                                _ => tile.score::<TILE>(kernel, self.format, &quantized),
                            };
                        }
                    }
                })
            })
        };
        Tensor::from_vec(out, (tokens, self.outputs), &Device::Cpu)
    }
}

/// Where member `member` of a group goes within each 32-byte vector of values: which of the
/// two vectors of a run, and which 8-byte slot in it.
fn vector_slot(member: usize) -> (usize, usize) {
    VECTOR_ROWS
        .iter()
        .enumerate()
        .find_map(|(vector, rows)| rows.iter().position(|&r| r == member).map(|slot| (vector, slot)))
        .expect("every member of a group has a place")
}

/// Writes one Q8_0 row (ggml blocks) as member `member` of `group`.
fn place_q8_0_row(group: &mut [u8], member: usize, row: &[u8]) {
    let (vector, slot) = vector_slot(member);
    for (b, block) in row.chunks_exact(Q8_0_BYTES).enumerate() {
        let target = &mut group[b * Q8_0_GROUP_BYTES..(b + 1) * Q8_0_GROUP_BYTES];
        target[2 * member..2 * member + 2].copy_from_slice(&block[..2]);
        for (run, values) in block[2..].chunks_exact(RUN).enumerate() {
            let at = 2 * GROUP + run * 2 * BLOCK + vector * BLOCK + slot * RUN;
            for (to, &value) in target[at..at + RUN].iter_mut().zip(values) {
                // -128 never comes out of ggml's quantizer; the kernel negates values.
                *to = (value as i8).max(-127) as u8;
            }
        }
    }
}

/// Writes one Q4_K row (ggml blocks) as member `member` of `group`.
fn place_q4k_row(group: &mut [u8], member: usize, row: &[u8]) {
    let (vector, slot) = vector_slot(member);
    for (b, block) in row.chunks_exact(Q4K_BYTES).enumerate() {
        let target = &mut group[b * Q4K_GROUP_BYTES..(b + 1) * Q4K_GROUP_BYTES];
        target[2 * member..2 * member + 2].copy_from_slice(&block[..2]);
        target[Q4K_MINS + 2 * member..Q4K_MINS + 2 * member + 2].copy_from_slice(&block[2..4]);
        let packed: &[u8; 12] = block[4..16].try_into().expect("twelve bytes");
        for sub in 0..8 {
            let (scale, min) = q4k_sub_scale_min(packed, sub);
            target[Q4K_SUB_SCALES + sub * GROUP + member] = scale;
            target[Q4K_SUB_MINS + sub * GROUP + member] = min;
        }
        for (pair, values) in block[16..].chunks_exact(BLOCK).enumerate() {
            for (run, run_values) in values.chunks_exact(RUN).enumerate() {
                let at = Q4K_VALUES + pair * 8 * BLOCK + run * 2 * BLOCK + vector * BLOCK + slot * RUN;
                target[at..at + RUN].copy_from_slice(run_values);
            }
        }
    }
}

/// The 6-bit scale and minimum of sub-block `sub` from a Q4_K block's twelve packed bytes
/// (ggml's `get_scale_min_k4`).
fn q4k_sub_scale_min(packed: &[u8; 12], sub: usize) -> (u8, u8) {
    if sub < 4 {
        (packed[sub] & 63, packed[sub + 4] & 63)
    } else {
        ((packed[sub + 4] & 0xF) | ((packed[sub - 4] >> 6) << 4), (packed[sub + 4] >> 4) | ((packed[sub] >> 6) << 4))
    }
}

/// Work of fewer units than this (values to compute, or multiplications in a product) runs on
/// the calling thread: waking the pool's threads costs more than they save on a reply token's
/// input to a product (576–8,960 values), and SmolLM2 decoding on two threads met at a barrier
/// nine times a layer, four of them for such inputs.
const SHARED_MIN_WORK: usize = 16 * 1024;

/// The threads take items in grabs of about this much work (at least one item), each grab one
/// atomic addition: the caller waits for the last thread to finish, and candle's grabs of an
/// eighth of a thread's share of a prompt chunk's product kept it waiting about 3% of the time.
const GRAB_WORK: usize = 64 * 1024;

/// Runs `run` over `0..items`, which hold `work` units in all, shared among the quantized
/// products' threads unless the work is too small to be worth it.
pub(super) fn share(items: usize, work: usize, run: impl Fn(Range<usize>) + Sync) {
    let pool = candle_core::utils::barrier_pool();
    let threads = pool.n_workers() + 1;
    if work < SHARED_MIN_WORK || items < 2 || threads == 1 {
        return run(0..items);
    }
    let per_item = (work / items).max(1);
    let grab = (GRAB_WORK / per_item).clamp(1, items.div_ceil(threads * 8));
    let cursor = AtomicUsize::new(0);
    pool.execute(|_| {
        loop {
            let start = cursor.fetch_add(grab, Ordering::Relaxed);
            if start >= items {
                break;
            }
            run(start..items.min(start + grab));
        }
    });
}

/// An output buffer, written by the pool's workers at disjoint indices.
pub(super) struct SharedOutput<T = f32>(pub(super) *mut T);

impl<T> Clone for SharedOutput<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SharedOutput<T> {}

// SAFETY: the workers write disjoint elements (see `GroupedMatrix::forward`).
unsafe impl<T: Send> Send for SharedOutput<T> {}
unsafe impl<T: Send> Sync for SharedOutput<T> {}

impl<T> SharedOutput<T> {
    /// A buffer of `len` values that `write_all` fills through the shared pointer it is given.
    /// It is not zeroed first: a product's output of a few megabytes came from memory the
    /// allocator had just freed, which it zeroed on the calling thread while the others waited.
    ///
    /// # Safety
    /// `write_all` writes every one of the `len` values before it returns.
    pub(super) unsafe fn fill(len: usize, write_all: impl FnOnce(SharedOutput<T>)) -> Vec<T> {
        let mut out = Vec::with_capacity(len);
        write_all(SharedOutput(out.as_mut_ptr()));
        // SAFETY: the caller guarantees that every value was written.
        unsafe { out.set_len(len) };
        out
    }

    /// Where value `index` goes.
    ///
    /// # Safety
    /// `index` is in bounds.
    pub(super) unsafe fn at(self, index: usize) -> *mut T {
        unsafe { self.0.add(index) }
    }

    /// The `len` values from `start` on, to be written by the caller alone.
    ///
    /// # Safety
    /// The range is in bounds, and no other thread touches it while the slice lives.
    pub(super) unsafe fn slice<'a>(self, start: usize, len: usize) -> &'a mut [T] {
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}

/// Up to [`TILE`] consecutive tokens scored against one group of rows.
struct Tile<'a> {
    weights: &'a [u8],
    group: usize,
    first: usize,
    outputs: usize,
    out: SharedOutput,
}

impl Tile<'_> {
    /// Scores tokens `first..first + T` and writes their results; returns `T`.
    fn score<const T: usize>(&self, kernel: Kernel, format: Format, tokens: &QuantizedTokens) -> usize {
        let sums = kernel.dot_group::<T>(format, self.weights, tokens, self.first);
        let first_row = self.group * GROUP;
        let rows = GROUP.min(self.outputs - first_row);
        for (token, sums) in (self.first..).zip(sums) {
            // SAFETY: each (token, row) is written by the one group that holds the row, and the
            // output outlives the pool's call.
            unsafe { self.out.slice(token * self.outputs + first_row, rows) }.copy_from_slice(&sums[..rows]);
        }
        T
    }
}

/// Tokens quantized as ggml quantizes a Q8_0 product's input: per block, the scale is the
/// largest magnitude over 127 (stored as f16), the values `x / scale` rounded to the nearest
/// integer (ties to even); with the values' magnitudes, which the AVX2 Q8_0 kernel multiplies by
/// the weights carrying the values' signs, each block's sum, which the AVX-512 Q8_0 kernel takes
/// off its sums, and that sum times the block's scale, which Q4_K's minimums multiply.
struct QuantizedTokens {
    values: Vec<i8>,
    magnitudes: Vec<u8>,
    scales: Vec<f32>,
    sums: Vec<f32>,
    scaled_sums: Vec<f32>,
    blocks_per_token: usize,
}

/// One token's share of [`QuantizedTokens`].
#[derive(Clone, Copy)]
struct Token<'a> {
    values: &'a [i8],
    magnitudes: &'a [u8],
    scales: &'a [f32],
    sums: &'a [f32],
    scaled_sums: &'a [f32],
}

impl QuantizedTokens {
    /// Quantizes `x`, its blocks shared among the pool's threads when it is large: on one thread
    /// a prompt chunk's took a fortieth of the prompt's time, during which the others waited.
    fn new(x: &[f32], blocks_per_token: usize) -> QuantizedTokens {
        let blocks = x.len() / BLOCK;
        let mut values = vec![0i8; blocks * BLOCK];
        let mut magnitudes = vec![0u8; blocks * BLOCK];
        let mut scales = vec![0f32; blocks];
        let mut sums = vec![0f32; blocks];
        let mut scaled_sums = vec![0f32; blocks];
        let (values_at, magnitudes_at) = (SharedOutput(values.as_mut_ptr()), SharedOutput(magnitudes.as_mut_ptr()));
        let (scales_at, sums_at) = (SharedOutput(scales.as_mut_ptr()), SharedOutput(sums.as_mut_ptr()));
        let scaled_sums_at = SharedOutput(scaled_sums.as_mut_ptr());
        share(blocks, x.len(), |range| {
            let values_range = range.start * BLOCK..range.end * BLOCK;
            // SAFETY: each range of blocks is quantized by the one call that holds it, and the
            // buffers outlive the pool's call.
            let (values, magnitudes, scales, sums, scaled_sums) = unsafe {
                (
                    values_at.slice(values_range.start, values_range.len()),
                    magnitudes_at.slice(values_range.start, values_range.len()),
                    scales_at.slice(range.start, range.len()),
                    sums_at.slice(range.start, range.len()),
                    scaled_sums_at.slice(range.start, range.len()),
                )
            };
            let blocks = x[values_range]
                .chunks_exact(BLOCK)
                .zip(values.chunks_exact_mut(BLOCK).zip(magnitudes.chunks_exact_mut(BLOCK)))
                .zip(scales.iter_mut().zip(sums.iter_mut().zip(scaled_sums)));
            for ((block, (quantized, magnitudes)), (scale, (sum, scaled_sum))) in blocks {
                let largest = max_abs(block);
                let exact_scale = largest / 127.0;
                let inverse = if exact_scale != 0.0 { 1.0 / exact_scale } else { 0.0 };
                let mut total = 0i32;
                for ((q, magnitude), &v) in quantized.iter_mut().zip(magnitudes.iter_mut()).zip(block) {
                    // Rounded to nearest, ties to even, as ggml's AVX2 quantizer does: adding
                    // 1.5 · 2²³ leaves the integer in the low bits (|v · inverse| ≤ 127). Rust's
                    // saturating `as` from a float stays scalar; this vectorises.
                    let integer = (v * inverse + 12_582_912.0).to_bits().wrapping_sub(0x4B40_0000) as i32;
                    *q = integer as i8;
                    *magnitude = integer.unsigned_abs() as u8;
                    total += integer;
                }
                *scale = f16::from_f32(exact_scale).to_f32();
                *sum = total as f32;
                *scaled_sum = *scale * *sum;
            }
        });
        QuantizedTokens { values, magnitudes, scales, sums, scaled_sums, blocks_per_token }
    }

    fn token(&self, token: usize) -> Token<'_> {
        let blocks = token * self.blocks_per_token..(token + 1) * self.blocks_per_token;
        let values = blocks.start * BLOCK..blocks.end * BLOCK;
        Token {
            values: &self.values[values.clone()],
            magnitudes: &self.magnitudes[values],
            scales: &self.scales[blocks.clone()],
            sums: &self.sums[blocks.clone()],
            scaled_sums: &self.scaled_sums[blocks],
        }
    }
}

/// Which implementation runs, chosen from what the CPU reports (not from the flags the binary
/// was compiled with).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// AVX-512 with its byte multiply-add (`vpdpbusd`: 64 byte products summed four by four
    /// into 32 bits in one instruction, where AVX2 needs three).
    Avx512Vnni,
    Avx2,
    Portable,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c") {
            let avx512 = is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw");
            if avx512 && is_x86_feature_detected!("avx512vnni") {
                return Kernel::Avx512Vnni;
            }
            return Kernel::Avx2;
        }
        Kernel::Portable
    }

    /// The dot products of a group's eight rows (`weights`, rearranged) with tokens
    /// `first..first + T`.
    fn dot_group<const T: usize>(
        self,
        format: Format,
        weights: &[u8],
        tokens: &QuantizedTokens,
        first: usize,
    ) -> [[f32; GROUP]; T] {
        let tile: [Token<'_>; T] = std::array::from_fn(|t| tokens.token(first + t));
        assert_eq!(
            weights.len(),
            format.group_bytes(tokens.blocks_per_token * BLOCK),
            "a group's weights and the tokens disagree"
        );
        match (self, format) {
            // SAFETY: AVX-512F, BW and VNNI, AVX2, FMA and F16C were detected; the lengths were checked
            // above.
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx512Vnni, Format::Q8_0) => unsafe { avx512::dot_group_q8_0(weights, tile) },
            // SAFETY: AVX2, FMA and F16C were detected; the lengths were checked above.
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2, Format::Q8_0) => unsafe { avx2::dot_group_q8_0(weights, tile) },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx512Vnni, Format::Q4K) => unsafe { avx512::dot_group_q4k(weights, tile) },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2, Format::Q4K) => unsafe { avx2::dot_group_q4k(weights, tile) },
            (_, Format::Q8_0) => tile.map(|token| portable::dot_group_q8_0(weights, token)),
            (_, Format::Q4K) => tile.map(|token| portable::dot_group_q4k(weights, token)),
        }
    }
}

/// The AVX2 kernels' arithmetic in plain Rust, operation for operation.
mod portable {
    use super::*;

    fn f16_at(bytes: &[u8], at: usize) -> f32 {
        f16::from_bits(u16::from_le_bytes([bytes[at], bytes[at + 1]])).to_f32()
    }

    /// The integer dot products of the eight rows' values in one block (`at`: the offset of its
    /// first run) with `token_values`; `value` reads a stored byte as the weight's value.
    fn block_sums(weights: &[u8], at: usize, token_values: &[i8], value: impl Fn(u8) -> i32) -> [i32; GROUP] {
        let mut integer = [0i32; GROUP];
        for (run, run_values) in token_values.chunks_exact(RUN).enumerate() {
            for (vector, rows) in VECTOR_ROWS.iter().enumerate() {
                for (slot, &row) in rows.iter().enumerate() {
                    let start = at + run * 2 * BLOCK + vector * BLOCK + slot * RUN;
                    integer[row] += weights[start..start + RUN]
                        .iter()
                        .zip(run_values)
                        .map(|(&w, &t)| value(w) * i32::from(t))
                        .sum::<i32>();
                }
            }
        }
        integer
    }

    pub(super) fn dot_group_q8_0(weights: &[u8], token: Token<'_>) -> [f32; GROUP] {
        let mut sums = [0f32; GROUP];
        for ((block, token_values), &token_scale) in
            weights.chunks_exact(Q8_0_GROUP_BYTES).zip(token.values.chunks_exact(BLOCK)).zip(token.scales)
        {
            let integer = block_sums(block, 2 * GROUP, token_values, |w| i32::from(w as i8));
            for (row, sum) in sums.iter_mut().enumerate() {
                *sum = (f16_at(block, 2 * row) * token_scale).mul_add(integer[row] as f32, *sum);
            }
        }
        sums
    }

    pub(super) fn dot_group_q4k(weights: &[u8], token: Token<'_>) -> [f32; GROUP] {
        // The even sub-blocks' sums, then the odd ones'.
        let mut sums = [[0f32; GROUP]; 2];
        for (b, block) in weights.chunks_exact(Q4K_GROUP_BYTES).enumerate() {
            for sub in 0..8 {
                let t = b * 8 + sub;
                let (pair, high) = (sub / 2, sub % 2);
                let nibble = |w: u8| i32::from(if high == 1 { w >> 4 } else { w & 0xF });
                let at = Q4K_VALUES + pair * 8 * BLOCK;
                let integer = block_sums(block, at, &token.values[t * BLOCK..(t + 1) * BLOCK], nibble);
                for (row, sum) in sums[high].iter_mut().enumerate() {
                    let scale = f16_at(block, 2 * row) * f32::from(block[Q4K_SUB_SCALES + sub * GROUP + row]);
                    let min = f16_at(block, Q4K_MINS + 2 * row) * f32::from(block[Q4K_SUB_MINS + sub * GROUP + row]);
                    *sum = (scale * token.scales[t]).mul_add(integer[row] as f32, *sum);
                    *sum = (-min).mul_add(token.scaled_sums[t], *sum);
                }
            }
        }
        std::array::from_fn(|row| sums[0][row] + sums[1][row])
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::*;

    /// How far ahead of the block being scored its memory is requested. The hardware
    /// prefetchers alone left the Q8_0 kernel at 8 GB/s on the development machine; requesting
    /// each block 2 KB ahead (about eight blocks) reached 11, its sequential read speed
    /// (1 and 4 KB were slower).
    const PREFETCH_AHEAD: usize = 2048;

    /// Requests the `bytes` bytes that start [`PREFETCH_AHEAD`] after `at`.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn prefetch(at: *const u8, bytes: usize) {
        for line in 0..bytes.div_ceil(64) {
            // A prefetch of an address past the weights is harmless: it cannot fault.
            _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(PREFETCH_AHEAD + line * 64).cast());
        }
    }

    /// Eight bytes of the token at `at`, repeated across a vector.
    ///
    /// # Safety
    /// `at + 8` is within `bytes`' allocation.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn broadcast_run<T>(bytes: *const T, at: usize) -> __m256i {
        unsafe { _mm256_set1_epi64x(bytes.cast::<u8>().add(at).cast::<i64>().read_unaligned()) }
    }

    /// The products of a Q8_0 group with each of `T` tokens, one after the other.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C; `weights` holds a group's Q8_0 blocks for the tokens.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_group_q8_0<const T: usize>(weights: &[u8], tokens: [Token<'_>; T]) -> [[f32; GROUP]; T] {
        let mut out = [[0f32; GROUP]; T];
        for (out, token) in out.iter_mut().zip(tokens) {
            // SAFETY: as the caller guarantees.
            *out = unsafe { dot_group_q8_0_token(weights, token) };
        }
        out
    }

    /// # Safety
    /// The CPU has AVX2, FMA and F16C; `weights` holds a group's Q8_0 blocks for the token.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_group_q8_0_token(weights: &[u8], token: Token<'_>) -> [f32; GROUP] {
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_ps();
        for (b, &token_scale) in token.scales.iter().enumerate() {
            // SAFETY: the caller checked that `weights` holds a block per token block.
            unsafe {
                let block = weights.as_ptr().add(b * Q8_0_GROUP_BYTES);
                prefetch(block, Q8_0_GROUP_BYTES);
                let weight_scales = _mm256_cvtph_ps(_mm_loadu_si128(block.cast()));
                let mut sums = [_mm256_setzero_si256(); 2];
                for run in 0..BLOCK / RUN {
                    let at = b * BLOCK + run * RUN;
                    let value = broadcast_run(token.values.as_ptr(), at);
                    let magnitude = broadcast_run(token.magnitudes.as_ptr(), at);
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
        row_results(acc)
    }

    /// A group's eight results, one per lane, as an array.
    #[inline]
    #[target_feature(enable = "avx")]
    pub(super) fn row_results(acc: __m256) -> [f32; GROUP] {
        let mut out = [0f32; GROUP];
        // SAFETY: `out` holds eight floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc) };
        out
    }

    /// Eight bytes as eight floats.
    ///
    /// # Safety
    /// `at` points to eight readable bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn bytes_as_floats(at: *const u8) -> __m256 {
        unsafe { _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(at.cast()))) }
    }

    /// The products of a Q4_K group with `T` tokens. Each 32-byte vector of values is loaded and
    /// split into its nibbles once for all the tokens, and the products of a sub-block's four
    /// runs are summed in 16 bits before widening: a pair of products is at most 2 · 15 · 127,
    /// four of them stay below 2^15.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C; `weights` holds a group's Q4_K super-blocks for the
    /// tokens.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_group_q4k<const T: usize>(weights: &[u8], tokens: [Token<'_>; T]) -> [[f32; GROUP]; T] {
        let ones = _mm256_set1_epi16(1);
        let low_nibbles = _mm256_set1_epi8(0x0F);
        // Per token, the sums of the even sub-blocks and of the odd ones.
        let mut acc = [[_mm256_setzero_ps(); 2]; T];
        for b in 0..weights.len() / Q4K_GROUP_BYTES {
            // SAFETY: the caller checked that `weights` holds a super-block per eight blocks of
            // each token.
            unsafe {
                let block = weights.as_ptr().add(b * Q4K_GROUP_BYTES);
                prefetch(block, Q4K_GROUP_BYTES);
                let scales = _mm256_cvtph_ps(_mm_loadu_si128(block.cast()));
                let mins = _mm256_cvtph_ps(_mm_loadu_si128(block.add(Q4K_MINS).cast()));
                for pair in 0..4 {
                    // Per token, the sums of sub-blocks 2·pair (low nibbles) and 2·pair + 1
                    // (high), per vector.
                    let mut sums = [[[_mm256_setzero_si256(); 2]; 2]; T];
                    let first = b * 8 + 2 * pair;
                    for vector in 0..2 {
                        let mut short = [[_mm256_setzero_si256(); 2]; T];
                        for run in 0..BLOCK / RUN {
                            let at = Q4K_VALUES + pair * 8 * BLOCK + run * 2 * BLOCK + vector * BLOCK;
                            let w = _mm256_loadu_si256(block.add(at).cast());
                            let nibbles = [
                                _mm256_and_si256(w, low_nibbles),
                                _mm256_and_si256(_mm256_srli_epi16::<4>(w), low_nibbles),
                            ];
                            for (short, token) in short.iter_mut().zip(&tokens) {
                                for (half, (short, &nibbles)) in short.iter_mut().zip(&nibbles).enumerate() {
                                    let values =
                                        broadcast_run(token.values.as_ptr(), (first + half) * BLOCK + run * RUN);
                                    // Unsigned nibbles times signed values: pairs fit in 16 bits.
                                    *short = _mm256_add_epi16(*short, _mm256_maddubs_epi16(nibbles, values));
                                }
                            }
                        }
                        for (sums, short) in sums.iter_mut().zip(short) {
                            for (sum, short) in sums.iter_mut().zip(short) {
                                sum[vector] = _mm256_madd_epi16(short, ones);
                            }
                        }
                    }
                    for half in 0..2 {
                        let (sub, t) = (2 * pair + half, first + half);
                        let scale = _mm256_mul_ps(scales, bytes_as_floats(block.add(Q4K_SUB_SCALES + sub * GROUP)));
                        let min = _mm256_mul_ps(mins, bytes_as_floats(block.add(Q4K_SUB_MINS + sub * GROUP)));
                        for ((acc, sums), token) in acc.iter_mut().zip(&sums).zip(&tokens) {
                            let per_row = _mm256_cvtepi32_ps(_mm256_hadd_epi32(sums[half][0], sums[half][1]));
                            let acc = &mut acc[half];
                            *acc =
                                _mm256_fmadd_ps(_mm256_mul_ps(scale, _mm256_set1_ps(token.scales[t])), per_row, *acc);
                            *acc = _mm256_fnmadd_ps(min, _mm256_set1_ps(token.scaled_sums[t]), *acc);
                        }
                    }
                }
            }
        }
        acc.map(|[even, odd]| row_results(_mm256_add_ps(even, odd)))
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::avx2::row_results;
    use super::*;

    /// The products of a Q8_0 group with `T` tokens. A run of the eight rows' values is one
    /// 64-byte register; `vpdpbusd` multiplies unsigned by signed bytes, so the weights are
    /// read as `w + 128` (their sign bit flipped) and `128 ·` the token block's sum is taken off
    /// the integer sums after. The sums are AVX2's to the bit, and so are the float steps.
    ///
    /// # Safety
    /// The CPU has AVX-512F, BW and VNNI, AVX2, FMA and F16C; `weights` holds a group's Q8_0 blocks
    /// for the tokens.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn dot_group_q8_0<const T: usize>(weights: &[u8], tokens: [Token<'_>; T]) -> [[f32; GROUP]; T] {
        let sign_bits = _mm512_set1_epi8(-128);
        let mut acc = [_mm256_setzero_ps(); T];
        for b in 0..tokens[0].scales.len() {
            // SAFETY: the caller checked that `weights` holds a block per token block.
            unsafe {
                let block = weights.as_ptr().add(b * Q8_0_GROUP_BYTES);
                super::avx2::prefetch(block, Q8_0_GROUP_BYTES);
                let weight_scales = _mm256_cvtph_ps(_mm_loadu_si128(block.cast()));
                let mut sums = [_mm512_setzero_si512(); T];
                for run in 0..BLOCK / RUN {
                    let w =
                        _mm512_xor_si512(_mm512_loadu_si512(block.add(2 * GROUP + run * 2 * BLOCK).cast()), sign_bits);
                    for (sum, token) in sums.iter_mut().zip(&tokens) {
                        let values = token.values.as_ptr().add(b * BLOCK + run * RUN).cast::<i64>().read_unaligned();
                        *sum = _mm512_dpbusd_epi32(*sum, w, _mm512_set1_epi64(values));
                    }
                }
                for ((acc, sum), token) in acc.iter_mut().zip(sums).zip(&tokens) {
                    let halves = _mm256_hadd_epi32(_mm512_castsi512_si256(sum), _mm512_extracti64x4_epi64::<1>(sum));
                    let offset = _mm256_set1_epi32(128 * token.sums[b] as i32);
                    let per_row = _mm256_cvtepi32_ps(_mm256_sub_epi32(halves, offset));
                    *acc =
                        _mm256_fmadd_ps(_mm256_mul_ps(weight_scales, _mm256_set1_ps(token.scales[b])), per_row, *acc);
                }
            }
        }
        acc.map(|acc| row_results(acc))
    }

    /// Swaps neighbouring 32-bit lanes (`_MM_PERM_CDAB`).
    const SWAP_NEIGHBOURS: _MM_PERM_ENUM = 0xB1;

    /// A pair of sub-blocks' sixteen bytes (the even one's eight rows, then the odd one's) as
    /// floats in the lanes of [`dot_group_q4k`]'s pair vectors.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `at` points to sixteen readable bytes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn pair_bytes_as_floats(at: *const u8) -> __m512 {
        let lanes = _mm512_setr_epi32(0, 8, 1, 9, 4, 12, 5, 13, 2, 10, 3, 11, 6, 14, 7, 15);
        // SAFETY: as the caller guarantees.
        let bytes = unsafe { _mm_loadu_si128(at.cast()) };
        _mm512_permutexvar_ps(lanes, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes)))
    }

    /// Eight rows' f16 values from `at`, as floats in the lanes of [`dot_group_q4k`]'s pair
    /// vectors: each row's twice.
    ///
    /// # Safety
    /// The CPU has AVX-512F and F16C; `at` points to sixteen readable bytes.
    #[inline]
    #[target_feature(enable = "avx512f,f16c")]
    unsafe fn rows_as_pair_floats(at: *const u8) -> __m512 {
        let lanes = _mm512_setr_epi32(0, 0, 1, 1, 4, 4, 5, 5, 2, 2, 3, 3, 6, 6, 7, 7);
        // SAFETY: as the caller guarantees.
        let row_order = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(at.cast()) });
        _mm512_permutexvar_ps(lanes, _mm512_castps256_ps512(row_order))
    }

    /// Two neighbouring floats from `at`, repeated across a vector.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `at` points to two readable floats.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn broadcast_pair(at: *const f32) -> __m512 {
        // SAFETY: as the caller guarantees.
        _mm512_castsi512_ps(_mm512_set1_epi64(unsafe { at.cast::<i64>().read_unaligned() }))
    }

    /// The products of a Q4_K group with `T` tokens: AVX2's kernel with a run of the eight
    /// rows' nibbles in one register and `vpdpbusd` (unsigned nibbles by signed values) adding
    /// the products into 32-bit sums directly, the same sums as AVX2's.
    ///
    /// A pair of sub-blocks is finished in one vector of sixteen lanes. The products leave the
    /// rows' partial sums in neighbouring lanes (lanes `2k` and `2k + 1` hold row
    /// `VECTOR_ROWS[k / 4][k % 4]`); lane `2k` of the pair vector takes the even sub-block's
    /// pair of them, lane `2k + 1` the odd one's, so the rows' and the token's scales are laid out
    /// the same way once per pair, and a token's accumulator holds each row's even and odd sums
    /// side by side until the end.
    ///
    /// # Safety
    /// The CPU has AVX-512F, BW and VNNI, AVX2, FMA and F16C; `weights` holds a group's Q4_K
    /// super-blocks for the tokens.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn dot_group_q4k<const T: usize>(weights: &[u8], tokens: [Token<'_>; T]) -> [[f32; GROUP]; T] {
        let low_nibbles = _mm512_set1_epi8(0x0F);
        let mut acc = [_mm512_setzero_ps(); T];
        for b in 0..weights.len() / Q4K_GROUP_BYTES {
            // SAFETY: the caller checked that `weights` holds a super-block per eight blocks of
            // each token.
            unsafe {
                let block = weights.as_ptr().add(b * Q4K_GROUP_BYTES);
                super::avx2::prefetch(block, Q4K_GROUP_BYTES);
                let scales = rows_as_pair_floats(block);
                let mins = rows_as_pair_floats(block.add(Q4K_MINS));
                for pair in 0..4 {
                    // Per token, the sums of sub-blocks 2·pair (low nibbles) and 2·pair + 1.
                    let mut sums = [[_mm512_setzero_si512(); 2]; T];
                    let first = b * 8 + 2 * pair;
                    for run in 0..BLOCK / RUN {
                        let w = _mm512_loadu_si512(block.add(Q4K_VALUES + pair * 8 * BLOCK + run * 2 * BLOCK).cast());
                        let nibbles = [
                            _mm512_and_si512(w, low_nibbles),
                            _mm512_and_si512(_mm512_srli_epi16::<4>(w), low_nibbles),
                        ];
                        for (sums, token) in sums.iter_mut().zip(&tokens) {
                            for (half, (sum, &nibbles)) in sums.iter_mut().zip(&nibbles).enumerate() {
                                let at = (first + half) * BLOCK + run * RUN;
                                let values = token.values.as_ptr().add(at).cast::<i64>().read_unaligned();
                                *sum = _mm512_dpbusd_epi32(*sum, nibbles, _mm512_set1_epi64(values));
                            }
                        }
                    }
                    let scale =
                        _mm512_mul_ps(scales, pair_bytes_as_floats(block.add(Q4K_SUB_SCALES + 2 * pair * GROUP)));
                    let min = _mm512_mul_ps(mins, pair_bytes_as_floats(block.add(Q4K_SUB_MINS + 2 * pair * GROUP)));
                    for ((acc, [even, odd]), token) in acc.iter_mut().zip(sums).zip(&tokens) {
                        // [even₀, odd₀, even₂, odd₂, …] + [even₁, odd₁, even₃, odd₃, …]
                        let own = _mm512_mask_shuffle_epi32::<SWAP_NEIGHBOURS>(even, 0xAAAA, odd);
                        let other = _mm512_mask_shuffle_epi32::<SWAP_NEIGHBOURS>(odd, 0x5555, even);
                        let per_lane = _mm512_cvtepi32_ps(_mm512_add_epi32(own, other));
                        let token_scales = broadcast_pair(token.scales.as_ptr().add(first));
                        *acc = _mm512_fmadd_ps(_mm512_mul_ps(scale, token_scales), per_lane, *acc);
                        *acc = _mm512_fnmadd_ps(min, broadcast_pair(token.scaled_sums.as_ptr().add(first)), *acc);
                    }
                }
            }
        }
        // Each row's even and odd sums added, then the rows taken back in order.
        let row_lanes = _mm512_setr_epi32(0, 2, 8, 10, 4, 6, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0);
        acc.map(|acc| {
            let both = _mm512_add_ps(acc, _mm512_permute_ps::<SWAP_NEIGHBOURS>(acc));
            row_results(_mm512_castps512_ps256(_mm512_permutexvar_ps(row_lanes, both)))
        })
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

    fn weights(outputs: usize, inputs: usize, dtype: GgmlDType) -> QTensor {
        let dense = Tensor::from_vec(values(outputs * inputs, 7), (outputs, inputs), &Device::Cpu).unwrap();
        QTensor::quantize(&dense, dtype).unwrap()
    }

    #[test]
    fn q8_0_products_equal_candles_but_for_the_order_of_float_additions() {
        // 13 outputs: a group of eight and a padded one.
        let weights = weights(13, 96, GgmlDType::Q8_0);
        let ours = GroupedMatrix::new(&weights).unwrap().unwrap();
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
    fn q4k_products_are_those_of_the_dequantized_weights_and_token() {
        let weights = weights(11, 512, GgmlDType::Q4K);
        let ours = GroupedMatrix::new(&weights).unwrap().unwrap();
        let dense = weights.dequantize(&Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
        for tokens in [1, 2, 7] {
            let x = values(tokens * 512, 5 + tokens as u64);
            let quantized = QuantizedTokens::new(&x, 512 / BLOCK);
            let got = ours.forward(&Tensor::from_vec(x, (tokens, 512), &Device::Cpu).unwrap()).unwrap();
            let got = got.to_vec2::<f32>().unwrap();
            for (token, got) in got.iter().enumerate() {
                let t = quantized.token(token);
                let token_values: Vec<f64> =
                    t.values.iter().enumerate().map(|(i, &v)| f64::from(v) * f64::from(t.scales[i / BLOCK])).collect();
                for (row, &got) in got.iter().enumerate() {
                    let expected: f64 = dense[row].iter().zip(&token_values).map(|(&w, &v)| f64::from(w) * v).sum();
                    assert!(
                        (f64::from(got) - expected).abs() <= 1e-4 * expected.abs().max(1.0),
                        "{got} against {expected}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_portable_kernels_compute_what_the_detected_ones_do() {
        let kernels = match Kernel::detect() {
            Kernel::Avx512Vnni => vec![Kernel::Avx2, Kernel::Avx512Vnni],
            detected => vec![detected],
        };
        for (format, inputs) in [(GgmlDType::Q8_0, 64), (GgmlDType::Q4K, 512)] {
            let matrix = GroupedMatrix::new(&weights(16, inputs, format)).unwrap().unwrap();
            let tokens = QuantizedTokens::new(&values(WIDE_TILE * inputs, 3), inputs / BLOCK);
            for group in matrix.groups.chunks_exact(matrix.format.group_bytes(inputs)) {
                let portable = Kernel::Portable.dot_group::<WIDE_TILE>(matrix.format, group, &tokens, 0);
                for &kernel in &kernels {
                    assert_eq!(
                        kernel.dot_group::<TILE>(matrix.format, group, &tokens, 0),
                        portable[..TILE],
                        "{format:?}, {kernel:?}"
                    );
                    assert_eq!(
                        kernel.dot_group::<WIDE_TILE>(matrix.format, group, &tokens, 0),
                        portable,
                        "{format:?}, {kernel:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_token_scores_the_same_alone_and_in_a_tile() {
        // A cached prompt prefix must hold what a fresh run computes, however the prompt was cut.
        for (format, inputs) in [(GgmlDType::Q8_0, 64), (GgmlDType::Q4K, 512)] {
            let matrix = GroupedMatrix::new(&weights(12, inputs, format)).unwrap().unwrap();
            // Eleven tokens: a wide tile where the kernel takes one, then the smaller ones.
            let x = Tensor::from_vec(values(11 * inputs, 11), (11, inputs), &Device::Cpu).unwrap();
            let together = matrix.forward(&x).unwrap().to_vec2::<f32>().unwrap();
            for (token, together) in together.iter().enumerate() {
                let alone = matrix.forward(&x.narrow(0, token, 1).unwrap()).unwrap().to_vec2::<f32>().unwrap();
                assert_eq!(&alone[0], together, "{format:?}, token {token}");
            }
        }
    }

    #[test]
    fn only_two_dimensional_q8_0_and_q4k_tensors_are_taken() {
        let dense = Tensor::zeros((4, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(GroupedMatrix::new(&QTensor::quantize(&dense, GgmlDType::Q4_0).unwrap()).unwrap().is_none());
        assert!(GroupedMatrix::new(&weights(4, 64, GgmlDType::Q8_0)).unwrap().is_some());
        assert!(GroupedMatrix::new(&weights(4, 256, GgmlDType::Q4K)).unwrap().is_some());
    }
}

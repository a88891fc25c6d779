//! The encoder's matrix products, in integers.
//!
//! Weights are rounded to ±127 per output (one scale per row of the weight matrix) and each
//! input row to the largest bound that keeps sums exact (one scale per row, at most 16 bits):
//! the inputs' bound times the weights' bound times the number of inputs stays below 2³¹, so
//! the products are summed exactly in 32 bits. Weights of one byte let AMX multiply each input
//! byte by them in one tile product, two per step where ±1023 took four, which made MiniLM 28%
//! faster; the vectors move further from float BERT (lowest cosine over 100 SciFact abstracts
//! 0.9992 against 0.99998), and retrieval does not notice (SciFact nDCG@10 within 0.002 of
//! float, docs/benchmarks.md). AVX2's `vpmaddwd` does sixteen 16-bit multiply-adds in one
//! instruction, twice a float FMA's eight; AVX-512's `vpdpwssd`, where present, does 32 and
//! adds them to the sums in the same instruction. Sums are exact, so every kernel gives the
//! same outputs to the bit.
//!
//! Work is split into blocks of rows, one parallel task each; a task rounds its rows, multiplies
//! them by every output panel, and finishes each row (bias, activation, residual and layer norm)
//! while it is still in cache.

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::amx;
use super::math::{LayerNorm, gelu, gelu_tanh, max_abs};
use super::{Activation, Kernel};

/// Output columns per weight panel: two AVX2 registers of 32-bit sums.
const PANEL: usize = 16;
/// Input rows per kernel call.
const TILE_ROWS: usize = 6;
/// Panels multiplied together by the AVX-512 kernel (the others take one at a time).
const GROUP: usize = 4;
/// Input rows per parallel task.
const BLOCK_ROWS: usize = 48;
/// The largest rounded weight.
const WEIGHT_MAX: f32 = 127.0;

/// A dense layer `y = x·Wᵀ + b` with integer weights.
pub(crate) struct Linear {
    inputs: usize,
    outputs: usize,
    /// Input pairs: half the inputs, rounded up (an odd last input pairs with a zero).
    pairs: usize,
    /// Per panel of 16 outputs, per input pair, per output: the two rounded weights.
    panels: Vec<i16>,
    /// Per output, what one unit of its rounded weights is worth (padded to whole panels).
    scales: Vec<f32>,
    /// Per output (padded to whole panels).
    bias: Vec<f32>,
    /// The bound inputs are rounded to, so that sums stay in 32 bits.
    input_max: f32,
    /// The rounded weights again in AMX's tile layout, on machines that have it.
    #[cfg(target_arch = "x86_64")]
    amx: Option<amx::Weights>,
}

/// What a product does to each output row after the bias.
#[derive(Clone, Copy)]
pub(crate) enum Finish<'a> {
    /// Nothing more.
    Bias,
    /// The activation function.
    Activate(Activation),
    /// Adds the row of `residual` (same width as the outputs), then normalises.
    ResidualNorm { residual: &'a [f32], norm: &'a LayerNorm },
}

impl Linear {
    /// The layer with `weight` (`[outputs, inputs]`, row-major) and `bias` (`[outputs]`).
    pub(crate) fn new(weight: &[f32], bias: &[f32], outputs: usize, inputs: usize) -> Linear {
        assert_eq!(weight.len(), outputs * inputs, "weight shape");
        assert_eq!(bias.len(), outputs, "bias shape");
        let pairs = inputs.div_ceil(2);
        let panel_count = outputs.div_ceil(PANEL);
        let mut panels = vec![0i16; panel_count * pairs * PANEL * 2];
        let mut scales = vec![0f32; panel_count * PANEL];
        for (output, row) in weight.chunks_exact(inputs).enumerate() {
            let top = max_abs(row);
            let scale = if top > 0.0 { top / WEIGHT_MAX } else { 1.0 };
            scales[output] = scale;
            let (panel, column) = (output / PANEL, output % PANEL);
            for (input, &w) in row.iter().enumerate() {
                let at = ((panel * pairs + input / 2) * PANEL + column) * 2 + input % 2;
                panels[at] = (w / scale).round_ties_even() as i16;
            }
        }
        let bound = f64::from(i32::MAX) / (2 * pairs) as f64 / f64::from(WEIGHT_MAX);
        let input_max = bound.floor().min(f64::from(i16::MAX)) as f32;
        let mut bias = bias.to_vec();
        bias.resize(panel_count * PANEL, 0.0);
        #[cfg(target_arch = "x86_64")]
        let amx = (Kernel::detect() == Kernel::Amx).then(|| {
            amx::Weights::new(panel_count, inputs, |output, input| {
                panels[((output / PANEL * pairs + input / 2) * PANEL + output % PANEL) * 2 + input % 2] as i8
            })
        });
        Linear {
            inputs,
            outputs,
            pairs,
            panels,
            scales,
            bias,
            input_max,
            #[cfg(target_arch = "x86_64")]
            amx,
        }
    }

    /// Writes the outputs for the rows of `x` (`[rows, inputs]`) into `out`, `[rows, outputs]`.
    /// `out` is resized, not cleared: the encoder passes the same buffers to every layer, where
    /// a new zeroed vector per product cost 4% of the time.
    pub(crate) fn forward(&self, x: &[f32], finish: Finish, out: &mut Vec<f32>) {
        debug_assert_eq!(x.len() % self.inputs, 0);
        out.resize(x.len() / self.inputs * self.outputs, 0.0);
        let kernel = Kernel::detect();
        out.par_chunks_mut(BLOCK_ROWS * self.outputs).zip(x.par_chunks(BLOCK_ROWS * self.inputs)).enumerate().for_each(
            |(block, (out, x))| {
                self.multiply_block(kernel, x, out);
                let first = block * BLOCK_ROWS;
                for (r, row) in out.chunks_exact_mut(self.outputs).enumerate() {
                    match finish {
                        Finish::Bias => {}
                        Finish::Activate(Activation::Gelu) => {
                            kernel.widened(|| row.iter_mut().for_each(|v| *v = gelu(*v)))
                        }
                        Finish::Activate(Activation::GeluTanh) => {
                            kernel.widened(|| row.iter_mut().for_each(|v| *v = gelu_tanh(*v)))
                        }
                        Finish::Activate(Activation::Relu) => row.iter_mut().for_each(|v| *v = v.max(0.0)),
                        Finish::ResidualNorm { residual, norm } => {
                            let residual = &residual[(first + r) * self.outputs..][..self.outputs];
                            row.iter_mut().zip(residual).for_each(|(v, r)| *v += r);
                            norm.apply(row);
                        }
                    }
                }
            },
        );
    }

    /// `out = x·Wᵀ + b` for one block of rows.
    fn multiply_block(&self, kernel: Kernel, x: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if let (Kernel::Amx, Some(weights)) = (kernel, &self.amx) {
            return self.multiply_block_amx(weights, x, out);
        }
        let rows = x.len() / self.inputs;
        let tile_len = self.pairs * TILE_ROWS;
        // Per tile, per input pair, per row of the tile: a pair of rounded inputs (low half
        // first, as vpmaddwd reads them). The kernel then reads one stream of inputs with one
        // pointer, where six rows apart took six streams and the address arithmetic for each.
        let mut rounded = vec![0i32; rows.div_ceil(TILE_ROWS) * tile_len];
        let mut row_scales = vec![0f32; rows.div_ceil(TILE_ROWS) * TILE_ROWS];
        let mut row_pairs = vec![0i32; self.pairs];
        for (r, (row, row_scale)) in x.chunks_exact(self.inputs).zip(&mut row_scales).enumerate() {
            let (scale, round) = self.rounding(row);
            *row_scale = scale;
            let (whole, odd) = row.split_at(row.len() / 2 * 2);
            for (pair, values) in row_pairs.iter_mut().zip(whole.chunks_exact(2)) {
                *pair = (round(values[0]) | round(values[1]) << 16) as i32;
            }
            if let Some(&last) = odd.first() {
                row_pairs[self.pairs - 1] = round(last) as i32;
            }
            let tile = &mut rounded[r / TILE_ROWS * tile_len..][..tile_len];
            for (slots, &pair) in tile.chunks_exact_mut(TILE_ROWS).zip(&row_pairs) {
                slots[r % TILE_ROWS] = pair;
            }
        }

        let panel_len = self.pairs * PANEL * 2;
        let panel_count = self.panels.len() / panel_len;
        let mut tiles = [[[0f32; PANEL]; TILE_ROWS]; GROUP];
        for first in (0..panel_count).step_by(GROUP) {
            let group = first..(first + GROUP).min(panel_count);
            let weights = &self.panels[group.start * panel_len..group.end * panel_len];
            let columns = &self.scales[group.start * PANEL..group.end * PANEL];
            let bias = &self.bias[group.start * PANEL..group.end * PANEL];
            let tiles = &mut tiles[..group.len()];
            for tile in (0..rows).step_by(TILE_ROWS) {
                let scales = Scales {
                    rows: row_scales[tile..tile + TILE_ROWS].try_into().expect("padded to whole tiles"),
                    columns,
                    bias,
                };
                kernel.integer_tiles(&rounded[tile * self.pairs..][..tile_len], weights, &scales, tiles);
                for (panel, values) in group.clone().zip(tiles.iter()) {
                    let columns = panel * PANEL..((panel + 1) * PANEL).min(self.outputs);
                    for (r, values) in values.iter().enumerate().take(rows - tile) {
                        store_panel(&mut out[(tile + r) * self.outputs..][columns.clone()], values);
                    }
                }
            }
        }
    }

    /// The scale of `row`'s rounded inputs, and the rounding: an input's 16-bit two's
    /// complement in the low bits.
    fn rounding(&self, row: &[f32]) -> (f32, impl Fn(f32) -> u32) {
        let top = max_abs(row);
        let scale = if top > 0.0 { top / self.input_max } else { 1.0 };
        let inverse = 1.0 / scale;
        // Adding 1.5·2²³ rounds to the nearest integer and leaves it in the low bits, where
        // a float-to-integer `as`, which saturates, would not vectorise.
        (scale, move |v: f32| (v * inverse + 12_582_912.0).to_bits().wrapping_sub(0x4B40_0000) & 0xFFFF)
    }

    /// `multiply_block` on AMX tiles: the rounded inputs split into high and low bytes, row by
    /// row, then each 16 rows times each panel.
    #[cfg(target_arch = "x86_64")]
    fn multiply_block_amx(&self, weights: &amx::Weights, x: &[f32], out: &mut [f32]) {
        let rows = x.len() / self.inputs;
        let mut inputs = amx::Inputs::new(rows, weights);
        let mut row_scales = vec![0f32; rows];
        for (r, (row, row_scale)) in x.chunks_exact(self.inputs).zip(&mut row_scales).enumerate() {
            let (scale, round) = self.rounding(row);
            *row_scale = scale;
            inputs.set_row(r, row, round);
        }
        // SAFETY: the kernel is AMX only where `amx::available` said so.
        let tiles = unsafe { amx::Tiles::configure() };
        let panel_count = self.scales.len() / PANEL;
        let mut sums = amx::Sums::new();
        // A tile's 16 input rows stay in the first-level cache while the panels stream past.
        for (tile, first) in (0..rows).step_by(amx::ROWS).enumerate() {
            for pair in 0..panel_count.div_ceil(2) {
                tiles.product(&inputs, tile, weights, pair, &mut sums);
                for (half, panel) in (2 * pair..(2 * pair + 2).min(panel_count)).enumerate() {
                    let columns = panel * PANEL..((panel + 1) * PANEL).min(self.outputs);
                    let scales = &self.scales[panel * PANEL..][..PANEL];
                    let bias = &self.bias[panel * PANEL..][..PANEL];
                    for r in 0..amx::ROWS.min(rows - first) {
                        let (row_sums, row_scale) = (sums.row(half, r), row_scales[first + r]);
                        // The other kernels' order: (sum · row) · column + bias.
                        let values: [f32; PANEL] =
                            std::array::from_fn(|c| row_sums[c] as f32 * row_scale * scales[c] + bias[c]);
                        store_panel(&mut out[(first + r) * self.outputs..][columns.clone()], &values);
                    }
                }
            }
        }
    }
}

/// Writes a panel's values into `out_row`, the panel's columns of one output row (fewer than
/// `PANEL` in the last panel). A whole panel is copied as a fixed-size array: a slice copy of
/// unknown length is a call to memmove, 7% of the time.
#[inline]
fn store_panel(out_row: &mut [f32], values: &[f32; PANEL]) {
    match <&mut [f32; PANEL]>::try_from(&mut *out_row) {
        Ok(whole) => *whole = *values,
        Err(_) => out_row.copy_from_slice(&values[..out_row.len()]),
    }
}

/// What turns a tile's integer sums into outputs: `sum · rows[r] · columns[c] + bias[c]`, for
/// the outputs of one or more consecutive panels.
struct Scales<'a> {
    rows: [f32; TILE_ROWS],
    columns: &'a [f32],
    bias: &'a [f32],
}

type Tile = [[f32; PANEL]; TILE_ROWS];

impl Kernel {
    /// The outputs of `TILE_ROWS` rows of rounded input pairs (`[pairs, TILE_ROWS]`) times each
    /// of the consecutive weight panels in `weights` (`[panels, pairs, PANEL, 2]`), one tile
    /// per panel.
    fn integer_tiles(self, inputs: &[i32], weights: &[i16], scales: &Scales, tiles: &mut [Tile]) {
        let pairs = inputs.len() / TILE_ROWS;
        let panel_len = pairs * PANEL * 2;
        assert!(inputs.len() == TILE_ROWS * pairs && weights.len() == tiles.len() * panel_len);
        assert!(scales.columns.len() == tiles.len() * PANEL && scales.bias.len() == tiles.len() * PANEL);
        match self {
            // SAFETY: AVX-512 with VNNI is present, and the slices have the lengths asserted.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni | Kernel::Amx => unsafe {
                match tiles.len() {
                    4 => avx512::tiles::<4>(inputs, weights, pairs, scales, tiles),
                    3 => avx512::tiles::<3>(inputs, weights, pairs, scales, tiles),
                    2 => avx512::tiles::<2>(inputs, weights, pairs, scales, tiles),
                    _ => avx512::tiles::<1>(inputs, weights, pairs, scales, tiles),
                }
            },
            _ => {
                for (p, tile) in tiles.iter_mut().enumerate() {
                    let weights = &weights[p * panel_len..][..panel_len];
                    let columns = scales.columns[p * PANEL..][..PANEL].try_into().expect("a whole panel");
                    let bias = scales.bias[p * PANEL..][..PANEL].try_into().expect("a whole panel");
                    *tile = match self {
                        // SAFETY: AVX2 is present, and the slices have the lengths the kernel reads.
                        #[cfg(target_arch = "x86_64")]
                        Kernel::Avx2 | Kernel::Avx512Vnni | Kernel::Amx => unsafe {
                            avx2::tile(inputs, weights, pairs, &scales.rows, columns, bias)
                        },
                        Kernel::Portable => portable_tile(inputs, weights, &scales.rows, columns, bias),
                    };
                }
            }
        }
    }
}

fn portable_tile(
    inputs: &[i32],
    weights: &[i16],
    rows: &[f32; TILE_ROWS],
    columns: &[f32; PANEL],
    bias: &[f32; PANEL],
) -> Tile {
    let mut sums = [[0i32; PANEL]; TILE_ROWS];
    for (tile_pairs, panel_pair) in inputs.chunks_exact(TILE_ROWS).zip(weights.chunks_exact(PANEL * 2)) {
        for (&pair, sums) in tile_pairs.iter().zip(sums.iter_mut()) {
            let (low, high) = (i32::from(pair as i16), pair >> 16);
            for (sum, w) in sums.iter_mut().zip(panel_pair.chunks_exact(2)) {
                *sum = sum.wrapping_add(low * i32::from(w[0]) + high * i32::from(w[1]));
            }
        }
    }
    let mut tile = [[0f32; PANEL]; TILE_ROWS];
    for ((sums, values), row_scale) in sums.iter().zip(tile.iter_mut()).zip(rows) {
        for (c, value) in values.iter_mut().enumerate() {
            *value = sums[c] as f32 * row_scale * columns[c] + bias[c];
        }
    }
    tile
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{PANEL, TILE_ROWS, Tile};

    /// # Safety
    /// AVX2 must be present; `inputs` holds `TILE_ROWS × pairs` values and `weights`
    /// `pairs × PANEL × 2`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn tile(
        inputs: &[i32],
        weights: &[i16],
        pairs: usize,
        rows: &[f32; TILE_ROWS],
        columns: &[f32; PANEL],
        bias: &[f32; PANEL],
    ) -> Tile {
        let mut acc = [[_mm256_setzero_si256(); 2]; TILE_ROWS];
        let (mut w, mut x) = (weights.as_ptr(), inputs.as_ptr());
        for _ in 0..pairs {
            // SAFETY: `pairs` steps of TILE_ROWS inputs and 2·PANEL weights stay inside the slices.
            unsafe {
                let w0 = _mm256_loadu_si256(w.cast());
                let w1 = _mm256_loadu_si256(w.add(PANEL).cast());
                for (r, acc) in acc.iter_mut().enumerate() {
                    let pair = _mm256_set1_epi32(*x.add(r));
                    acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(pair, w0));
                    acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(pair, w1));
                }
                w = w.add(2 * PANEL);
                x = x.add(TILE_ROWS);
            }
        }
        let mut tile = [[0f32; PANEL]; TILE_ROWS];
        // SAFETY: the scales hold PANEL floats and each row of the tile PANEL floats.
        unsafe {
            let columns = [_mm256_loadu_ps(columns.as_ptr()), _mm256_loadu_ps(columns.as_ptr().add(8))];
            let bias = [_mm256_loadu_ps(bias.as_ptr()), _mm256_loadu_ps(bias.as_ptr().add(8))];
            for ((acc, out), &row_scale) in acc.iter().zip(tile.iter_mut()).zip(rows) {
                let row_scale = _mm256_set1_ps(row_scale);
                for half in 0..2 {
                    // The portable kernel's order: (sum · row) · column + bias, no fused step.
                    let value = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[half]), row_scale);
                    let value = _mm256_add_ps(_mm256_mul_ps(value, columns[half]), bias[half]);
                    _mm256_storeu_ps(out.as_mut_ptr().add(8 * half), value);
                }
            }
        }
        tile
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{PANEL, Scales, TILE_ROWS, Tile};

    /// `P` panels at once: `TILE_ROWS × P` registers of sums (24 of the 32 for four panels),
    /// so that each broadcast input pair serves `P` multiply-adds.
    ///
    /// # Safety
    /// AVX-512F and VNNI must be present; `inputs` holds `TILE_ROWS × pairs` values, `weights`
    /// `P × pairs × PANEL × 2`, the scales' columns and bias `P × PANEL` each, and `tiles` `P`.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn tiles<const P: usize>(
        inputs: &[i32],
        weights: &[i16],
        pairs: usize,
        scales: &Scales,
        tiles: &mut [Tile],
    ) {
        let panel_len = pairs * PANEL * 2;
        let mut acc = [[_mm512_setzero_si512(); P]; TILE_ROWS];
        let (w, mut x) = (weights.as_ptr(), inputs.as_ptr());
        for pair in 0..pairs {
            // SAFETY: pair < pairs and p < P keep every read inside the slices.
            unsafe {
                let w: [__m512i; P] =
                    std::array::from_fn(|p| _mm512_loadu_si512(w.add(p * panel_len + pair * PANEL * 2).cast()));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let input = _mm512_set1_epi32(*x.add(r));
                    for (acc, &w) in acc.iter_mut().zip(&w) {
                        *acc = _mm512_dpwssd_epi32(*acc, input, w);
                    }
                }
                x = x.add(TILE_ROWS);
            }
        }
        // SAFETY: the scales hold P·PANEL floats each and every tile row PANEL floats.
        unsafe {
            for (p, tile) in tiles.iter_mut().enumerate().take(P) {
                let columns = _mm512_loadu_ps(scales.columns.as_ptr().add(p * PANEL));
                let bias = _mm512_loadu_ps(scales.bias.as_ptr().add(p * PANEL));
                for ((acc, out), &row_scale) in acc.iter().zip(tile.iter_mut()).zip(&scales.rows) {
                    // The portable kernel's order: (sum · row) · column + bias, no fused step.
                    let value = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[p]), _mm512_set1_ps(row_scale));
                    let value = _mm512_add_ps(_mm512_mul_ps(value, columns), bias);
                    _mm512_storeu_ps(out.as_mut_ptr(), value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(weight: &[f32], bias: &[f32], x: &[f32], outputs: usize, inputs: usize) -> Vec<f32> {
        x.chunks_exact(inputs)
            .flat_map(|row| {
                (0..outputs)
                    .map(move |o| row.iter().zip(&weight[o * inputs..]).map(|(a, b)| a * b).sum::<f32>() + bias[o])
            })
            .collect()
    }

    fn numbers(count: usize, seed: u32) -> Vec<f32> {
        (0..count)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    /// Odd sizes exercise the padding of inputs, outputs, tiles and blocks; five panels make a
    /// group of four and one of one (AVX-512), and two pairs and a half (AMX).
    #[test]
    fn products_match_floats_and_the_kernels_agree() {
        let (outputs, inputs, rows) = (75, 77, 70);
        let weight = numbers(outputs * inputs, 1);
        let bias = numbers(outputs, 2);
        let x = numbers(rows * inputs, 3);
        let layer = Linear::new(&weight, &bias, outputs, inputs);
        let expected = reference(&weight, &bias, &x, outputs, inputs);
        let mut actual = Vec::new();
        layer.forward(&x, Finish::Bias, &mut actual);
        for (a, e) in actual.iter().zip(&expected) {
            assert!((a - e).abs() < 0.05, "{a} vs {e}");
        }
        let error: f32 = actual.iter().zip(&expected).map(|(a, e)| (a - e).abs()).sum::<f32>() / actual.len() as f32;
        assert!(error < 0.01, "mean error {error}");

        for kernel in Kernel::available() {
            let mut each = vec![0f32; rows * outputs];
            layer.multiply_block(kernel, &x[..BLOCK_ROWS * inputs], &mut each[..BLOCK_ROWS * outputs]);
            layer.multiply_block(kernel, &x[BLOCK_ROWS * inputs..], &mut each[BLOCK_ROWS * outputs..]);
            assert_eq!(each, actual, "{kernel:?} gives the same outputs as the detected kernel");
        }
    }

    #[test]
    fn sums_cannot_overflow_at_the_bounds() {
        let inputs = 3072;
        let layer = Linear::new(&vec![-1.0; inputs], &[0.0], 1, inputs);
        let x = vec![1.0; inputs];
        let mut y = Vec::new();
        layer.forward(&x, Finish::Bias, &mut y);
        assert!((y[0] + inputs as f32).abs() < 1.0, "{}", y[0]);
    }

    #[test]
    fn rows_are_finished_in_place() {
        let (outputs, inputs) = (8, 8);
        let mut weight = vec![0f32; 64];
        (0..8).for_each(|i| weight[i * 8 + i] = 1.0);
        let x: Vec<f32> = (0..16).map(|i| i as f32 - 8.0).collect();
        let mut relu = Vec::new();
        Linear::new(&weight, &[0.0; 8], outputs, inputs).forward(&x, Finish::Activate(Activation::Relu), &mut relu);
        assert_eq!(relu, x.iter().map(|v| v.max(0.0)).collect::<Vec<_>>());
        let norm = LayerNorm { weight: vec![1.0; 8], bias: vec![0.0; 8], eps: 1e-6 };
        let residual = vec![1.0; 16];
        // A longer buffer from an earlier product is cut to size.
        let mut y = vec![5.0; 40];
        Linear::new(&weight, &[0.0; 8], outputs, inputs).forward(
            &x,
            Finish::ResidualNorm { residual: &residual, norm: &norm },
            &mut y,
        );
        assert_eq!(y.len(), 16);
        let mean: f32 = y[..8].iter().sum::<f32>() / 8.0;
        assert!(mean.abs() < 1e-4 && (y[7] - y[0] - 3.055).abs() < 0.01, "{y:?}");
    }
}

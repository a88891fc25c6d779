//! Self-attention of one head over one sequence.
//!
//! Scores and context vectors are computed in register tiles of 4 queries by 32 keys (or 32
//! value columns), so that each key or value read serves four queries. Computed a row at a time,
//! the products waited on memory and took two fifths of e5-small's time on 512-token passages.

use super::Kernel;
use super::math::softmax;

/// Queries per tile.
const QUERIES: usize = 4;
/// Keys, or value columns, per tile: two AVX-512 registers (AVX2 takes the tile in two halves).
const KEYS: usize = 32;

type Tile = [[f32; KEYS]; QUERIES];

/// A row-major matrix: row `r` starts at `values[r * stride]`.
#[derive(Clone, Copy)]
struct Rows<'a> {
    values: &'a [f32],
    stride: usize,
}

/// One head's attention over one sequence: `rows` is the sequence's `[n, 3·h]` block of queries,
/// keys and values; the head's columns start at `offset` in each third and are `d` wide.
/// Returns the head's context vectors, `[n, d]`.
pub(super) fn attend(kernel: Kernel, rows: &[f32], h: usize, offset: usize, d: usize) -> Vec<f32> {
    let n = rows.len() / (3 * h);
    let width = n.div_ceil(KEYS) * KEYS;
    let scale = 1.0 / (d as f32).sqrt();
    // Queries scaled, `[n + pad, d]`; keys transposed, `[d, width]`; values with their columns
    // padded to whole tiles, `[n, d + pad]`. Padding is zero.
    let columns = d.div_ceil(KEYS) * KEYS;
    let mut queries = vec![0f32; n.div_ceil(QUERIES) * QUERIES * d];
    let mut keys = vec![0f32; d * width];
    let mut values = vec![0f32; n * columns];
    for (j, row) in rows.chunks_exact(3 * h).enumerate() {
        for (q, &v) in queries[j * d..][..d].iter_mut().zip(&row[offset..][..d]) {
            *q = v * scale;
        }
        for (t, &k) in row[h + offset..][..d].iter().enumerate() {
            keys[t * width + j] = k;
        }
        values[j * columns..][..d].copy_from_slice(&row[2 * h + offset..][..d]);
    }

    let mut context = vec![0f32; queries.len()];
    let mut scores = vec![0f32; QUERIES * width];
    for (tile_queries, tile_context) in queries.chunks_exact(QUERIES * d).zip(context.chunks_exact_mut(QUERIES * d)) {
        for first in (0..width).step_by(KEYS) {
            let tile = kernel.float_tile(
                Rows { values: tile_queries, stride: d },
                Rows { values: &keys, stride: width },
                first,
                d,
            );
            for (sums, row) in tile.iter().zip(scores.chunks_exact_mut(width)) {
                row[first..first + KEYS].copy_from_slice(sums);
            }
        }
        for row in scores.chunks_exact_mut(width) {
            kernel.widened(|| softmax(&mut row[..n]));
            row[n..].fill(0.0);
        }
        for first in (0..d).step_by(KEYS) {
            let tile = kernel.float_tile(
                Rows { values: &scores, stride: width },
                Rows { values: &values, stride: columns },
                first,
                n,
            );
            let used = KEYS.min(d - first);
            for (sums, out) in tile.iter().zip(tile_context.chunks_exact_mut(d)) {
                out[first..first + used].copy_from_slice(&sums[..used]);
            }
        }
    }
    context.truncate(n * d);
    context
}

impl Kernel {
    /// `Σ_s lhs[r, s] · rhs[s, first..first + 16]` for the 4 rows r of `lhs` (row stride
    /// `lhs_stride`) over `steps` steps of `rhs` (row stride `rhs_stride`). Scores are queries
    /// times transposed keys; context vectors are probabilities times values.
    fn float_tile(self, lhs: Rows, rhs: Rows, first: usize, steps: usize) -> Tile {
        assert!(steps <= lhs.stride && lhs.values.len() >= (QUERIES - 1) * lhs.stride + steps);
        assert!(first + KEYS <= rhs.stride && rhs.values.len() >= steps * rhs.stride);
        match self {
            // SAFETY: these kernels are detected only with AVX-512F; the assertions bound every
            // read.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni | Kernel::Amx => unsafe { avx512::tile(lhs, rhs, first, steps) },
            // SAFETY: AVX2 and FMA are present; the assertions bound every read, the second
            // half's included.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe {
                let halves = [avx2::tile(lhs, rhs, first, steps), avx2::tile(lhs, rhs, first + avx2::HALF, steps)];
                std::array::from_fn(|r| std::array::from_fn(|c| halves[c / avx2::HALF][r][c % avx2::HALF]))
            },
            Kernel::Portable => {
                let mut tile = [[0f32; KEYS]; QUERIES];
                for step in 0..steps {
                    let right = &rhs.values[step * rhs.stride + first..][..KEYS];
                    for (r, sums) in tile.iter_mut().enumerate() {
                        let left = lhs.values[r * lhs.stride + step];
                        sums.iter_mut().zip(right).for_each(|(s, v)| *s = left.mul_add(*v, *s));
                    }
                }
                tile
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{QUERIES, Rows};

    /// Keys per call: two AVX2 registers.
    pub(super) const HALF: usize = 16;

    /// `Kernel::float_tile` for 16 keys from `first`.
    ///
    /// # Safety
    /// AVX2 and FMA must be present, and the slices as `Kernel::float_tile` asserts.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile(lhs: Rows, rhs: Rows, first: usize, steps: usize) -> [[f32; HALF]; QUERIES] {
        let mut acc = [[_mm256_setzero_ps(); 2]; QUERIES];
        let (left, right) = (lhs.values.as_ptr(), rhs.values.as_ptr());
        let (lhs_stride, rhs_stride) = (lhs.stride, rhs.stride);
        for step in 0..steps {
            // SAFETY: step < steps and r < QUERIES, inside the bounds Kernel::float_tile asserts.
            unsafe {
                let r0 = _mm256_loadu_ps(right.add(step * rhs_stride + first));
                let r1 = _mm256_loadu_ps(right.add(step * rhs_stride + first + 8));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let l = _mm256_broadcast_ss(&*left.add(r * lhs_stride + step));
                    acc[0] = _mm256_fmadd_ps(l, r0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(l, r1, acc[1]);
                }
            }
        }
        let mut tile = [[0f32; HALF]; QUERIES];
        for (acc, out) in acc.iter().zip(tile.iter_mut()) {
            // SAFETY: each row of the tile holds two registers' worth of f32.
            unsafe {
                _mm256_storeu_ps(out.as_mut_ptr(), acc[0]);
                _mm256_storeu_ps(out.as_mut_ptr().add(8), acc[1]);
            }
        }
        tile
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{KEYS, QUERIES, Rows, Tile};

    /// # Safety
    /// AVX-512F must be present, and the slices as `Kernel::float_tile` asserts.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile(lhs: Rows, rhs: Rows, first: usize, steps: usize) -> Tile {
        let mut acc = [[_mm512_setzero_ps(); 2]; QUERIES];
        let (left, right) = (lhs.values.as_ptr(), rhs.values.as_ptr());
        let (lhs_stride, rhs_stride) = (lhs.stride, rhs.stride);
        for step in 0..steps {
            // SAFETY: step < steps and r < QUERIES, inside the bounds Kernel::float_tile asserts.
            unsafe {
                let r0 = _mm512_loadu_ps(right.add(step * rhs_stride + first));
                let r1 = _mm512_loadu_ps(right.add(step * rhs_stride + first + KEYS / 2));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let l = _mm512_set1_ps(*left.add(r * lhs_stride + step));
                    acc[0] = _mm512_fmadd_ps(l, r0, acc[0]);
                    acc[1] = _mm512_fmadd_ps(l, r1, acc[1]);
                }
            }
        }
        let mut tile = [[0f32; KEYS]; QUERIES];
        for (acc, out) in acc.iter().zip(tile.iter_mut()) {
            // SAFETY: each row of the tile holds two registers' worth of f32.
            unsafe {
                _mm512_storeu_ps(out.as_mut_ptr(), acc[0]);
                _mm512_storeu_ps(out.as_mut_ptr().add(KEYS / 2), acc[1]);
            }
        }
        tile
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention written out, in f64.
    fn reference(rows: &[f32], h: usize, offset: usize, d: usize) -> Vec<f32> {
        let n = rows.len() / (3 * h);
        let row = |j: usize, part: usize| &rows[j * 3 * h + part * h + offset..][..d];
        let mut out = Vec::new();
        for i in 0..n {
            let scores: Vec<f64> = (0..n)
                .map(|j| {
                    row(i, 0).iter().zip(row(j, 1)).map(|(q, k)| f64::from(q * k)).sum::<f64>() / (d as f64).sqrt()
                })
                .collect();
            let top = scores.iter().cloned().fold(f64::MIN, f64::max);
            let weights: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
            let total: f64 = weights.iter().sum();
            for t in 0..d {
                out.push((0..n).map(|j| weights[j] / total * f64::from(row(j, 2)[t])).sum::<f64>() as f32);
            }
        }
        out
    }

    /// Sizes that are not multiples of the tiles: 37 tokens, heads 24 wide.
    #[test]
    fn both_kernels_match_attention_written_out() {
        let (n, h, d) = (37, 48, 24);
        let rows: Vec<f32> = (0..n * 3 * h).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 1.5).collect();
        for offset in [0, d] {
            let expected = reference(&rows, h, offset, d);
            for kernel in Kernel::available() {
                let actual = attend(kernel, &rows, h, offset, d);
                assert_eq!(actual.len(), n * d);
                for (a, e) in actual.iter().zip(&expected) {
                    assert!((a - e).abs() < 1e-5, "{kernel:?}: {a} vs {e}");
                }
            }
        }
    }
}

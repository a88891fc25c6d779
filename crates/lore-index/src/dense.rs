//! The exact dense index: every vector of a collection in one contiguous matrix, scanned in full
//! for each query. Exact search is the quality reference for any approximate index, and at
//! 100k × 384 a scan takes a few milliseconds, so it is the default.

use std::collections::HashSet;

use lore_core::{Error, Result};

/// Row `i` of `values` is the vector of chunk `ids[i]`. Rows are in no particular order.
pub(crate) struct DenseMatrix {
    dimension: usize,
    ids: Vec<i64>,
    values: Vec<f32>,
    /// The collection generation this matrix reflects (see `Collection`).
    pub generation: i64,
}

impl DenseMatrix {
    pub fn with_capacity(dimension: usize, rows: usize, generation: i64) -> Self {
        DenseMatrix {
            dimension,
            ids: Vec::with_capacity(rows),
            values: Vec::with_capacity(rows * dimension),
            generation,
        }
    }

    pub fn push(&mut self, id: i64, vector: &[f32]) {
        debug_assert_eq!(vector.len(), self.dimension);
        self.ids.push(id);
        self.values.extend_from_slice(vector);
    }

    /// Appends a row stored as little-endian f32 bytes; false if it has the wrong length.
    pub fn push_le_bytes(&mut self, id: i64, bytes: &[u8]) -> bool {
        let (floats, rest) = bytes.as_chunks::<4>();
        if floats.len() != self.dimension || !rest.is_empty() {
            return false;
        }
        self.ids.push(id);
        self.values
            .extend(floats.iter().map(|b| f32::from_le_bytes(*b)));
        true
    }

    pub fn remove(&mut self, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        let doomed: HashSet<i64> = ids.iter().copied().collect();
        let d = self.dimension;
        let mut kept = 0;
        for row in 0..self.ids.len() {
            if doomed.contains(&self.ids[row]) {
                continue;
            }
            if kept != row {
                self.ids[kept] = self.ids[row];
                self.values.copy_within(row * d..(row + 1) * d, kept * d);
            }
            kept += 1;
        }
        self.ids.truncate(kept);
        self.values.truncate(kept * d);
    }

    /// The `k` rows with the highest dot product with `query`, best first; equal scores are
    /// ordered by ascending id so results are reproducible.
    pub fn top_k(&self, query: &[f32], k: usize) -> Vec<(i64, f32)> {
        if k == 0 || self.ids.is_empty() {
            return Vec::new();
        }
        let mut scored: Vec<(i64, f32)> = self
            .ids
            .iter()
            .zip(self.values.chunks_exact(self.dimension))
            .map(|(&id, row)| (id, dot(row, query)))
            .collect();
        let better = |a: &(i64, f32), b: &(i64, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if k < scored.len() {
            scored.select_nth_unstable_by(k - 1, better);
            scored.truncate(k);
        }
        scored.sort_unstable_by(better);
        scored
    }
}

/// Dot product with independent accumulators, so that LLVM keeps them in vector registers
/// (strict float semantics forbid it to reorder a single running sum).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let (a_blocks, a_tail) = a.as_chunks::<LANES>();
    let (b_blocks, b_tail) = b.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        for lane in 0..LANES {
            acc[lane] += x[lane] * y[lane];
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Checks a vector's length and values and scales it to unit length, so that dot products are
/// cosine similarities even when an embedder (a remote one, say) does not normalise.
pub(crate) fn unit_vector(vector: &[f32], dimension: usize, what: &str) -> Result<Vec<f32>> {
    if vector.len() != dimension {
        return Err(Error::InvalidInput(format!(
            "{what} has {} dimensions but the collection's embedder makes {dimension}: \
             embed with the collection's embedder",
            vector.len()
        )));
    }
    if vector.iter().any(|x| !x.is_finite()) {
        return Err(Error::InvalidInput(format!(
            "{what} contains NaN or infinity: the embedder produced an invalid vector"
        )));
    }
    // f64 so that large components cannot overflow the sum of squares.
    let norm = vector
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 {
        return Err(Error::InvalidInput(format!(
            "{what} is all zeros: it has no direction, so nothing can be compared with it"
        )));
    }
    Ok(vector
        .iter()
        .map(|&x| (f64::from(x) / norm) as f32)
        .collect())
}

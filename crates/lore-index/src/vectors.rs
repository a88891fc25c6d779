//! Vector arithmetic shared by the dense index and its graph: the table of rows, dot
//! products, unit vectors and the top-k selection both searches end with.

use lore_core::{Error, Result};

/// Row `i` of `values` is the vector of chunk `ids[i]`; ids ascend.
pub(crate) struct Vectors {
    pub dimension: usize,
    pub ids: Vec<i64>,
    pub values: Vec<f32>,
    pub live: Vec<bool>,
    pub dead: usize,
}

impl Vectors {
    pub fn new(dimension: usize) -> Vectors {
        Vectors { dimension, ids: Vec::new(), values: Vec::new(), live: Vec::new(), dead: 0 }
    }

    pub fn row(&self, row: usize) -> &[f32] {
        &self.values[row * self.dimension..(row + 1) * self.dimension]
    }

    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    pub fn live_rows(&self) -> usize {
        self.ids.len() - self.dead
    }

    pub fn kill(&mut self, id: i64) {
        if let Ok(row) = self.ids.binary_search(&id)
            && self.live[row]
        {
            self.live[row] = false;
            self.dead += 1;
        }
    }

    pub fn reserve(&mut self, rows: usize) {
        self.ids.reserve(rows);
        self.values.reserve(rows * self.dimension);
        self.live.reserve(rows);
    }

    pub fn push(&mut self, id: i64, vector: impl IntoIterator<Item = f32>) {
        debug_assert!(self.ids.last().is_none_or(|&last| last < id));
        self.values.extend(vector);
        self.ids.push(id);
        self.live.push(true);
    }
}

/// The `k` best of `scored` (chunk id, score): best first, equal scores by ascending id.
pub(crate) fn best_k(mut scored: Vec<(i64, f32)>, k: usize) -> Vec<(i64, f32)> {
    let better = |a: &(i64, f32), b: &(i64, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if k == 0 {
        return Vec::new();
    }
    if k < scored.len() {
        scored.select_nth_unstable_by(k - 1, better);
        scored.truncate(k);
    }
    scored.sort_unstable_by(better);
    scored
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
    let norm = vector.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    if norm == 0.0 {
        return Err(Error::InvalidInput(format!(
            "{what} is all zeros: it has no direction, so nothing can be compared with it"
        )));
    }
    Ok(vector.iter().map(|&x| (f64::from(x) / norm) as f32).collect())
}

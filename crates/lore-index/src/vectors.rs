//! Vector arithmetic shared by the dense index and its graph: the table of rows, dot
//! products, unit vectors and the top-k selection both searches end with.

use lore_core::{Error, Result};

/// Row `i` of `values` is the vector of chunk `ids[i]`; ids ascend. Each row also has an 8-bit
/// code (see [`Code`]) that the graph walks with.
pub(crate) struct Vectors {
    pub dimension: usize,
    pub ids: Vec<i64>,
    pub values: Vec<f32>,
    pub live: Vec<bool>,
    pub dead: usize,
    codes: Vec<i8>,
    code_scales: Vec<f32>,
}

impl Vectors {
    pub fn new(dimension: usize) -> Vectors {
        Vectors::from_rows(dimension, Vec::new(), Vec::new(), Vec::new())
    }

    /// Rows read back whole (see `dense::read_graph`); their codes are made here.
    pub fn from_rows(dimension: usize, ids: Vec<i64>, values: Vec<f32>, live: Vec<bool>) -> Vectors {
        let dead = live.iter().filter(|&&live| !live).count();
        let mut vectors = Vectors { dimension, ids, values, live, dead, codes: Vec::new(), code_scales: Vec::new() };
        vectors.codes.reserve(vectors.values.len());
        for row in 0..vectors.rows() {
            vectors.code_row(row);
        }
        vectors
    }

    fn code_row(&mut self, row: usize) {
        let values = &self.values[row * self.dimension..(row + 1) * self.dimension];
        let scale = Code::scale_of(values);
        self.codes.extend(values.iter().map(|&x| Code::quantize(x, scale)));
        self.code_scales.push(scale);
    }

    /// Row `row`'s 8-bit code.
    pub fn code(&self, row: usize) -> Code<'_> {
        Code { values: &self.codes[row * self.dimension..(row + 1) * self.dimension], scale: self.code_scales[row] }
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
        self.codes.reserve(rows * self.dimension);
        self.code_scales.reserve(rows);
    }

    pub fn push(&mut self, id: i64, vector: impl IntoIterator<Item = f32>) {
        debug_assert!(self.ids.last().is_none_or(|&last| last < id));
        self.values.extend(vector);
        self.ids.push(id);
        self.live.push(true);
        self.code_row(self.rows() - 1);
    }
}

/// A vector in 8 bits per component, `values[i] × scale` ≈ the component: a quarter of the
/// memory a graph search reads per visited node. The scale is per vector (its largest
/// component maps to ±127), so codes of unit vectors keep their dot products to about 1%.
#[derive(Clone, Copy)]
pub(crate) struct Code<'a> {
    pub values: &'a [i8],
    pub scale: f32,
}

impl Code<'_> {
    fn scale_of(vector: &[f32]) -> f32 {
        let largest = vector.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        if largest > 0.0 { largest / 127.0 } else { 1.0 }
    }

    fn quantize(x: f32, scale: f32) -> i8 {
        (x / scale).round().clamp(-127.0, 127.0) as i8
    }

    /// `vector`'s code, in `buffer`.
    pub fn of<'b>(vector: &[f32], buffer: &'b mut Vec<i8>) -> Code<'b> {
        let scale = Code::scale_of(vector);
        buffer.clear();
        buffer.extend(vector.iter().map(|&x| Code::quantize(x, scale)));
        Code { values: buffer, scale }
    }

    /// The approximate dot product of the vectors the two codes stand for.
    #[inline]
    pub fn dot(self, other: Code<'_>) -> f32 {
        dot_i8(self.values, other.values) as f32 * self.scale * other.scale
    }
}

/// Dot product of 8-bit vectors, exact in 32-bit integers (a 127² product times 2¹⁶ components
/// still fits). Widened to 16 bits and multiplied in pairs, which LLVM turns into `vpmaddwd`.
#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    const LANES: usize = 16;
    let (a_blocks, a_tail) = a.as_chunks::<{ 2 * LANES }>();
    let (b_blocks, b_tail) = b.as_chunks::<{ 2 * LANES }>();
    let mut acc = [0i32; LANES];
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        for lane in 0..LANES {
            let pair = i32::from(i16::from(x[2 * lane]) * i16::from(y[2 * lane]))
                + i32::from(i16::from(x[2 * lane + 1]) * i16::from(y[2 * lane + 1]));
            acc[lane] = acc[lane].wrapping_add(pair);
        }
    }
    let tail: i32 = a_tail.iter().zip(b_tail).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
    acc.iter().sum::<i32>() + tail
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
/// (strict float semantics forbid it to reorder a single running sum): four 8-lane registers,
/// enough to hide the latency of the fused multiply-adds, summed as a tree at the end.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 32;
    let (a_blocks, a_tail) = a.as_chunks::<LANES>();
    let (b_blocks, b_tail) = b.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        for lane in 0..LANES {
            acc[lane] = x[lane].mul_add(y[lane], acc[lane]);
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for lane in 0..width {
            acc[lane] += acc[lane + width];
        }
    }
    acc[0] + tail
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

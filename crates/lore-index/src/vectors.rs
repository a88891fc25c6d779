//! Vector arithmetic shared by the dense index and its graph: the table of rows, dot
//! products, unit vectors and the top-k selection both searches end with.

use lore_core::{Error, Result, VectorMemory};

/// Row `i` is the vector of chunk `ids[i]`; ids ascend. Each row has an 8-bit code (see
/// [`Code`]) that the graph walks with, and unless the table keeps codes only
/// ([`VectorMemory::Int8`]) its vector in f32.
pub(crate) struct Vectors {
    pub dimension: usize,
    pub ids: Vec<i64>,
    pub live: Vec<bool>,
    pub dead: usize,
    memory: VectorMemory,
    /// Row-major; empty when `memory` is `Int8`.
    values: Vec<f32>,
    codes: Vec<i8>,
    code_scales: Vec<f32>,
}

/// What a row is compared with: another row, or a query vector (unit length).
#[derive(Clone, Copy)]
pub(crate) enum Target<'a> {
    Row(usize),
    Query(&'a [f32]),
}

impl Vectors {
    pub fn new(dimension: usize, memory: VectorMemory) -> Vectors {
        Vectors {
            dimension,
            ids: Vec::new(),
            live: Vec::new(),
            dead: 0,
            memory,
            values: Vec::new(),
            codes: Vec::new(),
            code_scales: Vec::new(),
        }
    }

    /// Rows read back whole (see `dense::read_graph`): f32 values (their codes are made here),
    /// or codes and their scales.
    pub fn from_parts(dimension: usize, ids: Vec<i64>, live: Vec<bool>, stored: StoredRows) -> Vectors {
        let dead = live.iter().filter(|&&live| !live).count();
        match stored {
            StoredRows::F32(values) => {
                let mut vectors = Vectors { ids, live, dead, ..Vectors::new(dimension, VectorMemory::F32) };
                vectors.codes.reserve(values.len());
                for row in values.chunks_exact(dimension) {
                    vectors.push_code(row);
                }
                vectors.values = values;
                vectors
            }
            StoredRows::Int8 { codes, scales } => {
                Vectors { ids, live, dead, codes, code_scales: scales, ..Vectors::new(dimension, VectorMemory::Int8) }
            }
        }
    }

    /// What each row keeps in memory.
    pub fn memory(&self) -> VectorMemory {
        self.memory
    }

    /// The f32 values of every row, row-major (empty for `Int8`).
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Every row's code values, row-major, and the codes' scales.
    pub fn codes(&self) -> (&[i8], &[f32]) {
        (&self.codes, &self.code_scales)
    }

    /// Row `row`'s 8-bit code.
    pub fn code(&self, row: usize) -> Code<'_> {
        Code { values: &self.codes[row * self.dimension..(row + 1) * self.dimension], scale: self.code_scales[row] }
    }

    /// The cosine similarity of `target` and row `row`: exact from f32 rows; from codes only,
    /// the query's exact values times the row's code, or two codes.
    #[inline]
    pub fn similarity(&self, target: Target<'_>, row: usize) -> f32 {
        let f32_row = |row: usize| &self.values[row * self.dimension..(row + 1) * self.dimension];
        match (self.memory, target) {
            (VectorMemory::F32, Target::Row(other)) => dot(f32_row(other), f32_row(row)),
            (VectorMemory::F32, Target::Query(query)) => dot(query, f32_row(row)),
            (VectorMemory::Int8, Target::Row(other)) => self.code(other).dot(self.code(row)),
            (VectorMemory::Int8, Target::Query(query)) => self.code(row).dot_f32(query),
        }
    }

    /// Asks the processor to bring what [`Vectors::similarity`] reads of row `row` into its cache.
    #[inline]
    pub fn prefetch(&self, row: usize) {
        match self.memory {
            VectorMemory::F32 => prefetch(&self.values[row * self.dimension..(row + 1) * self.dimension]),
            VectorMemory::Int8 => prefetch(self.code(row).values),
        }
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

    /// Drops the dead rows.
    pub fn retain_live(&mut self) {
        let dimension = self.dimension;
        let keep: Vec<usize> = (0..self.rows()).filter(|&row| self.live[row]).collect();
        let gather = |values: &[f32], width: usize| -> Vec<f32> {
            keep.iter().flat_map(|&row| values[row * width..(row + 1) * width].iter().copied()).collect()
        };
        if self.memory == VectorMemory::F32 {
            self.values = gather(&self.values, dimension);
        }
        self.code_scales = gather(&self.code_scales, 1);
        self.codes =
            keep.iter().flat_map(|&row| self.codes[row * dimension..(row + 1) * dimension].iter().copied()).collect();
        self.ids = keep.iter().map(|&row| self.ids[row]).collect();
        self.live = vec![true; keep.len()];
        self.dead = 0;
    }

    pub fn reserve(&mut self, rows: usize) {
        self.ids.reserve(rows);
        if self.memory == VectorMemory::F32 {
            self.values.reserve(rows * self.dimension);
        }
        self.live.reserve(rows);
        self.codes.reserve(rows * self.dimension);
        self.code_scales.reserve(rows);
    }

    pub fn push(&mut self, id: i64, vector: &[f32]) {
        debug_assert!(self.ids.last().is_none_or(|&last| last < id));
        debug_assert_eq!(vector.len(), self.dimension);
        if self.memory == VectorMemory::F32 {
            self.values.extend_from_slice(vector);
        }
        self.push_code(vector);
        self.ids.push(id);
        self.live.push(true);
    }

    fn push_code(&mut self, vector: &[f32]) {
        let scale = Code::scale_of(vector);
        self.codes.extend(vector.iter().map(|&x| Code::quantize(x, scale)));
        self.code_scales.push(scale);
    }
}

/// Asks the processor to bring `row` into its cache; only a hint.
#[inline]
pub(crate) fn prefetch<T>(row: &[T]) {
    #[cfg(target_arch = "x86_64")]
    for line in row.chunks(64 / size_of::<T>()) {
        // SAFETY: a prefetch never faults and reads nothing into the program.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast()) };
    }
}

/// The rows of a saved table, as [`Vectors::from_parts`] takes them.
pub(crate) enum StoredRows {
    F32(Vec<f32>),
    Int8 { codes: Vec<i8>, scales: Vec<f32> },
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

    /// The approximate dot product of `vector` with the vector the code stands for: only the
    /// code's rounding is in it, half the error of two codes.
    #[inline]
    pub fn dot_f32(self, vector: &[f32]) -> f32 {
        const LANES: usize = 32;
        let (a_blocks, a_tail) = vector.as_chunks::<LANES>();
        let (b_blocks, b_tail) = self.values.as_chunks::<LANES>();
        let mut acc = [0.0f32; LANES];
        for (x, y) in a_blocks.iter().zip(b_blocks) {
            for lane in 0..LANES {
                acc[lane] = x[lane].mul_add(f32::from(y[lane]), acc[lane]);
            }
        }
        let tail: f32 = a_tail.iter().zip(b_tail).map(|(&x, &y)| x * f32::from(y)).sum();
        (acc.iter().sum::<f32>() + tail) * self.scale
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

//! Element-wise and row-wise functions of the encoder (and the softmax of the chat models' reply
//! attention), written so that the compiler turns them into vector code: no calls into libm
//! inside the loops (its `expf` and `erff` are scalar and took a fifth of the time of candle's
//! BERT), and sums kept in eight lanes, because a float sum folded one element at a time cannot
//! be reordered into vector adds.

/// `e^x` to about 2e-7 relative error, for `x` in float range; branch-free so that loops over it
/// vectorise.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let whole = (x * std::f32::consts::LOG2_E + 0.5).floor();
    // e^x = 2^whole · e^y with y = x − whole·ln 2 in [-ln2/2, ln2/2], ln 2 split in two so that
    // y keeps its precision for large x (Cody and Waite); e^y by its Taylor series, whose
    // eighth term is below 1e-7.
    let y = whole.mul_add(2.121_944_4e-4, whole.mul_add(-0.693_359_4, x));
    let mut series: f32 = 1.0 / 720.0;
    for coefficient in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        series = series.mul_add(y, coefficient);
    }
    // 2^whole built from its bits. Adding 1.5·2²³ puts the integer `whole` in the low bits of
    // the sum, which avoids a float-to-integer conversion: Rust's saturating `as` does not
    // vectorise.
    let integer = (whole + 12_582_912.0).to_bits().wrapping_sub(0x4B40_0000);
    series * f32::from_bits(integer.wrapping_add(127) << 23)
}

/// GELU in its exact form, `x · Φ(x)`, with erf by Abramowitz and Stegun's 7.1.26 (absolute
/// error below 1.5e-7).
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    let z = (x * std::f32::consts::FRAC_1_SQRT_2).abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let erf = 1.0 - poly * exp(-z * z);
    0.5 * x * (1.0 + erf.copysign(x))
}

/// GELU's tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
#[inline(always)]
pub(crate) fn gelu_tanh(x: f32) -> f32 {
    let inner = 0.797_884_6 * (x + 0.044_715 * x * x * x);
    // tanh(u) = 1 − 2 / (e^{2u} + 1)
    let tanh = 1.0 - 2.0 / (exp(2.0 * inner) + 1.0);
    0.5 * x * (1.0 + tanh)
}

/// The sum of `values`, added in eight lanes.
pub(crate) fn sum(values: &[f32]) -> f32 {
    sum_of(values, |v| v)
}

/// The sum of `values`' squares, added in eight lanes.
pub(crate) fn sum_of_squares(values: &[f32]) -> f32 {
    sum_of(values, |v| v * v)
}

#[inline(always)]
fn sum_of(values: &[f32], term: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = values.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().map(|&v| term(v)).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += term(v);
        }
    }
    lanes.iter().sum::<f32>() + rest
}

/// The largest of `values` (−∞ when empty).
pub(crate) fn max(values: &[f32]) -> f32 {
    max_of(values, f32::NEG_INFINITY, |v| v)
}

/// The largest magnitude of `values` (0 when empty): the scale of a row or block rounded to
/// integers. Folded one value at a time, as `fold(0, |m, v| m.max(v.abs()))`, it stays scalar and
/// was a tenth of the encoder's input rounding.
pub(crate) fn max_abs(values: &[f32]) -> f32 {
    max_of(values, 0.0, f32::abs)
}

#[inline(always)]
fn max_of(values: &[f32], empty: f32, term: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [empty; 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder().iter().fold(empty, |a, &b| a.max(term(b)));
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            let v = term(v);
            *lane = if v > *lane { v } else { *lane };
        }
    }
    lanes.iter().fold(rest, |a, &b| a.max(b))
}

/// Replaces each row of scores by its softmax.
#[inline]
pub(crate) fn softmax(row: &mut [f32]) {
    let top = max(row);
    for v in row.iter_mut() {
        *v = exp(*v - top);
    }
    let scale = 1.0 / sum(row);
    for v in row.iter_mut() {
        *v *= scale;
    }
}

/// A layer norm's parameters.
pub(crate) struct LayerNorm {
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    pub(crate) eps: f32,
}

impl LayerNorm {
    /// Normalises `row` in place: zero mean, unit variance, then scaled and shifted.
    pub(crate) fn apply(&self, row: &mut [f32]) {
        let n = row.len() as f32;
        let mean = sum(row) / n;
        for v in row.iter_mut() {
            *v -= mean;
        }
        let variance = sum_of_squares(row) / n;
        let inverse = 1.0 / (variance + self.eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
            *v = *v * inverse * w + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_the_range_softmax_uses() {
        for i in -7000..=2000 {
            let x = i as f32 / 100.0;
            let (fast, exact) = (exp(x), x.exp());
            assert!(((fast - exact) / exact).abs() < 1e-6, "exp({x}) = {fast}, not {exact}");
        }
        assert!(exp(-1000.0) < 1e-37);
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn lane_reductions_match_their_definitions() {
        assert_eq!((max(&[]), max_abs(&[])), (f32::NEG_INFINITY, 0.0));
        for n in [1, 7, 8, 13, 32, 100] {
            let values: Vec<f32> = (0..n).map(|i| ((i * 37 % 23) as f32 - 11.0) / 3.0).collect();
            assert_eq!(max(&values), values.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)));
            assert_eq!(max_abs(&values), values.iter().fold(0f32, |m, v| m.max(v.abs())));
            let squares: f32 = values.iter().map(|v| v * v).sum();
            assert!((sum_of_squares(&values) - squares).abs() <= 1e-5 * squares);
        }
    }

    #[test]
    fn gelus_match_their_definitions() {
        assert_eq!((gelu(-10.0), gelu(10.0)), (0.0, 10.0));
        for i in -400..=400 {
            let x = i as f32 / 100.0;
            let erf = libm_erf(f64::from(x) / std::f64::consts::SQRT_2);
            let exact = 0.5 * f64::from(x) * (1.0 + erf);
            assert!((f64::from(gelu(x)) - exact).abs() < 1e-6, "gelu({x}) = {}, not {exact}", gelu(x));
            let u = 0.797_884_560_8 * (f64::from(x) + 0.044_715 * f64::from(x).powi(3));
            let tanh = 0.5 * f64::from(x) * (1.0 + u.tanh());
            assert!((f64::from(gelu_tanh(x)) - tanh).abs() < 1e-5, "gelu_tanh({x})");
        }
    }

    /// erf by its Taylor series, accurate in f64 for the |x| ≤ 3 the test uses.
    fn libm_erf(x: f64) -> f64 {
        let (mut term, mut total) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            total += term / (2 * n + 1) as f64;
        }
        total * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn softmax_and_layer_norm_match_their_definitions() {
        let mut row: Vec<f32> = (0..21).map(|i| (i as f32 * 0.7).sin() * 3.0).collect();
        let original = row.clone();
        softmax(&mut row);
        let total: f32 = original.iter().map(|v| v.exp()).sum();
        for (p, v) in row.iter().zip(&original) {
            assert!((p - v.exp() / total).abs() < 1e-6);
        }
        let norm = LayerNorm { weight: vec![2.0; 21], bias: vec![0.5; 21], eps: 1e-12 };
        let mut row = original.clone();
        norm.apply(&mut row);
        let mean = original.iter().sum::<f32>() / 21.0;
        let sd = (original.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 21.0).sqrt();
        for (n, v) in row.iter().zip(&original) {
            assert!((n - ((v - mean) / sd * 2.0 + 0.5)).abs() < 1e-5);
        }
    }
}

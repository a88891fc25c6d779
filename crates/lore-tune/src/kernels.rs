//! The attention softmax and the feed-forward GELU as fused, parallel kernels with their own
//! backward passes. Written as separate candle operations, the softmax (scale, add the mask,
//! subtract the maximum, exponentiate, sum, divide) made a dozen single-threaded passes over the
//! largest tensors of training — the `[batch, heads, tokens, tokens]` scores — and most of a
//! training step's time; GELU's derivative, composed, made seven passes over the widest
//! activations with a slow `erf`.

use std::f32::consts::FRAC_1_SQRT_2;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

/// Softmax over the last dimension of attention scores `[batch, heads, queries, keys]`, where
/// keys whose `mask` entry (`[batch, keys]`, 1 or 0) is 0 get probability exactly 0.
pub(crate) fn masked_softmax(scores: &Tensor, mask: &Tensor) -> Result<Tensor> {
    scores.contiguous()?.apply_op2(&mask.contiguous()?, MaskedSoftmax)
}

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&storage.as_slice::<f32>()?[start..end]),
        None => bail!("{what} must be contiguous"),
    }
}

struct MaskedSoftmax;

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let scores = contiguous(s1, l1, "attention scores")?;
        let mask = contiguous(s2, l2, "attention mask")?;
        let (_, heads, queries, keys) = l1.shape().dims4()?;
        let mut out = vec![0f32; scores.len()];
        out.par_chunks_mut(keys).zip(scores.par_chunks(keys)).enumerate().for_each(|(row, (out, scores))| {
            let batch = row / (heads * queries);
            let mask = &mask[batch * keys..(batch + 1) * keys];
            let max = scores.iter().zip(mask).filter(|(_, m)| **m > 0.0).map(|(s, _)| *s).fold(f32::MIN, f32::max);
            let mut sum = 0.0;
            for ((o, s), m) in out.iter_mut().zip(scores).zip(mask) {
                *o = if *m > 0.0 { (s - max).exp() } else { 0.0 };
                sum += *o;
            }
            let scale = if sum > 0.0 { 1.0 / sum } else { 0.0 };
            out.iter_mut().for_each(|o| *o *= scale);
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(res.contiguous()?.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxGradient)?), None))
    }
}

/// The gradient of softmax: with `y` the probabilities and `g` the gradient with respect to
/// them, `y ⊙ (g − ⟨g, y⟩)` per row.
struct SoftmaxGradient;

impl CustomOp2 for SoftmaxGradient {
    fn name(&self) -> &'static str {
        "softmax-gradient"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = contiguous(s1, l1, "probabilities")?;
        let g = contiguous(s2, l2, "gradient")?;
        let keys = l1.shape().dims().last().copied().unwrap_or(1);
        let mut out = vec![0f32; y.len()];
        out.par_chunks_mut(keys).zip(y.par_chunks(keys).zip(g.par_chunks(keys))).for_each(|(out, (y, g))| {
            let dot: f32 = y.iter().zip(g).map(|(a, b)| a * b).sum();
            for ((o, y), g) in out.iter_mut().zip(y).zip(g) {
                *o = y * (g - dot);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// GELU in its exact form, `x · Φ(x)` with Φ the standard normal distribution function.
pub(crate) fn gelu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Gelu)
}

/// Elements per parallel task of the element-wise kernels.
const CHUNK: usize = 4096;

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(storage, layout, "GELU input")?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(out, x)| {
            for (o, &x) in out.iter_mut().zip(x) {
                *o = x * normal_cdf(x);
            }
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(arg.contiguous()?.apply_op2_no_bwd(&grad.contiguous()?, &GeluGradient)?))
    }
}

/// GELU's gradient: `g · (Φ(x) + x · φ(x))`.
struct GeluGradient;

impl CustomOp2 for GeluGradient {
    fn name(&self) -> &'static str {
        "gelu-gradient"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s1, l1, "GELU input")?;
        let g = contiguous(s2, l2, "gradient")?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK))).for_each(|(out, (x, g))| {
            for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
                let density = (-0.5 * x * x).exp() * 0.398_942_3;
                *o = g * (normal_cdf(x) + x * density);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Φ(x) through erf by Abramowitz and Stegun's 7.1.26 (absolute error below 1.5e-7).
fn normal_cdf(x: f32) -> f32 {
    let z = (x * FRAC_1_SQRT_2).abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let erf = 1.0 - poly * (-z * z).exp();
    0.5 * (1.0 + erf.copysign(x))
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device, Tensor, Var};

    use super::{gelu, masked_softmax};

    #[test]
    fn fused_gelu_matches_candles() {
        let device = Device::Cpu;
        let values: Vec<f32> = (0..2000).map(|i| (i as f32 - 1000.0) / 150.0).collect();
        let x = Var::from_tensor(&Tensor::from_vec(values, (4, 500), &device).unwrap()).unwrap();
        let weights = Tensor::arange(0f32, 2000., &device).unwrap().reshape((4, 500)).unwrap().cos().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let fused = gelu(x.as_tensor()).unwrap();
        let reference = x.as_tensor().gelu_erf().unwrap();
        for (a, b) in flat(&fused).iter().zip(flat(&reference)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let gradient = |y: &Tensor| {
            flat((y * &weights).unwrap().sum_all().unwrap().backward().unwrap().get(x.as_tensor()).unwrap())
        };
        for (a, b) in gradient(&fused).iter().zip(gradient(&reference)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    /// The fused kernel against the same softmax written with candle's own differentiable
    /// operations (padding as a large negative bias), forward and backward.
    #[test]
    fn fused_softmax_matches_the_composed_one() {
        let device = Device::Cpu;
        let values: Vec<f32> = (0..2 * 3 * 4 * 5).map(|i| ((i * 37 % 23) as f32 - 11.0) / 4.0).collect();
        let scores = Var::from_tensor(&Tensor::from_vec(values, (2, 3, 4, 5), &device).unwrap()).unwrap();
        let mask = Tensor::new(&[[1f32, 1., 1., 0., 0.], [1., 1., 1., 1., 1.]], &device).unwrap();
        let weights = Tensor::arange(0f32, 120., &device).unwrap().reshape((2, 3, 4, 5)).unwrap();

        let fused = masked_softmax(scores.as_tensor(), &mask).unwrap();
        let bias = ((mask.reshape((2, 1, 1, 5)).unwrap() - 1.0).unwrap() * 1e9).unwrap();
        let shifted = scores.as_tensor().broadcast_add(&bias).unwrap();
        let e = shifted.broadcast_sub(&shifted.max_keepdim(D::Minus1).unwrap()).unwrap().exp().unwrap();
        let composed = e.broadcast_div(&e.sum_keepdim(D::Minus1).unwrap()).unwrap();

        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (a, b) in flat(&fused).iter().zip(flat(&composed)) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let gradient = |probabilities: &Tensor| {
            let loss = (probabilities * &weights).unwrap().sum_all().unwrap();
            flat(loss.backward().unwrap().get(scores.as_tensor()).unwrap())
        };
        for (a, b) in gradient(&fused).iter().zip(gradient(&composed)) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}

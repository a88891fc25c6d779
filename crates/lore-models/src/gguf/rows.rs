//! The row-wise steps between a layer's products: RMS norm, splitting the attention heads with
//! their rotary embedding, and the gated MLP's `silu(gate) · up`, each one pass shared among the
//! quantized products' threads.
//!
//! Through candle these were separate passes (a head split was a transpose and a copy, then the
//! rotation a second pass) on the calling thread or on rayon's pool, whose threads competed for
//! the cores with the product pool's spinning workers: in a two-thread SmolLM2 prompt the second
//! thread waited an eighth of its time for them.

use candle_core::{Device, Layout, Result, Storage, Tensor, bail};

use super::grouped::{SharedOutput, share};
use crate::encoder::math::sum_of_squares;

/// Rotary embedding tables: the cosine and sine of position × frequency, `half` values per
/// position (a head's dimensions are rotated in pairs).
pub(super) struct Rotary {
    cos: Vec<f32>,
    sin: Vec<f32>,
    half: usize,
    /// Llama pairs neighbouring dimensions (2i, 2i+1); Qwen2 pairs i and i + head_dim/2
    /// (GPT-NeoX style), as llama.cpp decides by architecture.
    interleaved: bool,
}

impl Rotary {
    pub(super) fn new(head_dim: usize, base: f32, positions: usize, interleaved: bool) -> Rotary {
        let half = head_dim / 2;
        let frequencies: Vec<f32> = (0..half).map(|i| 1.0 / base.powf((2 * i) as f32 / head_dim as f32)).collect();
        let angles = (0..positions).flat_map(|p| frequencies.iter().map(move |f| p as f32 * f));
        let (cos, sin) = angles.map(|angle| (angle.cos(), angle.sin())).unzip();
        Rotary { cos, sin, half, interleaved }
    }

    /// How many positions the tables cover.
    pub(super) fn positions(&self) -> usize {
        self.cos.len() / self.half
    }

    /// Writes `vector` rotated by the angles of `position` into `out`.
    fn rotate(&self, vector: &[f32], position: usize, out: &mut [f32]) {
        let at = position * self.half..(position + 1) * self.half;
        let (cos, sin) = (&self.cos[at.clone()], &self.sin[at]);
        if self.interleaved {
            for (((out, pair), &cos), &sin) in out.chunks_exact_mut(2).zip(vector.chunks_exact(2)).zip(cos).zip(sin) {
                out[0] = pair[0] * cos - pair[1] * sin;
                out[1] = pair[0] * sin + pair[1] * cos;
            }
        } else {
            let (first, second) = vector.split_at(self.half);
            let (out_first, out_second) = out.split_at_mut(self.half);
            for i in 0..self.half {
                out_first[i] = first[i] * cos[i] - second[i] * sin[i];
                out_second[i] = first[i] * sin[i] + second[i] * cos[i];
            }
        }
    }
}

/// `x` (`(tokens, hidden)`) with each row divided by its root mean square and multiplied by
/// `weight`.
pub(super) fn rms_norm(x: &Tensor, weight: &[f32], eps: f32) -> Result<Tensor> {
    let (_, width) = x.dims2()?;
    if weight.len() != width {
        bail!("an RMS norm of {} weights over rows of {width}", weight.len());
    }
    map_rows([x], width, |[row], out| {
        let mean_square = sum_of_squares(row) / width as f32;
        let root = (mean_square + eps).sqrt();
        for ((out, &v), &w) in out.iter_mut().zip(row).zip(weight) {
            *out = v / root * w;
        }
    })
}

/// The gated MLP's `silu(gate) · up`, both `(tokens, width)`.
pub(super) fn silu_times(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    let (tokens, width) = gate.dims2()?;
    if up.dims2()? != (tokens, width) {
        bail!("a gate of {:?} with an up projection of {:?}", gate.dims(), up.dims());
    }
    map_rows([gate, up], width, |[gate, up], out| {
        for ((out, &gate), &up) in out.iter_mut().zip(gate).zip(up) {
            // libm's `exp`, as candle's `silu`: the encoder's vectorised one (2e-7 relative
            // error), rounded into the down projection's 8-bit input, moved SmolLM2's choice
            // probabilities by 0.03 from candle's reference forward pass.
            *out = gate / (1.0 + (-gate).exp()) * up;
        }
    })
}

/// `x` (`(tokens, heads × head_dim)`, token `i` at position `start + i`) as `(heads, tokens,
/// head_dim)`, each head's vector rotated by its position when `rotary` is given.
pub(super) fn split_heads(x: &Tensor, heads: usize, start: usize, rotary: Option<&Rotary>) -> Result<Tensor> {
    let (tokens, width) = x.dims2()?;
    let head_dim = width / heads;
    if head_dim * heads != width || rotary.is_some_and(|r| 2 * r.half != head_dim || start + tokens > r.positions()) {
        bail!("{heads} heads from rows of {width} values at position {start}");
    }
    read_rows([x], tokens, width, |[rows]| {
        // SAFETY: each (head, token) vector is written whole by the one call that holds it.
        let out = unsafe {
            SharedOutput::fill(tokens * width, |out_at| {
                share(heads * tokens, tokens * width, |range| {
                    for task in range {
                        let (head, token) = (task / tokens, task % tokens);
                        let vector = &rows.row(token)[head * head_dim..(head + 1) * head_dim];
                        let out = out_at.slice(task * head_dim, head_dim);
                        match rotary {
                            Some(rotary) => rotary.rotate(vector, start + token, out),
                            None => out.copy_from_slice(vector),
                        }
                    }
                })
            })
        };
        Tensor::from_vec(out, (heads, tokens, head_dim), &Device::Cpu)
    })
}

/// A `(tokens, width)` result whose row `i` `row_fn` computes from row `i` of each of `inputs`,
/// the rows shared among the threads.
fn map_rows<const N: usize>(
    inputs: [&Tensor; N],
    width: usize,
    row_fn: impl Fn([&[f32]; N], &mut [f32]) + Sync,
) -> Result<Tensor> {
    let tokens = inputs[0].dim(0)?;
    read_rows(inputs, tokens, width, |rows| {
        // SAFETY: each row is written whole by the one call that holds it.
        let out = unsafe {
            SharedOutput::fill(tokens * width, |out_at| {
                share(tokens, tokens * width, |range| {
                    for token in range {
                        row_fn(rows.each_ref().map(|rows| rows.row(token)), out_at.slice(token * width, width));
                    }
                })
            })
        };
        Tensor::from_vec(out, (tokens, width), &Device::Cpu)
    })
}

/// Calls `read` with the rows of each of `inputs`, `(tokens, width)` matrices (views whose rows
/// are consecutive values, such as one projection's columns of a stacked result, included).
fn read_rows<const N: usize, T>(
    inputs: [&Tensor; N],
    tokens: usize,
    width: usize,
    read: impl FnOnce([Rows<'_>; N]) -> Result<T>,
) -> Result<T> {
    let storages = inputs.map(|input| input.storage_and_layout());
    let mut rows = Vec::with_capacity(N);
    for (storage, layout) in &storages {
        let Storage::Cpu(storage) = &**storage else { bail!("a layer's values are not in CPU memory") };
        rows.push(Rows::new(storage.as_slice::<f32>()?, layout, tokens, width)?);
    }
    let Ok(rows) = rows.try_into() else { unreachable!("one set of rows per input") };
    read(rows)
}

/// The rows of a `(rows, width)` matrix whose values are consecutive within a row.
struct Rows<'a> {
    data: &'a [f32],
    stride: usize,
    width: usize,
}

impl<'a> Rows<'a> {
    fn new(data: &'a [f32], layout: &Layout, rows: usize, width: usize) -> Result<Rows<'a>> {
        if layout.dims() != [rows, width] {
            bail!("rows of {:?} where ({rows}, {width}) were expected", layout.dims());
        }
        let &[stride, 1] = layout.stride() else { bail!("rows with strides {:?}", layout.stride()) };
        if rows == 0 {
            return Ok(Rows { data: &[], stride, width });
        }
        let start = layout.start_offset();
        match data.get(start..start + (rows - 1) * stride + width) {
            Some(data) => Ok(Rows { data, stride, width }),
            None => bail!("{rows} rows of {width} values beyond their storage"),
        }
    }

    fn row(&self, row: usize) -> &'a [f32] {
        &self.data[row * self.stride..row * self.stride + self.width]
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Tensor};

    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        (0..n as u64).map(|i| ((i * 2_654_435_761 + seed * 40_503) % 1_000) as f32 / 500.0 - 1.0).collect()
    }

    fn matrix(rows: usize, width: usize, seed: u64) -> Tensor {
        Tensor::from_vec(values(rows * width, seed), (rows, width), &Device::Cpu).unwrap()
    }

    fn close(got: &Tensor, expected: &Tensor) {
        let (got, expected) = (
            got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            expected.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() <= 1e-5 * e.abs().max(1.0), "{g} against {e}");
        }
    }

    #[test]
    fn rows_steps_compute_what_candles_operations_do() {
        // Enough tokens for the work to be shared among threads, and one token alone.
        for tokens in [1, 90] {
            let x = matrix(tokens, 192, 1);
            let weight = values(192, 2);
            let expected =
                candle_nn::ops::rms_norm(&x, &Tensor::new(weight.as_slice(), &Device::Cpu).unwrap(), 1e-6).unwrap();
            close(&rms_norm(&x, &weight, 1e-6).unwrap(), &expected);

            // Gate and up as views of one stacked result.
            let stacked = matrix(tokens, 2 * 200, 3);
            let (gate, up) = (stacked.narrow(D::Minus1, 0, 200).unwrap(), stacked.narrow(D::Minus1, 200, 200).unwrap());
            let expected = (candle_nn::ops::silu(&gate).unwrap() * &up).unwrap();
            close(&silu_times(&gate, &up).unwrap(), &expected);

            for interleaved in [false, true] {
                let (heads, head_dim, start) = (6, 32, 5);
                let rotary = Rotary::new(head_dim, 10_000.0, 128, interleaved);
                let (cos, sin) = (
                    Tensor::from_vec(rotary.cos.clone(), (128, head_dim / 2), &Device::Cpu)
                        .unwrap()
                        .narrow(0, start, tokens)
                        .unwrap(),
                    Tensor::from_vec(rotary.sin.clone(), (128, head_dim / 2), &Device::Cpu)
                        .unwrap()
                        .narrow(0, start, tokens)
                        .unwrap(),
                );
                let x = stacked.narrow(D::Minus1, 8, heads * head_dim).unwrap();
                let split =
                    x.reshape((tokens, heads, head_dim)).unwrap().transpose(0, 1).unwrap().contiguous().unwrap();
                close(&split_heads(&x, heads, start, None).unwrap(), &split);
                let split = split.unsqueeze(0).unwrap();
                let rotated = if interleaved {
                    candle_nn::rotary_emb::rope_i(&split, &cos, &sin)
                } else {
                    candle_nn::rotary_emb::rope(&split, &cos, &sin)
                };
                close(&split_heads(&x, heads, start, Some(&rotary)).unwrap(), &rotated.unwrap().squeeze(0).unwrap());
            }
        }
    }
}

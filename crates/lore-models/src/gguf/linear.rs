//! Linear layers kept in two forms: quantized, for the tokens of a reply, and where the
//! quantized kernel is slow for a weight's shape, also dequantized to f32 for prompts.
//!
//! Q8_0 and Q4_K weights (and Q6_K, rewritten as Q8_0 at load) are multiplied by Lore's own
//! kernel ([`GroupedMatrix`]); other types by candle's. Which form a prompt is faster through is
//! measured, once per weight type and shape, when the model loads: on one core of the machine
//! a 64-row chunk through Qwen2 0.5B's `ffn_up` took 29 ms through candle's Q8_0 kernel and 9 ms
//! as an f32 gemm, so f32 copies were kept, while Lore's kernel is faster than the gemm and the
//! copies (0.6 GB for that model) are no longer made. A reply is decoded one token at a time,
//! which reads the whole weight for one row: the quantized form, 4x fewer bytes, is faster
//! there.
//!
//! Prompt tokens always take the prompt form, however few they are, and reply tokens the
//! quantized one: the two differ in rounding (the quantized kernel also quantizes the
//! activations), and a cached prompt prefix must hold the same keys and values as a fresh run.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use candle_core::quantized::{GgmlDType, QMatMul, QTensor, ggml_file::qtensor_from_ggml};
use candle_core::{Device, Module, Result, Tensor};

use super::grouped::GroupedMatrix;

/// Rows of the input the two forms are timed on at load.
const CALIBRATION_ROWS: usize = 64;

/// The f32 copy is kept only when it is at least this much faster: it costs 4x (Q8_0) to 7x
/// (Q4_K) the memory of the quantized weights.
const DENSE_MIN_SPEEDUP: f64 = 1.5;

/// Which form of the weights prompt chunks are multiplied with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PrefillWeights {
    /// An f32 copy of each layer weight whose quantized kernel is measured slower on prompts
    /// (timed at load, once per weight type and shape).
    #[default]
    Measured,
    /// Only the quantized weights: the least memory.
    Quantized,
    /// An f32 copy of every layer weight: the most memory.
    Dense,
}

pub(super) struct Linear {
    quantized: Quantized,
    /// The weights dequantized, `(outputs, inputs)`, for prompt tokens.
    dense: Option<Tensor>,
    bias: Option<Tensor>,
}

/// What the tokens going through a layer are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pass {
    Prompt,
    Reply,
}

impl Linear {
    /// `x` is `(tokens, inputs)`; the result `(tokens, outputs)`.
    pub(super) fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let y = match (&self.dense, pass) {
            (Some(weights), Pass::Prompt) => x.matmul(&weights.t()?)?,
            _ => self.quantized.forward(x)?,
        };
        match &self.bias {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        }
    }
}

/// Projections of the same input (attention's query, key and value; the MLP's gate and up),
/// multiplied as one matrix of their rows stacked when their weights share a type: the input is
/// quantized once instead of once per projection, and the threads meet once. Decoding SmolLM2
/// on two threads, a token crossed 210 thread barriers in its products; stacked, 120.
pub(super) enum Projections {
    Stacked { linear: Linear, widths: Vec<usize> },
    Separate(Vec<Linear>),
}

impl Projections {
    /// `x` is `(tokens, inputs)`; the `N` projections' `(tokens, outputs)` results, in order
    /// (stacked, views of one result, which the row steps read where they lie).
    pub(super) fn forward<const N: usize>(&self, x: &Tensor, pass: Pass) -> Result<[Tensor; N]> {
        let results: Vec<Tensor> = match self {
            Projections::Stacked { linear, widths } => {
                let y = linear.forward(x, pass)?;
                let mut first = 0;
                widths
                    .iter()
                    .map(|&width| {
                        let part = y.narrow(1, first, width);
                        first += width;
                        part
                    })
                    .collect::<Result<_>>()?
            }
            Projections::Separate(linears) => {
                linears.iter().map(|linear| linear.forward(x, pass)).collect::<Result<_>>()?
            }
        };
        let count = results.len();
        results.try_into().map_err(|_| candle_core::Error::Msg(format!("{count} projections where {N} were expected")))
    }
}

/// Quantized weights with the kernel that multiplies them: Lore's own for Q8_0 and Q4_K (see
/// [`GroupedMatrix`]), candle's for the other types.
pub(super) enum Quantized {
    Grouped(GroupedMatrix),
    Candle(QMatMul),
}

/// Types whose weights are rewritten as Q8_0 at load, for Lore's kernel. candle multiplies a
/// single token by Q6_K at about 8 GB/s of Q6_K bytes with two threads on the development
/// machine, where Lore's Q8_0 kernel reads 17; the rewrite stores 8.5 bits a value instead of
/// 6.6, and moves a value by at most 1/254 of its block's largest.
const REWRITTEN_AS_Q8_0: &[GgmlDType] = &[GgmlDType::Q6K];

impl Quantized {
    pub(super) fn new(weights: QTensor) -> Result<Quantized> {
        let weights = if REWRITTEN_AS_Q8_0.contains(&weights.dtype()) && weights.rank() == 2 {
            QTensor::quantize(&weights.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?
        } else {
            weights
        };
        Ok(match GroupedMatrix::new(&weights)? {
            Some(matrix) => Quantized::Grouped(matrix),
            None => Quantized::Candle(QMatMul::from_qtensor(weights)?),
        })
    }

    /// `x` is `(tokens, inputs)`; the result `(tokens, outputs)`.
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Quantized::Grouped(matrix) => matrix.forward(x),
            Quantized::Candle(matmul) => matmul.forward(x),
        }
    }
}

/// Builds [`Linear`] layers under one [`PrefillWeights`] policy, remembering what was measured
/// for each weight type and shape.
pub(super) struct LinearBuilder {
    policy: PrefillWeights,
    dense_is_faster: HashMap<(GgmlDType, Vec<usize>), bool>,
}

impl LinearBuilder {
    pub(super) fn new(policy: PrefillWeights) -> Self {
        LinearBuilder { policy, dense_is_faster: HashMap::new() }
    }

    pub(super) fn build(&mut self, weights: QTensor, bias: Option<Tensor>) -> Result<Linear> {
        let key = (weights.dtype(), weights.shape().dims().to_vec());
        let measured = self.dense_is_faster.get(&key).copied();
        let dense = match (self.policy, measured) {
            (PrefillWeights::Quantized, _) | (PrefillWeights::Measured, Some(false)) => None,
            _ => Some(weights.dequantize(&Device::Cpu)?),
        };
        let quantized = Quantized::new(weights)?;
        let dense = match (self.policy, measured, dense) {
            (PrefillWeights::Measured, None, Some(dense)) => {
                let faster = dense_is_faster(&quantized, &dense)?;
                self.dense_is_faster.insert(key, faster);
                faster.then_some(dense)
            }
            (_, _, dense) => dense,
        };
        Ok(Linear { quantized, dense, bias })
    }

    /// The projections `weights` (each `(outputs, inputs)`) with their biases, stacked into one
    /// matrix when they share a type and their inputs and all or none have biases.
    pub(super) fn build_projections(
        &mut self,
        weights: Vec<QTensor>,
        biases: Vec<Option<Tensor>>,
    ) -> Result<Projections> {
        let dtype = weights[0].dtype();
        let shapes: Vec<&[usize]> = weights.iter().map(|w| w.shape().dims()).collect();
        let stackable = weights.iter().all(|w| w.dtype() == dtype)
            && shapes.iter().all(|dims| dims.len() == 2 && dims[1] == shapes[0][1])
            && (biases.iter().all(Option::is_some) || biases.iter().all(Option::is_none));
        if !stackable {
            let linears = weights.into_iter().zip(biases).map(|(w, b)| self.build(w, b)).collect::<Result<_>>()?;
            return Ok(Projections::Separate(linears));
        }
        let widths: Vec<usize> = shapes.iter().map(|dims| dims[0]).collect();
        let inputs = shapes[0][1];
        let mut bytes = Vec::new();
        for w in &weights {
            bytes.extend_from_slice(&w.data()?);
        }
        let stacked = qtensor_from_ggml(dtype, &bytes, vec![widths.iter().sum(), inputs], &Device::Cpu)?;
        let bias =
            biases.into_iter().collect::<Option<Vec<Tensor>>>().map(|biases| Tensor::cat(&biases, 0)).transpose()?;
        Ok(Projections::Stacked { linear: self.build(stacked, bias)?, widths })
    }
}

/// Times both forms on a [`CALIBRATION_ROWS`]-row input, best of two runs each: the first
/// quantized run may include candle repacking the weights into tiles, and one run slowed by
/// another process should not decide.
fn dense_is_faster(quantized: &Quantized, dense: &Tensor) -> Result<bool> {
    let inputs = dense.dim(1)?;
    let x = Tensor::ones((CALIBRATION_ROWS, inputs), candle_core::DType::F32, &Device::Cpu)?;
    let best_of_two = |run: &dyn Fn() -> Result<Tensor>| -> Result<Duration> {
        let mut best = Duration::MAX;
        for _ in 0..2 {
            let started = Instant::now();
            run()?;
            best = best.min(started.elapsed());
        }
        Ok(best)
    };
    let quantized_time = best_of_two(&|| quantized.forward(&x))?;
    let dense_time = best_of_two(&|| x.matmul(&dense.t()?))?;
    Ok(dense_time.as_secs_f64() * DENSE_MIN_SPEEDUP < quantized_time.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        (0..n as u64).map(|i| ((i * 2_654_435_761 + seed * 40_503) % 1_000) as f32 / 500.0 - 1.0).collect()
    }

    #[test]
    fn stacked_projections_give_each_projections_own_results() {
        // Widths that are not multiples of a group of eight rows, and biases.
        let (inputs, widths) = (64, [24, 12, 20]);
        let weights = |seed| -> Vec<QTensor> {
            widths
                .iter()
                .zip(seed..)
                .map(|(&w, seed)| {
                    let dense = Tensor::from_vec(values(w * inputs, seed), (w, inputs), &Device::Cpu).unwrap();
                    QTensor::quantize(&dense, GgmlDType::Q8_0).unwrap()
                })
                .collect()
        };
        let biases = || {
            widths.iter().zip(7..).map(|(&w, seed)| Some(Tensor::from_vec(values(w, seed), w, &Device::Cpu).unwrap()))
        };
        let mut builder = LinearBuilder::new(PrefillWeights::Quantized);
        let stacked = builder.build_projections(weights(1), biases().collect()).unwrap();
        assert!(matches!(stacked, Projections::Stacked { .. }));
        let separate: Vec<Linear> =
            weights(1).into_iter().zip(biases()).map(|(w, b)| builder.build(w, b).unwrap()).collect();

        let x = Tensor::from_vec(values(5 * inputs, 3), (5, inputs), &Device::Cpu).unwrap();
        for pass in [Pass::Prompt, Pass::Reply] {
            let got: [Tensor; 3] = stacked.forward(&x, pass).unwrap();
            assert_eq!(got.len(), widths.len());
            for (got, linear) in got.iter().zip(&separate) {
                let expected = linear.forward(&x, pass).unwrap();
                assert_eq!(got.to_vec2::<f32>().unwrap(), expected.to_vec2::<f32>().unwrap());
            }
        }
    }
}

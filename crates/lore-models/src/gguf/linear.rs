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

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
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

//! Linear layers kept in two forms: quantized, for the tokens of a reply, and where candle's
//! quantized kernel is slow for a weight's shape, also dequantized to f32 for prompts.
//!
//! Candle has tiled quantized kernels only for some types and shapes (on x86, Q4_K, Q6_K and
//! Q8_0 with an input width that is a multiple of 256 and AVX-512 VNNI); the others take a
//! generic row-by-row path. On one core of the development machine, a 64-row chunk through
//! Qwen2 0.5B's Q8_0 `ffn_up` (896 wide, generic path) took 29 ms quantized and 9 ms as an f32
//! gemm, while Qwen2 1.5B's Q4_K `ffn_up` (tiled path) took 7 ms quantized and 33 ms as f32.
//! Which form is faster is therefore measured, once per weight type and shape, when the model
//! loads. A reply is decoded one token at a time, which reads the whole weight for one row: the
//! quantized form, 4x fewer bytes, is faster there (from 8 rows on, the gemm caught up).
//!
//! Prompt tokens always take the prompt form, however few they are, and reply tokens the
//! quantized one: the two differ in rounding (the quantized kernel also quantizes the
//! activations), and a cached prompt prefix must hold the same keys and values as a fresh run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Result, Tensor};

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
    quantized: QMatMul,
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
        let weights = Arc::new(weights);
        let quantized = QMatMul::from_arc(Arc::clone(&weights))?;
        let dense = match self.policy {
            PrefillWeights::Quantized => None,
            PrefillWeights::Dense => Some(weights.dequantize(&Device::Cpu)?),
            PrefillWeights::Measured => {
                let key = (weights.dtype(), weights.shape().dims().to_vec());
                match self.dense_is_faster.get(&key) {
                    Some(true) => Some(weights.dequantize(&Device::Cpu)?),
                    Some(false) => None,
                    None => {
                        let dense = weights.dequantize(&Device::Cpu)?;
                        let faster = dense_is_faster(&quantized, &dense)?;
                        self.dense_is_faster.insert(key, faster);
                        faster.then_some(dense)
                    }
                }
            }
        };
        Ok(Linear { quantized, dense, bias })
    }
}

/// Times both forms on a [`CALIBRATION_ROWS`]-row input, best of two runs each: the first
/// quantized run may include candle repacking the weights into tiles, and one run slowed by
/// another process should not decide.
fn dense_is_faster(quantized: &QMatMul, dense: &Tensor) -> Result<bool> {
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

//! Lore's BERT encoder for inference on CPU, shared by the sentence embedders and the
//! cross-encoder.
//!
//! It differs from candle-transformers' BERT, which Lore used before and which took about three
//! times as long (docs/benchmarks.md, "Embedding"), in three ways:
//! - the sequences of a batch are packed end to end, so no padding is ever computed, and
//!   attention runs per sequence;
//! - the matrix products are in integers ([`linear`]): weights rounded to ±127, inputs to at
//!   most 16 bits, exact 32-bit sums;
//! - bias, activation, residual and layer norm are applied to each row as its product is
//!   finished, by the same parallel task, instead of in passes of their own.

#[cfg(target_arch = "x86_64")]
mod amx;
mod attention;
mod linear;
pub(crate) mod math;

use std::collections::HashMap;
use std::ops::Range;

use candle_core::{DType, Tensor};
use lore_core::{Error, Result};
use rayon::prelude::*;
use serde::Deserialize;

use attention::attend;
pub(crate) use linear::{Finish, Linear};
use math::LayerNorm;

/// The part of a BERT `config.json` the encoder reads.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct BertConfig {
    pub(crate) vocab_size: usize,
    pub(crate) hidden_size: usize,
    pub(crate) num_hidden_layers: usize,
    pub(crate) num_attention_heads: usize,
    pub(crate) intermediate_size: usize,
    #[serde(default = "default_activation")]
    pub(crate) hidden_act: String,
    pub(crate) max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub(crate) type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub(crate) layer_norm_eps: f64,
}

fn default_activation() -> String {
    "gelu".into()
}

fn default_type_vocab() -> usize {
    2
}

fn default_eps() -> f64 {
    1e-12
}

/// The feed-forward activation.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Activation {
    /// `x·Φ(x)`, transformers' `gelu`.
    Gelu,
    /// The tanh approximation, transformers' `gelu_new` and `gelu_pytorch_tanh`.
    GeluTanh,
    Relu,
}

/// One input of a batch: token ids, and token types (all 0 when `None`).
#[derive(Clone, Copy)]
pub(crate) struct Sequence<'a> {
    pub(crate) ids: &'a [u32],
    pub(crate) types: Option<&'a [u32]>,
}

/// The last layer's token vectors of a batch, sequence after sequence.
pub(crate) struct Hidden {
    values: Vec<f32>,
    width: usize,
    bounds: Vec<Range<usize>>,
}

impl Hidden {
    /// The token vectors of sequence `i`, `[tokens, hidden]` row-major.
    pub(crate) fn tokens(&self, i: usize) -> &[f32] {
        let range = &self.bounds[i];
        &self.values[range.start * self.width..range.end * self.width]
    }
}

struct Layer {
    /// Query, key and value in one product: `[3·hidden, hidden]`.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// A BERT encoder (embeddings and transformer layers, as transformers' `BertModel` without the
/// pooler).
pub(crate) struct BertEncoder {
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    config: BertConfig,
    activation: Activation,
}

/// The weights of a checkpoint by Hugging Face name, as f32 values and a shape. The encoder
/// takes each out as it uses it, so that a model's weights are never held twice while it loads
/// (e5-small's vocabulary alone is 384 MB of f32).
#[derive(Default)]
pub(crate) struct Weights {
    values: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Weights {
    /// Adds the weight `name`.
    pub(crate) fn insert(&mut self, name: String, shape: Vec<usize>, values: Vec<f32>) {
        self.values.insert(name, (shape, values));
    }

    /// The weights of a safetensors file's tensors. A classification checkpoint keeps its
    /// encoder under `bert.`; that prefix is taken off, so names are `BertModel`'s.
    pub(crate) fn from_tensors(tensors: HashMap<String, Tensor>) -> std::result::Result<Weights, String> {
        let prefixed = tensors.contains_key("bert.embeddings.word_embeddings.weight");
        let mut weights = Weights::default();
        for (name, tensor) in tensors {
            let values = tensor
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| format!("cannot read {name}: {e}"))?;
            let name = match name.strip_prefix("bert.") {
                Some(plain) if prefixed => plain.to_string(),
                _ => name,
            };
            weights.insert(name, tensor.dims().to_vec(), values);
        }
        Ok(weights)
    }

    /// Takes out the values of `name`, which must have `shape`.
    pub(crate) fn take(&mut self, name: &str, shape: &[usize]) -> std::result::Result<Vec<f32>, String> {
        let (actual, values) = self.values.remove(name).ok_or_else(|| format!("it has no weight {name}"))?;
        if actual != shape {
            return Err(format!("{name} has shape {actual:?}, the config implies {shape:?}"));
        }
        Ok(values)
    }

    /// Takes out the dense layer `{name}.weight` / `{name}.bias` with `outputs` × `inputs` weights.
    pub(crate) fn linear(&mut self, name: &str, outputs: usize, inputs: usize) -> std::result::Result<Linear, String> {
        let weight = self.take(&format!("{name}.weight"), &[outputs, inputs])?;
        let bias = self.take(&format!("{name}.bias"), &[outputs])?;
        Ok(Linear::new(&weight, &bias, outputs, inputs))
    }

    fn norm(&mut self, name: &str, size: usize, eps: f64) -> std::result::Result<LayerNorm, String> {
        // Old checkpoints name the layer-norm parameters gamma and beta.
        let mut either = |new: &str, old: &str| {
            let old = format!("{name}.{old}");
            if self.values.contains_key(&old) {
                self.take(&old, &[size])
            } else {
                self.take(&format!("{name}.{new}"), &[size])
            }
        };
        Ok(LayerNorm { weight: either("weight", "gamma")?, bias: either("bias", "beta")?, eps: eps as f32 })
    }
}

impl BertEncoder {
    /// The encoder with the weights `weights` names as transformers' `BertModel` does (taking
    /// them out; the rest, such as a pooler, stay). The error says which weight is missing or
    /// misshapen.
    pub(crate) fn load(weights: &mut Weights, config: &BertConfig) -> std::result::Result<BertEncoder, String> {
        let activation = match config.hidden_act.as_str() {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => return Err(format!("activation {other:?} is not supported (gelu, gelu_new, relu are)")),
        };
        let (h, ffn) = (config.hidden_size, config.intermediate_size);
        if config.num_attention_heads == 0 || !h.is_multiple_of(config.num_attention_heads) {
            return Err(format!("{} heads do not divide the hidden size {h}", config.num_attention_heads));
        }
        let eps = config.layer_norm_eps;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                let mut qkv_weight = Vec::with_capacity(3 * h * h);
                let mut qkv_bias = Vec::with_capacity(3 * h);
                for part in ["query", "key", "value"] {
                    qkv_weight.extend(weights.take(&format!("{p}.attention.self.{part}.weight"), &[h, h])?);
                    qkv_bias.extend(weights.take(&format!("{p}.attention.self.{part}.bias"), &[h])?);
                }
                Ok(Layer {
                    qkv: Linear::new(&qkv_weight, &qkv_bias, 3 * h, h),
                    attention_out: weights.linear(&format!("{p}.attention.output.dense"), h, h)?,
                    attention_norm: weights.norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                    intermediate: weights.linear(&format!("{p}.intermediate.dense"), ffn, h)?,
                    output: weights.linear(&format!("{p}.output.dense"), h, ffn)?,
                    output_norm: weights.norm(&format!("{p}.output.LayerNorm"), h, eps)?,
                })
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        Ok(BertEncoder {
            word: weights.take("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            position: weights.take("embeddings.position_embeddings.weight", &[config.max_position_embeddings, h])?,
            token_type: weights.take("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?,
            embedding_norm: weights.norm("embeddings.LayerNorm", h, eps)?,
            layers,
            config: config.clone(),
            activation,
        })
    }

    /// The width of the token vectors.
    pub(crate) fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// The last layer's token vectors of every sequence.
    pub(crate) fn forward(&self, sequences: &[Sequence]) -> Result<Hidden> {
        let h = self.config.hidden_size;
        let mut bounds = Vec::with_capacity(sequences.len());
        let mut tokens = Vec::new();
        for sequence in sequences {
            if sequence.ids.len() > self.config.max_position_embeddings {
                return Err(Error::Model(format!(
                    "a sequence of {} tokens is longer than the model's {} positions",
                    sequence.ids.len(),
                    self.config.max_position_embeddings
                )));
            }
            let start = tokens.len();
            for (position, &id) in sequence.ids.iter().enumerate() {
                let kind = sequence.types.map_or(0, |types| types.get(position).copied().unwrap_or(0));
                if id as usize >= self.config.vocab_size || kind as usize >= self.config.type_vocab_size {
                    return Err(Error::Model(format!(
                        "token {id} of type {kind} is outside the model's vocabulary of {} and {} types",
                        self.config.vocab_size, self.config.type_vocab_size
                    )));
                }
                tokens.push((id as usize, position, kind as usize));
            }
            bounds.push(start..tokens.len());
        }

        let mut x = vec![0f32; tokens.len() * h];
        x.par_chunks_mut(h).zip(&tokens).for_each(|(row, &(id, position, kind))| {
            let word = &self.word[id * h..][..h];
            let position = &self.position[position * h..][..h];
            let kind = &self.token_type[kind * h..][..h];
            for (((v, w), p), k) in row.iter_mut().zip(word).zip(position).zip(kind) {
                *v = w + p + k;
            }
            self.embedding_norm.apply(row);
        });
        let mut buffers = Buffers::default();
        for layer in &self.layers {
            self.layer(layer, &mut x, &bounds, &mut buffers);
        }
        Ok(Hidden { values: x, width: h, bounds })
    }

    /// Replaces `x` with the layer's output.
    fn layer(&self, layer: &Layer, x: &mut Vec<f32>, bounds: &[Range<usize>], buffers: &mut Buffers) {
        let Buffers { qkv, context, attended, inner } = buffers;
        layer.qkv.forward(x, Finish::Bias, qkv);
        self.attention(qkv, bounds, context);
        let norm = &layer.attention_norm;
        layer.attention_out.forward(context, Finish::ResidualNorm { residual: x, norm }, attended);
        layer.intermediate.forward(attended, Finish::Activate(self.activation), inner);
        layer.output.forward(inner, Finish::ResidualNorm { residual: attended, norm: &layer.output_norm }, x);
    }

    /// Self-attention within each sequence, from the packed queries, keys and values
    /// (`[tokens, 3·hidden]`), into `context` (`[tokens, hidden]`); one parallel task per sequence
    /// and head.
    fn attention(&self, qkv: &[f32], bounds: &[Range<usize>], context: &mut Vec<f32>) {
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let d = h / heads;
        let kernel = Kernel::detect();
        let tasks: Vec<(usize, usize)> =
            (0..bounds.len()).flat_map(|s| (0..heads).map(move |head| (s, head))).collect();
        let results: Vec<Vec<f32>> = tasks
            .par_iter()
            .map(|&(s, head)| {
                let range = &bounds[s];
                attend(kernel, &qkv[range.start * 3 * h..range.end * 3 * h], h, head * d, d)
            })
            .collect();
        // Each sequence's rows of the context, filled in parallel: copied on the calling thread,
        // they were a serial step of every layer.
        context.resize(qkv.len() / 3, 0.0);
        let mut sequences = Vec::with_capacity(bounds.len());
        let mut rest = context.as_mut_slice();
        for range in bounds {
            let (sequence, after) = rest.split_at_mut(range.len() * h);
            sequences.push(sequence);
            rest = after;
        }
        sequences.into_par_iter().zip(results.par_chunks(heads)).for_each(|(sequence, head_results)| {
            for (head, result) in head_results.iter().enumerate() {
                for (row, values) in sequence.chunks_exact_mut(h).zip(result.chunks_exact(d)) {
                    row[head * d..][..d].copy_from_slice(values);
                }
            }
        });
    }
}

/// The intermediate products of a layer, kept from one layer to the next so that each product
/// writes into memory already in place.
#[derive(Default)]
struct Buffers {
    qkv: Vec<f32>,
    context: Vec<f32>,
    attended: Vec<f32>,
    inner: Vec<f32>,
}

/// The instructions the kernels run on, chosen at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// Intel's AMX tiles for the integer products (see the `amx` module); otherwise as
    /// `Avx512Vnni`.
    #[cfg(target_arch = "x86_64")]
    Amx,
    /// AVX-512 with its integer multiply-add (`vpdpwssd`: 32 products summed in one instruction,
    /// where AVX2 needs two instructions for 16). Used by the integer products; attention, in
    /// floats, takes the AVX2 path.
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni") {
                return if amx::available() { Kernel::Amx } else { Kernel::Avx512Vnni };
            }
            return Kernel::Avx2;
        }
        Kernel::Portable
    }

    /// Runs `f` compiled a second time with AVX-512 enabled, for the kernels detected with it:
    /// the loops inlined into `f` then take sixteen lanes instead of eight, with the same
    /// results (sums keep their own eight lanes).
    #[inline(always)]
    fn widened<R>(self, f: impl FnOnce() -> R) -> R {
        #[cfg(target_arch = "x86_64")]
        if matches!(self, Kernel::Avx512Vnni | Kernel::Amx) {
            #[target_feature(enable = "avx512f")]
            fn wide<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: these kernels are detected only where AVX-512F is present.
            return unsafe { wide(f) };
        }
        f()
    }

    /// Every kernel this machine can run, the portable one first: the tests compare them.
    #[cfg(test)]
    fn available() -> Vec<Kernel> {
        let mut kernels = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        match Kernel::detect() {
            Kernel::Amx => kernels.extend([Kernel::Avx2, Kernel::Avx512Vnni, Kernel::Amx]),
            Kernel::Avx512Vnni => kernels.extend([Kernel::Avx2, Kernel::Avx512Vnni]),
            Kernel::Avx2 => kernels.push(Kernel::Avx2),
            Kernel::Portable => {}
        }
        kernels
    }
}

//! A BERT encoder whose weights are candle `Var`s, so that a loss computed from its output can
//! be differentiated with respect to every weight.
//!
//! candle-transformers' BERT cannot be trained: its layer norm is a fused kernel without a
//! backward pass. This one is written with differentiable primitives only, and it reads and
//! writes the Hugging Face weight names, so that what it saves loads in Lore's inference models
//! (`BertEmbedder`, `CrossEncoder`) and in transformers.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{D, DType, Device, IndexOp, Tensor, Var};
use lore_core::{Error, Result};
use serde::Deserialize;

use crate::kernels::{gelu, masked_softmax};
use crate::rng::Rng;

/// The part of a BERT `config.json` the encoder needs.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct BertConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub pad_token_id: u32,
}

fn default_eps() -> f64 {
    1e-12
}

fn default_act() -> String {
    "gelu".into()
}

/// Named trainable weights, in the names a Hugging Face checkpoint uses.
#[derive(Default)]
pub(crate) struct Weights {
    vars: BTreeMap<String, Var>,
    /// The weights the checkpoint lacked and [`Weights::get_or_init`] created.
    new: std::collections::BTreeSet<String>,
}

impl Weights {
    /// Reads every tensor of a safetensors file as a trainable variable.
    pub fn load(path: &Path) -> Result<Weights> {
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| Error::Model(format!("cannot read {}: {e}", path.display())))?;
        let mut vars = BTreeMap::new();
        for (name, tensor) in tensors {
            // Old checkpoints name layer-norm parameters gamma and beta.
            let name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias");
            // Transformers saves the encoder of a classification model under `bert.`.
            let name = name.strip_prefix("bert.").map(str::to_string).unwrap_or(name);
            if tensor.dtype().is_float() {
                let tensor = tensor.to_dtype(DType::F32).map_err(model_error)?;
                vars.insert(name, Var::from_tensor(&tensor).map_err(model_error)?);
            }
        }
        Ok(Weights { vars, new: Default::default() })
    }

    /// The weight `name`; a missing one is an error naming the file's kind.
    pub fn get(&self, name: &str) -> Result<Tensor> {
        self.vars
            .get(name)
            .map(|var| var.as_tensor().clone())
            .ok_or_else(|| Error::Model(format!("the base model has no weight {name}: is it a BERT checkpoint?")))
    }

    /// The weight `name`, created with `init` when the checkpoint lacks it (a new head).
    pub fn get_or_init(&mut self, name: &str, init: impl FnOnce() -> Result<Tensor>) -> Result<Tensor> {
        if !self.vars.contains_key(name) {
            self.vars.insert(name.to_string(), Var::from_tensor(&init()?).map_err(model_error)?);
            self.new.insert(name.to_string());
        }
        self.get(name)
    }

    /// Drops the weights the model does not use (buffers, heads of other tasks), so that they
    /// are neither trained nor saved.
    pub fn keep(&mut self, used: impl Fn(&str) -> bool) {
        self.vars.retain(|name, _| used(name));
    }

    /// Whether `name` was created rather than read from the checkpoint.
    pub fn is_new(&self, name: &str) -> bool {
        self.new.contains(name)
    }

    /// The variables the optimiser updates, by name.
    pub fn vars(&self) -> &BTreeMap<String, Var> {
        &self.vars
    }

    /// Writes all weights to a safetensors file, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors: BTreeMap<&str, Tensor> =
            self.vars.iter().map(|(name, var)| (name.as_str(), var.as_tensor().clone())).collect();
        save_tensors(&tensors, path)
    }

    /// Replaces the values of the weights with those in `path` (a checkpoint of this model).
    pub fn restore(&self, path: &Path) -> Result<()> {
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| Error::Model(format!("cannot read the checkpoint {}: {e}", path.display())))?;
        for (name, var) in &self.vars {
            let saved = tensors.get(name).ok_or_else(|| {
                Error::Model(format!("the checkpoint {} lacks {name}: delete it to start over", path.display()))
            })?;
            var.set(saved).map_err(model_error)?;
        }
        Ok(())
    }
}

/// Writes `tensors` to `path` through a temporary file, so that a killed run never leaves a
/// half-written file under the final name.
pub(crate) fn save_tensors(tensors: &BTreeMap<&str, Tensor>, path: &Path) -> Result<()> {
    let partial = path.with_extension("partial");
    let tensors: std::collections::HashMap<&str, Tensor> = tensors.iter().map(|(k, v)| (*k, v.clone())).collect();
    candle_core::safetensors::save(&tensors, &partial)
        .map_err(|e| Error::Model(format!("cannot write {}: {e}", partial.display())))?;
    std::fs::rename(&partial, path).map_err(Error::io(path))
}

pub(crate) fn model_error(e: candle_core::Error) -> Error {
    Error::Model(format!("training failed: {e}"))
}

struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn load(weights: &Weights, prefix: &str) -> Result<Linear> {
        Ok(Linear { weight: weights.get(&format!("{prefix}.weight"))?, bias: weights.get(&format!("{prefix}.bias"))? })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let w = self.weight.t()?;
        let y = match *x.dims() {
            [b, t, k] => x.reshape((b * t, k))?.matmul(&w)?.reshape((b, t, ()))?,
            _ => x.matmul(&w)?,
        };
        y.broadcast_add(&self.bias)
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn load(weights: &Weights, prefix: &str, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: weights.get(&format!("{prefix}.weight"))?,
            bias: weights.get(&format!("{prefix}.bias"))?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// Dropout with masks drawn from the run's seeded generator, so that a run is repeatable.
pub(crate) struct Dropout<'a> {
    pub rate: f32,
    pub rng: &'a mut Rng,
}

impl Dropout<'_> {
    fn apply(&mut self, x: &Tensor) -> candle_core::Result<Tensor> {
        if self.rate <= 0.0 {
            return Ok(x.clone());
        }
        let keep = 1.0 - self.rate;
        let mask: Vec<f32> =
            (0..x.elem_count()).map(|_| if self.rng.unit() < keep { 1.0 / keep } else { 0.0 }).collect();
        x.mul(&Tensor::from_vec(mask, x.shape(), x.device())?)
    }
}

/// A tokenised batch: ids, token types and attention mask, each `[batch, width]`.
pub(crate) struct Batch {
    pub ids: Tensor,
    pub types: Tensor,
    pub mask: Tensor,
}

impl Batch {
    /// Pads `rows` (ids and token types per sequence) to the longest with `pad`.
    pub fn new(rows: &[(&[u32], &[u32])], pad: u32) -> candle_core::Result<Batch> {
        let width = rows.iter().map(|(ids, _)| ids.len()).max().unwrap_or(0);
        let (mut ids, mut types, mut mask) = (Vec::new(), Vec::new(), Vec::new());
        for (row_ids, row_types) in rows {
            let fill = width - row_ids.len();
            ids.extend(row_ids.iter().copied().chain(std::iter::repeat_n(pad, fill)));
            types.extend(row_types.iter().copied().chain(std::iter::repeat_n(0, fill)));
            mask.extend(std::iter::repeat_n(1f32, row_ids.len()).chain(std::iter::repeat_n(0.0, fill)));
        }
        let shape = (rows.len(), width);
        Ok(Batch {
            ids: Tensor::from_vec(ids, shape, &Device::Cpu)?,
            types: Tensor::from_vec(types, shape, &Device::Cpu)?,
            mask: Tensor::from_vec(mask, shape, &Device::Cpu)?,
        })
    }

    /// The attention-masked mean of `hidden` (`[batch, width, dim]`) over each sequence's tokens.
    pub fn mean_pool(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        let mask = self.mask.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        summed.broadcast_div(&mask.sum(1)?)
    }
}

/// The BERT encoder: embeddings and transformer layers, as in `BertModel` (no pooler).
pub(crate) struct Bert {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
}

impl Bert {
    /// The encoder over `weights` (named as in a `BertModel` checkpoint).
    pub fn new(weights: &Weights, config: &BertConfig) -> Result<Bert> {
        if config.hidden_act != "gelu" {
            return Err(Error::Unsupported(format!(
                "activation {:?}: only BERT models with GELU can be trained",
                config.hidden_act
            )));
        }
        let eps = config.layer_norm_eps;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                Ok(Layer {
                    query: Linear::load(weights, &format!("{p}.attention.self.query"))?,
                    key: Linear::load(weights, &format!("{p}.attention.self.key"))?,
                    value: Linear::load(weights, &format!("{p}.attention.self.value"))?,
                    attention_out: Linear::load(weights, &format!("{p}.attention.output.dense"))?,
                    attention_norm: LayerNorm::load(weights, &format!("{p}.attention.output.LayerNorm"), eps)?,
                    intermediate: Linear::load(weights, &format!("{p}.intermediate.dense"))?,
                    output: Linear::load(weights, &format!("{p}.output.dense"))?,
                    output_norm: LayerNorm::load(weights, &format!("{p}.output.LayerNorm"), eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Bert {
            word: weights.get("embeddings.word_embeddings.weight")?,
            position: weights.get("embeddings.position_embeddings.weight")?,
            token_type: weights.get("embeddings.token_type_embeddings.weight")?,
            embedding_norm: LayerNorm::load(weights, "embeddings.LayerNorm", eps)?,
            layers,
            heads: config.num_attention_heads,
        })
    }

    /// Whether `name` is a weight of the encoder.
    pub fn uses(name: &str) -> bool {
        name.starts_with("embeddings.") || name.starts_with("encoder.layer.")
    }

    /// The last layer's hidden states, `[batch, width, hidden]`.
    pub fn forward(&self, batch: &Batch, dropout: &mut Dropout) -> candle_core::Result<Tensor> {
        let (size, width) = batch.ids.dims2()?;
        let positions = Tensor::arange(0u32, width as u32, &Device::Cpu)?;
        let embedded = self
            .word
            .embedding(&batch.ids.flatten_all()?)?
            .reshape((size, width, ()))?
            .broadcast_add(&self.position.embedding(&positions)?)?
            .add(&self.token_type.embedding(&batch.types.flatten_all()?)?.reshape((size, width, ()))?)?;
        let mut hidden = dropout.apply(&self.embedding_norm.forward(&embedded)?)?;
        for layer in &self.layers {
            hidden = self.layer(layer, &hidden, &batch.mask, dropout)?;
        }
        Ok(hidden)
    }

    fn layer(&self, layer: &Layer, x: &Tensor, mask: &Tensor, dropout: &mut Dropout) -> candle_core::Result<Tensor> {
        let (size, width, hidden) = x.dims3()?;
        let head_dim = hidden / self.heads;
        let split = |t: Tensor| t.reshape((size, width, self.heads, head_dim))?.transpose(1, 2)?.contiguous();
        // Scaling the queries rather than the scores touches a head-size tensor, not tokens².
        let q = (split(layer.query.forward(x)?)? * (1.0 / (head_dim as f64).sqrt()))?;
        let k = split(layer.key.forward(x)?)?;
        let v = split(layer.value.forward(x)?)?;
        let scores = q.matmul(&k.t()?.contiguous()?)?;
        let probabilities = masked_softmax(&scores, mask)?;
        let context = probabilities.matmul(&v)?.transpose(1, 2)?.reshape((size, width, hidden))?;
        let attended = dropout.apply(&layer.attention_out.forward(&context)?)?;
        let attended = layer.attention_norm.forward(&(attended + x)?)?;
        let inner = gelu(&layer.intermediate.forward(&attended)?)?;
        let out = dropout.apply(&layer.output.forward(&inner)?)?;
        layer.output_norm.forward(&(out + attended)?)
    }
}

/// The first token's hidden state of each sequence, `[batch, hidden]`.
pub(crate) fn first_token(hidden: &Tensor) -> candle_core::Result<Tensor> {
    hidden.i((.., 0))?.contiguous()
}

/// A sequence-classification head over the first token, as `BertForSequenceClassification`:
/// `classifier(tanh(pooler(h[CLS])))`, one logit.
pub(crate) struct ClassifierHead {
    pooler: Linear,
    classifier: Linear,
}

impl ClassifierHead {
    /// The head in `weights`, taking the checkpoint's pooler when it has one and initialising
    /// what it lacks as transformers does (normal, standard deviation 0.02; zero biases).
    pub fn new(weights: &mut Weights, hidden: usize, rng: &mut Rng) -> Result<ClassifierHead> {
        let mut normal = |rows: usize, cols: usize| {
            let values: Vec<f32> = (0..rows * cols).map(|_| 0.02 * rng.normal()).collect();
            Tensor::from_vec(values, (rows, cols), &Device::Cpu).map_err(model_error)
        };
        let zeros = |n: usize| Tensor::zeros(n, DType::F32, &Device::Cpu).map_err(model_error);
        weights.get_or_init("pooler.dense.weight", || normal(hidden, hidden))?;
        weights.get_or_init("pooler.dense.bias", || zeros(hidden))?;
        weights.get_or_init("classifier.weight", || normal(1, hidden))?;
        weights.get_or_init("classifier.bias", || zeros(1))?;
        Ok(ClassifierHead {
            pooler: Linear::load(weights, "pooler.dense")?,
            classifier: Linear::load(weights, "classifier")?,
        })
    }

    /// Whether `name` is a weight of the head.
    pub fn uses(name: &str) -> bool {
        name.starts_with("pooler.dense.") || name.starts_with("classifier.")
    }

    /// One logit per sequence, `[batch]`.
    pub fn forward(&self, hidden: &Tensor, dropout: &mut Dropout) -> candle_core::Result<Tensor> {
        let pooled = self.pooler.forward(&first_token(hidden)?)?.tanh()?;
        self.classifier.forward(&dropout.apply(&pooled)?)?.squeeze(1)
    }
}

//! The forward pass of Qwen2 and Llama-family decoders read from GGUF, with a key/value cache
//! that can be cut back to any prefix of the tokens it holds.

use std::io::{Read, Seek};

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{QTensor, ggml_file::qtensor_from_ggml};
use candle_core::{DType, Device, Result, Tensor, bail};

use super::attend::{attend_chunk, attend_one};
use super::linear::{Linear, LinearBuilder, Pass, PrefillWeights, Projections, Quantized};
use super::rows::{Rotary, rms_norm, silu_times, split_heads};

/// A decoder-only transformer: token embedding, blocks of grouped-query attention and a gated
/// MLP with RMS norms before each, a final norm and the output projection.
pub(super) struct Transformer {
    /// Kept quantized: a prompt needs only its own tokens' rows, dequantized one by one (an f32
    /// table would be Qwen2's 151,936 rows × 896 floats, 545 MB).
    embedding: QTensor,
    hidden: usize,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    output: Quantized,
    rms_eps: f32,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    rotary: Rotary,
    cache: KvCache,
}

struct Layer {
    attention_norm: Vec<f32>,
    /// Query, key and value.
    qkv: Projections,
    o: Linear,
    mlp_norm: Vec<f32>,
    /// Gate and up.
    gate_up: Projections,
    down: Linear,
}

/// What every layer needs to know about the chunk of tokens being run.
struct Chunk {
    pass: Pass,
    /// The position of the chunk's first token.
    start: usize,
}

/// Keys and values of every layer, `(kv_heads, capacity, head_dim)`, of which the first
/// `tokens.len()` positions are valid.
#[derive(Default)]
struct KvCache {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    capacity: usize,
    /// The tokens at the valid positions.
    tokens: Vec<u32>,
    /// How many of the first positions were computed as prompt: only those can be reused.
    prompt_len: usize,
}

impl Transformer {
    /// Reads the weights of `architecture` ("qwen2" or "llama") for a context of
    /// `context_length` positions.
    pub(super) fn load<R: Read + Seek>(
        content: &Content,
        reader: &mut R,
        architecture: &str,
        context_length: usize,
        prefill_weights: PrefillWeights,
    ) -> Result<Transformer> {
        let number = |key: &str| -> Result<&candle_core::quantized::gguf_file::Value> {
            let key = format!("{architecture}.{key}");
            content.metadata.get(&key).ok_or_else(|| candle_core::Error::Msg(format!("no {key} in the metadata")))
        };
        let heads = number("attention.head_count")?.to_u32()? as usize;
        let kv_heads = number("attention.head_count_kv")?.to_u32()? as usize;
        let hidden = number("embedding_length")?.to_u32()? as usize;
        let block_count = number("block_count")?.to_u32()? as usize;
        let rms_eps = number("attention.layer_norm_rms_epsilon")?.to_f32()?;
        let rope_base = number("rope.freq_base").and_then(|v| v.to_f32()).unwrap_or(10_000.0);
        let head_dim = hidden / heads;
        if let Ok(rope_dims) = number("rope.dimension_count").and_then(|v| v.to_u32())
            && rope_dims as usize != head_dim
        {
            bail!("rotary embedding over {rope_dims} of {head_dim} head dimensions is not supported");
        }
        if !heads.is_multiple_of(kv_heads) {
            bail!("{heads} attention heads cannot share {kv_heads} key/value heads");
        }

        let mut tensor = |name: &str| content.tensor(reader, name, &Device::Cpu);
        let embedding = tensor("token_embd.weight")?;
        let output = match tensor("output.weight") {
            Ok(output) => Quantized::new(output)?,
            // Tied embeddings: the output projection is the embedding table.
            Err(_) => Quantized::new(tensor("token_embd.weight")?)?,
        };
        let norm = tensor("output_norm.weight")?.dequantize(&Device::Cpu)?.to_vec1()?;
        let mut linear = LinearBuilder::new(prefill_weights);
        let mut layers = Vec::with_capacity(block_count);
        for n in 0..block_count {
            let mut tensor = |name: &str| content.tensor(reader, &format!("blk.{n}.{name}"), &Device::Cpu);
            let mut weights_and_bias = |name: &str| -> Result<(QTensor, Option<Tensor>)> {
                let weights = tensor(&format!("{name}.weight"))?;
                // Qwen2 has biases on q, k and v; Llama has none.
                let bias = if content.tensor_infos.contains_key(&format!("blk.{n}.{name}.bias")) {
                    Some(tensor(&format!("{name}.bias"))?.dequantize(&Device::Cpu)?)
                } else {
                    None
                };
                Ok((weights, bias))
            };
            let mut projections = |names: &[&str]| -> Result<(Vec<QTensor>, Vec<Option<Tensor>>)> {
                Ok(names.iter().map(|name| weights_and_bias(name)).collect::<Result<Vec<_>>>()?.into_iter().unzip())
            };
            let (qkv, qkv_biases) = projections(&["attn_q", "attn_k", "attn_v"])?;
            let (gate_up, gate_up_biases) = projections(&["ffn_gate", "ffn_up"])?;
            let (o, o_bias) = weights_and_bias("attn_output")?;
            let (down, down_bias) = weights_and_bias("ffn_down")?;
            layers.push(Layer {
                attention_norm: tensor("attn_norm.weight")?.dequantize(&Device::Cpu)?.to_vec1()?,
                mlp_norm: tensor("ffn_norm.weight")?.dequantize(&Device::Cpu)?.to_vec1()?,
                qkv: linear.build_projections(qkv, qkv_biases)?,
                o: linear.build(o, o_bias)?,
                gate_up: linear.build_projections(gate_up, gate_up_biases)?,
                down: linear.build(down, down_bias)?,
            });
        }
        Ok(Transformer {
            embedding,
            hidden,
            layers,
            norm,
            output,
            rms_eps,
            heads,
            kv_heads,
            head_dim,
            rotary: Rotary::new(head_dim, rope_base, context_length, architecture == "llama"),
            cache: KvCache::default(),
        })
    }

    /// The tokens whose keys and values are cached and were computed as prompt, in order.
    pub(super) fn cached_prompt(&self) -> &[u32] {
        &self.cache.tokens[..self.cache.prompt_len]
    }

    /// Makes room in the cache for `positions` positions: a prompt's whole length at once, which
    /// spares the copies and freshly zeroed memory of growing it chunk by chunk.
    pub(super) fn reserve(&mut self, positions: usize) -> Result<()> {
        let context = self.rotary.positions();
        self.cache.reserve(positions.min(context), self.layers.len(), self.kv_heads, self.head_dim, context)
    }

    /// Forgets the cached positions from `len` on.
    pub(super) fn truncate_cache(&mut self, len: usize) {
        self.cache.tokens.truncate(len);
        self.cache.prompt_len = self.cache.prompt_len.min(len);
    }

    /// Runs `tokens` after the cached ones, caches their keys and values, and returns the
    /// logits (f32, one per vocabulary entry) of the token that follows the last of them.
    pub(super) fn forward(&mut self, tokens: &[u32], pass: Pass) -> Result<Tensor> {
        let Some(last) = tokens.len().checked_sub(1) else { bail!("no tokens to run") };
        let start = self.cache.tokens.len();
        let end = start + tokens.len();
        let context = self.rotary.positions();
        if end > context {
            bail!("{end} positions exceed the context of {context}");
        }
        self.reserve(end)?;
        let chunk = Chunk { pass, start };

        let mut x = self.embed(tokens)?;
        for (n, layer) in self.layers.iter().enumerate() {
            let normed = rms_norm(&x, &layer.attention_norm, self.rms_eps)?;
            let attended = self.attention(n, layer, &normed, &chunk)?;
            x = (x + attended)?;
            let normed = rms_norm(&x, &layer.mlp_norm, self.rms_eps)?;
            let [gate, up] = layer.gate_up.forward(&normed, pass)?;
            let gated = silu_times(&gate, &up)?;
            x = (x + layer.down.forward(&gated, pass)?)?;
        }
        // Only now are all layers' keys and values written: an error above leaves the cache as
        // it was.
        self.cache.tokens.extend_from_slice(tokens);
        if pass == Pass::Prompt && self.cache.prompt_len == start {
            self.cache.prompt_len = self.cache.tokens.len();
        }
        let x = rms_norm(&x.narrow(0, last, 1)?, &self.norm, self.rms_eps)?;
        self.output.forward(&x)?.squeeze(0)?.to_dtype(DType::F32)
    }

    /// The embeddings of `tokens`, `(tokens, hidden)`.
    fn embed(&self, tokens: &[u32]) -> Result<Tensor> {
        let dtype = self.embedding.dtype();
        let row_bytes = self.hidden / dtype.block_size() * dtype.type_size();
        let table = self.embedding.data()?;
        let rows = tokens
            .iter()
            .map(|&token| {
                let start = token as usize * row_bytes;
                let Some(raw) = table.get(start..start + row_bytes) else {
                    bail!("token {token} is beyond the vocabulary")
                };
                qtensor_from_ggml(dtype, raw, vec![self.hidden], &Device::Cpu)?.dequantize(&Device::Cpu)
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::stack(&rows, 0)
    }

    /// Self-attention of `x` (`(tokens, hidden)`) over the cached positions and itself; writes
    /// its keys and values into layer `n`'s cache.
    fn attention(&self, n: usize, layer: &Layer, x: &Tensor, chunk: &Chunk) -> Result<Tensor> {
        let &Chunk { pass, start } = chunk;
        let tokens = x.dim(0)?;
        let [q, k, v] = layer.qkv.forward(x, pass)?;
        let q = split_heads(&q, self.heads, start, Some(&self.rotary))?;
        let k = split_heads(&k, self.kv_heads, start, Some(&self.rotary))?;
        let v = split_heads(&v, self.kv_heads, start, None)?;
        let (keys, values) = self.cache.write(n, &k, &v, start)?;
        let attended =
            if tokens == 1 { attend_one(&q, &keys, &values)? } else { attend_chunk(&q, &keys, &values, start)? };
        layer.o.forward(&attended, pass)
    }
}

impl KvCache {
    /// Makes room for `positions` positions, keeping what is cached.
    fn reserve(
        &mut self,
        positions: usize,
        layers: usize,
        kv_heads: usize,
        head_dim: usize,
        context: usize,
    ) -> Result<()> {
        if positions <= self.capacity {
            return Ok(());
        }
        // Doubling keeps the copies of a growing conversation few.
        let capacity = positions.next_power_of_two().max(256).min(context);
        let kept = self.tokens.len();
        let grow = |old: Option<&Tensor>| -> Result<Tensor> {
            let new = Tensor::zeros((kv_heads, capacity, head_dim), DType::F32, &Device::Cpu)?;
            if let Some(old) = old.filter(|_| kept > 0) {
                new.slice_set(&old.narrow(1, 0, kept)?.contiguous()?, 1, 0)?;
            }
            Ok(new)
        };
        self.keys = (0..layers).map(|n| grow(self.keys.get(n))).collect::<Result<_>>()?;
        self.values = (0..layers).map(|n| grow(self.values.get(n))).collect::<Result<_>>()?;
        self.capacity = capacity;
        Ok(())
    }

    /// Writes `keys` and `values` (`(kv_heads, tokens, head_dim)`) of layer `n` at `start` and
    /// returns all of that layer's keys and values up to them.
    fn write(&self, n: usize, keys: &Tensor, values: &Tensor, start: usize) -> Result<(Tensor, Tensor)> {
        let end = start + keys.dim(1)?;
        self.keys[n].slice_set(keys, 1, start)?;
        self.values[n].slice_set(values, 1, start)?;
        Ok((self.keys[n].narrow(1, 0, end)?, self.values[n].narrow(1, 0, end)?))
    }
}

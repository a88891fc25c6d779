use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use candle_core::Device;
use lore_core::{EmbedKind, Embedder, Error, Result, Tokenize};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokenizers::{PostProcessor, Tokenizer, TruncationParams};

use super::encoder::{Pooling, SentenceEncoder};
use super::read_file;
use crate::encoder::{BertConfig, BertEncoder, Weights};

/// A BERT sentence embedder loaded from a Hugging Face / sentence-transformers folder.
///
/// The folder holds `config.json`, `model.safetensors` and `tokenizer.json`; the pooling (mean
/// or CLS) comes from `1_Pooling/config.json` (mean when absent) and the longest input from
/// `sentence_bert_config.json` (the model's position count when absent). Vectors are always
/// L2-normalised. No prefix is added to queries or passages.
pub struct BertEmbedder {
    id: String,
    dimension: usize,
    tokenizer: HfTokenizer,
    encoder: SentenceEncoder,
}

impl BertEmbedder {
    /// Loads the model in `dir`; `id` is the name collections remember it by.
    pub fn load(dir: &Path, id: &str) -> Result<BertEmbedder> {
        if !dir.is_dir() {
            return Err(Error::ModelMissing { name: id.to_string() });
        }
        let config: BertConfig = read_json(&required_file(dir, "config.json")?)?;
        let max_sequence = optional_json::<SentenceBertConfig>(&dir.join("sentence_bert_config.json"))?
            .and_then(|settings| settings.max_seq_length)
            .map_or(config.max_position_embeddings, |n| n.min(config.max_position_embeddings));
        let pooling = match optional_json::<BTreeMap<String, serde_json::Value>>(&dir.join("1_Pooling/config.json"))? {
            Some(settings) => pooling_mode(&settings, dir)?,
            None => Pooling::Mean,
        };
        let tokenizer = HfTokenizer::load(&required_file(dir, "tokenizer.json")?, max_sequence)?;

        let weights_path = required_file(dir, "model.safetensors")?;
        let model = load_encoder(&mut read_safetensors(&weights_path)?, &config, &weights_path)?;

        Ok(BertEmbedder {
            id: id.to_string(),
            dimension: config.hidden_size,
            tokenizer,
            encoder: SentenceEncoder::new(model, pooling),
        })
    }
}

impl Embedder for BertEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    /// Text tokens (as `token_spans` counts them) that fit besides the special tokens.
    fn max_tokens(&self) -> usize {
        self.tokenizer.max_text_tokens
    }

    fn tokenizer(&self) -> Option<&dyn Tokenize> {
        Some(&self.tokenizer)
    }

    fn embed(&self, texts: &[&str], _kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        let sequences = self.tokenizer.sequences(texts)?;
        self.encoder.embed(&sequences)
    }
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

/// The pooling named by sentence-transformers' `pooling_mode_*` flags.
fn pooling_mode(settings: &BTreeMap<String, serde_json::Value>, dir: &Path) -> Result<Pooling> {
    let modes: Vec<&str> = settings
        .iter()
        .filter(|(_, on)| on.as_bool() == Some(true))
        .filter_map(|(key, _)| key.strip_prefix("pooling_mode_"))
        .collect();
    match modes.as_slice() {
        ["mean_tokens"] => Ok(Pooling::Mean),
        ["cls_token"] => Ok(Pooling::Cls),
        other => Err(Error::Model(format!(
            "{}/1_Pooling/config.json asks for pooling {other:?}; only mean_tokens or cls_token alone is supported",
            dir.display()
        ))),
    }
}

/// A Hugging Face tokenizer: spans cover the whole text, model inputs are cut to fit.
struct HfTokenizer {
    whole: Tokenizer,
    truncating: Tokenizer,
    max_text_tokens: usize,
}

impl HfTokenizer {
    fn load(path: &Path, max_sequence: usize) -> Result<HfTokenizer> {
        let mut whole = Tokenizer::from_file(path)
            .map_err(|e| Error::Model(format!("cannot load tokenizer {}: {e}", path.display())))?;
        // tokenizer.json often carries the training-time truncation and fixed padding; batches
        // are padded here to their longest row instead, and the length limit is the model's.
        whole.with_padding(None);
        whole.with_truncation(None).map_err(tokenizer_error)?;
        let mut truncating = whole.clone();
        truncating
            .with_truncation(Some(TruncationParams { max_length: max_sequence, ..TruncationParams::default() }))
            .map_err(tokenizer_error)?;
        let special_tokens = whole.get_post_processor().map_or(0, |p| p.added_tokens(false));
        Ok(HfTokenizer { whole, truncating, max_text_tokens: max_sequence.saturating_sub(special_tokens) })
    }

    /// Model inputs: token ids with special tokens, truncated to the model's length.
    fn sequences(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let encodings = self.truncating.encode_batch(texts.to_vec(), true).map_err(tokenizer_error)?;
        Ok(encodings.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }
}

impl Tokenize for HfTokenizer {
    fn token_spans(&self, text: &str) -> Result<Vec<Range<usize>>> {
        let encoding = self.whole.encode(text, false).map_err(tokenizer_error)?;
        Ok(encoding.get_offsets().iter().map(|&(start, end)| start..end).collect())
    }
}

/// The weights in the safetensors file at `path`.
pub(crate) fn read_safetensors(path: &Path) -> Result<Weights> {
    let tensors = candle_core::safetensors::load_buffer(&read_file(path)?, &Device::Cpu)
        .map_err(|e| Error::Model(format!("cannot read {}: {e}", path.display())))?;
    Weights::from_tensors(tensors).map_err(|e| Error::Model(format!("{}: {e}", path.display())))
}

/// The BERT encoder among `weights`, read from `path`.
pub(crate) fn load_encoder(weights: &mut Weights, config: &BertConfig, path: &Path) -> Result<BertEncoder> {
    BertEncoder::load(weights, config).map_err(|e| Error::Model(format!("{} is not a BERT model: {e}", path.display())))
}

pub(crate) fn tokenizer_error(e: tokenizers::Error) -> Error {
    Error::Model(format!("tokenizer failed: {e}"))
}

pub(crate) fn required_file(dir: &Path, name: &str) -> Result<std::path::PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Model(format!(
            "{} is missing: a BERT model folder needs config.json, model.safetensors and tokenizer.json",
            path.display()
        )))
    }
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    serde_json::from_slice(&read_file(path)?).map_err(|e| Error::Model(format!("cannot parse {}: {e}", path.display())))
}

pub(crate) fn optional_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    if path.is_file() { read_json(path).map(Some) } else { Ok(None) }
}

//! The model a training starts from: an HF-layout BERT folder (`config.json`,
//! `model.safetensors`, `tokenizer.json`), and what a trained model folder is written with.

use std::path::Path;

use candle_core::Tensor;
use lore_core::{Error, Result};
use serde_json::Value;
use tokenizers::{PaddingParams, Tokenizer, TruncationParams, TruncationStrategy};

use crate::bert::{Batch, BertConfig, Weights, model_error};

pub(crate) struct Base {
    /// `config.json` as written, so that saving keeps the fields this crate does not read.
    pub config_json: Value,
    pub config: BertConfig,
    pub tokenizer: Tokenizer,
    pub weights: Weights,
}

impl Base {
    /// Reads the folder `dir`; inputs are cut at `max_length` tokens (at most the model's
    /// positions).
    pub fn load(dir: &Path, max_length: usize) -> Result<Base> {
        let need = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::InvalidInput(format!(
                    "{} has no {name}: training starts from an HF-layout BERT folder (config.json, \
                     model.safetensors, tokenizer.json), such as the installed minilm or a model `lore tune` wrote",
                    dir.display()
                )))
            }
        };
        let config_path = need("config.json")?;
        let text = std::fs::read_to_string(&config_path).map_err(Error::io(&config_path))?;
        let config_json: Value = serde_json::from_str(&text)
            .map_err(|e| Error::InvalidInput(format!("{} is not JSON: {e}", config_path.display())))?;
        let config: BertConfig = serde_json::from_value(config_json.clone())
            .map_err(|e| Error::InvalidInput(format!("{} is not a BERT configuration: {e}", config_path.display())))?;
        let mut tokenizer = Tokenizer::from_file(need("tokenizer.json")?)
            .map_err(|e| Error::Model(format!("cannot load the tokenizer of {}: {e}", dir.display())))?;
        tokenizer.with_padding(None::<PaddingParams>);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_length.clamp(8, config.max_position_embeddings),
                strategy: TruncationStrategy::LongestFirst,
                ..TruncationParams::default()
            }))
            .map_err(|e| Error::Model(format!("tokenizer: {e}")))?;
        let weights = Weights::load(&need("model.safetensors")?)?;
        Ok(Base { config_json, config, tokenizer, weights })
    }

    /// Tokenises single texts (`pairs = None`) or question–passage pairs into one padded batch.
    pub fn batch(&self, texts: Vec<String>, passages: Option<Vec<String>>) -> Result<Batch> {
        let encodings = match passages {
            None => self.tokenizer.encode_batch(texts, true),
            Some(passages) => self.tokenizer.encode_batch(texts.into_iter().zip(passages).collect::<Vec<_>>(), true),
        }
        .map_err(|e| Error::Model(format!("tokenizer: {e}")))?;
        let rows: Vec<(&[u32], &[u32])> = encodings.iter().map(|e| (e.get_ids(), e.get_type_ids())).collect();
        Batch::new(&rows, self.config.pad_token_id).map_err(model_error)
    }

    /// Writes `config` (the base's with `changes` merged in), the weights and the tokenizer
    /// (with its cut length) to `dir`.
    pub fn save(&self, dir: &Path, changes: Value) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let mut config = self.config_json.clone();
        if let (Some(config), Value::Object(changes)) = (config.as_object_mut(), changes) {
            config.extend(changes);
        }
        crate::train::write_json(&dir.join("config.json"), &config)?;
        let tokenizer_path = dir.join("tokenizer.json");
        let partial = tokenizer_path.with_extension("partial");
        self.tokenizer
            .save(&partial, false)
            .map_err(|e| Error::Model(format!("cannot write {}: {e}", partial.display())))?;
        std::fs::rename(&partial, &tokenizer_path).map_err(Error::io(&tokenizer_path))?;
        self.weights.save(&dir.join("model.safetensors"))
    }
}

/// `x / ‖x‖` per row.
pub(crate) fn normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_div(&(x.sqr()?.sum_keepdim(1)?.sqrt()? + 1e-12)?)
}

/// `log Σ exp(x)` of a 1-d tensor, stable.
pub(crate) fn log_sum_exp(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(0)?.detach();
    (x.broadcast_sub(&max)?.exp()?.sum_keepdim(0)?.log()? + &max)?.squeeze(0)
}

//! Cross-encoder rerankers: a BERT that reads the query and a passage together and scores the pair.

use std::path::Path;

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use candle_transformers::models::bert::{BertModel, Config};
use lore_core::{Calibration, Error, Reranker, Result};
use serde::Deserialize;
use tokenizers::{PaddingParams, Tokenizer, TruncationParams, TruncationStrategy};

use crate::embed::{length_batches, optional_json, read_file, read_json, required_file, tokenizer_error};

/// A Hugging Face `BertForSequenceClassification` folder (`config.json`, `model.safetensors`,
/// `tokenizer.json`), as cross-encoders such as `cross-encoder/ms-marco-MiniLM-L-6-v2` ship.
///
/// A pair is encoded as `[CLS] query [SEP] passage [SEP]` with token types 0 and 1, the longer
/// side cut first to fit the model's positions, or the shorter length `tokenizer.json` sets
/// (`lore tune reranker` saves the length it trained on). The score is the classifier's logit
/// applied to BERT's pooler output (`tanh(W·h[CLS] + b)`); with two labels, the logit of
/// label 1 minus that of label 0 (the log-odds of "relevant"). A `calibration.json` beside the
/// weights (a [`Calibration`], as `lore tune reranker` fits it) turns scores into probabilities.
pub struct CrossEncoder {
    id: String,
    tokenizer: Tokenizer,
    bert: BertModel,
    pooler: Linear,
    classifier: Linear,
    labels: usize,
    pad_id: u32,
    calibration: Option<Calibration>,
}

#[derive(Deserialize)]
struct ClassificationConfig {
    #[serde(default)]
    architectures: Vec<String>,
    num_labels: Option<usize>,
    #[serde(default)]
    id2label: std::collections::BTreeMap<String, String>,
}

impl CrossEncoder {
    /// Loads the model in `dir`; `id` is the name explanations show.
    pub fn load(dir: &Path, id: &str) -> Result<CrossEncoder> {
        if !dir.is_dir() {
            return Err(Error::Model(format!(
                "{} is not a folder: a cross-encoder is an HF-layout BertForSequenceClassification folder",
                dir.display()
            )));
        }
        let config_path = required_file(dir, "config.json")?;
        let head: ClassificationConfig = read_json(&config_path)?;
        if !head.architectures.iter().any(|a| a == "BertForSequenceClassification") {
            return Err(Error::Model(format!(
                "{} names architectures {:?}; only BertForSequenceClassification cross-encoders are supported",
                config_path.display(),
                head.architectures
            )));
        }
        let labels = head.num_labels.unwrap_or(head.id2label.len().max(1));
        if !(1..=2).contains(&labels) {
            return Err(Error::Model(format!(
                "{} has {labels} labels: a cross-encoder needs 1 (a relevance score) or 2 (irrelevant, relevant)",
                config_path.display()
            )));
        }
        let config: Config = read_json(&config_path)?;
        let pad_id = u32::try_from(config.pad_token_id)
            .map_err(|_| Error::Model(format!("pad_token_id {} is out of range", config.pad_token_id)))?;

        let mut tokenizer = Tokenizer::from_file(required_file(dir, "tokenizer.json")?)
            .map_err(|e| Error::Model(format!("cannot load the tokenizer of {}: {e}", dir.display())))?;
        tokenizer.with_padding(None::<PaddingParams>);
        // A trained model's tokenizer.json names the length it was trained on.
        let max_length = tokenizer
            .get_truncation()
            .map_or(config.max_position_embeddings, |t| t.max_length.min(config.max_position_embeddings));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                ..TruncationParams::default()
            }))
            .map_err(tokenizer_error)?;

        let weights_path = required_file(dir, "model.safetensors")?;
        let weights = VarBuilder::from_buffered_safetensors(read_file(&weights_path)?, DType::F32, &Device::Cpu)
            .map_err(|e| Error::Model(format!("cannot read {}: {e}", weights_path.display())))?;
        // Transformers saves the encoder of a classification model under `bert.`.
        let encoder = if weights.contains_tensor("bert.embeddings.word_embeddings.weight") {
            weights.pp("bert")
        } else {
            weights.clone()
        };
        let missing = |what: &str, e: candle_core::Error| {
            Error::Model(format!("{} lacks the {what} of a BertForSequenceClassification: {e}", weights_path.display()))
        };
        let bert = BertModel::load(encoder.clone(), &config).map_err(|e| missing("BERT encoder", e))?;
        let hidden = config.hidden_size;
        let pooler = candle_nn::linear(hidden, hidden, encoder.pp("pooler.dense")).map_err(|e| missing("pooler", e))?;
        let classifier =
            candle_nn::linear(hidden, labels, weights.pp("classifier")).map_err(|e| missing("classifier", e))?;
        let calibration = optional_json(&dir.join("calibration.json"))?;
        Ok(CrossEncoder { id: id.to_string(), tokenizer, bert, pooler, classifier, labels, pad_id, calibration })
    }

    fn score_batch(&self, pairs: &[(&[u32], &[u32])]) -> candle_core::Result<Vec<f32>> {
        let width = pairs.iter().map(|(ids, _)| ids.len()).max().unwrap_or(0);
        let (mut ids, mut types, mut mask) = (Vec::new(), Vec::new(), Vec::new());
        for (row_ids, row_types) in pairs {
            let pad = width - row_ids.len();
            ids.extend(row_ids.iter().copied().chain(std::iter::repeat_n(self.pad_id, pad)));
            types.extend(row_types.iter().copied().chain(std::iter::repeat_n(0, pad)));
            mask.extend(std::iter::repeat_n(1u32, row_ids.len()).chain(std::iter::repeat_n(0, pad)));
        }
        let device = &self.bert.device;
        let shape = (pairs.len(), width);
        let ids = Tensor::from_vec(ids, shape, device)?;
        let types = Tensor::from_vec(types, shape, device)?;
        let mask = Tensor::from_vec(mask, shape, device)?;
        let hidden = self.bert.forward(&ids, &types, Some(&mask))?;
        let pooled = self.pooler.forward(&hidden.i((.., 0))?)?.tanh()?;
        let logits = self.classifier.forward(&pooled)?.to_vec2::<f32>()?;
        Ok(logits.into_iter().map(|row| if self.labels == 2 { row[1] - row[0] } else { row[0] }).collect())
    }
}

impl Reranker for CrossEncoder {
    fn id(&self) -> &str {
        &self.id
    }

    fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>> {
        let pairs: Vec<(String, String)> = passages.iter().map(|p| (query.to_string(), p.to_string())).collect();
        let encodings = self.tokenizer.encode_batch(pairs, true).map_err(tokenizer_error)?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut scores = vec![0.0; encodings.len()];
        for batch in length_batches(&order, |i| encodings[i].get_ids().len()) {
            let rows: Vec<(&[u32], &[u32])> =
                batch.iter().map(|&i| (encodings[i].get_ids(), encodings[i].get_type_ids())).collect();
            let batch_scores =
                self.score_batch(&rows).map_err(|e| Error::Model(format!("cross-encoder {} failed: {e}", self.id)))?;
            for (&i, score) in batch.iter().zip(batch_scores) {
                scores[i] = score;
            }
        }
        Ok(scores)
    }

    fn calibration(&self) -> Option<Calibration> {
        self.calibration
    }
}

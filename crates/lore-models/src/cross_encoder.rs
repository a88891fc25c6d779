//! Cross-encoder rerankers: a BERT that reads the query and a passage together and scores the pair.

use std::path::Path;

use lore_core::{Calibration, Error, Reranker, Result};
use serde::Deserialize;
use tokenizers::{PaddingParams, Tokenizer, TruncationParams, TruncationStrategy};

use crate::embed::{
    load_encoder, optional_json, read_json, read_safetensors, required_file, token_batches, tokenizer_error,
};
use crate::encoder::{BertConfig, BertEncoder, Finish, Linear, Sequence};

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
    bert: BertEncoder,
    pooler: Linear,
    classifier: Linear,
    labels: usize,
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
        let config: BertConfig = read_json(&config_path)?;

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
        let mut weights = read_safetensors(&weights_path)?;
        let bert = load_encoder(&mut weights, &config, &weights_path)?;
        let missing = |e: String| {
            Error::Model(format!("{} lacks the head of a BertForSequenceClassification: {e}", weights_path.display()))
        };
        let hidden = config.hidden_size;
        let pooler = weights.linear("pooler.dense", hidden, hidden).map_err(missing)?;
        let classifier = weights.linear("classifier", labels, hidden).map_err(missing)?;
        let calibration = optional_json(&dir.join("calibration.json"))?;
        Ok(CrossEncoder { id: id.to_string(), tokenizer, bert, pooler, classifier, labels, calibration })
    }

    /// The score of each pair: the classifier over the pooler over each [CLS] vector.
    fn score_batch(&self, pairs: &[Sequence]) -> Result<Vec<f32>> {
        let hidden = self.bert.forward(pairs)?;
        let width = self.bert.hidden_size();
        let cls: Vec<f32> = (0..pairs.len()).flat_map(|i| hidden.tokens(i)[..width].to_vec()).collect();
        let (mut pooled, mut logits) = (Vec::new(), Vec::new());
        self.pooler.forward(&cls, Finish::Bias, &mut pooled);
        pooled.iter_mut().for_each(|v| *v = v.tanh());
        self.classifier.forward(&pooled, Finish::Bias, &mut logits);
        Ok(logits
            .chunks_exact(self.labels)
            .map(|row| if self.labels == 2 { row[1] - row[0] } else { row[0] })
            .collect())
    }
}

impl Reranker for CrossEncoder {
    fn id(&self) -> &str {
        &self.id
    }

    fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>> {
        let pairs: Vec<(String, String)> = passages.iter().map(|p| (query.to_string(), p.to_string())).collect();
        let encodings = self.tokenizer.encode_batch(pairs, true).map_err(tokenizer_error)?;
        let mut scores = Vec::with_capacity(encodings.len());
        for batch in token_batches(encodings.len(), |i| encodings[i].get_ids().len()) {
            let pairs: Vec<Sequence> =
                encodings[batch].iter().map(|e| Sequence { ids: e.get_ids(), types: Some(e.get_type_ids()) }).collect();
            scores.extend(self.score_batch(&pairs)?);
        }
        Ok(scores)
    }

    fn calibration(&self) -> Option<Calibration> {
        self.calibration
    }
}

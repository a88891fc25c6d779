//! A sentence embedder fine-tuned contrastively (InfoNCE): each question's vector must be
//! closer to its positive passage than to the other questions' positives in the micro-batch
//! and to the hard negatives, under a softmax with a temperature.

use std::path::Path;

use candle_core::Tensor;
use lore_core::{Error, Result};
use serde_json::json;

use crate::base::{Base, log_sum_exp, normalize};
use crate::bert::{Bert, Dropout, first_token, model_error};
use crate::examples::Example;
use crate::rng::Rng;
use crate::train::{Task, TrainEvent, TrainOptions, TrainReport, mean_reciprocal_rank, run, write_json};

#[derive(Clone, Copy, PartialEq)]
enum Pooling {
    Mean,
    Cls,
}

struct Embedder {
    base: Base,
    bert: Bert,
    pooling: Pooling,
    negatives: usize,
    temperature: f64,
    micro_batch: usize,
}

impl Embedder {
    /// L2-normalised vectors of `texts`, `[n, hidden]`, pooled as the base model pools.
    fn embed(&self, texts: Vec<String>, dropout: &mut Dropout) -> Result<Tensor> {
        let batch = self.base.batch(texts, None)?;
        let hidden = self.bert.forward(&batch, dropout).map_err(model_error)?;
        let pooled = match self.pooling {
            Pooling::Mean => batch.mean_pool(&hidden),
            Pooling::Cls => first_token(&hidden),
        }
        .map_err(model_error)?;
        normalize(&pooled).map_err(model_error)
    }

    fn vectors(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        let mut rng = Rng::new(0);
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.micro_batch.max(1) * 4) {
            let vectors = self.embed(chunk.to_vec(), &mut Dropout { rate: 0.0, rng: &mut rng })?;
            out.extend(vectors.to_vec2::<f32>().map_err(model_error)?);
        }
        Ok(out)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Task for Embedder {
    fn weights(&self) -> &crate::bert::Weights {
        &self.base.weights
    }

    fn loss(&self, examples: &[&Example], dropout: &mut Dropout) -> Result<(Tensor, usize)> {
        let queries: Vec<String> = examples.iter().map(|e| e.query.clone()).collect();
        let mut passages: Vec<String> = examples.iter().map(|e| e.positive.clone()).collect();
        for example in examples {
            passages.extend(example.negatives.iter().take(self.negatives).cloned());
        }
        if passages.len() < 2 {
            return Err(Error::InvalidInput(
                "examples need hard negatives, or a micro-batch of two or more to use each other's positives".into(),
            ));
        }
        let read = queries.len() + passages.len();
        let q = self.embed(queries, dropout)?;
        let p = self.embed(passages, dropout)?;
        let scores =
            (q.matmul(&p.t().map_err(model_error)?).map_err(model_error)? / self.temperature).map_err(model_error)?;
        let mut losses = Vec::with_capacity(examples.len());
        for i in 0..examples.len() {
            let row = scores.get(i).map_err(model_error)?;
            let positive = row.get(i).map_err(model_error)?;
            losses.push((log_sum_exp(&row).map_err(model_error)? - positive).map_err(model_error)?);
        }
        let loss = (Tensor::stack(&losses, 0).map_err(model_error)?.sum_all().map_err(model_error)?
            / examples.len() as f64)
            .map_err(model_error)?;
        Ok((loss, read))
    }

    fn validate(&self, examples: &[&Example]) -> Result<f64> {
        // Each question against its positive, its hard negatives and every other positive.
        let queries = self.vectors(examples.iter().map(|e| e.query.clone()).collect())?;
        let positives = self.vectors(examples.iter().map(|e| e.positive.clone()).collect())?;
        let mut rows = Vec::with_capacity(examples.len());
        for (i, example) in examples.iter().enumerate() {
            let negatives = self.vectors(example.negatives.iter().take(self.negatives).cloned().collect())?;
            let mut row = vec![dot(&queries[i], &positives[i])];
            row.extend(negatives.iter().map(|n| dot(&queries[i], n)));
            row.extend(
                positives
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i && examples[*j].positive != example.positive)
                    .map(|(_, p)| dot(&queries[i], p)),
            );
            rows.push(row);
        }
        Ok(mean_reciprocal_rank(&rows))
    }

    fn save(&self, dir: &Path) -> Result<()> {
        self.base.save(dir, json!({"architectures": ["BertModel"]}))?;
        let pooling = dir.join("1_Pooling");
        std::fs::create_dir_all(&pooling).map_err(Error::io(&pooling))?;
        write_json(
            &pooling.join("config.json"),
            &json!({
                "word_embedding_dimension": self.base.config.hidden_size,
                "pooling_mode_cls_token": self.pooling == Pooling::Cls,
                "pooling_mode_mean_tokens": self.pooling == Pooling::Mean,
                "pooling_mode_max_tokens": false,
                "pooling_mode_mean_sqrt_len_tokens": false,
            }),
        )?;
        let max =
            self.base.tokenizer.get_truncation().map_or(self.base.config.max_position_embeddings, |t| t.max_length);
        write_json(&dir.join("sentence_bert_config.json"), &json!({"max_seq_length": max, "do_lower_case": false}))
    }
}

/// The base folder's pooling (`1_Pooling/config.json`, mean when absent).
fn pooling_of(dir: &Path) -> Result<Pooling> {
    let path = dir.join("1_Pooling/config.json");
    if !path.is_file() {
        return Ok(Pooling::Mean);
    }
    let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
    let settings: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))?;
    let on = |key: &str| settings.get(key).and_then(|v| v.as_bool()).unwrap_or(false);
    match (on("pooling_mode_mean_tokens"), on("pooling_mode_cls_token")) {
        (true, false) => Ok(Pooling::Mean),
        (false, true) => Ok(Pooling::Cls),
        _ => Err(Error::Unsupported(format!("{}: only mean or CLS pooling alone can be trained", path.display()))),
    }
}

/// Fine-tunes the sentence embedder in the BERT folder `base` (such as the installed minilm) on
/// `examples`, and writes the best validated model to `out` as a sentence-transformers folder
/// that `--embedder DIR` loads. Collections embedded with the base must be re-embedded.
///
/// A run stopped by `observer` (or killed) resumes from `out/checkpoint/` when called again
/// with the same examples and options.
pub fn train_embedder(
    base: &Path,
    examples: &[Example],
    options: TrainOptions,
    out: &Path,
    observer: &mut dyn FnMut(&TrainEvent) -> std::ops::ControlFlow<()>,
) -> Result<TrainReport> {
    let pooling = pooling_of(base)?;
    let mut model = Base::load(base, options.max_length)?;
    model.weights.keep(Bert::uses);
    let bert = Bert::new(&model.weights, &model.config)?;
    let task = Embedder {
        base: model,
        bert,
        pooling,
        negatives: options.negatives,
        temperature: options.temperature,
        micro_batch: options.micro_batch,
    };
    let report =
        TrainReport { base: base.display().to_string(), kind: "embedder".into(), options, ..TrainReport::default() };
    run(&task, examples, report, out, observer)
}

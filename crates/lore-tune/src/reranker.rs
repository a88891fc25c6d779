//! A cross-encoder reranker: BERT reads a question and a passage together, and a classification
//! head scores the pair. Trained listwise: each question's positive must outscore its hard
//! negatives under a softmax over the group (the localised contrastive loss of Gao et al.).

use std::path::Path;

use candle_core::Tensor;
use lore_core::{Error, Result};
use serde_json::json;

use crate::base::{Base, log_sum_exp};
use crate::bert::{Bert, ClassifierHead, Dropout, model_error};
use crate::examples::Example;
use crate::rng::Rng;
use crate::train::{Task, TrainEvent, TrainOptions, TrainReport, mean_reciprocal_rank, run};

struct Reranker {
    base: Base,
    bert: Bert,
    head: ClassifierHead,
    negatives: usize,
    micro_batch: usize,
}

impl Reranker {
    /// Each example's candidates: its positive first, then up to `negatives` hard negatives,
    /// topped up with the other examples' positives when it has too few.
    fn groups<'e>(&self, examples: &[&'e Example]) -> Vec<Vec<&'e str>> {
        examples
            .iter()
            .enumerate()
            .map(|(i, example)| {
                let mut group = vec![example.positive.as_str()];
                group.extend(example.negatives.iter().take(self.negatives).map(String::as_str));
                let others = examples.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, e)| e.positive.as_str());
                for other in others {
                    if group.len() > self.negatives {
                        break;
                    }
                    if other != example.positive {
                        group.push(other);
                    }
                }
                group
            })
            .collect()
    }

    fn logits(&self, query_passages: &[(&str, &str)], dropout: &mut Dropout) -> Result<Tensor> {
        let queries = query_passages.iter().map(|(q, _)| q.to_string()).collect();
        let passages = query_passages.iter().map(|(_, p)| p.to_string()).collect();
        let batch = self.base.batch(queries, Some(passages))?;
        let hidden = self.bert.forward(&batch, dropout).map_err(model_error)?;
        self.head.forward(&hidden, dropout).map_err(model_error)
    }
}

/// Each example's question paired with each passage of its group, in order.
fn pairs<'e>(examples: &[&'e Example], groups: &[Vec<&'e str>]) -> Vec<(&'e str, &'e str)> {
    examples
        .iter()
        .zip(groups)
        .flat_map(|(example, group)| group.iter().map(|passage| (example.query.as_str(), *passage)))
        .collect()
}

impl Task for Reranker {
    fn weights(&self) -> &crate::bert::Weights {
        &self.base.weights
    }

    fn loss(&self, examples: &[&Example], dropout: &mut Dropout) -> Result<(Tensor, usize)> {
        let groups = self.groups(examples);
        let pairs = pairs(examples, &groups);
        let logits = self.logits(&pairs, dropout)?;
        let mut losses = Vec::new();
        let mut start = 0;
        for group in &groups {
            if group.len() > 1 {
                let scores = logits.narrow(0, start, group.len()).map_err(model_error)?;
                let positive = scores.get(0).map_err(model_error)?;
                losses.push((log_sum_exp(&scores).map_err(model_error)? - positive).map_err(model_error)?);
            }
            start += group.len();
        }
        if losses.is_empty() {
            return Err(Error::InvalidInput(
                "examples need hard negatives, or a micro-batch of two or more to use each other's positives".into(),
            ));
        }
        let count = losses.len() as f64;
        let loss = (Tensor::stack(&losses, 0).map_err(model_error)?.sum_all().map_err(model_error)? / count)
            .map_err(model_error)?;
        Ok((loss, pairs.len()))
    }

    fn validate(&self, examples: &[&Example]) -> Result<f64> {
        let mut rows = Vec::new();
        let mut rng = Rng::new(0);
        for chunk in examples.chunks(self.micro_batch.max(1)) {
            let groups = self.groups(chunk);
            let pairs = pairs(chunk, &groups);
            let logits = self
                .logits(&pairs, &mut Dropout { rate: 0.0, rng: &mut rng })?
                .to_vec1::<f32>()
                .map_err(model_error)?;
            let mut start = 0;
            for group in &groups {
                rows.push(logits[start..start + group.len()].to_vec());
                start += group.len();
            }
        }
        Ok(mean_reciprocal_rank(&rows))
    }

    fn save(&self, dir: &Path) -> Result<()> {
        self.base.save(
            dir,
            json!({
                "architectures": ["BertForSequenceClassification"],
                "num_labels": 1,
                "id2label": {"0": "LABEL_0"},
                "label2id": {"LABEL_0": 0},
            }),
        )
    }
}

/// Trains a cross-encoder from the BERT folder `base` (an embedder such as minilm, or a
/// cross-encoder to train further) on `examples`, and writes the best validated model to `out`
/// as a `BertForSequenceClassification` folder that `lore_models::CrossEncoder` loads.
///
/// A run stopped by `observer` (or killed) resumes from `out/checkpoint/` when called again
/// with the same examples and options.
pub fn train_reranker(
    base: &Path,
    examples: &[Example],
    options: TrainOptions,
    out: &Path,
    observer: &mut dyn FnMut(&TrainEvent) -> std::ops::ControlFlow<()>,
) -> Result<TrainReport> {
    let mut model = Base::load(base, options.max_length)?;
    model.weights.keep(|name| Bert::uses(name) || ClassifierHead::uses(name));
    let head = ClassifierHead::new(&mut model.weights, model.config.hidden_size, &mut Rng::new(options.seed))?;
    let bert = Bert::new(&model.weights, &model.config)?;
    let task = Reranker { base: model, bert, head, negatives: options.negatives, micro_batch: options.micro_batch };
    let report =
        TrainReport { base: base.display().to_string(), kind: "reranker".into(), options, ..TrainReport::default() };
    run(&task, examples, report, out, observer)
}

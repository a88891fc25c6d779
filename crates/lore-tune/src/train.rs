//! The training loop both models share: shuffled micro-batches, gradient accumulation, AdamW,
//! validation with early stopping, checkpoints that a stopped run resumes from, and the report.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Tensor;
use candle_core::backprop::GradStore;
use lore_core::{Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bert::{Dropout, Weights, model_error};
use crate::examples::{Example, split_by_query};
use crate::optim::{AdamW, AdamWSettings};
use crate::rng::Rng;

/// How a model is trained. The defaults are those measured in docs/tuning.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainOptions {
    /// Passes over the training examples.
    pub epochs: usize,
    /// Examples per optimiser step.
    pub batch_size: usize,
    /// Examples per forward and backward pass; the gradients of `batch_size / micro_batch`
    /// micro-batches are accumulated into one step. Smaller saves memory.
    pub micro_batch: usize,
    /// The peak learning rate.
    pub learning_rate: f64,
    /// The peak learning rate of the weights the base model lacks (a reranker's new
    /// classification head), which start from noise and must move further.
    pub head_learning_rate: f64,
    /// The share of steps over which the learning rate rises from 0 to its peak; it then falls
    /// linearly to 0 at the last step.
    pub warmup: f64,
    /// AdamW's decoupled weight decay (not applied to biases and layer norms).
    pub weight_decay: f64,
    /// Longest input in tokens: a passage (embedder) or question and passage together
    /// (reranker), cut beyond it.
    pub max_length: usize,
    /// Hard negatives used per example (the first ones: hardest first).
    pub negatives: usize,
    /// The softmax temperature of the embedder's contrastive loss.
    pub temperature: f64,
    /// Dropout rate while training.
    pub dropout: f32,
    /// The share of questions held out to validate on.
    pub validation: f64,
    /// Validations per epoch.
    pub validations_per_epoch: usize,
    /// Stop after this many validations in a row without improvement.
    pub patience: usize,
    /// Seeds the order of examples, dropout, the validation split and new weights.
    pub seed: u64,
    /// Stop after this many optimiser steps (for a quick trial).
    pub max_steps: Option<usize>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 1,
            batch_size: 16,
            micro_batch: 4,
            learning_rate: 3e-5,
            head_learning_rate: 1e-3,
            warmup: 0.1,
            weight_decay: 0.01,
            max_length: 256,
            negatives: 3,
            temperature: 0.05,
            dropout: 0.1,
            validation: 0.1,
            validations_per_epoch: 4,
            patience: 3,
            seed: 42,
            max_steps: None,
        }
    }
}

/// What a training run did, also written to `lore-tune.json` in the model folder.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainReport {
    /// The model trained from.
    pub base: String,
    /// What was trained: `embedder` or `reranker`.
    pub kind: String,
    /// The settings.
    pub options: TrainOptions,
    /// Examples trained on.
    pub training_examples: usize,
    /// Examples held out for validation.
    pub validation_examples: usize,
    /// Optimiser steps taken, in all runs of this training.
    pub steps: usize,
    /// Steps a stopped run had taken when this one resumed it.
    pub resumed_at: Option<usize>,
    /// Whether validation stopped the run before its last epoch ended.
    pub stopped_early: bool,
    /// False when the caller stopped the run: called again, it resumes from the checkpoint.
    pub finished: bool,
    /// The validation metric (mean reciprocal rank of the positive among the candidates) of
    /// the base model, before any step.
    pub base_validation: f64,
    /// The best validation metric; the saved model is the one that reached it.
    pub best_validation: f64,
    /// The step of the saved model.
    pub best_step: usize,
    /// `(step, mean training loss since the previous validation, validation metric)`.
    pub history: Vec<(usize, f64, f64)>,
    /// Wall time of this run, seconds.
    pub seconds: f64,
    /// Sequences (passages or question–passage pairs) through the model per second of
    /// training, forward and backward.
    pub sequences_per_second: f64,
    /// The process's peak resident memory, MB (where the system reports it).
    pub peak_memory_mb: Option<f64>,
}

/// What a training run tells its caller as it goes.
#[derive(Clone, Debug)]
pub enum TrainEvent {
    /// Training starts (or resumes at `step`) and will take `total` steps at most.
    Started {
        /// The step it starts at.
        step: usize,
        /// The last step.
        total: usize,
    },
    /// An optimiser step was taken.
    Step {
        /// Steps done.
        step: usize,
        /// Mean loss of the step's examples.
        loss: f64,
    },
    /// The model was validated.
    Validated {
        /// Steps done.
        step: usize,
        /// The validation metric (higher is better).
        metric: f64,
        /// Whether it is the best so far (the model was saved).
        best: bool,
    },
}

/// A model being trained: how it computes a loss and validates, and how it is saved.
pub(crate) trait Task: Sync {
    fn weights(&self) -> &Weights;
    /// The mean loss of `examples`, and the number of sequences the model read for it.
    fn loss(&self, examples: &[&Example], dropout: &mut Dropout) -> Result<(Tensor, usize)>;
    /// Mean reciprocal rank of each example's positive among its candidates.
    fn validate(&self, examples: &[&Example]) -> Result<f64>;
    /// Writes the model, in the layout inference loads, to `dir`.
    fn save(&self, dir: &Path) -> Result<()>;
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    fingerprint: String,
    steps: usize,
    epoch: usize,
    position: usize,
    rng: Rng,
    report: TrainReport,
    evaluations_since_best: usize,
}

/// Trains `task` on `examples`, saving the best validated model in `out` (and checkpoints in
/// `out/checkpoint/`, removed at the end). `observer` hears of each step; when it answers
/// `Break`, the run writes a checkpoint and returns, and a later call resumes it.
pub(crate) fn run(
    task: &dyn Task,
    examples: &[Example],
    mut report: TrainReport,
    out: &Path,
    observer: &mut dyn FnMut(&TrainEvent) -> ControlFlow<()>,
) -> Result<TrainReport> {
    let options = report.options.clone();
    if options.batch_size == 0 || options.micro_batch == 0 || options.epochs == 0 {
        return Err(Error::InvalidInput("epochs, batch size and micro-batch must be at least 1".into()));
    }
    let (train, validation) = split_by_query(examples, options.validation, options.seed);
    if train.is_empty() {
        return Err(Error::InvalidInput("no training examples left after holding out the validation questions".into()));
    }
    report.training_examples = train.len();
    report.validation_examples = validation.len();
    let steps_per_epoch = train.len().div_ceil(options.batch_size);
    let planned = steps_per_epoch * options.epochs;
    let total = options.max_steps.map_or(planned, |m| m.min(planned));
    let validate_every = (steps_per_epoch / options.validations_per_epoch.max(1)).max(1);

    let mut optimizer = AdamW::new(AdamWSettings {
        learning_rate: options.learning_rate,
        new_learning_rate: options.head_learning_rate,
        weight_decay: options.weight_decay,
        warmup_steps: ((total as f64 * options.warmup).round() as usize).max(1),
        total_steps: total,
    });
    std::fs::create_dir_all(out).map_err(Error::io(out))?;
    let checkpoint_dir = out.join("checkpoint");
    let fingerprint = fingerprint(&report, examples);
    let mut rng = Rng::new(options.seed);
    let (mut epoch, mut position, mut since_best) = (0, 0, 0);
    match read_checkpoint(&checkpoint_dir)? {
        Some(saved) if saved.fingerprint == fingerprint => {
            task.weights().restore(&checkpoint_dir.join("weights.safetensors"))?;
            optimizer.restore(&checkpoint_dir.join("optimizer.safetensors"), saved.steps)?;
            (epoch, position, rng, since_best) = (saved.epoch, saved.position, saved.rng, saved.evaluations_since_best);
            let resumed_at = saved.steps;
            report = TrainReport { resumed_at: Some(resumed_at), ..saved.report };
        }
        Some(_) => {
            return Err(Error::InvalidInput(format!(
                "{} holds a checkpoint of a different training (other examples or settings): \
                 delete it, or choose another --out",
                checkpoint_dir.display()
            )));
        }
        None => {
            report.base_validation = task.validate(&validation)?;
            report.best_validation = report.base_validation;
            task.save(out)?;
        }
    }
    // Starting only reports; a stop is honoured from the first step on.
    let _ = observer(&TrainEvent::Started { step: optimizer.steps, total });

    let started = Instant::now();
    let mut sequences = 0usize;
    let (mut loss_sum, mut loss_count) = (0.0, 0usize);
    'epochs: while epoch < options.epochs && optimizer.steps < total {
        let mut order: Vec<usize> = (0..train.len()).collect();
        Rng::new(options.seed.wrapping_add(epoch as u64)).shuffle(&mut order);
        while position < order.len() && optimizer.steps < total {
            let batch_end = (position + options.batch_size).min(order.len());
            let micros: Vec<Vec<&Example>> = order[position..batch_end]
                .chunks(options.micro_batch)
                .map(|micro| micro.iter().map(|&i| train[i]).collect())
                .collect();
            // Micro-batches run side by side: candle leaves cores idle between and inside its
            // operations, and parallel micro-batches fill them. Each draws its dropout from its
            // own generator, seeded in order, so the run stays repeatable.
            let seeds: Vec<u64> = micros.iter().map(|_| rng.next_u64()).collect();
            let passes: Vec<Result<(GradStore, f64, usize)>> = micros
                .par_iter()
                .zip(&seeds)
                .map(|(batch, &seed)| {
                    let mut micro_rng = Rng::new(seed);
                    let (loss, read) = task.loss(batch, &mut Dropout { rate: options.dropout, rng: &mut micro_rng })?;
                    let grads = loss.backward().map_err(model_error)?;
                    let loss = loss.to_scalar::<f32>().map_err(model_error)? as f64 * batch.len() as f64;
                    Ok((grads, loss, read))
                })
                .collect();
            let mut step_loss = 0.0;
            for pass in passes {
                let (grads, loss, read) = pass?;
                optimizer.accumulate(task.weights(), &grads)?;
                step_loss += loss;
                sequences += read;
            }
            optimizer.step(task.weights())?;
            let step_loss = step_loss / (batch_end - position) as f64;
            if !step_loss.is_finite() {
                return Err(Error::Model(format!(
                    "the loss became {step_loss} at step {}: lower the learning rate",
                    optimizer.steps
                )));
            }
            loss_sum += step_loss;
            loss_count += 1;
            position = batch_end;
            let stop = observer(&TrainEvent::Step { step: optimizer.steps, loss: step_loss }).is_break();
            let last = optimizer.steps == total || (position == order.len() && epoch + 1 == options.epochs);
            let resume_at = if position == order.len() { (epoch + 1, 0) } else { (epoch, position) };
            let checkpoint = |report: &TrainReport, since_best: usize| Checkpoint {
                fingerprint: fingerprint.clone(),
                steps: optimizer.steps,
                epoch: resume_at.0,
                position: resume_at.1,
                rng: rng.clone(),
                report: report.clone(),
                evaluations_since_best: since_best,
            };
            if stop && !last {
                report.steps = optimizer.steps;
                write_checkpoint(&checkpoint_dir, &checkpoint(&report, since_best), task.weights(), &optimizer)?;
                report.seconds = started.elapsed().as_secs_f64();
                return Ok(report);
            }
            if optimizer.steps.is_multiple_of(validate_every) || last {
                let metric = task.validate(&validation)?;
                // Without validation questions, the latest model is the one kept.
                let best = metric > report.best_validation || validation.is_empty();
                report.history.push((optimizer.steps, loss_sum / loss_count.max(1) as f64, metric));
                (loss_sum, loss_count) = (0.0, 0);
                if best {
                    report.best_validation = metric;
                    report.best_step = optimizer.steps;
                    task.save(out)?;
                    since_best = 0;
                } else {
                    since_best += 1;
                }
                let _ = observer(&TrainEvent::Validated { step: optimizer.steps, metric, best });
                report.steps = optimizer.steps;
                if since_best >= options.patience.max(1) && !last {
                    report.stopped_early = true;
                    break 'epochs;
                }
                write_checkpoint(&checkpoint_dir, &checkpoint(&report, since_best), task.weights(), &optimizer)?;
            }
        }
        epoch += 1;
        position = 0;
    }
    report.steps = optimizer.steps;
    report.finished = true;
    report.seconds = started.elapsed().as_secs_f64();
    report.sequences_per_second = sequences as f64 / report.seconds.max(1e-9);
    report.peak_memory_mb = peak_memory_mb();
    write_report(out, &report)?;
    if checkpoint_dir.exists() {
        std::fs::remove_dir_all(&checkpoint_dir).map_err(Error::io(&checkpoint_dir))?;
    }
    Ok(report)
}

/// Names the training: the same examples and settings resume, anything else starts over.
fn fingerprint(report: &TrainReport, examples: &[Example]) -> String {
    let mut hash = lore_core::Fnv1a::new();
    let settings = serde_json::to_string(&(&report.base, &report.kind, &report.options)).unwrap_or_default();
    hash.write(settings.as_bytes());
    for example in examples {
        for text in [&example.query, &example.positive].into_iter().chain(&example.negatives) {
            hash.write(text.as_bytes());
            hash.write(&[0]);
        }
        hash.write(&[1]);
    }
    format!("{:016x}", hash.finish())
}

fn read_checkpoint(dir: &Path) -> Result<Option<Checkpoint>> {
    let path = dir.join("state.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::InvalidInput(format!("{} is damaged ({e}): delete {}", path.display(), dir.display())))
}

/// Writes weights, moments and state; the state file goes last, so a checkpoint is only read
/// once all of it is there.
fn write_checkpoint(dir: &Path, checkpoint: &Checkpoint, weights: &Weights, optimizer: &AdamW) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let state = dir.join("state.json");
    if state.exists() {
        std::fs::remove_file(&state).map_err(Error::io(&state))?;
    }
    weights.save(&dir.join("weights.safetensors"))?;
    optimizer.save(&dir.join("optimizer.safetensors"))?;
    write_json(&state, checkpoint)
}

fn write_report(out: &Path, report: &TrainReport) -> Result<()> {
    write_json(&out.join(REPORT_FILE), report)
}

const REPORT_FILE: &str = "lore-tune.json";

impl TrainReport {
    /// The report of the finished training that wrote model folder `dir`.
    pub fn read(dir: &Path) -> Result<TrainReport> {
        let path = dir.join(REPORT_FILE);
        let text = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::InvalidInput(format!(
                "{} has no {REPORT_FILE}: it is not a model `lore tune` finished training",
                dir.display()
            )),
            _ => Error::io(&path)(e),
        })?;
        serde_json::from_slice(&text).map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))
    }
}

/// Writes `value` as pretty JSON through a temporary file.
pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let partial: PathBuf = path.with_extension("partial");
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::InvalidInput(e.to_string()))?;
    std::fs::write(&partial, text).map_err(Error::io(&partial))?;
    std::fs::rename(&partial, path).map_err(Error::io(path))
}

/// VmHWM from /proc: the most memory the process has held.
fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Mean reciprocal rank of candidate 0 in each row of `scores`.
pub(crate) fn mean_reciprocal_rank(scores: &[Vec<f32>]) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    let total: f64 = scores
        .iter()
        .map(|row| {
            let above = row[1..].iter().filter(|&&s| s >= row[0]).count();
            1.0 / (above + 1) as f64
        })
        .sum();
    total / scores.len() as f64
}

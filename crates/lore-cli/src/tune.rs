//! `lore tune`: synthetic queries, and an embedder or reranker trained on the user's data.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use lore_engine::Engine;
use lore_engine::eval::DatasetRequest;
use lore_engine::tune::{CalibrationReport, Mining, QuestionsRequest, Trainee, TrainingData, TuneReport, TuneRequest};
use lore_tune::{NegativeOptions, QueryForm, TrainOptions};

use crate::output::{Bars, print_json};

#[derive(Subcommand)]
pub enum TuneCommand {
    /// Write questions (or claims, `--form`) for each chunk of a collection with the chat model,
    /// keep those whose chunk the collection's search finds, and save them as a BEIR dataset to train on.
    /// Resumable: the model's replies are cached in the output folder.
    Queries(QueriesArgs),
    /// Fine-tune a sentence embedder (contrastive loss over in-batch and hard negatives). Use
    /// the result with `--embedder DIR` on a new collection.
    Embedder(TrainArgs),
    /// Train a cross-encoder reranker from an installed encoder, then calibrate it on the
    /// held-out questions (its logit and the search's rank → a probability of relevance,
    /// saved as calibration.json). Use the result with `--reranker DIR` (or `reranker = "DIR"`
    /// in lore.toml) and a pipeline that reranks, such as hybrid-rerank.
    Reranker(TrainArgs),
    /// Fit a trained reranker's calibration again (as `tune reranker` does at the end), on the
    /// questions its training held out: with --dataset (the one it was trained on), over the
    /// candidates hybrid-rerank would rerank; without, over the held-out examples.
    Calibrate(CalibrateArgs),
}

#[derive(Args)]
pub struct CalibrateArgs {
    /// The folder `lore tune reranker` wrote.
    model: PathBuf,
    /// The BEIR dataset it was trained on.
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// The split it was trained on.
    #[arg(long, default_value = "train")]
    split: String,
    /// The --limit it was trained with.
    #[arg(long)]
    limit: Option<usize>,
    /// Print the calibration report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct QueriesArgs {
    /// The collection whose chunks get queries.
    #[arg(short, long, env = "LORE_COLLECTION")]
    collection: String,
    /// Queries of each form asked per chunk.
    #[arg(long, default_value_t = 1)]
    per_chunk: usize,
    /// What the queries are: `question` (what users of a Q&A system type), `claim` (a statement
    /// of a fact or finding in the chunk, as a fact-checking corpus is searched), or both,
    /// comma-separated. Write them in the form your users search with.
    #[arg(long, value_delimiter = ',', default_value = "question")]
    form: Vec<QueryForm>,
    /// Chat model writing them: a model name, GGUF path or openai:MODEL@URL [default: qwen-0.5b].
    #[arg(long, env = "LORE_LLM")]
    llm: Option<String>,
    /// Ask about a fixed sample of N chunks (the same N on every run); the dataset's corpus
    /// still holds every chunk, for mining negatives.
    #[arg(long)]
    limit: Option<usize>,
    /// Keep a query only if hybrid search finds its chunk in this many hits (0 keeps all).
    #[arg(long, default_value_t = 20)]
    keep_top: usize,
    /// The dataset folder to write (corpus.jsonl, queries.jsonl, qrels/train.tsv).
    #[arg(long)]
    out: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct TrainArgs {
    /// A BEIR dataset to train on (its qrels/SPLIT.tsv labels; `lore tune queries` writes one).
    /// Hard negatives are mined from its corpus with hybrid search.
    #[arg(long, required_unless_present = "examples", conflicts_with = "examples")]
    dataset: Option<PathBuf>,
    /// The labelled split of --dataset.
    #[arg(long, default_value = "train")]
    split: String,
    /// Train on a fixed sample of N of the split's queries.
    #[arg(long)]
    limit: Option<usize>,
    /// Or: JSON lines of {"query", "positive", "negatives"} examples, or the triples
    /// `lore feedback export --format triples` writes.
    #[arg(long)]
    examples: Option<PathBuf>,
    /// The model to start from: minilm, or an HF-layout BERT folder (a model tune wrote).
    #[arg(long, default_value = "minilm")]
    base: String,
    /// Where the trained model is written; rerunning the same command resumes a stopped run.
    #[arg(long)]
    out: PathBuf,
    /// Passes over the examples.
    #[arg(long, default_value_t = TrainOptions::default().epochs)]
    epochs: usize,
    /// Examples per optimiser step.
    #[arg(long, default_value_t = TrainOptions::default().batch_size)]
    batch_size: usize,
    /// Examples per forward pass (gradients are accumulated up to --batch-size); lower it if
    /// memory is short.
    #[arg(long, default_value_t = TrainOptions::default().micro_batch)]
    micro_batch: usize,
    /// Peak learning rate (linear warm-up over the first 10% of steps, then linear decay).
    #[arg(long, default_value_t = TrainOptions::default().learning_rate)]
    learning_rate: f64,
    /// Longest input in tokens (reranker: question and passage together).
    #[arg(long, default_value_t = TrainOptions::default().max_length)]
    max_length: usize,
    /// Hard negatives per question used in training.
    #[arg(long, default_value_t = TrainOptions::default().negatives)]
    negatives: usize,
    /// Share of the questions held out for validation, early stopping and (reranker) calibration.
    #[arg(long, default_value_t = TrainOptions::default().validation)]
    validation: f64,
    /// Stop after this many optimiser steps.
    #[arg(long)]
    max_steps: Option<usize>,
    /// Seeds shuffling, dropout and the validation split.
    #[arg(long, default_value_t = TrainOptions::default().seed)]
    seed: u64,
    /// Candidates the hybrid search returns per question when mining negatives.
    #[arg(long, default_value_t = Mining::default().depth)]
    mine_depth: usize,
    /// Drop mined negatives that this trained cross-encoder scores above the positive (likely
    /// unlabelled answers).
    #[arg(long, value_name = "DIR")]
    filter_with: Option<String>,
    /// Print the training report as JSON.
    #[arg(long)]
    json: bool,
}

impl TrainArgs {
    fn request(&self) -> TuneRequest {
        let data = match (&self.examples, &self.dataset) {
            (Some(path), _) => TrainingData::Examples(path.clone()),
            (None, dataset) => TrainingData::Dataset(DatasetRequest {
                dir: dataset.clone().unwrap_or_default(),
                split: self.split.clone(),
                limit: self.limit,
                half: None,
            }),
        };
        TuneRequest {
            data,
            base: self.base.clone(),
            out: self.out.clone(),
            options: TrainOptions {
                epochs: self.epochs,
                batch_size: self.batch_size,
                micro_batch: self.micro_batch,
                learning_rate: self.learning_rate,
                max_length: self.max_length,
                negatives: self.negatives,
                validation: self.validation,
                max_steps: self.max_steps,
                seed: self.seed,
                ..TrainOptions::default()
            },
            mining: Mining {
                depth: self.mine_depth,
                negatives: NegativeOptions { count: self.negatives.max(1) * 2, ..NegativeOptions::default() },
                filter_reranker: self.filter_with.clone(),
            },
        }
    }
}

pub fn run(engine: &Engine, command: TuneCommand) -> Result<()> {
    let bars = Bars::default();
    match command {
        TuneCommand::Queries(args) => {
            if args.per_chunk == 0 {
                bail!("--per-chunk must be at least 1");
            }
            let request = QuestionsRequest {
                collection: args.collection,
                llm: args.llm,
                forms: args.form,
                per_chunk: args.per_chunk,
                limit: args.limit,
                keep_top: args.keep_top,
                out: args.out,
            };
            let report = engine.tune_questions(&request, &bars)?;
            if args.json {
                return print_json(&report);
            }
            println!(
                "{} chunks ({} replies from the cache): {} queries written, {} kept in {} ({:.0} s)",
                report.chunks,
                report.cached,
                report.written,
                report.kept,
                report.out.display(),
                report.seconds
            );
            println!("next: lore tune reranker --dataset {} --out MODEL_DIR", report.out.display());
        }
        TuneCommand::Embedder(args) => train(engine, Trainee::Embedder, &args, &bars)?,
        TuneCommand::Reranker(args) => train(engine, Trainee::Reranker, &args, &bars)?,
        TuneCommand::Calibrate(args) => {
            let dataset = args.dataset.map(|dir| DatasetRequest {
                dir,
                split: args.split.clone(),
                limit: args.limit,
                half: None,
            });
            let Some(fit) = engine.calibrate_reranker(&args.model, dataset.as_ref(), &bars)? else {
                bail!(
                    "{} was trained without held-out questions (--validation 0): nothing to calibrate on",
                    args.model.display()
                );
            };
            if args.json {
                return print_json(&fit);
            }
            print_calibration(&fit);
        }
    }
    Ok(())
}

fn print_calibration(fit: &CalibrationReport) {
    let search = fit.search_mrr.map(|m| format!("search {m:.4}, ")).unwrap_or_default();
    let c = &fit.calibration;
    println!(
        "calibrated on {} held-out questions: MRR {search}reranker {:.4}, calibrated {:.4}",
        fit.questions, fit.reranker_mrr, fit.calibrated_mrr
    );
    let sign = if c.bias < 0.0 { '−' } else { '+' };
    println!(
        "P(relevant) = σ({:.3} · logit − {:.3} · ln rank {sign} {:.3})",
        c.score_weight,
        c.rank_weight,
        c.bias.abs()
    );
}

fn train(engine: &Engine, trainee: Trainee, args: &TrainArgs, bars: &Bars) -> Result<()> {
    let report = engine.tune(trainee, &args.request(), bars)?;
    if args.json {
        return print_json(&report);
    }
    print_report(trainee, args, &report);
    Ok(())
}

fn print_report(trainee: Trainee, args: &TrainArgs, tuned: &TuneReport) {
    let report = &tuned.training;
    println!(
        "{} trained from {} on {} examples ({} held out): {} steps{}{}",
        trainee.name(),
        report.base,
        report.training_examples,
        report.validation_examples,
        report.steps,
        report.resumed_at.map(|s| format!(", resumed at step {s}")).unwrap_or_default(),
        if report.stopped_early { ", stopped early" } else { "" }
    );
    println!(
        "validation MRR {:.4} before, {:.4} best (step {}), saved to {}",
        report.base_validation,
        report.best_validation,
        report.best_step,
        args.out.display()
    );
    println!(
        "{:.0} s, {:.1} sequences/s, peak memory {}",
        report.seconds,
        report.sequences_per_second,
        report.peak_memory_mb.map(|m| format!("{m:.0} MB")).unwrap_or_else(|| "unknown".into())
    );
    if let Some(fit) = &tuned.calibration {
        print_calibration(fit);
    }
    match trainee {
        Trainee::Reranker => {
            println!("use it: lore eval retrieval --pipeline hybrid-rerank --reranker {} …", args.out.display())
        }
        Trainee::Embedder => println!("use it: lore ingest PATH -c NEW_COLLECTION --embedder {}", args.out.display()),
    }
}

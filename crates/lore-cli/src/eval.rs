//! `lore eval` and `lore arena`: arguments to the engine's evaluation runs, reports printed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use lore_engine::Engine;
use lore_engine::arena::ArenaRequest;
use lore_engine::eval::{DatasetRequest, Scoring};
use lore_eval::{GroundingMetric, Half, html_report, leaderboard_markdown};

use crate::output::{Bars, print_json};

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Retrieval metrics of a pipeline on a BEIR dataset: nDCG@10, Recall@{1,5,10,20,100},
    /// MRR@10, MAP@100, P@{1,5,10}, as trec_eval computes them.
    Retrieval(EvalRetrievalArgs),
    /// Answer a dataset's questions with a pipeline: exact match, F1, ROUGE-L, answer in
    /// context, refusal accuracy, latency and tokens; with --judge the LLM judge's rubric.
    Qa(QaArgs),
    /// Grade answers in a JSON-lines file ({"question", "gold", "answer"} per line) with a chat
    /// model on the rubric correctness, completeness, clarity (1–5 each).
    Judge(JudgeArgs),
    /// Ask each question twice, with its gold documents (qrels) in the collection and filtered
    /// out (unanswerable by construction), and count refusals: the answerability gate's alone,
    /// or whole answers with --llm. Tune on --half dev, report on --half test.
    Answerability(AnswerabilityArgs),
}

#[derive(Args)]
pub struct AnswerabilityArgs {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Pipeline preset or TOML file, as for `lore eval retrieval`.
    #[arg(long, default_value = "dense")]
    pipeline: String,
    /// Generate whole answers with this chat model (gate, generator and verification decide);
    /// without it only the gate decides, fast enough for every question.
    #[arg(long)]
    llm: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Write each question's two outcomes (evidence signals, refusal, answer) to this
    /// JSON-lines file.
    #[arg(long)]
    per_question: Option<PathBuf>,
}

#[derive(Args)]
pub struct DatasetArgs {
    /// Dataset folder: BEIR layout (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv, answers.jsonl)
    /// or RAG-Arena layout (docs/*.txt, qa.json). Its corpus is ingested once into a collection
    /// named after the dataset, the embedder and the chunking, and reused by later runs.
    #[arg(long)]
    dataset: PathBuf,
    /// The qrels split of a BEIR dataset (qrels/SPLIT.tsv).
    #[arg(long, default_value = "test")]
    split: String,
    /// Evaluate a fixed sample of N queries or questions (the same N on every run).
    #[arg(long)]
    limit: Option<usize>,
    /// Only one fixed half of the questions, chosen by a hash of their ids: dev to choose
    /// settings on, test to report on (for datasets with one split, such as CMRC2018).
    #[arg(long)]
    half: Option<Half>,
}

impl DatasetArgs {
    fn request(&self) -> DatasetRequest {
        DatasetRequest { dir: self.dataset.clone(), split: self.split.clone(), limit: self.limit, half: self.half }
    }
}

#[derive(Args)]
pub struct EvalRetrievalArgs {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Pipeline preset (dense, bm25, hybrid, hybrid-zscore, graph, hybrid-graph, hybrid-rerank,
    /// hyde, multi-query, step-back, multi-hop, tutorial) or a TOML file of pipeline settings.
    #[arg(long, default_value = "dense")]
    pipeline: String,
    /// Chat model for pipelines that rewrite queries or rerank with the LLM (hyde, multi-query,
    /// step-back, multi-hop, hybrid-rerank), overriding the pipeline's [default: qwen-0.5b].
    #[arg(long, env = "LORE_LLM")]
    llm: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Write each query's metrics and top 10 documents to this JSON-lines file.
    #[arg(long)]
    per_query: Option<PathBuf>,
}

#[derive(Args)]
pub struct QaArgs {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Pipeline preset or TOML file, as for `lore eval retrieval`.
    #[arg(long, default_value = "dense")]
    pipeline: String,
    /// Chat model answering the questions, overriding the pipeline's [default: qwen-0.5b].
    #[arg(long, env = "LORE_LLM")]
    llm: Option<String>,
    #[command(flatten)]
    scoring: ScoringArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Write each question's answer, passages and scores to this JSON-lines file.
    #[arg(long)]
    per_question: Option<PathBuf>,
    /// Only retrieve, generate nothing: report answer in context (a gold answer appears in the
    /// passages the generator would read), fast enough for every question of a large set. For
    /// pipelines that do not rewrite or rerank with a chat model.
    #[arg(long, conflicts_with_all = ["llm", "judge", "grounding", "per_question"])]
    context_only: bool,
}

#[derive(Args)]
pub struct ScoringArgs {
    /// Grade each answer against the gold answer with this chat model (a model name, GGUF path
    /// or openai:MODEL@URL); its replies are cached in $LORE_HOME/eval-cache/.
    #[arg(long)]
    judge: Option<String>,
    /// Also compute grounding metrics with the judge model, or the generator without --judge:
    /// all five (faithfulness, answer-relevancy, context-precision, context-recall,
    /// citation-precision), or those named, as in --grounding=citation-precision,faithfulness.
    /// Slow: several model calls per question, most of them for faithfulness and context
    /// recall, whose verdicts read every passage.
    #[arg(long, value_name = "METRICS", num_args = 0..=1, require_equals = true, default_missing_value = "all", value_parser = grounding_metrics)]
    grounding: Option<GroundingMetrics>,
}

/// The metrics `--grounding` names.
#[derive(Clone)]
struct GroundingMetrics(Vec<GroundingMetric>);

fn grounding_metrics(text: &str) -> Result<GroundingMetrics, String> {
    GroundingMetric::parse_list(text).map(GroundingMetrics)
}

impl ScoringArgs {
    fn scoring(&self) -> Scoring {
        Scoring { judge: self.judge.clone(), grounding: self.grounding.as_ref().map(|m| m.0.clone()) }
    }
}

#[derive(Args)]
pub struct JudgeArgs {
    /// JSON-lines file, one {"question", "gold", "answer"} object per line.
    input: PathBuf,
    /// The judge: a model name, GGUF path or openai:MODEL@URL.
    #[arg(long)]
    judge: String,
    /// Print one JSON object (the summary and every judgement) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ArenaArgs {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// A built-in arena (tutorial: the RAG tutorial's baseline and variants; retrieval: dense,
    /// bm25, hybrid, hybrid-zscore, graph, hybrid-graph, hybrid-rerank, hyde, multi-query,
    /// multi-hop; themes: hybrid with the collection's theme summaries kept for questions about
    /// the collection, ranked like passages, or left out; grounded: the generator alone, with
    /// verification, and with Lore's gate, second look, verification and quote) or an arena TOML
    /// file: one
    /// [NAME] table of pipeline settings per contender, `preset = "NAME"` to start from a
    /// pipeline preset.
    #[arg(long, default_value = "tutorial")]
    config: String,
    /// Generator for the contenders whose settings name none [default: qwen-0.5b].
    #[arg(long, env = "LORE_LLM")]
    llm: Option<String>,
    #[command(flatten)]
    scoring: ScoringArgs,
    /// Where to write the HTML report [default: arena-DATASET-ARENA.html].
    #[arg(long)]
    report: Option<PathBuf>,
    /// Also write every result (answers, passages, scores, judgements) as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(engine: &Engine, command: EvalCommand) -> Result<()> {
    let bars = Bars::default();
    match command {
        EvalCommand::Retrieval(args) => {
            let eval = engine.eval_retrieval(&args.dataset.request(), &args.pipeline, args.llm.as_deref(), &bars)?;
            if let Some(path) = &args.per_query {
                write_lines(path, eval.per_query.iter().map(|line| line.to_string()))?;
            }
            if args.json {
                return print_json(&eval);
            }
            println!(
                "{} ({} split, {} queries), pipeline {}, collection {}",
                eval.dataset, eval.split, eval.queries, eval.pipeline, eval.collection
            );
            for (name, value) in &eval.headline {
                println!("  {name:<11} {value:.4}");
            }
            eprintln!(
                "ingest {:.1} s ({} chunks embedded), queries {:.1} s",
                eval.timings["ingest_s"].as_f64().unwrap_or_default(),
                eval.timings["embedded_chunks"],
                eval.timings["queries_s"].as_f64().unwrap_or_default()
            );
        }
        EvalCommand::Qa(args) if args.context_only => {
            let eval = engine.eval_context(&args.dataset.request(), &args.pipeline, &bars)?;
            if args.json {
                return print_json(&eval);
            }
            println!(
                "{}: {} questions, pipeline {}, collection {}, retrieval only",
                eval.dataset, eval.questions, eval.pipeline, eval.collection
            );
            println!("  answer in context  {}", eval.answer_in_context);
            println!("  retrieval          {:.0} ms per question", eval.retrieval_ms_per_question);
        }
        EvalCommand::Qa(args) => {
            let request = args.dataset.request();
            let eval = engine.eval_qa(&request, &args.pipeline, args.llm.as_deref(), &args.scoring.scoring(), &bars)?;
            if let Some(path) = &args.per_question {
                let lines = eval.answered.iter().map(serde_json::to_string).collect::<Result<Vec<_>, _>>()?;
                write_lines(path, lines)?;
            }
            if args.json {
                return print_json(&eval);
            }
            println!(
                "{}: {} questions, pipeline {}, generator {}, collection {}",
                eval.dataset, eval.questions, eval.pipeline, eval.llm, eval.collection
            );
            println!("{}", eval.report);
        }
        EvalCommand::Answerability(args) => {
            let eval =
                engine.eval_answerability(&args.dataset.request(), &args.pipeline, args.llm.as_deref(), &bars)?;
            if let Some(path) = &args.per_question {
                let lines = eval.per_question.iter().map(serde_json::to_string).collect::<Result<Vec<_>, _>>()?;
                write_lines(path, lines)?;
            }
            if args.json {
                return print_json(&eval);
            }
            let decided_by = eval.llm.as_deref().map_or("the gate alone".to_string(), |llm| format!("generator {llm}"));
            println!(
                "{}: {} questions, pipeline {}, {decided_by}, collection {}",
                eval.dataset, eval.questions, eval.pipeline, eval.collection
            );
            println!(
                "  gold present   {:5.1}% refused ({:.1}% by the gate)",
                100.0 * eval.refused_present,
                100.0 * eval.gated_present
            );
            println!(
                "  gold removed   {:5.1}% refused ({:.1}% by the gate)",
                100.0 * eval.refused_removed,
                100.0 * eval.gated_removed
            );
        }
        EvalCommand::Judge(args) => {
            let eval = engine.judge_answers(&args.input, &args.judge, &bars)?;
            if args.json {
                return print_json(&eval);
            }
            for (i, outcome) in eval.judgements.iter().enumerate() {
                match outcome {
                    Ok(j) => println!(
                        "{:>3}. {:.2}  (correctness {}, completeness {}, clarity {})",
                        i + 1,
                        j.scores.mean(),
                        j.scores.correctness,
                        j.scores.completeness,
                        j.scores.clarity
                    ),
                    Err(failure) => {
                        println!("{:>3}. unscored after {} attempts: {}", i + 1, failure.attempts, failure.reason)
                    }
                }
            }
            println!("{} answers judged by {}", eval.items, eval.judge);
            println!("{}", eval.summary);
        }
    }
    Ok(())
}

/// `lore arena`: the leaderboard on stdout, the HTML report and the JSON results in files.
pub fn arena(engine: &Engine, args: ArenaArgs) -> Result<()> {
    let request = ArenaRequest {
        dataset: args.dataset.request(),
        arena: args.config.clone(),
        llm: args.llm.clone(),
        scoring: args.scoring.scoring(),
    };
    let outcome = engine.arena(&request, &Bars::default())?;
    println!("## {}\n\n{}", outcome.title, leaderboard_markdown(&outcome.entries));
    let report = args.report.unwrap_or_else(|| format!("arena-{}-{}.html", outcome.dataset, outcome.arena).into());
    std::fs::write(&report, html_report(&outcome.title, &outcome.entries))
        .with_context(|| format!("writing {}", report.display()))?;
    eprintln!("report: {}", report.display());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&outcome.entries)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn write_lines(path: &PathBuf, lines: impl IntoIterator<Item = String>) -> Result<()> {
    let mut out = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

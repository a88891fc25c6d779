use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use lore_core::{ChatModel, Embedder, PipelineConfig};
use lore_eval::{
    AnsweredQuestion, CUTOFFS, Dataset, Grounding, Judge, JudgeSummary, QaItem, QaReport, Qrels, Query,
    answer_question, answer_retrieved, as_run, chunk_depth, collection_name, evaluate, headline_metrics,
    rank_documents, sample,
};
use lore_index::Collection;
use lore_rag::{Pipeline, Source, ingest};
use serde::Deserialize;
use serde_json::json;

use crate::{Context, print_json};

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Retrieval metrics of a pipeline on a BEIR dataset: nDCG@10, Recall@{1,5,10,20,100},
    /// MRR@10, MAP@100, P@{1,5,10}, as trec_eval computes them.
    Retrieval(RetrievalArgs),
    /// Answer a dataset's questions with a pipeline: exact match, F1, ROUGE-L, answer in
    /// context, refusal accuracy, latency and tokens; with --judge the LLM judge's rubric.
    Qa(QaArgs),
    /// Grade answers in a JSON-lines file ({"question", "gold", "answer"} per line) with a chat
    /// model on the rubric correctness, completeness, clarity (1–5 each).
    Judge(JudgeArgs),
}

#[derive(Args)]
pub struct DatasetArgs {
    /// Dataset folder: BEIR layout (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv, answers.jsonl)
    /// or RAG-Arena layout (docs/*.txt, qa.json). Its corpus is ingested once into a collection
    /// named after the dataset, the embedder and the chunking, and reused by later runs.
    #[arg(long)]
    pub dataset: PathBuf,
    /// The qrels split of a BEIR dataset (qrels/SPLIT.tsv).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Evaluate a fixed sample of N queries or questions (the same N on every run).
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Args)]
pub struct RetrievalArgs {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Pipeline preset (dense, bm25, hybrid, hybrid-zscore, hybrid-rerank, hyde, multi-query,
    /// step-back, tutorial) or a TOML file of pipeline settings.
    #[arg(long, default_value = "dense")]
    pipeline: String,
    /// Chat model for pipelines that rewrite queries or rerank with the LLM (hyde, multi-query,
    /// step-back, hybrid-rerank), overriding the pipeline's [default: qwen-0.5b].
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
    pub judge: Option<String>,
    /// Also compute the grounding metrics (faithfulness, answer relevancy, context precision and
    /// recall) with the judge model, or the generator without --judge. Slow: several model
    /// calls per question.
    #[arg(long)]
    pub grounding: bool,
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

pub fn run(ctx: &Context, command: EvalCommand) -> Result<()> {
    match command {
        EvalCommand::Retrieval(args) => retrieval(ctx, args),
        EvalCommand::Qa(args) => qa(ctx, args),
        EvalCommand::Judge(args) => judge(ctx, args),
    }
}

/// The collection a dataset is evaluated in, with the embedder that built it.
pub struct EvalIndex {
    pub name: String,
    pub collection: Collection,
    pub embedder: Box<dyn Embedder>,
    pub ingest_seconds: f64,
    /// Chunks embedded by this run (0 when the collection was up to date).
    pub embedded_chunks: usize,
}

/// The name of the dataset folder, for reports.
pub fn dataset_name(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string())
}

pub fn load_dataset(args: &DatasetArgs) -> Result<Dataset> {
    Dataset::load(&args.dataset, &args.split).with_context(|| format!("loading dataset {}", args.dataset.display()))
}

/// The questions evaluated: all those with gold answers, or the --limit sample of them.
pub fn questions(dataset: &Dataset, args: &DatasetArgs) -> Result<Vec<QaItem>> {
    if dataset.qa().is_empty() {
        bail!("{} has no questions with answers (answers.jsonl or qa.json)", args.dataset.display());
    }
    Ok(match args.limit {
        Some(n) => sample(dataset.qa(), n, |q| q.id.as_str()),
        None => dataset.qa().to_vec(),
    })
}

/// The judgements of `queries` only, so that a sample is scored on itself.
pub fn qrels_of(qrels: &Qrels, queries: &[Query]) -> Qrels {
    queries.iter().filter_map(|q| qrels.get(&q.id).map(|judged| (q.id.clone(), judged.clone()))).collect()
}

/// The embedder a pipeline's collection is built with.
pub fn embedder_name(ctx: &Context, config: &PipelineConfig) -> String {
    config.embedder.clone().or_else(|| ctx.config.embedder.clone()).unwrap_or_else(|| "e5-small".into())
}

/// Opens (or creates) the collection `config` is evaluated in and brings it in step with the
/// dataset's documents: new or changed documents are embedded, documents no longer in the
/// dataset are removed.
pub fn open_index(ctx: &Context, dataset_dir: &Path, dataset: &Dataset, config: &PipelineConfig) -> Result<EvalIndex> {
    let embedder_name = embedder_name(ctx, config);
    let chunking = config.chunking.clone().unwrap_or_else(|| dataset.default_chunking());
    let name = collection_name(dataset_dir, &embedder_name, &chunking);
    let dir = ctx.collection_dir(&name);
    let embedder = lore_models::load_embedder(&embedder_name, &ctx.home)?;
    let mut collection = if dir.exists() {
        Collection::open(&dir)?
    } else {
        Collection::create(&dir, &embedder_name, embedder.dimension(), chunking.clone())?
    };
    if collection.manifest().chunking != chunking {
        bail!(
            "collection {} cuts documents with {:?}, not {chunking:?}: delete it with `lore collections delete {name}`",
            dir.display(),
            collection.manifest().chunking
        );
    }
    let wanted: HashSet<&str> = dataset.documents().iter().map(|d| d.source.as_str()).collect();
    for stale in collection.documents()?.into_iter().filter(|d| !wanted.contains(d.source.as_str())) {
        collection.delete_document(&stale.source)?;
    }
    let sources: Vec<Source> = dataset.documents().iter().cloned().map(Source::Document).collect();
    let bar = progress_bar(sources.len(), &format!("ingesting into {name}"));
    let started = Instant::now();
    let report = ingest(&mut collection, embedder.as_ref(), &chunking, sources, &mut |p| {
        bar.set_position(p.sources_done as u64);
    })?;
    bar.finish_and_clear();
    if let Some((source, reason)) = report.failed.first() {
        bail!("{} documents could not be ingested, the first {source}: {reason}", report.failed.len());
    }
    Ok(EvalIndex {
        name,
        collection,
        embedder,
        ingest_seconds: started.elapsed().as_secs_f64(),
        embedded_chunks: report.chunks,
    })
}

pub fn progress_bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} [{elapsed}, ETA {eta}]") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Chat models by name, each loaded once.
#[derive(Default)]
pub struct ChatModels {
    loaded: HashMap<String, Box<dyn ChatModel>>,
}

impl ChatModels {
    pub fn load(&mut self, ctx: &Context, name: &str) -> Result<()> {
        if !self.loaded.contains_key(name) {
            let model = lore_models::load_chat(name, &ctx.home)?;
            self.loaded.insert(name.to_string(), model);
        }
        Ok(())
    }

    /// A model [`ChatModels::load`] loaded.
    pub fn get(&self, name: &str) -> Result<&dyn ChatModel> {
        match self.loaded.get(name) {
            Some(model) => Ok(model.as_ref()),
            None => bail!("chat model {name} was not loaded"),
        }
    }
}

/// Where judge and grounding replies are cached.
pub fn reply_cache(ctx: &Context) -> Result<PathBuf> {
    let dir = ctx.home.join("eval-cache");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.join("replies.jsonl"))
}

fn retrieval(ctx: &Context, args: RetrievalArgs) -> Result<()> {
    let dataset = load_dataset(&args.dataset)?;
    let Some((queries, qrels)) = dataset.judged() else {
        bail!(
            "{} has no relevance judgements (qrels/), so retrieval cannot be scored on it; \
             `lore eval qa` measures retrieval there as answer-in-context",
            args.dataset.dataset.display()
        );
    };
    let queries = match args.dataset.limit {
        Some(n) => sample(queries, n, |q| q.id.as_str()),
        None => queries.to_vec(),
    };
    let qrels = qrels_of(qrels, &queries);
    let (pipeline_name, mut config) = lore_rag::load_pipeline(&args.pipeline)?;
    let index = open_index(ctx, &args.dataset.dataset, &dataset, &config)?;
    let stats = index.collection.stats()?;
    config.top_k = chunk_depth(stats.documents, stats.chunks);
    // Rewriting and LLM reranking use the pipeline's chat model (else lore.toml's, else qwen-0.5b).
    let models =
        crate::ask::PipelineModels::load(ctx, &config, &generator(ctx, [args.llm.as_ref(), config.llm.as_ref()]))?;
    let pipeline = models.attach(Pipeline::new(&index.collection, index.embedder.as_ref(), config)?);

    let bar = progress_bar(queries.len(), "retrieving");
    let started = Instant::now();
    let ranked = rank_documents(&pipeline, &queries, &mut || bar.inc(1))?;
    let query_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let report = evaluate(&as_run(&ranked), &qrels, &CUTOFFS);
    let metrics = headline_metrics(&report.mean);

    if let Some(path) = &args.per_query {
        let mut out = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        for result in &ranked {
            let Some(per_query) = report.per_query.get(&result.query_id) else { continue };
            let judged = &qrels[&result.query_id];
            let line = json!({
                "query_id": result.query_id,
                "metrics": headline_metrics(per_query).into_iter().collect::<BTreeMap<_, _>>(),
                "top10": result.documents.iter().take(10).map(|(doc, score)| {
                    json!({"document": doc, "score": score, "grade": judged.get(doc)})
                }).collect::<Vec<_>>(),
                "relevant": judged.iter().filter(|(_, g)| **g > 0).map(|(d, _)| d).collect::<Vec<_>>(),
            });
            writeln!(out, "{line}")?;
        }
    }
    let n = ranked.len().max(1) as f64;
    let timings = json!({
        "ingest_s": index.ingest_seconds,
        "embedded_chunks": index.embedded_chunks,
        "queries_s": query_seconds,
        "rewrite_ms_per_query": ranked.iter().map(|r| r.rewrite_ms).sum::<f64>() / n,
        "embed_ms_per_query": ranked.iter().map(|r| r.embed_ms).sum::<f64>() / n,
        "search_ms_per_query": ranked.iter().map(|r| r.search_ms).sum::<f64>() / n,
        "rerank_ms_per_query": ranked.iter().map(|r| r.rerank_ms).sum::<f64>() / n,
    });
    if args.json {
        return print_json(&json!({
            "dataset": dataset_name(&args.dataset.dataset),
            "split": args.dataset.split,
            "pipeline": pipeline_name,
            "collection": index.name,
            "queries": report.per_query.len(),
            "metrics": metrics.iter().cloned().collect::<BTreeMap<_, _>>(),
            "timings": timings,
        }));
    }
    println!(
        "{} ({} split, {} queries), pipeline {pipeline_name}, collection {}",
        dataset_name(&args.dataset.dataset),
        args.dataset.split,
        report.per_query.len(),
        index.name
    );
    for (name, value) in &metrics {
        println!("  {name:<11} {value:.4}");
    }
    eprintln!(
        "ingest {:.1} s ({} chunks embedded), queries {query_seconds:.1} s",
        index.ingest_seconds, index.embedded_chunks
    );
    Ok(())
}

/// The chat model that answers: the first of `choices` given, else `llm` in lore.toml, else
/// qwen-0.5b.
pub fn generator(ctx: &Context, choices: [Option<&String>; 2]) -> String {
    choices.into_iter().flatten().next().or(ctx.config.llm.as_ref()).cloned().unwrap_or_else(|| "qwen-0.5b".into())
}

fn qa(ctx: &Context, args: QaArgs) -> Result<()> {
    let dataset = load_dataset(&args.dataset)?;
    let items = questions(&dataset, &args.dataset)?;
    let (pipeline_name, config) = lore_rag::load_pipeline(&args.pipeline)?;
    if args.context_only && Pipeline::needs_chat(&config) {
        bail!("pipeline {pipeline_name} rewrites or reranks with a chat model, which --context-only does not run");
    }
    let index = open_index(ctx, &args.dataset.dataset, &dataset, &config)?;
    if args.context_only {
        let pipeline = Pipeline::new(&index.collection, index.embedder.as_ref(), config)?;
        return context_coverage(&args, &pipeline_name, &index.name, &pipeline, &items);
    }
    let llm = generator(ctx, [args.llm.as_ref(), config.llm.as_ref()]);
    let mut models = ChatModels::default();
    models.load(ctx, &llm)?;
    if let Some(judge) = &args.scoring.judge {
        models.load(ctx, judge)?;
    }
    let chat = models.get(&llm)?;
    let pipeline = Pipeline::new(&index.collection, index.embedder.as_ref(), config)?;
    let cache = reply_cache(ctx)?;
    let judge_model = args.scoring.judge.as_deref().map(|name| models.get(name)).transpose()?;
    let judge = judge_model.map(|model| Judge::new(model, Some(&cache))).transpose()?;
    let grounding_model = judge_model.unwrap_or(chat);
    let grounding = args
        .scoring
        .grounding
        .then(|| Grounding::new(grounding_model, index.embedder.as_ref(), Some(&cache)))
        .transpose()?;

    let bar = progress_bar(items.len(), "answering");
    let mut answered = Vec::with_capacity(items.len());
    for item in &items {
        answered.push(answer_question(&pipeline, &index.collection, chat, item, judge.as_ref(), grounding.as_ref())?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(path) = &args.per_question {
        write_jsonl(path, &answered)?;
    }
    let report = QaReport::of(&answered);
    if args.json {
        return print_json(&json!({
            "dataset": dataset_name(&args.dataset.dataset),
            "pipeline": pipeline_name,
            "llm": llm,
            "judge": args.scoring.judge,
            "collection": index.name,
            "questions": answered.len(),
            "report": report,
        }));
    }
    println!(
        "{}: {} questions, pipeline {pipeline_name}, generator {llm}, collection {}",
        dataset_name(&args.dataset.dataset),
        answered.len(),
        index.name
    );
    print_qa_report(&report);
    Ok(())
}

/// `eval qa --context-only`: answer in context over the answerable questions, and the retrieval
/// time per question.
fn context_coverage(
    args: &QaArgs,
    pipeline_name: &str,
    collection: &str,
    pipeline: &Pipeline,
    items: &[QaItem],
) -> Result<()> {
    let bar = progress_bar(items.len(), "retrieving");
    let started = Instant::now();
    let mut found = Vec::with_capacity(items.len());
    for item in items {
        found.extend(answer_retrieved(pipeline, item)?.map(|hit| Some(f64::from(hit))));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let retrieval_ms = started.elapsed().as_secs_f64() * 1e3 / items.len().max(1) as f64;
    let coverage = lore_eval::Mean::of(found);
    if args.json {
        return print_json(&json!({
            "dataset": dataset_name(&args.dataset.dataset),
            "pipeline": pipeline_name,
            "collection": collection,
            "questions": items.len(),
            "answer_in_context": coverage,
            "retrieval_ms_per_question": retrieval_ms,
        }));
    }
    println!(
        "{}: {} questions, pipeline {pipeline_name}, collection {collection}, retrieval only",
        dataset_name(&args.dataset.dataset),
        items.len()
    );
    println!("  answer in context  {}", mean_text(&coverage));
    println!("  retrieval          {retrieval_ms:.0} ms per question");
    Ok(())
}

pub fn write_jsonl(path: &Path, answered: &[AnsweredQuestion]) -> Result<()> {
    let mut out = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    for a in answered {
        writeln!(out, "{}", serde_json::to_string(a)?)?;
    }
    Ok(())
}

/// `0.532 (48 scored, 2 failed)`, or `n/a` when nothing was scored.
pub fn mean_text(mean: &lore_eval::Mean) -> String {
    let failed = if mean.failed > 0 { format!(", {} failed", mean.failed) } else { String::new() };
    match mean.value {
        Some(v) => format!("{v:.3} ({} scored{failed})", mean.scored),
        None => format!("n/a (0 scored{failed})"),
    }
}

fn print_qa_report(report: &QaReport) {
    let qa = &report.qa;
    let refusal = &qa.refusal;
    println!("  exact match        {}", mean_text(&qa.exact_match));
    println!("  F1                 {}", mean_text(&qa.f1));
    println!("  ROUGE-L            {}", mean_text(&qa.rouge_l));
    println!("  answer in context  {}", mean_text(&qa.answer_in_context));
    println!(
        "  refusal accuracy   {} (unanswerable: {} refused, {} answered; answerable: {} refused, {} answered)",
        qa.refusal_accuracy.map_or("n/a".into(), |a| format!("{a:.3}")),
        refusal.refused_unanswerable,
        refusal.answered_unanswerable,
        refusal.refused_answerable,
        refusal.answered_answerable
    );
    if let Some(judge) = &report.judge {
        print_judge_summary(judge);
    }
    if let Some(g) = &report.grounding {
        println!("  faithfulness       {}", mean_text(&g.faithfulness));
        println!("  answer relevancy   {}", mean_text(&g.answer_relevancy));
        println!("  context precision  {}", mean_text(&g.context_precision));
        println!("  context recall     {}", mean_text(&g.context_recall));
    }
    println!(
        "  latency            {:.0} ms per question (retrieval {:.0} ms, generation {:.0} ms)",
        report.latency_ms, report.retrieval_ms, report.generation_ms
    );
    println!(
        "  tokens             {:.0} prompt + {:.0} answer per question",
        report.prompt_tokens, report.completion_tokens
    );
}

fn print_judge_summary(judge: &JudgeSummary) {
    println!("  judge score (1-5)  {}", mean_text(&judge.score));
    println!("    correctness      {}", mean_text(&judge.correctness));
    println!("    completeness     {}", mean_text(&judge.completeness));
    println!("    clarity          {}", mean_text(&judge.clarity));
}

#[derive(Deserialize)]
struct JudgeLine {
    question: String,
    gold: String,
    answer: String,
}

fn judge(ctx: &Context, args: JudgeArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let parsed: JudgeLine = serde_json::from_str(line).with_context(|| {
            format!("{} line {}: expected {{\"question\", \"gold\", \"answer\"}}", args.input.display(), i + 1)
        })?;
        lines.push(parsed);
    }
    let chat = lore_models::load_chat(&args.judge, &ctx.home)?;
    let judge = Judge::new(chat.as_ref(), Some(&reply_cache(ctx)?))?;
    let bar = progress_bar(lines.len(), "judging");
    let mut outcomes = Vec::with_capacity(lines.len());
    for line in &lines {
        outcomes.push(judge.judge(&line.question, &line.gold, &line.answer)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let summary = JudgeSummary::of(&outcomes);
    if args.json {
        return print_json(
            &json!({"judge": args.judge, "items": lines.len(), "summary": summary, "judgements": outcomes}),
        );
    }
    for (i, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Ok(j) => println!(
                "{:>3}. {:.2}  (correctness {}, completeness {}, clarity {})",
                i + 1,
                j.scores.mean(),
                j.scores.correctness,
                j.scores.completeness,
                j.scores.clarity
            ),
            Err(failure) => println!("{:>3}. unscored after {} attempts: {}", i + 1, failure.attempts, failure.reason),
        }
    }
    println!("{} answers judged by {}", lines.len(), args.judge);
    print_judge_summary(&summary);
    Ok(())
}

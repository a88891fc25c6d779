use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use lore_core::{ChatModel, Embedder, Filter, GenerationOptions, PipelineConfig, RerankKind, Reranker};
use lore_index::Collection;
use lore_rag::{Explanation, Pipeline, Ranked, Retrieval};
use serde_json::{Value, json};

use crate::{Context, print_json};

#[derive(Args)]
pub struct RetrievalArgs {
    /// Collection to search.
    #[arg(short, long, env = "LORE_COLLECTION")]
    collection: Option<String>,
    /// Pipeline preset (dense, bm25, hybrid, hybrid-zscore, hybrid-rerank, hyde, multi-query,
    /// step-back, tutorial) or a TOML file of pipeline settings [default: `pipeline` in lore.toml,
    /// else dense].
    #[arg(long, env = "LORE_PIPELINE")]
    pipeline: Option<String>,
    /// How many chunks to retrieve [default: the pipeline's, 5 for the presets].
    #[arg(short = 'k', long)]
    top_k: Option<usize>,
    /// Ignore dense hits whose cosine similarity is below this [default: the pipeline's].
    #[arg(long)]
    min_score: Option<f32>,
    /// Only chunks whose metadata field matches, applied inside every search (repeat to combine):
    /// FIELD=VALUE, FIELD>=NUMBER, FIELD<=NUMBER, or "FIELD in A,B,C".
    #[arg(long = "where", value_name = "CONDITION")]
    conditions: Vec<String>,
    /// Only chunks of this document (its source as ingested; repeat for several).
    #[arg(long = "doc", value_name = "SOURCE")]
    documents: Vec<String>,
    /// Only chunks of documents whose source starts with this (a folder, a URL prefix).
    #[arg(long, value_name = "PREFIX")]
    source_prefix: Option<String>,
    /// Show how the hits were found: the rewrites, each retriever's hits, the fused order and
    /// the reranker's scores (with --json, as an "explanation" object).
    #[arg(long)]
    explain: bool,
}

#[derive(Args)]
pub struct QueryArgs {
    text: String,
    #[command(flatten)]
    retrieval: RetrievalArgs,
    /// Chat model for pipelines that rewrite queries or rerank with it (not loaded otherwise):
    /// as for `lore ask --llm` [default: the pipeline's, else qwen-0.5b].
    #[arg(long, env = "LORE_LLM")]
    llm: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct GenerationArgs {
    /// Chat model: a model name (qwen-0.5b, qwen-1.5b, smollm2), a GGUF path, or
    /// openai:MODEL@BASE_URL (API key from OPENAI_API_KEY) [default: the pipeline's, else qwen-0.5b].
    #[arg(long, env = "LORE_LLM")]
    llm: Option<String>,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = 512)]
    max_tokens: usize,
    /// 0 is greedy (deterministic) decoding.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Args)]
pub struct AskArgs {
    question: String,
    #[command(flatten)]
    retrieval: RetrievalArgs,
    #[command(flatten)]
    generation: GenerationArgs,
    /// Print one JSON object (answer, citations, timings) instead of streaming text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct QuickstartArgs {
    /// Folder of documents to ingest [default: this project's docs/].
    #[arg(long)]
    docs: Option<PathBuf>,
    /// Question to ask about them.
    #[arg(long, default_value = "Which command installs the models Lore needs?")]
    question: String,
    #[command(flatten)]
    generation: GenerationArgs,
}

struct Opened {
    collection: Collection,
    embedder: Box<dyn Embedder>,
    config: PipelineConfig,
    filter: Option<Filter>,
}

fn open(ctx: &Context, args: &RetrievalArgs, generation: Option<&GenerationArgs>) -> Result<Opened> {
    let name = ctx.collection_name(args.collection.clone());
    let dir = ctx.collection_dir(&name);
    if !dir.exists() {
        bail!("no collection '{name}' in {}: create it with `lore ingest PATH -c {name}`", dir.display());
    }
    let collection = Collection::open(&dir)?;
    let embedder = lore_models::load_embedder(&collection.manifest().embedder, &ctx.home)?;
    let pipeline = args.pipeline.clone().or_else(|| ctx.config.pipeline.clone()).unwrap_or_else(|| "dense".into());
    let (_, mut config) = lore_rag::load_pipeline(&pipeline)?;
    if let Some(top_k) = args.top_k.or(ctx.config.top_k) {
        config.top_k = top_k;
    }
    if let Some(min_score) = args.min_score {
        config.min_score = min_score;
    }
    if let Some(g) = generation {
        config.generation =
            GenerationOptions { max_tokens: g.max_tokens, temperature: g.temperature, top_p: g.top_p, seed: g.seed };
    }
    Ok(Opened { collection, embedder, config, filter: filter(args)? })
}

/// The conjunction of the filter flags, if any was given.
fn filter(args: &RetrievalArgs) -> Result<Option<Filter>> {
    let mut all: Vec<Filter> = args.conditions.iter().map(|c| condition(c)).collect::<Result<_>>()?;
    match args.documents.as_slice() {
        [] => {}
        [one] => all.push(Filter::source(one.clone())),
        many => all.push(Filter::one_of("source", many.iter().map(|s| Value::String(s.clone())))),
    }
    if let Some(prefix) = &args.source_prefix {
        all.push(Filter::source_prefix(prefix.clone()));
    }
    Ok(match all.len() {
        0 => None,
        1 => all.pop(),
        _ => Some(Filter::All(all)),
    })
}

/// One `--where` condition: `FIELD in A,B`, `FIELD>=X`, `FIELD<=X` or `FIELD=VALUE`.
fn condition(text: &str) -> Result<Filter> {
    let usage = || {
        format!(
            "--where {text:?}: write FIELD=VALUE, FIELD>=NUMBER, FIELD<=NUMBER or \"FIELD in A,B\" (e.g. year>=2020)"
        )
    };
    let field_of = |field: &str| {
        let field = field.trim();
        if field.is_empty() || field.contains(char::is_whitespace) {
            Err(anyhow::anyhow!(usage()))
        } else {
            Ok(field.to_string())
        }
    };
    if let Some((field, values)) = text.split_once(" in ") {
        return Ok(Filter::one_of(field_of(field)?, values.split(',').flat_map(|v| value_forms(v.trim()))));
    }
    for (operator, is_min) in [(">=", true), ("<=", false)] {
        if let Some((field, number)) = text.split_once(operator) {
            let number: f64 =
                number.trim().parse().map_err(|_| anyhow::anyhow!("{}: {number:?} is not a number", usage()))?;
            let (min, max) = if is_min { (Some(number), None) } else { (None, Some(number)) };
            return Ok(Filter::range(field_of(field)?, min, max));
        }
    }
    match text.split_once('=') {
        Some((field, value)) => Ok(Filter::one_of(field_of(field)?, value_forms(value.trim()))),
        None => bail!(usage()),
    }
}

/// What a value typed on the command line may stand for in metadata: `2023` is the number and
/// the text, `true` the boolean and the text, anything else text.
fn value_forms(text: &str) -> Vec<Value> {
    let text_form = Value::String(text.to_string());
    match serde_json::from_str::<Value>(text) {
        Ok(typed @ (Value::Number(_) | Value::Bool(_))) => vec![typed, text_form],
        _ => vec![text_form],
    }
}

/// The models a pipeline needs besides the embedder and the generator's own chat model.
pub struct PipelineModels {
    pub chat: Option<Box<dyn ChatModel>>,
    pub reranker: Option<Box<dyn Reranker>>,
}

impl PipelineModels {
    /// Loads the chat model `chat_name` if the pipeline rewrites or reranks with one, and its
    /// cross-encoder if it has one.
    pub fn load(ctx: &Context, config: &PipelineConfig, chat_name: &str) -> Result<PipelineModels> {
        let chat =
            if Pipeline::needs_chat(config) { Some(lore_models::load_chat(chat_name, &ctx.home)?) } else { None };
        Ok(PipelineModels { chat, reranker: Self::cross_encoder(ctx, config)? })
    }

    /// The pipeline's cross-encoder, when it reranks with one.
    pub fn cross_encoder(ctx: &Context, config: &PipelineConfig) -> Result<Option<Box<dyn Reranker>>> {
        Ok(match (config.rerank.kind, &config.rerank.model) {
            (RerankKind::CrossEncoder, Some(model)) => Some(lore_models::load_reranker(model, &ctx.home)?),
            (RerankKind::CrossEncoder, None) => {
                bail!("the pipeline reranks with a cross-encoder but names none: set rerank.model to its folder")
            }
            _ => None,
        })
    }

    /// `pipeline` with these models attached.
    pub fn attach<'a>(&'a self, mut pipeline: Pipeline<'a>) -> Pipeline<'a> {
        if let Some(chat) = &self.chat {
            pipeline = pipeline.with_chat(chat.as_ref());
        }
        if let Some(reranker) = &self.reranker {
            pipeline = pipeline.with_reranker(reranker.as_ref());
        }
        pipeline
    }
}

fn pipeline<'a>(opened: &'a Opened, models: &'a PipelineModels) -> Result<Pipeline<'a>> {
    let mut pipeline = Pipeline::new(&opened.collection, opened.embedder.as_ref(), opened.config.clone())?;
    if let Some(filter) = &opened.filter {
        pipeline = pipeline.with_filter(filter.clone());
    }
    Ok(models.attach(pipeline))
}

pub fn query(ctx: &Context, args: QueryArgs) -> Result<()> {
    let opened = open(ctx, &args.retrieval, None)?;
    let llm = crate::eval::generator(ctx, [args.llm.as_ref(), opened.config.llm.as_ref()]);
    let models = PipelineModels::load(ctx, &opened.config, &llm)?;
    let found = pipeline(&opened, &models)?.retrieve(&args.text)?;
    if args.json {
        let mut out = json!({
            "query": args.text,
            "hits": found.hits,
            "timings": timings(&found),
        });
        if args.retrieval.explain {
            out["explanation"] = serde_json::to_value(&found.explanation)?;
        }
        return print_json(&out);
    }
    if args.retrieval.explain {
        print_explanation(&found.explanation);
        println!("Results:");
    }
    for (i, hit) in found.hits.iter().enumerate() {
        println!("{}. {:.4}  {}  (chunk {})", i + 1, hit.score, hit.source, hit.chunk_id);
        println!("   {}", one_line(&hit.text, 200));
    }
    eprintln!("{}", timing_line(&found));
    Ok(())
}

fn timings(found: &Retrieval) -> Value {
    json!({
        "rewrite_ms": found.rewrite_ms,
        "embed_ms": found.embed_ms,
        "search_ms": found.search_ms,
        "rerank_ms": found.rerank_ms,
    })
}

fn timing_line(found: &Retrieval) -> String {
    let mut line = String::new();
    if found.rewrite_ms > 0.0 {
        line.push_str(&format!("rewrite {:.0} ms, ", found.rewrite_ms));
    }
    line.push_str(&format!("embed {:.1} ms, search {:.2} ms", found.embed_ms, found.search_ms));
    if found.explanation.rerank.is_some() {
        line.push_str(&format!(", rerank {:.0} ms", found.rerank_ms));
    }
    line
}

/// Lists in the explanation are cut to this many entries on screen (all are in --json).
const EXPLAINED_HITS: usize = 10;

fn print_explanation(explanation: &Explanation) {
    println!("Searched:");
    for (i, query) in explanation.queries.iter().enumerate() {
        let role =
            serde_json::to_value(query.role).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        println!("  [{i}] {role}: {}", one_line(&query.text, 160));
    }
    for list in &explanation.lists {
        let retriever = match list.retriever {
            lore_rag::Retriever::Dense => "dense (cosine)",
            lore_rag::Retriever::Keyword => "keyword (BM25)",
        };
        println!("{retriever} hits for [{}], {} in all:", list.query, list.hits.len());
        print_ranked(&list.hits);
    }
    if !explanation.fused.is_empty() {
        let fusion = serde_json::to_value(explanation.fusion).ok().and_then(|v| v.as_str().map(str::to_string));
        println!("Fused ({}), {} in all:", fusion.unwrap_or_default(), explanation.fused.len());
        print_ranked(&explanation.fused);
    }
    if let Some(rerank) = &explanation.rerank {
        let kind = serde_json::to_value(rerank.kind).ok().and_then(|v| v.as_str().map(str::to_string));
        let model = rerank.model.as_ref().map(|m| format!(" by {m}")).unwrap_or_default();
        println!("Reranked ({}{model}), {} candidates:", kind.unwrap_or_default(), rerank.scores.len());
        print_ranked(&rerank.scores);
    }
}

fn print_ranked(ranked: &[Ranked]) {
    for (i, r) in ranked.iter().take(EXPLAINED_HITS).enumerate() {
        println!("  {:>3}. {:>9.4}  {}  (chunk {})", i + 1, r.score, r.source, r.chunk_id);
    }
    if ranked.len() > EXPLAINED_HITS {
        println!("       … {} more", ranked.len() - EXPLAINED_HITS);
    }
}

pub fn ask(ctx: &Context, args: AskArgs) -> Result<()> {
    let opened = open(ctx, &args.retrieval, Some(&args.generation))?;
    answer(ctx, &opened, &args.question, &args.generation, args.json, args.retrieval.explain)
}

fn answer(
    ctx: &Context,
    opened: &Opened,
    question: &str,
    generation: &GenerationArgs,
    json: bool,
    explain: bool,
) -> Result<()> {
    let llm = crate::eval::generator(ctx, [generation.llm.as_ref(), opened.config.llm.as_ref()]);
    let chat = lore_models::load_chat(&llm, &ctx.home)?;
    // The generator also rewrites and judges when the pipeline asks for a chat model.
    let models = PipelineModels { chat: None, reranker: PipelineModels::cross_encoder(ctx, &opened.config)? };
    let pipeline = pipeline(opened, &models)?.with_chat(chat.as_ref());
    let retrieval = pipeline.retrieve(question)?;
    if explain && !json {
        print_explanation(&retrieval.explanation);
        println!();
    }
    let mut stdout = std::io::stdout();
    let answer = pipeline.answer_from(chat.as_ref(), question, &retrieval, &mut |piece| {
        if !json {
            let _ = write!(stdout, "{piece}");
            let _ = stdout.flush();
        }
    })?;
    if json {
        let mut out = json!({
            "question": answer.question,
            "answer": answer.text,
            "refused": answer.refused,
            "llm": llm,
            "citations": answer.citations.iter().map(|c| {
                let chunk = opened.collection.chunk(c.chunk_id).ok().flatten();
                json!({"n": c.n, "chunk_id": c.chunk_id, "document": c.source, "score": c.score, "cited": c.cited,
                       "text": chunk.map(|h| h.text)})
            }).collect::<Vec<_>>(),
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "timings": answer.timings,
        });
        if explain {
            out["explanation"] = serde_json::to_value(&retrieval.explanation)?;
        }
        return print_json(&out);
    }
    println!("\n");
    if !answer.refused {
        println!("Sources:");
        for c in &answer.citations {
            let mark = if c.cited { "*" } else { " " };
            println!(" {mark}[{}] {} (score {:.3}, chunk {})", c.n, c.source, c.score, c.chunk_id);
        }
    }
    eprintln!(
        "retrieval {:.0} ms, generation {:.0} ms ({} prompt + {} answer tokens)",
        answer.timings.rewrite_ms + answer.timings.embed_ms + answer.timings.search_ms + answer.timings.rerank_ms,
        answer.timings.generate_ms,
        answer.prompt_tokens,
        answer.completion_tokens
    );
    Ok(())
}

pub fn quickstart(ctx: &Context, args: QuickstartArgs) -> Result<()> {
    let llm = args.generation.llm.clone().unwrap_or_else(|| "qwen-0.5b".into());
    for name in ["e5-small", llm.as_str()] {
        if let Ok(spec) = lore_models::spec(name) {
            crate::models::pull(ctx, &spec)?;
        }
    }
    let docs = args.docs.clone().unwrap_or_else(default_docs);
    eprintln!("ingesting {} into collection 'lore-docs'", docs.display());
    crate::ingest::run(ctx, crate::ingest::IngestArgs::for_folder(docs, "lore-docs"))?;
    let retrieval = RetrievalArgs {
        collection: Some("lore-docs".into()),
        pipeline: Some("dense".into()),
        top_k: Some(3),
        min_score: None,
        conditions: Vec::new(),
        documents: Vec::new(),
        source_prefix: None,
        explain: false,
    };
    let opened = open(ctx, &retrieval, Some(&args.generation))?;
    println!("Q: {}\n", args.question);
    answer(ctx, &opened, &args.question, &GenerationArgs { llm: Some(llm), ..args.generation }, false, false)
}

/// `docs/` in the working directory when run from a checkout, else the checkout this binary
/// was built from.
fn default_docs() -> PathBuf {
    let here = PathBuf::from("docs");
    if here.is_dir() { here } else { PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs")) }
}

fn one_line(text: &str, max_chars: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

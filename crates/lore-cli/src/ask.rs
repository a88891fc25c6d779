use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use lore_core::{Embedder, GenerationOptions, PipelineConfig};
use lore_index::Collection;
use lore_rag::Pipeline;
use serde_json::json;

use crate::{Context, print_json};

#[derive(Args)]
pub struct RetrievalArgs {
    /// Collection to search.
    #[arg(short, long, env = "LORE_COLLECTION")]
    collection: Option<String>,
    /// How many chunks to retrieve [default: 5].
    #[arg(short = 'k', long)]
    top_k: Option<usize>,
    /// Ignore chunks whose cosine similarity is below this.
    #[arg(long, default_value_t = 0.0)]
    min_score: f32,
}

#[derive(Args)]
pub struct QueryArgs {
    text: String,
    #[command(flatten)]
    retrieval: RetrievalArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct GenerationArgs {
    /// Chat model: a model name (qwen-0.5b, qwen-1.5b, smollm2), a GGUF path, or
    /// openai:MODEL@BASE_URL (API key from OPENAI_API_KEY) [default: qwen-0.5b].
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
}

fn open(ctx: &Context, args: &RetrievalArgs, generation: Option<&GenerationArgs>) -> Result<Opened> {
    let name = ctx.collection_name(args.collection.clone());
    let dir = ctx.collection_dir(&name);
    if !dir.exists() {
        bail!("no collection '{name}' in {}: create it with `lore ingest PATH -c {name}`", dir.display());
    }
    let collection = Collection::open(&dir)?;
    let embedder = lore_models::load_embedder(&collection.manifest().embedder, &ctx.home)?;
    let mut config = PipelineConfig {
        top_k: args.top_k.or(ctx.config.top_k).unwrap_or(5),
        min_score: args.min_score,
        ..PipelineConfig::default()
    };
    if let Some(g) = generation {
        config.generation =
            GenerationOptions { max_tokens: g.max_tokens, temperature: g.temperature, top_p: g.top_p, seed: g.seed };
    }
    Ok(Opened { collection, embedder, config })
}

pub fn query(ctx: &Context, args: QueryArgs) -> Result<()> {
    let opened = open(ctx, &args.retrieval, None)?;
    let pipeline = Pipeline::new(&opened.collection, opened.embedder.as_ref(), opened.config)?;
    let found = pipeline.retrieve(&args.text)?;
    if args.json {
        return print_json(&json!({
            "query": args.text,
            "hits": found.hits,
            "timings": { "embed_ms": found.embed_ms, "search_ms": found.search_ms },
        }));
    }
    for (i, hit) in found.hits.iter().enumerate() {
        println!("{}. {:.4}  {}  (chunk {})", i + 1, hit.score, hit.source, hit.chunk_id);
        println!("   {}", one_line(&hit.text, 200));
    }
    eprintln!("embed {:.1} ms, search {:.2} ms", found.embed_ms, found.search_ms);
    Ok(())
}

pub fn ask(ctx: &Context, args: AskArgs) -> Result<()> {
    let opened = open(ctx, &args.retrieval, Some(&args.generation))?;
    answer(ctx, &opened, &args.question, &args.generation, args.json)
}

fn answer(ctx: &Context, opened: &Opened, question: &str, generation: &GenerationArgs, json: bool) -> Result<()> {
    let llm = generation.llm.clone().or_else(|| ctx.config.llm.clone()).unwrap_or_else(|| "qwen-0.5b".into());
    let chat = lore_models::load_chat(&llm, &ctx.home)?;
    let pipeline = Pipeline::new(&opened.collection, opened.embedder.as_ref(), opened.config.clone())?;
    let mut stdout = std::io::stdout();
    let answer = pipeline.answer(chat.as_ref(), question, &mut |piece| {
        if !json {
            let _ = write!(stdout, "{piece}");
            let _ = stdout.flush();
        }
    })?;
    if json {
        return print_json(&json!({
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
        }));
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
        answer.timings.embed_ms + answer.timings.search_ms,
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
    let retrieval = RetrievalArgs { collection: Some("lore-docs".into()), top_k: Some(3), min_score: 0.0 };
    let opened = open(ctx, &retrieval, Some(&args.generation))?;
    println!("Q: {}\n", args.question);
    answer(ctx, &opened, &args.question, &GenerationArgs { llm: Some(llm), ..args.generation }, false)
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

//! `lore bench`: the engine's benchmarks, printed.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use lore_engine::{DEFAULT_EMBEDDER, DEFAULT_LLM, Engine};

use crate::output::{Bars, print_json};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Passages embedded per second by a model (compare with bench/embed.sh's peer).
    Embed {
        /// Embedder name or path.
        #[arg(long, default_value = DEFAULT_EMBEDDER)]
        model: String,
        /// Texts: a .jsonl file (its "title" and "text" fields, as in BEIR) or one text per line.
        #[arg(long)]
        texts: PathBuf,
        /// How many texts to embed.
        #[arg(long, default_value_t = 500)]
        limit: usize,
        /// Cut each text to this many of the model's tokens first.
        #[arg(long, default_value_t = 128)]
        max_tokens: usize,
        #[arg(long)]
        json: bool,
    },
    /// Latency of `lore query` (question embedding + search) over many queries, model loaded once.
    Query {
        #[arg(short, long, env = "LORE_COLLECTION")]
        collection: Option<String>,
        /// Queries: a .jsonl file (its "text" field, as BEIR queries.jsonl) or one per line.
        #[arg(long)]
        queries: PathBuf,
        #[arg(short = 'n', long, default_value_t = 100)]
        count: usize,
        #[arg(short = 'k', long, default_value_t = 10)]
        top_k: usize,
        #[arg(long)]
        json: bool,
    },
    /// Files/s, chunks/s, MB/s and peak memory of ingesting folders (into a temporary collection).
    Ingest {
        /// Files or folders to ingest, into a temporary collection that is deleted afterwards.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Parse, chunk and store with a placeholder vector instead of embedding.
        #[arg(long)]
        no_embed: bool,
        /// Embedder name or path.
        #[arg(long, default_value = DEFAULT_EMBEDDER)]
        embedder: String,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Load time, prefill and decode tokens/s, scoring with a shared prefix, and peak memory of a
    /// chat model, on a generated English prompt.
    Generate {
        /// Chat model: a name (qwen-0.5b, qwen-1.5b, smollm2), a GGUF path or openai:MODEL@URL.
        #[arg(long, default_value = DEFAULT_LLM)]
        llm: String,
        /// Length of the prompt, in the model's tokens (approximately: whole sentences are added).
        #[arg(long, default_value_t = 430)]
        prompt_tokens: usize,
        /// Tokens to generate (fewer when the model ends its reply).
        #[arg(long, default_value_t = 64)]
        max_tokens: usize,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(engine: &Engine, cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Embed { model, texts, limit, max_tokens, json } => {
            show(&engine.bench_embed(&model, &texts, limit, max_tokens)?, json)
        }
        BenchCommand::Query { collection, queries, count, top_k, json } => {
            show(&engine.bench_query(collection.as_deref(), &queries, count, top_k)?, json)
        }
        BenchCommand::Ingest { paths, no_embed, embedder, json } => {
            let figures = engine.bench_ingest(&paths, (!no_embed).then_some(embedder.as_str()), &Bars::default())?;
            show(&figures, json)
        }
        BenchCommand::Generate { llm, prompt_tokens, max_tokens, json } => {
            show(&engine.bench_generate(&llm, prompt_tokens, max_tokens)?, json)
        }
    }
}

/// The figures as JSON, or as the record's lines of text.
fn show(figures: &(impl serde::Serialize + std::fmt::Display), json: bool) -> Result<()> {
    if json {
        return print_json(figures);
    }
    println!("{figures}");
    Ok(())
}

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use lore_core::{EmbedKind, PipelineConfig};
use lore_index::Collection;
use lore_rag::Pipeline;
use serde_json::json;

use crate::{Context, print_json};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Passages embedded per second by a model (compare with bench/embed.sh's peer).
    Embed {
        /// Embedder name or path.
        #[arg(long, default_value = "e5-small")]
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
    Ingest(crate::ingest::BenchIngestArgs),
}

/// Texts from a JSON-lines file (title + text) or a plain file (one per line).
fn read_texts(path: &Path, limit: usize) -> Result<Vec<String>> {
    let content = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let is_jsonl = path.extension().is_some_and(|e| e == "jsonl");
    let mut texts = Vec::new();
    for line in content.lines().filter(|l| !l.trim().is_empty()).take(limit) {
        if is_jsonl {
            let record: serde_json::Value = serde_json::from_str(line)?;
            let field = |k: &str| record.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            texts.push(
                [field("title"), field("text")].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("\n"),
            );
        } else {
            texts.push(line.to_string());
        }
    }
    if texts.is_empty() {
        bail!("no texts in {}", path.display());
    }
    Ok(texts)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn run(ctx: &Context, cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Ingest(args) => crate::ingest::bench(ctx, args),
        BenchCommand::Embed { model, texts, limit, max_tokens, json } => {
            let embedder = lore_models::load_embedder(&model, &ctx.home)?;
            let mut texts = read_texts(&texts, limit)?;
            if let Some(tokenizer) = embedder.tokenizer() {
                for text in &mut texts {
                    let spans = tokenizer.token_spans(text)?;
                    if let Some(last) = spans.get(max_tokens.saturating_sub(1)).filter(|_| spans.len() > max_tokens) {
                        let end = text.ceil_char_boundary(last.end);
                        text.truncate(end);
                    }
                }
            }
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let started = Instant::now();
            embedder.embed(&refs, EmbedKind::Passage)?;
            let seconds = started.elapsed().as_secs_f64();
            let rate = texts.len() as f64 / seconds;
            if json {
                return print_json(
                    &json!({"model": model, "texts": texts.len(), "max_tokens": max_tokens, "seconds": seconds, "sequences_per_s": rate}),
                );
            }
            println!("{model}: {} texts (≤{max_tokens} tokens) in {seconds:.2} s = {rate:.1} sequences/s", texts.len());
            Ok(())
        }
        BenchCommand::Query { collection, queries, count, top_k, json } => {
            let name = ctx.collection_name(collection);
            let collection = Collection::open(&ctx.collection_dir(&name))?;
            let embedder = lore_models::load_embedder(&collection.manifest().embedder, &ctx.home)?;
            let pipeline =
                Pipeline::new(&collection, embedder.as_ref(), PipelineConfig { top_k, ..PipelineConfig::default() })?;
            let queries = read_texts(&queries, count)?;
            // The first search loads the vectors; it is a cost of opening, not of querying.
            pipeline.retrieve(&queries[0])?;
            let mut latencies: Vec<f64> = Vec::with_capacity(queries.len());
            for q in &queries {
                let started = Instant::now();
                pipeline.retrieve(q)?;
                latencies.push(started.elapsed().as_secs_f64() * 1e3);
            }
            latencies.sort_by(f64::total_cmp);
            let (p50, p95) = (percentile(&latencies, 0.5), percentile(&latencies, 0.95));
            let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
            if json {
                return print_json(
                    &json!({"collection": name, "queries": latencies.len(), "p50_ms": p50, "p95_ms": p95, "mean_ms": mean}),
                );
            }
            println!(
                "{name}: {} queries, p50 {p50:.1} ms, p95 {p95:.1} ms, mean {mean:.1} ms (embedding + top-{top_k} search)",
                latencies.len()
            );
            Ok(())
        }
    }
}

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use lore_core::{ChatModel, EmbedKind, GenerationOptions, Message, PipelineConfig};
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
    /// Load time, prefill and decode tokens/s, scoring with a shared prefix, and peak memory of a
    /// chat model, on a generated English prompt.
    Generate {
        /// Chat model: a name (qwen-0.5b, qwen-1.5b, smollm2), a GGUF path or openai:MODEL@URL.
        #[arg(long, default_value = "qwen-0.5b")]
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

/// The sentence the generation benchmark's prompt repeats.
const BENCH_SENTENCE: &str = "Lore is a retrieval-augmented generation engine written in Rust: it parses documents, \
cuts them into chunks, embeds the chunks, and answers questions with citations. ";

/// Passages scored after the shared prompt, as an LLM reranker does.
const BENCH_PASSAGES: [&str; 4] = [
    "Passage: Lore stores chunks in SQLite.",
    "Passage: The weather in Paris is mild in spring.",
    "Passage: Lore answers questions with citations.",
    "Passage: Rust is a systems programming language.",
];

/// Messages of about `tokens` tokens: `label` first, so that prompts with different labels share
/// no prefix beyond the chat template.
fn bench_messages(label: &str, sentences: usize) -> Vec<Message> {
    vec![
        Message::system(format!("{label} Answer from the context only.")),
        Message::user(format!(
            "Context:\n{}\nQuestion: Describe Lore in detail, step by step.",
            BENCH_SENTENCE.repeat(sentences)
        )),
    ]
}

/// Peak resident memory of this process in bytes (`VmHWM`), where the OS reports it.
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Prefill and decode speed of `chat` on a prompt of about `prompt_tokens` tokens, then the time
/// of scoring [`BENCH_PASSAGES`] after a shared prompt of the same length.
fn bench_generate(chat: &dyn ChatModel, prompt_tokens: usize, max_tokens: usize) -> Result<serde_json::Value> {
    let greedy = |max_tokens| GenerationOptions { max_tokens, temperature: 0.0, ..GenerationOptions::default() };
    // Two short prompts give the tokens of the frame and of one sentence; they also warm up the
    // model (page faults, thread start).
    let one = chat.chat(&bench_messages("Warm-up one.", 1), &greedy(1), &mut |_| {})?.prompt_tokens;
    let two = chat.chat(&bench_messages("Warm-up two.", 2), &greedy(1), &mut |_| {})?.prompt_tokens;
    if two <= one {
        bail!("{} does not report prompt token counts; it cannot be benchmarked here", chat.id());
    }
    let per_sentence = two - one;
    let sentences = (prompt_tokens.saturating_sub(one - per_sentence) / per_sentence).max(1);

    let started = Instant::now();
    let mut first_piece = None;
    let generation = chat.chat(&bench_messages("Measured.", sentences), &greedy(max_tokens), &mut |_| {
        first_piece.get_or_insert_with(Instant::now);
    })?;
    let done = Instant::now();
    let first_piece = first_piece.context("the model gave an empty reply")?;
    let prefill_s = (first_piece - started).as_secs_f64();
    let decoded = generation.completion_tokens.saturating_sub(1);
    let decode_s = (done - first_piece).as_secs_f64();

    let mut scoring = Vec::new();
    let shared = bench_messages("Scoring.", sentences);
    for passage in BENCH_PASSAGES {
        let mut messages = shared.clone();
        messages.push(Message::user(format!("{passage}\nDoes the passage help answer the question? yes or no.")));
        let started = Instant::now();
        chat.choice_probabilities(&messages, &["yes", "no"])?;
        scoring.push(started.elapsed().as_secs_f64());
    }
    Ok(json!({
        "prompt_tokens": generation.prompt_tokens,
        "prefill_s": prefill_s,
        "prefill_tokens_per_s": generation.prompt_tokens as f64 / prefill_s,
        "decode_tokens": decoded,
        "decode_tokens_per_s": if decoded > 0 { decoded as f64 / decode_s } else { f64::NAN },
        "score_first_s": scoring[0],
        "score_next_s": scoring[1..].iter().sum::<f64>() / (scoring.len() - 1) as f64,
    }))
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
        BenchCommand::Generate { llm, prompt_tokens, max_tokens, json } => {
            let started = Instant::now();
            let chat = lore_models::load_chat(&llm, &ctx.home)?;
            let load_s = started.elapsed().as_secs_f64();
            let mut report = bench_generate(chat.as_ref(), prompt_tokens, max_tokens)?;
            report["llm"] = json!(llm);
            report["load_s"] = json!(load_s);
            report["threads"] = json!(std::env::var("CANDLE_NUM_THREADS").ok());
            report["peak_rss_bytes"] = json!(peak_rss_bytes());
            if json {
                return print_json(&report);
            }
            let number = |key: &str| report[key].as_f64().unwrap_or(f64::NAN);
            println!(
                "{llm}: load {:.2} s; prefill {} tokens at {:.1} tokens/s; decode {} tokens at {:.1} tokens/s",
                load_s,
                report["prompt_tokens"],
                number("prefill_tokens_per_s"),
                report["decode_tokens"],
                number("decode_tokens_per_s")
            );
            println!(
                "scoring yes/no after the same prompt: first passage {:.2} s, next passages {:.2} s each",
                number("score_first_s"),
                number("score_next_s")
            );
            match report["peak_rss_bytes"].as_f64() {
                Some(bytes) => println!("peak RSS {:.2} GB", bytes / 1e9),
                None => println!("peak RSS unknown (no /proc/self/status)"),
            }
            Ok(())
        }
    }
}

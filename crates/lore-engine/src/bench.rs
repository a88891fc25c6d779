//! Benchmarks a front end runs and prints: embedding throughput, query latency, ingest
//! throughput and generation speed, each a plain record with the figures it measured.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use lore_core::{
    ChatModel, ChunkConfig, EmbedKind, Embedder, Error, GenerationOptions, Message, PipelineConfig, Result, Tokenize,
};
use lore_index::Collection;
use lore_rag::Pipeline;
use serde::Serialize;

use crate::sync::IngestTarget;
use crate::{Engine, Progress};

/// What `embed` measured.
#[derive(Clone, Debug, Serialize)]
pub struct EmbedBench {
    /// The embedder.
    pub model: String,
    /// Texts embedded.
    pub texts: usize,
    /// Each text was cut to this many tokens.
    pub max_tokens: usize,
    /// Time of the one batch.
    pub seconds: f64,
    /// Texts per second.
    pub sequences_per_s: f64,
}

/// What `query` measured, in milliseconds per query (embedding + search).
#[derive(Clone, Debug, Serialize)]
pub struct QueryBench {
    /// The collection searched.
    pub collection: String,
    /// Chunks retrieved per query.
    pub top_k: usize,
    /// Queries timed.
    pub queries: usize,
    /// Median latency.
    pub p50_ms: f64,
    /// 95th percentile latency.
    pub p95_ms: f64,
    /// Mean latency.
    pub mean_ms: f64,
}

/// What `ingest` measured.
#[derive(Clone, Debug, Serialize)]
pub struct IngestBench {
    /// The embedder, or `none`.
    pub embedder: String,
    /// Files found.
    pub files: usize,
    /// Files that could not be ingested.
    pub failed: usize,
    /// Chunks stored.
    pub chunks: usize,
    /// Size of the files.
    pub megabytes: f64,
    /// Wall time.
    pub seconds: f64,
    /// Files per second.
    pub files_per_second: f64,
    /// Chunks per second.
    pub chunks_per_second: f64,
    /// Megabytes per second.
    pub megabytes_per_second: f64,
    /// The process's peak resident memory.
    pub peak_memory_megabytes: f64,
    /// Why each failed file failed.
    #[serde(skip)]
    pub failures: Vec<(String, String)>,
}

/// What `generate` measured.
#[derive(Clone, Debug, Serialize)]
pub struct GenerateBench {
    /// The chat model.
    pub llm: String,
    /// Seconds to load it.
    pub load_s: f64,
    /// `CANDLE_NUM_THREADS`, when set.
    pub threads: Option<String>,
    /// The process's peak resident memory, where the OS reports it.
    pub peak_rss_bytes: Option<u64>,
    /// Tokens of the measured prompt.
    pub prompt_tokens: usize,
    /// Time to the first generated piece.
    pub prefill_s: f64,
    /// Prompt tokens per second.
    pub prefill_tokens_per_s: f64,
    /// Tokens generated after the first.
    pub decode_tokens: usize,
    /// Generated tokens per second.
    pub decode_tokens_per_s: f64,
    /// Seconds to score the first passage after the shared prompt.
    pub score_first_s: f64,
    /// Mean seconds to score each further passage (the prompt's prefix is reused).
    pub score_next_s: f64,
}

impl fmt::Display for EmbedBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} texts (≤{} tokens) in {:.2} s = {:.1} sequences/s",
            self.model, self.texts, self.max_tokens, self.seconds, self.sequences_per_s
        )
    }
}

impl fmt::Display for QueryBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} queries, p50 {:.1} ms, p95 {:.1} ms, mean {:.1} ms (embedding + top-{} search)",
            self.collection, self.queries, self.p50_ms, self.p95_ms, self.mean_ms, self.top_k
        )
    }
}

impl fmt::Display for IngestBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} files ({} failed), {:.1} MB, {} chunks in {:.1} s: {:.1} files/s, {:.1} chunks/s, {:.2} MB/s; \
             peak memory {:.0} MB (embedder: {})",
            self.files,
            self.failed,
            self.megabytes,
            self.chunks,
            self.seconds,
            self.files_per_second,
            self.chunks_per_second,
            self.megabytes_per_second,
            self.peak_memory_megabytes,
            self.embedder
        )?;
        for (path, reason) in &self.failures {
            write!(f, "\n  failed: {path}: {reason}")?;
        }
        Ok(())
    }
}

impl fmt::Display for GenerateBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: load {:.2} s; prefill {} tokens at {:.1} tokens/s; decode {} tokens at {:.1} tokens/s",
            self.llm,
            self.load_s,
            self.prompt_tokens,
            self.prefill_tokens_per_s,
            self.decode_tokens,
            self.decode_tokens_per_s
        )?;
        writeln!(
            f,
            "scoring yes/no after the same prompt: first passage {:.2} s, next passages {:.2} s each",
            self.score_first_s, self.score_next_s
        )?;
        match self.peak_rss_bytes {
            Some(bytes) => write!(f, "peak RSS {:.2} GB", bytes as f64 / 1e9),
            None => write!(f, "peak RSS unknown (no /proc/self/status)"),
        }
    }
}

impl Engine {
    /// Embeds up to `limit` texts of `texts` (cut to `max_tokens` tokens) in one batch.
    pub fn bench_embed(&self, model: &str, texts: &Path, limit: usize, max_tokens: usize) -> Result<EmbedBench> {
        let embedder = self.models().embedder(model)?;
        let mut texts = read_texts(texts, limit)?;
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
        Ok(EmbedBench {
            model: model.to_string(),
            texts: texts.len(),
            max_tokens,
            seconds,
            sequences_per_s: texts.len() as f64 / seconds,
        })
    }

    /// Times the dense search of up to `count` queries from `queries` (top `top_k`), the
    /// embedder loaded and the index read once before.
    pub fn bench_query(
        &self,
        collection: Option<&str>,
        queries: &Path,
        count: usize,
        top_k: usize,
    ) -> Result<QueryBench> {
        let name = self.settings().collection_or(collection);
        let store = self.catalog().open(&name)?;
        let embedder = self.models().embedder(&store.manifest().embedder)?;
        let pipeline =
            Pipeline::new(store.as_ref(), embedder.as_ref(), PipelineConfig { top_k, ..PipelineConfig::default() })?;
        let queries = read_texts(queries, count)?;
        // The first search loads the vectors; it is a cost of opening, not of querying.
        pipeline.retrieve(&queries[0])?;
        let mut latencies: Vec<f64> = Vec::with_capacity(queries.len());
        for query in &queries {
            let started = Instant::now();
            pipeline.retrieve(query)?;
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
        }
        latencies.sort_by(f64::total_cmp);
        let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
        Ok(QueryBench {
            collection: name,
            top_k,
            queries: latencies.len(),
            p50_ms: percentile(0.5),
            p95_ms: percentile(0.95),
            mean_ms: latencies.iter().sum::<f64>() / latencies.len() as f64,
        })
    }

    /// Ingests `paths` into a temporary collection with the default chunking, embedding with
    /// `embedder` (or, when `None`, storing one placeholder vector per chunk).
    pub fn bench_ingest(
        &self,
        paths: &[PathBuf],
        embedder: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<IngestBench> {
        let model: Arc<dyn Embedder> = match embedder {
            Some(name) => self.models().embedder(name)?,
            None => Arc::new(PlaceholderEmbedder),
        };
        let scratch = tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?;
        let store = Collection::create(scratch.path(), model.id(), model.dimension(), ChunkConfig::default())?;
        let target = IngestTarget::new("bench", Arc::new(store), model);
        let found = lore_ingest::discover(paths);
        let bytes: u64 = found.files.iter().filter_map(|path| fs::metadata(path).ok()).map(|m| m.len()).sum();
        let files = found.files.len();
        let summary = target.ingest_found(paths, found, None, false, progress)?;
        let seconds = summary.seconds.max(1e-9);
        let chunks = summary.report.chunks;
        let peak = peak_rss_bytes()
            .ok_or_else(|| Error::Unsupported("peak memory is read from /proc/self/status (Linux only)".into()))?;
        Ok(IngestBench {
            embedder: embedder.unwrap_or("none").to_string(),
            files,
            failed: summary.report.failed.len(),
            chunks,
            megabytes: bytes as f64 / 1e6,
            seconds,
            files_per_second: files as f64 / seconds,
            chunks_per_second: chunks as f64 / seconds,
            megabytes_per_second: bytes as f64 / 1e6 / seconds,
            peak_memory_megabytes: peak as f64 / 1e6,
            failures: summary.report.failed,
        })
    }

    /// Loads `llm`, then measures prefill and decode speed on a prompt of about
    /// `prompt_tokens` tokens, and the time of scoring passages after a shared prompt of the
    /// same length, as an LLM reranker does.
    pub fn bench_generate(&self, llm: &str, prompt_tokens: usize, max_tokens: usize) -> Result<GenerateBench> {
        let started = Instant::now();
        // Loaded here, not through the cache: loading is what is measured.
        let chat = lore_models::load_chat(llm, self.home())?;
        let load_s = started.elapsed().as_secs_f64();
        let measured = measure_generation(chat.as_ref(), prompt_tokens, max_tokens)?;
        Ok(GenerateBench {
            llm: llm.to_string(),
            load_s,
            threads: std::env::var("CANDLE_NUM_THREADS").ok(),
            peak_rss_bytes: peak_rss_bytes(),
            ..measured
        })
    }
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

/// Messages of `sentences` sentences: `label` first, so that prompts with different labels
/// share no prefix beyond the chat template.
fn bench_messages(label: &str, sentences: usize) -> Vec<Message> {
    vec![
        Message::system(format!("{label} Answer from the context only.")),
        Message::user(format!(
            "Context:\n{}\nQuestion: Describe Lore in detail, step by step.",
            BENCH_SENTENCE.repeat(sentences)
        )),
    ]
}

fn measure_generation(chat: &dyn ChatModel, prompt_tokens: usize, max_tokens: usize) -> Result<GenerateBench> {
    let greedy = |max_tokens| GenerationOptions { max_tokens, temperature: 0.0, ..GenerationOptions::default() };
    // Two short prompts give the tokens of the frame and of one sentence; they also warm up the
    // model (page faults, thread start).
    let one = chat.chat(&bench_messages("Warm-up one.", 1), &greedy(1), &mut |_| {})?.prompt_tokens;
    let two = chat.chat(&bench_messages("Warm-up two.", 2), &greedy(1), &mut |_| {})?.prompt_tokens;
    if two <= one {
        return Err(Error::Unsupported(format!(
            "{} does not report prompt token counts; it cannot be benchmarked here",
            chat.id()
        )));
    }
    let per_sentence = two - one;
    let sentences = (prompt_tokens.saturating_sub(one - per_sentence) / per_sentence).max(1);

    let started = Instant::now();
    let mut first_piece = None;
    let generation = chat.chat(&bench_messages("Measured.", sentences), &greedy(max_tokens), &mut |_| {
        first_piece.get_or_insert_with(Instant::now);
    })?;
    let done = Instant::now();
    let first_piece = first_piece.ok_or_else(|| Error::Model(format!("{} gave an empty reply", chat.id())))?;
    let prefill_s = (first_piece - started).as_secs_f64();
    let decode_tokens = generation.completion_tokens.saturating_sub(1);
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
    Ok(GenerateBench {
        llm: chat.id().to_string(),
        load_s: 0.0,
        threads: None,
        peak_rss_bytes: None,
        prompt_tokens: generation.prompt_tokens,
        prefill_s,
        prefill_tokens_per_s: generation.prompt_tokens as f64 / prefill_s,
        decode_tokens,
        decode_tokens_per_s: if decode_tokens > 0 { decode_tokens as f64 / decode_s } else { f64::NAN },
        score_first_s: scoring[0],
        score_next_s: scoring[1..].iter().sum::<f64>() / (scoring.len() - 1) as f64,
    })
}

/// Peak resident memory of this process in bytes (`VmHWM`), where the OS reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Texts from a JSON-lines file (title + text, as BEIR) or a plain file (one per line).
fn read_texts(path: &Path, limit: usize) -> Result<Vec<String>> {
    let content = fs::read_to_string(path).map_err(Error::io(path))?;
    let is_jsonl = path.extension().is_some_and(|e| e == "jsonl");
    let mut texts = Vec::new();
    for (number, line) in content.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).take(limit) {
        if is_jsonl {
            let record: serde_json::Value = serde_json::from_str(line).map_err(|e| Error::Parse {
                path: path.display().to_string(),
                reason: format!("line {}: {e}", number + 1),
            })?;
            let field = |k: &str| record.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            texts.push(
                [field("title"), field("text")].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("\n"),
            );
        } else {
            texts.push(line.to_string());
        }
    }
    if texts.is_empty() {
        return Err(Error::InvalidInput(format!("no texts in {}", path.display())));
    }
    Ok(texts)
}

/// Stands in for the embedder when ingest is measured without embedding: every chunk gets the
/// same vector, of e5-small's size, so that storing costs what it does with e5-small.
struct PlaceholderEmbedder;

impl Embedder for PlaceholderEmbedder {
    fn id(&self) -> &str {
        "placeholder"
    }
    fn dimension(&self) -> usize {
        384
    }
    fn max_tokens(&self) -> usize {
        512
    }
    fn tokenizer(&self) -> Option<&dyn Tokenize> {
        None
    }
    fn embed(&self, texts: &[&str], _: EmbedKind) -> Result<Vec<Vec<f32>>> {
        let mut unit = vec![0.0; self.dimension()];
        unit[0] = 1.0;
        Ok(vec![unit; texts.len()])
    }
}

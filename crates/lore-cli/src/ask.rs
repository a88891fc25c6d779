//! `lore query` and `lore ask`: retrieval and answers, as text or JSON.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use lore_core::GenerationOptions;
use lore_engine::{Engine, FilterSpec, SearchRequest, Session};
use lore_rag::one_line;
use serde_json::json;

use crate::output::print_json;

#[derive(Args)]
pub struct RetrievalArgs {
    /// Collection to search.
    #[arg(short, long, env = "LORE_COLLECTION")]
    pub collection: Option<String>,
    /// Pipeline preset (dense, bm25, hybrid, hybrid-zscore, graph, hybrid-graph, hybrid-rerank,
    /// hyde, multi-query, step-back, multi-hop, tutorial) or a TOML file of pipeline settings [default: `pipeline` in lore.toml,
    /// else dense].
    #[arg(long, env = "LORE_PIPELINE")]
    pub pipeline: Option<String>,
    /// How many chunks to retrieve [default: the pipeline's, 5 for the presets].
    #[arg(short = 'k', long)]
    pub top_k: Option<usize>,
    /// Ignore dense hits whose cosine similarity is below this [default: the pipeline's].
    #[arg(long)]
    pub min_score: Option<f32>,
    /// Only chunks whose metadata field matches, applied inside every search (repeat to combine):
    /// FIELD=VALUE, FIELD>=NUMBER, FIELD<=NUMBER, or "FIELD in A,B,C".
    #[arg(long = "where", value_name = "CONDITION")]
    pub conditions: Vec<String>,
    /// Only chunks of this document (its source as ingested; repeat for several).
    #[arg(long = "doc", value_name = "SOURCE")]
    pub documents: Vec<String>,
    /// Only chunks of documents whose source starts with this (a folder, a URL prefix).
    #[arg(long, value_name = "PREFIX")]
    pub source_prefix: Option<String>,
    /// Show how the hits were found: the rewrites, each retriever's hits, the fused order and
    /// the reranker's scores (with --json, as an "explanation" object).
    #[arg(long)]
    pub explain: bool,
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
    pub llm: Option<String>,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
    /// 0 is greedy (deterministic) decoding.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
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

impl RetrievalArgs {
    /// A request with no retrieval flags, answering with `generation`'s settings.
    pub fn default_request(generation: &GenerationArgs) -> SearchRequest {
        SearchRequest { generation: Some(generation.options()), ..SearchRequest::default() }
    }

    /// The engine's request for these flags.
    pub fn request(&self, llm: Option<String>, generation: Option<&GenerationArgs>) -> Result<SearchRequest> {
        let filter = FilterSpec {
            conditions: self.conditions.clone(),
            documents: self.documents.clone(),
            source_prefix: self.source_prefix.clone(),
        };
        Ok(SearchRequest {
            collection: self.collection.clone(),
            pipeline: self.pipeline.clone(),
            top_k: self.top_k,
            min_score: self.min_score,
            filter: filter.to_filter()?,
            llm,
            generation: generation.map(GenerationArgs::options),
        })
    }
}

impl GenerationArgs {
    fn options(&self) -> GenerationOptions {
        GenerationOptions {
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
            ..GenerationOptions::default()
        }
    }
}

pub fn query(engine: &Engine, args: QueryArgs) -> Result<()> {
    let session = engine.session(&args.retrieval.request(args.llm.clone(), None)?, false)?;
    let found = session.retrieve(&args.text)?;
    if args.json {
        let t = &found.timings;
        let mut out = json!({
            "query": args.text,
            "hits": found.hits,
            "timings": {"rewrite_ms": t.rewrite_ms, "embed_ms": t.embed_ms, "search_ms": t.search_ms, "rerank_ms": t.rerank_ms},
        });
        if args.retrieval.explain {
            out["explanation"] = serde_json::to_value(&found.explanation)?;
        }
        return print_json(&out);
    }
    if args.retrieval.explain {
        print!("{}", found.explanation);
        println!("Results:");
    }
    for (i, hit) in found.hits.iter().enumerate() {
        println!("{}. {:.4}  {}  (chunk {})", i + 1, hit.score, hit.source, hit.chunk_id);
        println!("   {}", one_line(&hit.text, 200));
    }
    eprintln!("{}", found.timing_line());
    Ok(())
}

pub fn ask(engine: &Engine, args: AskArgs) -> Result<()> {
    let request = args.retrieval.request(args.generation.llm.clone(), Some(&args.generation))?;
    answer(&engine.session(&request, true)?, &args.question, args.json, args.retrieval.explain)
}

/// Answers `question` in `session` (opened for answering), streaming the text unless `json`.
pub fn answer(session: &Session, question: &str, json: bool, explain: bool) -> Result<()> {
    let retrieval = session.retrieve(question)?;
    if explain && !json {
        println!("{}", retrieval.explanation);
    }
    let mut stdout = std::io::stdout();
    let answer = session.answer(question, &retrieval, &mut |piece| {
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
            "llm": session.llm,
            "citations": answer.citations.iter().map(|c| {
                let chunk = session.store.chunk(c.chunk_id).ok().flatten();
                json!({"n": c.n, "chunk_id": c.chunk_id, "document": c.source, "score": c.score, "cited": c.cited,
                       "text": chunk.map(|h| h.text)})
            }).collect::<Vec<_>>(),
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "timings": answer.timings,
            "checks": answer.checks,
        });
        if explain {
            out["explanation"] = serde_json::to_value(&retrieval.explanation)?;
        }
        return print_json(&out);
    }
    println!("\n");
    let checks = &answer.checks;
    if checks.quoted {
        // The streamed text was the generator's refusal or an answer verification removed.
        println!("Quoted instead (the generator wrote nothing the passages support):\n{}\n", answer.text);
    } else if let Some(generated) = &checks.generated {
        // The streamed text was the generator's; what survived verification replaces it.
        let removed = checks.sentences.iter().filter(|s| !s.kept).count();
        let what = if removed > 0 {
            format!("{removed} sentence(s) the passages do not support removed")
        } else {
            "citations corrected to the passages that support each sentence".to_string()
        };
        if generated.trim() != answer.text {
            println!("Verified answer ({what}):\n{}\n", answer.text);
        }
    }
    let heading =
        if answer.refused { "Nothing in the documents answers this; the nearest passages:" } else { "Sources:" };
    if !answer.citations.is_empty() {
        println!("{heading}");
    }
    for c in &answer.citations {
        let mark = if c.cited { "*" } else { " " };
        println!(" {mark}[{}] {} (score {:.3}, chunk {})", c.n, c.source, c.score, c.chunk_id);
    }
    if !checks.withheld.is_empty() {
        let numbers: Vec<String> = checks.withheld.iter().map(|n| format!("[{n}]")).collect();
        eprintln!(
            "passage {} gave the reader instructions; those sentences were withheld from the generator",
            numbers.join(", ")
        );
    }
    if let Some(evidence) = checks.evidence {
        let gated = if checks.gated { ", below the gate: not generated" } else { "" };
        eprintln!("evidence {evidence:.2}{gated}");
    }
    if checks.second_look.is_some() {
        let outcome = if answer.refused { "the refusal stands" } else { "its answer, taken from the passages, stands" };
        eprintln!("the generator refused although the evidence was strong; asked again: {outcome}");
    }
    let t = &answer.timings;
    eprintln!(
        "retrieval {:.0} ms, generation {:.0} ms ({} prompt + {} answer tokens)",
        t.rewrite_ms + t.embed_ms + t.search_ms + t.rerank_ms,
        t.generate_ms,
        answer.prompt_tokens,
        answer.completion_tokens
    );
    Ok(())
}

//! `lore`: a retrieval-augmented generation engine on local models. This binary parses
//! arguments, calls `lore-engine` and prints; every decision lives in the library crates.

mod ask;
mod bench;
mod collections;
mod eval;
mod ingest;
mod models;
mod output;
mod postgres;
mod serve;
mod tune;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use lore_core::ErrorKind;
use lore_engine::{DEFAULT_EMBEDDER, DEFAULT_LLM, Engine, SearchRequest, Settings};

#[derive(Parser)]
#[command(
    name = "lore",
    version,
    about = "Ask questions about your documents, answered by local models with citations.",
    long_about = "Lore ingests documents into collections, finds the passages that answer a question, \
and has a language model answer from them, citing its sources.\n\n\
Start with `lore quickstart`, or:\n  lore models pull e5-small qwen-0.5b\n  lore ingest ./my-docs -c notes\n  \
lore ask \"What does the contract say about renewal?\" -c notes\n  lore serve   (then open http://127.0.0.1:8750/)\n\n\
Settings come from flags, then LORE_* environment variables, then ./lore.toml and $LORE_HOME/lore.toml \
(keys: collection, embedder, llm, top_k, pipeline, threads, store, read_store, reranker).\n\n\
Exit status: 0 success; 1 other errors; 2 some files could not be ingested; 3 not found (collection, \
model, document); 4 invalid input or unsupported; 5 damaged data; 6 model unavailable; 7 busy; 8 I/O error."
)]
pub struct Cli {
    /// Where models and collections live.
    #[arg(long, global = true, env = "LORE_HOME")]
    home: Option<PathBuf>,
    /// CPU threads for the models (default: all cores).
    #[arg(long, global = true, env = "LORE_THREADS")]
    threads: Option<usize>,
    /// Where new collections are made (by ingest, eval, collections create/copy): `embedded`
    /// (files under the home folder) or postgres://USER@HOST:PORT/DATABASE; the password comes
    /// from PGPASSWORD or ~/.pgpass and is never written or printed [env: LORE_STORE].
    #[arg(long, global = true, value_name = "STORE")]
    store: Option<String>,
    /// A read replica of the --store database that searches go to [env: LORE_READ_STORE].
    #[arg(long, global = true, value_name = "URL")]
    read_store: Option<String>,
    /// A cross-encoder folder (one `lore tune reranker` wrote) that replaces the reranker of
    /// any pipeline that reranks: hybrid-rerank then reranks its best 20 fused candidates with
    /// it instead of the chat model [env: LORE_RERANKER].
    #[arg(long, global = true, value_name = "DIR")]
    reranker: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse, chunk, embed and store files or folders in a collection (created on first use).
    Ingest(ingest::IngestArgs),
    /// Retrieve the chunks closest to a query, with scores (no generation).
    Query(ask::QueryArgs),
    /// Answer a question from a collection, streaming the answer, then its sources.
    Ask(ask::AskArgs),
    /// List, inspect or delete collections.
    #[command(subcommand)]
    Collections(collections::CollectionsCommand),
    /// List or delete the documents of a collection.
    #[command(subcommand)]
    Docs(collections::DocsCommand),
    /// List, install and inspect models.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Install the default models, ingest Lore's own docs, and answer a question about Lore.
    Quickstart(QuickstartArgs),
    /// Evaluate a pipeline on a dataset: retrieval metrics, answer metrics, an LLM judge.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Run several pipeline configurations on one dataset: a Markdown leaderboard on stdout and
    /// a self-contained HTML report with every answer.
    Arena(eval::ArenaArgs),
    /// Measure embedding and ingest throughput, query latency and generation speed.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Serve every collection over HTTP: a web page at /, REST under /api, OpenAI-compatible
    /// endpoints under /v1 (collections are models).
    Serve(serve::ServeArgs),
    /// Create, list and revoke the API keys `lore serve` accepts.
    #[command(subcommand)]
    Keys(serve::KeysCommand),
    /// Turn the feedback given on served answers into training data.
    #[command(subcommand)]
    Feedback(serve::FeedbackCommand),
    /// Train on your own documents: synthetic questions, then a fine-tuned embedder or a
    /// cross-encoder reranker of your own (CPU, resumable).
    #[command(subcommand)]
    Tune(tune::TuneCommand),
    /// Run a throwaway PostgreSQL with pgvector on this machine, for collections shared by
    /// several servers (`--store`) when no PostgreSQL is at hand.
    #[command(subcommand)]
    Postgres(postgres::PostgresCommand),
}

#[derive(Args)]
struct QuickstartArgs {
    /// Folder of documents to ingest [default: this project's docs/].
    #[arg(long)]
    docs: Option<PathBuf>,
    /// Question to ask about them.
    #[arg(long, default_value = "Which command installs the models Lore needs?")]
    question: String,
    #[command(flatten)]
    generation: ask::GenerationArgs,
}

/// Keeps freed memory in the process for the next allocation of its size. By default glibc maps
/// blocks above a moving threshold straight from the kernel and trims the heap's top after each
/// large free, so every layer of an encoder or chat model got fresh, zero-filled pages for its
/// activations: 9.9 million page faults and 30% of the CPU time when embedding 100 512-token
/// abstracts with e5-small, against 0.18 million faults (1.5x faster) with these settings.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters; it runs before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    keep_freed_memory();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The error and its causes, each cause once: Lore's errors already include the text of the
/// error they wrap, which anyhow's `{:#}` would repeat.
fn message(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}

/// The exit status for an error, by the kind of the first Lore error in its chain.
fn exit_code(error: &anyhow::Error) -> u8 {
    let kind = error.chain().find_map(|cause| cause.downcast_ref::<lore_core::Error>()).map(lore_core::Error::kind);
    match kind {
        Some(ErrorKind::NotFound) => 3,
        Some(ErrorKind::InvalidInput | ErrorKind::Unsupported | ErrorKind::AlreadyExists) => 4,
        Some(ErrorKind::Corrupt) => 5,
        Some(ErrorKind::ModelUnavailable) => 6,
        Some(ErrorKind::Busy) => 7,
        Some(ErrorKind::Io) => 8,
        Some(ErrorKind::Cancelled) => 130,
        _ => 1,
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let mut settings = Settings::load(cli.home)?;
    if cli.store.is_some() || cli.read_store.is_some() {
        settings.store = cli.store.or(settings.store);
        settings.read_store = cli.read_store.or(settings.read_store);
        settings.store_location()?;
    }
    settings.reranker = cli.reranker.or(settings.reranker);
    if let Some(threads) = cli.threads.or(settings.threads) {
        // candle sizes its pools from these variables only, read when they are first needed.
        let threads = threads.max(1);
        for variable in lore_models::THREAD_VARIABLES {
            // SAFETY: no other thread exists yet: clap, mallopt and Settings::load start none.
            unsafe { std::env::set_var(variable, threads.to_string()) };
        }
        lore_models::set_threads(threads);
    }
    let engine = Engine::new(settings)?;
    match cli.command {
        Command::Ingest(args) => return ingest::run(&engine, args),
        Command::Query(args) => ask::query(&engine, args)?,
        Command::Ask(args) => ask::ask(&engine, args)?,
        Command::Collections(cmd) => collections::collections(&engine, cmd)?,
        Command::Docs(cmd) => collections::docs(&engine, cmd)?,
        Command::Models(cmd) => models::run(&engine, cmd)?,
        Command::Quickstart(args) => quickstart(&engine, args)?,
        Command::Bench(cmd) => bench::run(&engine, cmd)?,
        Command::Eval(cmd) => eval::run(&engine, cmd)?,
        Command::Arena(args) => eval::arena(&engine, args)?,
        Command::Serve(args) => serve::serve(&engine, args)?,
        Command::Keys(cmd) => serve::keys(&engine, cmd)?,
        Command::Feedback(cmd) => serve::feedback(&engine, cmd)?,
        Command::Tune(cmd) => tune::run(&engine, cmd)?,
        Command::Postgres(cmd) => postgres::run(cmd)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Installs the default models, ingests the docs into `lore-docs` and answers a question there.
fn quickstart(engine: &Engine, args: QuickstartArgs) -> Result<()> {
    let llm = args.generation.llm.clone().unwrap_or_else(|| DEFAULT_LLM.into());
    for name in [DEFAULT_EMBEDDER, llm.as_str()] {
        if let Ok(spec) = lore_models::spec(name) {
            models::pull(engine, &spec)?;
        }
    }
    let docs = args.docs.clone().unwrap_or_else(default_docs);
    eprintln!("ingesting {} into collection 'lore-docs'", docs.display());
    ingest::run(engine, ingest::IngestArgs::for_folder(docs, "lore-docs"))?;
    let request = SearchRequest {
        collection: Some("lore-docs".into()),
        pipeline: Some("dense".into()),
        top_k: Some(3),
        llm: Some(llm),
        ..ask::RetrievalArgs::default_request(&args.generation)
    };
    println!("Q: {}\n", args.question);
    ask::answer(&engine.session(&request, true)?, &args.question, false, false)
}

/// `docs/` in the working directory when run from a checkout, else the checkout this binary
/// was built from.
fn default_docs() -> PathBuf {
    let here = PathBuf::from("docs");
    if here.is_dir() { here } else { PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs")) }
}

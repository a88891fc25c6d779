use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use lore_core::{ChunkConfig, SizeUnit};
use lore_index::Collection;
use lore_rag::{Source, ingest};
use serde_json::json;

use crate::{Context, print_json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Chunker {
    /// Lines concatenated until --chunk-size characters (the classic RAG tutorial's chunker).
    Paragraph,
    /// Windows of --window embedder tokens overlapping by --overlap.
    Tokens,
    /// One chunk per document.
    Whole,
    /// Cut at paragraphs, then sentences (。！？ too), then clauses, until --chunk-size characters.
    Recursive,
    /// Like recursive, never across a heading; the heading path is embedded with each chunk.
    Heading,
    /// Break where the meaning of neighbouring sentences changes (uses the embedder).
    Semantic,
    /// One sentence per chunk; the generator reads it with 3 sentences on either side.
    SentenceWindow,
    /// Children of --chunk-size characters are searched; the generator reads their --parent-size parent.
    ParentChild,
}

#[derive(Args)]
pub struct IngestArgs {
    /// Files or folders (searched recursively for documents: txt, md, pdf, docx, pptx, xlsx, csv, html, json…).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Collection to ingest into; created on first use.
    #[arg(short, long, env = "LORE_COLLECTION")]
    collection: Option<String>,
    /// Embedder for a new collection: a model name, a model path, or openai:MODEL@URL [default: e5-small].
    #[arg(long, env = "LORE_EMBEDDER")]
    embedder: Option<String>,
    /// How a new collection cuts documents into chunks [default: paragraph].
    #[arg(long, value_enum)]
    chunker: Option<Chunker>,
    /// Characters per chunk (paragraph, recursive, heading; child size for parent-child).
    #[arg(long, default_value_t = 512)]
    chunk_size: usize,
    /// Parent-child chunker: characters per parent.
    #[arg(long, default_value_t = 2000)]
    parent_size: usize,
    /// Paragraph chunker: drop a trailing remainder shorter than --chunk-size, as the tutorial does.
    #[arg(long)]
    drop_remainder: bool,
    /// Token chunker: tokens per window.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Token chunker: tokens shared by consecutive windows.
    #[arg(long, default_value_t = 32)]
    overlap: usize,
    /// Read each path as a BEIR corpus.jsonl (one document per record, `_id` as its source).
    #[arg(long)]
    beir: bool,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
}

impl IngestArgs {
    /// The settings `lore ingest FOLDER -c COLLECTION` would have.
    pub fn for_folder(folder: PathBuf, collection: &str) -> Self {
        IngestArgs {
            paths: vec![folder],
            collection: Some(collection.into()),
            embedder: None,
            chunker: None,
            chunk_size: 512,
            parent_size: 2000,
            drop_remainder: false,
            window: 256,
            overlap: 32,
            beir: false,
            json: false,
        }
    }

    fn chunking(&self) -> Option<ChunkConfig> {
        Some(match self.chunker? {
            Chunker::Paragraph => {
                ChunkConfig::ParagraphMerge { chunk_size: self.chunk_size, drop_remainder: self.drop_remainder }
            }
            Chunker::Tokens => ChunkConfig::TokenWindow { size: self.window, overlap: self.overlap },
            Chunker::Whole => ChunkConfig::Whole,
            Chunker::Recursive => {
                ChunkConfig::Recursive { chunk_size: self.chunk_size, overlap: 0, unit: SizeUnit::Chars }
            }
            Chunker::Heading => ChunkConfig::HeadingAware {
                chunk_size: self.chunk_size,
                overlap: 0,
                unit: SizeUnit::Chars,
                prefix_headings: true,
            },
            Chunker::Semantic => serde_json::from_value(json!({"kind": "semantic"})).expect("semantic has defaults"),
            Chunker::SentenceWindow => ChunkConfig::SentenceWindow { window: 3 },
            Chunker::ParentChild => ChunkConfig::ParentChild {
                child_size: self.chunk_size,
                parent_size: self.parent_size,
                unit: SizeUnit::Chars,
            },
        })
    }
}

pub fn run(ctx: &Context, args: IngestArgs) -> Result<()> {
    let name = ctx.collection_name(args.collection.clone());
    let dir = ctx.collection_dir(&name);
    let requested_embedder = args.embedder.clone().or_else(|| ctx.config.embedder.clone());
    let mut collection = if dir.exists() {
        let collection = Collection::open(&dir)?;
        if let Some(chunking) = args.chunking().filter(|c| *c != collection.manifest().chunking) {
            bail!(
                "collection '{name}' cuts documents with {:?}, not {chunking:?}; ingest into a new collection to change chunking",
                collection.manifest().chunking
            );
        }
        collection
    } else {
        let embedder_name = requested_embedder.clone().unwrap_or_else(|| "e5-small".into());
        let embedder = lore_models::load_embedder(&embedder_name, &ctx.home)?;
        Collection::create(&dir, &embedder_name, embedder.dimension(), args.chunking().unwrap_or_default())?
    };
    let embedder_name = collection.manifest().embedder.clone();
    if let Some(requested) = requested_embedder.filter(|r| *r != embedder_name) {
        bail!(
            "collection '{name}' was built with embedder {embedder_name}, not {requested}: choose another collection name"
        );
    }
    let embedder = lore_models::load_embedder(&embedder_name, &ctx.home)?;
    let chunking = collection.manifest().chunking.clone();

    let mut sources = Vec::new();
    let mut failed = Vec::new();
    let mut skipped = Vec::new();
    if args.beir {
        for path in &args.paths {
            let docs = lore_ingest::read_beir_corpus(path)
                .with_context(|| format!("reading BEIR corpus {}", path.display()))?;
            sources.extend(docs.into_iter().map(Source::Document));
        }
    } else {
        let found = lore_ingest::discover(&args.paths);
        failed.extend(found.errors.into_iter().map(|(p, e)| (p.display().to_string(), e)));
        skipped.extend(found.skipped.into_iter().map(|p| p.display().to_string()));
        sources.extend(found.files.into_iter().map(Source::File));
    }

    let bar = ProgressBar::new(sources.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} documents, {msg} [{elapsed}]")?
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut report = ingest(&mut collection, embedder.as_ref(), &chunking, sources, &mut |p| {
        bar.set_position(p.sources_done as u64);
        let rate = p.chunks_embedded as f64 / started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("{} chunks ({rate:.1}/s)", p.chunks_embedded));
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    report.failed.splice(0..0, failed);

    if args.json {
        print_json(&json!({
            "collection": name,
            "added": report.added,
            "replaced": report.replaced,
            "unchanged": report.unchanged,
            "chunks": report.chunks,
            "failed": report.failed.iter().map(|(path, reason)| json!({"path": path, "reason": reason})).collect::<Vec<_>>(),
            "skipped": skipped,
            "seconds": seconds,
            "chunks_per_second": report.chunks as f64 / seconds.max(1e-9),
        }))?;
    } else {
        eprintln!(
            "{name}: {} added, {} replaced, {} unchanged, {} failed, {} skipped; {} chunks in {seconds:.1} s ({:.1} chunks/s)",
            report.added,
            report.replaced,
            report.unchanged,
            report.failed.len(),
            skipped.len(),
            report.chunks,
            report.chunks as f64 / seconds.max(1e-9)
        );
        for (path, reason) in &report.failed {
            eprintln!("  failed: {path}: {reason}");
        }
        for path in &skipped {
            eprintln!("  skipped (format not read): {path}");
        }
    }
    if !report.failed.is_empty() {
        std::process::exit(2);
    }
    Ok(())
}

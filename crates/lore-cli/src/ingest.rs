use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use lore_core::{ChunkConfig, EmbedKind, Embedder, SizeUnit, Tokenize};
use lore_index::Collection;
use lore_ingest::Discovered;
use lore_rag::{IngestReport, Source, ingest, remove_vanished};
use serde_json::{Value, json};

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
    #[arg(long, conflicts_with_all = ["sync", "watch"])]
    beir: bool,
    /// Also remove the documents of files that are gone from the given folders (documents from
    /// other paths stay). Give the folders as they were given when their files were ingested.
    #[arg(long)]
    sync: bool,
    /// Sync, then keep the collection in sync with the folders until interrupted (Ctrl-C).
    #[arg(long)]
    watch: bool,
    /// With --watch: seconds between looks at the folders; a change is synced once the folders
    /// have stayed the same for this long.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    watch_interval: f64,
    /// Print a JSON summary instead of text (with --watch, one line of JSON per sync).
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
            sync: false,
            watch: false,
            watch_interval: 2.0,
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

/// A collection opened for ingesting, with the embedder and chunking it was built with.
struct Target {
    name: String,
    collection: Collection,
    embedder: Box<dyn Embedder>,
    chunking: ChunkConfig,
}

fn open_target(ctx: &Context, args: &IngestArgs) -> Result<Target> {
    let name = ctx.collection_name(args.collection.clone());
    let dir = ctx.collection_dir(&name);
    let requested_embedder = args.embedder.clone().or_else(|| ctx.config.embedder.clone());
    let (collection, embedder) = if dir.exists() {
        let collection = Collection::open(&dir)?;
        if let Some(chunking) = args.chunking().filter(|c| *c != collection.manifest().chunking) {
            bail!(
                "collection '{name}' cuts documents with {:?}, not {chunking:?}; ingest into a new collection to change chunking",
                collection.manifest().chunking
            );
        }
        let built_with = collection.manifest().embedder.clone();
        if let Some(requested) = requested_embedder.filter(|r| *r != built_with) {
            bail!(
                "collection '{name}' was built with embedder {built_with}, not {requested}: choose another collection name"
            );
        }
        let embedder = lore_models::load_embedder(&built_with, &ctx.home)?;
        (collection, embedder)
    } else {
        let embedder_name = requested_embedder.unwrap_or_else(|| "e5-small".into());
        let embedder = lore_models::load_embedder(&embedder_name, &ctx.home)?;
        let chunking = args.chunking().unwrap_or_default();
        (Collection::create(&dir, &embedder_name, embedder.dimension(), chunking)?, embedder)
    };
    let chunking = collection.manifest().chunking.clone();
    Ok(Target { name, collection, embedder, chunking })
}

/// What one ingest (or one sync of a watched folder) did.
struct Summary {
    report: IngestReport,
    /// Files in formats Lore does not read.
    skipped: Vec<String>,
    /// Documents removed because their file is gone (--sync, --watch).
    removed: Vec<String>,
    seconds: f64,
}

impl Summary {
    fn succeeded(&self) -> usize {
        self.report.added + self.report.replaced + self.report.unchanged
    }

    fn to_json(&self, collection: &str) -> Value {
        let report = &self.report;
        json!({
            "collection": collection,
            "files": {
                "succeeded": self.succeeded(),
                "skipped": self.skipped.len(),
                "failed": report.failed.len(),
                "removed": self.removed.len(),
            },
            "added": report.added,
            "replaced": report.replaced,
            "unchanged": report.unchanged,
            "chunks": report.chunks,
            "failed": report.failed.iter().map(|(path, reason)| json!({"path": path, "reason": reason})).collect::<Vec<_>>(),
            "skipped": self.skipped,
            "removed": self.removed,
            "seconds": self.seconds,
            "chunks_per_second": report.chunks as f64 / self.seconds.max(1e-9),
        })
    }

    fn print_text(&self, collection: &str) {
        let report = &self.report;
        eprintln!(
            "{collection}: {} files ingested ({} added, {} replaced, {} unchanged), {} failed, {} skipped, {} removed; \
             {} chunks in {:.1} s ({:.1} chunks/s)",
            self.succeeded(),
            report.added,
            report.replaced,
            report.unchanged,
            report.failed.len(),
            self.skipped.len(),
            self.removed.len(),
            report.chunks,
            self.seconds,
            report.chunks as f64 / self.seconds.max(1e-9)
        );
        for (path, reason) in &report.failed {
            eprintln!("  failed: {path}: {reason}");
        }
        for path in &self.skipped {
            eprintln!("  skipped (format not read): {path}");
        }
        for source in &self.removed {
            eprintln!("  removed (file gone): {source}");
        }
    }
}

pub fn run(ctx: &Context, args: IngestArgs) -> Result<()> {
    let mut target = open_target(ctx, &args)?;
    if args.watch {
        return watch(&mut target, &args);
    }
    let summary = if args.beir {
        let mut sources = Vec::new();
        for path in &args.paths {
            let docs = lore_ingest::read_beir_corpus(path)
                .with_context(|| format!("reading BEIR corpus {}", path.display()))?;
            sources.extend(docs.into_iter().map(Source::Document));
        }
        let started = Instant::now();
        let report = ingest_with_bar(&mut target, sources)?;
        Summary { report, skipped: Vec::new(), removed: Vec::new(), seconds: started.elapsed().as_secs_f64() }
    } else {
        let found = lore_ingest::discover(&args.paths);
        ingest_found(&mut target, &args.paths, found, None, args.sync)?
    };
    if args.json {
        print_json(&summary.to_json(&target.name))?;
    } else {
        summary.print_text(&target.name);
    }
    if !summary.report.failed.is_empty() {
        std::process::exit(2);
    }
    Ok(())
}

/// Ingests the files `found` under `roots` (only those in `only`, when given), then, when
/// `sync`, removes the documents of files gone from the roots.
fn ingest_found(
    target: &mut Target,
    roots: &[PathBuf],
    found: Discovered,
    only: Option<&HashSet<PathBuf>>,
    sync: bool,
) -> Result<Summary> {
    let started = Instant::now();
    let sources = found
        .files
        .iter()
        .filter(|path| only.is_none_or(|only| only.contains(*path)))
        .map(|path| Source::File(path.clone()))
        .collect();
    let mut report = ingest_with_bar(target, sources)?;
    let unreadable = found.errors.iter().map(|(path, e)| (path.display().to_string(), e.clone()));
    report.failed.splice(0..0, unreadable);
    let removed = if sync { remove_vanished(&mut target.collection, roots, &found)? } else { Vec::new() };
    let skipped = found.skipped.iter().map(|path| path.display().to_string()).collect();
    Ok(Summary { report, skipped, removed, seconds: started.elapsed().as_secs_f64() })
}

/// Ingests `sources` under a progress bar showing files, chunks and their rates.
fn ingest_with_bar(target: &mut Target, sources: Vec<Source>) -> Result<IngestReport> {
    let bar = ProgressBar::new(sources.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} files ({per_sec}), {msg} [{elapsed}]")?
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let report = ingest(&mut target.collection, target.embedder.as_ref(), &target.chunking, sources, &mut |p| {
        bar.set_position(p.sources_done as u64);
        let rate = p.chunks_embedded as f64 / started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("{} chunks ({rate:.1}/s)", p.chunks_embedded));
    });
    bar.finish_and_clear();
    Ok(report?)
}

/// When and how large each file was at a look at the folders.
type Snapshot = HashMap<PathBuf, (Option<SystemTime>, u64)>;

fn snapshot(found: &Discovered) -> Snapshot {
    found
        .files
        .iter()
        .map(|path| {
            let meta = fs::metadata(path).ok();
            let stamp = meta.as_ref().map_or((None, 0), |m| (m.modified().ok(), m.len()));
            (path.clone(), stamp)
        })
        .collect()
}

/// Syncs the folders, then looks at them every `--watch-interval` and syncs what changed.
///
/// Polling modification times and sizes rather than subscribing to file events (inotify):
/// it works the same on network and FUSE mounts, where document folders often live and events
/// are not delivered, needs no watch per folder (inotify's per-user limit), and a look at a
/// folder of thousands of files costs milliseconds (see docs/ingest.md). A change is synced
/// once two looks in a row agree, so a folder being copied is synced once, when the copy ends.
///
/// Interrupting is safe at any moment: each document is written in one transaction, so the
/// collection holds every document wholly old or wholly new, and the next sync finishes the rest.
fn watch(target: &mut Target, args: &IngestArgs) -> Result<()> {
    if !args.watch_interval.is_finite() || args.watch_interval <= 0.0 {
        bail!("--watch-interval must be a positive number of seconds, not {}", args.watch_interval);
    }
    let interval = Duration::from_secs_f64(args.watch_interval);
    let report = |target: &Target, summary: &Summary| -> Result<()> {
        if args.json {
            // One JSON object per line, one line per sync.
            println!("{}", serde_json::to_string(&summary.to_json(&target.name))?);
        } else {
            summary.print_text(&target.name);
        }
        Ok(())
    };
    let found = lore_ingest::discover(&args.paths);
    let mut seen = snapshot(&found);
    let first = ingest_found(target, &args.paths, found, None, true)?;
    report(target, &first)?;
    if !args.json {
        eprintln!("watching {} for changes (Ctrl-C to stop)", display_paths(&args.paths));
    }
    loop {
        std::thread::sleep(interval);
        let mut found = lore_ingest::discover(&args.paths);
        let mut now = snapshot(&found);
        if now == seen {
            continue;
        }
        // Wait until the folders stop changing.
        loop {
            std::thread::sleep(interval);
            let again = lore_ingest::discover(&args.paths);
            let later = snapshot(&again);
            if later == now {
                break;
            }
            (found, now) = (again, later);
        }
        let changed: HashSet<PathBuf> =
            now.iter().filter(|(path, stamp)| seen.get(*path) != Some(*stamp)).map(|(path, _)| path.clone()).collect();
        let summary = ingest_found(target, &args.paths, found, Some(&changed), true)?;
        report(target, &summary)?;
        seen = now;
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

#[derive(Args)]
pub struct BenchIngestArgs {
    /// Files or folders to ingest, into a temporary collection that is deleted afterwards.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Parse, chunk and store with a placeholder vector instead of embedding.
    #[arg(long)]
    no_embed: bool,
    /// Embedder name or path.
    #[arg(long, default_value = "e5-small")]
    embedder: String,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// Stands in for the embedder in `lore bench ingest --no-embed`: every chunk gets the same
/// vector, of e5-small's size so that storing costs what it does with e5-small.
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
    fn embed(&self, texts: &[&str], _: EmbedKind) -> Result<Vec<Vec<f32>>, lore_core::Error> {
        let mut unit = vec![0.0; self.dimension()];
        unit[0] = 1.0;
        Ok(vec![unit; texts.len()])
    }
}

/// `lore bench ingest`: ingests folders into a temporary collection with the default chunking
/// and reports files/s, chunks/s, MB/s and the process's peak memory.
pub fn bench(ctx: &Context, args: BenchIngestArgs) -> Result<()> {
    let embedder: Box<dyn Embedder> = if args.no_embed {
        Box::new(PlaceholderEmbedder)
    } else {
        lore_models::load_embedder(&args.embedder, &ctx.home)?
    };
    let scratch = tempfile::tempdir()?;
    let chunking = ChunkConfig::default();
    let collection = Collection::create(scratch.path(), embedder.id(), embedder.dimension(), chunking.clone())?;
    let mut target = Target { name: "bench".into(), collection, embedder, chunking };
    let found = lore_ingest::discover(&args.paths);
    let bytes: u64 = found.files.iter().filter_map(|path| fs::metadata(path).ok()).map(|m| m.len()).sum();
    let files = found.files.len();
    let summary = ingest_found(&mut target, &args.paths, found, None, false)?;
    let seconds = summary.seconds.max(1e-9);
    let chunks = summary.report.chunks;
    let peak_mb =
        crate::bench::peak_rss_bytes().context("peak memory is read from /proc/self/status (Linux only)")? as f64 / 1e6;
    let embedder_name = if args.no_embed { "none".to_string() } else { args.embedder.clone() };
    let result = json!({
        "embedder": embedder_name,
        "files": files,
        "failed": summary.report.failed.len(),
        "chunks": chunks,
        "megabytes": bytes as f64 / 1e6,
        "seconds": seconds,
        "files_per_second": files as f64 / seconds,
        "chunks_per_second": chunks as f64 / seconds,
        "megabytes_per_second": bytes as f64 / 1e6 / seconds,
        "peak_memory_megabytes": peak_mb,
    });
    if args.json {
        return print_json(&result);
    }
    println!(
        "{}: {files} files ({} failed), {:.1} MB, {chunks} chunks in {seconds:.1} s: {:.1} files/s, {:.1} chunks/s, \
         {:.2} MB/s; peak memory {peak_mb:.0} MB (embedder: {embedder_name})",
        display_paths(&args.paths),
        summary.report.failed.len(),
        bytes as f64 / 1e6,
        files as f64 / seconds,
        chunks as f64 / seconds,
        bytes as f64 / 1e6 / seconds,
    );
    for (path, reason) in &summary.report.failed {
        eprintln!("  failed: {path}: {reason}");
    }
    Ok(())
}

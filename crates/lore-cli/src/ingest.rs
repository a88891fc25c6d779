//! `lore ingest`: arguments to an ingest request, summaries printed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use lore_engine::Engine;
use lore_engine::sync::{ChunkSizes, Chunker, IngestRequest, Summary};

use crate::output::Bars;

#[derive(Args)]
pub struct IngestArgs {
    /// Files or folders (searched recursively for documents: txt, md, pdf, docx, pptx, xlsx, csv, html, json…).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Collection to ingest into; created on first use.
    #[arg(short, long, env = "LORE_COLLECTION")]
    collection: Option<String>,
    #[command(flatten)]
    new_collection: NewCollectionArgs,
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
    /// Only keys of these groups (and `lore` itself) may read the documents ingested now, as
    /// `lore serve` enforces it: comma-separated names, stored as the documents' `groups`.
    /// Without it, a `groups` field of the document's own metadata applies, and
    /// documents without one are readable by every key of the collection.
    #[arg(long, value_delimiter = ',', value_name = "GROUPS")]
    groups: Vec<String>,
    /// Print a JSON summary instead of text (with --watch, one line of JSON per sync).
    #[arg(long)]
    json: bool,
}

/// How a new collection is built: shared by `lore ingest` and `lore collections create`.
#[derive(Args)]
pub struct NewCollectionArgs {
    /// Embedder for a new collection: a model name, a model path, or openai:MODEL@URL [default: e5-small].
    #[arg(long, env = "LORE_EMBEDDER")]
    embedder: Option<String>,
    /// How a new collection cuts documents into chunks [default: paragraph].
    #[arg(long, value_parser = chunkers())]
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
}

impl Default for NewCollectionArgs {
    fn default() -> Self {
        let sizes = ChunkSizes::default();
        NewCollectionArgs {
            embedder: None,
            chunker: None,
            chunk_size: sizes.chunk_size,
            parent_size: sizes.parent_size,
            drop_remainder: sizes.drop_remainder,
            window: sizes.window,
            overlap: sizes.overlap,
        }
    }
}

impl NewCollectionArgs {
    /// The request that opens `collection`, or creates it built as these arguments say.
    pub fn request(&self, collection: Option<String>) -> IngestRequest {
        let sizes = ChunkSizes {
            chunk_size: self.chunk_size,
            parent_size: self.parent_size,
            drop_remainder: self.drop_remainder,
            window: self.window,
            overlap: self.overlap,
        };
        IngestRequest {
            collection,
            embedder: self.embedder.clone(),
            chunking: self.chunker.map(|chunker| chunker.config(&sizes)),
        }
    }
}

/// The chunkers by name, each with its description in `--help`.
fn chunkers() -> impl TypedValueParser<Value = Chunker> {
    let names = Chunker::ALL.map(|c| PossibleValue::new(c.name()).help(c.description()));
    PossibleValuesParser::new(names).map(|name| Chunker::named(&name).expect("clap accepts only known names"))
}

impl IngestArgs {
    /// The settings `lore ingest FOLDER -c COLLECTION` would have.
    pub fn for_folder(folder: PathBuf, collection: &str) -> Self {
        IngestArgs {
            paths: vec![folder],
            collection: Some(collection.into()),
            new_collection: NewCollectionArgs::default(),
            beir: false,
            sync: false,
            watch: false,
            watch_interval: 2.0,
            groups: Vec::new(),
            json: false,
        }
    }

    fn request(&self) -> IngestRequest {
        self.new_collection.request(self.collection.clone())
    }
}

/// Ingests; exit status 2 when some files failed (the others are in the collection).
pub fn run(engine: &Engine, args: IngestArgs) -> Result<ExitCode> {
    if args.watch && (!args.watch_interval.is_finite() || args.watch_interval <= 0.0) {
        bail!("--watch-interval must be a positive number of seconds, not {}", args.watch_interval);
    }
    let mut target = engine.ingest_target(&args.request())?;
    let groups: Vec<&str> = args.groups.iter().map(|g| g.trim()).filter(|g| !g.is_empty()).collect();
    if !groups.is_empty() {
        target.metadata.insert(lore_core::GROUPS_FIELD.into(), serde_json::json!(groups));
    }
    let bars = Bars::default();
    let report = |summary: &Summary| match args.json {
        // With --watch, one JSON object per line, one line per sync.
        true if args.watch => println!("{}", summary.to_json(&target.name)),
        true => println!("{:#}", summary.to_json(&target.name)),
        false => eprintln!("{}: {summary}", target.name),
    };
    if args.watch {
        let interval = Duration::from_secs_f64(args.watch_interval);
        let mut first = true;
        let watching = target.watch(&args.paths, interval, &bars, &mut |summary| {
            report(summary);
            if std::mem::take(&mut first) && !args.json {
                let paths: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
                eprintln!("watching {} for changes (Ctrl-C to stop)", paths.join(", "));
            }
            Ok(())
        });
        match watching? {}
    }
    let summary = match args.beir {
        true => target.ingest_beir(&args.paths, &bars)?,
        false => target.ingest_paths(&args.paths, args.sync, &bars)?,
    };
    report(&summary);
    Ok(if summary.report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

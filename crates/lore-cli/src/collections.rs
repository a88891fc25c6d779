//! `lore collections` and `lore docs`: the catalog and a collection's documents, printed.

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use lore_core::{GraphExtractor, SearchSettings};
use lore_engine::Engine;
use serde_json::json;

use crate::ingest::NewCollectionArgs;
use crate::output::{Bars, print_json};

#[derive(Subcommand)]
pub enum CollectionsCommand {
    /// Create an empty collection, in the store --store names (embedded files by default, or a
    /// PostgreSQL database: --store postgres://USER@HOST:PORT/DB); `lore ingest` fills it.
    Create {
        name: String,
        #[command(flatten)]
        new_collection: NewCollectionArgs,
        #[arg(long)]
        json: bool,
    },
    /// Copy a collection into a new one, in the store --store names, without embedding anything
    /// again: e.g. from the embedded store to PostgreSQL, or back.
    Copy {
        source: String,
        target: String,
        #[arg(long)]
        json: bool,
    },
    /// List collections with their size, embedder and store.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a collection's manifest and statistics.
    Info {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a collection and everything in it.
    Delete { name: String },
    /// Change how a collection is searched: KEY=VALUE pairs over the search settings that
    /// `collections info` shows under manifest.search, e.g. `ann.ef_search=512` (HNSW recall
    /// against latency), `ann.mode=on`, `ann.vectors=int8` (a fifth of the vector memory; the
    /// best candidates are rescored from the store), `keyword.k1=1.5`, `keyword.analyzer=chinese` (rebuilds the
    /// keyword index on the next search), `graph.extractor=names` (keeps an entity graph for the
    /// graph and hybrid-graph pipelines; `off` drops it), `graph.extractor=llm` (the chat model
    /// `graph.model`, default the default LLM, reads each chunk's entities and relations: seconds
    /// a chunk; interrupted, set it again to go on). Nothing is re-embedded.
    Set {
        name: String,
        #[arg(required = true, value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// Group the chunks into themes by meaning and have the chat model summarise each one into a
    /// `lore:theme/N` document, which every pipeline retrieves: questions about the whole
    /// collection ("what are the main topics?") find a passage about many documents.
    /// More than 12 themes are grouped and summarised in turn (`lore:theme/2/N`, and so on up
    /// to a level of at most 12). Incremental: run it again after ingesting, and only the themes
    /// that gained or lost members are summarised again (each costs one model call, seconds to
    /// a minute on a CPU).
    /// A search keeps the themes, ahead of passages, when one of them comes first or the
    /// question asks what the collection holds ("what are these documents about?"), and
    /// answers specific questions from passages alone (`themes = "always" | "never"` in a
    /// pipeline's `[retrieval]` changes that); `lore query … --where kind=theme` asks the
    /// themes alone.
    Themes {
        name: String,
        /// The chat model that writes the summaries (default: the default LLM).
        #[arg(long, env = "LORE_LLM")]
        llm: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum DocsCommand {
    /// List the documents of a collection.
    List {
        #[arg(short, long, env = "LORE_COLLECTION")]
        collection: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a document (by its source, as `docs list` shows it) and its chunks.
    Delete {
        source: String,
        #[arg(short, long, env = "LORE_COLLECTION")]
        collection: Option<String>,
    },
}

pub fn collections(engine: &Engine, cmd: CollectionsCommand) -> Result<()> {
    let catalog = engine.catalog();
    match cmd {
        CollectionsCommand::Create { name, new_collection, json } => {
            if catalog.exists(&name) {
                return Err(lore_core::Error::AlreadyExists(format!("collection '{name}' exists already")).into());
            }
            engine.ingest_target(&new_collection.request(Some(name.clone())))?;
            let summary = catalog.summary(&name)?;
            if json {
                return print_json(&summary);
            }
            eprintln!("created collection '{name}' in {}", summary.store);
            Ok(())
        }
        CollectionsCommand::Copy { source, target, json } => {
            let stats = catalog.copy(&source, &target, catalog.default_store(), &Bars::default())?;
            let summary = catalog.summary(&target)?;
            if json {
                return print_json(&summary);
            }
            eprintln!(
                "copied '{source}' to '{target}' in {}: {} documents, {} chunks",
                summary.store, stats.documents, stats.chunks
            );
            Ok(())
        }
        CollectionsCommand::List { json } => {
            let rows = catalog.list()?;
            if json {
                return print_json(&rows);
            }
            if rows.is_empty() {
                eprintln!(
                    "no collections in {}; create one with `lore ingest PATH -c NAME`",
                    engine.settings().collections_dir().display()
                );
            }
            for row in rows {
                match (&row.manifest, &row.stats, &row.error) {
                    (Some(manifest), Some(stats), _) => println!(
                        "{:<20} {:>7} documents {:>9} chunks  embedder {:<10} {}",
                        row.name, stats.documents, stats.chunks, manifest.embedder, row.store
                    ),
                    (_, _, error) => {
                        println!("{:<20} unreadable: {:?}", row.name, error.as_deref().unwrap_or_default())
                    }
                }
            }
            Ok(())
        }
        // The same JSON with or without --json: it is the most readable form of a manifest.
        CollectionsCommand::Info { name, json: _ } => print_json(&catalog.summary(&name)?),
        CollectionsCommand::Set { name, settings } => {
            let store = catalog.open(&name)?;
            let mut search = serde_json::to_value(store.manifest().search)?;
            for setting in &settings {
                let Some((key, value)) = setting.split_once('=') else {
                    bail!("{setting:?} is not KEY=VALUE, e.g. ann.ef_search=512");
                };
                let Some(slot) = key.split('.').try_fold(&mut search, |node, part| node.get_mut(part)) else {
                    bail!("no search setting {key:?}; `lore collections info {name}` lists them under manifest.search");
                };
                // Numbers and booleans as JSON, anything else (an analyzer, a mode) as a string.
                *slot = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
            }
            let search: SearchSettings =
                serde_json::from_value(search).with_context(|| format!("setting {}", settings.join(" ")))?;
            let reads_entities = search.graph.extractor == GraphExtractor::Llm;
            store.configure(search)?;
            if reads_entities {
                let read = engine.extract_graph(&name, &Bars::default())?;
                eprintln!("{read} chunks read for the graph");
            }
            print_json(&store.manifest().search)
        }
        CollectionsCommand::Themes { name, llm, json } => {
            let report = engine.build_themes(&name, llm.as_deref(), &Bars::default())?;
            if json {
                return print_json(&report);
            }
            println!(
                "{} themes in {} level(s) over {} chunks: {} summarised, {} unchanged, {} removed",
                report.themes, report.levels, report.chunks, report.summarized, report.unchanged, report.removed
            );
            Ok(())
        }
        CollectionsCommand::Delete { name } => {
            engine.delete_collection(&name)?;
            eprintln!("deleted collection '{name}'");
            Ok(())
        }
    }
}

pub fn docs(engine: &Engine, cmd: DocsCommand) -> Result<()> {
    match cmd {
        DocsCommand::List { collection, json } => {
            let docs = engine.catalog().open(&engine.settings().collection_or(collection.as_deref()))?.documents()?;
            if json {
                return print_json(&docs);
            }
            for d in docs {
                println!("{:>6} chunks  {}  {}", d.chunks, d.ingested_at, d.source);
            }
            Ok(())
        }
        DocsCommand::Delete { source, collection } => {
            let name = engine.settings().collection_or(collection.as_deref());
            if !engine.catalog().open(&name)?.delete_document(&source)? {
                return Err(lore_core::Error::NotFound(format!(
                    "collection '{name}' has no document '{source}'; `lore docs list -c {name}` shows its documents"
                ))
                .into());
            }
            eprintln!("deleted '{source}' from '{name}'");
            Ok(())
        }
    }
}

use std::fs;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use lore_index::Collection;
use serde_json::json;

use crate::{Context, print_json};

#[derive(Subcommand)]
pub enum CollectionsCommand {
    /// List collections with their size and embedder.
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
    /// against latency), `ann.mode=on`, `keyword.k1=1.5`, `keyword.analyzer=chinese` (rebuilds the
    /// keyword index on the next search). Nothing is re-embedded.
    Set {
        name: String,
        #[arg(required = true, value_name = "KEY=VALUE")]
        settings: Vec<String>,
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

fn open(ctx: &Context, name: &str) -> Result<Collection> {
    let dir = ctx.collection_dir(name);
    if !dir.exists() {
        bail!("no collection '{name}' in {}; `lore collections list` shows the ones there are", dir.display());
    }
    Ok(Collection::open(&dir)?)
}

fn summary(name: &str, collection: &Collection) -> Result<serde_json::Value> {
    let stats = collection.stats()?;
    Ok(json!({ "name": name, "manifest": collection.manifest(), "stats": stats }))
}

pub fn collections(ctx: &Context, cmd: CollectionsCommand) -> Result<()> {
    match cmd {
        CollectionsCommand::List { json } => {
            let root = ctx.home.join("collections");
            let mut names: Vec<String> = match fs::read_dir(&root) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(_) => Vec::new(),
            };
            names.sort();
            let mut rows = Vec::new();
            for name in &names {
                match Collection::open(&root.join(name)) {
                    Ok(c) => rows.push(summary(name, &c)?),
                    Err(e) => rows.push(json!({ "name": name, "error": e.to_string() })),
                }
            }
            if json {
                return print_json(&rows);
            }
            if rows.is_empty() {
                eprintln!("no collections in {}; create one with `lore ingest PATH -c NAME`", root.display());
            }
            for row in rows {
                match row.get("error") {
                    Some(error) => println!("{:<20} unreadable: {}", row["name"].as_str().unwrap_or_default(), error),
                    None => println!(
                        "{:<20} {:>7} documents {:>9} chunks  embedder {}",
                        row["name"].as_str().unwrap_or_default(),
                        row["stats"]["documents"],
                        row["stats"]["chunks"],
                        row["manifest"]["embedder"].as_str().unwrap_or_default()
                    ),
                }
            }
            Ok(())
        }
        CollectionsCommand::Info { name, json } => {
            let info = summary(&name, &open(ctx, &name)?)?;
            if json {
                return print_json(&info);
            }
            println!("{}", serde_json::to_string_pretty(&info)?);
            Ok(())
        }
        CollectionsCommand::Set { name, settings } => {
            let mut collection = open(ctx, &name)?;
            let mut search = serde_json::to_value(&collection.manifest().search)?;
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
            let search = serde_json::from_value(search).with_context(|| format!("setting {}", settings.join(" ")))?;
            collection.configure(search)?;
            print_json(&collection.manifest().search)
        }
        CollectionsCommand::Delete { name } => {
            open(ctx, &name)?;
            fs::remove_dir_all(ctx.collection_dir(&name))?;
            eprintln!("deleted collection '{name}'");
            Ok(())
        }
    }
}

pub fn docs(ctx: &Context, cmd: DocsCommand) -> Result<()> {
    match cmd {
        DocsCommand::List { collection, json } => {
            let name = ctx.collection_name(collection);
            let docs = open(ctx, &name)?.documents()?;
            if json {
                return print_json(&docs);
            }
            for d in docs {
                println!("{:>6} chunks  {}  {}", d.chunks, d.ingested_at, d.source);
            }
            Ok(())
        }
        DocsCommand::Delete { source, collection } => {
            let name = ctx.collection_name(collection);
            if !open(ctx, &name)?.delete_document(&source)? {
                bail!("collection '{name}' has no document '{source}'; `lore docs list -c {name}` shows its documents");
            }
            eprintln!("deleted '{source}' from '{name}'");
            Ok(())
        }
    }
}

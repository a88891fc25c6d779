//! `lore serve`, `lore keys` and `lore feedback`: the server's options, its keys and the
//! training data its users' feedback makes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use lore_engine::Engine;
use lore_engine::answers::{AnswerLog, ExportFormat};
use lore_server::keys::{Keys, parse_grant};
use lore_server::{ServeOptions, Server};
use serde_json::json;

use crate::output::print_json;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on. Without keys only 127.0.0.1/::1 are allowed, and only this
    /// machine's clients are served; with keys, every request needs one.
    #[arg(long, env = "LORE_ADDR", default_value = lore_server::DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Answers admitted at once (running or waiting for the chat model); more get 503 with Retry-After.
    #[arg(long, default_value_t = 4)]
    answer_queue: usize,
    /// Searches and embedding requests admitted at once.
    #[arg(long, default_value_t = 32)]
    search_queue: usize,
    /// Uploads being ingested at once.
    #[arg(long, default_value_t = 4)]
    upload_queue: usize,
    /// Largest upload request, in MB (413 above).
    #[arg(long, default_value_t = 200)]
    max_upload_mb: usize,
    /// Largest file in an upload, in MB.
    #[arg(long, default_value_t = 50)]
    max_file_mb: usize,
    /// Most files in one upload.
    #[arg(long, default_value_t = 100)]
    max_files: usize,
    /// Seconds a request may take before its response starts (408 after).
    #[arg(long, default_value_t = 300)]
    request_timeout: u64,
    /// Let pages from this origin call the API from a browser (repeat for several); off by default.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
}

/// Serves until Ctrl-C or SIGTERM, then lets requests in flight finish (30 s at most).
pub fn serve(engine: &Engine, args: ServeArgs) -> Result<()> {
    let options = ServeOptions {
        addr: args.addr,
        answer_queue: args.answer_queue,
        search_queue: args.search_queue,
        upload_queue: args.upload_queue,
        max_upload_bytes: args.max_upload_mb.saturating_mul(1_000_000),
        max_file_bytes: args.max_file_mb.saturating_mul(1_000_000),
        max_upload_files: args.max_files,
        request_timeout: Duration::from_secs(args.request_timeout),
        cors_origins: args.cors_origins,
        ..ServeOptions::default()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let served = runtime.block_on(async {
        let server = Server::bind(engine.clone(), options).await?;
        let addr = server.local_addr();
        eprintln!(
            "Lore is serving http://{addr}/ (API under /api and /v1, OpenAPI at /api/openapi.json); Ctrl-C stops"
        );
        server.run(stopped()).await
    });
    // Work still running after the grace period (an answer nobody waits for, an ingest cut off
    // mid-document) is abandoned: each document is stored whole or not at all.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served?;
    eprintln!("stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, () = term => {} }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret, once (only its hash is kept).
    Create {
        /// A name for the key (who or what uses it).
        name: String,
        /// COLLECTION=read|write|admin; repeat for several; * stands for every collection.
        /// read: query, ask, list; write: also upload and delete documents; admin: also
        /// collection settings, creation and deletion.
        #[arg(long = "grant", required = true, value_name = "COLLECTION=PERMISSION")]
        grants: Vec<String>,
        /// Document groups the key may read, besides documents without groups (comma-separated).
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Print {"name", "key"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the keys (names, grants, groups; never secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: the next request with it gets 401.
    Revoke { name: String },
}

pub fn keys(engine: &Engine, command: KeysCommand) -> Result<()> {
    let keys = Keys::in_home(engine.home());
    match command {
        KeysCommand::Create { name, grants, groups, json } => {
            let grants = grants.iter().map(|g| parse_grant(g)).collect::<lore_core::Result<BTreeMap<_, _>>>()?;
            let secret = keys.create(&name, grants, groups)?;
            if json {
                return print_json(&json!({"name": name, "key": secret}));
            }
            println!("{secret}");
            eprintln!(
                "key '{name}' created; this is the only time its secret is shown. Send it as 'Authorization: Bearer KEY'."
            );
        }
        KeysCommand::List { json } => {
            let all = keys.list()?;
            if json {
                let listed: Vec<_> = all
                    .iter()
                    .map(|k| json!({"name": k.name, "grants": k.grants, "groups": k.groups, "created_unix": k.created_unix}))
                    .collect();
                return print_json(&listed);
            }
            for key in all {
                let grants: Vec<String> = key.grants.iter().map(|(c, p)| format!("{c}={p}")).collect();
                println!("{}  {}  groups: {}", key.name, grants.join(" "), key.groups.join(","));
            }
        }
        KeysCommand::Revoke { name } => {
            if !keys.revoke(&name)? {
                return Err(lore_core::Error::NotFound(format!("no key '{name}'; `lore keys list` shows them")).into());
            }
            eprintln!("key '{name}' revoked");
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum FeedbackCommand {
    /// Write the rated answers of a collection as JSONL training data: sft (messages with the
    /// answer or the correction), dpo (prompt, chosen = correction, rejected = answer), triples
    /// (query, a cited passage, a passage given but unused; for training retrievers).
    Export {
        #[arg(short, long, env = "LORE_COLLECTION")]
        collection: String,
        #[arg(long, value_parser = ["sft", "dpo", "triples"])]
        format: String,
        /// Only answers whose passages all these groups may read (as for a key with them).
        #[arg(long, value_delimiter = ',')]
        groups: Option<Vec<String>>,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn feedback(engine: &Engine, command: FeedbackCommand) -> Result<()> {
    let FeedbackCommand::Export { collection, format, groups, out } = command;
    let format: ExportFormat = format.parse()?;
    let access = groups.map(lore_core::Filter::readable_by);
    let records = AnswerLog::in_home(engine.home())?.export(&collection, format, access.as_ref())?;
    let mut sink: Box<dyn Write> = match &out {
        Some(path) => Box::new(BufWriter::new(File::create(path)?)),
        None => Box::new(std::io::stdout().lock()),
    };
    for record in &records {
        writeln!(sink, "{record}")?;
    }
    sink.flush()?;
    eprintln!("{} {format} records from '{collection}'", records.len());
    Ok(())
}

